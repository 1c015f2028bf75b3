import BenchSupport
import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import TestSupport

/// A short soak in every test run: the default plant simulated over real Modbus and OPC UA,
/// event-stream clients and API load for a few seconds; nothing fails and no descriptor leaks.
final class SoakTests: XCTestCase {
    func testSimulatedPlantUnderLoadLeaksNothing() async throws {
        let dir = makeTempDirectory(self)
        var options = ServerOptions()
        options.config = repoRoot.appendingPathComponent("Stations/plant.json").path
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.simulate = true
        let server = try MESServer(options: options, logger: Logger(label: "soak", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        let http = TestHTTP(port: server.port)
        XCTAssertTrue(eventually(timeout: 30) { (try? http.get("/api/health").json?["stations"]?["online"]?.intValue) == 8 },
                      "all eight simulated stations (UTIL-01 included) come online over their real protocols")
        let fdStart = openDescriptorCount()
        let rssStart = residentBytes()
        var clients: [TestSSEClient] = []
        for _ in 0..<30 { clients.append(try TestSSEClient(port: server.port)) }
        var failures = 0, requests = 0
        let paths = ["/api/stations", "/api/kpis", "/api/alerts", "/api/vehicles", "/api/anomalies", "/metrics", "/api/stations/PAINT-01"]
        let deadline = Date().addingTimeInterval(6)
        while Date() < deadline {
            let response = try http.get(paths[requests % paths.count])
            if response.status != 200 { failures += 1 }
            requests += 1
            if requests % 50 == 0 { for client in clients { _ = client.read(count: 1000, timeout: 0.01) } }
        }
        var received = 0
        for client in clients { received += client.read(count: 1000, timeout: 0.2).count }
        XCTAssertEqual(failures, 0, "\(failures) of \(requests) API requests failed")
        XCTAssertGreaterThan(received, 30, "clients receive events")
        let fdLoaded = openDescriptorCount()
        clients.removeAll()
        XCTAssertTrue(eventually(timeout: 5) { openDescriptorCount() <= fdStart + 2 },
                      "descriptors back to \(fdStart) after the clients left (now \(openDescriptorCount()))")
        print("soak: \(requests) requests, \(received) events read; descriptors \(fdStart) → \(fdLoaded) → \(openDescriptorCount()); RSS \(rssStart / 1_048_576) → \(residentBytes() / 1_048_576) MiB")
        let stations = try XCTUnwrap(http.get("/api/stations").json?.arrayValue)
        XCTAssertTrue(stations.allSatisfy { $0["connection"]?.stringValue == "online" })
        XCTAssertTrue(stations.allSatisfy { ($0["errors"]?.intValue ?? 1) == 0 }, "no poll errors against the simulators")
        server.shutdown()
        try await task.value
    }
}
