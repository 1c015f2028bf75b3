import Foundation
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage
import XCTest
import TestSupport

class QualityStoreTests: XCTestCase {
    var folder: URL!
    var db: Database!
    /// The twin below runs every test of this class on PostgreSQL.
    var onPostgreSQL: Bool { false }

    override func setUpWithError() throws {
        folder = makeTempDirectory(self, prefix: "quality-store")
        let path = onPostgreSQL ? try PostgresFixture.shared().newDatabase(for: self) : folder.appendingPathComponent("mes.sqlite").path
        db = try Database(path: path)
        try Migrator(groups: [QualitySchema.migrations]).migrate(db)
    }

    override func tearDownWithError() throws {
        db?.close()
    }

    func testDefectsRoundTripAndFilters() throws {
        var engine = try QualityEngine(config: testPlant())
        var outputs = engine.process(.operation(op("w1", vehicle: "VIN1", start: 0, end: 55, result: .nok)))
        outputs += engine.process(.operation(op("w2", vehicle: "VIN2", start: 60, end: 115, measurements: ["weldCurrent": 12.5])))
        outputs += engine.process(.operation(op("i1", vehicle: "VIN1", station: "INSP-01", process: "inspection", start: 120, end: 160, result: .nok)))
        try db.transaction { try QualityStore.apply(outputs, to: db) }
        let first = try XCTUnwrap(outputs.defects.first?.0)
        let resolved = try engine.resolveDefect(id: first.id, comment: "rewelded", user: quality, at: at(200))
        try db.transaction { try QualityStore.apply(resolved, to: db) }

        let all = try QualityStore.defects(in: db)
        XCTAssertEqual(all.map(\.id), [3, 2, 1], "newest first")
        XCTAssertEqual(all.map { $0.json.serialized() }, [outputs.defects[2].0, outputs.defects[1].0, resolved.defects[0].0].map { $0.json.serialized() })
        XCTAssertEqual(try QualityStore.defects(status: .open, in: db).map(\.id), [3, 2])
        XCTAssertEqual(try QualityStore.defects(status: .resolved, in: db).map(\.comment), ["rewelded"])
        XCTAssertEqual(try QualityStore.defects(vehicle: "VIN1", in: db).map(\.id), [3, 1])
        XCTAssertEqual(try QualityStore.defects(station: "WELD-01", in: db).map(\.id), [2, 1])
        XCTAssertEqual(try QualityStore.defects(limit: 1, in: db).map(\.id), [3])
        XCTAssertEqual(try QualityStore.defects(limit: 0, in: db).count, 1, "limit is clamped to at least 1")
        XCTAssertEqual(try QualityStore.defect(id: 2, in: db)?.code, "OUT_OF_SPEC:weldCurrent")
        XCTAssertEqual(try QualityStore.pareto(in: db).map(\.key), ["NOK", "OUT_OF_SPEC:weldCurrent"])
        XCTAssertEqual(try QualityStore.pareto(byStation: true, in: db).map(\.count), [2, 1])
    }

    func testAlertsRoundTripStateFiltersHistoryAndRestart() throws {
        var engine = try QualityEngine(config: testPlant())
        var log: [QualityOutput] = []
        log += engine.process(.operation(op("w1", vehicle: "VIN1", start: 0, end: 55, measurements: ["weldCurrent": 13])))   // alert 1 raised
        log += engine.process(.sequenceIssue(SequenceIssueInput(kind: .repeated, vehicleId: "VIN1", station: "WELD-02", time: at(60)))) // alert 2
        log += engine.process(.operation(op("i1", vehicle: "VIN1", station: "INSP-01", process: "inspection", start: 60, end: 100,
                                            measurements: ["gap": 6])))                                                // alert 3 raised
        log += try engine.acknowledge(alertId: 1, by: quality, comment: "tips", at: at(110))                           // 1 active_acknowledged
        log += try engine.shelve(alertId: 2, minutes: 30, reason: "known rework", by: quality, at: at(120))            // 2 shelved
        log += engine.process(.operation(op("i2", vehicle: "VIN2", station: "INSP-01", process: "inspection", start: 130, end: 170,
                                            measurements: ["gap": 4])))                                                // 3 cleared_unacknowledged
        try db.transaction { try QualityStore.apply(log, to: db) }

        func ids(_ filter: AlertStateFilter, station: String? = nil) throws -> [Int64] {
            try QualityStore.alerts(filter: filter, station: station, in: db).map(\.id)
        }
        XCTAssertEqual(try ids(.open), [3, 2, 1])
        XCTAssertEqual(try ids(.active), [1])
        XCTAssertEqual(try ids(.unacknowledged), [3])
        XCTAssertEqual(try ids(.shelved), [2])
        XCTAssertEqual(try ids(.all, station: "INSP-01"), [3])
        XCTAssertEqual(AlertStateFilter(query: nil), .open)
        XCTAssertNil(AlertStateFilter(query: "bogus"))
        let stored = try XCTUnwrap(QualityStore.alert(id: 1, in: db))
        XCTAssertEqual(stored.json, try XCTUnwrap(engine.alert(id: 1)).json)
        XCTAssertEqual(try QualityStore.history(alertId: 1, in: db).map(\.change), ["raised", "acknowledged"])
        XCTAssertEqual(try QualityStore.history(alertId: 1, in: db).last?.user, "li.wei")
        XCTAssertEqual(try QualityStore.audit(in: db).map(\.action), ["alert.shelve", "alert.acknowledge"])

        // Restart: a new engine continues with the stored open alerts and the next ids.
        var restarted = try QualityEngine(config: testPlant())
        try QualityStore.restore(&restarted, from: db)
        XCTAssertEqual(restarted.openAlerts.map(\.id), [1, 2, 3])
        XCTAssertEqual(restarted.alert(id: 2)?.state, .shelved)
        XCTAssertThrowsError(try restarted.acknowledge(alertId: 1, by: quality, comment: nil, at: at(200))) {
            guard case .conflict? = $0 as? QualityActionError else { return XCTFail("\($0)") }
        }
        let unshelved = restarted.process(.tick(at(120 + 30 * 60)))
        XCTAssertEqual(unshelved.alerts.first { $0.0.id == 2 }?.1, .unshelved)
        let next = restarted.process(.operation(op("w9", vehicle: "VIN9", station: "WELD-02", start: 300, end: 355, measurements: ["weldCurrent": 7])))
        XCTAssertEqual(next.alerts.first?.0.id, 4)
    }

    func testShiftCountersAreOneRowThatReadsBack() throws {
        XCTAssertNil(try QualityStore.shiftCounters(db))
        var engine = try QualityEngine(config: testPlant())
        _ = engine.process(.operation(op("w1", vehicle: "VIN1", start: 0, end: 55)))
        let first = try XCTUnwrap(engine.shiftCounters)
        try QualityStore.save(first, to: db)
        _ = engine.process(.operation(op("w2", vehicle: "VIN2", start: 60, end: 110, result: .nok)))
        let second = try XCTUnwrap(engine.shiftCounters)
        try QualityStore.save(second, to: db)
        XCTAssertEqual(try db.scalarInt("SELECT COUNT(*) FROM shift_counters"), 1)
        XCTAssertEqual(try QualityStore.shiftCounters(db), second)
        XCTAssertEqual(try QualityStore.shiftCounters(db)?.stations.first { $0.id == "WELD-01" }?.totalCount, 2)

        // A damaged row is an error for the caller to report, not a silent zero.
        _ = try db.run("UPDATE shift_counters SET data = '{\"shiftName\": 1}'")
        XCTAssertThrowsError(try QualityStore.shiftCounters(db))
    }

    func testAuditIsAppendOnly() throws {
        let failed = AuditEntry.authenticationFailed(at: at(1), method: "POST", path: "/api/alerts/1/ack", reason: "unknown token")
        let stored = try QualityStore.append(failed, to: db)
        XCTAssertEqual(stored.id, 1)
        try QualityStore.append(AuditEntry.vehicle("hold", vehicleId: "VIN1", reason: "paint check", by: quality, at: at(2)), to: db)
        let entries = try QualityStore.audit(in: db)
        XCTAssertEqual(entries.map(\.action), ["vehicle.hold", "auth.failed"])
        XCTAssertNil(entries.last?.role)
        XCTAssertEqual(entries.first?.json["target"], .string("vehicle:VIN1"))
        XCTAssertEqual(entries.first?.json["t"], .string("2026-11-21T06:00:02.000Z"))
        XCTAssertEqual(try QualityStore.audit(limit: 1, in: db).count, 1)
        XCTAssertThrowsError(try db.run("UPDATE audit SET user = 'mallory'"))
        XCTAssertThrowsError(try db.run("DELETE FROM audit"))
        XCTAssertEqual(try QualityStore.audit(in: db).count, 2)
    }
}

/// ``QualityStoreTests`` on PostgreSQL: the same tests, a fresh database each.
final class QualityStorePostgreSQLTests: QualityStoreTests {
    override var onPostgreSQL: Bool { true }
    // Declared here so that test discovery on Linux (which lists a class's own methods) runs them.
    override func testDefectsRoundTripAndFilters() throws { try super.testDefectsRoundTripAndFilters() }
    override func testAlertsRoundTripStateFiltersHistoryAndRestart() throws { try super.testAlertsRoundTripStateFiltersHistoryAndRestart() }
    override func testShiftCountersAreOneRowThatReadsBack() throws { try super.testShiftCountersAreOneRowThatReadsBack() }
    override func testAuditIsAppendOnly() throws { try super.testAuditIsAppendOnly() }
}
