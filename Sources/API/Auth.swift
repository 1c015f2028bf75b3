import Foundation
import HTTP
import Pipeline
import Quality
import Runtime

/// Who the request is from, and what it may do (docs/CONFIG.md `auth`).
///
/// Writes (POST …) need a token with at least the route's role; reads need a `viewer` token
/// unless `anonymousRead`. Failures are audited; tokens are never logged or echoed.
public struct AuthPolicy: Sendable {
    public var tokens: TokenStore
    public var anonymousRead: Bool

    public init(tokens: TokenStore, anonymousRead: Bool) {
        self.tokens = tokens
        self.anonymousRead = anonymousRead
    }

    /// The principal of a request needing `role`, or a 401/403 `HTTPError`.
    func authorize(_ request: HTTPRequest, role: Role, backend: any PlantBackend, now: Date) throws -> Principal? {
        switch BearerAuth.authenticate(request.headers["Authorization"], tokens: tokens) {
        case .authenticated(let principal):
            guard principal.has(role) else {
                backend.audit(AuditEntry(t: now, user: principal.user, role: principal.role, action: "auth.forbidden",
                                         target: "\(request.method.rawValue) \(request.path)",
                                         detail: "role \(principal.role.rawValue) below \(role.rawValue)"))
                throw HTTPError(403, code: "forbidden", "\(request.method.rawValue) \(request.path) needs the \(role.rawValue) role; \(principal.user) has \(principal.role.rawValue)")
            }
            return principal
        case .anonymous:
            if role == .viewer && anonymousRead { return nil }
            backend.audit(AuditEntry(t: now, user: "anonymous", role: nil, action: "auth.missing",
                                     target: "\(request.method.rawValue) \(request.path)", detail: "no token"))
            throw HTTPError(401, code: "unauthorized", tokens.count == 0
                ? "writes are disabled: the plant config has no tokens file"
                : "send Authorization: Bearer <token>", headers: ["WWW-Authenticate": "Bearer"])
        case .rejected(let reason):
            backend.audit(AuditEntry(t: now, user: "unknown", role: nil, action: "auth.failed",
                                     target: "\(request.method.rawValue) \(request.path)", detail: reason))
            throw HTTPError(401, code: "unauthorized", "the token is not valid", headers: ["WWW-Authenticate": "Bearer"])
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
