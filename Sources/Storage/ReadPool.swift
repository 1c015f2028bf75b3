import Foundation

/// A few read-only connections for queries that run alongside the writer (WAL readers; on
/// PostgreSQL, read-only connections that read each transaction in one snapshot).
///
/// ``read(_:)`` borrows a connection, runs the body in a read transaction (one consistent
/// snapshot) on the caller's thread and gives it back. Callers block while all are borrowed.
/// Blocking: call from a thread or serial queue, not from Swift's cooperative pool in a hot loop.
// @unchecked Sendable: `idle`, `opened` and `closed` are guarded by `condition`; a connection is used by one borrower at a time.
public final class ReadPool: @unchecked Sendable {
    public let path: String
    private let capacity: Int
    private let options: Database.Options
    private let condition = NSCondition()
    private var idle: [Database] = []
    private var opened = 0
    private var closed = false

    /// Connections are opened lazily, at most `capacity` of them.
    public init(path: String, capacity: Int = 4, options: Database.Options = Database.Options()) {
        self.path = path
        self.capacity = max(1, capacity)
        self.options = options
    }

    deinit {
        assert(idle.isEmpty && opened == 0 || closed, "ReadPool \(path) was not closed")
    }

    /// Runs `body` with a read-only connection inside a read transaction.
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        let db = try borrow()
        var healthy = true
        defer { giveBack(db, healthy: healthy) }
        try db.execute("BEGIN")
        do {
            let result = try body(db)
            try db.execute("COMMIT")
            return result
        } catch {
            if !db.isAutocommit { try? db.execute("ROLLBACK") }
            if let error = error as? SQLiteError, error.kind == .corrupt || error.kind == .ioError { healthy = false }
            if let error = error as? PostgresError, error.isConnectionFailure { healthy = false }
            throw error
        }
    }

    private func borrow() throws -> Database {
        condition.lock()
        while true {
            if closed {
                condition.unlock()
                throw SQLiteError(code: 21, message: "read pool of \(path) is closed", context: "read")
            }
            if let db = idle.popLast() {
                condition.unlock()
                return db
            }
            if opened < capacity {
                opened += 1
                condition.unlock()
                do {
                    return try Database(path: path, mode: .readOnly, options: options)
                } catch {
                    condition.lock(); opened -= 1; condition.signal(); condition.unlock()
                    throw error
                }
            }
            condition.wait()
        }
    }

    private func giveBack(_ db: Database, healthy: Bool) {
        condition.lock()
        if closed || !healthy {
            opened -= 1
            condition.signal()
            condition.unlock()
            db.close()
            return
        }
        idle.append(db)
        condition.signal()
        condition.unlock()
    }

    /// Closes idle connections now and borrowed ones when given back. Later reads throw.
    public func close() {
        condition.lock()
        closed = true
        let dbs = idle
        idle.removeAll()
        opened -= dbs.count
        condition.broadcast()
        condition.unlock()
        for db in dbs { db.close() }
    }
}
