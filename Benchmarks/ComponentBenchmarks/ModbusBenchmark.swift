import BenchSupport
import CModbus
import Foundation
import ModbusAdapter
import PlantModel
import Runtime

/// Measures the Modbus adapter against running PLCs (real or simulated), for `tools/bench`.
public enum ModbusBenchmark {
    /// Polls `stations` with one ``ModbusStationAdapter`` each for `seconds`, after a plain
    /// libmodbus read loop over the same requests as a baseline.
    ///
    /// Figures (keys): `stations`, `polls_per_s`, `poll_latency_ms_mean`, `poll_latency_ms_p99`,
    /// `start_jitter_ms_p99` (deviation of poll-to-poll intervals from `pollIntervalMs`),
    /// `cpu_pct` (process CPU, one core = 100, includes anything else in the process such as
    /// in-process simulators), `cpu_us_per_poll`, `baseline_polls_per_s`, `baseline_cpu_pct`,
    /// `baseline_cpu_us_per_poll` (the plain libmodbus loop: one thread per PLC, same schedule),
    /// `added_cpu_us_per_poll` (adapter CPU per poll minus the plain loop's), `errors`.
    ///
    /// With `eventLoopThreads`, the adapters are ``ModbusLoopStationAdapter``s on that many
    /// ``ModbusEventLoop`` threads instead of a ``ModbusStationAdapter`` (a thread) each.
    public static func run(stations: [StationConfig], seconds: Double, eventLoopThreads: Int? = nil,
                           logger: Logger = Logger(label: "bench", level: .error)) async -> [String: Double] {
        var figures: [String: Double] = ["stations": Double(stations.count)]
        guard !stations.isEmpty else { return figures }

        // Baseline: the same requests through bare libmodbus calls, one thread per PLC on the same
        // schedule (absolute deadlines every `pollIntervalMs`), nothing else: what polling costs here
        // before any adapter work.
        let baseline = plainLoop(stations: stations, seconds: min(seconds, 5))
        if baseline.polls > 0 {
            figures["baseline_polls_per_s"] = Double(baseline.polls) / baseline.seconds
            figures["baseline_cpu_pct"] = baseline.cpuUs / (baseline.seconds * 1e6) * 100
            figures["baseline_cpu_us_per_poll"] = baseline.cpuUs / Double(baseline.polls)
        }

        // The adapters.
        let log = PollLog()
        let group = eventLoopThreads.map { ModbusEventLoopGroup(threads: $0, logger: logger) }
        let adapters: [any StationAdapter] = stations.enumerated().map { index, station in
            let sink: AdapterSink = { event in log.record(index, event) }
            if let group {
                return ModbusLoopStationAdapter(config: station, loop: group.next(), sink: sink, logger: logger)
            }
            return ModbusStationAdapter(config: station, sink: sink, logger: logger)
        }
        let cpu0 = processCPUMicroseconds(), t0 = Monotonic.nanoseconds()
        let tasks = adapters.map { adapter in Task.detached { try? await adapter.run() } }
        try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
        let wallUs = Double(Monotonic.nanoseconds() - t0) / 1000
        let cpuUs = processCPUMicroseconds() - cpu0
        for task in tasks { task.cancel() }
        for task in tasks { _ = await task.value }

        let (starts, latencies) = log.snapshot(stations: stations.count)
        let polls = latencies.count
        figures["polls_per_s"] = Double(polls) / (wallUs / 1e6)
        figures["cpu_pct"] = cpuUs / wallUs * 100
        figures["cpu_us_per_poll"] = polls > 0 ? cpuUs / Double(polls) : 0
        if let base = figures["baseline_cpu_us_per_poll"], polls > 0 { figures["added_cpu_us_per_poll"] = cpuUs / Double(polls) - base }
        figures["poll_latency_ms_mean"] = latencies.isEmpty ? 0 : latencies.reduce(0, +) / Double(latencies.count)
        figures["poll_latency_ms_p99"] = percentile(latencies, 0.99)
        // The first poll comes right after connecting, the next on the station's slot grid: jitter
        // counts from the second interval on.
        var deviations: [Double] = []
        for (index, times) in starts.enumerated() where times.count > 3 {
            let interval = Double(stations[index].pollIntervalMs)
            let steady = times.dropFirst()
            for (a, b) in zip(steady, steady.dropFirst()) { deviations.append(abs(Double(b - a) / 1e6 - interval)) }
        }
        figures["start_jitter_ms_p99"] = percentile(deviations, 0.99)
        figures["start_jitter_ms_max"] = deviations.max() ?? 0
        figures["intervals"] = Double(deviations.count)
        figures["errors"] = Double(adapters.reduce(0) { $0 + $1.stats().errorCount })
        return figures
    }

    /// One thread per station, each reading the station's requests with bare libmodbus calls on
    /// the adapter's schedule (see ``PlainModbusPollers``).
    static func plainLoop(stations: [StationConfig], seconds: Double) -> (polls: Int, cpuUs: Double, seconds: Double) {
        let pollers = PlainModbusPollers(stations: stations)
        let cpu0 = processCPUMicroseconds(), t0 = Monotonic.nanoseconds()
        pollers.go()
        usleep(UInt32(seconds * 1e6))
        let cpuUs = processCPUMicroseconds() - cpu0, wall = Double(Monotonic.nanoseconds() - t0) / 1e9
        return (pollers.stop(), cpuUs, wall)
    }
}

/// Bare Modbus TCP pollers: one thread per station, each reading the station's requests with
/// plain libmodbus calls on the adapter's schedule (absolute monotonic deadlines on the station's
/// ``PollGrid``, slept with `clock_nanosleep`), doing nothing with the values. What polling costs
/// before any adapter work: the reference of the Modbus and plant-size benchmarks.
public final class PlainModbusPollers: Sendable {
    private let stopFlag = Flag()
    private let counts = Counter()
    private let done = DispatchGroup()
    private let start = DispatchSemaphore(value: 0)
    private let started: Int

    /// Connects a thread per Modbus TCP station (other stations are skipped) and waits until each
    /// has connected or failed; they poll from ``go()``.
    public init(stations: [StationConfig]) {
        let ready = DispatchGroup()
        var threads = 0
        for station in stations {
            guard case let .modbusTCP(host, port, unit) = station.endpoint else { continue }
            let plan = ModbusReadPlan(signals: station.signals)
            let grid = PollGrid(interval: UInt64(max(1, station.pollIntervalMs)) * 1_000_000, station: station.id)
            ready.enter(); done.enter()
            threads += 1
            let stop = stopFlag, counts = counts, done = done, go = start
            Thread {
                defer { done.leave() }
                guard let ctx = modbus_new_tcp_pi(host, String(port)) else { ready.leave(); go.wait(); return }
                defer { modbus_free(ctx) }
                modbus_set_slave(ctx, Int32(unit))
                let connected = modbus_connect(ctx) == 0
                ready.leave()
                go.wait()
                guard connected else { return }
                defer { modbus_close(ctx) }
                var registers = [UInt16](repeating: 0, count: 125)
                var bits = [UInt8](repeating: 0, count: 2000)
                // The adapter's schedule: the first poll at once, then the station's phase grid.
                var next = Monotonic.nanoseconds()
                var polls = 0
                while !stop.isSet {
                    for request in plan.requests {
                        switch request.table {
                        case .holdingRegister: _ = modbus_read_registers(ctx, Int32(request.start), Int32(request.count), &registers)
                        case .inputRegister: _ = modbus_read_input_registers(ctx, Int32(request.start), Int32(request.count), &registers)
                        case .coil: _ = modbus_read_bits(ctx, Int32(request.start), Int32(request.count), &bits)
                        case .discreteInput: _ = modbus_read_input_bits(ctx, Int32(request.start), Int32(request.count), &bits)
                        }
                    }
                    polls += 1
                    next = grid.slot(after: next)
                    let now = Monotonic.nanoseconds()
                    if next <= now { next = grid.slot(after: now) }  // missed slots are skipped, as the adapter does
                    var deadline = timespec(tv_sec: Int(next / 1_000_000_000), tv_nsec: Int(next % 1_000_000_000))
                    _ = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nil)
                }
                counts.add(polls)
            }.start()
        }
        started = threads
        ready.wait()
    }

    /// Starts polling.
    public func go() { for _ in 0..<started { start.signal() } }

    /// Stops every thread; returns the polls made.
    public func stop() -> Int {
        stopFlag.set()
        done.wait()
        return counts.value
    }
}

/// Poll times (monotonic ns at delivery) and latencies, from many adapter threads.
private final class PollLog: Sendable {
    private let entries = Locked<[(station: Int, at: UInt64, latencyMs: Double)]>([])

    func record(_ station: Int, _ event: AdapterEvent) {
        guard case .poll(let poll) = event, let latency = poll.latencyMs else { return }
        let now = Monotonic.nanoseconds()
        // The poll started `latency` before it was delivered.
        let started = now - UInt64(latency * 1e6)
        entries.withLock { $0.append((station, started, latency)) }
    }

    func snapshot(stations: Int) -> (starts: [[UInt64]], latencies: [Double]) {
        let entries = entries.value
        var starts = [[UInt64]](repeating: [], count: stations)
        for entry in entries { starts[entry.station].append(entry.at) }
        return (starts, entries.map(\.latencyMs))
    }
}
