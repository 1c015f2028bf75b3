import Foundation
import XCTest
import Runtime
@testable import HTTP
import TestSupport

/// Events published in batches (one per storage commit) and their wire form.
final class SSEBatchTests: XCTestCase {
    /// The wire form as it was built from Characters before it was built from bytes.
    private func characterWise(_ event: SSEEvent) -> String {
        var text = "id: \(event.id)\nevent: "
        text += event.type.filter { !$0.isNewline }
        text += "\n"
        for line in event.data.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            text += "data: " + line + "\n"
        }
        return text + "\n"
    }

    func testEncodingMatchesTheCharacterWiseForm() {
        let datas = ["{\"a\":1}", "", "a\nb", "a\r\nb", "a\rb", "x\u{0B}y\u{0C}z", "a\u{85}b", "a\u{2028}b\u{2029}c",
                     "中文 → … — ok", "\u{E2}", "é\u{C2}", "\n", "tail\n", "\u{1}\u{7F}", "{\"name\":\"焊接\"}",
                     String(repeating: "{\"a\":12345}", count: 5), String(repeating: "x", count: 37) + "\n" + String(repeating: "y", count: 20),
                     String(repeating: "z", count: 15) + "\u{2028}" + String(repeating: "w", count: 30),
                     String(repeating: "q", count: 22) + "\u{85}", String(repeating: "v", count: 7) + "\r" + String(repeating: "u", count: 64)]
        let types = ["sample", "al\nert", "x\u{2028}", "类型"]
        var id: Int64 = -3
        for type in types {
            for data in datas {
                id += 7
                let event = SSEEvent(id: id, type: type, data: data)
                XCTAssertEqual(String(decoding: event.encoded, as: UTF8.self), characterWise(event), "\(type) \(data.debugDescription)")
            }
        }
        var bytes: [UInt8] = Array("x".utf8)
        SSEEvent(id: 5, type: "t", data: "{}").append(to: &bytes)
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "xid: 5\nevent: t\ndata: {}\n\n")
    }

    /// A commit's worth of events in one publish: every client gets its share in order, once;
    /// a resuming client gets the stored ones first, then the live ones without a gap.
    func testBatchesReachEveryClientInOrder() throws {
        let hub = SSEHub()
        let stored = (1...300).map { SSEEvent(id: Int64($0), type: $0 % 3 == 0 ? "alert" : "sample", data: "{\"n\":\($0)}") }
        var router = Router()
        router.on(.get, "/api/events") { request in
            .eventStream(try SSEStream(request: request, hub: hub, backlog: { after, limit in
                Array(stored.lazy.filter { $0.id > after }.prefix(limit))
            }))
        }
        let running = try RunningServer(router)
        defer { running.stop() }
        let all = try TestClient(port: running.port)
        let alerts = try TestClient(port: running.port)
        try all.send("GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
        try alerts.send("GET /api/events?types=alert HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 2 })
        var next: Int64 = 301
        for size in [1, 2, 50, 500, 3] {
            hub.publish((0..<size).map { offset in
                let id = next + Int64(offset)
                return SSEEvent(id: id, type: id % 3 == 0 ? "alert" : "sample", data: "{\"n\":\(id),\"pad\":\"\(String(repeating: "p", count: Int(id % 200)))\"}")
            })
            next += Int64(size)
        }
        let last = next - 1
        let received = try all.readEvents { $0.last?.id == last }
        XCTAssertEqual(received.compactMap(\.id), Array(301...last))
        XCTAssertEqual(received.last?.data, "{\"n\":\(last),\"pad\":\"\(String(repeating: "p", count: Int(last % 200)))\"}")
        let alertIds = try alerts.readEvents { $0.last?.id == (last / 3) * 3 }.compactMap(\.id)
        XCTAssertEqual(alertIds, Array(301...last).filter { $0 % 3 == 0 })
        XCTAssertEqual(hub.metrics.eventsPublished, Int(last - 300))

        // Resuming from 250: stored 251…300, then the live ones published meanwhile.
        let resumer = try TestClient(port: running.port)
        try resumer.send("GET /api/events HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 250\r\n\r\n")
        XCTAssertTrue(eventually { hub.metrics.connectedClients == 3 })
        hub.publish([SSEEvent(id: next, type: "sample", data: "{}"), SSEEvent(id: next + 1, type: "alert", data: "{}")])
        let resumed = try resumer.readEvents { $0.last?.id == next + 1 }.compactMap(\.id)
        XCTAssertEqual(resumed.prefix(50), ArraySlice(251...300))
        XCTAssertEqual(resumed.suffix(2), [next, next + 1])
        XCTAssertEqual(Set(resumed).count, resumed.count)
        // Nothing between the stored ones and the live ones was published, so nothing else came.
        XCTAssertEqual(resumed.count, 52)
        hub.publish([SSEEvent]())
        XCTAssertEqual(hub.metrics.eventsPublished, Int(last - 300) + 2)
    }
}
