/// A request the parser could not accept: the status to answer with before closing the connection.
public struct HTTPParseError: Error, Sendable, Equatable {
    public var status: Int
    public var message: String
    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }
}

/// An incremental HTTP/1.1 request parser: feed it bytes, ask it for the next request.
///
/// Pure (no I/O, no clock). Pipelined requests come out one per ``next(remoteAddress:)`` call in
/// order; split reads are fine at any byte boundary. After an error the parser stays failed: answer
/// the error and close. Request bodies need `Content-Length`; `Transfer-Encoding` (chunked) answers
/// 411 Length Required, because a body without a length cannot be delimited here.
public struct HTTPRequestParser: Sendable {
    /// What ``next(remoteAddress:)`` found.
    public enum Result: Sendable {
        case needMore
        case request(HTTPRequest)
        case error(HTTPParseError)
    }

    /// Where the parser is within the current request (for timeouts).
    public enum Phase: Sendable, Equatable {
        /// No byte of a next request yet.
        case idle
        /// Inside the request line or header block.
        case header
        /// Header done, body bytes still missing.
        case body
    }

    private let maxHeaderBytes: Int
    private let maxBodyBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0          // first byte of the current request in `buffer`
    private var scanned = 0        // bytes of the header block already searched for its end
    private var pendingHead: Head?  // parsed header waiting for its body
    private var failed: HTTPParseError?

    private struct Head {
        var method: HTTPMethod
        var rawTarget: String
        var headers: HTTPHeaders
        var isHTTP11: Bool
        var keepAlive: Bool
        var bodyLength: Int
        var bodyStart: Int
    }

    public init(maxHeaderBytes: Int = 16384, maxBodyBytes: Int = 1_048_576) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    public init(limits: HTTPLimits) {
        self.init(maxHeaderBytes: limits.maxHeaderBytes, maxBodyBytes: limits.maxBodyBytes)
    }

    /// Appends received bytes.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 65536)
            start = 0
            scanned = 0
            pendingHead?.bodyStart = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Appends received bytes.
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        Array(bytes).withUnsafeBytes { append($0) }
    }

    /// Where the current request stands.
    public var phase: Phase {
        if pendingHead != nil { return .body }
        return start < buffer.count ? .header : .idle
    }

    /// Bytes received and not yet handed out as a request.
    public var bufferedBytes: Int { buffer.count - start }

    /// Drops every buffered byte and its storage (a connection that became an event stream).
    public mutating func discardAll() {
        buffer = []
        start = 0
        scanned = 0
        pendingHead = nil
    }

    /// The next complete request, `.needMore`, or the error that ends this connection.
    public mutating func next(remoteAddress: String = "") -> Result {
        if let failed { return .error(failed) }
        if pendingHead == nil {
            switch parseHead() {
            case .needMore: return .needMore
            case .failed(let error):
                failed = error
                return .error(error)
            case .done: break
            }
        }
        guard let head = pendingHead else { return .needMore }
        guard buffer.count - head.bodyStart >= head.bodyLength else { return .needMore }
        let body = head.bodyLength == 0 ? [] : Array(buffer[head.bodyStart..<(head.bodyStart + head.bodyLength)])
        start = head.bodyStart + head.bodyLength
        scanned = start
        pendingHead = nil
        compact()
        let (path, query): (String, [String: String])
        switch Self.splitTarget(head.rawTarget) {
        case .success(let parts): (path, query) = parts
        case .failure(let error):
            failed = error
            return .error(error)
        }
        let rawPath = head.rawTarget.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return .request(HTTPRequest(method: head.method, path: path, rawPath: rawPath, query: query, headers: head.headers,
                                    body: body, remoteAddress: remoteAddress, isHTTP11: head.isHTTP11, keepAlive: head.keepAlive))
    }

    private mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 65536)
            start = 0
            scanned = 0
        } else if start > 4096 && start > buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            scanned -= start
            start = 0
        }
    }

    private enum HeadResult { case needMore, done, failed(HTTPParseError) }

    /// Finds the end of the header block and parses it into `pendingHead`.
    private mutating func parseHead() -> HeadResult {
        // Leading empty lines before a request line are ignored (RFC 9112 §2.2).
        while start < buffer.count, buffer[start] == 13 || buffer[start] == 10 {
            start += 1
        }
        if scanned < start { scanned = start }
        var end = -1        // index just past the blank line
        var i = scanned
        while i < buffer.count {
            if buffer[i] == 10 {
                // A blank line: "\n\n" or "\n\r\n".
                if i + 1 < buffer.count && buffer[i + 1] == 10 { end = i + 2; break }
                if i + 2 < buffer.count && buffer[i + 1] == 13 && buffer[i + 2] == 10 { end = i + 3; break }
                if i + 2 >= buffer.count { break } // wait for the bytes after this line break
            }
            i += 1
        }
        if end < 0 {
            scanned = max(start, min(i, buffer.count) )
            if buffer.count - start > maxHeaderBytes {
                return .failed(HTTPParseError(431, "the request header is larger than \(maxHeaderBytes) bytes"))
            }
            return .needMore
        }
        if end - start > maxHeaderBytes {
            return .failed(HTTPParseError(431, "the request header is larger than \(maxHeaderBytes) bytes"))
        }
        let lines = Self.lines(buffer[start..<end])
        guard let requestLine = lines.first else { return .failed(HTTPParseError(400, "empty request")) }
        let parts = requestLine.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            return .failed(HTTPParseError(400, "malformed request line"))
        }
        guard parts[0].allSatisfy(Self.isTokenByte) else { return .failed(HTTPParseError(400, "malformed method")) }
        let version = String(decoding: parts[2], as: UTF8.self)
        let isHTTP11: Bool
        switch version {
        case "HTTP/1.1": isHTTP11 = true
        case "HTTP/1.0": isHTTP11 = false
        default:
            if version.hasPrefix("HTTP/"), version.count == 8, let major = version.utf8.dropFirst(5).first, major >= 50, major <= 57 {
                return .failed(HTTPParseError(505, "HTTP version \(version.dropFirst(5)) is not supported"))
            }
            return .failed(HTTPParseError(400, "malformed request line"))
        }
        var target = parts[1]
        guard target.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            return .failed(HTTPParseError(400, "malformed request target"))
        }
        // Absolute form (`http://host:port/path`, RFC 9112 §3.2.2): its authority replaces `Host`.
        var targetAuthority: String?
        if target.first != 47 {
            guard let split = Self.splitAbsoluteForm(target) else {
                return .failed(HTTPParseError(400, "the request target must be an absolute path or an absolute http URI"))
            }
            targetAuthority = String(decoding: split.authority, as: UTF8.self)
            target = split.path
        }
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: 58), colon > line.startIndex else {
                return .failed(HTTPParseError(400, "malformed header line"))
            }
            let name = line[line.startIndex..<colon]
            guard name.allSatisfy(Self.isTokenByte) else { return .failed(HTTPParseError(400, "malformed header name")) }
            var value = line[(colon + 1)...]
            while let f = value.first, f == 32 || f == 9 { value = value.dropFirst() }
            while let l = value.last, l == 32 || l == 9 { value = value.dropLast() }
            guard !value.contains(where: { $0 == 0 || $0 == 10 || $0 == 13 }) else {
                return .failed(HTTPParseError(400, "malformed header value"))
            }
            headers.add(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
        }
        // One Host (RFC 9112 §3.2) and one Authorization: a second one could be read differently by a proxy.
        if headers.values("Host").count > 1 { return .failed(HTTPParseError(400, "more than one Host header")) }
        if headers.values("Authorization").count > 1 {
            return .failed(HTTPParseError(400, "more than one Authorization header"))
        }
        if let targetAuthority { headers.set("Host", targetAuthority) }
        let methodText = String(decoding: parts[0], as: UTF8.self)
        guard let method = HTTPMethod(rawValue: methodText) else {
            return .failed(HTTPParseError(501, "method \(methodText) is not implemented"))
        }
        if headers.contains("Transfer-Encoding") {
            return .failed(HTTPParseError(411, "request bodies need Content-Length; Transfer-Encoding is not supported"))
        }
        var bodyLength = 0
        let lengths = headers.values("Content-Length")
        if let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }), !first.isEmpty, first.utf8.count <= 18,
                  first.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let length = Int(first) else {
                return .failed(HTTPParseError(400, "malformed Content-Length"))
            }
            bodyLength = length
        }
        if bodyLength > maxBodyBytes {
            return .failed(HTTPParseError(413, "the request body is larger than \(maxBodyBytes) bytes"))
        }
        let connection = headers.values("Connection").joined(separator: ",").lowercased()
        let tokens = connection.split(separator: ",").map { $0.trimmingSpaces }
        let keepAlive = isHTTP11 ? !tokens.contains("close") : tokens.contains("keep-alive")
        let expect = headers["Expect"]?.lowercased()
        if let expect, expect != "100-continue" {
            return .failed(HTTPParseError(417, "only Expect: 100-continue is supported"))
        }
        pendingHead = Head(method: method, rawTarget: String(decoding: target, as: UTF8.self), headers: headers,
                           isHTTP11: isHTTP11, keepAlive: keepAlive, bodyLength: bodyLength, bodyStart: end)
        return .done
    }

    /// `http://authority/path?q` → (authority, `/path?q`); nil for another scheme, user info, or no authority.
    private static func splitAbsoluteForm(_ target: ArraySlice<UInt8>) -> (authority: ArraySlice<UInt8>, path: ArraySlice<UInt8>)? {
        let text = target.map { ($0 >= 65 && $0 <= 90) ? $0 | 0x20 : $0 }
        let prefix: Int
        if text.starts(with: Array("http://".utf8)) { prefix = 7 }
        else if text.starts(with: Array("https://".utf8)) { prefix = 8 }
        else { return nil }
        let rest = target.dropFirst(prefix)
        let end = rest.firstIndex(where: { $0 == 47 || $0 == 63 || $0 == 35 }) ?? rest.endIndex
        let authority = rest[rest.startIndex..<end]
        guard !authority.isEmpty, !authority.contains(64) else { return nil }
        var path = rest[end...]
        if path.first != 47 { path = ArraySlice(Array("/".utf8) + path) }
        return (authority, path)
    }

    /// The request whose header has arrived and whose body has not, with its body's declared length
    /// (the server checks it before reading the body). Nil in any other phase.
    public var headAwaitingBody: (request: HTTPRequest, bodyLength: Int)? {
        guard let head = pendingHead, buffer.count - head.bodyStart < head.bodyLength else { return nil }
        let path: String
        let query: [String: String]
        switch Self.splitTarget(head.rawTarget) {
        case .success(let parts): (path, query) = parts
        case .failure: (path, query) = (head.rawTarget, [:])
        }
        let rawPath = head.rawTarget.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return (HTTPRequest(method: head.method, path: path, rawPath: rawPath, query: query, headers: head.headers,
                            isHTTP11: head.isHTTP11, keepAlive: head.keepAlive), head.bodyLength)
    }

    /// Makes room for the awaited body at once, so the buffer does not grow by doubling past it.
    public mutating func reserveBody() {
        guard let head = pendingHead else { return }
        buffer.reserveCapacity(head.bodyStart + head.bodyLength)
    }

    /// Splits a header block into lines without their line breaks, dropping the final blank line.
    private static func lines(_ block: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = block.startIndex
        for i in block.indices where block[i] == 10 {
            var lineEnd = i
            if lineEnd > lineStart && block[lineEnd - 1] == 13 { lineEnd -= 1 }
            if lineEnd == lineStart { break }
            lines.append(block[lineStart..<lineEnd])
            lineStart = i + 1
        }
        return lines
    }

    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 48...57, 65...90, 97...122: return true
        case 33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126: return true
        default: return false
        }
    }

    /// Splits `/a%20b?x=1&y` into the decoded path and query parameters.
    static func splitTarget(_ target: String) -> Swift.Result<(String, [String: String]), HTTPParseError> {
        let bytes = Array(target.utf8)
        let questionMark = bytes.firstIndex(of: 63) ?? bytes.count
        guard let path = PercentDecoding.decode(bytes[0..<questionMark], plusIsSpace: false), !path.contains("\0") else {
            return .failure(HTTPParseError(400, "malformed percent-encoding in the path"))
        }
        var query: [String: String] = [:]
        if questionMark < bytes.count {
            for pair in bytes[(questionMark + 1)...].split(separator: 38) {
                let equals = pair.firstIndex(of: 61) ?? pair.endIndex
                guard let name = PercentDecoding.decode(pair[pair.startIndex..<equals], plusIsSpace: true),
                      let value = PercentDecoding.decode(equals < pair.endIndex ? pair[(equals + 1)...] : [], plusIsSpace: true) else {
                    return .failure(HTTPParseError(400, "malformed percent-encoding in the query"))
                }
                query[name] = value
            }
        }
        return .success((path, query))
    }
}

/// Percent-decoding of URL parts.
public enum PercentDecoding {
    /// Decodes `%XX` escapes (and `+` as space when asked); nil for a bad escape or invalid UTF-8.
    public static func decode<C: Collection>(_ bytes: C, plusIsSpace: Bool) -> String? where C.Element == UInt8 {
        guard bytes.contains(37) || (plusIsSpace && bytes.contains(43)) else {
            return String(validating: bytes, as: UTF8.self)
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let b = iterator.next() {
            if b == 37 {
                guard let h = iterator.next().flatMap(hex), let l = iterator.next().flatMap(hex) else { return nil }
                out.append(h << 4 | l)
            } else if b == 43 && plusIsSpace {
                out.append(32)
            } else {
                out.append(b)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: b - 48
        case 65...70: b - 55
        case 97...102: b - 87
        default: nil
        }
    }
}

extension Substring {
    var trimmingSpaces: String {
        var s = self[...]
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
