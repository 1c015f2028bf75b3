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

    func testAndonCallsScenarioOpensAndClosesCallsFromTheSignalAndLogsDowntimeWithReasons() async throws {
        let (server, task) = try await replayScenario("andon-calls", hours: 1.6)
        let http = TestHTTP(port: server.port)
        let start = try XCTUnwrap(Timestamp.parse("2026-11-23T06:00:00+08:00"))
        let calls = try XCTUnwrap(http.get("/api/andon?limit=100").json?.arrayValue).reversed()
        XCTAssertEqual(calls.map { "\($0["station"]?.stringValue ?? "") \($0["kind"]?.stringValue ?? "")" },
                       ["WELD-01 help", "ASSY-02 material", "ASSY-02 maintenance", "WELD-01 quality"])
        XCTAssertTrue(calls.allSatisfy { $0["state"]?.stringValue == "closed" && $0["source"]?.stringValue == "signal" })
        // Opened and closed within a poll (100 ms) of the scenario's windows.
        let windows: [(Double, Double)] = [(600, 780), (1500, 1860), (3000, 3240), (4200, 4320)]
        for (call, (open, close)) in zip(calls, windows) {
            let opened = try XCTUnwrap(call["openedAt"]?.stringValue.flatMap(Timestamp.parse)).timeIntervalSince(start)
            let closed = try XCTUnwrap(call["closedAt"]?.stringValue.flatMap(Timestamp.parse)).timeIntervalSince(start)
            XCTAssertEqual(opened, open, accuracy: 0.25, "\(call)")
            XCTAssertEqual(closed, close, accuracy: 0.25, "\(call)")
        }
        let alerts = try XCTUnwrap(http.get("/api/alerts?state=all&limit=10000").json?.arrayValue)
        XCTAssertEqual(alerts.filter { $0["type"]?.stringValue == "andon" }.count, 4, "one andon alert per call")

        let weld2 = try XCTUnwrap(http.get("/api/downtime?station=WELD-02&limit=1000").json?.arrayValue)
        let tipDresser = try XCTUnwrap(weld2.first { $0["faultCode"]?.stringValue == "217" }, "\(weld2)")
        XCTAssertEqual(tipDresser["durationS"]?.doubleValue ?? 0, 300, accuracy: 0.25)
        XCTAssertEqual(tipDresser["reason"]?["category"]?.stringValue, "tooling")
        let assy2 = try XCTUnwrap(http.get("/api/downtime?station=ASSY-02&limit=1000").json?.arrayValue)
        XCTAssertTrue(assy2.contains { $0["state"]?.stringValue == "starved" && $0["reason"]?["code"]?.stringValue == "starved" }, "\(assy2)")
        let kpis = try XCTUnwrap(http.get("/api/kpis").json)
        XCTAssertEqual(kpis["andon"]?["calls"]?.intValue, 4)
        XCTAssertEqual(kpis["andon"]?["openNow"]?.intValue, 0)
        XCTAssertGreaterThanOrEqual(kpis["line"]?["downtimeByCategory"]?["tooling"]?.doubleValue ?? 0, 299.75)
        server.shutdown()
        try await task.value
    }
}
