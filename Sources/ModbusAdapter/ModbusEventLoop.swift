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
        case resolved(ModbusLoopStationAdapter, attempt: UInt64, LoopStation.Resolution)
    }

    private let inbox: LoopInbox<Command>
    /// Where host names are looked up (`getaddrinfo` blocks), so the loop thread never waits for DNS.
    let resolver: DispatchQueue

    init(name: String, logger: Logger) {
        self.name = name
        self.logger = logger.with("loop", name)
        inbox = LoopInbox(name: name)
        resolver = DispatchQueue(label: "\(name).resolver")
    }

    /// Whether the loop thread runs now. Thread-safe.
    public var isRunning: Bool { inbox.isRunning }

    func add(_ adapter: ModbusLoopStationAdapter, done: CheckedContinuation<Void, Never>) {
        send(.add(adapter, done))
    }

    func remove(_ adapter: ModbusLoopStationAdapter) {
        send(.remove(adapter))
    }

    /// The resolver's answer for a station's connect attempt.
    func resolved(_ adapter: ModbusLoopStationAdapter, attempt: UInt64, _ resolution: LoopStation.Resolution) {
        send(.resolved(adapter, attempt: attempt, resolution))
    }

    private func send(_ command: Command) {
        do {
            try inbox.post(command) { [self] wake in runThread(wake: wake) }
        } catch {
            // No descriptor could be made (fd exhaustion): fail the station rather than hang.
            if case .add(let adapter, let done) = command {
                adapter.core.log.error("no event loop: cannot create an eventfd")
                done.resume()
            }
        }
    }

    // MARK: The loop thread

    private func runThread(wake: WakeFd) {
        guard let epoll = inbox.openEpoll(capacity: 256, wake: wake, failed: { [logger] commands, error in
            logger.error("cannot start: \(error)")
            for case .add(_, let done) in commands { done.resume() }
        }) else { return }
        var state = LoopState(epoll: epoll)
        var commands: [Command] = []
        while inbox.take(into: &commands, stopIfIdle: state.stations.isEmpty) {
            for command in commands {
                switch command {
                case .add(let adapter, let done):
                    let station = LoopStation(adapter: adapter, done: done, now: Monotonic.nanoseconds())
                    state.stations[ObjectIdentifier(adapter)] = station
                    if adapter.core.isStopping {
                        station.stop(&state)
                    } else {
                        station.start(&state)
                    }
                case .remove(let adapter):
                    state.stations[ObjectIdentifier(adapter)]?.stop(&state)
                case .resolved(let adapter, let attempt, let resolution):
                    state.stations[ObjectIdentifier(adapter)]?.resolved(attempt: attempt, resolution, &state)
                }
            }
            commands.removeAll(keepingCapacity: true)
            state.fireDueTimers()
            if state.stations.isEmpty { continue }
            let timeoutNs = state.timers.waitNs(atMost: 1_000_000_000)
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
    var timers = TimerHeap<LoopStation>()
    /// The timers of one turn, being fired (kept to reuse its storage).
    var due: [LoopStation] = []
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

    /// Timers due within this much after now fire in the same turn: polls that fall close together
    /// (and their timeouts) take one wake-up of the thread, not one each.
    static let coalesceNs: UInt64 = 1_000_000

    /// Fires every timer due now or within ``coalesceNs``: the due polls send all their requests
    /// before the loop waits for any answer.
    mutating func fireDueTimers() {
        let now = Monotonic.nanoseconds()
        let horizon = now + Self.coalesceNs
        timers.takeDue(by: horizon, into: &due)
        for station in due {
            // A timer fired early fires as at its time (a reconnect due in 0.5 ms connects now).
            station.timerFired(now: max(now, station.wakeAt), &self)
        }
        due.removeAll(keepingCapacity: true)
    }
}


/// One station's state on its loop thread: the socket, the link machine, the plan and the poll in
/// flight. Confined to the loop thread.
final class LoopStation: HeapTimed {
    /// What the resolver found for a host name: an address, or why not.
    enum Resolution: Sendable {
        case address(sockaddr_in)
        case failed(String)
    }

    let adapter: ModbusLoopStationAdapter
    private let core: ModbusStationCore
    private let done: CheckedContinuation<Void, Never>
    private let config: StationConfig
    private let host: String
    private let port: UInt16
    private let unit: UInt8
    /// The endpoint's address when the host is an IPv4 literal (no lookup needed).
    private let literalAddress: sockaddr_in?
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
        /// The host name is being looked up off the loop (attempt ``resolveAttempt``).
        case resolving
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
    /// The epoll interest registered for `fd`.
    private var interest: UInt32 = 0
    private var resolveAttempt: UInt64 = 0
    private var transaction: UInt16 = 0
    private var input: [UInt8] = []
    /// The request being sent (reused: one 12-byte frame at a time) and how much of it is sent.
    private var output: [UInt8] = []
    private var outputSent = 0

    // The poll in flight.
    private var requestIndex = 0
    private var pollStarted: UInt64 = 0
    private var pollTime = Date(timeIntervalSince1970: 0)
    private var readings: ModbusPollReadings

    init(adapter: ModbusLoopStationAdapter, done: CheckedContinuation<Void, Never>, now: UInt64) {
        self.adapter = adapter
        self.done = done
        core = adapter.core
        config = core.config
        if case let .modbusTCP(host, port, unit) = config.endpoint {
            self.host = host
            self.port = UInt16(clamping: port)
            self.unit = UInt8(clamping: unit)
        } else {
            host = ""; port = 0; unit = 0
        }
        literalAddress = try? Socket.ipv4Address(host: host, port: port)
        interval = UInt64(max(1, config.pollIntervalMs)) * 1_000_000
        grid = adapter.grid
        timeoutNs = UInt64(max(1, config.timeoutMs)) * 1_000_000
        machine = ModbusLinkMachine(backoff: core.backoff, now: now)
        plan = ModbusReadPlan(signals: config.signals)
        lastValues = Array(repeating: nil, count: config.signals.count)
        readings = ModbusPollReadings(signals: config.signals)
        input.reserveCapacity(512)
        output.reserveCapacity(ModbusTCPFrame.readRequestLength)
    }

    private func context(_ operation: String) -> ModbusError.Context {
        ModbusError.Context(station: config.id, operation: "\(operation) at \(config.endpoint)")
    }

    func start(_ loop: inout LoopState) {
        core.log.debug("polling \(config.endpoint) every \(config.pollIntervalMs) ms on \(plan.requests.count) requests (event loop)")
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
        core.log.debug("stopped")
        done.resume()
    }

    // MARK: Events

    func timerFired(now: UInt64, _ loop: inout LoopState) {
        switch phase {
        case .disconnected:
            perform(machine.tick(now: now), &loop)
            if phase == .disconnected, let at = machine.wakeAt { loop.schedule(self, at: at) }
        case .resolving:
            connectFailed(.timeout(context("look up \(host)")), &loop)
        case .connecting:
            connectFailed(.timeout(context("connect")), &loop)
        case .idle:
            startPoll(&loop)
        case .awaiting:
            requestFailed(.timeout(context("read \(plan.requests[requestIndex])")), &loop)
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
            if events & Epoll.writable != 0 && outputSent < output.count {
                flush(&loop)
                if phase != .awaiting && phase != .idle { return }
            }
            if events & Epoll.input != 0 { receive(&loop) }
        case .disconnected, .resolving, .stopped:
            break
        }
    }

    /// The resolver's answer; ignored unless it answers the lookup in progress.
    func resolved(attempt: UInt64, _ resolution: Resolution, _ loop: inout LoopState) {
        guard phase == .resolving, attempt == resolveAttempt else { return }
        loop.cancelTimer(self)
        switch resolution {
        case .address(let address):
            connect(to: address, &loop)
        case .failed(let reason):
            connectFailed(.other(errno: EINVAL, context("connect (\(reason))")), &loop)
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
                core.countReconnect()
            case .report(let state, let reason):
                core.report(state, reason: reason)
            case .markStale:
                core.markStale(lastValues)
            }
        }
    }

    /// Connects to the IPv4 literal, or has the resolver look the host name up first (again on
    /// every reconnect, so a PLC whose address changed is found), with the connect timeout.
    private func beginConnect(_ loop: inout LoopState) {
        if let literalAddress {
            connect(to: literalAddress, &loop)
            return
        }
        phase = .resolving
        resolveAttempt &+= 1
        let attempt = resolveAttempt, adapter = adapter, host = host, port = port
        loop.schedule(self, at: Monotonic.nanoseconds() + timeoutNs)
        adapter.loop.resolver.async {
            adapter.loop.resolved(adapter, attempt: attempt, Self.resolve(host: host, port: port))
        }
    }

    private func connect(to address: sockaddr_in, _ loop: inout LoopState) {
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
            interest = Epoll.writable | Epoll.readable
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

    /// Registers `wanted` for the socket unless it already is.
    private func want(_ wanted: UInt32, _ loop: inout LoopState) {
        guard fd >= 0, wanted != interest else { return }
        try? loop.epoll.modify(fd, wanted)
        interest = wanted
    }

    private func connected(_ loop: inout LoopState) {
        want(Epoll.readable, &loop)
        phase = .idle
        input.removeAll(keepingCapacity: true)
        output.removeAll(keepingCapacity: true)
        outputSent = 0
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
        core.count(errorKinds: [error.kind], lastError: error.description)
        perform(machine.connectFailed(now: Monotonic.nanoseconds(), reason: error.description), &loop)
        if phase == .disconnected, let at = machine.wakeAt { loop.schedule(self, at: at) }
    }

    private func closeSocket(_ loop: inout LoopState) {
        guard fd >= 0 else { return }
        try? loop.epoll.remove(fd)
        loop.byFd[fd] = nil
        Socket.close(fd)
        fd = -1
        interest = 0
        input.removeAll(keepingCapacity: true)
        output.removeAll(keepingCapacity: true)
        outputSent = 0
    }

    /// The first IPv4 address of a host name (blocking: run on the loop's resolver, never on the loop).
    static func resolve(host: String, port: UInt16) -> Resolution {
        if let address = try? Socket.ipv4Address(host: host, port: port) { return .address(address) }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list, let raw = first.pointee.ai_addr else {
            if status == 0 { freeaddrinfo(list) }
            return .failed("getaddrinfo: host \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
        address.sin_port = port.bigEndian
        return .address(address)
    }

    // MARK: Polling

    private func startPoll(_ loop: inout LoopState) {
        pollStarted = Monotonic.nanoseconds()
        pollTime = core.clock.now()
        readings = ModbusPollReadings(signals: config.signals)
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
        output.removeAll(keepingCapacity: true)
        ModbusTCPFrame.appendReadRequest(to: &output, transaction: transaction, unit: unit, table: request.table,
                                         start: request.start, count: request.count)
        outputSent = 0
        phase = .awaiting
        loop.schedule(self, at: Monotonic.nanoseconds() + timeoutNs)
        flush(&loop)
    }

    /// Sends what is left of `output`; waits for writability only when the socket took less.
    private func flush(_ loop: inout LoopState) {
        guard outputSent < output.count else { return }
        let sent = output.withUnsafeBytes { bytes in
            Glibc.send(fd, bytes.baseAddress! + outputSent, bytes.count - outputSent, Int32(MSG_NOSIGNAL))
        }
        if sent < 0 {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR {
                want(Epoll.readable | Epoll.writable, &loop)
                return
            }
            requestFailed(.from(errno: code, context: context("read \(plan.requests[requestIndex])")), &loop)
            return
        }
        outputSent += sent
        want(outputSent < output.count ? Epoll.readable | Epoll.writable : Epoll.readable, &loop)
    }

    /// What failed, for an error's context (built only when there is an error).
    private var operation: String {
        phase == .awaiting ? "read \(plan.requests[requestIndex])" : "idle connection"
    }

    private func receive(_ loop: inout LoopState) {
        let scratch = loop.scratch
        while true {
            let n = Glibc.recv(fd, scratch.baseAddress, scratch.count, 0)
            if n > 0 {
                input.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
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
                                                        count: request.count, context: self.context(self.operation))
        } catch {
            if error.isException, let length = Self.frameLength(input) {
                guard input.count == length else {
                    requestFailed(.badResponse(context(operation)), &loop)
                    return
                }
                input.removeAll(keepingCapacity: true)
            }
            requestFailed(error, &loop)
            return
        }
        guard case .answer(let payload, let length) = parsed else { return }
        guard input.count == length else {
            requestFailed(.badResponse(context(operation)), &loop)
            return
        }
        input.removeAll(keepingCapacity: true)
        switch payload {
        case .registers(let registers): readings.answer(request, registers: registers)
        case .bits(let bits): readings.answer(request, bits: bits)
        }
        requestIndex += 1
        sendOrFinish(&loop)
    }

    private static func frameLength(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 6 else { return nil }
        return 6 + (Int(buffer[4]) << 8 | Int(buffer[5]))
    }

    /// A request failed: a Modbus exception marks its signals bad (or splits the request on an
    /// illegal address); anything else fails the poll at the connection level.
    private func requestFailed(_ error: ModbusError, _ loop: inout LoopState) {
        guard phase == .awaiting, error.isException else {
            if phase == .awaiting {
                readings.record(error)
                core.count(errorKinds: readings.errorKinds, lastError: error.description)
            } else {
                core.count(errorKinds: [error.kind], lastError: error.description)
            }
            closeSocket(&loop)
            phase = .disconnected
            perform(machine.pollFailed(now: Monotonic.nanoseconds(), reason: error.description), &loop)
            if phase == .disconnected, let at = machine.wakeAt { loop.schedule(self, at: at) }
            return
        }
        readings.record(error)
        let request = plan.requests[requestIndex]
        if error.isIllegalDataAddress && request.signals.count > 1 {
            core.log.info("\(request) answered illegal data address: reading its \(request.signals.count) signals one by one")
            plan.split(at: requestIndex, signals: config.signals)
        } else {
            readings.markBad(request, error)
            requestIndex += 1
        }
        sendOrFinish(&loop)
    }

    private func finishPoll(_ loop: inout LoopState) {
        let finished = Monotonic.nanoseconds()
        let latencyMs = Double(finished - pollStarted) / 1_000_000
        let complete = readings.complete(lastValues: &lastValues)
        phase = .idle
        // The next slot on the station's grid; a late poll skips the slots it missed instead of
        // shifting the schedule.
        var next = grid.slot(after: nextDeadline)
        var skipped: UInt64 = 0
        if next <= finished {
            let caughtUp = grid.slot(after: finished)
            skipped = (caughtUp - next) / interval
            next = caughtUp
        }
        core.pollFinished(readings, latencyMs: latencyMs, skipped: skipped, nextDeadline: next)
        perform(machine.pollSucceeded(now: finished), &loop)
        core.emit(.poll(StationPoll(station: config.id, time: pollTime, readings: complete, latencyMs: latencyMs)))
        guard phase == .idle else { return }
        nextDeadline = next
        loop.schedule(self, at: nextDeadline)
    }
}
