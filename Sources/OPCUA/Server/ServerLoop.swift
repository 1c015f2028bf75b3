import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// One thread (epoll) that runs the I/O of many ``OPCUAServer``s: their listeners, connections,
/// sessions and subscription timers (``OPCUAServer/Options/loop``). What each server does is the
/// same as on a thread of its own; only where it runs differs: the station simulators serve every
/// simulated OPC UA PLC of a process from one such thread instead of one thread each.
///
/// The thread starts with its first server and ends when its last server has stopped.
public final class OPCUAServerLoop: Sendable {
    public let name: String

    enum Command: Sendable {
        /// Run `server` (bound, its listener in `listenFd`).
        case add(OPCUAServer)
        /// Stop `server`: close its connections and listener, then signal.
        case remove(OPCUAServer, DispatchSemaphore)
    }

    private struct Shared {
        var inbox: [Command] = []
        /// The running thread's wake descriptor; nil while no thread runs.
        var wake: WakeFd?
    }

    private let shared = Locked(Shared())

    public init(name: String = "opcua-servers") {
        self.name = name
    }

    /// Whether the loop thread runs now. Thread-safe.
    public var isRunning: Bool { shared.withLock { $0.wake != nil } }

    /// Hands a command to the loop thread, starting the thread if none runs.
    func send(_ command: Command) throws {
        let (wake, start): (WakeFd, Bool) = try shared.withLock { shared in
            if let wake = shared.wake {
                shared.inbox.append(command)
                return (wake, false)
            }
            let wake = try WakeFd()
            shared.wake = wake
            shared.inbox.append(command)
            return (wake, true)
        }
        if start {
            let thread = Thread { [self] in runThread(wake: wake) }
            thread.name = name
            thread.start()
        } else {
            wake.signal()
        }
    }

    private func runThread(wake: WakeFd) {
        let epoll: Epoll
        do {
            epoll = try Epoll(capacity: 512, context: name)
            try epoll.add(wake.fd, Epoll.readable)
        } catch {
            // Nothing can run: the servers handed over stop at once and who waits is released.
            let commands = shared.withLock { shared -> [Command] in
                shared.wake = nil
                defer { shared.inbox.removeAll() }
                return shared.inbox
            }
            wake.close()
            for command in commands {
                switch command {
                case .add(let server):
                    server.options.logger.error("\(name): cannot start: \(error)")
                    server.detach()
                case .remove(_, let done): done.signal()
                }
            }
            return
        }
        let state = OPCUAServerLoopState(epoll: epoll)
        var ready: [(fd: Int32, events: UInt32)] = []
        var touched: [OPCUAServer] = []
        while true {
            let commands: [Command]? = shared.withLock { shared in
                if shared.inbox.isEmpty && state.servers.isEmpty {
                    shared.wake = nil  // the next server starts a new thread
                    return nil
                }
                defer { shared.inbox.removeAll() }
                return shared.inbox
            }
            guard let commands else { break }
            for command in commands {
                switch command {
                case .add(let server): state.attach(server)
                case .remove(let server, let done):
                    state.detach(server)
                    done.signal()
                }
            }
            if state.servers.isEmpty { continue }
            var dueNs = UInt64.max
            for server in state.servers.values { dueNs = min(dueNs, server.loopDueNs) }
            let now = Monotonic.nanoseconds()
            let timeoutMs = dueNs <= now ? 0 : Int32(min(1000, (dueNs - now + 999_999) / 1_000_000))
            ready.removeAll(keepingCapacity: true)
            do {
                try epoll.wait(timeoutMs: timeoutMs) { fd, events in ready.append((fd, events)) }
            } catch {
                state.servers.values.first?.options.logger.error("\(name): \(error)")
            }
            // Collected first: handling one event may accept or close connections.
            touched.removeAll(keepingCapacity: true)
            for (fd, events) in ready {
                if fd == wake.fd {
                    wake.drain()
                } else if let server = state.owners[fd] {
                    if !server.loopTouched {
                        server.loopTouched = true
                        touched.append(server)
                    }
                    server.handleReady(fd, events)
                }
            }
            // A server's timers run when they are due or after its descriptors were ready (as on a
            // thread of its own, whose every wake-up runs them); then its next due time is taken.
            let after = Monotonic.nanoseconds()
            for server in state.servers.values where server.loopTouched || server.loopDueNs <= after {
                server.loopTouched = false
                server.finishTurn(after)
                server.loopDueNs = after + UInt64(server.prepareWait(after)) * 1_000_000
            }
        }
        epoll.close()
        wake.close()
    }
}

/// What an ``OPCUAServerLoop`` thread owns: its epoll, the servers it runs and which server each
/// descriptor belongs to (the servers register their connections here as they accept and close them).
// @unchecked Sendable: only the loop thread touches it (the servers reach it from their I/O code, which runs on that thread).
final class OPCUAServerLoopState: @unchecked Sendable {
    let epoll: Epoll
    var servers: [ObjectIdentifier: OPCUAServer] = [:]
    var owners: [Int32: OPCUAServer] = [:]

    init(epoll: Epoll) {
        self.epoll = epoll
    }

    func attach(_ server: OPCUAServer) {
        let listener = server.lock.withLock { server.listenFd }
        do {
            try epoll.add(listener, Epoll.readable)
        } catch {
            server.options.logger.error("cannot serve: \(error)")
            server.detach()
            return
        }
        server.lock.withLock { server.epoll = epoll }
        server.host = self
        server.loopDueNs = 0
        servers[ObjectIdentifier(server)] = server
        owners[listener] = server
    }

    func detach(_ server: OPCUAServer) {
        guard servers.removeValue(forKey: ObjectIdentifier(server)) != nil else {
            server.detach()
            return
        }
        server.closeAll()
        let listener = server.lock.withLock { server.listenFd }
        try? epoll.remove(listener)
        owners[listener] = nil
        server.detach()
    }
}

extension OPCUAServer {
    /// Leaves a shared loop: closes the listener, marks the server stopped.
    func detach() {
        host = nil
        lock.withLock {
            epoll = nil
            Socket.close(listenFd)
            listenFd = -1
            running = false
        }
    }
}
