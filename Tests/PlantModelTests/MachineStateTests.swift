import Foundation
import XCTest
@testable import PlantModel

/// The machine states are named once, with their conventional codes and which are planned stops.
final class MachineStateTests: XCTestCase {
    func testConventionalCodesRoundTrip() {
        XCTAssertEqual(MachineState.allCases.map(\.conventionalCode).sorted(), [0, 1, 2, 3, 4, 5, 6])
        for state in MachineState.allCases {
            XCTAssertEqual(MachineState(conventionalCode: state.conventionalCode), state)
        }
        XCTAssertEqual(MachineState(conventionalCode: 1), .running)
        XCTAssertEqual(MachineState(conventionalCode: 6), .maintenance)
        XCTAssertNil(MachineState(conventionalCode: 7))
        XCTAssertNil(MachineState(conventionalCode: -1))
    }

    func testSetupAndMaintenanceAreThePlannedStops() {
        XCTAssertEqual(MachineState.allCases.filter(\.isPlannedStop), [.setup, .maintenance])
    }

    /// A code the `states` map lacks is read conventionally (as the quality engine counts it);
    /// a code that is neither is `unknown`.
    func testLiveStateNamesUnmappedCodesConventionally() throws {
        var state = SignalConfig(name: "state")
        state.role = .state
        state.address = ModbusAddress.parse("hr:0")
        state.type = .uint16
        state.states = [1: "running", 9: "setup"]
        let station = StationConfig(id: "S-1", name: "S", process: "p", protocol: .modbus,
                                    endpoint: .modbusTCP(host: "127.0.0.1", port: 502, unit: 1), signals: [state])
        let live = LiveStations(config: PlantConfig(plant: "t", route: ["p"], stations: [station]))
        func name(after code: Int64) -> String? {
            _ = live.apply(StationPoll(station: "S-1", time: Date(), readings: [SignalReading(name: "state", value: .int(code), quality: .good)]))
            return live.station("S-1")?.state
        }
        XCTAssertEqual(name(after: 9), "setup", "the map wins")
        XCTAssertEqual(name(after: 2), "fault", "not in the map: the conventional code")
        XCTAssertEqual(name(after: 42), "unknown")
        XCTAssertEqual(live.station("S-1")?.connection, .connecting)
    }
}

/// A poll is applied where the station is kept: readings in any order, unknown names skipped.
final class LiveStationsApplyTests: XCTestCase {
    func testReadingsInAnyOrderReachTheirSignals() throws {
        func signal(_ name: String, _ role: SignalRole?, _ index: Int) -> SignalConfig {
            var s = SignalConfig(name: name)
            s.role = role
            s.address = ModbusAddress.parse("hr:\(index)")
            s.type = .uint16
            return s
        }
        let station = StationConfig(id: "S-1", name: "S", process: "p", protocol: .modbus,
                                    endpoint: .modbusTCP(host: "127.0.0.1", port: 502, unit: 1),
                                    signals: [signal("state", .state, 0), signal("vehicleId", .vehicleId, 1), signal("a", nil, 2), signal("b", nil, 3)])
        let live = LiveStations(config: PlantConfig(plant: "t", route: ["p"], stations: [station]))
        let t0 = Date(timeIntervalSince1970: 1_000)
        let first = live.apply(StationPoll(station: "S-1", time: t0, readings: [
            SignalReading(name: "a", value: .int(1), quality: .good),
            SignalReading(name: "state", value: .int(1), quality: .good),
            SignalReading(name: "nope", value: .int(5), quality: .bad, status: "gone"),
            SignalReading(name: "b", value: .int(2), quality: .good),
            SignalReading(name: "vehicleId", value: .string(" VIN7 "), quality: .good),
        ], latencyMs: 3))
        XCTAssertEqual(first?.oldState, nil)
        XCTAssertEqual(first?.newState, 1)
        var s = try XCTUnwrap(live.station("S-1"))
        XCTAssertEqual(s.signals.map(\.value), [.int(1), .string(" VIN7 "), .int(1), .int(2)])
        XCTAssertEqual(s.signals.map(\.time), Array(repeating: t0, count: 4))
        XCTAssertEqual(s.currentVehicle, "VIN7")
        XCTAssertEqual(s.status, "nope: gone", "a bad reading of no signal still shows in the status")
        XCTAssertEqual(s.pollLatencyMs, 3)
        XCTAssertNil(live.apply(StationPoll(station: "S-9", time: t0, readings: [])))

        let t1 = t0.addingTimeInterval(0.1)
        let second = live.apply(StationPoll(station: "S-1", time: t1, readings: [
            SignalReading(name: "b", value: nil, quality: .bad, status: "timeout"),
            SignalReading(name: "state", value: .int(3), quality: .good),
            SignalReading(name: "a", value: .int(9), quality: .stale),
        ]))
        XCTAssertEqual(second?.oldState, 1)
        XCTAssertEqual(second?.newState, 3)
        s = try XCTUnwrap(live.station("S-1"))
        XCTAssertEqual(s.signals.map(\.value), [.int(3), .string(" VIN7 "), .int(1), .int(2)], "only good readings change a value")
        XCTAssertEqual(s.signals.map(\.quality), [.good, .good, .stale, .bad])
        XCTAssertEqual(s.signals.map(\.status), [nil, nil, nil, "timeout"])
        XCTAssertEqual(s.signals.map(\.time), [t1, t0, t1, t1])
        XCTAssertEqual(s.status, "b: timeout")
        XCTAssertEqual(s.pollLatencyMs, 3, "a poll without a latency keeps the last one")
        _ = live.apply(StationPoll(station: "S-1", time: t1, readings: [SignalReading(name: "b", value: .int(4), quality: .good)]))
        XCTAssertNil(live.station("S-1")?.status)
    }

    /// The vehicle id's quick trim is Foundation's `.whitespaces` trim for every ASCII end and a few others.
    func testTrimmedIsTheWhitespaceTrim() {
        var texts = ["", " ", "\t", "   ", "VIN", " VIN ", "  VIN\t ", "\t\tVIN", "VIN   ", " \u{00A0}VIN", "VIN \u{2003} ",
                     "\u{00A0}VIN\u{3000}", "VIN\u{0}", "é", " é ", "VIN é", "\u{2003}", " \u{301}VIN", "VIN\u{301} ", " 🚗 VIN "]
        for code in 0..<128 {
            let c = String(UnicodeScalar(UInt8(code)))
            texts += [c, c + "VIN", "VIN" + c, c + "V" + c]
        }
        for text in texts {
            XCTAssertEqual(LiveStations.trimmed(text), text.trimmingCharacters(in: .whitespaces), text.debugDescription)
        }
    }
}
