import Foundation
import PlantModel
import OPCUAAdapter
import Runtime
import Simulation

/// Builds the OPC UA adapter of a station.
enum OPCUAAdapterFactory {
    static func make(station: StationConfig, sink: @escaping AdapterSink, logger: Logger) -> (any StationAdapter)? {
        OPCUAStationAdapter(config: station, sink: sink, logger: logger)
    }
}

/// Builds the in-process simulators of `--simulate`: every station, the built-in normal shift.
enum SimulatorFactory {
    static func services(config: PlantConfig, logger: Logger) throws -> [any Service] {
        let plant = try PlantSimulationService(config: config, source: .scenario(.normalShift, seed: 1), logger: logger.named("sim"))
        try plant.start()
        return [plant]
    }
}
