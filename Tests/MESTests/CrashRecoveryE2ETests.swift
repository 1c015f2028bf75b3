import Foundation
import XCTest
import Runtime
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The real `mes-server` binary killed with SIGKILL while events stream, then restarted on the
/// same database: every event a client saw is still served, and ids keep increasing.
final class CrashRecoveryE2ETests: XCTestCase {
    /// Starts mes-server; the process is killed at the end of the test whatever happens.
    func startServer(arguments: [String], port: UInt16) throws -> PeerProcess {
        let server = try PeerProcess(executable: productPath("mes-server"),
                                     arguments: ["--config", repoRoot.appendingPathComponent("Stations/plant.json").path,
                                                 "--listen", "127.0.0.1:\(port)", "--log-level", "warning"] + arguments)
        addTeardownBlock { server.kill() }
        let http = TestHTTP(port: port)
        XCTAssertTrue(eventually(timeout: 30) { (try? http.get("/api/health").status) == 200 }, "server did not start: \(server.text)")
        return server
    }

    func writeRecording(_ path: String, lines: Int, start: Date) throws {
        var text = ""
        for i in 0..<lines {
            let t = Timestamp.format(start.addingTimeInterval(Double(i) * 0.1))
            text += #"{"t":"\#(t)","station":"WELD-01","signal":"weldCurrent","value":\#(10 + Double(i % 50) / 100)}"# + "\n"
            text += #"{"t":"\#(t)","station":"WELD-01","signal":"state","value":1}"# + "\n"
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func testKill9LosesNoEventAClientSaw() throws {
        let dir = makeTempDirectory(self)
        try kill9LosesNoEventAClientSaw(db: dir.appendingPathComponent("mes.sqlite").path, dir: dir)
    }

    /// The same on PostgreSQL: every event acknowledged (seen by a client) is in the database after the restart.
    func testKill9LosesNoEventAClientSawOnPostgreSQL() throws {
        let dir = makeTempDirectory(self)
        try kill9LosesNoEventAClientSaw(db: try PostgresFixture.shared().newDatabase(for: self), dir: dir)
    }

    func kill9LosesNoEventAClientSaw(db: String, dir: URL) throws {
        let recording = dir.appendingPathComponent("shift.jsonl").path
        try writeRecording(recording, lines: 20_000, start: Date(timeIntervalSince1970: 1_790_000_000))
        let port = try freePort()
        let server = try startServer(arguments: ["--db", db, "--replay", recording, "--speed", "100"], port: port)

        let client = try TestSSEClient(port: port, lastEventId: 0)
        var seen: [TestSSEClient.Event] = []
        let deadline = Date().addingTimeInterval(20)
        while seen.count < 300 && Date() < deadline { seen += client.read(count: 300 - seen.count, timeout: 1) }
        XCTAssertGreaterThanOrEqual(seen.count, 300, "events should stream during the replay")
        server.kill()
        seen += client.read(count: 100_000, timeout: 0.5) // whatever was in flight before the kill
        for (a, b) in zip(seen, seen.dropFirst()) { XCTAssertLessThan(a.id, b.id, "ids strictly increasing") }

        let empty = dir.appendingPathComponent("empty.jsonl").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        let port2 = try freePort()
        let restarted = try startServer(arguments: ["--db", db, "--replay", empty], port: port2)
        let health = try XCTUnwrap(TestHTTP(port: port2).get("/api/health").json)
        let last = try XCTUnwrap(health["lastEventId"]?.intValue)
        XCTAssertGreaterThanOrEqual(last, seen.last!.id, "every event a client saw was committed")

        let resumed = try TestSSEClient(port: port2, lastEventId: 0)
        var stored: [Int64: TestSSEClient.Event] = [:]
        let until = Date().addingTimeInterval(30)
        while stored.count < Int(last) && Date() < until {
            let batch = resumed.read(count: 5000, timeout: 1)
            if batch.isEmpty && stored.count > 0 { break }
            for event in batch { stored[event.id] = event }
        }
        for event in seen {
            XCTAssertEqual(stored[event.id], event, "event \(event.id) seen before the kill is served after the restart")
        }
        kill(restarted.process.processIdentifier, SIGTERM)
        restarted.process.waitUntilExit()
        XCTAssertEqual(restarted.process.terminationStatus, 0, "SIGTERM stops the server cleanly")

        // New events continue above everything stored before.
        let more = dir.appendingPathComponent("more.jsonl").path
        try writeRecording(more, lines: 20, start: Date(timeIntervalSince1970: 1_790_100_000))
        let port3 = try freePort()
        let third = try startServer(arguments: ["--db", db, "--replay", more, "--speed", "max"], port: port3)
        let tail = try TestSSEClient(port: port3, lastEventId: last)
        let newEvents = tail.read(count: 20, timeout: 15)
        XCTAssertFalse(newEvents.isEmpty)
        XCTAssertTrue(newEvents.allSatisfy { $0.id > last }, "ids continue above \(last)")
        kill(third.process.processIdentifier, SIGTERM)
        third.process.waitUntilExit()
    }

    func testExitAfterReplayAndBadLine() throws {
        let dir = makeTempDirectory(self)
        let recording = dir.appendingPathComponent("short.jsonl").path
        try writeRecording(recording, lines: 50, start: Date(timeIntervalSince1970: 1_790_000_000))
        let run = { (arguments: [String]) throws -> (Int32, String) in
            try runToEnd(productPath("mes-server"), ["--config", repoRoot.appendingPathComponent("Stations/plant.json").path,
                                                     "--listen", "127.0.0.1:0", "--db", dir.appendingPathComponent("r.sqlite").path] + arguments)
        }
        let (status, _) = try run(["--replay", recording, "--speed", "max", "--exit-after-replay"])
        XCTAssertEqual(status, 0)

        let bad = dir.appendingPathComponent("bad.jsonl").path
        try (#"{"t":"2026-11-21T06:00:00Z","station":"WELD-01","signal":"state","value":1}"# + "\nnot json\n").write(toFile: bad, atomically: true, encoding: .utf8)
        let (badStatus, badOutput) = try run(["--replay", bad, "--speed", "max", "--exit-after-replay"])
        XCTAssertNotEqual(badStatus, 0)
        XCTAssertTrue(badOutput.contains("line 2"), badOutput)

        let (configStatus, configOutput) = try run(["--config", dir.appendingPathComponent("none.json").path])
        XCTAssertNotEqual(configStatus, 0)
        XCTAssertTrue(configOutput.contains("none.json"), configOutput)
    }
}
