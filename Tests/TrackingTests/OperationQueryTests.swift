import Foundation
import PlantModel
import PlantStore
import Runtime
import Storage
import XCTest
import TestSupport

/// The operations query's SQL (`OperationQuery`): the measurement rows follow every write of
/// `operations`, each filter picks the rows it names, and the plans use the indexes that keep it
/// fast at plant scale (checked with EXPLAIN QUERY PLAN, not with a clock).
final class OperationQueryTests: XCTestCase {
    var db: Database!

    override func setUpWithError() throws {
        let folder = makeTempDirectory(self, prefix: "opquery")
        db = try Database(path: folder.appendingPathComponent("mes.sqlite").path)
        try Migrator(groups: [GenealogySchema.migrations, OperationQuery.migrations]).migrate(db)
    }

    override func tearDown() { db?.close() }

    static let t0: Int64 = 1_790_000_000_000

    func insert(_ id: String, vehicle: String = "V1", station: String = "WELD-01", process: String = "welding",
                completedMin: Int64?, result: String? = "ok", measurements: String = "{}", lots: String = "[]",
                state: String = "completed") throws {
        try db.run("""
            INSERT INTO operations (id, vehicle_id, station, process, started_ms, completed_ms, state, result, measurements, lots, attempt)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
            """, [.text(id), .text(vehicle), .text(station), .text(process), .integer(Self.t0 + (completedMin ?? 0) * 60_000 - 30_000),
                  completedMin.map { .integer(Self.t0 + $0 * 60_000) } ?? .null, .text(state), result.map { .text($0) } ?? .null,
                  .text(measurements), .text(lots)])
    }

    func ids(_ filter: OperationFilter, limit: Int = 100) throws -> [String] {
        try OperationQuery.operations(filter, limit: limit, in: db).map(\.id)
    }

    func measurementRows() throws -> [String] {
        try db.query("SELECT signal, value, op FROM operation_measurements ORDER BY op, signal") {
            "\($0.text(0) ?? "")=\($0.double(1))@\($0.int64(2))"
        }
    }

    func testMeasurementRowsFollowInsertsUpdatesAndDeletes() throws {
        try insert("A", completedMin: nil, measurements: "{}", state: "running")
        XCTAssertEqual(try measurementRows(), [], "a running operation has no measurement rows")
        try db.run("""
            UPDATE operations SET state = 'completed', completed_ms = ?, measurements = '{"weldCurrent":11.7,"spotCount":42,"note":"x"}'
            WHERE id = 'A'
            """, [.integer(Self.t0)])
        XCTAssertEqual(try measurementRows(), ["spotCount=42.0@1", "weldCurrent=11.7@1"], "numbers only, one row each")
        try db.run(#"UPDATE operations SET measurements = '{"weldCurrent":10.5}' WHERE id = 'A'"#)
        XCTAssertEqual(try measurementRows(), ["weldCurrent=10.5@1"], "an update replaces the rows")
        try insert("B", completedMin: 1, measurements: #"{"weldCurrent":12}"#)
        XCTAssertEqual(try measurementRows(), ["weldCurrent=10.5@1", "weldCurrent=12.0@2"])
        try db.run("UPDATE operations SET state = 'aborted' WHERE id = 'B'")
        XCTAssertEqual(try measurementRows(), ["weldCurrent=10.5@1"], "only completed operations are indexed")
        try db.run("DELETE FROM operations WHERE id = 'A'")
        XCTAssertEqual(try measurementRows(), [])
    }

    func testMigrationIndexesOperationsStoredBefore() throws {
        let folder = makeTempDirectory(self, prefix: "opquery-old")
        let old = try Database(path: folder.appendingPathComponent("old.sqlite").path)
        defer { old.close() }
        try Migrator(groups: [GenealogySchema.migrations]).migrate(old)
        try old.run("""
            INSERT INTO operations (id, vehicle_id, station, process, started_ms, completed_ms, state, result, measurements)
            VALUES ('X', 'V9', 'WELD-01', 'welding', 1, 2, 'completed', 'ok', '{"weldCurrent":11.9}')
            """)
        try Migrator(groups: [GenealogySchema.migrations, OperationQuery.migrations]).migrate(old)
        let rows = try OperationQuery.operations(OperationFilter(signal: "weldCurrent", min: 11.5), limit: 10, in: old)
        XCTAssertEqual(rows.map(\.id), ["X"])
    }

    func testEachFilter() throws {
        try insert("w1", vehicle: "V1", completedMin: 10, measurements: #"{"weldCurrent":11.7,"weldVoltage":30}"#, lots: #"["L1"]"#)
        try insert("w2", vehicle: "V2", completedMin: 40, result: "nok", measurements: #"{"weldCurrent":10.2}"#)
        try insert("w3", vehicle: "V1", station: "WELD-02", completedMin: 80, measurements: #"{"weldCurrent":11.9}"#)
        try insert("p1", vehicle: "V1", station: "PAINT-01", process: "paint", completedMin: 120, measurements: #"{"filmThickness":95}"#)
        try insert("r1", vehicle: "V3", completedMin: nil, result: nil, state: "running")
        try insert("a1", vehicle: "V3", completedMin: 50, result: nil, state: "aborted")

        XCTAssertEqual(try ids(OperationFilter()), ["p1", "w3", "w2", "w1"], "completed only, newest completion first")
        XCTAssertEqual(try ids(OperationFilter(station: "WELD-01")), ["w2", "w1"])
        XCTAssertEqual(try ids(OperationFilter(process: "welding")), ["w3", "w2", "w1"])
        XCTAssertEqual(try ids(OperationFilter(vehicle: "V1")), ["p1", "w3", "w1"])
        XCTAssertEqual(try ids(OperationFilter(result: .nok)), ["w2"])
        XCTAssertEqual(try ids(OperationFilter(result: .ok)), ["p1", "w3", "w1"])
        let at = { (minutes: Int64) in Date(timeIntervalSince1970: Double(Self.t0 + minutes * 60_000) / 1000) }
        XCTAssertEqual(try ids(OperationFilter(from: at(40), to: at(80))), ["w3", "w2"], "both bounds inclusive")
        XCTAssertEqual(try ids(OperationFilter(from: at(41))), ["p1", "w3"])
        XCTAssertEqual(try ids(OperationFilter(to: at(10))), ["w1"])
        XCTAssertEqual(try ids(OperationFilter(signal: "weldCurrent", min: 11.5)), ["w3", "w1"], "weld current above 11.5 kA")
        XCTAssertEqual(try ids(OperationFilter(signal: "weldCurrent", max: 11)), ["w2"])
        XCTAssertEqual(try ids(OperationFilter(signal: "weldCurrent", min: 10.2, max: 11.7)), ["w2", "w1"], "range bounds inclusive")
        XCTAssertEqual(try ids(OperationFilter(signal: "filmThickness")), ["p1"], "a signal alone: operations that carry it")
        XCTAssertEqual(try ids(OperationFilter(station: "WELD-01", signal: "weldCurrent", min: 11.5)), ["w1"])
        XCTAssertEqual(try ids(OperationFilter(station: "WELD-01", from: at(0), to: at(60))), ["w2", "w1"])
        XCTAssertEqual(try ids(OperationFilter(signal: "nothing")), [])
        XCTAssertEqual(try ids(OperationFilter(), limit: 2), ["p1", "w3"])

        let row = try XCTUnwrap(OperationQuery.operations(OperationFilter(station: "WELD-01", result: .ok), limit: 1, in: db).first)
        var out = [UInt8]()
        row.writeJSON(into: &out)
        let json = try JSON.parse(bytes: out)
        XCTAssertEqual(json.objectValue?.map(\.0), ["id", "vehicleId", "station", "process", "startedAt", "completedAt", "result",
                                                     "measurements", "lots", "operator", "attempt", "energyKWh"])
        XCTAssertEqual(json["measurements"], .obj([("weldCurrent", .double(11.7)), ("weldVoltage", .int(30))]))
        XCTAssertEqual(json["lots"], .array([.string("L1")]))
        XCTAssertEqual(json["completedAt"], .string("2026-09-21T14:23:20.000Z"))
        XCTAssertEqual(json["energyKWh"], .null)
    }

    /// A dense measurement range is read through the operations' own index with the measurement
    /// checked on each row; a sparse one through the measurement index. Both give the same rows.
    func testDenseAndSparseRangesAgree() throws {
        try db.transaction {
            for i in 0..<(OperationQuery.measurementRangeLimit + 500) {
                try insert("o\(i)", station: i % 2 == 0 ? "WELD-01" : "WELD-02", completedMin: Int64(i),
                           measurements: #"{"weldCurrent":\#(10 + Double(i % 100) / 100)}"#)
            }
        }
        let dense = OperationFilter(station: "WELD-01", signal: "weldCurrent", min: 10.0, max: 10.98)
        let denseSQL = try OperationQuery.query(dense, limit: 50, in: db).sql
        XCTAssertTrue(denseSQL.contains("json_extract"), "a dense range is checked per operation")
        let sparse = OperationFilter(station: "WELD-01", signal: "weldCurrent", min: 10.98, max: 10.98)
        XCTAssertFalse(try OperationQuery.query(sparse, limit: 50, in: db).sql.contains("json_extract"), "a sparse range uses the index")
        // Same answer both ways: compute the dense one by brute force.
        let all = try db.query("SELECT id, station, measurements FROM operations ORDER BY completed_ms DESC, rowid DESC") {
            ($0.text(0) ?? "", $0.text(1) ?? "", (try? JSON.parse($0.text(2) ?? "{}"))?["weldCurrent"]?.doubleValue ?? -1)
        }
        let expected = all.filter { $0.1 == "WELD-01" && $0.2 >= 10.0 && $0.2 <= 10.98 }.prefix(50).map(\.0)
        XCTAssertEqual(try ids(dense, limit: 50), Array(expected))
        let expectedSparse = all.filter { $0.1 == "WELD-01" && $0.2 == 10.98 }.prefix(50).map(\.0)
        XCTAssertEqual(try ids(sparse, limit: 50), Array(expectedSparse))
    }

    func plan(_ filter: OperationFilter) throws -> String {
        let query = try OperationQuery.query(filter, limit: 100, in: db)
        return try db.query("EXPLAIN QUERY PLAN " + query.sql, query.arguments) { $0.text(3) ?? "" }.joined(separator: " | ")
    }

    func testPlansUseTheIndexes() throws {
        let from = Date(timeIntervalSince1970: 1_790_000_000), to = from.addingTimeInterval(3600)
        let window = try plan(OperationFilter(station: "WELD-01", from: from, to: to))
        XCTAssertTrue(window.contains("operations_station_completed"), window)
        XCTAssertFalse(window.contains("TEMP B-TREE"), "no sort: the index gives newest first (\(window))")
        let newest = try plan(OperationFilter())
        XCTAssertTrue(newest.contains("operations_completed"), newest)
        XCTAssertFalse(newest.contains("TEMP B-TREE"), newest)
        let nok = try plan(OperationFilter(result: .nok))
        XCTAssertTrue(nok.contains("operations_nok_completed"), nok)
        let vehicle = try plan(OperationFilter(vehicle: "V1"))
        XCTAssertTrue(vehicle.contains("operations_vehicle"), vehicle)
        let range = try plan(OperationFilter(signal: "weldCurrent", min: 11.5))
        XCTAssertTrue(range.contains("SEARCH m USING PRIMARY KEY (signal=? AND value>"), "one seek into the range (\(range))")
    }
}
