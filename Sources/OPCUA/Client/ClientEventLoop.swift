import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// The few threads on which every ``OPCUAClient`` of the process does its steady-state I/O
/// (docs/ARCHITECTURE.md, "OPC UA clients on event loops").
///
/// A client is assigned one loop for its life, round-robin. While its session is up, the loop owns its
/// socket: it reads and decodes responses and publish answers, writes what a send left over, renews the
/// channel's token, times requests out, and fires the client's polls (``OPCUAClient/startPolling(_:intervalMs:handler:)``).
/// Connecting, session setup, creating and deleting subscriptions, reconnect back-off and closing run on a
/// short-lived thread of the client's own, which hands the socket back when it is done. A loop's thread
/// starts with its first client or poll and ends when it has none.
public final class OPCUAClientLoopGroup: Sendable {
    public let loops: [OPCUAClientLoop]
    private let nextIndex = Locked(0)

    /// The group all clients of the process use: one loop per core, at most two.
    public static let shared = OPCUAClientLoopGroup(threads: min(2, max(1, ProcessInfo.processInfo.activeProcessorCount)))

    public init(threads: Int) {
        loops = (0..<max(1, threads)).map { OPCUAClientLoop(name: "opcua.loop\($0)") }
    }

    /// The loop for the next client (round-robin). Thread-safe.
    public func next() -> OPCUAClientLoop {
        let index = nextIndex.withLock { index -> Int in
            defer { index &+= 1 }
            return index
        }
        return loops[index % loops.count]
    }
}

/// Something with one wake-up time on a loop: a client's housekeeping or a poll. Loop thread only.
class ClientLoopTimer: HeapTimed {
    /// When the loop next calls ``fire(now:_:)`` (monotonic ns), while `heapIndex >= 0`.
    var wakeAt: UInt64 = 0
    /// The place in the loop's heap; -1 when no time is set.
    var heapIndex = -1

    func fire(now: UInt64, _ loop: OPCUAClientLoop) {}
}

/// One event-loop thread (epoll) serving the sockets of many OPC UA clients.
///
/// Everything but ``Shared`` is touched by the loop thread alone.
public final class OPCUAClientLoop: @unchecked Sendable {
    public let name: String

    enum Command {
        /// The client's session is up: the loop owns its socket from now on.
        case attach(OPCUAClient)
        /// The client waits to reconnect until the time (`.max`: until poked); it has no socket.
        case wait(OPCUAClient, untilNs: UInt64)
        /// Something changed for the client (a request waits to be flushed, a task, a stop or a reconnect).
        case poke(ObjectIdentifier)
        case addPoll(ClientPoll)
        case removePoll(ClientPoll)
        /// Work that must run on the loop thread (a poll's answer that arrived on another thread).
        case run(@Sendable () -> Void)
    }

    private let inbox: LoopInbox<Command>

    // Loop thread state.
    private var clients: [ObjectIdentifier: OPCUAClient] = [:]
    /// Clients waiting out their reconnect back-off (no socket; a thread starts for the next attempt).
    private var waiting: [ObjectIdentifier: OPCUAClient] = [:]
    private var byFd: [Int32: OPCUAClient] = [:]
    private var polls = 0
    /// The client whose event or housekeeping runs now (loop thread).
    private var serving: OPCUAClient?
    private var timers = TimerHeap<ClientLoopTimer>()
    private var due: [ClientLoopTimer] = []
    private var epoll: Epoll?
    /// The receive buffer all clients of the loop read into (one thread: one buffer).
    private(set) var readBuffer = [UInt8](repeating: 0, count: 65536)

    /// Timers due within this much after now fire in the same turn (as the Modbus loops do).
    static let coalesceNs: UInt64 = 1_000_000
    /// How often an attached client is looked after (channel token renewal, request timeouts, silence,
    /// publish requests), when nothing else wakes it.
    static let housekeepingNs: UInt64 = 100_000_000
    /// Polls start, and housekeeping falls, on multiples of this (monotonic time): clients with the same
    /// interval share at most `interval / 10 ms` wake-ups instead of one each (as the Modbus loops do).
    static let sharedTickNs: UInt64 = 10_000_000

    /// The first shared tick at or after `ns`.
    static func tick(atOrAfter ns: UInt64) -> UInt64 {
        let rest = ns % sharedTickNs
        return rest == 0 ? ns : ns - rest + sharedTickNs
    }

    init(name: String) {
        self.name = name
        inbox = LoopInbox(name: name)
    }

    /// Whether the loop thread runs now. Thread-safe.
    public var isRunning: Bool { inbox.isRunning }

    /// Clients whose socket the loop owns now (loop thread; for tests through ``attachedCount``).
    public var attachedCount: Int {
        get async {
            await withCheckedContinuation { continuation in
                if !send(.run { [self] in continuation.resume(returning: clients.count) }) { continuation.resume(returning: 0) }
            }
        }
    }

    /// Clients waiting out a reconnect back-off on the loop, with no thread (diagnostics and tests).
    public var waitingCount: Int {
        get async {
            await withCheckedContinuation { continuation in
                if !send(.run { [self] in continuation.resume(returning: waiting.count) }) { continuation.resume(returning: 0) }
            }
        }
    }

    /// True on the loop's thread.
    var onLoopThread: Bool { inbox.onLoopThread }

    func attach(_ client: OPCUAClient) { send(.attach(client)) }
    func wait(_ client: OPCUAClient, untilNs: UInt64) { send(.wait(client, untilNs: untilNs)) }
    /// Something changed for the client. On the loop thread, for the client being served right now, nothing
    /// needs doing: its tasks run and its outbox is looked at before the loop moves on.
    func poke(_ client: OPCUAClient) {
        if onLoopThread, let serving, serving === client { return }
        send(.poke(ObjectIdentifier(client)))
    }
    func add(_ poll: ClientPoll) { send(.addPoll(poll)) }
    func remove(_ poll: ClientPoll) { send(.removePoll(poll)) }

    /// Runs `body` on the loop thread: now when called there, else in its next turn.
    func execute(_ body: @escaping @Sendable () -> Void) {
        if onLoopThread { body() } else if !send(.run(body)) { body() }
    }

    /// Queues a command and wakes (or starts) the thread. False when no thread could be started.
    @discardableResult
    private func send(_ command: Command) -> Bool {
        (try? inbox.post(command) { [self] wake in runThread(wake: wake) }) != nil
    }

    // MARK: The loop thread

    private func runThread(wake: WakeFd) {
        guard let epoll = inbox.openEpoll(capacity: 256, wake: wake, failed: { commands, _ in
            // No loop: every client stays with its own thread (it keeps working, at a thread each).
            for command in commands {
                switch command {
                case .attach(let client): client.loopDetached(.work)
                case .wait(let client, _): client.loopDetached(.retry)
                default: break
                }
            }
            for case .run(let body) in commands { body() }
        }) else { return }
        self.epoll = epoll
        var commands: [Command] = []
        while inbox.take(into: &commands, stopIfIdle: clients.isEmpty && waiting.isEmpty && polls == 0) {
            for command in commands { handle(command) }
            commands.removeAll(keepingCapacity: true)
            fireDueTimers()
            if clients.isEmpty && waiting.isEmpty && polls == 0 { continue }
            let timeoutNs = timers.waitNs(atMost: 1_000_000_000)
            do {
                try epoll.wait(timeoutNs: timeoutNs) { fd, events in
                    if fd == wake.fd {
                        wake.drain()
                    } else if let client = byFd[fd] {
                        ready(client, events: events)
                    }
                }
            } catch {
                // epoll_wait fails only on a programming error; do not spin.
                usleep(10_000)
            }
        }
        self.epoll = nil
        epoll.close()
        wake.close()
    }

    private func handle(_ command: Command) {
        switch command {
        case .attach(let client):
            guard let epoll else { return }
            let fd = client.fd
            guard fd >= 0 else {
                client.loopDetached(.work)
                return
            }
            do { try epoll.add(fd, Epoll.readable) } catch {
                client.loopDetached(.lost(error))
                return
            }
            client.loopInterest = Epoll.readable
            clients[ObjectIdentifier(client)] = client
            byFd[fd] = client
            client.taskExecutor.attachToLoop(thread: pthread_self())
            // Whatever was asked while the socket changed hands is looked at now.
            housekeep(client, now: Monotonic.nanoseconds())
        case .wait(let client, let until):
            waiting[ObjectIdentifier(client)] = client
            client.taskExecutor.attachToLoop(thread: pthread_self())
            if until != .max { timers.set(client.loopTimer, at: until) }
            // A stop or reconnect asked while the client changed hands is looked at now.
            poked(waitingClient: client)
        case .poke(let id):
            if let client = clients[id] {
                housekeep(client, now: Monotonic.nanoseconds())
            } else if let client = waiting[id] {
                poked(waitingClient: client)
            }
        case .addPoll(let poll):
            polls += 1
            poll.started(self)
        case .removePoll(let poll):
            if poll.stopOnLoop(self) { polls -= 1 }
        case .run(let body):
            body()
        }
    }

    private func ready(_ client: OPCUAClient, events: UInt32) {
        serving = client
        defer { serving = nil }
        do {
            try client.loopReady(events: events, buffer: &readBuffer)
            try updateInterest(client)
        } catch {
            detach(client, .lost(error))
        }
    }

    /// The client's timer: housekeeping while attached, the next connect attempt while waiting.
    func timerFired(_ client: OPCUAClient, now: UInt64) {
        if clients[ObjectIdentifier(client)] != nil {
            housekeep(client, now: now)
        } else if waiting.removeValue(forKey: ObjectIdentifier(client)) != nil {
            client.loopDetached(.retry)
        }
    }

    /// A waiting client was poked: its tasks run here; a stop or a reconnect starts its thread now.
    private func poked(waitingClient client: OPCUAClient) {
        try? client.runTasks()
        guard client.wantsThreadWhileWaiting else { return }
        waiting[ObjectIdentifier(client)] = nil
        timers.remove(client.loopTimer)
        client.loopDetached(.retry)
    }

    /// The client's housekeeping on the loop (also its timer): hands it to a thread of its own when it needs one.
    func housekeep(_ client: OPCUAClient, now: UInt64) {
        guard clients[ObjectIdentifier(client)] != nil else { return }
        serving = client
        defer { serving = nil }
        do {
            if try client.loopHousekeeping(nowNs: now) {
                detach(client, .work)
                return
            }
            try updateInterest(client)
            timers.set(client.loopTimer, at: Self.tick(atOrAfter: now + Self.housekeepingNs))
        } catch {
            detach(client, .lost(error))
        }
    }

    private func updateInterest(_ client: OPCUAClient) throws {
        let wanted = Epoll.readable | (client.hasOutbox ? Epoll.writable : 0)
        guard wanted != client.loopInterest, let epoll else { return }
        try epoll.modify(client.fd, wanted)
        client.loopInterest = wanted
    }

    /// Gives the client's socket back to a thread of the client's own.
    private func detach(_ client: OPCUAClient, _ entry: OPCUAClient.ControlEntry) {
        guard clients.removeValue(forKey: ObjectIdentifier(client)) != nil else { return }
        let fd = client.fd
        if byFd[fd] === client { byFd[fd] = nil }
        if fd >= 0 { try? epoll?.remove(fd) }
        client.loopInterest = 0
        timers.remove(client.loopTimer)
        client.loopDetached(entry)
    }

    // MARK: Timers

    func schedule(_ timer: ClientLoopTimer, at deadline: UInt64) { timers.set(timer, at: deadline) }
    func cancel(_ timer: ClientLoopTimer) { timers.remove(timer) }

    private func fireDueTimers() {
        let now = Monotonic.nanoseconds()
        let horizon = now + Self.coalesceNs
        timers.takeDue(by: horizon, into: &due)
        for timer in due { timer.fire(now: max(now, timer.wakeAt), self) }
        due.removeAll(keepingCapacity: true)
    }
}

/// An attached client's housekeeping timer.
final class ClientHousekeepingTimer: ClientLoopTimer {
    unowned(unsafe) let client: OPCUAClient

    init(client: OPCUAClient) { self.client = client }

    override func fire(now: UInt64, _ loop: OPCUAClientLoop) { loop.timerFired(client, now: now) }
}

