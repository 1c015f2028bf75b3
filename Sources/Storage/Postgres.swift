import CLibPQ
import Foundation

/// An error from PostgreSQL (libpq): the server's SQLSTATE and message, or libpq's own message
/// when the connection failed.
///
/// ``kind`` sorts it into the same broad reasons as ``SQLiteError/Kind`` so that callers (the
/// event log's retry, the read pool) treat both stores alike.
public struct PostgresError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The five-character SQLSTATE (`23505` unique violation …); empty for a connection failure.
    public let sqlState: String
    public let message: String
    /// The statement that failed, if any.
    public let sql: String?
    /// What was being done (`connect postgresql://mes@db1:5432/mes` …), never with a password.
    public let context: String

    public init(sqlState: String, message: String, sql: String? = nil, context: String = "") {
        self.sqlState = sqlState
        self.message = message.trimmingCharacters(in: .whitespacesAndNewlines)
        self.sql = sql
        self.context = context
    }

    /// True when the connection is gone or could not be made (SQLSTATE class 08, 57P0x, or none).
    public var isConnectionFailure: Bool {
        sqlState.isEmpty || sqlState.hasPrefix("08") || sqlState.hasPrefix("57P")
    }

    /// The broad reason, in SQLite's terms.
    public var kind: SQLiteError.Kind {
        if isConnectionFailure { return .ioError }
        switch sqlState {
        case "25006": return .readOnly                         // read_only_sql_transaction (a standby)
        case "40001", "40P01", "55P03": return .busy           // serialization, deadlock, lock not available
        case "53100", "53200", "53300": return .full           // disk full, out of memory, too many connections
        case "42P18": return .misuse
        default: break
        }
        if sqlState.hasPrefix("23") { return .constraint }
        if sqlState.hasPrefix("42") || sqlState.hasPrefix("22") || sqlState.hasPrefix("P0") { return .sqlError }
        if sqlState.hasPrefix("XX") { return .corrupt }
        if sqlState.hasPrefix("58") { return .ioError }
        return .other
    }

    /// True when the database cannot take writes now (as ``SQLiteError/isStorageFailure``): the
    /// connection is gone, the server is a read-only standby or out of space, a lock timed out.
    public var isStorageFailure: Bool {
        switch kind {
        case .busy, .locked, .readOnly, .full, .corrupt, .cannotOpen, .ioError, .other: return true
        case .constraint, .sqlError, .misuse, .schemaTooNew: return false
        }
    }

    public var description: String {
        var text = context.isEmpty ? "" : "\(context): "
        text += message
        if !sqlState.isEmpty { text += " (SQLSTATE \(sqlState))" }
        if let sql { text += " [sql: \(sql.count > 200 ? String(sql.prefix(200)) + "…" : sql)]" }
        return text
    }
}

/// True when `error` means storage cannot write now (either store), as opposed to a bad statement
/// or a failed constraint.
public func isStorageFailure(_ error: any Error) -> Bool {
    if let error = error as? SQLiteError { return error.isStorageFailure }
    if let error = error as? PostgresError { return error.isStorageFailure }
    return false
}

/// True for a PostgreSQL connection string: a `postgresql://` or `postgres://` URI (libpq's forms,
/// multi-host ones included).
public func isPostgresURL(_ path: String) -> Bool {
    path.hasPrefix("postgresql://") || path.hasPrefix("postgres://")
}

/// One libpq connection (`PGconn`): the sole owner of its handle; thread-confined like ``Database``.
///
/// Statements are prepared once per connection (`PQprepare`) under names `s1`, `s2` …; a connection
/// that broke is reset (`PQreset`, the same connection string, so a multi-host string finds the
/// current primary) before the next statement, and statements prepare again on first use
/// (``generation``).
final class PGConnection {
    private(set) var handle: OpaquePointer?
    let redactedURL: String
    /// Increases at each reset: a statement prepared in an older generation prepares again.
    private(set) var generation = 0
    private var nextName = 0

    init(url: String, readOnly: Bool) throws {
        redactedURL = Database.redacted(url)
        var connectionString = url
        // Fail fast at start and on reconnect instead of libpq's default (forever).
        if !url.contains("connect_timeout=") {
            connectionString += (url.contains("?") ? "&" : "?") + "connect_timeout=5"
        }
        guard let raw = PQconnectdb(connectionString) else {
            throw PostgresError(sqlState: "", message: "out of memory", context: "connect \(redactedURL)")
        }
        handle = raw
        guard PQstatus(raw) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(raw))
            close()
            throw PostgresError(sqlState: "", message: "cannot connect to PostgreSQL: \(message)", context: "connect \(redactedURL)")
        }
        clibpq_silence_notices(raw)
        do {
            // Integer division, text comparison and times as SQLite does them: C collation is set per
            // column by the dialect; the session only needs UTC and quiet notices.
            try exec("SET client_min_messages = warning; SET TIME ZONE 'UTC'")
            if readOnly {
                // One snapshot per read transaction (a read-only connection reads inside BEGIN … COMMIT).
                try exec("SET default_transaction_read_only = on; SET default_transaction_isolation = 'repeatable read'")
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// True when the connection is usable (not closed, not broken).
    var isHealthy: Bool { handle.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// The transaction state: idle (no transaction), in a transaction, or in a failed one.
    var transactionStatus: PGTransactionStatusType { handle.map { PQtransactionStatus($0) } ?? PQTRANS_UNKNOWN }

    /// Reconnects a broken connection (same connection string); throws when the server is still unreachable.
    func ensureConnected(_ context: String) throws -> OpaquePointer {
        guard let handle else {
            throw PostgresError(sqlState: "08003", message: "connection is closed", context: context)
        }
        if PQstatus(handle) == CONNECTION_OK { return handle }
        PQreset(handle)
        guard PQstatus(handle) == CONNECTION_OK else {
            throw PostgresError(sqlState: "08006", message: "lost the connection to PostgreSQL and cannot reconnect: \(String(cString: PQerrorMessage(handle)))",
                                context: "\(context) \(redactedURL)")
        }
        clibpq_silence_notices(handle)
        generation += 1
        return handle
    }

    /// A fresh statement name on this connection.
    func makeName() -> String {
        nextName += 1
        return "s\(nextName)"
    }

    /// Runs SQL without parameters (several statements allowed); returns its last result's affected rows.
    @discardableResult
    func exec(_ sql: String) throws -> Int {
        let handle = try ensureConnected("execute")
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, sql: sql)
        return Self.affectedRows(result)
    }

    /// Throws the error of a failed result (or of the connection when there is none).
    func check(_ result: OpaquePointer?, sql: String?, accept: [ExecStatusType] = [PGRES_COMMAND_OK, PGRES_TUPLES_OK]) throws {
        guard let result else { throw connectionError(sql: sql) }
        let status = PQresultStatus(result)
        if accept.contains(status) { return }
        throw error(of: result, sql: sql)
    }

    func error(of result: OpaquePointer, sql: String?) -> PostgresError {
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
        var message = String(cString: PQresultErrorMessage(result))
        if message.isEmpty, let handle { message = String(cString: PQerrorMessage(handle)) }
        if state.isEmpty, !isHealthy {
            return PostgresError(sqlState: "08006", message: message, sql: sql, context: redactedURL)
        }
        return PostgresError(sqlState: state, message: message, sql: sql)
    }

    func connectionError(sql: String?) -> PostgresError {
        let message = handle.map { String(cString: PQerrorMessage($0)) } ?? "connection is closed"
        return PostgresError(sqlState: isHealthy ? "" : "08006", message: message, sql: sql, context: redactedURL)
    }

    static func affectedRows(_ result: OpaquePointer?) -> Int {
        guard let result, let text = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }

    /// Copies rows into `table` (`COPY … FROM STDIN`, text format): `rows` is the COPY text, one
    /// line per row, fields separated by tabs (see ``PGCopyText``).
    func copy(into table: String, columns: [String], rows: [UInt8]) throws {
        let handle = try ensureConnected("copy")
        let sql = "COPY \(table) (\(columns.joined(separator: ", "))) FROM STDIN"
        let start = PQexec(handle, sql)
        defer { PQclear(start) }
        try check(start, sql: sql, accept: [PGRES_COPY_IN])
        let sent = rows.withUnsafeBufferPointer { buffer -> Int32 in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                PQputCopyData(handle, $0, Int32(buffer.count))
            }
        }
        guard sent == 1, PQputCopyEnd(handle, nil) == 1 else { throw connectionError(sql: sql) }
        var failure: PostgresError?
        while let result = PQgetResult(handle) {
            if failure == nil, PQresultStatus(result) != PGRES_COMMAND_OK { failure = error(of: result, sql: sql) }
            PQclear(result)
        }
        if let failure { throw failure }
    }
}

/// Builds the text of a `COPY … FROM STDIN` (text format): fields separated by tabs, rows by
/// newlines, NULL as `\N`; backslash, tab, newline and carriage return escaped.
struct PGCopyText {
    var bytes: [UInt8] = []

    mutating func field(_ value: Int64, last: Bool = false) {
        bytes.append(contentsOf: String(value).utf8)
        end(last)
    }

    mutating func field(_ value: String?, last: Bool = false) {
        if var value {
            value.withUTF8 { text in
                for byte in text {
                    switch byte {
                    case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "\\"))
                    case UInt8(ascii: "\t"): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
                    case UInt8(ascii: "\n"): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
                    case UInt8(ascii: "\r"): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
                    case 0: break // PostgreSQL text holds no NUL
                    default: bytes.append(byte)
                    }
                }
            }
        } else {
            bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "N"))
        }
        end(last)
    }

    private mutating func end(_ last: Bool) { bytes.append(last ? UInt8(ascii: "\n") : UInt8(ascii: "\t")) }
}

/// A prepared statement on a ``PGConnection``: its parameters, and the rows of its last execution.
final class PGStatement {
    let name: String
    /// The statement in PostgreSQL's dialect.
    let sql: String
    private var preparedGeneration = -1
    private var needsTypes = false
    private var preparedTypes: [UInt32] = []
    private var parameterCount = 0
    private var values: [SQLValue] = []
    private(set) var result: OpaquePointer?
    private(set) var row: Int32 = -1
    private var rows: Int32 = 0
    private var executed = false
    /// Rows changed by the last execution (INSERT, UPDATE, DELETE).
    private(set) var changes = 0
    /// Rows one at a time (`PQsetSingleRowMode`) instead of the whole result in memory (exports).
    var streaming = false
    private var streamingActive = false

    init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }

    deinit { clear() }

    /// Prepares on the server (again after a reconnect). A statement whose parameter types the
    /// server cannot infer (`SELECT ? + ?`) is prepared at its first execution instead, with the
    /// types of the values bound then (and again when they change).
    func prepare(on connection: PGConnection) throws {
        let handle = try connection.ensureConnected("prepare")
        if needsTypes {
            let types = values.map(Self.typeOID)
            guard preparedGeneration != connection.generation || types != preparedTypes else { return }
            if preparedGeneration == connection.generation {
                _ = try? connection.exec("DEALLOCATE \(name)")
            }
            let result = PQprepare(handle, name, sql, Int32(types.count), types)
            defer { PQclear(result) }
            try connection.check(result, sql: sql)
            preparedTypes = types
            parameterCount = types.count
            preparedGeneration = connection.generation
            return
        }
        guard preparedGeneration != connection.generation else { return }
        let result = PQprepare(handle, name, sql, 0, nil)
        defer { PQclear(result) }
        do {
            try connection.check(result, sql: sql)
        } catch let error as PostgresError where ["42P18", "42725"].contains(error.sqlState) {
            // Indeterminate or ambiguous parameter types: typed from the values at execution.
            needsTypes = true
            return
        }
        // Unbound parameters are NULL, as in SQLite: the count comes from the server.
        let description = PQdescribePrepared(handle, name)
        defer { PQclear(description) }
        parameterCount = description.map { Int(PQnparams($0)) } ?? 0
        preparedGeneration = connection.generation
    }

    func bind(_ value: SQLValue, at index: Int32) {
        let i = Int(index) - 1
        guard i >= 0 else { return }
        if values.count <= i { values.append(contentsOf: repeatElement(.null, count: i + 1 - values.count)) }
        values[i] = value
    }

    /// The type of a parameter bound as `value` (0: let the server decide).
    static func typeOID(_ value: SQLValue) -> UInt32 {
        switch value {
        case .null: 0
        case .integer: PGType.int8
        case .real: PGType.float8
        case .text: PGType.text
        case .blob: PGType.bytea
        }
    }

    func clearBindings() { values.removeAll(keepingCapacity: true) }

    /// Ends the current execution (frees its rows); the bindings stay.
    func clear() {
        if let result { PQclear(result) }
        result = nil
        row = -1
        rows = 0
        executed = false
        streamingActive = false
    }

    /// Ends the execution and drains a streaming one on `connection`.
    func reset(on connection: PGConnection?) {
        if streamingActive, let handle = connection?.handle {
            // Abandon the rest of a streamed result: read (and drop) what is left.
            while let rest = PQgetResult(handle) { PQclear(rest) }
        }
        clear()
    }

    /// Steps: executes on the first call, then moves to the next row; false after the last.
    func step(on connection: PGConnection) throws -> Bool {
        if !executed {
            try execute(on: connection)
            executed = true
        }
        if streamingActive { return try nextStreamedRow(on: connection) }
        row += 1
        return row < rows
    }

    private func execute(on connection: PGConnection) throws {
        try prepare(on: connection)
        let handle = try connection.ensureConnected("execute")
        if values.count < parameterCount { values.append(contentsOf: repeatElement(.null, count: parameterCount - values.count)) }
        // Text parameters (binary for blobs), typed by the server from the statement; all in one
        // buffer, each C string NUL-terminated (text cannot hold NUL in PostgreSQL: dropped).
        var arena: [CChar] = []
        var offsets: [Int?] = []
        offsets.reserveCapacity(values.count)
        var lengths: [Int32] = []
        var formats: [Int32] = []
        func text(_ string: String) {
            offsets.append(arena.count)
            for byte in string.utf8 where byte != 0 { arena.append(CChar(bitPattern: byte)) }
            arena.append(0)
            lengths.append(0)
            formats.append(0)
        }
        for value in values {
            switch value {
            case .null: offsets.append(nil); lengths.append(0); formats.append(0)
            case .integer(let v): text(String(v))
            case .real(let v): text(v.isNaN ? "NaN" : v.isInfinite ? (v > 0 ? "Infinity" : "-Infinity") : "\(v)")
            case .text(let v): text(v)
            case .blob(let v):
                offsets.append(arena.count)
                arena.append(contentsOf: v.map { CChar(bitPattern: $0) })
                lengths.append(Int32(v.count))
                formats.append(1)
            }
        }
        arena.append(0)
        func run(_ pointers: [UnsafePointer<CChar>?]) throws {
            if streaming {
                let sent = PQsendQueryPrepared(handle, name, Int32(values.count), pointers, lengths, formats, 0)
                guard sent == 1 else { throw connection.connectionError(sql: sql) }
                PQsetSingleRowMode(handle)
                streamingActive = true
                return
            }
            let result = PQexecPrepared(handle, name, Int32(values.count), pointers, lengths, formats, 0)
            do {
                try connection.check(result, sql: sql)
            } catch {
                PQclear(result)
                throw error
            }
            self.result = result
            rows = PQntuples(result)
            row = -1
            changes = PGConnection.affectedRows(result)
        }
        try arena.withUnsafeBufferPointer { buffer in
            let base = buffer.baseAddress!
            try run(offsets.map { $0.map { UnsafePointer(base + $0) } })
        }
    }

    private func nextStreamedRow(on connection: PGConnection) throws -> Bool {
        if let result { PQclear(result) }
        result = nil
        guard let handle = connection.handle, let next = PQgetResult(handle) else {
            streamingActive = false
            return false
        }
        switch PQresultStatus(next) {
        case PGRES_SINGLE_TUPLE:
            result = next
            row = 0
            rows = 1
            return true
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            PQclear(next)
            while let rest = PQgetResult(handle) { PQclear(rest) }
            streamingActive = false
            return false
        default:
            let error = connection.error(of: next, sql: sql)
            PQclear(next)
            while let rest = PQgetResult(handle) { PQclear(rest) }
            streamingActive = false
            throw error
        }
    }

    // MARK: Columns of the current row

    func isNull(_ column: Int32) -> Bool {
        guard let result, row >= 0, row < rows else { return true }
        return PQgetisnull(result, row, column) == 1
    }

    func cString(_ column: Int32) -> UnsafeMutablePointer<CChar>? {
        guard let result, row >= 0, row < rows, PQgetisnull(result, row, column) == 0 else { return nil }
        return PQgetvalue(result, row, column)
    }

    func length(_ column: Int32) -> Int {
        guard let result, row >= 0, row < rows else { return 0 }
        return Int(PQgetlength(result, row, column))
    }

    func type(_ column: Int32) -> UInt32 { result.map { PQftype($0, column) } ?? 0 }

    func int64(_ column: Int32) -> Int64 {
        guard let text = cString(column) else { return 0 }
        switch text.pointee {
        case CChar(UInt8(ascii: "t")): return 1   // boolean true
        case CChar(UInt8(ascii: "f")): return 0
        default: break
        }
        if type(column) == PGType.numeric || type(column) == PGType.float8 || type(column) == PGType.float4 {
            return Int64(strtod(text, nil))
        }
        return strtoll(text, nil, 10)
    }

    func double(_ column: Int32) -> Double {
        guard let text = cString(column) else { return 0 }
        switch text.pointee {
        case CChar(UInt8(ascii: "t")): return 1
        case CChar(UInt8(ascii: "f")): return 0
        default: return strtod(text, nil)
        }
    }

    func blob(_ column: Int32) -> [UInt8]? {
        guard let text = cString(column) else { return nil }
        if type(column) != PGType.bytea {
            return Array(UnsafeRawBufferPointer(start: text, count: length(column)))
        }
        var count = 0
        guard let bytes = text.withMemoryRebound(to: UInt8.self, capacity: length(column) + 1, { PQunescapeBytea($0, &count) }) else { return [] }
        defer { PQfreemem(bytes) }
        return Array(UnsafeBufferPointer(start: bytes, count: count))
    }

    var columnCount: Int32 { result.map { PQnfields($0) } ?? 0 }
}

/// Type OIDs of the columns the store reads (pg_type).
enum PGType {
    static let bool: UInt32 = 16
    static let bytea: UInt32 = 17
    static let int8: UInt32 = 20
    static let int2: UInt32 = 21
    static let int4: UInt32 = 23
    static let float4: UInt32 = 700
    static let float8: UInt32 = 701
    static let numeric: UInt32 = 1700
    static let text: UInt32 = 25
}
