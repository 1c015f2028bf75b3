import Foundation
import XCTest
import TestSupport
import OPCUA
@testable import OPCUAAdapter
import PlantModel
import Runtime

/// The failure cases of a secure station (README "Connecting to a PLC that requires security"): each
/// is one clear station status, nothing crashes, another station carries on, and healing keeps trying.
final class SecurityStatusTests: XCTestCase {
    static let quiet = Logger(label: "t", level: .critical)
    static let serverURI = "urn:linemes:test:secure-plc"

    /// Our server offering only Basic256Sha256 SignAndEncrypt, user li.wei / s3cret.
    func makeSecureServer(certificate: CertificateAndKey, port: UInt16 = 0) throws -> OPCUAServer {
        var options = OPCUAServer.Options()
        options.port = port
        options.applicationUri = Self.serverURI
        options.security = ServerSecurity(endpoints: [(.basic256Sha256, .signAndEncrypt)], certificate: certificate.certificate.der,
                                          privateKey: try RSAPrivateKey(pem: certificate.privateKeyPEM),
                                          applicationURI: Self.serverURI, trust: AcceptAllCertificates(), users: ["li.wei": "s3cret"])
        let server = OPCUAServer(options: options)
        try server.addVariable(nodeId: NodeId("Weld.Current", namespace: 2), browseName: "Current", value: .double(211.5))
        try server.start()
        return server
    }

    func makePlainServer() throws -> OPCUAServer {
        let server = OPCUAServer(options: OPCUAServer.Options())
        try server.addVariable(nodeId: NodeId("Paint.Film", namespace: 2), browseName: "Film", value: .double(110.5))
        try server.start()
        return server
    }

    static func serverCertificate(validDays: Double = 2, now: Date = Date()) throws -> CertificateAndKey {
        try Certificate.selfSigned(CertificateRequest(applicationURI: serverURI, commonName: "secure PLC", validDays: validDays, now: now))
    }

    func secureStation(port: UInt16) -> StationConfig {
        var station = StationConfig(id: "WELD-01", name: "Weld", process: "weld", protocol: .opcua,
                                    endpoint: .opcua(url: "opc.tcp://127.0.0.1:\(port)", host: "127.0.0.1", port: port),
                                    pollIntervalMs: 50, timeoutMs: 1000, signals: [
                                        SignalConfig(name: "current", role: .measurement, node: "ns=2;s=Weld.Current", type: .double),
                                    ])
        station.security = OPCUASecurityConfig(policy: .basic256Sha256, mode: .signAndEncrypt, user: "li.wei", passwordEnv: "WELD_PW",
                                               path: "stations[0].security")
        return station
    }

    func plainStation(port: UInt16) -> StationConfig {
        StationConfig(id: "PAINT-01", name: "Paint", process: "paint", protocol: .opcua,
                      endpoint: .opcua(url: "opc.tcp://127.0.0.1:\(port)", host: "127.0.0.1", port: port),
                      pollIntervalMs: 50, timeoutMs: 1000, signals: [
                        SignalConfig(name: "film", role: .measurement, node: "ns=2;s=Paint.Film", type: .double),
                      ])
    }

    func context(_ stations: [StationConfig], pki: String, password: String = "s3cret") throws -> OPCUAClientSecurityContext {
        let config = PlantConfig(plant: "t", route: ["weld", "paint"], stations: stations)
        return try OPCUAClientSecurityContext(config: config, pkiFolder: pki, environment: ["WELD_PW": password],
                                              applicationURI: "urn:linemes:test:mes-client", logger: Self.quiet)
    }

    /// The newest status of `station` (reason of its last connection change) and whether it is online.
    func status(_ collector: Collector, _ station: String) -> (PlantModel.ConnectionState?, String?) {
        let change = collector.snapshot().1.last { $0.station == station }
        return (change?.state, change?.reason)
    }

    func goodReading(_ collector: Collector, _ station: String, _ signal: String) -> SignalValue? {
        collector.snapshot().0.last { $0.station == station }?.readings.first { $0.name == signal && $0.quality == .good }?.value
    }

    func run(_ adapter: OPCUAStationAdapter) -> Task<Void, Never> { Task { try? await adapter.run() } }

    func testUntrustedServerCertificateLandsInRejectedAndTheStationComesOnlineOnceItIsTrusted() async throws {
        let folder = TempFolder(prefix: "uasec")
        defer { folder.remove() }
        let certificate = try Self.serverCertificate()
        let secure = try makeSecureServer(certificate: certificate)
        defer { secure.stop() }
        let plain = try makePlainServer()
        defer { plain.stop() }
        let stations = [secureStation(port: secure.port), plainStation(port: plain.port)]
        let context = try context(stations, pki: folder.file("pki"))
        let collector = Collector()
        let weld = OPCUAStationAdapter(config: stations[0], sink: collector.sink, logger: Self.quiet, securityContext: context)
        let paint = OPCUAStationAdapter(config: stations[1], sink: collector.sink, logger: Self.quiet, securityContext: context)
        let tasks = [run(weld), run(paint)]

        let rejected = folder.file("pki/rejected/\(certificate.certificate.thumbprintHex).der")
        XCTAssertTrue(eventually(timeout: 20) { self.status(collector, "WELD-01").1?.hasPrefix("server certificate not trusted") == true },
                      "\(status(collector, "WELD-01"))")
        let (state, reason) = status(collector, "WELD-01")
        XCTAssertEqual(state, .offline)
        XCTAssertTrue(reason?.contains("moved to \(rejected); move it to \(folder.file("pki"))/trusted/ to accept") == true, reason ?? "")
        XCTAssertTrue(FileManager.default.fileExists(atPath: rejected))
        // The other station is unaffected.
        XCTAssertTrue(eventually { self.goodReading(collector, "PAINT-01", "film") == .double(110.5) })
        XCTAssertEqual(status(collector, "PAINT-01").0, .online)

        // Trusting it is moving the file: the station comes online at its next retry, no restart.
        XCTAssertEqual(rename(rejected, folder.file("pki/trusted/plc.der")), 0)
        XCTAssertTrue(eventually(timeout: 20) { self.goodReading(collector, "WELD-01", "current") == .double(211.5) },
                      "\(status(collector, "WELD-01"))")
        XCTAssertEqual(status(collector, "WELD-01").0, .online)
        XCTAssertEqual(status(collector, "PAINT-01").0, .online)
        for task in tasks { task.cancel(); await task.value }
    }

    func testWrongPasswordIsItsOwnStatusAndOthersCarryOn() async throws {
        let folder = TempFolder(prefix: "uasec")
        defer { folder.remove() }
        let certificate = try Self.serverCertificate()
        let secure = try makeSecureServer(certificate: certificate)
        defer { secure.stop() }
        let plain = try makePlainServer()
        defer { plain.stop() }
        let stations = [secureStation(port: secure.port), plainStation(port: plain.port)]
        let context = try context(stations, pki: folder.file("pki"), password: "wrong")
        try Data(certificate.certificate.der).write(to: URL(fileURLWithPath: folder.file("pki/trusted/plc.der")))
        let collector = Collector()
        let weld = OPCUAStationAdapter(config: stations[0], sink: collector.sink, logger: Self.quiet, securityContext: context)
        let paint = OPCUAStationAdapter(config: stations[1], sink: collector.sink, logger: Self.quiet, securityContext: context)
        let tasks = [run(weld), run(paint)]
        XCTAssertTrue(eventually(timeout: 20) { self.status(collector, "WELD-01").1?.hasPrefix("user name or password rejected (user \"li.wei\")") == true },
                      "\(status(collector, "WELD-01"))")
        XCTAssertEqual(status(collector, "WELD-01").0, .offline)
        XCTAssertTrue(eventually { self.goodReading(collector, "PAINT-01", "film") == .double(110.5) })
        // Healing keeps trying: the adapter retries (reconnects counted) without crashing.
        XCTAssertTrue(eventually(timeout: 20) { weld.stats().reconnects >= 2 })
        XCTAssertEqual(weld.stats().errors["security", default: 0] >= 2, true, "\(weld.stats().errors)")
        for task in tasks { task.cancel(); await task.value }
    }

    func testExpiredServerCertificateIsNamedEvenWhenTrusted() async throws {
        let folder = TempFolder(prefix: "uasec")
        defer { folder.remove() }
        let now = Date()
        var request = CertificateRequest(applicationURI: Self.serverURI, commonName: "old PLC", now: now.addingTimeInterval(-30 * 86_400))
        request.validTo = now.addingTimeInterval(-86_400)
        let certificate = try Certificate.selfSigned(request)
        let secure = try makeSecureServer(certificate: certificate)
        defer { secure.stop() }
        let stations = [secureStation(port: secure.port)]
        let context = try context(stations, pki: folder.file("pki"))
        try Data(certificate.certificate.der).write(to: URL(fileURLWithPath: folder.file("pki/trusted/plc.der")))
        let collector = Collector()
        let weld = OPCUAStationAdapter(config: stations[0], sink: collector.sink, logger: Self.quiet, securityContext: context)
        let task = run(weld)
        XCTAssertTrue(eventually(timeout: 20) { self.status(collector, "WELD-01").1?.hasPrefix("certificate expired on") == true },
                      "\(status(collector, "WELD-01"))")
        XCTAssertEqual(status(collector, "WELD-01").0, .offline)
        task.cancel()
        await task.value
    }

    func testAServerThatChangesItsCertificateIsReportedAndTrustedAgainWithoutRestart() async throws {
        let folder = TempFolder(prefix: "uasec")
        defer { folder.remove() }
        let first = try Self.serverCertificate()
        var server = try makeSecureServer(certificate: first)
        let port = server.port
        let stations = [secureStation(port: port)]
        let context = try context(stations, pki: folder.file("pki"))
        try Data(first.certificate.der).write(to: URL(fileURLWithPath: folder.file("pki/trusted/plc.der")))
        let collector = Collector()
        let weld = OPCUAStationAdapter(config: stations[0], sink: collector.sink, logger: Self.quiet, securityContext: context)
        let task = run(weld)
        XCTAssertTrue(eventually(timeout: 20) { self.goodReading(collector, "WELD-01", "current") == .double(211.5) },
                      "\(status(collector, "WELD-01"))")

        // The PLC is replaced (or re-keyed): same address, same application URI, a new certificate.
        server.stop()
        let second = try Self.serverCertificate()
        server = try makeSecureServer(certificate: second, port: port)
        defer { server.stop() }
        XCTAssertTrue(eventually(timeout: 30) { self.status(collector, "WELD-01").1?.hasPrefix("server changed its certificate") == true },
                      "\(status(collector, "WELD-01"))")
        let reason = status(collector, "WELD-01").1 ?? ""
        XCTAssertTrue(reason.contains(first.certificate.thumbprintHex) && reason.contains(second.certificate.thumbprintHex), reason)
        let rejected = folder.file("pki/rejected/\(second.certificate.thumbprintHex).der")
        XCTAssertTrue(FileManager.default.fileExists(atPath: rejected))
        XCTAssertEqual(rename(rejected, folder.file("pki/trusted/plc-new.der")), 0)
        try server.setValue(nodeId: NodeId("Weld.Current", namespace: 2), value: .double(198.0))
        XCTAssertTrue(eventually(timeout: 30) { self.goodReading(collector, "WELD-01", "current") == .double(198.0) },
                      "\(status(collector, "WELD-01"))")
        task.cancel()
        await task.value
    }

    /// Against asyncua (a second implementation of the server side): untrusted first, then trusted and read.
    func testAsyncuaSecureServerIsRejectedThenTrusted() async throws {
        guard FileManager.default.isExecutableFile(atPath: peerPython()) else { throw XCTSkip("no venv (tools/test installs it)") }
        let folder = TempFolder(prefix: "uasec")
        defer { folder.remove() }
        try FileManager.default.createDirectory(atPath: folder.file("peer"), withIntermediateDirectories: true)
        let peer = try PeerProcess(script: "opcua_asyncua_secure_server.py", arguments: [folder.file("peer")])
        defer { peer.stop() }
        var station = secureStation(port: peer.port)
        station.signals = [SignalConfig(name: "demo", node: "ns=2;s=Demo.Double", type: .double)]
        let context = try context([station], pki: folder.file("pki"))
        let collector = Collector()
        let adapter = OPCUAStationAdapter(config: station, sink: collector.sink, logger: Self.quiet, securityContext: context)
        let task = run(adapter)
        XCTAssertTrue(eventually(timeout: 30) { self.status(collector, "WELD-01").1?.hasPrefix("server certificate not trusted") == true },
                      "\(status(collector, "WELD-01"))")
        let server = try Certificate.load(path: folder.file("peer/server.der"))
        let rejected = folder.file("pki/rejected/\(server.thumbprintHex).der")
        XCTAssertEqual(rename(rejected, folder.file("pki/trusted/asyncua.der")), 0)
        XCTAssertTrue(eventually(timeout: 30) { self.goodReading(collector, "WELD-01", "demo") == .double(3.25) },
                      "\(status(collector, "WELD-01"))")
        XCTAssertTrue(peer.waitFor("SESSION Basic256Sha256 SignAndEncrypt li.wei"), peer.text)
        task.cancel()
        await task.value
    }
}
