import BenchSupport
import Foundation
import MESApp
import PlantModel
import Runtime
import Simulation
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// The operations query, the recall query and CSV exports at plant scale (README "Operations
/// query", "Exports (CSV)"): 10,000,000 operations of 1,000,000 vehicles (short: 100,000 of
/// 10,000), made with bulk SQL in one transaction and cached under `.build/bench-data/` (the
/// short run's in a temporary folder).
extension BenchSuite {
    func operationsQuery() throws {
        let vehicles = short ? 10_000 : 1_000_000
        var data = try BenchOperationsData(vehicles: vehicles, short: short)
        let path = try data.prepare()
        defer { if short { data.remove() } }

        var options = ServerOptions()
        options.config = "Stations/plant.json"
        options.database = path
        options.port = 0
        options.replay = "/dev/null"
        let server = try MESServer(options: options, logger: Logger(label: "bench", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        defer {
            server.shutdown()
            _ = try? blocking { try await task.value }
        }
        let client = BenchHTTPClient(port: server.port, token: "demo-viewer-token")
        let stored = "\(data.operations.formatted()) operations, \(vehicles.formatted()) vehicles stored"

        // 1. One station, one hour.
        var random = SimRandom(seed: 7, stream: "operations-bench")
        var times: [Double] = []
        var rows = 0
        let requests = short ? 200 : 2_000
        for _ in 0..<requests {
            let station = BenchOperationsData.stations[Int(random.next() % UInt64(BenchOperationsData.stations.count))].id
            let hour = Int64(random.next() % UInt64(max(1, data.hours - 1)))
            let from = BenchOperationsData.t0 + hour * 3_600_000
            let path = "/api/operations?station=\(station)&from=\(Self.time(from))&to=\(Self.time(from + 3_600_000 - 1))"
            let t0 = Monotonic.nanoseconds()
            let (status, answer) = try client.request("GET", path)
            times.append(Double(Monotonic.nanoseconds() - t0) / 1e6)
            guard status == 200 else { throw UsageError("GET \(path) answered \(status): \(answer.prefix(200))") }
            rows += answer.split(separator: "\"vehicleId\"", omittingEmptySubsequences: false).count - 1
        }
        Self.figure("GET /api/operations?station=…&from=…&to=… (one hour) p99", percentile(times, 0.99), unit: "ms", target: 50,
                    higherIsBetter: false,
                    reference: String(format: "%@; %d requests, %.0f operations per answer, median %.2f ms, one request per connection",
                                      stored, requests, Double(rows) / Double(requests), percentile(times, 0.5)))

        // 2. Recall by part number (the parts feature's route and table; skipped without them).
        let probe = try client.request("GET", "/api/recall?partNumber=\(BenchOperationsData.partNumber(0))")
        if probe.0 == 404 {
            print("GET /api/recall?partNumber=… p99: skipped: this build has no /api/recall route (the parts feature builds it)")
        } else if !data.hasPartBindings {
            print("GET /api/recall?partNumber=… p99: skipped: the database has no part_bindings table to fill (\(data.partsNote))")
        } else {
            var recall: [Double] = []
            var matched = 0
            let count = short ? 50 : 300
            for _ in 0..<count {
                let path = "/api/recall?partNumber=\(BenchOperationsData.partNumber(Int(random.next() % UInt64(BenchOperationsData.partNumbers))))"
                let t0 = Monotonic.nanoseconds()
                let (status, answer) = try client.request("GET", path)
                recall.append(Double(Monotonic.nanoseconds() - t0) / 1e6)
                guard status == 200 else { throw UsageError("GET \(path) answered \(status): \(answer.prefix(200))") }
                matched += Int((try? JSON.parse(answer))?["count"]?.intValue ?? 0)
            }
            Self.figure("GET /api/recall?partNumber=… p99", percentile(recall, 0.99), unit: "ms", target: 200, higherIsBetter: false,
                        reference: String(format: "%@, one engine bound to each; %.0f vehicles per answer, median %.1f ms",
                                          stored, Double(matched) / Double(count), percentile(recall, 0.5)))
        }

        // 3. A CSV export of a million rows (short: every row), streamed; this process's memory.
        let exportRows = min(1_000_000, data.operations)
        _ = try BenchDownload.run(port: server.port, path: "/api/operations?format=csv&limit=20000")
        let before = residentBytes()
        let cpuBefore = processCPUMicroseconds()
        let t0 = Monotonic.nanoseconds()
        let result = try BenchDownload.run(port: server.port, path: "/api/operations?format=csv&limit=\(exportRows)", sampleEvery: 16)
        let seconds = Double(Monotonic.nanoseconds() - t0) / 1e9
        let cpu = (processCPUMicroseconds() - cpuBefore) / 1e6
        guard result.records == exportRows + 1 else {
            throw UsageError("the export gave \(result.records) records, not \(exportRows) rows and a header")
        }
        Self.figure("CSV export of /api/operations", Double(exportRows) / seconds, unit: "rows/s", target: 200_000, higherIsBetter: true,
                    reference: String(format: "%d rows, %.0f MiB in %.2f s; %.1f CPU-s in this process (server and client), load average %@",
                                      exportRows, Double(result.bytes) / 1_048_576, seconds, cpu, loadAverage()))
        Self.figure("resident memory growth during the export", Double(max(0, result.peakResident - before)) / 1_048_576, unit: "MiB",
                    target: 20, higherIsBetter: false,
                    reference: String(format: "RSS %.0f MiB before, %.0f MiB at most during; server and reading client in one process",
                                      Double(before) / 1_048_576, Double(result.peakResident) / 1_048_576))
    }

    static func time(_ ms: Int64) -> String { Timestamp.format(Date(timeIntervalSince1970: (Double(ms) + 0.001) / 1000)) }
}

/// The benchmark's database: vehicles with VINs, ten operations each at six stations (one every
/// 9 s somewhere on the line, every 54 s at a station), their measurement rows and, when the
/// build has the parts feature's table, one engine bound to each vehicle.
struct BenchOperationsData {
    static let t0: Int64 = 1_700_000_000_000
    static let stations: [(id: String, process: String, measurements: String)] = [
        ("WELD-01", "welding", #"'{"weldCurrent":' || printf('%.2f', 9.5 + ((k * 7919) % 250) / 100.0) || ',"spotCount":' || (40 + k % 7) || '}'"#),
        ("WELD-02", "welding", #"'{"weldCurrent":' || printf('%.2f', 9.5 + ((k * 7919) % 250) / 100.0) || ',"spotCount":' || (40 + k % 7) || '}'"#),
        ("PAINT-01", "paint", #"'{"filmThickness":' || (80 + (k * 31) % 40) || '}'"#),
        ("ASSY-01", "assembly", #"'{"torque":' || printf('%.1f', 115 + ((k * 13) % 100) / 10.0) || '}'"#),
        ("ASSY-02", "assembly", #"'{"torque":' || printf('%.1f', 115 + ((k * 17) % 100) / 10.0) || '}'"#),
        ("INSP-01", "inspection", #"'{"gap":' || printf('%.2f', 3 + ((k * 3) % 200) / 100.0) || '}'"#),
    ]
    static let partNumbers = 1_000
    static func partNumber(_ n: Int) -> String { "ENG-\(n)" }

    let vehicles: Int
    let short: Bool
    let folder: URL
    var operations: Int { vehicles * 10 }
    /// Hours of history (one operation every 9 s).
    var hours: Int64 { Int64(operations) * 9 / 3600 }
    var path: String { folder.appendingPathComponent("operations-\(vehicles)-v1.sqlite").path }
    private var marker: String { path + ".ready" }
    private(set) var hasPartBindings = false
    private(set) var partsNote = ""

    init(vehicles: Int, short: Bool) throws {
        self.vehicles = vehicles
        self.short = short
        folder = short ? FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-ops-\(getpid())")
                       : URL(fileURLWithPath: ".build/bench-data")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }

    /// The database ready to serve: made now unless a complete one is cached.
    mutating func prepare() throws -> String {
        if let note = try? String(contentsOfFile: marker, encoding: .utf8), FileManager.default.fileExists(atPath: path) {
            hasPartBindings = note.hasPrefix("parts")
            partsNote = note
            print("operations: using the cached database \(path) (delete it to make it again)")
            return path
        }
        for suffix in ["", "-wal", "-shm", ".ready"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let started = Monotonic.nanoseconds()
        // The server's migrations make the schema.
        var options = ServerOptions()
        options.config = "Stations/plant.json"
        options.database = path
        options.port = 0
        options.replay = "/dev/null"
        let server = try MESServer(options: options, logger: Logger(label: "bench", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        server.shutdown()
        try blocking { try await task.value }

        let db = try Database(path: path)
        defer { db.close() }
        // A throw-away file made in one go: no journal (a crash leaves no `.ready` marker, so it is made again).
        _ = try db.scalarText("PRAGMA journal_mode = OFF")
        try db.execute("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY")
        // Bulk load: indexes and triggers of the operations come back after the rows (one sort each).
        let saved = try db.query("""
            SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'operations' AND type IN ('index', 'trigger') AND sql IS NOT NULL
            """) { ($0.text(0) ?? "", $0.text(1) ?? "", $0.text(2) ?? "") }
        try db.transaction {
            for (type, name, _) in saved { try db.execute("DROP \(type == "index" ? "INDEX" : "TRIGGER") \"\(name)\"") }
            try db.execute("CREATE TEMP TABLE vins (n INTEGER PRIMARY KEY, vin TEXT NOT NULL)")
            let insert = try db.prepare("INSERT INTO vins (n, vin) VALUES (?, ?)")
            for n in 0..<vehicles {
                var chars = Array("LSV" + String(format: "%014d", n))
                chars[8] = "0"
                chars[8] = VINRules.checkDigit(String(chars)) ?? "0"
                try insert.bind([.integer(Int64(n)), .text(String(chars))])
                _ = try insert.step()
                insert.reset()
            }
            try db.run("""
                INSERT INTO vehicles (vehicle_id, status, current_station, first_seen_ms, last_seen_ms, last_route_index)
                SELECT vin, 'completed', NULL, ? + n * 90000, ? + n * 90000 + 500000, 4 FROM vins ORDER BY vin
                """, [.integer(Self.t0), .integer(Self.t0)])
            let station = "CASE k % 6 " + Self.stations.enumerated().map { "WHEN \($0.offset) THEN '\($0.element.id)'" }.joined(separator: " ") + " END"
            let process = "CASE k % 6 " + Self.stations.enumerated().map { "WHEN \($0.offset) THEN '\($0.element.process)'" }.joined(separator: " ") + " END"
            let measurements = "CASE k % 6 " + Self.stations.enumerated().map { "WHEN \($0.offset) THEN \($0.element.measurements)" }.joined(separator: " ") + " END"
            try db.run("""
                WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k + 1 < ?)
                INSERT INTO operations (id, vehicle_id, station, process, started_ms, completed_ms, state, result, measurements, lots, attempt)
                SELECT printf('op-%09d', k), (SELECT vin FROM vins WHERE vins.n = k / 10), \(station), \(process),
                       ? + k * 9000 - 50000, ? + k * 9000, 'completed', CASE WHEN k % 50 = 7 THEN 'nok' ELSE 'ok' END,
                       \(measurements), CASE WHEN k % 6 = 2 THEN '["PNT-' || (k / 20000) || '"]' ELSE '[]' END, 1
                FROM n
                """, [.integer(Int64(operations)), .integer(Self.t0), .integer(Self.t0)])
            try db.execute("""
                DELETE FROM operation_measurements;
                INSERT INTO operation_measurements (signal, value, op, completed_ms)
                SELECT j.key, j.value, o.rowid, o.completed_ms FROM operations o, json_each(o.measurements) j
                WHERE j.type IN ('integer', 'real') ORDER BY 1, 2, 3;
                """)
            for (_, _, sql) in saved { try db.execute(sql) }
            if try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'part_bindings'") == 1 {
                do {
                    _ = try db.savepoint("parts") {
                        try db.run("""
                            INSERT INTO part_bindings (part_type, serial, part_number, vehicle_id, station, bound_ms, bound_by)
                            SELECT 'engine', printf('E%010d', n), 'ENG-' || (n % ?), vin, 'ASSY-01', ? + n * 90000, 'plc' FROM vins
                            """, [.integer(Int64(Self.partNumbers)), .integer(Self.t0)])
                    }
                    hasPartBindings = true
                    partsNote = "parts: one engine per vehicle in part_bindings"
                } catch {
                    partsNote = "part_bindings has another shape: \(error)"
                }
            } else {
                partsNote = "no part_bindings table in this build"
            }
        }
        _ = try db.scalarText("PRAGMA journal_mode = WAL")
        try partsNote.write(toFile: marker, atomically: true, encoding: .utf8)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        print(String(format: "operations: made %@ (%.1f GiB) in %.0f s", path, Double(size) / 1_073_741_824,
                     Double(Monotonic.nanoseconds() - started) / 1e9))
        return path
    }
}

/// A streamed GET that decodes the chunked body as it arrives and keeps none of it: bytes,
/// CSV records (CRLF-ended; no field of the benchmark's rows holds a line break) and, every
/// `sampleEvery` pieces, this process's resident memory.
enum BenchDownload {
    struct Result {
        var bytes = 0
        var records = 0
        var peakResident = 0
    }

    static func run(port: UInt16, path: String, sampleEvery: Int = 0) throws -> Result {
        let fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000)
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: 120_000)
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        try Array(request.utf8).withUnsafeBytes { try Socket.writeAll(fd, $0) }
        var result = Result()
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        // Chunked decoding state: the size line, then `remaining` body bytes, then CRLF.
        var inHead = true
        var headTail: [UInt8] = []
        var sizeLine: [UInt8] = []
        var remaining = 0
        var skip = 0
        var done = false
        var reads = 0
        while !done {
            let n = try buffer.withUnsafeMutableBytes { try Socket.read(fd, into: $0) }
            if n == 0 { break }
            reads += 1
            if sampleEvery > 0 && reads % sampleEvery == 0 { result.peakResident = max(result.peakResident, residentBytes()) }
            var i = 0
            if inHead {
                while i < n && inHead {
                    headTail.append(buffer[i])
                    i += 1
                    if headTail.count >= 4 && headTail.suffix(4).elementsEqual([13, 10, 13, 10]) {
                        inHead = false
                        let head = String(decoding: headTail, as: UTF8.self)
                        guard head.hasPrefix("HTTP/1.1 200"), head.lowercased().contains("transfer-encoding: chunked") else {
                            throw UsageError("the export answered \(head.prefix(200))")
                        }
                    }
                }
            }
            while i < n && !done {
                if skip > 0 {
                    let k = min(skip, n - i)
                    skip -= k
                    i += k
                } else if remaining > 0 {
                    let k = min(remaining, n - i)
                    for j in i..<(i + k) where buffer[j] == 10 { result.records += 1 }
                    result.bytes += k
                    remaining -= k
                    i += k
                    if remaining == 0 { skip = 2 }
                } else {
                    let byte = buffer[i]
                    i += 1
                    if byte == 10 {
                        let text = String(decoding: sizeLine, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                        sizeLine.removeAll()
                        guard let size = Int(text, radix: 16) else { throw UsageError("bad chunk size \(text)") }
                        if size == 0 { done = true } else { remaining = size }
                    } else {
                        sizeLine.append(byte)
                    }
                }
            }
        }
        guard done else { throw UsageError("the export ended before its last chunk (\(result.bytes) bytes)") }
        if sampleEvery > 0 { result.peakResident = max(result.peakResident, residentBytes()) }
        return result
    }
}
