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
        try db.query("SELECT \(columns) FROM part_bindings WHERE serial = ? ORDER BY id DESC LIMIT 10000", [.text(serial)], row: binding)
    }

    /// A vehicle's bindings, current and removed, newest first.
    public static func bindings(vehicleId: String, in db: Database) throws -> [PartBinding] {
        try db.query("SELECT \(columns) FROM part_bindings WHERE vehicle_id = ? ORDER BY id DESC LIMIT 10000", [.text(vehicleId)], row: binding)
    }

    /// The reason a vehicle went on hold last, if known.
    public static func holdReason(vehicleId: String, in db: Database) throws -> String? {
        try db.scalarText("SELECT reason FROM vehicle_holds WHERE vehicle_id = ?", [.text(vehicleId)])
    }

    private static func binding(_ row: Statement) -> PartBinding {
        PartBinding(id: row.int64(0), partType: row.text(1) ?? "", serial: row.text(2) ?? "", partNumber: row.text(3),
                    vehicleId: row.text(4) ?? "", station: row.text(5), boundAt: partDate(row.int64(6)), boundBy: row.text(7) ?? "",
                    removedAt: row.isNull(8) ? nil : partDate(row.int64(8)), removedBy: row.text(9), reason: row.text(10))
    }

    // MARK: Recall

    /// `GET /api/recall`: the vehicles that match every criterion given (README "Key parts, recall
    /// and the quality gate"). Each criterion is one indexed query; the most selective kinds run
    /// first and, once few candidates are left, the later ones are asked only about those.
    ///
    /// - `serial`, `partNumber`: parts in the vehicle now (removed ones do not match).
    /// - `lot`: a lot consumed into the vehicle (`lot_links`).
    /// - `stations` with `from`/`to`: an operation completed at one of them in that window (inclusive).
    /// - `model`: the model of the vehicle's order.
    ///
    /// Returns `{criteria, count, vehicles: [{vehicleId, orderId, model, status, matchedBy}]}`; the
    /// vehicles are sorted by id, at most `limit` of them (`count` is all of them).
    public static func recall(lot: String?, partNumber: String?, serial: String?, stations: [String], from: Date?, to: Date?,
                              model: String?, criteria: JSON, limit: Int, in db: Database) throws -> JSON {
        var queries: [RecallCriterion] = []
        if let serial { queries.append(.serial(serial)) }
        if let lot { queries.append(.lot(lot)) }
        if let partNumber { queries.append(.partNumber(partNumber)) }
        if !stations.isEmpty || from != nil || to != nil {
            queries.append(.operations(stations: stations, from: from.map(partMs) ?? Int64.min, to: to.map(partMs) ?? Int64.max))
        }
        if let model { queries.append(.model(model)) }
        var candidates: Set<String>?
        for query in queries {
            var found = Set<String>()
            let restrict = candidates.flatMap { $0.count <= 20_000 ? $0 : nil }
            try query.run(restrictTo: restrict, details: false, in: db) { vehicle, _ in found.insert(vehicle) }
            if let previous = candidates {
                candidates = previous.count < found.count ? previous.intersection(found) : found.intersection(previous)
            } else {
                candidates = found
            }
            if candidates!.isEmpty { break }
        }
        let all = (candidates ?? []).sorted()
        let page = Array(all.prefix(max(0, limit)))
        var matched: [String: [String]] = [:]
        if !page.isEmpty {
            let pageSet = Set(page)
            for query in queries {
                try query.run(restrictTo: pageSet, details: true, in: db) { vehicle, text in
                    guard let text else { return }
                    if matched[vehicle, default: []].count < 10 { matched[vehicle, default: []].append(text) }
                }
            }
        }
        var rows: [String: (status: String?, orderId: String?, model: String?)] = [:]
        if !page.isEmpty {
            let ids = JSON.array(page.map { .string($0) }).serialized()
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

/// One criterion of a recall as a query: the vehicles it matches, with a text saying why.
private enum RecallCriterion {
    case serial(String)
    case lot(String)
    case partNumber(String)
    case operations(stations: [String], from: Int64, to: Int64)
    case model(String)

    /// Calls `each` with every matching vehicle (several times when several rows match) and,
    /// with `details`, the text of the match. `restrictTo`: ask only about these vehicles.
    func run(restrictTo: Set<String>?, details: Bool, in db: Database, each: (String, String?) -> Void) throws {
        var arguments: [SQLValue] = []
        let sql: String
        switch self {
        case .serial(let serial):
            sql = "SELECT vehicle_id, part_type, part_number FROM part_bindings WHERE serial = ? AND removed_ms IS NULL"
            arguments = [.text(serial)]
        case .lot(let lot):
            sql = "SELECT vehicle_id, station FROM lot_links WHERE lot = ?"
            arguments = [.text(lot)]
        case .partNumber(let number):
            sql = "SELECT vehicle_id, part_type, serial FROM part_bindings WHERE part_number = ? AND removed_ms IS NULL"
            arguments = [.text(number)]
        case let .operations(stations, from, to):
            let stationClause = stations.isEmpty ? "" : "station IN (" + Array(repeating: "?", count: stations.count).joined(separator: ",") + ") AND "
            sql = "SELECT vehicle_id, station, completed_ms FROM operations WHERE \(stationClause)completed_ms BETWEEN ? AND ? AND state = 'completed'"
            arguments = stations.map { .text($0) } + [.integer(from), .integer(to)]
        case .model(let model):
            sql = "SELECT vehicle_id, order_id FROM orders WHERE model = ? AND vehicle_id IS NOT NULL AND status NOT IN ('planned', 'cancelled')"
            arguments = [.text(model)]
        }
        var full = sql
        if let restrictTo {
            full += " AND vehicle_id IN (SELECT value FROM json_each(?))"
            arguments.append(.text(JSON.array(restrictTo.sorted().map { .string($0) }).serialized()))
        }
        _ = try db.query(full, arguments) { row -> Void in
            let vehicle = row.text(0) ?? ""
            guard details else { return each(vehicle, nil) }
            let text: String
            switch self {
            case .serial(let serial): text = "serial \(serial) (\(row.text(1) ?? "")" + (row.text(2).map { " \($0)" } ?? "") + ")"
            case .lot(let lot): text = "lot \(lot) at \(row.text(1) ?? "")"
            case .partNumber(let number): text = "partNumber \(number) (\(row.text(1) ?? "") \(row.text(2) ?? ""))"
            case .operations: text = "\(row.text(1) ?? "") completed \(Timestamp.format(partDate(row.int64(2))))"
            case .model(let model): text = "model \(model) (order \(row.text(1) ?? ""))"
            }
            each(vehicle, text)
        }
    }
}

/// Milliseconds since 1970 UTC (as the genealogy tables store times).
func partMs(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down)) }
func partDate(_ ms: Int64) -> Date { Date(timeIntervalSince1970: (Double(ms) + 0.001) / 1000) }
