import BenchSupport
import ComponentBenchmarks
import Foundation
import PlantModel
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// What one node holds: a simulated plant grown step by step until sample → SSE p99 passes 250 ms
/// or a core saturates (README "How big one node goes").
///
/// Each step is a fresh plant: the stations of `Stations/plant.json` (five Modbus stations and a
/// press, two OPC UA stations, one by subscription; 5 to 13 signals each) copied until the step's
/// count, every copy on a free port of 127.0.0.1, all polled every 100 ms. The stations are
/// served by `station-sim` processes (at most ``stationsPerSimulator`` each: libmodbus's server
/// waited in `select()`, which holds descriptors below 1,024; the split is kept so runs compare), the server is `mes-server` in a
/// process of its own, and one event-stream client here (``SampleLatencyReader``) reads every
/// `sample` event and takes its latency from the sample's time (`t`, when the poll started) to its
/// arrival. CPU comes from
/// /proc: the server, its busiest thread, and the simulators together.
extension BenchSuite {
    /// Stations one `station-sim` process serves at most.
    static let stationsPerSimulator = 150

    /// Sample → SSE p99 a plant must stay within to hold.
    static let plantLatencyLimitMs = 250.0

    struct PlantStep {
        var stations = 0
        var modbus = 0
        var opcua = 0
        var signals = 0
        var samples = 0
        var p50 = 0.0
        var p99 = 0.0
        var serverCPU = 0.0
        var busiestCPU = 0.0
        var serverThreads = 0
        var simulatorCPU = 0.0
        var online = 0
        var pollsPerSecond = 0.0
        var held = false
        var why = ""
        /// The floor: the same simulators polled by bare pollers instead of mes-server.
        var floorPollerCPU = 0.0
        var floorSimulatorCPU = 0.0
        var floorPollsPerSecond = 0.0
        var floorHeld = false
    }

    func plantSize() throws {
        raiseFileLimit()
        // MES_BENCH_PLANT_STEPS=200,400 runs only those steps.
        let chosen = ProcessInfo.processInfo.environment["MES_BENCH_PLANT_STEPS"]?.split(separator: ",").compactMap { Int($0) }
        let steps = chosen ?? (short ? [8, 16] : [50, 100, 200, 400, 550, 700, 850, 1000, 1400, 2000])
        let seconds = short ? 3.0 : 15.0
        var largest: PlantStep?
        var last: PlantStep?
        for count in steps {
            let step = try plantStep(stations: count, seconds: seconds)
            last = step
            print(String(format: "plant of %d stations (%d Modbus, %d OPC UA, %d signals, 100 ms): sample → SSE p50 %.1f ms, p99 %.1f ms over %d samples; server %.0f %% of a core in %d threads (the busiest %.0f %%), simulators %.0f %%; %d/%d online, %.1f polls/s per polled station: %@; floor (bare pollers instead of the server, same simulators): pollers %.0f %%, simulators %.0f %%, %.1f polls/s per station%@",
                         step.stations, step.modbus, step.opcua, step.signals, step.p50, step.p99, step.samples, step.serverCPU,
                         step.serverThreads, step.busiestCPU, step.simulatorCPU, step.online, step.stations, step.pollsPerSecond,
                         step.held ? "held" : "did not hold (\(step.why))", step.floorPollerCPU, step.floorSimulatorCPU,
                         step.floorPollsPerSecond, step.floorHeld ? "" : " (the floor did not hold either)"))
            fflush(nil)
            guard step.held else { break }
            largest = step
        }
        let held = largest ?? PlantStep()
        // The floor at the same size: what the plant's traffic costs this machine with bare pollers
        // (libmodbus, a thread per PLC; our OPC UA client's Read alone) in the server's place.
        let ratio = held.floorPollerCPU > 0 ? held.serverCPU / held.floorPollerCPU : 0
        Self.figure("largest simulated plant one node holds (100 ms polling, sample → SSE p99 ≤ 250 ms)", Double(held.stations),
                    unit: "stations", target: short ? 8 : 1000, higherIsBetter: true,
                    reference: String(format: "there: p99 %.1f ms, server %.0f %% of a core, simulators %.0f %% (2 cores = 200 %%); floor at that size (bare pollers in the server's place, same run): pollers %.0f %%, simulators %.0f %%, server / bare pollers %.1f×%@; load average %@",
                                      held.p99, held.serverCPU, held.simulatorCPU, held.floorPollerCPU, held.floorSimulatorCPU, ratio,
                                      last.map { $0.held ? "" : String(format: ", next step %d stations: %@; its floor: pollers %.0f %% + simulators %.0f %%%@", $0.stations, $0.why, $0.floorPollerCPU, $0.floorSimulatorCPU, $0.floorHeld ? "" : ", did not hold either") } ?? "",
                                      loadAverage()))
    }

    /// One plant of `stations` stations: start, settle, measure for `seconds`, stop.
    func plantStep(stations count: Int, seconds: Double) throws -> PlantStep {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-plant-\(getpid())-\(count)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let plant = try PlantFile(stations: count, directory: directory)
        var step = PlantStep()
        step.stations = count
        step.modbus = plant.modbus
        step.opcua = plant.opcua
        step.signals = plant.signals

        let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var simulators: [Process] = []
        var server: Process?
        defer {
            // The server first (its adapters stop polling), then the simulators; 10 s each at most.
            for process in [server].compactMap({ $0 }) + simulators { Self.stop(process) }
        }
        for shard in stride(from: 0, to: count, by: Self.stationsPerSimulator) {
            let ids = plant.ids[shard..<min(count, shard + Self.stationsPerSimulator)]
            let process = Process()
            process.executableURL = binaries.appendingPathComponent("station-sim")
            process.arguments = ["--config", plant.path, "--log-level", "error", "--exit-with-parent"] + ids.flatMap { ["--station", $0] }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            simulators.append(process)
        }
        let serveDeadline = Monotonic.nanoseconds() + 60_000_000_000
        for port in plant.ports {
            while (try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 200)).map({ Socket.close($0); return true }) != true {
                guard Monotonic.nanoseconds() < serveDeadline, simulators.allSatisfy(\.isRunning) else {
                    throw BenchError("plant of \(count): station-sim did not serve port \(port)")
                }
                usleep(20_000)
            }
        }

        let listener = try Socket.listen(host: "127.0.0.1", port: 0)
        let port = try Socket.localPort(listener)
        Socket.close(listener)
        let mes = Process()
        mes.executableURL = binaries.appendingPathComponent("mes-server")
        mes.arguments = ["--config", plant.path, "--db", directory.appendingPathComponent("mes.sqlite").path,
                         "--listen", "127.0.0.1:\(port)", "--log-level", "error"]
        mes.standardOutput = FileHandle.nullDevice
        mes.standardError = FileHandle.nullDevice
        try mes.run()
        server = mes
        // Settled: every station online (or 30 s), then a second more.
        let onlineDeadline = Monotonic.nanoseconds() + 30_000_000_000
        while Self.onlineStations(port: port) < count && Monotonic.nanoseconds() < onlineDeadline {
            guard mes.isRunning else { throw BenchError("plant of \(count): mes-server exited (status \(mes.terminationStatus))") }
            usleep(200_000)
        }
        usleep(1_000_000)

        let reader = try SampleLatencyReader(port: port)
        let nowMs = { Double(realtimeNanoseconds()) / 1e6 }
        let windowStart = nowMs()
        let polled = plant.polledProbes
        let polls0 = polled.map { Self.stationPolls(port: port, id: $0) }
        let server0 = processCPUSeconds(pid: mes.processIdentifier) ?? 0
        let threads0 = threadCPUSeconds(pid: mes.processIdentifier)
        let sims0 = simulators.map { processCPUSeconds(pid: $0.processIdentifier) ?? 0 }
        let t0 = Monotonic.nanoseconds()
        usleep(UInt32(seconds * 1e6))
        let wall = Double(Monotonic.nanoseconds() - t0) / 1e9
        let server1 = processCPUSeconds(pid: mes.processIdentifier) ?? server0
        let threads1 = threadCPUSeconds(pid: mes.processIdentifier)
        let sims1 = simulators.map { processCPUSeconds(pid: $0.processIdentifier) ?? 0 }
        let polls1 = polled.map { Self.stationPolls(port: port, id: $0) }
        // Samples polled in the window; the last ones get a moment to arrive.
        let windowEnd = nowMs()
        usleep(1_000_000)
        let latencies = reader.latencies(polledFrom: windowStart, to: windowEnd)
        reader.close()
        if ProcessInfo.processInfo.environment["MES_BENCH_PLANT_TRACE"] != nil {
            // Where the slow samples sit: the worst delay of each second of the window.
            let trace = reader.worstPerSecond(polledFrom: windowStart, to: windowEnd)
            print("  worst sample → SSE delay per second: " + trace.map { String(format: "%d:%.0f ms/%d", $0.second, $0.worst, $0.samples) }.joined(separator: " "))
        }

        step.samples = latencies.count
        step.p50 = percentile(latencies, 0.5)
        step.p99 = percentile(latencies, 0.99)
        step.serverCPU = (server1 - server0) / wall * 100
        step.simulatorCPU = zip(sims0, sims1).map { $1 - $0 }.reduce(0, +) / wall * 100
        for (thread, after) in threads1 {
            let used = (after - (threads0[thread] ?? 0)) / wall * 100
            // (Names do not tell them apart: threads started from the task pool carry its name.)
            step.busiestCPU = max(step.busiestCPU, used)
        }
        step.serverThreads = threads1.count
        step.online = Self.onlineStations(port: port)
        let rates = zip(polls0, polls1).compactMap { a, b in a.flatMap { a in b.map { Double($0 - a) / wall } } }
        step.pollsPerSecond = rates.isEmpty ? 0 : rates.reduce(0, +) / Double(rates.count)

        var reasons: [String] = []
        if latencies.isEmpty { reasons.append("no sample event arrived") }
        if step.p99 > Self.plantLatencyLimitMs { reasons.append(String(format: "p99 %.0f ms > 250 ms", step.p99)) }
        if step.online < count { reasons.append("\(count - step.online) stations not online") }
        if step.busiestCPU >= 90 { reasons.append(String(format: "a server thread saturates a core (%.0f %%)", step.busiestCPU)) }
        if step.serverCPU + step.simulatorCPU >= 190 { reasons.append(String(format: "both cores saturated (server + simulators %.0f %%)", step.serverCPU + step.simulatorCPU)) }
        if step.pollsPerSecond < 9 { reasons.append(String(format: "polls fall behind (%.1f/s per station, 10 due)", step.pollsPerSecond)) }
        step.held = reasons.isEmpty
        step.why = reasons.joined(separator: "; ")

        // The floor: the server stopped, the same simulators polled for the same time by bare pollers.
        Self.stop(mes)
        // The Modbus pollers run in child processes of at most ``plainPollersPerProcess`` stations:
        // libmodbus's client waits in `select()`, which holds descriptors below 1,024.
        let config = try PlantConfig.load(path: plant.path)
        let modbusIDs = config.stations.filter { if case .modbusTCP = $0.endpoint { true } else { false } }.map(\.id)
        var children: [(process: Process, output: FileHandle)] = []
        defer { for child in children { Self.stop(child.process) } }
        for shard in stride(from: 0, to: modbusIDs.count, by: Self.plainPollersPerProcess) {
            let process = Process()
            process.executableURL = binaries.appendingPathComponent("mes-bench")
            process.arguments = ["--plain-modbus", plant.path, String(seconds + 1)] + modbusIDs[shard..<min(modbusIDs.count, shard + Self.plainPollersPerProcess)]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            children.append((process, pipe.fileHandleForReading))
        }
        for child in children where Self.readLine(child.output) != "ready" {
            throw BenchError("plant of \(count): the bare Modbus pollers did not start (status \(child.process.isRunning ? "running" : String(child.process.terminationStatus)))")
        }
        let opcua = try blocking { try await PlainOPCUAPollers.connect(stations: config.stations) }
        let floorSims0 = simulators.map { processCPUSeconds(pid: $0.processIdentifier) ?? 0 }
        let floorChildren0 = children.map { processCPUSeconds(pid: $0.process.processIdentifier) ?? 0 }
        let floorCPU0 = processCPUMicroseconds()
        let floorT0 = Monotonic.nanoseconds()
        opcua.go()
        usleep(UInt32(seconds * 1e6))
        let floorWall = Double(Monotonic.nanoseconds() - floorT0) / 1e9
        let floorCPU1 = processCPUMicroseconds()
        let floorChildren1 = children.map { processCPUSeconds(pid: $0.process.processIdentifier) ?? 0 }
        let floorSims1 = simulators.map { processCPUSeconds(pid: $0.processIdentifier) ?? 0 }
        let opcuaPolls = try blocking { await opcua.stop() }
        // Each child prints "polls N SECONDS" when its time is up.
        var modbusRate = 0.0
        for child in children {
            let words = Self.readLine(child.output)?.split(separator: " ") ?? []
            if words.count == 3, let polls = Double(words[1]), let wall = Double(words[2]), wall > 0 { modbusRate += polls / wall }
        }
        step.floorPollerCPU = ((floorCPU1 - floorCPU0) / 1e6 + zip(floorChildren0, floorChildren1).map { $1 - $0 }.reduce(0, +)) / floorWall * 100
        step.floorSimulatorCPU = zip(floorSims0, floorSims1).map { $1 - $0 }.reduce(0, +) / floorWall * 100
        step.floorPollsPerSecond = (modbusRate + Double(opcuaPolls) / floorWall) / Double(max(1, count))
        step.floorHeld = step.floorPollsPerSecond >= 9 && step.floorPollerCPU + step.floorSimulatorCPU < 190
        return step
    }

    /// Modbus stations one bare poller process polls at most (a descriptor each, below 1,024).
    static let plainPollersPerProcess = 500

    /// `mes-bench --plain-modbus CONFIG SECONDS ID…`: the floor's bare Modbus pollers for the stations
    /// `ID…` of the plant file `CONFIG`; prints `ready` once connected, polls for `SECONDS`, then
    /// prints `polls N SECONDS`.
    static func plainModbusChild(_ arguments: [String]) -> Int32 {
        guard arguments.count >= 2, let seconds = Double(arguments[1]), let config = try? PlantConfig.load(path: arguments[0]) else {
            FileHandle.standardError.write(Data("mes-bench --plain-modbus CONFIG SECONDS ID…\n".utf8))
            return 2
        }
        let ids = Set(arguments.dropFirst(2))
        let pollers = PlainModbusPollers(stations: config.stations.filter { ids.contains($0.id) })
        print("ready")
        fflush(nil)
        let t0 = Monotonic.nanoseconds()
        pollers.go()
        usleep(UInt32(seconds * 1e6))
        let polls = pollers.stop()
        print("polls \(polls) \(Double(Monotonic.nanoseconds() - t0) / 1e9)")
        fflush(nil)
        return 0
    }

    /// One line from a child's output (nil at its end).
    static func readLine(_ handle: FileHandle) -> String? {
        var line: [UInt8] = []
        while true {
            guard let byte = try? handle.read(upToCount: 1), let b = byte.first else { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
            if b == 10 { return String(decoding: line, as: UTF8.self) }
            line.append(b)
        }
    }

    /// Stops a child process: SIGTERM, up to 10 s, then SIGKILL.
    static func stop(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Monotonic.nanoseconds() + 10_000_000_000
        while process.isRunning && Monotonic.nanoseconds() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Stations online, from `GET /api/health`.
    static func onlineStations(port: UInt16) -> Int {
        guard let body = httpGet(port: port, path: "/api/health"), let json = try? JSON.parse(body),
              case .int(let online)? = json["stations"]?["online"] else { return 0 }
        return Int(online)
    }

    /// A station's polls so far, from `GET /api/stations/{id}`.
    static func stationPolls(port: UInt16, id: String) -> Int64? {
        guard let body = httpGet(port: port, path: "/api/stations/\(id)"), let json = try? JSON.parse(body),
              case .int(let polls)? = json["stats"]?["polls"] else { return nil }
        return polls
    }

    /// The body of a `GET` answered 200 (one connection, `Connection: close`).
    static func httpGet(port: UInt16, path: String) -> String? {
        guard let fd = try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000) else { return nil }
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: 5000)
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        guard let answer = try? Socket.exchangeClosing(fd, request: Array(request.utf8)), answer.status == 200 else { return nil }
        return answer.body
    }
}

/// A plant config of `stations` stations for the plant-size benchmark: the stations of the default
/// plant copied in turn (the first eight keep their ids, later copies get `-2`, `-3` …), each on a
/// free port of 127.0.0.1, polled every 100 ms.
private struct PlantFile {
    let path: String
    let ids: [String]
    let ports: [UInt16]
    var modbus = 0
    var opcua = 0
    var signals = 0
    /// Stations polled (not subscribed) among the first eight: whose poll rate is sampled.
    var polledProbes: [String] = []

    init(stations count: Int, directory: URL) throws {
        let templatePath = ProcessInfo.processInfo.environment["MES_BENCH_CONFIG"] ?? "Stations/plant.json"
        guard case .object(var top) = try JSON.parse(String(contentsOfFile: templatePath, encoding: .utf8)),
              case .array(let templates)? = top.first(where: { $0.0 == "stations" })?.1 else {
            throw BenchError("\(templatePath): no stations to copy")
        }
        // 1,000 distinct free ports: hold every listener until all are picked.
        var listeners: [Int32] = []
        defer { for fd in listeners { Socket.close(fd) } }
        for _ in 0..<count { listeners.append(try Socket.listen(host: "127.0.0.1", port: 0)) }
        ports = try listeners.map { try Socket.localPort($0) }
        var stations: [JSON] = []
        var ids: [String] = []
        for i in 0..<count {
            guard case .object(var station) = templates[i % templates.count], case .string(let id)? = station.first(where: { $0.0 == "id" })?.1,
                  case .string(let endpoint)? = station.first(where: { $0.0 == "endpoint" })?.1 else { continue }
            let copy = i / templates.count
            let newID = copy == 0 ? id : "\(id)-\(copy + 1)"
            let isOPCUA = endpoint.hasPrefix("opc.tcp:")
            var newEndpoint = isOPCUA ? "opc.tcp://127.0.0.1:\(ports[i])" : "modbus://127.0.0.1:\(ports[i])"
            if !isOPCUA, let query = endpoint.firstIndex(of: "?") { newEndpoint += endpoint[query...] }
            var subscribed = false
            for k in station.indices {
                switch station[k].0 {
                case "id": station[k].1 = .string(newID)
                case "name": if case .string(let name) = station[k].1 { station[k].1 = .string(copy == 0 ? name : "\(name) \(copy + 1)") }
                case "endpoint": station[k].1 = .string(newEndpoint)
                case "pollIntervalMs": station[k].1 = .int(100)
                case "subscribe": if case .bool(true) = station[k].1 { subscribed = true }
                case "signals": if case .array(let list) = station[k].1 { signals += list.count }
                default: break
                }
            }
            if !station.contains(where: { $0.0 == "pollIntervalMs" }) { station.append(("pollIntervalMs", .int(100))) }
            if isOPCUA { opcua += 1 } else { modbus += 1 }
            if copy == 0 && !subscribed { polledProbes.append(newID) }
            ids.append(newID)
            stations.append(.object(station))
        }
        self.ids = ids
        // The tokens file of the template is relative to it: this plant is read anonymously.
        top.removeAll { $0.0 == "auth" }
        for k in top.indices where top[k].0 == "stations" { top[k].1 = .array(stations) }
        path = directory.appendingPathComponent("plant.json").path
        try JSON.object(top).serialized().write(toFile: path, atomically: true, encoding: .utf8)
    }
}
