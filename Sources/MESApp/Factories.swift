import Foundation
import PlantModel
import Runtime

/// Builds the OPC UA adapter of a station (until the OPC UA adapter lands: none, with a warning).
enum OPCUAAdapterFactory {
    static func make(station: StationConfig, sink: @escaping AdapterSink, logger: Logger) -> (any StationAdapter)? {
        logger.warning("OPC UA adapter not available yet: station \(station.id) is not polled")
        return nil
    }
}

/// Builds the in-process simulators of `--simulate`.
enum SimulatorFactory {
    static func services(config: PlantConfig, logger: Logger) throws -> [any Service] {
        logger.warning("simulators not available yet")
        return []
    }
}
