import Foundation
import PlantModel
import OPCUAAdapter
import Runtime

/// Builds the OPC UA adapter of a station.
enum OPCUAAdapterFactory {
    static func make(station: StationConfig, sink: @escaping AdapterSink, logger: Logger) -> (any StationAdapter)? {
        OPCUAStationAdapter(config: station, sink: sink, logger: logger)
    }
}

/// Builds the in-process simulators of `--simulate`.
enum SimulatorFactory {
    static func services(config: PlantConfig, logger: Logger) throws -> [any Service] {
        logger.warning("simulators not available yet")
        return []
    }
}
