import Foundation
import PlantModel
import Runtime

/// Polls one Modbus TCP station from a shared ``ModbusEventLoop`` (non-blocking socket, own MBAP
/// framing) and reports through an ``AdapterSink``: the same events, statuses and stats as
/// ``ModbusStationAdapter``, without a thread of its own.
///
/// A ``Service``: `run()` hands the station to its loop and returns once its task is cancelled and
/// the loop has closed the connection. Polls run on absolute monotonic deadlines on the station's
/// ``PollGrid`` with its phase on the loops' shared 10 ms tick (the first right after connecting);
/// a late poll skips the slots it missed instead of shifting the schedule. Connection-level failures (connect or response timeout, refused, closed,
/// bad answer) go through the same ``ModbusLinkMachine`` (offline, stale marking, reconnect with
/// backoff). `run()` is one-shot. See docs/ARCHITECTURE.md, "Modbus TCP on event loops".
public final class ModbusLoopStationAdapter: StationAdapter, Sendable {
    public var config: StationConfig { core.config }
    public var stationID: String { config.id }
    public var name: String { "modbus.\(config.id)" }

    let loop: ModbusEventLoop
    let core: ModbusStationCore

    /// - Parameters:
    ///   - config: a `modbus` station with a TCP endpoint.
    ///   - loop: the event loop that polls it (``ModbusEventLoopGroup/next()``).
    ///   - sink: receives polls and connection changes, on the loop's thread.
    ///   - clock: the time stamped on polls and changes.
    ///   - backoff: reconnect delays (default 100 ms doubling to 5 s, 20 % jitter).
    public init(config: StationConfig, loop: ModbusEventLoop, sink: @escaping AdapterSink, logger: Logger,
                clock: any WallClock = SystemWallClock(), backoff: ReconnectBackoff = ReconnectBackoff()) {
        self.loop = loop
        core = ModbusStationCore(config: config, sink: sink, logger: logger, clock: clock, backoff: backoff)
    }

    /// A snapshot of the polling figures. Thread-safe.
    public func stats() -> StationStats { core.stats }

    /// The connection state last reported. Thread-safe.
    public var connectionState: ConnectionState { core.connection }

    /// Poll slots skipped because a poll overran its interval. Thread-safe.
    public var skippedPollSlots: UInt64 { core.skippedSlots }

    /// The poll deadlines scheduled so far (monotonic ns; the most recent 1,000). Thread-safe.
    public var scheduledDeadlines: [UInt64] { core.deadlines }

    /// The station's poll slots: its ``PollGrid`` with the event loops' shared tick.
    var grid: PollGrid {
        PollGrid(interval: UInt64(max(1, config.pollIntervalMs)) * 1_000_000, station: config.id, tick: PollGrid.sharedTick)
    }

    public func run() async throws {
        guard case .modbusTCP = config.endpoint else {
            core.log.error("the event-loop adapter polls Modbus TCP only; \(config.endpoint) is not")
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
        core.requestStop()
        loop.remove(self)
    }
}
