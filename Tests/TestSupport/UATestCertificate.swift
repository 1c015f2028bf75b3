import Foundation

/// An OPC UA application instance certificate for tests: self-signed RSA (2048 bits unless told), SHA-256,
/// the application URI as a URI in subjectAltName (plus DNS localhost), made by the `openssl` command line
/// in `folder`. `certificateDER`/`certificatePEM`/`keyPEM` are file paths.
public struct UATestCertificate: Sendable {
    public let certificateDER: String
    public let certificatePEM: String
    public let keyPEM: String
    public let applicationURI: String

    public init(in folder: String, name: String, applicationURI: String, bits: Int = 2048, days: Int = 2) throws {
        certificatePEM = "\(folder)/\(name).pem"
        certificateDER = "\(folder)/\(name).der"
        keyPEM = "\(folder)/\(name)-key.pem"
        self.applicationURI = applicationURI
        let made = try runToEnd("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:\(bits)", "-nodes", "-sha256", "-days", "\(days)",
            "-keyout", keyPEM, "-out", certificatePEM, "-subj", "/CN=\(name)/O=LineMES tests",
            "-addext", "subjectAltName=URI:\(applicationURI),DNS:localhost",
            "-addext", "keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,keyCertSign",
            "-addext", "extendedKeyUsage=serverAuth,clientAuth",
            "-addext", "basicConstraints=critical,CA:FALSE",
        ])
        guard made.status == 0 else { throw TestCertificate.Failure.openssl(made.output) }
        let converted = try runToEnd("/usr/bin/openssl", ["x509", "-in", certificatePEM, "-outform", "DER", "-out", certificateDER])
        guard converted.status == 0 else { throw TestCertificate.Failure.openssl(converted.output) }
    }

    /// The certificate's DER bytes.
    public var der: [UInt8] { [UInt8](FileManager.default.contents(atPath: certificateDER) ?? Data()) }
}
