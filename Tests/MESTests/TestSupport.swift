import Foundation
import XCTest
import Runtime
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client on a raw socket (one request per connection).
struct TestHTTP {
    let port: UInt16

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: String
        var json: JSON? { try? JSON.parse(body) }
    }

    func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) throws -> Response {
        let fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000)
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: 10_000)
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        if let body {
            text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        }
        text += "\r\n" + (body ?? "")
        try Array(text.utf8).withUnsafeBytes { try Socket.writeAll(fd, $0) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try Socket.read(fd, into: $0) }
            if n == 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        let raw = String(decoding: data, as: UTF8.self)
        guard let split = raw.range(of: "\r\n\r\n") else { throw SystemError(call: "http", errno: EPROTO, context: "no header end in \(raw.prefix(200))") }
        let head = raw[..<split.lowerBound].split(separator: "\r\n")
        let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return Response(status: status, headers: headers, body: String(raw[split.upperBound...]))
    }

    func get(_ path: String, headers: [String: String] = [:]) throws -> Response { try request("GET", path, headers: headers) }
}

/// A server-sent events client on a raw socket.
final class TestSSEClient {
    struct Event: Equatable { var id: Int64; var type: String; var data: String }
    let fd: Int32
    private var buffer = ""

    init(port: UInt16, path: String = "/api/events", lastEventId: Int64? = nil) throws {
        fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000)
        Socket.setTimeouts(fd, milliseconds: 500)
        var text = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        if let lastEventId { text += "Last-Event-ID: \(lastEventId)\r\n" }
        text += "\r\n"
        try Array(text.utf8).withUnsafeBytes { try Socket.writeAll(fd, $0) }
    }

    deinit { Socket.close(fd) }

    /// Waits for the response head. The server attaches a stream before it answers, so every event
    /// published after this returned true reaches this client.
    func waitUntilSubscribed(timeout: TimeInterval = 10) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        return eventually(timeout: timeout) {
            if buffer.contains("\r\n\r\n") { return true }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { buffer += String(decoding: chunk[0..<n], as: UTF8.self) }
            return buffer.contains("\r\n\r\n")
        }
    }

    /// Reads events until `count` arrived or `timeout` passed.
    func read(count: Int, timeout: TimeInterval) -> [Event] {
        var events: [Event] = []
        let deadline = Date().addingTimeInterval(timeout)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while events.count < count && Date() < deadline {
            events.append(contentsOf: parse())
            if events.count >= count { break }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { buffer += String(decoding: chunk[0..<n], as: UTF8.self) }
            else if n == 0 { events.append(contentsOf: parse()); break }
        }
        return events
    }

    private func parse() -> [Event] {
        var events: [Event] = []
        if let headerEnd = buffer.range(of: "\r\n\r\n"), buffer.hasPrefix("HTTP/") {
            buffer.removeSubrange(buffer.startIndex..<headerEnd.upperBound)
        }
        while let end = buffer.range(of: "\n\n") {
            let block = buffer[buffer.startIndex..<end.lowerBound]
            buffer.removeSubrange(buffer.startIndex..<end.upperBound)
            var id: Int64?, type = "message", data = ""
            for line in block.split(separator: "\n") {
                if line.hasPrefix("id: ") { id = Int64(line.dropFirst(4)) }
                else if line.hasPrefix("event: ") { type = String(line.dropFirst(7)) }
                else if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            if let id { events.append(Event(id: id, type: type, data: data)) }
        }
        return events
    }
}
