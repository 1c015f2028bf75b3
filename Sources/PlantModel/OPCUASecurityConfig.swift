import Foundation
import Runtime

/// An OPC UA station's `security` block (docs/CONFIG.md, "OPC UA security"): the SecurityPolicy and
/// message security mode of the endpoint to use, and the user name whose password is read from an
/// environment variable at start (never from the config file).
public struct OPCUASecurityConfig: Sendable, Equatable {
    /// The SecurityPolicy names a station may ask for (OPC 10000-7).
    public enum Policy: String, Sendable, Equatable, CaseIterable {
        case none = "None"
        case basic256Sha256 = "Basic256Sha256"
        case aes128Sha256RsaOaep = "Aes128_Sha256_RsaOaep"
        case aes256Sha256RsaPss = "Aes256_Sha256_RsaPss"
    }

    public enum Mode: String, Sendable, Equatable, CaseIterable {
        case none = "None"
        case sign = "Sign"
        case signAndEncrypt = "SignAndEncrypt"
    }

    public var policy: Policy
    public var mode: Mode
    /// The user name of the session; nil: anonymous.
    public var user: String?
    /// The environment variable that holds `user`'s password.
    public var passwordEnv: String?
    /// The block's JSON path (`stations[3].security`), for errors found at start.
    public var path: String

    public init(policy: Policy, mode: Mode, user: String? = nil, passwordEnv: String? = nil, path: String = "security") {
        self.policy = policy
        self.mode = mode
        self.user = user
        self.passwordEnv = passwordEnv
        self.path = path
    }

    /// Whether the channel is signed (policy other than None).
    public var isSecure: Bool { policy != .none }

    /// Decodes and checks a station's `security` block: policy None goes with mode None, any other policy
    /// with Sign or SignAndEncrypt (the default); `user` and `passwordEnv` come together.
    static func decode(_ node: ConfigNode) throws -> OPCUASecurityConfig {
        try node.rejectUnknownKeys(["policy", "mode", "user", "passwordEnv"])
        let policyNode = try node.required("policy")
        let policyText = try policyNode.string()
        guard let policy = Policy(rawValue: policyText) else {
            throw policyNode.error("\(quoted(policyText)) is not a SecurityPolicy (\(Policy.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var mode: Mode = policy == .none ? .none : .signAndEncrypt
        if let modeNode = try node.optional("mode") {
            let text = try modeNode.string()
            guard let chosen = Mode(rawValue: text) else {
                throw modeNode.error("\(quoted(text)) is not a security mode (\(Mode.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            if policy == .none && chosen != .none {
                throw modeNode.error("mode \(text) needs a SecurityPolicy other than None (policy is None)")
            }
            if policy != .none && chosen == .none {
                throw modeNode.error("mode None does not go with policy \(policy.rawValue): use Sign or SignAndEncrypt, or policy None")
            }
            mode = chosen
        }
        let user = try node.optional("user")?.nonEmptyString()
        var passwordEnv: String?
        if let envNode = try node.optional("passwordEnv") {
            let name = try envNode.nonEmptyString()
            guard Self.isVariableName(name) else {
                throw envNode.error("\(quoted(name)) is not an environment variable name (letters, digits and _, not starting with a digit)")
            }
            passwordEnv = name
        }
        if user != nil && passwordEnv == nil {
            throw ConfigError(file: node.file, path: node.childPath("passwordEnv"),
                              message: "is required with user: the environment variable that holds the password (passwords never go in the config)")
        }
        if user == nil && passwordEnv != nil {
            throw ConfigError(file: node.file, path: node.childPath("user"), message: "is required with passwordEnv")
        }
        return OPCUASecurityConfig(policy: policy, mode: mode, user: user, passwordEnv: passwordEnv, path: node.path)
    }

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(48...57).contains(first) else { return false }
        return name.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 }
    }

    /// The password from `passwordEnv` in `environment`; nil for an anonymous session.
    /// - Throws: ``ConfigError`` naming `….security.passwordEnv` when the variable is not set (or empty).
    public func password(environment: [String: String], file: String) throws -> String? {
        guard let user, let passwordEnv else { return nil }
        guard let value = environment[passwordEnv], !value.isEmpty else {
            throw ConfigError(file: file, path: "\(path).passwordEnv",
                              message: "environment variable \(passwordEnv) (the password of user \(quoted(user))) is not set")
        }
        return value
    }
}

extension PlantConfig {
    /// The OPC UA stations whose `security` asks for a policy other than None.
    public var secureOPCUAStations: [StationConfig] {
        stations.filter { $0.protocol == .opcua && $0.security?.isSecure == true }
    }

    /// The password of every station with a `user`, by station id, read from `environment`.
    /// - Throws: ``ConfigError`` for the first station whose `passwordEnv` is not set.
    public func opcuaPasswords(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String: String] {
        var passwords: [String: String] = [:]
        for station in stations where station.protocol == .opcua {
            if let password = try station.security?.password(environment: environment, file: file) { passwords[station.id] = password }
        }
        return passwords
    }

    /// The PKI folder (`pki`; README "Connecting to a PLC that requires security"): as configured
    /// (relative to the config file), else `pki` beside the database.
    public func pkiFolder(database: String) -> String {
        if let pki { return pki }
        let folder = URL(fileURLWithPath: database).deletingLastPathComponent()
        return folder.appendingPathComponent("pki").path
    }
}
