import BenchSupport
import ComponentBenchmarks
import Foundation
import OPCUA
import Runtime

/// OPC UA over Basic256Sha256 SignAndEncrypt (README "Connecting to a PLC that requires security"):
/// single-value reads with 8 in flight on one channel against the same server (ours, offering None and
/// Basic256Sha256 SignAndEncrypt), read by our client and by asyncua's (Tests/peers/opcua_asyncua_secure_bench.py,
/// the venv's Python from MES_BENCH_PYTHON, set by tools/bench); and our client over None on the same
/// server in the same run, for the cost of security.
extension BenchSuite {
    func opcuaSecure() throws {
        let seconds = short ? 0.5 : 3.0
        let inFlight = Self.opcuaHeadlineInFlight
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-uasec-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let serverURI = "urn:linemes:bench:server"
        let serverIdentity = try Certificate.selfSigned(CertificateRequest(applicationURI: serverURI, commonName: "bench server"))
        let clientIdentity = try Certificate.selfSigned(CertificateRequest(applicationURI: "urn:linemes:bench:client", commonName: "bench client"))
        // asyncua's client takes its certificate and key as files.
        let asyncuaIdentity = try Certificate.selfSigned(CertificateRequest(applicationURI: "urn:linemes:bench:asyncua-client", commonName: "asyncua bench client"))
        try Data(asyncuaIdentity.certificate.der).write(to: URL(fileURLWithPath: folder + "/asyncua.der"))
        try PrivateKeyPEM.write(asyncuaIdentity.privateKeyPEM, to: folder + "/asyncua-key.pem")

        var options = OPCUAServer.Options()
        options.applicationUri = serverURI
        options.security = ServerSecurity(endpoints: [(.none, .none), (.basic256Sha256, .signAndEncrypt)],
                                          certificate: serverIdentity.certificate.der,
                                          privateKey: try RSAPrivateKey(pem: serverIdentity.privateKeyPEM),
                                          applicationURI: serverURI, trust: AcceptAllCertificates())
        let server = OPCUAServer(options: options)
        let node = NodeId("Bench.Double", namespace: 2)
        try server.addVariable(nodeId: node, browseName: "Double", value: .double(3.25))
        try server.start()
        defer { server.stop() }
        let url = "opc.tcp://127.0.0.1:\(server.port)"

        // asyncua first, alone on the machine.
        var asyncua = 0.0
        var asyncuaNote = "asyncua: no figure"
        if let python = ProcessInfo.processInfo.environment["MES_BENCH_PYTHON"], FileManager.default.isExecutableFile(atPath: python) {
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Tests/peers/opcua_asyncua_secure_bench.py").path
            let output = try runPeer(python, [script, url, "ns=2;s=Bench.Double", "\(seconds)", "\(inFlight)", "Basic256Sha256", "SignAndEncrypt",
                                              folder + "/asyncua.der", folder + "/asyncua-key.pem"])
            if let line = output.split(separator: "\n").first(where: { $0.hasPrefix("CONCURRENT") }) {
                let parts = line.split(separator: " ")
                asyncua = parts.count > 2 ? Double(parts[2]) ?? 0 : 0
                asyncuaNote = parts.count > 4 ? "asyncua's channel \(parts[3].split(separator: "#").last ?? "") \(parts[4])" : String(line)
            } else {
                asyncuaNote = "asyncua printed no figure: \(output.suffix(300))"
            }
        } else {
            asyncuaNote = "asyncua skipped (tools/bench sets MES_BENCH_PYTHON)"
        }

        let trust = AcceptAllCertificates()
        let clientKey = try RSAPrivateKey(pem: clientIdentity.privateKeyPEM)
        func rate(_ security: ClientSecurity?) throws -> Double {
            try blocking {
                var clientOptions = OPCUAClient.Options(endpointURL: url)
                clientOptions.security = security
                clientOptions.connectTimeoutMs = 5000
                clientOptions.requestTimeoutMs = 5000
                let client = try OPCUAClient(options: clientOptions)
                try await client.connect()
                _ = try await client.read([node])
                let result = try await OPCUABenchmark.concurrentReads(client: client, node: node, tasks: inFlight, seconds: seconds)
                await client.close()
                return result
            }
        }
        let secure = try rate(ClientSecurity(policy: .basic256Sha256, mode: .signAndEncrypt, certificate: clientIdentity.certificate.der,
                                             privateKey: clientKey, applicationURI: "urn:linemes:bench:client", trust: trust))
        let plain = try rate(nil)
        Self.figure("OPC UA single-value reads/s, Basic256Sha256 SignAndEncrypt, \(inFlight) in flight on one channel (our server), our client ÷ asyncua",
                    asyncua > 0 ? secure / asyncua : 0, unit: "×", target: 5, higherIsBetter: true,
                    reference: String(format: "ours %.0f reads/s, asyncua %.0f reads/s (%@); ours over SecurityPolicy None on the same server %.0f reads/s: SignAndEncrypt costs %.0f%%",
                                      secure, asyncua, asyncuaNote, plain, plain > 0 ? (1 - secure / plain) * 100 : 0))
    }

    /// Runs a peer to its end and returns what it printed.
    private func runPeer(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
