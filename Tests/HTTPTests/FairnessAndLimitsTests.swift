import Foundation
import XCTest
import Runtime
import TestSupport
@testable import HTTP
#if canImport(Glibc)
import Glibc
#endif

/// A gate a handler waits on until the test opens it.
private final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var open = false
    private var waiting = 0

    func wait() {
        condition.lock()
        waiting += 1
        condition.broadcast()
        while !open { condition.wait() }
        condition.unlock()
    }

    func openGate() {
        condition.lock(); open = true; condition.broadcast(); condition.unlock()
    }

    /// Waits until `n` handlers are inside ``wait()``.
    func waitForWaiters(_ n: Int, timeout: TimeInterval = 5) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock(); defer { condition.unlock() }
        while waiting < n {
            if !condition.wait(until: deadline) { return waiting >= n }
        }
        return true
    }
}

/// Events 1…n kept in an array indexed by id (pages are slices, so a resume from 0 costs the copy only).
private final class DenseStore: @unchecked Sendable {
    let events: [SSEEvent]
    init(count: Int) {
        events = (1...count).map { SSEEvent(id: Int64($0), type: "sample", data: "{\"n\":\($0),\"pad\":\"\(String(repeating: "x", count: 60))\"}") }
    }
    func page(after id: Int64, limit: Int) -> [SSEEvent] {
        let start = Int(max(0, id))
        guard start < events.count else { return [] }
        return Array(events[start..<min(events.count, start + limit)])
    }
}

final class FairnessAndLimitsTests: XCTestCase {
    // MARK: Deferred answers

    private func gatedRouter(_ gate: Gate) -> Router {
        var router = Router()
        router.get("/api/health") { _ in .json("{\"status\":\"ok\"}") }
        router.get("/fast/{n}") { .text("fast \($0.parameters["n"] ?? "")") }
        router.get("/slow/{n}", options: .offLoop) { request in
            gate.wait()
            return .text("slow \(request.parameters["n"] ?? "")")
        }
        router.post("/cmd", options: RouteOptions(lane: .command, precheck: { request in
            guard request.headers["Authorization"] == "Bearer good" else {
                throw HTTPError(401, "send Authorization: Bearer <token>", headers: ["WWW-Authenticate": "Bearer"])
            }
        })) { request in
            guard request.headers["Authorization"] == "Bearer good" else { throw HTTPError(401, "no") }
            if request.query["wait"] != nil { gate.wait() }
            return .text("done \(request.body.count)")
        }
        return router
    }

    func testDeferredAnswersKeepPipelinedOrderAndLeaveTheLoopFree() throws {
        let gate = Gate()
        let running = try RunningServer(gatedRouter(gate), loops: 1)
        defer { running.stop() }
        let pipelined = try TestClient(port: running.port)
        try pipelined.send("GET /slow/1 HTTP/1.1\r\nHost: t\r\n\r\nGET /fast/2 HTTP/1.1\r\nHost: t\r\n\r\nHEAD /slow/3 HTTP/1.1\r\nHost: t\r\n\r\nGET /fast/4 HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(gate.waitForWaiters(1))
        // The only loop answers another client while the slow handler waits on a worker.
        let other = try TestClient(port: running.port)
        try other.send("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try other.readResponse().status, 200)
        gate.openGate()
        let answers = try (0..<4).map { i in try pipelined.readResponse(head: i == 2) }
        XCTAssertEqual(answers.map(\.status), [200, 200, 200, 200])
        XCTAssertEqual(answers.map(\.text), ["slow 1", "fast 2", "", "fast 4"])
        XCTAssertEqual(answers[2].headers["Content-Length"], "6", "HEAD of a deferred GET carries the GET's length")
    }

    func testFullCommandQueueAnswers503WithRetryAfter() throws {
        let gate = Gate()
        var limits = HTTPLimits()
        limits.commandWorkers = 1
        limits.workerQueueLimit = 1
        let running = try RunningServer(gatedRouter(gate), limits: limits, loops: 1)
        defer { running.stop() }
        let request = "POST /cmd?wait=1 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        let first = try TestClient(port: running.port)
        try first.send(request)
        XCTAssertTrue(gate.waitForWaiters(1))
        let queued = try TestClient(port: running.port)
        try queued.send(request)
        usleep(100_000)
        let refused = try TestClient(port: running.port)
        try refused.send(request)
        let busy = try refused.readResponse()
        XCTAssertEqual(busy.status, 503)
        XCTAssertEqual(busy.headers["Retry-After"], "1")
        XCTAssertEqual(busy.errorCode, "unavailable")
        XCTAssertEqual(running.server.metrics.busyRefusals, 1)
        gate.openGate()
        XCTAssertEqual(try first.readResponse().text, "done 2")
        XCTAssertEqual(try queued.readResponse().text, "done 2")
    }

    // MARK: Bodies

    func testAuthorizationIsDecidedBeforeTheBodyAnd100ContinueIsSent() throws {
        let running = try RunningServer(gatedRouter(Gate()), loops: 1)
        defer { running.stop() }
        // No token: 401 from the head alone; the client never has to send its 100 KB.
        let anonymous = try TestClient(port: running.port)
        try anonymous.send("POST /cmd HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        let refused = try anonymous.readResponse()
        XCTAssertEqual(refused.status, 401)
        XCTAssertEqual(refused.headers["Connection"], "close")
        XCTAssertTrue(anonymous.closedByPeer(within: 5))
        // With the token: 100 Continue, then the body, then the answer.
        let allowed = try TestClient(port: running.port)
        try allowed.send("POST /cmd HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(try allowed.readResponse().status, 100)
        try allowed.send("hello")
        let done = try allowed.readResponse()
        XCTAssertEqual(done.status, 200)
        XCTAssertEqual(done.text, "done 5")
        // Without Expect, a refused body that is sent anyway still lets the client read the 401.
        let eager = try TestClient(port: running.port)
        try eager.send("POST /cmd HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n" + String(repeating: "z", count: 1000))
        XCTAssertEqual(try eager.readResponse().status, 401)
    }

    func testABodyMustArriveWithinTheBodyTimeout() throws {
        var limits = HTTPLimits()
        limits.bodyTimeout = 0.5
        let running = try RunningServer(gatedRouter(Gate()), limits: limits, loops: 1)
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("POST /cmd HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\nContent-Length: 10\r\n\r\nab")
        // A byte now and then does not keep it open: the deadline counts from the header.
        for _ in 0..<3 {
            usleep(150_000)
            try? client.send("c")
        }
        let answer = try client.readResponse(timeout: 10)
        XCTAssertEqual(answer.status, 408)
        XCTAssertEqual(answer.errorCode, "request_timeout")
        XCTAssertTrue(client.closedByPeer(within: 5))
    }

    func testBufferedBodiesShareOneBudget() throws {
        var limits = HTTPLimits()
        limits.maxBodyBytes = 800
        limits.maxBufferedBodyBytes = 1000
        let running = try RunningServer(gatedRouter(Gate()), limits: limits, loops: 1)
        defer { running.stop() }
        let head = "POST /cmd HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\nContent-Length: 800\r\n\r\n"
        let holder = try TestClient(port: running.port)
        try holder.send(head + "x")
        usleep(100_000)
        let second = try TestClient(port: running.port)
        try second.send(head + "y")
        let busy = try second.readResponse()
        XCTAssertEqual(busy.status, 503)
        XCTAssertEqual(busy.headers["Retry-After"], "1")
        // The holder finishes; its bytes go back to the budget.
        try holder.send(String(repeating: "x", count: 799))
        XCTAssertEqual(try holder.readResponse().text, "done 800")
        let third = try TestClient(port: running.port)
        try third.send(head + String(repeating: "z", count: 800))
        XCTAssertEqual(try third.readResponse().text, "done 800")
    }

    // MARK: Exact requests

    func testHostRulesAndAbsoluteForm() throws {
        var limits = HTTPLimits()
        limits.allowedHosts = ["good.example", "127.0.0.1"]
        let running = try RunningServer(gatedRouter(Gate()), limits: limits, loops: 1)
        defer { running.stop() }
        func status(_ request: String) throws -> (Int, String?) {
            let client = try TestClient(port: running.port)
            try client.send(request)
            let answer = try client.readResponse()
            return (answer.status, answer.errorCode)
        }
        XCTAssertEqual(try status("GET /api/health HTTP/1.1\r\n\r\n").0, 400, "HTTP/1.1 needs Host")
        XCTAssertEqual(try status("GET /api/health HTTP/1.0\r\n\r\n").0, 200, "HTTP/1.0 may omit it")
        let evil = try status("GET /api/health HTTP/1.1\r\nHost: rebind.attacker.example\r\n\r\n")
        XCTAssertEqual(evil.0, 421)
        XCTAssertEqual(evil.1, "misdirected_request")
        XCTAssertEqual(try status("GET /api/health HTTP/1.1\r\nHost: GOOD.example:8080\r\n\r\n").0, 200)
        XCTAssertEqual(try status("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:\(running.port)\r\n\r\n").0, 200)
        // Absolute form is accepted; its authority is the host that counts (RFC 9112 §3.2.2).
        XCTAssertEqual(try status("GET http://good.example:\(running.port)/fast/9?x=1 HTTP/1.1\r\nHost: other\r\n\r\n").0, 200)
        XCTAssertEqual(try status("GET http://rebind.attacker.example/api/health HTTP/1.1\r\nHost: good.example\r\n\r\n").0, 421)
        XCTAssertEqual(try status("GET /api/health HTTP/1.1\r\nHost: good.example\r\nHost: good.example\r\n\r\n").0, 400)
        let twice = try status("GET /api/health HTTP/1.1\r\nHost: good.example\r\nAuthorization: Bearer good\r\nAuthorization: Bearer evil\r\n\r\n")
        XCTAssertEqual(twice.0, 400, "a second Authorization header is refused, not ignored")
        // A refused host does not get its body read either.
        XCTAssertEqual(try status("POST /cmd HTTP/1.1\r\nHost: evil\r\nAuthorization: Bearer good\r\nContent-Length: 9000\r\n\r\n").0, 421)
    }

    func testPagesCarryFrameAndContentSecurityHeaders() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("pages-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try "<html></html>".write(to: root.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        let response = try StaticFiles(root: root.path).respond(to: HTTPRequest(method: .get, path: "/"))
        guard case .response(let page) = response else { return XCTFail("expected a response") }
        XCTAssertEqual(page.headers["X-Frame-Options"], "DENY")
        let csp = try XCTUnwrap(page.headers["Content-Security-Policy"])
        XCTAssertTrue(csp.contains("frame-ancestors 'none'"))
        XCTAssertTrue(csp.contains("script-src 'self'"))
        XCTAssertFalse(csp.contains("unsafe"))
    }

    // MARK: Event-stream queues

    func testEventStreamsShareATotalQueueBudget() throws {
        let hub = SSEHub()
        var limits = HTTPLimits()
        limits.sseClientBufferBytes = 1_000_000
        limits.sseTotalBufferBytes = 64 * 1024
        var router = Router()
        router.on(.get, "/api/events") { .eventStream(try SSEStream(request: $0, hub: hub, backlog: nil)) }
        let running = try RunningServer(router, limits: limits, loops: 1)
        defer { running.stop() }
        // A client that never reads, with a small receive buffer.
        let stalled = try TestClient(port: running.port, receiveBuffer: 4096)
        try stalled.send("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 1 })
        let payload = String(repeating: "p", count: 2000)
        var id: Int64 = 0
        XCTAssertTrue(eventually(timeout: 10) {
            for _ in 0..<20 { id += 1; hub.publish(SSEEvent(id: id, type: "sample", data: payload)) }
            return hub.metrics.droppedClients == 1
        }, "a client past the total budget is dropped although its own cap is far")
    }

    // MARK: Descriptors

    func testDescriptorReserveAndRateLimitedWarning() {
        XCTAssertEqual(DescriptorLimit.connectionCap(descriptors: 1024), 1024 - 128 - 64)
        XCTAssertEqual(DescriptorLimit.connectionCap(descriptors: 100), 16, "never below 16")
        XCTAssertGreaterThanOrEqual(DescriptorLimit.raiseToHard(), 1024)
        var warning = RateLimitedWarning(intervalNanoseconds: 10_000_000_000)
        XCTAssertEqual(warning.due(now: 1_000), 0, "the first is logged")
        for i in 1...500 { XCTAssertNil(warning.due(now: 1_000 + UInt64(i) * 1_000_000)) }
        XCTAssertEqual(warning.due(now: 11_000_000_000), 500, "the next one says how many were held back")
        XCTAssertNil(warning.due(now: 11_000_000_001))
    }

    // MARK: Fairness

    /// One client pipelines 50,000 requests and reads as fast as it can, another resumes from id 0
    /// in a loop: /api/health on the same (only) loop and a live event stream still get their turn.
    /// Bounds are generous (a shared test machine); tools/bench measures the figures.
    func testAPipelinerAndResumingClientsDoNotStarveTheLoop() throws {
        let hub = SSEHub()
        let store = DenseStore(count: 20_000)
        var router = Router()
        router.get("/api/health") { _ in .json("{\"status\":\"ok\"}") }
        router.on(.get, "/api/events") { request in
            .eventStream(try SSEStream(request: request, hub: hub, backlog: { store.page(after: $0, limit: $1) }))
        }
        let running = try RunningServer(router, loops: 1)
        defer { running.stop() }
        let stop = Flag()

        // The pipeliner: one write of 50,000 requests, read back as fast as possible.
        let pipelinedDone = Counter()
        let pipeliner = Thread {
            guard let client = try? TestClient(port: running.port) else { return }
            let request = Array("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(request.count * 50_000)
            for _ in 0..<50_000 { bytes += request }
            let batch = bytes
            let writer = Thread { try? client.send(batch) }
            writer.start()
            while !stop.isSet, pipelinedDone.value < 50_000 {
                guard (try? client.readResponse(timeout: 30)) != nil else { break }
                pipelinedDone.add(1)
            }
        }
        pipeliner.start()

        // The resumer: from id 0 to the end, again and again.
        let resumes = Counter()
        let resumeStarted = Counter()
        let resumer = Thread {
            let marker = Array("id: 20000\n".utf8)
            while !stop.isSet {
                guard let client = try? TestClient(port: running.port) else { return }
                try? client.send("GET /api/events?since=0 HTTP/1.1\r\nHost: t\r\n\r\n")
                resumeStarted.add(1)
                if client.readRaw(until: marker, timeout: 30, stop: { stop.isSet }) { resumes.add(1) }
            }
        }
        resumer.start()

        // A live client measuring its gaps while events are published every 20 ms.
        let live = try TestClient(port: running.port)
        try live.send("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(eventually { hub.metrics.connectedClients >= 1 })
        let publisher = Thread {
            var id: Int64 = 20_000
            while !stop.isSet {
                id += 1
                hub.publish(SSEEvent(id: id, type: "sample", data: "{\"live\":\(id)}"))
                usleep(20_000)
            }
        }
        publisher.start()
        // The live client's reader: the longest silence between two arrivals while health is measured.
        let measuring = Flag(), liveEvents = Counter(), worstGapNs = Counter()
        let liveReader = Thread {
            var chunk = [UInt8](repeating: 0, count: 65536)
            var last: UInt64?
            while !measuring.isSet {
                let n = chunk.withUnsafeMutableBytes { recv(live.fd, $0.baseAddress, $0.count, 0) }
                if n == 0 { return }
                guard n > 0 else { continue }
                let now = Monotonic.nanoseconds()
                let events = chunk[0..<n].split(separator: 10).filter { $0.starts(with: Array("id:".utf8)) }.count
                guard events > 0 else { continue }
                liveEvents.add(events)
                if let last, Int(now - last) > worstGapNs.value { worstGapNs.add(Int(now - last) - worstGapNs.value) }
                last = now
            }
        }
        liveReader.start()

        // Health latency while all of that runs.
        XCTAssertTrue(eventually(timeout: 30) { pipelinedDone.value > 100 && resumeStarted.value >= 1 }, "the attackers should be running")
        let pipelinedBefore = pipelinedDone.value
        let health = try TestClient(port: running.port)
        var latencies: [Double] = []
        for _ in 0..<100 {
            let began = Monotonic.nanoseconds()
            try health.send("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try health.readResponse(timeout: 30).status, 200)
            latencies.append(Double(Monotonic.nanoseconds() - began) / 1e6)
            usleep(10_000)
        }
        measuring.set()
        let seen = liveEvents.value
        let worstGap = Double(worstGapNs.value) / 1e6
        let pipelinedDuring = pipelinedDone.value - pipelinedBefore
        let resumesDuring = resumes.value
        stop.set()
        pipeliner.join(timeout: 60)
        resumer.join(timeout: 60)
        publisher.join(timeout: 5)
        liveReader.join(timeout: 5)
        latencies.sort()
        let p99 = latencies[Int(Double(latencies.count - 1) * 0.99)]
        print("fairness: health p99 \(p99) ms, worst live-event gap \(worstGap) ms, pipelined answers during the measurement \(pipelinedDuring), full resumes \(resumesDuring)")
        XCTAssertGreaterThan(pipelinedDuring, 0, "the pipeliner was served during the measurement")
        XCTAssertGreaterThanOrEqual(seen, 20, "the live client kept getting events")
        // Before the per-wakeup budget and the off-loop backlog, health waited up to 8 s here.
        XCTAssertLessThan(p99, 2000, "health p99 \(p99) ms")
        XCTAssertLessThan(worstGap, 3000, "live-event gap \(worstGap) ms")
    }
}

private extension TestClient {
    /// Reads raw bytes until `marker` has arrived (true), the peer closes, `stop` holds or `timeout` passes.
    func readRaw(until marker: [UInt8], timeout: TimeInterval, stop: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var tail: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline && !stop() {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return false }
            if n < 0 { continue }
            tail += chunk[0..<n]
            let window = tail.count >= marker.count ? tail.count - marker.count : 0
            for i in stride(from: 0, through: window, by: 1) where tail[i] == marker[0] {
                if i + marker.count <= tail.count && Array(tail[i..<(i + marker.count)]) == marker { return true }
            }
            tail = Array(tail.suffix(marker.count))
        }
        return false
    }
}

private extension Thread {
    /// Waits (polling) until the thread has finished, up to `timeout` seconds.
    func join(timeout: TimeInterval) {
        let deadline = Date().addingTimeInterval(timeout)
        while !isFinished && Date() < deadline { usleep(10_000) }
    }
}
