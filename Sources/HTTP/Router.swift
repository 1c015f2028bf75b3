import Runtime

/// What a handler answers: a complete response, an event stream that keeps the connection, or
/// work to run off the loop thread whose answer the loop writes when it is ready.
public enum HTTPReply: Sendable {
    case response(HTTPResponse)
    case eventStream(SSEStream)
    /// Runs `work` on the server's worker pool; the connection answers nothing else meanwhile
    /// (pipelined requests wait their turn, so answers stay in request order).
    case deferred(DeferredWork)
    /// A body produced piece by piece on a worker pool while the client keeps up (exports); see
    /// ``BodyProducer``. The connection answers nothing else until the body is complete.
    case streamed(StreamedResponse)

    /// Shorthand for `.response(.json(text, status:))`.
    public static func json(_ text: String, status: Int = 200) -> HTTPReply { .response(.json(text, status: status)) }
    /// Shorthand for `.response(.json(bytes, status:))`.
    public static func json(_ bytes: [UInt8], status: Int = 200) -> HTTPReply { .response(.json(bytes, status: status)) }
}

/// Which worker pool runs a deferred answer: reads (SQLite pages, large lists, exports) or
/// commands (which wait on the pipeline and the event log's flush).
public enum WorkLane: Sendable, Equatable {
    case read, command
}

/// An answer computed off the loop thread (see ``HTTPReply/deferred(_:)``).
public struct DeferredWork: Sendable {
    public var lane: WorkLane
    /// Runs on a worker thread; same error rules as ``HTTPResponder``. Answering `.deferred` again is a 500.
    public var run: @Sendable () throws -> HTTPReply

    public init(lane: WorkLane, run: @escaping @Sendable () throws -> HTTPReply) {
        self.lane = lane
        self.run = run
    }
}

/// Anything that answers requests: a ``Router``, ``StaticFiles``, a middleware chain.
///
/// Called on a server loop thread: keep it short, or answer ``HTTPReply/deferred(_:)`` for work
/// that can take long (a large read, a command). Throw ``HTTPError`` for an error answer; any other
/// error becomes a logged 500.
public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest) throws -> HTTPReply
    /// Checks a request from its head alone, before its body is read (authorization of a route
    /// that needs a role); throw ``HTTPError`` to refuse it unread. Loop thread; keep it cheap.
    func precheck(_ head: HTTPRequest) throws
}

extension HTTPResponder {
    public func precheck(_ head: HTTPRequest) throws {}
}

/// How a route runs (see ``Router/on(_:_:options:_:)``).
public struct RouteOptions: Sendable {
    /// Run the handler on this worker pool instead of the loop thread; nil runs it on the loop.
    public var lane: WorkLane?
    /// Checked from the request head before the body is read (see ``HTTPResponder/precheck(_:)``).
    public var precheck: (@Sendable (HTTPRequest) throws -> Void)?

    public init(lane: WorkLane? = nil, precheck: (@Sendable (HTTPRequest) throws -> Void)? = nil) {
        self.lane = lane
        self.precheck = precheck
    }

    /// On the loop thread, no precheck.
    public static let inline = RouteOptions()
    /// On the read pool.
    public static let offLoop = RouteOptions(lane: .read)
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
    /// Checks a request head before its body is read (see ``HTTPResponder/precheck(_:)``).
    func precheck(_ head: HTTPRequest) throws
}

extension HTTPMiddleware {
    public func precheck(_ head: HTTPRequest) throws {}
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

    public func precheck(_ head: HTTPRequest) throws {
        for middleware in middlewares { try middleware.precheck(head) }
        try responder.precheck(head)
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
        var options: RouteOptions
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
    public mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = .inline,
                            _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPReply) {
        on(method, pattern, options: options, responder: ClosureResponder(handler))
    }

    /// Adds a route to any responder.
    public mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = .inline, responder: any HTTPResponder) {
        let segments = pattern.split(separator: "/").map { part -> Segment in
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            return .literal(String(part))
        }
        routes.append(Route(method: method, segments: segments, responder: responder, options: options))
    }

    public mutating func get(_ pattern: String, options: RouteOptions = .inline, _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        on(.get, pattern, options: options) { .response(try handler($0)) }
    }

    public mutating func post(_ pattern: String, options: RouteOptions = .inline, _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        on(.post, pattern, options: options) { .response(try handler($0)) }
    }

    public mutating func put(_ pattern: String, options: RouteOptions = .inline, _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        on(.put, pattern, options: options) { .response(try handler($0)) }
    }

    public mutating func delete(_ pattern: String, options: RouteOptions = .inline, _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        on(.delete, pattern, options: options) { .response(try handler($0)) }
    }

    public func respond(to request: HTTPRequest) throws -> HTTPReply {
        guard let (route, routed) = try resolve(request) else {
            if let fallback, request.method == .get || request.method == .head {
                return try fallback.respond(to: request)
            }
            throw HTTPError.notFound("no such resource: \(request.path)")
        }
        if let lane = route.options.lane {
            let responder = route.responder
            return .deferred(DeferredWork(lane: lane) { try responder.respond(to: routed) })
        }
        return try route.responder.respond(to: routed)
    }

    public func precheck(_ head: HTTPRequest) throws {
        guard let (route, routed) = try resolve(head) else { return }
        try route.options.precheck?(routed)
    }

    /// The route of a request with its path parameters; nil when no route matches the path
    /// (405 with `Allow` is thrown when one matches with another method).
    private func resolve(_ request: HTTPRequest) throws -> (Route, HTTPRequest)? {
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
                return (route, routed)
            }
            if route.method == .get && request.method == .head && getMatch == nil { getMatch = (route, parameters) }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        if let (route, parameters) = getMatch {
            var routed = request
            routed.parameters = parameters
            return (route, routed)
        }
        if !allowed.isEmpty {
            if allowed.contains(.get) && !allowed.contains(.head) { allowed.append(.head) }
            throw HTTPError(405, "\(request.method.rawValue) is not allowed on \(request.path)",
                            headers: ["Allow": allowed.map(\.rawValue).joined(separator: ", ")])
        }
        return nil
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
