import Dispatch
import Foundation
import PlantModel
import Runtime

/// Polls one Modbus station (TCP or RTU) on its own thread and reports through an ``AdapterSink``.
///
/// A ``Service``: `run()` starts the station's thread and returns once its task is cancelled and
/// the thread has closed the connection (at most one response timeout later). Polls are
/// scheduled on absolute monotonic deadlines every `pollIntervalMs` (the first right after
/// connecting, then on the station's ``PollGrid``, whose phase spreads many stations over the
/// interval instead of waking them all at once); a slow poll skips the missed slots instead of
/// bursting. Every poll emits one ``StationPoll`` with one reading per
/// signal (`good`, or `bad` with the PLC's status); every connection change emits a
/// ``ConnectionChange``; going offline also emits the last values as `stale`.
/// `run()` is one-shot: make a new adapter to poll again.
public final class ModbusStationAdapter: StationAdapter, Sendable {
    public let config: StationConfig
    public var stationID: String { config.id }
    public var name: String { "modbus.\(config.id)" }

    private let sink: AdapterSink
    private let logger: Logger
    private let clock: any WallClock
    private let backoff: ReconnectBackoff

    /// What the poll thread shares with other threads.
    private struct Shared {
        var stats = StationStats()
        var stopRequested = false
        var connection: ConnectionState = .connecting
        var skippedSlots: UInt64 = 0
    }

    private let shared = Locked(Shared())
    private let wake = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - config: a `modbus` station (TCP or RTU endpoint).
    ///   - sink: receives polls and connection changes, on the station's thread.
    ///   - clock: the time stamped on polls and changes.
    ///   - backoff: reconnect delays (default 100 ms doubling to 5 s, 20 % jitter).
    public init(config: StationConfig, sink: @escaping AdapterSink, logger: Logger,
                clock: any WallClock = SystemWallClock(), backoff: ReconnectBackoff = ReconnectBackoff()) {
        self.config = config
        self.sink = sink
        self.logger = logger.with("station.id", config.id)
        self.clock = clock
        self.backoff = backoff
    }

    /// A snapshot of the polling figures. Thread-safe.
    public func stats() -> StationStats { shared.withLock { $0.stats } }

    /// The connection state last reported. Thread-safe.
    public var connectionState: ConnectionState { shared.withLock { $0.connection } }

    /// Poll slots skipped because a poll overran its interval. Thread-safe.
    public var skippedPollSlots: UInt64 { shared.withLock { $0.skippedSlots } }

    public func run() async throws {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let thread = Thread { [self] in
                    self.pollLoop()
                    done.resume()
                }
                thread.name = name
                thread.start()
            }
        } onCancel: {
            self.requestStop()
        }
    }

    /// Asks the poll thread to stop (also done by cancelling `run()`'s task). Thread-safe.
    public func requestStop() {
        shared.withLock { $0.stopRequested = true }
        wake.signal()
    }

    private var isStopping: Bool { shared.withLock { $0.stopRequested } }

    /// Sleeps until the monotonic deadline or a stop request.
    private func sleep(until deadline: UInt64) {
        let now = Monotonic.nanoseconds()
        guard deadline > now else { return }
        _ = wake.wait(timeout: .now() + .nanoseconds(Int(min(deadline - now, 60_000_000_000))))
    }

    // MARK: The poll thread

    private struct LoopState {
        var machine: ModbusLinkMachine
        var plan: ModbusReadPlan
        var lastValues: [SignalValue?]
        var nextDeadline: UInt64
    }

    private func pollLoop() {
        let connection = ModbusConnection(station: config.id, endpoint: config.endpoint, timeoutMs: config.timeoutMs)
        let start = Monotonic.nanoseconds()
        var loop = LoopState(machine: ModbusLinkMachine(backoff: backoff, now: start),
                             plan: ModbusReadPlan(signals: config.signals),
                             lastValues: Array(repeating: nil, count: config.signals.count),
                             nextDeadline: start)
        let interval = UInt64(max(1, config.pollIntervalMs)) * 1_000_000
        let grid = PollGrid(interval: interval, station: config.id)
        logger.debug("polling \(config.endpoint) every \(config.pollIntervalMs) ms, \(loop.plan.requests.count) requests")
        while !isStopping {
            if !connection.isOpen {
                perform(loop.machine.tick(now: Monotonic.nanoseconds()), connection, &loop)
                if !connection.isOpen {
                    if let wakeAt = loop.machine.wakeAt { sleep(until: wakeAt) }
                    continue
                }
            }
            let now = Monotonic.nanoseconds()
            if now < loop.nextDeadline {
                sleep(until: loop.nextDeadline)
                continue
            }
            poll(connection, &loop)
            loop.nextDeadline = grid.slot(after: loop.nextDeadline)
            let after = Monotonic.nanoseconds()
            if loop.nextDeadline <= after {
                let caughtUp = grid.slot(after: after)
                let missed = (caughtUp - loop.nextDeadline) / interval
                loop.nextDeadline = caughtUp
                shared.withLock { $0.skippedSlots += missed }
            }
        }
        perform(loop.machine.stop(), connection, &loop)
        connection.close()
        logger.debug("stopped")
    }

    private func perform(_ actions: [ModbusLinkMachine.Action], _ connection: ModbusConnection, _ loop: inout LoopState) {
        for action in actions {
            switch action {
            case .connect:
                do {
                    try connection.open()
                    loop.nextDeadline = Monotonic.nanoseconds()
                    perform(loop.machine.connectSucceeded(now: Monotonic.nanoseconds()), connection, &loop)
                } catch {
                    count(errorKinds: [error.kind], lastError: error.description)
                    perform(loop.machine.connectFailed(now: Monotonic.nanoseconds(), reason: error.description),
                            connection, &loop)
                }
            case .close:
                connection.close()
            case .countReconnect:
                shared.withLock { $0.stats.reconnects += 1 }
            case .report(let state, let reason):
                shared.withLock { $0.connection = state }
                if state == .offline {
                    logger.warning("offline: \(reason ?? "unknown")")
                } else {
                    logger.info("\(state)")
                }
                sink(.connection(ConnectionChange(station: config.id, state: state, time: clock.now(), reason: reason)))
            case .markStale:
                let readings = config.signals.indices.map { i in
                    SignalReading(name: config.signals[i].name, value: loop.lastValues[i], quality: .stale)
                }
                sink(.poll(StationPoll(station: config.id, time: clock.now(), readings: readings)))
            }
        }
    }

    private func count(errorKinds: [String], lastError: String?, polled: Bool = false, latencyMs: Double? = nil) {
        shared.withLock { shared in
            for kind in errorKinds { shared.stats.errors[kind, default: 0] += 1 }
            if polled { shared.stats.polls += 1 }
            if let latencyMs {
                shared.stats.lastLatencyMs = latencyMs
                shared.stats.latencySumMs += latencyMs
            }
            shared.stats.lastError = lastError
        }
    }

    private func poll(_ connection: ModbusConnection, _ loop: inout LoopState) {
        let signals = config.signals
        let started = Monotonic.nanoseconds()
        let time = clock.now()
        var readings = [SignalReading?](repeating: nil, count: signals.count)
        var errorKinds: [String] = []
        var lastError: String?
        var index = 0
        while index < loop.plan.requests.count {
            let request = loop.plan.requests[index]
            do {
                if request.table.isRegister {
                    let registers = try connection.readRegisters(request.table, start: request.start, count: request.count)
                    for i in request.signals {
                        let offset = signals[i].address!.index - request.start
                        let slice = registers[offset..<min(registers.count, offset + max(1, signals[i].registerCount))]
                        do {
                            readings[i] = SignalReading(name: signals[i].name,
                                                        value: try ModbusCodec.decode(signal: signals[i], registers: slice),
                                                        quality: .good)
                        } catch {
                            readings[i] = SignalReading(name: signals[i].name, value: nil, quality: .bad,
                                                        status: "\(error) at \(signals[i].address!)")
                        }
                    }
                } else {
                    let bits = try connection.readBits(request.table, start: request.start, count: request.count)
                    for i in request.signals {
                        let bit = bits[signals[i].address!.index - request.start]
                        readings[i] = SignalReading(name: signals[i].name,
                                                    value: ModbusCodec.decode(signal: signals[i], bit: bit), quality: .good)
                    }
                }
                index += 1
            } catch {
                errorKinds.append(error.kind)
                lastError = error.description
                guard error.isException else {
                    count(errorKinds: errorKinds, lastError: lastError)
                    perform(loop.machine.pollFailed(now: Monotonic.nanoseconds(), reason: error.description), connection, &loop)
                    return
                }
                if error.isIllegalDataAddress && request.signals.count > 1 {
                    logger.info("\(request) answered illegal data address: reading its \(request.signals.count) signals one by one")
                    loop.plan.split(at: index, signals: signals)
                    continue
                }
                for i in request.signals {
                    readings[i] = SignalReading(name: signals[i].name, value: nil, quality: .bad,
                                                status: "\(error.status) at \(signals[i].address!)")
                }
                index += 1
            }
        }
        let finished = Monotonic.nanoseconds()
        let latencyMs = Double(finished - started) / 1_000_000
        let complete = signals.indices.map { i in
            readings[i] ?? SignalReading(name: signals[i].name, value: nil, quality: .bad, status: "no Modbus address")
        }
        for i in signals.indices where complete[i].quality == .good { loop.lastValues[i] = complete[i].value }
        count(errorKinds: errorKinds, lastError: lastError, polled: true, latencyMs: latencyMs)
        perform(loop.machine.pollSucceeded(now: finished), connection, &loop)
        sink(.poll(StationPoll(station: config.id, time: time, readings: complete, latencyMs: latencyMs)))
    }
}

/// The poll slots of one station: every `interval` nanoseconds of monotonic time, offset by a phase
/// taken from the station id, so that stations with the same interval do not all wake (and load
/// the pipeline) at the same instant. The phase is stable across restarts. (`package`: the Modbus
/// benchmark's plain libmodbus loop polls on the same grid.)
package struct PollGrid: Sendable {
    let interval: UInt64
    let phase: UInt64

    package init(interval: UInt64, station: String) {
        self.interval = max(1, interval)
        // A stable hash of the id: the same phase in every process.
        phase = StableHash.fnv1a64(station) % self.interval
    }

    /// The first slot strictly after `time`.
    package func slot(after time: UInt64) -> UInt64 {
        guard time >= phase else { return phase }
        return phase + ((time - phase) / interval + 1) * interval
    }
}
