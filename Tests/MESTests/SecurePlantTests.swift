import Foundation
import XCTest
@testable import MESApp
import OPCUA
import OPCUAAdapter
import PlantModel
import Runtime
import Simulation
import TestSupport

/// `Stations/secure-plant.json` served by the simulator with its stations' security, read by the
/// adapters (README "A secure plant in station-sim"): unknown certificate first, then trusted.
final class SecurePlantTests: XCTestCase {
    final class Statuses: @unchecked Sendable {
        private let lock = NSLock()
        private var changes: [String: ConnectionChange] = [:]
        private var values: [String: SignalValue] = [:]
        var sink: AdapterSink {
            { [self] event in
                lock.withLock {
                    switch event {
                    case .connection(let change): changes[change.station] = change
                    case .poll(let poll):
                        for reading in poll.readings where reading.quality == .good { values["\(poll.station).\(reading.name)"] = reading.value }
                    }
                }
            }
        }
        func reason(_ station: String) -> String? { lock.withLock { changes[station]?.reason } }
        func state(_ station: String) -> PlantModel.ConnectionState? { lock.withLock { changes[station]?.state } }
        func hasValues(_ station: String) -> Bool { lock.withLock { values.keys.contains { $0.hasPrefix(station + ".") } } }
    }

    func testSecurePlantComesOnlineOnceTheSimulatorsCertificateIsTrusted() async throws {
        let folder = TempFolder(prefix: "secure-plant")
        defer { folder.remove() }
        let config = try PlantConfig.load(path: repoRoot.appendingPathComponent("Stations/secure-plant.json").path)
        let ids = ["PAINT-01", "ASSY-01"]
        let environment = ["MES_PAINT_PASSWORD": "paint-secret"]
        let quiet = Logger(label: "t", level: .critical)
        let simulatorSecurity = try SimulatorSecurity(config: config, pkiFolder: folder.file("sim-pki"), environment: environment, logger: quiet)
        let plant = try PlantSimulationService(config: config, stationIDs: ids, ports: Dictionary(uniqueKeysWithValues: ids.map { ($0, UInt16(0)) }),
                                               logger: quiet, security: simulatorSecurity)
        try plant.start()
        defer { plant.stop() }
        let context = try OPCUAClientSecurityContext(config: config, pkiFolder: folder.file("pki"), environment: environment, logger: quiet)
        let statuses = Statuses()
        var tasks: [Task<Void, Never>] = []
        for id in ids {
            var station = try XCTUnwrap(config.station(id))
            let port = try XCTUnwrap(plant.ports[id])
            station.endpoint = .opcua(url: "opc.tcp://127.0.0.1:\(port)", host: "127.0.0.1", port: port)
            let adapter = OPCUAStationAdapter(config: station, sink: statuses.sink, logger: quiet, securityContext: context)
            tasks.append(Task { try? await adapter.run() })
        }
        defer { for task in tasks { task.cancel() } }
        for id in ids {
            XCTAssertTrue(eventually(timeout: 30) { statuses.reason(id)?.hasPrefix("server certificate not trusted") == true },
                          "\(id): \(statuses.reason(id) ?? "no status")")
        }
        // What `mes-server --simulate` does at start (and a person does with mv): trust the simulator.
        let made = try OPCUASecurityFactory.simulatorSecurity(config: config, clientContext: context, logger: quiet,
                                                              pkiFolder: folder.file("sim-pki"), environment: environment)
        XCTAssertEqual(made.own.certificate, simulatorSecurity.own.certificate, "the simulator's certificate is made once")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: context.store.trustedFolder),
                       ["station-sim-\(simulatorSecurity.own.certificate.thumbprintHex.prefix(8)).der"])
        for id in ids {
            XCTAssertTrue(eventually(timeout: 30) { statuses.state(id) == .online && statuses.hasValues(id) },
                          "\(id): \(statuses.reason(id) ?? "no status")")
        }
    }
}
