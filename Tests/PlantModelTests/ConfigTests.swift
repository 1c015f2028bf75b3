import Foundation
import XCTest
import Runtime
@testable import PlantModel
import TestSupport

final class ConfigTests: XCTestCase {

    func testDefaultPlantLoads() throws {
        let config = try PlantConfig.load(path: repoRoot.appendingPathComponent("Stations/plant.json").path)
        XCTAssertEqual(config.route, ["stamping", "welding", "paint", "assembly", "inspection"])
        XCTAssertEqual(Set(config.stations.filter(config.isOnRoute).map(\.process)), Set(config.route))
        XCTAssertEqual(config.stations.filter { !config.isOnRoute($0) }.map(\.id), ["UTIL-01"], "the utilities station is off the route")
        XCTAssertEqual(config.stations.filter { $0.protocol == .opcua }.map(\.id), ["PAINT-01", "ASSY-01"])
        let weld = try XCTUnwrap(config.station("WELD-01"))
        XCTAssertEqual(weld.endpoint, .modbusTCP(host: "127.0.0.1", port: 15020, unit: 1))
        XCTAssertEqual(weld.signal(named: "weldCurrent")?.limits, SpecLimits(low: 8, high: 12))
        XCTAssertEqual(weld.signal(named: "vehicleId")?.registerCount, 9)
        XCTAssertEqual(weld.signal(role: .state)?.states[2], "fault")
        XCTAssertEqual(config.auth?.tokensFile, repoRoot.appendingPathComponent("Stations/tokens.json").path)
        XCTAssertEqual(config.shifts.count, 3)
    }

    private func configError(_ mutate: (inout [String: Any]) -> Void) -> String {
        var root: [String: Any] = [
            "route": ["welding"],
            "stations": [[
                "id": "W1", "process": "welding", "protocol": "modbus", "endpoint": "modbus://127.0.0.1:1502?unit=1",
                "signals": [
                    ["name": "a", "address": "hr:1", "type": "uint16"],
                    ["name": "b", "address": "hr:2", "type": "float32"],
                    ["name": "c", "address": "hr:4", "type": "uint16"],
                    ["name": "d", "address": "hr:5", "type": "uint16"],
                ],
            ] as [String: Any]],
        ]
        mutate(&root)
        let data = try! JSONSerialization.data(withJSONObject: root)
        do {
            _ = try PlantConfig.decode(json: try JSON.parse(bytes: [UInt8](data)), file: "plant.json", directory: URL(fileURLWithPath: "/tmp"))
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    private func mutateSignal(_ index: Int, _ key: String, _ value: Any) -> (inout [String: Any]) -> Void {
        return { root in
            var stations = root["stations"] as! [[String: Any]]
            var signals = stations[0]["signals"] as! [[String: Any]]
            signals[index][key] = value
            stations[0]["signals"] = signals
            root["stations"] = stations
        }
    }

    func testValidConfigHasNoError() {
        XCTAssertEqual(configError { _ in }, "no error")
    }

    func testBadAddressNamesJSONPath() {
        XCTAssertEqual(configError(mutateSignal(2, "address", "hr:-1")),
                       "plant.json: stations[0].signals[2].address: \"hr:-1\" is not a register address (hr:N, ir:N, coil:N or di:N, N from 0 to 65535)")
    }

    func testOtherErrorsNameTheirPaths() {
        XCTAssertTrue(configError(mutateSignal(1, "type", "float16")).hasPrefix("plant.json: stations[0].signals[1].type: \"float16\" is not a type"))
        XCTAssertTrue(configError(mutateSignal(0, "wordOrder", "xyzw")).hasPrefix("plant.json: stations[0].signals[0].wordOrder:"))
        XCTAssertTrue(configError(mutateSignal(3, "pollInterval", 5)).hasPrefix("plant.json: stations[0].signals[3].pollInterval: is not a known setting"))
        XCTAssertEqual(configError { $0["route"] = nil }, "plant.json: route: is required")
        XCTAssertTrue(configError { $0["timezone"] = "Mars/Olympus" }.hasPrefix("plant.json: timezone: \"Mars/Olympus\""))
        XCTAssertTrue(configError { root in
            var stations = root["stations"] as! [[String: Any]]
            stations[0]["endpoint"] = "http://x"
            root["stations"] = stations
        }.hasPrefix("plant.json: stations[0].endpoint:"))
        XCTAssertTrue(configError { root in
            var stations = root["stations"] as! [[String: Any]]
            stations[0]["process"] = "painting"
            root["stations"] = stations
        }.contains("stations[0].process: \"painting\" is not on the route"))
        XCTAssertTrue(configError { $0["shifts"] = [["name": "A", "start": "25:00", "end": "06:00"]] }.hasPrefix("plant.json: shifts[0].start:"))
    }

    func testSyntaxErrorGivesLineAndColumn() throws {
        let dir = makeTempDirectory(self, prefix: "cfg")
        let file = dir.appendingPathComponent("bad.json").path
        try "{\n  \"route\": [\"a\",]\n}".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PlantConfig.load(path: file)) { error in
            XCTAssertTrue("\(error)".contains("line 2"), "\(error)")
        }
        XCTAssertThrowsError(try PlantConfig.load(path: dir.appendingPathComponent("missing.json").path)) { error in
            XCTAssertTrue("\(error)".contains("cannot be read"))
        }
    }

    func testEndpointParsing() {
        XCTAssertEqual(try Endpoint.parse("modbus://127.0.0.1:15020?unit=7").get(), .modbusTCP(host: "127.0.0.1", port: 15020, unit: 7))
        XCTAssertEqual(try Endpoint.parse("modbus-rtu:///dev/ttyUSB0?baud=19200&parity=E&data=8&stop=1&unit=3").get(),
                       .modbusRTU(device: "/dev/ttyUSB0", baud: 19200, parity: "E", dataBits: 8, stopBits: 1, unit: 3))
        XCTAssertEqual(try Endpoint.parse("opc.tcp://127.0.0.1:4840/path").get(), .opcua(url: "opc.tcp://127.0.0.1:4840/path", host: "127.0.0.1", port: 4840))
        XCTAssertThrowsError(try Endpoint.parse("modbus://127.0.0.1:99999").get())
        XCTAssertThrowsError(try Endpoint.parse("modbus://127.0.0.1:502?unit=300").get())
    }

    func testShiftLookupCrossesMidnight() throws {
        let config = PlantConfig(plant: "p", timezone: TimeZone(identifier: "Asia/Shanghai")!, route: ["a"],
                                 shifts: [Shift(name: "A", startMinute: 360, endMinute: 840), Shift(name: "C", startMinute: 1320, endMinute: 360)],
                                 stations: [])
        // 2026-11-21T01:00:00+08:00 = 2026-11-20T17:00:00Z: in shift C, which began 2026-11-20 22:00 local.
        let found = try XCTUnwrap(config.shift(at: Timestamp.parse("2026-11-20T17:00:00Z")!))
        XCTAssertEqual(found.shift.name, "C")
        XCTAssertEqual(Timestamp.format(found.start), "2026-11-20T14:00:00.000Z")
        XCTAssertEqual(Timestamp.format(found.end), "2026-11-20T22:00:00.000Z")
        XCTAssertNil(config.shift(at: Timestamp.parse("2026-11-21T07:00:00Z")!)) // 15:00 local
    }

    // MARK: Shift breaks (README "Shift calendar and shift history")

    func testShiftBreaksDecodeInTimeOrderAndCrossMidnightWithTheShift() throws {
        let text = """
        {"route": ["a"], "timezone": "Asia/Shanghai", "stations": [],
         "shifts": [{"name": "A", "start": "06:00", "end": "14:00", "breaks": [{"start": "12:00", "end": "12:30"}, {"start": "10:00", "end": "10:20"}]},
                    {"name": "C", "start": "22:00", "end": "06:00", "breaks": [{"start": "23:50", "end": "00:10"}, {"start": "05:30", "end": "06:00"}]}]}
        """
        let config = try PlantConfig.decode(json: JSON.parse(text), file: "plant.json", directory: URL(fileURLWithPath: "/tmp"))
        XCTAssertEqual(config.shifts[0].breaks, [ShiftBreak(startMinute: 600, endMinute: 620), ShiftBreak(startMinute: 720, endMinute: 750)])
        XCTAssertEqual(config.shifts[1].breaks, [ShiftBreak(startMinute: 1430, endMinute: 10), ShiftBreak(startMinute: 330, endMinute: 360)])
        // Shift C of 2026-11-20 starts 22:00 local (14:00Z): its breaks as instants, across midnight.
        let c = try XCTUnwrap(config.shiftInstance(date: "2026-11-20", name: "C"))
        XCTAssertEqual(Timestamp.format(c.start), "2026-11-20T14:00:00.000Z")
        let breaks = config.breaks(of: c.shift, startingAt: c.start).map { "\(Timestamp.format($0.start))–\(Timestamp.format($0.end))" }
        XCTAssertEqual(breaks, ["2026-11-20T15:50:00.000Z–2026-11-20T16:10:00.000Z", "2026-11-20T21:30:00.000Z–2026-11-20T22:00:00.000Z"])
        XCTAssertEqual(config.localDate(of: c.start), "2026-11-20")
        XCTAssertNil(config.shiftInstance(date: "2026-02-30", name: "A"), "not a calendar date")
        XCTAssertNil(config.shiftInstance(date: "2026-11-20", name: "B"), "no such shift")
    }

    func testShiftBreakErrorsNameTheirJSONPath() {
        func shifts(_ breaks: [[String: Any]]) -> (inout [String: Any]) -> Void {
            { $0["shifts"] = [["name": "A", "start": "06:00", "end": "14:00", "breaks": breaks] as [String: Any]] }
        }
        XCTAssertEqual(configError(shifts([["start": "05:00", "end": "05:20"]])),
                       "plant.json: shifts[0].breaks[0].start: 05:00 is not inside shift \"A\" (06:00–14:00)")
        XCTAssertEqual(configError(shifts([["start": "13:50", "end": "14:10"]])),
                       "plant.json: shifts[0].breaks[0].end: 14:10 is not inside shift \"A\" (06:00–14:00) after the break's start 13:50")
        XCTAssertEqual(configError(shifts([["start": "10:00", "end": "10:30"], ["start": "10:20", "end": "10:40"]])),
                       "plant.json: shifts[0].breaks[1]: overlaps the break 10:00–10:30")
        XCTAssertEqual(configError(shifts([["start": "10:00", "end": "10:00"]])), "plant.json: shifts[0].breaks[0]: start and end are both 10:00")
        XCTAssertTrue(configError(shifts([["start": "10:00", "end": "10:20", "length": 20]])).hasPrefix("plant.json: shifts[0].breaks[0].length:"))
        XCTAssertTrue(configError(shifts([["start": "10:00"]])).hasPrefix("plant.json: shifts[0].breaks[0].end: is required"))
        XCTAssertTrue(configError(shifts([["start": "10:0", "end": "10:20"]])).hasPrefix("plant.json: shifts[0].breaks[0].start: \"10:0\" is not a time"))
        XCTAssertTrue(configError { $0["shifts"] = [["name": "A", "start": "06:00", "end": "14:00", "breaks": "10:00"] as [String: Any]] }
            .hasPrefix("plant.json: shifts[0].breaks:"))
    }
}
