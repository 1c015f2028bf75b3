import CSQLite
import Foundation
import Runtime

/// An event as stored in the log, with its sequence number.
public struct StoredEvent: Sendable, Equatable {
    /// The persisted sequence number: strictly increasing, never reused (on SQLite gaps are possible
    /// where a write failed; on PostgreSQL the ids are gap-free, see ``EventLog``).
    public let seq: Int64
    public let type: String
    public let station: String?
    /// Milliseconds since 1970 UTC, as stored.
    public let timeMs: Int64
    /// One line of JSON, as given to `append`.
    public let data: String

    public init(seq: Int64, type: String, station: String?, timeMs: Int64, data: String) {
        self.seq = seq
        self.type = type
        self.station = station
        self.timeMs = timeMs
        self.data = data
    }

    /// The event's time (whole milliseconds; `Timestamp.format(time)` gives back the stored value).
    public var time: Date { EventTime.date(timeMs) }
}

/// An event to append together with a write (see ``EventLog/enqueue(events:_:completion:)``).
public struct NewEvent: Sendable, Equatable {
    public var type: String
    public var station: String?
    public var time: Date
    public var data: String

    public init(type: String, station: String? = nil, time: Date, data: String) {
        self.type = type
        self.station = station
        self.time = time
        self.data = data
    }
}

/// What became of an enqueued write.
public enum WriteOutcome: Sendable {
    /// Committed, with its events.
    case committed
    /// Not written: the closure threw (its events were dropped too), or storage failed until close.
    case failed(any Error)
}

/// Errors of the event log itself (SQLite's own errors are ``SQLiteError``).
public enum EventLogError: Error, CustomStringConvertible, Sendable {
    /// The writer cannot commit now (disk full, read-only …); `underlying` is SQLite's error.
    case notWriting(underlying: any Error)
    /// A wait for a commit ran out of time.
    case timeout(seconds: Double)
    /// The log is closed.
    case closed
    /// A blocking call was made on the writer thread (it would wait for itself).
    case calledOnWriterThread(String)

    public var description: String {
        switch self {
        case .notWriting(let underlying): "storage is not writing: \(underlying)"
        case .timeout(let seconds): "no commit within \(seconds) s"
        case .closed: "event log is closed"
        case .calledOnWriterThread(let call): "\(call) called on the storage writer thread (would deadlock)"
        }
    }
}

/// Millisecond conversions for event times (`package`: the event log benchmark writes rows itself).
package enum EventTime {
    /// Whole milliseconds, rounded down like `Timestamp.format`, with a 1 µs tolerance so that
    /// `.100Z` or `t + 1.234` never loses a millisecond to binary floating point.
    package static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down))
    }

    /// A date that formats back to exactly `ms` (a 1 µs nudge for the same reason).
    static func date(_ ms: Int64) -> Date {
        Date(timeIntervalSince1970: (Double(ms) + 0.001) / 1000)
    }
}

/// The append-only event log: one writer thread, group commit, publication after commit.
///
/// `append` assigns the sequence number at once and queues the event; the writer thread takes
/// everything queued, writes it in one transaction, commits, then calls the commit handlers with
/// the committed events in sequence order. It commits as soon as it is idle and something is
/// queued, so at low load an event is committed within a few milliseconds, and a batch is capped
/// (``Configuration/maxBatchItems``) so commits follow each other well within 100 ms under load.
///
/// Other modules persist their rows atomically with their events through ``enqueue(events:_:completion:)``
/// or the blocking ``write(events:_:)``: each closure runs on the writer thread, in order with the
/// events, inside the group transaction, in its own savepoint; a closure that throws loses only its
/// own rows and events.
///
/// When a commit fails because storage cannot write (disk full, read-only, I/O error), the batch
/// stays queued and is retried every ``Configuration/retryIntervalMs``; ``isWritable`` is false
/// and ``lastError`` tells why; blocked `flush`/`write` callers get ``EventLogError/notWriting(underlying:)``.
/// Reads keep working.
///
/// The writer never checkpoints the WAL itself (its automatic checkpoint is off): a checkpoint
/// copies pages back into the database file and fsyncs, and SQLite's automatic one (every 1,000
/// pages) would run on the writer thread in the middle of a commit that samples wait for. A
/// checkpointer thread with a connection of its own does it instead (``Checkpoints``): PASSIVE
/// checkpoints while the WAL grows, which never block the writer, and a TRUNCATE when the log is
/// idle or when readers kept the WAL from restarting for too long, so the file stays bounded.
/// With `synchronous=NORMAL` a commit only appends to the WAL (it survives a crash of this
/// process once COMMIT returns, see ``Database/Options/synchronous``); the fsyncs happen at
/// checkpoints, now on the checkpointer.
///
/// **On PostgreSQL** (``Configuration/path`` is a `postgresql://` URI) the same writer commits each
/// batch in one transaction; the batch's events go in with one `COPY`, and their ids are given at
/// commit from the last stored id, so ids are gap-free and strictly increasing in commit order
/// (the number `append` returns is the id, except for appends queued while an earlier write that
/// failed was still pending: those are stored one lower for each of its events). There is
/// no checkpointer. A commit that fails because the server is unreachable or restarting keeps the
/// batch queued and retries (reconnecting) every ``Configuration/retryIntervalMs``; a COMMIT whose
/// answer was lost is resolved on reconnect from the last stored id (committed: published, not
/// written twice). Durability: a COMMIT that returned is durable (`synchronous_commit = on`, the
/// server's default).
///
/// Lifecycle: ``open(_:clock:logger:)`` (opens, migrates), ``start()`` (starts the writer
/// and checkpointer threads; appends before it are queued), ``close()`` (commits what is
/// pending, stops the checkpointer, checkpoints with TRUNCATE, closes). As a ``Service``, `run()`
/// starts and, on cancellation, closes.
// @unchecked Sendable: all mutable state is guarded by `condition` (the checkpointer's by `checkpointCondition`); `writer` is used only on the writer thread (or by close() once that thread has ended); the checkpointer's connection only on its thread.
public final class EventLog: Service, @unchecked Sendable {
    /// Settings with defaults.
    public struct Configuration: Sendable {
        /// The database file (parent folders are created), or a PostgreSQL URI
        /// (`postgresql://user:pass@host:port/db`, README "PostgreSQL").
        public var path: String
        /// Migration groups of other modules (tracking, quality …), applied after storage's own.
        public var migrations: [MigrationGroup] = []
        public var options = Database.Options()
        /// Read-only connections for ``read(_:)`` and ``events(after:types:limit:)``.
        public var readConnections = 4
        /// At most this many queued items go into one transaction.
        public var maxBatchItems = 1000
        /// Wait between retries of a failed commit.
        public var retryIntervalMs = 1000
        /// While storage fails, the oldest queued items beyond this count are dropped (and reported failed).
        public var maxPendingItems = 500_000
        public var retention = Retention()
        public var checkpoints = Checkpoints()
        /// Runs in every group transaction just before COMMIT with the batch's last event id (nil
        /// when it has none), and at the start of each maintenance transaction (nil); a throw rolls
        /// the batch back (kept queued, as any failed commit). Two nodes on PostgreSQL check their
        /// lease here (fencing, README "Two nodes").
        public var commitFence: (@Sendable (Database, Int64?) throws -> Void)?

        public init(path: String) { self.path = path }
    }

    /// When the checkpointer checkpoints the WAL (the writer never does; see ``EventLog``).
    ///
    /// Pages are database pages (4 KiB by default; a WAL frame is a page and 24 bytes).
    public struct Checkpoints: Sendable {
        /// A PASSIVE checkpoint once the WAL holds this many pages: SQLite's own automatic
        /// threshold, which keeps the WAL (and readers' lookups in it) short. It copies what no
        /// reader still needs and never waits for, or blocks, the writer or readers.
        public var passivePages = 1000
        /// A TRUNCATE checkpoint once the WAL still holds this many pages after a passive one
        /// (about 64 MiB): readers that always overlap can keep the writer from starting the WAL
        /// over, so it would grow without bound. The writer starts no transaction while it runs
        /// (it copies what the passive one left and waits for readers, at most
        /// ``truncateBusyTimeoutMs``), so it is kept rare.
        public var truncatePages = 16_000
        /// A TRUNCATE checkpoint after this long without a commit, when the WAL file is not empty
        /// (it shrinks to zero while nothing is written).
        public var idleSeconds: TimeInterval = 2
        /// How often the checkpointer looks when not woken (a commit that takes the WAL to
        /// ``passivePages`` wakes it at once).
        public var intervalSeconds: TimeInterval = 0.1
        /// How long a TRUNCATE checkpoint waits for readers (and so, at most, delays the writer).
        public var truncateBusyTimeoutMs: Int32 = 50
        /// The WAL's bound (about 128 MiB): after a commit that leaves this many pages, the writer
        /// starts no transaction until the checkpointer has truncated the WAL. Reached only when
        /// checkpoints cannot keep up with the writes (their fsyncs on a busy disk) or readers
        /// always overlap; better a pause of the writer than a WAL without bound.
        public var writerWaitPages = 32_000
        /// The longest the writer waits for the checkpointer (then it goes on, logged).
        public var writerWaitSeconds: TimeInterval = 10
        /// False: no checkpointer thread (tests only: the WAL then grows until ``close()``).
        public var enabled = true
        public init() {}
    }

    /// Which events are pruned, and when.
    public struct Retention: Sendable {
        /// Only these event types are ever pruned.
        public var eventTypes: Set<String> = ["sample"]
        /// Events older than this are pruned (default 7 days).
        public var maxAge: TimeInterval = 7 * 86_400
        /// How often pruning runs (default hourly; the first run is right after start).
        public var interval: TimeInterval = 3600
        /// Rows deleted per transaction, so pruning never holds up commits for long.
        public var chunkSize = 5000
        public init() {}
    }

    /// A periodic job run on the writer thread in its own transaction: gets the database and the
    /// retention cutoff (now − maxAge), returns true if it has more to do (it is called again soon).
    public typealias MaintenanceTask = @Sendable (Database, Date) throws -> Bool

    public typealias CommitHandler = @Sendable ([StoredEvent]) -> Void

    private struct Item {
        var ticket: UInt64
        var events: [StoredEvent]
        var work: (@Sendable (Database) throws -> Void)?
        var completion: (@Sendable (WriteOutcome) -> Void)?
    }

    public let name = "storage"
    public let configuration: Configuration
    private let clock: any WallClock
    private let logger: Logger
    private let writer: Database
    private let pool: ReadPool
    /// PostgreSQL: the last id stored in the database (writer thread only); ids are given from it at commit.
    private var storedSeq: Int64
    /// PostgreSQL: a batch whose COMMIT got no answer (the connection broke): its item count, last
    /// id, events and outcomes, resolved before the next commit (writer thread only).
    private var inDoubt: (count: Int, lastSeq: Int64, events: [StoredEvent], outcomes: [WriteOutcome?])?

    private let condition = NSCondition()
    private var pending: [Item] = []
    private var nextSeq: Int64
    private var nextTicket: UInt64 = 0
    private var doneTicket: UInt64 = 0
    private var processedSeq: Int64
    private var committedSeq: Int64
    private var failures: UInt64 = 0
    private var writable = true
    private var lastFailure: (any Error)?
    private var commitHandlers: [CommitHandler] = []
    private var maintenanceTasks: [MaintenanceTask] = []
    private var started = false
    private var stopping = false
    private var finished = false
    private var writerThread: Thread?
    private let writerDone = DispatchSemaphore(value: 0)
    private var stats = Stats()
    /// The checkpointer's state, guarded by its own condition (the writer touches it once per commit).
    private let checkpointCondition = NSCondition()
    private var walPages = 0
    private var commitCount: UInt64 = 0
    private var lastCommitNs: UInt64 = 0
    private var checkpointerStopping = false
    private var passiveCheckpoints = 0
    private var truncateCheckpoints = 0
    private var checkpointFailures = 0
    /// Set while the checkpointer runs a TRUNCATE: the writer starts no transaction meanwhile (a
    /// writer that commits back to back would otherwise never let it take the write lock).
    private var truncating = false
    /// True while the checkpointer thread runs (the writer waits for it only then).
    private var checkpointerActive = false
    private var checkpointerThread: Thread?
    private let checkpointerDone = DispatchSemaphore(value: 0)
    /// Test hook: runs on the writer thread before each batch (outside the transaction).
    var beforeBatchHook: (@Sendable (Database) -> Void)? {
        get { condition.lock(); defer { condition.unlock() }; return hookStorage }
        set { condition.lock(); hookStorage = newValue; condition.unlock() }
    }
    private var hookStorage: (@Sendable (Database) -> Void)?

    private init(configuration: Configuration, clock: any WallClock, logger: Logger, writer: Database, maxSeq: Int64) {
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.writer = writer
        self.nextSeq = maxSeq + 1
        self.processedSeq = maxSeq
        self.committedSeq = maxSeq
        self.storedSeq = maxSeq
        self.pool = ReadPool(path: configuration.path, capacity: configuration.readConnections, options: configuration.options)
        // The writer never checkpoints: the hook replaces SQLite's automatic checkpoint (and tells the checkpointer the WAL's length).
        writer.setWALCommitHook { [weak self] pages in self?.walCommitted(pages: pages) }
    }

    deinit {
        assert(!started || finished, "EventLog \(configuration.path) was started and not closed")
    }

    /// Storage's own schema (events table, sample history).
    public static let migrations = MigrationGroup(name: "storage", migrations: [
        Migration(version: 1, name: "events", sql: """
            CREATE TABLE events (
                seq INTEGER PRIMARY KEY,
                type TEXT NOT NULL,
                station TEXT,
                t INTEGER NOT NULL,
                data TEXT NOT NULL);
            CREATE INDEX events_type_t ON events (type, t);
            """),
        Migration(version: 2, name: "samples", sql: """
            CREATE TABLE samples (
                station TEXT NOT NULL,
                signal TEXT NOT NULL,
                t INTEGER NOT NULL,
                value TEXT NOT NULL,
                quality TEXT NOT NULL);
            CREATE INDEX samples_station_signal_t ON samples (station, signal, t);
            CREATE INDEX samples_t ON samples (t);
            """),
    ])

    /// Opens the database (creating it and its folders), applies migrations and finds the last
    /// sequence number. Throws ``SQLiteError`` with a clear message for an unusable file (bad
    /// path, read-only, locked by another process, not a database, schema newer than the code)
    /// or a ``MigrationError``.
    public static func open(_ configuration: Configuration, clock: any WallClock = SystemWallClock(), logger: Logger) throws -> EventLog {
        let writer = try Database(path: configuration.path, mode: .readWrite, options: configuration.options)
        do {
            // Migrating takes the write lock: with the short open timeout, a database another
            // process is writing gives a clear error at start instead of a long wait.
            writer.setBusyTimeout(milliseconds: configuration.options.openLockTimeoutMs)
            do {
                try Migrator(groups: [migrations] + configuration.migrations, logger: logger).migrate(writer)
            } catch let error as SQLiteError {
                throw Database.explain(error, path: configuration.path, lockTimeoutMs: configuration.options.openLockTimeoutMs)
            } catch let error as MigrationError {
                if let underlying = error.underlying as? SQLiteError, underlying.kind == .busy || underlying.kind == .readOnly {
                    throw Database.explain(underlying, path: configuration.path, lockTimeoutMs: configuration.options.openLockTimeoutMs)
                }
                throw error
            }
            writer.setBusyTimeout(milliseconds: configuration.options.busyTimeoutMs)
            let maxSeq = try writer.scalarInt("SELECT max(seq) FROM events") ?? 0
            logger.info("storage opened \(Database.redacted(configuration.path)), last event seq \(maxSeq)")
            return EventLog(configuration: configuration, clock: clock, logger: logger, writer: writer, maxSeq: maxSeq)
        } catch {
            writer.close()
            throw error
        }
    }

    // MARK: Lifecycle

    /// Starts the writer thread (idempotent).
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started, !stopping else { return }
        started = true
        let thread = Thread { [self] in
            writerLoop()
            writerDone.signal()
        }
        thread.name = "storage.writer"
        writerThread = thread
        thread.start()
        if configuration.checkpoints.enabled && !writer.isPostgres {
            let checkpointer = Thread { [self] in
                checkpointLoop()
                checkpointerDone.signal()
            }
            checkpointer.name = "storage.checkpoint"
            checkpointerThread = checkpointer
            checkpointCondition.lock()
            checkpointerActive = true
            checkpointCondition.unlock()
            checkpointer.start()
        }
    }

    /// Commits everything pending, stops the writer, checkpoints the WAL and closes every
    /// connection. Blocks until done. Later appends are dropped (logged).
    public func close() {
        condition.lock()
        if finished || (stopping && !started) { condition.unlock(); return }
        let wasStarted = started
        let hasCheckpointer = checkpointerThread != nil
        stopping = true
        condition.broadcast()
        condition.unlock()
        if wasStarted {
            writerDone.wait()
            writerDone.signal() // let a concurrent close() through as well
            if hasCheckpointer {
                checkpointCondition.lock()
                checkpointerStopping = true
                checkpointCondition.broadcast()
                checkpointCondition.unlock()
                checkpointerDone.wait()
                checkpointerDone.signal()
            }
        } else {
            // Never started: write what was queued on this thread.
            drainOnStop()
        }
        condition.lock()
        let alreadyClosed = writer.isClosed
        condition.unlock()
        if !alreadyClosed {
            if !writer.isPostgres {
                do { try writer.execute("PRAGMA wal_checkpoint(TRUNCATE)") } catch { logger.warning("storage checkpoint at close failed: \(error)") }
            }
            writer.close()
            pool.close()
            logger.info("storage closed \(Database.redacted(configuration.path)), last event seq \(latestSeq)")
        }
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Starts the writer, waits for cancellation, then ``close()``s (off the cooperative pool).
    public func run() async throws {
        await runThreadedService(stopThreadName: "storage.close", start: start, stop: { [self] in close() })
    }

    // MARK: Writing

    /// Adds a handler called on the writer thread after each commit, with the committed events in
    /// sequence order (events are published only once persisted). Keep it short.
    public func addCommitHandler(_ handler: @escaping CommitHandler) {
        condition.lock(); commitHandlers.append(handler); condition.unlock()
    }

    /// Adds a periodic job (pruning of a module's own tables) run with the retention schedule.
    public func addMaintenance(_ task: @escaping MaintenanceTask) {
        condition.lock(); maintenanceTasks.append(task); condition.unlock()
    }

    /// Queues one event; returns its sequence number (assigned now, committed soon).
    /// After ``close()`` the event is dropped (logged) and 0 is returned.
    @discardableResult
    public func append(type: String, station: String? = nil, time: Date, data: String) -> Int64 {
        enqueueItem(events: [NewEvent(type: type, station: station, time: time, data: data)], work: nil, completion: nil).first ?? 0
    }

    /// Queues a write closure and events that commit together, in order with other appends.
    ///
    /// `work` runs on the writer thread inside the group transaction, in a savepoint; the events
    /// are inserted after it in the same savepoint. If `work` throws, its changes and these events
    /// are rolled back (the rest of the batch commits), the error is logged and passed to
    /// `completion` (called on the writer thread once the outcome is final). Returns the events'
    /// sequence numbers.
    @discardableResult
    public func enqueue(events: [NewEvent] = [], _ work: @escaping @Sendable (Database) throws -> Void,
                        completion: (@Sendable (WriteOutcome) -> Void)? = nil) -> [Int64] {
        enqueueItem(events: events, work: work, completion: completion)
    }

    /// Like ``enqueue(events:_:completion:)`` but blocks until the write is committed; rethrows the
    /// closure's error, or throws ``EventLogError/notWriting(underlying:)`` as soon as a commit fails
    /// (the write then stays queued and commits if storage recovers: answer "not stored" to the
    /// client, e.g. 503). Must not be called on the writer thread.
    @discardableResult
    public func write(events: [NewEvent] = [], timeout: TimeInterval = 30,
                      _ work: @escaping @Sendable (Database) throws -> Void) throws -> [Int64] {
        try checkNotWriter("write")
        let box = Locked<WriteOutcome?>(nil)
        condition.lock()
        let failuresBefore = failures
        condition.unlock()
        let seqs = enqueueItem(events: events, work: work, completion: { outcome in box.set(outcome) })
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let outcome = box.value {
                if case .failed(let error) = outcome { throw error }
                return seqs
            }
            if failures > failuresBefore, let lastFailure { throw EventLogError.notWriting(underlying: lastFailure) }
            if finished { throw EventLogError.closed }
            if !condition.wait(until: deadline) { throw EventLogError.timeout(seconds: timeout) }
        }
    }

    private func enqueueItem(events: [NewEvent], work: (@Sendable (Database) throws -> Void)?,
                             completion: (@Sendable (WriteOutcome) -> Void)?) -> [Int64] {
        condition.lock()
        if stoppedAccepting || finished {
            condition.unlock()
            logger.error("storage: write after close dropped (\(events.count) events)")
            completion?(.failed(EventLogError.closed))
            return []
        }
        var stored: [StoredEvent] = []
        stored.reserveCapacity(events.count)
        for event in events {
            stored.append(StoredEvent(seq: nextSeq, type: event.type, station: event.station,
                                      timeMs: EventTime.milliseconds(event.time), data: event.data))
            nextSeq += 1
        }
        nextTicket += 1
        pending.append(Item(ticket: nextTicket, events: stored, work: work, completion: completion))
        // Broadcast: flush waiters share this condition with the writer.
        if pending.count == 1 { condition.broadcast() }
        condition.unlock()
        return stored.map(\.seq)
    }

    /// Set once the writer has taken its last batch: later items could never be written.
    private var stoppedAccepting = false

    /// Blocks until everything appended or enqueued before this call is committed (or failed).
    ///
    /// Throws ``EventLogError/notWriting(underlying:)`` as soon as a commit fails while waiting
    /// (the items stay queued and are retried), ``EventLogError/timeout(seconds:)``, or `.closed`.
    public func flush(timeout: TimeInterval = 30) throws {
        try checkNotWriter("flush")
        condition.lock()
        defer { condition.unlock() }
        let target = nextTicket
        try waitLocked(timeout: timeout) { doneTicket >= target }
    }

    /// Blocks until the event `seq` (and everything before it) is committed; see ``flush(timeout:)``.
    public func waitForCommit(seq: Int64, timeout: TimeInterval = 30) throws {
        try checkNotWriter("waitForCommit")
        condition.lock()
        defer { condition.unlock() }
        try waitLocked(timeout: timeout) { processedSeq >= seq }
    }

    private func waitLocked(timeout: TimeInterval, _ done: () -> Bool) throws {
        let failuresBefore = failures
        let deadline = Date().addingTimeInterval(timeout)
        while !done() {
            if failures > failuresBefore, let lastFailure { throw EventLogError.notWriting(underlying: lastFailure) }
            if finished || (stoppedAccepting && pending.isEmpty) { throw EventLogError.closed }
            if !started && !stopping {
                // Nothing would ever commit: make the mistake visible instead of waiting.
                throw EventLogError.notWriting(underlying: SQLiteError(code: SQLITE_MISUSE, message: "event log writer not started", context: configuration.path))
            }
            if !condition.wait(until: deadline) { throw EventLogError.timeout(seconds: timeout) }
        }
    }

    private func checkNotWriter(_ call: String) throws {
        if let writerThread, Thread.current === writerThread { throw EventLogError.calledOnWriterThread(call) }
    }

    // MARK: Health

    /// False while commits fail (disk full, read-only …); true again after the next good commit.
    public var isWritable: Bool { condition.lock(); defer { condition.unlock() }; return writable }

    /// The error of the last failed commit (kept after recovery, for diagnosis).
    public var lastError: (any Error)? { condition.lock(); defer { condition.unlock() }; return lastFailure }

    /// The highest committed sequence number (0 for an empty log).
    public var latestSeq: Int64 { condition.lock(); defer { condition.unlock() }; return committedSeq }

    /// Items queued and not yet committed.
    public var pendingCount: Int { condition.lock(); defer { condition.unlock() }; return pending.count }

    /// Commit counters and timings.
    public struct Statistics: Sendable {
        public var transactions: Int
        public var eventsCommitted: Int
        public var writesFailed: Int
        public var commitFailures: Int
        /// Duration of a group transaction (BEGIN … COMMIT), over the last 8192 commits.
        public var commitP50Ms: Double
        public var commitP99Ms: Double
        public var commitMaxMs: Double
        /// Pages in the WAL after the last commit (it starts over after a complete checkpoint).
        public var walPages = 0
        /// Checkpoints run by the checkpointer: PASSIVE, TRUNCATE, and those that failed.
        public var passiveCheckpoints = 0
        public var truncateCheckpoints = 0
        public var checkpointFailures = 0
    }

    public var statistics: Statistics {
        condition.lock()
        var result = stats.snapshot(failures: Int(failures))
        condition.unlock()
        checkpointCondition.lock()
        result.walPages = walPages
        result.passiveCheckpoints = passiveCheckpoints
        result.truncateCheckpoints = truncateCheckpoints
        result.checkpointFailures = checkpointFailures
        checkpointCondition.unlock()
        return result
    }

    // MARK: Reading

    /// Runs `body` on a read-only connection (concurrently with the writer; one snapshot).
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.read(body)
    }

    /// Stored events after `seq`, oldest first, optionally only of `types`, at most `limit`.
    public func events(after seq: Int64, types: Set<String>? = nil, limit: Int = 1000) throws -> [StoredEvent] {
        var sql = "SELECT seq, type, station, t, data FROM events WHERE seq > ?"
        var arguments: [SQLValue] = [.integer(seq)]
        if let types {
            if types.isEmpty { return [] }
            sql += " AND type IN (" + Array(repeating: "?", count: types.count).joined(separator: ",") + ")"
            arguments += types.sorted().map { .text($0) }
        }
        sql += " ORDER BY seq LIMIT ?"
        arguments.append(.integer(Int64(max(0, limit))))
        return try pool.read { db in
            try db.query(sql, arguments) { row in
                StoredEvent(seq: row.int64(0), type: row.text(1) ?? "", station: row.text(2), timeMs: row.int64(3), data: row.text(4) ?? "")
            }
        }
    }

    // MARK: Checkpointer thread

    /// The writer's WAL hook, after each commit (on the writer thread): cheap, wakes the checkpointer only at the threshold.
    private func walCommitted(pages: Int) {
        checkpointCondition.lock()
        walPages = pages
        commitCount &+= 1
        lastCommitNs = Monotonic.nanoseconds()
        if pages >= configuration.checkpoints.passivePages { checkpointCondition.signal() }
        checkpointCondition.unlock()
    }

    /// One checkpoint's answer: `busy` when it could not finish, the WAL's frames, and how many of them are in the database file.
    private struct CheckpointResult {
        var busy: Bool
        var logFrames: Int
        var checkpointedFrames: Int
    }

    private func checkpoint(_ db: Database, mode: String) throws -> CheckpointResult {
        let row = try db.query("PRAGMA wal_checkpoint(\(mode))") { row in
            CheckpointResult(busy: row.int64(0) != 0, logFrames: Int(row.int64(1)), checkpointedFrames: Int(row.int64(2)))
        }
        return row.first ?? CheckpointResult(busy: true, logFrames: 0, checkpointedFrames: 0)
    }

    /// Checkpoints the WAL on a connection of its own (see ``Checkpoints``) until ``close()``.
    private func checkpointLoop() {
        defer {
            checkpointCondition.lock()
            checkpointerActive = false
            checkpointCondition.broadcast()
            checkpointCondition.unlock()
        }
        let policy = configuration.checkpoints
        var database: Database?
        defer { database?.close() }
        var retryOpenAfter: UInt64 = 0
        /// The commit count at the last passive checkpoint, and at the last complete TRUNCATE.
        var passiveAt: UInt64 = 0
        var truncatedAt: UInt64 = 0
        /// Checkpoints of a kind are at least an interval apart: while readers keep the WAL from
        /// starting over, every commit would otherwise wake one (and its fsyncs).
        var nextPassiveNs: UInt64 = 0
        var nextTruncateNs: UInt64 = 0
        let intervalNs = UInt64(max(0.001, policy.intervalSeconds) * 1e9)
        let walPath = configuration.path + "-wal"
        while true {
            checkpointCondition.lock()
            let limit = Date().addingTimeInterval(policy.intervalSeconds)
            func passiveDue(_ now: UInt64) -> Bool {
                walPages >= policy.passivePages && commitCount != passiveAt && now >= nextPassiveNs
            }
            func truncateDue(_ now: UInt64) -> Bool {
                walPages >= min(policy.truncatePages, policy.writerWaitPages) && commitCount != truncatedAt && now >= nextTruncateNs
            }
            while !checkpointerStopping {
                let now = Monotonic.nanoseconds()
                if passiveDue(now) || truncateDue(now) { break }
                if !checkpointCondition.wait(until: limit) { break }
            }
            let stop = checkpointerStopping
            let now = Monotonic.nanoseconds()
            let passive = passiveDue(now)
            var truncate = truncateDue(now)
            let commits = commitCount
            let idle = Double(now &- lastCommitNs) / 1e9 >= policy.idleSeconds && commits != truncatedAt
            checkpointCondition.unlock()
            if stop { return }
            guard passive || truncate || idle else { continue }
            if database == nil {
                guard now >= retryOpenAfter else { continue }
                do {
                    let db = try Database(path: configuration.path, mode: .readWrite, options: configuration.options)
                    db.setWALCommitHook { _ in } // it writes nothing, but never checkpoints by itself either
                    db.setBusyTimeout(milliseconds: policy.truncateBusyTimeoutMs)
                    database = db
                } catch {
                    logger.warning("storage checkpointer cannot open \(configuration.path) (retrying in 1 s): \(error)")
                    retryOpenAfter = now + 1_000_000_000
                    continue
                }
            }
            guard let db = database else { continue }
            do {
                if passive {
                    let result = try checkpoint(db, mode: "PASSIVE")
                    passiveAt = commits
                    nextPassiveNs = Monotonic.nanoseconds() + intervalNs
                    recordCheckpoint(truncate: false)
                    if result.logFrames >= policy.truncatePages { truncate = true }
                }
                if idle && walFileSize(walPath) > 0 { truncate = true }
                if truncate {
                    checkpointCondition.lock()
                    truncating = true
                    checkpointCondition.unlock()
                    defer {
                        checkpointCondition.lock()
                        truncating = false
                        checkpointCondition.broadcast()
                        checkpointCondition.unlock()
                    }
                    let result = try checkpoint(db, mode: "TRUNCATE")
                    if result.busy {
                        // A reader stayed longer than the timeout: tried again an interval later.
                        nextTruncateNs = Monotonic.nanoseconds() + intervalNs
                    } else {
                        truncatedAt = commits
                        recordCheckpoint(truncate: true)
                    }
                } else if idle {
                    truncatedAt = commits
                }
            } catch {
                logger.warning("storage checkpoint failed: \(error)")
                checkpointCondition.lock()
                checkpointFailures += 1
                checkpointCondition.unlock()
                db.close()
                database = nil
                retryOpenAfter = Monotonic.nanoseconds() + 1_000_000_000
            }
        }
    }

    /// On the writer thread before a batch: waits while the checkpointer runs a TRUNCATE, and while
    /// the WAL holds ``Checkpoints/writerWaitPages`` (until the checkpointer has truncated it). At
    /// most ``Checkpoints/writerWaitSeconds``, should the checkpointer be stuck.
    private func waitForCheckpointer() {
        let policy = configuration.checkpoints
        checkpointCondition.lock()
        defer { checkpointCondition.unlock() }
        guard truncating || (checkpointerActive && walPages >= policy.writerWaitPages) else { return }
        let limit = Date().addingTimeInterval(policy.writerWaitSeconds)
        while truncating || (checkpointerActive && walPages >= policy.writerWaitPages) {
            if !checkpointCondition.wait(until: limit) {
                logger.warning("storage writer went on after waiting \(policy.writerWaitSeconds) s for a WAL checkpoint (\(walPages) pages in the WAL)")
                return
            }
        }
    }

    private func recordCheckpoint(truncate: Bool) {
        checkpointCondition.lock()
        if truncate {
            truncateCheckpoints += 1
            walPages = 0 // the WAL file is empty now; the next commit tells its length again
        } else {
            passiveCheckpoints += 1
        }
        checkpointCondition.unlock()
    }

    /// The WAL file's size in bytes (0 when it does not exist).
    private func walFileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    /// Size of the WAL file in bytes (0 when there is none): the checkpointer keeps it bounded.
    public var walFileBytes: Int { walFileSize(configuration.path + "-wal") }

    // MARK: Writer thread

    private var nextMaintenance: Date = .distantPast
    private var maintenanceMore = false
    private var maintenanceRequests = 0
    private var maintenanceCompleted = 0

    private func writerLoop() {
        while true {
            condition.lock()
            while pending.isEmpty && !stopping && !maintenanceMore && clock.now() < nextMaintenance {
                // Wake at least every second to notice the retention schedule of a manual clock.
                _ = condition.wait(until: Date().addingTimeInterval(1))
            }
            if pending.isEmpty && stopping {
                stoppedAccepting = true
                condition.unlock()
                return
            }
            let count = min(pending.count, configuration.maxBatchItems)
            let batch = Array(pending.prefix(count))
            pending.removeFirst(count)
            let hook = hookStorage
            condition.unlock()

            hook?(writer)
            waitForCheckpointer()
            if !batch.isEmpty {
                if !commit(batch) {
                    handleFailure(batch)
                    continue
                }
            }
            runMaintenanceIfDue()
        }
    }

    /// Writes one batch in one transaction. False if the transaction failed (nothing written).
    private func commit(_ batch: [Item]) -> Bool {
        if writer.isPostgres { return commitPostgres(batch) }
        let started = Monotonic.nanoseconds()
        var outcomes = [WriteOutcome?](repeating: nil, count: batch.count)
        var committed: [StoredEvent] = []
        committed.reserveCapacity(batch.reduce(0) { $0 + $1.events.count })
        do {
            try writer.execute("BEGIN IMMEDIATE")
            let insert = try writer.cached("INSERT INTO events (seq, type, station, t, data) VALUES (?, ?, ?, ?, ?)")
            // Each write's savepoint through statements prepared once (not parsed again per write).
            let savepoint = try writer.cached("SAVEPOINT item")
            let release = try writer.cached("RELEASE item")
            func inSavepoint(_ body: () throws -> Void) throws {
                _ = try savepoint.step()
                savepoint.reset()
                do {
                    try body()
                    _ = try release.step()
                    release.reset()
                } catch {
                    if !writer.isAutocommit {
                        try? writer.execute("ROLLBACK TO item")
                        try? writer.execute("RELEASE item")
                    }
                    throw error
                }
            }
            func write(_ events: [StoredEvent]) throws {
                for event in events {
                    try insert.bind(event.seq, at: 1)
                    try insert.bind(event.type, at: 2)
                    try insert.bind(event.station, at: 3)
                    try insert.bind(event.timeMs, at: 4)
                    try insert.bind(event.data, at: 5)
                    _ = try insert.step()
                    insert.reset()
                }
            }
            for (index, item) in batch.enumerated() {
                do {
                    if let work = item.work {
                        try inSavepoint {
                            try work(writer)
                            try write(item.events)
                        }
                    } else {
                        // A failed single INSERT is undone by SQLite alone (statement atomicity).
                        try write(item.events)
                    }
                    committed += item.events
                } catch {
                    if writer.isAutocommit || (error as? SQLiteError)?.isStorageFailure == true { throw error }
                    outcomes[index] = .failed(error)
                    logger.error("storage: write failed and was rolled back (\(item.events.count) events dropped): \(error)")
                }
            }
            if let fence = configuration.commitFence { try fence(writer, committed.last?.seq) }
            try writer.execute("COMMIT")
        } catch {
            if !writer.isAutocommit { try? writer.execute("ROLLBACK") }
            recordCommitFailure(error, writes: batch.count)
            return false
        }
        finishCommit(batch, outcomes: outcomes, committed: committed, nanoseconds: Monotonic.nanoseconds() - started)
        return true
    }

    /// After a failed transaction: logged once per outage, waiters told (the batch stays queued).
    private func recordCommitFailure(_ error: any Error, writes: Int) {
        if isWritable {
            // Logged before waiters learn of it, so whoever reports the failure finds the line.
            logger.error("storage cannot commit \(writes) writes, keeping them queued and retrying: \(error)")
        }
        condition.lock()
        failures += 1
        writable = false
        lastFailure = error
        condition.broadcast()
        condition.unlock()
    }

    /// After a commit: publishes the committed events, completes the writes, wakes waiters.
    private func finishCommit(_ batch: some Collection<Item>, outcomes: [WriteOutcome?], committed: [StoredEvent], nanoseconds elapsed: UInt64) {
        guard !batch.isEmpty else { return }
        condition.lock()
        let handlers = commitHandlers
        let recovered = !writable
        condition.unlock()
        if recovered { logger.notice("storage is writing again") }
        if !committed.isEmpty {
            for handler in handlers { handler(committed) }
        }
        for (index, item) in batch.enumerated() {
            item.completion?(outcomes[index] ?? .committed)
        }
        condition.lock()
        writable = true
        doneTicket = batch.reversed().first!.ticket
        if writer.isPostgres {
            // Ids are given at commit: the stored ones count (the same unless a write failed).
            if let last = committed.last { processedSeq = last.seq }
        } else if let last = batch.reversed().first(where: { !$0.events.isEmpty })?.events.last {
            processedSeq = last.seq
        }
        if let last = committed.last { committedSeq = last.seq }
        stats.record(nanoseconds: elapsed, events: committed.count, failedWrites: outcomes.reduce(0) { $0 + ($1 == nil ? 0 : 1) })
        condition.broadcast()
        condition.unlock()
    }

    /// ``commit(_:)`` on PostgreSQL: one transaction; each write in a savepoint; the events of the
    /// writes that succeeded in one `COPY`, with ids given here from the last stored id (gap-free).
    private func commitPostgres(_ batch: [Item]) -> Bool {
        var batch = batch[...]
        if let doubt = inDoubt {
            // The last COMMIT got no answer: did it commit? The last stored id says (its events were
            // written with it); then its writes are done and only the rest is written now.
            do {
                let stored = try writer.scalarInt("SELECT max(seq) FROM events") ?? 0
                inDoubt = nil
                if !doubt.events.isEmpty && stored >= doubt.lastSeq {
                    logger.notice("storage: the commit whose answer was lost did commit (last id \(doubt.lastSeq))")
                    storedSeq = doubt.lastSeq
                    let done = batch.prefix(doubt.count)
                    finishCommit(done, outcomes: doubt.outcomes, committed: doubt.events, nanoseconds: 0)
                    batch = batch.dropFirst(doubt.count)
                    if batch.isEmpty { return true }
                } else {
                    storedSeq = stored
                }
            } catch {
                recordCommitFailure(error, writes: batch.count)
                return false
            }
        }
        let started = Monotonic.nanoseconds()
        var outcomes = [WriteOutcome?](repeating: nil, count: batch.count)
        var committed: [StoredEvent] = []
        var copy = PGCopyText()
        var seq = storedSeq
        var commitSent = false
        do {
            try writer.execute("BEGIN")
            for (index, item) in batch.enumerated() {
                do {
                    if let work = item.work {
                        try writer.savepoint("item") { try work(writer) }
                    }
                    for event in item.events {
                        seq += 1
                        copy.field(seq)
                        copy.field(event.type)
                        copy.field(event.station)
                        copy.field(event.timeMs)
                        copy.field(event.data, last: true)
                        committed.append(StoredEvent(seq: seq, type: event.type, station: event.station, timeMs: event.timeMs, data: event.data))
                    }
                } catch {
                    if writer.isAutocommit || isStorageFailure(error) { throw error }
                    outcomes[index] = .failed(error)
                    logger.error("storage: write failed and was rolled back (\(item.events.count) events dropped): \(error)")
                }
            }
            if !committed.isEmpty {
                try writer.copy(into: "events", columns: ["seq", "type", "station", "t", "data"], text: copy)
            }
            if let fence = configuration.commitFence { try fence(writer, committed.last?.seq) }
            commitSent = true
            try writer.execute("COMMIT")
        } catch {
            if commitSent, (error as? PostgresError)?.isConnectionFailure == true {
                inDoubt = (batch.count, seq, committed, outcomes)
            } else if !writer.isAutocommit {
                try? writer.execute("ROLLBACK")
            }
            recordCommitFailure(error, writes: batch.count)
            return false
        }
        storedSeq = seq
        // The failed writes' events took no id: later appends are numbered on from the stored ones.
        let dropped = zip(batch, outcomes).reduce(0) { $0 + ($1.1 == nil ? 0 : $1.0.events.count) }
        if dropped > 0 {
            condition.lock()
            nextSeq -= Int64(dropped)
            condition.unlock()
        }
        finishCommit(batch, outcomes: outcomes, committed: committed, nanoseconds: Monotonic.nanoseconds() - started)
        return true
    }

    private func handleFailure(_ batch: [Item]) {
        condition.lock()
        pending.insert(contentsOf: batch, at: 0)
        var dropped: [Item] = []
        if pending.count > configuration.maxPendingItems {
            let excess = pending.count - configuration.maxPendingItems
            dropped = Array(pending.prefix(excess))
            pending.removeFirst(excess)
        }
        if stopping {
            // One more attempt was just made during shutdown: give up on what is left.
            dropped += pending
            pending.removeAll()
        }
        if let last = dropped.last {
            doneTicket = last.ticket
            if let seq = dropped.last(where: { !$0.events.isEmpty })?.events.last?.seq { processedSeq = max(processedSeq, seq) }
        }
        let error = lastFailure ?? EventLogError.closed
        condition.broadcast()
        if !stopping {
            _ = condition.wait(until: Date().addingTimeInterval(Double(configuration.retryIntervalMs) / 1000))
        }
        condition.unlock()
        if !dropped.isEmpty {
            let events = dropped.reduce(0) { $0 + $1.events.count }
            logger.error("storage dropped \(dropped.count) writes (\(events) events) that could not be committed: \(error)")
            for item in dropped { item.completion?(.failed(EventLogError.notWriting(underlying: error))) }
        }
    }

    /// Used by `close()` when the writer never started: commits what was queued on this thread.
    private func drainOnStop() {
        while true {
            condition.lock()
            if pending.isEmpty { stoppedAccepting = true; condition.unlock(); return }
            let count = min(pending.count, configuration.maxBatchItems)
            let batch = Array(pending.prefix(count))
            pending.removeFirst(count)
            condition.unlock()
            if !commit(batch) { handleFailure(batch) }
        }
    }

    private func runMaintenanceIfDue() {
        let now = clock.now()
        condition.lock()
        let due = maintenanceMore || now >= nextMaintenance
        let tasks = maintenanceTasks
        let request = maintenanceRequests
        condition.unlock()
        guard due else { return }
        let cutoff = now.addingTimeInterval(-configuration.retention.maxAge)
        var more = false
        do {
            more = try pruneEvents(before: cutoff)
            for task in tasks {
                let fence = configuration.commitFence
                if try writer.transaction({ try fence?(writer, nil); return try task(writer, cutoff) }) { more = true }
            }
        } catch {
            logger.warning("storage maintenance failed: \(error)")
            more = false
        }
        condition.lock()
        maintenanceMore = more
        if !more {
            // A request (pruneNow) that came during this pass gets a pass of its own.
            nextMaintenance = maintenanceRequests > request ? .distantPast : now.addingTimeInterval(configuration.retention.interval)
            maintenanceCompleted = max(maintenanceCompleted, request)
            condition.broadcast()
        }
        condition.unlock()
    }

    /// Deletes one chunk of old events of the retained types; true if more remain.
    /// The newest event is never deleted, so the sequence continues after a restart.
    private func pruneEvents(before cutoff: Date) throws -> Bool {
        let types = configuration.retention.eventTypes.sorted()
        guard !types.isEmpty else { return false }
        let placeholders = Array(repeating: "?", count: types.count).joined(separator: ",")
        let chunk = configuration.retention.chunkSize
        let fence = configuration.commitFence
        let deleted = try writer.transaction {
            try fence?(writer, nil)
            return try writer.run("""
                DELETE FROM events WHERE seq IN (
                    SELECT seq FROM events WHERE type IN (\(placeholders)) AND t < ?
                    AND seq < (SELECT max(seq) FROM events) LIMIT ?)
                """, types.map { .text($0) } + [.integer(EventTime.milliseconds(cutoff)), .integer(Int64(chunk))])
        }
        if deleted > 0 { logger.debug("storage pruned \(deleted) events older than \(Timestamp.format(cutoff))") }
        return deleted >= chunk
    }

    /// Runs retention now (blocking until the writer has done one full pass). For tests and tools.
    public func pruneNow(timeout: TimeInterval = 30) throws {
        try checkNotWriter("pruneNow")
        condition.lock()
        maintenanceRequests += 1
        let request = maintenanceRequests
        nextMaintenance = .distantPast
        condition.broadcast()
        let deadline = Date().addingTimeInterval(timeout)
        // Wait until a full pass that started after this request has finished.
        while maintenanceCompleted < request {
            if finished || !started { condition.unlock(); throw EventLogError.closed }
            if !condition.wait(until: deadline) { condition.unlock(); throw EventLogError.timeout(seconds: timeout) }
        }
        condition.unlock()
    }
}

private struct Stats {
    var transactions = 0
    var events = 0
    var failedWrites = 0
    var durations: [UInt64] = []
    var next = 0

    mutating func record(nanoseconds: UInt64, events: Int, failedWrites: Int) {
        transactions += 1
        self.events += events
        self.failedWrites += failedWrites
        if durations.count < 8192 { durations.append(nanoseconds) } else { durations[next] = nanoseconds; next = (next + 1) % 8192 }
    }

    func snapshot(failures: Int) -> EventLog.Statistics {
        let sorted = durations.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
            return Double(sorted[max(0, index)]) / 1_000_000
        }
        return EventLog.Statistics(transactions: transactions, eventsCommitted: events, writesFailed: failedWrites,
                                   commitFailures: failures, commitP50Ms: percentile(0.5), commitP99Ms: percentile(0.99),
                                   commitMaxMs: Double(sorted.last ?? 0) / 1_000_000)
    }
}
