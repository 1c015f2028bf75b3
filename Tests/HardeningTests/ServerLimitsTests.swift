import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Limits of the assembled server (config → HTTP wiring), not covered by HTTPTests' bare server.
final class ServerLimitsTests: XCTestCase {
    /// The default plant with a `limits` block, written next to a copy of its tokens file.
    private func configWithLimits(_ limits: [(String, JSON)], in dir: URL) throws -> String {
        let plant = try JSON.parse(bytes: Array(try Data(contentsOf: repoRoot.appendingPathComponent("Stations/plant.json"))))
        guard case .object(var members) = plant else { throw SystemError(call: "config", errno: EINVAL) }
        members.removeAll { $0.0 == "limits" }
        members.append(("limits", .object(limits)))
        let file = dir.appendingPathComponent("plant.json")
        try JSON.object(members).serialized().write(to: file, atomically: true, encoding: .utf8)
        try Data(contentsOf: repoRoot.appendingPathComponent("Stations/tokens.json")).write(to: dir.appendingPathComponent("tokens.json"))
        return file.path
    }

    private func start(config: String, dir: URL) throws -> (MESServer, Task<Void, any Error>) {
        var options = ServerOptions()
        options.config = config
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = "/dev/null"
        let server = try MESServer(options: options, logger: Logger(label: "hardening", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        return (server, task)
    }

    private func stop(_ server: MESServer, _ task: Task<Void, any Error>) async throws {
        server.shutdown()
        try await task.value
    }

    /// Sends raw bytes on a new connection and reads the answer until the server closes (or 5 s pass).
    private func exchange(_ port: UInt16, _ bytes: [UInt8], readUntilClose: Bool = true) throws -> (status: Int, body: String, fd: Int32?) {
        let fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000)
        Socket.setTimeouts(fd, milliseconds: 5000)
        try bytes.withUnsafeBytes { try Socket.writeAll(fd, $0) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data += buffer[0..<n]
            if !readUntilClose, String(decoding: data, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        let text = String(decoding: data, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        if readUntilClose { Socket.close(fd); return (status, body, nil) }
        return (status, body, fd)
    }

    private func health(_ port: UInt16) throws -> (status: Int, ms: Double) {
        let start = Monotonic.nanoseconds()
        let answer = try exchange(port, Array("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
        return (answer.status, Double(Monotonic.nanoseconds() - start) / 1e6)
    }

    func testHealthAnswersWhile300ConnectionsDripTheirHeaders() async throws {
        let dir = makeTempDirectory(self, prefix: "hardening")
        let (server, task) = try start(config: repoRoot.appendingPathComponent("Stations/plant.json").path, dir: dir)
        XCTAssertTrue(eventually { (try? health(server.port).status) == 200 })
        let request = Array("GET /api/stations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: yes\r\n\r\n".utf8)
        var slow: [Int32] = []
        defer { for fd in slow { Socket.close(fd) } }
        for _ in 0..<300 {
            let fd = try Socket.connect(host: "127.0.0.1", port: server.port, timeoutMs: 2000)
            Socket.setNonBlocking(fd)
            slow.append(fd)
        }
        var worst = 0.0, answered = 0
        // Three rounds: one more header byte on every slow connection, then ten health checks.
        for round in 0..<3 {
            for fd in slow {
                _ = request.withUnsafeBytes { send(fd, $0.baseAddress! + round, 1, Int32(MSG_NOSIGNAL)) }
            }
            for _ in 0..<10 {
                let (status, ms) = try health(server.port)
                XCTAssertEqual(status, 200, "health must answer while 300 headers trickle in")
                if status == 200 { answered += 1 }
                worst = max(worst, ms)
            }
        }
        XCTAssertEqual(answered, 30)
        print("hardening: /api/health answered \(answered) times during 300 slow-header connections, slowest \(String(format: "%.1f", worst)) ms")
        // None of the slow connections got an answer: their requests are not complete.
        var buffer = [UInt8](repeating: 0, count: 256)
        let answeredEarly = slow.filter { fd in buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } > 0 }
        XCTAssertEqual(answeredEarly.count, 0)
        try await stop(server, task)
    }

    func testConfiguredHeaderAndBodyLimitsAnswer431And413WithJSONErrors() async throws {
        let dir = makeTempDirectory(self, prefix: "hardening")
        let config = try configWithLimits([("maxHeaderBytes", .int(2048)), ("maxBodyBytes", .int(1000))], in: dir)
        let (server, task) = try start(config: config, dir: dir)
        XCTAssertTrue(eventually { (try? health(server.port).status) == 200 })

        let bigHeader = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: \(String(repeating: "b", count: 3000))\r\n\r\n"
        let header = try exchange(server.port, Array(bigHeader.utf8))
        XCTAssertEqual(header.status, 431)
        XCTAssertNotNil(try JSON.parse(header.body)["error"]?["code"]?.stringValue, header.body)

        let justFits = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Fit: \(String(repeating: "f", count: 1900))\r\n\r\n"
        XCTAssertEqual(try exchange(server.port, Array(justFits.utf8)).status, 200)

        let bigBody = "POST /api/defects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"
        let body = try exchange(server.port, Array(bigBody.utf8))
        XCTAssertEqual(body.status, 413)
        XCTAssertNotNil(try JSON.parse(body.body)["error"]?["code"]?.stringValue, body.body)

        let garbage = try exchange(server.port, Array("\u{1}\u{2} nonsense\r\n\r\n".utf8))
        XCTAssertEqual(garbage.status, 400)
        XCTAssertEqual(try health(server.port).status, 200)
        try await stop(server, task)
    }

    func testConfiguredMaxSseClientsAnswers503AndFreesTheSlot() async throws {
        let dir = makeTempDirectory(self, prefix: "hardening")
        let config = try configWithLimits([("maxSseClients", .int(5))], in: dir)
        let (server, task) = try start(config: config, dir: dir)
        XCTAssertTrue(eventually { (try? health(server.port).status) == 200 })
        let subscribe = Array("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".utf8)
        var streams: [Int32] = []
        defer { for fd in streams { Socket.close(fd) } }
        for _ in 0..<5 {
            let answer = try exchange(server.port, subscribe, readUntilClose: false)
            XCTAssertEqual(answer.status, 200)
            if let fd = answer.fd { streams.append(fd) }
        }
        let refused = try exchange(server.port, Array("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
        XCTAssertEqual(refused.status, 503)
        XCTAssertNotNil(try JSON.parse(refused.body)["error"], refused.body)
        // Closing one stream frees a slot.
        Socket.close(streams.removeLast())
        XCTAssertTrue(eventually {
            guard let answer = try? exchange(server.port, subscribe, readUntilClose: false) else { return false }
            if let fd = answer.fd { streams.append(fd) }
            return answer.status == 200
        })
        try await stop(server, task)
    }
}
