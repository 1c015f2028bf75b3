import Foundation
import PlantModel
import Runtime
import Storage

/// Delivers the outbox (README "Notifications"): one thread per lane (person + channel), in order
/// within a lane, retrying with backoff; never on the pipeline's, storage's or the API's threads.
///
/// A lane's oldest pending notification goes first and the rest of the lane waits for it, so a
/// receiver that is down delays only its own lane. A notification is marked `sent` only after its
/// 2xx (and `errcode` 0 for WeCom and DingTalk); the mark is one small write through the event
/// log, committed within a group commit (milliseconds). A crash in that window sends it again on
/// restart, with the same `Idempotency-Key`, so the receiver can drop it.
///
/// Lifecycle: ``start()`` (lanes with pending rows start at once), ``stop()`` (waits for attempts
/// in flight, at most their timeouts). Must stop before the event log closes.
// @unchecked Sendable: the lanes, counters and flags are guarded by `condition`; the rest is immutable or `Locked`.
public final class NotificationDelivery: Service, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var connectTimeoutMs = 2000
        public var readTimeoutMs = 5000
        public var policy = RetryPolicy()
        /// How often an idle lane looks at the outbox anyway (new rows also wake it at once).
        public var idleScan: TimeInterval = 5
        public init() {}
    }

    public let name = "notify"
    public let configuration: Configuration
    let eventLog: EventLog
    let logger: Logger
    let client: HTTPPost

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

    public init(eventLog: EventLog, configuration: Configuration = Configuration(), logger: Logger) {
        self.eventLog = eventLog
        self.configuration = configuration
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
                let thread = Thread { [self] in
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

    /// Waits until `deadline`, a wake-up (new rows), or stop; returns false on stop.
    private func pause(until deadline: Date, seen: UInt64) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !stopping && generation == seen {
            if !condition.wait(until: deadline) { break }
        }
        return !stopping
    }

    private var currentGeneration: UInt64 { condition.lock(); defer { condition.unlock() }; return generation }

    private func laneLoop(_ lane: String) {
        var random = SystemRandomNumberGenerator()
        /// Delivered, but its mark is not visible yet (storage not writing): never sent again meanwhile.
        var deliveredUnmarked: String?
        while true {
            let seen = currentGeneration
            let head: NotifyMessage?
            do {
                head = try eventLog.read { try Outbox.head(lane: lane, in: $0) }
            } catch {
                logger.error("notification outbox cannot be read (lane \(lane)): \(error)")
                if !pause(until: Date().addingTimeInterval(1), seen: seen) { return }
                continue
            }
            guard let n = head else {
                if !pause(until: Date().addingTimeInterval(configuration.idleScan), seen: seen) { return }
                continue
            }
            if n.id == deliveredUnmarked {
                if !pause(until: Date().addingTimeInterval(1), seen: seen) { return }
                continue
            }
            if n.nextAttemptAt > Date() {
                // Waits for the retry time; a wake-up only re-reads the head (it stays first).
                if !pause(until: n.nextAttemptAt, seen: seen) { return }
                continue
            }
            condition.lock()
            let stop = stopping
            condition.unlock()
            if stop { return }
            let attempts = n.attempts + 1
            let body = Array(ChannelFormat.body(n).serialized().utf8)
            var failure: String?
            do {
                let answer = try client.post(n.url, body: body, headers: [("Idempotency-Key", n.id)])
                failure = ChannelFormat.failure(of: answer, channel: n.channel)
            } catch {
                failure = "\(error)"
            }
            let now = Date()
            do {
                if let failure {
                    let next = configuration.policy.next(after: attempts, createdAt: n.createdAt, now: now,
                                                         jitter: Double.random(in: 0...1, using: &random))
                    try eventLog.write { db in
                        try Outbox.markAttemptFailed(id: n.id, attempts: attempts, error: String(failure.prefix(500)), next: next, in: db)
                    }
                    if next == nil {
                        logger.error("notification \(n.id) to \(n.to) (\(n.channel.rawValue)) failed for good after \(attempts) attempts: \(failure)")
                    } else if attempts == 1 || attempts % 20 == 0 {
                        logger.warning("notification \(n.id) to \(n.to) (\(n.channel.rawValue)), attempt \(attempts): \(failure); retrying")
                    }
                } else {
                    deliveredUnmarked = n.id
                    try eventLog.write { db in try Outbox.markSent(id: n.id, attempts: attempts, at: now, in: db) }
                    deliveredUnmarked = nil
                    logger.debug("notification \(n.id) sent to \(n.to) (\(n.channel.rawValue)) after \(attempts) attempts")
                }
            } catch EventLogError.closed {
                return
            } catch {
                logger.error("notification \(n.id): its outcome cannot be stored yet (\(error)); it stays queued")
                if !pause(until: Date().addingTimeInterval(1), seen: seen) { return }
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
