import Foundation
import PlantModel
import Quality
import Runtime
import Storage

/// Andon calls and downtime stretches (migration group `andon`; README "Andon and downtime").
///
/// Rows are upserted with each change inside the event log's transaction (with the `andon` events
/// that announce them); reads take any connection. Times are integer milliseconds since 1970 UTC.
public enum FloorStore {
    public static let migrations = MigrationGroup(name: "andon", migrations: [
        Migration(version: 1, name: "andon calls and downtime", sql: """
            CREATE TABLE andon_calls (
                id INTEGER PRIMARY KEY,
                station TEXT NOT NULL,
                kind TEXT NOT NULL,
                source TEXT NOT NULL,
                state TEXT NOT NULL,
                opened_ms INTEGER NOT NULL,
                opened_by TEXT,
                comment TEXT,
                acknowledged_ms INTEGER,
                acknowledged_by TEXT,
                closed_ms INTEGER,
                closed_by TEXT,
                alert_id INTEGER,
                signal_code INTEGER
            );
            CREATE INDEX andon_calls_state ON andon_calls (state, id);
            CREATE INDEX andon_calls_station ON andon_calls (station, id);
            CREATE TABLE downtime (
                id INTEGER PRIMARY KEY,
                station TEXT NOT NULL,
                state TEXT NOT NULL,
                fault_code TEXT,
                start_ms INTEGER NOT NULL,
                end_ms INTEGER,
                reason TEXT,
                reason_by TEXT,
                comment TEXT
            );
            CREATE INDEX downtime_station ON downtime (station, start_ms);
            CREATE INDEX downtime_start ON downtime (start_ms);
            CREATE INDEX downtime_open ON downtime (id) WHERE end_ms IS NULL;
            """),
    ])

    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down)) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: (Double(ms) + 0.001) / 1000) }
    static func optionalMs(_ date: Date?) -> SQLValue { date.map { .integer(ms($0)) } ?? .null }
    static func text(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }

    // MARK: Writes

    /// Inserts or replaces an andon call.
    public static func upsert(_ c: AndonCall, _ db: Database) throws {
        let statement = try db.cached("""
            INSERT OR REPLACE INTO andon_calls (id, station, kind, source, state, opened_ms, opened_by, comment, acknowledged_ms,
                acknowledged_by, closed_ms, closed_by, alert_id, signal_code)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try statement.bind([.integer(c.id), .text(c.station), .text(c.kind), .text(c.source.rawValue), .text(c.state.rawValue),
                            .integer(ms(c.openedAt)), text(c.openedBy), text(c.comment), optionalMs(c.acknowledgedAt),
                            text(c.acknowledgedBy), optionalMs(c.closedAt), text(c.closedBy),
                            c.alertId.map { .integer($0) } ?? .null, c.signalCode.map { .integer($0) } ?? .null])
        _ = try statement.step()
        statement.reset()
    }

    /// Inserts or replaces a downtime stretch (its reason is kept as JSON, as the catalogue said then).
    public static func upsert(_ d: DowntimeStretch, _ db: Database) throws {
        let statement = try db.cached("""
            INSERT OR REPLACE INTO downtime (id, station, state, fault_code, start_ms, end_ms, reason, reason_by, comment)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try statement.bind([.integer(d.id), .text(d.station), .text(d.state.rawValue), text(d.faultCode), .integer(ms(d.start)),
                            optionalMs(d.end), text(d.reason?.json.serialized()), text(d.reasonBy), text(d.comment)])
        _ = try statement.step()
        statement.reset()
    }

    // MARK: Reads

    static let callColumns = """
        id, station, kind, source, state, opened_ms, opened_by, comment, acknowledged_ms, acknowledged_by, closed_ms, closed_by, alert_id, signal_code
        """

    /// A row of `andon_calls` (the columns of ``callsQuery(state:station:limit:)``).
    @Sendable public static func call(_ s: Statement) -> AndonCall {
        var c = AndonCall(id: s.int64(0), station: s.text(1) ?? "", kind: s.text(2) ?? "help",
                          source: AndonSource(rawValue: s.text(3) ?? "") ?? .api, openedAt: date(s.int64(5)), openedBy: s.text(6),
                          comment: s.text(7), signalCode: s.isNull(13) ? nil : s.int64(13))
        c.state = AndonState(rawValue: s.text(4) ?? "") ?? .open
        c.acknowledgedAt = s.isNull(8) ? nil : date(s.int64(8))
        c.acknowledgedBy = s.text(9)
        c.closedAt = s.isNull(10) ? nil : date(s.int64(10))
        c.closedBy = s.text(11)
        c.alertId = s.isNull(12) ? nil : s.int64(12)
        return c
    }

    /// Calls newest first, filtered by state and station; `limit` clamped to 1…10,000.
    public static func calls(state: AndonState? = nil, station: String? = nil, limit: Int = 100, in db: Database) throws -> [AndonCall] {
        try db.query(callsQuery(state: state, station: station, limit: min(max(limit, 1), 10_000)), row: call)
    }

    /// The query of ``calls(state:station:limit:in:)`` with `limit` as given (a CSV export's may
    /// pass up to 1,000,000); rows decode with ``call(_:)``.
    public static func callsQuery(state: AndonState?, station: String?, limit: Int) -> SQLQuery {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if let state { conditions.append("state = ?"); arguments.append(.text(state.rawValue)) }
        if let station { conditions.append("station = ?"); arguments.append(.text(station)) }
        arguments.append(.integer(Int64(max(limit, 0))))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return SQLQuery("SELECT \(callColumns) FROM andon_calls \(whereClause) ORDER BY id DESC LIMIT ?", arguments)
    }

    public static func call(id: Int64, in db: Database) throws -> AndonCall? {
        try db.query("SELECT \(callColumns) FROM andon_calls WHERE id = ?", [.integer(id)], row: call).first
    }

    static let downtimeColumns = "id, station, state, fault_code, start_ms, end_ms, reason, reason_by, comment"

    /// A row of `downtime` (the columns of ``downtimeQuery(station:from:to:openOnly:limit:)``).
    @Sendable public static func stretch(_ s: Statement) -> DowntimeStretch {
        var d = DowntimeStretch(id: s.int64(0), station: s.text(1) ?? "", state: MachineState(rawValue: s.text(2) ?? "") ?? .fault,
                                faultCode: s.text(3), start: date(s.int64(4)))
        d.end = s.isNull(5) ? nil : date(s.int64(5))
        if let text = s.text(6), let json = try? JSON.parse(text), let code = json["code"]?.stringValue {
            d.reason = DowntimeReason(code: code, text: json["text"]?.stringValue ?? code, textZh: json["textZh"]?.stringValue ?? code,
                                      category: json["category"]?.stringValue ?? "other", planned: json["planned"]?.boolValue ?? false)
        }
        d.reasonBy = s.text(7)
        d.comment = s.text(8)
        return d
    }

    /// Stretches newest first, filtered by station, overlap with `[from, to]` and whether they go on.
    public static func downtime(station: String? = nil, from: Date? = nil, to: Date? = nil, openOnly: Bool = false, limit: Int = 100,
                                in db: Database) throws -> [DowntimeStretch] {
        try db.query(downtimeQuery(station: station, from: from, to: to, openOnly: openOnly, limit: min(max(limit, 1), 10_000)), row: stretch)
    }

    /// The query of ``downtime(station:from:to:openOnly:limit:in:)`` with `limit` as given; rows decode with ``stretch(_:)``.
    public static func downtimeQuery(station: String?, from: Date?, to: Date?, openOnly: Bool, limit: Int) -> SQLQuery {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if let station { conditions.append("station = ?"); arguments.append(.text(station)) }
        if let from { conditions.append("(end_ms IS NULL OR end_ms >= ?)"); arguments.append(.integer(ms(from))) }
        if let to { conditions.append("start_ms <= ?"); arguments.append(.integer(ms(to))) }
        if openOnly { conditions.append("end_ms IS NULL") }
        arguments.append(.integer(Int64(max(limit, 0))))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return SQLQuery("SELECT \(downtimeColumns) FROM downtime \(whereClause) ORDER BY start_ms DESC, id DESC LIMIT ?", arguments)
    }

    public static func stretch(id: Int64, in db: Database) throws -> DowntimeStretch? {
        try db.query("SELECT \(downtimeColumns) FROM downtime WHERE id = ?", [.integer(id)], row: stretch).first
    }

    /// Gives the engine its andon calls not closed and the downtime stretches of the last days.
    public static func restore(_ engine: inout QualityEngine, from db: Database) throws {
        let calls = try db.query("SELECT \(callColumns) FROM andon_calls WHERE state <> 'closed' ORDER BY id", row: call)
        let nextCall = (try db.query("SELECT max(id) FROM andon_calls", row: { $0.isNull(0) ? 0 : $0.int64(0) }).first ?? 0) + 1
        let newest = try db.query("SELECT max(start_ms) FROM downtime", row: { $0.isNull(0) ? nil : $0.int64(0) }).first ?? nil
        var stretches: [DowntimeStretch] = []
        if let newest {
            let cutoff = newest - Int64(2 * 86_400_000)
            stretches = try db.query("SELECT \(downtimeColumns) FROM downtime WHERE end_ms IS NULL OR end_ms >= ? ORDER BY id",
                                     [.integer(cutoff)], row: stretch)
        }
        let nextStretch = (try db.query("SELECT max(id) FROM downtime", row: { $0.isNull(0) ? 0 : $0.int64(0) }).first ?? 0) + 1
        engine.restoreFloor(calls: calls, nextCallId: nextCall, stretches: stretches, nextStretchId: nextStretch)
    }
}
