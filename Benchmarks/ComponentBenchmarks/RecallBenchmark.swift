import BenchSupport
import Foundation
import PlantModel
import PlantStore
import Runtime
import Storage

/// Recall query latency (`PartStore.recall`, README "Key parts, recall and the quality gate") on a
/// plant-sized store: vehicles with an order, an engine and a panel lot each, and
/// `operationsPerVehicle` operations each. For `tools/bench` and tests.
public enum RecallBenchmark {
    public struct Query: Sendable, CustomStringConvertible {
        public var name: String
        /// Vehicles matched (`count`).
        public var matched: Int
        public var p50Ms: Double
        public var p99Ms: Double
        public var maxMs: Double

        public var description: String {
            String(format: "%@ (%d vehicles) p50 %.1f ms p99 %.1f ms max %.1f ms", name, matched, p50Ms, p99Ms, maxMs)
        }
    }

    public struct Result: Sendable, CustomStringConvertible {
        public var vehicles: Int
        public var operations: Int
        public var insertSeconds: Double
        public var queries: [Query]

        public var description: String {
            String(format: "recall: %d vehicles / %d operations stored in %.1f s; ", vehicles, operations, insertSeconds)
                + queries.map(\.description).joined(separator: "; ")
        }
    }

    static let stations = ["WELD-01", "WELD-02", "PAINT-01", "ASSY-01", "ASSY-02", "INSP-01", "INSP-02", "AUDIT-01", "TEST-01", "SHIP-01"]
    /// Engine part numbers in turn: each matches vehicles / `partNumbers` vehicles.
    static let partNumbers = 20
    static let models = ["D90-2WD", "D90-4WD", "E20-EV", "E30-EV"]

    /// Fills a new database at `path`, then times each recall `repeats` times (default page of
    /// 10,000 vehicles). The file must not exist; it is left in place for the caller to delete.
    public static func run(path: String, vehicles: Int = 1_000_000, operationsPerVehicle: Int = 10,
                           repeats: Int = 20) throws -> Result {
        let writer = try Database(path: path)
        defer { writer.close() }
        try Migrator(groups: [GenealogySchema.migrations, OrderStore.migrations, PartStore.migrations]).migrate(writer)
        try writer.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF")
        let baseMs: Int64 = 1_795_000_000_000
        let begin = Monotonic.nanoseconds()
        var n = 0
        while n < vehicles {
            let end = min(vehicles, n + 5_000)
            try writer.transaction {
                for v in n..<end { try insert(vehicle: v, operations: operationsPerVehicle, baseMs: baseMs, into: writer) }
            }
            n = end
        }
        try writer.execute("ANALYZE")
        let insertSeconds = Double(Monotonic.nanoseconds() - begin) / 1e9

        let reader = try Database(path: path, mode: .readOnly)
        defer { reader.close() }
        // One hour at WELD-01 in the middle of the run (vehicles start 60 s apart).
        let mid = baseMs + Int64(vehicles / 2) * 60_000
        let from = Date(timeIntervalSince1970: Double(mid) / 1000), to = Date(timeIntervalSince1970: Double(mid + 3_600_000) / 1000)
        let cases: [(String, () throws -> JSON)] = [
            ("partNumber", { try recall(reader, partNumber: "ENG-07") }),
            ("serial", { try recall(reader, serial: serial(vehicles / 3)) }),
            ("lot", { try recall(reader, lot: lot(vehicles / 2)) }),
            ("station+1 h", { try recall(reader, stations: ["WELD-01"], from: from, to: to) }),
            ("partNumber+model", { try recall(reader, partNumber: "ENG-07", model: "E30-EV") }),
            ("lot+station+1 h", { try recall(reader, lot: lot(vehicles / 2), stations: ["WELD-01"], from: from, to: to) }),
        ]
        var queries: [Query] = []
        for (name, body) in cases {
            var times: [Double] = []
            var matched = 0
            for _ in 0..<max(1, repeats) {
                let start = Monotonic.nanoseconds()
                let json = try body()
                _ = json.serialized()
                times.append(Double(Monotonic.nanoseconds() - start) / 1e6)
                matched = Int(json["count"]?.doubleValue ?? 0)
            }
            times.sort()
            queries.append(Query(name: name, matched: matched, p50Ms: percentile(sorted: times, 0.5),
                                 p99Ms: percentile(sorted: times, 0.99), maxMs: times.last ?? 0))
        }
        return Result(vehicles: vehicles, operations: vehicles * operationsPerVehicle, insertSeconds: insertSeconds, queries: queries)
    }

    static func recall(_ db: Database, lot: String? = nil, partNumber: String? = nil, serial: String? = nil, stations: [String] = [],
                       from: Date? = nil, to: Date? = nil, model: String? = nil) throws -> JSON {
        try PartStore.recall(lot: lot, partNumber: partNumber, serial: serial, stations: stations, from: from, to: to, model: model,
                             criteria: .obj([]), limit: 1_000, in: db)
    }

    static func vin(_ n: Int) -> String { "VIN" + String(10_000_000 + n) }
    static func serial(_ n: Int) -> String { "ENG-S" + String(10_000_000 + n) }
    static func lot(_ n: Int) -> String { "PL-" + String(n / 5_000) }

    private static func insert(vehicle v: Int, operations: Int, baseMs: Int64, into db: Database) throws {
        let id = vin(v)
        let t0 = baseMs + Int64(v) * 60_000
        let model = models[v % models.count]
        try db.run("""
            INSERT INTO vehicles (vehicle_id, status, current_station, first_seen_ms, last_seen_ms, last_route_index)
            VALUES (?, 'completed', NULL, ?, ?, 4)
            """, [.text(id), .integer(t0), .integer(t0 + Int64(operations) * 70_000)])
        for i in 0..<operations {
            let station = stations[i % stations.count]
            let started = t0 + Int64(i) * 70_000
            try db.run("""
                INSERT INTO operations (id, vehicle_id, station, process, started_ms, completed_ms, state, result)
                VALUES (?, ?, ?, 'p', ?, ?, 'completed', 'ok')
                """, [.text("\(station):\(id):\(i)"), .text(id), .text(station), .integer(started), .integer(started + 55_000)])
        }
        try db.run("INSERT INTO lot_links (lot, vehicle_id, station, at_ms) VALUES (?, ?, 'WELD-01', ?)",
                   [.text(lot(v)), .text(id), .integer(t0 + 55_000)])
        try db.run("""
            INSERT INTO orders (order_id, model, status, vehicle_id, created_ms) VALUES (?, ?, 'completed', ?, ?)
            """, [.text("SO-\(v)"), .text(model), .text(id), .integer(t0)])
        let number = "ENG-" + (v % partNumbers < 10 ? "0" : "") + String(v % partNumbers)
        try db.run("""
            INSERT INTO part_bindings (id, part_type, serial, part_number, vehicle_id, station, bound_ms, bound_by)
            VALUES (?, 'engine', ?, ?, ?, 'ASSY-01', ?, 'plc')
            """, [.integer(Int64(v + 1)), .text(serial(v)), .text(number), .text(id), .integer(t0 + 3 * 70_000)])
    }
}
