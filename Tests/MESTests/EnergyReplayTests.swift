import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import TestSupport

/// Energy attribution through the whole server, on a hand-made recording whose answers are known
/// (README "Energy and equipment health"): a metered body station with a meter reset inside an
/// operation, and a utilities station with power only.
final class EnergyReplayTests: XCTestCase {
    static let config = """
    {
      "plant": "Energy test", "timezone": "UTC", "route": ["body"],
      "stations": [
        {"id": "BODY-01", "process": "body", "protocol": "modbus", "endpoint": "modbus://127.0.0.1:15401?unit=1",
         "signals": [
           {"name": "vehicleId", "role": "vehicleId", "address": "hr:10", "type": "string", "length": 17},
           {"name": "cycleDone", "role": "cycleComplete", "address": "coil:0", "type": "bool"},
           {"name": "state", "role": "state", "address": "hr:31", "type": "uint16"},
           {"name": "energy", "role": "energy", "address": "ir:40", "type": "uint32", "scale": 0.01, "unit": "kWh"}
         ]},
        {"id": "AIR-01", "process": "utilities", "protocol": "modbus", "endpoint": "modbus://127.0.0.1:15402?unit=1",
         "signals": [
           {"name": "state", "role": "state", "address": "hr:31", "type": "uint16"},
           {"name": "power", "role": "power", "address": "hr:20", "type": "float32", "unit": "kW"}
         ]}
      ]
    }
    """

    /// Seconds after 2026-11-23T00:00:00Z, station, signal, value.
    static let lines: [(Double, String, String, String)] = [
        (0, "BODY-01", "vehicleId", "\"\""), (0, "BODY-01", "cycleDone", "false"), (0, "BODY-01", "state", "0"),
        (0, "BODY-01", "energy", "100.0"),
        (0, "AIR-01", "state", "1"), (0, "AIR-01", "power", "10.0"),
        // Idle for the first minute: 0.5 kWh; then the vehicle arrives and the machine runs.
        (60, "BODY-01", "energy", "100.5"), (60, "BODY-01", "vehicleId", "\"V1\""), (60, "BODY-01", "state", "1"),
        (120, "BODY-01", "energy", "102.5"),
        (120, "AIR-01", "power", "20.0"),
        // The meter is reset to 0 mid-operation and reads 1.0 kWh 30 s later: 1.0 counted, never −101.5.
        (150, "BODY-01", "energy", "1.0"),
        (180, "BODY-01", "energy", "2.0"), (180, "BODY-01", "cycleDone", "true"),
        (190, "BODY-01", "cycleDone", "false"), (190, "BODY-01", "vehicleId", "\"\""), (190, "BODY-01", "state", "0"),
        (240, "AIR-01", "power", "20.0"),
        (240, "BODY-01", "energy", "2.3"),
        (260, "BODY-01", "energy", "2.3"),
    ]

    /// Writes `lines` as a recording in `dir` and replays it at full speed into `mes.sqlite` there;
    /// returns the server once the replay finished (the caller shuts it down).
    func replay(_ lines: [(Double, String, String, String)], named name: String, in dir: URL) throws -> InProcessServer {
        let configPath = dir.appendingPathComponent("plant.json").path
        try Self.config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let start = try XCTUnwrap(Timestamp.parse("2026-11-23T00:00:00Z"))
        let recording = lines.map { t, station, signal, value in
            "{\"t\":\"\(Timestamp.format(start.addingTimeInterval(t)))\",\"station\":\"\(station)\",\"signal\":\"\(signal)\",\"value\":\(value)}"
        }.joined(separator: "\n") + "\n"
        let recordingPath = dir.appendingPathComponent(name).path
        try recording.write(toFile: recordingPath, atomically: true, encoding: .utf8)

        let running = try InProcessServer(config: configPath, database: dir.appendingPathComponent("mes.sqlite").path,
                                          replay: recordingPath, level: .error)
        XCTAssertTrue(eventually(timeout: 60) { (try? running.http.get("/api/health").json?["replay"]?["finished"]) == .bool(true) })
        return running
    }

    /// The server stops while V1 is in BODY-01 and starts again on the same database; the meter
    /// moved on while it was down. V1's operation gets the meter's reading at completion (104.0)
    /// minus its reading at the start (100.5), not null and not only the part after the restart.
    func testOperationInProgressAcrossARestart() async throws {
        let dir = makeTempDirectory(self)
        let before: [(Double, String, String, String)] = [
            (0, "BODY-01", "vehicleId", "\"\""), (0, "BODY-01", "cycleDone", "false"), (0, "BODY-01", "state", "0"),
            (0, "BODY-01", "energy", "100.0"),
            (60, "BODY-01", "energy", "100.5"), (60, "BODY-01", "vehicleId", "\"V1\""), (60, "BODY-01", "state", "1"),
            (120, "BODY-01", "energy", "102.5"),
        ]
        let first = try replay(before, named: "before.jsonl", in: dir)
        let inProgress = try XCTUnwrap(first.http.get("/api/vehicles/V1").json?["operations"]?.arrayValue)
        XCTAssertEqual(inProgress.count, 1)
        XCTAssertTrue(inProgress.first?["completedAt"]?.isNull ?? false, "V1 is still in the station at the stop")
        try await first.stop()

        let after: [(Double, String, String, String)] = [
            (150, "BODY-01", "vehicleId", "\"V1\""), (150, "BODY-01", "cycleDone", "false"), (150, "BODY-01", "state", "1"),
            (150, "BODY-01", "energy", "103.0"),
            (180, "BODY-01", "energy", "104.0"), (180, "BODY-01", "cycleDone", "true"),
            (190, "BODY-01", "cycleDone", "false"), (190, "BODY-01", "vehicleId", "\"\""), (190, "BODY-01", "state", "0"),
        ]
        let second = try replay(after, named: "after.jsonl", in: dir)
        let http = second.http
        let vehicle = try XCTUnwrap(http.get("/api/vehicles/V1").json)
        let operations = try XCTUnwrap(vehicle["operations"]?.arrayValue)
        XCTAssertEqual(operations.count, 1, "\(operations)")
        XCTAssertFalse(operations.first?["completedAt"]?.isNull ?? true)
        XCTAssertEqual(try XCTUnwrap(operations.first?["energyKWh"]?.doubleValue), 3.5, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(vehicle["energyKWh"]?.doubleValue), 3.5, accuracy: 1e-9)
        try await second.stop()
    }

    func testEnergyPerOperationVehicleStationLineAndIdle() async throws {
        let dir = makeTempDirectory(self)
        let running = try replay(Self.lines, named: "energy.jsonl", in: dir)
        let http = running.http

        // The operation: 2.0 kWh running before the reset, 1.0 after it, 1.0 to completion.
        let vehicle = try XCTUnwrap(http.get("/api/vehicles/V1").json)
        let operations = try XCTUnwrap(vehicle["operations"]?.arrayValue)
        XCTAssertEqual(operations.count, 1)
        XCTAssertEqual(try XCTUnwrap(operations[0]["energyKWh"]?.doubleValue), 4.0, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(vehicle["energyKWh"]?.doubleValue), 4.0, accuracy: 1e-9, "the vehicle's total")

        // Stations: BODY-01 4.8 kWh (0.5 + 0.3 idle); AIR-01 10 kW × 120 s + 20 kW × 120 s = 1.0 kWh, all running.
        var kpis: JSON?
        XCTAssertTrue(eventually(timeout: 10) {
            kpis = try? http.get("/api/kpis").json
            return kpis?["line"]?["energy"]?["kWh"]?.doubleValue.map { abs($0 - 5.8) < 1e-6 } ?? false
        }, "line energy: \(String(describing: kpis?["line"]))")
        let stations = try XCTUnwrap(kpis?["stations"]?.arrayValue)
        let body = try XCTUnwrap(stations.first { $0["id"]?.stringValue == "BODY-01" }?["energy"])
        XCTAssertEqual(try XCTUnwrap(body["kWh"]?.doubleValue), 4.8, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(body["idleKWh"]?.doubleValue), 0.8, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(body["kWhPerVehicle"]?.doubleValue), 4.8, accuracy: 1e-6)
        let air = try XCTUnwrap(stations.first { $0["id"]?.stringValue == "AIR-01" }?["energy"])
        XCTAssertEqual(try XCTUnwrap(air["kWh"]?.doubleValue), 1.0, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(air["idleKWh"]?.doubleValue), 0, accuracy: 1e-9)
        XCTAssertTrue(air["kWhPerVehicle"]?.isNull ?? false, "no vehicles at a utilities station")
        let line = try XCTUnwrap(kpis?["line"]?["energy"])
        XCTAssertEqual(try XCTUnwrap(line["idleKWh"]?.doubleValue), 0.8, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(line["kWhPerVehicle"]?.doubleValue), 5.8, accuracy: 1e-6, "one completed vehicle")

        // Never a vehicle at the utilities station.
        let vehicles = try XCTUnwrap(http.get("/api/vehicles").json?.arrayValue)
        XCTAssertEqual(vehicles.map { $0["vehicleId"]?.stringValue }, ["V1"])
        XCTAssertEqual(try XCTUnwrap(http.get("/api/vehicles?station=AIR-01").json?.arrayValue).count, 0)
        let air01 = try XCTUnwrap(http.get("/api/stations/AIR-01").json)
        XCTAssertTrue(air01["currentVehicle"]?.isNull ?? false)

        try await running.stop()
    }
}
