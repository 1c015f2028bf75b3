import XCTest
import PlantModel
import Runtime
@testable import ModbusAdapter
import Simulation
import TestSupport

/// Third-party clients read our simulator; RTU over a socat pty pair; many stations at once.
final class ModbusInteropTests: XCTestCase {
    let logger = Logger(label: "test", level: .error)

    func testMbpollReadsTheSimulator() throws {
        let signals = [sig("weldCurrent", "hr:20", .float32), sig("state", "hr:31", .uint16), sig("cdab", "hr:40", .float32, order: .cdab)]
        let server = ModbusStationServer(station: testStation(port: 0, unit: 3, signals: signals), port: 0)
        try server.set(signal: "weldCurrent", value: .double(10.21))
        try server.set(signal: "state", value: .int(2))
        try server.set(signal: "cdab", value: .double(-3.5))
        let port = try server.start()
        defer { server.stop() }
        let float = try runToEnd("/usr/bin/mbpoll", ["-m", "tcp", "-0", "-a", "3", "-r", "20", "-c", "1", "-t", "4:float", "-B", "-1", "-p", String(port), "127.0.0.1"])
        XCTAssertEqual(float.status, 0, float.output)
        XCTAssertTrue(float.output.contains("[20]: \t10.21"), float.output)
        let word = try runToEnd("/usr/bin/mbpoll", ["-m", "tcp", "-0", "-a", "3", "-r", "31", "-c", "1", "-t", "4", "-1", "-p", String(port), "127.0.0.1"])
        XCTAssertTrue(word.output.contains("[31]: \t2"), word.output)
        // mbpoll's default float order is little-endian word order: our cdab.
        let little = try runToEnd("/usr/bin/mbpoll", ["-m", "tcp", "-0", "-a", "3", "-r", "40", "-c", "1", "-t", "4:float", "-1", "-p", String(port), "127.0.0.1"])
        XCTAssertTrue(little.output.contains("[40]: \t-3.5"), little.output)
        // Another unit id gets an exception, not data.
        let wrongUnit = try runToEnd("/usr/bin/mbpoll", ["-m", "tcp", "-0", "-a", "4", "-r", "31", "-c", "1", "-t", "4", "-1", "-p", String(port), "127.0.0.1"])
        XCTAssertFalse(wrongUnit.output.contains("[31]: \t2"), wrongUnit.output)
        XCTAssertTrue(wrongUnit.output.lowercased().contains("gateway") || wrongUnit.output.lowercased().contains("failed"), wrongUnit.output)
    }

    func testRTUOverVirtualSerialPair() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/socat") else { return XCTFail("socat is missing") }
        let folder = makeTempDirectory(self, prefix: "modbus-rtu")
        let plcSide = folder.appendingPathComponent("plc").path, hostSide = folder.appendingPathComponent("host").path
        let socat = try PeerProcess(executable: "/usr/bin/socat",
                                    arguments: ["-d", "-d", "pty,raw,echo=0,link=\(plcSide)", "pty,raw,echo=0,link=\(hostSide)"])
        defer { socat.kill() }
        XCTAssertTrue(socat.waitFor("starting data transfer loop", timeout: 10), socat.text)
        let signals = [sig("count", "ir:0", .uint32), sig("temp", "hr:5", .float32, order: .dcba), sig("lot", "hr:10", .string, length: 8),
                       sig("done", "coil:2", .bool)]
        let endpoint = Endpoint.modbusRTU(device: hostSide, baud: 19200, parity: "E", dataBits: 8, stopBits: 1, unit: 7)
        var station = testStation(port: 0, pollMs: 100, timeoutMs: 500, signals: signals)
        station.endpoint = .modbusRTU(device: plcSide, baud: 19200, parity: "E", dataBits: 8, stopBits: 1, unit: 7)
        let server = ModbusRTUStationServer(station: station)
        try server.set(signal: "count", value: .int(123_456))
        try server.set(signal: "temp", value: .double(21.5))
        try server.set(signal: "lot", value: .string("L-0042"))
        try server.set(signal: "done", value: .bool(true))
        try server.start()
        defer { server.stop() }
        station.endpoint = endpoint
        let recorder = EventRecorder()
        let adapter = ModbusStationAdapter(config: station, sink: recorder.sink, logger: logger)
        let running = RunningService(adapter)
        let ok = recorder.wait(10) { $0.goodPolls.count >= 2 }
        await running.stop()
        XCTAssertTrue(ok, "stats \(adapter.stats())")
        let poll = try XCTUnwrap(recorder.goodPolls.last)
        XCTAssertEqual(poll.readings.map(\.value), [.int(123_456), .double(21.5), .string("L-0042"), .bool(true)])
        XCTAssertEqual(poll.readings.map(\.quality), [.good, .good, .good, .good])
        // Every poll read the plan's requests, and nothing else went over the line.
        let plan = ModbusReadPlan(signals: signals)
        XCTAssertEqual(server.requestCount, UInt64(plan.requests.count) * adapter.stats().polls, "plan: \(plan.requests)")
    }

    func testFiftyStationsOneFlapping() async throws {
        let signals = [sig("state", "hr:0", .uint16), sig("current", "hr:2", .float32), sig("count", "ir:0", .uint32)]
        var servers: [ModbusStationServer] = []
        var adapters: [ModbusStationAdapter] = []
        var recorders: [EventRecorder] = []
        var running: [RunningService] = []
        for i in 0..<50 {
            let server = ModbusStationServer(station: testStation(id: "S\(i)", port: 0, signals: signals), port: 0)
            try server.set(signal: "state", value: .int(Int64(i)))
            let port = try server.start()
            servers.append(server)
            let recorder = EventRecorder()
            recorders.append(recorder)
            let adapter = ModbusStationAdapter(config: testStation(id: "S\(i)", port: port, pollMs: 100, timeoutMs: 500, signals: signals),
                                               sink: recorder.sink, logger: logger,
                                               backoff: ReconnectBackoff(initialMs: 50, maxMs: 200, seed: UInt64(i)))
            adapters.append(adapter)
        }
        defer { for server in servers { server.stop() } }
        for adapter in adapters { running.append(RunningService(adapter)) }
        for recorder in recorders { XCTAssertTrue(recorder.wait(10) { !$0.goodPolls.isEmpty }) }
        let before = recorders.map { $0.goodPolls.count }
        let start = Date()
        // Station 0 flaps twice: down until the adapter reports it offline and every other station
        // has polled three more times, up until it is back online.
        for round in 1...2 {
            servers[0].stop()
            XCTAssertTrue(recorders[0].wait(10) { $0.changes.filter { $0.state == .offline }.count == round }, "down \(round)")
            let down = recorders.map { $0.goodPolls.count }
            XCTAssertTrue(eventually(timeout: 20) { (1..<50).allSatisfy { recorders[$0].goodPolls.count >= down[$0] + 3 } },
                          "the other stations poll on while station 0 is down (round \(round))")
            XCTAssertEqual(recorders[0].goodPolls.count, down[0], "no good poll from a stopped PLC")
            _ = try servers[0].start()
            XCTAssertTrue(recorders[0].wait(10) { $0.changes.last?.state == .online }, "up \(round)")
        }
        let counts = recorders.indices.map { recorders[$0].goodPolls.count - before[$0] }
        let elapsed = Date().timeIntervalSince(start)
        for service in running { await service.stop() }
        for i in 1..<50 {
            XCTAssertLessThanOrEqual(Double(counts[i]), elapsed / 0.1 + 2, "station \(i): at most one poll per slot")
            XCTAssertEqual(recorders[i].changes.map(\.state), [.online], "station \(i) never flaps")
        }
        let flapping = recorders[0].changes.map(\.state)
        XCTAssertEqual(flapping.filter { $0 == .offline }.count, 2, "\(flapping)")
        XCTAssertEqual(flapping.last, .online)
    }
}
