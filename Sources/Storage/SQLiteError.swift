import CSQLite

/// An error returned by SQLite, with the SQL or the operation that produced it.
///
/// Match on ``kind``: `catch let error as SQLiteError where error.kind == .busy`.
public struct SQLiteError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The broad reason, from the primary result code.
    public enum Kind: Sendable, Equatable {
        /// Another connection holds a lock (SQLITE_BUSY) longer than the busy timeout.
        case busy
        /// A lock conflict inside this process (SQLITE_LOCKED).
        case locked
        /// The database (or its folder) cannot be written (SQLITE_READONLY).
        case readOnly
        /// The disk or the page limit is full (SQLITE_FULL).
        case full
        /// The file is damaged (SQLITE_CORRUPT) or is not a database (SQLITE_NOTADB).
        case corrupt
        /// The file cannot be opened (SQLITE_CANTOPEN).
        case cannotOpen
        /// A disk I/O error (SQLITE_IOERR).
        case ioError
        /// A constraint failed (unique, foreign key, not null, check).
        case constraint
        /// Bad SQL or an unknown table or column (SQLITE_ERROR).
        case sqlError
        /// The library was used wrongly (SQLITE_MISUSE, SQLITE_RANGE …).
        case misuse
        /// The database's schema is newer than this program knows (raised by ``Migrator``).
        case schemaTooNew
        /// Any other result code.
        case other
    }

    /// The primary result code (`SQLITE_BUSY` …), or 0 for errors raised by this module.
    public let code: Int32
    /// The extended result code (`SQLITE_READONLY_DBMOVED` …).
    public let extendedCode: Int32
    /// SQLite's message (`sqlite3_errmsg`) or ours.
    public let message: String
    /// The statement that failed, if any.
    public let sql: String?
    /// What was being done (`open /var/mes.sqlite`, `commit of 120 events` …).
    public let context: String

    public init(code: Int32, extendedCode: Int32? = nil, message: String, sql: String? = nil, context: String = "") {
        self.code = code & 0xff
        self.extendedCode = extendedCode ?? code
        self.message = message
        self.sql = sql
        self.context = context
    }

    /// An error for a database whose schema is newer than the code.
    static func schemaTooNew(_ message: String, context: String) -> SQLiteError {
        var error = SQLiteError(code: SQLITE_ERROR, message: message, context: context)
        error.forcedKind = .schemaTooNew
        return error
    }

    private var forcedKind: Kind?

    public var kind: Kind {
        if let forcedKind { return forcedKind }
        switch code {
        case SQLITE_BUSY: return .busy
        case SQLITE_LOCKED: return .locked
        case SQLITE_READONLY: return .readOnly
        case SQLITE_FULL: return .full
        case SQLITE_CORRUPT, SQLITE_NOTADB: return .corrupt
        case SQLITE_CANTOPEN: return .cannotOpen
        case SQLITE_IOERR: return .ioError
        case SQLITE_CONSTRAINT: return .constraint
        case SQLITE_ERROR: return .sqlError
        case SQLITE_MISUSE, SQLITE_RANGE: return .misuse
        default: return .other
        }
    }

    /// True when the error means the database cannot take writes now (disk full, read-only,
    /// locked, I/O failure, corruption), as opposed to a bad statement or a failed constraint.
    public var isStorageFailure: Bool {
        switch kind {
        case .busy, .locked, .readOnly, .full, .corrupt, .cannotOpen, .ioError, .other: return true
        case .constraint, .sqlError, .misuse, .schemaTooNew: return false
        }
    }

    public var description: String {
        var text = context.isEmpty ? "" : "\(context): "
        text += message
        let name = String(cString: sqlite3_errstr(extendedCode))
        if code != 0 { text += " (\(name), code \(code)/\(extendedCode))" }
        if let sql { text += " [sql: \(sql.count > 200 ? String(sql.prefix(200)) + "…" : sql)]" }
        return text
    }

    public static func == (a: SQLiteError, b: SQLiteError) -> Bool {
        a.code == b.code && a.extendedCode == b.extendedCode && a.message == b.message && a.sql == b.sql
            && a.context == b.context && a.kind == b.kind
    }
}
