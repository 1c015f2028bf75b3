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
