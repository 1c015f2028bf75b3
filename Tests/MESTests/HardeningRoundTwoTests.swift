import Foundation
import XCTest
@testable import API
@testable import MESApp
import PlantModel
import Quality
import Runtime
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Exact input, browser and network hygiene, the audit of failed authentications, stopping and
/// the descriptor limit, through the assembled server (raw sockets where a client library would
/// tidy the request).
final class HardeningRoundTwoTests: XCTestCase {
    static let quality = ["Authorization": "Bearer demo-quality-token"]
    static let admin = ["Authorization": "Bearer demo-admin-token"]

    /// Starts the server in-process on the default plant, optionally with a changed config.
    private func start(edit: ((inout [(String, JSON)]) -> Void)? = nil) throws -> (MESServer, Task<Void, any Error>, TestHTTP) {
        let dir = try makeTempDirectory(self)
        var options = ServerOptions()
        options.config = repoRoot.appendingPathComponent("Stations/plant.json").path
        if let edit {
            let plant = try JSON.parse(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: options.config))))
            guard case .object(var members) = plant else { throw SystemError(call: "config", errno: EINVAL) }
            edit(&members)
            let file = dir.appendingPathComponent("plant.json")
            try JSON.object(members).serialized().write(to: file, atomically: true, encoding: .utf8)
            try Data(contentsOf: repoRoot.appendingPathComponent("Stations/tokens.json")).write(to: dir.appendingPathComponent("tokens.json"))
            options.config = file.path
        }
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = "/dev/null"
        let server = try MESServer(options: options, logger: Logger(label: "test", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        return (server, task, TestHTTP(port: server.port))
    }

    private func stop(_ server: MESServer, _ task: Task<Void, any Error>) async throws {
        server.shutdown()
        try await task.value
    }

    /// Sends raw bytes on a new connection; returns the status and the body of the answer.
    private func raw(_ port: UInt16, _ bytes: [UInt8]) throws -> (status: Int, body: String) {
        let fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000)
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: 10_000)
        try bytes.withUnsafeBytes { try Socket.writeAll(fd, $0) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? "")
    }

    private func post(_ port: UInt16, _ path: String, body: [UInt8], contentType: String = "application/json",
                      token: String = "demo-quality-token") throws -> (status: Int, body: String) {
        var head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer \(token)\r\n"
        head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n"
        return try raw(port, Array(head.utf8) + body)
    }

    private func code(_ body: String) -> String? {
        (try? JSON.parse(body))?["error"]?["code"]?.stringValue
    }

    // MARK: Exact input

    func testJSONBodiesAreTakenExactly() async throws {
        let (server, task, http) = try start()
        let port = server.port
        func defect(_ json: String, contentType: String = "application/json") throws -> (status: Int, body: String) {
            try post(port, "/api/defects", body: Array(json.utf8), contentType: contentType)
        }
        // Invalid UTF-8 is refused, not replaced with U+FFFD.
        let invalid = try post(port, "/api/defects", body: Array(#"{"vehicleId":"V"#.utf8) + [0xFF, 0xFE] + Array(#"","code":"X"}"#.utf8))
        XCTAssertEqual(invalid.status, 400, invalid.body)
        XCTAssertEqual(code(invalid.body), "bad_request")
        // Duplicate names, and numbers RFC 8259 does not write.
        XCTAssertEqual(try defect(#"{"vehicleId":"V1","vehicleId":"V2","code":"X"}"#).status, 400)
        XCTAssertEqual(try defect(#"{"vehicleId":"V1","code":"X","n":01}"#).status, 400)
        XCTAssertEqual(try defect(#"{"vehicleId":"V1","code":"X","n":1.}"#).status, 400)
        // Only application/json (with parameters) is JSON.
        XCTAssertEqual(try defect(#"{"vehicleId":"V1","code":"X"}"#, contentType: "application/jsonx").status, 415)
        XCTAssertEqual(try defect(#"{"vehicleId":"V1","code":"X"}"#, contentType: "text/plain").status, 415)
        // Control characters in identifiers; lengths in Unicode scalars.
        let control = try defect(#"{"vehicleId":"V\u0001X","code":"X"}"#)
        XCTAssertEqual(control.status, 422)
        XCTAssertEqual(code(control.body), "unprocessable")
        let combining = "V" + String(repeating: "e\u{301}", count: 40_000)
        let long = try defect(#"{"vehicleId":"\#(combining)","code":"X"}"#)
        XCTAssertEqual(long.status, 422, "one grapheme cluster of 80,001 scalars is not 1 character of 64")
        // A NUL inside free text is stored whole (text bound with its byte length).
        let created = try defect(#"{"vehicleId":"VIN-NUL-1","code":"X","description":"before\u0000after"}"#,
                                 contentType: "application/json; charset=utf-8")
        XCTAssertEqual(created.status, 201, created.body)
        let listed = try http.get("/api/defects?vehicle=VIN-NUL-1")
        XCTAssertEqual(listed.json?.arrayValue?.first?["description"]?.stringValue, "before\u{0}after")
        // One code per meaning: a 422 from the route and a 422 from the quality engine agree.
        let shelve = try post(port, "/api/alerts/1/shelve", body: Array(#"{"minutes":-1}"#.utf8))
        XCTAssertEqual(shelve.status, 422)
        XCTAssertEqual(code(shelve.body), "unprocessable")
        try await stop(server, task)
    }

    // MARK: Commands off the loop

    /// A command waiting on a stalled pipeline holds a worker, not the loop: /api/health and an
    /// event stream on the same (only) loop keep answering, and the command's answer is the usual one.
    func testACommandWaitingOnThePipelineDoesNotHoldTheLoop() async throws {
        let dir = try makeTempDirectory(self)
        var options = ServerOptions()
        options.config = repoRoot.appendingPathComponent("Stations/plant.json").path
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = "/dev/null"
        options.httpLoops = 1
        let server = try MESServer(options: options, logger: Logger(label: "test", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        let http = TestHTTP(port: server.port)
        XCTAssertTrue(eventually { (try? http.get("/api/health").status) == 200 })

        // Stall the pipeline thread.
        let release = DispatchSemaphore(value: 0), stalled = DispatchSemaphore(value: 0)
        let pipeline = server.pipeline
        Thread {
            _ = try? pipeline.perform { stalled.signal(); release.wait(); return true }
        }.start()
        XCTAssertEqual(stalled.wait(timeout: .now() + 10), .success)

        let answer = Box2()
        let port = server.port
        let command = Thread {
            answer.set(try? TestHTTP(port: port).request("POST", "/api/vehicles/VIN-STALL/hold", body: #"{"reason":"check"}"#,
                                                          headers: Self.quality))
        }
        command.start()
        usleep(200_000)
        // The loop answers while the command waits.
        for _ in 0..<5 {
            let began = Date()
            XCTAssertEqual(try http.get("/api/health").status, 200)
            XCTAssertLessThan(Date().timeIntervalSince(began), 5, "health must not wait for the stalled command")
        }
        XCTAssertNil(answer.value, "the command is still waiting on the pipeline")
        release.signal()
        XCTAssertTrue(eventually { answer.value != nil })
        XCTAssertEqual(answer.value?.status, 404, "the same answer as before: no such vehicle")
        try await stop(server, task)
    }

    // MARK: Hygiene

    func testEndpointsFromEngineerUpAndTheRoleLadder() async throws {
        let (server, task, http) = try start()
        let anonymous = try http.get("/api/stations").json?.arrayValue ?? []
        XCTAssertFalse(anonymous.isEmpty)
        XCTAssertTrue(anonymous.allSatisfy { $0["endpoint"] == nil }, "no PLC address for anonymous readers")
        let viewer = try http.get("/api/stations", headers: ["Authorization": "Bearer demo-viewer-token"]).json?.arrayValue ?? []
        XCTAssertTrue(viewer.allSatisfy { $0["endpoint"] == nil }, "nor for viewers")
        let engineer = try http.get("/api/stations", headers: ["Authorization": "Bearer demo-engineer-token"]).json?.arrayValue ?? []
        XCTAssertTrue(engineer.allSatisfy { $0["endpoint"]?.stringValue?.isEmpty == false })
        let one = try http.get("/api/stations/WELD-01", headers: ["Authorization": "Bearer demo-engineer-token"]).json
        XCTAssertNotNil(one?["endpoint"]?.stringValue)
        XCTAssertNil(try http.get("/api/stations/WELD-01").json?["endpoint"])
        try await stop(server, task)

        XCTAssertEqual(Role.allCases, [.viewer, .operator, .quality, .engineer, .admin])
        XCTAssertTrue(Role.viewer < .operator && Role.operator < .quality)
        let store = try TokenStore.decode(ConfigNode(json: try JSON.parse(#"[{"token":"operator-token","user":"wang","role":"operator"}]"#), path: "", file: "t"))
        XCTAssertEqual(store.principal(forToken: "operator-token")?.role, .operator)
    }

    func testMetricsFollowTheReadPolicyAndHostsAreChecked() async throws {
        let (server, task, http) = try start { members in
            members.removeAll { $0.0 == "auth" }
            members.append(("auth", .obj([("tokensFile", .string("tokens.json")), ("anonymousRead", .bool(false))])))
        }
        XCTAssertEqual(try http.get("/metrics").status, 401)
        let metrics = try http.get("/metrics", headers: ["Authorization": "Bearer demo-viewer-token"])
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.body.contains("mes_http_buffered_body_bytes 0"), metrics.body)
        XCTAssertTrue(metrics.body.contains("mes_http_max_connections "), metrics.body)
        XCTAssertEqual(try http.get("/api/health").status, 200, "health stays public")
        // Default allow-list: 127.0.0.1 and localhost pass, a rebinding name gets 421.
        XCTAssertEqual(try raw(server.port, Array("GET /api/health HTTP/1.1\r\nHost: localhost:1\r\nConnection: close\r\n\r\n".utf8)).status, 200)
        XCTAssertEqual(try raw(server.port, Array("GET /api/health HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n".utf8)).status, 421)
        XCTAssertEqual(try raw(server.port, Array("GET /api/health HTTP/1.1\r\nConnection: close\r\n\r\n".utf8)).status, 400)
        // Pages cannot be framed.
        let page = try http.get("/")
        if page.status == 200 {
            XCTAssertEqual(page.headers["x-frame-options"], "DENY")
            XCTAssertTrue(page.headers["content-security-policy"]?.contains("frame-ancestors 'none'") == true)
        }
        try await stop(server, task)
    }

    // MARK: Audit

    func testFailedAuthenticationsAreCoalescedPerAddressWithABoundedTarget() async throws {
        let (server, task, http) = try start()
        let longPath = "/api/defects/" + String(repeating: "a", count: 16_000) + "/resolve"
        for i in 0..<200 {
            let answer = try post(server.port, longPath, body: Array("{}".utf8), token: "not-a-token")
            // Ten failures within a minute, then the address is refused for a minute (README "Tokens").
            XCTAssertEqual(answer.status, i < 10 ? 401 : 429)
        }
        server.pipeline.drain()
        try server.eventLog.flush()
        var rows: [JSON] = []
        XCTAssertEqual(try http.get("/api/audit?limit=10000", headers: Self.admin).status, 429, "127.0.0.1 is refused for a minute")
        XCTAssertTrue(eventually(timeout: 10) {
            // From another loopback address, which is not refused.
            let answer = try? curl(["--interface", "127.0.0.2", "-H", "Authorization: \(Self.admin["Authorization"] ?? "")",
                                    "http://127.0.0.1:\(server.port)/api/audit?limit=10000"])
            rows = answer.flatMap { try? JSON.parse($0.output).arrayValue } ?? []
            return rows.contains { $0["action"]?.stringValue == "auth.failed" }
        })
        let failures = rows.filter { $0["action"]?.stringValue == "auth.failed" }
        XCTAssertEqual(failures.count, 1, "200 failures in one minute from one address: one row so far")
        let row = try XCTUnwrap(failures.first)
        XCTAssertLessThanOrEqual(row["target"]?.stringValue?.count ?? .max, AuthFailureAudit.maxTarget + 1)
        XCTAssertTrue(row["detail"]?.stringValue?.contains("from 127.0.0.1") == true, "\(row)")
        let throttled = rows.filter { $0["action"]?.stringValue == "auth.throttled" }
        XCTAssertEqual(throttled.count, 1, "the refusal's start is one row; the refused requests are counted with the failures")
        try await stop(server, task)
    }

    func testCoalescerWritesOneCountPerAddressPerMinute() {
        let audit = AuthFailureAudit()
        let written = Box()
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let target = "POST /" + String(repeating: "p", count: 16_000)
        for i in 0..<10_000 {
            let entry = AuditEntry(t: t0.addingTimeInterval(Double(i) * 0.005), user: "unknown", role: nil, action: "auth.failed",
                                   target: target, detail: "unknown token")
            audit.record(entry, address: i % 2 == 0 ? "10.0.0.1:\(1000 + i)" : "10.0.0.2:\(2000 + i)", sink: written.append)
        }
        XCTAssertEqual(written.rows.count, 2, "the first failure of each address")
        audit.flushDue(now: t0.addingTimeInterval(61))
        XCTAssertEqual(written.rows.count, 4)
        let counts = written.rows.suffix(2).map(\.detail).sorted()
        XCTAssertTrue(counts[0].hasPrefix("4999 more failures from 10.0.0.1"), counts[0])
        XCTAssertTrue(counts[1].hasPrefix("4999 more failures from 10.0.0.2"), counts[1])
        let bytes = written.rows.reduce(0) { $0 + $1.target.utf8.count + $1.detail.utf8.count }
        XCTAssertLessThan(bytes, 4096, "10,000 failures with 16 KB paths cost a few rows")
        // A new minute starts a new first row.
        audit.record(AuditEntry(t: t0.addingTimeInterval(120), user: "unknown", role: nil, action: "auth.failed", target: "x", detail: "d"),
                     address: "10.0.0.1:1", sink: written.append)
        XCTAssertEqual(written.rows.count, 5)
    }

    // MARK: Stopping and descriptors

    private func freePort() throws -> UInt16 {
        let fd = try Socket.listen(host: "127.0.0.1", port: 0)
        defer { Socket.close(fd) }
        return try Socket.localPort(fd)
    }

    func testSIGTERMEndsAReplayWithinTwoSeconds() throws {
        let dir = try makeTempDirectory(self)
        let recording = dir.appendingPathComponent("long.jsonl").path
        var text = ""
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        for i in 0..<20_000 {
            let t = Timestamp.format(start.addingTimeInterval(Double(i) * 0.1))
            text += #"{"t":"\#(t)","station":"WELD-01","signal":"state","value":\#(i % 2)}"# + "\n"
        }
        try text.write(toFile: recording, atomically: true, encoding: .utf8)
        for signal in [SIGTERM, SIGINT] {
            let port = try freePort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: productPath("mes-server"))
            process.arguments = ["--config", repoRoot.appendingPathComponent("Stations/plant.json").path, "--listen", "127.0.0.1:\(port)",
                                 "--db", dir.appendingPathComponent("r\(signal).sqlite").path, "--log-level", "warning",
                                 "--replay", recording, "--speed", "1"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            addTeardownBlock { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
            let http = TestHTTP(port: port)
            XCTAssertTrue(eventually(timeout: 30) { (try? http.get("/api/health").status) == 200 }, "server did not start")
            usleep(500_000)
            let sent = Date()
            kill(process.processIdentifier, signal)
            XCTAssertTrue(eventually(timeout: 10) { !process.isRunning })
            let took = Date().timeIntervalSince(sent)
            XCTAssertLessThan(took, 2.0, "signal \(signal): the replay (33 min of recording at 1x) stopped in \(took) s")
            XCTAssertEqual(process.terminationStatus, 0)
        }
    }

    /// Under `ulimit -n 1024`, with more idle connections than that, a new client gets 503 or its
    /// answer, never silence.
    func testAtTheDescriptorLimitANewClientIsAnswered() throws {
        let dir = try makeTempDirectory(self)
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -n 1024 && exec \"$0\" \"$@\"", productPath("mes-server"),
                             "--config", repoRoot.appendingPathComponent("Stations/plant.json").path, "--listen", "127.0.0.1:\(port)",
                             "--db", dir.appendingPathComponent("fd.sqlite").path, "--log-level", "error", "--replay", "/dev/null"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        addTeardownBlock { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        let http = TestHTTP(port: port)
        XCTAssertTrue(eventually(timeout: 30) { (try? http.get("/api/health").status) == 200 }, "server did not start")
        var idle: [Int32] = []
        defer { for fd in idle { Socket.close(fd) } }
        for _ in 0..<1100 {
            guard let fd = try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000) else { break }
            idle.append(fd)
        }
        XCTAssertEqual(idle.count, 1100)
        for _ in 0..<5 {
            let fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000)
            defer { Socket.close(fd) }
            Socket.setTimeouts(fd, milliseconds: 5000)
            try Array("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8).withUnsafeBytes { try Socket.writeAll(fd, $0) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            XCTAssertGreaterThan(n, 0, "a new client must get an answer, not silence")
            let status = n > 12 ? String(decoding: buffer[9..<12], as: UTF8.self) : ""
            XCTAssertTrue(status == "503" || status == "200", "status \(status)")
        }
    }
}

/// Collects audit rows from the coalescer's sink.
private final class Box: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [AuditEntry] = []
    var rows: [AuditEntry] { lock.withLock { entries } }
    @Sendable func append(_ entry: AuditEntry) { lock.withLock { entries.append(entry) } }
}

/// One response, set by another thread.
private final class Box2: @unchecked Sendable {
    private let lock = NSLock()
    private var response: TestHTTP.Response?
    var value: TestHTTP.Response? { lock.withLock { response } }
    func set(_ r: TestHTTP.Response?) { lock.withLock { response = r } }
}
