import XCTest
import PlantModel
import Runtime
@testable import ModbusAdapter
import Simulation
import TestSupport

/// MBAP framing, pure.
final class ModbusTCPFrameTests: XCTestCase {
    let context = ModbusError.Context(station: "T", operation: "read")

    func testReadRequestBytes() {
        XCTAssertEqual(ModbusTCPFrame.readRequest(transaction: 0x0102, unit: 7, table: .holdingRegister, start: 300, count: 10),
                       [1, 2, 0, 0, 0, 6, 7, 3, 0x01, 0x2C, 0, 10])
        XCTAssertEqual(ModbusTCPFrame.readRequest(transaction: 1, unit: 1, table: .coil, start: 0, count: 1)[7], 1)
        XCTAssertEqual(ModbusTCPFrame.readRequest(transaction: 1, unit: 1, table: .discreteInput, start: 0, count: 1)[7], 2)
        XCTAssertEqual(ModbusTCPFrame.readRequest(transaction: 1, unit: 1, table: .inputRegister, start: 0, count: 1)[7], 4)
    }

    func testRegistersBitsAndShortInput() throws {
        let registers: [UInt8] = [0, 9, 0, 0, 0, 7, 1, 3, 4, 0x12, 0x34, 0xFF, 0xFE]
        for cut in 0..<registers.count {
            XCTAssertEqual(try ModbusTCPFrame.parseReadAnswer(Array(registers.prefix(cut)), transaction: 9, unit: 1,
                                                              table: .holdingRegister, count: 2, context: context), .needMore)
        }
        XCTAssertEqual(try ModbusTCPFrame.parseReadAnswer(registers, transaction: 9, unit: 1, table: .holdingRegister, count: 2, context: context),
                       .answer(.registers([0x1234, 0xFFFE]), length: 13))
        // 10 coils: 0b1000_0101, 0b10 → 0, 2, 7, 9 set.
        let bits: [UInt8] = [0, 1, 0, 0, 0, 5, 1, 1, 2, 0x85, 0x02]
        XCTAssertEqual(try ModbusTCPFrame.parseReadAnswer(bits, transaction: 1, unit: 1, table: .coil, count: 10, context: context),
                       .answer(.bits([true, false, true, false, false, false, false, true, false, true]), length: 11))
    }

    func testExceptionAndBadAnswers() {
        let exception: [UInt8] = [0, 4, 0, 0, 0, 3, 1, 0x83, 2]
        XCTAssertThrowsError(try ModbusTCPFrame.parseReadAnswer(exception, transaction: 4, unit: 1, table: .holdingRegister, count: 1,
                                                                context: context)) { error in
            XCTAssertEqual(error as? ModbusError, .exception(.illegalDataAddress, context))
        }
        let good: [UInt8] = [0, 4, 0, 0, 0, 5, 1, 3, 2, 0, 1]
        var wrong: [(String, [UInt8], Int)] = []
        var tid = good; tid[1] = 5; wrong.append(("transaction", tid, 1))
        var unit = good; unit[6] = 2; wrong.append(("unit", unit, 1))
        var function = good; function[7] = 4; wrong.append(("function", function, 1))
        var proto = good; proto[3] = 1; wrong.append(("protocol", proto, 1))
        wrong.append(("byte count", good, 2))
        var huge = good; huge[4] = 1; wrong.append(("length", huge, 1))
        for (what, bytes, count) in wrong {
            XCTAssertThrowsError(try ModbusTCPFrame.parseReadAnswer(bytes, transaction: 4, unit: 1, table: .holdingRegister, count: count,
                                                                    context: context), what) { error in
                XCTAssertEqual(error as? ModbusError, .badResponse(context), what)
            }
        }
    }

    func testDefaultThreadCount() {
        XCTAssertEqual(ModbusEventLoopGroup.defaultThreadCount(stations: 0), 1)
        XCTAssertEqual(ModbusEventLoopGroup.defaultThreadCount(stations: 250), 1)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        XCTAssertEqual(ModbusEventLoopGroup.defaultThreadCount(stations: 251), min(2, cores))
        XCTAssertEqual(ModbusEventLoopGroup.defaultThreadCount(stations: 100_000), cores)
    }
}

/// The event-loop adapter against pymodbus and against our own simulator.
final class ModbusEventLoopAdapterTests: XCTestCase {
    let logger = Logger(label: "test", level: .error)
    let fastBackoff = ReconnectBackoff(initialMs: 50, maxMs: 300, jitter: 0.2, seed: 3)

    private func adapter(_ config: StationConfig, _ group: ModbusEventLoopGroup, _ recorder: EventRecorder,
                         clock: any WallClock = SystemWallClock()) -> ModbusLoopStationAdapter {
        ModbusLoopStationAdapter(config: config, loop: group.next(), sink: recorder.sink, logger: logger, clock: clock, backoff: fastBackoff)
    }

    /// Every table and type across the plan's merged ranges, encoded by Python's `struct`.
    func testValuesAcrossThePlanFromPymodbus() async throws {
        var plc = PymodbusSignals()
        plc.add("coil", "coil", 5, .bool, true, expect: .bool(true))
        plc.add("coil70", "coil", 70, .bool, true, expect: .bool(true))
        plc.add("di", "di", 2, .bool, true, expect: .bool(true))
        plc.add("flag", "hr", 0, .bool, true, expect: .bool(true))
        plc.add("i16", "hr", 1, .int16, -1234, expect: .int(-1234))
        plc.add("u16", "ir", 1, .uint16, 60000, expect: .int(60000))
        plc.add("vin", "hr", 100, .string, "WVWZZZ1JZXW000042", length: 17, expect: .string("WVWZZZ1JZXW000042"))
        plc.add("far", "hr", 180, .uint16, 4242, expect: .int(4242))
        plc.add("lot", "ir", 50, .string, "LOT-7", length: 12, expect: .string("LOT-7"))
        var address = 10
        for order in WordOrder.allCases {
            plc.add("i32_\(order)", "hr", address, .int32, -2_000_000_001, order: order, expect: .int(-2_000_000_001))
            plc.add("f32_\(order)", "hr", address + 4, .float32, 9.875, order: order, expect: .double(9.875))
            plc.add("f64_\(order)", "ir", address, .float64, 1234.5678, order: order, expect: .double(1234.5678))
            address += 12
        }
        let plan = ModbusReadPlan(signals: plc.signals)
        XCTAssertGreaterThanOrEqual(plan.requests.count, 6, "several ranges per table: \(plan.requests)")
        let port = try freePort()
        let peer = try startPymodbusPLC(port: port, spec: plc.spec)
        defer { peer.kill() }
        let group = ModbusEventLoopGroup(threads: 1, logger: logger)
        let recorder = EventRecorder()
        let station = adapter(testStation(port: port, pollMs: 50, timeoutMs: 1000, signals: plc.signals), group, recorder)
        let running = RunningService(station)
        let ok = recorder.wait(10) { $0.goodPolls.count >= 3 }
        await running.stop()
        XCTAssertTrue(ok, "no polls from pymodbus; stats \(station.stats())")
        for poll in recorder.goodPolls {
            XCTAssertEqual(poll.readings.count, plc.signals.count)
            for reading in poll.readings {
                XCTAssertEqual(reading.quality, .good, "\(reading.name): \(reading.status ?? "")")
                XCTAssertEqual(reading.value, plc.expected[reading.name], reading.name)
            }
            XCTAssertNotNil(poll.latencyMs)
        }
        XCTAssertEqual(recorder.changes.map(\.state), [.online])
        XCTAssertEqual(station.stats().errorCount, 0)
        XCTAssertTrue(eventually(timeout: 5) { !group.loops[0].isRunning }, "the loop thread ends with its last station")
    }

    /// An illegal-address exception splits the merged request and marks only the missing signal bad.
    func testExceptionResponseMarksOneSignalBad() async throws {
        let port = try freePort()
        let plc = try startPymodbusPLC(port: port, spec: [
            ["table": "hr", "address": 0, "type": "uint16", "value": 11],
            ["table": "hr", "address": 2, "type": "float32", "value": 2.5],
        ], size: 10)
        defer { plc.kill() }
        let signals = [sig("a", "hr:0", .uint16), sig("b", "hr:2", .float32), sig("beyond", "hr:12", .uint16), sig("ok", "ir:0", .uint16)]
        let group = ModbusEventLoopGroup(threads: 1, logger: logger)
        let recorder = EventRecorder()
        let station = adapter(testStation(port: port, pollMs: 50, timeoutMs: 1000, signals: signals), group, recorder)
        let running = RunningService(station)
        let ok = recorder.wait(10) { $0.goodPolls.count >= 3 }
        await running.stop()
        XCTAssertTrue(ok, "\(station.stats())")
        for poll in recorder.goodPolls {
            XCTAssertEqual(poll.readings.map(\.quality), [.good, .good, .bad, .good])
            XCTAssertEqual(poll.readings.map(\.value), [.int(11), .double(2.5), nil, .int(0)])
            XCTAssertEqual(poll.readings[2].status, "illegal data address (exception 2) at hr:12")
        }
        XCTAssertEqual(recorder.changes.map(\.state), [.online])
        XCTAssertGreaterThanOrEqual(station.stats().errors["exception_2"] ?? 0, 3)
        XCTAssertEqual(station.stats().errors.keys.sorted(), ["exception_2"])
    }

    /// The PLC process killed and started again on the same port: offline with stale values, then
    /// online again on the same adapter.
    func testKilledPLCGoesOfflineStaleAndHeals() async throws {
        let port = try freePort()
        var plc = try startPymodbusPLC(port: port, spec: [["table": "hr", "address": 0, "type": "uint16", "value": 1]])
        let group = ModbusEventLoopGroup(threads: 1, logger: logger)
        let recorder = EventRecorder()
        let station = adapter(testStation(port: port, pollMs: 50, timeoutMs: 500, signals: [sig("a", "hr:0", .uint16)]), group, recorder)
        let running = RunningService(station)
        XCTAssertTrue(recorder.wait(10) { $0.goodPolls.last?.readings.first?.value == .int(1) })
        plc.kill()
        XCTAssertTrue(recorder.wait(10) { $0.changes.last?.state == .offline })
        XCTAssertTrue(recorder.wait(5) { $0.polls.contains { $0.readings.first?.quality == .stale } })
        let stale = try XCTUnwrap(recorder.polls.first { $0.readings.first?.quality == .stale })
        XCTAssertEqual(stale.readings.first?.value, .int(1), "stale marking carries the last good value")
        plc = try startPymodbusPLC(port: port, spec: [["table": "hr", "address": 0, "type": "uint16", "value": 2]])
        defer { plc.kill() }
        XCTAssertTrue(recorder.wait(15) { $0.goodPolls.last?.readings.first?.value == .int(2) }, "\(station.stats())")
        await running.stop()
        XCTAssertEqual(recorder.changes.map(\.state), [.online, .offline, .online])
        XCTAssertGreaterThanOrEqual(station.stats().reconnects, 1)
        XCTAssertEqual(station.connectionState, .online)
    }

    /// A PLC that accepts and never answers: response timeout → offline + stale → reconnect (and
    /// time out again); another station on the same loop thread polls on meanwhile.
    func testSilentPLCTimesOutGoesStaleAndReconnectsWithoutStallingTheLoop() async throws {
        let signals = [sig("a", "hr:0", .uint16)]
        let hungServer = ModbusStationServer(station: testStation(id: "HUNG", port: 0, signals: signals), port: 0)
        hungServer.behavior = .stall
        let goodServer = ModbusStationServer(station: testStation(id: "GOOD", port: 0, signals: signals), port: 0)
        try goodServer.set(signal: "a", value: .int(5))
        let hungPort = try hungServer.start(), goodPort = try goodServer.start()
        defer { hungServer.stop(); goodServer.stop() }
        let group = ModbusEventLoopGroup(threads: 1, logger: logger)
        let hungEvents = EventRecorder(), goodEvents = EventRecorder()
        let hung = adapter(testStation(id: "HUNG", port: hungPort, pollMs: 50, timeoutMs: 300, signals: signals), group, hungEvents)
        let good = adapter(testStation(id: "GOOD", port: goodPort, pollMs: 50, timeoutMs: 300, signals: signals), group, goodEvents)
        XCTAssertTrue(hung.loop === good.loop)
        let r1 = RunningService(hung), r2 = RunningService(good)
        XCTAssertTrue(eventually(timeout: 15) { (hung.stats().errors["timeout"] ?? 0) >= 2 }, "\(hung.stats())")
        let atSecondTimeout = goodEvents.goodPolls.count
        XCTAssertTrue(eventually(timeout: 15) { (hung.stats().errors["timeout"] ?? 0) >= 3 }, "\(hung.stats())")
        let during = goodEvents.goodPolls.count - atSecondTimeout
        await r1.stop()
        await r2.stop()
        XCTAssertEqual(hungEvents.changes.map(\.state), [.offline], "never online, offline once")
        XCTAssertTrue(hungEvents.goodPolls.isEmpty)
        XCTAssertEqual(hungEvents.polls.count, 1, "one stale poll when going offline")
        XCTAssertEqual(hungEvents.polls.first?.readings.first?.quality, .stale)
        XCTAssertGreaterThanOrEqual(hung.stats().reconnects, 2)
        XCTAssertTrue(hung.stats().lastError?.contains("station HUNG: read hr:0 at") == true, hung.stats().lastError ?? "")
        XCTAssertGreaterThanOrEqual(during, 1, "GOOD polled while HUNG waited out a timeout on the same thread")
        XCTAssertEqual(good.stats().errorCount, 0)
    }

    /// Refused connections (nothing listening) are counted and retried with backoff.
    func testRefusedConnectIsRetried() async throws {
        let port = try freePort()
        let group = ModbusEventLoopGroup(threads: 1, logger: logger)
        let recorder = EventRecorder()
        let station = adapter(testStation(port: port, pollMs: 50, signals: [sig("a", "hr:0", .uint16)]), group, recorder)
        let running = RunningService(station)
        XCTAssertTrue(eventually(timeout: 10) { (station.stats().errors["refused"] ?? 0) >= 3 }, "\(station.stats())")
        await running.stop()
        XCTAssertEqual(recorder.changes.map(\.state), [.offline])
        XCTAssertEqual(station.stats().reconnects, 0, "a reconnect counts only after a connection was up, as in ModbusStationAdapter")
    }

    /// A host name is looked up off the loop thread: one that resolves polls; one that does not goes
    /// offline with the resolver's reason and is retried, while the other station polls on.
    func testHostNamesAreResolvedOffTheLoop() async throws {
        // This machine's own name is no IPv4 literal: getaddrinfo finds it (/etc/hosts); the PLC
        // listens on the address it names.
        var nameBuffer = [CChar](repeating: 0, count: 256)
        gethostname(&nameBuffer, nameBuffer.count)
        let hostName = String(cString: nameBuffer)
        guard case .address(var found) = LoopStation.resolve(host: hostName, port: 0) else {
            return XCTFail("this machine's name \(hostName) does not resolve")
        }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &found.sin_addr, &text, socklen_t(text.count))
        let plc = ModbusStationServer(station: testStation(port: 0, pollMs: 50, signals: [sig("a", "hr:0", .uint16)]),
                                      host: String(cString: text), port: 0, logger: logger)
        let port = try plc.start()
        defer { plc.stop() }
        try plc.set(signal: "a", value: .int(7))
        var named = testStation(id: "NAMED", port: port, pollMs: 50, signals: [sig("a", "hr:0", .uint16)])
        named.endpoint = .modbusTCP(host: hostName, port: port, unit: 1)
        var unknown = testStation(id: "UNKNOWN", port: port, pollMs: 50, signals: [sig("a", "hr:0", .uint16)])
        unknown.endpoint = .modbusTCP(host: "plc-that-does-not-exist.invalid", port: port, unit: 1)
        let group = ModbusEventLoopGroup(threads: 1, logger: logger)
        let goodRecorder = EventRecorder(), badRecorder = EventRecorder()
        let good = adapter(named, group, goodRecorder), bad = adapter(unknown, group, badRecorder)
        XCTAssertTrue(good.loop === bad.loop)
        let running = [RunningService(good), RunningService(bad)]
        let ok = eventually(timeout: 20) { goodRecorder.goodPolls.count >= 3 && (bad.stats().errors.values.reduce(0, +)) >= 2 }
        for service in running { await service.stop() }
        XCTAssertTrue(ok, "named: \(good.stats()), unknown: \(bad.stats())")
        XCTAssertEqual(goodRecorder.goodPolls.last?.readings.first?.value, .int(7))
        XCTAssertEqual(badRecorder.changes.map(\.state), [.offline])
        XCTAssertTrue(bad.stats().lastError?.contains("plc-that-does-not-exist.invalid") == true, bad.stats().lastError ?? "")
    }

    /// 200 simulated PLCs on loopback, polled from two loop threads: every station polls, every
    /// scheduled deadline lies on its station's grid and the deadlines step by whole intervals
    /// (a late poll skips slots; it never shifts the schedule).
    func testTwoHundredStationsOnTwoThreadsKeepTheirGrids() async throws {
        let count = 200
        let signals = [sig("a", "hr:0", .uint16), sig("b", "coil:3", .bool)]
        // The PLCs are our station simulator in its own process (`station-sim`): 200 libmodbus
        // servers in this process would pass FD_SETSIZE, where libmodbus's select() aborts.
        // 200 distinct free ports: hold every listener until all are picked.
        var listeners: [Int32] = []
        for _ in 0..<count { listeners.append(try Socket.listen(host: "127.0.0.1", port: 0)) }
        let ports = try listeners.map { try Socket.localPort($0) }
        for fd in listeners { Socket.close(fd) }
        let folder = TempFolder()
        defer { folder.remove() }
        let stationsJSON = ports.enumerated().map { i, port in
            """
            {"id": "S-\(i)", "process": "welding", "protocol": "modbus", "endpoint": "modbus://127.0.0.1:\(port)?unit=1",
             "signals": [{"name": "a", "role": "measurement", "address": "hr:0", "type": "uint16"},
                         {"name": "b", "role": "measurement", "address": "coil:3", "type": "bool"}]}
            """
        }
        let configPath = folder.url.appendingPathComponent("plcs.json").path
        try "{\"route\": [\"welding\"], \"stations\": [\(stationsJSON.joined(separator: ","))]}"
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let sim = try PeerProcess(executable: productPath("station-sim"),
                                  arguments: ["--config", configPath, "--log-level", "error", "--exit-with-parent"])
        defer { sim.kill() }
        let serving = eventually(timeout: 30) {
            ports.allSatisfy { port in (try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 200)).map { Socket.close($0); return true } ?? false }
        }
        guard serving else { return XCTFail("station-sim does not serve every port: \(sim.text)") }
        // Intervals of 40 to 100 ms, so the grids differ.
        let configs = ports.enumerated().map { i, port in
            testStation(id: "S-\(i)", port: port, pollMs: 40 + (i % 4) * 20, timeoutMs: 2000, signals: signals)
        }
        let group = ModbusEventLoopGroup(threads: 2, logger: logger)
        let clock = ManualClock(Date(timeIntervalSince1970: 1_800_000_000))
        let recorders = configs.map { _ in EventRecorder() }
        let adapters = zip(configs, recorders).map { adapter($0, group, $1, clock: clock) }
        XCTAssertEqual(Set(adapters.map { ObjectIdentifier($0.loop) }).count, 2)
        let running = adapters.map { RunningService($0) }
        let ok = eventually(timeout: 60) { recorders.allSatisfy { $0.goodPolls.count >= 4 } }
        for service in running { await service.stop() }
        guard ok else { return XCTFail("polls per station: \(recorders.map { $0.goodPolls.count }), stats \(adapters[0].stats())") }
        for (i, station) in adapters.enumerated() {
            let polls = recorders[i].goodPolls
            XCTAssertTrue(polls.allSatisfy { $0.readings.allSatisfy { $0.quality == .good && $0.value != nil } }, station.stationID)
            XCTAssertTrue(polls.allSatisfy { $0.time == clock.now() }, "polls stamped by the injected clock")
            XCTAssertEqual(recorders[i].changes.map(\.state), [.online], station.stationID)
            let grid = station.grid
            XCTAssertEqual(grid.phase % PollGrid.sharedTick, 0, "\(station.stationID): the phase is on the shared tick")
            XCTAssertEqual(grid.phase, PollGrid(interval: grid.interval, station: station.stationID).phase / PollGrid.sharedTick * PollGrid.sharedTick)
            let deadlines = station.scheduledDeadlines
            XCTAssertGreaterThanOrEqual(deadlines.count, 3, station.stationID)
            for deadline in deadlines {
                XCTAssertEqual((deadline - grid.phase) % grid.interval, 0, "\(station.stationID): deadline off its grid")
            }
            let steps = zip(deadlines, deadlines.dropFirst()).map { ($1 - $0) / grid.interval }
            XCTAssertTrue(steps.allSatisfy { $0 >= 1 }, "\(station.stationID): deadlines step by whole intervals: \(steps)")
            XCTAssertLessThanOrEqual(steps.reduce(0, +) - UInt64(steps.count), station.skippedPollSlots,
                                     "\(station.stationID): every slot beyond one per step is counted as skipped")
            XCTAssertEqual(station.stats().errorCount, 0, station.stationID)
        }
        XCTAssertTrue(eventually(timeout: 10) { group.loops.allSatisfy { !$0.isRunning } })
    }
}

/// The `modbusDriver` station key (docs/CONFIG.md).
final class ModbusDriverConfigTests: XCTestCase {
    private func decode(_ extra: String, endpoint: String = "modbus://127.0.0.1:1502?unit=1") throws -> StationConfig {
        let text = """
        {"route": ["welding"], "stations": [{"id": "W-1", "process": "welding", "protocol": "modbus",
          "endpoint": "\(endpoint)"\(extra), "signals": [{"name": "a", "address": "hr:0", "type": "uint16"}]}]}
        """
        return try PlantConfig.decode(json: try JSON.parse(text), file: "p.json", directory: repoRoot).stations[0]
    }

    func testDefaultIsTheEventLoopAndLibmodbusCanBeChosen() throws {
        XCTAssertEqual(try decode("").modbusDriver, .eventLoop)
        XCTAssertEqual(try decode(#", "modbusDriver": "loop""#).modbusDriver, .eventLoop)
        XCTAssertEqual(try decode(#", "modbusDriver": "libmodbus""#).modbusDriver, .libmodbus)
    }

    func testBadDriverAndRTUAreErrorsNamingThePath() {
        XCTAssertThrowsError(try decode(#", "modbusDriver": "epoll""#)) { error in
            XCTAssertTrue("\(error)".contains("stations[0].modbusDriver"), "\(error)")
            XCTAssertTrue("\(error)".contains("loop, libmodbus"), "\(error)")
        }
        XCTAssertThrowsError(try decode(#", "modbusDriver": "loop""#, endpoint: "modbus-rtu:///dev/ttyUSB0?baud=19200&unit=1")) { error in
            XCTAssertTrue("\(error)".contains("stations[0].modbusDriver"), "\(error)")
        }
    }
}
