import BenchSupport
import Foundation
import Runtime
import Storage

/// Measures the event log's group commit against a plain one-transaction-per-insert loop.
///
/// For `tools/bench`: each run creates a fresh database at `path` (removing an old one).
public enum EventLogBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var events: Int
        public var seconds: Double
        public var eventsPerSecond: Double
        /// Duration of one group transaction (BEGIN … COMMIT).
        public var commitP99Ms: Double
        /// From `append` to the commit handler, per event.
        public var appendToCommitP99Ms: Double
        public var transactions: Int

        public var description: String {
            String(format: "%d events in %.3f s = %.0f events/s, %d transactions, commit p99 %.2f ms, append→commit p99 %.2f ms",
                   events, seconds, eventsPerSecond, transactions, commitP99Ms, appendToCommitP99Ms)
        }
    }

    static func removeDatabase(_ path: String) {
        if isPostgresURL(path) { return } // a PostgreSQL database is made fresh by its caller
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    static let payload = #"{"station":"WELD-01","t":"2026-11-21T06:00:00.100Z","values":{"weldCurrent":10.21,"state":1},"bad":[]}"#

    /// A started event log on a fresh database at `path` whose commit handler records the commit time
    /// of events 1…`count` (sequence numbers start at 1).
    private static func openTimedLog(path: String, count: Int, synchronous: String) throws -> (EventLog, LatencyRecorder) {
        removeDatabase(path)
        var configuration = EventLog.Configuration(path: path)
        configuration.options.synchronous = synchronous
        let log = try EventLog.open(configuration, logger: Logger(label: "bench", level: .warning))
        let latencies = LatencyRecorder(count: count)
        log.addCommitHandler { events in
            let now = Monotonic.nanoseconds()
            for event in events { latencies.done(index: Int(event.seq) - 1, at: now) }
        }
        log.start()
        return (log, latencies)
    }

    /// Appends `count` events as fast as one producer thread can, then waits for the last commit.
    public static func run(path: String, count: Int, synchronous: String = "NORMAL") throws -> Result {
        let (log, latencies) = try openTimedLog(path: path, count: count, synchronous: synchronous)
        defer { log.close() }
        let time = Date()
        let started = Monotonic.nanoseconds()
        for index in 0..<count {
            latencies.appended(index: index, at: Monotonic.nanoseconds())
            log.append(type: "sample", station: "WELD-01", time: time, data: payload)
        }
        try log.flush(timeout: 600)
        let seconds = Double(Monotonic.nanoseconds() - started) / 1e9
        let stats = log.statistics
        return Result(events: count, seconds: seconds, eventsPerSecond: Double(count) / seconds,
                      commitP99Ms: stats.commitP99Ms, appendToCommitP99Ms: latencies.p99Ms(), transactions: stats.transactions)
    }

    /// Appends at a steady `ratePerSecond` (in 1 ms ticks) for `seconds`: the append → commit
    /// latency at a realistic load (``run(path:count:synchronous:)`` measures a saturating burst).
    public static func paced(path: String, ratePerSecond: Int, seconds: Double, synchronous: String = "NORMAL") throws -> Result {
        let count = Int(Double(ratePerSecond) * seconds)
        let (log, latencies) = try openTimedLog(path: path, count: count, synchronous: synchronous)
        defer { log.close() }
        let started = Monotonic.nanoseconds()
        var sent = 0
        while sent < count {
            let elapsed = Double(Monotonic.nanoseconds() - started) / 1e9
            let due = min(count, Int(elapsed * Double(ratePerSecond)) + 1)
            while sent < due {
                latencies.appended(index: sent, at: Monotonic.nanoseconds())
                log.append(type: "sample", station: "WELD-01", time: Date(), data: payload)
                sent += 1
            }
            usleep(1000)
        }
        try log.flush(timeout: 600)
        let total = Double(Monotonic.nanoseconds() - started) / 1e9
        let stats = log.statistics
        return Result(events: count, seconds: total, eventsPerSecond: Double(count) / total,
                      commitP99Ms: stats.commitP99Ms, appendToCommitP99Ms: latencies.p99Ms(), transactions: stats.transactions)
    }

    /// The baseline: a plain insert loop on one connection, one transaction (autocommit) per insert.
    public static func plainInsertLoop(path: String, count: Int, synchronous: String = "NORMAL") throws -> Result {
        removeDatabase(path)
        var options = Database.Options()
        options.synchronous = synchronous
        let db = try Database(path: path, options: options)
        defer { db.close() }
        try Migrator(groups: [EventLog.migrations]).migrate(db)
        var durations: [UInt64] = []
        durations.reserveCapacity(count)
        let started = Monotonic.nanoseconds()
        let time = EventTime.milliseconds(Date())
        for index in 0..<count {
            let t0 = Monotonic.nanoseconds()
            try db.run("INSERT INTO events (seq, type, station, t, data) VALUES (?, ?, ?, ?, ?)",
                       [.integer(Int64(index + 1)), .text("sample"), .text("WELD-01"), .integer(time), .text(payload)])
            durations.append(Monotonic.nanoseconds() - t0)
        }
        let seconds = Double(Monotonic.nanoseconds() - started) / 1e9
        let p99 = percentile(durations.map { Double($0) / 1e6 }, 0.99)
        return Result(events: count, seconds: seconds, eventsPerSecond: Double(count) / seconds,
                      commitP99Ms: p99, appendToCommitP99Ms: p99, transactions: count)
    }
}

/// Per-event append and commit times; each index is written by one thread, read after flush.
private final class LatencyRecorder: Sendable {
    private struct Times {
        var appendedAt: [UInt64]
        var committedAt: [UInt64]
    }

    private let times: Locked<Times>

    init(count: Int) {
        times = Locked(Times(appendedAt: Array(repeating: 0, count: count), committedAt: Array(repeating: 0, count: count)))
    }

    func appended(index: Int, at time: UInt64) {
        times.withLock { $0.appendedAt[index] = time }
    }

    func done(index: Int, at time: UInt64) {
        times.withLock { times in
            if index >= 0 && index < times.committedAt.count { times.committedAt[index] = time }
        }
    }

    func p99Ms() -> Double {
        let times = times.value
        var values: [Double] = []
        for (a, c) in zip(times.appendedAt, times.committedAt) where c >= a && c > 0 { values.append(Double(c - a) / 1e6) }
        return percentile(values, 0.99)
    }
}
