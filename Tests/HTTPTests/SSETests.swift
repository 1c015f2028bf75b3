import Foundation
import BenchSupport
import XCTest
import Runtime
@testable import HTTP
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Stored events, as the storage would keep them: appended in id order, read by pages.
private final class EventStore: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [SSEEvent] = []
    private(set) var reads = 0

    func append(_ event: SSEEvent) {
        lock.lock(); events.append(event); lock.unlock()
    }

    func page(after id: Int64, limit: Int) -> [SSEEvent] {
        lock.lock(); defer { lock.unlock() }
        reads += 1
        return Array(events.lazy.filter { $0.id > id }.prefix(limit))
    }

    var readCount: Int { lock.lock(); defer { lock.unlock() }; return reads }
}

private func event(_ id: Int64) -> SSEEvent {
    SSEEvent(id: id, type: id % 2 == 0 ? "alert" : "sample", data: "{\"n\":\(id)}")
}

final class SSETests: XCTestCase {
    private func start(hub: SSEHub, store: EventStore = EventStore(), limits: HTTPLimits = HTTPLimits()) throws -> RunningServer {
        var router = Router()
        router.on(.get, "/api/events") { request in
            .eventStream(try SSEStream(request: request, hub: hub, backlog: { store.page(after: $0, limit: $1) }))
        }
        router.get("/api/health") { _ in .json("{}") }
        return try RunningServer(router, limits: limits)
    }

    func testLiveEventsReachConnectedClients() throws {
        let hub = SSEHub()
        let running = try start(hub: hub)
        defer { running.stop() }
        let a = try TestClient(port: running.port), b = try TestClient(port: running.port)
        try a.send("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
        try b.send("GET /api/events?types=alert HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 2 })
        for id in 1...6 { hub.publish(event(Int64(id))) }
        let all = try a.readEvents { $0.count >= 6 }
        XCTAssertEqual(all.map(\.id), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(all.first, TestClient.Event(id: 1, type: "sample", data: "{\"n\":1}"))
        let alerts = try b.readEvents { $0.count >= 3 }
        XCTAssertEqual(alerts.map(\.id), [2, 4, 6])
        XCTAssertTrue(alerts.allSatisfy { $0.type == "alert" })
        XCTAssertTrue(a.received.hasPrefix("HTTP/1.1 200 OK\r\n"))
        XCTAssertTrue(a.received.contains("Content-Type: text/event-stream\r\n"))
        XCTAssertTrue(a.received.contains("Cache-Control: no-cache\r\n"))
        XCTAssertTrue(a.received.contains("\r\n\r\nretry: 2000\n\n"))
        XCTAssertTrue(eventually { hub.metrics.eventsSent == 9 }, "events sent: \(hub.metrics.eventsSent)")
        XCTAssertEqual(hub.metrics.eventsPublished, 6)
        XCTAssertEqual(running.server.metrics.openConnections, 2)
    }

    /// Resume while events keep arriving: the client must see every id after its resume point once, in order.
    private func checkResume(request: (Int64) -> String, types: Set<String>?) throws {
        let hub = SSEHub()
        let store = EventStore()
        for id in 1...300 { store.append(event(Int64(id))) }
        var limits = HTTPLimits()
        limits.sseBacklogPageSize = 17
        let running = try start(hub: hub, store: store, limits: limits)
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        let last: Int64 = 1500
        // Live events go on while the client reads its backlog: ids from 800 on are published only
        // once the server has read the first backlog page.
        let publisher = Thread {
            for id in 301...last {
                if id == 800 { _ = eventually { store.readCount >= 1 } }
                store.append(event(id))   // persisted first, then published
                hub.publish(event(id))
            }
        }
        try client.send(request(100))
        publisher.start()
        let events = try client.readEvents(timeout: 20) { $0.last?.id == last || ($0.last?.id ?? 0) > last }
        let ids = events.compactMap(\.id)
        let expected = (101...last).filter { types == nil || types!.contains(event($0).type) }
        XCTAssertEqual(ids.count, expected.count)
        XCTAssertEqual(ids, expected, "gap or duplicate")
        XCTAssertTrue(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 })
        XCTAssertGreaterThanOrEqual(store.readCount, (300 - 100) / 17, "the backlog (at least ids 101...300) was read by pages of 17")
        XCTAssertTrue(eventually { !publisher.isExecuting })
    }

    func testResumeWithLastEventIDMissesNothingAndDuplicatesNothing() throws {
        try checkResume(request: { "GET /api/events HTTP/1.1\r\nHost: t\r\nLast-Event-ID: \($0)\r\n\r\n" }, types: nil)
    }

    func testResumeWithSinceAndTypeFilter() throws {
        try checkResume(request: { "GET /api/events?since=\($0)&types=alert HTTP/1.1\r\nHost: t\r\n\r\n" }, types: ["alert"])
    }

    func testResumeWithNothingStoredGetsLiveOnly() throws {
        let hub = SSEHub()
        let running = try start(hub: hub)
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /api/events?since=0 HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 1 })
        hub.publish(event(1))
        hub.publish(event(2))
        XCTAssertEqual(try client.readEvents { $0.count >= 2 }.map(\.id), [1, 2])
    }

    func testBadResumePointIs400() throws {
        let hub = SSEHub()
        let running = try start(hub: hub)
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /api/events HTTP/1.1\r\nHost: t\r\nLast-Event-ID: abc\r\n\r\n")
        let response = try client.readResponse()
        XCTAssertEqual(response.status, 400)
        XCTAssertEqual(response.errorCode, "bad_request")
    }

    func testSlowClientIsDroppedAndOthersKeepGoing() throws {
        let hub = SSEHub()
        var limits = HTTPLimits()
        limits.sseClientBufferBytes = 64 * 1024
        let running = try start(hub: hub, limits: limits)
        defer { running.stop() }
        let slow = try TestClient(port: running.port, receiveBuffer: 4096)
        try slow.send("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
        let fast = try TestClient(port: running.port)
        try fast.send("GET /api/events?types=alert HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 2 })
        let payload = String(repeating: "x", count: 1000)
        var published: Int64 = 0
        let reader = Thread {
            _ = try? fast.readEvents(timeout: 30) { $0.last?.id == 20000 }
        }
        reader.start()
        // The slow client never reads; publish until the server gives up on it (or 20 MB went out).
        while hub.metrics.droppedClients == 0 && published < 20000 {
            published += 1
            hub.publish(SSEEvent(id: published, type: "sample", data: "{\"pad\":\"\(payload)\"}"))
            // Let the loop catch up now and then (it writes or drops), so the count below means something.
            if published % 100 == 0 {
                let sent = published
                _ = eventually { hub.metrics.eventsSent >= Int(sent) || hub.metrics.droppedClients > 0 }
            }
        }
        XCTAssertTrue(eventually { hub.metrics.droppedClients == 1 })
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 1 })
        XCTAssertLessThan(published, 20000, "dropped only after \(published) events")
        // The server closed its side (the kernel may still hold bytes for the client to read).
        XCTAssertTrue(eventually { running.server.metrics.openConnections == 1 })
        print("slow client: dropped after \(published) events of 1 KB")
        _ = slow
        // The filtered client is still served.
        hub.publish(SSEEvent(id: 20000, type: "alert", data: "{}"))
        XCTAssertTrue(eventually(timeout: 10) { !reader.isExecuting })
        XCTAssertTrue(fast.received.contains("id: 20000\n"))
        XCTAssertEqual(hub.metrics.connectedClients, 1)
    }

    func testMaxSseClientsAnswers503() throws {
        let hub = SSEHub()
        var limits = HTTPLimits()
        limits.maxSseClients = 2
        let running = try start(hub: hub, limits: limits)
        defer { running.stop() }
        var clients: [TestClient] = []
        for _ in 0..<2 {
            let client = try TestClient(port: running.port)
            try client.send("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
            clients.append(client)
        }
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 2 })
        let extra = try TestClient(port: running.port)
        try extra.send("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
        let refused = try extra.readResponse()
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(refused.errorCode, "unavailable")
        // One leaves: there is room again.
        clients.removeFirst()
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 1 })
        try extra.send("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 2 })
        hub.publish(event(1))
        XCTAssertEqual(try extra.readEvents { !$0.isEmpty }.map(\.id), [1])
    }

    func testKeepAliveCommentsOnASilentStream() throws {
        let hub = SSEHub()
        var limits = HTTPLimits()
        limits.sseKeepAliveInterval = 0.2
        let running = try start(hub: hub, limits: limits)
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try client.readEvents(timeout: 2) { _ in client.received.components(separatedBy: ": keep-alive\n\n").count >= 3 }
        XCTAssertGreaterThanOrEqual(client.received.components(separatedBy: ": keep-alive\n\n").count, 3)
    }

    func testStopClosesStreamsAndCountsThemOut() throws {
        let hub = SSEHub()
        let running = try start(hub: hub)
        let client = try TestClient(port: running.port)
        try client.send("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 1 })
        running.stop()
        XCTAssertTrue(client.closedByPeer(within: 2))
        XCTAssertEqual(hub.metrics.connectedClients, 0)
        hub.publish(event(1)) // nobody attached any more: must not crash or block
    }

    /// Many idle streams stay cheap: resident memory per stream, measured over 1000 streams.
    func testIdleStreamsUseLittleMemory() throws {
        let hub = SSEHub()
        let running = try start(hub: hub)
        defer { running.stop() }
        // Warm up (threads, buffers), then measure.
        var fds: [Int32] = []
        defer { for fd in fds { Socket.close(fd) } }
        let request = Array("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
        func open(_ n: Int) throws {
            for _ in 0..<n {
                let fd = try Socket.connect(host: "127.0.0.1", port: running.port, timeoutMs: 2000)
                try request.withUnsafeBytes { try Socket.writeAll(fd, $0) }
                fds.append(fd)
            }
        }
        try open(50)
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 50 })
        let before = residentBytes()
        let count = 1000
        try open(count)
        XCTAssertTrue(eventually(timeout: 20) { hub.metrics.connectedClients == 50 + count })
        hub.publish(event(1))
        let after = residentBytes()
        let perClient = (after - before) / count
        print("idle SSE streams: \(perClient) bytes resident per stream (client sockets included)")
        XCTAssertLessThan(perClient, 16 * 1024)
    }
}
