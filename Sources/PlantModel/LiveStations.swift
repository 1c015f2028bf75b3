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
            // Changed where it is stored: a copy taken out and put back would copy its signals too.
            guard let position = stations.index(forKey: poll.station) else { return nil }
            return Self.apply(poll, to: &stations.values[position])
        }
    }

    private static func apply(_ poll: StationPoll, to station: inout Station) -> (oldState: Int64?, newState: Int64?) {
        let oldState = station.stateCode
        // Readings come in the signals' order as a rule (names are unique in a station): the
        // signal after the last one found is tried first.
        var next = 0
        for reading in poll.readings {
            let index: Int
            if next < station.signals.count, station.signals[next].name == reading.name {
                index = next
            } else if let found = station.signals.firstIndex(where: { $0.name == reading.name }) {
                index = found
            } else {
                continue
            }
            next = index + 1
            if reading.quality == .good {
                station.signals[index].value = reading.value
            }
            station.signals[index].quality = reading.quality
            station.signals[index].status = reading.status
            station.signals[index].time = poll.time
            if reading.quality == .good, let value = reading.value {
                switch station.signals[index].role {
                case .state: station.stateCode = value.integer
                case .vehicleId:
                    let text = Self.trimmed(value.text)
                    station.currentVehicle = text.isEmpty ? nil : text
                default: break
                }
            }
        }
        station.lastSampleAt = poll.time
        if let latency = poll.latencyMs { station.pollLatencyMs = latency }
        if poll.readings.contains(where: { $0.quality == .bad }) {
            let bad = poll.readings.filter { $0.quality == .bad }
            station.status = bad.map { "\($0.name): \($0.status ?? "bad")" }.joined(separator: "; ")
        } else {
            station.status = nil
        }
        return (oldState, station.stateCode)
    }

    /// `text` without white space (`CharacterSet.whitespaces`) at its ends. Spaces and tabs are
    /// taken off here; Foundation's trimming (which costs more than the rest of a poll) is left
    /// for a text that then still begins or ends with a character beyond ASCII.
    static func trimmed(_ text: String) -> String {
        let utf8 = text.utf8
        var start = utf8.startIndex, end = utf8.endIndex
        while start < end, utf8[start] == 0x20 || utf8[start] == 0x09 { start = utf8.index(after: start) }
        while start < end {
            let last = utf8.index(before: end)
            guard utf8[last] == 0x20 || utf8[last] == 0x09 else { break }
            end = last
        }
        if start == end { return "" }
        guard utf8[start] < 0x80, utf8[utf8.index(before: end)] < 0x80 else { return text.trimmingCharacters(in: .whitespaces) }
        if start == utf8.startIndex && end == utf8.endIndex { return text }
        return String(Substring(utf8[start..<end]))
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
