import XCTest
import PlantModel
@testable import ModbusAdapter

final class ModbusPlanTests: XCTestCase {
    func testMergesNeighboursPerTable() {
        // The WELD-01 layout of the default plant.
        let signals = [
            sig("vehicleId", "hr:10", .string, length: 17),   // hr:10…18
            sig("cycleDone", "coil:0", .bool),
            sig("result", "hr:30", .uint16),
            sig("state", "hr:31", .uint16),
            sig("faultCode", "hr:32", .uint16),
            sig("weldCurrent", "hr:20", .float32),          // hr:20…21
            sig("panelLot", "hr:40", .string, length: 12),    // hr:40…45
            sig("partCount", "ir:0", .uint32),
        ]
        let plan = ModbusReadPlan(signals: signals, maxRegisterGap: 8)
        XCTAssertEqual(plan.requests, [
            ModbusReadRequest(table: .holdingRegister, start: 10, count: 36, signals: [0, 5, 2, 3, 4, 6]),
            ModbusReadRequest(table: .inputRegister, start: 0, count: 2, signals: [7]),
            ModbusReadRequest(table: .coil, start: 0, count: 1, signals: [1]),
        ])
        // With no gap allowed, hr splits where there are holes.
        let tight = ModbusReadPlan(signals: signals, maxRegisterGap: 0)
        XCTAssertEqual(tight.requests.filter { $0.table == .holdingRegister }.map { "\($0)" },
                       ["hr:10…18", "hr:20…21", "hr:30…32", "hr:40…45"])
    }

    func testRespectsRequestLimits() {
        let signals = (0..<10).map { sig("r\($0)", "hr:\($0 * 30)", .float64) }  // 4 regs each, 30 apart
        let plan = ModbusReadPlan(signals: signals, maxRegisterGap: 100)
        XCTAssertTrue(plan.requests.allSatisfy { $0.count <= 125 })
        XCTAssertEqual(plan.requests.flatMap(\.signals).sorted(), Array(0..<10))
        XCTAssertEqual(plan.requests.map(\.description), ["hr:0…123", "hr:150…273"])

        let bits = (0..<30).map { sig("c\($0)", "coil:\($0 * 100)", .bool) }
        let bitPlan = ModbusReadPlan(signals: bits, maxBitGap: 100)
        XCTAssertTrue(bitPlan.requests.allSatisfy { $0.count <= 2000 })
        XCTAssertEqual(bitPlan.requests.count, 2)
    }

    func testSplitIntoPerSignalRequests() {
        let signals = [sig("a", "hr:0", .uint16), sig("b", "hr:2", .uint32), sig("c", "ir:5", .uint16), sig("d", "hr:5", .string, length: 3)]
        var plan = ModbusReadPlan(signals: signals)
        XCTAssertEqual(plan.requests.count, 2)
        let range = plan.split(at: 0, signals: signals)
        XCTAssertEqual(range, 0..<3)
        XCTAssertEqual(plan.requests.map(\.description), ["hr:0", "hr:2…3", "hr:5…6", "ir:5"])
        XCTAssertEqual(plan.split(at: 0, signals: signals), 0..<1)   // single-signal stays
        XCTAssertEqual(plan.requests.count, 4)
    }

    func testOverlappingSignalsShareARequest() {
        let signals = [sig("word", "hr:4", .uint32), sig("low", "hr:5", .uint16)]
        let plan = ModbusReadPlan(signals: signals)
        XCTAssertEqual(plan.requests, [ModbusReadRequest(table: .holdingRegister, start: 4, count: 2, signals: [0, 1])])
    }
}
