import Foundation
import OPCUA
import Runtime
import XCTest
import TestSupport

/// Certificates (Security/Certificate.swift) and the PKI folders (Security/PKIStore.swift).
final class CertificateTests: XCTestCase {
    static let quiet = Logger(label: "pki-test", level: .error)

    func testSelfSignedApplicationCertificateCarriesWhatOPCUAChecks() throws {
        let made = try Certificate.selfSigned(CertificateRequest(applicationURI: "urn:test:client", commonName: "Test client"))
        let cert = made.certificate
        XCTAssertEqual(cert.uris, ["urn:test:client"])
        XCTAssertEqual(cert.applicationURI, "urn:test:client")
        XCTAssertEqual(cert.dnsNames, ["localhost"])
        XCTAssertEqual(cert.ipAddresses, ["127.0.0.1"])
        XCTAssertEqual(cert.keyUsage, [.digitalSignature, .nonRepudiation, .keyEncipherment, .dataEncipherment, .keyCertSign])
        XCTAssertEqual(cert.extendedKeyUsage, [.serverAuth, .clientAuth])
        XCTAssertFalse(cert.isCA)
        XCTAssertEqual(cert.publicKeyBits, 2048)
        XCTAssertEqual(cert.commonName, "Test client")
        XCTAssertTrue(cert.subject.contains("O=LineMES"), cert.subject)
        XCTAssertEqual(cert.subject, cert.issuer)
        XCTAssertTrue(cert.isSelfSigned)
        XCTAssertEqual(cert.thumbprint, Certificate.sha1(cert.der))
        XCTAssertEqual(cert.thumbprintHex.count, 40)
        XCTAssertTrue(cert.isValid(at: Date()))
        XCTAssertFalse(cert.isValid(at: Date().addingTimeInterval(11 * 365 * 86_400)))
        XCTAssertTrue(cert.matches(privateKeyPEM: made.privateKeyPEM))
        XCTAssertTrue(made.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"), made.privateKeyPEM)

        // PEM and DER give the same certificate.
        XCTAssertEqual(try Certificate(pem: cert.pem), cert)
        XCTAssertEqual(try Certificate(der: cert.der), cert)
        // Another key does not match.
        let other = try Certificate.selfSigned(CertificateRequest(applicationURI: "urn:test:other", commonName: "Other"))
        XCTAssertFalse(cert.matches(privateKeyPEM: other.privateKeyPEM))
        XCTAssertFalse(cert.isSigned(by: other.certificate))
        XCTAssertNotEqual(cert.thumbprint, other.certificate.thumbprint)
    }

    func testOpenSSLCommandLineReadsOurCertificate() throws {
        let folder = TempFolder(prefix: "cert")
        defer { folder.remove() }
        let made = try Certificate.selfSigned(CertificateRequest(applicationURI: "urn:test:server", commonName: "Srv"))
        try Data(made.certificate.der).write(to: URL(fileURLWithPath: folder.file("c.der")))
        let result = try runToEnd("/usr/bin/openssl", ["x509", "-inform", "DER", "-in", folder.file("c.der"), "-noout", "-text", "-fingerprint", "-sha1"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("URI:urn:test:server"), result.output)
        XCTAssertTrue(result.output.contains("Signature Algorithm: sha256WithRSAEncryption"), result.output)
        XCTAssertTrue(result.output.contains("Digital Signature, Non Repudiation, Key Encipherment, Data Encipherment, Certificate Sign"), result.output)
        XCTAssertTrue(result.output.contains("TLS Web Server Authentication, TLS Web Client Authentication"), result.output)
        let fingerprint = made.certificate.thumbprint.map { String(format: "%02X", $0) }.joined(separator: ":")
        XCTAssertTrue(result.output.contains(fingerprint), result.output)
    }

    func testParsesAnOpenSSLMadeCertificateInPEMAndRejectsGarbage() throws {
        let folder = TempFolder(prefix: "cert")
        defer { folder.remove() }
        let made = try TestCertificate(in: folder.path)
        let cert = try Certificate.load(path: made.certificate)
        XCTAssertEqual(cert.commonName, "localhost")
        XCTAssertEqual(cert.dnsNames, ["localhost"])
        XCTAssertEqual(cert.ipAddresses, ["127.0.0.1"])
        XCTAssertEqual(cert.uris, [])
        XCTAssertNil(cert.applicationURI)
        XCTAssertThrowsError(try Certificate(der: [0x30, 0x03, 0x02, 0x01, 0x01]))
        XCTAssertThrowsError(try Certificate(der: []))
        XCTAssertThrowsError(try Certificate(pem: "hello"))
        XCTAssertThrowsError(try Certificate.load(path: folder.file("missing.der"))) { error in
            XCTAssertTrue("\(error)".contains("missing.der"), "\(error)")
        }
    }

    // MARK: PKI folders

    func testOwnCertificateIsMadeOnceWithAPrivateKeyOnlyItsOwnerReads() throws {
        let folder = TempFolder(prefix: "pki")
        defer { folder.remove() }
        let store = try PKIStore(folder: folder.file("pki"), logger: Self.quiet)
        for sub in ["own", "trusted", "rejected"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: folder.file("pki/\(sub)")), sub)
        }
        let first = try store.ownCertificate(applicationURI: "urn:host:linemes", commonName: "LineMES")
        XCTAssertEqual(first.certificate.applicationURI, "urn:host:linemes")
        let attributes = try FileManager.default.attributesOfItem(atPath: store.ownKeyPath)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        XCTAssertEqual(try Certificate.load(path: store.ownCertificatePath), first.certificate)
        XCTAssertEqual(try Certificate.load(path: folder.file("pki/own/cert.pem")), first.certificate)

        // A second start reads the same pair.
        let again = try PKIStore(folder: folder.file("pki"), logger: Self.quiet)
        let second = try again.ownCertificate(applicationURI: "urn:host:linemes", commonName: "LineMES")
        XCTAssertEqual(second.certificate, first.certificate)
        XCTAssertEqual(second.privateKeyPEM, first.privateKeyPEM)

        // Another application URI: a new certificate, the old one kept aside.
        let third = try again.ownCertificate(applicationURI: "urn:host:other", commonName: "LineMES")
        XCTAssertNotEqual(third.certificate, first.certificate)
        XCTAssertEqual(third.certificate.applicationURI, "urn:host:other")
        let kept = try FileManager.default.contentsOfDirectory(atPath: folder.file("pki/own")).filter { $0.hasSuffix(".der.old") }
        XCTAssertEqual(kept.count, 1, "\(kept)")

        // A key that does not belong to the certificate is a clear error.
        try PrivateKeyPEM.write(first.privateKeyPEM, to: again.ownKeyPath)
        XCTAssertThrowsError(try again.ownCertificate(applicationURI: "urn:host:other", commonName: "LineMES")) { error in
            XCTAssertTrue("\(error)".contains("is not the key of"), "\(error)")
        }
    }

    func testUnknownCertificateIsRejectedAndSavedThenAcceptedOnceMovedToTrusted() throws {
        let folder = TempFolder(prefix: "pki")
        defer { folder.remove() }
        let store = try PKIStore(folder: folder.path, logger: Self.quiet)
        let server = try Certificate.selfSigned(CertificateRequest(applicationURI: "urn:plc:1", commonName: "PLC 1")).certificate

        let verdict = store.verdict(peerCertificate: server.der, expectedApplicationURI: "urn:plc:1")
        XCTAssertEqual(verdict.status, StatusCode.badCertificateUntrusted)
        let saved = folder.path + "/rejected/\(server.thumbprintHex).der"
        XCTAssertEqual(verdict.savedTo, saved)
        XCTAssertEqual(try Certificate.load(path: saved), server)
        XCTAssertTrue(verdict.message.contains("server certificate not trusted"), verdict.message)
        XCTAssertTrue(verdict.message.contains("move it to \(folder.path)/trusted/ to accept"), verdict.message)
        // Again: still untrusted, one file.
        XCTAssertEqual(store.check(peerCertificate: server.der, expectedApplicationURI: nil), StatusCode.badCertificateUntrusted)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path + "/rejected"), ["\(server.thumbprintHex).der"])

        // Moved to trusted/ (as the README says): accepted without a new store.
        XCTAssertEqual(rename(saved, folder.path + "/trusted/\(server.thumbprintHex).der"), 0)
        XCTAssertNil(store.check(peerCertificate: server.der, expectedApplicationURI: "urn:plc:1"))
        XCTAssertTrue(store.verdict(peerCertificate: server.der, expectedApplicationURI: nil).message.contains("accepted"))

        // Removed from trusted/: refused again.
        XCTAssertEqual(unlink(folder.path + "/trusted/\(server.thumbprintHex).der"), 0)
        XCTAssertEqual(store.check(peerCertificate: server.der, expectedApplicationURI: nil), StatusCode.badCertificateUntrusted)
    }

    func testTrustedPEMFileIsAcceptedAndTheURIIsChecked() throws {
        let folder = TempFolder(prefix: "pki")
        defer { folder.remove() }
        let store = try PKIStore(folder: folder.path, logger: Self.quiet)
        let server = try Certificate.selfSigned(CertificateRequest(applicationURI: "urn:plc:2", commonName: "PLC 2")).certificate
        try server.pem.write(toFile: folder.path + "/trusted/plc2.pem", atomically: true, encoding: .utf8)
        XCTAssertNil(store.check(peerCertificate: server.der, expectedApplicationURI: "urn:plc:2"))
        let wrong = store.verdict(peerCertificate: server.der, expectedApplicationURI: "urn:plc:3")
        XCTAssertEqual(wrong.status, StatusCode.badCertificateUriInvalid)
        XCTAssertTrue(wrong.message.contains("urn:plc:2") && wrong.message.contains("urn:plc:3"), wrong.message)
        // A file in trusted/ that is not a certificate is skipped, not fatal.
        try "junk".write(toFile: folder.path + "/trusted/readme.txt", atomically: true, encoding: .utf8)
        XCTAssertNil(store.check(peerCertificate: server.der, expectedApplicationURI: nil))
        XCTAssertEqual(store.check(peerCertificate: [1, 2, 3], expectedApplicationURI: nil), StatusCode.badCertificateInvalid)
    }

    func testExpiredNotYetValidAndWrongKeyUsageHaveTheirOwnStatus() throws {
        let folder = TempFolder(prefix: "pki")
        defer { folder.remove() }
        let now = Date()
        let store = try PKIStore(folder: folder.path, logger: Self.quiet, clock: { now })
        var request = CertificateRequest(applicationURI: "urn:plc:old", commonName: "Old PLC", now: now.addingTimeInterval(-400 * 86_400))
        request.validTo = now.addingTimeInterval(-86_400)
        let expired = try Certificate.selfSigned(request).certificate
        var future = CertificateRequest(applicationURI: "urn:plc:new", commonName: "New PLC")
        future.validFrom = now.addingTimeInterval(86_400)
        let early = try Certificate.selfSigned(future).certificate
        var signOnly = CertificateRequest(applicationURI: "urn:plc:sign", commonName: "Sign only")
        signOnly.keyUsage = [.digitalSignature]
        let narrow = try Certificate.selfSigned(signOnly).certificate
        var noPurpose = CertificateRequest(applicationURI: "urn:plc:email", commonName: "No purpose")
        noPurpose.extendedKeyUsage = []
        let plain = try Certificate.selfSigned(noPurpose).certificate
        for (index, cert) in [expired, early, narrow, plain].enumerated() {
            try Data(cert.der).write(to: URL(fileURLWithPath: folder.path + "/trusted/\(index).der"))
        }
        let old = store.verdict(peerCertificate: expired.der, expectedApplicationURI: nil)
        XCTAssertEqual(old.status, StatusCode.badCertificateTimeInvalid)
        XCTAssertTrue(old.message.hasPrefix("certificate expired on"), old.message)
        let soon = store.verdict(peerCertificate: early.der, expectedApplicationURI: nil)
        XCTAssertEqual(soon.status, StatusCode.badCertificateTimeInvalid)
        XCTAssertTrue(soon.message.hasPrefix("certificate not valid before"), soon.message)
        let use = store.verdict(peerCertificate: narrow.der, expectedApplicationURI: "urn:plc:sign")
        XCTAssertEqual(use.status, StatusCode.badCertificateUseNotAllowed)
        XCTAssertTrue(use.message.contains("keyEncipherment"), use.message)
        // No extendedKeyUsage extension at all is fine (many PLCs' certificates have none).
        XCTAssertNil(store.check(peerCertificate: plain.der, expectedApplicationURI: "urn:plc:email"))
        XCTAssertNil(plain.extendedKeyUsage)
    }

    func testAServerThatChangedItsCertificateIsNamedAsSuch() throws {
        let folder = TempFolder(prefix: "pki")
        defer { folder.remove() }
        let store = try PKIStore(folder: folder.path, logger: Self.quiet)
        let before = try Certificate.selfSigned(CertificateRequest(applicationURI: "urn:plc:9", commonName: "PLC 9")).certificate
        try Data(before.der).write(to: URL(fileURLWithPath: folder.path + "/trusted/plc9.der"))
        XCTAssertNil(store.check(peerCertificate: before.der, expectedApplicationURI: "urn:plc:9"))
        let after = try Certificate.selfSigned(CertificateRequest(applicationURI: "urn:plc:9", commonName: "PLC 9")).certificate
        let verdict = store.verdict(peerCertificate: after.der, expectedApplicationURI: "urn:plc:9")
        XCTAssertEqual(verdict.status, StatusCode.badCertificateUntrusted)
        XCTAssertTrue(verdict.message.hasPrefix("server changed its certificate"), verdict.message)
        XCTAssertTrue(verdict.message.contains(before.thumbprintHex) && verdict.message.contains(after.thumbprintHex), verdict.message)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.path + "/rejected/\(after.thumbprintHex).der"))
    }

    func testRecordingTrustKeepsTheLastVerdictForItsStation() throws {
        let folder = TempFolder(prefix: "pki")
        defer { folder.remove() }
        let store = try PKIStore(folder: folder.path, logger: Self.quiet)
        let a = RecordingTrust(store: store), b = RecordingTrust(store: store)
        let cert = try Certificate.selfSigned(CertificateRequest(applicationURI: "urn:plc:a", commonName: "A")).certificate
        XCTAssertNil(a.lastVerdict)
        XCTAssertEqual(a.check(peerCertificate: cert.der, expectedApplicationURI: nil), StatusCode.badCertificateUntrusted)
        XCTAssertEqual(a.lastVerdict?.thumbprint, cert.thumbprintHex)
        XCTAssertNil(b.lastVerdict)
    }

    /// A certificate made by Python's `cryptography` (as the asyncua test servers use) parses with the same fields.
    func testParsesACertificateMadeByPythonCryptography() throws {
        guard FileManager.default.isExecutableFile(atPath: peerPython()) else { throw XCTSkip("no venv (tools/test installs it)") }
        let folder = TempFolder(prefix: "pki")
        defer { folder.remove() }
        let script = """
        import datetime, sys
        from cryptography import x509
        from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "py server")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier("urn:py:server"), x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True, data_encipherment=True,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
        open(sys.argv[1], "wb").write(cert.public_bytes(serialization.Encoding.DER))
        print(cert.fingerprint(hashes.SHA1()).hex().upper())
        """
        try script.write(toFile: folder.file("make.py"), atomically: true, encoding: .utf8)
        let result = try runToEnd(peerPython(), [folder.file("make.py"), folder.file("py.der")])
        XCTAssertEqual(result.status, 0, result.output)
        let cert = try Certificate.load(path: folder.file("py.der"))
        XCTAssertEqual(cert.thumbprintHex, result.output.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(cert.applicationURI, "urn:py:server")
        XCTAssertEqual(cert.keyUsage, [.digitalSignature, .nonRepudiation, .keyEncipherment, .dataEncipherment])
        XCTAssertEqual(cert.extendedKeyUsage, [.serverAuth])
        XCTAssertEqual(cert.commonName, "py server")
    }
}
