import Foundation
import PlantModel
import OPCUAAdapter
import Runtime
import Simulation

/// Builds the OPC UA adapter of a station.
enum OPCUAAdapterFactory {
    static func make(station: StationConfig, sink: @escaping AdapterSink, logger: Logger,
                     security: OPCUAClientSecurityContext? = nil) -> (any StationAdapter)? {
        OPCUAStationAdapter(config: station, sink: sink, logger: logger, securityContext: security)
    }
}

/// OPC UA security at start (README "Connecting to a PLC that requires security").
enum OPCUASecurityFactory {
    /// The client's PKI, certificate and passwords when an OPC UA station has a `security` block; nil otherwise
    /// (no PKI folder is made for a plant that does not need one).
    static func clientContext(config: PlantConfig, database: String, logger: Logger) throws -> OPCUAClientSecurityContext? {
        guard config.stations.contains(where: { $0.protocol == .opcua && $0.security != nil }) else { return nil }
        let folder = config.pkiFolder(database: database)
        let context = try OPCUAClientSecurityContext(config: config, pkiFolder: folder, logger: logger)
        logger.info("OPC UA PKI \(folder): own certificate \(context.store.ownCertificatePath) (\(context.own.certificate.thumbprintHex)); trusted server certificates in \(context.store.trustedFolder)/")
        return context
    }

    /// `--simulate`: the simulated stations' certificate (in `<pki>/simulator`), trusted by this server's client.
    /// `pkiFolder`: the simulators' own PKI folder (default `<pki>/simulator`).
    static func simulatorSecurity(config: PlantConfig, clientContext: OPCUAClientSecurityContext, logger: Logger,
                                  pkiFolder: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SimulatorSecurity {
        let security = try SimulatorSecurity(config: config, pkiFolder: pkiFolder ?? clientContext.store.folder + "/simulator",
                                             environment: environment, logger: logger)
        let path = try security.trust(in: clientContext.store)
        logger.info("--simulate: the simulated OPC UA stations' certificate is trusted as \(path)")
        return security
    }
}

/// Builds the in-process simulators of `--simulate`: every station, the built-in normal shift.
enum SimulatorFactory {
    /// `orders`: where the orders of the vehicles it builds go (plants with models).
    /// `partNumbers`: the build spec's part number of a vehicle's key part (what its stations scan).
    static func services(config: PlantConfig, logger: Logger, orders: (any OrderSink)? = nil,
                         partNumbers: (@Sendable (String, String) -> String?)? = nil,
                         security: SimulatorSecurity? = nil) throws -> [any Service] {
        let plant = try PlantSimulationService(config: config, source: .scenario(.normalShift, seed: 1), logger: logger.named("sim"),
                                               security: security)
        if let partNumbers { plant.partNumbers(partNumbers) }
        if let orders, config.hasModels {
            let feeder = SimulatedOrders(config: config, sink: orders, taktS: plant.taktS ?? 60, logger: logger.named("sim-orders"))
            plant.onVehiclesReleased { vins, time in feeder.vehiclesReleased(vins, at: time) }
        }
        try plant.start()
        return [plant]
    }
}
