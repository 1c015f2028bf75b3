import CLibPQ
import CSQLite
import Foundation

/// A value bound to or read from a statement.
public enum SQLValue: Sendable, Equatable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

extension SQLValue: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral, ExpressibleByFloatLiteral,
    ExpressibleByNilLiteral
{
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(floatLiteral value: Double) { self = .real(value) }
    public init(nilLiteral: ()) { self = .null }
}

/// One database connection: SQLite (a file path; the sole owner of its `sqlite3` handle) or
/// PostgreSQL (a `postgresql://` URI, through libpq; README "PostgreSQL").
///
/// The plant's SQL is written once, in SQLite's dialect; on PostgreSQL each statement goes
/// through ``PostgresDialect`` once, when it is prepared (and is then prepared on the server,
/// `PQprepare`, and cached per connection like SQLite's statements). ``dialect`` says which.
///
/// Thread-confined, so not `Sendable`: a connection is used by the thread that holds it (the event
/// log's writer thread, or a read connection borrowed from a ``ReadPool``); to give it to another
/// thread, pass it as `sending`. Call ``close()`` when done; `deinit` asserts it was.
public final class Database {
    /// How a connection is opened.
    public enum Mode: Sendable {
        /// Read and write; the file and its parent folders are created if missing.
        case readWrite
        /// Read only (`query_only` as well).
        case readOnly
    }

    /// Connection settings.
    public struct Options: Sendable {
        /// How long a statement waits for another connection's lock before SQLITE_BUSY.
        public var busyTimeoutMs: Int32 = 5000
        /// How long opening waits for a lock held by another process before failing.
        public var openLockTimeoutMs: Int32 = 2000
        /// `PRAGMA synchronous` for read-write connections: `NORMAL` (default) or `FULL`.
        ///
        /// In WAL mode with NORMAL, a commit appends the transaction's frames to the WAL file with
        /// `write()` and returns; the WAL is fsynced at checkpoints. Once `write()` returns the data
        /// is in the kernel's page cache, which outlives the process: a transaction that returned
        /// from COMMIT survives kill -9 (and any crash of this process). Only an OS crash or power
        /// loss can lose the last commits, which is out of scope. FULL adds an fsync per commit.
        public var synchronous: String = "NORMAL"
        public init() {}
    }

    public let path: String
    public let mode: Mode
    /// Which SQL this connection speaks (the SQL given to it is always SQLite's; see ``PostgresDialect``).
    public let dialect: SQLDialect
    /// True for a PostgreSQL connection.
    public var isPostgres: Bool { dialect == .postgres }
    private var handle: OpaquePointer?
    /// The PostgreSQL connection (nil for SQLite).
    let pg: PGConnection?
    /// Statements in PostgreSQL's dialect, by their SQLite text (PostgreSQL only).
    private var translations: [String: String] = [:]
    /// Unique keys per table (primary key first), for `INSERT OR REPLACE` (PostgreSQL only).
    private var uniqueKeys: [String: [[String]]] = [:]
    private var cache: [String: Statement] = [:]
    /// The closure behind ``setWALCommitHook(_:)``, kept alive while SQLite holds a pointer to it.
    private var walHook: WALHookBox?

    /// Opens (and for `.readWrite` creates) the database at `path`.
    ///
    /// A read-write connection is put in WAL mode with foreign keys on. Throws a ``SQLiteError``
    /// naming the path: `.cannotOpen` (bad path), `.readOnly` (the file cannot be written),
    /// `.busy` (another process holds an exclusive lock), `.corrupt` (not a database).
    ///
    /// A `postgresql://` or `postgres://` URI (libpq's, multi-host strings included) opens a
    /// PostgreSQL connection instead; it throws a ``PostgresError`` naming the server (never the
    /// password) with libpq's message when it cannot connect. A read-only PostgreSQL connection
    /// reads each transaction in one snapshot (repeatable read).
    public init(path: String, mode: Mode = .readWrite, options: Options = Options()) throws {
        self.path = path
        self.mode = mode
        if isPostgresURL(path) {
            dialect = .postgres
            pg = try PGConnection(url: path, readOnly: mode == .readOnly)
            return
        }
        dialect = .sqlite
        pg = nil
        let context = "open \(path)"
        if mode == .readWrite {
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty && !FileManager.default.fileExists(atPath: folder) {
                do {
                    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                } catch {
                    throw SQLiteError(code: SQLITE_CANTOPEN, message: "cannot create folder \(folder): \(error.localizedDescription)", context: context)
                }
            }
        }
        var flags = mode == .readWrite ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) : SQLITE_OPEN_READONLY
        flags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        var raw: OpaquePointer?
        let rc = sqlite3_open_v2(path, &raw, flags, nil)
        if rc != SQLITE_OK {
            let message = raw.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            let extended = raw.map { sqlite3_extended_errcode($0) } ?? rc
            sqlite3_close_v2(raw)
            throw SQLiteError(code: rc, extendedCode: extended, message: "cannot open database file: \(message)", context: context)
        }
        handle = raw
        do {
            try configure(options: options, context: context)
        } catch {
            close()
            throw error
        }
    }

    private func configure(options: Options, context: String) throws {
        guard let handle else { return }
        sqlite3_extended_result_codes(handle, 1)
        // Short timeout while probing the file: a lock held by another process must give a clear
        // error at start, not a long hang.
        sqlite3_busy_timeout(handle, options.openLockTimeoutMs)
        do {
            // Reads the header: fails on a file that is not a database or is exclusively locked.
            _ = try scalarInt("SELECT count(*) FROM sqlite_master")
        } catch let error as SQLiteError {
            throw Self.explain(error, path: path, lockTimeoutMs: options.openLockTimeoutMs)
        }
        if mode == .readWrite {
            if sqlite3_db_readonly(handle, "main") == 1 {
                throw SQLiteError(code: SQLITE_READONLY, message: "database file \(path) is read-only (check its permissions and its folder's)", context: context)
            }
            do {
                let journal = try scalarText("PRAGMA journal_mode = WAL")
                if journal?.lowercased() != "wal" {
                    throw SQLiteError(code: SQLITE_ERROR, message: "cannot switch \(path) to WAL mode (journal_mode is \(journal ?? "unknown"))", context: context)
                }
                try execute("PRAGMA synchronous = \(options.synchronous == "FULL" ? "FULL" : "NORMAL")")
                try execute("PRAGMA foreign_keys = ON")
            } catch let error as SQLiteError {
                throw Self.explain(error, path: path, lockTimeoutMs: options.openLockTimeoutMs)
            }
        } else {
            try execute("PRAGMA query_only = ON")
        }
        sqlite3_busy_timeout(handle, options.busyTimeoutMs)
    }

    static func explain(_ error: SQLiteError, path: String, lockTimeoutMs: Int32) -> SQLiteError {
        let context = "open \(path)"
        switch error.kind {
        case .busy, .locked:
            return SQLiteError(code: error.code, extendedCode: error.extendedCode,
                               message: "database file \(path) is locked by another connection or process (waited \(lockTimeoutMs) ms): \(error.message)",
                               sql: error.sql, context: context)
        case .corrupt:
            return SQLiteError(code: error.code, extendedCode: error.extendedCode,
                               message: "\(path) is not a usable SQLite database: \(error.message)", sql: error.sql, context: context)
        case .readOnly:
            return SQLiteError(code: error.code, extendedCode: error.extendedCode,
                               message: "database file \(path) cannot be written: \(error.message)", sql: error.sql, context: context)
        default:
            return error
        }
    }

    deinit {
        assert(handle == nil && pg?.handle == nil, "Database \(Database.redacted(path)) was not closed")
        if handle != nil || pg?.handle != nil { close() }
    }

    /// `path` for messages and logs: a PostgreSQL URI without its password (a file path as is).
    public static func redacted(_ path: String) -> String {
        guard isPostgresURL(path), let scheme = path.range(of: "://") else { return path }
        let rest = path[scheme.upperBound...]
        // user:password@host… → user:***@host… (only the part before the first '/' or '?').
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var authority = String(rest[..<authorityEnd])
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            if let colon = userInfo.firstIndex(of: ":") {
                authority = String(userInfo[..<colon]) + ":***" + authority[at...]
            }
        }
        var tail = String(rest[authorityEnd...])
        // A password given as a parameter (…?password=secret).
        if let range = tail.range(of: "password=") {
            let end = tail[range.upperBound...].firstIndex(of: "&") ?? tail.endIndex
            tail.replaceSubrange(range.upperBound..<end, with: "***")
        }
        return String(path[..<scheme.upperBound]) + authority + tail
    }

    /// Sets how long statements wait for another connection's lock before SQLITE_BUSY (SQLite only).
    public func setBusyTimeout(milliseconds: Int32) {
        if let handle { sqlite3_busy_timeout(handle, milliseconds) }
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { pg.map { $0.handle == nil } ?? (handle == nil) }

    /// Finalizes cached statements and closes the handle. Safe to call twice.
    public func close() {
        if let pg {
            for statement in cache.values { statement.finalize() }
            cache.removeAll()
            pg.close()
            return
        }
        guard let handle else { return }
        for statement in cache.values { statement.finalize() }
        cache.removeAll()
        sqlite3_close_v2(handle)
        self.handle = nil
        walHook = nil
    }

    /// Calls `body` after each commit on this connection with the number of pages (frames) the WAL
    /// now holds, on the committing thread; nil removes it.
    ///
    /// This replaces SQLite's automatic checkpoint on this connection (both use the same hook): with
    /// a hook set, this connection never checkpoints by itself and `PRAGMA wal_autocheckpoint`
    /// reads 0. The event log uses it to tell its checkpointer how long the WAL is.
    public func setWALCommitHook(_ body: ((Int) -> Void)?) {
        guard let handle else { return } // PostgreSQL: nothing (its WAL is the server's)
        guard let body else {
            sqlite3_wal_hook(handle, nil, nil)
            walHook = nil
            return
        }
        let box = WALHookBox(body)
        sqlite3_wal_hook(handle, { context, _, _, pages in
            if let context { Unmanaged<WALHookBox>.fromOpaque(context).takeUnretainedValue().body(Int(pages)) }
            return SQLITE_OK
        }, Unmanaged.passUnretained(box).toOpaque())
        walHook = box
    }

    func requireHandle(_ context: String) throws -> OpaquePointer {
        guard let handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "database \(path) is closed", context: context) }
        return handle
    }

    /// The error for the last failed call on this connection.
    func lastError(_ rc: Int32, sql: String?, context: String = "") -> SQLiteError {
        guard let handle else { return SQLiteError(code: rc, message: String(cString: sqlite3_errstr(rc)), sql: sql, context: context) }
        return SQLiteError(code: rc, extendedCode: sqlite3_extended_errcode(handle),
                           message: String(cString: sqlite3_errmsg(handle)), sql: sql, context: context)
    }

    // MARK: Statements

    /// Compiles one statement. The statement must not outlive this connection's ``close()``.
    public func prepare(_ sql: String) throws -> Statement {
        if let pg {
            let statement = PGStatement(name: pg.makeName(), sql: translated(sql))
            try statement.prepare(on: pg)
            return Statement(pg: statement, database: self, sql: sql)
        }
        let handle = try requireHandle("prepare")
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &raw, nil)
        guard rc == SQLITE_OK, let raw else {
            sqlite3_finalize(raw)
            throw lastError(rc, sql: sql)
        }
        return Statement(handle: raw, database: self, sql: sql)
    }

    /// A prepared statement kept for reuse on this connection (reset and unbound before return).
    public func cached(_ sql: String) throws -> Statement {
        if let statement = cache[sql] {
            statement.reset()
            return statement
        }
        let statement = try prepare(sql)
        cache[sql] = statement
        return statement
    }

    /// Runs one or more statements without arguments (`CREATE …; CREATE …`).
    public func execute(_ sql: String) throws {
        if let pg {
            try pg.exec(translated(sql))
            return
        }
        let handle = try requireHandle("execute")
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(errorMessage)
            throw SQLiteError(code: rc, extendedCode: sqlite3_extended_errcode(handle), message: message, sql: sql)
        }
    }

    /// Runs one statement with arguments; returns the number of rows changed.
    @discardableResult
    public func run(_ sql: String, _ arguments: [SQLValue] = []) throws -> Int {
        let statement = try cached(sql)
        try statement.bind(arguments)
        while try statement.step() {}
        let changes = pg == nil ? Int(sqlite3_changes(handle)) : statement.changes
        statement.reset()
        return changes
    }

    /// Runs a query and maps each row.
    public func query<T>(_ sql: String, _ arguments: [SQLValue] = [], row: (Statement) throws -> T) throws -> [T] {
        let statement = try cached(sql)
        defer { statement.reset() }
        try statement.bind(arguments)
        var rows: [T] = []
        while try statement.step() { rows.append(try row(statement)) }
        return rows
    }

    /// The first column of the first row as an integer (nil if no row or NULL).
    public func scalarInt(_ sql: String, _ arguments: [SQLValue] = []) throws -> Int64? {
        try query(sql, arguments) { $0.isNull(0) ? nil : $0.int64(0) }.first ?? nil
    }

    /// The first column of the first row as text (nil if no row or NULL).
    public func scalarText(_ sql: String, _ arguments: [SQLValue] = []) throws -> String? {
        try query(sql, arguments) { $0.text(0) }.first ?? nil
    }

    /// The rowid of the last insert on this connection.
    /// The rowid of the last insert on this connection. On PostgreSQL the value the last insert
    /// drew from an identity column (`lastval()`; 0 when none was drawn in this session).
    public var lastInsertRowID: Int64 {
        if let pg {
            // lastval() fails when no value was drawn yet; inside a transaction that failure must
            // not abort it, so it runs in a savepoint there.
            let inTransaction = !isAutocommit
            if inTransaction { _ = try? pg.exec("SAVEPOINT mes_lastval") }
            let value = try? scalarInt("SELECT lastval()")
            if inTransaction {
                if value == nil { _ = try? pg.exec("ROLLBACK TO SAVEPOINT mes_lastval") }
                _ = try? pg.exec("RELEASE SAVEPOINT mes_lastval")
            }
            return value ?? 0
        }
        return handle.map { sqlite3_last_insert_rowid($0) } ?? 0
    }

    /// True when no transaction is open (on PostgreSQL also when the connection is broken: there
    /// is nothing to roll back then).
    public var isAutocommit: Bool {
        if let pg {
            let status = pg.transactionStatus
            return status == PQTRANS_IDLE || status == PQTRANS_UNKNOWN
        }
        return handle.map { sqlite3_get_autocommit($0) != 0 } ?? true
    }

    /// Runs SQL in PostgreSQL's dialect as is, without the dialect step (PostgreSQL only; a
    /// migration's `postgres:` text). Several statements allowed.
    public func executeNative(_ sql: String) throws {
        guard let pg else { return try execute(sql) }
        try pg.exec(sql)
    }

    /// Copies rows into `table` with `COPY … FROM STDIN` (PostgreSQL only): the event log's bulk insert.
    func copy(into table: String, columns: [String], text: PGCopyText) throws {
        guard let pg else { return }
        try pg.copy(into: table, columns: columns, rows: text.bytes)
    }

    /// `sql` in PostgreSQL's dialect (translated once per text).
    private func translated(_ sql: String) -> String {
        if let known = translations[sql] { return known }
        let text = PostgresDialect.translate(sql) { [unowned self] table in uniqueKeys(of: table) }
        translations[sql] = text
        return text
    }

    /// The unique keys of `table` (primary key first; partial indexes left out) from PostgreSQL's catalog.
    private func uniqueKeys(of table: String) -> [[String]] {
        if let known = uniqueKeys[table] { return known }
        guard let pg, let handle = pg.handle else { return [] }
        let sql = """
            SELECT i.indexrelid, a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL
            ORDER BY i.indisprimary DESC, i.indexrelid, array_position(i.indkey, a.attnum)
            """
        var keys: [[String]] = []
        var lastIndex = ""
        let result = table.withCString { name in
            var values: [UnsafePointer<CChar>?] = [name]
            return PQexecParams(handle, sql, 1, nil, &values, nil, nil, 0)
        }
        defer { PQclear(result) }
        if let result, PQresultStatus(result) == PGRES_TUPLES_OK {
            for row in 0..<PQntuples(result) {
                let index = String(cString: PQgetvalue(result, row, 0))
                let column = String(cString: PQgetvalue(result, row, 1))
                if index != lastIndex { keys.append([]); lastIndex = index }
                keys[keys.count - 1].append(column)
            }
        }
        if !keys.isEmpty { uniqueKeys[table] = keys }
        return keys
    }

    // MARK: Transactions

    /// Runs `body` in `BEGIN IMMEDIATE … COMMIT`; rolls back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if !isAutocommit { try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Runs `body` in a savepoint; on error rolls back to it (the enclosing transaction goes on).
    public func savepoint<T>(_ name: String = "sp", _ body: () throws -> T) throws -> T {
        try execute("SAVEPOINT \(name)")
        do {
            let result = try body()
            try execute("RELEASE \(name)")
            return result
        } catch {
            if !isAutocommit {
                try? execute("ROLLBACK TO \(name)")
                try? execute("RELEASE \(name)")
            }
            throw error
        }
    }
}

/// Holds a WAL hook closure for the C callback (see ``Database/setWALCommitHook(_:)``).
private final class WALHookBox {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}

/// A compiled statement of one ``Database``.
///
/// Parameters are 1-based in `bind(_:at:)`; columns are 0-based in the getters.
public final class Statement {
    private var handle: OpaquePointer?
    /// The PostgreSQL statement (nil on SQLite), and its connection (weak: a statement may outlive
    /// its `Database`, and its deinit must not touch it).
    private let pg: PGStatement?
    private weak var connection: PGConnection?
    private unowned let database: Database
    public let sql: String

    init(handle: OpaquePointer, database: Database, sql: String) {
        self.handle = handle
        self.pg = nil
        self.database = database
        self.sql = sql
    }

    init(pg: PGStatement, database: Database, sql: String) {
        self.handle = nil
        self.pg = pg
        self.connection = database.pg
        self.database = database
        self.sql = sql
    }

    deinit { finalize() }

    func finalize() {
        if let pg { pg.reset(on: connection); return }
        if let handle { sqlite3_finalize(handle) }
        handle = nil
    }

    /// Rows changed by the last execution (PostgreSQL; SQLite asks the connection).
    var changes: Int { pg?.changes ?? 0 }

    /// Rows one at a time from the server instead of the whole result at once (PostgreSQL: an
    /// export's cursor); set before the first ``step()``.
    func setStreaming(_ on: Bool) { pg?.streaming = on }

    private func check(_ rc: Int32) throws {
        if rc != SQLITE_OK { throw database.lastError(rc, sql: sql) }
    }

    /// Binds one value at a 1-based index.
    public func bind(_ value: SQLValue, at index: Int32) throws {
        if let pg { pg.bind(value, at: index); return }
        switch value {
        case .null: try check(sqlite3_bind_null(handle, index))
        case .integer(let v): try check(sqlite3_bind_int64(handle, index, v))
        case .real(let v): try check(sqlite3_bind_double(handle, index, v))
        case .text(let v): try bindText(v, at: index)
        case .blob(let v):
            try v.withUnsafeBytes { bytes in
                try check(sqlite3_bind_blob(handle, index, bytes.baseAddress, Int32(bytes.count), csqlite_transient()))
            }
        }
    }

    public func bind(_ value: Int64, at index: Int32) throws {
        if let pg { pg.bind(.integer(value), at: index); return }
        try check(sqlite3_bind_int64(handle, index, value))
    }
    public func bind(_ value: Double, at index: Int32) throws {
        if let pg { pg.bind(.real(value), at: index); return }
        try check(sqlite3_bind_double(handle, index, value))
    }
    public func bind(_ value: String?, at index: Int32) throws {
        if let pg { pg.bind(value.map { .text($0) } ?? .null, at: index); return }
        if let value { try bindText(value, at: index) }
        else { try check(sqlite3_bind_null(handle, index)) }
    }

    /// Binds text with its UTF-8 byte length, so a NUL inside it is stored too (not cut as a C string would be).
    private func bindText(_ value: String, at index: Int32) throws {
        var copy = value
        try copy.withUTF8 { bytes in
            // A zero-length text must still be text, not NULL: give SQLite a valid pointer.
            let base = bytes.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(("" as StaticString).utf8Start)
            try check(sqlite3_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), csqlite_transient()))
        }
    }

    /// Binds all parameters in order (index 1…n).
    public func bind(_ values: [SQLValue]) throws {
        for (i, value) in values.enumerated() { try bind(value, at: Int32(i + 1)) }
    }

    /// Steps once: true when a row is available, false when done.
    public func step() throws -> Bool {
        if let pg {
            guard let connection else { throw PostgresError(sqlState: "08003", message: "database is closed", sql: sql) }
            return try pg.step(on: connection)
        }
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = database.lastError(rc, sql: sql)
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Resets the statement and clears its bindings.
    public func reset() {
        if let pg {
            pg.reset(on: connection)
            pg.clearBindings()
            return
        }
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    public func isNull(_ column: Int32) -> Bool {
        if let pg { return pg.isNull(column) }
        return sqlite3_column_type(handle, column) == SQLITE_NULL
    }
    public func int64(_ column: Int32) -> Int64 {
        if let pg { return pg.int64(column) }
        return sqlite3_column_int64(handle, column)
    }
    public func double(_ column: Int32) -> Double {
        if let pg { return pg.double(column) }
        return sqlite3_column_double(handle, column)
    }
    public func text(_ column: Int32) -> String? {
        if let pg {
            guard let pointer = pg.cString(column) else { return nil }
            if pg.type(column) == PGType.bool { return pointer.pointee == CChar(UInt8(ascii: "t")) ? "1" : "0" }
            return String(decoding: UnsafeRawBufferPointer(start: pointer, count: pg.length(column)), as: UTF8.self)
        }
        guard let pointer = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: count), as: UTF8.self)
    }
    /// The column's UTF-8 text and its length in bytes (valid until the next step); nil when NULL.
    func textPointer(_ column: Int32) -> (UnsafeRawPointer, Int)? {
        if let pg {
            guard let pointer = pg.cString(column) else { return nil }
            return (UnsafeRawPointer(pointer), pg.length(column))
        }
        guard let pointer = sqlite3_column_text(handle, column) else { return nil }
        return (UnsafeRawPointer(pointer), Int(sqlite3_column_bytes(handle, column)))
    }
    public func blob(_ column: Int32) -> [UInt8]? {
        if let pg { return pg.blob(column) }
        guard let pointer = sqlite3_column_blob(handle, column) else { return isNull(column) ? nil : [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
    /// The column as an ``SQLValue`` of its stored type.
    public func value(_ column: Int32) -> SQLValue {
        if let pg {
            if pg.isNull(column) { return .null }
            switch pg.type(column) {
            case PGType.int2, PGType.int4, PGType.int8, PGType.bool: return .integer(int64(column))
            case PGType.float4, PGType.float8: return .real(double(column))
            case PGType.numeric:
                let text = text(column) ?? "0"
                if let integer = Int64(text) { return .integer(integer) }
                return .real(double(column))
            case PGType.bytea: return .blob(blob(column) ?? [])
            default: return .text(text(column) ?? "")
            }
        }
        switch sqlite3_column_type(handle, column) {
        case SQLITE_INTEGER: return .integer(int64(column))
        case SQLITE_FLOAT: return .real(double(column))
        case SQLITE_TEXT: return .text(text(column) ?? "")
        case SQLITE_BLOB: return .blob(blob(column) ?? [])
        default: return .null
        }
    }
    public var columnCount: Int32 { pg?.columnCount ?? sqlite3_column_count(handle) }
}
