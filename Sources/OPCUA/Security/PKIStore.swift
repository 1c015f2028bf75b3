import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// The outcome of a certificate check: nil status when accepted, and one sentence for a person.
public struct CertificateVerdict: Sendable, Equatable, CustomStringConvertible {
    public var status: StatusCode?
    public var message: String
    /// The certificate's thumbprint (hex), empty when it did not parse.
    public var thumbprint: String
    /// Where the certificate was saved when it was rejected as unknown (rejected/…).
    public var savedTo: String?

    public var accepted: Bool { status == nil }
    public var description: String { message }
}

/// The PKI folders of an OPC UA application (README "Connecting to a PLC that requires security"):
///
/// - `own/`: this application's certificate (`cert.der`, `cert.pem`) and private key (`private/key.pem`,
///   mode 0600), made on first start;
/// - `trusted/`: peer certificates accepted (DER or PEM, any file name), or CA certificates whose
///   signature on a peer's certificate makes it accepted;
/// - `rejected/`: an unknown peer certificate is saved here as `<THUMBPRINT>.der`; moving it to
///   `trusted/` accepts it on the next connection (the folder is read again when it changed, and
///   whenever a certificate is not found in it), no restart needed.
///
/// Checks follow OPC 10000-4 6.1.3 in its order: structure, trust list, validity period, application
/// URI, key usage. Thread-safe: one store serves every station.
public final class PKIStore: CertificateTrust, Sendable {
    public let folder: String
    public var ownFolder: String { folder + "/own" }
    public var trustedFolder: String { folder + "/trusted" }
    public var rejectedFolder: String { folder + "/rejected" }
    private let logger: Logger
    private let clock: @Sendable () -> Date

    private struct TrustedEntry {
        var certificate: Certificate
        var path: String
    }

    private struct State {
        var trusted: [TrustedEntry] = []
        /// trusted/'s modification time when it was last read (nanoseconds), nil before the first read.
        var trustedStamp: Int64?
        /// Verdicts already logged (thumbprint + status), so a station that retries every few seconds
        /// does not repeat the same line.
        var logged: Set<String> = []
    }

    private let state = Locked(State())

    /// Opens (and creates) the folder and its `own/`, `trusted/`, `rejected/` subfolders.
    /// `clock`: the time validity periods are checked against.
    public init(folder: String, logger: Logger, clock: @escaping @Sendable () -> Date = { Date() }) throws {
        self.folder = folder
        self.logger = logger
        self.clock = clock
        for sub in [folder, folder + "/own", folder + "/own/private", folder + "/trusted", folder + "/rejected"] {
            do {
                try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            } catch {
                throw CertificateError("PKI folder \(sub) cannot be created: \(error.localizedDescription)")
            }
        }
        chmod(folder + "/own/private", 0o700)
    }

    // MARK: Own certificate

    public var ownCertificatePath: String { ownFolder + "/cert.der" }
    public var ownKeyPath: String { ownFolder + "/private/key.pem" }

    /// This application's certificate and key: read from `own/`, or made there (self-signed, RSA 2048,
    /// SHA-256, `applicationURI` in subjectAltName) when absent, unreadable, expired or made for another URI.
    public func ownCertificate(applicationURI: String, commonName: String) throws -> CertificateAndKey {
        if FileManager.default.fileExists(atPath: ownCertificatePath) || FileManager.default.fileExists(atPath: ownKeyPath) {
            do {
                let certificate = try Certificate.load(path: ownCertificatePath)
                guard let keyData = FileManager.default.contents(atPath: ownKeyPath) else {
                    throw CertificateError("\(ownKeyPath): cannot be read")
                }
                let key = String(decoding: keyData, as: UTF8.self)
                guard certificate.matches(privateKeyPEM: key) else { throw CertificateError("\(ownKeyPath) is not the key of \(ownCertificatePath)") }
                if !certificate.uris.contains(applicationURI) {
                    logger.warning("own certificate \(ownCertificatePath) names \(certificate.applicationURI ?? "no application URI"), not \(applicationURI): making a new one")
                } else if !certificate.isValid(at: clock()) {
                    logger.warning("own certificate \(ownCertificatePath) expired on \(Timestamps.day(certificate.notAfter)): making a new one")
                } else {
                    return CertificateAndKey(certificate: certificate, privateKeyPEM: key)
                }
                // Keep the old pair beside the new one, for whoever trusted it.
                let stamp = certificate.thumbprintHex.prefix(8)
                _ = rename(ownCertificatePath, ownFolder + "/cert-\(stamp).der.old")
                _ = rename(ownKeyPath, ownFolder + "/private/key-\(stamp).pem.old")
            } catch let error as CertificateError {
                throw CertificateError("own certificate: \(error.message) (remove \(ownFolder) to make a new one)")
            }
        }
        let made = try Certificate.selfSigned(CertificateRequest(applicationURI: applicationURI, commonName: commonName, now: clock()))
        try PrivateKeyPEM.write(made.privateKeyPEM, to: ownKeyPath)
        try write(made.certificate.der, to: ownCertificatePath)
        try write(Array(made.certificate.pem.utf8), to: ownFolder + "/cert.pem")
        logger.info("made own certificate \(ownCertificatePath) for \(applicationURI) (thumbprint \(made.certificate.thumbprintHex)); give it to the servers that must trust this client")
        return made
    }

    private func write(_ bytes: [UInt8], to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw CertificateError("\(path): cannot be written")
        }
    }

    // MARK: Trust

    public func check(peerCertificate der: [UInt8], expectedApplicationURI: String?) -> StatusCode? {
        verdict(peerCertificate: der, expectedApplicationURI: expectedApplicationURI).status
    }

    /// Checks a peer's certificate and says why it is refused; an unknown one is saved to `rejected/`.
    public func verdict(peerCertificate der: [UInt8], expectedApplicationURI: String?) -> CertificateVerdict {
        let certificate: Certificate
        do {
            certificate = try Certificate(der: der)
        } catch {
            return logged(CertificateVerdict(status: .badCertificateInvalid, message: "peer certificate does not parse: \(error)",
                                             thumbprint: ""), key: "invalid:\(Certificate.sha1(der))")
        }
        let thumbprint = certificate.thumbprintHex
        let trusted = trustedCertificates(lookingFor: certificate)
        let exact = trusted.first { $0.certificate.der == certificate.der }
        let issuer = exact == nil ? trusted.first { $0.certificate.isCA && certificate.isSigned(by: $0.certificate) } : nil
        guard exact != nil || issuer != nil else { return reject(certificate, trusted: trusted) }

        let now = clock()
        if now > certificate.notAfter {
            return logged(CertificateVerdict(status: .badCertificateTimeInvalid,
                                             message: "certificate expired on \(Timestamps.day(certificate.notAfter)): \(certificate)",
                                             thumbprint: thumbprint))
        }
        if now < certificate.notBefore {
            return logged(CertificateVerdict(status: .badCertificateTimeInvalid,
                                             message: "certificate not valid before \(Timestamps.day(certificate.notBefore)): \(certificate)",
                                             thumbprint: thumbprint))
        }
        if let expected = expectedApplicationURI, !expected.isEmpty, !certificate.uris.contains(expected) {
            return logged(CertificateVerdict(status: .badCertificateUriInvalid,
                                             message: "certificate names application URI \(certificate.applicationURI ?? "(none)"), the server says \(expected): \(certificate)",
                                             thumbprint: thumbprint))
        }
        if let usage = certificate.keyUsage {
            let missing = KeyUsage([.digitalSignature, .keyEncipherment]).subtracting(usage)
            if !missing.isEmpty {
                return logged(CertificateVerdict(status: .badCertificateUseNotAllowed,
                                                 message: "certificate lacks key usage \(missing): \(certificate)", thumbprint: thumbprint))
            }
        }
        if let extended = certificate.extendedKeyUsage, extended.isEmpty {
            return logged(CertificateVerdict(status: .badCertificateUseNotAllowed,
                                             message: "certificate's extended key usage allows neither serverAuth nor clientAuth: \(certificate)",
                                             thumbprint: thumbprint))
        }
        let via = exact.map { "trusted/\(URL(fileURLWithPath: $0.path).lastPathComponent)" }
            ?? "issuer \(issuer!.certificate.commonName) in trusted/"
        return logged(CertificateVerdict(status: nil, message: "certificate accepted (\(via)): \(certificate)", thumbprint: thumbprint))
    }

    /// An unknown certificate: saved to rejected/ as `<THUMBPRINT>.der`, with a message that says what to do.
    private func reject(_ certificate: Certificate, trusted: [TrustedEntry]) -> CertificateVerdict {
        let path = rejectedFolder + "/\(certificate.thumbprintHex).der"
        var saved: String? = path
        if !FileManager.default.fileExists(atPath: path) {
            if !FileManager.default.createFile(atPath: path, contents: Data(certificate.der)) {
                logger.error("cannot save rejected certificate to \(path)")
                saved = nil
            }
        }
        let place = saved.map { "moved to \($0); move it to \(trustedFolder)/ to accept" }
            ?? "it could not be saved to \(rejectedFolder)/"
        // A trusted certificate of the same application: the server changed its certificate.
        let message: String
        if let uri = certificate.applicationURI, let previous = trusted.first(where: { !$0.certificate.isCA && $0.certificate.uris.contains(uri) }) {
            message = "server changed its certificate: \(uri) was trusted as \(previous.path) (thumbprint \(previous.certificate.thumbprintHex)), now presents \(certificate.thumbprintHex); the new one is not trusted: \(place)"
        } else {
            message = "server certificate not trusted (\(certificate)): \(place)"
        }
        return logged(CertificateVerdict(status: .badCertificateUntrusted, message: message, thumbprint: certificate.thumbprintHex, savedTo: saved))
    }

    private func logged(_ verdict: CertificateVerdict, key: String? = nil) -> CertificateVerdict {
        let key = key ?? "\(verdict.thumbprint):\(verdict.status?.rawValue ?? 0)"
        let first = state.withLock { $0.logged.insert(key).inserted }
        if first {
            if verdict.accepted { logger.info(verdict.message) } else { logger.warning("\(verdict.status!): \(verdict.message)") }
        }
        return verdict
    }

    /// trusted/'s certificates, read again when the folder changed since the last read, or when neither
    /// `certificate` nor an issuer of it is among them (a file copied in within the same clock tick).
    private func trustedCertificates(lookingFor certificate: Certificate) -> [TrustedEntry] {
        let stamp = modificationStamp(trustedFolder)
        let cached: [TrustedEntry]? = state.withLock { state in
            guard let known = state.trustedStamp, known == stamp else { return nil }
            return state.trusted
        }
        if let cached, cached.contains(where: { $0.certificate.der == certificate.der || ($0.certificate.isCA && $0.certificate.subject == certificate.issuer) }) {
            return cached
        }
        let entries = readTrusted()
        state.withLock { state in
            state.trusted = entries
            state.trustedStamp = stamp
        }
        return entries
    }

    private func readTrusted() -> [TrustedEntry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: trustedFolder)) ?? []
        var entries: [TrustedEntry] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let path = trustedFolder + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            do {
                entries.append(TrustedEntry(certificate: try Certificate.load(path: path), path: path))
            } catch {
                let first = state.withLock { $0.logged.insert("unreadable:\(path)").inserted }
                if first { logger.warning("trusted/ holds a file that is not a certificate, ignored: \(error)") }
            }
        }
        return entries
    }

    private func modificationStamp(_ path: String) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }
}

/// A trust that remembers its last verdict: one per station, so the station's status can say why its
/// server was refused (the client sees only the status code).
public final class RecordingTrust: CertificateTrust, Sendable {
    public let store: PKIStore
    private let last = Locked<CertificateVerdict?>(nil)

    public init(store: PKIStore) { self.store = store }

    public func check(peerCertificate der: [UInt8], expectedApplicationURI: String?) -> StatusCode? {
        let verdict = store.verdict(peerCertificate: der, expectedApplicationURI: expectedApplicationURI)
        last.set(verdict)
        return verdict.status
    }

    /// The verdict of the newest check (nil before the first).
    public var lastVerdict: CertificateVerdict? { last.value }
}
