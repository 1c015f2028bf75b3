import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import Simulation
import TestSupport

/// The key part rules through a replay (README "Key parts, recall and the quality gate"): the
/// `key-parts` scenario's recording fed through the whole server, with orders released to its VINs
/// beforehand: a duplicate serial, a wrong part, missing parts and the gate's holds.
final class PartReplayTests: XCTestCase {
    /// D90 lists the engine the assembly stations scan; D90X also an airbag nobody scans (missing).
    static let masterData = """
        {
          "vin": {"checkDigit": true},
          "models": {
            "D90": {"name": "D90", "parts": {"engine": "ENG-20T"}},
            "D90X": {"name": "D90 with airbag check", "parts": {"engine": "ENG-20T", "airbag": "AB-1"}}
          },
          "gate": {"holdOnOpenDefects": true}
        }
        """

    func server(_ dir: URL, replay: String) throws -> (MESServer, Task<Void, any Error>, TestHTTP) {
        var options = ServerOptions()
        options.config = dir.appendingPathComponent("plant.json").path
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = replay
        options.speed = .max
        let server = try MESServer(options: options, logger: Logger(label: "replay", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        return (server, task, TestHTTP(port: server.port))
    }

    func testKeyPartsScenarioThroughAReplay() async throws {
        let dir = makeTempDirectory(self)
        try PartAPITests.writeConfig(in: dir, extra: Self.masterData)
        let config = try PlantConfig.load(path: dir.appendingPathComponent("plant.json").path)
        let scenario = try Scenario.load(path: repoRoot.appendingPathComponent("Stations/scenarios/key-parts.json").path)
        let recording = dir.appendingPathComponent("key-parts.jsonl").path
        _ = try generateRecording(config: config, scenario: scenario, duration: 3600, to: recording)
        let vins = try PlantSimulator(config: config, scenario: scenario).upcomingVINs(120)

        // Orders for the VINs the scenario releases: even ones D90, odd ones D90X.
        var model: [String: String] = [:]
        do {
            let (server, task, http) = try self.server(dir, replay: "/dev/null")
            let orders = vins.enumerated().map { i, vin -> String in
                model[vin] = i % 2 == 0 ? "D90" : "D90X"
                return #"{"orderId": "SO-\#(i)", "model": "\#(model[vin]!)"}"#
            }
            XCTAssertEqual(try http.request("POST", "/api/orders", body: "[" + orders.joined(separator: ",") + "]", headers: PartAPITests.engineer).status, 201)
            for (i, vin) in vins.enumerated() {
                let released = try http.request("POST", "/api/orders/SO-\(i)/release", body: #"{"vehicleId": "\#(vin)"}"#, headers: PartAPITests.engineer)
                XCTAssertEqual(released.status, 200, released.body)
            }
            server.shutdown()
            try await task.value
        }

        let (server, task, http) = try self.server(dir, replay: recording)
        XCTAssertTrue(eventually(timeout: 180) { (try? http.get("/api/health").json?["replay"]?["finished"]) == .bool(true) },
                      "the replay finishes")
        let defects = try XCTUnwrap(http.get("/api/defects?limit=10000").json?.arrayValue)
        func with(_ prefix: String) -> [JSON] { defects.filter { $0["code"]?.stringValue?.hasPrefix(prefix) ?? false } }

        // The duplicate serial: kept on both vehicles, reported on the second.
        let duplicate = with("DUPLICATE_SERIAL:")
        XCTAssertEqual(duplicate.map { $0["code"]?.stringValue }, ["DUPLICATE_SERIAL:engine"])
        let second = try XCTUnwrap(duplicate.first?["vehicleId"]?.stringValue)
        let serial = try XCTUnwrap(http.get("/api/vehicles/\(second)").json?["parts"]?.arrayValue?.first?["serial"]?.stringValue)
        let holders = try XCTUnwrap(http.get("/api/parts/\(serial)").json?.arrayValue).compactMap { $0["vehicleId"]?.stringValue }
        XCTAssertEqual(holders.count, 2, "both vehicles hold \(serial)")
        XCTAssertEqual(holders.first, second, "newest first")
        XCTAssertEqual(duplicate.first?["station"]?.stringValue, "ASSY-01")

        // The wrong part: ENG-99X against the spec's ENG-20T.
        let wrong = with("WRONG_PART:")
        XCTAssertEqual(wrong.map { $0["code"]?.stringValue }, ["WRONG_PART:engine"])
        XCTAssertTrue(wrong.first?["description"]?.stringValue?.contains("ENG-99X") ?? false, "\(wrong)")

        let alerts = try XCTUnwrap(http.get("/api/alerts?state=all&limit=10000").json?.arrayValue).filter { $0["type"]?.stringValue == "part" }
        XCTAssertEqual(alerts.count, 2, "one part alert for each: \(alerts.map { $0["message"]?.stringValue ?? "" })")

        // Missing parts: every D90X that finished lacks its airbag and is held; D90s without defects pass.
        let finished = try XCTUnwrap(http.get("/api/vehicles?limit=10000").json?.arrayValue)
            .filter { ["completed", "hold"].contains($0["status"]?.stringValue ?? "") }
        XCTAssertGreaterThanOrEqual(finished.count, 10, "an hour finishes vehicles")
        let missing = Set(with("MISSING_PART:").compactMap { $0["vehicleId"]?.stringValue })
        XCTAssertTrue(with("MISSING_PART:").allSatisfy { $0["code"]?.stringValue == "MISSING_PART:airbag" })
        let withOpenDefects = Set(defects.filter { $0["status"]?.stringValue == "open" }.compactMap { $0["vehicleId"]?.stringValue })
        for vehicle in finished {
            let vin = vehicle["vehicleId"]?.stringValue ?? ""
            XCTAssertEqual(missing.contains(vin), model[vin] == "D90X", "\(vin) \(model[vin] ?? "?")")
            XCTAssertEqual(vehicle["status"]?.stringValue, withOpenDefects.contains(vin) ? "hold" : "completed", vin)
        }
        let held = try XCTUnwrap(finished.first { model[$0["vehicleId"]?.stringValue ?? ""] == "D90X" }?["vehicleId"]?.stringValue)
        let reason = try XCTUnwrap(http.get("/api/vehicles/\(held)").json?["holdReason"]?.stringValue)
        XCTAssertTrue(reason.contains("MISSING_PART:airbag"), reason)
        XCTAssertTrue(finished.contains { $0["status"]?.stringValue == "completed" }, "clean D90s pass the gate")
        server.shutdown()
        try await task.value
    }
}
