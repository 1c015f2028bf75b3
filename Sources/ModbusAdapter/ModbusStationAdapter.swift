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
    public var config: StationConfig { core.config }
    public var stationID: String { config.id }
    public var name: String { "modbus.\(config.id)" }

    private let core: ModbusStationCore
    private let wake = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - config: a `modbus` station (TCP or RTU endpoint).
    ///   - sink: receives polls and connection changes, on the station's thread.
    ///   - clock: the time stamped on polls and changes.
    ///   - backoff: reconnect delays (default 100 ms doubling to 5 s, 20 % jitter).
    public init(config: StationConfig, sink: @escaping AdapterSink, logger: Logger,
                clock: any WallClock = SystemWallClock(), backoff: ReconnectBackoff = ReconnectBackoff()) {
        core = ModbusStationCore(config: config, sink: sink, logger: logger, clock: clock, backoff: backoff)
    }

    /// A snapshot of the polling figures. Thread-safe.
    public func stats() -> StationStats { core.stats }

    /// The connection state last reported. Thread-safe.
    public var connectionState: ConnectionState { core.connection }

    /// Poll slots skipped because a poll overran its interval. Thread-safe.
    public var skippedPollSlots: UInt64 { core.skippedSlots }

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
        core.requestStop()
        wake.signal()
    }

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
        var loop = LoopState(machine: ModbusLinkMachine(backoff: core.backoff, now: start),
                             plan: ModbusReadPlan(signals: config.signals),
                             lastValues: Array(repeating: nil, count: config.signals.count),
                             nextDeadline: start)
        let interval = UInt64(max(1, config.pollIntervalMs)) * 1_000_000
        let grid = PollGrid(interval: interval, station: config.id)
        core.log.debug("polling \(config.endpoint) every \(config.pollIntervalMs) ms, \(loop.plan.requests.count) requests")
        while !core.isStopping {
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
                core.countSkipped((caughtUp - loop.nextDeadline) / interval)
                loop.nextDeadline = caughtUp
            }
        }
        perform(loop.machine.stop(), connection, &loop)
        connection.close()
        core.log.debug("stopped")
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
                    core.count(errorKinds: [error.kind], lastError: error.description)
                    perform(loop.machine.connectFailed(now: Monotonic.nanoseconds(), reason: error.description),
                            connection, &loop)
                }
            case .close:
                connection.close()
            case .countReconnect:
                core.countReconnect()
            case .report(let state, let reason):
                core.report(state, reason: reason)
            case .markStale:
                core.markStale(loop.lastValues)
            }
        }
    }

    private func poll(_ connection: ModbusConnection, _ loop: inout LoopState) {
        let started = Monotonic.nanoseconds()
        let time = core.clock.now()
        var readings = ModbusPollReadings(signals: config.signals)
        var index = 0
        while index < loop.plan.requests.count {
            let request = loop.plan.requests[index]
            do {
                if request.table.isRegister {
                    readings.answer(request, registers: try connection.readRegisters(request.table, start: request.start, count: request.count))
                } else {
                    readings.answer(request, bits: try connection.readBits(request.table, start: request.start, count: request.count))
                }
                index += 1
            } catch {
                readings.record(error)
                guard error.isException else {
                    core.count(errorKinds: readings.errorKinds, lastError: readings.lastError)
                    perform(loop.machine.pollFailed(now: Monotonic.nanoseconds(), reason: error.description), connection, &loop)
                    return
                }
                if error.isIllegalDataAddress && request.signals.count > 1 {
                    core.log.info("\(request) answered illegal data address: reading its \(request.signals.count) signals one by one")
                    loop.plan.split(at: index, signals: config.signals)
                    continue
                }
                readings.markBad(request, error)
                index += 1
            }
        }
        let finished = Monotonic.nanoseconds()
        let latencyMs = Double(finished - started) / 1_000_000
        let complete = readings.complete(lastValues: &loop.lastValues)
        core.pollFinished(readings, latencyMs: latencyMs)
        perform(loop.machine.pollSucceeded(now: finished), connection, &loop)
        core.emit(.poll(StationPoll(station: config.id, time: time, readings: complete, latencyMs: latencyMs)))
    }
}

/// The poll slots of one station: every `interval` nanoseconds of monotonic time, offset by a phase
/// taken from the station id, so that stations with the same interval do not all wake (and load
/// the pipeline) at the same instant. The phase is stable across restarts. (`package`: the Modbus
/// benchmark's plain libmodbus loop polls on the same grid.)
///
/// With a `tick` (the event loops use ``PollGrid/sharedTick``) the phase is rounded down to a
/// multiple of it: stations with the same interval then fall on at most `interval / tick` shared
/// phases, and a loop thread polls each group in one wake-up instead of waking once per station.
package struct PollGrid: Sendable {
    let interval: UInt64
    let phase: UInt64

    /// The phase step of the event loops' grids: 10 ms.
    package static let sharedTick: UInt64 = 10_000_000

    package init(interval: UInt64, station: String, tick: UInt64 = 1) {
        self.interval = max(1, interval)
        // A stable hash of the id: the same phase in every process.
        let raw = StableHash.fnv1a64(station) % self.interval
        let tick = max(1, tick)
        phase = raw - raw % tick
    }

    /// The first slot strictly after `time`.
    package func slot(after time: UInt64) -> UInt64 {
        guard time >= phase else { return phase }
        return phase + ((time - phase) / interval + 1) * interval
    }
}
