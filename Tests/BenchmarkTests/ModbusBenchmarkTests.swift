import ComponentBenchmarks
import XCTest
import PlantModel
import Runtime
import Simulation

/// Runs ``ModbusBenchmark`` against in-process simulators. Short by default (a smoke run that
/// checks the figures make sense); `MES_MODBUS_BENCH=1` runs 64 stations for 10 s and prints.
final class ModbusBenchmarkTests: XCTestCase {
    func testBenchmarkAgainstSimulatedPLCs() async throws {
        let full = ProcessInfo.processInfo.environment["MES_MODBUS_BENCH"] == "1"
        let count = full ? 64 : 8
        let interval = Int(ProcessInfo.processInfo.environment["MES_MODBUS_BENCH_INTERVAL_MS"] ?? "") ?? (full ? 64 : 50)
        let signals = [
            sig("vehicleId", "hr:10", .string, length: 17), sig("cycleDone", "coil:0", .bool), sig("result", "hr:30", .uint16),
            sig("state", "hr:31", .uint16), sig("faultCode", "hr:32", .uint16), sig("weldCurrent", "hr:20", .float32),
            sig("panelLot", "hr:40", .string, length: 12), sig("partCount", "ir:0", .uint32),
        ]
        var servers: [ModbusStationServer] = []
        var stations: [StationConfig] = []
        for i in 0..<count {
            let server = ModbusStationServer(station: modbusStation(id: "B\(i)", port: 0, signals: signals), port: 0)
            try server.set(signal: "vehicleId", value: .string("WVWZZZ1JZXW0000\(i % 10)"))
            stations.append(modbusStation(id: "B\(i)", port: try server.start(), pollMs: interval, timeoutMs: 1000, signals: signals))
            servers.append(server)
        }
        defer { for server in servers { server.stop() } }
        // The thread-per-PLC adapter, then the event-loop adapter on one loop thread.
        for threads in [nil, 1] as [Int?] {
        let figures = await ModbusBenchmark.run(stations: stations, seconds: full ? 10 : 1, eventLoopThreads: threads)
        print("ModbusBenchmark (event loop threads: \(threads.map(String.init) ?? "none")):", figures.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.3f", $0.value))" }.joined(separator: " "))
        // How fast is for `tools/bench`; here: every station, no errors, and neither loop polls
        // more often than its schedule (the slot grid), however the machine is loaded.
        let scheduledRate = Double(count) * 1000 / Double(interval)
        XCTAssertEqual(figures["stations"], Double(count))
        XCTAssertLessThanOrEqual(figures["polls_per_s"] ?? .infinity, scheduledRate * 1.1)
        // The plain libmodbus loop polled the same stations on the same schedule.
        XCTAssertLessThanOrEqual(figures["baseline_polls_per_s"] ?? .infinity, scheduledRate * 1.1)
        XCTAssertEqual(figures["errors"], 0)
        }
    }
}
