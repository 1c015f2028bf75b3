import Foundation

/// A self-signed certificate for `localhost` and `127.0.0.1` (RSA 2048, SHA-256, two days), made by
/// the `openssl` command line in `folder`; clients trust it with `curl --cacert certificate`.
public struct TestCertificate: Sendable {
    public let certificate: String
    public let key: String

    public enum Failure: Error, CustomStringConvertible {
        case openssl(String)
        public var description: String {
            switch self { case .openssl(let output): "openssl req failed (tools/test installs openssl): \(output)" }
        }
    }

    public init(in folder: String) throws {
        certificate = folder + "/cert.pem"
        key = folder + "/key.pem"
        let result = try runToEnd("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-keyout", key, "-out", certificate, "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        guard result.status == 0 else { throw Failure.openssl(result.output) }
    }
}

/// `curl` with `arguments` (silent, errors shown): its exit status and output.
public func curl(_ arguments: [String], timeout: TimeInterval = 30) throws -> (status: Int32, output: String) {
    try runToEnd("/usr/bin/curl", ["-sS"] + arguments, timeout: timeout)
}
