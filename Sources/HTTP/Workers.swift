import CEpoll
import Foundation
import Runtime

/// A fixed set of threads running jobs from a bounded queue: the work a loop thread must not do
/// (large reads, event-stream backlog pages, commands that wait on the pipeline).
///
/// The threads may run at a lower priority (`nice`) than the loops, so that when the machine is
/// busy the loops, which answer every other client, get the CPU first.
///
/// ``submit(_:)`` never blocks: a full queue refuses the job and the caller answers 503, which is
/// the back-pressure. Threads start on the first submit and end after ``stop()`` once their current
/// job returns (a job blocked elsewhere is not waited for).
// @unchecked Sendable: the queue, the counters and the flags are guarded by `condition`; the rest is immutable.
final class WorkerPool: @unchecked Sendable {
    private let name: String
    private let threadCount: Int
    private let queueLimit: Int
    private let nice: Int32
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var started = false
    private var stopping = false
    private var busy = 0

    init(name: String, threads: Int, queueLimit: Int, nice: Int32 = 0) {
        self.name = name
        self.nice = nice
        threadCount = max(1, threads)
        self.queueLimit = max(1, queueLimit)
    }

    /// Queues a job; false when the queue is full or the pool stopped. Any thread.
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping, jobs.count - head < queueLimit else { return false }
        if !started {
            started = true
            for i in 0..<threadCount {
                let thread = Thread { [self] in
                    if nice != 0 { _ = cthread_set_nice(nice) }
                    work()
                }
                thread.name = "\(name)-\(i)"
                thread.start()
            }
        }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Jobs queued and running now.
    var load: (queued: Int, running: Int) {
        condition.lock(); defer { condition.unlock() }
        return (jobs.count - head, busy)
    }

    /// Drops queued jobs and lets the threads end. Any thread.
    func stop() {
        condition.lock()
        stopping = true
        jobs.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count && !stopping { condition.wait() }
            if stopping {
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                jobs.removeSubrange(0..<head)
                head = 0
            }
            busy += 1
            condition.unlock()
            job()
            condition.lock()
            busy -= 1
            condition.unlock()
        }
    }
}

/// A byte budget shared by every connection (buffered bodies, queued event-stream bytes). Any thread.
final class ByteBudget: Sendable {
    let limit: Int
    private let used = Locked(0)

    init(limit: Int) { self.limit = max(0, limit) }

    /// Takes `bytes` if they fit.
    func reserve(_ bytes: Int) -> Bool {
        used.withLock { used in
            guard used + bytes <= limit else { return false }
            used += bytes
            return true
        }
    }

    /// Changes the charge by `delta`; false (and no change) when a growth would pass the limit.
    func adjust(_ delta: Int) -> Bool {
        used.withLock { used in
            if delta > 0 && used + delta > limit { return false }
            used += delta
            return true
        }
    }

    func release(_ bytes: Int) {
        guard bytes != 0 else { return }
        used.withLock { $0 -= bytes }
    }

    var inUse: Int { used.value }
}
