import Foundation
import OPCUA
import PlantModel
import Runtime

/// What the OPC UA stations of a plant share for security (README "Connecting to a PLC that requires
/// security"): the PKI folder, this client's own certificate and key (made on first start), and the
/// stations' passwords read from their environment variables. Built once at start; every failure
/// is a one-line error then, not a station that stays offline for a reason nobody sees.
public struct OPCUAClientSecurityContext: Sendable {
    public let store: PKIStore
    public let own: CertificateAndKey
    public let privateKey: RSAPrivateKey
    public let applicationURI: String
    /// Station id → password (stations with `user`).
    public let passwords: [String: String]

    /// The application URI of this client: `urn:<host>:LineMES:mes-server`, in its certificate's subjectAltName.
    public static func defaultApplicationURI(host: String = ProcessInfo.processInfo.hostName) -> String {
        "urn:\(host.isEmpty ? "localhost" : host):LineMES:mes-server"
    }

    /// Opens (creates) the PKI folder and the own certificate; reads the stations' passwords.
    /// - Throws: `ConfigError` for a password variable that is not set; ``CertificateError`` for the PKI.
    public init(config: PlantConfig, pkiFolder: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                applicationURI: String = OPCUAClientSecurityContext.defaultApplicationURI(), logger: Logger) throws {
        passwords = try config.opcuaPasswords(environment: environment)
        store = try PKIStore(folder: pkiFolder, logger: logger)
        self.applicationURI = applicationURI
        own = try store.ownCertificate(applicationURI: applicationURI, commonName: "LineMES mes-server")
        do {
            privateKey = try RSAPrivateKey(pem: own.privateKeyPEM)
        } catch {
            throw CertificateError("\(store.ownKeyPath): \(error)")
        }
    }

    /// The client security of `station` (nil for policy None without a user), and the trust that
    /// remembers why its server's certificate was refused.
    public func clientSecurity(for station: StationConfig) -> (ClientSecurity, RecordingTrust)? {
        guard let config = station.security, config.isSecure else { return nil }
        let trust = RecordingTrust(store: store)
        let user: UserIdentity = config.user.map { .userName($0, password: passwords[station.id] ?? "") } ?? .anonymous
        let security = ClientSecurity(policy: SecurityPolicy(rawValue: config.policy.rawValue) ?? .none,
                                      mode: MessageSecurityMode(name: config.mode.rawValue) ?? .none,
                                      certificate: own.certificate.der, privateKey: privateKey,
                                      applicationURI: applicationURI, trust: trust, user: user)
        return (security, trust)
    }

    /// The identity of a station whose policy is None but which logs in with a user name.
    public func identity(for station: StationConfig) -> UserIdentity {
        guard let user = station.security?.user else { return .anonymous }
        return .userName(user, password: passwords[station.id] ?? "")
    }
}

/// Turns a failed connection into the one sentence a station's status shows.
public enum OPCUASecurityExplanation {
    /// `trust`'s last verdict when it refused the server; the meaning of a security status otherwise;
    /// nil when the error is not about security (the caller shows it as it is).
    public static func explain(_ error: any Error, station: StationConfig, trust: RecordingTrust?, ownCertificatePath: String?) -> String? {
        if let verdict = refusal(trust), case ClientError.security(let status, _) = error, status == verdict.status {
            return verdict.message
        }
        guard case ClientError.security(let status, let reason) = error else {
            if case ClientError.noSuitableEndpoint(let reason) = error, let security = station.security {
                return "server offers no endpoint with policy \(security.policy.rawValue) and mode \(security.mode.rawValue) (\(reason))"
            }
            return nil
        }
        let user = station.security?.user.map { " (user \"\($0)\")" } ?? ""
        switch status {
        case .badUserAccessDenied, .badIdentityTokenRejected, .badIdentityTokenInvalid, .badUserSignatureInvalid:
            return "user name or password rejected\(user): \(status)"
        case .badSecurityPolicyRejected, .badSecurityModeRejected:
            let wanted = station.security.map { "policy \($0.policy.rawValue), mode \($0.mode.rawValue)" } ?? "its security"
            return "server refused \(wanted): \(status) \(reason)"
        case .badCertificateTimeInvalid:
            return "certificate expired or not yet valid: \(reason)"
        case .badCertificateUntrusted, .badCertificateInvalid, .badCertificateUriInvalid, .badCertificateUseNotAllowed, .badSecurityChecksFailed:
            let own = ownCertificatePath.map { " (add \($0) to the server's trusted certificates)" } ?? ""
            return "server refused this client's certificate\(own): \(status) \(reason)"
        default:
            return "security: \(status) \(reason)"
        }
    }

    /// The same for a reason the client reported as text (a lost connection that failed to come back).
    public static func explain(reason: String, trust: RecordingTrust?) -> String? {
        guard let verdict = refusal(trust), let status = verdict.status, reason.contains(status.description) else { return nil }
        return verdict.message
    }

    /// The trust's last verdict when it refused.
    static func refusal(_ trust: RecordingTrust?) -> CertificateVerdict? {
        guard let verdict = trust?.lastVerdict, !verdict.accepted else { return nil }
        return verdict
    }
}
