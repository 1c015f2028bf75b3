import Foundation
import PlantModel
import PlantStore
import Runtime
import Storage
import Tracking
import XCTest
import TestSupport

class GenealogyStoreTests: XCTestCase {
    typealias F = Fixtures
    var folder: URL!
    var path: String!
    /// The twin below runs every test of this class on PostgreSQL.
    var onPostgreSQL: Bool { false }

    override func setUpWithError() throws {
        folder = makeTempDirectory(self, prefix: "genealogy")
        path = onPostgreSQL ? try PostgresFixture.shared().newDatabase(for: self) : folder.appendingPathComponent("mes.sqlite").path
    }

    func openDatabase() throws -> Database {
        let db = try Database(path: path)
        try Migrator(groups: [GenealogySchema.migrations]).migrate(db)
        return db
    }

    func openLog() throws -> EventLog {
        var configuration = EventLog.Configuration(path: path)
        configuration.migrations = [GenealogySchema.migrations]
        let log = try EventLog.open(configuration, logger: Logger(label: "test", level: .warning))
        log.start()
        return log
    }

    func testFullGenealogyStoredAndRead() throws {
        let db = try openDatabase()
        defer { db.close() }
        var tracker = Tracker(config: F.config())
        let out = tracker.feed(TrackerTests.fullRoute("V1"))
        try db.transaction { try GenealogyStore.apply(out, to: db) }

        let json = try XCTUnwrap(GenealogyStore.vehicle(id: "V1", in: db))
        XCTAssertEqual(json["vehicleId"]?.stringValue, "V1")
        XCTAssertEqual(json["status"]?.stringValue, "completed")
        XCTAssertTrue(json["currentStation"]?.isNull ?? false)
        XCTAssertEqual(json["firstSeenAt"]?.stringValue, Timestamp.format(F.t(10)))
        let ops = try XCTUnwrap(json["operations"]?.arrayValue)
        XCTAssertEqual(ops.compactMap { $0["station"]?.stringValue }, ["WELD", "PAINT", "ASSY", "INSP"])
        XCTAssertEqual(ops.map { $0["result"]?.stringValue }, ["ok", nil, "ok", "nok"])
        XCTAssertEqual(ops[0]["lots"], .array([.string("P-001")]))
        XCTAssertEqual(ops[0]["measurements"]?["weldCurrent"]?.doubleValue, 10.5)
        XCTAssertEqual(ops[0]["startedAt"]?.stringValue, Timestamp.format(F.t(10)))
        XCTAssertEqual(ops[0]["completedAt"]?.stringValue, Timestamp.format(F.t(20)))
        XCTAssertEqual(ops[2]["operator"]?.stringValue, "li.wei")
        XCTAssertEqual(ops[3]["state"]?.stringValue, "completed")
        // The stored operations equal what the tracker reported.
        let stored = try GenealogyStore.operations(vehicleId: "V1", in: db).map(\.record)
        XCTAssertEqual(stored.map(\.id), out.completed.map(\.id))
        XCTAssertEqual(stored.map(\.measurements), out.completed.map(\.measurements))
        XCTAssertEqual(stored.map(\.lots), out.completed.map(\.lots))
        XCTAssertNil(try GenealogyStore.vehicle(id: "NOPE", in: db))
    }

    func testLotTracingBothWays() throws {
        let db = try openDatabase()
        defer { db.close() }
        var tracker = Tracker(config: F.config())
        var polls = [F.poll("PRESS", 0, ["strokes": .int(0), "panelLot": .string("P-9")]),
                     F.poll("PRESS", 1, ["strokes": .int(40)])]
        for (i, v) in ["A1", "A2", "A3"].enumerated() {
            let lot = i < 2 ? "P-9" : "P-10"
            polls += F.pass(v, at: "WELD", start: Double(10 + i * 20), values: ["result": .int(1), "panelLot": .string(lot)])
            polls += F.pass(v, at: "PAINT", start: Double(70 + i * 20), values: ["paintLot": .string("PL-1")])
        }
        try db.transaction { try GenealogyStore.apply(tracker.feed(polls), to: db) }

        let lot = try XCTUnwrap(GenealogyStore.lot(id: "P-9", in: db))
        XCTAssertEqual(lot["lotId"]?.stringValue, "P-9")
        XCTAssertEqual(lot["vehicles"], .array([.string("A1"), .string("A2")]))
        XCTAssertEqual(lot["stations"], .array([.string("PRESS"), .string("WELD")]))
        XCTAssertEqual(lot["counts"]?.arrayValue?.first?["count"]?.intValue, 40)
        let paint = try XCTUnwrap(GenealogyStore.lot(id: "PL-1", in: db))
        XCTAssertEqual(paint["vehicles"]?.arrayValue?.count, 3)
        XCTAssertEqual(paint["stations"], .array([.string("PAINT")]))
        XCTAssertNil(try GenealogyStore.lot(id: "NOPE", in: db))
        // From the vehicle back to its lots.
        let lots = try GenealogyStore.lots(vehicleId: "A3", in: db)
        XCTAssertEqual(lots.map(\.lot), ["P-10", "PL-1"])
        XCTAssertEqual(lots.map(\.station), ["WELD", "PAINT"])
    }

    func testVehicleListNewestFirstWithFilters() throws {
        let db = try openDatabase()
        defer { db.close() }
        var tracker = Tracker(config: F.config())
        var polls: [StationPoll] = []
        polls += F.pass("L1", at: "WELD", start: 0)
        polls += F.pass("L2", at: "WELD", start: 20)
        polls.append(F.poll("WELD", 40, ["vehicleId": .string("L3"), "cycleDone": .bool(false)]))
        try db.transaction { try GenealogyStore.apply(tracker.feed(polls), to: db) }
        let hold = try tracker.hold(vehicleId: "L1", reason: "check", user: "q", at: F.t(50))
        try db.transaction { try GenealogyStore.apply(hold, to: db) }

        XCTAssertEqual(try GenealogyStore.vehicles(in: db).map(\.vehicleId), ["L3", "L2", "L1"])
        XCTAssertEqual(try GenealogyStore.vehicles(limit: 2, in: db).map(\.vehicleId), ["L3", "L2"])
        XCTAssertEqual(try GenealogyStore.vehicles(status: .hold, in: db).map(\.vehicleId), ["L1"])
        XCTAssertEqual(try GenealogyStore.vehicles(status: .inProcess, in: db).map(\.vehicleId), ["L3", "L2"])
        XCTAssertEqual(try GenealogyStore.vehicles(station: "WELD", in: db).map(\.vehicleId), ["L3"])
        let json = try GenealogyStore.vehiclesJSON(station: "WELD", in: db)
        XCTAssertEqual(json.arrayValue?.first?["currentStation"]?.stringValue, "WELD")
        // The running operation is stored with no completion.
        let ops = try GenealogyStore.operations(vehicleId: "L3", in: db)
        XCTAssertEqual(ops.map(\.state), ["running"])
        XCTAssertNil(ops.first?.record.completedAt)
    }

    /// Persist through the event log, stop, reload the snapshot into a new tracker, continue.
    func testRestartMidRouteContinuesHistory() throws {
        var tracker = Tracker(config: F.config())
        var log = try openLog()
        var out = tracker.feed(F.pass("R1", at: "WELD", start: 0, values: ["result": .int(1), "panelLot": .string("P-1")]))
        out += tracker.feed([F.poll("PAINT", 20, ["vehicleId": .string("R1"), "cycleDone": .bool(false), "paintLot": .string("PL-4")])])
        // R2 finished welding and stands at the station.
        out += tracker.feed([F.poll("WELD", 30, ["vehicleId": .string("R2"), "cycleDone": .bool(false)]),
                             F.poll("WELD", 35, ["cycleDone": .bool(true), "result": .int(1)])])
        let batch = out
        log.enqueue { db in try GenealogyStore.apply(batch, to: db) }
        try log.flush()
        log.close()

        log = try openLog()
        defer { log.close() }
        let snapshot = try log.read { try GenealogyStore.loadSnapshot($0) }
        XCTAssertEqual(snapshot.operationsInProgress.map(\.vehicleId), ["R1"])
        XCTAssertEqual(Set(snapshot.vehicles.map(\.summary.vehicleId)), ["R1", "R2"])
        let r1 = try XCTUnwrap(snapshot.vehicles.first { $0.summary.vehicleId == "R1" })
        XCTAssertEqual(r1.completedProcesses, ["welding"])
        XCTAssertEqual(r1.completedByStation, ["WELD": 1])

        var restored = Tracker(config: F.config(), snapshot: snapshot)
        XCTAssertEqual(restored.station("WELD")?.currentVehicle, "R2")
        var after = restored.feed([
            F.poll("WELD", 100, ["vehicleId": .string("R2"), "cycleDone": .bool(true)]),
            F.poll("PAINT", 100, ["vehicleId": .string("R1"), "cycleDone": .bool(false), "paintLot": .string("PL-4")]),
            F.poll("PAINT", 101, ["cycleDone": .bool(true), "filmThickness": .double(112)]),
            F.poll("PAINT", 103, ["vehicleId": .string(""), "cycleDone": .bool(false)]),
        ])
        XCTAssertTrue(after.started.isEmpty, "no new operations for vehicles that were already there: \(after.started)")
        after += restored.feed(F.pass("R1", at: "ASSY", start: 110, values: ["result": .int(1)]))
        after += restored.feed(F.pass("R1", at: "WELD", start: 130))
        XCTAssertEqual(after.issues.map(\.kind), [.repeated], "route check knows welding was done")
        let batch2 = after
        try log.write { db in try GenealogyStore.apply(batch2, to: db) }

        let json = try XCTUnwrap(log.read { try GenealogyStore.vehicle(id: "R1", in: $0) })
        let ops = try XCTUnwrap(json["operations"]?.arrayValue)
        XCTAssertEqual(ops.compactMap { $0["station"]?.stringValue }, ["WELD", "PAINT", "ASSY", "WELD"])
        XCTAssertEqual(ops.compactMap { $0["state"]?.stringValue }, ["completed", "completed", "completed", "completed"])
        XCTAssertEqual(ops[1]["startedAt"]?.stringValue, Timestamp.format(F.t(20)), "the operation begun before the restart")
        XCTAssertEqual(ops[1]["completedAt"]?.stringValue, Timestamp.format(F.t(101)))
        XCTAssertEqual(ops[3]["attempt"]?.intValue, 2)
        let lot = try XCTUnwrap(log.read { try GenealogyStore.lot(id: "PL-4", in: $0) })
        XCTAssertEqual(lot["vehicles"], .array([.string("R1")]))
    }

    /// A crash leaves whatever was committed; a second snapshot load of the same file is identical.
    func testSnapshotRoundTripMatchesTracker() throws {
        let db = try openDatabase()
        defer { db.close() }
        var tracker = Tracker(config: F.config())
        var polls = TrackerTests.fullRoute("S1")
        polls += F.pass("S2", at: "WELD", start: 100)
        polls += [F.poll("PAINT", 120, ["vehicleId": .string("S2"), "cycleDone": .bool(false)])]
        polls += [F.poll("PRESS", 130, ["strokes": .int(200), "panelLot": .string("P-002")]), F.poll("PRESS", 131, ["strokes": .int(205)])]
        try db.transaction { try GenealogyStore.apply(tracker.feed(polls), to: db) }
        let fromStore = try GenealogyStore.loadSnapshot(db)
        let fromTracker = tracker.snapshot()
        XCTAssertEqual(fromStore.vehicles.sorted { $0.summary.vehicleId < $1.summary.vehicleId }.map(\.completedByStation),
                       fromTracker.vehicles.map(\.completedByStation))
        XCTAssertEqual(fromStore.vehicles.sorted { $0.summary.vehicleId < $1.summary.vehicleId }.map(\.summary.status),
                       fromTracker.vehicles.map(\.summary.status))
        XCTAssertEqual(fromStore.operationsInProgress.map(\.id), fromTracker.operationsInProgress.map(\.id))
        XCTAssertEqual(fromStore.lotCounts.last?.lotId, "P-002")
        XCTAssertEqual(fromStore.lotCounts.last?.count, 5)
        var restored = Tracker(config: F.config(), snapshot: fromStore)
        XCTAssertEqual(restored.station("PRESS")?.currentLot, "P-002")
        XCTAssertEqual(restored.state().inProcess, 1)
        let more = restored.feed([F.poll("PRESS", 140, ["strokes": .int(300)]), F.poll("PRESS", 141, ["strokes": .int(303)])])
        XCTAssertEqual(more.lotCounts.map(\.count), [8])
    }
}

/// ``GenealogyStoreTests`` on PostgreSQL: the same tests, a fresh database each.
final class GenealogyStorePostgreSQLTests: GenealogyStoreTests {
    override var onPostgreSQL: Bool { true }
    // Declared here so that test discovery on Linux (which lists a class's own methods) runs them.
    override func testFullGenealogyStoredAndRead() throws { try super.testFullGenealogyStoredAndRead() }
    override func testLotTracingBothWays() throws { try super.testLotTracingBothWays() }
    override func testVehicleListNewestFirstWithFilters() throws { try super.testVehicleListNewestFirstWithFilters() }
    override func testRestartMidRouteContinuesHistory() throws { try super.testRestartMidRouteContinuesHistory() }
    override func testSnapshotRoundTripMatchesTracker() throws { try super.testSnapshotRoundTripMatchesTracker() }
}
