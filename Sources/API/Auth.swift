import Foundation
import HTTP
import Pipeline
import Quality
import Runtime

/// Who the request is from, and what it may do (docs/CONFIG.md `auth`).
///
/// Writes (POST …) need a token with at least the route's role; reads need a `viewer` token
/// unless `anonymousRead`. Failures are audited through ``failures`` (coalesced per client
/// address per minute); tokens are never logged or echoed.
public struct AuthPolicy: Sendable {
    public var tokens: TokenStore
    public var anonymousRead: Bool
    /// Where failed authentications go; run it as a service so coalesced counts are written.
    public let failures: AuthFailureAudit

    public init(tokens: TokenStore, anonymousRead: Bool, failures: AuthFailureAudit = AuthFailureAudit()) {
        self.tokens = tokens
        self.anonymousRead = anonymousRead
        self.failures = failures
    }

    /// The principal of a request needing `role`, or a 401/403 `HTTPError`.
    func authorize(_ request: HTTPRequest, role: Role, backend: any PlantBackend, now: Date) throws -> Principal? {
        let target = "\(request.method.rawValue) \(request.path)"
        switch BearerAuth.authenticate(request.headers["Authorization"], tokens: tokens) {
        case .authenticated(let principal):
            guard principal.has(role) else {
                failures.record(AuditEntry(t: now, user: principal.user, role: principal.role, action: "auth.forbidden",
                                           target: target, detail: "role \(principal.role.rawValue) below \(role.rawValue)"),
                                address: request.remoteAddress, sink: backend.audit)
                throw HTTPError(403, code: "forbidden", "\(request.method.rawValue) \(request.path.prefix(200)) needs the \(role.rawValue) role; \(principal.user) has \(principal.role.rawValue)")
            }
            return principal
        case .anonymous:
            if role == .viewer && anonymousRead { return nil }
            failures.record(AuditEntry(t: now, user: "anonymous", role: nil, action: "auth.missing", target: target, detail: "no token"),
                            address: request.remoteAddress, sink: backend.audit)
            throw HTTPError(401, code: "unauthorized", tokens.count == 0
                ? "writes are disabled: the plant config has no tokens file"
                : "send Authorization: Bearer <token>", headers: ["WWW-Authenticate": "Bearer"])
        case .rejected(let reason):
            failures.record(AuditEntry(t: now, user: "unknown", role: nil, action: "auth.failed", target: target, detail: reason),
                            address: request.remoteAddress, sink: backend.audit)
            throw HTTPError(401, code: "unauthorized", "the token is not valid", headers: ["WWW-Authenticate": "Bearer"])
        }
    }

    /// The principal a request's token stands for, without auditing or refusing (what a read
    /// may show: PLC endpoints from `engineer` up). Nil for no token or a token not known.
    public func viewer(of request: HTTPRequest) -> Principal? {
        if case .authenticated(let principal) = BearerAuth.authenticate(request.headers["Authorization"], tokens: tokens) {
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

extension APIRoutes {
    /// Reads (`/api/…` and `/metrics`) need a `viewer` token unless `anonymousRead` (docs/CONFIG.md `auth`).
    public static func readAuthMiddleware(auth: AuthPolicy, backend: any PlantBackend) -> any HTTPMiddleware {
        ClosureMiddleware { request, next in
            if !auth.anonymousRead, request.method == .get || request.method == .head,
               (request.path.hasPrefix("/api/") && request.path != "/api/health") || request.path == "/metrics" {
                _ = try auth.authorize(request, role: .viewer, backend: backend, now: Date())
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
    /// A header that is not `Bearer …`, or an unknown token.
    case rejected(reason: String)
}

/// `Authorization: Bearer TOKEN` (RFC 6750): the scheme is matched without case; the token is
/// looked up in the ``TokenStore`` in constant time.
public enum BearerAuth {
    /// Checks an `Authorization` header value.
    public static func authenticate(_ header: String?, tokens: TokenStore) -> AuthOutcome {
        guard let header, !header.isEmpty else { return .anonymous }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return .rejected(reason: "the Authorization header is not a Bearer token")
        }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        guard let principal = tokens.principal(forToken: token) else { return .rejected(reason: "unknown token") }
        return .authenticated(principal)
    }
}
