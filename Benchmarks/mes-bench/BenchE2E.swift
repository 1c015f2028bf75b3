import BenchSupport
import Foundation
import MESApp
import PlantModel
import Runtime
import Simulation

/// End to end: a register change in a simulated PLC → the `sample` event at every one of 1,000
/// connected event-stream clients, through the real adapter, pipeline, storage and SSE.
extension BenchSuite {
    func endToEnd() throws {
        raiseFileLimit()
        let clients = short ? 100 : 1000
        let changes = short ? 10 : 100
        let pollMs = 100
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-e2e-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let probe = SignalConfig(name: "probe", role: .measurement, address: ModbusAddress(table: .holdingRegister, index: 0), type: .uint16)
        let template = StationConfig(id: "E2E-01", name: "probe PLC", process: "welding", protocol: .modbus,
                                     endpoint: .modbusTCP(host: "127.0.0.1", port: 1, unit: 1), pollIntervalMs: pollMs, signals: [probe])
        let plc = ModbusStationServer(station: template, port: 0, logger: Logger(label: "bench", level: .error))
        let plcPort = try plc.start()
        defer { plc.stop() }
        try plc.set(signal: "probe", value: .int(0))
        let configPath = dir.appendingPathComponent("plant.json").path
        try """
        {"plant": "e2e bench", "route": ["welding"], "stations": [{"id": "E2E-01", "process": "welding", "protocol": "modbus",
          "endpoint": "modbus://127.0.0.1:\(plcPort)?unit=1", "pollIntervalMs": \(pollMs),
          "signals": [{"name": "probe", "role": "measurement", "address": "hr:0", "type": "uint16"}]}]}
        """.write(toFile: configPath, atomically: true, encoding: .utf8)

        let server = try BenchServer(config: configPath) { _ in }
        defer { server.stop() }

        let readers = try ClientSwarm(port: server.port, request: ClientSwarm.eventStreamRequest(path: "/api/events?types=sample"))
        defer { readers.close() }
        try readers.connect(clients, streaming: true)
        guard readers.streamingClients == clients else {
            throw UsageError("end to end: only \(readers.streamingClients) of \(clients) clients connected")
        }
        var latencies: [Double] = []
        for i in 1...changes {
            let value = 1000 + i
            let t0 = Monotonic.nanoseconds()
            readers.watch("\"probe\":\(value)", since: t0)
            try plc.set(signal: "probe", value: .int(Int64(value)))
            latencies += readers.collectWatched(timeout: 3)
            usleep(UInt32.random(in: 20_000...90_000)) // different points of the poll cycle
        }
        let p99 = percentile(latencies, 0.99)
        Self.figure("end to end: PLC register change → SSE event at each of \(clients) clients, p99", p99, unit: "ms",
                    target: Double(pollMs + 15), higherIsBetter: false,
                    reference: String(format: "poll interval %d ms; p50 %.1f ms; %d of %d deliveries", pollMs, percentile(latencies, 0.5),
                                      latencies.count, clients * changes))
    }
}
