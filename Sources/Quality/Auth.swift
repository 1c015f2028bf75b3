import Foundation
import PlantModel
import Runtime

/// A role; each has the rights of the ones before it: viewer < operator < quality < engineer < admin.
public enum Role: String, Sendable, Equatable, CaseIterable, Comparable {
    case viewer, `operator`, quality, engineer, admin

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .quality: 2
        case .engineer: 3
        case .admin: 4
        }
    }

    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}

/// Who acts: the user and role a token stands for. The acting user always comes from here,
/// never from a request body.
public struct Principal: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var role: Role

    public init(user: String, role: Role) {
        self.user = user
        self.role = role
    }

    /// The automatic actor (`raisedBy: system`).
    public static let system = Principal(user: "system", role: .admin)

    /// Whether this principal has at least `role`.
    public func has(_ required: Role) -> Bool { role >= required }

    public var description: String { "\(user) (\(role.rawValue))" }
}

/// The tokens file (`[{"token", "user", "role"}]`), kept in memory; tokens never leave it.
///
/// Lookups compare the presented token with every stored token in constant time (no early exit on
/// the first differing byte, no early exit on a match), so timing tells nothing about the tokens.
/// Its `description` never shows a token.
public struct TokenStore: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    private struct Entry: Sendable {
        let token: [UInt8]
        let principal: Principal
    }

    private let entries: [Entry]

    /// A store from (token, principal) pairs.
    public init(_ tokens: [(token: String, principal: Principal)]) {
        entries = tokens.map { Entry(token: Array($0.token.utf8), principal: $0.principal) }
    }

    /// An empty store: every token is rejected (with no tokens file every write answers 401).
    public static let empty = TokenStore([])

    public var count: Int { entries.count }
    public var description: String { "TokenStore(\(entries.count) tokens)" }
    public var debugDescription: String { description }

    /// Reads a tokens file. Errors name the file and the JSON path (`[2].role`), never a token's value.
    public static func load(path: String) throws -> TokenStore {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, path: "", message: "cannot be read (no such file, or no permission)")
        }
        let json: JSON
        do {
            json = try JSON.parse(bytes: [UInt8](data))
        } catch let error as JSONParseError {
            throw ConfigError(file: path, path: "", message: "invalid JSON at byte \(error.offset): \(error.reason)")
        }
        return try decode(ConfigNode(json: json, path: "", file: path))
    }

    /// Decodes the tokens array.
    public static func decode(_ root: ConfigNode) throws -> TokenStore {
        var tokens: [(token: String, principal: Principal)] = []
        for element in try root.elements() {
            try element.rejectUnknownKeys(["token", "user", "role"])
            let tokenNode = try element.required("token")
            guard case .string(let token) = tokenNode.json else { throw tokenNode.error("must be a string") }
            guard token.utf8.count >= 8 else { throw tokenNode.error("is too short (at least 8 characters)") }
            if tokens.contains(where: { $0.token == token }) { throw tokenNode.error("is the same token as an earlier entry") }
            let user = try element.required("user").nonEmptyString()
            let roleNode = try element.required("role")
            let roleText = try roleNode.string()
            guard let role = Role(rawValue: roleText) else {
                throw roleNode.error("\"\(roleText)\" is not a role (viewer, operator, quality, engineer, admin)")
            }
            tokens.append((token, Principal(user: user, role: role)))
        }
        return TokenStore(tokens)
    }

    /// The principal of a token, or nil. Constant time in the token's content.
    public func principal(forToken token: String) -> Principal? {
        let presented = Array(token.utf8)
        var found: Principal?
        for entry in entries {
            // Evaluate every entry; a match does not end the loop.
            if TokenStore.constantTimeEquals(presented, entry.token) { found = entry.principal }
        }
        return found
    }

    /// Compares two byte strings in time that depends only on their lengths, not their content.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference: UInt = a.count == b.count ? 0 : 1
        let n = max(a.count, b.count)
        if n == 0 { return difference == 0 }
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            difference |= UInt(x ^ y)
        }
        return difference == 0
    }
}

/// One line of the audit trail (`GET /api/audit`, docs/openapi.json): append-only.
public struct AuditEntry: Sendable, Equatable {
    /// Assigned by the store when appended (nil before).
    public var id: Int64?
    public var t: Date
    public var user: String
    /// The role, or nil for a failed authentication.
    public var role: Role?
    /// `alert.acknowledge`, `alert.shelve`, `defect.raise`, `defect.resolve`, `vehicle.hold`,
    /// `vehicle.release`, `vehicle.scrap`, `auth.failed`.
    public var action: String
    /// What was acted on: `alert:12`, `defect:7`, `vehicle:VIN…`, or the request path.
    public var target: String
    public var detail: String

    public init(id: Int64? = nil, t: Date, user: String, role: Role?, action: String, target: String, detail: String) {
        self.id = id
        self.t = t
        self.user = user
        self.role = role
        self.action = action
        self.target = target
        self.detail = detail
    }

    /// An action by a principal.
    public init(t: Date, by principal: Principal, action: String, target: String, detail: String) {
        self.init(t: t, user: principal.user, role: principal.role, action: action, target: target, detail: detail)
    }

    /// A failed authentication. The token is never recorded.
    public static func authenticationFailed(at t: Date, method: String, path: String, reason: String, remote: String? = nil) -> AuditEntry {
        AuditEntry(t: t, user: "unknown", role: nil, action: "auth.failed", target: path,
                   detail: "\(method) \(path): \(reason)" + (remote.map { " from \($0)" } ?? ""))
    }

    /// A vehicle hold, release or scrap (`action`: `hold`, `release`, `scrap`).
    public static func vehicle(_ action: String, vehicleId: String, reason: String?, by principal: Principal, at t: Date) -> AuditEntry {
        AuditEntry(t: t, by: principal, action: "vehicle.\(action)", target: "vehicle:\(vehicleId)", detail: reason ?? "")
    }

    /// The contract's JSON.
    public var json: JSON {
        .obj([
            ("id", id.map { .int($0) } ?? .null),
            ("t", .string(Timestamp.format(t))),
            ("user", .string(user)),
            ("role", .str(role?.rawValue)),
            ("action", .string(action)),
            ("target", .string(target)),
            ("detail", .string(detail)),
        ])
    }
}
