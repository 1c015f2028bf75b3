import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Runs tasks on the thread that serves an ``OPCUAClient``'s socket, between its socket reads (see
/// ``OPCUAClient/taskExecutor``): the client's event loop while the session is up, its own thread while it
/// connects.
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
        /// True while the client's loop runs the jobs (woken through `loopWake`).
        var onLoop = false
        var loopWake: (@Sendable () -> Void)?
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
        let (accepted, mustWake, loopWake): (Bool, Bool, (@Sendable () -> Void)?) = queue.withLock { queue in
            guard queue.attached else { return (false, false, nil) }
            queue.jobs.append(unowned)
            // Behind jobs already announced, or from the client's own thread: no wake-up needed. On the loop
            // the loop decides (it serves many clients: a job for another client than the one it serves needs one).
            if queue.onLoop { return (true, queue.jobs.count == 1, queue.loopWake) }
            return (true, queue.jobs.count == 1 && pthread_equal(queue.ioThread, pthread_self()) == 0, nil)
        }
        if !accepted {
            globalConcurrentExecutor.enqueue(ExecutorJob(unowned))
        } else if mustWake {
            if let loopWake { loopWake() } else { wake() }
        }
    }

    /// How the client's loop is told that jobs wait (set once by the client).
    func setLoopWake(_ wake: @escaping @Sendable () -> Void) {
        queue.withLock { $0.loopWake = wake }
    }

    /// The client's own thread hands over to the loop: jobs wake the loop from now on.
    func routeToLoop() {
        queue.withLock { queue in
            queue.onLoop = true
            queue.attached = true
        }
    }

    /// The loop took the connection (loop thread): it runs the jobs.
    func attachToLoop(thread: pthread_t) {
        queue.withLock { queue in
            queue.ioThread = thread
            queue.onLoop = true
            queue.attached = true
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
            queue.onLoop = false
        }
    }

    /// The I/O thread stops: jobs still queued, and later ones, go to the global executor.
    func detach() {
        let leftovers: [UnownedJob] = queue.withLock { queue in
            queue.attached = false
            queue.onLoop = false
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
