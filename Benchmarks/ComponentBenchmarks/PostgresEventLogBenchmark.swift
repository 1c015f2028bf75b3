import BenchSupport
import Foundation
import Runtime
import Storage

/// Durable events per second into PostgreSQL through the event log (group commit: one
/// transaction and one COPY per batch), against plain libpq insert loops on the same server in
/// the same run: one INSERT per event in autocommit, and one transaction of many INSERTs.
///
/// `adminURL` names a server and a database to connect to for `CREATE DATABASE`; every
/// measurement gets a fresh database, dropped afterwards. Commits are durable
/// (`synchronous_commit = on`, the server's default).
public enum PostgresEventLogBenchmark {
    public struct Results: Sendable {
        public var groupCommit: EventLogBenchmark.Result
        public var autocommitLoop: EventLogBenchmark.Result
        public var transactionLoop: EventLogBenchmark.Result
        public var synchronousCommit: String
    }

    public static func run(adminURL: String, events: Int, autocommitEvents: Int, transactionEvents: Int) throws -> Results {
        let admin = try Database(path: adminURL)
        defer { admin.close() }
        let synchronous = try admin.scalarText("SHOW synchronous_commit") ?? "?"
        func withDatabase<T>(_ body: (String) throws -> T) throws -> T {
            let name = "mes_bench_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
            try admin.execute("CREATE DATABASE \(name)")
            defer { try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
            return try body(url(adminURL, database: name))
        }
        let autocommit = try withDatabase { try insertLoop(url: $0, count: autocommitEvents, oneTransaction: false) }
        let transaction = try withDatabase { try insertLoop(url: $0, count: transactionEvents, oneTransaction: true) }
        let group = try withDatabase { try EventLogBenchmark.run(path: $0, count: events) }
        return Results(groupCommit: group, autocommitLoop: autocommit, transactionLoop: transaction, synchronousCommit: synchronous)
    }

    /// `adminURL` with its database name replaced.
    static func url(_ adminURL: String, database: String) -> String {
        var base = adminURL
        var query = ""
        if let mark = base.firstIndex(of: "?") { query = String(base[mark...]); base = String(base[..<mark]) }
        if let scheme = base.range(of: "://"), let slash = base[scheme.upperBound...].firstIndex(of: "/") {
            base = String(base[..<slash])
        }
        return base + "/" + database + query
    }

    /// The baseline: a plain loop of prepared INSERTs on one libpq connection, each its own
    /// transaction (autocommit), or all in one transaction.
    static func insertLoop(url: String, count: Int, oneTransaction: Bool) throws -> EventLogBenchmark.Result {
        let db = try Database(path: url)
        defer { db.close() }
        try Migrator(groups: [EventLog.migrations]).migrate(db)
        var durations: [UInt64] = []
        durations.reserveCapacity(count)
        let started = Monotonic.nanoseconds()
        let time = EventTime.milliseconds(Date())
        if oneTransaction { try db.execute("BEGIN") }
        for index in 0..<count {
            let t0 = Monotonic.nanoseconds()
            try db.run("INSERT INTO events (seq, type, station, t, data) VALUES (?, ?, ?, ?, ?)",
                       [.integer(Int64(index + 1)), .text("sample"), .text("WELD-01"), .integer(time), .text(EventLogBenchmark.payload)])
            durations.append(Monotonic.nanoseconds() - t0)
        }
        if oneTransaction { try db.execute("COMMIT") }
        let seconds = Double(Monotonic.nanoseconds() - started) / 1e9
        let p99 = percentile(durations.map { Double($0) / 1e6 }, 0.99)
        return EventLogBenchmark.Result(events: count, seconds: seconds, eventsPerSecond: Double(count) / seconds,
                                        commitP99Ms: p99, appendToCommitP99Ms: p99, transactions: oneTransaction ? 1 : count)
    }
}
