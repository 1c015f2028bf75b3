import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import TestSupport

/// The assembled server in-process: storage, pipeline, HTTP and SSE, with polls submitted directly.
final class ServerCoreTests: XCTestCase {
    private func startServer(db: String, configFile: String? = nil) throws -> (MESServer, Task<Void, any Error>) {
        var options = ServerOptions()
        options.config = configFile ?? repoRoot.appendingPathComponent("Stations/plant.json").path
        options.database = db
        options.port = 0
        options.replay = "/dev/null" // replay mode: no adapters, the test feeds polls
        let server = try MESServer(options: options, logger: Logger(label: "test", level: .warning))
        let task = Task { try await server.run(installSignalHandlers: false) }
        return (server, task)
    }

    private func stop(_ server: MESServer, _ task: Task<Void, any Error>) async throws {
        server.shutdown()
        try await task.value
    }

    private func poll(_ i: Int, station: String = "WELD-01") -> StationPoll {
        StationPoll(station: station, time: Date(timeIntervalSince1970: 1_790_000_000 + Double(i) * 0.1), readings: [
            SignalReading(name: "weldCurrent", value: .double(10 + Double(i % 10) / 10), quality: .good),
            SignalReading(name: "state", value: .int(1), quality: .good),
            SignalReading(name: "spotCount", value: nil, quality: .bad, status: "illegal data address"),
        ])
    }

    func testSamplesReachSSEAndStationsAPI() async throws {
        let dir = makeTempDirectory(self)
        let (server, task) = try startServer(db: dir.appendingPathComponent("mes.sqlite").path)
        let client = try TestSSEClient(port: server.port, path: "/api/events?types=sample")
        XCTAssertTrue(client.waitUntilSubscribed())
        for i in 0..<5 { server.pipeline.submit(.poll(poll(i))) }
        let events = client.read(count: 5, timeout: 10)
        XCTAssertEqual(events.count, 5)
        XCTAssertEqual(events.map(\.type), Array(repeating: "sample", count: 5))
        XCTAssertEqual(events.map(\.id), events.map(\.id).sorted())
        XCTAssertEqual(Set(events.map(\.id)).count, 5)
        let first = try JSON.parse(events[0].data)
        XCTAssertEqual(first["station"]?.stringValue, "WELD-01")
        XCTAssertEqual(first["values"]?["weldCurrent"]?.doubleValue, 10.0)
        XCTAssertEqual(first["bad"], .array([.string("spotCount")]))

        let http = TestHTTP(port: server.port)
        let station = try http.get("/api/stations/WELD-01")
        XCTAssertEqual(station.status, 200)
        XCTAssertEqual(station.json?["state"]?.stringValue, "running")
        let signals = station.json?["signals"]?.arrayValue ?? []
        XCTAssertEqual(signals.first { $0["name"]?.stringValue == "spotCount" }?["quality"]?.stringValue, "bad")
        XCTAssertEqual(signals.first { $0["name"]?.stringValue == "weldCurrent" }?["quality"]?.stringValue, "good")
        let missing = try http.get("/api/stations/NOPE")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.json?["error"]?["code"]?.stringValue, "not_found")
        try await stop(server, task)
    }

    func testResumeAfterRestartHasNoGapAndNoDuplicate() async throws {
        let dir = makeTempDirectory(self)
        let db = dir.appendingPathComponent("mes.sqlite").path
        var (server, task) = try startServer(db: db)
        var client: TestSSEClient? = try TestSSEClient(port: server.port)
        XCTAssertTrue(client!.waitUntilSubscribed())
        for i in 0..<20 { server.pipeline.submit(.poll(poll(i))) }
        var seen: [TestSSEClient.Event] = []
        _ = eventually { seen += client!.read(count: 1, timeout: 0.5).filter { $0.type == "sample" }; return seen.count >= 20 }
        XCTAssertEqual(seen.count, 20, "subscribed before the first poll: every sample arrives")
        let lastSeen = try XCTUnwrap(seen.last?.id)
        client = nil
        // More events the client does not see, then a restart on the same database.
        for i in 20..<40 { server.pipeline.submit(.poll(poll(i))) }
        server.pipeline.drain()
        try server.eventLog.flush()
        let totalBefore = server.eventLog.latestSeq
        try await stop(server, task)

        (server, task) = try startServer(db: db)
        let resumed = try TestSSEClient(port: server.port, lastEventId: lastSeen)
        XCTAssertTrue(resumed.waitUntilSubscribed())
        for i in 40..<45 { server.pipeline.submit(.poll(poll(i))) }
        // Every sample after the resume point: the unseen ones of the first run and the 5 new ones.
        let expectedSamples = 40 - seen.count + 5
        var after: [TestSSEClient.Event] = []
        let deadline = Date().addingTimeInterval(10)
        while after.filter({ $0.type == "sample" }).count < expectedSamples && Date() < deadline {
            after += resumed.read(count: 1, timeout: 1)
        }
        XCTAssertEqual(after.filter { $0.type == "sample" }.count, expectedSamples)
        XCTAssertEqual(after.first?.id, lastSeen + 1, "no gap after the resume point")
        for (a, b) in zip(after, after.dropFirst()) { XCTAssertEqual(b.id, a.id + 1, "ids strictly increasing with no gap") }
        XCTAssertGreaterThan(after.last!.id, totalBefore, "ids continue after the restart")
        try await stop(server, task)
    }

    func testShiftKPIsGoOnAfterARestart() async throws {
        let dir = makeTempDirectory(self)
        let db = dir.appendingPathComponent("mes.sqlite").path
        // WELD-01 running, one poll a second, inside shift C (22:00–06:00 Asia/Shanghai).
        func running(_ second: Int) -> StationPoll {
            StationPoll(station: "WELD-01", time: Date(timeIntervalSince1970: 1_790_000_000 + Double(second)),
                        readings: [SignalReading(name: "state", value: .int(1), quality: .good)])
        }
        func weld(_ server: MESServer) throws -> (run: Double?, shiftStart: String?) {
            let kpis = try TestHTTP(port: server.port).get("/api/kpis").json
            let station = kpis?["stations"]?.arrayValue?.first { $0["id"]?.stringValue == "WELD-01" }
            return (station?["runTimeS"]?.doubleValue, kpis?["shift"]?["start"]?.stringValue)
        }
        var (server, task) = try startServer(db: db)
        for second in 0...60 { server.pipeline.submit(.poll(running(second))) }
        server.pipeline.drain()
        let before = try weld(server)
        XCTAssertEqual(before.run ?? 0, 60, accuracy: 0.01)
        try await stop(server, task)

        // Down for 10 s; the shift's counters were saved at the stop.
        (server, task) = try startServer(db: db)
        for second in 70...100 { server.pipeline.submit(.poll(running(second))) }
        server.pipeline.drain()
        let after = try weld(server)
        XCTAssertEqual(after.run ?? 0, 90, accuracy: 0.01, "60 s before the restart and 30 s after it")
        XCTAssertEqual(after.shiftStart, before.shiftStart)
        try await stop(server, task)
    }

    func testHealthAndMetrics() async throws {
        let dir = makeTempDirectory(self)
        let (server, task) = try startServer(db: dir.appendingPathComponent("mes.sqlite").path)
        let http = TestHTTP(port: server.port)
        let health = try http.get("/api/health")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.json?["status"]?.stringValue, "ok")
        // a replay connects to no PLC: the server keeps every station `connecting` (the golden
        // events fix it); the pages show them as replayed from `mode`
        XCTAssertEqual(health.json?["stations"]?["connecting"]?.intValue, 8, "the default plant's eight stations (UTIL-01 included)")
        XCTAssertEqual(health.json?["stations"]?["online"]?.intValue, 0)
        XCTAssertEqual(health.json?["mode"]?.stringValue, "replay")
        XCTAssertEqual(health.json?["clock"], JSON.null, "no recording time before the first sample")
        server.pipeline.submit(.poll(poll(1)))
        server.pipeline.drain()
        XCTAssertEqual(try http.get("/api/health").json?["clock"]?.stringValue, Timestamp.format(poll(1).time),
                       "the clock is the newest recording time")
        XCTAssertEqual(try http.get("/api/stations/WELD-01").json?["connection"]?.stringValue, "connecting")
        let meta = try http.get("/api/meta").json
        XCTAssertEqual(meta?["mode"]?.stringValue, "replay")
        XCTAssertEqual(meta?["machineStates"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, MachineState.allCases.map(\.rawValue))
        XCTAssertEqual(meta?["machineStates"]?.arrayValue?.first { $0["name"]?.stringValue == "setup" }?["code"]?.intValue, 5)
        XCTAssertEqual(meta?["machineStates"]?.arrayValue?.filter { $0["plannedStop"] == .bool(true) }.compactMap { $0["name"]?.stringValue },
                       ["setup", "maintenance"])
        server.pipeline.submit(.connection(ConnectionChange(station: "WELD-01", state: .online, time: Date())))
        XCTAssertTrue(try eventually { try http.get("/api/health").json?["stations"]?["online"]?.intValue == 1 })
        let metrics = try http.get("/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.body.contains("mes_station_online{station=\"WELD-01\"} 1"), metrics.body)
        XCTAssertTrue(metrics.body.contains("# TYPE mes_polls_total counter"))
        try await stop(server, task)
    }

    func testStartupErrorsAreOneLine() throws {
        let dir = makeTempDirectory(self)
        var options = ServerOptions()
        options.config = dir.appendingPathComponent("missing.json").path
        options.database = dir.appendingPathComponent("x.sqlite").path
        XCTAssertThrowsError(try MESServer(options: options, logger: Logger(label: "t", level: .critical))) { error in
            XCTAssertTrue("\(error)".contains("missing.json"))
            XCTAssertFalse("\(error)".contains("\n"))
        }
        // A port in use: a one-line error after the database was opened, and nothing left open.
        let busy = try Socket.listen(host: "127.0.0.1", port: 0)
        defer { Socket.close(busy) }
        var portInUse = ServerOptions()
        portInUse.config = repoRoot.appendingPathComponent("Stations/plant.json").path
        portInUse.database = dir.appendingPathComponent("busy.sqlite").path
        portInUse.port = try Socket.localPort(busy)
        portInUse.replay = "/dev/null"
        XCTAssertThrowsError(try MESServer(options: portInUse, logger: Logger(label: "t", level: .critical))) { error in
            XCTAssertTrue("\(error)".contains("Address already in use"), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"))
        }
        XCTAssertThrowsError(try ServerOptions.parse(["--listen", "nowhere"]))
        XCTAssertThrowsError(try ServerOptions.parse(["--speed", "fast"]))
        XCTAssertEqual(try ServerOptions.parse(["--replay", "f.jsonl", "--speed", "max", "--exit-after-replay"]).speed, .max)
    }
}
