import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Runs tasks on an ``OPCUAClient``'s I/O thread, between its socket reads (see ``OPCUAClient/taskExecutor``).
///
/// A task that prefers this executor (`Task(executorPreference:)`, `withTaskExecutorPreference`,
/// `group.addTask(executorPreference:)`) resumes on the I/O thread right after its response is read, and
/// its next request leaves with the others of the same round in one write: no thread hop per request,
/// as in an event loop. Such tasks must never block and should stay short, as they hold up the
/// connection while they run; and while the I/O thread itself waits (a TCP connect, up to `connectTimeoutMs`)
/// they wait too. While the I/O thread is not running (before `connect()`, after `close()`) jobs go to
/// Swift's global executor instead.
public final class ClientTaskExecutor: TaskExecutor {
    private struct Queue {
        var jobs: [UnownedJob] = []
        var attached = false
        var ioThread = pthread_self()
    }

    private let queue = Locked(Queue())
    /// Wakes the I/O thread from its epoll when work arrives from another thread.
    let wakeFd: WakeFd

    init() throws {
        wakeFd = try WakeFd()
    }

    deinit {
        wakeFd.close()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let (accepted, mustWake): (Bool, Bool) = queue.withLock { queue in
            guard queue.attached else { return (false, false) }
            queue.jobs.append(unowned)
            // From the I/O thread itself, or behind jobs already announced: no wake-up needed.
            return (true, queue.jobs.count == 1 && pthread_equal(queue.ioThread, pthread_self()) == 0)
        }
        if !accepted {
            globalConcurrentExecutor.enqueue(ExecutorJob(unowned))
        } else if mustWake {
            wake()
        }
    }

    /// Interrupts the I/O thread's wait.
    func wake() { wakeFd.signal() }

    /// Resets the wake-up (I/O thread).
    func drainWake() { wakeFd.drain() }

    /// The calling thread (the I/O thread) runs jobs from now on.
    func attach() {
        queue.withLock { queue in
            queue.ioThread = pthread_self()
            queue.attached = true
        }
    }

    /// The I/O thread stops: jobs still queued, and later ones, go to the global executor.
    func detach() {
        let leftovers: [UnownedJob] = queue.withLock { queue in
            queue.attached = false
            defer { queue.jobs = [] }
            return queue.jobs
        }
        for job in leftovers { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }

    var hasJobs: Bool { queue.withLock { !$0.jobs.isEmpty } }

    /// Runs the queued jobs and those they enqueue, up to `rounds` rounds (I/O thread). Returns true when it ran any.
    @discardableResult
    func runJobs(rounds: Int = 16) -> Bool {
        var batch: [UnownedJob] = []
        var ran = false
        for _ in 0..<rounds {
            queue.withLock { swap(&batch, &$0.jobs) }
            if batch.isEmpty { break }
            ran = true
            let executor = asUnownedTaskExecutor()
            for job in batch { job.runSynchronously(on: executor) }
            batch.removeAll(keepingCapacity: true)
        }
        return ran
    }
}
