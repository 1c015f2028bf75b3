import Foundation
import XCTest
import Runtime
#if canImport(Glibc)
import Glibc
import TestSupport
#endif

/// The real `mes-server` binary killed with SIGKILL while events stream, then restarted on the
/// same database: every event a client saw is still served, and ids keep increasing.
final class CrashRecoveryE2ETests: XCTestCase {
    static func freePort() throws -> UInt16 {
        let fd = try Socket.listen(host: "127.0.0.1", port: 0)
        defer { Socket.close(fd) }
        return try Socket.localPort(fd)
    }

    /// Starts mes-server; the process is killed at the end of the test whatever happens.
    func startServer(arguments: [String], port: UInt16) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: productPath("mes-server"))
        process.arguments = ["--config", repoRoot.appendingPathComponent("Stations/plant.json").path,
                             "--listen", "127.0.0.1:\(port)", "--log-level", "warning"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        addTeardownBlock { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        let http = TestHTTP(port: port)
        XCTAssertTrue(eventually(timeout: 30) { (try? http.get("/api/health").status) == 200 }, "server did not start")
        return process
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
        let dir = try makeTempDirectory(self)
        let db = dir.appendingPathComponent("mes.sqlite").path
        let recording = dir.appendingPathComponent("shift.jsonl").path
        try writeRecording(recording, lines: 20_000, start: Date(timeIntervalSince1970: 1_790_000_000))
        let port = try Self.freePort()
        let server = try startServer(arguments: ["--db", db, "--replay", recording, "--speed", "100"], port: port)

        let client = try TestSSEClient(port: port, lastEventId: 0)
        var seen: [TestSSEClient.Event] = []
        let deadline = Date().addingTimeInterval(20)
        while seen.count < 300 && Date() < deadline { seen += client.read(count: 300 - seen.count, timeout: 1) }
        XCTAssertGreaterThanOrEqual(seen.count, 300, "events should stream during the replay")
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        seen += client.read(count: 100_000, timeout: 0.5) // whatever was in flight before the kill
        for (a, b) in zip(seen, seen.dropFirst()) { XCTAssertLessThan(a.id, b.id, "ids strictly increasing") }

        let empty = dir.appendingPathComponent("empty.jsonl").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        let port2 = try Self.freePort()
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
        kill(restarted.processIdentifier, SIGTERM)
        restarted.waitUntilExit()
        XCTAssertEqual(restarted.terminationStatus, 0, "SIGTERM stops the server cleanly")

        // New events continue above everything stored before.
        let more = dir.appendingPathComponent("more.jsonl").path
        try writeRecording(more, lines: 20, start: Date(timeIntervalSince1970: 1_790_100_000))
        let port3 = try Self.freePort()
        let third = try startServer(arguments: ["--db", db, "--replay", more, "--speed", "max"], port: port3)
        let tail = try TestSSEClient(port: port3, lastEventId: last)
        let newEvents = tail.read(count: 20, timeout: 15)
        XCTAssertFalse(newEvents.isEmpty)
        XCTAssertTrue(newEvents.allSatisfy { $0.id > last }, "ids continue above \(last)")
        kill(third.processIdentifier, SIGTERM)
        third.waitUntilExit()
    }

    func testExitAfterReplayAndBadLine() throws {
        let dir = try makeTempDirectory(self)
        let recording = dir.appendingPathComponent("short.jsonl").path
        try writeRecording(recording, lines: 50, start: Date(timeIntervalSince1970: 1_790_000_000))
        let run = { (arguments: [String]) throws -> (Int32, String) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: productPath("mes-server"))
            process.arguments = ["--config", repoRoot.appendingPathComponent("Stations/plant.json").path,
                                 "--listen", "127.0.0.1:0", "--db", dir.appendingPathComponent("r.sqlite").path] + arguments
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let output = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: output, as: UTF8.self))
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
