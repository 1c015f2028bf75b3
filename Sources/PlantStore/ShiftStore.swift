import Foundation
import Runtime
import Storage

/// A past shift as stored at its end (README "Shift calendar and shift history").
public struct StoredShift: Sendable, Equatable {
    /// Plant-local date of the shift's start (`YYYY-MM-DD`).
    public var date: String
    public var shift: String
    public var start: Date
    public var end: Date
    /// The KPI document of the shift as `GET /api/kpis` wrote it at the shift's end (JSON text).
    public var document: String

    public init(date: String, shift: String, start: Date, end: Date, document: String) {
        self.date = date
        self.shift = shift
        self.start = start
        self.end = end
        self.document = document
    }
}

/// A handover note written during a shift for the next one.
public struct ShiftNote: Sendable, Equatable {
    public var id: Int64
    public var date: String
    public var shift: String
    public var user: String
    public var text: String
    public var t: Date

    public init(id: Int64, date: String, shift: String, user: String, text: String, t: Date) {
        self.id = id
        self.date = date
        self.shift = shift
        self.user = user
        self.text = text
        self.t = t
    }

    public var json: JSON {
        .obj([("id", .int(id)), ("date", .string(date)), ("shift", .string(shift)), ("user", .string(user)),
              ("text", .string(text)), ("t", .string(Timestamp.format(t)))])
    }
}

/// The tables of shift history (migration group `shifts`): each ended shift's KPI document, and
/// the handover notes. Writes run inside the event log's transaction (an `enqueue { db in … }`
/// closure or an emission's write); reads take any connection. Times are milliseconds since 1970 UTC.
public enum ShiftStore {
    public static let migrations = MigrationGroup(name: "shifts", migrations: [
        Migration(version: 1, name: "shift history, handover notes", sql: """
            CREATE TABLE shift_history (
                id INTEGER PRIMARY KEY,
                date TEXT NOT NULL,
                shift TEXT NOT NULL,
                start_ms INTEGER NOT NULL,
                end_ms INTEGER NOT NULL,
                document TEXT NOT NULL,
                UNIQUE (shift, start_ms)
            );
            CREATE INDEX shift_history_date ON shift_history (date, shift);
            CREATE INDEX shift_history_end ON shift_history (end_ms);

            CREATE TABLE shift_notes (
                id INTEGER PRIMARY KEY,
                date TEXT NOT NULL,
                shift TEXT NOT NULL,
                user TEXT NOT NULL,
                text TEXT NOT NULL,
                t_ms INTEGER NOT NULL
            );
            CREATE INDEX shift_notes_shift ON shift_notes (date, shift, id);
            """),
    ])

    // MARK: Writes

    /// Stores an ended shift. `replace`: a record of the same shift (name and start) is replaced;
    /// otherwise an existing one is kept (a record made from counters saved before a stop never
    /// replaces the one taken at the shift's end).
    public static func save(_ shift: StoredShift, replace: Bool, to db: Database) throws {
        try db.run("""
            INSERT OR \(replace ? "REPLACE" : "IGNORE") INTO shift_history (date, shift, start_ms, end_ms, document)
            VALUES (?, ?, ?, ?, ?)
            """, [.text(shift.date), .text(shift.shift), .integer(ms(shift.start)), .integer(ms(shift.end)), .text(shift.document)])
    }

    /// Appends a handover note (its id given by the caller, ``nextNoteId(_:)``).
    public static func append(_ note: ShiftNote, to db: Database) throws {
        try db.run("INSERT INTO shift_notes (id, date, shift, user, text, t_ms) VALUES (?, ?, ?, ?, ?, ?)",
                   [.integer(note.id), .text(note.date), .text(note.shift), .text(note.user), .text(note.text), .integer(ms(note.t))])
    }

    // MARK: Reads

    static let columns = "date, shift, start_ms, end_ms, document"

    /// A row of `shift_history` (the columns of ``shiftsQuery(from:to:limit:)``).
    @Sendable public static func stored(_ s: Statement) -> StoredShift {
        StoredShift(date: s.text(0) ?? "", shift: s.text(1) ?? "", start: instant(s.int64(2)), end: instant(s.int64(3)), document: s.text(4) ?? "null")
    }

    /// The stored shift of a plant-local date and name.
    public static func shift(date: String, name: String, in db: Database) throws -> StoredShift? {
        try db.query("SELECT \(columns) FROM shift_history WHERE date = ? AND shift = ? ORDER BY start_ms DESC LIMIT 1",
                     [.text(date), .text(name)], row: stored).first
    }

    /// The newest stored shift that ended at or before `end` (any, with nil).
    public static func latest(endingBy end: Date?, in db: Database) throws -> StoredShift? {
        if let end {
            return try db.query("SELECT \(columns) FROM shift_history WHERE end_ms <= ? ORDER BY end_ms DESC, id DESC LIMIT 1",
                                [.integer(ms(end))], row: stored).first
        }
        return try db.query("SELECT \(columns) FROM shift_history ORDER BY end_ms DESC, id DESC LIMIT 1", row: stored).first
    }

    /// Stored shifts, newest first, whose start lies in `from ..< to` (either may be nil).
    public static func shifts(from: Date?, to: Date?, limit: Int, in db: Database) throws -> [StoredShift] {
        try db.query(shiftsQuery(from: from, to: to, limit: limit), row: stored)
    }

    /// The query of ``shifts(from:to:limit:in:)`` (a CSV export reads it row by row); rows decode with ``stored(_:)``.
    public static func shiftsQuery(from: Date?, to: Date?, limit: Int) -> SQLQuery {
        var conditions: [String] = [], arguments: [SQLValue] = []
        if let from { conditions.append("start_ms >= ?"); arguments.append(.integer(ms(from))) }
        if let to { conditions.append("start_ms < ?"); arguments.append(.integer(ms(to))) }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return SQLQuery("SELECT \(columns) FROM shift_history \(whereClause) ORDER BY start_ms DESC, id DESC LIMIT ?",
                        arguments + [.integer(Int64(limit))])
    }

    /// Handover notes, newest first; of one shift when `date` and `shift` are given.
    public static func notes(date: String?, shift: String?, limit: Int, in db: Database) throws -> [ShiftNote] {
        try db.query(notesQuery(date: date, shift: shift, limit: limit), row: note)
    }

    /// The query of ``notes(date:shift:limit:in:)`` (a CSV export reads it row by row); rows decode with ``note(_:)``.
    public static func notesQuery(date: String?, shift: String?, limit: Int) -> SQLQuery {
        var conditions: [String] = [], arguments: [SQLValue] = []
        if let date { conditions.append("date = ?"); arguments.append(.text(date)) }
        if let shift { conditions.append("shift = ?"); arguments.append(.text(shift)) }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return SQLQuery("SELECT id, date, shift, user, text, t_ms FROM shift_notes \(whereClause) ORDER BY id DESC LIMIT ?",
                        arguments + [.integer(Int64(limit))])
    }

    /// A row of `shift_notes` (the columns of ``notesQuery(date:shift:limit:)``).
    @Sendable public static func note(_ s: Statement) -> ShiftNote {
        ShiftNote(id: s.int64(0), date: s.text(1) ?? "", shift: s.text(2) ?? "", user: s.text(3) ?? "", text: s.text(4) ?? "",
                  t: instant(s.int64(5)))
    }

    /// The id the next note gets.
    public static func nextNoteId(_ db: Database) throws -> Int64 {
        (try db.scalarInt("SELECT MAX(id) FROM shift_notes") ?? 0) + 1
    }

    static func ms(_ d: Date) -> Int64 { Int64((d.timeIntervalSince1970 * 1000).rounded()) }
    static func instant(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}
