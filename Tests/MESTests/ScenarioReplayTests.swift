import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import Simulation
import TestSupport

/// Shipped scenarios replayed through the whole server: what they promise reaches the API.
final class ScenarioReplayTests: XCTestCase {
    /// Generates a scenario's recording and replays it at full speed; the server keeps serving after.
    func replayScenario(_ name: String, hours: Double) async throws -> (MESServer, Task<Void, any Error>) {
        let dir = makeTempDirectory(self)
        let configPath = repoRoot.appendingPathComponent("Stations/plant.json").path
        let config = try PlantConfig.load(path: configPath)
        let scenario = try Scenario.load(path: repoRoot.appendingPathComponent("Stations/scenarios/\(name).json").path)
        let recording = dir.appendingPathComponent("\(name).jsonl").path
        _ = try generateRecording(config: config, scenario: scenario, duration: hours * 3600, to: recording)
        var options = ServerOptions()
        options.config = configPath
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = recording
        options.speed = .max
        let server = try MESServer(options: options, logger: Logger(label: "replay", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        let http = TestHTTP(port: server.port)
        XCTAssertTrue(eventually(timeout: 120) { (try? http.get("/api/health").json?["replay"]?["finished"]) == .bool(true) },
                      "the replay finishes and says so in /api/health")
        return (server, task)
    }

    func testWeldDriftRaisesAnAnomalyAlertBeforeTheFirstOutOfSpecWeld() async throws {
        let (server, task) = try await replayScenario("weld-drift", hours: 3.5)
        let http = TestHTTP(port: server.port)
        let alerts = try XCTUnwrap(http.get("/api/alerts?state=all&station=WELD-01&limit=10000").json?.arrayValue)
        func time(_ alert: JSON) -> Date? { alert["raisedAt"]?.stringValue.flatMap(Timestamp.parse) }
        let anomaly = alerts.filter { $0["type"]?.stringValue == "anomaly" && $0["signal"]?.stringValue == "weldCurrent" }.compactMap(time).min()
        let outOfSpec = alerts.filter { $0["type"]?.stringValue == "quality" && $0["signal"]?.stringValue == "weldCurrent" }.compactMap(time).min()
        let firstAnomaly = try XCTUnwrap(anomaly, "an anomaly alert on WELD-01 weldCurrent: \(alerts.map { $0["key"]?.stringValue ?? "" })")
        let firstOutOfSpec = try XCTUnwrap(outOfSpec, "the drift does cross the limit")
        XCTAssertLessThan(firstAnomaly, firstOutOfSpec, "warned \(firstOutOfSpec.timeIntervalSince(firstAnomaly) / 60) min before the first out-of-spec weld")
        let anomalies = try XCTUnwrap(http.get("/api/anomalies").json?.arrayValue)
        XCTAssertTrue(anomalies.contains { $0["station"]?.stringValue == "WELD-01" && $0["signal"]?.stringValue == "weldCurrent" })
        // The drift's out-of-spec welds are defects on real vehicles with full genealogy.
        let defects = try XCTUnwrap(http.get("/api/defects?station=WELD-01&limit=10000").json?.arrayValue)
        let vin = try XCTUnwrap(defects.first?["vehicleId"]?.stringValue)
        let vehicle = try XCTUnwrap(http.get("/api/vehicles/\(vin)").json)
        XCTAssertTrue(vehicle["operations"]?.arrayValue?.contains { $0["station"]?.stringValue == "WELD-01" } ?? false)
        server.shutdown()
        try await task.value
    }

    func testDowntimeHeavyShiftLowersAvailabilityAndCountsFaults() async throws {
        let (server, task) = try await replayScenario("downtime-heavy", hours: 2)
        let http = TestHTTP(port: server.port)
        let kpis = try XCTUnwrap(http.get("/api/kpis").json)
        let stations = kpis["stations"]?.arrayValue ?? []
        XCTAssertTrue(stations.contains { !($0["downtimeByFault"]?.objectValue?.isEmpty ?? true) }, "faults are counted by code: \(stations)")
        let alerts = try XCTUnwrap(http.get("/api/alerts?state=all&limit=10000").json?.arrayValue)
        XCTAssertTrue(alerts.contains { $0["type"]?.stringValue == "kpi" }, "a downtime alert: \(alerts.map { $0["key"]?.stringValue ?? "" })")
        server.shutdown()
        try await task.value
    }
}
