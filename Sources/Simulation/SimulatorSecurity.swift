import Foundation
import OPCUA
import PlantModel
import Runtime

/// The security of simulated OPC UA stations (README "A secure plant in station-sim"): one certificate
/// for the simulator (its own PKI folder, made on first start), and per station the policy and mode of
/// its `security` block as the only endpoint (a SecurityPolicy None channel serves discovery only) and
/// its `user` with the password from `passwordEnv`.
///
/// Client certificates: accepted when they parse and are within their validity (a simulator stands in
/// for a PLC whose administrator has trusted the client); each new one is logged with its thumbprint.
public struct SimulatorSecurity: Sendable {
    public let store: PKIStore
    public let own: CertificateAndKey
    public let privateKey: RSAPrivateKey
    public let applicationURI: String
    public let passwords: [String: String]
    private let trust: SimulatorClientTrust

    public static let defaultApplicationURI = "urn:localhost:LineMES:station-sim"

    /// Opens the simulator's PKI folder (its own certificate) and reads the stations' passwords.
    public init(config: PlantConfig, pkiFolder: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                applicationURI: String = SimulatorSecurity.defaultApplicationURI, logger: Logger) throws {
        passwords = try config.opcuaPasswords(environment: environment)
        store = try PKIStore(folder: pkiFolder, logger: logger)
        self.applicationURI = applicationURI
        own = try store.ownCertificate(applicationURI: applicationURI, commonName: "LineMES station-sim")
        privateKey = try RSAPrivateKey(pem: own.privateKeyPEM)
        trust = SimulatorClientTrust(logger: logger)
    }

    /// What `station`'s server offers; nil for a station without a secure policy.
    public func serverSecurity(for station: StationConfig) -> ServerSecurity? {
        guard station.protocol == .opcua, let config = station.security, config.isSecure,
              let policy = SecurityPolicy(rawValue: config.policy.rawValue),
              let mode = MessageSecurityMode(name: config.mode.rawValue) else { return nil }
        var users: [String: String] = [:]
        if let user = config.user { users[user] = passwords[station.id] ?? "" }
        return ServerSecurity(endpoints: [(policy, mode)], certificate: own.certificate.der, privateKey: privateKey,
                              applicationURI: applicationURI, trust: trust, users: users)
    }

    /// Copies the simulator's certificate into `clientPKI`'s trusted/ (`mes-server --simulate`: the
    /// server trusts the simulators it runs itself). Returns the file written.
    @discardableResult
    public func trust(in clientPKI: PKIStore) throws -> String {
        let path = clientPKI.trustedFolder + "/station-sim-\(own.certificate.thumbprintHex.prefix(8)).der"
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: Data(own.certificate.der)) else {
                throw CertificateError("\(path): cannot be written")
            }
        }
        return path
    }
}

/// Accepts a client certificate that parses and is within its validity; logs each new one.
final class SimulatorClientTrust: CertificateTrust, Sendable {
    private let logger: Logger
    private let seen = Locked<Set<String>>([])

    init(logger: Logger) { self.logger = logger }

    func check(peerCertificate der: [UInt8], expectedApplicationURI: String?) -> StatusCode? {
        guard let certificate = try? Certificate(der: der) else { return .badCertificateInvalid }
        guard certificate.isValid(at: Date()) else { return .badCertificateTimeInvalid }
        if seen.withLock({ $0.insert(certificate.thumbprintHex).inserted }) {
            logger.info("accepting client certificate \(certificate)")
        }
        return nil
    }
}
