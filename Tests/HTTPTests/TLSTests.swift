import Foundation
import XCTest
import Runtime
@testable import HTTP
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// HTTPS on the epoll server: curl (trusting a test certificate made by `openssl req`) for an API
/// route, a deferred route, a static page, a large answer and an event stream; plain HTTP on the
/// TLS port; slow handshakes.
final class TLSTests: XCTestCase {
    private var folder: TempFolder!
    private var certificate: TestCertificate!

    override func setUpWithError() throws {
        folder = TempFolder(prefix: "tls")
        certificate = try TestCertificate(in: folder.path)
    }

    override func tearDown() {
        folder.remove()
    }

    private func start(hub: SSEHub = SSEHub(), limits: HTTPLimits = HTTPLimits(), big: [UInt8] = []) throws -> RunningServer {
        try Data("<!DOCTYPE html><title>line</title><p>HTTPS page</p>\n".utf8).write(to: URL(fileURLWithPath: folder.file("index.html")))
        var router = Router()
        router.get("/api/health") { _ in .json("{\"status\":\"ok\"}") }
        router.get("/api/slow", options: .offLoop) { _ in .json("{\"from\":\"worker\"}") }
        router.get("/api/big") { _ in HTTPResponse(status: 200, headers: ["Content-Type": "application/octet-stream"], body: big) }
        router.on(.get, "/api/events") { request in .eventStream(try SSEStream(request: request, hub: hub, backlog: nil)) }
        router.fallback = try StaticFiles(root: folder.path)
        let tls = try TLSServerContext(certificateFile: certificate.certificate, keyFile: certificate.key)
        return try RunningServer(router, limits: limits, tls: tls)
    }

    private func https(_ port: UInt16, _ path: String, _ extra: [String] = []) throws -> (status: Int32, output: String) {
        try curl(["--cacert", certificate.certificate, "--max-time", "20"] + extra + ["https://127.0.0.1:\(port)\(path)"])
    }

    func testAPIDeferredRouteAndStaticPageOverHTTPS() throws {
        let running = try start()
        defer { running.stop() }
        let health = try https(running.port, "/api/health")
        XCTAssertEqual(health.status, 0, health.output)
        XCTAssertEqual(health.output, "{\"status\":\"ok\"}")
        let slow = try https(running.port, "/api/slow")
        XCTAssertEqual(slow.output, "{\"from\":\"worker\"}", "a deferred (worker-pool) answer over TLS")
        let page = try https(running.port, "/", ["-i"])
        XCTAssertTrue(page.output.hasPrefix("HTTP/1.1 200"), page.output)
        XCTAssertTrue(page.output.contains("<p>HTTPS page</p>"), page.output)
        // The name in the certificate is checked too, and keep-alive carries several requests.
        let twice = try curl(["--cacert", certificate.certificate, "https://localhost:\(running.port)/api/health",
                              "https://localhost:\(running.port)/api/slow"])
        XCTAssertEqual(twice.output, "{\"status\":\"ok\"}{\"from\":\"worker\"}", twice.output)
        // TLS 1.1 is refused; 1.2 and 1.3 are served.
        XCTAssertNotEqual(try https(running.port, "/api/health", ["--tlsv1.1", "--tls-max", "1.1"]).status, 0)
        XCTAssertEqual(try https(running.port, "/api/health", ["--tlsv1.2", "--tls-max", "1.2"]).output, "{\"status\":\"ok\"}")
        XCTAssertEqual(try https(running.port, "/api/health", ["--tlsv1.3"]).output, "{\"status\":\"ok\"}")
        // An untrusted certificate is refused by a client that checks.
        XCTAssertNotEqual(try curl(["https://127.0.0.1:\(running.port)/api/health"]).status, 0)
    }

    func testLargeAnswerToASlowReaderArrivesWhole() throws {
        // 6 MiB read at 3 MiB/s: the server's socket fills, SSL_write waits (WANT_WRITE) and resumes.
        var generator = SplitMix64(seed: 7)
        let big = generator.bytes(6 * 1_048_576)
        let running = try start(big: big)
        defer { running.stop() }
        let file = folder.file("big.bin")
        let result = try https(running.port, "/api/big", ["--limit-rate", "3M", "-o", file])
        XCTAssertEqual(result.status, 0, result.output)
        let received = try XCTUnwrap(FileManager.default.contents(atPath: file))
        XCTAssertEqual(received.count, big.count)
        XCTAssertTrue(received.elementsEqual(big), "the bytes arrive unchanged")
    }

    func testPipelinedRequestsOverTLSAreAllAnswered() throws {
        // 200 requests in one write (many in one TLS record, records read ahead by OpenSSL): every
        // one is answered, in order, although the loop answers 16 per turn.
        let running = try start()
        defer { running.stop() }
        let script = """
        import socket, ssl, sys
        context = ssl.create_default_context(cafile=sys.argv[1])
        with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"".join(b"GET /api/%s HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n" % (b"slow" if i % 10 == 9 else b"health") for i in range(200)))
                data = b""
                while data.count(b"HTTP/1.1 200 OK") < 200 or not data.endswith(b"}"):
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                print(data.count(b"HTTP/1.1 200 OK"), data.count(b'{"from":"worker"}'))
        """
        let result = try runToEnd("/usr/bin/python3", ["-c", script, certificate.certificate, String(running.port)])
        XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), "200 20", result.output)
    }

    func testEventStreamOverHTTPS() throws {
        let hub = SSEHub()
        let running = try start(hub: hub)
        defer { running.stop() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "-N", "--cacert", certificate.certificate, "--max-time", "30", "https://127.0.0.1:\(running.port)/api/events"]
        let pipe = Pipe()
        process.standardOutput = pipe
        let received = Locked("")
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            received.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            pipe.fileHandleForReading.readabilityHandler = nil
        }
        XCTAssertTrue(eventually(timeout: 20) { hub.metrics.connectedClients == 1 })
        for id in 1...3 { hub.publish(SSEEvent(id: Int64(id), type: "sample", data: "{\"n\":\(id)}")) }
        XCTAssertTrue(eventually(timeout: 20) { received.value.contains("id: 3\nevent: sample\ndata: {\"n\":3}\n\n") }, received.value)
        XCTAssertTrue(received.value.contains("id: 1\nevent: sample\ndata: {\"n\":1}\n\n"))
        XCTAssertEqual(hub.metrics.eventsSent, 3)
    }

    func testPlainHTTPOnTheTLSPortIsRefusedCleanly() throws {
        let running = try start()
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let answer = try client.readResponse()
        XCTAssertEqual(answer.status, 400)
        XCTAssertEqual(answer.errorCode, "https_required")
        XCTAssertTrue(client.closedByPeer(within: 5), "closed after the answer")
        // curl speaking http:// gets the same plain answer.
        let plain = try curl(["-i", "http://127.0.0.1:\(running.port)/api/health"])
        XCTAssertTrue(plain.output.hasPrefix("HTTP/1.1 400"), plain.output)
        // A TLS client still gets served afterwards.
        XCTAssertEqual(try https(running.port, "/api/health").output, "{\"status\":\"ok\"}")
        XCTAssertTrue(eventually { running.server.metrics.openConnections == 0 })
        XCTAssertEqual(running.server.metrics.responses(class: 4), 2)
    }

    func testSlowHandshakesTimeOutWhileHealthAnswers() throws {
        var limits = HTTPLimits()
        limits.headerReadTimeout = 1.5
        let running = try start(limits: limits)
        defer { running.stop() }
        // 20 clients that connect and send nothing; 20 that send the start of a ClientHello (a
        // handshake record announcing 512 bytes, of which 20 arrive).
        var silent: [TestClient] = []
        var partial: [TestClient] = []
        for _ in 0..<20 { silent.append(try TestClient(port: running.port)) }
        let header: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03] + [UInt8](repeating: 0x2A, count: 14)
        for _ in 0..<20 {
            let client = try TestClient(port: running.port)
            try client.send(header)
            partial.append(client)
        }
        XCTAssertTrue(eventually { running.server.metrics.openConnections == 40 })
        // Meanwhile HTTPS requests are answered.
        for _ in 0..<3 {
            let health = try https(running.port, "/api/health")
            XCTAssertEqual(health.output, "{\"status\":\"ok\"}", health.output)
        }
        // Then the slow handshakes are closed, as slow headers are.
        for client in silent + partial {
            XCTAssertTrue(client.closedByPeer(within: 10), "a stalled handshake is closed after the header timeout")
        }
        XCTAssertTrue(eventually { running.server.metrics.openConnections == 0 })
        XCTAssertEqual(try https(running.port, "/api/health").output, "{\"status\":\"ok\"}")
    }

    /// At `maxConnections` an HTTPS client gets the 503 a plain client gets (README "HTTPS and
    /// tokens"): its handshake is completed on a loop, then the answer, then the close. Past 32 such
    /// refusals in their handshakes at once, a further client is only closed; the stalled ones time
    /// out as slow handshakes do.
    func testHTTPSClientAtTheConnectionCapGets503() throws {
        var limits = HTTPLimits()
        limits.maxConnections = 2
        limits.headerReadTimeout = 8
        let running = try start(limits: limits)
        defer { running.stop() }
        let a = try TestClient(port: running.port), b = try TestClient(port: running.port)
        XCTAssertTrue(eventually { running.server.metrics.openConnections == 2 })
        let refused = try https(running.port, "/api/health", ["-i"])
        XCTAssertTrue(refused.output.hasPrefix("HTTP/1.1 503"), refused.output)
        XCTAssertTrue(refused.output.contains("Retry-After: 5"), refused.output)
        XCTAssertTrue(refused.output.contains("\"code\":\"unavailable\""), refused.output)
        XCTAssertEqual(running.server.metrics.rejectedConnections, 1)
        XCTAssertTrue(eventually { running.server.metrics.openConnections == 2 }, "the refused connection is closed")

        // 32 clients past the cap that never finish their handshake hold the refusal slots ...
        var stalled: [TestClient] = []
        for _ in 0..<32 { stalled.append(try TestClient(port: running.port)) }
        XCTAssertTrue(eventually { running.server.metrics.openConnections == 34 })
        // ... so the next one is closed at once, without a handshake.
        let extra = try TestClient(port: running.port)
        XCTAssertTrue(extra.closedByPeer(within: 2))
        XCTAssertEqual(running.server.metrics.openConnections, 34)
        XCTAssertEqual(running.server.metrics.rejectedConnections, 34)
        // The stalled ones time out like slow handshakes; then an HTTPS client is refused with a 503 again.
        for client in stalled { XCTAssertTrue(client.closedByPeer(within: 15)) }
        XCTAssertTrue(eventually { running.server.metrics.openConnections <= 2 })
        _ = (a, b)
    }

    func testCertificateAndKeyErrorsNameTheFile() throws {
        XCTAssertThrowsError(try TLSServerContext(certificateFile: folder.file("missing.pem"), keyFile: certificate.key)) { error in
            XCTAssertTrue("\(error)".hasPrefix("--tls-cert \(folder.file("missing.pem")): not a readable PEM certificate"), "\(error)")
        }
        XCTAssertThrowsError(try TLSServerContext(certificateFile: certificate.certificate, keyFile: certificate.certificate)) { error in
            XCTAssertTrue("\(error)".hasPrefix("--tls-key \(certificate.certificate): not a readable PEM private key"), "\(error)")
        }
        let other = TempFolder(prefix: "tls-other")
        defer { other.remove() }
        let second = try TestCertificate(in: other.path)
        XCTAssertThrowsError(try TLSServerContext(certificateFile: certificate.certificate, keyFile: second.key)) { error in
            XCTAssertTrue("\(error)".contains("does not belong to the certificate"), "\(error)")
        }
    }
}
