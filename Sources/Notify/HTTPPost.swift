import Foundation
import PlantModel
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// What a receiver answered.
public struct HTTPAnswer: Sendable, Equatable {
    public var status: Int
    public var body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// Why a delivery attempt got no answer.
public struct DeliveryError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A minimal blocking HTTP/1.1 client for one POST per connection, over POSIX sockets.
///
/// Plain `http://` only, IPv4 hosts (or `localhost`); `Connection: close`. The connect and every
/// read are bounded by their timeouts, and the whole answer by `connectTimeoutMs + readTimeoutMs`
/// (a receiver trickling bytes cannot hold a lane). Runs on the caller's thread (a delivery lane).
public struct HTTPPost: Sendable {
    public var connectTimeoutMs: Int
    public var readTimeoutMs: Int
    /// Answers longer than this are cut (only the status and a short body matter).
    public var maxAnswerBytes = 65_536

    public init(connectTimeoutMs: Int = 2000, readTimeoutMs: Int = 5000) {
        self.connectTimeoutMs = connectTimeoutMs
        self.readTimeoutMs = readTimeoutMs
    }

    /// Sends `body` (JSON) to `url` with extra `headers`; returns the status and body, or throws ``DeliveryError``.
    public func post(_ url: HTTPURL, body: [UInt8], headers: [(String, String)]) throws -> HTTPAnswer {
        let deadline = Date().addingTimeInterval(Double(connectTimeoutMs + readTimeoutMs) / 1000)
        let fd: Int32
        do {
            fd = try Socket.connect(host: url.host, port: url.port, timeoutMs: connectTimeoutMs)
        } catch let error as SystemError {
            throw DeliveryError(error.errno == ETIMEDOUT ? "connect to \(url.host):\(url.port) timed out after \(connectTimeoutMs) ms"
                                                         : "connect to \(url.host):\(url.port): \(String(cString: strerror(error.errno)))")
        }
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: readTimeoutMs)
        var head = "POST \(url.path) HTTP/1.1\r\nHost: \(url.host):\(url.port)\r\nUser-Agent: LineMES-notify\r\n"
        head += "Content-Type: application/json; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        let request = Array(head.utf8) + body
        do {
            try request.withUnsafeBytes { try Socket.writeAll(fd, $0, context: "POST \(url)") }
        } catch let error as SystemError {
            throw DeliveryError(error.wouldBlock ? "sending to \(url) timed out" : "sending to \(url): \(String(cString: strerror(error.errno)))")
        }
        var parser = AnswerParser()
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            if Date() > deadline { throw DeliveryError("no complete answer from \(url) within \(connectTimeoutMs + readTimeoutMs) ms") }
            let n: Int
            do {
                n = try buffer.withUnsafeMutableBytes { try Socket.read(fd, into: $0) }
            } catch let error as SystemError {
                throw DeliveryError(error.wouldBlock ? "no answer from \(url) within \(readTimeoutMs) ms"
                                                     : "reading from \(url): \(String(cString: strerror(error.errno)))")
            }
            if n == 0 {
                if let answer = try parser.finishAtClose() { return answer }
                throw DeliveryError("\(url) closed the connection before a complete answer")
            }
            if let answer = try parser.feed(buffer[0..<n], limit: maxAnswerBytes) { return answer }
        }
    }
}

/// Reads an HTTP/1.1 answer: status line, headers, then a body by Content-Length, chunked, or until close.
struct AnswerParser {
    private var data: [UInt8] = []
    private var status: Int?
    private var bodyStart = 0
    private var contentLength: Int?
    private var chunked = false

    /// Adds bytes; the answer once complete, nil while more bytes are needed.
    mutating func feed(_ bytes: ArraySlice<UInt8>, limit: Int) throws -> HTTPAnswer? {
        data.append(contentsOf: bytes)
        if status == nil {
            guard let end = Self.find([13, 10, 13, 10], in: data) else {
                if data.count > limit { throw DeliveryError("answer headers longer than \(limit) bytes") }
                return nil
            }
            try parseHead(String(decoding: data[0..<end], as: UTF8.self))
            bodyStart = end + 4
        }
        guard let status else { return nil }
        let body = Array(data[bodyStart...])
        if let contentLength {
            if body.count >= contentLength { return HTTPAnswer(status: status, body: Array(body.prefix(contentLength))) }
        } else if chunked {
            if let decoded = try Self.dechunk(body) { return HTTPAnswer(status: status, body: decoded) }
        } else if status == 204 || status == 304 || (100..<200).contains(status) {
            return HTTPAnswer(status: status, body: [])
        }
        if body.count > limit { return HTTPAnswer(status: status, body: Array(body.prefix(limit))) }
        return nil
    }

    /// The peer closed: a close-delimited body is complete; anything else is cut short.
    func finishAtClose() throws -> HTTPAnswer? {
        guard let status, contentLength == nil, !chunked else { return nil }
        return HTTPAnswer(status: status, body: Array(data[bodyStart...]))
    }

    private mutating func parseHead(_ head: String) throws {
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]), (100...599).contains(code) else {
            throw DeliveryError("not an HTTP answer: \(lines[0].prefix(80))")
        }
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "content-length" {
                guard let length = Int(value), length >= 0 else { throw DeliveryError("bad Content-Length \(value)") }
                contentLength = length
            } else if name == "transfer-encoding", value.lowercased().contains("chunked") {
                chunked = true
            }
        }
        if chunked { contentLength = nil }
        status = code
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int = 0) -> Int? {
        guard haystack.count >= needle.count + start else { return nil }
        var i = start
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0] && Array(haystack[i..<i + needle.count]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// The body of a complete chunked encoding, or nil while incomplete.
    static func dechunk(_ bytes: [UInt8]) throws -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        while true {
            guard let lineEnd = find([13, 10], in: bytes, from: i) else { return nil }
            let sizeText = String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw DeliveryError("bad chunk size \(sizeText.prefix(20))")
            }
            let start = lineEnd + 2
            if size == 0 { return out }
            guard bytes.count >= start + size + 2 else { return nil }
            out.append(contentsOf: bytes[start..<start + size])
            i = start + size + 2
        }
    }
}
