import BenchSupport
import ComponentBenchmarks
import Foundation
import OPCUA
import OPCUAAdapter
import PlantModel
import Runtime

/// OPC UA benchmarks of `tools/bench`: our client against an o6 (open62541) server beside the
/// asyncua client's figures measured by tools/bench on the same server, notifications from 1,000
/// monitored items on our server, and value change → adapter sample latency.
extension BenchSuite {
    /// Reads in flight at once measured for both clients (tools/bench passes the same list to the asyncua script).
    static let opcuaInFlightLevels = [1, 8, 32, 64]
    /// The in-flight count of the headline ratio.
    static let opcuaHeadlineInFlight = 8

    func opcua() throws {
        let env = ProcessInfo.processInfo.environment
        let seconds = short ? 0.5 : 3.0
        if let url = env["MES_BENCH_O6_URL"] {
            let levels = Self.opcuaInFlightLevels
            let figures = try blocking {
                let client = try await OPCUAClient.connect(url, timeoutMs: 5000)
                let batch = (0..<1000).map { NodeId(UInt32(100_000 + $0), namespace: 1) }
                let result = try await OPCUABenchmark.reads(client: client, single: NodeId("Demo.Double", namespace: 1), batch: batch,
                                                            seconds: seconds, concurrency: levels, alsoOnGlobalPool: true)
                await client.close()
                return result
            }
            let asyncSingle = Double(env["MES_BENCH_ASYNCUA_SINGLE"] ?? "") ?? 0
            let asyncBatch = Double(env["MES_BENCH_ASYNCUA_BATCH"] ?? "") ?? 0
            // "8:1952,32:2668": asyncua's reads/s with N reads in flight (tasks on one client), same server, same run.
            var asyncConcurrent: [Int: Double] = [:]
            for pair in (env["MES_BENCH_ASYNCUA_CONCURRENT"] ?? "").split(separator: ",") {
                let parts = pair.split(separator: ":")
                if parts.count == 2, let level = Int(parts[0]), let rate = Double(parts[1]) { asyncConcurrent[level] = rate }
            }
            // The headline: N single-value reads in flight, N = what an adapter reading a station's signals one by one
            // keeps in flight (the plant's OPC UA stations have 9 signals each). Both clients at the same N.
            let n = Self.opcuaHeadlineInFlight
            let ours = figures.concurrentReadsPerSecond[n] ?? 0
            let theirs = asyncConcurrent[n] ?? 0
            func ratio(_ a: Double, _ b: Double) -> String { b > 0 ? String(format: "%.1f×", a / b) : "n/a" }
            let byLevel = levels.map { level -> String in
                let a = figures.concurrentReadsPerSecond[level] ?? 0, b = asyncConcurrent[level] ?? 0
                return String(format: "%d: %.0f vs %.0f (%@)", level, a, b, ratio(a, b))
            }.joined(separator: ", ")
            Self.figure("OPC UA single-value reads/s against o6, \(n) reads in flight on one channel, our client ÷ asyncua",
                        theirs > 0 ? ours / theirs : 0, unit: "×", target: 5, higherIsBetter: true,
                        reference: String(format: "ours %.0f reads/s, asyncua %.0f reads/s at %d in flight; sequential (1 in flight, one read after another): ours %.0f, asyncua %.0f (%@), our CPU %.1f µs/read, ours from a task on the global pool %.0f; ours vs asyncua reads/s by in-flight count: %@",
                                          ours, theirs, n, figures.singleReadsPerSecond, asyncSingle, ratio(figures.singleReadsPerSecond, asyncSingle),
                                          figures.singleReadCPUMicroseconds, figures.singleReadsPerSecondOnGlobalPool ?? 0, byLevel))
            Self.figure("OPC UA batched values/s against o6, our client ÷ asyncua", asyncBatch > 0 ? figures.batchedValuesPerSecond / asyncBatch : 0,
                        unit: "×", target: 5, higherIsBetter: true,
                        reference: String(format: "ours %.0f values/s, asyncua %.0f values/s (1,000 per read)", figures.batchedValuesPerSecond, asyncBatch))
        } else {
            print("OPC UA against o6: skipped (tools/bench starts the o6 peer and sets MES_BENCH_O6_URL)")
        }
        let notes = try blocking { try await OPCUABenchmark.notifications(items: 1000, seconds: seconds) }
        Self.figure("OPC UA notifications/s from 1,000 monitored items (our server)", notes.notificationsPerSecond, unit: "notifications/s",
                    target: 20_000, higherIsBetter: true, reference: "\(notes.itemsUpToDate)/\(notes.items) items up to date")
        let p99 = try adapterLatencyP99(changes: short ? 20 : 200)
        Self.figure("OPC UA value change → adapter sample p99 (publishing 100 ms)", p99, unit: "ms", target: 105, higherIsBetter: false)
    }

    /// Changes a value on our server and times until the subscribed adapter reports it.
    func adapterLatencyP99(changes: Int) throws -> Double {
        let server = OPCUAServer()
        let node = NodeId("Bench.Value", namespace: 2)
        try server.addVariable(nodeId: node, browseName: "Value", value: .double(0))
        try server.start()
        defer { server.stop() }
        let port = server.port
        let station = StationConfig(id: "BENCH", name: "bench", process: "paint", protocol: .opcua,
                                    endpoint: .opcua(url: "opc.tcp://127.0.0.1:\(port)", host: "127.0.0.1", port: port),
                                    pollIntervalMs: 100, subscribe: true, signals: [SignalConfig(name: "value", node: "ns=2;s=Bench.Value")])
        let seen = Locked<Double?>(nil)
        let adapter = OPCUAStationAdapter(config: station, sink: { event in
            if case .poll(let poll) = event, let v = poll.readings.first?.value?.number { seen.set(v) }
        }, logger: Logger(label: "bench", level: .error))
        let task = Task { try? await adapter.run() }
        defer { task.cancel() }
        var waited = 0
        while seen.value == nil && waited < 500 { usleep(10_000); waited += 1 }
        var latencies: [Double] = []
        for i in 1...changes {
            let value = Double(i)
            let started = Monotonic.nanoseconds()
            try server.setValue(nodeId: node, value: .double(value))
            let deadline = started + 2_000_000_000
            while seen.value != value && Monotonic.nanoseconds() < deadline { usleep(200) }
            latencies.append(Double(Monotonic.nanoseconds() - started) / 1e6)
            usleep(UInt32.random(in: 5_000...60_000)) // land at different points of the publishing cycle
        }
        return percentile(latencies, 0.99)
    }
}
