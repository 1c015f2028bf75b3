import XCTest
import PlantModel
import Runtime
@testable import ModbusAdapter
@testable import Simulation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The simulated Modbus TCP PLCs served from shared loop threads (`ModbusServerLoop`): many
/// stations on one thread, each isolated from the others' faults and lifecycles; our own framing
/// against libmodbus's client and raw frames.
final class ModbusServerLoopTests: XCTestCase {
    /// A blocking raw client: sends frames, reads whole MBAP answers.
    final class RawClient {
        let fd: Int32
        init(port: UInt16, timeoutMs: Int = 2000) throws {
            fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: timeoutMs)
            Socket.setTimeouts(fd, milliseconds: timeoutMs)
        }
        deinit { Socket.close(fd) }

        func send(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try Socket.writeAll(fd, $0) }
        }

        /// One whole answer (header + PDU); nil when the server closed or sent nothing in time.
        /// Bytes received after the last whole answer.
        var got: [UInt8] = []

        func answer() -> [UInt8]? {
            var buffer = [UInt8](repeating: 0, count: 512)
            while true {
                if got.count >= 7 {
                    let total = 6 + (Int(got[4]) << 8 | Int(got[5]))
                    if got.count >= total {
                        defer { got.removeFirst(total) }
                        return Array(got[0..<total])
                    }
                }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return nil }
                got += buffer[0..<n]
            }
        }

        /// Whether the server closed the connection within the timeout: a read returns end of file,
        /// or the connection was reset (closed by the server before it was accepted).
        func closedByPeer() -> Bool {
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, 0)
            return n == 0 || (n < 0 && errno == ECONNRESET)
        }
    }

    /// An MBAP frame: transaction, unit, PDU.
    static func frame(_ transaction: UInt16, unit: UInt8 = 1, _ pdu: [UInt8]) -> [UInt8] {
        let length = pdu.count + 1
        return [UInt8(transaction >> 8), UInt8(transaction & 0xFF), 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), unit] + pdu
    }

    static func read(_ function: UInt8, _ start: UInt16, _ count: UInt16) -> [UInt8] {
        [function, UInt8(start >> 8), UInt8(start & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF)]
    }

    let signals = [sig("a", "hr:0", .uint16), sig("b", "hr:1", .uint16), sig("c", "coil:0", .bool), sig("d", "coil:9", .bool),
                   sig("e", "ir:0", .uint16), sig("f", "di:2", .bool)]

    func testManyStationsOnOneLoopAnswerTheirOwnValues() throws {
        let group = ModbusServerLoopGroup(loops: 1)
        var servers: [ModbusStationServer] = []
        defer { for server in servers { server.stop() } }
        for i in 0..<40 {
            let server = ModbusStationServer(station: testStation(id: "L\(i)", port: 0, signals: signals), port: 0, loops: group)
            try server.set(signal: "a", value: .int(Int64(1000 + i)))
            try server.start()
            servers.append(server)
        }
        XCTAssertTrue(group.loops[0].isRunning)
        for (i, server) in servers.enumerated() {
            let connection = ModbusConnection(station: "L\(i)", endpoint: .modbusTCP(host: "127.0.0.1", port: try XCTUnwrap(server.port), unit: 1),
                                              timeoutMs: 1000)
            defer { connection.close() }
            try connection.open()
            XCTAssertEqual(try connection.readRegisters(.holdingRegister, start: 0, count: 2), [UInt16(1000 + i), 0])
            XCTAssertEqual(server.requestCount, 1)
        }
        for server in servers { server.stop() }
        servers.removeAll()
        XCTAssertTrue(eventually(timeout: 5) { !group.loops[0].isRunning }, "the loop thread ends with its last station")
    }

    func testLoopsFillUpOneAfterAnother() throws {
        let group = ModbusServerLoopGroup(loops: 2, stationsPerLoop: 3)
        var servers: [ModbusStationServer] = []
        defer { for server in servers { server.stop() } }
        for i in 0..<4 {
            let server = ModbusStationServer(station: testStation(id: "F\(i)", port: 0, signals: signals), port: 0, loops: group)
            try server.start()
            servers.append(server)
            XCTAssertEqual(group.loops[1].isRunning, i == 3, "station \(i)")
        }
        XCTAssertTrue(group.loops[0].isRunning)
    }

    func testAStalledStationDoesNotHoldUpTheOthersOnItsLoop() throws {
        let group = ModbusServerLoopGroup(loops: 1)
        let hung = ModbusStationServer(station: testStation(id: "HUNG", port: 0, signals: signals), port: 0, loops: group)
        let healthy = ModbusStationServer(station: testStation(id: "OK", port: 0, signals: signals), port: 0, loops: group)
        try healthy.set(signal: "a", value: .int(42))
        let hungPort = try hung.start(), healthyPort = try healthy.start()
        defer { hung.stop(); healthy.stop() }
        hung.behavior = .stall
        let silent = try RawClient(port: hungPort, timeoutMs: 300)
        try silent.send(Self.frame(1, Self.read(3, 0, 1)))
        let ok = try RawClient(port: healthyPort)
        for t in 0..<20 {
            try ok.send(Self.frame(UInt16(t), Self.read(3, 0, 1)))
            XCTAssertEqual(ok.answer(), Self.frame(UInt16(t), [3, 2, 0, 42]), "request \(t)")
        }
        XCTAssertNil(silent.answer(), "a stalled station answers nothing")
        XCTAssertEqual(healthy.requestCount, 20)
        // It heals on the same connection.
        hung.behavior = .normal
        try silent.send(Self.frame(2, Self.read(3, 0, 1)))
        XCTAssertEqual(silent.answer(), Self.frame(2, [3, 2, 0, 0]))
    }

    func testStoppingOneStationLeavesTheOthersServing() throws {
        let group = ModbusServerLoopGroup(loops: 1)
        let first = ModbusStationServer(station: testStation(id: "A", port: 0, signals: signals), port: 0, loops: group)
        let second = ModbusStationServer(station: testStation(id: "B", port: 0, signals: signals), port: 0, loops: group)
        try second.set(signal: "b", value: .int(7))
        let firstPort = try first.start(), secondPort = try second.start()
        defer { second.stop() }
        let toFirst = try RawClient(port: firstPort), toSecond = try RawClient(port: secondPort)
        try toFirst.send(Self.frame(1, Self.read(3, 0, 1)))
        XCTAssertNotNil(toFirst.answer())
        first.stop()
        XCTAssertTrue(toFirst.closedByPeer(), "its connections are closed by the time stop() returns")
        XCTAssertThrowsError(try Socket.connect(host: "127.0.0.1", port: firstPort, timeoutMs: 500), "refused")
        try toSecond.send(Self.frame(9, Self.read(3, 1, 1)))
        XCTAssertEqual(toSecond.answer(), Self.frame(9, [3, 2, 0, 7]), "the other station's connection still answers")
        let newcomer = try RawClient(port: secondPort)
        try newcomer.send(Self.frame(1, Self.read(3, 1, 1)))
        XCTAssertEqual(newcomer.answer(), Self.frame(1, [3, 2, 0, 7]), "and takes new connections")
        XCTAssertTrue(group.loops[0].isRunning)
    }

    func testRestartServesOnTheSamePortWithTheValuesKept() throws {
        let group = ModbusServerLoopGroup(loops: 1)
        let server = ModbusStationServer(station: testStation(port: 0, signals: signals), port: 0, loops: group)
        try server.set(signal: "a", value: .int(5))
        let port = try server.start()
        XCTAssertEqual(try server.start(), port, "start while running is a no-op")
        let before = try RawClient(port: port)
        server.stop()
        server.stop()
        XCTAssertTrue(before.closedByPeer())
        XCTAssertTrue(eventually(timeout: 5) { !group.loops[0].isRunning })
        try server.set(signal: "a", value: .int(6))
        XCTAssertEqual(try server.start(), port, "same port")
        defer { server.stop() }
        let after = try RawClient(port: port)
        try after.send(Self.frame(3, Self.read(3, 0, 1)))
        XCTAssertEqual(after.answer(), Self.frame(3, [3, 2, 0, 6]))
    }

    func testManyClientsOfOneStationAndFramesSplitOrPipelined() throws {
        let group = ModbusServerLoopGroup(loops: 1)
        let server = ModbusStationServer(station: testStation(port: 0, signals: signals), port: 0, loops: group)
        try server.set(signal: "a", value: .int(0x1234))
        let port = try server.start()
        defer { server.stop() }
        let clients = try (0..<5).map { _ in try RawClient(port: port) }
        for (i, client) in clients.enumerated() {
            try client.send(Self.frame(UInt16(i), Self.read(3, 0, 1)))
        }
        for (i, client) in clients.enumerated() {
            XCTAssertEqual(client.answer(), Self.frame(UInt16(i), [3, 2, 0x12, 0x34]))
        }
        // Three requests in one write: three answers, in order.
        let client = clients[0]
        try client.send(Self.frame(10, Self.read(3, 0, 1)) + Self.frame(11, Self.read(1, 0, 1)) + Self.frame(12, Self.read(4, 0, 1)))
        XCTAssertEqual(client.answer(), Self.frame(10, [3, 2, 0x12, 0x34]))
        XCTAssertEqual(client.answer(), Self.frame(11, [1, 1, 0]))
        XCTAssertEqual(client.answer(), Self.frame(12, [4, 2, 0, 0]))
        // One request in three writes.
        let request = Self.frame(13, Self.read(3, 0, 1))
        try client.send(Array(request[0..<3]))
        usleep(20_000)
        try client.send(Array(request[3..<9]))
        usleep(20_000)
        try client.send(Array(request[9...]))
        XCTAssertEqual(client.answer(), Self.frame(13, [3, 2, 0x12, 0x34]))
        XCTAssertEqual(server.requestCount, 9)
    }

    func testFunctionsAndExceptionsAnswerAsLibmodbusDoes() throws {
        let group = ModbusServerLoopGroup(loops: 1)
        let server = ModbusStationServer(station: testStation(port: 0, unit: 3, signals: signals), port: 0, loops: group)
        try server.set(signal: "d", value: .bool(true))
        try server.set(signal: "f", value: .bool(true))
        let port = try server.start()
        defer { server.stop() }
        let client = try RawClient(port: port)
        func exchange(_ pdu: [UInt8], unit: UInt8 = 3) throws -> [UInt8] {
            try client.send(Self.frame(77, unit: unit, pdu))
            let answer = try XCTUnwrap(client.answer())
            XCTAssertEqual(Array(answer[0..<4]), [0, 77, 0, 0])
            XCTAssertEqual(answer[6], unit)
            return Array(answer[7...])
        }
        // Reads of every table; bits packed from the lowest.
        XCTAssertEqual(try exchange(Self.read(1, 0, 10)), [1, 2, 0x00, 0x02])
        XCTAssertEqual(try exchange(Self.read(2, 0, 3)), [2, 1, 0x04])
        XCTAssertEqual(try exchange(Self.read(4, 0, 1)), [4, 2, 0, 0])
        // Writes: single register and coil (echoed), multiple registers and coils (address + count).
        XCTAssertEqual(try exchange([6, 0, 1, 0xAB, 0xCD]), [6, 0, 1, 0xAB, 0xCD])
        XCTAssertEqual(server.map.registers(.holdingRegister, at: 1, count: 1), [0xABCD])
        XCTAssertEqual(try exchange([5, 0, 0, 0xFF, 0]), [5, 0, 0, 0xFF, 0])
        XCTAssertEqual(try exchange([5, 0, 0, 0x12, 0x34]), [0x85, 3], "a coil is 0xFF00 or 0")
        XCTAssertEqual(try exchange([16, 0, 0, 0, 2, 4, 0, 1, 0, 2]), [16, 0, 0, 0, 2])
        XCTAssertEqual(try exchange(Self.read(3, 0, 2)), [3, 4, 0, 1, 0, 2])
        XCTAssertEqual(try exchange([15, 0, 0, 0, 3, 1, 0b101]), [15, 0, 0, 0, 3])
        XCTAssertEqual(try exchange(Self.read(1, 0, 3)), [1, 1, 0b101])
        // Mask write (22): (value AND and) OR (or AND NOT and); read/write registers (23): write first, then read.
        XCTAssertEqual(try exchange([22, 0, 0, 0xFF, 0x00, 0x00, 0x0F]), [22, 0, 0, 0xFF, 0x00, 0x00, 0x0F])
        XCTAssertEqual(try exchange(Self.read(3, 0, 1)), [3, 2, 0, 0x0F])
        XCTAssertEqual(try exchange([23, 0, 0, 0, 2, 0, 1, 0, 1, 2, 0x99, 0x88]), [23, 4, 0, 0x0F, 0x99, 0x88])
        // Exceptions: past the table (2), bad count (3), unknown function (1), other unit (0x0B).
        XCTAssertEqual(try exchange(Self.read(3, 1, 2)), [0x83, 2])
        XCTAssertEqual(try exchange(Self.read(3, 0, 0)), [0x83, 3])
        XCTAssertEqual(try exchange(Self.read(3, 0, 126)), [0x83, 3])
        XCTAssertEqual(try exchange(Self.read(1, 0, 2001)), [0x81, 3])
        XCTAssertEqual(try exchange([6, 0, 9, 0, 1]), [0x86, 2])
        XCTAssertEqual(try exchange([7]), [0x87, 1])
        XCTAssertEqual(try exchange([3, 0]), [0x83, 3], "too short for its function")
        XCTAssertEqual(try exchange(Self.read(3, 0, 1), unit: 4), [0x83, 0x0B])
        // Report server id (17): libmodbus's id 180, running, "LMB" + version.
        let id = try exchange([17])
        XCTAssertEqual(Array(id[0..<4]), [17, UInt8(id.count - 2), 180, 0xFF])
        XCTAssertTrue(String(decoding: id[4...], as: UTF8.self).hasPrefix("LMB3."))
        // A header whose length cannot be a request closes the connection.
        try client.send([0, 1, 0, 0, 0x10, 0, 3, 3])
        XCTAssertTrue(client.closedByPeer())
    }

    func testGarbageAndClosingBehaviours() throws {
        let group = ModbusServerLoopGroup(loops: 1)
        let server = ModbusStationServer(station: testStation(port: 0, signals: signals), port: 0, loops: group)
        let port = try server.start()
        defer { server.stop() }
        server.behavior = .garbage
        let client = try RawClient(port: port)
        try client.send(Self.frame(1, Self.read(3, 0, 1)))
        var junk = [UInt8](repeating: 0, count: 9)
        XCTAssertEqual(junk.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, 9, Int32(MSG_WAITALL)) }, 9)
        XCTAssertEqual(junk, [0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01, 0xFF, 0x83, 0x7F])
        server.behavior = .closeConnections
        try client.send(Self.frame(2, Self.read(3, 0, 1)))
        XCTAssertTrue(client.closedByPeer(), "closed on a request")
        let fresh = try RawClient(port: port)
        XCTAssertTrue(fresh.closedByPeer(), "closed on accept")
        XCTAssertEqual(server.requestCount, 0, "only answered requests count")
    }
}
