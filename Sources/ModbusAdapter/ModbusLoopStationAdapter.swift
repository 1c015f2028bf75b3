import Foundation
import PlantModel
import Runtime

/// Polls one Modbus TCP station from a shared ``ModbusEventLoop`` (non-blocking socket, own MBAP
/// framing) and reports through an ``AdapterSink``: the same events, statuses and stats as
/// ``ModbusStationAdapter``, without a thread of its own.
///
/// A ``Service``: `run()` hands the station to its loop and returns once its task is cancelled and
/// the loop has closed the connection. Polls run on absolute monotonic deadlines on the station's
/// ``PollGrid`` (the first right after connecting); a late poll skips the slots it missed instead of
/// shifting the schedule. Connection-level failures (connect or response timeout, refused, closed,
/// bad answer) go through the same ``ModbusLinkMachine`` (offline, stale marking, reconnect with
/// backoff). `run()` is one-shot. See docs/ARCHITECTURE.md, "Modbus TCP on event loops".
public final class ModbusLoopStationAdapter: StationAdapter, Sendable {
    public let config: StationConfig
    public var stationID: String { config.id }
    public var name: String { "modbus.\(config.id)" }

    let loop: ModbusEventLoop
    private let sink: AdapterSink
    let log: Logger
    let clock: any WallClock
    let backoff: ReconnectBackoff

    private struct Shared {
        var stats = StationStats()
        var stopRequested = false
        var connection: ConnectionState = .connecting
        var skippedSlots: UInt64 = 0
        var deadlines: [UInt64] = []
    }

    private let shared = Locked(Shared())

    /// - Parameters:
    ///   - config: a `modbus` station with a TCP endpoint.
    ///   - loop: the event loop that polls it (``ModbusEventLoopGroup/next()``).
    ///   - sink: receives polls and connection changes, on the loop's thread.
    ///   - clock: the time stamped on polls and changes.
    ///   - backoff: reconnect delays (default 100 ms doubling to 5 s, 20 % jitter).
    public init(config: StationConfig, loop: ModbusEventLoop, sink: @escaping AdapterSink, logger: Logger,
                clock: any WallClock = SystemWallClock(), backoff: ReconnectBackoff = ReconnectBackoff()) {
        self.config = config
        self.loop = loop
        self.sink = sink
        self.log = logger.with("station.id", config.id)
        self.clock = clock
        self.backoff = backoff
    }

    /// A snapshot of the polling figures. Thread-safe.
    public func stats() -> StationStats { shared.withLock { $0.stats } }

    /// The connection state last reported. Thread-safe.
    public var connectionState: ConnectionState { shared.withLock { $0.connection } }

    /// Poll slots skipped because a poll overran its interval. Thread-safe.
    public var skippedPollSlots: UInt64 { shared.withLock { $0.skippedSlots } }

    /// The poll deadlines scheduled so far (monotonic ns; the most recent 1,000). Thread-safe.
    public var scheduledDeadlines: [UInt64] { shared.withLock { $0.deadlines } }

    public func run() async throws {
        guard case .modbusTCP = config.endpoint else {
            log.error("the event-loop adapter polls Modbus TCP only; \(config.endpoint) is not")
            return
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                loop.add(self, done: done)
            }
        } onCancel: {
            self.requestStop()
        }
    }

    /// Asks the loop to stop polling this station (also done by cancelling `run()`'s task). Thread-safe.
    public func requestStop() {
        shared.withLock { $0.stopRequested = true }
        loop.remove(self)
    }

    var isStopping: Bool { shared.withLock { $0.stopRequested } }

    // MARK: Called on the loop thread

    func emit(_ event: AdapterEvent) { sink(event) }

    func report(_ state: ConnectionState, reason: String?) {
        shared.withLock { $0.connection = state }
        if state == .offline {
            log.warning("offline: \(reason ?? "unknown")")
        } else {
            log.info("\(state)")
        }
        sink(.connection(ConnectionChange(station: config.id, state: state, time: clock.now(), reason: reason)))
    }

    func countReconnect() { shared.withLock { $0.stats.reconnects += 1 } }

    func countSkipped(_ slots: UInt64) { shared.withLock { $0.skippedSlots += slots } }

    func recordDeadline(_ deadline: UInt64) {
        shared.withLock { shared in
            if shared.deadlines.count >= 1000 { shared.deadlines.removeFirst(shared.deadlines.count - 999) }
            shared.deadlines.append(deadline)
        }
    }

    func count(errorKinds: [String], lastError: String?, polled: Bool = false, latencyMs: Double? = nil) {
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
}
