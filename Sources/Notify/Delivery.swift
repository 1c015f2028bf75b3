import CEpoll
import Foundation
import PlantModel
import Runtime
import Storage

/// Delivers the outbox (README "Notifications"): one thread per lane (person + channel), in order
/// within a lane, retrying with backoff; never on the pipeline's, storage's or the API's threads.
///
/// A lane's oldest pending notification goes first and the rest of the lane waits for it, so a
/// receiver that is down delays only its own lane. A lane reads its pending notifications in
/// batches, keeps its connection to the receiver open between them (``HTTPSession``), and does not
/// wait for each outcome's write: a notification is marked `sent` only after its 2xx (and `errcode`
/// 0 for WeCom and DingTalk); the marks of a run of deliveries go to the event log in one write
/// (``Configuration/marksPerWrite``, sooner when the lane runs out of work) and commit with the
/// next group commit (milliseconds). Meanwhile the lane goes on with the next one; it never reads
/// a notification it has delivered again (it reads only after the last one it took), and it pauses
/// when more than ``Configuration/maxUnmarked`` marks wait for their commit. A crash before a mark
/// commits sends that notification again on restart, with the same `Idempotency-Key`, so the
/// receiver can drop it. Lanes run at a lower CPU priority (``Configuration/nice``), so draining a
/// long outbox yields to polling and the event streams.
///
/// Marks of a long outbox touch many pages (a lane's notifications are spread among the other
/// lanes'), so a drain makes the WAL grow fast; the event log checkpoints it on a thread of its
/// own, never on its writer thread in a commit that samples wait for (``EventLog``; measured:
/// `mes-bench notify`, README "Notifications").
///
/// Time (due attempts, backoff, the 24 h limit) is read from `clock`, so a test or benchmark can
/// run hours of outage on a ``ManualClock``: after moving it, call ``wake()``.
///
/// Lifecycle: ``start()`` (lanes with pending rows start at once), ``stop()`` (waits for attempts
/// in flight, at most their timeouts). Must stop before the event log closes.
public final class NotificationDelivery: Service, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var connectTimeoutMs = 2000
        public var readTimeoutMs = 5000
        public var policy = RetryPolicy()
        /// How often an idle lane looks at the outbox anyway (new rows also wake it at once).
        public var idleScan: TimeInterval = 5
        /// Pending notifications a lane reads at once.
        public var batch = 256
        /// A lane pauses while this many of its `sent` marks wait for their commit.
        public var maxUnmarked = 2048
        /// `sent` marks a lane gathers into one write (it writes them sooner when it runs out of work).
        public var marksPerWrite = 64
        /// The lanes' nice value (Linux, per thread): draining a long outbox yields the CPU to
        /// polling, the pipeline, storage and the API.
        public var nice: Int32 = 10
        /// The `caFile` of each lane (`user/index`) whose channel has one (docs/CONFIG.md
        /// `people[].notify[].caFile`): its `https://` receiver is verified against it.
        public var caFiles: [String: String] = [:]
        /// The `caFile` of lanes not in ``caFiles`` (`notify.caFile`); nil: the system's CA store.
        public var caFile: String?
        public init() {}

        /// The CA files of `config`'s channels, by lane (the lane names of ``NotificationPlanner``).
        public mutating func trust(_ config: PeopleConfig) {
            caFile = config.notify.caFile
            for person in config.people {
                for (index, channel) in person.notify.enumerated() {
                    if let file = channel.caFile ?? config.notify.caFile { caFiles["\(person.user)/\(index)"] = file }
                }
            }
        }
    }

    public let name = "notify"
    public let configuration: Configuration
    let eventLog: EventLog
    let logger: Logger
    let client: HTTPPost
    let clock: any WallClock

    private let condition = NSCondition()
    private var lanes: Set<String> = []
    private var running = 0
    private var started = false
    private var stopping = false
    /// Bumped on every wake-up, so a lane waiting for work notices it.
    private var generation: UInt64 = 0
    private var dispatcherWake = false
    /// Set on the storage thread when outbox rows are written; turned into a wake-up after the commit.
    private let inserted = Locked(false)

    public init(eventLog: EventLog, configuration: Configuration = Configuration(), clock: any WallClock = SystemWallClock(),
                logger: Logger) {
        self.eventLog = eventLog
        self.configuration = configuration
        self.clock = clock
        self.logger = logger.named("notify")
        client = HTTPPost(connectTimeoutMs: configuration.connectTimeoutMs, readTimeoutMs: configuration.readTimeoutMs)
        eventLog.addCommitHandler { [weak self] _ in self?.afterCommit() }
    }

    /// Writes notifications into the outbox inside the caller's transaction (storage thread) and
    /// wakes delivery once a transaction with events has committed (the `alert`/`defect` events
    /// that cause notifications commit with them; otherwise the next idle scan finds the rows).
    public func write(_ notifications: [NotifyMessage], to db: Database) throws {
        guard try Outbox.insert(notifications, into: db) > 0 else { return }
        inserted.set(true)
    }

    private func afterCommit() {
        let wake = inserted.withLock { inserted in
            defer { inserted = false }
            return inserted
        }
        if wake { self.wake() }
    }

    /// Makes every lane and the dispatcher look at the outbox now.
    public func wake() {
        condition.lock()
        generation &+= 1
        dispatcherWake = true
        condition.broadcast()
        condition.unlock()
    }

    /// Starts the dispatcher thread, which starts a thread for each lane with pending notifications.
    public func start() {
        condition.lock()
        guard !started else { condition.unlock(); return }
        started = true
        running += 1
        condition.unlock()
        let thread = Thread { [self] in
            dispatcherLoop()
            exited()
        }
        thread.name = "notify.dispatch"
        thread.start()
    }

    /// Stops every thread; waits for attempts in flight (bounded by the timeouts).
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        let limit = Date().addingTimeInterval(Double(configuration.connectTimeoutMs + configuration.readTimeoutMs) / 1000 + 5)
        while running > 0 {
            if !condition.wait(until: limit) {
                logger.warning("notification delivery: \(running) lanes still busy at stop")
                break
            }
        }
        condition.unlock()
    }

    public func run() async throws {
        await runThreadedService(stopThreadName: "notify.stop", start: start, stop: { [self] in stop() })
    }

    private func exited() {
        condition.lock()
        running -= 1
        condition.broadcast()
        condition.unlock()
    }

    private func dispatcherLoop() {
        while true {
            let found: [String]
            do {
                found = try eventLog.read { try Outbox.pendingLanes(in: $0) }
            } catch {
                logger.error("notification outbox cannot be read: \(error)")
                found = []
            }
            condition.lock()
            for lane in found where !lanes.contains(lane) && !stopping {
                lanes.insert(lane)
                running += 1
                let nice = configuration.nice
                let thread = Thread { [self] in
                    if nice != 0 { _ = cthread_set_nice(nice) }
                    laneLoop(lane)
                    exited()
                }
                thread.name = "notify.lane"
                thread.start()
            }
            let deadline = Date().addingTimeInterval(configuration.idleScan)
            while !dispatcherWake && !stopping {
                if !condition.wait(until: deadline) { break }
            }
            dispatcherWake = false
            if stopping { condition.unlock(); return }
            condition.unlock()
        }
    }

    /// Waits until `deadline` on the delivery's clock, a wake-up (new rows, a moved clock), or stop;
    /// returns false on stop.
    private func pause(until deadline: Date, seen: UInt64) -> Bool {
        let wait = min(max(0, deadline.timeIntervalSince(clock.now())), 24 * 3600)
        let limit = Date().addingTimeInterval(wait)
        condition.lock()
        defer { condition.unlock() }
        while !stopping && generation == seen {
            if !condition.wait(until: limit) { break }
        }
        return !stopping
    }

    private var currentGeneration: UInt64 { condition.lock(); defer { condition.unlock() }; return generation }
    private var isStopping: Bool { condition.lock(); defer { condition.unlock() }; return stopping }

    private func laneLoop(_ lane: String) {
        var random = SystemRandomNumberGenerator()
        let session = HTTPSession(client: client, caFile: configuration.caFiles[lane] ?? configuration.caFile)
        defer { session.close() }
        /// Delivered, with their `sent` marks not committed yet.
        let unmarked = Locked(0)
        /// Delivered, their `sent` marks not handed to the event log yet: written in one go (one
        /// savepoint for many rows) when there are `marksPerWrite`, or when the lane runs out of
        /// work, pauses or stops.
        var marks: [(id: String, attempts: Int, at: Date)] = []
        let logger = self.logger
        func writeMarks() {
            guard !marks.isEmpty else { return }
            let batch = marks
            marks.removeAll(keepingCapacity: true)
            eventLog.enqueue({ db in
                for mark in batch { try Outbox.markSent(id: mark.id, attempts: mark.attempts, at: mark.at, in: db) }
            }, completion: { outcome in
                unmarked.withLock { $0 -= batch.count }
                if case .failed(let reason) = outcome {
                    // Not sent again by this process (the lane has moved past them); after a restart they would be, with their keys.
                    logger.error("\(batch.count) notifications were delivered but their marks cannot be stored (\(reason))")
                }
            })
        }
        defer { writeMarks() }
        /// The lane's next pending notifications, in order; `index` is the one to deliver now.
        var queue: [NotifyMessage] = []
        var index = 0
        /// The `seq` of the last notification this lane finished with (sent or failed for good): reads start after it.
        var lastSeq: Int64 = 0
        while true {
            let seen = currentGeneration
            if isStopping { return }
            if index >= queue.count {
                writeMarks()
                if unmarked.value >= configuration.maxUnmarked {
                    if !pause(until: clock.now().addingTimeInterval(0.002), seen: seen) { return }
                    continue
                }
                do {
                    let after = lastSeq, batch = configuration.batch
                    queue = try eventLog.read { try Outbox.pending(lane: lane, after: after, limit: batch, in: $0) }
                    index = 0
                } catch {
                    logger.error("notification outbox cannot be read (lane \(lane)): \(error)")
                    if !pause(until: clock.now().addingTimeInterval(1), seen: seen) { return }
                    continue
                }
                if queue.isEmpty {
                    if !pause(until: clock.now().addingTimeInterval(configuration.idleScan), seen: seen) { return }
                    continue
                }
            }
            let n = queue[index]
            // Stored times are whole milliseconds (a read-back time is a microsecond later than the one written).
            if Outbox.ms(n.nextAttemptAt) > Outbox.ms(clock.now()) {
                writeMarks()
                // Waits for the retry time; a wake-up only looks again (the head stays first).
                if !pause(until: n.nextAttemptAt, seen: seen) { return }
                continue
            }
            let attempts = n.attempts + 1
            let body = Array(ChannelFormat.body(n).serialized().utf8)
            var failure: String?
            do {
                let answer = try session.post(n.url, body: body, headers: [("Idempotency-Key", n.id)])
                failure = ChannelFormat.failure(of: answer, channel: n.channel)
            } catch {
                failure = "\(error)"
            }
            let now = clock.now()
            let id = n.id
            if let failure {
                let next = configuration.policy.next(after: attempts, createdAt: n.createdAt, now: now,
                                                     jitter: Double.random(in: 0...1, using: &random))
                let error = String(failure.prefix(500))
                eventLog.enqueue({ db in
                    try Outbox.markAttemptFailed(id: id, attempts: attempts, error: error, next: next, in: db)
                }, completion: { outcome in
                    if case .failed(let reason) = outcome { logger.error("notification \(id): a failed attempt cannot be stored (\(reason))") }
                })
                if let next {
                    queue[index].attempts = attempts
                    queue[index].lastError = error
                    queue[index].nextAttemptAt = next
                    if attempts == 1 || attempts % 20 == 0 {
                        logger.warning("notification \(n.id) to \(n.to) (\(n.channel.rawValue)), attempt \(attempts): \(failure); retrying")
                    }
                } else {
                    logger.error("notification \(n.id) to \(n.to) (\(n.channel.rawValue)) failed for good after \(attempts) attempts: \(failure)")
                    lastSeq = n.seq
                    index += 1
                }
            } else {
                lastSeq = n.seq
                index += 1
                unmarked.withLock { $0 += 1 }
                marks.append((id, attempts, now))
                if marks.count >= configuration.marksPerWrite { writeMarks() }
                logger.debug("notification \(n.id) sent to \(n.to) (\(n.channel.rawValue)) after \(attempts) attempts")
            }
        }
    }

    /// Prometheus lines: notifications by status (`mes_notifications{status=…}`).
    public static func metrics(_ eventLog: EventLog) -> String {
        guard let counts = try? eventLog.read({ try Outbox.counts(in: $0) }) else { return "" }
        var text = "# HELP mes_notifications Notifications in the outbox by status.\n# TYPE mes_notifications gauge\n"
        for status in NotificationStatus.allCases {
            text += "mes_notifications{status=\"\(status.rawValue)\"} \(counts[status] ?? 0)\n"
        }
        return text
    }
}
