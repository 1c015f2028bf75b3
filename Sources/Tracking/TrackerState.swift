import Foundation
import PlantModel
import Runtime

/// What a ``Tracker`` needs to continue after a restart; loaded from the store at start.
public struct TrackerSnapshot: Sendable, Equatable {
    /// One remembered vehicle: its summary and what it has done so far.
    public struct Vehicle: Sendable, Equatable {
        public var summary: VehicleSummary
        /// Completed operations per station (the next attempt there is this + 1).
        public var completedByStation: [String: Int]
        /// Processes with at least one completed operation.
        public var completedProcesses: Set<String>

        public init(summary: VehicleSummary, completedByStation: [String: Int] = [:], completedProcesses: Set<String> = []) {
            self.summary = summary
            self.completedByStation = completedByStation
            self.completedProcesses = completedProcesses
        }
    }

    public var vehicles: [Vehicle]
    /// Operations started and neither completed nor aborted (at most one per station).
    public var operationsInProgress: [OperationRecord]
    /// The parts counted per stamping lot; the latest (`at`) per station is its current lot.
    public var lotCounts: [LotCount]

    public init(vehicles: [Vehicle] = [], operationsInProgress: [OperationRecord] = [], lotCounts: [LotCount] = []) {
        self.vehicles = vehicles
        self.operationsInProgress = operationsInProgress
        self.lotCounts = lotCounts
    }
}

/// A station as tracking sees it (for `GET /api/stations`: `currentVehicle`, `wip`).
public struct StationTracking: Sendable, Equatable {
    public var station: String
    public var process: String
    /// The vehicle at the station now, if any.
    public var currentVehicle: String?
    /// The operation in progress, if any.
    public var operation: OperationRecord?
    /// The station's current lot, at stations that count lots (stamping).
    public var currentLot: String?
    /// Vehicles at the station (0 or 1).
    public var wip: Int { currentVehicle == nil ? 0 : 1 }

    public init(station: String, process: String, currentVehicle: String?, operation: OperationRecord?, currentLot: String? = nil) {
        self.station = station
        self.process = process
        self.currentVehicle = currentVehicle
        self.operation = operation
        self.currentLot = currentLot
    }
}

/// Tracking's current picture of the line: a value, safe to hand to other threads.
public struct TrackingState: Sendable, Equatable {
    /// In config order.
    public var stations: [StationTracking]
    /// Vehicles `in_process`.
    public var inProcess: Int
    /// Vehicles on `hold`.
    public var onHold: Int

    /// Line WIP: vehicles entered and not finished (`in_process` and `hold`).
    public var lineWIP: Int { inProcess + onHold }

    public init(stations: [StationTracking], inProcess: Int, onHold: Int) {
        self.stations = stations
        self.inProcess = inProcess
        self.onHold = onHold
    }

    public func station(_ id: String) -> StationTracking? { stations.first { $0.station == id } }

    /// WIP per process (vehicles at its stations).
    public var wipByProcess: [String: Int] {
        var result: [String: Int] = [:]
        for station in stations { result[station.process, default: 0] += station.wip }
        return result
    }
}

/// Tuning of the tracker.
public struct TrackerOptions: Sendable, Equatable {
    /// How long two stations must both work one vehicle id (by their own polls) before it is a
    /// `duplicateId` issue; covers the moment a vehicle moves and the next station is polled first.
    public var duplicateGraceS: Double = 2
    /// Completed and scrapped vehicles kept in memory (for rework detection); older ones are forgotten.
    public var retainFinishedVehicles: Int = 10_000
    /// Start a new operation when the machine starts `running` (not resumes from a fault) with a
    /// vehicle already present and no operation in progress (rework in place).
    public var startOnRunning: Bool = true

    public init() {}
}
