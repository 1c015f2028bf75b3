import CModbus
import Foundation
import OPCUA
import PlantModel
import Runtime
import XCTest
@testable import Simulation
import TestSupport

/// The simulated plant over real protocols: a libmodbus client and our OPC UA client on loopback.
final class ServingTests: XCTestCase {
    func freePorts(_ config: PlantConfig) -> [String: UInt16] {
        Dictionary(uniqueKeysWithValues: config.stations.map { ($0.id, UInt16(0)) })
    }

    /// Reads holding registers with libmodbus; nil if the server cannot be reached.
    func readRegisters(port: UInt16, unit: Int32, address: Int32, count: Int32) -> [UInt16]? {
        guard let ctx = modbus_new_tcp("127.0.0.1", Int32(port)) else { return nil }
        defer { modbus_free(ctx) }
        modbus_set_slave(ctx, unit)
        modbus_set_response_timeout(ctx, 1, 0)
        guard modbus_connect(ctx) == 0 else { return nil }
        defer { modbus_close(ctx) }
        var registers = [UInt16](repeating: 0, count: Int(count))
        guard modbus_read_registers(ctx, address, count, &registers) == count else { return nil }
        return registers
    }

    func text(_ registers: [UInt16]) -> String {
        var bytes: [UInt8] = []
        for r in registers { bytes += [UInt8(r >> 8), UInt8(r & 0xFF)] }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    func testServesTheDefaultPlantOverModbusAndOPCUA() async throws {
        let config = try defaultPlant()
        let service = try PlantSimulationService(config: config, ports: freePorts(config),
                                                 logger: Logger(label: "test", level: .warning))
        try service.start()
        defer { service.stop() }
        let ports = service.ports
        XCTAssertEqual(ports.count, 8, "seven on the route and the utilities station UTIL-01")
        // The first vehicle is at WELD-01 from the first tick.
        let expected = try PlantSimulator(config: config).values(of: "WELD-01")
        let vin = try XCTUnwrap(readRegisters(port: ports["WELD-01"]!, unit: 1, address: 10, count: 9))
        XCTAssertEqual(text(vin), expected["vehicleId"]?.text)
        XCTAssertTrue(VIN.isValid(text(vin)))
        XCTAssertEqual(readRegisters(port: ports["WELD-01"]!, unit: 1, address: 31, count: 1), [1], "running")
        XCTAssertEqual(readRegisters(port: ports["WELD-02"]!, unit: 2, address: 31, count: 1), [0], "idle")
        XCTAssertNil(readRegisters(port: ports["WELD-02"]!, unit: 7, address: 31, count: 1), "another unit id gets an exception")

        var options = OPCUAClient.Options(endpointURL: "opc.tcp://127.0.0.1:\(ports["PAINT-01"]!)")
        options.requestTimeoutMs = 2000
        let client = try OPCUAClient(options: options)
        try await client.connect()
        let values = try await client.read([NodeId("ns=2;s=Paint.State")!, NodeId("ns=2;i=1007")!, NodeId("ns=2;s=Paint.VehicleId")!])
        await client.close()
        XCTAssertEqual(values.map(\.value), [.uint16(0), .double(110), .string("")])
    }

    func testOfflineEventClosesThePLCAndItComesBack() throws {
        let config = try defaultPlant()
        let scenario = try Scenario.decode(json: try JSON.parse(#"{"events": [{"type": "offline", "station": "INSP-01", "at": "500ms", "duration": "2s"}]}"#),
                                           file: "offline.json")
        let service = try PlantSimulationService(config: config, stationIDs: ["INSP-01", "WELD-01"],
                                                 source: .scenario(scenario, seed: nil), ports: freePorts(config),
                                                 logger: Logger(label: "test", level: .warning))
        try service.start()
        defer { service.stop() }
        let port = try XCTUnwrap(service.ports["INSP-01"])
        XCTAssertNotNil(readRegisters(port: port, unit: 1, address: 31, count: 1))
        XCTAssertTrue(eventually { readRegisters(port: port, unit: 1, address: 31, count: 1) == nil }, "offline")
        XCTAssertNotNil(readRegisters(port: service.ports["WELD-01"]!, unit: 1, address: 31, count: 1), "other stations still serve")
        XCTAssertTrue(eventually { readRegisters(port: port, unit: 1, address: 31, count: 1) == [0] }, "back online on the same port")
        XCTAssertGreaterThanOrEqual(service.elapsedMs, 2500, "back only after the outage (500 ms + 2 s)")
    }

    func testRecordingDrivesTheServedValues() throws {
        let config = try defaultPlant()
        let folder = TempFolder()
        let path = folder.file("r.jsonl")
        try [
            #"{"t":"2026-11-21T06:00:00.000Z","station":"WELD-01","signal":"vehicleId","value":"LSVREPLAY00000001"}"#,
            #"{"t":"2026-11-21T06:00:00.000Z","station":"WELD-01","signal":"state","value":3}"#,
            #"{"t":"2026-11-21T06:00:00.000Z","station":"NOT-SERVED","signal":"state","value":3}"#,
            #"{"t":"2026-11-21T06:00:00.100Z","station":"WELD-01","signal":"faultCode","value":217}"#,
        ].joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let service = try PlantSimulationService(config: config, stationIDs: ["WELD-01"], source: .recording(path: path, speed: .max),
                                                 ports: freePorts(config), logger: Logger(label: "test", level: .warning))
        try service.start()
        defer { service.stop() }
        let port = try XCTUnwrap(service.ports["WELD-01"])
        var state: [UInt16]?
        XCTAssertTrue(eventually(timeout: 3) {
            state = readRegisters(port: port, unit: 1, address: 31, count: 2)
            return state == [3, 217]
        }, "\(String(describing: state))")
        XCTAssertEqual(text(readRegisters(port: port, unit: 1, address: 10, count: 9) ?? []), "LSVREPLAY00000001")
    }

    func testBadRecordingLineStopsTheServiceWithTheLine() async throws {
        let config = try defaultPlant()
        let folder = TempFolder()
        let path = folder.file("bad.jsonl")
        try "{\"t\":\"2026-11-21T06:00:00Z\",\"station\":\"WELD-01\",\"signal\":\"state\",\"value\":1}\n{\"t\":\"yesterday\",\"station\":\"WELD-01\",\"signal\":\"state\",\"value\":1}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let service = try PlantSimulationService(config: config, stationIDs: ["WELD-01"], source: .recording(path: path, speed: .max),
                                                 ports: freePorts(config), logger: Logger(label: "test", level: .critical))
        do {
            try await service.run()
            XCTFail("run() must throw")
        } catch {
            XCTAssertEqual("\(error)", "line 2: \"t\" is not an RFC 3339 time")
        }
        XCTAssertThrowsError(try PlantSimulationService(config: config, stationIDs: ["WELD-09"])) { error in
            XCTAssertTrue("\(error)".contains("\"WELD-09\" is not in"), "\(error)")
        }
    }
}
