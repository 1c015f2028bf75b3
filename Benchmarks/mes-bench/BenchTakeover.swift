import BenchSupport
import Foundation
import MESApp
import Runtime
import Storage
#if canImport(Glibc)
import Glibc
#endif

extension BenchSuite {
    /// Two `mes-server` nodes on one PostgreSQL database (`MES_BENCH_PG` or `MES_TEST_PG`, started by tools/bench), the
    /// default plant's PLCs served by a `station-sim` process on free ports: the active is killed
    /// with SIGKILL, again and again, and each time the time from its last lease renewal (the
    /// database's `renewed_at`, on the database's clock) until the standby's `/api/health` says
    /// `active` is measured. The killed node is started again as the next standby.
    func takeover() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let admin = [environment["MES_BENCH_PG"], environment["MES_TEST_PG"]].compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
            throw UsageError("takeover needs a PostgreSQL server: set MES_BENCH_PG=postgresql://… (tools/bench starts one)")
        }
        let rounds = short ? 2 : 10
        let leaseS = 5.0
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-takeover-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = "bench_takeover_\(getpid())"
        let adminLink = try ClusterLink(url: admin)
        try adminLink.execute("CREATE DATABASE \(database)")
        defer { try? adminLink.execute("DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
        let url = Self.databaseURL(admin, database: database)

        let config = try Self.plantOnFreePorts(directory: directory, leaseS: leaseS)
        let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let sim = Process()
        sim.executableURL = binaries.appendingPathComponent("station-sim")
        sim.arguments = ["--config", config, "--log-level", "error", "--exit-with-parent"]
        sim.standardOutput = FileHandle.nullDevice
        sim.standardError = FileHandle.nullDevice
        try sim.run()
        var nodes: [(process: Process, port: UInt16)] = []
        defer {
            for node in nodes where node.process.isRunning { kill(node.process.processIdentifier, SIGKILL); node.process.waitUntilExit() }
            if sim.isRunning { sim.terminate(); sim.waitUntilExit() }
        }
        func startNode(_ index: Int) throws -> (process: Process, port: UInt16) {
            let fd = try Socket.listen(host: "127.0.0.1", port: 0)
            let port = try Socket.localPort(fd)
            Socket.close(fd)
            let process = Process()
            process.executableURL = binaries.appendingPathComponent("mes-server")
            process.arguments = ["--config", config, "--db", url, "--listen", "127.0.0.1:\(port)", "--node", "bench-\(index)",
                                 "--log-level", "error"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return (process, port)
        }
        func role(_ port: UInt16) -> String? { Self.healthRole(port: port) }
        func wait(_ what: String, timeoutS: Double, _ condition: () -> Bool) throws {
            let deadline = Monotonic.nanoseconds() + UInt64(timeoutS * 1e9)
            while !condition() {
                guard Monotonic.nanoseconds() < deadline else { throw UsageError("takeover: \(what) within \(timeoutS) s") }
                usleep(20_000)
            }
        }

        var index = 0
        nodes.append(try startNode(index))
        try wait("the first node becomes active", timeoutS: 60) { role(nodes[0].port) == "active" }
        var times: [Double] = []
        for _ in 0..<rounds {
            index += 1
            let standby = try startNode(index)
            nodes.append(standby)
            try wait("a standby serves", timeoutS: 60) { role(standby.port) == "standby" }
            // Let the standby settle and the active renew a few times.
            usleep(1_500_000)
            let active = nodes[nodes.count - 2]
            kill(active.process.processIdentifier, SIGKILL)
            active.process.waitUntilExit()
            let killed = Monotonic.nanoseconds()
            // Since the kill (the active is gone, the standby cannot have taken over yet): how long ago its last renewal was.
            let sinceRenewal = try adminAge(url: url)
            try wait("the standby takes over", timeoutS: leaseS + 60) { role(standby.port) == "active" }
            times.append(Double(Monotonic.nanoseconds() - killed) / 1e9 + sinceRenewal)
        }
        let sorted = times.sorted()
        Self.figure("takeover after kill -9 of the active, p99 (from its last lease renewal to the standby active)",
                    percentile(sorted: sorted, 0.99), unit: "s", target: leaseS + 5, higherIsBetter: false,
                    reference: String(format: "%d takeovers, leaseS %.0f; median %.2f s, max %.2f s; the default plant (8 PLCs) served by station-sim; PostgreSQL on the same 2 cores",
                                      rounds, leaseS, percentile(sorted: sorted, 0.5), sorted.last ?? 0))
    }

    /// `/api/health`'s `role` on 127.0.0.1:`port`, nil when it does not answer 200.
    static func healthRole(port: UInt16) -> String? {
        guard let response = getOnce(port: port, path: "/api/health", connectTimeoutMs: 1000, timeoutMs: 2000) else { return nil }
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 200"), let split = text.range(of: "\r\n\r\n"),
              let json = try? JSON.parse(String(text[split.upperBound...])) else { return nil }
        return json["role"]?.stringValue
    }

    /// Seconds since the lease's last renewal, on the database's clock.
    private func adminAge(url: String) throws -> Double {
        let link = try ClusterLink(url: url)
        let rows = try link.query("SELECT extract(epoch FROM now() - renewed_at)::float8 FROM cluster_lease")
        guard let text = rows.first?.first ?? nil else { return 0 }
        return Double(text) ?? 0
    }

    /// `admin` with its database name replaced by `database`.
    static func databaseURL(_ admin: String, database: String) -> String {
        guard let scheme = admin.range(of: "://"), let slash = admin[scheme.upperBound...].firstIndex(of: "/") else {
            return admin + "/" + database
        }
        let rest = admin[admin.index(after: slash)...]
        let query = rest.firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        return String(admin[...slash]) + database + query
    }

    /// The default plant with every PLC on a free port and `leaseS`, written into `directory`.
    static func plantOnFreePorts(directory: URL, leaseS: Double) throws -> String {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Stations/plant.json")
        var text = try String(contentsOf: FileManager.default.fileExists(atPath: source.path) ? source : URL(fileURLWithPath: "Stations/plant.json"),
                              encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: #"127\.0\.0\.1:(1[45]\d{3})"#)
        let ports = Set(pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: 1), in: text).map { String(text[$0]) }
        })
        // The listeners stay open until every port is chosen, so no two PLCs get the same one.
        var listeners: [Int32] = []
        defer { listeners.forEach(Socket.close) }
        for port in ports {
            let fd = try Socket.listen(host: "127.0.0.1", port: 0)
            listeners.append(fd)
            text = text.replacingOccurrences(of: "127.0.0.1:\(port)", with: "127.0.0.1:\(try Socket.localPort(fd))")
        }
        guard var members = try JSON.parse(text).objectValue else { throw UsageError("Stations/plant.json is not an object") }
        members.removeAll { $0.0 == "auth" }
        members.append(("leaseS", .double(leaseS)))
        let path = directory.appendingPathComponent("plant.json").path
        try JSON.object(members).serialized().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
