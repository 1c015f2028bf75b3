import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import Simulation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Third-party clients read the real `station-sim` binary, and a register written in a libmodbus
/// server reaches an event-stream client through the whole server.
final class StationSimInteropTests: XCTestCase {
    /// With `--exit-with-parent`, a simulator whose starter dies without stopping it stops too.
    func testStationSimExitsWithItsParent() throws {
        let sim = productPath("station-sim"), config = repoRoot.appendingPathComponent("Stations/plant.json").path
        // The shell starts the simulator in the background, gives it time to start, and ends. Its
        // output goes nowhere, and the shell runs under system(3): with Foundation's Process,
        // waitUntilExit did not return while the background simulator lived. The `sleep 2` stays: the
        // simulator shows no sign of having read its parent's pid, and the parent must outlive that.
        let pidFile = makeTempDirectory(self).appendingPathComponent("sim.pid").path
        let status = system("'\(sim)' --config '\(config)' --station WELD-01 --log-level error --exit-with-parent "
                            + "</dev/null >/dev/null 2>&1 & echo $! > '\(pidFile)'; sleep 2")
        XCTAssertEqual(status, 0)
        let pid = try XCTUnwrap(pid_t(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(pid, SIGKILL) }
        func running() -> Bool {
            // Gone, or a zombie its new parent has not reaped yet, counts as stopped.
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
            return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true)
        }
        XCTAssertTrue(eventually(timeout: 10) { !running() }, "station-sim \(pid) still runs after its parent ended")
    }

    func testMbpollAndAsyncuaReadStationSim() throws {
        let sim = Process()
        sim.executableURL = URL(fileURLWithPath: productPath("station-sim"))
        sim.arguments = ["--config", repoRoot.appendingPathComponent("Stations/plant.json").path, "--log-level", "warning"]
        sim.standardOutput = FileHandle.nullDevice
        sim.standardError = FileHandle.nullDevice
        try sim.run()
        defer { if sim.isRunning { kill(sim.processIdentifier, SIGTERM); sim.waitUntilExit() } }
        // Modbus: WELD-01's weld current (hr:20, big-endian float, limits 8–12 kA) via mbpoll.
        var reading = ""
        XCTAssertTrue(eventually(timeout: 20) {
            let (status, out) = (try? runToEnd("/usr/bin/mbpoll", ["-m", "tcp", "-0", "-a", "1", "-r", "20", "-c", "1", "-t", "4:float", "-B",
                                                                  "-1", "-p", "15020", "127.0.0.1"])) ?? (1, "")
            reading = out
            return status == 0 && out.contains("[20]:")
        }, "mbpoll reads WELD-01: \(reading)")
        let value = reading.split(separator: "\n").first { $0.contains("[20]:") }
            .flatMap { Double($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }
        XCTAssertNotNil(value)
        if let value { XCTAssertTrue((5...15).contains(value), "weld current \(value) kA is plausible") }
        // A wrong unit id gets a Modbus exception.
        let (wrongUnit, _) = try runToEnd("/usr/bin/mbpoll", ["-m", "tcp", "-0", "-a", "9", "-r", "20", "-c", "1", "-1", "-p", "15020", "127.0.0.1"])
        XCTAssertNotEqual(wrongUnit, 0)

        // OPC UA: PAINT-01's film thickness (ns=2;i=1007) via the asyncua client.
        let script = """
        import asyncio, sys
        from asyncua import Client
        async def main():
            async with Client("opc.tcp://127.0.0.1:14840", timeout=5) as c:
                v = await c.get_node("ns=2;i=1007").read_value()
                s = await c.get_node("ns=2;s=Paint.State").read_value()
                print("FILM", v)
                print("STATE", s)
        asyncio.run(main())
        """
        var out = ""
        XCTAssertTrue(eventually(timeout: 20) {
            let (status, text) = (try? runToEnd(peerPython(), ["-c", script], timeout: 30)) ?? (1, "")
            out = text
            return status == 0 && text.contains("FILM")
        }, "asyncua reads PAINT-01: \(out)")
        let film = out.split(separator: "\n").first { $0.hasPrefix("FILM") }.flatMap { Double($0.dropFirst(5)) }
        XCTAssertNotNil(film)
        if let film { XCTAssertTrue((80...140).contains(film), "film thickness \(film) µm is plausible") }
    }

    func testLibmodbusRegisterToSSEEvent() async throws {
        let dir = makeTempDirectory(self)
        let signal = SignalConfig(name: "probe", role: .measurement, address: ModbusAddress(table: .holdingRegister, index: 3), type: .int16)
        let station = StationConfig(id: "PROBE-01", name: "probe", process: "welding", protocol: .modbus,
                                    endpoint: .modbusTCP(host: "127.0.0.1", port: 1, unit: 1), signals: [signal])
        let plc = ModbusStationServer(station: station, port: 0, logger: Logger(label: "plc", level: .error))
        let port = try plc.start()
        defer { plc.stop() }
        let config = dir.appendingPathComponent("plant.json").path
        try """
        {"route": ["welding"], "stations": [{"id": "PROBE-01", "process": "welding", "protocol": "modbus",
          "endpoint": "modbus://127.0.0.1:\(port)?unit=1", "pollIntervalMs": 50,
          "signals": [{"name": "probe", "role": "measurement", "address": "hr:3", "type": "int16"}]}]}
        """.write(toFile: config, atomically: true, encoding: .utf8)
        var options = ServerOptions()
        options.config = config
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        let server = try MESServer(options: options, logger: Logger(label: "test", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        let client = try TestSSEClient(port: server.port, path: "/api/events?types=sample,station")
        XCTAssertTrue(client.waitUntilSubscribed())
        try plc.set(signal: "probe", value: .int(-1234))
        var found: TestSSEClient.Event?
        let deadline = Date().addingTimeInterval(10)
        while found == nil && Date() < deadline {
            found = client.read(count: 1, timeout: 1).first { $0.type == "sample" && $0.data.contains("\"probe\":-1234") }
        }
        let event = try XCTUnwrap(found, "the register's value arrives as a sample event")
        XCTAssertEqual(try JSON.parse(event.data)["station"]?.stringValue, "PROBE-01")
        let history = try XCTUnwrap(TestHTTP(port: server.port).get("/api/stations/PROBE-01/signals/probe").json?.arrayValue)
        XCTAssertEqual(history.first?["v"]?.intValue, -1234, "and is stored in the signal history")
        server.shutdown()
        try await task.value
    }
}

/// A Modbus PLC that is not there: the station is offline, nothing is made up, and a
/// `connection` alert follows after `offlineAlertAfterS`.
final class OfflinePLCTests: XCTestCase {
    func testUnreachableModbusPLCRaisesAConnectionAlert() async throws {
        let dir = makeTempDirectory(self)
        let closed = try Socket.listen(host: "127.0.0.1", port: 0)
        let port = try Socket.localPort(closed)
        Socket.close(closed)
        let config = dir.appendingPathComponent("plant.json").path
        try """
        {"route": ["welding"], "stations": [{"id": "GONE-01", "process": "welding", "protocol": "modbus",
          "endpoint": "modbus://127.0.0.1:\(port)?unit=1", "pollIntervalMs": 100, "timeoutMs": 200, "offlineAlertAfterS": 1,
          "signals": [{"name": "probe", "role": "measurement", "address": "hr:3", "type": "int16"}]}]}
        """.write(toFile: config, atomically: true, encoding: .utf8)
        var options = ServerOptions()
        options.config = config
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        let server = try MESServer(options: options, logger: Logger(label: "test", level: .critical))
        let task = Task { try await server.run(installSignalHandlers: false) }
        let http = TestHTTP(port: server.port)
        XCTAssertTrue(eventually(timeout: 15) {
            (try? http.get("/api/alerts").json?.arrayValue?.contains { $0["type"]?.stringValue == "connection" && $0["station"]?.stringValue == "GONE-01" }) == true
        }, "a connection alert for the unreachable PLC")
        let station = try XCTUnwrap(http.get("/api/stations/GONE-01").json)
        XCTAssertEqual(station["connection"]?.stringValue, "offline")
        XCTAssertTrue(station["lastSampleAt"]?.isNull ?? false, "no sample was made up")
        XCTAssertGreaterThan(station["errors"]?.intValue ?? 0, 0)
        server.shutdown()
        try await task.value
    }
}
