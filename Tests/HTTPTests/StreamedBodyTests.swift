import Foundation
import XCTest
import Runtime
@testable import HTTP
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A body made piece by piece for a test: `pieces` pieces of `pieceBytes` bytes (byte value = piece
/// number), then the end, or a throw after `failAfter` pieces. Counts what was made and closed.
final class CountingProducer: BodyProducer, @unchecked Sendable {
    private let lock = NSLock()
    private var made = 0
    private var closes = 0
    let pieces: Int
    let pieceBytes: Int
    let failAfter: Int?

    init(pieces: Int, pieceBytes: Int = 100_000, failAfter: Int? = nil) {
        self.pieces = pieces
        self.pieceBytes = pieceBytes
        self.failAfter = failAfter
    }

    struct Failed: Error {}

    func produce(into out: inout [UInt8]) throws -> Bool {
        let n = lock.withLock { () -> Int in made += 1; return made }
        if let failAfter, n > failAfter { throw Failed() }
        out = [UInt8](repeating: UInt8(n % 251), count: pieceBytes)
        return n < pieces
    }

    func close() { lock.withLock { closes += 1 } }

    var counts: (made: Int, closes: Int) { lock.withLock { (made, closes) } }

    func expectedBody(_ count: Int) -> [UInt8] { (1...count).flatMap { [UInt8](repeating: UInt8($0 % 251), count: pieceBytes) } }
}

/// `HTTPReply.streamed`: chunks in order, the connection's next request after the body, back-pressure
/// on a client that does not read, the producer closed once whatever happens.
final class StreamedBodyTests: XCTestCase {
    func server(_ producer: @escaping @Sendable () -> CountingProducer) throws -> RunningServer {
        var router = Router()
        router.on(.get, "/export", options: .offLoop) { _ in
            .streamed(StreamedResponse(headers: ["Content-Type": "text/csv; charset=utf-8"], producer: producer()))
        }
        router.get("/after") { _ in .text("after") }
        return try RunningServer(router)
    }

    func testChunksInOrderThenThePipelinedRequest() throws {
        let producer = CountingProducer(pieces: 30)
        let running = try server { producer }
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /export HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        let (response, complete) = try client.readChunkedResponse()
        XCTAssertEqual(response.status, 200)
        XCTAssertTrue(complete)
        XCTAssertEqual(response.headers["Transfer-Encoding"], "chunked")
        XCTAssertEqual(response.headers["Content-Type"], "text/csv; charset=utf-8")
        XCTAssertNil(response.headers["Content-Length"])
        XCTAssertEqual(response.body, producer.expectedBody(30))
        let after = try client.readResponse()
        XCTAssertEqual(after.text, "after", "the pipelined request is answered after the whole body")
        XCTAssertTrue(eventually(timeout: 5) { producer.counts.closes == 1 })
        XCTAssertEqual(producer.counts.made, 30)
    }

    func testAClientThatStopsReadingGetsFewPiecesMadeAndLeavingClosesTheProducer() throws {
        let producer = CountingProducer(pieces: 1_000_000)
        let running = try server { producer }
        defer { running.stop() }
        let client = try TestClient(port: running.port, receiveBuffer: 4096)
        try client.send("GET /export HTTP/1.1\r\nHost: t\r\n\r\n")
        // Not reading: the socket buffers fill, then no more pieces are asked for.
        XCTAssertTrue(eventually(timeout: 10) { producer.counts.made >= 3 })
        // Wait until no piece has been made for 50 polls in a row (a condition, with a deadline).
        var last = -1, unchanged = 0
        XCTAssertTrue(eventually(timeout: 20) {
            let now = producer.counts.made
            unchanged = now == last ? unchanged + 1 : 0
            last = now
            return unchanged >= 50
        }, "pieces should stop being made while the client does not read")
        XCTAssertLessThan(producer.counts.made, 200, "pieces are made only while the client keeps up (\(producer.counts.made) of 100 KB)")
        XCTAssertEqual(producer.counts.closes, 0)
        Socket.close(client.fd)
        XCTAssertTrue(eventually(timeout: 10) { producer.counts.closes == 1 }, "the producer is closed when the client leaves")
    }

    func testAFailureTruncatesTheBody() throws {
        let producer = CountingProducer(pieces: 10, failAfter: 2)
        let running = try server { producer }
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /export HTTP/1.1\r\nHost: t\r\n\r\n")
        let (response, complete) = try client.readChunkedResponse()
        XCTAssertEqual(response.status, 200)
        XCTAssertFalse(complete, "no final chunk: the client can tell the body is cut")
        XCTAssertEqual(response.body, producer.expectedBody(2))
        XCTAssertTrue(eventually(timeout: 5) { producer.counts.closes == 1 })
    }

    func testHTTP10GetsTheBodyUntilCloseAndHEADOnlyTheHead() throws {
        let producer = CountingProducer(pieces: 3)
        let running = try server { producer }
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        try client.send("GET /export HTTP/1.0\r\n\r\n")
        XCTAssertTrue(client.closedByPeer(within: 10))
        let text = client.received
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        XCTAssertFalse(text.contains("Transfer-Encoding"))
        XCTAssertTrue(text.contains("Connection: close"))
        XCTAssertEqual(Array(text.utf8).count - (text.range(of: "\r\n\r\n")!.upperBound.utf16Offset(in: text)), 300_000)
        XCTAssertTrue(eventually(timeout: 5) { producer.counts.closes == 1 })

        let headProducer = CountingProducer(pieces: 3)
        let running2 = try server { headProducer }
        defer { running2.stop() }
        let head = try TestClient(port: running2.port)
        try head.send("HEAD /export HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        let answer = try head.readResponse(head: true)
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.headers["Transfer-Encoding"], "chunked")
        XCTAssertEqual(try head.readResponse().text, "after")
        XCTAssertTrue(eventually(timeout: 5) { headProducer.counts.closes == 1 })
        XCTAssertEqual(headProducer.counts.made, 0)
    }
}
