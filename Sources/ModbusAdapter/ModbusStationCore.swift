import Foundation
import PlantModel
import Runtime

/// What both Modbus station adapters (``ModbusStationAdapter``, a thread each, and
/// ``ModbusLoopStationAdapter``, on an event loop) hold alike: the station, where its events go,
/// the figures other threads read, and how the link machine's reports become events.
///
/// Thread-safe: the polling thread writes, any thread reads.
final class ModbusStationCore: Sendable {
    let config: StationConfig
    let log: Logger
    let clock: any WallClock
    let backoff: ReconnectBackoff
    private let sink: AdapterSink

    /// Scheduled poll deadlines kept for ``scheduledDeadlines`` (a ring).
    static let deadlinesKept = 1000

    private struct Shared {
        var stats = StationStats()
        var stopRequested = false
        var connection: ConnectionState = .connecting
        var skippedSlots: UInt64 = 0
        var deadlines: [UInt64] = []
        /// Where the next deadline goes once `deadlines` holds ``deadlinesKept``.
        var deadlineNext = 0
    }

    private let shared = Locked(Shared())

    init(config: StationConfig, sink: @escaping AdapterSink, logger: Logger, clock: any WallClock, backoff: ReconnectBackoff) {
        self.config = config
        self.sink = sink
        self.log = logger.with("station.id", config.id)
        self.clock = clock
        self.backoff = backoff
    }

    var stats: StationStats { shared.withLock { $0.stats } }
    var connection: ConnectionState { shared.withLock { $0.connection } }
    var skippedSlots: UInt64 { shared.withLock { $0.skippedSlots } }
    var isStopping: Bool { shared.withLock { $0.stopRequested } }

    /// The recorded deadlines, oldest first.
    var deadlines: [UInt64] {
        shared.withLock { shared in
            Array(shared.deadlines[shared.deadlineNext...] + shared.deadlines[..<shared.deadlineNext])
        }
    }

    func requestStop() { shared.withLock { $0.stopRequested = true } }

    func emit(_ event: AdapterEvent) { sink(event) }

    /// A connection change from the link machine: logged, kept, emitted.
    func report(_ state: ConnectionState, reason: String?) {
        shared.withLock { $0.connection = state }
        if state == .offline {
            log.warning("offline: \(reason ?? "unknown")")
        } else {
            log.info("\(state)")
        }
        sink(.connection(ConnectionChange(station: config.id, state: state, time: clock.now(), reason: reason)))
    }

    /// The last known values again, with quality `stale` (the link machine's `markStale`).
    func markStale(_ lastValues: [SignalValue?]) {
        let readings = config.signals.indices.map { i in
            SignalReading(name: config.signals[i].name, value: lastValues[i], quality: .stale)
        }
        sink(.poll(StationPoll(station: config.id, time: clock.now(), readings: readings)))
    }

    func countReconnect() { shared.withLock { $0.stats.reconnects += 1 } }

    /// Failures outside a finished poll (connect, connection-level).
    func count(errorKinds: [String], lastError: String?) {
        shared.withLock { shared in
            for kind in errorKinds { shared.stats.errors[kind, default: 0] += 1 }
            shared.stats.lastError = lastError
        }
    }

    /// A finished poll, in one lock: its figures, the slots it made the schedule skip and the next
    /// deadline (recorded when given).
    func pollFinished(_ readings: ModbusPollReadings, latencyMs: Double, skipped: UInt64 = 0, nextDeadline: UInt64? = nil) {
        shared.withLock { shared in
            for kind in readings.errorKinds { shared.stats.errors[kind, default: 0] += 1 }
            shared.stats.polls += 1
            shared.stats.lastLatencyMs = latencyMs
            shared.stats.latencySumMs += latencyMs
            shared.stats.lastError = readings.lastError
            shared.skippedSlots += skipped
            if let nextDeadline {
                if shared.deadlines.count < Self.deadlinesKept {
                    shared.deadlines.append(nextDeadline)
                } else {
                    shared.deadlines[shared.deadlineNext] = nextDeadline
                    shared.deadlineNext = (shared.deadlineNext + 1) % Self.deadlinesKept
                }
            }
        }
    }

    func countSkipped(_ slots: UInt64) { shared.withLock { $0.skippedSlots += slots } }
}

/// One poll's readings while its requests are answered, the same for both adapters: decoded
/// values, bad readings with the PLC's status, the error kinds met.
struct ModbusPollReadings {
    let signals: [SignalConfig]
    private(set) var readings: [SignalReading?]
    private(set) var errorKinds: [String] = []
    private(set) var lastError: String?

    init(signals: [SignalConfig]) {
        self.signals = signals
        readings = [SignalReading?](repeating: nil, count: signals.count)
    }

    /// The registers that answered `request`.
    mutating func answer(_ request: ModbusReadRequest, registers: [UInt16]) {
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
    }

    /// The bits that answered `request`.
    mutating func answer(_ request: ModbusReadRequest, bits: [Bool]) {
        for i in request.signals {
            let bit = bits[signals[i].address!.index - request.start]
            readings[i] = SignalReading(name: signals[i].name, value: ModbusCodec.decode(signal: signals[i], bit: bit), quality: .good)
        }
    }

    /// Counts an error of the poll.
    mutating func record(_ error: ModbusError) {
        errorKinds.append(error.kind)
        lastError = error.description
    }

    /// A Modbus exception answered `request`: its signals are bad with the PLC's status.
    mutating func markBad(_ request: ModbusReadRequest, _ error: ModbusError) {
        for i in request.signals {
            readings[i] = SignalReading(name: signals[i].name, value: nil, quality: .bad,
                                        status: "\(error.status) at \(signals[i].address!)")
        }
    }

    /// One reading per signal (a signal no request read is bad); good values go into `lastValues`.
    func complete(lastValues: inout [SignalValue?]) -> [SignalReading] {
        var complete: [SignalReading] = []
        complete.reserveCapacity(signals.count)
        for i in signals.indices {
            let reading = readings[i] ?? SignalReading(name: signals[i].name, value: nil, quality: .bad, status: "no Modbus address")
            if reading.quality == .good { lastValues[i] = reading.value }
            complete.append(reading)
        }
        return complete
    }
}
