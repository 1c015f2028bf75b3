import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HTTP
import Notify
import PlantModel
import Runtime
import Storage

/// How a server takes part in a group of nodes on one PostgreSQL database (README "Two nodes").
public enum ClusterPart: Sendable {
    /// Serves the API and the event stream from the database; forwards writes to the active.
    case standby(ClusterView)
    /// Holds the lease with `epoch`: polls, tracks, judges, writes (every commit checks the epoch).
    case active(ClusterView, epoch: Int64)

    public var view: ClusterView {
        switch self {
        case .standby(let view), .active(let view, _): view
        }
    }

    public var role: NodeRole {
        if case .active = self { .active } else { .standby }
    }
}

/// What a server of a group reads of the group while it runs.
public struct ClusterView: Sendable {
    /// The lease's row key (the config's `plant`).
    public var plant: String
    /// The database URL (the standby's `LISTEN` connection).
    public var url: String
    /// The lease's holder as last seen (a standby forwards writes to its URL).
    public var holder: @Sendable () -> LeaseHolder?

    public init(plant: String, url: String, holder: @escaping @Sendable () -> LeaseHolder?) {
        self.plant = plant
        self.url = url
        self.holder = holder
    }
}

/// A node of a group: a standby server until the lease is won, then (as a restart does) an active
/// server built from the database; a node that loses the lease exits (README "Two nodes").
public final class ClusterNode: Sendable {
    /// Exit status of a node that lost its lease (EX_TEMPFAIL: a supervisor starts it again, as a standby).
    public static let demotedExitStatus: Int32 = 75

    public let options: ServerOptions
    public let logger: Logger
    public let config: PlantConfig
    public let driver: LeaseDriver
    private let state = Locked<(server: MESServer?, epoch: Int64?, stopping: Bool)>((nil, nil, false))
    private let wake = DispatchSemaphore(value: 0)

    public init(options: ServerOptions, logger: Logger) throws {
        self.options = options
        self.logger = logger
        config = try PlantConfig.load(path: options.config)
        let url = options.database
        let plant = config.plant
        if options.advertise == nil && (options.host == "0.0.0.0" || options.port == 0) {
            throw UsageError("a node listening on \(options.host):\(options.port) needs --advertise http://ADDRESS:PORT: the IPv4 address and port the other nodes reach it at (README \"Two nodes\")")
        }
        let advertise = options.advertise ?? "\(options.tlsCertificate == nil ? "http" : "https")://\(options.host):\(options.port)"
        if let target = ForwardTarget(url: advertise), (try? Socket.ipv4Address(host: target.host, port: target.port)) == nil {
            throw UsageError("--advertise \(advertise): give the node's IPv4 address (other nodes forward writes to it), not a host name")
        }
        driver = LeaseDriver(node: options.node, url: advertise, settings: LeaseMachine.Settings(leaseS: config.leaseS),
                             logger: logger.named("lease")) { PostgresLeaseStore(url: url, plant: plant) }
    }

    /// True for a `postgresql://` (or `postgres://`) database URL: such servers form a group.
    public static func isGroup(database: String) -> Bool {
        database.hasPrefix("postgresql://") || database.hasPrefix("postgres://")
    }

    /// The server serving now (the standby's, then the active's).
    public var server: MESServer? { state.value.server }

    /// Runs as a standby until the lease is won, then as the active until stopped (SIGINT/SIGTERM)
    /// or demoted (then the process exits with ``demotedExitStatus``).
    public func run() async throws {
        let driver = self.driver
        let view = ClusterView(plant: config.plant, url: options.database, holder: { driver.status.holder })
        driver.onActive = { [weak self] epoch in
            guard let self else { return }
            let server = self.state.withLock { state -> MESServer? in
                state.epoch = epoch
                return state.server
            }
            server?.shutdown()
        }
        driver.onDemote = { [logger] reason in
            // Commits already refuse to write (the epoch is checked in each); stop at once and say why.
            logger.error("demoted: \(reason). Exiting without writing; start this node again to serve as a standby")
            exit(Self.demotedExitStatus)
        }
        let signals = SignalWatch { [weak self] in self?.stop() }
        defer { signals.cancel() }
        // The lease table before the lease is asked for (a fresh database has none yet); a database
        // that cannot be reached now is reported by the server's own start below.
        do {
            let db = try Database(path: options.database)
            defer { db.close() }
            try Migrator(groups: [ClusterSchema.migrations], logger: logger.named("storage")).migrate(db)
        } catch {
            logger.warning("could not prepare the lease table yet: \(error)")
        }
        driver.start()
        // The lease's first answer comes before any server: a node that finds the lease free (a
        // fresh database, or released by a clean stop) starts as the active at once, with no standby
        // serving for a moment before it (its HTTP port would close while the active restores).
        let firstAnswer = Monotonic.nanoseconds()
        while state.value.epoch == nil && driver.status.holder.map({ $0.node == driver.node }) != false
                && Monotonic.nanoseconds() - firstAnswer < 3_000_000_000 {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        if state.value.epoch == nil {
            let standby = try MESServer(options: options, logger: logger, cluster: .standby(view))
            // The lease may have been won while the standby was built: then it never serves.
            let wonMeanwhile = state.withLock { state -> Bool in
                state.server = standby
                return state.epoch != nil || state.stopping
            }
            if wonMeanwhile { standby.shutdown() }
            try await standby.run(installSignalHandlers: false)
            standby.eventLog.close()
        }
        guard let epoch = state.withLock({ $0.stopping ? nil : $0.epoch }) else {
            driver.stop(release: false)
            logger.info("stopped cleanly")
            return
        }
        let started = Monotonic.nanoseconds()
        let active: MESServer
        do {
            active = try MESServer(options: options, logger: logger, cluster: .active(view, epoch: epoch))
        } catch {
            logger.error("could not start as the active node: \(error)")
            driver.stop(release: true)
            throw error
        }
        let stopNow = state.withLock { state -> Bool in
            state.server = active
            return state.stopping
        }
        if stopNow { active.shutdown() }
        logger.notice("active after \(String(format: "%.2f", Double(Monotonic.nanoseconds() - started) / 1e9)) s of restoring from the database")
        try await active.run(installSignalHandlers: false)
        driver.stop(release: true)
    }

    /// Stops the node (as SIGTERM does): the active stops writing and gives its lease up.
    public func stop() {
        let server = state.withLock { state -> MESServer? in
            state.stopping = true
            return state.server
        }
        server?.shutdown()
    }
}

/// SIGINT/SIGTERM for a node, which outlives the servers it runs one after the other.
private final class SignalWatch: Sendable {
    private let sources: Locked<[any DispatchSourceSignal]> = Locked([])

    init(_ handler: @escaping @Sendable () -> Void) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            sources.withLock { sources in
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler(handler: handler)
                source.resume()
                sources.append(source)
            }
        }
    }

    func cancel() {
        sources.withLock { sources in
            for source in sources { source.cancel() }
            sources.removeAll()
        }
    }
}

/// A standby's live event stream: `LISTEN` for the active's commits, then the new rows in id order
/// from the database to the SSE hub (each within a second of its commit: it also looks every second
/// when no notification came, e.g. after the connection broke).
final class EventFollower: Service, Sendable {
    let name = "follower"
    private let url: String
    private let eventLog: EventLog
    private let publish: @Sendable ([StoredEvent]) -> Void
    private let logger: Logger
    /// The newest event id seen (published), and whether the thread should stop.
    private let shared: Locked<(last: Int64, stopping: Bool)>

    init(url: String, eventLog: EventLog, after: Int64, logger: Logger, publish: @escaping @Sendable ([StoredEvent]) -> Void) {
        self.url = url
        self.eventLog = eventLog
        self.publish = publish
        self.logger = logger
        shared = Locked((after, false))
    }

    /// The newest event id published.
    var lastSeq: Int64 { shared.value.last }

    func run() async throws {
        let done = DispatchSemaphore(value: 0)
        await runThreadedService(stopThreadName: "follower.stop", start: {
            let thread = Thread { [self] in
                loop()
                done.signal()
            }
            thread.name = "follower"
            thread.start()
        }, stop: { [self] in
            shared.withLock { $0.stopping = true }
            done.wait()
        })
    }

    private func loop() {
        var link: ClusterLink?
        while !shared.value.stopping {
            do {
                if link == nil || link?.isHealthy == false {
                    link?.close()
                    let fresh = try ClusterLink(url: url)
                    try fresh.listen(ClusterSchema.channel)
                    link = fresh
                }
                _ = try link?.notifications(waitingUpTo: 0.25)
            } catch {
                logger.debug("event follower: \(error) (reading the database each second meanwhile)")
                link?.close()
                link = nil
                Thread.sleep(forTimeInterval: 0.25)
            }
            catchUp()
        }
        link?.close()
    }

    private func catchUp() {
        while !shared.value.stopping {
            let after = shared.value.last
            let events: [StoredEvent]
            do {
                events = try eventLog.events(after: after, limit: 1000)
            } catch {
                logger.debug("event follower cannot read: \(error)")
                return
            }
            guard let last = events.last else { return }
            publish(events)
            shared.withLock { $0.last = last.seq }
            if events.count < 1000 { return }
        }
    }
}

/// A standby's answer to a write: the same request sent to the active's advertised URL with the
/// caller's headers and body, and the active's answer given back as it came (README "Two nodes").
struct WriteForwarder: HTTPMiddleware {
    let holder: @Sendable () -> LeaseHolder?
    let node: String
    var trust = PeerTrust()
    let timeoutMs = 15_000

    func handle(_ request: HTTPRequest, next: (HTTPRequest) throws -> HTTPReply) throws -> HTTPReply {
        guard request.method != .get, request.method != .head, request.method != .options,
              request.path.hasPrefix("/api/") else { return try next(request) }
        let holder = self.holder
        let node = self.node
        let timeoutMs = self.timeoutMs
        let trust = self.trust
        return .deferred(DeferredWork(lane: .command) {
            guard let active = holder(), active.node != node, let target = ForwardTarget(url: active.url) else {
                throw HTTPError(503, code: "unavailable", "this node is a standby and no active node is known yet: try again in a few seconds",
                                headers: ["Retry-After": "2"])
            }
            return .response(try target.forward(request, via: node, timeoutMs: timeoutMs, trust: trust))
        })
    }
}

/// A standby's answer to a read of the figures only the active keeps current in memory: work in
/// progress and live KPIs per station (`/api/stations`, `/api/stations/{id}`), the current shift's
/// KPIs (`/api/kpis`, `/api/reports/shift`), anomaly scores and equipment health (README "Two
/// nodes"). The standby runs no tracking or quality of its own, so it asks the active (forwarded as a
/// write is) and answers with the active's answer, marked `X-MES-Figures: active NODE`. With no
/// active known, or one that does not answer, it answers from its own figures (as restored at its
/// start), marked `X-MES-Figures: restored`, and asks the active again only after `retryAfterNs`.
struct LiveFiguresForwarder: HTTPMiddleware {
    let holder: @Sendable () -> LeaseHolder?
    let node: String
    /// The rest of the standby's chain: the answer when the active cannot give one.
    let local: any HTTPResponder
    var trust = PeerTrust()
    var timeoutMs = 3_000
    var retryAfterNs: UInt64 = 5_000_000_000
    /// Until when (monotonic ns) reads are answered locally after the active did not answer.
    private let quietUntil = Locked<UInt64>(0)

    init(holder: @escaping @Sendable () -> LeaseHolder?, node: String, local: any HTTPResponder, trust: PeerTrust = PeerTrust()) {
        self.holder = holder
        self.node = node
        self.local = local
        self.trust = trust
    }

    static let paths: Set<String> = ["/api/stations", "/api/kpis", "/api/anomalies", "/api/equipment",
                                     "/api/reports/equipment", "/api/reports/shift"]

    static func forwards(_ request: HTTPRequest) -> Bool {
        guard request.method == .get else { return false }
        if paths.contains(request.path) { return true }
        // /api/stations/{id}, not the station's history or its other sub-resources.
        guard request.path.hasPrefix("/api/stations/") else { return false }
        return !request.path.dropFirst("/api/stations/".count).contains("/")
    }

    func handle(_ request: HTTPRequest, next: (HTTPRequest) throws -> HTTPReply) throws -> HTTPReply {
        guard Self.forwards(request) else { return try next(request) }
        let forwarder = self
        return .deferred(DeferredWork(lane: .read) { try forwarder.answer(request) })
    }

    private func answer(_ request: HTTPRequest) throws -> HTTPReply {
        if Monotonic.nanoseconds() >= quietUntil.value, let active = holder(), active.node != node,
           let target = ForwardTarget(url: active.url) {
            do {
                var response = try target.forward(request, via: node, timeoutMs: timeoutMs, trust: trust)
                response.headers.set("X-MES-Figures", "active \(active.node)")
                return .response(response)
            } catch {
                quietUntil.set(Monotonic.nanoseconds() + retryAfterNs)
            }
        }
        var reply = try local.respond(to: request)
        if case .deferred(let work) = reply { reply = try work.run() }
        if case .response(var response) = reply {
            response.headers.set("X-MES-Figures", "restored")
            return .response(response)
        }
        return reply
    }
}

/// What a standby trusts when it forwards to an active's `https://` advertise URL (README "Two
/// nodes"): every certificate in `caFile` is an anchor (`--peer-ca`, default the node's own
/// `--tls-cert`: the nodes of a group serve the plant's certificate, or ones from its CA); nil: the
/// system's CA store. The active's certificate must name the URL's host.
struct PeerTrust: Sendable {
    var caFile: String?
}

/// The active's `http://host:port` or `https://host:port` (an IPv4 address, or `localhost`: 127.0.0.1).
struct ForwardTarget {
    var host: String
    var port: UInt16
    var secure: Bool

    init?(url: String) {
        var rest: Substring
        if url.hasPrefix("http://") {
            secure = false
            rest = url.dropFirst("http://".count)
        } else if url.hasPrefix("https://") {
            secure = true
            rest = url.dropFirst("https://".count)
        } else {
            return nil
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        guard let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]) else { return nil }
        host = String(rest[..<colon])
        guard !host.isEmpty else { return nil }
        self.port = port
    }

    /// Sends `request` on a connection of its own (over TLS for `https://`, the active's certificate
    /// checked against `trust`) and returns the answer (status, headers, body).
    func forward(_ request: HTTPRequest, via node: String, timeoutMs: Int, trust: PeerTrust = PeerTrust()) throws -> HTTPResponse {
        let fd: Int32
        do {
            fd = try Socket.connect(host: host == "localhost" ? "127.0.0.1" : host, port: port, timeoutMs: 2000)
        } catch {
            throw HTTPError(503, code: "unavailable", "the active node at \(host):\(port) does not answer: try again in a few seconds",
                            headers: ["Retry-After": "2"])
        }
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: timeoutMs)
        var tls: TLSClientConnection?
        if secure {
            do {
                let context = try TLSClientContext(caFile: trust.caFile, anchorAnyInFile: true)
                tls = try TLSClientConnection(context: context, fd: fd, host: host, port: port, hostIsIPv4: Self.isIPv4(host))
            } catch {
                throw HTTPError(503, code: "unavailable", "the active node at \(host):\(port) is not trusted over TLS (\(error)): see README \"Two nodes\" (--peer-ca)",
                                headers: ["Retry-After": "2"])
            }
        }
        defer { tls?.close() }
        var head = "\(request.method.rawValue) \(request.rawPath)\(Self.query(request.query)) HTTP/1.1\r\n"
        // The active checks `Host` against its own names (allowedHosts): it gets its own address.
        head += "Host: \(host):\(port)\r\n"
        for field in request.headers where !Self.hopByHop.contains(field.name.lowercased()) && field.name.lowercased() != "host" {
            head += "\(field.name): \(field.value)\r\n"
        }
        head += "Content-Length: \(request.body.count)\r\nConnection: close\r\nX-Forwarded-By: \(node)\r\n"
        head += "X-Forwarded-For: \(request.remoteAddress.split(separator: ":").dropLast().joined(separator: ":"))\r\n\r\n"
        let bytes = Array(head.utf8) + request.body
        var answer: [UInt8] = []
        do {
            try bytes.withUnsafeBytes { raw in
                if let tls { try tls.writeAll(raw, context: "forward") } else { try Socket.writeAll(fd, raw, context: "forward") }
            }
            var buffer = [UInt8](repeating: 0, count: 16_384)
            while true {
                let n = try buffer.withUnsafeMutableBytes { raw in
                    if let tls { return try tls.read(into: raw, context: "forward") }
                    return try Socket.read(fd, into: raw, context: "forward")
                }
                if n == 0 { break }
                answer += buffer[0..<n]
                if answer.count > 64 << 20 { break }
            }
        } catch {
            throw HTTPError(503, code: "unavailable", "forwarding to the active node failed (\(error)): try again", headers: ["Retry-After": "2"])
        }
        guard let response = Self.parse(answer) else {
            throw HTTPError(502, code: "bad_gateway", "the active node's answer could not be read")
        }
        return response
    }

    static func isIPv4(_ host: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, host, &address) == 1
    }

    static let hopByHop: Set<String> = ["connection", "keep-alive", "content-length", "transfer-encoding", "te", "upgrade",
                                        "proxy-connection", "expect"]

    static func query(_ query: [String: String]) -> String {
        guard !query.isEmpty else { return "" }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return "?" + query.sorted { $0.key < $1.key }.map {
            "\($0.key.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
        }.joined(separator: "&")
    }

    /// Parses a whole HTTP/1.1 answer read until close (Content-Length or close-delimited body).
    static func parse(_ bytes: [UInt8]) -> HTTPResponse? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4, let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else { return nil }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
        var headers = HTTPHeaders()
        var length: Int?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name.lowercased() == "content-length" { length = Int(value); continue }
            if hopByHop.contains(name.lowercased()) || name.lowercased() == "date" || name.lowercased() == "server" { continue }
            headers.add(name, value)
        }
        var body = Array(bytes[(end + 4)...])
        if let length, body.count > length { body = Array(body.prefix(length)) }
        return HTTPResponse(status: status, headers: headers, body: body)
    }
}

/// A standby's live station view, kept from the active's `sample` and `station` events as they are
/// read from the database (the standby polls nothing itself): connection, machine state and the
/// latest signal values, as `/api/stations` shows them on the active.
enum StandbyLiveView {
    static func apply(_ events: [StoredEvent], to live: LiveStations) {
        for event in events where event.type == "sample" || event.type == "station" {
            guard let data = try? JSON.parse(event.data), let station = data["station"]?.stringValue,
                  let time = data["t"]?.stringValue.flatMap(Timestamp.parse) else { continue }
            if event.type == "station" {
                guard let state = data["connection"]?.stringValue.flatMap(ConnectionState.init(rawValue:)) else { continue }
                _ = live.apply(ConnectionChange(station: station, state: state, time: time, reason: data["reason"]?.stringValue))
                continue
            }
            var readings: [SignalReading] = []
            for (name, value) in data["values"]?.objectValue ?? [] {
                readings.append(SignalReading(name: name, value: SignalValue(json: value), quality: .good))
            }
            for name in data["bad"]?.arrayValue ?? [] {
                if let name = name.stringValue { readings.append(SignalReading(name: name, value: nil, quality: .bad)) }
            }
            // A sample means the PLC answered: a standby that started after the station came online
            // has seen no `station` event for it.
            if live.station(station)?.connection != .online, !readings.isEmpty {
                _ = live.apply(ConnectionChange(station: station, state: .online, time: time))
            }
            _ = live.apply(StationPoll(station: station, time: time, readings: readings))
        }
    }
}
