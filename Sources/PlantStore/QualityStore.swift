import Foundation
import PlantModel
import Quality
import Runtime
import Storage

/// Reads and writes of the quality tables (``QualitySchema``). Writes run inside the caller's
/// transaction (`EventLog.enqueue { db in … }`); reads on any connection.
public enum QualityStore {
    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down)) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: (Double(ms) + 0.001) / 1000) }
    static func optionalMs(_ date: Date?) -> SQLValue { date.map { .integer(ms($0)) } ?? .null }
    static func text(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
    static func clampLimit(_ limit: Int) -> Int64 { Int64(min(max(limit, 1), 10_000)) }

    // MARK: Writes

    /// Stores the engine's outputs: defects and alerts are upserted by id (alert changes also go to
    /// `alert_history`), audit lines appended. KPI and anomaly outputs are events only (ignored here).
    public static func apply(_ outputs: [QualityOutput], to db: Database) throws {
        for output in outputs {
            switch output {
            case let .defect(defect, _): try upsert(defect, db)
            case let .alert(alert, change): try upsert(alert, change: change, db)
            case let .audit(entry): _ = try append(entry, to: db)
            case let .andon(call, _): try FloorStore.upsert(call, db)
            case let .downtime(stretch): try FloorStore.upsert(stretch, db)
            case .stationKPI, .lineKPI, .anomaly: break
            }
        }
    }

    /// Inserts or replaces a defect row.
    public static func upsert(_ d: Defect, _ db: Database) throws {
        let statement = try db.cached("""
            INSERT INTO defects (id, vehicle_id, station, operation, code, description, severity, status, raised_ms, raised_by,
                                 resolved_ms, resolved_by, comment, assignment)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET status = excluded.status, resolved_ms = excluded.resolved_ms,
                resolved_by = excluded.resolved_by, comment = excluded.comment, description = excluded.description,
                severity = excluded.severity, assignment = excluded.assignment
            """)
        try statement.bind([.integer(d.id), .text(d.vehicleId), text(d.station), text(d.operation), .text(d.code),
                            .text(d.description), .text(d.severity.rawValue), .text(d.status.rawValue), .integer(ms(d.raisedAt)),
                            .text(d.raisedBy), optionalMs(d.resolvedAt), text(d.resolvedBy), text(d.comment),
                            text(d.assignment?.stored)])
        _ = try statement.step()
        statement.reset()
    }

    /// Inserts or replaces an alert's current state and adds a history row for `change`.
    public static func upsert(_ a: Alert, change: AlertChange, _ db: Database) throws {
        let statement = try db.cached("""
            INSERT OR REPLACE INTO alerts (id, key, type, severity, state, station, signal, vehicle_id, message, raised_ms,
                acknowledged_ms, acknowledged_by, comment, cleared_ms, shelved_until_ms, escalation_level, condition_active,
                momentary, announced_ms, ack_before_shelve, assignment)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try statement.bind([.integer(a.id), .text(a.key), .text(a.type.rawValue), .text(a.severity.rawValue), .text(a.state.rawValue),
                            text(a.station), text(a.signal), text(a.vehicleId), .text(a.message), .integer(ms(a.raisedAt)),
                            optionalMs(a.acknowledgedAt), text(a.acknowledgedBy), text(a.comment), optionalMs(a.clearedAt),
                            optionalMs(a.shelvedUntil), .integer(Int64(a.escalationLevel)), .integer(a.conditionActive ? 1 : 0),
                            .integer(a.momentary ? 1 : 0), .integer(ms(a.announcedAt)), .integer(a.acknowledgedBeforeShelve ? 1 : 0),
                            text(a.assignment?.stored)])
        _ = try statement.step()
        statement.reset()
        let t: Date
        switch change {
        case .raised, .escalated: t = a.announcedAt
        case .acknowledged: t = a.acknowledgedAt ?? a.announcedAt
        case .cleared: t = a.clearedAt ?? a.announcedAt
        case .overdue: t = a.assignment?.dueAt ?? a.announcedAt
        case .shelved, .unshelved, .assigned: t = max(a.announcedAt, a.acknowledgedAt ?? a.announcedAt, a.clearedAt ?? a.announcedAt)
        }
        let history = try db.cached("INSERT INTO alert_history (alert_id, t_ms, change, state, escalation_level, user) VALUES (?, ?, ?, ?, ?, ?)")
        try history.bind([.integer(a.id), .integer(ms(t)), .text(change.rawValue), .text(a.state.rawValue),
                          .integer(Int64(a.escalationLevel)), change == .acknowledged ? text(a.acknowledgedBy) : .null])
        _ = try history.step()
        history.reset()
    }

    /// Appends an audit line; returns it with its id. There is no way to change or delete one.
    @discardableResult
    public static func append(_ entry: AuditEntry, to db: Database) throws -> AuditEntry {
        _ = try db.run("INSERT INTO audit (t_ms, user, role, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
                       [.integer(ms(entry.t)), .text(entry.user), text(entry.role?.rawValue), .text(entry.action),
                        .text(entry.target), .text(entry.detail)])
        var stored = entry
        stored.id = db.lastInsertRowID
        return stored
    }

    // MARK: Reads

    static let defectColumns = """
        id, vehicle_id, station, operation, code, description, severity, status, raised_ms, raised_by, resolved_ms, resolved_by, comment, assignment
        """

    /// A row of `defects` (the columns of ``defectsQuery(status:vehicle:station:limit:)``).
    @Sendable public static func defect(_ s: Statement) -> Defect {
        var d = Defect(id: s.int64(0), vehicleId: s.text(1) ?? "", station: s.text(2), operation: s.text(3), code: s.text(4) ?? "",
                       description: s.text(5) ?? "", severity: Severity(rawValue: s.text(6) ?? "") ?? .medium,
                       raisedAt: date(s.int64(8)), raisedBy: s.text(9) ?? "system")
        d.status = DefectStatus(rawValue: s.text(7) ?? "") ?? .open
        d.resolvedAt = s.isNull(10) ? nil : date(s.int64(10))
        d.resolvedBy = s.text(11)
        d.comment = s.text(12)
        d.assignment = Assignment(stored: s.text(13))
        return d
    }

    /// Defects newest first (`GET /api/defects?status=&vehicle=&station=`); `limit` clamped to 1…10,000.
    public static func defects(status: DefectStatus? = nil, vehicle: String? = nil, station: String? = nil, limit: Int = 100,
                               in db: Database) throws -> [Defect] {
        try db.query(defectsQuery(status: status, vehicle: vehicle, station: station, limit: Int(clampLimit(limit))), row: defect)
    }

    /// The query of ``defects(status:vehicle:station:limit:in:)`` with `limit` as given (a CSV
    /// export's may pass up to 1,000,000); rows decode with ``defect(_:)``.
    public static func defectsQuery(status: DefectStatus?, vehicle: String?, station: String?, limit: Int) -> SQLQuery {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if let status { conditions.append("status = ?"); arguments.append(.text(status.rawValue)) }
        if let vehicle { conditions.append("vehicle_id = ?"); arguments.append(.text(vehicle)) }
        if let station { conditions.append("station = ?"); arguments.append(.text(station)) }
        arguments.append(.integer(Int64(max(limit, 0))))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return SQLQuery("SELECT \(defectColumns) FROM defects \(whereClause) ORDER BY raised_ms DESC, id DESC LIMIT ?", arguments)
    }

    /// One defect, or nil.
    public static func defect(id: Int64, in db: Database) throws -> Defect? {
        try db.query("SELECT \(defectColumns) FROM defects WHERE id = ?", [.integer(id)], row: defect).first
    }

    static let alertColumns = """
        id, key, type, severity, state, station, signal, vehicle_id, message, raised_ms, acknowledged_ms, acknowledged_by, comment,
        cleared_ms, shelved_until_ms, escalation_level, condition_active, momentary, announced_ms, ack_before_shelve, assignment
        """

    /// A row of `alerts` (the columns of ``alertsQuery(filter:station:vehicle:limit:)``).
    @Sendable public static func alert(_ s: Statement) -> Alert {
        var a = Alert(id: s.int64(0), key: s.text(1) ?? "", type: AlertType(rawValue: s.text(2) ?? "") ?? .kpi,
                      severity: Severity(rawValue: s.text(3) ?? "") ?? .medium, station: s.text(5), signal: s.text(6),
                      vehicleId: s.text(7), message: s.text(8) ?? "", raisedAt: date(s.int64(9)), momentary: s.int64(17) != 0)
        a.state = AlertState(rawValue: s.text(4) ?? "") ?? .activeUnacknowledged
        a.acknowledgedAt = s.isNull(10) ? nil : date(s.int64(10))
        a.acknowledgedBy = s.text(11)
        a.comment = s.text(12)
        a.clearedAt = s.isNull(13) ? nil : date(s.int64(13))
        a.shelvedUntil = s.isNull(14) ? nil : date(s.int64(14))
        a.escalationLevel = Int(s.int64(15))
        a.conditionActive = s.int64(16) != 0
        a.announcedAt = date(s.int64(18))
        a.acknowledgedBeforeShelve = s.int64(19) != 0
        a.assignment = Assignment(stored: s.text(20))
        return a
    }

    /// Alerts newest first (`GET /api/alerts?state=&station=`; the `state` filter of docs/openapi.json;
    /// default `.open`: every alert not `cleared`). `limit` clamped to 1…10,000.
    public static func alerts(filter: AlertStateFilter = .open, station: String? = nil, vehicle: String? = nil, limit: Int = 100,
                              in db: Database) throws -> [Alert] {
        try db.query(alertsQuery(filter: filter, station: station, vehicle: vehicle, limit: Int(clampLimit(limit))), row: alert)
    }

    /// The query of ``alerts(filter:station:vehicle:limit:in:)`` with `limit` as given; rows decode with ``alert(_:)``.
    public static func alertsQuery(filter: AlertStateFilter, station: String?, vehicle: String?, limit: Int) -> SQLQuery {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if filter != .all {
            let states = filter.states
            conditions.append("state IN (\(states.map { _ in "?" }.joined(separator: ", ")))")
            arguments += states.map { .text($0.rawValue) }
        }
        if let station { conditions.append("station = ?"); arguments.append(.text(station)) }
        if let vehicle { conditions.append("vehicle_id = ?"); arguments.append(.text(vehicle)) }
        arguments.append(.integer(Int64(max(limit, 0))))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return SQLQuery("SELECT \(alertColumns) FROM alerts \(whereClause) ORDER BY raised_ms DESC, id DESC LIMIT ?", arguments)
    }

    /// One alert, or nil.
    public static func alert(id: Int64, in db: Database) throws -> Alert? {
        try db.query("SELECT \(alertColumns) FROM alerts WHERE id = ?", [.integer(id)], row: alert).first
    }

    /// An alert's changes, oldest first.
    public static func history(alertId: Int64, in db: Database) throws -> [(t: Date, change: String, state: String, escalationLevel: Int, user: String?)] {
        try db.query("SELECT t_ms, change, state, escalation_level, user FROM alert_history WHERE alert_id = ? ORDER BY seq",
                     [.integer(alertId)]) { s in (date(s.int64(0)), s.text(1) ?? "", s.text(2) ?? "", Int(s.int64(3)), s.text(4)) }
    }

    /// The audit trail newest first (`GET /api/audit?limit=`); `limit` clamped to 1…10,000.
    public static func audit(limit: Int = 100, in db: Database) throws -> [AuditEntry] {
        try db.query("SELECT id, t_ms, user, role, action, target, detail FROM audit ORDER BY id DESC LIMIT ?",
                     [.integer(clampLimit(limit))]) { s in
            AuditEntry(id: s.int64(0), t: date(s.int64(1)), user: s.text(2) ?? "", role: s.text(3).flatMap(Role.init(rawValue:)),
                       action: s.text(4) ?? "", target: s.text(5) ?? "", detail: s.text(6) ?? "")
        }
    }

    /// Defect counts by code (or by station) raised since `since`, most first (Pareto).
    public static func pareto(byStation: Bool = false, since: Date? = nil, in db: Database) throws -> [(key: String, count: Int)] {
        let column = byStation ? "station" : "code"
        return try db.query("""
            SELECT \(column), COUNT(*) AS n FROM defects WHERE raised_ms >= ? AND \(column) IS NOT NULL
            GROUP BY \(column) ORDER BY n DESC, \(column) LIMIT 1000
            """, [.integer(since.map(ms) ?? Int64.min)]) { s in (s.text(0) ?? "", Int(s.int64(1))) }
    }

    // MARK: Restart

    /// What the engine needs to continue after a restart.
    public struct OpenState: Sendable {
        public var alerts: [Alert]
        public var defects: [Defect]
        public var nextAlertId: Int64
        public var nextDefectId: Int64
    }

    /// The open alerts (not `cleared`) and open defects, and the next free ids.
    public static func loadOpen(_ db: Database) throws -> OpenState {
        let alerts = try db.query("SELECT \(alertColumns) FROM alerts WHERE state != 'cleared' ORDER BY id", row: alert)
        let defects = try db.query("SELECT \(defectColumns) FROM defects WHERE status = 'open' ORDER BY id", row: defect)
        let nextAlert = (try db.scalarInt("SELECT MAX(id) FROM alerts") ?? 0) + 1
        let nextDefect = (try db.scalarInt("SELECT MAX(id) FROM defects") ?? 0) + 1
        return OpenState(alerts: alerts, defects: defects, nextAlertId: nextAlert, nextDefectId: nextDefect)
    }

    /// Loads the open state into a fresh engine.
    public static func restore(_ engine: inout QualityEngine, from db: Database) throws {
        let state = try loadOpen(db)
        engine.restore(alerts: state.alerts, defects: state.defects, nextAlertId: state.nextAlertId, nextDefectId: state.nextDefectId)
    }

    /// Replaces the saved shift counters.
    public static func save(_ counters: ShiftCounters, to db: Database) throws {
        try save(counters, encoded: try counters.encoded(), to: db)
    }

    /// Saves shift counters whose text was encoded beforehand (``ShiftCounters/encoded()``).
    public static func save(_ counters: ShiftCounters, encoded text: String, to db: Database) throws {
        try db.run("INSERT OR REPLACE INTO shift_counters (id, shift_start_ms, taken_at_ms, data) VALUES (1, ?, ?, ?)",
                   [.integer(ms(counters.shiftStart)), .integer(ms(counters.takenAt)), .text(text)])
    }

    /// The saved shift counters, if any; throws when the row does not decode (a damaged or newer format).
    public static func shiftCounters(_ db: Database) throws -> ShiftCounters? {
        guard let text = try db.scalarText("SELECT data FROM shift_counters WHERE id = 1") else { return nil }
        return try ShiftCounters.decode(text)
    }
}
