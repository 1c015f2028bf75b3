import Foundation
import PlantModel
import Runtime
import Storage
import Tracking

/// Writes and reads vehicle genealogy (tables of ``GenealogySchema``).
///
/// Writes (``apply(_:to:)``) run on the event log's writer thread inside its transaction (an
/// `enqueue { db in … }` closure); reads take any connection, typically `eventLog.read { db in … }`.
/// A `Database` is used by one thread at a time; these functions keep no state of their own.
public enum GenealogyStore {
    /// How many finished (completed, scrapped) vehicles a snapshot brings back for rework checks.
    public static let snapshotFinishedVehicles = 10_000
    /// How many stamping lot counts a snapshot brings back.
    public static let snapshotLotCounts = 2_000

    // MARK: Writes

    /// Stores what the tracker reported: operations (upserted by id), lot links, vehicles, lot
    /// counts. Sequence issues are left to quality (alerts, defects). Call inside a transaction.
    public static func apply(_ outputs: [TrackingOutput], to db: Database) throws {
        for output in outputs {
            switch output {
            case .operationStarted(let op): try upsert(op, state: "running", db)
            case .operationAborted(let op): try upsert(op, state: "aborted", db)
            case .operationCompleted(let op):
                try upsert(op, state: "completed", db)
                let at = Int64(genealogyMs(op.completedAt ?? op.startedAt))
                for lot in op.lots {
                    try db.run("INSERT OR IGNORE INTO lot_links (lot, vehicle_id, station, at_ms) VALUES (?, ?, ?, ?)",
                               [.text(lot), .text(op.vehicleId), .text(op.station), .integer(at)])
                }
            case .vehicleChanged(let v): try upsert(v, db)
            case .lotCounted(let count):
                let at = genealogyMs(count.at)
                try db.run("""
                    INSERT INTO lot_counts (station, lot, count, first_ms, last_ms) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (lot, station) DO UPDATE SET count = excluded.count, last_ms = excluded.last_ms
                    """, [.text(count.station), .text(count.lotId), .integer(count.count), .integer(at), .integer(at)])
            case .sequenceIssue: break
            }
        }
    }

    /// Stores one vehicle summary (insert or update); keeps the earliest `firstSeenAt`.
    public static func upsert(_ v: VehicleSummary, _ db: Database) throws {
        try db.run("""
            INSERT INTO vehicles (vehicle_id, status, current_station, first_seen_ms, last_seen_ms, last_route_index)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (vehicle_id) DO UPDATE SET status = excluded.status, current_station = excluded.current_station,
                first_seen_ms = min(first_seen_ms, excluded.first_seen_ms), last_seen_ms = excluded.last_seen_ms,
                last_route_index = excluded.last_route_index
            """, [.text(v.vehicleId), .text(v.status.rawValue), v.currentStation.map { .text($0) } ?? .null,
                  .integer(genealogyMs(v.firstSeenAt)), .integer(genealogyMs(v.lastSeenAt)), .integer(Int64(v.lastRouteIndex))])
    }

    static func upsert(_ op: OperationRecord, state: String, _ db: Database) throws {
        let measurements = JSON.object(op.measurements.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) }).serialized()
        let lots = JSON.array(op.lots.map { .string($0) }).serialized()
        try db.run("""
            INSERT INTO operations (id, vehicle_id, station, process, started_ms, completed_ms, state, result, measurements,
                lots, shift, operator, attempt)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET completed_ms = excluded.completed_ms, state = excluded.state,
                result = excluded.result, measurements = excluded.measurements, lots = excluded.lots,
                shift = excluded.shift, operator = excluded.operator, attempt = excluded.attempt
            """, [.text(op.id), .text(op.vehicleId), .text(op.station), .text(op.process), .integer(genealogyMs(op.startedAt)),
                  op.completedAt.map { .integer(genealogyMs($0)) } ?? .null, .text(state),
                  op.result.map { .text($0.rawValue) } ?? .null, .text(measurements), .text(lots),
                  op.shift.map { .text($0) } ?? .null, op.operatorName.map { .text($0) } ?? .null,
                  .integer(Int64(op.attempt))])
    }

    // MARK: Reads

    /// Vehicles, most recently seen first (`GET /api/vehicles`), filtered by status and by the
    /// station they are at now. `limit` is clamped to 1…10,000.
    public static func vehicles(status: VehicleStatus? = nil, station: String? = nil, limit: Int = 100,
                                in db: Database) throws -> [VehicleSummary] {
        try db.query(vehiclesQuery(status: status, station: station, limit: min(max(limit, 1), 10_000)), row: summary)
    }

    /// The query of ``vehicles(status:station:limit:in:)`` with `limit` as given (a CSV export's
    /// may pass up to 1,000,000); rows decode with ``summary(_:)``.
    public static func vehiclesQuery(status: VehicleStatus?, station: String?, limit: Int) -> SQLQuery {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if let status { conditions.append("status = ?"); arguments.append(.text(status.rawValue)) }
        if let station { conditions.append("current_station = ?"); arguments.append(.text(station)) }
        arguments.append(.integer(Int64(max(limit, 0))))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return SQLQuery("""
            SELECT vehicle_id, status, current_station, first_seen_ms, last_seen_ms, last_route_index FROM vehicles
            \(whereClause) ORDER BY last_seen_ms DESC, vehicle_id DESC LIMIT ?
            """, arguments)
    }

    /// `vehicles(…)` as the contract's JSON array.
    public static func vehiclesJSON(status: VehicleStatus? = nil, station: String? = nil, limit: Int = 100,
                                    in db: Database) throws -> JSON {
        .array(try vehicles(status: status, station: station, limit: limit, in: db).map(\.json))
    }

    /// One vehicle's summary, or nil.
    public static func vehicleSummary(id: String, in db: Database) throws -> VehicleSummary? {
        try db.query("""
            SELECT vehicle_id, status, current_station, first_seen_ms, last_seen_ms, last_route_index FROM vehicles
            WHERE vehicle_id = ?
            """, [.text(id)], row: summary).first
    }

    /// A vehicle's operations in the order they started (aborted ones included, `completedAt` null).
    public static func operations(vehicleId: String, in db: Database) throws -> [(record: OperationRecord, state: String)] {
        try db.query("""
            SELECT id, vehicle_id, station, process, started_ms, completed_ms, state, result, measurements, lots, shift,
                operator, attempt FROM operations WHERE vehicle_id = ? ORDER BY started_ms, rowid
            """, [.text(vehicleId)], row: operation)
    }

    /// `GET /api/vehicles/{id}` without defects and alerts (the API adds those from quality's
    /// tables): `{vehicleId, status, currentStation, firstSeenAt, lastSeenAt, operations: [...]}`;
    /// each operation is the contract's plus `id`, `vehicleId`, `shift`, `operator`, `attempt`,
    /// `cycleTimeS`, `state`. Nil if the vehicle is unknown.
    public static func vehicle(id: String, in db: Database) throws -> JSON? {
        guard let summary = try vehicleSummary(id: id, in: db) else { return nil }
        let ops = try operations(vehicleId: id, in: db)
        guard case .object(var members) = summary.json else { return summary.json }
        members.append(("operations", .array(ops.map { op in
            guard case .object(var fields) = op.record.json else { return op.record.json }
            fields.append(("state", .string(op.state)))
            return .object(fields)
        })))
        return .object(members)
    }

    /// Recall tracing, `GET /api/lots/{lotId}`: `{lotId, vehicles, stations, counts}` where
    /// `vehicles` are those the lot went into (first linked first), `stations` every station
    /// that made (stamping) or consumed it, and `counts` the parts made per station. Nil if the
    /// lot was never seen.
    public static func lot(id: String, in db: Database) throws -> JSON? {
        let vehicles = try db.query("""
            SELECT vehicle_id FROM lot_links WHERE lot = ? GROUP BY vehicle_id ORDER BY min(at_ms), vehicle_id
            """, [.text(id)]) { $0.text(0) ?? "" }
        let made = try db.query("SELECT station, count, first_ms FROM lot_counts WHERE lot = ? ORDER BY first_ms, station",
                                [.text(id)]) { ($0.text(0) ?? "", $0.int64(1), $0.int64(2)) }
        let consumed = try db.query("""
            SELECT station, min(at_ms) FROM lot_links WHERE lot = ? GROUP BY station ORDER BY min(at_ms), station
            """, [.text(id)]) { ($0.text(0) ?? "", $0.int64(1)) }
        if vehicles.isEmpty && made.isEmpty { return nil }
        var stations: [String] = []
        for station in made.map(\.0) + consumed.map(\.0) where !stations.contains(station) { stations.append(station) }
        return .obj([
            ("lotId", .string(id)),
            ("vehicles", .array(vehicles.map { .string($0) })),
            ("stations", .array(stations.map { .string($0) })),
            ("counts", .array(made.map { .obj([("station", .string($0.0)), ("count", .int($0.1))]) })),
        ])
    }

    /// The lots that went into a vehicle (tracing the other way), in the order they were linked.
    public static func lots(vehicleId: String, in db: Database) throws -> [(lot: String, station: String)] {
        try db.query("SELECT lot, station FROM lot_links WHERE vehicle_id = ? ORDER BY at_ms, lot",
                     [.text(vehicleId)]) { ($0.text(0) ?? "", $0.text(1) ?? "") }
    }

    // MARK: Restart

    /// What a new ``Tracker`` needs after a restart: every vehicle in process or on hold, the
    /// most recently finished ones, their completed operations per station and process, the
    /// operations in progress and the latest stamping lot counts.
    public static func loadSnapshot(_ db: Database) throws -> TrackerSnapshot {
        let columns = "vehicle_id, status, current_station, first_seen_ms, last_seen_ms, last_route_index"
        var summaries = try db.query("SELECT \(columns) FROM vehicles WHERE status IN ('in_process', 'hold')", row: summary)
        summaries += try db.query("""
            SELECT \(columns) FROM vehicles WHERE status IN ('completed', 'scrapped') ORDER BY last_seen_ms DESC LIMIT ?
            """, [.integer(Int64(snapshotFinishedVehicles))], row: summary)
        var vehicles: [TrackerSnapshot.Vehicle] = []
        vehicles.reserveCapacity(summaries.count)
        for summary in summaries {
            var vehicle = TrackerSnapshot.Vehicle(summary: summary)
            let counts = try db.query("""
                SELECT station, process, count(*) FROM operations WHERE vehicle_id = ? AND state = 'completed'
                GROUP BY station, process
                """, [.text(summary.vehicleId)]) { ($0.text(0) ?? "", $0.text(1) ?? "", Int($0.int64(2))) }
            for (station, process, count) in counts {
                vehicle.completedByStation[station, default: 0] += count
                vehicle.completedProcesses.insert(process)
            }
            vehicles.append(vehicle)
        }
        let running = try db.query("""
            SELECT id, vehicle_id, station, process, started_ms, completed_ms, state, result, measurements, lots, shift,
                operator, attempt FROM operations WHERE state = 'running' ORDER BY started_ms
            """, row: operation).map(\.record)
        let lots = try db.query("""
            SELECT station, lot, count, last_ms FROM lot_counts ORDER BY last_ms DESC LIMIT ?
            """, [.integer(Int64(snapshotLotCounts))]) {
            LotCount(station: $0.text(0) ?? "", lotId: $0.text(1) ?? "", count: $0.int64(2), delta: 0, at: genealogyDate($0.int64(3)))
        }
        return TrackerSnapshot(vehicles: vehicles, operationsInProgress: running, lotCounts: lots.reversed())
    }

    // MARK: Rows

    /// A row of `vehicles` (the columns of ``vehiclesQuery(status:station:limit:)``).
    @Sendable public static func summary(_ row: Statement) -> VehicleSummary {
        VehicleSummary(vehicleId: row.text(0) ?? "", status: VehicleStatus(rawValue: row.text(1) ?? "") ?? .inProcess,
                       currentStation: row.text(2), firstSeenAt: genealogyDate(row.int64(3)),
                       lastSeenAt: genealogyDate(row.int64(4)), lastRouteIndex: Int(row.int64(5)))
    }

    private static func operation(_ row: Statement) -> (record: OperationRecord, state: String) {
        var measurements: [String: Double] = [:]
        if let text = row.text(8), text != "{}", let json = try? JSON.parse(text), let members = json.objectValue {
            for (name, value) in members { if let number = value.doubleValue { measurements[name] = number } }
        }
        var lots: [String] = []
        if let text = row.text(9), text != "[]", let json = try? JSON.parse(text), let items = json.arrayValue {
            lots = items.compactMap(\.stringValue)
        }
        let record = OperationRecord(
            id: row.text(0) ?? "", vehicleId: row.text(1) ?? "", station: row.text(2) ?? "", process: row.text(3) ?? "",
            startedAt: genealogyDate(row.int64(4)), completedAt: row.isNull(5) ? nil : genealogyDate(row.int64(5)),
            result: row.text(7).flatMap(OperationResult.init(rawValue:)), measurements: measurements, lots: lots,
            shift: row.text(10), operatorName: row.text(11), attempt: Int(row.int64(12)))
        return (record, row.text(6) ?? "completed")
    }
}
