import Foundation
import Runtime

/// The request methods the server understands; any other method answers 501.
public enum HTTPMethod: String, Sendable, Hashable, CaseIterable {
    case get = "GET", head = "HEAD", post = "POST", put = "PUT", delete = "DELETE", patch = "PATCH", options = "OPTIONS"
}

/// Header fields in arrival order, looked up case-insensitively.
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)]

    public init() { fields = [] }
    public init(_ fields: [(String, String)]) { self.fields = fields.map { (name: $0.0, value: $0.1) } }
    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }

    /// The first value of `name` (any case), or nil.
    public subscript(name: String) -> String? {
        for field in fields where Self.same(field.name, name) { return field.value }
        return nil
    }

    /// Every value of `name` (any case), in order.
    public func values(_ name: String) -> [String] {
        fields.filter { Self.same($0.name, name) }.map(\.value)
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// Appends a field (keeps existing ones of the same name).
    public mutating func add(_ name: String, _ value: String) { fields.append((name: name, value: value)) }

    /// Replaces every field of `name` by one.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        fields.append((name: name, value: value))
    }

    public mutating func remove(_ name: String) { fields.removeAll { Self.same($0.name, name) } }

    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    static func same(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        for (p, q) in zip(x, y) where p != q {
            if (p | 0x20) != (q | 0x20) || !((p | 0x20) >= 97 && (p | 0x20) <= 122) { return false }
        }
        return true
    }
}

/// One parsed request, as handlers see it.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The percent-decoded path, without the query (`/api/vehicles/VIN 1`).
    public var path: String
    /// The path as sent, still percent-encoded; the router splits this one before decoding segments.
    public var rawPath: String
    /// Query parameters, percent-decoded, `+` as space; the last of repeated names wins.
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// `host:port` of the peer.
    public var remoteAddress: String
    /// `{name}` path segments matched by the ``Router``.
    public var parameters: [String: String]
    /// False for HTTP/1.0.
    public var isHTTP11: Bool
    /// Whether the connection stays open after the answer (HTTP/1.1 default, `Connection: close`, HTTP/1.0 keep-alive).
    public var keepAlive: Bool

    public init(method: HTTPMethod, path: String, rawPath: String? = nil, query: [String: String] = [:],
                headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], remoteAddress: String = "",
                parameters: [String: String] = [:], isHTTP11: Bool = true, keepAlive: Bool = true) {
        self.method = method
        self.path = path
        self.rawPath = rawPath ?? path
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
        self.parameters = parameters
        self.isHTTP11 = isHTTP11
        self.keepAlive = keepAlive
    }

    /// The body as UTF-8 text (invalid bytes replaced; JSON bodies go through ``JSON/parse(bytes:)``, which refuses them).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The `host` of the `Host` header (or of an absolute-form target), lowercased, without port or
    /// a trailing dot; nil when absent.
    public var hostName: String? {
        guard let value = headers["Host"]?.lowercased(), !value.isEmpty else { return nil }
        var host = Substring(value)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return String(host) }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            host = host[..<colon]
        }
        while host.hasSuffix(".") { host = host.dropLast() }
        return String(host)
    }
}

/// A complete answer: status, headers, body. The server adds `Content-Length` and `Connection`.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int = 200, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON answer from already encoded bytes.
    public static func json(_ bytes: [UInt8], status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json; charset=utf-8"], body: bytes)
    }

    /// A JSON answer from already encoded text.
    public static func json(_ text: String, status: Int = 200) -> HTTPResponse {
        json(Array(text.utf8), status: status)
    }

    /// A JSON answer encoded with `JSONEncoder` (sorted keys). Throws what the encoder throws.
    public static func json<T: Encodable>(encoding value: T, status: Int = 200) throws -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return json(Array(try encoder.encode(value)), status: status)
    }

    /// A plain-text answer.
    public static func text(_ text: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: Array(text.utf8))
    }

    /// The contract's error shape: `{"error": {"code": "not_found", "message": "…"}}`.
    public static func error(_ status: Int, code: String? = nil, message: String) -> HTTPResponse {
        let code = code ?? HTTPError.defaultCode(status)
        return json("{\"error\":{\"code\":\(JSONText.quote(code)),\"message\":\(JSONText.quote(message))}}", status: status)
    }
}

/// An error any handler may throw; the server answers with its status and the contract's error shape.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    /// Extra headers for the answer (`Allow` on 405, `WWW-Authenticate` on 401, `Retry-After` …).
    public var headers: HTTPHeaders

    public init(_ status: Int, code: String? = nil, _ message: String, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.code = code ?? Self.defaultCode(status)
        self.message = message
        self.headers = headers
    }

    public static func badRequest(_ message: String) -> HTTPError { HTTPError(400, message) }
    public static func unauthorized(_ message: String) -> HTTPError { HTTPError(401, message) }
    public static func forbidden(_ message: String) -> HTTPError { HTTPError(403, message) }
    public static func notFound(_ message: String) -> HTTPError { HTTPError(404, message) }
    public static func conflict(_ message: String) -> HTTPError { HTTPError(409, message) }
    public static func unprocessable(_ message: String) -> HTTPError { HTTPError(422, message) }
    public static func unavailable(_ message: String) -> HTTPError { HTTPError(503, message) }

    /// The answer this error becomes.
    public var response: HTTPResponse {
        var response = HTTPResponse.error(status, code: code, message: message)
        for field in headers { response.headers.set(field.name, field.value) }
        return response
    }

    public var description: String { "\(status) \(code): \(message)" }

    /// The `code` used when none is given (`404` → `not_found`).
    public static func defaultCode(_ status: Int) -> String {
        switch status {
        case 400: "bad_request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 408: "request_timeout"
        case 409: "conflict"
        case 411: "length_required"
        case 413: "payload_too_large"
        case 415: "unsupported_media_type"
        case 417: "expectation_failed"
        case 421: "misdirected_request"
        case 422: "unprocessable"
        case 429: "too_many_requests"
        case 431: "headers_too_large"
        case 500: "internal"
        case 501: "not_implemented"
        case 503: "unavailable"
        case 505: "version_not_supported"
        default: status >= 500 ? "internal" : "error"
        }
    }
}

/// JSON string quoting for the few JSON texts this module writes itself.
public enum JSONText {
    /// `text` as a JSON string literal, quotes included (Runtime's JSON writer).
    public static func quote(_ text: String) -> String { JSON.string(text).serialized() }
}

enum StatusText {
    static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status \(status)"
        }
    }
}
