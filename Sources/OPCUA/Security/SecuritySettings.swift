import Foundation

// The public face of OPC UA security for the rest of the application: which policy and mode, which
// certificate and key, who decides whether a peer certificate is trusted, which user logs in.
// README.md ("OPC UA security") describes it; docs/ARCHITECTURE.md shows where it sits in the channel.

/// An OPC UA SecurityPolicy (OPC UA Part 7): the algorithms a secure channel uses.
public enum SecurityPolicy: String, Sendable, CaseIterable {
    case none = "None"
    case basic256Sha256 = "Basic256Sha256"
    case aes128Sha256RsaOaep = "Aes128_Sha256_RsaOaep"
    case aes256Sha256RsaPss = "Aes256_Sha256_RsaPss"

    /// `http://opcfoundation.org/UA/SecurityPolicy#<name>`.
    public var uri: String { "http://opcfoundation.org/UA/SecurityPolicy#" + rawValue }

    /// The policy named by `uri`, nil for one we do not implement (Basic128Rsa15, Basic256 …).
    public init?(uri: String) {
        let prefix = "http://opcfoundation.org/UA/SecurityPolicy#"
        guard uri.hasPrefix(prefix), let policy = SecurityPolicy(rawValue: String(uri.dropFirst(prefix.count))) else { return nil }
        self = policy
    }
}

/// Decides whether a peer's application instance certificate is trusted (the PKI store implements it).
public protocol CertificateTrust: Sendable {
    /// nil when the peer certificate is accepted; else the status to fail with (BadCertificateUntrusted,
    /// BadCertificateTimeInvalid, BadCertificateUriInvalid, BadCertificateUseNotAllowed …).
    /// `expectedApplicationURI`: the ApplicationUri the peer claims (its ApplicationDescription), when known.
    func check(peerCertificate der: [UInt8], expectedApplicationURI: String?) -> StatusCode?
}

/// Trusts every certificate that parses as one: for tests only.
public struct AcceptAllCertificates: CertificateTrust {
    public init() {}
    public func check(peerCertificate der: [UInt8], expectedApplicationURI: String?) -> StatusCode? {
        (try? RSAPublicKey(certificate: der)) == nil ? .badCertificateInvalid : nil
    }
}

/// How a client authenticates its session.
public enum UserIdentity: Sendable, Equatable {
    case anonymous
    case userName(String, password: String)
}

/// The security of an ``OPCUAClient``: the endpoint it picks (policy and mode), its own certificate and
/// key, its trust in server certificates, and its user.
public struct ClientSecurity: Sendable {
    public var policy: SecurityPolicy
    public var mode: MessageSecurityMode
    /// The client's application instance certificate (DER); its subjectAltName URI is `applicationURI`.
    public var certificate: [UInt8]
    public var privateKey: RSAPrivateKey
    public var applicationURI: String
    public var trust: any CertificateTrust
    public var user: UserIdentity

    public init(policy: SecurityPolicy, mode: MessageSecurityMode, certificate: [UInt8], privateKey: RSAPrivateKey,
                applicationURI: String, trust: any CertificateTrust, user: UserIdentity = .anonymous) {
        self.policy = policy
        self.mode = mode
        self.certificate = certificate
        self.privateKey = privateKey
        self.applicationURI = applicationURI
        self.trust = trust
        self.user = user
    }
}

/// The security of an ``OPCUAServer``: the endpoints it offers, its certificate and key, its trust in
/// client certificates, and the user names it accepts.
public struct ServerSecurity: Sendable {
    /// The (policy, mode) pairs offered. `(.none, .none)` among them allows sessions without security;
    /// without it a None channel serves only GetEndpoints and FindServers (BadSecurityPolicyRejected otherwise).
    public var endpoints: [(SecurityPolicy, MessageSecurityMode)]
    /// The server's application instance certificate (DER); its subjectAltName URI is `applicationURI`.
    public var certificate: [UInt8]
    public var privateKey: RSAPrivateKey
    public var applicationURI: String
    public var trust: any CertificateTrust
    /// User name → password. Empty: anonymous sessions only; else user name logins only.
    public var users: [String: String]

    public init(endpoints: [(SecurityPolicy, MessageSecurityMode)], certificate: [UInt8], privateKey: RSAPrivateKey,
                applicationURI: String, trust: any CertificateTrust, users: [String: String] = [:]) {
        self.endpoints = endpoints
        self.certificate = certificate
        self.privateKey = privateKey
        self.applicationURI = applicationURI
        self.trust = trust
        self.users = users
    }

    /// Whether `(policy, mode)` is among ``endpoints``.
    public func offers(_ policy: SecurityPolicy, _ mode: MessageSecurityMode) -> Bool {
        endpoints.contains { $0.0 == policy && $0.1 == mode }
    }
}

extension MessageSecurityMode: CaseIterable, CustomStringConvertible {
    public static var allCases: [MessageSecurityMode] { [.none, .sign, .signAndEncrypt] }

    /// `None`, `Sign`, `SignAndEncrypt` (as in the plant configuration); `Invalid` otherwise.
    public var description: String {
        switch self {
        case .invalid: "Invalid"
        case .none: "None"
        case .sign: "Sign"
        case .signAndEncrypt: "SignAndEncrypt"
        }
    }

    /// The mode named `None`, `Sign` or `SignAndEncrypt`.
    public init?(name: String) {
        guard let mode = MessageSecurityMode.allCases.first(where: { $0.description == name }) else { return nil }
        self = mode
    }
}

extension StatusCode {
    public static let badCertificateInvalid = StatusCode(0x8012_0000)
    public static let badSecurityChecksFailed = StatusCode(0x8013_0000)
    public static let badCertificateTimeInvalid = StatusCode(0x8014_0000)
    public static let badCertificateIssuerTimeInvalid = StatusCode(0x8015_0000)
    public static let badCertificateHostNameInvalid = StatusCode(0x8016_0000)
    public static let badCertificateUriInvalid = StatusCode(0x8017_0000)
    public static let badCertificateUseNotAllowed = StatusCode(0x8018_0000)
    public static let badCertificateIssuerUseNotAllowed = StatusCode(0x8019_0000)
    public static let badCertificateUntrusted = StatusCode(0x801A_0000)
    public static let badCertificateRevocationUnknown = StatusCode(0x801B_0000)
    public static let badCertificateIssuerRevocationUnknown = StatusCode(0x801C_0000)
    public static let badCertificateRevoked = StatusCode(0x801D_0000)
    public static let badCertificateIssuerRevoked = StatusCode(0x801E_0000)
    public static let badNonceInvalid = StatusCode(0x8024_0000)
    public static let badSecurityModeRejected = StatusCode(0x8054_0000)
    public static let badUserSignatureInvalid = StatusCode(0x8057_0000)
    public static let badApplicationSignatureInvalid = StatusCode(0x8058_0000)
    public static let badCertificatePolicyCheckFailed = StatusCode(0x8114_0000)
    public static let badCertificateChainIncomplete = StatusCode(0x810D_0000)

    /// Whether this status says a security check failed (certificate, signature, policy, mode, user, nonce).
    public var isSecurityStatus: Bool {
        StatusCode.securityNames[rawValue & 0xFFFF_0000] != nil
            || [.badSecurityPolicyRejected, .badUserAccessDenied, .badIdentityTokenInvalid, .badIdentityTokenRejected].contains(self)
    }

    static let securityNames: [UInt32: String] = [
        0x8012_0000: "BadCertificateInvalid", 0x8013_0000: "BadSecurityChecksFailed",
        0x8014_0000: "BadCertificateTimeInvalid", 0x8015_0000: "BadCertificateIssuerTimeInvalid",
        0x8016_0000: "BadCertificateHostNameInvalid", 0x8017_0000: "BadCertificateUriInvalid",
        0x8018_0000: "BadCertificateUseNotAllowed", 0x8019_0000: "BadCertificateIssuerUseNotAllowed",
        0x801A_0000: "BadCertificateUntrusted", 0x801B_0000: "BadCertificateRevocationUnknown",
        0x801C_0000: "BadCertificateIssuerRevocationUnknown", 0x801D_0000: "BadCertificateRevoked",
        0x801E_0000: "BadCertificateIssuerRevoked", 0x8024_0000: "BadNonceInvalid",
        0x8054_0000: "BadSecurityModeRejected", 0x8057_0000: "BadUserSignatureInvalid",
        0x8058_0000: "BadApplicationSignatureInvalid", 0x8114_0000: "BadCertificatePolicyCheckFailed",
        0x810D_0000: "BadCertificateChainIncomplete",
    ]
}
