import Foundation
import PlantModel
import Runtime

/// Per-station state of the engine.
struct StationRuntime: Sendable {
    /// What the station's config fixes, made once and shared by every copy of the runtime (a
    /// copy, e.g. for the KPIs, then takes one reference for all of it).
    final class Fixed: Sendable {
        let config: StationConfig
        let stateSignal: String?
        let stateMap: [Int64: MachineState]
        let faultSignal: String?
        let counterSignal: String?
        let andonSignal: String?
        let andonCalls: [Int64: String]
        let usesCounter: Bool
        let keys: AlertKeys

        init(_ config: StationConfig) {
            self.config = config
            let state = config.signal(role: .state)
            stateSignal = state?.name
            var map: [Int64: MachineState] = [:]
            for (code, name) in state?.states ?? [:] { map[code] = MachineState(rawValue: name) }
            stateMap = map
            faultSignal = config.signal(role: .faultCode)?.name
            counterSignal = config.signal(role: .counter)?.name
            andonSignal = config.signal(role: .andon)?.name
            andonCalls = config.signal(role: .andon)?.calls ?? [:]
            usesCounter = config.signal(role: .cycleComplete) == nil && config.signal(role: .counter) != nil
            keys = AlertKeys(config)
        }
    }

    let fixed: Fixed
    var config: StationConfig { fixed.config }
    var stateSignal: String? { fixed.stateSignal }
    var stateMap: [Int64: MachineState] { fixed.stateMap }
    var faultSignal: String? { fixed.faultSignal }
    var counterSignal: String? { fixed.counterSignal }
    /// The `andon` signal and its code → kind map (README "Andon and downtime").
    var andonSignal: String? { fixed.andonSignal }
    var andonCalls: [Int64: String] { fixed.andonCalls }
    /// No cycleComplete signal but a counter: parts are counted from the counter.
    var usesCounter: Bool { fixed.usesCounter }

    var acc: StationAccumulator
    var state: MachineState?
    var faultCode = "0"
    var faultCodeValue: Int64 = 0
    var keys: AlertKeys { fixed.keys }
    var connection = ConnectionState.connecting
    var offlineSince: Date?
    var faultSince: Date?
    /// A downtime stretch of this station goes on (``DowntimeBook``).
    var inDowntime = false
    var lastAccounted: Date?
    var slowCycles = 0
    var recentFirst: Ring
    var oeeBelowSince: Date?
    var lastKPIAt: Date?
    var lastCounter: Int64?
    var lastCounterAt: Date?
    var detectors: [String: SeriesDetector] = [:]
    var peerHealth: [String: Double?] = [:]
    var published: [String: AnomalyEntry] = [:]
    /// Meters and power (nil: the station has neither).
    var energy: StationEnergy?
    var lastEnergyAt: Date?
    /// `condition` signal name → index of its unit in the engine's list.
    var conditionUnits: [(name: String, unit: Int)] = []

    init(_ config: StationConfig, rules: QualityRules) {
        fixed = Fixed(config)
        acc = StationAccumulator(id: config.id, process: config.process, ideal: config.idealCycleTimeS)
        recentFirst = Ring(capacity: rules.fpy.lastN)
        energy = StationEnergy(config)
        acc.metered = energy != nil
    }

    mutating func resetShift() {
        acc = StationAccumulator(id: config.id, process: config.process, ideal: config.idealCycleTimeS)
        acc.metered = energy != nil
        if state == .fault { acc.faults = 1 }
        oeeBelowSince = nil
        lastKPIAt = nil
    }
}

/// The stable alert keys of a station, made once.
struct AlertKeys: Sendable {
    let downtime, connection, cycle, fpy, oee: String
    let anomalies: [String: String]

    init(_ config: StationConfig) {
        downtime = "kpi:downtime:\(config.id)"
        connection = "connection:\(config.id)"
        cycle = "kpi:cycle:\(config.id)"
        fpy = "kpi:fpy:\(config.id)"
        oee = "kpi:oee:\(config.id)"
        var anomalies: [String: String] = [:]
        for signal in config.signals where signal.role == .measurement { anomalies[signal.name] = "anomaly:\(config.id):\(signal.name)" }
        self.anomalies = anomalies
    }

    func anomaly(_ signal: String) -> String { anomalies[signal] ?? "anomaly:\(downtime.dropFirst("kpi:downtime:".count)):\(signal)" }
}
