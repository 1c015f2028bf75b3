import XCTest
import PlantModel
import Runtime
@testable import ModbusAdapter
import Simulation
import TestSupport

/// The adapter against the in-process libmodbus simulator (real sockets on loopback).
final class ModbusServerTests: XCTestCase {
    let logger = Logger(label: "test", level: .error)
    let fastBackoff = ReconnectBackoff(initialMs: 50, maxMs: 400, jitter: 0.2, seed: 7)

    static let everyType: [(SignalConfig, SignalValue)] = {
        var list: [(SignalConfig, SignalValue)] = [
            (sig("coil", "coil:3", .bool), .bool(true)),
            (sig("di", "di:1", .bool), .bool(true)),
            (sig("boolReg", "hr:0", .bool), .bool(true)),
            (sig("i16", "hr:1", .int16), .int(-12345)),
            (sig("u16", "ir:0", .uint16), .int(54321)),
            (sig("vin", "hr:60", .string, length: 17), .string("WVWZZZ1JZXW000001")),
            (sig("lot", "ir:40", .string, length: 12), .string("LOT-2026-11")),
            (sig("scaled", "hr:2", .int16, scale: 0.1, offset: 1), .double(-11.5)),
        ]
        var address = 4
        for order in WordOrder.allCases {
            list.append((sig("i32_\(order)", "hr:\(address)", .int32, order: order), .int(-123_456_789)))
            list.append((sig("u32_\(order)", "hr:\(address + 2)", .uint32, order: order), .int(4_000_000_001)))
            list.append((sig("f32_\(order)", "hr:\(address + 4)", .float32, order: order), .double(10.25)))
            list.append((sig("f64_\(order)", "ir:\(address + 6)", .float64, order: order), .double(-7.0e-3)))
            address += 12
        }
        return list
    }()

    func testRoundTripEveryTypeThroughServerAndAdapter() async throws {
        let signals = Self.everyType.map(\.0)
        let server = ModbusStationServer(station: testStation(port: 0, signals: signals), port: 0)
        for (signal, value) in Self.everyType { try server.set(signal: signal.name, value: value) }
        let port = try server.start()
        defer { server.stop() }
        let recorder = EventRecorder()
        let adapter = ModbusStationAdapter(config: testStation(port: port, signals: signals), sink: recorder.sink, logger: logger)
        let running = RunningService(adapter)
        let ok = recorder.wait(5) { !$0.goodPolls.isEmpty }
        await running.stop()
        XCTAssertTrue(ok, "no poll")
        let poll = try XCTUnwrap(recorder.goodPolls.first)
        XCTAssertEqual(poll.readings.count, signals.count)
        for (signal, value) in Self.everyType {
            let reading = try XCTUnwrap(poll.readings.first { $0.name == signal.name })
            XCTAssertEqual(reading.quality, .good, signal.name)
            if case .double(let expected) = value, case .double(let got)? = reading.value {
                XCTAssertEqual(got, expected, accuracy: 1e-9, signal.name)
            } else {
                XCTAssertEqual(reading.value, value, signal.name)
            }
        }
        XCTAssertEqual(recorder.changes.map(\.state), [.online])
        XCTAssertNotNil(poll.latencyMs)
        let stats = adapter.stats()
        XCTAssertEqual(stats.polls, UInt64(recorder.polls.count), "every poll made is reported once")
        XCTAssertEqual(stats.errorCount, 0)
    }

    func testWrongUnitIdGetsAModbusException() throws {
        let signals = [sig("a", "hr:0", .uint16)]
        let server = ModbusStationServer(station: testStation(port: 0, unit: 1, signals: signals), port: 0)
        let port = try server.start()
        defer { server.stop() }
        let connection = ModbusConnection(station: "T-02", endpoint: .modbusTCP(host: "127.0.0.1", port: port, unit: 2), timeoutMs: 500)
        defer { connection.close() }
        try connection.open()
        XCTAssertThrowsError(try connection.readRegisters(.holdingRegister, start: 0, count: 1)) { error in
            guard case .exception(.gatewayTargetFailed, let context)? = error as? ModbusError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(context.station, "T-02")
            XCTAssertTrue("\(error)".contains("hr:0"), "\(error)")
        }
        XCTAssertTrue(connection.isOpen, "an exception keeps the connection")
        let right = ModbusConnection(station: "T-01", endpoint: .modbusTCP(host: "127.0.0.1", port: port, unit: 1), timeoutMs: 500)
        defer { right.close() }
        try right.open()
        XCTAssertEqual(try right.readRegisters(.holdingRegister, start: 0, count: 1), [0])
        XCTAssertThrowsError(try right.readRegisters(.holdingRegister, start: 1, count: 1)) { error in
            XCTAssertTrue((error as? ModbusError)?.isIllegalDataAddress == true, "\(error)")
        }
    }

    func testIllegalAddressMarksOnlyThatSignalBadAndRemembersTheSplit() async throws {
        // The server knows hr:0…5 only; the adapter also asks for hr:8 (merged into one request).
        let served = [sig("a", "hr:0", .uint16), sig("b", "hr:2", .float32), sig("c", "hr:4", .int32)]
        let server = ModbusStationServer(station: testStation(port: 0, signals: served), port: 0)
        try server.set(signal: "a", value: .int(7))
        try server.set(signal: "b", value: .double(1.5))
        try server.set(signal: "c", value: .int(-9))
        let port = try server.start()
        defer { server.stop() }
        let asked = served + [sig("missing", "hr:8", .uint16)]
        let recorder = EventRecorder()
        let adapter = ModbusStationAdapter(config: testStation(port: port, pollMs: 30, signals: asked), sink: recorder.sink, logger: logger)
        let running = RunningService(adapter)
        let ok = recorder.wait(5) { $0.goodPolls.count >= 5 }
        await running.stop()
        XCTAssertTrue(ok)
        let polls = recorder.goodPolls
        for poll in polls {
            XCTAssertEqual(poll.readings.map(\.quality), [.good, .good, .good, .bad])
            XCTAssertEqual(poll.readings.map(\.value), [.int(7), .double(1.5), .int(-9), nil])
            let status = try XCTUnwrap(poll.readings[3].status)
            XCTAssertTrue(status.contains("illegal data address") && status.contains("hr:8"), status)
        }
        // First poll: the merged request and the single one fail; later polls only the single one.
        let stats = adapter.stats()
        XCTAssertEqual(stats.errors["exception_2"], stats.polls + 1)
        XCTAssertEqual(recorder.changes.map(\.state), [.online])
    }

    func testOfflineWhenPeerVanishesAndOnlineAgainWithoutRestart() async throws {
        let signals = [sig("a", "hr:0", .uint16)]
        let server = ModbusStationServer(station: testStation(port: 0, signals: signals), port: 0)
        try server.set(signal: "a", value: .int(1))
        let port = try server.start()
        let timeoutMs = 300
        let recorder = EventRecorder()
        let adapter = ModbusStationAdapter(config: testStation(port: port, pollMs: 50, timeoutMs: timeoutMs, signals: signals),
                                           sink: recorder.sink, logger: logger, backoff: fastBackoff)
        let running = RunningService(adapter)
        XCTAssertTrue(recorder.wait(5) { $0.changes.last?.state == .online })
        let vanished = Date()
        server.stop()
        XCTAssertTrue(recorder.wait(Double(3 * timeoutMs) / 1000) { $0.changes.last?.state == .offline },
                      "offline within 3 × timeout")
        XCTAssertLessThan(Date().timeIntervalSince(vanished), Double(3 * timeoutMs) / 1000 + 0.2)
        XCTAssertEqual(adapter.connectionState, .offline)
        let stale = try XCTUnwrap(recorder.polls.last)
        XCTAssertEqual(stale.readings.map(\.quality), [.stale])
        XCTAssertEqual(stale.readings.first?.value, .int(1), "the last value, marked stale")
        let offlineChange = try XCTUnwrap(recorder.changes.last)
        XCTAssertTrue(offlineChange.reason?.contains("T-01") == true, offlineChange.reason ?? "")

        try server.set(signal: "a", value: .int(2))
        XCTAssertEqual(try server.start(), port, "same port")
        defer { server.stop() }
        XCTAssertTrue(recorder.wait(5) { $0.changes.last?.state == .online }, "online again")
        XCTAssertTrue(recorder.wait(2) { $0.polls.last?.readings.first?.value == .int(2) })
        await running.stop()
        XCTAssertEqual(recorder.changes.map(\.state), [.online, .offline, .online])
        XCTAssertGreaterThanOrEqual(adapter.stats().reconnects, 1)
    }

    func testNeverStartedPeerReportsOfflineAndRefused() async throws {
        let port = try freePort()
        let recorder = EventRecorder()
        let adapter = ModbusStationAdapter(config: testStation(port: port, signals: [sig("a", "hr:0", .uint16)]),
                                           sink: recorder.sink, logger: logger, backoff: fastBackoff)
        let running = RunningService(adapter)
        XCTAssertTrue(recorder.wait(3) { $0.changes.first?.state == .offline })
        XCTAssertTrue(recorder.wait(3) { _ in (adapter.stats().errors["refused"] ?? 0) >= 2 })
        await running.stop()
        XCTAssertTrue(recorder.goodPolls.isEmpty, "no made-up values")
        XCTAssertEqual(recorder.changes.map(\.state), [.offline])
    }

    func testMisbehavingServers() async throws {
        let signals = [sig("a", "hr:0", .uint16)]
        for behavior in [ModbusServerBehavior.stall, .garbage, .closeConnections] {
            let server = ModbusStationServer(station: testStation(port: 0, signals: signals), port: 0)
            let port = try server.start()
            let recorder = EventRecorder()
            let adapter = ModbusStationAdapter(config: testStation(port: port, pollMs: 50, timeoutMs: 200, signals: signals),
                                               sink: recorder.sink, logger: logger, backoff: fastBackoff)
            let running = RunningService(adapter)
            XCTAssertTrue(recorder.wait(3) { $0.changes.last?.state == .online }, "\(behavior)")
            server.behavior = behavior
            XCTAssertTrue(recorder.wait(2) { $0.changes.last?.state == .offline }, "\(behavior)")
            let kinds = Set(adapter.stats().errors.keys)
            switch behavior {
            case .stall: XCTAssertTrue(kinds.contains("timeout"), "\(kinds)")
            case .garbage: XCTAssertTrue(kinds.contains("bad_response") || kinds.contains("timeout"), "\(kinds)")
            default: XCTAssertTrue(kinds.contains("closed") || kinds.contains("timeout"), "\(kinds)")
            }
            server.behavior = .normal
            XCTAssertTrue(recorder.wait(3) { $0.changes.last?.state == .online }, "\(behavior): heals")
            await running.stop()
            server.stop()
        }
    }

    func testStalledStationDoesNotDelayAnother() async throws {
        let signals = [sig("a", "hr:0", .uint16)]
        let hung = ModbusStationServer(station: testStation(id: "HUNG", port: 0, signals: signals), port: 0)
        let healthy = ModbusStationServer(station: testStation(id: "OK", port: 0, signals: signals), port: 0)
        let hungPort = try hung.start(), healthyPort = try healthy.start()
        defer { hung.stop(); healthy.stop() }
        hung.behavior = .stall
        let hungEvents = EventRecorder(), okEvents = EventRecorder()
        let a = ModbusStationAdapter(config: testStation(id: "HUNG", port: hungPort, pollMs: 50, timeoutMs: 1000, signals: signals),
                                     sink: hungEvents.sink, logger: logger, backoff: fastBackoff)
        let b = ModbusStationAdapter(config: testStation(id: "OK", port: healthyPort, pollMs: 50, timeoutMs: 1000, signals: signals),
                                     sink: okEvents.sink, logger: logger)
        let ra = RunningService(a), rb = RunningService(b)
        // Between HUNG's first and second timeout it sat 1 s in a read: OK polls on meanwhile
        // (at 50 ms, twenty slots; were the stations serialised, at most one).
        XCTAssertTrue(eventually(timeout: 10) { (a.stats().errors["timeout"] ?? 0) >= 1 }, "\(a.stats())")
        let atFirstTimeout = okEvents.goodPolls.count
        XCTAssertTrue(eventually(timeout: 10) { (a.stats().errors["timeout"] ?? 0) >= 2 }, "\(a.stats())")
        let polled = okEvents.goodPolls.count - atFirstTimeout
        await ra.stop()
        await rb.stop()
        XCTAssertEqual(hungEvents.goodPolls.count, 0)
        XCTAssertGreaterThanOrEqual(polled, 10, "OK polled \(polled) times during one of HUNG's 1 s timeouts")
    }

    func testPollScheduleHasNoDriftAndSkipsMissedSlots() async throws {
        let signals = [sig("a", "hr:0", .uint16)]
        let server = ModbusStationServer(station: testStation(port: 0, signals: signals), port: 0)
        let port = try server.start()
        defer { server.stop() }
        let recorder = EventRecorder()
        let adapter = ModbusStationAdapter(config: testStation(port: port, pollMs: 20, signals: signals), sink: recorder.sink, logger: logger)
        let running = RunningService(adapter)
        XCTAssertTrue(recorder.wait(5) { !$0.goodPolls.isEmpty })
        let first = recorder.goodPolls.count
        let start = Date()
        XCTAssertTrue(recorder.wait(10) { $0.goodPolls.count >= first + 50 })
        let count = recorder.goodPolls.count - first
        let elapsed = Date().timeIntervalSince(start)
        await running.stop()
        // At most one poll per 20 ms slot, however late the machine ran (the grid itself: ModbusLinkMachineTests).
        XCTAssertLessThanOrEqual(Double(count), elapsed / 0.020 + 2, "never bursts: \(count) polls in \(elapsed) s")
    }
}
