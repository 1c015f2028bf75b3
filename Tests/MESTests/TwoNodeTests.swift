import Foundation
import XCTest
import Runtime
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Two real `mes-server` processes on one throw-away PostgreSQL database, the default plant's PLCs
/// simulated by a `station-sim` process on free ports (README "Two nodes"): takeover after kill -9
/// and after SIGSTOP, writes sent to the standby, SSE resumed on the other node.
final class TwoNodeTests: XCTestCase {
    static let token = "two-node-test-operator-token-0123456789abcdef"
    static let leaseS = 3.0

    /// The plant's folder: the default plant on free ports, `leaseS` 3, an operator token.
    struct Plant {
        var config: String
        var directory: URL
    }

    func makePlant(leaseS: Double = TwoNodeTests.leaseS) throws -> Plant {
        let directory = makeTempDirectory(self, prefix: "two-nodes")
        var text = try String(contentsOf: repoRoot.appendingPathComponent("Stations/plant.json"), encoding: .utf8)
        // Every PLC port of the default plant (modbus://127.0.0.1:15010, opc.tcp://127.0.0.1:14840 …) → a free one.
        let pattern = try NSRegularExpression(pattern: #"127\.0\.0\.1:(1[45]\d{3})"#)
        let ports = Set(pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: 1), in: text).map { String(text[$0]) }
        })
        var taken: Set<UInt16> = []
        for port in ports {
            var free = try freePort()
            while taken.contains(free) { free = try freePort() } // two PLCs never share a port
            taken.insert(free)
            text = text.replacingOccurrences(of: "127.0.0.1:\(port)", with: "127.0.0.1:\(free)")
        }
        var json = try XCTUnwrap(try JSON.parse(text).objectValue)
        json.removeAll { $0.0 == "auth" }
        json.append(("auth", .obj([("tokensFile", .string("tokens.json")), ("anonymousRead", .bool(true))])))
        json.append(("leaseS", .double(leaseS)))
        let config = directory.appendingPathComponent("plant.json").path
        try JSON.object(json).serialized().write(toFile: config, atomically: true, encoding: .utf8)
        try #"[{"token": "\#(Self.token)", "user": "op", "role": "operator"}]"#
            .write(toFile: directory.appendingPathComponent("tokens.json").path, atomically: true, encoding: .utf8)
        return Plant(config: config, directory: directory)
    }

    func startSimulator(_ plant: Plant) throws -> PeerProcess {
        let sim = try PeerProcess(executable: productPath("station-sim"),
                                  arguments: ["--config", plant.config, "--log-level", "warning", "--exit-with-parent"])
        addTeardownBlock { sim.kill() }
        return sim
    }

    /// A node; killed at the end of the test whatever happens.
    func startNode(_ name: String, plant: Plant, database: String, port: UInt16) throws -> PeerProcess {
        let node = try PeerProcess(executable: productPath("mes-server"),
                                   arguments: ["--config", plant.config, "--db", database, "--listen", "127.0.0.1:\(port)",
                                               "--node", name, "--log-level", "notice",
                                               "--dashboards", repoRoot.appendingPathComponent("Dashboards").path])
        addTeardownBlock { node.kill() }
        return node
    }

    func health(_ port: UInt16) -> JSON? {
        guard let response = try? TestHTTP(port: port).get("/api/health"), response.status == 200 else { return nil }
        return response.json
    }

    func role(_ port: UInt16) -> String? { health(port)?["role"]?.stringValue }

    func lastEventId(_ port: UInt16) -> Int64? { health(port)?["lastEventId"]?.intValue }

    /// Every stored event after `after` up to `through`, read through the node's event stream backlog.
    func storedEvents(port: UInt16, after: Int64, through: Int64) throws -> [TestSSEClient.Event] {
        let client = try TestSSEClient(port: port, lastEventId: after)
        var events: [TestSSEClient.Event] = []
        let deadline = Date().addingTimeInterval(60)
        while (events.last?.id ?? after) < through && Date() < deadline {
            events += client.read(count: 10_000, timeout: 1)
        }
        return events.filter { $0.id <= through }
    }

    /// Two nodes up: `a` active, `b` standby.
    func startPair() throws -> (plant: Plant, database: String, a: PeerProcess, b: PeerProcess, portA: UInt16, portB: UInt16) {
        let plant = try makePlant()
        let database = try PostgresFixture.shared().newDatabase(for: self)
        _ = try startSimulator(plant)
        let portA = try freePort(), portB = try freePort()
        let a = try startNode("node-a", plant: plant, database: database, port: portA)
        XCTAssertTrue(eventually(timeout: 60) { role(portA) == "active" || !a.process.isRunning } && a.process.isRunning,
                      "node-a did not become active: \(a.text)")
        let b = try startNode("node-b", plant: plant, database: database, port: portB)
        XCTAssertTrue(eventually(timeout: 60) { role(portB) == "standby" || !b.process.isRunning } && b.process.isRunning,
                      "node-b did not serve as a standby: \(b.text)")
        XCTAssertEqual(health(portA)?["node"]?.stringValue, "node-a")
        XCTAssertEqual(health(portB)?["node"]?.stringValue, "node-b")
        return (plant, database, a, b, portA, portB)
    }

    func testKill9OfTheActiveUnderLoadLosesNothingAndIdsKeepIncreasing() throws {
        let pair = try startPair()
        // The standby streams what the active commits (LISTEN/NOTIFY), with the database's ids.
        let onStandby = try TestSSEClient(port: pair.portB)
        XCTAssertTrue(onStandby.waitUntilSubscribed())
        let onActive = try TestSSEClient(port: pair.portA, lastEventId: 0)
        var seen: [TestSSEClient.Event] = []
        let until = Date().addingTimeInterval(60)
        while seen.count < 300 && Date() < until { seen += onActive.read(count: 300 - seen.count, timeout: 1) }
        XCTAssertGreaterThanOrEqual(seen.count, 300, "the simulated plant makes events")
        let andon = try TestHTTP(port: pair.portA).request("POST", "/api/andon", body: #"{"station": "WELD-01", "comment": "before the crash"}"#,
                                                          headers: ["Authorization": "Bearer \(Self.token)"])
        XCTAssertEqual(andon.status, 201, andon.body)
        let confirmed = try XCTUnwrap(lastEventId(pair.portA))
        var standbySaw: [TestSSEClient.Event] = []
        XCTAssertTrue(eventually(timeout: 20) {
            standbySaw += onStandby.read(count: 10_000, timeout: 0.2)
            return (standbySaw.last?.id ?? 0) >= confirmed
        }, "the standby's stream reaches the confirmed event \(confirmed)")

        pair.a.kill()
        let killed = Date()
        seen += onActive.read(count: 100_000, timeout: 0.5)
        XCTAssertTrue(eventually(timeout: 60) { role(pair.portB) == "active" }, "node-b did not take over: \(pair.b.text)")
        let takeover = Date().timeIntervalSince(killed)
        // The active renewed at most a second before it died; the lease runs leaseS from there.
        XCTAssertLessThanOrEqual(takeover, Self.leaseS + 5, "takeover took \(takeover) s")

        // Every event a client saw, and everything the API confirmed, is still stored, unchanged.
        let maxSeen = max(seen.map(\.id).max() ?? 0, confirmed)
        let stored = try storedEvents(port: pair.portB, after: 0, through: maxSeen)
        let byId = Dictionary(stored.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for event in seen + standbySaw { XCTAssertEqual(byId[event.id], event, "event \(event.id) survived the takeover") }
        XCTAssertTrue(stored.contains { $0.type == "andon" && $0.data.contains("before the crash") }, "the confirmed andon call is stored")

        // The new active polls and writes: ids go on above everything before.
        XCTAssertTrue(eventually(timeout: 30) { (lastEventId(pair.portB) ?? 0) > maxSeen + 20 }, "node-b writes new events")
        let after = try storedEvents(port: pair.portB, after: 0, through: try XCTUnwrap(lastEventId(pair.portB)))
        for (x, y) in zip(after, after.dropFirst()) { XCTAssertLessThan(x.id, y.id, "ids strictly increasing") }
        // The standby's SSE client from before: its stream ended with the standby server; resuming on
        // the new active from its last id misses nothing.
        let resumeFrom = standbySaw.last?.id ?? 0
        let resumed = try storedEvents(port: pair.portB, after: resumeFrom, through: try XCTUnwrap(lastEventId(pair.portB)))
        XCTAssertEqual(resumed.first?.id, after.first { $0.id > resumeFrom }?.id, "resumed right after \(resumeFrom)")
    }

    func testAStoppedActiveThatWakesAfterTheTakeoverWritesNothing() throws {
        let pair = try startPair()
        XCTAssertTrue(eventually(timeout: 30) { (lastEventId(pair.portA) ?? 0) > 50 }, "node-a writes")
        kill(pair.a.process.processIdentifier, SIGSTOP)
        var resumed = false
        defer { if !resumed { kill(pair.a.process.processIdentifier, SIGCONT) } }
        // Stopped, node-a cannot commit: what the database holds now is all it wrote before.
        let stoppedAt = try XCTUnwrap(maxStoredSeq(pair.database))
        XCTAssertTrue(eventually(timeout: 60) { role(pair.portB) == "active" }, "node-b did not take over: \(pair.b.text)")
        // A client of the new active from the stop on: exactly what node-b commits, in order.
        let witness = try TestSSEClient(port: pair.portB, lastEventId: stoppedAt)
        XCTAssertTrue(witness.waitUntilSubscribed())
        var witnessed = witness.read(count: 10_000, timeout: 0.5)

        kill(pair.a.process.processIdentifier, SIGCONT)
        resumed = true
        XCTAssertTrue(eventually(timeout: 30) { !pair.a.process.isRunning }, "the old active must stop once it sees the lease is gone")
        XCTAssertEqual(pair.a.process.terminationStatus, 75, "demoted: EX_TEMPFAIL\n\(pair.a.text)")
        XCTAssertTrue(pair.a.text.contains("lost the lease"), pair.a.text)

        // Let node-b write on, then compare the database with what node-b's own stream published.
        let target = try XCTUnwrap(lastEventId(pair.portB)) + 30
        XCTAssertTrue(eventually(timeout: 30) {
            witnessed += witness.read(count: 10_000, timeout: 0.2)
            return (witnessed.last?.id ?? 0) >= target
        })
        let stored = try storedEvents(port: pair.portB, after: stoppedAt, through: target)
        XCTAssertEqual(stored.map(\.id), witnessed.filter { $0.id <= target }.map(\.id),
                       "every event stored after the stop is one node-b committed: node-a wrote nothing")
        XCTAssertEqual(stored, witnessed.filter { $0.id <= target })
    }

    /// SIGTERM stops the active cleanly and gives its lease up: the standby takes over without
    /// waiting for the lease to run out, and ids go on.
    func testACleanStopHandsTheLeaseOver() throws {
        let pair = try startPair()
        XCTAssertTrue(eventually(timeout: 30) { (lastEventId(pair.portA) ?? 0) > 20 }, "node-a writes")
        kill(pair.a.process.processIdentifier, SIGTERM)
        XCTAssertTrue(eventually(timeout: 30) { !pair.a.process.isRunning })
        XCTAssertEqual(pair.a.process.terminationStatus, 0, pair.a.text)
        XCTAssertTrue(pair.a.text.contains("released the lease"), pair.a.text)
        let before = try XCTUnwrap(maxStoredSeq(pair.database))
        XCTAssertTrue(eventually(timeout: 30) { role(pair.portB) == "active" }, "node-b did not take over: \(pair.b.text)")
        XCTAssertTrue(eventually(timeout: 30) { (lastEventId(pair.portB) ?? 0) > before }, "node-b writes on after \(before)")
    }

    func testAWriteSentToTheStandbyGetsTheActivesAnswer() throws {
        let pair = try startPair()
        let auth = ["Authorization": "Bearer \(Self.token)"]
        let standby = TestHTTP(port: pair.portB), active = TestHTTP(port: pair.portA)
        var call = try standby.request("POST", "/api/andon", body: #"{"station": "WELD-01", "comment": "via the standby"}"#, headers: auth)
        XCTAssertTrue(eventually(timeout: 20) {
            // Until the standby has read the lease's holder it answers 503 with Retry-After.
            if call.status == 503, let again = try? standby.request("POST", "/api/andon", body: #"{"station": "WELD-01", "comment": "via the standby"}"#, headers: auth) {
                call = again
            }
            return call.status != 503
        })
        XCTAssertEqual(call.status, 201, call.body)
        let id = try XCTUnwrap(call.json?["id"]?.intValue)
        let ack = try standby.request("POST", "/api/andon/\(id)/ack", body: "{}", headers: auth)
        XCTAssertEqual(ack.status, 200, ack.body)
        // The same call acknowledged twice: the standby answers exactly as the active does.
        let againOnActive = try active.request("POST", "/api/andon/\(id)/ack", body: "{}", headers: auth)
        let againOnStandby = try standby.request("POST", "/api/andon/\(id)/ack", body: "{}", headers: auth)
        XCTAssertEqual(againOnStandby.status, againOnActive.status)
        XCTAssertEqual(againOnStandby.body, againOnActive.body)
        // Without a token: the active's 401, through the standby.
        let anonymous = try standby.request("POST", "/api/andon", body: #"{"station": "WELD-01"}"#)
        XCTAssertEqual(anonymous.status, try active.request("POST", "/api/andon", body: #"{"station": "WELD-01"}"#).status)
        XCTAssertEqual(anonymous.status, 401)
        // The standby reads what the active wrote, from the database.
        XCTAssertTrue(eventually(timeout: 10) {
            (try? standby.get("/api/andon?station=WELD-01"))?.body.contains("via the standby") ?? false
        })
        // The figures only the active keeps current (WIP, live KPIs) are the active's, through the standby.
        for path in ["/api/kpis", "/api/stations", "/api/stations/WELD-01"] {
            let viaStandby = try standby.get(path), onActive = try active.get(path)
            XCTAssertEqual(viaStandby.status, 200, viaStandby.body)
            XCTAssertEqual(viaStandby.headers["x-mes-figures"], "active node-a", path)
            XCTAssertEqual(onActive.headers["x-mes-figures"], nil, "the active answers from its own memory")
        }
        XCTAssertEqual(try standby.get("/api/kpis").json?["shift"]?["start"], try active.get("/api/kpis").json?["shift"]?["start"])
    }

    /// Both nodes serve HTTPS (the same certificate): the standby forwards over TLS, trusting its own
    /// `--tls-cert` (README "Two nodes", "Over HTTPS").
    func testOverHTTPSTheStandbyForwardsToTheActive() throws {
        let plant = try makePlant()
        let database = try PostgresFixture.shared().newDatabase(for: self)
        let certificate = try TestCertificate(in: plant.directory.path)
        let portA = try freePort(), portB = try freePort()
        func start(_ name: String, _ port: UInt16) throws -> PeerProcess {
            let node = try PeerProcess(executable: productPath("mes-server"),
                                       arguments: ["--config", plant.config, "--db", database, "--listen", "127.0.0.1:\(port)",
                                                   "--node", name, "--log-level", "notice",
                                                   "--tls-cert", certificate.certificate, "--tls-key", certificate.key])
            addTeardownBlock { node.kill() }
            return node
        }
        /// (status, headers and body) of an HTTPS request checked against the test certificate.
        func call(_ port: UInt16, _ path: String, post body: String? = nil) -> (status: Int, text: String) {
            var arguments = ["--cacert", certificate.certificate, "--max-time", "20", "-i", "-H", "Authorization: Bearer \(Self.token)"]
            if let body { arguments += ["-X", "POST", "-H", "Content-Type: application/json", "--data", body] }
            guard let result = try? curl(arguments + ["https://127.0.0.1:\(port)\(path)"]), result.status == 0,
                  let status = result.output.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return (0, "") }
            return (status, result.output)
        }
        func role(_ port: UInt16) -> String? {
            let (status, text) = call(port, "/api/health")
            guard status == 200, let body = text.components(separatedBy: "\r\n\r\n").last else { return nil }
            return (try? JSON.parse(body))?["role"]?.stringValue
        }
        let a = try start("node-a", portA)
        XCTAssertTrue(eventually(timeout: 60) { role(portA) == "active" || !a.process.isRunning } && a.process.isRunning, a.text)
        let b = try start("node-b", portB)
        XCTAssertTrue(eventually(timeout: 60) { role(portB) == "standby" || !b.process.isRunning } && b.process.isRunning, b.text)

        // A write through the standby: the active's answer (503 only until the standby knows the holder).
        var written = (status: 0, text: "")
        XCTAssertTrue(eventually(timeout: 20) {
            written = call(portB, "/api/andon", post: #"{"station": "WELD-01", "comment": "through the standby over TLS"}"#)
            return written.status != 503
        })
        XCTAssertEqual(written.status, 201, written.text)
        XCTAssertTrue(call(portA, "/api/andon?station=WELD-01").text.contains("through the standby over TLS"))
        // The active's live figures through the standby, over TLS.
        let kpis = call(portB, "/api/kpis")
        XCTAssertEqual(kpis.status, 200, kpis.text)
        XCTAssertTrue(kpis.text.lowercased().contains("x-mes-figures: active node-a"), kpis.text)
    }

    func testResumingOnTheOtherNodeMissesNothing() throws {
        let pair = try startPair()
        let first = try TestSSEClient(port: pair.portA, lastEventId: 0)
        var seen: [TestSSEClient.Event] = []
        let until = Date().addingTimeInterval(60)
        while seen.count < 200 && Date() < until { seen += first.read(count: 200 - seen.count, timeout: 1) }
        let last = try XCTUnwrap(seen.last?.id)
        // The client moves to the standby with Last-Event-ID: the next events, none twice, none missed.
        let moved = try TestSSEClient(port: pair.portB, lastEventId: last)
        var next: [TestSSEClient.Event] = []
        XCTAssertTrue(eventually(timeout: 30) {
            next += moved.read(count: 10_000, timeout: 0.2)
            return next.count >= 100
        })
        let through = try XCTUnwrap(next.last?.id)
        let truth = try storedEvents(port: pair.portA, after: last, through: through)
        XCTAssertEqual(next.filter { $0.id <= through }, truth)
        XCTAssertTrue(next.allSatisfy { $0.id > last })
    }

    /// PostgreSQL's own failover: a primary with a synchronous streaming replica, the server on the
    /// multi-host string; the primary killed, the replica promoted: the server goes on writing
    /// through the promoted one and nothing it acknowledged is lost.
    func testTheServerFollowsAPromotedReplicaAndLosesNothingItAcknowledged() throws {
        let primary = try PostgresCluster.create()
        addTeardownBlock { primary.remove() }
        try primary.psql("CREATE DATABASE mes")
        let replica = try PostgresCluster.replica(of: primary)
        addTeardownBlock { replica.remove() }
        // Synchronous: a commit is acknowledged only once the replica has it (README "Two nodes").
        // Set after the base backup, so the promoted replica does not wait for a standby of its own.
        try primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        try primary.psql("SELECT pg_reload_conf()")
        XCTAssertTrue(eventually(timeout: 30) { (try? primary.psql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")) == "1" },
                      "the replica streams synchronously")
        let url = "postgresql://postgres@127.0.0.1:\(primary.port),127.0.0.1:\(replica.port)/mes?target_session_attrs=read-write"

        // A lease longer than the database's failover: the node keeps it through the promotion.
        let plant = try makePlant(leaseS: 20)
        _ = try startSimulator(plant)
        let port = try freePort()
        let node = try startNode("solo", plant: plant, database: url, port: port)
        XCTAssertTrue(eventually(timeout: 60) { role(port) == "active" }, "the node did not become active: \(node.text)")
        let auth = ["Authorization": "Bearer \(Self.token)"]
        var calls: [Int64] = []
        for station in ["WELD-01", "PRESS-01", "INSP-01"] {
            let call = try TestHTTP(port: port).request("POST", "/api/andon", body: #"{"station": "\#(station)", "comment": "before failover"}"#, headers: auth)
            XCTAssertEqual(call.status, 201, call.body)
            if let id = call.json?["id"]?.intValue { calls.append(id) }
        }
        let confirmed = try XCTUnwrap(lastEventId(port))

        primary.kill()
        try replica.promote()
        // The server reconnects to the promoted replica (target_session_attrs=read-write) and writes on.
        XCTAssertTrue(eventually(timeout: 60) { (lastEventId(port) ?? 0) > confirmed + 20 }, "no writes after the failover: \(node.text)")
        XCTAssertEqual(role(port), "active")
        let after = try TestHTTP(port: port).request("POST", "/api/andon", body: #"{"station": "ASSY-02", "comment": "after failover"}"#, headers: auth)
        XCTAssertEqual(after.status, 201, after.body)

        // Everything acknowledged before the kill is on the promoted replica: no id missing up to it.
        let count = try replica.psql("SELECT count(*) FROM events WHERE seq <= \(confirmed)", database: "mes")
        let min = try replica.psql("SELECT coalesce(min(seq), 0) FROM events", database: "mes")
        XCTAssertEqual(Int64(count), confirmed - (Int64(min) ?? 1) + 1, "ids \(min)…\(confirmed) all stored")
        let andon = try replica.psql("SELECT count(*) FROM events WHERE type = 'andon' AND data LIKE '%before failover%'", database: "mes")
        XCTAssertGreaterThanOrEqual(Int(andon) ?? 0, calls.count, "every acknowledged andon call is stored")
        let stored = try storedEvents(port: port, after: 0, through: try XCTUnwrap(lastEventId(port)))
        for (x, y) in zip(stored, stored.dropFirst()) { XCTAssertLessThan(x.id, y.id, "ids strictly increasing") }
    }

    /// The newest event id in the database (psql, as the test server's superuser).
    func maxStoredSeq(_ database: String) throws -> Int64? {
        let name = String(database.split(separator: "/").last ?? "").split(separator: "?").first.map(String.init) ?? ""
        let text = try PostgresFixture.shared().psql("SELECT coalesce(max(seq), 0) FROM events", database: name)
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "")
    }
}
