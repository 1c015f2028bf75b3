import COpenSSL
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A problem reading, parsing or making a certificate or key; the message says which file and why.
public struct CertificateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// The message with the errors OpenSSL queued on this thread (the queue is left empty).
    static func openssl(_ what: String) -> CertificateError {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer in
            guard cossl_drain_errors(buffer.baseAddress!, buffer.count) > 0 else { return CertificateError(what) }
            return CertificateError("\(what): \(String(cString: buffer.baseAddress!))")
        }
    }
}

/// The keyUsage bits of an X.509 v3 certificate (RFC 5280 4.2.1.3).
public struct KeyUsage: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let digitalSignature = KeyUsage(rawValue: 0x80)
    public static let nonRepudiation = KeyUsage(rawValue: 0x40)
    public static let keyEncipherment = KeyUsage(rawValue: 0x20)
    public static let dataEncipherment = KeyUsage(rawValue: 0x10)
    public static let keyAgreement = KeyUsage(rawValue: 0x08)
    public static let keyCertSign = KeyUsage(rawValue: 0x04)
    public static let cRLSign = KeyUsage(rawValue: 0x02)

    /// What an OPC UA application instance certificate carries (README "Connecting to a PLC that requires security").
    public static let applicationInstance: KeyUsage = [.digitalSignature, .nonRepudiation, .keyEncipherment, .dataEncipherment, .keyCertSign]

    static let names: [(KeyUsage, String)] = [
        (.digitalSignature, "digitalSignature"), (.nonRepudiation, "nonRepudiation"), (.keyEncipherment, "keyEncipherment"),
        (.dataEncipherment, "dataEncipherment"), (.keyAgreement, "keyAgreement"), (.keyCertSign, "keyCertSign"), (.cRLSign, "cRLSign"),
    ]
    public var description: String { KeyUsage.names.filter { contains($0.0) }.map(\.1).joined(separator: ", ") }
    /// The names in openssl's extension syntax.
    var configValue: String { description }
}

/// The extendedKeyUsage purposes that matter to OPC UA (RFC 5280 4.2.1.12).
public struct ExtendedKeyUsage: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let serverAuth = ExtendedKeyUsage(rawValue: 0x1)
    public static let clientAuth = ExtendedKeyUsage(rawValue: 0x2)

    public var description: String {
        [(ExtendedKeyUsage.serverAuth, "serverAuth"), (.clientAuth, "clientAuth")].filter { contains($0.0) }.map(\.1).joined(separator: ", ")
    }
}

/// A parsed X.509 certificate: the fields an OPC UA application checks (OPC 10000-6 6.2.2).
///
/// Parsing copies every field out of OpenSSL's structure; the value holds no C handle.
public struct Certificate: Sendable, Equatable, CustomStringConvertible {
    /// The DER encoding (what OPC UA sends as a ByteString).
    public let der: [UInt8]
    /// The subject and issuer names, `/CN=…/O=…`.
    public let subject: String
    public let issuer: String
    public let notBefore: Date
    public let notAfter: Date
    /// subjectAltName entries: URIs (the application URI), DNS names, IP addresses (dotted / colon form).
    public let uris: [String]
    public let dnsNames: [String]
    public let ipAddresses: [String]
    /// nil when the certificate has no keyUsage (extendedKeyUsage) extension.
    public let keyUsage: KeyUsage?
    public let extendedKeyUsage: ExtendedKeyUsage?
    /// basicConstraints cA.
    public let isCA: Bool
    /// The SubjectPublicKeyInfo, DER, and the key's size in bits.
    public let publicKeyDER: [UInt8]
    public let publicKeyBits: Int
    /// SHA-1 of ``der``: the thumbprint OPC UA names a certificate by.
    public let thumbprint: [UInt8]

    /// The application URI: the first URI in subjectAltName.
    public var applicationURI: String? { uris.first }
    /// The thumbprint in upper-case hex (the rejected/ file name).
    public var thumbprintHex: String { thumbprint.map { String(format: "%02X", $0) }.joined() }
    /// The common name of the subject, or the whole subject.
    public var commonName: String {
        for part in subject.split(separator: "/") where part.hasPrefix("CN=") { return String(part.dropFirst(3)) }
        return subject
    }

    public var description: String {
        "\(commonName) [\(applicationURI ?? "no application URI")] thumbprint \(thumbprintHex), valid \(Timestamps.day(notBefore)) to \(Timestamps.day(notAfter))"
    }

    /// Parses DER. - Throws: ``CertificateError`` when the bytes are not one X.509 certificate.
    public init(der: [UInt8]) throws {
        guard !der.isEmpty, der.count < Int(Int32.max) else { throw CertificateError("not an X.509 certificate (empty)") }
        let handle: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
        guard let handle else { throw CertificateError.openssl("not an X.509 certificate") }
        defer { X509_free(handle) }
        try self.init(handle: handle, der: der)
    }

    /// Parses the first `CERTIFICATE` block of PEM text.
    public init(pem: String) throws {
        var bytes = Array(pem.utf8)
        let handle: OpaquePointer? = bytes.withUnsafeMutableBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        }
        guard let handle else { throw CertificateError.openssl("no PEM CERTIFICATE block") }
        defer { X509_free(handle) }
        try self.init(handle: handle, der: Certificate.encodeDER(handle))
    }

    /// Reads a certificate file, DER or PEM (told apart by content).
    public static func load(path: String) throws -> Certificate {
        guard let data = FileManager.default.contents(atPath: path) else { throw CertificateError("\(path): cannot be read") }
        do {
            // DER starts with a SEQUENCE tag; anything else is read as PEM text.
            if data.first == 0x30 { return try Certificate(der: Array(data)) }
            return try Certificate(pem: String(decoding: data, as: UTF8.self))
        } catch let error as CertificateError {
            throw CertificateError("\(path): \(error.message)")
        }
    }

    static func encodeDER(_ handle: OpaquePointer) throws -> [UInt8] {
        let length = i2d_X509(handle, nil)
        guard length > 0 else { throw CertificateError.openssl("cannot encode certificate") }
        var der = [UInt8](repeating: 0, count: Int(length))
        der.withUnsafeMutableBufferPointer { buffer in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            _ = i2d_X509(handle, &cursor)
        }
        return der
    }

    private init(handle: OpaquePointer, der: [UInt8]) throws {
        self.der = der
        subject = Certificate.name(X509_get_subject_name(handle))
        issuer = Certificate.name(X509_get_issuer_name(handle))
        var seconds: Int64 = 0
        guard cossl_asn1_time_seconds(X509_get0_notBefore(handle), &seconds) == 1 else { throw CertificateError.openssl("bad notBefore") }
        notBefore = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard cossl_asn1_time_seconds(X509_get0_notAfter(handle), &seconds) == 1 else { throw CertificateError.openssl("bad notAfter") }
        notAfter = Date(timeIntervalSince1970: TimeInterval(seconds))

        var uris: [String] = [], dns: [String] = [], ips: [String] = []
        if let names = cossl_x509_alt_names(handle) {
            defer { cossl_names_free(names) }
            for i in 0..<cossl_names_count(names) {
                var data: UnsafePointer<UInt8>?
                var length: Int32 = 0
                let type = cossl_name_at(names, i, &data, &length)
                guard let data, length > 0 else { continue }
                let bytes = Array(UnsafeBufferPointer(start: data, count: Int(length)))
                switch type {
                case COSSL_GEN_URI: uris.append(String(decoding: bytes, as: UTF8.self))
                case COSSL_GEN_DNS: dns.append(String(decoding: bytes, as: UTF8.self))
                case COSSL_GEN_IPADD: ips.append(Certificate.ipText(bytes))
                default: break
                }
            }
        }
        self.uris = uris
        dnsNames = dns
        ipAddresses = ips
        // X509_get_key_usage also caches the extensions (and flags them) for the calls below.
        let usage = X509_get_key_usage(handle)
        keyUsage = cossl_x509_has_key_usage(handle) == 1 ? KeyUsage(rawValue: usage & 0xFF) : nil
        let extended = X509_get_extended_key_usage(handle)
        extendedKeyUsage = cossl_x509_has_ext_key_usage(handle) == 1
            ? ExtendedKeyUsage(rawValue: extended & (UInt32(XKU_SSL_SERVER) | UInt32(XKU_SSL_CLIENT))) : nil
        isCA = cossl_x509_is_ca(handle) == 1

        guard let key = X509_get0_pubkey(handle) else { throw CertificateError.openssl("no public key") }
        publicKeyBits = Int(EVP_PKEY_get_bits(key))
        let keyLength = i2d_PUBKEY(key, nil)
        guard keyLength > 0 else { throw CertificateError.openssl("cannot encode public key") }
        var keyDER = [UInt8](repeating: 0, count: Int(keyLength))
        keyDER.withUnsafeMutableBufferPointer { buffer in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            _ = i2d_PUBKEY(key, &cursor)
        }
        publicKeyDER = keyDER
        thumbprint = Certificate.sha1(der)
    }

    static func name(_ name: OpaquePointer?) -> String {
        guard let name else { return "" }
        var buffer = [CChar](repeating: 0, count: 512)
        guard X509_NAME_oneline(name, &buffer, Int32(buffer.count)) != nil else { return "" }
        return text(buffer)
    }

    /// The text of a NUL-terminated C buffer.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func ipText(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        if bytes.count == 16 {
            return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
        }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// SHA-1 of `bytes` (20 bytes).
    public static func sha1(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        var size: UInt32 = 0
        _ = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &out, &size, EVP_sha1(), nil) }
        return out
    }

    /// Whether `date` lies within notBefore…notAfter.
    public func isValid(at date: Date) -> Bool { date >= notBefore && date <= notAfter }

    /// Whether `issuer`'s key verifies this certificate's signature (and names match).
    public func isSigned(by issuerCertificate: Certificate) -> Bool {
        guard issuer == issuerCertificate.subject else { return false }
        return Certificate.withHandle(der) { cert in
            Certificate.withHandle(issuerCertificate.der) { signer in
                guard let key = X509_get0_pubkey(signer) else { return false }
                let ok = X509_verify(cert, key) == 1
                ERR_clear_error()
                return ok
            } ?? false
        } ?? false
    }

    /// True when subject and issuer are the same and the certificate's own key verifies it.
    public var isSelfSigned: Bool { isSigned(by: self) }

    /// The PEM text of the certificate.
    public var pem: String {
        let base64 = Data(der).base64EncodedString()
        var lines: [String] = ["-----BEGIN CERTIFICATE-----"]
        var index = base64.startIndex
        while index < base64.endIndex {
            let end = base64.index(index, offsetBy: 64, limitedBy: base64.endIndex) ?? base64.endIndex
            lines.append(String(base64[index..<end]))
            index = end
        }
        lines.append("-----END CERTIFICATE-----")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Runs `body` with an OpenSSL handle of `der` (nil when it does not parse).
    static func withHandle<T>(_ der: [UInt8], _ body: (OpaquePointer) -> T) -> T? {
        let handle: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
        guard let handle else { ERR_clear_error(); return nil }
        defer { X509_free(handle) }
        return body(handle)
    }

    /// Whether `privateKeyPEM` is the private half of this certificate's key.
    public func matches(privateKeyPEM: String) -> Bool {
        guard let key = PrivateKeyPEM.read(privateKeyPEM) else { return false }
        defer { EVP_PKEY_free(key) }
        return Certificate.withHandle(der) { cert in
            let ok = X509_check_private_key(cert, key) == 1
            ERR_clear_error()
            return ok
        } ?? false
    }
}

/// Day formatting for messages (UTC, `2026-12-06`).
enum Timestamps {
    static func day(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: date)
    }
}

/// PEM private keys: reading (for checks) and writing with mode 0600.
public enum PrivateKeyPEM {
    /// Parses a PEM private key (PKCS#8 or traditional RSA). The caller frees it.
    static func read(_ pem: String) -> OpaquePointer? {
        var bytes = Array(pem.utf8)
        let key: OpaquePointer? = bytes.withUnsafeMutableBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        if key == nil { ERR_clear_error() }
        return key
    }

    /// The PEM (PKCS#8) text of a key.
    static func encode(_ key: OpaquePointer) throws -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw CertificateError.openssl("BIO_new") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 else { throw CertificateError.openssl("cannot encode private key") }
        var data: UnsafeMutablePointer<CChar>?
        let length = cossl_bio_mem_data(bio, &data)
        guard let data, length > 0 else { throw CertificateError("empty private key") }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }

    /// Writes `text` to `path` readable by the owner only (0600), replacing what was there.
    public static func write(_ text: String, to path: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CertificateError("\(temporary): cannot create (\(String(cString: strerror(errno))))") }
        var ok = fchmod(fd, 0o600) == 0
        let bytes = Array(text.utf8)
        var offset = 0
        while ok, offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { ok = false; break }
            offset += n
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CertificateError("\(path): cannot write private key")
        }
    }
}

/// What a new self-signed application instance certificate holds (OPC 10000-6 6.2.2).
public struct CertificateRequest: Sendable {
    /// Goes into subjectAltName as a URI; servers and clients check it against their ApplicationUri.
    public var applicationURI: String
    public var commonName: String
    public var organization: String
    public var dnsNames: [String]
    public var ipAddresses: [String]
    /// Validity, from `validFrom` to `validTo`.
    public var validFrom: Date
    public var validTo: Date
    public var keyBits: Int
    public var keyUsage: KeyUsage
    public var extendedKeyUsage: ExtendedKeyUsage

    /// RSA 2048, valid from an hour ago for `validDays`, DNS `localhost` and IP `127.0.0.1` beside the URI.
    public init(applicationURI: String, commonName: String, organization: String = "LineMES",
                dnsNames: [String] = ["localhost"], ipAddresses: [String] = ["127.0.0.1"], validDays: Double = 3650,
                now: Date = Date()) {
        self.applicationURI = applicationURI
        self.commonName = commonName
        self.organization = organization
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        validFrom = now.addingTimeInterval(-3600)
        validTo = now.addingTimeInterval(validDays * 86_400)
        keyBits = 2048
        keyUsage = .applicationInstance
        extendedKeyUsage = [.serverAuth, .clientAuth]
    }
}

/// A certificate and the PEM of its private key.
public struct CertificateAndKey: Sendable {
    public var certificate: Certificate
    public var privateKeyPEM: String
}

extension Certificate {
    /// Makes a new RSA key and a self-signed SHA-256 certificate for it (OPC 10000-6 6.2.2): subject CN and O,
    /// subjectAltName URI + DNS + IP, basicConstraints cA false, the request's key usages, subject key identifier.
    public static func selfSigned(_ request: CertificateRequest) throws -> CertificateAndKey {
        guard let key = cossl_rsa_generate(Int32(request.keyBits)) else { throw CertificateError.openssl("RSA key generation") }
        defer { EVP_PKEY_free(key) }
        guard let cert = X509_new() else { throw CertificateError.openssl("X509_new") }
        defer { X509_free(cert) }
        let now = Date()
        func fail(_ what: String) -> CertificateError { CertificateError.openssl("certificate: \(what)") }
        guard X509_set_version(cert, 2) == 1 else { throw fail("version") }
        guard cossl_x509_random_serial(cert) == 1 else { throw fail("serial number") }
        guard cossl_x509_set_validity(cert, Int(request.validFrom.timeIntervalSince(now).rounded()),
                                      Int(request.validTo.timeIntervalSince(now).rounded())) == 1 else { throw fail("validity") }
        guard X509_set_pubkey(cert, key) == 1 else { throw fail("public key") }
        guard let name = X509_get_subject_name(cert),
              cossl_name_add(name, "CN", request.commonName) == 1,
              cossl_name_add(name, "O", request.organization) == 1,
              X509_set_issuer_name(cert, name) == 1 else { throw fail("subject") }
        // The URI goes in as given; a comma would split the openssl syntax, so it is refused.
        guard !request.applicationURI.contains(","), !request.applicationURI.isEmpty else {
            throw CertificateError("application URI \(request.applicationURI) may not be empty or hold a comma")
        }
        let alt = (["URI:\(request.applicationURI)"] + request.dnsNames.map { "DNS:\($0)" } + request.ipAddresses.map { "IP:\($0)" })
            .joined(separator: ",")
        var extensions: [(Int32, String)] = [
            (NID_basic_constraints, "critical,CA:FALSE"),
            (NID_subject_key_identifier, "hash"),
            (NID_authority_key_identifier, "keyid:always"),
            (NID_subject_alt_name, alt),
        ]
        if !request.keyUsage.isEmpty { extensions.append((NID_key_usage, "critical," + request.keyUsage.configValue)) }
        if !request.extendedKeyUsage.isEmpty { extensions.append((NID_ext_key_usage, request.extendedKeyUsage.description)) }
        for (nid, value) in extensions {
            guard cossl_x509_add_ext(cert, nid, value) == 1 else { throw fail("extension \(value)") }
        }
        guard X509_sign(cert, key, EVP_sha256()) > 0 else { throw fail("signature") }
        let certificate = try Certificate(der: Certificate.encodeDER(cert))
        return CertificateAndKey(certificate: certificate, privateKeyPEM: try PrivateKeyPEM.encode(key))
    }
}
