import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Counters of an ``HTTPServer``, for `/metrics`.
public struct HTTPMetrics: Sendable, Equatable {
    /// Open client connections (event streams included).
    public var openConnections: Int
    /// Connections refused with 503 because `maxConnections` were open.
    public var rejectedConnections: Int
    /// Answers by status class: index 1 = 1xx … 5 = 5xx (index 0 unused).
    public var responsesByClass: [Int]
    /// Request-body bytes held now for bodies arriving (by declared length).
    public var bufferedBodyBytes = 0
    /// Bytes queued now for event-stream clients.
    public var sseQueuedBytes = 0
    /// Deferred jobs waiting now (read and command pools).
    public var queuedJobs = 0
    /// Deferred requests refused with 503 because a pool's queue was full.
    public var busyRefusals = 0
    /// The connection cap in force.
    public var maxConnections = 0

    /// The counters in Prometheus text format (`mes_http_…`).
    public var prometheusText: String {
        var text = ""
        func metric(_ name: String, _ help: String, _ type: String, _ samples: [(String, Int)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { text += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n" }
        }
        metric("mes_http_connections", "Open HTTP connections.", "gauge", [("", openConnections)])
        metric("mes_http_max_connections", "Connection cap (from the descriptor limit).", "gauge", [("", maxConnections)])
        metric("mes_http_rejected_connections_total", "Connections refused with 503 at the cap or the descriptor limit.", "counter", [("", rejectedConnections)])
        metric("mes_http_responses_total", "Answers by status class.", "counter", (1...5).map { ("class=\"\($0)xx\"", responsesByClass[$0]) })
        metric("mes_http_buffered_body_bytes", "Request-body bytes held for bodies arriving.", "gauge", [("", bufferedBodyBytes)])
        metric("mes_http_sse_queued_bytes", "Bytes queued for event-stream clients.", "gauge", [("", sseQueuedBytes)])
        metric("mes_http_queued_jobs", "Deferred requests waiting for a worker.", "gauge", [("", queuedJobs)])
        metric("mes_http_busy_refusals_total", "Deferred requests answered 503 because a worker queue was full.", "counter", [("", busyRefusals)])
        return text
    }

    /// Answers of one class (`2` → 2xx).
    public func responses(class statusClass: Int) -> Int {
        (1...5).contains(statusClass) ? responsesByClass[statusClass] : 0
    }
}

/// What the loops share: configuration, the responder, counters, worker pools and byte budgets.
// @unchecked Sendable: `stats` and `connectionCap` are guarded by `lock`; the rest is immutable or Sendable.
final class ServerCore: @unchecked Sendable {
    let responder: any HTTPResponder
    let limits: HTTPLimits
    let logger: Logger
    /// HTTPS: every connection starts with a TLS handshake. Nil serves plain HTTP.
    let tls: TLSServerContext?
    let tickNanoseconds: UInt64
    let readPool: WorkerPool
    let commandPool: WorkerPool
    /// Declared lengths of bodies being received (``HTTPLimits/maxBufferedBodyBytes``).
    let bodyBudget: ByteBudget
    /// Bytes queued for event-stream clients (``HTTPLimits/sseTotalBufferBytes``).
    let sseBudget: ByteBudget
    private let lock = NSLock()
    private var stats = HTTPMetrics(openConnections: 0, rejectedConnections: 0, responsesByClass: [0, 0, 0, 0, 0, 0])
    private var connectionCap: Int

    init(responder: any HTTPResponder, limits: HTTPLimits, logger: Logger, tls: TLSServerContext? = nil) {
        self.responder = responder
        self.limits = limits
        self.logger = logger
        self.tls = tls
        let shortest = min(limits.headerReadTimeout, limits.idleTimeout, limits.sseKeepAliveInterval, limits.bodyTimeout)
        tickNanoseconds = UInt64(min(1.0, max(0.01, shortest / 4)) * 1e9)
        readPool = WorkerPool(name: "http-read", threads: limits.readWorkers, queueLimit: limits.workerQueueLimit, nice: 5)
        commandPool = WorkerPool(name: "http-command", threads: limits.commandWorkers, queueLimit: limits.workerQueueLimit)
        bodyBudget = ByteBudget(limit: limits.maxBufferedBodyBytes)
        sseBudget = ByteBudget(limit: limits.sseTotalBufferBytes)
        connectionCap = limits.maxConnections ?? 20000
        var busy = HTTPResponse.error(503, message: "too many connections, retry later")
        busy.headers.set("Retry-After", "5")
        busyAnswer = serialize(busy, head: false, keepAlive: false, http11: true)
    }

    /// Sets the connection cap (from the descriptor limit at start).
    func setConnectionCap(_ cap: Int) {
        lock.lock(); connectionCap = max(1, cap); lock.unlock()
    }

    var maxConnections: Int {
        lock.lock(); defer { lock.unlock() }
        return connectionCap
    }

    func pool(_ lane: WorkLane) -> WorkerPool { lane == .read ? readPool : commandPool }

    /// The server-wide checks on any request before routing: `Host` present on HTTP/1.1 (else 400)
    /// and among ``HTTPLimits/allowedHosts`` (else 421).
    func admit(_ request: HTTPRequest) -> HTTPError? {
        guard let host = request.hostName else {
            return request.isHTTP11 ? HTTPError(400, "HTTP/1.1 requests need a Host header") : nil
        }
        if let allowed = limits.allowedHosts, !allowed.contains("*"), !allowed.contains(host) {
            return HTTPError(421, "this server does not answer for host \"\(host.prefix(255))\"")
        }
        return nil
    }

    /// Checks a request head before its body is read: ``admit(_:)`` and the responder's precheck.
    func precheck(_ head: HTTPRequest) -> HTTPResponse? {
        if let error = admit(head) { return error.response }
        do {
            try responder.precheck(head)
            return nil
        } catch let error as HTTPError {
            return error.response
        } catch {
            logger.error("\(head.method.rawValue) \(head.path) precheck failed: \(error)")
            return .error(500, message: "internal server error")
        }
    }

    /// Runs the responder; ``HTTPError`` becomes its answer, any other error a logged 500.
    func dispatch(_ request: HTTPRequest) -> HTTPReply {
        if let error = admit(request) { return .response(error.response) }
        do {
            return try responder.respond(to: request)
        } catch let error as HTTPError {
            return .response(error.response)
        } catch {
            logger.error("\(request.method.rawValue) \(request.path) failed: \(error)")
            return .response(.error(500, message: "internal server error"))
        }
    }

    /// Runs deferred work on a worker thread, with the same error rules as ``dispatch(_:)``.
    func run(_ work: DeferredWork, for request: HTTPRequest) -> HTTPReply {
        do {
            let reply = try work.run()
            if case .deferred = reply {
                logger.error("\(request.method.rawValue) \(request.path): deferred work answered deferred again")
                return .response(.error(500, message: "internal server error"))
            }
            return reply
        } catch let error as HTTPError {
            return .response(error.response)
        } catch {
            logger.error("\(request.method.rawValue) \(request.path) failed: \(error)")
            return .response(.error(500, message: "internal server error"))
        }
    }

    /// The wire form of a response; adds `Content-Length` and `Connection`.
    func serialize(_ response: HTTPResponse, head: Bool, keepAlive: Bool, http11: Bool) -> [UInt8] {
        var text = "HTTP/1.1 \(response.status) \(StatusText.reason(response.status))\r\n"
        for field in response.headers {
            if HTTPHeaders.same(field.name, "Content-Length") || HTTPHeaders.same(field.name, "Connection") { continue }
            text += field.name
            text += ": "
            text += field.value
            text += "\r\n"
        }
        let bodyless = response.status == 204 || response.status == 304 || response.status < 200
        if !bodyless { text += "Content-Length: \(response.body.count)\r\n" }
        if !keepAlive {
            text += "Connection: close\r\n"
        } else if !http11 {
            text += "Connection: keep-alive\r\n"
        }
        text += "\r\n"
        var bytes = [UInt8]()
        let sendBody = !head && !bodyless
        bytes.reserveCapacity(text.utf8.count + (sendBody ? response.body.count : 0))
        bytes.append(contentsOf: text.utf8)
        if sendBody { bytes.append(contentsOf: response.body) }
        return bytes
    }

    func count(status: Int) {
        let statusClass = min(5, max(1, status / 100))
        lock.lock(); stats.responsesByClass[statusClass] += 1; lock.unlock()
    }

    /// What becomes of a new connection.
    enum Admission {
        case serve
        /// Past the cap on the HTTPS port: a loop completes the handshake, answers 503, closes.
        case answerBusyOverTLS
        /// Past the cap: 503 at once (plain HTTP) or closed (HTTPS beyond ``tlsRefusalAllowance``).
        case refuse
    }

    /// HTTPS clients past the cap that may be in their handshake at once to get their 503: each
    /// holds a descriptor for at most the header timeout; the rest are only closed.
    static let tlsRefusalAllowance = 32

    /// The answer past the cap: 503 with `Retry-After: 5`, the connection closed after it (set in init).
    private(set) var busyAnswer: [UInt8] = []

    /// Counts a new connection unless `maxConnections` are open (an HTTPS client past it is
    /// counted too while it is being refused, up to ``tlsRefusalAllowance`` more).
    func admitConnection() -> Admission {
        lock.lock(); defer { lock.unlock() }
        guard stats.openConnections < connectionCap else {
            stats.rejectedConnections += 1
            if tls != nil && stats.openConnections < connectionCap + Self.tlsRefusalAllowance {
                stats.openConnections += 1
                return .answerBusyOverTLS
            }
            return .refuse
        }
        stats.openConnections += 1
        return .serve
    }

    /// A client refused through the reserve descriptor (the process was out of descriptors).
    func refusedAtDescriptorLimit() {
        lock.lock(); stats.rejectedConnections += 1; lock.unlock()
    }

    func connectionClosed() {
        lock.lock(); stats.openConnections -= 1; lock.unlock()
    }

    var metrics: HTTPMetrics {
        lock.lock()
        var snapshot = stats
        snapshot.maxConnections = connectionCap
        lock.unlock()
        snapshot.bufferedBodyBytes = bodyBudget.inUse
        snapshot.sseQueuedBytes = sseBudget.inUse
        snapshot.queuedJobs = readPool.load.queued + commandPool.load.queued
        return snapshot
    }

    /// A deferred request refused because its pool's queue was full.
    func busyRefused() {
        lock.lock(); stats.busyRefusals += 1; lock.unlock()
    }
}

/// An HTTP/1.1 server: an acceptor thread hands connections round-robin to epoll loop threads.
///
/// Handlers run on the loop threads unless their route is marked to run off the loop
/// (``RouteOptions/lane``): those run on a worker pool and the loop writes their answer when it is
/// ready, keeping pipelined answers in order. At start `run()` raises the soft descriptor limit to
/// the hard one and derives the connection cap from it (``DescriptorLimit``). Call ``bind()`` first
/// to learn the port and fail early on a bad one, then `run()` (as a ``Service``) until cancelled:
/// it then closes the listener and every connection and returns.
// @unchecked Sendable: `listenFd`, `boundPort` and `started` are guarded by `lock`; the rest is immutable.
public final class HTTPServer: Service, @unchecked Sendable {
    public let name: String
    public let host: String
    public let limits: HTTPLimits
    private let requestedPort: UInt16
    private let loopCount: Int
    private let core: ServerCore
    private let lock = NSLock()
    private var listenFd: Int32?
    private var boundPort: UInt16?
    private var started = false

    /// - Parameters:
    ///   - host: IPv4 address to listen on (`127.0.0.1`, `0.0.0.0`).
    ///   - port: 0 picks a free port (see ``bind()``).
    ///   - loops: event-loop threads (one per core is right).
    ///   - tls: serve HTTPS with this certificate and key (then no plain HTTP on the port); nil serves HTTP.
    public init(host: String = "127.0.0.1", port: UInt16, responder: any HTTPResponder, limits: HTTPLimits = HTTPLimits(),
                loops: Int = 2, logger: Logger, name: String = "http", tls: TLSServerContext? = nil) {
        self.name = name
        self.host = host
        self.limits = limits
        self.requestedPort = port
        self.loopCount = max(1, loops)
        self.core = ServerCore(responder: responder, limits: limits, logger: logger, tls: tls)
    }

    /// `https` when the server speaks TLS, else `http`.
    public var scheme: String { core.tls == nil ? "http" : "https" }

    deinit {
        if let fd = listenFd { Socket.close(fd) }
    }

    /// Binds and listens; returns the actual port. Idempotent.
    ///
    /// Throws a ``SystemError`` whose description is a one-line reason (`listen 127.0.0.1:80: bind: Permission denied`).
    @discardableResult
    public func bind() throws -> UInt16 {
        lock.lock(); defer { lock.unlock() }
        if let boundPort { return boundPort }
        let fd = try Socket.listen(host: host, port: requestedPort, backlog: 4096, nonBlocking: true)
        do {
            let port = try Socket.localPort(fd)
            listenFd = fd
            boundPort = port
            return port
        } catch {
            Socket.close(fd)
            throw error
        }
    }

    /// The bound port, once ``bind()`` succeeded.
    public var port: UInt16? {
        lock.lock(); defer { lock.unlock() }
        return boundPort
    }

    /// Connection and response counters now.
    public var metrics: HTTPMetrics { core.metrics }

    /// Serves until the task is cancelled, then closes the listener and all connections.
    ///
    /// Binds first if ``bind()`` was not called. Throws only for failures at start (bind, epoll).
    /// Runs once per server.
    public func run() async throws {
        let port = try bind()
        let listenFd = try markStarted(port: port)
        let descriptors = DescriptorLimit.raiseToHard()
        let derived = DescriptorLimit.connectionCap(descriptors: descriptors)
        core.setConnectionCap(min(limits.maxConnections ?? derived, derived))

        var loops: [EventLoop] = []
        let acceptWake: WakeFd
        do {
            for i in 0..<loopCount { loops.append(try EventLoop(core: core, index: i)) }
            acceptWake = try WakeFd()
        } catch {
            for loop in loops { loop.stop() ; loop.run() }
            closeListener()
            throw error
        }
        let exits = ThreadExits(count: loops.count + 1)
        for (i, loop) in loops.enumerated() {
            let thread = Thread {
                loop.run()
                exits.done()
            }
            thread.name = "http-loop-\(i)"
            thread.start()
        }
        let acceptor = Acceptor(listenFd: listenFd, wakeFd: acceptWake.fd, loops: loops, core: core)
        let acceptThread = Thread {
            acceptor.run()
            exits.done()
        }
        acceptThread.name = "http-accept"
        acceptThread.start()
        core.logger.info("listening on \(scheme)://\(host):\(port)/ (at most \(core.maxConnections) connections; \(descriptors) descriptors)")

        await waitUntilCancelled()

        acceptWake.signal()
        for loop in loops { loop.stop() }
        await exits.wait()
        core.readPool.stop()
        core.commandPool.stop()
        acceptWake.close()
        closeListener()
        core.logger.info("stopped listening on \(host):\(port)")
    }

    private func markStarted(port: UInt16) throws -> Int32 {
        lock.lock(); defer { lock.unlock() }
        guard !started, let listenFd else {
            throw SystemError(call: "run", errno: EALREADY, context: "http server on \(host):\(port) already ran")
        }
        started = true
        return listenFd
    }

    private func closeListener() {
        lock.lock()
        if let fd = listenFd { Socket.close(fd) }
        listenFd = nil
        lock.unlock()
    }
}

/// Accepts connections and deals them round-robin to the loops; refuses past `maxConnections`.
// @unchecked Sendable: `reserveFd` and `warning` are touched only by the acceptor thread (after init); the rest is immutable.
private final class Acceptor: @unchecked Sendable {
    let listenFd: Int32
    let wakeFd: Int32
    let loops: [EventLoop]
    let core: ServerCore
    private let busy: [UInt8]
    /// A spare descriptor: at the descriptor limit it is given up to accept one client, answer it 503
    /// and close it, so a client is refused rather than left waiting.
    private var reserveFd: Int32 = -1
    private var warning = RateLimitedWarning(intervalNanoseconds: 10_000_000_000)

    init(listenFd: Int32, wakeFd: Int32, loops: [EventLoop], core: ServerCore) {
        self.listenFd = listenFd
        self.wakeFd = wakeFd
        self.loops = loops
        self.core = core
        busy = core.busyAnswer
        reserveFd = Self.openReserve()
    }

    private static func openReserve() -> Int32 { open("/dev/null", O_RDONLY | O_CLOEXEC) }

    /// Sends the 503 and closes (an HTTPS client, which would not read a plain answer, is only closed).
    private func refuse(_ fd: Int32) {
        core.count(status: 503)
        if core.tls == nil { busy.withUnsafeBytes { bytes in
            _ = try? syscall("send", context: "http refuse") { send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
        } }
        Socket.close(fd)
    }

    /// Out of descriptors: frees the reserve, accepts one waiting client, refuses it, takes the reserve back.
    /// True when a client was refused.
    private func refuseWithReserve() -> Bool {
        guard reserveFd >= 0 else {
            reserveFd = Self.openReserve()
            return false
        }
        Socket.close(reserveFd)
        reserveFd = -1
        let fd = accept(listenFd, nil, nil)
        if fd >= 0 {
            core.refusedAtDescriptorLimit()
            refuse(fd)
        }
        reserveFd = Self.openReserve()
        return fd >= 0
    }

    func run() {
        var next = 0
        let epoll: Epoll
        do {
            epoll = try Epoll(capacity: 2, context: "http acceptor")
            try epoll.add(listenFd, Epoll.readable)
            try epoll.add(wakeFd, Epoll.readable)
        } catch {
            core.logger.error("\(error)")
            return
        }
        defer { epoll.close() }
        while true {
            var woken = false
            do {
                try epoll.wait(timeoutMs: -1) { fd, _ in if fd == wakeFd { woken = true } }
            } catch {
                core.logger.error("\(error)")
                return
            }
            if woken {
                if reserveFd >= 0 { Socket.close(reserveFd) }
                return
            }
            while true {
                var address = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let result: IOResult<Int32>
                do {
                    result = try withUnsafeMutablePointer(to: &address) { pointer in
                        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                            try syscall("accept4", context: "http acceptor") {
                                accept(listenFd, raw, &length)
                            }
                        }
                    }
                } catch let error as SystemError {
                    if error.errno == ECONNABORTED || error.errno == EPROTO { continue }
                    if let suppressed = warning.due(now: Monotonic.nanoseconds()) {
                        core.logger.warning("\(error)" + (suppressed > 0 ? " (and \(suppressed) more like it since the last warning)" : ""))
                    }
                    if error.errno == EMFILE || error.errno == ENFILE {
                        if refuseWithReserve() { continue }
                        usleep(10_000)
                    } else if error.errno == ENOBUFS || error.errno == ENOMEM {
                        usleep(50_000)
                    }
                    break
                } catch {
                    break
                }
                guard case .done(let fd) = result else { break }
                _ = try? syscall("fcntl", context: "http acceptor") { fcntl(fd, F_SETFD, FD_CLOEXEC) }
                Socket.setNonBlocking(fd)
                switch core.admitConnection() {
                case .serve:
                    break
                case .answerBusyOverTLS:
                    loops[next].adopt(fd: fd, remote: Self.describe(address), refusing: true)
                    next = (next + 1) % loops.count
                    continue
                case .refuse:
                    refuse(fd)
                    continue
                }
                Socket.setNoDelay(fd)
                loops[next].adopt(fd: fd, remote: Self.describe(address))
                next = (next + 1) % loops.count
            }
        }
    }

    private static func describe(_ address: sockaddr_in) -> String {
        var copy = address.sin_addr
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        let name = inet_ntop(AF_INET, &copy, &text, socklen_t(text.count)) != nil
            ? String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        return "\(name):\(UInt16(bigEndian: address.sin_port))"
    }
}

/// Lets an async caller wait until a number of threads have returned.
private final class ThreadExits: Sendable {
    private let state: Locked<(remaining: Int, waiter: CheckedContinuation<Void, Never>?)>

    init(count: Int) { state = Locked((count, nil)) }

    func done() {
        let resume: CheckedContinuation<Void, Never>? = state.withLock { state in
            state.remaining -= 1
            guard state.remaining == 0 else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        resume?.resume()
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state in
                if state.remaining == 0 { return true }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}

/// A warning logged at most once per interval, with the number held back meanwhile.
struct RateLimitedWarning {
    let intervalNanoseconds: UInt64
    private var last: UInt64?
    private var suppressed = 0

    init(intervalNanoseconds: UInt64) { self.intervalNanoseconds = intervalNanoseconds }

    /// The count held back since the last one when a warning is due now; nil when it must be held back.
    mutating func due(now: UInt64) -> Int? {
        if let last, now &- last < intervalNanoseconds {
            suppressed += 1
            return nil
        }
        last = now
        defer { suppressed = 0 }
        return suppressed
    }
}

/// The process's descriptor limit (RLIMIT_NOFILE).
public enum DescriptorLimit {
    /// Raises the soft limit to the hard one; returns the soft limit now in force.
    @discardableResult
    public static func raiseToHard() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur == rlim_t.max ? 1 << 20 : Int(min(limit.rlim_cur, 1 << 30))
    }

    /// Connections that fit in `descriptors`, leaving a reserve for the database, station links,
    /// log files, the loops' own descriptors and the 503 answer: 128 plus a sixteenth.
    public static func connectionCap(descriptors: Int) -> Int {
        max(16, descriptors - 128 - descriptors / 16)
    }
}

/// The default `Host` allow-list (docs/CONFIG.md `allowedHosts`): the listen address, `localhost`,
/// `127.0.0.1`, `::1`, the machine's host name (short and full) and its interface addresses.
public enum DefaultAllowedHosts {
    public static func names(listenHost: String) -> Set<String> {
        var names: Set<String> = ["localhost", "127.0.0.1", "::1", listenHost.lowercased()]
        var buffer = [CChar](repeating: 0, count: 256)
        if gethostname(&buffer, buffer.count - 1) == 0 {
            let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased()
            if !name.isEmpty {
                names.insert(name)
                if let short = name.split(separator: ".").first { names.insert(String(short)) }
                names.insert(name + ".local")
            }
        }
        var list: UnsafeMutablePointer<ifaddrs>?
        if getifaddrs(&list) == 0, let first = list {
            var cursor: UnsafeMutablePointer<ifaddrs>? = first
            while let entry = cursor {
                if let address = entry.pointee.ifa_addr {
                    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
                    let family = Int32(address.pointee.sa_family)
                    if family == AF_INET {
                        address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                            var raw = v4.pointee.sin_addr
                            if inet_ntop(AF_INET, &raw, &text, socklen_t(text.count)) != nil {
                                names.insert(String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
                            }
                        }
                    } else if family == AF_INET6 {
                        address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                            var raw = v6.pointee.sin6_addr
                            if inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count)) != nil {
                                names.insert(String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased())
                            }
                        }
                    }
                }
                cursor = entry.pointee.ifa_next
            }
            freeifaddrs(first)
        }
        names.remove("0.0.0.0")
        names.remove("")
        return names
    }
}
