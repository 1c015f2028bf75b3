import Foundation
import Notify
import PlantModel
import Runtime
import Storage
import TestSupport
import XCTest

/// Notifications to `https://` receivers (README "Notifications"): Python's http.server in `ssl`
/// on 127.0.0.1 with a self-signed certificate made by `openssl req` for this test. A lane with
/// that certificate as its `caFile` delivers over one kept TLS connection; a lane without it (the
/// system's CA store) refuses the receiver: each attempt fails with "certificate verify failed",
/// is stored as its `lastError` and retried, and nothing reaches the receiver.
final class NotificationHTTPSTests: XCTestCase {
    let cause = NewEvent(type: "defect", time: Date(), data: "{}")

    func message(_ id: String, lane: String, url: String) throws -> NotifyMessage {
        NotifyMessage(id: id, to: String(lane.prefix { $0 != "/" }), channel: .wecom, url: try HTTPURL.parse(url).get(), kind: "defect",
                      subject: "Defect / 缺陷", text: "weld spatter", link: nil, item: .obj([]), createdAt: Date(), lane: lane)
    }

    func testHTTPSReceiverVerifiedWithCAFileAndRefusedWithoutIt() throws {
        let dir = makeTempDirectory(self)
        let certificate = try TestCertificate(in: dir.path)
        let peer = try PeerProcess(script: "notify_receiver.py", arguments: ["1", "--ok", "--tls", certificate.certificate, certificate.key])
        defer { peer.stop() }

        var storage = EventLog.Configuration(path: dir.appendingPathComponent("mes.sqlite").path)
        storage.migrations = [Outbox.migrations]
        let log = try EventLog.open(storage, logger: Logger(label: "test", level: .error))
        log.start()
        defer { log.close() }
        var settings = NotificationDelivery.Configuration()
        settings.policy.base = 0.05
        settings.policy.cap = 0.2
        settings.caFiles = ["li.wei/0": certificate.certificate]
        let delivery = NotificationDelivery(eventLog: log, configuration: settings, logger: Logger(label: "test", level: .critical))
        delivery.start()
        defer { delivery.stop() }

        let trusted = try (0..<3).map { try message("trusted-\($0)", lane: "li.wei/0", url: "https://127.0.0.1:\(peer.port)/wecom/li") }
        let refused = try message("refused-0", lane: "zhang.min/0", url: "https://127.0.0.1:\(peer.port)/wecom/zhang")
        try log.write(events: [cause]) { db in try delivery.write(trusted + [refused], to: db) }

        let sent = try eventually(timeout: 30) { try log.read { try Outbox.list(status: .sent, in: $0) }.count == trusted.count }
        let states = try log.read { try Outbox.list(in: $0) }.map { "\($0.id) \($0.status) \($0.attempts) \($0.lastError ?? "")" }
        XCTAssertTrue(sent, states.joined(separator: "\n"))
        // Kept alive: the three went over one TLS connection, in order, once each.
        let requests = peer.printedLines.filter { $0.hasPrefix("REQ /wecom/li ") }.map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(requests.map { $0[2] }, trusted.map(\.id))
        XCTAssertEqual(Set(requests.map { $0[4] }).count, 1, "one connection: \(requests)")

        // Without the caFile: refused, retried, reported; never a request, never sent or dropped.
        var head: NotifyMessage?
        XCTAssertTrue(try eventually(timeout: 30) {
            head = try log.read { try Outbox.notification(id: refused.id, in: $0) }
            return (head?.attempts ?? 0) >= 3
        }, "\(String(describing: head))")
        XCTAssertEqual(head?.status, .pending)
        let error = try XCTUnwrap(head?.lastError)
        XCTAssertTrue(error.contains("certificate verify failed"), error)
        XCTAssertTrue(error.contains("127.0.0.1:\(peer.port)"), error)
        XCTAssertFalse(peer.printedLines.contains { $0.hasPrefix("REQ /wecom/zhang") })
        XCTAssertTrue(peer.printedLines.contains { $0.hasPrefix("HANDSHAKE-FAILED") }, peer.text)
    }

    /// A kept TLS connection whose receiver went away (restarted on the same port) is opened again
    /// for the next notification, handshake and all, and the request sent once more: no failed attempt.
    func testAKeptTLSConnectionTheReceiverDroppedIsOpenedAgain() throws {
        let dir = makeTempDirectory(self)
        let certificate = try TestCertificate(in: dir.path)
        var peer = try PeerProcess(script: "notify_receiver.py", arguments: ["1", "--ok", "--tls", certificate.certificate, certificate.key])
        let port = peer.port
        let session = HTTPSession(client: HTTPPost(connectTimeoutMs: 2000, readTimeoutMs: 2000), caFile: certificate.certificate)
        defer { session.close() }
        let url = try HTTPURL.parse("https://localhost:\(port)/hooks/a").get()
        XCTAssertEqual(try session.post(url, body: Array("{}".utf8), headers: [("Idempotency-Key", "one")]).status, 200)
        XCTAssertEqual(try session.post(url, body: Array("{}".utf8), headers: [("Idempotency-Key", "two")]).status, 200)
        XCTAssertEqual(session.connections, 1, "kept alive")
        peer.stop()
        peer = try PeerProcess(script: "notify_receiver.py", arguments: ["1", "--ok", "--tls", certificate.certificate, certificate.key,
                                                                         "--port", String(port)])
        defer { peer.stop() }
        XCTAssertEqual(try session.post(url, body: Array("{}".utf8), headers: [("Idempotency-Key", "three")]).status, 200)
        XCTAssertEqual(session.connections, 2)
        XCTAssertEqual(peer.printedLines.filter { $0.hasPrefix("REQ ") }.map { $0.split(separator: " ")[2] }, ["three"])
    }

    /// The receiver's name is checked, not only its chain: a certificate that `caFile` trusts but
    /// that names another host (`other.plant`, not 127.0.0.1) is refused.
    func testAReceiverWhoseCertificateNamesAnotherHostIsRefused() throws {
        let dir = makeTempDirectory(self)
        let certificate = dir.appendingPathComponent("other.pem").path, key = dir.appendingPathComponent("other-key.pem").path
        let made = try runToEnd("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2", "-keyout", key, "-out", certificate,
            "-subj", "/CN=other.plant", "-addext", "subjectAltName=DNS:other.plant",
        ])
        XCTAssertEqual(made.status, 0, made.output)
        let peer = try PeerProcess(script: "notify_receiver.py", arguments: ["1", "--ok", "--tls", certificate, key])
        defer { peer.stop() }
        let session = HTTPSession(client: HTTPPost(connectTimeoutMs: 2000, readTimeoutMs: 2000), caFile: certificate)
        defer { session.close() }
        let url = try HTTPURL.parse("https://127.0.0.1:\(peer.port)/hooks/x").get()
        XCTAssertThrowsError(try session.post(url, body: Array("{}".utf8), headers: [])) { error in
            XCTAssertTrue("\(error)".contains("certificate verify failed"), "\(error)")
            XCTAssertTrue("\(error)".lowercased().contains("mismatch"), "\(error)")
        }
        XCTAssertFalse(peer.printedLines.contains { $0.hasPrefix("REQ ") })
    }

    func testHTTPSAndHostNamesInTheConfigAndCAFileChecks() throws {
        let dir = makeTempDirectory(self)
        let certificate = try TestCertificate(in: dir.path)
        func decode(_ people: String, notify: String = "{}") throws -> PlantConfig {
            try PlantConfig.decode(json: JSON.parse("""
                {"route": ["body"], "stations": [], "people": \(people), "notify": \(notify)}
                """), file: "p.json", directory: dir)
        }
        func error(_ people: String, notify: String = "{}") -> String {
            do { _ = try decode(people, notify: notify); return "accepted" } catch { return "\(error)" }
        }
        let config = try decode(#"""
            [{"user": "a", "notify": [{"type": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"},
                                      {"type": "webhook", "url": "https://127.0.0.1:8443/hook", "caFile": "cert.pem"}]}]
            """#, notify: #"{"caFile": "\#(certificate.certificate)"}"#)
        let channels = try XCTUnwrap(config.people.person("a")?.notify)
        XCTAssertEqual(channels[0].url, HTTPURL(host: "qyapi.weixin.qq.com", port: 443, path: "/cgi-bin/webhook/send?key=K", secure: true))
        XCTAssertEqual(channels[0].url.description, "https://qyapi.weixin.qq.com:443/cgi-bin/webhook/send?key=K")
        XCTAssertEqual(try HTTPURL.parse(channels[0].url.description).get(), channels[0].url, "stored and read back")
        XCTAssertNil(channels[0].caFile)
        XCTAssertEqual(channels[1].caFile, dir.appendingPathComponent("cert.pem").path, "relative to the config's folder")
        XCTAssertEqual(config.people.notify.caFile, certificate.certificate)
        var settings = NotificationDelivery.Configuration()
        settings.trust(config.people)
        XCTAssertEqual(settings.caFiles, ["a/0": certificate.certificate, "a/1": dir.appendingPathComponent("cert.pem").path])

        XCTAssertTrue(error(#"[{"user": "a", "notify": [{"type": "wecom", "url": "http://127.0.0.1:9/x", "caFile": "cert.pem"}]}]"#)
            .contains("caFile needs an https:// url"))
        XCTAssertTrue(error(#"[{"user": "a", "notify": [{"type": "wecom", "url": "https://127.0.0.1:9/x", "caFile": "missing.pem"}]}]"#)
            .contains("people[0].notify[0].caFile: cannot read"))
        XCTAssertTrue(error("[]", notify: #"{"caFile": "\#(certificate.key)"}"#).contains("notify.caFile: \"\(certificate.key)\" holds no PEM certificate"))
        XCTAssertTrue(error(#"[{"user": "a", "notify": [{"type": "wecom", "url": "https://bad_host/x"}]}]"#)
            .contains("neither an IPv4 address nor a DNS name"))
    }
}
