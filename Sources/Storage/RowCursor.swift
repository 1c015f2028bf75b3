import CSQLite
import Foundation

/// A query's text and arguments, built once and run either at once (``Database/query(_:row:)``)
/// or row by row for an export (``EventLog/rows(_:row:)``), so both read the same rows.
public struct SQLQuery: Sendable, Equatable {
    public var sql: String
    public var arguments: [SQLValue]

    public init(_ sql: String, _ arguments: [SQLValue] = []) {
        self.sql = sql
        self.arguments = arguments
    }
}

extension Database {
    /// Runs a built query and maps each row.
    public func query<T>(_ query: SQLQuery, row: (Statement) throws -> T) throws -> [T] {
        try self.query(query.sql, query.arguments, row: row)
    }
}

/// One query read a row at a time on a connection of its own, inside one read transaction, so a
/// long export sees one snapshot and never holds a connection of the shared ``ReadPool`` (whose
/// borrowers would otherwise wait behind it).
///
/// Not for concurrent use: one thread at a time calls ``next()``; a streamed answer hands the
/// cursor from one worker job to the next, never to two at once. ``close()`` (or the end of the
/// rows, or an error) finalizes the statement, ends the transaction and closes the connection;
/// `deinit` closes it too.
// @unchecked Sendable: used by one thread at a time (see above); the handle is never shared.
public final class RowCursor: @unchecked Sendable {
    private var db: Database?
    private var statement: Statement?
    /// Rows read so far.
    public private(set) var rowsRead = 0

    /// Opens a read-only connection to `path`, begins a read transaction and prepares `query`.
    /// Throws ``SQLiteError`` (cannot open, bad SQL); nothing stays open then.
    public convenience init(path: String, query: SQLQuery, options: Database.Options = Database.Options()) throws {
        try self.init(path: path, options: options) { _ in query }
    }

    /// Opens the connection, begins the read transaction, then asks `build` for the query (it may
    /// read inside the same snapshot, e.g. to size a range) and prepares it.
    public init(path: String, options: Database.Options = Database.Options(), build: (Database) throws -> SQLQuery) throws {
        let db = try Database(path: path, mode: .readOnly, options: options)
        do {
            try db.execute("BEGIN")
            let query = try build(db)
            let statement = try db.prepare(query.sql)
            statement.setStreaming(true) // PostgreSQL: a row at a time from the server, not the whole result in memory
            try statement.bind(query.arguments)
            self.statement = statement
            self.db = db
        } catch {
            if !db.isAutocommit { try? db.execute("ROLLBACK") }
            db.close()
            throw error
        }
    }

    deinit { close() }

    /// Steps to the next row and returns the statement positioned on it (valid until the next call);
    /// nil after the last row, when the cursor closes itself. A failed step closes it and throws.
    public func next() throws -> Statement? {
        guard let statement else { return nil }
        do {
            if try statement.step() {
                rowsRead += 1
                return statement
            }
        } catch {
            close()
            throw error
        }
        close()
        return nil
    }

    /// Whether the cursor is closed (all rows read, an error, or ``close()``).
    public var isClosed: Bool { db == nil }

    /// Ends the read: finalizes the statement, ends the transaction, closes the connection. Safe to call twice.
    public func close() {
        statement?.finalize()
        statement = nil
        guard let db else { return }
        if !db.isAutocommit { try? db.execute("ROLLBACK") }
        db.close()
        self.db = nil
    }
}

/// Rows of a ``RowCursor`` decoded one at a time: what a list export reads.
// @unchecked Sendable: the cursor is used by one thread at a time (see ``RowCursor``); `decode` is Sendable.
public final class RowStream<Row>: @unchecked Sendable {
    private let cursor: RowCursor
    private let decode: @Sendable (Statement) throws -> Row

    public init(cursor: RowCursor, decode: @escaping @Sendable (Statement) throws -> Row) {
        self.cursor = cursor
        self.decode = decode
    }

    /// The next row, or nil after the last (the cursor is then closed).
    public func next() throws -> Row? {
        guard let statement = try cursor.next() else { return nil }
        do {
            return try decode(statement)
        } catch {
            cursor.close()
            throw error
        }
    }

    /// Rows read so far.
    public var rowsRead: Int { cursor.rowsRead }

    /// The same rows, each transformed (`transform` runs on the reading thread); reading either
    /// stream reads the one cursor.
    public func map<T>(_ transform: @escaping @Sendable (Row) throws -> T) -> RowStream<T> {
        let decode = self.decode
        return RowStream<T>(cursor: cursor) { try transform(try decode($0)) }
    }

    public func close() { cursor.close() }
}

extension EventLog {
    /// Rows of `query` one at a time, on a connection of their own in one read transaction
    /// (``RowCursor``): for exports too large to hold in memory. Throws ``SQLiteError``.
    public func rows<Row>(_ query: SQLQuery, row decode: @escaping @Sendable (Statement) throws -> Row) throws -> RowStream<Row> {
        RowStream(cursor: try RowCursor(path: configuration.path, query: query, options: configuration.options), decode: decode)
    }

    /// ``rows(_:row:)`` with a query built inside the cursor's read transaction.
    public func rows<Row>(building build: (Database) throws -> SQLQuery,
                          row decode: @escaping @Sendable (Statement) throws -> Row) throws -> RowStream<Row> {
        RowStream(cursor: try RowCursor(path: configuration.path, options: configuration.options, build: build), decode: decode)
    }
}

extension Statement {
    /// The column's text as UTF-8 bytes without making a `String` (the buffer is valid only inside
    /// `body`); nil when the column is NULL.
    public func withUTF8<T>(_ column: Int32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T? {
        guard let pointer = textPointer(column) else { return nil }
        return try body(UnsafeRawBufferPointer(start: pointer.0, count: pointer.1))
    }
}
