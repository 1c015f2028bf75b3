#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Runtime

/// The few threads that serve every simulated Modbus TCP PLC of a process (README "station-sim:
/// threads"): each ``ModbusStationServer`` is attached to one ``ModbusServerLoop`` while it runs.
///
/// Loops are filled one after another: a loop takes up to ``stationsPerLoop`` servers before the
/// next one is used; past that, the least loaded takes the server. A loop thread starts with its
/// first server and ends with its last, so the group needs no service of its own.
public final class ModbusServerLoopGroup: Sendable {
    /// The group the servers use unless given another: up to one loop per core.
    public static let shared = ModbusServerLoopGroup()

    public let loops: [ModbusServerLoop]
    public let stationsPerLoop: Int
    private let attached: Locked<[Int]>

    /// - Parameters:
    ///   - loops: the most loop threads (default: the core count).
    ///   - stationsPerLoop: servers one loop takes before the next is used.
    public init(loops: Int = ProcessInfo.processInfo.activeProcessorCount, stationsPerLoop: Int = 250,
                logger: Logger = Logger(label: "modbus-sim")) {
        let count = max(1, loops)
        self.loops = (0..<count).map { ModbusServerLoop(name: "modbus-sim.loop\($0)", logger: logger) }
        self.stationsPerLoop = max(1, stationsPerLoop)
        attached = Locked(Array(repeating: 0, count: count))
    }

    /// Picks the loop for a server that starts. Thread-safe.
    func take() -> Int {
        attached.withLock { counts in
            let index = counts.firstIndex { $0 < stationsPerLoop } ?? counts.indices.min { counts[$0] < counts[$1] }!
            counts[index] += 1
            return index
        }
    }

    /// A server that stopped leaves its loop.
    func give(back index: Int) {
        attached.withLock { $0[index] -= 1 }
    }
}

/// One thread (epoll, non-blocking sockets) serving the listeners and client connections of many
/// simulated Modbus TCP PLCs: requests are framed here (``ModbusServerFrame``) and answered from
/// each server's ``ModbusRegisterMap``. A server that stalls or misbehaves (its ``ModbusServerBehavior``)
/// affects only its own connections.
public final class ModbusServerLoop: Sendable {
    public let name: String
    private let logger: Logger

    enum Command: Sendable {
        /// Serve `server` on the listening socket `listenFd` (the loop owns it from now on).
        case add(ModbusStationServer, listenFd: Int32)
        /// Stop serving `server`: close its listener and connections, then signal `done`.
        case remove(ModbusStationServer, done: DispatchSemaphore)
    }

    private let inbox: LoopInbox<Command>

    init(name: String, logger: Logger) {
        self.name = name
        self.logger = logger.with("loop", name)
        inbox = LoopInbox(name: name)
    }

    /// Whether the loop thread runs now. Thread-safe.
    public var isRunning: Bool { inbox.isRunning }

    /// Hands a command to the loop thread, starting the thread if none runs.
    /// - Throws: when no thread runs and no wake descriptor can be made (descriptor exhaustion).
    func send(_ command: Command) throws {
        try inbox.post(command) { [self] wake in runThread(wake: wake) }
    }

    // MARK: The loop thread

    private func runThread(wake: WakeFd) {
        guard let epoll = inbox.openEpoll(capacity: 512, wake: wake, failed: { [logger] commands, error in
            logger.error("cannot start: \(error)")
            // Nothing can be served: close what was handed over and release who waits.
            for command in commands {
                switch command {
                case .add(_, let fd): Socket.close(fd)
                case .remove(_, let done): done.signal()
                }
            }
        }) else { return }
        var state = ServerLoopState(epoll: epoll, logger: logger)
        var commands: [Command] = []
        while inbox.take(into: &commands, stopIfIdle: state.listeners.isEmpty) {
            for command in commands {
                switch command {
                case .add(let server, let fd): state.add(server, listenFd: fd)
                case .remove(let server, let done):
                    state.remove(server)
                    done.signal()
                }
            }
            commands.removeAll(keepingCapacity: true)
            if state.listeners.isEmpty { continue }
            do {
                try epoll.wait(timeoutMs: -1) { fd, events in
                    if fd == wake.fd {
                        wake.drain()
                    } else {
                        state.ready(fd: fd, events: events)
                    }
                }
            } catch {
                logger.error("epoll_wait failed: \(error)")
            }
        }
        state.close()
        epoll.close()
        wake.close()
    }
}

/// A listening socket of one server, on the loop thread.
final class ServedListener {
    let server: ModbusStationServer
    let fd: Int32
    var clients: [Int32: ServedClient] = [:]

    init(server: ModbusStationServer, fd: Int32) {
        self.server = server
        self.fd = fd
    }
}

/// One client connection of a served station, on the loop thread.
final class ServedClient {
    let fd: Int32
    /// Strong: the cycle with `listener.clients` is broken when the client is dropped.
    let listener: ServedListener
    /// Received bytes of a request not yet whole.
    var pending: [UInt8] = []
    /// Answer bytes the socket did not take yet.
    var outbound: [UInt8] = []
    var watchingWrite = false

    init(fd: Int32, listener: ServedListener) {
        self.fd = fd
        self.listener = listener
    }
}

/// Everything a server loop thread owns.
struct ServerLoopState {
    /// A client that does not read its answers is closed past this many unsent bytes.
    static let maxOutbound = 1 << 20

    enum Slot {
        case listener(ServedListener)
        case client(ServedClient)
    }

    let epoll: Epoll
    let logger: Logger
    var listeners: [ObjectIdentifier: ServedListener] = [:]
    var byFd: [Int32: Slot] = [:]
    /// The receive buffer every connection of the loop reads into (one thread: one buffer).
    let scratch: UnsafeMutableRawBufferPointer
    /// The answers to one read, sent together (reused).
    var answers: [UInt8] = []

    init(epoll: Epoll, logger: Logger) {
        self.epoll = epoll
        self.logger = logger
        scratch = .allocate(byteCount: 16 * 1024, alignment: 8)
        answers.reserveCapacity(4096)
    }

    mutating func add(_ server: ModbusStationServer, listenFd: Int32) {
        do {
            try epoll.add(listenFd, Epoll.readable)
        } catch {
            logger.error("\(server.station.id): cannot serve: \(error)")
            Socket.close(listenFd)
            return
        }
        let listener = ServedListener(server: server, fd: listenFd)
        listeners[ObjectIdentifier(server)] = listener
        byFd[listenFd] = .listener(listener)
    }

    mutating func remove(_ server: ModbusStationServer) {
        guard let listener = listeners.removeValue(forKey: ObjectIdentifier(server)) else { return }
        for client in Array(listener.clients.values) { drop(client) }
        try? epoll.remove(listener.fd)
        byFd[listener.fd] = nil
        Socket.close(listener.fd)
    }

    /// Closes every listener and connection (the thread ends).
    mutating func close() {
        for listener in Array(listeners.values) { remove(listener.server) }
        scratch.deallocate()
    }

    mutating func ready(fd: Int32, events: UInt32) {
        switch byFd[fd] {
        case .listener(let listener)?: accept(listener)
        case .client(let client)?:
            if events & Epoll.writable != 0 { flush(client) }
            if events & Epoll.input != 0, byFd[fd] != nil { read(client) }
        case nil: break
        }
    }

    mutating func accept(_ listener: ServedListener) {
        while case .done(let fd)? = try? syscall("accept", { Glibc.accept(listener.fd, nil, nil) }) {
            if listener.server.behavior == .closeConnections {
                Socket.close(fd)
                continue
            }
            Socket.setNonBlocking(fd)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            Socket.setNoDelay(fd)
            do {
                try epoll.add(fd, Epoll.readable)
            } catch {
                logger.warning("\(listener.server.station.id): \(error)")
                Socket.close(fd)
                continue
            }
            let client = ServedClient(fd: fd, listener: listener)
            listener.clients[fd] = client
            byFd[fd] = .client(client)
        }
    }

    mutating func drop(_ client: ServedClient) {
        try? epoll.remove(client.fd)
        byFd[client.fd] = nil
        client.listener.clients[client.fd] = nil
        Socket.close(client.fd)
    }

    /// Reads what the client sent and answers every whole request in it with one send.
    mutating func read(_ client: ServedClient) {
        let count: Int
        switch try? syscall("recv", { recv(client.fd, scratch.baseAddress, scratch.count, 0) }) {
        case .done(let n)?: count = n
        case .wouldBlock?: return
        case nil: return drop(client)  // reset or another error
        }
        if count == 0 { return drop(client) }
        answers.removeAll(keepingCapacity: true)
        var keep = true
        if client.pending.isEmpty {
            let used = Self.answerRequests(UnsafeRawBufferPointer(rebasing: scratch[0..<count]), client, &keep, into: &answers)
            if keep && used < count { client.pending.append(contentsOf: scratch[used..<count]) }
        } else {
            client.pending.append(contentsOf: scratch[0..<count])
            let used = client.pending.withUnsafeBytes { Self.answerRequests($0, client, &keep, into: &answers) }
            if keep { client.pending.removeFirst(used) }
        }
        guard keep else { return drop(client) }
        if !answers.isEmpty { send(answers, to: client) }
    }

    /// Answers the whole requests at the front of `bytes` into `out`; returns the bytes used.
    /// `keep` turns false when the connection must close (a bad frame, or the server closes connections).
    private static func answerRequests(_ bytes: UnsafeRawBufferPointer, _ client: ServedClient, _ keep: inout Bool,
                                       into out: inout [UInt8]) -> Int {
        var used = 0
        while used < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[used...])
            switch ModbusServerFrame.parse(rest) {
            case .needMore:
                return used
            case .bad:
                keep = false
                return used
            case .request(let length):
                let request = UnsafeRawBufferPointer(rebasing: rest[0..<length])
                if !client.listener.server.answer(request, into: &out) {
                    keep = false
                    return used
                }
                used += length
            }
        }
        return used
    }

    mutating func send(_ bytes: [UInt8], to client: ServedClient) {
        if !client.outbound.isEmpty {
            client.outbound.append(contentsOf: bytes)
            if client.outbound.count > Self.maxOutbound { drop(client) }
            return
        }
        let sent: Int
        switch bytes.withUnsafeBytes({ raw in try? syscall("send", { Glibc.send(client.fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL)) }) }) {
        case .done(let n)?: sent = n
        case .wouldBlock?: sent = 0
        case nil: return drop(client)
        }
        if sent < bytes.count {
            client.outbound.append(contentsOf: bytes[sent...])
            watch(client, writable: true)
        }
    }

    mutating func flush(_ client: ServedClient) {
        while !client.outbound.isEmpty {
            switch client.outbound.withUnsafeBytes({ raw in try? syscall("send", { Glibc.send(client.fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL)) }) }) {
            case .done(let n)?: client.outbound.removeFirst(n)
            case .wouldBlock?: return
            case nil: return drop(client)
            }
        }
        watch(client, writable: false)
    }

    private func watch(_ client: ServedClient, writable: Bool) {
        guard client.watchingWrite != writable else { return }
        client.watchingWrite = writable
        try? epoll.modify(client.fd, writable ? Epoll.readable | Epoll.writable : Epoll.readable)
    }
}
