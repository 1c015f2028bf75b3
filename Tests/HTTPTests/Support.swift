import Foundation
import XCTest
import Runtime
@testable import HTTP
#if canImport(Glibc)
import Glibc
#endif

/// A server running in a task; ``stop()`` cancels it and waits until every socket and thread is gone.
final class RunningServer: @unchecked Sendable {
    let server: HTTPServer
    let port: UInt16
    private let task: Task<Void, any Error>
    private let finished = DispatchSemaphore(value: 0)

    init(_ responder: any HTTPResponder, limits: HTTPLimits = HTTPLimits(), loops: Int = 2, logSink: LogSink = LogSink(capture: true),
         tls: TLSServerContext? = nil) throws {
        server = HTTPServer(port: 0, responder: responder, limits: limits, loops: loops,
                            logger: Logger(label: "http-test", level: .debug, sink: logSink), tls: tls)
        port = try server.bind()
        let server = self.server, finished = self.finished
        task = Task {
            defer { finished.signal() }
            try await server.run()
        }
    }

    func stop(file: StaticString = #filePath, line: UInt = #line) {
        task.cancel()
        XCTAssertEqual(finished.wait(timeout: .now() + 10), .success, "server did not stop", file: file, line: line)
    }
}

/// A blocking test client over a real socket (used by one thread at a time).
final class TestClient: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16, receiveBuffer: Int32? = nil) throws {
        fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000)
        if var size = receiveBuffer {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        Socket.setTimeouts(fd, milliseconds: 200)
    }

    deinit { Socket.close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try Socket.writeAll(fd, $0, context: "test client") }
    }

    /// Reads more bytes; false if the peer closed. Throws on timeout of `seconds`.
    @discardableResult
    private func fill(deadline: Date) throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { buffer.append(contentsOf: chunk[0..<n]); return true }
            if n == 0 { return false }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
            if errno == ECONNRESET { return false }
            throw SystemError(call: "recv", errno: errno, context: "test client")
        }
        throw SystemError(call: "recv", errno: ETIMEDOUT, context: "test client")
    }

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] }
        var errorCode: String? { (json?["error"] as? [String: Any])?["code"] as? String }
    }

    /// Reads one response (Content-Length framed; `head` for a HEAD answer).
    func readResponse(head: Bool = false, timeout: TimeInterval = 5) throws -> Response {
        let deadline = Date().addingTimeInterval(timeout)
        var headerEnd: Int?
        while headerEnd == nil {
            if let range = findHeaderEnd() { headerEnd = range; break }
            guard try fill(deadline: deadline) else { throw SystemError(call: "recv", errno: ECONNRESET, context: "closed before a response") }
        }
        let end = headerEnd!
        let lines = String(decoding: buffer[0..<end], as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let statusParts = lines[0].split(separator: " ")
        let status = Int(statusParts[1]) ?? -1
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            let colon = line.firstIndex(of: ":")!
            headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let length = head ? 0 : Int(headers["Content-Length"] ?? "0")!
        while buffer.count < end + length {
            guard try fill(deadline: deadline) else { throw SystemError(call: "recv", errno: ECONNRESET, context: "closed in a body") }
        }
        let body = Array(buffer[end..<(end + length)])
        buffer.removeSubrange(0..<(end + length))
        return Response(status: status, headers: headers, body: body)
    }

    /// Reads one `Transfer-Encoding: chunked` response: its head and the decoded body; `complete`
    /// is false when the connection closed before the last chunk.
    func readChunkedResponse(timeout: TimeInterval = 10) throws -> (response: Response, complete: Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        var headerEnd: Int?
        while headerEnd == nil {
            if let range = findHeaderEnd() { headerEnd = range; break }
            guard try fill(deadline: deadline) else { throw SystemError(call: "recv", errno: ECONNRESET, context: "closed before a response") }
        }
        let lines = String(decoding: buffer[0..<headerEnd!], as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        var response = Response(status: Int(lines[0].split(separator: " ")[1]) ?? -1, headers: HTTPHeaders(), body: [])
        for line in lines.dropFirst() {
            let colon = line.firstIndex(of: ":")!
            response.headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        buffer.removeSubrange(0..<headerEnd!)
        while true {
            var lineEnd: Int?
            while lineEnd == nil {
                lineEnd = buffer.indices.dropLast().first { buffer[$0] == 13 && buffer[$0 + 1] == 10 }
                if lineEnd == nil, try !fill(deadline: deadline) { return (response, false) }
            }
            let size = Int(String(decoding: buffer[0..<lineEnd!], as: UTF8.self), radix: 16) ?? -1
            buffer.removeSubrange(0..<(lineEnd! + 2))
            if size == 0 {
                while buffer.count < 2 { if try !fill(deadline: deadline) { return (response, false) } }
                buffer.removeSubrange(0..<2)
                return (response, true)
            }
            while buffer.count < size + 2 { if try !fill(deadline: deadline) { return (response, false) } }
            response.body += buffer[0..<size]
            buffer.removeSubrange(0..<(size + 2))
        }
    }

    private func findHeaderEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i + 4
        }
        return nil
    }

    /// True if the server closes the connection within `seconds` (bytes sent meanwhile are kept).
    func closedByPeer(within seconds: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            do {
                if try !fill(deadline: deadline) { return true }
            } catch {
                return false
            }
        }
        return false
    }

    /// Everything received so far, as text.
    var received: String { String(decoding: buffer, as: UTF8.self) }

    struct Event: Equatable {
        var id: Int64?
        var type: String?
        var data: String
    }

    /// Reads event-stream bytes until `done(events)` holds; returns the parsed events (comments dropped).
    func readEvents(timeout: TimeInterval = 10, until done: ([Event]) -> Bool) throws -> [Event] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let events = parseEvents()
            if done(events) { return events }
            guard try fill(deadline: deadline) else { return parseEvents() }
        }
    }

    private func parseEvents() -> [Event] {
        let text = received
        guard let start = text.range(of: "\r\n\r\n") else { return [] }
        var events: [Event] = []
        for block in text[start.upperBound...].components(separatedBy: "\n\n").dropLast() {
            var event = Event(id: nil, type: nil, data: "")
            var any = false
            for line in block.split(separator: "\n") where !line.hasPrefix(":") {
                if line.hasPrefix("id: ") { event.id = Int64(line.dropFirst(4)); any = true }
                if line.hasPrefix("event: ") { event.type = String(line.dropFirst(7)); any = true }
                if line.hasPrefix("data: ") { event.data += String(line.dropFirst(6)); any = true }
            }
            if any && event.id != nil { events.append(event) }
        }
        return events
    }
}
