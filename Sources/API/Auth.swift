import Foundation
import HTTP
import Pipeline
import Quality
import Runtime

/// Who the request is from, and what it may do (docs/CONFIG.md `auth`).
///
/// Writes (POST …) need a token with at least the route's role; reads need a `viewer` token
/// unless `anonymousRead`. Failures are audited through ``failures`` (coalesced per client
/// address per minute); tokens are never logged or echoed. An expired token answers 401 with code
/// `token_expired`. An address with ``AuthThrottle/maxFailures`` failed authentications (unknown or
/// expired tokens) within a minute answers 429 for a minute (``throttle``), audited as `auth.throttled`.
public struct AuthPolicy: Sendable {
    public var tokens: TokenStore
    public var anonymousRead: Bool
    /// Where failed authentications go; run it as a service so coalesced counts are written.
    public let failures: AuthFailureAudit
    /// Addresses refused for a while after repeated failures.
    public let throttle: AuthThrottle
    /// The time of token expiry and of the throttle (a manual clock in tests).
    public let clock: any WallClock

    public init(tokens: TokenStore, anonymousRead: Bool, failures: AuthFailureAudit = AuthFailureAudit(),
                throttle: AuthThrottle = AuthThrottle(), clock: any WallClock = SystemWallClock()) {
        self.tokens = tokens
        self.anonymousRead = anonymousRead
        self.failures = failures
        self.throttle = throttle
        self.clock = clock
    }

    /// The principal of a request needing `role`, or a 401/403/429 `HTTPError`. `now` defaults to the policy's clock.
    func authorize(_ request: HTTPRequest, role: Role, backend: any PlantBackend, now: Date? = nil) throws -> Principal? {
        try authorize(request, role: role, audit: { backend.audit($0) }, now: now)
    }

    /// ``authorize(_:role:backend:now:)`` with the audit rows written through `audit`.
    func authorize(_ request: HTTPRequest, role: Role, audit: @escaping @Sendable (AuditEntry) -> Void, now: Date? = nil) throws -> Principal? {
        let now = now ?? clock.now()
        let target = "\(request.method.rawValue) \(request.path)"
        let host = AuthFailureAudit.host(of: request.remoteAddress)
        if let until = throttle.refusedUntil(host, now: now) {
            failures.record(AuditEntry(t: now, user: "unknown", role: nil, action: "auth.throttled", target: target,
                                       detail: "refused: too many failed authentications"),
                            address: request.remoteAddress, sink: audit)
            let seconds = max(1, Int(until.timeIntervalSince(now).rounded(.up)))
            throw HTTPError(429,
                            "too many failed authentications from this address; retry in \(seconds) s",
                            headers: ["Retry-After": String(seconds)])
        }
        switch BearerAuth.authenticate(request.headers["Authorization"], tokens: tokens, now: now) {
        case .authenticated(let principal):
            guard principal.has(role) else {
                failures.record(AuditEntry(t: now, user: principal.user, role: principal.role, action: "auth.forbidden",
                                           target: target, detail: "role \(principal.role.rawValue) below \(role.rawValue)"),
                                address: request.remoteAddress, sink: audit)
                throw HTTPError(403, code: "forbidden", "\(request.method.rawValue) \(request.path.prefix(200)) needs the \(role.rawValue) role; \(principal.user) has \(principal.role.rawValue)")
            }
            return principal
        case .anonymous:
            if role == .viewer && anonymousRead { return nil }
            failures.record(AuditEntry(t: now, user: "anonymous", role: nil, action: "auth.missing", target: target, detail: "no token"),
                            address: request.remoteAddress, sink: audit)
            throw HTTPError(401, code: "unauthorized", tokens.count == 0
                ? "writes are disabled: the plant config has no tokens file"
                : "send Authorization: Bearer <token>", headers: ["WWW-Authenticate": "Bearer"])
        case .rejected(let reason):
            failures.record(AuditEntry(t: now, user: "unknown", role: nil, action: "auth.failed", target: target, detail: reason),
                            address: request.remoteAddress, sink: audit)
            failed(host: host, target: target, now: now, audit: audit)
            throw HTTPError(401, code: "unauthorized", "the token is not valid", headers: ["WWW-Authenticate": "Bearer"])
        case .expired(let grant):
            failures.record(AuditEntry(t: now, user: grant.principal.user, role: grant.principal.role, action: "auth.expired", target: target,
                                       detail: "token expired at \(grant.expires.map(Timestamp.format) ?? "?")"),
                            address: request.remoteAddress, sink: audit)
            failed(host: host, target: target, now: now, audit: audit)
            throw HTTPError(401, code: "token_expired", "the token expired at \(grant.expires.map(Timestamp.format) ?? "?"); ask for a new one",
                            headers: ["WWW-Authenticate": "Bearer error=\"invalid_token\""])
        }
    }

    /// Counts a failure; the one that starts a refusal is written to the audit at once (not coalesced).
    private func failed(host: String, target: String, now: Date, audit: @Sendable (AuditEntry) -> Void) {
        guard let until = throttle.recordFailure(host, now: now) else { return }
        audit(AuditEntry(t: now, user: "unknown", role: nil, action: "auth.throttled", target: target,
                                 detail: "\(throttle.maxFailures) failed authentications from \(host) within \(Int(throttle.windowSeconds)) s: "
                                     + "its requests answer 429 until \(Timestamp.format(until))"))
    }

    /// The principal a request's token stands for, without auditing or refusing (what a read
    /// may show: PLC endpoints from `engineer` up). Nil for no token or a token not known.
    public func viewer(of request: HTTPRequest) -> Principal? {
        if case .authenticated(let principal) = BearerAuth.authenticate(request.headers["Authorization"], tokens: tokens, now: clock.now()) {
            return principal
        }
        return nil
    }
}

/// Failed authentications written to the audit so that they cannot fill the disk.
///
/// Per client address (the port dropped), the first failure of a minute is written at once,
/// with its target cut to 256 characters and the address; the further failures of that minute are
/// counted and written as one row, `N more failures from A`, when the minute is over (by
/// ``flushDue(now:)``, which ``run()`` calls every few seconds, and at stop). At most 4096
/// addresses are tracked at once; past that the rest share one entry. Real actions are not
/// coalesced: they do not pass through here.
public final class AuthFailureAudit: Service {
    public let name = "audit.auth-failures"
    /// Characters of a request target kept in a row.
    public static let maxTarget = 256
    public let windowSeconds: Double
    public let maxAddresses: Int
    private let state = Locked(State())

    private struct State {
        var windows: [String: Window] = [:]
        var sink: (@Sendable (AuditEntry) -> Void)?
    }

    private struct Window {
        var start: Date
        var more: Int
        var last: AuditEntry
    }

    public init(windowSeconds: Double = 60, maxAddresses: Int = 4096) {
        self.windowSeconds = windowSeconds
        self.maxAddresses = maxAddresses
    }

    /// `1.2.3.4:5678` → `1.2.3.4`; `[::1]:80` → `::1`.
    static func host(of remote: String) -> String {
        if remote.hasPrefix("["), let close = remote.firstIndex(of: "]") {
            return String(remote[remote.index(after: remote.startIndex)..<close])
        }
        if let colon = remote.lastIndex(of: ":"), remote.firstIndex(of: ":") == colon { return String(remote[..<colon]) }
        return remote.isEmpty ? "unknown" : remote
    }

    /// Records one failure from `address` (`host:port`); writes through `sink` when a row is due.
    public func record(_ entry: AuditEntry, address: String, sink: @escaping @Sendable (AuditEntry) -> Void) {
        var entry = entry
        var host = Self.host(of: address)
        if entry.target.utf8.count > Self.maxTarget {
            let cut = String(entry.target.prefix(Self.maxTarget))
            if cut != entry.target { entry.target = cut + "…" }
        }
        let windowSeconds = windowSeconds, maxAddresses = maxAddresses
        let rows = state.withLock { state in
            state.sink = sink
            var rows = Self.takeDue(&state.windows, now: entry.t, windowSeconds: windowSeconds)
            if state.windows[host] == nil && state.windows.count >= maxAddresses { host = "other addresses" }
            if var window = state.windows[host] {
                window.more += 1
                window.last = entry
                state.windows[host] = window
            } else {
                entry.detail += " from \(host)"
                rows.append(entry)
                state.windows[host] = Window(start: entry.t, more: 0, last: entry)
            }
            return rows
        }
        for row in rows { sink(row) }
    }

    /// Writes the counts of the minutes that are over.
    public func flushDue(now: Date) {
        let (rows, sink) = takeDue(now: now)
        if let sink { for row in rows { sink(row) } }
    }

    /// Writes every count now (at stop).
    public func flushAll() {
        let (rows, sink) = takeDue(now: .distantFuture)
        if let sink { for row in rows { sink(row) } }
    }

    /// Addresses being counted now.
    public var trackedAddresses: Int { state.withLock { $0.windows.count } }

    /// The rows due at `now`, and the sink to write them to.
    private func takeDue(now: Date) -> ([AuditEntry], (@Sendable (AuditEntry) -> Void)?) {
        let windowSeconds = windowSeconds
        return state.withLock { state in
            (Self.takeDue(&state.windows, now: now, windowSeconds: windowSeconds), state.sink)
        }
    }

    private static func takeDue(_ windows: inout [String: Window], now: Date, windowSeconds: Double) -> [AuditEntry] {
        var rows: [AuditEntry] = []
        for (host, window) in windows where now.timeIntervalSince(window.start) >= windowSeconds {
            windows[host] = nil
            guard window.more > 0 else { continue }
            let last = window.last
            rows.append(AuditEntry(t: min(now, window.start.addingTimeInterval(windowSeconds)), user: last.user, role: last.role,
                                   action: last.action, target: last.target,
                                   detail: "\(window.more) more failures from \(host) since \(Timestamp.format(window.start)) (last: \(last.detail))"))
        }
        return rows
    }

    public func run() async throws {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 5_000_000_000)
            flushDue(now: Date())
        }
        flushAll()
    }
}

/// Addresses refused after repeated failed authentications: ``maxFailures`` within
/// ``windowSeconds`` → refused for ``refusalSeconds`` (429). Per client address (the port dropped);
/// at most ``maxAddresses`` are tracked, and past that new addresses are not counted until old
/// entries end (the audit still records every failure). Times come from the caller (the policy's clock).
public final class AuthThrottle: Sendable {
    public let maxFailures: Int
    public let windowSeconds: Double
    public let refusalSeconds: Double
    public let maxAddresses: Int
    private let state = Locked<[String: Record]>([:])

    private struct Record {
        /// Times of the failures within the window, oldest first (at most `maxFailures`).
        var failures: [Date] = []
        var refusedUntil: Date?
    }

    public init(maxFailures: Int = 10, windowSeconds: Double = 60, refusalSeconds: Double = 60, maxAddresses: Int = 4096) {
        self.maxFailures = max(1, maxFailures)
        self.windowSeconds = windowSeconds
        self.refusalSeconds = refusalSeconds
        self.maxAddresses = maxAddresses
    }

    /// Until when `host` is refused at `now`, or nil.
    public func refusedUntil(_ host: String, now: Date) -> Date? {
        state.withLock { records in
            guard let until = records[host]?.refusedUntil else { return nil }
            if now < until { return until }
            records[host] = nil
            return nil
        }
    }

    /// Counts a failure from `host` at `now`; the end of the refusal when this failure starts one.
    public func recordFailure(_ host: String, now: Date) -> Date? {
        let maxFailures = maxFailures, windowSeconds = windowSeconds, refusalSeconds = refusalSeconds, maxAddresses = maxAddresses
        return state.withLock { records in
            if records[host] == nil && records.count >= maxAddresses {
                records = records.filter { _, record in
                    (record.refusedUntil.map { now < $0 } ?? false) || record.failures.last.map { now.timeIntervalSince($0) < windowSeconds } ?? false
                }
                guard records.count < maxAddresses else { return nil }
            }
            var record = records[host] ?? Record()
            if let until = record.refusedUntil {
                if now < until { return nil }
                record = Record()
            }
            record.failures.removeAll { now.timeIntervalSince($0) >= windowSeconds }
            record.failures.append(now)
            var started: Date?
            if record.failures.count >= maxFailures {
                let until = now.addingTimeInterval(refusalSeconds)
                record.refusedUntil = until
                record.failures = []
                started = until
            }
            records[host] = record
            return started
        }
    }

    /// Addresses tracked now.
    public var trackedAddresses: Int { state.withLock { $0.count } }
}

extension APIRoutes {
    /// Reads (`/api/…` and `/metrics`) need a `viewer` token unless `anonymousRead` (docs/CONFIG.md `auth`).
    public static func readAuthMiddleware(auth: AuthPolicy, backend: any PlantBackend) -> any HTTPMiddleware {
        ClosureMiddleware { request, next in
            if !auth.anonymousRead, request.method == .get || request.method == .head,
               (request.path.hasPrefix("/api/") && request.path != "/api/health") || request.path == "/metrics" {
                _ = try auth.authorize(request, role: .viewer, backend: backend)
            }
            return try next(request)
        }
    }
}

/// The outcome of checking an `Authorization` header.
public enum AuthOutcome: Sendable, Equatable {
    /// No header (anonymous).
    case anonymous
    /// A known token.
    case authenticated(Principal)
    /// A known token past its `expires` time.
    case expired(TokenGrant)
    /// A header that is not `Bearer …`, or an unknown token.
    case rejected(reason: String)
}

/// `Authorization: Bearer TOKEN` (RFC 6750): the scheme is matched without case; the token is
/// looked up in the ``TokenStore`` in constant time.
public enum BearerAuth {
    /// Checks an `Authorization` header value.
    public static func authenticate(_ header: String?, tokens: TokenStore, now: Date = Date()) -> AuthOutcome {
        guard let header, !header.isEmpty else { return .anonymous }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return .rejected(reason: "the Authorization header is not a Bearer token")
        }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        guard let grant = tokens.grant(forToken: token) else { return .rejected(reason: "unknown token") }
        if grant.isExpired(at: now) { return .expired(grant) }
        return .authenticated(grant.principal)
    }
}
