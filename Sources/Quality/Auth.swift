import COpenSSL
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

/// What a token grants: who it stands for, and until when (nil: no end).
public struct TokenGrant: Sendable, Equatable {
    public var principal: Principal
    public var expires: Date?

    public init(principal: Principal, expires: Date? = nil) {
        self.principal = principal
        self.expires = expires
    }

    /// Whether the token has expired at `now` (its `expires` time itself is already past).
    public func isExpired(at now: Date) -> Bool { expires.map { now >= $0 } ?? false }
}

/// The tokens file (docs/CONFIG.md `auth.tokensFile`), kept in memory; tokens never leave it.
///
/// An entry is `{"token", "user", "role"}` or, with only the token's hash stored,
/// `{"tokenSha256": HEX, "user", "role"}` (what `mes-server tokens add` writes); either may carry
/// `"expires"` (RFC 3339). Lookups compare the presented token (and its SHA-256, when any entry is
/// hashed) with every stored entry in constant time (no early exit on the first differing byte, no
/// early exit on a match), so timing tells nothing about the tokens. Its `description` never shows a token.
public struct TokenStore: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    private enum Secret: Sendable {
        case clear([UInt8])
        case sha256([UInt8])
    }

    private struct Entry: Sendable {
        let secret: Secret
        let grant: TokenGrant
    }

    private let entries: [Entry]
    private let anyHashed: Bool

    /// A store from (token, principal) pairs, tokens in clear, none expiring.
    public init(_ tokens: [(token: String, principal: Principal)]) {
        self.init(entries: tokens.map { Entry(secret: .clear(Array($0.token.utf8)), grant: TokenGrant(principal: $0.principal)) })
    }

    private init(entries: [Entry]) {
        self.entries = entries
        anyHashed = entries.contains { if case .sha256 = $0.secret { return true } else { return false } }
    }

    /// An empty store: every token is rejected (with no tokens file every write answers 401).
    public static let empty = TokenStore([])

    public var count: Int { entries.count }
    public var description: String { "TokenStore(\(entries.count) tokens)" }
    public var debugDescription: String { description }

    /// Reads a tokens file. Errors name the file and the JSON path (`[2].role`), never a token's value.
    public static func load(path: String) throws -> TokenStore {
        try decode(readFile(path: path))
    }

    /// The tokens file's JSON as a config node (for reading it and for rewriting it).
    public static func readFile(path: String) throws -> ConfigNode {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, path: "", message: "cannot be read (no such file, or no permission)")
        }
        let json: JSON
        do {
            json = try JSON.parse(bytes: [UInt8](data))
        } catch let error as JSONParseError {
            throw ConfigError(file: path, path: "", message: "invalid JSON at byte \(error.offset): \(error.reason)")
        }
        return ConfigNode(json: json, path: "", file: path)
    }

    /// Decodes the tokens array.
    public static func decode(_ root: ConfigNode) throws -> TokenStore {
        var entries: [Entry] = []
        var hashes: [[UInt8]] = []
        for element in try root.elements() {
            try element.rejectUnknownKeys(["token", "tokenSha256", "user", "role", "expires"])
            let secret: Secret
            let hash: [UInt8]
            let secretNode: ConfigNode
            switch (try element.optional("token"), try element.optional("tokenSha256")) {
            case (let tokenNode?, nil):
                guard case .string(let token) = tokenNode.json else { throw tokenNode.error("must be a string") }
                guard token.utf8.count >= 8 else { throw tokenNode.error("is too short (at least 8 characters)") }
                secret = .clear(Array(token.utf8))
                hash = TokenHash.sha256(Array(token.utf8))
                secretNode = tokenNode
            case (nil, let hashNode?):
                guard let bytes = TokenHash.bytes(hex: try hashNode.string()), bytes.count == 32 else {
                    throw hashNode.error("must be the SHA-256 of the token as 64 hexadecimal digits")
                }
                secret = .sha256(bytes)
                hash = bytes
                secretNode = hashNode
            case (_?, _?):
                throw element.error("has both \"token\" and \"tokenSha256\": keep one")
            case (nil, nil):
                throw element.error("needs \"token\" or \"tokenSha256\"")
            }
            if hashes.contains(hash) {
                throw secretNode.error("is the same token as an earlier entry")
            }
            hashes.append(hash)
            let user = try element.required("user").nonEmptyString()
            let roleNode = try element.required("role")
            let roleText = try roleNode.string()
            guard let role = Role(rawValue: roleText) else {
                throw roleNode.error("\"\(roleText)\" is not a role (viewer, operator, quality, engineer, admin)")
            }
            var expires: Date?
            if let expiresNode = try element.optional("expires") {
                guard let date = Timestamp.parse(try expiresNode.string()) else {
                    throw expiresNode.error("must be an RFC 3339 time such as 2027-01-31T00:00:00Z")
                }
                expires = date
            }
            entries.append(Entry(secret: secret, grant: TokenGrant(principal: Principal(user: user, role: role), expires: expires)))
        }
        return TokenStore(entries: entries)
    }

    /// What a token grants (expired or not), or nil for a token not known. Constant time in the token's content.
    public func grant(forToken token: String) -> TokenGrant? {
        let presented = Array(token.utf8)
        let presentedHash = anyHashed ? TokenHash.sha256(presented) : []
        var found: TokenGrant?
        for entry in entries {
            // Evaluate every entry; a match does not end the loop.
            let match: Bool
            switch entry.secret {
            case .clear(let stored): match = TokenStore.constantTimeEquals(presented, stored)
            case .sha256(let stored): match = TokenStore.constantTimeEquals(presentedHash, stored)
            }
            if match { found = entry.grant }
        }
        return found
    }

    /// The principal of a token that has not expired at `now`, or nil. Constant time in the token's content.
    public func principal(forToken token: String, at now: Date = Date()) -> Principal? {
        guard let grant = grant(forToken: token), !grant.isExpired(at: now) else { return nil }
        return grant.principal
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

/// SHA-256 and new random tokens (OpenSSL's libcrypto).
public enum TokenHash {
    /// The SHA-256 of `bytes` (32 bytes).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        let ok = bytes.withUnsafeBytes { raw in
            digest.withUnsafeMutableBufferPointer { out in cossl_sha256(raw.baseAddress, raw.count, out.baseAddress) }
        }
        precondition(ok == 1, "OpenSSL could not compute a SHA-256")
        return digest
    }

    /// The SHA-256 of a token's UTF-8 as 64 lowercase hexadecimal digits (a tokens file's `tokenSha256`).
    public static func sha256Hex(_ token: String) -> String {
        hex(sha256(Array(token.utf8)))
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hexadecimal digits (either case) as bytes; nil for an odd count or another character.
    public static func bytes(hex text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let high = value(chars[i]), let low = value(chars[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    /// A new token: 32 bytes from OpenSSL's random generator as base64url without padding (43 characters).
    public static func newToken() throws -> String {
        var random = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&random, Int32(random.count)) == 1 else {
            throw ConfigError(file: "", path: "", message: "OpenSSL's random generator failed")
        }
        return Data(random).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
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
