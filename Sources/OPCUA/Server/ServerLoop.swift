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

    private let inbox: LoopInbox<Command>

    public init(name: String = "opcua-servers") {
        self.name = name
        inbox = LoopInbox(name: name)
    }

    /// Whether the loop thread runs now. Thread-safe.
    public var isRunning: Bool { inbox.isRunning }

    /// Hands a command to the loop thread, starting the thread if none runs.
    func send(_ command: Command) throws {
        try inbox.post(command) { [self] wake in runThread(wake: wake) }
    }

    private func runThread(wake: WakeFd) {
        guard let epoll = inbox.openEpoll(capacity: 512, wake: wake, failed: { [name] commands, error in
            // Nothing can run: the servers handed over stop at once and who waits is released.
            for command in commands {
                switch command {
                case .add(let server):
                    server.options.logger.error("\(name): cannot start: \(error)")
                    server.detach()
                case .remove(_, let done): done.signal()
                }
            }
        }) else { return }
        let state = OPCUAServerLoopState(epoll: epoll)
        var ready: [(fd: Int32, events: UInt32)] = []
        var touched: [OPCUAServer] = []
        var commands: [Command] = []
        while inbox.take(into: &commands, stopIfIdle: state.servers.isEmpty) {
            for command in commands {
                switch command {
                case .add(let server): state.attach(server)
                case .remove(let server, let done):
                    state.detach(server)
                    done.signal()
                }
            }
            commands.removeAll(keepingCapacity: true)
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
