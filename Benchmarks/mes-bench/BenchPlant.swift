import BenchSupport
import ComponentBenchmarks
import Foundation
import MESApp
import ModbusAdapter
import PlantModel
import Runtime
import Simulation

/// Plant-side benchmarks of `tools/bench`: Modbus polling, quality, genealogy queries, full replay.
extension BenchSuite {
    /// 64 simulated PLCs on loopback (served by a station-sim process): polls/s, added time per
    /// poll against a plain libmodbus loop, CPU at 1,000 polls/s, start jitter.
    ///
    /// Two register layouts: the headline figures use a PLC that maps its five signals into one
    /// holding-register block (one request per poll, the usual layout of a PLC's Modbus data
    /// block); the same figures for the layout of the default plant's welding stations (holding
    /// registers in two blocks more than 8 registers apart, a coil and an input register: four
    /// requests per poll) follow as references.
    func modbus() throws {
        let count = short ? 8 : 64
        let block: [SignalConfig] = [
            SignalConfig(name: "vehicleId", role: .vehicleId, address: ModbusAddress(table: .holdingRegister, index: 10), type: .string, length: 17),
            SignalConfig(name: "cycleDone", role: .cycleComplete, address: ModbusAddress(table: .holdingRegister, index: 19), type: .bool),
            SignalConfig(name: "weldCurrent", role: .measurement, address: ModbusAddress(table: .holdingRegister, index: 20), type: .float32),
            SignalConfig(name: "partCount", role: .counter, address: ModbusAddress(table: .holdingRegister, index: 22), type: .uint32),
            SignalConfig(name: "state", role: .state, address: ModbusAddress(table: .holdingRegister, index: 31), type: .uint16),
        ]
        let mixed: [SignalConfig] = [
            SignalConfig(name: "vehicleId", role: .vehicleId, address: ModbusAddress(table: .holdingRegister, index: 10), type: .string, length: 17),
            SignalConfig(name: "cycleDone", role: .cycleComplete, address: ModbusAddress(table: .coil, index: 0), type: .bool),
            SignalConfig(name: "state", role: .state, address: ModbusAddress(table: .holdingRegister, index: 31), type: .uint16),
            SignalConfig(name: "weldCurrent", role: .measurement, address: ModbusAddress(table: .holdingRegister, index: 20), type: .float32),
            SignalConfig(name: "partCount", role: .counter, address: ModbusAddress(table: .inputRegister, index: 0), type: .uint32),
        ]
        let seconds = short ? 1.0 : 5.0
        for (layout, signals, headline) in [("one request per poll", block, true), ("default plant's welding layout", mixed, false)] {
            let requests = ModbusReadPlan(signals: signals).requests.count
            // The PLCs run in a separate station-sim process, so this process's CPU is the adapters' alone.
            let simulators = try ExternalPLCs(count: count, signals: signals)
            defer { simulators.stop() }
            func stations(intervalMs: Int) -> [StationConfig] {
                simulators.stations.map { var s = $0; s.pollIntervalMs = intervalMs; return s }
            }
            let tag = headline ? "" : " [\(layout), \(requests) requests per poll]"
            // Full rate: every station as fast as a 1 ms interval allows.
            let fast = stations(intervalMs: 1), slow = stations(intervalMs: count)
            let full = try blocking { await ModbusBenchmark.run(stations: fast, seconds: seconds) }
            let polls = full["polls_per_s"] ?? 0
            if headline {
                Self.figure("Modbus polls per second, \(count) PLCs", polls, unit: "polls/s", target: 20_000, higherIsBetter: true,
                            reference: String(format: "%@; p99 latency %.2f ms; PLCs simulated by station-sim on the same 2 cores",
                                              layout, full["poll_latency_ms_p99"] ?? 0))
            } else {
                print(String(format: "Modbus polls per second, %d PLCs%@: %.0f polls/s = %.0f requests/s (reference, no target)",
                             count, tag, polls, polls * Double(requests)))
            }
            Self.figure("Modbus adapter added time per poll\(tag)", full["added_cpu_us_per_poll"] ?? 0, unit: "µs", target: 10, higherIsBetter: false,
                        reference: String(format: "adapter %.1f µs CPU per poll at %.0f polls/s; plain libmodbus loop (a thread per PLC, same schedule) %.1f µs at %.0f polls/s; %d requests per poll",
                                          full["cpu_us_per_poll"] ?? 0, polls, full["baseline_cpu_us_per_poll"] ?? 0,
                                          full["baseline_polls_per_s"] ?? 0, requests))
            // 1,000 polls/s: 64 stations every 64 ms.
            let calm = try blocking { await ModbusBenchmark.run(stations: slow, seconds: seconds * 2) }
            Self.figure("Modbus CPU at 1,000 polls/s\(tag)", calm["cpu_pct"] ?? 0, unit: "% of one core", target: 5, higherIsBetter: false,
                        reference: String(format: "%.0f polls/s measured, this process only; plain libmodbus loop (a thread per PLC, same schedule): %.2f %% at %.0f polls/s",
                                          calm["polls_per_s"] ?? 0, calm["baseline_cpu_pct"] ?? 0, calm["baseline_polls_per_s"] ?? 0))
            Self.figure("Modbus poll start jitter p99\(tag)", calm["start_jitter_ms_p99"] ?? 0, unit: "ms", target: 1, higherIsBetter: false,
                        reference: String(format: "max %.2f ms over %.0f intervals", calm["start_jitter_ms_max"] ?? 0, calm["intervals"] ?? 0))
            guard headline else { continue }
            // The same two runs with the event-loop adapter (the default for Modbus TCP): one loop
            // thread for all the PLCs, against the plain thread-per-PLC libmodbus loop of the same run.
            let loopFull = try blocking { await ModbusBenchmark.run(stations: fast, seconds: seconds, eventLoopThreads: 1) }
            Self.figure("Modbus polls per second, \(count) PLCs, event loop", loopFull["polls_per_s"] ?? 0, unit: "polls/s",
                        target: 20_000, higherIsBetter: true,
                        reference: String(format: "one loop thread; %.1f µs CPU per poll; plain libmodbus loop %.1f µs at %.0f polls/s; p99 latency %.2f ms",
                                          loopFull["cpu_us_per_poll"] ?? 0, loopFull["baseline_cpu_us_per_poll"] ?? 0,
                                          loopFull["baseline_polls_per_s"] ?? 0, loopFull["poll_latency_ms_p99"] ?? 0))
            let loopCalm = try blocking { await ModbusBenchmark.run(stations: slow, seconds: seconds * 2, eventLoopThreads: 1) }
            Self.figure("Modbus CPU at 1,000 polls/s, event loop", loopCalm["cpu_pct"] ?? 0, unit: "% of one core",
                        target: loopCalm["baseline_cpu_pct"] ?? 5, higherIsBetter: false,
                        reference: String(format: "one loop thread, %.0f polls/s, %.1f µs per poll; plain libmodbus loop (a thread per PLC, same run): %.2f %% = %.1f µs per poll at %.0f polls/s",
                                          loopCalm["polls_per_s"] ?? 0, loopCalm["cpu_us_per_poll"] ?? 0, loopCalm["baseline_cpu_pct"] ?? 0,
                                          loopCalm["baseline_cpu_us_per_poll"] ?? 0, loopCalm["baseline_polls_per_s"] ?? 0))
            Self.figure("Modbus poll start jitter p99, event loop", loopCalm["start_jitter_ms_p99"] ?? 0, unit: "ms", target: 1,
                        higherIsBetter: false,
                        reference: String(format: "max %.2f ms over %.0f intervals", loopCalm["start_jitter_ms_max"] ?? 0, loopCalm["intervals"] ?? 0))
        }
    }

    func quality() {
        let result = QualityBenchmark.run(inputs: short ? 20_000 : 500_000)
        Self.figure("quality engine throughput, every rule on", result.inputsPerSecond, unit: "samples/s", target: 100_000, higherIsBetter: true,
                    reference: "\(result.outputs) outputs")
        Self.figure("quality: sample crossing a rule → alert output p99", result.p99DelayMicros / 1000, unit: "ms", target: 5,
                    higherIsBetter: false, reference: "engine time per input; the event then commits through storage")
    }

    func genealogy() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-genealogy-\(getpid()).sqlite").path
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let result = try GenealogyBenchmark.run(path: path, operations: short ? 20_000 : 1_000_000, lotVehicles: short ? 500 : 5_000)
        Self.figure("GET /api/vehicles/{id} query with \(result.operations) operations, p99", result.vehicleQueryP99Ms, unit: "ms",
                    target: 5, higherIsBetter: false)
        Self.figure("GET /api/lots/{lotId} query for \(result.lotVehicles) vehicles, max", result.lotQueryMaxMs, unit: "ms",
                    target: 50, higherIsBetter: false, reference: String(format: "p50 %.1f ms", result.lotQueryP50Ms))
    }

    /// An 8-hour shift of the default plant replayed through the whole pipeline with storage.
    func replay() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-replay-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let configPath = ProcessInfo.processInfo.environment["MES_BENCH_CONFIG"] ?? "Stations/plant.json"
        let config = try PlantConfig.load(path: configPath)
        let recording = dir.appendingPathComponent("shift.jsonl").path
        let duration: TimeInterval = short ? 600 : 8 * 3600
        let generated = try generateRecording(config: config, duration: duration, to: recording, mode: .everyPoll)
        var options = ServerOptions()
        options.config = configPath
        options.database = dir.appendingPathComponent("replay.sqlite").path
        options.port = 0
        options.replay = recording
        options.speed = .max
        options.exitAfterReplay = true
        let server = try MESServer(options: options, logger: Logger(label: "bench", level: .error))
        let rssBefore = residentBytes()
        let sampler = MemorySampler()
        sampler.start()
        let started = Monotonic.nanoseconds()
        try blocking { try await server.run(installSignalHandlers: false) }
        let seconds = Double(Monotonic.nanoseconds() - started) / 1e9
        let samples = sampler.stop().map(\.residentBytes)
        let rate = Double(generated.samples) / seconds
        Self.figure("replay of a \(String(format: "%.1f", duration / 3600))-hour shift through the full pipeline", rate, unit: "samples/s",
                    target: 200_000, higherIsBetter: true,
                    reference: String(format: "%llu samples in %.1f s = %.0f× real time", generated.samples, seconds, duration / seconds))
        let half = samples.count / 2
        let firstHalf = samples.prefix(max(half, 1)).max() ?? 0
        let secondHalf = samples.suffix(max(samples.count - half, 1)).max() ?? 0
        let growth = Double(secondHalf - firstHalf) / 1_048_576
        Self.figure("replay memory growth, second half vs first half", growth, unit: "MiB", target: 32, higherIsBetter: false,
                    reference: String(format: "RSS %.0f MiB before, %.0f MiB peak", Double(rssBefore) / 1_048_576, Double(samples.max() ?? 0) / 1_048_576))
    }
}

/// `count` Modbus PLCs served by a `station-sim` process (the binary beside this one).
final class ExternalPLCs {
    let stations: [StationConfig]
    private let process = Process()
    private let directory: URL

    init(count: Int, signals: [SignalConfig]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-plcs-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var ports: [UInt16] = []
        var listeners: [Int32] = []
        for _ in 0..<count {
            let fd = try Socket.listen(host: "127.0.0.1", port: 0)
            listeners.append(fd)
            ports.append(try Socket.localPort(fd))
        }
        for fd in listeners { Socket.close(fd) }
        var configs: [StationConfig] = []
        var json: [JSON] = []
        for (i, port) in ports.enumerated() {
            configs.append(StationConfig(id: "PLC-\(i)", name: "PLC \(i)", process: "welding", protocol: .modbus,
                                         endpoint: .modbusTCP(host: "127.0.0.1", port: port, unit: 1), signals: signals))
            json.append(.obj([
                ("id", .string("PLC-\(i)")), ("process", .string("welding")), ("protocol", .string("modbus")),
                ("endpoint", .string("modbus://127.0.0.1:\(port)?unit=1")), ("idealCycleTimeS", .int(55)),
                ("signals", .array(signals.map { s in
                    .obj([("name", .string(s.name)), ("role", .str(s.role?.rawValue)), ("address", .string(s.address!.description)),
                          ("type", .string(s.type!.rawValue)), ("length", s.length.map { .int(Int64($0)) })])
                })),
            ]))
        }
        stations = configs
        let config = directory.appendingPathComponent("plcs.json").path
        try JSON.obj([("route", .array([.string("welding")])), ("stations", .array(json))]).serialized()
            .write(toFile: config, atomically: true, encoding: .utf8)
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("station-sim").path
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--config", config, "--log-level", "error", "--exit-with-parent"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Monotonic.nanoseconds() + 30_000_000_000
        for port in ports {
            while (try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 200)).map({ Socket.close($0); return true }) != true {
                guard Monotonic.nanoseconds() < deadline, process.isRunning else { throw UsageError("station-sim did not serve port \(port)") }
                usleep(50_000)
            }
        }
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: directory)
    }
}
