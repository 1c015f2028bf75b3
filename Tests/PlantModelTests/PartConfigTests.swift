import Foundation
import XCTest
import Runtime
@testable import PlantModel
import TestSupport

/// `partSerial` / `partNumber` signals and the `gate` block (docs/CONFIG.md): errors name the JSON path.
final class PartConfigTests: XCTestCase {
    private func decode(signals: [[String: Any]], extra: [String: Any] = [:]) -> Result<PlantConfig, ConfigError> {
        var root: [String: Any] = [
            "route": ["assembly"],
            "stations": [[
                "id": "A1", "process": "assembly", "protocol": "modbus", "endpoint": "modbus://127.0.0.1:1502?unit=1",
                "signals": [["name": "vin", "role": "vehicleId", "address": "hr:0", "type": "string", "length": 17]] + signals,
            ] as [String: Any]],
        ]
        root.merge(extra) { $1 }
        let data = try! JSONSerialization.data(withJSONObject: root)
        do {
            return .success(try PlantConfig.decode(json: try JSON.parse(bytes: [UInt8](data)), file: "plant.json", directory: URL(fileURLWithPath: "/tmp")))
        } catch let error as ConfigError {
            return .failure(error)
        } catch {
            return .failure(ConfigError(file: "plant.json", path: "", message: "\(error)"))
        }
    }

    private func error(signals: [[String: Any]], extra: [String: Any] = [:]) -> String {
        if case .failure(let error) = decode(signals: signals, extra: extra) { return "\(error)" }
        return "no error"
    }

    let serial: [String: Any] = ["name": "engineSerial", "role": "partSerial", "partType": "engine", "address": "hr:20", "type": "string", "length": 16]
    let number: [String: Any] = ["name": "enginePartNo", "role": "partNumber", "partType": "engine", "address": "hr:30", "type": "string", "length": 12]

    func testPartSignalsAndGateDecode() throws {
        let config = try decode(signals: [serial, number], extra: ["gate": ["holdOnOpenDefects": true]]).get()
        let station = try XCTUnwrap(config.station("A1"))
        XCTAssertEqual(station.signal(role: .partSerial)?.partType, "engine")
        XCTAssertEqual(station.signal(role: .partNumber)?.partType, "engine")
        XCTAssertTrue(config.gate.holdOnOpenDefects)
        XCTAssertFalse(try decode(signals: []).get().gate.holdOnOpenDefects, "no gate without the block")
    }

    func testDefaultPlantScansTheEngineAtBothAssemblyStations() throws {
        let config = try PlantConfig.load(path: repoRoot.appendingPathComponent("Stations/plant.json").path)
        for id in ["ASSY-01", "ASSY-02"] {
            XCTAssertEqual(config.station(id)?.signal(role: .partSerial)?.partType, "engine", id)
            XCTAssertEqual(config.station(id)?.signal(role: .partNumber)?.partType, "engine", id)
        }
        XCTAssertEqual(try config.buildSpec(model: "D90-4WD", options: []).parts, ["engine": "ENG-20T"])
    }

    func testErrorsNameTheirPaths() {
        var noType = serial
        noType["partType"] = nil
        XCTAssertEqual(error(signals: [noType]), "plant.json: stations[0].signals[1].partType: is required for a partSerial signal (e.g. \"engine\")")
        var badType = serial
        badType["partType"] = "engine block"
        XCTAssertTrue(error(signals: [badType]).hasPrefix("plant.json: stations[0].signals[1].partType: \"engine block\" is not a part type"))
        var onMeasurement: [String: Any] = ["name": "torque", "role": "measurement", "address": "hr:40", "type": "uint16"]
        onMeasurement["partType"] = "engine"
        XCTAssertEqual(error(signals: [onMeasurement]), "plant.json: stations[0].signals[1].partType: only a partSerial or partNumber signal has a partType")
        var lonelyNumber = number
        lonelyNumber["partType"] = "seat"
        XCTAssertEqual(error(signals: [serial, lonelyNumber]),
                       "plant.json: stations[0].signals[2].partType: no partSerial signal of this station has part type \"seat\"")
        var second = serial
        second["name"] = "engineSerial2"
        second["address"] = "hr:50"
        XCTAssertEqual(error(signals: [serial, second]),
                       "plant.json: stations[0].signals[2].partType: a second partSerial signal for part type \"engine\"")
        XCTAssertTrue(error(signals: [], extra: ["gate": ["holdOnOpenDefect": true]]).hasPrefix("plant.json: gate.holdOnOpenDefect: is not a known setting"))
        XCTAssertTrue(error(signals: [], extra: ["gate": ["holdOnOpenDefects": "yes"]]).hasPrefix("plant.json: gate.holdOnOpenDefects:"))
    }
}
