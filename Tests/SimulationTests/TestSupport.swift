import Foundation
import PlantModel
import XCTest
import TestSupport
@testable import Simulation

func defaultPlant() throws -> PlantConfig {
    try PlantConfig.load(path: repoRoot.appendingPathComponent("Stations/plant.json").path)
}

func shippedScenario(_ name: String) throws -> Scenario {
    try Scenario.load(path: repoRoot.appendingPathComponent("Stations/scenarios/\(name).json").path)
}

/// Per-station, per-cycle observations collected by running a simulator directly.
struct Observation {
    var t: Int64
    var station: String
    var vehicle: String
    var values: [String: SignalValue]
}

/// Runs the simulator and records, for every vehicle station, the values at each rising edge
/// of its cycleComplete signal (what a poller would see), polling every station at its interval.
func runCycles(_ config: PlantConfig, _ scenario: Scenario, seed: UInt64? = nil, hours: Double,
               onPoll: ((PlantSimulator, Int) -> Void)? = nil) throws -> (cycles: [Observation], sim: PlantSimulator) {
    let sim = try PlantSimulator(config: config, scenario: scenario, seed: seed)
    var previous: [SignalValue?] = Array(repeating: nil, count: config.stations.count)
    var lastVehicle: [String] = Array(repeating: "", count: config.stations.count)
    var cycles: [Observation] = []
    let end = Int64(hours * 3_600_000)
    while sim.elapsedMs <= end {
        for (s, station) in config.stations.enumerated() where sim.isPollDue(s) {
            onPoll?(sim, s)
            guard let cycleIndex = station.signals.firstIndex(where: { $0.role == .cycleComplete }) else { continue }
            let values = sim.values(at: s)
            if let v = station.signals.firstIndex(where: { $0.role == .vehicleId }), case .string(let id) = values[v], !id.isEmpty {
                lastVehicle[s] = id
            }
            let now = values[cycleIndex]
            let edge: Bool
            switch (previous[s], now) {
            case (.bool(false)?, .bool(true)): edge = true
            case (let old?, _) where now.integer != nil && old.integer != nil && old.integer! < now.integer! && station.signals[cycleIndex].type != .bool: edge = true
            default: edge = false
            }
            previous[s] = now
            if edge {
                var map: [String: SignalValue] = [:]
                for (signal, value) in zip(station.signals, values) { map[signal.name] = value }
                cycles.append(Observation(t: sim.elapsedMs, station: station.id, vehicle: lastVehicle[s], values: map))
            }
        }
        sim.step()
    }
    return (cycles, sim)
}
