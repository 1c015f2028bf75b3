import Foundation
import PlantModel
import Runtime
import XCTest
@testable import Simulation
import TestSupport

final class ScenarioTests: XCTestCase {
    func decode(_ text: String) throws -> Scenario {
        try Scenario.decode(json: try JSON.parse(text), file: "test.json")
    }

    func assertConfigError(_ text: String, path: String, contains fragment: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(text), file: file, line: line) { error in
            guard let error = error as? ConfigError else { return XCTFail("not a ConfigError: \(error)", file: file, line: line) }
            XCTAssertEqual(error.path, path, "\(error)", file: file, line: line)
            XCTAssertTrue(error.message.contains(fragment), "\(error)", file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix("test.json: \(path): "), error.description, file: file, line: line)
        }
    }

    func testDecodingErrorsNameTheJSONPath() {
        assertConfigError(#"{"events": [{"type": "fault", "station": "WELD-01", "at": "1h", "duration": "5m", "code": 1}, {"type": "offline", "station": "ASSY-01", "at": "3x", "duration": "1m"}]}"#,
                          path: "events[1].at", contains: "\"3x\" is not a duration")
        assertConfigError(#"{"taktSeconds": 60}"#, path: "taktSeconds", contains: "is not a known setting")
        assertConfigError(#"{"events": [{"type": "explode", "at": 5}]}"#, path: "events[0].type", contains: "\"explode\" is not an event type")
        assertConfigError(#"{"events": [{"type": "fault", "station": "WELD-01", "at": 5, "duration": 60}]}"#, path: "events[0].code", contains: "is required")
        assertConfigError(#"{"events": [{"type": "fault", "station": "WELD-01", "at": 5, "duration": 0, "code": 3}]}"#, path: "events[0].duration", contains: "longer than 0")
        assertConfigError(#"{"measurements": {"WELD-01.weldCurrent": {"sigma": "big"}}}"#, path: "measurements.WELD-01.weldCurrent.sigma", contains: "must be a number")
        assertConfigError(#"{"nokRate": 1.5}"#, path: "nokRate", contains: "out of range")
        assertConfigError(#"{"vin": {"wmi": "LS"}}"#, path: "vin.wmi", contains: "3 VIN characters")
        assertConfigError(#"{"events": [{"type": "skip", "at": 5, "station": "PAINT-01"}]}"#, path: "events[0].station", contains: "is not a known setting")
        assertConfigError(#"{"start": "tomorrow"}"#, path: "start", contains: "not an RFC 3339 time")
        assertConfigError(#"{"events": {"type": "skip"}}"#, path: "events", contains: "must be an array")
    }

    func testEventsAreCheckedAgainstThePlantConfig() throws {
        let config = try defaultPlant()
        func simulatorError(_ text: String) -> ConfigError? {
            do {
                _ = try PlantSimulator(config: config, scenario: try decode(text))
                return nil
            } catch {
                return error as? ConfigError
            }
        }
        let unknownStation = simulatorError(#"{"events": [{"type": "offline", "station": "ASSY-01", "at": 1, "duration": 1}, {"type": "fault", "station": "WELD-09", "at": 5, "duration": 60, "code": 3}]}"#)
        XCTAssertEqual(unknownStation?.path, "events[1]")
        XCTAssertTrue(unknownStation?.message.contains("\"WELD-09\" is not in the plant config") ?? false, "\(String(describing: unknownStation))")
        let notMeasurement = simulatorError(#"{"events": [{"type": "drift", "station": "WELD-01", "signal": "panelLot", "at": 5, "duration": 60, "to": 3}]}"#)
        XCTAssertEqual(notMeasurement?.path, "events[0]")
        XCTAssertTrue(notMeasurement?.message.contains("no measurement signal \"panelLot\"") ?? false)
        let noVehicles = simulatorError(#"{"events": [{"type": "skip", "process": "stamping", "at": 5}]}"#)
        XCTAssertTrue(noVehicles?.message.contains("not a vehicle process") ?? false, "\(String(describing: noVehicles))")
    }

    func testLoadReportsSyntaxErrorsWithTheLine() throws {
        let folder = TempFolder()
        let path = folder.file("bad.json")
        try "{\n  \"seed\": 1,\n  \"nokRate\": ,\n}".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Scenario.load(path: path)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(path): line 3: "), "\(error)")
        }
        XCTAssertThrowsError(try Scenario.load(path: folder.file("missing.json"))) { error in
            XCTAssertTrue("\(error)".contains("cannot be read"), "\(error)")
        }
    }

    func testShippedScenariosLoadAndFitTheDefaultPlant() throws {
        let config = try defaultPlant()
        let folder = repoRoot.appendingPathComponent("Stations/scenarios")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }.sorted()
        for required in ["normal-shift.json", "weld-drift.json", "paint-excursion.json", "downtime-heavy.json"] {
            XCTAssertTrue(files.contains(required), "missing \(required)")
        }
        for file in files {
            let scenario = try Scenario.load(path: folder.appendingPathComponent(file).path)
            XCTAssertFalse(scenario.description.isEmpty, file)
            XCTAssertEqual(scenario.name + ".json", file)
            _ = try PlantSimulator(config: config, scenario: scenario)
        }
        let drift = try shippedScenario("weld-drift")
        XCTAssertTrue(drift.description.contains("crosses the 12.0 kA high limit at 3h after the start"), drift.description)
    }

    func testNormalShiftFileIsTheBuiltInBehaviour() throws {
        let config = try defaultPlant()
        let folder = TempFolder()
        try generateRecording(config: config, scenario: .normalShift, duration: 600, to: folder.file("builtin.jsonl"))
        try generateRecording(config: config, scenario: try shippedScenario("normal-shift"), duration: 600, to: folder.file("file.jsonl"))
        let a = try Data(contentsOf: URL(fileURLWithPath: folder.file("builtin.jsonl")))
        let b = try Data(contentsOf: URL(fileURLWithPath: folder.file("file.jsonl")))
        XCTAssertGreaterThan(a.count, 10_000)
        XCTAssertEqual(a, b)
    }

    func testDurations() {
        XCTAssertEqual(SimDuration.parse("8h"), 28800)
        XCTAssertEqual(SimDuration.parse("1h30m"), 5400)
        XCTAssertEqual(SimDuration.parse("45m"), 2700)
        XCTAssertEqual(SimDuration.parse("90s"), 90)
        XCTAssertEqual(SimDuration.parse("500ms"), 0.5)
        XCTAssertEqual(SimDuration.parse("1.5h"), 5400)
        XCTAssertEqual(SimDuration.parse("01:30:00"), 5400)
        XCTAssertEqual(SimDuration.parse("90"), 90)
        XCTAssertNil(SimDuration.parse("3x"))
        XCTAssertNil(SimDuration.parse("h"))
        XCTAssertNil(SimDuration.parse("5h3"))
        XCTAssertNil(SimDuration.parse(""))
        XCTAssertNil(SimDuration.parse("-5"))
    }

    func testVINsAreValidAndDeterministicFromTheSeed() throws {
        XCTAssertTrue(VIN.isValid("1M8GDM9AXKP042788"))
        XCTAssertFalse(VIN.isValid("1M8GDM9A1KP042788"))
        let config = try defaultPlant()
        func vins(seed: UInt64) throws -> [String] {
            let sim = try PlantSimulator(config: config, seed: seed)
            let weld = config.stations.firstIndex { $0.id == "WELD-01" }!
            var seen: [String] = []
            while sim.elapsedMs < 600_000 {
                sim.step()
                if case .string(let vin) = sim.values(at: weld)[0], !vin.isEmpty, seen.last != vin { seen.append(vin) }
            }
            return seen
        }
        let first = try vins(seed: 1)
        XCTAssertGreaterThanOrEqual(first.count, 3)
        for vin in first {
            XCTAssertEqual(vin.count, 17)
            XCTAssertTrue(VIN.isValid(vin), vin)
            XCTAssertTrue(vin.hasPrefix("LSVAB3C1"), vin)
            XCTAssertEqual(Array(vin)[9], "T", "model year 2026")
        }
        XCTAssertEqual(try vins(seed: 1), first)
        XCTAssertNotEqual(try vins(seed: 2), first)
    }
}
