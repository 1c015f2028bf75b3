import Foundation
import XCTest
import HTTP
@testable import MESApp
import PlantModel
import Runtime
import Storage
import TestSupport

/// The parts of a group of nodes that need no PostgreSQL (README "Two nodes"): options, the health
/// document's node and role, the standby's write forwarding and its live view.
final class ClusterPartsTests: XCTestCase {
    func testNodeAndAdvertiseOptions() throws {
        let options = try ServerOptions.parse(["--node", "mes-b", "--advertise", "http://10.0.0.12:8080/"])
        XCTAssertEqual(options.node, "mes-b")
        XCTAssertEqual(options.advertise, "http://10.0.0.12:8080")
        XCTAssertEqual(try ServerOptions.parse([]).node, ServerOptions.hostName())
        XCTAssertThrowsError(try ServerOptions.parse(["--node", "two words"])) { XCTAssertTrue("\($0)".contains("--node"), "\($0)") }
        XCTAssertThrowsError(try ServerOptions.parse(["--advertise", "10.0.0.12:8080"])) { XCTAssertTrue("\($0)".contains("http://"), "\($0)") }
        // --peer-ca: a readable file; without it a node trusts its own --tls-cert.
        XCTAssertThrowsError(try ServerOptions.parse(["--peer-ca", "/nonexistent/ca.pem"])) { XCTAssertTrue("\($0)".contains("--peer-ca"), "\($0)") }
        XCTAssertEqual(try ServerOptions.parse(["--peer-ca", "/etc/passwd"]).peerTrust.caFile, "/etc/passwd")
        XCTAssertEqual(try ServerOptions.parse(["--tls-cert", "c.pem", "--tls-key", "k.pem"]).peerTrust.caFile, "c.pem")
        XCTAssertNil(try ServerOptions.parse([]).peerTrust.caFile)
        XCTAssertTrue(ClusterNode.isGroup(database: "postgresql://u@h/db"))
        XCTAssertTrue(ClusterNode.isGroup(database: "postgres://u@h/db"))
        XCTAssertFalse(ClusterNode.isGroup(database: "var/mes.sqlite"))
    }

    func testANodeNeedsAnAddressTheOthersReach() throws {
        var options = ServerOptions()
        options.config = repoRoot.appendingPathComponent("Stations/plant.json").path
        options.database = "postgresql://mes@127.0.0.1:1/mes"
        options.host = "0.0.0.0"
        XCTAssertThrowsError(try ClusterNode(options: options, logger: Logger(label: "t", level: .critical))) {
            XCTAssertTrue("\($0)".contains("--advertise"), "\($0)")
        }
        options.advertise = "http://mes-a:8080"
        XCTAssertThrowsError(try ClusterNode(options: options, logger: Logger(label: "t", level: .critical))) {
            XCTAssertTrue("\($0)".contains("IPv4"), "\($0)")
        }
        options.advertise = "http://10.0.0.11:8080"
        XCTAssertEqual(try ClusterNode(options: options, logger: Logger(label: "t", level: .critical)).driver.url, "http://10.0.0.11:8080")
    }

    func testLeaseSIsReadAndChecked() throws {
        var text = try String(contentsOf: repoRoot.appendingPathComponent("Stations/plant.json"), encoding: .utf8)
        let dir = makeTempDirectory(self)
        XCTAssertEqual(try PlantConfig.load(path: repoRoot.appendingPathComponent("Stations/plant.json").path).leaseS, 5)
        text = text.replacingOccurrences(of: #""plant":"#, with: #""leaseS": 1, "plant":"#)
        let path = dir.appendingPathComponent("plant.json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PlantConfig.load(path: path)) { XCTAssertTrue("\($0)".contains("leaseS"), "\($0)") }
    }

    /// A SQLite server is always the active of a group of one, named by `--node`.
    func testHealthSaysNodeAndRole() async throws {
        var options = ServerOptions()
        options.config = repoRoot.appendingPathComponent("Stations/plant.json").path
        options.database = makeTempDirectory(self).appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = "/dev/null"
        options.node = "line-3"
        let server = try MESServer(options: options, logger: Logger(label: "test", level: .warning))
        let task = Task { try await server.run(installSignalHandlers: false) }
        let health = try XCTUnwrap(TestHTTP(port: server.port).get("/api/health").json)
        XCTAssertEqual(health["node"]?.stringValue, "line-3")
        XCTAssertEqual(health["role"]?.stringValue, "active")
        server.shutdown()
        try await task.value
    }

    /// The forwarder sends a write to another server and hands its answer back unchanged.
    func testAForwardedWriteGetsTheTargetsAnswer() async throws {
        let dir = makeTempDirectory(self)
        let token = "cluster-parts-test-operator-token-0123456789"
        try #"[{"token": "\#(token)", "user": "op", "role": "operator"}]"#.write(toFile: dir.appendingPathComponent("tokens.json").path,
                                                                                atomically: true, encoding: .utf8)
        var text = try String(contentsOf: repoRoot.appendingPathComponent("Stations/plant.json"), encoding: .utf8)
        text = text.replacingOccurrences(of: #""tokensFile": "tokens.json""#, with: #""tokensFile": "\#(dir.path)/tokens.json""#)
        let config = dir.appendingPathComponent("plant.json").path
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        var options = ServerOptions()
        options.config = config
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = "/dev/null"
        let server = try MESServer(options: options, logger: Logger(label: "test", level: .warning))
        let task = Task { try await server.run(installSignalHandlers: false) }
        defer { server.shutdown() }

        let forwarder = WriteForwarder(holder: { LeaseHolder(node: "a", url: "http://127.0.0.1:\(server.port)", epoch: 1) }, node: "b")
        func viaForwarder(_ method: HTTPMethod, _ path: String, body: String, auth: Bool = true) throws -> HTTPResponse {
            var headers: HTTPHeaders = ["Host": "127.0.0.1", "Content-Type": "application/json"]
            if auth { headers.add("Authorization", "Bearer \(token)") }
            let request = HTTPRequest(method: method, path: path, headers: headers, body: Array(body.utf8))
            let reply = try forwarder.handle(request) { _ in XCTFail("a write is not answered locally"); return .json("{}") }
            guard case .deferred(let work) = reply, case .response(let response) = try work.run() else {
                XCTFail("a write is forwarded off the loop"); return HTTPResponse()
            }
            return response
        }
        let call = try viaForwarder(.post, "/api/andon", body: #"{"station": "WELD-01", "comment": "forwarded"}"#)
        XCTAssertEqual(call.status, 201, String(decoding: call.body, as: UTF8.self))
        let id = try XCTUnwrap(JSON.parse(bytes: call.body)["id"]?.intValue)
        let direct = try TestHTTP(port: server.port).get("/api/andon?station=WELD-01")
        XCTAssertTrue(direct.body.contains("forwarded"), direct.body)
        XCTAssertEqual(call.headers["Content-Type"], "application/json; charset=utf-8")
        // Acknowledged twice: the second answer (an error) is the target's, byte for byte.
        XCTAssertEqual(try viaForwarder(.post, "/api/andon/\(id)/ack", body: "{}").status, 200)
        let again = try viaForwarder(.post, "/api/andon/\(id)/ack", body: "{}")
        let againDirect = try TestHTTP(port: server.port).request("POST", "/api/andon/\(id)/ack", body: "{}", headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(again.status, againDirect.status)
        XCTAssertEqual(String(decoding: again.body, as: UTF8.self), againDirect.body)
        XCTAssertEqual(try viaForwarder(.post, "/api/andon", body: #"{"station": "WELD-01"}"#, auth: false).status, 401)

        // Reads are answered locally; with no active known a write is a 503 to retry.
        let read = try forwarder.handle(HTTPRequest(method: .get, path: "/api/andon")) { _ in .json("{\"local\":true}") }
        guard case .response(let local) = read else { return XCTFail("a read is answered locally") }
        XCTAssertEqual(String(decoding: local.body, as: UTF8.self), "{\"local\":true}")
        let orphan = WriteForwarder(holder: { nil }, node: "b")
        guard case .deferred(let work) = try orphan.handle(HTTPRequest(method: .post, path: "/api/andon"), next: { _ in .json("{}") }) else {
            return XCTFail("deferred")
        }
        XCTAssertThrowsError(try work.run()) { error in
            XCTAssertEqual((error as? HTTPError)?.status, 503)
            XCTAssertEqual((error as? HTTPError)?.headers["Retry-After"], "2")
        }

        // Reads of the figures only the active keeps current: the active's answer, byte for byte.
        let restored = ClosureResponder { _ in .json("{\"restored\":true}") }
        let figures = LiveFiguresForwarder(holder: { LeaseHolder(node: "a", url: "http://127.0.0.1:\(server.port)", epoch: 1) },
                                           node: "b", local: restored)
        func viaFigures(_ forwarder: LiveFiguresForwarder, _ path: String, query: [String: String] = [:]) throws -> HTTPResponse {
            let request = HTTPRequest(method: .get, path: path, query: query, headers: ["Host": "127.0.0.1"])
            guard case .deferred(let work) = try forwarder.handle(request, next: { _ in XCTFail("\(path) is the active's"); return .json("{}") }),
                  case .response(let response) = try work.run() else {
                XCTFail("\(path) is answered off the loop"); return HTTPResponse()
            }
            return response
        }
        let active = TestHTTP(port: server.port)
        for (path, query) in [("/api/kpis", [:]), ("/api/stations", [:]), ("/api/stations/WELD-01", [:]), ("/api/equipment", [:]),
                              ("/api/anomalies", [:]), ("/api/kpis", ["shift": "current"])] {
            let answer = try viaFigures(figures, path, query: query)
            XCTAssertEqual(answer.headers["X-MES-Figures"], "active a", path)
            let own = try active.get(path + (query.isEmpty ? "" : "?" + query.map { "\($0.key)=\($0.value)" }.joined(separator: "&")))
            XCTAssertEqual(answer.status, own.status, path)
            XCTAssertEqual(String(decoding: answer.body, as: UTF8.self), own.body, path)
        }
        // Everything else is the standby's own: the station's history, writes, other lists.
        for path in ["/api/stations/WELD-01/history", "/api/andon", "/api/orders"] {
            guard case .response(let response) = try figures.handle(HTTPRequest(method: .get, path: path), next: { _ in .json("{\"next\":1}") }) else {
                return XCTFail("\(path) goes on down the chain")
            }
            XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "{\"next\":1}", path)
        }
        // An active that does not answer: the standby's own figures, marked, and it is not asked again
        // at once (each read would otherwise wait for it).
        let asked = Counter()
        let closed = try freePort()
        var silent = LiveFiguresForwarder(holder: { asked.add(1); return LeaseHolder(node: "a", url: "http://127.0.0.1:\(closed)", epoch: 1) },
                                          node: "b", local: restored)
        silent.retryAfterNs = 3_600_000_000_000
        for _ in 0..<3 {
            let answer = try viaFigures(silent, "/api/kpis")
            XCTAssertEqual(answer.headers["X-MES-Figures"], "restored")
            XCTAssertEqual(String(decoding: answer.body, as: UTF8.self), "{\"restored\":true}")
        }
        XCTAssertEqual(asked.value, 1, "asked once, then answered locally until retryAfterNs")
        // No active known: the standby's own figures.
        let alone = LiveFiguresForwarder(holder: { nil }, node: "b", local: restored)
        XCTAssertEqual(try viaFigures(alone, "/api/stations").headers["X-MES-Figures"], "restored")
        server.shutdown()
        try await task.value
    }

    func testTheStandbysLiveViewFollowsSampleAndStationEvents() throws {
        let config = try PlantConfig.load(path: repoRoot.appendingPathComponent("Stations/plant.json").path)
        let live = LiveStations(config: config)
        StandbyLiveView.apply([
            StoredEvent(seq: 1, type: "sample", station: "WELD-01", timeMs: 0,
                        data: #"{"station":"WELD-01","t":"2026-11-21T06:00:00.100Z","values":{"weldCurrent":10.5,"state":1},"bad":["spotCount"]}"#),
        ], to: live)
        var station = try XCTUnwrap(live.station("WELD-01"))
        XCTAssertEqual(station.connection, .online)
        XCTAssertEqual(station.stateCode, 1)
        XCTAssertEqual(station.signals.first { $0.name == "weldCurrent" }?.value, .double(10.5))
        XCTAssertEqual(station.signals.first { $0.name == "spotCount" }?.quality, .bad)
        StandbyLiveView.apply([
            StoredEvent(seq: 2, type: "station", station: "WELD-01", timeMs: 0,
                        data: #"{"station":"WELD-01","connection":"offline","state":"running","t":"2026-11-21T06:00:01.000Z","reason":"timeout"}"#),
            StoredEvent(seq: 3, type: "alert", station: "WELD-01", timeMs: 0, data: #"{"station":"WELD-01"}"#),
        ], to: live)
        station = try XCTUnwrap(live.station("WELD-01"))
        XCTAssertEqual(station.connection, .offline)
        XCTAssertEqual(station.status, "timeout")
        XCTAssertEqual(station.signals.first { $0.name == "weldCurrent" }?.quality, .stale)
    }

    func testAnswersAreParsedWhole() throws {
        let raw = Array("HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\nX-Id: 7\r\n\r\n{}junk".utf8)
        let response = try XCTUnwrap(ForwardTarget.parse(raw))
        XCTAssertEqual(response.status, 409)
        XCTAssertEqual(response.body, Array("{}".utf8))
        XCTAssertEqual(response.headers["X-Id"], "7")
        XCTAssertNil(response.headers["Connection"])
        XCTAssertNil(ForwardTarget.parse(Array("HTTP/1.1 200 OK\r\n".utf8)))
        XCTAssertEqual(ForwardTarget(url: "https://10.0.0.1:8443")?.secure, true)
        XCTAssertEqual(ForwardTarget(url: "http://10.0.0.1:8080/")?.port, 8080)
        XCTAssertEqual(ForwardTarget(url: "http://10.0.0.1:8080/")?.secure, false)
        XCTAssertNil(ForwardTarget(url: "ftp://10.0.0.1:21"))
        XCTAssertNil(ForwardTarget(url: "https://:8443"))
    }

    /// Forwarding to an active that serves HTTPS: its certificate checked against the standby's
    /// trust (README "Two nodes", "Over HTTPS").
    func testForwardingOverHTTPSChecksTheActivesCertificate() async throws {
        let dir = makeTempDirectory(self)
        let token = "cluster-parts-tls-test-operator-token-0123456789"
        let tokens = dir.appendingPathComponent("tokens.json").path
        try #"[{"token": "\#(token)", "user": "op", "role": "operator"}]"#.write(toFile: tokens, atomically: true, encoding: .utf8)
        var text = try String(contentsOf: repoRoot.appendingPathComponent("Stations/plant.json"), encoding: .utf8)
        text = text.replacingOccurrences(of: #""tokensFile": "tokens.json""#, with: #""tokensFile": "\#(tokens)""#)
        let config = dir.appendingPathComponent("plant.json").path
        try text.write(toFile: config, atomically: true, encoding: .utf8)

        // The active's certificate: issued by a plant CA (not self-signed), for 127.0.0.1.
        let ca = dir.appendingPathComponent("ca").path, leaf = dir.appendingPathComponent("leaf").path
        for arguments in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2", "-keyout", ca + ".key", "-out", ca + ".pem",
             "-subj", "/CN=Plant CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", leaf + ".key", "-out", leaf + ".csr", "-subj", "/CN=mes-a"],
        ] {
            let result = try runToEnd("/usr/bin/openssl", arguments)
            XCTAssertEqual(result.status, 0, result.output)
        }
        try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".write(toFile: leaf + ".ext", atomically: true, encoding: .utf8)
        let signed = try runToEnd("/usr/bin/openssl", ["x509", "-req", "-in", leaf + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                                                      "-CAcreateserial", "-days", "2", "-sha256", "-extfile", leaf + ".ext", "-out", leaf + ".pem"])
        XCTAssertEqual(signed.status, 0, signed.output)
        let other = try TestCertificate(in: try makeTempDirectory(self).path)

        var options = ServerOptions()
        options.config = config
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = "/dev/null"
        options.tlsCertificate = leaf + ".pem"
        options.tlsKey = leaf + ".key"
        let server = try MESServer(options: options, logger: Logger(label: "test", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        defer { server.shutdown() }
        let port = server.port
        let active: @Sendable () -> LeaseHolder? = { LeaseHolder(node: "a", url: "https://127.0.0.1:\(port)", epoch: 1) }

        func write(_ trust: PeerTrust, station: String = "WELD-01") throws -> HTTPResponse {
            let forwarder = WriteForwarder(holder: active, node: "b", trust: trust)
            let request = HTTPRequest(method: .post, path: "/api/andon",
                                      headers: ["Host": "127.0.0.1", "Content-Type": "application/json", "Authorization": "Bearer \(token)"],
                                      body: Array(#"{"station": "\#(station)", "comment": "over TLS"}"#.utf8))
            guard case .deferred(let work) = try forwarder.handle(request, next: { _ in HTTPReply.json("{}") }),
                  case .response(let response) = try work.run() else { XCTFail("forwarded off the loop"); return HTTPResponse() }
            return response
        }
        // Trusting the active's own certificate file (a leaf, not a root: any certificate in the file
        // is an anchor), or its CA's.
        for (trust, station) in [(PeerTrust(caFile: leaf + ".pem"), "WELD-01"), (PeerTrust(caFile: ca + ".pem"), "WELD-02")] {
            let answer = try write(trust, station: station)
            XCTAssertEqual(answer.status, 201, String(decoding: answer.body, as: UTF8.self))
        }
        // A certificate it does not trust: no request is sent, the write is a 503 that says why.
        XCTAssertThrowsError(try write(PeerTrust(caFile: other.certificate))) { error in
            let http = error as? HTTPError
            XCTAssertEqual(http?.status, 503)
            XCTAssertTrue("\(error)".contains("not trusted over TLS") && "\(error)".contains("certificate verify failed"), "\(error)")
        }
        // The system's CA store does not know the plant's CA either.
        XCTAssertThrowsError(try write(PeerTrust(caFile: nil))) { XCTAssertEqual(($0 as? HTTPError)?.status, 503) }
        // The two trusted writes reached the active.
        let listed = try curl(["--cacert", ca + ".pem", "--max-time", "20", "https://127.0.0.1:\(server.port)/api/andon"])
        XCTAssertEqual(listed.output.components(separatedBy: "over TLS").count - 1, 2, listed.output)

        // Live figures over TLS: the active's answer.
        let figures = LiveFiguresForwarder(holder: active, node: "b", local: ClosureResponder { _ in .json("{}") },
                                           trust: PeerTrust(caFile: leaf + ".pem"))
        guard case .deferred(let work) = try figures.handle(HTTPRequest(method: .get, path: "/api/kpis", headers: ["Host": "127.0.0.1"]),
                                                            next: { _ in HTTPReply.json("{}") }),
              case .response(let kpis) = try work.run() else { return XCTFail("deferred") }
        XCTAssertEqual(kpis.headers["X-MES-Figures"], "active a")
        XCTAssertEqual(kpis.status, 200)
        XCTAssertNotNil(try JSON.parse(bytes: kpis.body)["shift"], String(decoding: kpis.body, as: UTF8.self))
        server.shutdown()
        try await task.value
    }
}
