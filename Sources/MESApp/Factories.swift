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
    /// `orders`: where the orders of the vehicles it builds go (plants with models).
    /// `partNumbers`: the build spec's part number of a vehicle's key part (what its stations scan).
    static func services(config: PlantConfig, logger: Logger, orders: (any OrderSink)? = nil,
                         partNumbers: (@Sendable (String, String) -> String?)? = nil) throws -> [any Service] {
        let plant = try PlantSimulationService(config: config, source: .scenario(.normalShift, seed: 1), logger: logger.named("sim"))
        if let partNumbers { plant.partNumbers(partNumbers) }
        if let orders, config.hasModels {
            let feeder = SimulatedOrders(config: config, sink: orders, taktS: plant.taktS ?? 60, logger: logger.named("sim-orders"))
            plant.onVehiclesReleased { vins, time in feeder.vehiclesReleased(vins, at: time) }
        }
        try plant.start()
        return [plant]
    }
}
