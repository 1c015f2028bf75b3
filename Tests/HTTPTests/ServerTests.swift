import Foundation
import XCTest
import Runtime
@testable import HTTP
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

private struct Boom: Error {}

final class ServerTests: XCTestCase {
    private func router() -> Router {
        var router = Router()
        router.get("/api/health") { _ in .json("{\"status\":\"ok\"}") }
        router.get("/echo/{a}/x/{b}") { request in
            .text("\(request.parameters["a"] ?? "-")|\(request.parameters["b"] ?? "-")|\(request.query["q"] ?? "")")
        }
        router.post("/echo") { request in .text("posted:" + request.bodyText, status: 201) }
        router.get("/path/{p}") { request in .text(request.path) }
        router.post("/vehicles/{id}/hold") { request in
            throw HTTPError.conflict("vehicle \(request.parameters["id"]!) is already on hold")
        }
        router.get("/boom") { _ in throw Boom() }
        return router
    }

    func testKeepAliveAndPipelinedRequestsAnsweredInOrder() throws {
        let running = try RunningServer(router())
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /path/one HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcGET /path/three HTTP/1.1\r\nHost: t\r\n\r\n")
        let a = try client.readResponse(), b = try client.readResponse(), c = try client.readResponse()
        XCTAssertEqual([a.status, b.status, c.status], [200, 201, 200])
        XCTAssertEqual([a.text, b.text, c.text], ["/path/one", "posted:abc", "/path/three"])
        XCTAssertNil(a.headers["Connection"])
        // The same connection keeps serving, also split across writes (byte-by-byte splits: ParserTests).
        try client.send("GET /api/hea")
        try client.send("lth HTTP/1.1\r\nHost: t\r\n\r\n")
        let d = try client.readResponse()
        XCTAssertEqual(d.text, "{\"status\":\"ok\"}")
        XCTAssertEqual(d.headers["Content-Type"], "application/json; charset=utf-8")
        // Connection: close is honoured after the answer.
        try client.send("GET /api/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let e = try client.readResponse()
        XCTAssertEqual(e.status, 200)
        XCTAssertEqual(e.headers["Connection"], "close")
        XCTAssertTrue(client.closedByPeer(within: 2))
        XCTAssertEqual(running.server.metrics.responsesByClass[2], 5)
    }

    func testHTTP10ClosesUnlessKeepAlive() throws {
        let running = try RunningServer(router())
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /api/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(try client.readResponse().headers["Connection"], "keep-alive")
        try client.send("GET /api/health HTTP/1.0\r\n\r\n")
        XCTAssertEqual(try client.readResponse().status, 200)
        XCTAssertTrue(client.closedByPeer(within: 2))
    }

    func testRouterParametersAnd404And405AsJSON() throws {
        let running = try RunningServer(router())
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /echo/A%20B/x/c%2Fd?q=1+2 HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.readResponse().text, "A B|c/d|1 2")
        try client.send("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
        let missing = try client.readResponse()
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.errorCode, "not_found")
        XCTAssertNotNil((missing.json?["error"] as? [String: Any])?["message"] as? String)
        try client.send("DELETE /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
        let wrong = try client.readResponse()
        XCTAssertEqual(wrong.status, 405)
        XCTAssertEqual(wrong.errorCode, "method_not_allowed")
        XCTAssertEqual(wrong.headers["Allow"], "GET, HEAD")
        try client.send("HEAD /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = try client.readResponse(head: true)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.headers["Content-Length"], "15")
        try client.send("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n") // nothing of the HEAD body was sent
        XCTAssertEqual(try client.readResponse().text, "{\"status\":\"ok\"}")
    }

    func testThrownHTTPErrorAndOtherErrors() throws {
        let sink = LogSink(capture: true)
        let running = try RunningServer(router(), logSink: sink)
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("POST /vehicles/V1/hold HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        let conflict = try client.readResponse()
        XCTAssertEqual(conflict.status, 409)
        XCTAssertEqual(conflict.errorCode, "conflict")
        XCTAssertEqual((conflict.json?["error"] as? [String: Any])?["message"] as? String, "vehicle V1 is already on hold")
        try client.send("GET /boom HTTP/1.1\r\nHost: t\r\n\r\n")
        let failure = try client.readResponse()
        XCTAssertEqual(failure.status, 500)
        XCTAssertEqual(failure.errorCode, "internal")
        XCTAssertTrue(sink.lines.contains { $0.contains("GET /boom failed") && $0.contains("error") })
        XCTAssertEqual(running.server.metrics.responsesByClass[4], 1)
        XCTAssertEqual(running.server.metrics.responsesByClass[5], 1)
    }

    func testMiddlewareWrapsTheRouter() throws {
        let auth = ClosureMiddleware { request, next in
            guard request.headers["Authorization"] == "Bearer good" else { throw HTTPError.unauthorized("a token is needed") }
            var reply = try next(request)
            if case .response(var response) = reply {
                response.headers.add("X-User", "li.wei")
                reply = .response(response)
            }
            return reply
        }
        let running = try RunningServer(MiddlewareChain([auth], responder: router()))
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
        let denied = try client.readResponse()
        XCTAssertEqual(denied.status, 401)
        XCTAssertEqual(denied.errorCode, "unauthorized")
        try client.send("GET /api/health HTTP/1.1\r\nHost: t\r\nauthorization: Bearer good\r\n\r\n")
        let allowed = try client.readResponse()
        XCTAssertEqual(allowed.status, 200)
        XCTAssertEqual(allowed.headers["X-User"], "li.wei")
    }

    func testProtocolErrorsAnswerAndClose() throws {
        var limits = HTTPLimits()
        limits.maxHeaderBytes = 512
        limits.maxBodyBytes = 100
        let running = try RunningServer(router(), limits: limits)
        defer { running.stop() }
        let cases: [(String, Int, String)] = [
            ("NONSENSE\r\n\r\n", 400, "bad_request"),
            ("BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", 501, "not_implemented"),
            ("GET / HTTP/1.1\r\nHost: t\r\nX: " + String(repeating: "y", count: 600) + "\r\n\r\n", 431, "headers_too_large"),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n", 413, "payload_too_large"),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "length_required"),
        ]
        for (text, status, code) in cases {
            let client = try TestClient(port: running.port)
            try client.send(text)
            let response = try client.readResponse()
            XCTAssertEqual(response.status, status, text)
            XCTAssertEqual(response.errorCode, code, text)
            XCTAssertEqual(response.headers["Connection"], "close")
            XCTAssertTrue(client.closedByPeer(within: 2), text)
        }
        XCTAssertEqual(running.server.metrics.responses(class: 4), 4)
        XCTAssertEqual(running.server.metrics.responses(class: 5), 1)
        XCTAssertTrue(eventually { running.server.metrics.openConnections == 0 })
    }

    func testHeaderReadTimeoutClosesSlowClient() throws {
        var limits = HTTPLimits()
        limits.headerReadTimeout = 0.3
        let running = try RunningServer(router(), limits: limits)
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /api/health HTTP/1.1\r\nHost: slow")
        let started = Date()
        XCTAssertTrue(client.closedByPeer(within: 3))
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThan(elapsed, 0.2, "not closed before the 0.3 s timeout")
        XCTAssertFalse(client.received.contains("200"))
        XCTAssertTrue(eventually { running.server.metrics.openConnections == 0 })
    }

    func testIdleKeepAliveConnectionIsClosed() throws {
        var limits = HTTPLimits()
        limits.idleTimeout = 0.3
        let running = try RunningServer(router(), limits: limits)
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.readResponse().status, 200)
        let started = Date()
        XCTAssertTrue(client.closedByPeer(within: 3))
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.2)
        // An active connection is not closed early: requests every 0.1 s for 0.6 s.
        let busy = try TestClient(port: running.port)
        for _ in 0..<6 {
            try busy.send("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try busy.readResponse().status, 200)
            usleep(100_000) // real time must pass: the idle timer runs on the monotonic clock, not an injectable one
        }
    }

    func testMaxConnectionsAnswers503() throws {
        var limits = HTTPLimits()
        limits.maxConnections = 2
        let running = try RunningServer(router(), limits: limits)
        defer { running.stop() }
        let a = try TestClient(port: running.port), b = try TestClient(port: running.port)
        XCTAssertTrue(eventually { running.server.metrics.openConnections == 2 })
        let c = try TestClient(port: running.port)
        let refused = try c.readResponse()
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(refused.errorCode, "unavailable")
        XCTAssertTrue(c.closedByPeer(within: 2))
        try a.send("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try a.readResponse().status, 200)
        _ = b
        XCTAssertEqual(running.server.metrics.rejectedConnections, 1)
    }

    func testBindFailureIsOneLineAndRunStopsCleanly() throws {
        let first = try RunningServer(router())
        defer { first.stop() }
        let second = HTTPServer(port: first.port, responder: router(), logger: Logger(label: "t", sink: LogSink(capture: true)))
        XCTAssertThrowsError(try second.bind()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bind") && text.contains("\(first.port)"), text)
            XCTAssertFalse(text.contains("\n"))
        }
        let bad = HTTPServer(host: "not-an-ip", port: 0, responder: router(), logger: Logger(label: "t", sink: LogSink(capture: true)))
        XCTAssertThrowsError(try bad.bind())
    }

    func testStopClosesOpenConnections() throws {
        let running = try RunningServer(router())
        let client = try TestClient(port: running.port)
        try client.send("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.readResponse().status, 200)
        running.stop()
        XCTAssertTrue(client.closedByPeer(within: 2))
        XCTAssertThrowsError(try TestClient(port: running.port))
    }
}
