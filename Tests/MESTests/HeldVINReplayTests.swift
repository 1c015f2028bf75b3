import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import Simulation
import TestSupport

/// Recordings of the default plant whose PLCs hold the last vehicle id after a cycle, fault in the
/// middle of such holds and keep showing a vehicle while others pass a parallel cell
/// (`Tests/recordings/make_held_vins.py` writes them and says what they hold), replayed through the
/// whole server: holds raise no `sequence` alert, a real repeat and a real duplicate still do
/// (README "Tracking on real PLC behaviour").
final class HeldVINReplayTests: XCTestCase {
    static let a = "LSVAB3C10TS480101", b = "LSVAB3C12TS480102", c = "LSVAB3C14TS480103", d = "LSVAB3C16TS480104"

    /// Replays `Tests/recordings/NAME` (or the recording at `path`) at full speed and waits until
    /// it is done; the server keeps serving.
    func replay(_ name: String, path: String? = nil) async throws -> (MESServer, Task<Void, any Error>, TestHTTP) {
        let dir = makeTempDirectory(self)
        var options = ServerOptions()
        options.config = repoRoot.appendingPathComponent("Stations/plant.json").path
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = path ?? repoRoot.appendingPathComponent("Tests/recordings/\(name)").path
        options.speed = .max
        let server = try MESServer(options: options, logger: Logger(label: "held", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        let http = TestHTTP(port: server.port)
        XCTAssertTrue(eventually(timeout: 60) { (try? http.get("/api/health").json?["replay"]?["finished"]) == .bool(true) },
                      "the replay finishes")
        return (server, task, http)
    }

    func sequenceAlerts(_ http: TestHTTP) throws -> [String] {
        let alerts = try XCTUnwrap(http.get("/api/alerts?state=all&limit=10000").json?.arrayValue)
        return alerts.filter { $0["type"]?.stringValue == "sequence" }.compactMap { $0["key"]?.stringValue }.sorted()
    }

    /// Completed operations of a vehicle as "STATION#attempt", in time order.
    func operations(_ http: TestHTTP, _ vehicle: String) throws -> [String] {
        let json = try XCTUnwrap(http.get("/api/vehicles/\(vehicle)").json)
        let ops = try XCTUnwrap(json["operations"]?.arrayValue)
        return ops.filter { $0["state"]?.stringValue == "completed" }
            .map { "\($0["station"]?.stringValue ?? "?")#\($0["attempt"]?.intValue ?? 0)" }
    }

    func testHeldVINsWithFaultsRaiseNoSequenceAlert() async throws {
        let (server, task, http) = try await replay("held-vins.jsonl")
        XCTAssertEqual(try sequenceAlerts(http), [], "holds are no repeat and no duplicate")
        let skipped = try XCTUnwrap(http.get("/api/defects?limit=1000").json?.arrayValue)
            .compactMap { $0["code"]?.stringValue }.filter { $0.hasPrefix("SKIPPED") }
        XCTAssertEqual(skipped, [])
        XCTAssertEqual(try operations(http, Self.a), ["WELD-01#1", "PAINT-01#1", "ASSY-01#1", "INSP-01#1"])
        XCTAssertEqual(try operations(http, Self.b), ["WELD-02#1", "PAINT-01#1", "ASSY-02#1", "INSP-01#1"])
        XCTAssertEqual(try operations(http, Self.c), ["WELD-02#1", "PAINT-01#1", "ASSY-01#1", "INSP-01#1"])
        XCTAssertEqual(try operations(http, Self.d), ["WELD-01#1", "PAINT-01#1", "ASSY-02#1", "INSP-01#1"])
        for vin in [Self.a, Self.b, Self.c, Self.d] {
            let vehicle = try XCTUnwrap(http.get("/api/vehicles/\(vin)").json)
            XCTAssertEqual(vehicle["status"]?.stringValue, "completed", vin)
            let started = vehicle["operations"]?.arrayValue?.count
            XCTAssertEqual(started, 4, "no operation begun by a hold or a fault (\(vin))")
        }
        // The stations still show the vehicles they hold.
        let stations = try XCTUnwrap(http.get("/api/stations").json?.arrayValue)
        func current(_ id: String) -> String? {
            stations.first { $0["id"]?.stringValue == id }?["currentVehicle"]?.stringValue
        }
        XCTAssertEqual(current("INSP-01"), Self.d)
        XCTAssertEqual(current("ASSY-01"), Self.c)
        server.shutdown()
        try await task.value
    }

    func testRealRepeatAndDuplicateAmongHeldVINsAreStillCaught() async throws {
        let (server, task, http) = try await replay("held-vins-repeat-duplicate.jsonl")
        XCTAssertEqual(try sequenceAlerts(http), ["sequence:duplicateId:\(Self.b)", "sequence:repeated:ASSY-01:\(Self.a)"])
        XCTAssertEqual(try operations(http, Self.a), ["WELD-01#1", "PAINT-01#1", "ASSY-01#1", "INSP-01#1", "ASSY-01#2"])
        XCTAssertEqual(try operations(http, Self.b), ["WELD-02#1", "PAINT-01#1", "WELD-01#1", "ASSY-02#1", "INSP-01#1"])
        let alerts = try XCTUnwrap(http.get("/api/alerts?state=all&limit=10000").json?.arrayValue)
        let repeated = try XCTUnwrap(alerts.first { $0["key"]?.stringValue == "sequence:repeated:ASSY-01:\(Self.a)" })
        XCTAssertEqual(repeated["raisedAt"]?.stringValue, "2026-11-23T00:01:39.000Z", "raised when the second cycle completes")
        let duplicate = try XCTUnwrap(alerts.first { $0["key"]?.stringValue == "sequence:duplicateId:\(Self.b)" })
        XCTAssertEqual(duplicate["station"]?.stringValue, "WELD-01")
        server.shutdown()
        try await task.value
    }

    /// The simulator's duplicate VIN (a second body released with the VIN of the one before it,
    /// `Stations/scenarios/sequence-errors.json`): the two bodies are worked at the same time, then
    /// the second repeats what the first did; no other vehicle gets such an alert.
    func testSimulatedDuplicateVINIsCaughtAndNoOtherVehicleIsBlamed() async throws {
        let dir = makeTempDirectory(self)
        let config = try PlantConfig.load(path: repoRoot.appendingPathComponent("Stations/plant.json").path)
        let scenario = try Scenario.load(path: repoRoot.appendingPathComponent("Stations/scenarios/sequence-errors.json").path)
        let recording = dir.appendingPathComponent("sequence-errors.jsonl").path
        _ = try generateRecording(config: config, scenario: scenario, duration: 40 * 60, to: recording)
        let (server, task, http) = try await replay("", path: recording)
        let keys = try sequenceAlerts(http)
        let duplicates = keys.filter { $0.hasPrefix("sequence:duplicateId:") }
        XCTAssertEqual(duplicates.count, 1, "one duplicate VIN: \(keys)")
        let vin = try XCTUnwrap(duplicates.first?.split(separator: ":").last.map(String.init))
        let repeats = keys.filter { $0.hasPrefix("sequence:repeated:") }
        XCTAssertFalse(repeats.isEmpty, "the second body repeats the first one's operations: \(keys)")
        XCTAssertTrue(repeats.allSatisfy { $0.hasSuffix(":" + vin) }, "only the duplicated VIN repeats: \(keys)")
        server.shutdown()
        try await task.value
    }
}
