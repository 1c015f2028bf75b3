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

/// A minimal blocking HTTP/1.1 client for POSTs, over POSIX sockets: the timeouts of every
/// delivery attempt. ``post(_:body:headers:)`` is one request on its own connection
/// (`Connection: close`); a delivery lane keeps one ``HTTPSession`` instead, whose connection
/// stays open between notifications.
///
/// `http://` and `https://` (TLS through OpenSSL, the receiver's certificate verified:
/// ``TLSClientContext``); IPv4 hosts, or names looked up on the caller's thread. The connect, the
/// TLS handshake and every read are bounded by their timeouts, and the whole answer by
/// `connectTimeoutMs + readTimeoutMs` (a receiver trickling bytes cannot hold a lane). Runs on the
/// caller's thread (a delivery lane).
public struct HTTPPost: Sendable {
    public var connectTimeoutMs: Int
    public var readTimeoutMs: Int
    /// Answers longer than this are cut (only the status and a short body matter).
    public var maxAnswerBytes = 65_536

    public init(connectTimeoutMs: Int = 2000, readTimeoutMs: Int = 5000) {
        self.connectTimeoutMs = connectTimeoutMs
        self.readTimeoutMs = readTimeoutMs
    }

    /// Sends `body` (JSON) to `url` with extra `headers` on a connection of its own; returns the
    /// status and body, or throws ``DeliveryError``.
    public func post(_ url: HTTPURL, body: [UInt8], headers: [(String, String)], caFile: String? = nil) throws -> HTTPAnswer {
        let session = HTTPSession(client: self, keepAlive: false, caFile: caFile)
        defer { session.close() }
        return try session.post(url, body: body, headers: headers)
    }

    /// The IPv4 address of `host` (a dotted address as it is; `localhost`; else a name looked up
    /// with `getaddrinfo`, blocking the caller).
    static func address(of url: HTTPURL) throws -> String {
        if url.hostIsIPv4 { return url.host }
        if url.host == "localhost" { return "127.0.0.1" }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(url.host, nil, &hints, &list)
        defer { if let list { freeaddrinfo(list) } }
        guard status == 0, let first = list, let address = first.pointee.ai_addr else {
            throw DeliveryError("cannot look up \(url.host): \(String(cString: gai_strerror(status)))")
        }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        let ok = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin -> Bool in
            var addr = sin.pointee.sin_addr
            return inet_ntop(AF_INET, &addr, &text, socklen_t(text.count)) != nil
        }
        guard ok else { throw DeliveryError("cannot look up \(url.host): no IPv4 address") }
        return String(cString: text)
    }
}

/// One kept-alive HTTP/1.1 connection for a run of POSTs to the same receiver (a delivery lane's).
///
/// The connection opens on the first POST and stays open while the receiver keeps it (an answer
/// with `Connection: close`, a close-delimited body, any error or timeout closes it; the next POST
/// opens a new one). A kept connection the receiver closed while idle fails before any byte of an
/// answer: that request is sent once more at once on a new connection (it cannot have been
/// answered, and it carries its `Idempotency-Key` either way). Not thread-safe: one lane owns it.
///
/// An `https://` receiver gets a TLS connection, kept alive the same way; its certificate is
/// verified against `caFile` (nil: the system's CA store) and its name against the URL's host. A
/// certificate that fails verification fails the attempt with `certificate verify failed (why)`.
public final class HTTPSession {
    public let client: HTTPPost
    public let keepAlive: Bool
    /// PEM certificates an `https://` receiver is verified against (nil: the system's CA store).
    public let caFile: String?
    private var fd: Int32 = -1
    private var peer: (host: String, port: UInt16, secure: Bool)?
    /// The TLS state of the open connection (an `https://` receiver's).
    private var tls: TLSClientConnection?
    /// Made at the first `https://` POST and kept for the session's life.
    private var tlsContext: TLSClientContext?
    /// Connections opened so far (a figure for the benchmarks).
    public private(set) var connections = 0

    public init(client: HTTPPost, keepAlive: Bool = true, caFile: String? = nil) {
        self.client = client
        self.keepAlive = keepAlive
        self.caFile = caFile
    }

    deinit { close() }

    /// Closes the connection, if one is open.
    public func close() {
        tls?.close()
        tls = nil
        if fd >= 0 { Socket.close(fd) }
        fd = -1
        peer = nil
    }

    /// The receiver closed a kept connection before answering: the request may be sent again.
    private struct StaleConnection: Error {}

    /// Sends `body` (JSON) to `url` with extra `headers`; returns the status and body, or throws ``DeliveryError``.
    public func post(_ url: HTTPURL, body: [UInt8], headers: [(String, String)]) throws -> HTTPAnswer {
        if fd >= 0, let peer, peer.host != url.host || peer.port != url.port || peer.secure != url.secure { close() }
        do {
            return try exchange(url, body: body, headers: headers, reused: fd >= 0)
        } catch is StaleConnection {
            close()
            return try exchange(url, body: body, headers: headers, reused: false)
        } catch {
            close()
            throw error
        }
    }

    private func exchange(_ url: HTTPURL, body: [UInt8], headers: [(String, String)], reused: Bool) throws -> HTTPAnswer {
        let connectTimeoutMs = client.connectTimeoutMs, readTimeoutMs = client.readTimeoutMs
        let deadline = Date().addingTimeInterval(Double(connectTimeoutMs + readTimeoutMs) / 1000)
        if fd < 0 {
            let address = try HTTPPost.address(of: url)
            do {
                fd = try Socket.connect(host: address, port: url.port, timeoutMs: connectTimeoutMs)
            } catch let error as SystemError {
                throw DeliveryError(error.errno == ETIMEDOUT ? "connect to \(url.host):\(url.port) timed out after \(connectTimeoutMs) ms"
                                                             : "connect to \(url.host):\(url.port): \(String(cString: strerror(error.errno)))")
            }
            peer = (url.host, url.port, url.secure)
            connections += 1
            if url.secure {
                // The handshake's reads and writes are bounded by the connect timeout.
                Socket.setTimeouts(fd, milliseconds: connectTimeoutMs)
                if tlsContext == nil { tlsContext = try TLSClientContext(caFile: caFile) }
                tls = try TLSClientConnection(context: tlsContext!, fd: fd, host: url.host, port: url.port, hostIsIPv4: url.hostIsIPv4)
            }
            Socket.setTimeouts(fd, milliseconds: readTimeoutMs)
        }
        var head = "POST \(url.path) HTTP/1.1\r\nHost: \(url.host):\(url.port)\r\nUser-Agent: LineMES-notify\r\n"
        head += "Content-Type: application/json; charset=utf-8\r\nContent-Length: \(body.count)\r\n"
        head += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        let request = Array(head.utf8) + body
        do {
            try request.withUnsafeBytes { bytes in
                if let tls { try tls.writeAll(bytes, context: "POST \(url)") } else { try Socket.writeAll(fd, bytes, context: "POST \(url)") }
            }
        } catch let error as SystemError {
            if reused && (error.errno == EPIPE || error.errno == ECONNRESET) { throw StaleConnection() }
            throw DeliveryError(error.wouldBlock ? "sending to \(url) timed out" : "sending to \(url): \(String(cString: strerror(error.errno)))")
        }
        var parser = AnswerParser()
        var buffer = [UInt8](repeating: 0, count: 8192)
        var received = 0
        while true {
            if Date() > deadline { throw DeliveryError("no complete answer from \(url) within \(connectTimeoutMs + readTimeoutMs) ms") }
            let n: Int
            do {
                n = try buffer.withUnsafeMutableBytes { bytes in
                    if let tls { return try tls.read(into: bytes, context: "answer of \(url)") }
                    return try Socket.read(fd, into: bytes)
                }
            } catch let error as SystemError {
                if reused && received == 0 && error.errno == ECONNRESET { throw StaleConnection() }
                throw DeliveryError(error.wouldBlock ? "no answer from \(url) within \(readTimeoutMs) ms"
                                                     : "reading from \(url): \(String(cString: strerror(error.errno)))")
            }
            if n == 0 {
                if reused && received == 0 { throw StaleConnection() }
                if let answer = try parser.finishAtClose() { close(); return answer }
                throw DeliveryError("\(url) closed the connection before a complete answer")
            }
            received += n
            if let answer = try parser.feed(buffer[0..<n], limit: client.maxAnswerBytes) {
                if !keepAlive || parser.closes { close() }
                return answer
            }
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
    /// The connection cannot carry another request: `Connection: close`, HTTP/1.0 without
    /// keep-alive, a close-delimited or cut body.
    private(set) var closes = false

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
        if body.count > limit { closes = true; return HTTPAnswer(status: status, body: Array(body.prefix(limit))) }
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
        var keepAlive = parts[0] != "HTTP/1.0"
        defer { if !keepAlive { closes = true } }
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "connection" {
                let tokens = value.lowercased()
                if tokens.contains("close") { keepAlive = false } else if tokens.contains("keep-alive") { keepAlive = true }
            }
            if name == "content-length" {
                guard let length = Int(value), length >= 0 else { throw DeliveryError("bad Content-Length \(value)") }
                contentLength = length
            } else if name == "transfer-encoding", value.lowercased().contains("chunked") {
                chunked = true
            }
        }
        if chunked { contentLength = nil }
        // Without a length (and not a body-less status) the body runs until the receiver closes.
        if contentLength == nil && !chunked && !(code == 204 || code == 304 || (100..<200).contains(code)) { keepAlive = false }
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
