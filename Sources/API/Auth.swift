import Foundation
import HTTP
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
        switch tokens.authenticate(authorization: request.headers["Authorization"]) {
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
