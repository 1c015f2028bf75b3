import BenchSupport
import Foundation
import MESApp
import PlantModel
import Runtime
import Simulation
import Storage

/// Orders benchmarks (README "Orders and build specs"): creation in batches over HTTP, point reads
/// with a million orders stored, and the replay with build specs against the same replay without
/// models.
extension BenchSuite {
    func orders() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-orders-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let plant = ProcessInfo.processInfo.environment["MES_BENCH_CONFIG"] ?? "Stations/plant.json"
        let withModels = try Self.writeConfig(from: plant, models: true, in: dir, name: "plant.json")
        // MES_BENCH_ORDERS=create or =replay runs one part (profiling).
        let part = ProcessInfo.processInfo.environment["MES_BENCH_ORDERS"]
        if part != "replay" { try ordersCreateAndRead(config: withModels, dir: dir) }
        if part != "create" { try ordersReplay(plant: plant, dir: dir) }
    }

    /// A copy of the plant config with absolute tokens path; without `models` it has no orders blocks.
    static func writeConfig(from path: String, models: Bool, in dir: URL, name: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard case .object(var members) = try JSON.parse(text) else { throw UsageError("\(path) is not a JSON object") }
        if !models { members.removeAll { ["vin", "orders", "models", "options"].contains($0.0) } }
        let tokens = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("tokens.json").path
        members.removeAll { $0.0 == "auth" }
        members.append(("auth", .obj([("tokensFile", .string(tokens)), ("anonymousRead", .bool(true))])))
        let out = dir.appendingPathComponent(name).path
        try JSON.object(members).serialized().write(toFile: out, atomically: true, encoding: .utf8)
        return out
    }

    private func startServer(config: String, database: String, replay: String = "/dev/null", exitAfter: Bool = false) throws -> (MESServer, Task<Void, any Error>) {
        var options = ServerOptions()
        options.config = config
        options.database = database
        options.port = 0
        options.replay = replay
        options.speed = .max
        options.exitAfterReplay = exitAfter
        let server = try MESServer(options: options, logger: Logger(label: "bench", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        return (server, task)
    }

    /// 100,000 orders (short: 20,000) in batches of 10,000 → orders/s; then up to 1,000,000 stored
    /// (short: 20,000) and 1,000 vehicles with orders: p99 of GET /api/orders/{id} and /api/vehicles/{id}.
    private func ordersCreateAndRead(config: String, dir: URL) throws {
        let (server, task) = try startServer(config: config, database: dir.appendingPathComponent("orders.sqlite").path)
        defer {
            server.shutdown()
            _ = try? blocking { try await task.value }
        }
        let client = BenchHTTPClient(port: server.port, token: "demo-engineer-token")
        let batch = 10_000
        let measured = short ? 20_000 : 100_000
        let stored = short ? 20_000 : 1_000_000
        let models = ["D90-2WD", "D90-4WD", "E20-EV"]
        func body(_ from: Int) -> [UInt8] {
            var out = [UInt8]("[".utf8)
            out.reserveCapacity(batch * 90)
            for n in from..<(from + batch) {
                if n > from { out.append(44) }
                out += Array(#"{"orderId":"B-\#(String(format: "%07d", n))","model":"\#(models[n % 3])","options":\#(n % 4 == 0 ? #"["PANO"]"# : "[]"),"plannedDate":"2026-12-07","plannedShift":"\#(["A", "B", "C"][n % 3])"}"#.utf8)
            }
            out.append(93)
            return out
        }
        var created = 0
        // The client's bodies are made before the clock starts (the client shares the machine).
        let bodies = stride(from: 0, to: measured, by: batch).map(body)
        let cpuBefore = processCPUMicroseconds() / 1e6
        let started = Monotonic.nanoseconds()
        while created < measured {
            let (status, answer) = try client.request("POST", "/api/orders", body: bodies[created / batch])
            guard status == 201 else { throw UsageError("POST /api/orders answered \(status): \(answer.prefix(300))") }
            created += batch
        }
        let seconds = Double(Monotonic.nanoseconds() - started) / 1e9
        let cpu = processCPUMicroseconds() / 1e6 - cpuBefore
        Self.figure("orders created over HTTP in batches of 10,000", Double(created) / seconds, unit: "orders/s", target: 20_000,
                    higherIsBetter: true, reference: String(format: "%d orders in %.1f s, events and rows committed; %.1f CPU-s in this process (server and client), ",
                                                            created, seconds, cpu) + "load average \(loadAverage())")
        while created < stored {
            let (status, answer) = try client.request("POST", "/api/orders", body: body(created))
            guard status == 201 else { throw UsageError("POST /api/orders answered \(status): \(answer.prefix(300))") }
            created += batch
        }
        // 1,000 vehicles with orders (released VINs, vehicle rows as tracking writes them).
        let vehicles = 1_000
        var vins: [String] = []
        for i in 0..<vehicles {
            var chars = Array("LSVBENCH0TS" + String(format: "%06d", i))
            chars[8] = VINRules.checkDigit(String(chars)) ?? "0"
            let vin = String(chars)
            vins.append(vin)
            let id = "B-" + String(format: "%07d", i * (stored / vehicles))
            let (status, answer) = try client.request("POST", "/api/orders/\(id)/release", body: Array(#"{"vehicleId":"\#(vin)"}"#.utf8))
            guard status == 200 else { throw UsageError("release answered \(status): \(answer.prefix(300))") }
        }
        let at = Date(timeIntervalSince1970: 1_796_000_000)
        let rows = vins
        _ = try server.eventLog.write { db in
            for vin in rows {
                try db.run("INSERT OR IGNORE INTO vehicles (vehicle_id, status, current_station, first_seen_ms, last_seen_ms, last_route_index) VALUES (?, 'in_process', 'WELD-01', ?, ?, 1)",
                           [.text(vin), .integer(Int64(at.timeIntervalSince1970 * 1000)), .integer(Int64(at.timeIntervalSince1970 * 1000))])
            }
        }
        var random = SimRandom(seed: 42, stream: "orders-bench")
        func p99(_ paths: () -> String) throws -> Double {
            var times: [Double] = []
            let count = short ? 300 : 2_000
            for _ in 0..<count {
                let path = paths()
                let t0 = Monotonic.nanoseconds()
                let (status, answer) = try client.request("GET", path)
                times.append(Double(Monotonic.nanoseconds() - t0) / 1e6)
                guard status == 200 else { throw UsageError("GET \(path) answered \(status): \(answer.prefix(200))") }
            }
            return percentile(times, 0.99)
        }
        let orderP99 = try p99 { "/api/orders/B-" + String(format: "%07d", Int(random.next() % UInt64(stored))) }
        Self.figure("GET /api/orders/{id} p99 with \(stored) orders stored", orderP99, unit: "ms", target: 5, higherIsBetter: false,
                    reference: "one request per connection, loopback")
        let vehicleP99 = try p99 { "/api/vehicles/" + vins[Int(random.next() % UInt64(vins.count))] }
        Self.figure("GET /api/vehicles/{id} (with its order and spec) p99 with \(stored) orders stored", vehicleP99, unit: "ms", target: 5,
                    higherIsBetter: false, reference: "one request per connection, loopback")
    }

    /// The same recording replayed through the whole server twice in this run: once with no
    /// models, once with the default plant's models and every vehicle's order released.
    private func ordersReplay(plant: String, dir: URL) throws {
        let plain = try Self.writeConfig(from: plant, models: false, in: dir, name: "plain.json")
        let specs = try Self.writeConfig(from: plant, models: true, in: dir, name: "specs.json")
        let config = try PlantConfig.load(path: specs)
        let recording = dir.appendingPathComponent("shift.jsonl").path
        let duration: TimeInterval = short ? 600 : 2 * 3600
        let generated = try generateRecording(config: config, duration: duration, to: recording, mode: .everyPoll)
        var vins: [String] = []
        var seen = Set<String>()
        for line in try String(contentsOfFile: recording, encoding: .utf8).split(separator: "\n") where line.contains("\"vehicleId\"") {
            guard let json = try? JSON.parse(String(line)), let vin = json["value"]?.stringValue, !vin.isEmpty, seen.insert(vin).inserted else { continue }
            vins.append(vin)
        }
        // Orders for every vehicle of the recording, stored before the replay starts.
        let specsDB = dir.appendingPathComponent("specs.sqlite").path
        do {
            let (server, task) = try startServer(config: specs, database: specsDB)
            let client = BenchHTTPClient(port: server.port, token: "demo-engineer-token")
            let models = config.models.keys.sorted()
            let options = config.options.keys.sorted()
            let orders = vins.enumerated().map { i, _ in
                #"{"orderId":"R-\#(i)","model":"\#(models[i % models.count])","options":\#(i % 2 == 0 ? "[\"\(options[0])\"]" : "[]")}"#
            }
            let (status, answer) = try client.request("POST", "/api/orders", body: Array(("[" + orders.joined(separator: ",") + "]").utf8))
            guard status == 201 else { throw UsageError("POST /api/orders answered \(status): \(answer.prefix(300))") }
            for (i, vin) in vins.enumerated() {
                let (s, a) = try client.request("POST", "/api/orders/R-\(i)/release", body: Array(#"{"vehicleId":"\#(vin)"}"#.utf8))
                guard s == 200 else { throw UsageError("release answered \(s): \(a.prefix(300))") }
            }
            server.shutdown()
            try blocking { try await task.value }
        }
        func replay(_ config: String, _ database: String) throws -> Double {
            let (server, task) = try startServer(config: config, database: database, replay: recording, exitAfter: true)
            let started = Monotonic.nanoseconds()
            try blocking { try await task.value }
            _ = server
            return Double(generated.samples) / (Double(Monotonic.nanoseconds() - started) / 1e9)
        }
        // Three rounds in alternating order, best of each (a shared machine's load moves between runs); each run
        // starts from its own copy of the database.
        func copy(_ from: String, _ to: String) throws {
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: from + suffix) {
                try? FileManager.default.removeItem(atPath: to + suffix)
                try FileManager.default.copyItem(atPath: from + suffix, toPath: to + suffix)
            }
        }
        var without = 0.0, with = 0.0
        for round in 0..<3 {
            let db = dir.appendingPathComponent("specs-\(round).sqlite").path
            try copy(specsDB, db)
            func plainRun() throws { without = max(without, try replay(plain, dir.appendingPathComponent("plain-\(round).sqlite").path)) }
            if round % 2 == 0 {
                try plainRun()
                with = max(with, try replay(specs, db))
            } else {
                with = max(with, try replay(specs, db))
                try plainRun()
            }
        }
        let ratio = with / without * 100
        Self.figure("replay throughput with build specs, against the same replay with no models", ratio, unit: "%", target: 90,
                    higherIsBetter: true, reference: String(format: "%.0f samples/s with %d orders released vs %.0f samples/s without models, %.1f h recording",
                                                            with, vins.count, without, duration / 3600))
    }
}

/// A blocking HTTP/1.1 client for the benchmarks: one request per connection, Bearer token.
struct BenchHTTPClient {
    let port: UInt16
    let token: String

    func request(_ method: String, _ path: String, body: [UInt8]? = nil) throws -> (Int, String) {
        let fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000)
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: 120_000)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer \(token)\r\n"
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        let (status, text) = try Socket.exchangeClosing(fd, request: Array(head.utf8) + (body ?? []))
        return (status, text)
    }
}
