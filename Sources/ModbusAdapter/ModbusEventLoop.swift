#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PlantModel
import Runtime

/// A few threads that poll many Modbus TCP stations (docs/ARCHITECTURE.md, "Modbus TCP on event loops").
///
/// Each station is assigned to one loop, round-robin. Loop threads start with their first station
/// and end when their last station has stopped, so the group needs no service of its own.
public final class ModbusEventLoopGroup: Sendable {
    public let loops: [ModbusEventLoop]
    private let nextIndex = Locked(0)

    /// Stations per loop thread before another thread is worth its wake-ups.
    public static let stationsPerThread = 250

    /// The default number of loop threads for `stations` TCP stations: one per 250, at least one,
    /// at most the number of cores.
    public static func defaultThreadCount(stations: Int) -> Int {
        let wanted = (max(1, stations) + stationsPerThread - 1) / stationsPerThread
        return max(1, min(wanted, ProcessInfo.processInfo.activeProcessorCount))
    }

    public init(threads: Int, logger: Logger) {
        loops = (0..<max(1, threads)).map { ModbusEventLoop(name: "modbus.loop\($0)", logger: logger) }
    }

    /// The loop for the next station (round-robin). Thread-safe.
    public func next() -> ModbusEventLoop {
        let index = nextIndex.withLock { index -> Int in
            defer { index += 1 }
            return index
        }
        return loops[index % loops.count]
    }
}

/// One event-loop thread (epoll) polling many Modbus TCP stations on non-blocking sockets.
///
/// Stations are added by ``ModbusLoopStationAdapter/run()`` and removed when it is cancelled; all
/// their state lives on the loop thread. Timers (poll deadlines, response and connect timeouts,
/// reconnects) are absolute monotonic deadlines in one heap; epoll waits until the earliest.
public final class ModbusEventLoop: Sendable {
    public let name: String
    private let logger: Logger

    private enum Command: Sendable {
        case add(ModbusLoopStationAdapter, CheckedContinuation<Void, Never>)
        case remove(ModbusLoopStationAdapter)
    }

    private struct Shared {
        var inbox: [Command] = []
        /// The running thread's wake descriptor; nil while no thread runs.
        var wake: WakeFd?
    }

    private let shared = Locked(Shared())

    init(name: String, logger: Logger) {
        self.name = name
        self.logger = logger.with("loop", name)
    }

    /// Whether the loop thread runs now. Thread-safe.
    public var isRunning: Bool { shared.withLock { $0.wake != nil } }

    func add(_ adapter: ModbusLoopStationAdapter, done: CheckedContinuation<Void, Never>) {
        send(.add(adapter, done))
    }

    func remove(_ adapter: ModbusLoopStationAdapter) {
        send(.remove(adapter))
    }

    private func send(_ command: Command) {
        let (wake, start): (WakeFd?, Bool) = shared.withLock { shared in
            shared.inbox.append(command)
            if let wake = shared.wake { return (wake, false) }
            guard let wake = try? WakeFd() else { return (nil, false) }
            shared.wake = wake
            return (wake, true)
        }
        if start, let wake {
            startThread(named: name) { [self] in self.runThread(wake: wake) }
        } else {
            wake?.signal()
        }
        if wake == nil {
            // No descriptor could be made (fd exhaustion): fail the stations rather than hang.
            let commands = shared.withLock { shared -> [Command] in defer { shared.inbox.removeAll() }; return shared.inbox }
            for case .add(let adapter, let done) in commands {
                adapter.log.error("no event loop: cannot create an eventfd")
                done.resume()
            }
        }
    }

    // MARK: The loop thread

    private func runThread(wake: WakeFd) {
        let epoll: Epoll
        do {
            epoll = try Epoll(capacity: 256, context: name)
            try epoll.add(wake.fd, Epoll.readable)
        } catch {
            logger.error("cannot start: \(error)")
            shared.withLock { $0.wake = nil }
            wake.close()
            let commands = shared.withLock { shared -> [Command] in defer { shared.inbox.removeAll() }; return shared.inbox }
            for case .add(_, let done) in commands { done.resume() }
            return
        }
        var state = LoopState(epoll: epoll)
        while true {
            let commands: [Command]? = shared.withLock { shared in
                if shared.inbox.isEmpty && state.stations.isEmpty {
                    shared.wake = nil  // the next add starts a new thread
                    return nil
                }
                defer { shared.inbox.removeAll() }
                return shared.inbox
            }
            guard let commands else { break }
            for command in commands {
                switch command {
                case .add(let adapter, let done):
                    let station = LoopStation(adapter: adapter, done: done, now: Monotonic.nanoseconds())
                    state.stations[ObjectIdentifier(adapter)] = station
                    if adapter.isStopping {
                        station.stop(&state)
                    } else {
                        station.start(&state)
                    }
                case .remove(let adapter):
                    state.stations[ObjectIdentifier(adapter)]?.stop(&state)
                }
            }
            state.fireDueTimers()
            if state.stations.isEmpty { continue }
            var timeoutNs: UInt64 = 1_000_000_000
            if let next = state.timers.first?.wakeAt {
                let now = Monotonic.nanoseconds()
                timeoutNs = next <= now ? 0 : min(timeoutNs, next - now)
            }
            do {
                try epoll.wait(timeoutNs: timeoutNs) { fd, events in
                    if fd == wake.fd {
                        wake.drain()
                    } else if let station = state.byFd[fd] {
                        station.ready(events: events, &state)
                    }
                }
            } catch {
                logger.error("epoll_wait failed: \(error)")
            }
        }
        state.scratch.deallocate()
        epoll.close()
        wake.close()
    }
}

/// Everything the loop thread owns.
struct LoopState {
    let epoll: Epoll
    var stations: [ObjectIdentifier: LoopStation] = [:]
    var byFd: [Int32: LoopStation] = [:]
    /// The stations' wake-up times: a min-heap with one entry per station that has one (the
    /// station knows its place in it, so a new time moves the entry instead of adding one).
    var timers = TimerHeap()
    /// The receive buffer all stations of the loop read into (one thread: one buffer).
    let scratch: UnsafeMutableRawBufferPointer

    init(epoll: Epoll) {
        self.epoll = epoll
        scratch = .allocate(byteCount: 4096, alignment: 8)
    }

    /// Sets the station's one wake-up time (replacing any earlier one).
    mutating func schedule(_ station: LoopStation, at deadline: UInt64) {
        timers.set(station, at: deadline)
    }

    /// Stops the station's timer.
    mutating func cancelTimer(_ station: LoopStation) {
        timers.remove(station)
    }

    mutating func fireDueTimers() {
        let now = Monotonic.nanoseconds()
        while let top = timers.first, top.wakeAt <= now {
            timers.remove(top)
            top.timerFired(now: now, &self)
        }
    }
}

/// A binary min-heap of stations by ``LoopStation/wakeAt``; each station holds its index.
struct TimerHeap {
    private var items: [LoopStation] = []

    var first: LoopStation? { items.first }
    var count: Int { items.count }

    mutating func set(_ station: LoopStation, at deadline: UInt64) {
        if station.heapIndex < 0 {
            station.wakeAt = deadline
            station.heapIndex = items.count
            items.append(station)
            up(station.heapIndex)
        } else {
            let earlier = deadline < station.wakeAt
            station.wakeAt = deadline
            if earlier { up(station.heapIndex) } else { down(station.heapIndex) }
        }
    }

    mutating func remove(_ station: LoopStation) {
        let index = station.heapIndex
        guard index >= 0 else { return }
        let last = items.count - 1
        if index != last { swap(index, last) }
        items.removeLast()
        station.heapIndex = -1
        if index < items.count {
            up(index)
            down(index)
        }
    }

    private mutating func swap(_ a: Int, _ b: Int) {
        items.swapAt(a, b)
        items[a].heapIndex = a
        items[b].heapIndex = b
    }

    private mutating func up(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].wakeAt < items[parent].wakeAt else { break }
            swap(child, parent)
            child = parent
        }
    }

    private mutating func down(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left].wakeAt < items[smallest].wakeAt { smallest = left }
            if right < items.count && items[right].wakeAt < items[smallest].wakeAt { smallest = right }
            if smallest == parent { break }
            swap(parent, smallest)
            parent = smallest
        }
    }
}

/// One station's state on its loop thread: the socket, the link machine, the plan and the poll in
/// flight. Confined to the loop thread.
final class LoopStation {
    let adapter: ModbusLoopStationAdapter
    private let done: CheckedContinuation<Void, Never>
    private let config: StationConfig
    private let host: String
    private let port: UInt16
    private let unit: UInt8
    private let interval: UInt64
    private let grid: PollGrid
    private let timeoutNs: UInt64

    private var machine: ModbusLinkMachine
    private var plan: ModbusReadPlan
    private var lastValues: [SignalValue?]
    private var nextDeadline: UInt64 = 0
    /// When the loop next calls ``timerFired(now:_:)`` (monotonic ns), while `heapIndex >= 0`.
    var wakeAt: UInt64 = 0
    /// The station's place in the loop's ``TimerHeap``; -1 when no timer is set.
    var heapIndex = -1

    private enum Phase {
        /// No socket; waiting for the link machine's reconnect time.
        case disconnected
        /// Non-blocking connect in progress.
        case connecting
        /// Connected, waiting for the next poll deadline.
        case idle
        /// A request is on the wire.
        case awaiting
        case stopped
    }
    private var phase = Phase.disconnected
    private var fd: Int32 = -1
    private var transaction: UInt16 = 0
    private var input: [UInt8] = []
    private var pendingOutput: [UInt8] = []

    // The poll in flight.
    private var requestIndex = 0
    private var pollStarted: UInt64 = 0
    private var pollTime = Date(timeIntervalSince1970: 0)
    private var readings: [SignalReading?] = []
    private var errorKinds: [String] = []
    private var lastError: String?

    init(adapter: ModbusLoopStationAdapter, done: CheckedContinuation<Void, Never>, now: UInt64) {
        self.adapter = adapter
        self.done = done
        config = adapter.config
        if case let .modbusTCP(host, port, unit) = config.endpoint {
            self.host = host
            self.port = UInt16(clamping: port)
            self.unit = UInt8(clamping: unit)
        } else {
            host = ""; port = 0; unit = 0
        }
        interval = UInt64(max(1, config.pollIntervalMs)) * 1_000_000
        grid = PollGrid(interval: interval, station: config.id)
        timeoutNs = UInt64(max(1, config.timeoutMs)) * 1_000_000
        machine = ModbusLinkMachine(backoff: adapter.backoff, now: now)
        plan = ModbusReadPlan(signals: config.signals)
        lastValues = Array(repeating: nil, count: config.signals.count)
    }

    private func context(_ operation: String) -> ModbusError.Context {
        ModbusError.Context(station: config.id, operation: "\(operation) at \(config.endpoint)")
    }

    func start(_ loop: inout LoopState) {
        adapter.log.debug("polling \(config.endpoint) every \(config.pollIntervalMs) ms on \(plan.requests.count) requests (event loop)")
        perform(machine.tick(now: Monotonic.nanoseconds()), &loop)
        if phase == .disconnected, let at = machine.wakeAt { loop.schedule(self, at: at) }
    }

    func stop(_ loop: inout LoopState) {
        guard phase != .stopped else { return }
        perform(machine.stop(), &loop)
        closeSocket(&loop)
        phase = .stopped
        loop.cancelTimer(self)
        loop.stations[ObjectIdentifier(adapter)] = nil
        adapter.log.debug("stopped")
        done.resume()
    }

    // MARK: Events

    func timerFired(now: UInt64, _ loop: inout LoopState) {
        switch phase {
        case .disconnected:
            perform(machine.tick(now: now), &loop)
            if phase == .disconnected, let at = machine.wakeAt { loop.schedule(self, at: at) }
        case .connecting:
            connectFailed(.timeout(context("connect")), &loop)
        case .idle:
            startPoll(&loop)
        case .awaiting:
            let request = plan.requests[requestIndex]
            requestFailed(.timeout(context("read \(request)")), &loop)
        case .stopped:
            break
        }
    }

    func ready(events: UInt32, _ loop: inout LoopState) {
        switch phase {
        case .connecting:
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError != 0 {
                connectFailed(.from(errno: soError, context: context("connect")), &loop)
            } else if events & (Epoll.error | Epoll.hangup) != 0 {
                connectFailed(.connectionClosed(context("connect")), &loop)
            } else {
                connected(&loop)
            }
        case .idle, .awaiting:
            if events & Epoll.writable != 0 && !pendingOutput.isEmpty {
                flush(&loop)
                if phase != .awaiting && phase != .idle { return }
            }
            if events & Epoll.input != 0 { receive(&loop) }
        case .disconnected, .stopped:
            break
        }
    }

    // MARK: Connection

    private func perform(_ actions: [ModbusLinkMachine.Action], _ loop: inout LoopState) {
        for action in actions {
            switch action {
            case .connect:
                beginConnect(&loop)
            case .close:
                closeSocket(&loop)
                if phase != .stopped { phase = .disconnected }
            case .countReconnect:
                adapter.countReconnect()
            case .report(let state, let reason):
                adapter.report(state, reason: reason)
            case .markStale:
                let readings = config.signals.indices.map { i in
                    SignalReading(name: config.signals[i].name, value: lastValues[i], quality: .stale)
                }
                adapter.emit(.poll(StationPoll(station: config.id, time: adapter.clock.now(), readings: readings)))
            }
        }
    }

    private func beginConnect(_ loop: inout LoopState) {
        let address: sockaddr_in
        do {
            address = try Self.resolve(host: host, port: port)
        } catch {
            connectFailed(.other(errno: EINVAL, context("connect (\(error))")), &loop)
            return
        }
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard socket >= 0 else {
            connectFailed(.from(errno: errno, context: context("connect")), &loop)
            return
        }
        Socket.setNoDelay(socket)
        var target = address
        var result: Int32
        repeat {
            result = withUnsafePointer(to: &target) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } while result != 0 && errno == EINTR
        let code = result == 0 ? 0 : errno
        if result != 0 && code != EINPROGRESS {
            Socket.close(socket)
            connectFailed(.from(errno: code, context: context("connect")), &loop)
            return
        }
        fd = socket
        loop.byFd[fd] = self
        do {
            try loop.epoll.add(fd, Epoll.writable | Epoll.readable)
        } catch {
            connectFailed(.other(errno: (error as? SystemError)?.errno ?? EIO, context("connect")), &loop)
            return
        }
        phase = .connecting
        if result == 0 {
            connected(&loop)
        } else {
            loop.schedule(self, at: Monotonic.nanoseconds() + timeoutNs)
        }
    }

    private func connected(_ loop: inout LoopState) {
        try? loop.epoll.modify(fd, Epoll.readable)
        phase = .idle
        input.removeAll(keepingCapacity: true)
        pendingOutput.removeAll()
        let now = Monotonic.nanoseconds()
        perform(machine.connectSucceeded(now: now), &loop)
        guard phase == .idle else { return }
        // The first poll right after connecting, as the thread-per-PLC adapter does.
        nextDeadline = now
        startPoll(&loop)
    }

    private func connectFailed(_ error: ModbusError, _ loop: inout LoopState) {
        closeSocket(&loop)
        phase = .disconnected
        adapter.count(errorKinds: [error.kind], lastError: error.description)
        perform(machine.connectFailed(now: Monotonic.nanoseconds(), reason: error.description), &loop)
        if phase == .disconnected, let at = machine.wakeAt { loop.schedule(self, at: at) }
    }

    private func closeSocket(_ loop: inout LoopState) {
        guard fd >= 0 else { return }
        try? loop.epoll.remove(fd)
        loop.byFd[fd] = nil
        Socket.close(fd)
        fd = -1
        input.removeAll(keepingCapacity: true)
        pendingOutput.removeAll()
    }

    /// An IPv4 address, or the first IPv4 address of a host name (a blocking lookup: give PLCs as
    /// addresses in the config for large plants).
    static func resolve(host: String, port: UInt16) throws -> sockaddr_in {
        if let address = try? Socket.ipv4Address(host: host, port: port) { return address }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list, let raw = first.pointee.ai_addr else {
            throw SystemError(call: "getaddrinfo", errno: EINVAL, context: "host \(host)")
        }
        defer { freeaddrinfo(list) }
        var address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
        address.sin_port = port.bigEndian
        return address
    }

    // MARK: Polling

    private func startPoll(_ loop: inout LoopState) {
        pollStarted = Monotonic.nanoseconds()
        pollTime = adapter.clock.now()
        readings = [SignalReading?](repeating: nil, count: config.signals.count)
        errorKinds = []
        lastError = nil
        requestIndex = 0
        sendOrFinish(&loop)
    }

    /// Sends the current request, or finishes the poll when none is left.
    private func sendOrFinish(_ loop: inout LoopState) {
        guard requestIndex < plan.requests.count else {
            finishPoll(&loop)
            return
        }
        let request = plan.requests[requestIndex]
        transaction &+= 1
        pendingOutput = ModbusTCPFrame.readRequest(transaction: transaction, unit: unit, table: request.table,
                                                   start: request.start, count: request.count)
        phase = .awaiting
        loop.schedule(self, at: Monotonic.nanoseconds() + timeoutNs)
        flush(&loop)
    }

    private func flush(_ loop: inout LoopState) {
        guard !pendingOutput.isEmpty else { return }
        let sent = pendingOutput.withUnsafeBytes { bytes in
            Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
        }
        if sent < 0 {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR {
                try? loop.epoll.modify(fd, Epoll.readable | Epoll.writable)
                return
            }
            requestFailed(.from(errno: code, context: context("read \(plan.requests[requestIndex])")), &loop)
            return
        }
        pendingOutput.removeFirst(sent)
        try? loop.epoll.modify(fd, pendingOutput.isEmpty ? Epoll.readable : Epoll.readable | Epoll.writable)
    }

    private func receive(_ loop: inout LoopState) {
        let scratch = loop.scratch
        let operation = phase == .awaiting ? "read \(plan.requests[requestIndex])" : "idle connection"
        while true {
            let n = Glibc.recv(fd, scratch.baseAddress, scratch.count, 0)
            if n > 0 {
                input.append(contentsOf: scratch[0..<n])
                if n < scratch.count { break }
                continue
            }
            if n == 0 {
                requestFailed(.connectionClosed(context(operation)), &loop)
                return
            }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { break }
            requestFailed(.from(errno: code, context: context(operation)), &loop)
            return
        }
        guard phase == .awaiting else {
            // Bytes nobody asked for: the stream is out of step.
            if !input.isEmpty { requestFailed(.badResponse(context(operation)), &loop) }
            return
        }
        let request = plan.requests[requestIndex]
        let parsed: ModbusTCPFrame.Parsed
        do {
            parsed = try ModbusTCPFrame.parseReadAnswer(input, transaction: transaction, unit: unit, table: request.table,
                                                        count: request.count, context: context(operation))
        } catch {
            if error.isException, let length = Self.frameLength(input) {
                input.removeFirst(min(length, input.count))
                guard input.isEmpty else {
                    requestFailed(.badResponse(context(operation)), &loop)
                    return
                }
            }
            requestFailed(error, &loop)
            return
        }
        guard case .answer(let payload, let length) = parsed else { return }
        input.removeFirst(length)
        guard input.isEmpty else {
            requestFailed(.badResponse(context(operation)), &loop)
            return
        }
        answered(request, payload, &loop)
    }

    private static func frameLength(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 6 else { return nil }
        return 6 + (Int(buffer[4]) << 8 | Int(buffer[5]))
    }

    private func answered(_ request: ModbusReadRequest, _ payload: ModbusTCPFrame.Payload, _ loop: inout LoopState) {
        let signals = config.signals
        switch payload {
        case .registers(let registers):
            for i in request.signals {
                let offset = signals[i].address!.index - request.start
                let slice = registers[offset..<min(registers.count, offset + max(1, signals[i].registerCount))]
                do {
                    readings[i] = SignalReading(name: signals[i].name,
                                                value: try ModbusCodec.decode(signal: signals[i], registers: slice), quality: .good)
                } catch {
                    readings[i] = SignalReading(name: signals[i].name, value: nil, quality: .bad,
                                                status: "\(error) at \(signals[i].address!)")
                }
            }
        case .bits(let bits):
            for i in request.signals {
                let bit = bits[signals[i].address!.index - request.start]
                readings[i] = SignalReading(name: signals[i].name, value: ModbusCodec.decode(signal: signals[i], bit: bit), quality: .good)
            }
        }
        requestIndex += 1
        sendOrFinish(&loop)
    }

    /// A request failed: a Modbus exception marks its signals bad (or splits the request on an
    /// illegal address); anything else fails the poll at the connection level.
    private func requestFailed(_ error: ModbusError, _ loop: inout LoopState) {
        guard phase == .awaiting, error.isException else {
            errorKinds.append(error.kind)
            lastError = error.description
            adapter.count(errorKinds: phase == .awaiting ? errorKinds : [error.kind], lastError: error.description)
            closeSocket(&loop)
            phase = .disconnected
            perform(machine.pollFailed(now: Monotonic.nanoseconds(), reason: error.description), &loop)
            if phase == .disconnected, let at = machine.wakeAt { loop.schedule(self, at: at) }
            return
        }
        errorKinds.append(error.kind)
        lastError = error.description
        let request = plan.requests[requestIndex]
        if error.isIllegalDataAddress && request.signals.count > 1 {
            adapter.log.info("\(request) answered illegal data address: reading its \(request.signals.count) signals one by one")
            plan.split(at: requestIndex, signals: config.signals)
        } else {
            for i in request.signals {
                readings[i] = SignalReading(name: config.signals[i].name, value: nil, quality: .bad,
                                            status: "\(error.status) at \(config.signals[i].address!)")
            }
            requestIndex += 1
        }
        sendOrFinish(&loop)
    }

    private func finishPoll(_ loop: inout LoopState) {
        let signals = config.signals
        let finished = Monotonic.nanoseconds()
        let latencyMs = Double(finished - pollStarted) / 1_000_000
        let complete = signals.indices.map { i in
            readings[i] ?? SignalReading(name: signals[i].name, value: nil, quality: .bad, status: "no Modbus address")
        }
        for i in signals.indices where complete[i].quality == .good { lastValues[i] = complete[i].value }
        adapter.count(errorKinds: errorKinds, lastError: lastError, polled: true, latencyMs: latencyMs)
        phase = .idle
        perform(machine.pollSucceeded(now: finished), &loop)
        adapter.emit(.poll(StationPoll(station: config.id, time: pollTime, readings: complete, latencyMs: latencyMs)))
        guard phase == .idle else { return }
        // The next slot on the station's grid; a late poll skips the slots it missed instead of
        // shifting the schedule.
        nextDeadline = grid.slot(after: nextDeadline)
        if nextDeadline <= finished {
            let caughtUp = grid.slot(after: finished)
            adapter.countSkipped((caughtUp - nextDeadline) / interval)
            nextDeadline = caughtUp
        }
        adapter.recordDeadline(nextDeadline)
        loop.schedule(self, at: nextDeadline)
    }
}
