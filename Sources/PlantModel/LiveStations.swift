import Foundation

import Runtime

/// The live view of every station (connection, machine state, latest values), kept by the
/// pipeline thread and read by the API from any thread.
public final class LiveStations: Sendable {
    /// One signal's latest reading.
    public struct Signal: Sendable {
        public var name: String
        public var role: SignalRole?
        public var value: SignalValue?
        public var quality: SampleQuality
        public var time: Date?
        public var status: String?
    }

    /// One station's live state.
    public struct Station: Sendable {
        public var config: StationConfig
        public var connection: ConnectionState = .connecting
        public var stateCode: Int64?
        public var currentVehicle: String?
        public var lastSampleAt: Date?
        public var pollLatencyMs: Double?
        public var status: String?
        public var signals: [Signal]
        public var stats = StationStats()

        /// The mapped machine state name (`running`, `fault` …), or nil before the first reading. A code
        /// the `states` map lacks is read with the conventional codes (``MachineState/conventionalCode``),
        /// as the quality engine counts it; `unknown` if it is none of them.
        public var state: String? {
            guard let stateCode else { return nil }
            return config.signal(role: .state)?.states[stateCode]
                ?? MachineState(conventionalCode: stateCode)?.rawValue ?? "unknown"
        }
    }

    private let stations: Locked<[String: Station]>
    private let order: [String]

    /// Every station starts `connecting`. In replay no adapter ever reports a connection, so the
    /// stations stay `connecting` (the events of a replay are fixed by the golden test); the
    /// dashboards show them as replayed (README "Dashboards").
    public init(config: PlantConfig) {
        let connection = ConnectionState.connecting
        var map: [String: Station] = [:]
        for station in config.stations {
            map[station.id] = Station(config: station, connection: connection, signals: station.signals.map {
                Signal(name: $0.name, role: $0.role, value: nil, quality: .stale, time: nil, status: nil)
            })
        }
        stations = Locked(map)
        order = config.stations.map(\.id)
    }

    /// Every station in config order.
    public func all() -> [Station] {
        stations.withLock { stations in order.compactMap { stations[$0] } }
    }

    public func station(_ id: String) -> Station? {
        stations.withLock { $0[id] }
    }

    /// Counts of stations per connection state.
    public func connectionCounts() -> [ConnectionState: Int] {
        stations.withLock { stations in
            var counts = Dictionary(uniqueKeysWithValues: ConnectionState.allCases.map { ($0, 0) })
            for station in stations.values { counts[station.connection, default: 0] += 1 }
            return counts
        }
    }

    /// Applies a poll; returns the previous and new state codes (for `station` events on change).
    public func apply(_ poll: StationPoll) -> (oldState: Int64?, newState: Int64?)? {
        stations.withLock { stations in
            guard var station = stations[poll.station] else { return nil }
            let oldState = station.stateCode
            for reading in poll.readings {
                guard let index = station.signals.firstIndex(where: { $0.name == reading.name }) else { continue }
                var signal = station.signals[index]
                if reading.quality == .good {
                    signal.value = reading.value
                }
                signal.quality = reading.quality
                signal.status = reading.status
                signal.time = poll.time
                station.signals[index] = signal
                if reading.quality == .good, let value = reading.value {
                    switch signal.role {
                    case .state: station.stateCode = value.integer
                    case .vehicleId:
                        let text = value.text.trimmingCharacters(in: .whitespaces)
                        station.currentVehicle = text.isEmpty ? nil : text
                    default: break
                    }
                }
            }
            station.lastSampleAt = poll.time
            if let latency = poll.latencyMs { station.pollLatencyMs = latency }
            let bad = poll.readings.filter { $0.quality == .bad }
            station.status = bad.isEmpty ? nil : bad.map { "\($0.name): \($0.status ?? "bad")" }.joined(separator: "; ")
            stations[poll.station] = station
            return (oldState, station.stateCode)
        }
    }

    /// Applies a connection change; offline marks every value stale. Returns false if unchanged.
    public func apply(_ change: ConnectionChange) -> Bool {
        stations.withLock { stations in
            guard var station = stations[change.station] else { return false }
            let changed = station.connection != change.state
            station.connection = change.state
            if change.state == .offline {
                station.status = change.reason
                for index in station.signals.indices where station.signals[index].value != nil {
                    station.signals[index].quality = .stale
                }
            }
            stations[change.station] = station
            return changed
        }
    }
}

extension LiveStations {
    /// Stores an adapter's polling figures for the API.
    public func setStats(_ stats: StationStats, for id: String) {
        stations.withLock { $0[id]?.stats = stats }
    }
}
