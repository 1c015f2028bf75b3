import BenchSupport
import Foundation
import MESApp
import Runtime

/// A bounded soak: the default plant simulated at full rate, many event-stream clients and API
/// load; memory and descriptors at start and end.
extension BenchSuite {
    func soak() throws {
        raiseFileLimit()
        let seconds = short ? 5.0 : 180.0
        let clients = short ? 50 : 500
        let bench = try BenchServer(config: ProcessInfo.processInfo.environment["MES_BENCH_CONFIG"] ?? "Stations/plant.json") {
            $0.simulate = true
        }
        defer { bench.stop() }
        let server = bench.server
        var waited = 0
        while server.pipeline.live.connectionCounts()[.online] != server.config.stations.count && waited < 300 { usleep(100_000); waited += 1 }
        let rss0 = residentBytes(), fd0 = openDescriptorCount()
        let swarm = try ClientSwarm(port: server.port, request: ClientSwarm.eventStreamRequest())
        try swarm.connect(clients, streaming: true)
        let stop = Flag()
        let requests = Counter(), failures = Counter()
        let paths = ["/api/health", "/api/stations", "/api/kpis", "/api/alerts", "/api/vehicles?limit=20", "/api/anomalies", "/metrics"]
        let loader = Thread {
            var i = 0
            while !stop.isSet {
                if healthOnce(port: server.port, path: paths[i % paths.count]) == nil { failures.add(1) }
                requests.add(1)
                i += 1
            }
        }
        loader.start()
        let deadline = Monotonic.nanoseconds() + UInt64(seconds * 1e9)
        while Monotonic.nanoseconds() < deadline { swarm.pump(timeoutMs: 50) }
        stop.set()
        while !loader.isFinished { swarm.pump(timeoutMs: 5) }
        let rss1 = residentBytes(), fd1 = openDescriptorCount()
        swarm.close()
        usleep(500_000)
        let fd2 = openDescriptorCount()
        let events = server.hub.metrics
        print(String(format: "soak %.0f s, default plant simulated, %d SSE clients, API load: %d requests (%d failed), %d events published, %d clients dropped",
                     seconds, clients, requests.value, failures.value, events.eventsPublished, events.droppedClients))
        print(String(format: "soak memory: RSS %.1f MiB at start, %.1f MiB at end", Double(rss0) / 1_048_576, Double(rss1) / 1_048_576))
        print("soak descriptors: \(fd0) at start, \(fd1) with the clients connected, \(fd2) after they left")
        Self.figure("soak: descriptors left over after the clients left", Double(max(0, fd2 - fd0)), unit: "descriptors", target: 5,
                    higherIsBetter: false)
        Self.figure("soak: failed API requests", Double(failures.value), unit: "requests", target: 0, higherIsBetter: false)
    }
}
