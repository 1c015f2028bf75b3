import Runtime

/// What a handler answers: a complete response, or an event stream that keeps the connection.
public enum HTTPReply: Sendable {
    case response(HTTPResponse)
    case eventStream(SSEStream)

    /// Shorthand for `.response(.json(text, status:))`.
    public static func json(_ text: String, status: Int = 200) -> HTTPReply { .response(.json(text, status: status)) }
    /// Shorthand for `.response(.json(bytes, status:))`.
    public static func json(_ bytes: [UInt8], status: Int = 200) -> HTTPReply { .response(.json(bytes, status: status)) }
}

/// Anything that answers requests: a ``Router``, ``StaticFiles``, a middleware chain.
///
/// Called on a server loop thread: keep it short (a SQLite read is fine, a network call is not).
/// Throw ``HTTPError`` for an error answer; any other error becomes a logged 500.
public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest) throws -> HTTPReply
}

/// A handler as a closure (same thread and error rules as ``HTTPResponder``).
public struct ClosureResponder: HTTPResponder {
    private let body: @Sendable (HTTPRequest) throws -> HTTPReply
    public init(_ body: @escaping @Sendable (HTTPRequest) throws -> HTTPReply) { self.body = body }
    public func respond(to request: HTTPRequest) throws -> HTTPReply { try body(request) }
}

/// Something wrapped around a responder (auth, logging, headers): it may answer itself, change the
/// request, call `next`, or change what `next` answered.
public protocol HTTPMiddleware: Sendable {
    func handle(_ request: HTTPRequest, next: (HTTPRequest) throws -> HTTPReply) throws -> HTTPReply
}

/// A middleware as a closure.
public struct ClosureMiddleware: HTTPMiddleware {
    private let body: @Sendable (HTTPRequest, (HTTPRequest) throws -> HTTPReply) throws -> HTTPReply
    public init(_ body: @escaping @Sendable (HTTPRequest, (HTTPRequest) throws -> HTTPReply) throws -> HTTPReply) {
        self.body = body
    }
    public func handle(_ request: HTTPRequest, next: (HTTPRequest) throws -> HTTPReply) throws -> HTTPReply {
        try body(request, next)
    }
}

/// Middlewares around a responder; the first one added is the outermost.
public struct MiddlewareChain: HTTPResponder {
    private let middlewares: [any HTTPMiddleware]
    private let responder: any HTTPResponder

    public init(_ middlewares: [any HTTPMiddleware], responder: any HTTPResponder) {
        self.middlewares = middlewares
        self.responder = responder
    }

    public func respond(to request: HTTPRequest) throws -> HTTPReply {
        try call(0, request)
    }

    private func call(_ index: Int, _ request: HTTPRequest) throws -> HTTPReply {
        if index == middlewares.count { return try responder.respond(to: request) }
        return try middlewares[index].handle(request) { try self.call(index + 1, $0) }
    }
}

/// Routes by method and path pattern; `{name}` segments match one path segment into `request.parameters`.
///
/// Build it completely before handing it to the server (it is a value; the server keeps a copy).
/// An unknown path answers 404, a known path with another method 405 with `Allow`, both as JSON errors;
/// HEAD uses the GET route. With a `fallback` (e.g. ``StaticFiles``), unknown paths go there instead.
public struct Router: HTTPResponder {
    private struct Route: Sendable {
        var method: HTTPMethod
        var segments: [Segment]
        var responder: any HTTPResponder
    }

    private enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    private var routes: [Route] = []
    /// Answers GET/HEAD requests whose path matches no route (static files); nil → 404.
    public var fallback: (any HTTPResponder)?

    public init(fallback: (any HTTPResponder)? = nil) { self.fallback = fallback }

    /// Every route as (method, pattern) in the order added, patterns as given (`/api/stations/{id}`);
    /// a test compares them with docs/openapi.json.
    public var registeredRoutes: [(method: HTTPMethod, pattern: String)] {
        routes.map { route in
            (route.method, "/" + route.segments.map { segment in
                switch segment {
                case .literal(let text): text
                case .parameter(let name): "{\(name)}"
                }
            }.joined(separator: "/"))
        }
    }

    /// Adds a route whose handler may answer with an event stream.
    public mutating func on(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPReply) {
        on(method, pattern, responder: ClosureResponder(handler))
    }

    /// Adds a route to any responder.
    public mutating func on(_ method: HTTPMethod, _ pattern: String, responder: any HTTPResponder) {
        let segments = pattern.split(separator: "/").map { part -> Segment in
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            return .literal(String(part))
        }
        routes.append(Route(method: method, segments: segments, responder: responder))
    }

    public mutating func get(_ pattern: String, _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        on(.get, pattern) { .response(try handler($0)) }
    }

    public mutating func post(_ pattern: String, _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        on(.post, pattern) { .response(try handler($0)) }
    }

    public mutating func put(_ pattern: String, _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        on(.put, pattern) { .response(try handler($0)) }
    }

    public mutating func delete(_ pattern: String, _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        on(.delete, pattern) { .response(try handler($0)) }
    }

    public func respond(to request: HTTPRequest) throws -> HTTPReply {
        var segments: [String] = []
        for part in request.rawPath.split(separator: "/") {
            guard let decoded = PercentDecoding.decode(part.utf8, plusIsSpace: false) else {
                throw HTTPError.badRequest("malformed percent-encoding in the path")
            }
            segments.append(decoded)
        }
        var allowed: [HTTPMethod] = []
        var getMatch: (Route, [String: String])?
        for route in routes {
            guard let parameters = match(route.segments, segments) else { continue }
            if route.method == request.method {
                var routed = request
                routed.parameters = parameters
                return try route.responder.respond(to: routed)
            }
            if route.method == .get && request.method == .head && getMatch == nil { getMatch = (route, parameters) }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        if let (route, parameters) = getMatch {
            var routed = request
            routed.parameters = parameters
            return try route.responder.respond(to: routed)
        }
        if !allowed.isEmpty {
            if allowed.contains(.get) && !allowed.contains(.head) { allowed.append(.head) }
            throw HTTPError(405, "\(request.method.rawValue) is not allowed on \(request.path)",
                            headers: ["Allow": allowed.map(\.rawValue).joined(separator: ", ")])
        }
        if let fallback, request.method == .get || request.method == .head {
            return try fallback.respond(to: request)
        }
        throw HTTPError.notFound("no such resource: \(request.path)")
    }

    private func match(_ pattern: [Segment], _ segments: [String]) -> [String: String]? {
        guard pattern.count == segments.count else { return nil }
        var parameters: [String: String] = [:]
        for (p, s) in zip(pattern, segments) {
            switch p {
            case .literal(let literal): if literal != s { return nil }
            case .parameter(let name): parameters[name] = s
            }
        }
        return parameters
    }
}
