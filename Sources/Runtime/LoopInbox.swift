#if canImport(Glibc)
import Glibc
#endif

/// The command inbox of an event-loop thread that runs only while it has work: the Modbus and OPC UA
/// client loops, the OPC UA server loop and the simulators' Modbus server loops (docs/ARCHITECTURE.md,
/// "Simulated PLCs on shared loops").
///
/// Other threads ``post(_:run:)`` commands. The first command while no thread runs makes the loop's
/// ``WakeFd`` and starts the thread; later ones queue and signal it. The thread waits in an ``Epoll``
/// with the wake descriptor in it and, at the top of every turn, ``take(into:stopIfIdle:)``s what
/// was queued; when nothing was and it has nothing else to do, it stops, and the next command starts a
/// new thread. Taking and stopping happen under one lock with posting, so no command is ever left
/// queued with no thread to run it.
public final class LoopInbox<Command: Sendable>: Sendable {
    public let name: String

    private struct State: Sendable {
        var commands: [Command] = []
        /// The running thread's wake descriptor; nil while no thread runs.
        var wake: WakeFd?
        var thread: pthread_t?
    }

    private let state = Locked(State())

    /// `name` names the loop's thread (and its errors).
    public init(name: String) {
        self.name = name
    }

    /// Whether the loop thread runs now. Thread-safe.
    public var isRunning: Bool { state.withLock { $0.wake != nil } }

    /// True on the loop's running thread.
    public var onLoopThread: Bool {
        state.withLock { $0.thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    /// Queues `command` and wakes the loop thread; when none runs, starts one (named ``name``) that runs
    /// `run` with the new wake descriptor (`run` is used only then).
    /// - Throws: when no thread runs and no wake descriptor can be made (descriptor exhaustion); the
    ///   command is then not queued.
    public func post(_ command: Command, run: @escaping @Sendable (WakeFd) -> Void) throws {
        let started: WakeFd? = try state.withLock { state in
            if let wake = state.wake {
                state.commands.append(command)
                // Signalled under the lock: the thread stops (and then closes the descriptor) only under
                // it, so the descriptor is still the loop's, never a number reused by then.
                wake.signal()
                return nil
            }
            let wake = try WakeFd()
            state.wake = wake
            state.commands.append(command)
            return wake
        }
        if let wake = started {
            startThread(named: name) { [self] in
                state.withLock { $0.thread = pthread_self() }
                run(wake)
            }
        }
    }

    /// The loop thread, at the top of a turn: swaps the queued commands into `commands` (which should
    /// come empty; its storage is reused) and returns true. With none queued and `idle` (the thread has
    /// nothing else to do), the loop stops instead and this returns false: the thread must close its
    /// epoll and the wake descriptor and end, and the next command starts a new thread.
    public func take(into commands: inout [Command], stopIfIdle idle: Bool) -> Bool {
        state.withLock { state in
            if state.commands.isEmpty && idle {
                state.wake = nil
                state.thread = nil
                return false
            }
            swap(&commands, &state.commands)
            return true
        }
    }

    /// The loop thread, first: its epoll with the wake descriptor in it. When either cannot be made the
    /// loop stops (the wake descriptor closed, the next command starts a new thread) and `failed` gets
    /// the commands that were queued, to release whoever waits on them; then nil.
    public func openEpoll(capacity: Int, wake: WakeFd, failed: ([Command], any Error) -> Void) -> Epoll? {
        do {
            let epoll = try Epoll(capacity: capacity, context: name)
            do {
                try epoll.add(wake.fd, Epoll.readable)
            } catch {
                epoll.close()
                throw error
            }
            return epoll
        } catch {
            let commands = state.withLock { state -> [Command] in
                state.wake = nil
                state.thread = nil
                defer { state.commands.removeAll() }
                return state.commands
            }
            wake.close()
            failed(commands, error)
            return nil
        }
    }
}
