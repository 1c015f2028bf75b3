import XCTest
import PlantModel
import Runtime
@testable import ModbusAdapter
import TestSupport

/// The adapter against pymodbus 3.16 (Tests/peers/modbus_plc.py) as the PLC.
final class ModbusPymodbusTests: XCTestCase {
    let logger = Logger(label: "test", level: .error)
    let fastBackoff = ReconnectBackoff(initialMs: 50, maxMs: 300, jitter: 0.2, seed: 3)
    private func startPLC(port: UInt16, spec: [[String: Any]] = [], size: Int = 200, silent: Bool = false) throws -> PeerProcess {
        try startPymodbusPLC(port: port, spec: spec, size: size, silent: silent)
    }

    /// Every type and word order, encoded by Python's `struct` (independent of our encoder).
    func testEveryTypeAndWordOrder() async throws {
        var plc = PymodbusSignals()
        plc.add("coil", "coil", 5, .bool, true, expect: .bool(true))
        plc.add("di", "di", 2, .bool, true, expect: .bool(true))
        plc.add("flag", "hr", 0, .bool, true, expect: .bool(true))
        plc.add("i16", "hr", 1, .int16, -1234, expect: .int(-1234))
        plc.add("u16", "ir", 1, .uint16, 60000, expect: .int(60000))
        plc.add("vin", "hr", 100, .string, "WVWZZZ1JZXW000042", length: 17, expect: .string("WVWZZZ1JZXW000042"))
        plc.add("lot", "ir", 50, .string, "LOT-7", length: 12, expect: .string("LOT-7"))
        var address = 10
        for order in WordOrder.allCases {
            plc.add("i32_\(order)", "hr", address, .int32, -2_000_000_001, order: order, expect: .int(-2_000_000_001))
            plc.add("u32_\(order)", "hr", address + 2, .uint32, 3_000_000_123, order: order, expect: .int(3_000_000_123))
            plc.add("f32_\(order)", "hr", address + 4, .float32, 9.875, order: order, expect: .double(9.875))
            plc.add("f64_\(order)", "ir", address, .float64, 1234.5678, order: order, expect: .double(1234.5678))
            address += 12
        }
        let port = try freePort()
        let peer = try startPLC(port: port, spec: plc.spec)
        defer { peer.kill() }
        let recorder = EventRecorder()
        let adapter = ModbusStationAdapter(config: testStation(port: port, pollMs: 100, timeoutMs: 1000, signals: plc.signals),
                                           sink: recorder.sink, logger: logger)
        let running = RunningService(adapter)
        let ok = recorder.wait(10) { !$0.goodPolls.isEmpty }
        await running.stop()
        XCTAssertTrue(ok, "no poll from pymodbus; stats \(adapter.stats())")
        let poll = try XCTUnwrap(recorder.goodPolls.first)
        for reading in poll.readings {
            XCTAssertEqual(reading.quality, .good, "\(reading.name): \(reading.status ?? "")")
            XCTAssertEqual(reading.value, plc.expected[reading.name], reading.name)
        }
        XCTAssertEqual(poll.readings.count, plc.signals.count)
    }

    func testIllegalAddressMarksOneSignalBad() async throws {
        let port = try freePort()
        let plc = try startPLC(port: port, spec: [
            ["table": "hr", "address": 0, "type": "uint16", "value": 11],
            ["table": "hr", "address": 2, "type": "float32", "value": 2.5],
        ], size: 10)
        defer { plc.kill() }
        let signals = [sig("a", "hr:0", .uint16), sig("b", "hr:2", .float32), sig("beyond", "hr:12", .uint16), sig("ok", "ir:0", .uint16)]
        let recorder = EventRecorder()
        let adapter = ModbusStationAdapter(config: testStation(port: port, pollMs: 50, timeoutMs: 1000, signals: signals),
                                           sink: recorder.sink, logger: logger)
        let running = RunningService(adapter)
        let ok = recorder.wait(10) { $0.goodPolls.count >= 3 }
        await running.stop()
        XCTAssertTrue(ok)
        for poll in recorder.goodPolls {
            XCTAssertEqual(poll.readings.map(\.quality), [.good, .good, .bad, .good])
            XCTAssertEqual(poll.readings.map(\.value), [.int(11), .double(2.5), nil, .int(0)])
            XCTAssertTrue(poll.readings[2].status?.contains("illegal data address") == true, poll.readings[2].status ?? "")
        }
        XCTAssertEqual(recorder.changes.map(\.state), [.online])
        XCTAssertGreaterThan(adapter.stats().errors["exception_2"] ?? 0, 0)
    }

    func testPeerKilledGoesOfflineAndRestartedPeerComesBack() async throws {
        let port = try freePort()
        let spec: [[String: Any]] = [["table": "hr", "address": 0, "type": "uint16", "value": 1]]
        var plc = try startPLC(port: port, spec: spec)
        let timeoutMs = 500
        let recorder = EventRecorder()
        let adapter = ModbusStationAdapter(config: testStation(port: port, pollMs: 50, timeoutMs: timeoutMs, signals: [sig("a", "hr:0", .uint16)]),
                                           sink: recorder.sink, logger: logger, backoff: fastBackoff)
        let running = RunningService(adapter)
        XCTAssertTrue(recorder.wait(10) { $0.changes.last?.state == .online })
        plc.kill()
        let killed = Date()
        let wentOffline = recorder.wait(Double(3 * timeoutMs) / 1000) { $0.changes.last?.state == .offline }
        XCTAssertTrue(wentOffline, "offline within 3 × timeout")
        XCTAssertLessThan(Date().timeIntervalSince(killed), Double(3 * timeoutMs) / 1000 + 0.2)
        plc = try startPLC(port: port, spec: [["table": "hr", "address": 0, "type": "uint16", "value": 2]])
        defer { plc.kill() }
        XCTAssertTrue(recorder.wait(10) { $0.changes.last?.state == .online }, "online again without restarting the adapter")
        XCTAssertTrue(recorder.wait(5) { $0.goodPolls.last?.readings.first?.value == .int(2) })
        await running.stop()
        XCTAssertEqual(recorder.changes.map(\.state), [.online, .offline, .online])
        XCTAssertGreaterThanOrEqual(adapter.stats().reconnects, 1)
    }

    func testSilentPeerDoesNotStallAnotherStation() async throws {
        let silentPort = try freePort(), goodPort = try freePort()
        let silent = try startPLC(port: silentPort, silent: true)
        defer { silent.kill() }
        let good = try startPLC(port: goodPort, spec: [["table": "hr", "address": 0, "type": "uint16", "value": 5]])
        defer { good.kill() }
        let signals = [sig("a", "hr:0", .uint16)]
        let hungEvents = EventRecorder(), goodEvents = EventRecorder()
        let hung = ModbusStationAdapter(config: testStation(id: "HUNG", port: silentPort, pollMs: 100, timeoutMs: 1000, signals: signals),
                                        sink: hungEvents.sink, logger: logger)
        let healthy = ModbusStationAdapter(config: testStation(id: "GOOD", port: goodPort, pollMs: 100, timeoutMs: 1000, signals: signals),
                                           sink: goodEvents.sink, logger: logger)
        let r1 = RunningService(hung), r2 = RunningService(healthy)
        XCTAssertTrue(goodEvents.wait(10) { !$0.goodPolls.isEmpty })
        // Between HUNG's first and second timeout it sat 1 s in a read: GOOD polls on meanwhile
        // (at 100 ms, ten slots; were the stations serialised, at most one).
        XCTAssertTrue(eventually(timeout: 10) { (hung.stats().errors["timeout"] ?? 0) >= 1 }, "\(hung.stats())")
        let atFirstTimeout = goodEvents.goodPolls.count
        XCTAssertTrue(eventually(timeout: 10) { (hung.stats().errors["timeout"] ?? 0) >= 2 }, "\(hung.stats())")
        let polled = goodEvents.goodPolls.count - atFirstTimeout
        await r1.stop()
        await r2.stop()
        XCTAssertTrue(hungEvents.goodPolls.isEmpty)
        XCTAssertGreaterThanOrEqual(polled, 5, "GOOD polled \(polled) times during one of HUNG's 1 s timeouts")
    }
}
