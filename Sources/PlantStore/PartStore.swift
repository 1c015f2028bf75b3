import Foundation
import PlantModel
import Runtime
import Storage
import Tracking

/// Key part bindings, hold reasons and the recall query (migration group `parts`, README "Key
/// parts, recall and the quality gate").
///
/// Writes run inside the event log's transaction with their `part` / `vehicle` events (an
/// `enqueue { db in … }` closure); reads take any connection.
public enum PartStore {
    public static let migrations = MigrationGroup(name: "parts", migrations: [
        Migration(version: 1, name: "part bindings, hold reasons", sql: """
            CREATE TABLE part_bindings (
                id INTEGER PRIMARY KEY,
                part_type TEXT NOT NULL,
                serial TEXT NOT NULL,
                part_number TEXT,
                vehicle_id TEXT NOT NULL,
                station TEXT,
                bound_ms INTEGER NOT NULL,
                bound_by TEXT NOT NULL,
                removed_ms INTEGER,
                removed_by TEXT,
                reason TEXT
            );
            CREATE INDEX part_bindings_serial ON part_bindings (serial, id);
            CREATE INDEX part_bindings_number ON part_bindings (part_number, vehicle_id) WHERE removed_ms IS NULL;
            CREATE INDEX part_bindings_vehicle ON part_bindings (vehicle_id, id);
            CREATE INDEX part_bindings_current ON part_bindings (id) WHERE removed_ms IS NULL;

            CREATE TABLE vehicle_holds (
                vehicle_id TEXT PRIMARY KEY,
                reason TEXT NOT NULL,
                at_ms INTEGER NOT NULL
            ) WITHOUT ROWID;
            """),
        // A recall's `model` criterion checked per candidate vehicle in one index probe (the orders
        // table is the `orders` group's; this group comes after it).
        Migration(version: 2, name: "recall index on orders", sql: """
            CREATE INDEX IF NOT EXISTS orders_recall_vehicle_model ON orders (vehicle_id, model, status);
            """),
    ])

    static let columns = "id, part_type, serial, part_number, vehicle_id, station, bound_ms, bound_by, removed_ms, removed_by, reason"

    // MARK: Writes

    /// Stores each binding as changed (insert, or the removal of an existing row). Call inside a transaction.
    public static func apply(_ updates: [PartUpdate], to db: Database) throws {
        for update in updates {
            let b = update.binding
            func text(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
            try db.run("""
                INSERT INTO part_bindings (\(columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET removed_ms = excluded.removed_ms, removed_by = excluded.removed_by,
                    reason = excluded.reason
                """, [.integer(b.id), .text(b.partType), .text(b.serial), text(b.partNumber), .text(b.vehicleId), text(b.station),
                      .integer(partMs(b.boundAt)), .text(b.boundBy), b.removedAt.map { .integer(partMs($0)) } ?? .null,
                      text(b.removedBy), text(b.reason)])
        }
    }

    /// Remembers why vehicles went on hold (each summary on hold with a reason). Call inside a transaction.
    public static func applyHolds(_ vehicles: [VehicleSummary], to db: Database) throws {
        for v in vehicles where v.status == .hold {
            guard let reason = v.holdReason else { continue }
            try db.run("""
                INSERT INTO vehicle_holds (vehicle_id, reason, at_ms) VALUES (?, ?, ?)
                ON CONFLICT (vehicle_id) DO UPDATE SET reason = excluded.reason, at_ms = excluded.at_ms
                """, [.text(v.vehicleId), .text(reason), .integer(partMs(v.lastSeenAt))])
        }
    }

    // MARK: Reads

    /// The bindings still in vehicles (the part book after a restart) and the next binding id.
    public static func loadCurrent(_ db: Database) throws -> (current: [PartBinding], nextId: Int64) {
        let current = try db.query("SELECT \(columns) FROM part_bindings WHERE removed_ms IS NULL ORDER BY id", row: binding)
        let next = (try db.scalarInt("SELECT max(id) FROM part_bindings") ?? 0) + 1
        return (current, next)
    }

    /// Every binding a serial ever had, newest first (`GET /api/parts/{serial}`).
    public static func bindings(serial: String, in db: Database) throws -> [PartBinding] {
        try db.query(bindingsQuery(serial: serial, limit: 10_000), row: binding)
    }

    /// The query of ``bindings(serial:in:)`` (also streamed as CSV).
    public static func bindingsQuery(serial: String, limit: Int) -> SQLQuery {
        SQLQuery("SELECT \(columns) FROM part_bindings WHERE serial = ? ORDER BY id DESC LIMIT ?", [.text(serial), .integer(Int64(limit))])
    }

    /// A vehicle's bindings, current and removed, newest first.
    public static func bindings(vehicleId: String, in db: Database) throws -> [PartBinding] {
        try db.query("SELECT \(columns) FROM part_bindings WHERE vehicle_id = ? ORDER BY id DESC LIMIT 10000", [.text(vehicleId)], row: binding)
    }

    /// The reason a vehicle went on hold last, if known.
    public static func holdReason(vehicleId: String, in db: Database) throws -> String? {
        try db.scalarText("SELECT reason FROM vehicle_holds WHERE vehicle_id = ?", [.text(vehicleId)])
    }

    public static func binding(_ row: Statement) -> PartBinding {
        PartBinding(id: row.int64(0), partType: row.text(1) ?? "", serial: row.text(2) ?? "", partNumber: row.text(3),
                    vehicleId: row.text(4) ?? "", station: row.text(5), boundAt: partDate(row.int64(6)), boundBy: row.text(7) ?? "",
                    removedAt: row.isNull(8) ? nil : partDate(row.int64(8)), removedBy: row.text(9), reason: row.text(10))
    }

    // MARK: Recall

    /// `GET /api/recall`: the vehicles that match every criterion given (README "Key parts, recall
    /// and the quality gate"), in one SQL statement: the most selective kind of criterion drives
    /// (an index range: serial, lot, a time window at stations, part number, model, in that order)
    /// and every other one is an indexed `EXISTS` per candidate vehicle.
    ///
    /// - `serial`, `partNumber`: parts in the vehicle now (removed ones do not match).
    /// - `lot`: a lot consumed into the vehicle (`lot_links`).
    /// - `stations` with `from`/`to`: an operation completed at one of them in that window (inclusive).
    /// - `model`: the model of the vehicle's order.
    ///
    /// Returns `{criteria, count, vehicles: [{vehicleId, orderId, model, status, matchedBy}]}`; the
    /// vehicles are sorted by id, at most `limit` of them (`count` is all of them); only they get
    /// their `matchedBy` texts (one query per criterion over the page).
    public static func recall(lot: String?, partNumber: String?, serial: String?, stations: [String], from: Date?, to: Date?,
                              model: String?, criteria: JSON, limit: Int, in db: Database) throws -> JSON {
        var queries: [RecallCriterion] = []
        if let serial { queries.append(.serial(serial)) }
        if let lot { queries.append(.lot(lot)) }
        let window = !stations.isEmpty || from != nil || to != nil
        let operations = RecallCriterion.operations(stations: stations, from: from.map(partMs) ?? Int64.min, to: to.map(partMs) ?? Int64.max)
        if window && (from != nil || to != nil) { queries.append(operations) }
        if let partNumber { queries.append(.partNumber(partNumber)) }
        if window && from == nil && to == nil { queries.append(operations) }
        if let model { queries.append(.model(model)) }
        guard let drive = queries.first else {
            return .obj([("criteria", criteria), ("count", .int(0)), ("vehicles", .array([]))])
        }
        var arguments = drive.arguments
        var sql = "SELECT DISTINCT m.v FROM (\(drive.driveSQL)) m"
        for (i, query) in queries.dropFirst().enumerated() {
            sql += (i == 0 ? " WHERE " : " AND ") + query.existsSQL
            arguments += query.arguments
        }
        sql += " ORDER BY m.v"
        let all = try db.query(sql, arguments) { $0.text(0) ?? "" }
        let page = Array(all.prefix(max(0, limit)))
        var matched: [String: [String]] = [:]
        var rows: [String: (status: String?, orderId: String?, model: String?)] = [:]
        if !page.isEmpty {
            let ids = JSON.array(page.map { .string($0) }).serialized()
            for query in queries {
                try query.details(page: ids, in: db) { vehicle, text in
                    if matched[vehicle, default: []].count < 10 { matched[vehicle, default: []].append(text) }
                }
            }
            let found = try db.query("""
                SELECT j.value, (SELECT status FROM vehicles WHERE vehicle_id = j.value),
                    o.order_id, o.model
                FROM json_each(?) j
                LEFT JOIN orders o ON o.seq = (SELECT seq FROM orders WHERE vehicle_id = j.value
                    AND status NOT IN ('planned', 'cancelled') ORDER BY seq DESC LIMIT 1)
                """, [.text(ids)]) { ($0.text(0) ?? "", $0.text(1), $0.text(2), $0.text(3)) }
            for (id, status, orderId, model) in found { rows[id] = (status, orderId, model) }
        }
        return .obj([
            ("criteria", criteria),
            ("count", .int(Int64(all.count))),
            ("vehicles", .array(page.map { id in
                let row = rows[id]
                return .obj([
                    ("vehicleId", .string(id)),
                    ("orderId", .str(row?.orderId)),
                    ("model", .str(row?.model)),
                    ("status", .str(row?.status)),
                    ("matchedBy", .array((matched[id] ?? []).map { .string($0) })),
                ])
            })),
        ])
    }
}

/// One criterion of a recall: as the driving index range, as a per-vehicle `EXISTS`, and as the
/// texts saying why the vehicles of a page matched.
private enum RecallCriterion {
    case serial(String)
    case lot(String)
    case partNumber(String)
    case operations(stations: [String], from: Int64, to: Int64)
    case model(String)

    /// `SELECT vehicle_id AS v …` of the matching rows (with ``arguments``).
    var driveSQL: String { "SELECT vehicle_id AS v FROM \(table) WHERE \(condition)" }

    /// `EXISTS (…)` for the candidate `m.v` (with ``arguments``).
    var existsSQL: String { "EXISTS (SELECT 1 FROM \(table) WHERE vehicle_id = m.v AND \(condition))" }

    private var table: String {
        switch self {
        case .serial, .partNumber: "part_bindings"
        case .lot: "lot_links"
        case .operations: "operations"
        case .model: "orders"
        }
    }

    private var condition: String {
        switch self {
        case .serial: return "serial = ? AND removed_ms IS NULL"
        case .lot: return "lot = ?"
        case .partNumber: return "part_number = ? AND removed_ms IS NULL"
        case let .operations(stations, _, _):
            let stationClause = stations.isEmpty ? "" : "station IN (" + Array(repeating: "?", count: stations.count).joined(separator: ",") + ") AND "
            return "\(stationClause)completed_ms BETWEEN ? AND ? AND state = 'completed'"
        case .model: return "model = ? AND status NOT IN ('planned', 'cancelled')"
        }
    }

    var arguments: [SQLValue] {
        switch self {
        case .serial(let text), .lot(let text), .partNumber(let text), .model(let text): return [.text(text)]
        case let .operations(stations, from, to): return stations.map { .text($0) } + [.integer(from), .integer(to)]
        }
    }

    /// Calls `each` with a vehicle of the page (`ids`, a JSON array) and a text of why it matched,
    /// once per matching row.
    func details(page ids: String, in db: Database, each: (String, String) -> Void) throws {
        let columns: String
        switch self {
        case .serial, .partNumber: columns = "part_type, serial, part_number"
        case .lot: columns = "station, lot"
        case .operations: columns = "station, completed_ms"
        case .model: columns = "order_id, model"
        }
        let sql = "SELECT vehicle_id, \(columns) FROM \(table) WHERE vehicle_id IN (SELECT value FROM json_each(?)) AND \(condition)"
        _ = try db.query(sql, [.text(ids)] + arguments) { row -> Void in
            let vehicle = row.text(0) ?? ""
            let text: String
            switch self {
            case .serial:
                text = "serial \(row.text(2) ?? "") (\(row.text(1) ?? "")" + (row.text(3).map { " \($0)" } ?? "") + ")"
            case .partNumber:
                text = "partNumber \(row.text(3) ?? "") (\(row.text(1) ?? "") \(row.text(2) ?? ""))"
            case .lot: text = "lot \(row.text(2) ?? "") at \(row.text(1) ?? "")"
            case .operations: text = "\(row.text(1) ?? "") completed \(Timestamp.format(partDate(row.int64(2))))"
            case .model: text = "model \(row.text(2) ?? "") (order \(row.text(1) ?? ""))"
            }
            each(vehicle, text)
        }
    }
}

/// Milliseconds since 1970 UTC (as the genealogy tables store times).
func partMs(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down)) }
func partDate(_ ms: Int64) -> Date { Date(timeIntervalSince1970: (Double(ms) + 0.001) / 1000) }
