import BenchSupport
import Foundation
import MESApp
import Pipeline
import PlantModel
import Runtime
import Simulation
#if canImport(Glibc)
import Glibc
#endif

/// The pipeline thread's CPU per poll (issue #19: the server's hot path, without the sockets).
///
/// A plant of copies of `Stations/plant.json`'s stations, as `plant-size` makes it, every station
/// polled every 100 ms: the simulator's values go straight into the server's pipeline (live
/// state, `sample` and `station` events, the sample history, tracking, quality), with storage on
/// its own thread as in the server. The figure is the pipeline thread's own CPU time (the
/// storage thread's is left out) over the polls; what it means at 100 ms polling is said with it.
/// `MES_BENCH_PIPELINE_STATIONS` sets the plant's size (700 by default).
extension BenchSuite {
    func pipelinePoll() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = short ? 16 : Int(environment["MES_BENCH_PIPELINE_STATIONS"] ?? "") ?? 700
        let plantSeconds = short ? 3.0 : 30.0
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-pipeline-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let configPath = try Self.copiedPlant(stations: count, directory: directory)
        let recording = directory.appendingPathComponent("none.jsonl").path
        try "".write(toFile: recording, atomically: true, encoding: .utf8)
        var options = ServerOptions()
        options.config = configPath
        options.database = directory.appendingPathComponent("pipeline.sqlite").path
        options.port = 0
        // Replay mode: the pipeline's clock is the polls' (the simulator's), nothing is polled.
        options.replay = recording
        let server = try MESServer(options: options, logger: Logger(label: "bench", level: .error))
        server.eventLog.start()
        let pipeline = server.pipeline
        pipeline.start()
        let simulator = try PlantSimulator(config: server.config, scenario: .normalShift, seed: 19)
        let ids = simulator.stationIDs
        let names = server.config.stations.map { $0.signals.map(\.name) }
        // A minute of plant time first: vehicles on the line, baselines filling.
        var polls = 0, samples = 0
        var cpuStart: Int64 = 0, wallStart: UInt64 = 0
        let warmMs: Int64 = short ? 1_000 : 60_000
        let endMs = warmMs + Int64(plantSeconds * 1000)
        while simulator.elapsedMs < endMs {
            if simulator.elapsedMs == warmMs {
                pipeline.drain()
                cpuStart = try pipeline.perform { Self.threadCPUNanoseconds() }
                wallStart = Monotonic.nanoseconds()
                polls = 0
                samples = 0
            }
            let time = simulator.time
            for s in ids.indices where simulator.isPollDue(s) && simulator.isOnline(s) {
                let values = simulator.values(at: s)
                var readings: [SignalReading] = []
                readings.reserveCapacity(values.count)
                for (i, value) in values.enumerated() { readings.append(SignalReading(name: names[s][i], value: value, quality: .good)) }
                pipeline.submit(.poll(StationPoll(station: ids[s], time: time, readings: readings)))
                polls += 1
                samples += readings.count
            }
            simulator.step()
            if pipeline.backlog > 20_000 { while pipeline.backlog > 2_000 { usleep(1_000) } }
        }
        pipeline.drain()
        let cpu = try pipeline.perform { Self.threadCPUNanoseconds() } - cpuStart
        let wall = Double(Monotonic.nanoseconds() - wallStart) / 1e9
        pipeline.stop()
        server.eventLog.close()
        let perPoll = Double(cpu) / 1000 / Double(max(polls, 1))
        // At 100 ms every station is polled 10 times a second.
        let share = perPoll * Double(count) * 10 / 10_000
        Self.figure("pipeline thread CPU per poll, \(count) stations (copies of the default plant's)", perPoll, unit: "µs",
                    target: 25, higherIsBetter: false,
                    reference: String(format: "%d polls, %d values, in %.1f s; at 100 ms polling that is %.0f %% of a core for %d stations, %.0f %% for 1,000; load average %@",
                                      polls, samples, wall, share, count, perPoll * 1000 * 10 / 10_000, loadAverage()))
    }

    /// The calling thread's CPU time.
    static func threadCPUNanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// `Stations/plant.json` (or `MES_BENCH_CONFIG`) with its stations copied to `count`, each
    /// polled every 100 ms, on endpoints no one serves (nothing connects in replay).
    static func copiedPlant(stations count: Int, directory: URL) throws -> String {
        let templatePath = ProcessInfo.processInfo.environment["MES_BENCH_CONFIG"] ?? "Stations/plant.json"
        guard case .object(var top) = try JSON.parse(String(contentsOfFile: templatePath, encoding: .utf8)),
              case .array(let templates)? = top.first(where: { $0.0 == "stations" })?.1, !templates.isEmpty else {
            throw BenchError("\(templatePath): no stations to copy")
        }
        var stations: [JSON] = []
        for i in 0..<count {
            guard case .object(var station) = templates[i % templates.count], case .string(let id)? = station.first(where: { $0.0 == "id" })?.1,
                  case .string(let endpoint)? = station.first(where: { $0.0 == "endpoint" })?.1 else { continue }
            let copy = i / templates.count
            let isOPCUA = endpoint.hasPrefix("opc.tcp:")
            let port = 20_000 + i
            var newEndpoint = isOPCUA ? "opc.tcp://127.0.0.1:\(port)" : "modbus://127.0.0.1:\(port)"
            if !isOPCUA, let query = endpoint.firstIndex(of: "?") { newEndpoint += endpoint[query...] }
            for k in station.indices {
                switch station[k].0 {
                case "id": station[k].1 = .string(copy == 0 ? id : "\(id)-\(copy + 1)")
                case "name": if case .string(let name) = station[k].1 { station[k].1 = .string(copy == 0 ? name : "\(name) \(copy + 1)") }
                case "endpoint": station[k].1 = .string(newEndpoint)
                case "pollIntervalMs": station[k].1 = .int(100)
                default: break
                }
            }
            if !station.contains(where: { $0.0 == "pollIntervalMs" }) { station.append(("pollIntervalMs", .int(100))) }
            stations.append(.object(station))
        }
        top.removeAll { $0.0 == "auth" }
        for k in top.indices where top[k].0 == "stations" { top[k].1 = .array(stations) }
        let path = directory.appendingPathComponent("plant.json").path
        try JSON.object(top).serialized().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
