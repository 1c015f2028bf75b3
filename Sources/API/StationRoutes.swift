import Foundation
import HTTP
import PlantModel
import Runtime
import Storage

extension LiveStations.Station {
    /// The `GET /api/stations` entry (docs/openapi.json `Station`); `kpi` and `wip` come from tracking and quality. The PLC
    /// `endpoint` only when `showEndpoint` (an `engineer` token or above).
    func summaryJSON(wip: Int, kpi: JSON, showEndpoint: Bool) -> [(String, JSON)] {
        var members: [(String, JSON)] = [
            ("id", .string(config.id)),
            ("name", .string(config.name)),
            ("process", .string(config.process)),
            ("protocol", .string(config.protocol.rawValue)),
            ("connection", .string(connection.rawValue)),
            ("state", .str(state)),
            ("stateCode", stateCode.map { .int($0) } ?? .null),
            ("currentVehicle", .str(currentVehicle)),
            ("wip", .int(Int64(wip))),
            ("lastSampleAt", lastSampleAt.map { .string(Timestamp.format($0)) } ?? .null),
            ("pollLatencyMs", .number(pollLatencyMs ?? stats.lastLatencyMs)),
            ("errors", .int(Int64(stats.errorCount))),
            ("pollIntervalMs", .int(Int64(config.pollIntervalMs))),
            ("idealCycleTimeS", .number(config.idealCycleTimeS)),
            ("kpi", kpi),
        ]
        if showEndpoint { members.insert(("endpoint", .string(config.endpoint.description)), at: 4) }
        return members
    }

    /// The signals of `GET /api/stations/{id}`.
    var signalsJSON: JSON {
        .array(signals.map { signal in
            let spec = config.signal(named: signal.name)
            return .obj([
                ("name", .string(signal.name)),
                ("role", .str(signal.role?.rawValue)),
                ("value", signal.value?.json ?? .null),
                ("quality", .string(signal.quality.rawValue)),
                ("t", signal.time.map { .string(Timestamp.format($0)) } ?? .null),
                ("unit", .str(spec?.unit)),
                ("limits", spec?.limits.map { .obj([("low", .number($0.low)), ("high", .number($0.high))]) }),
                ("states", spec.flatMap { $0.states.isEmpty ? nil : JSON.object($0.states.sorted { $0.key < $1.key }.map { (String($0.key), .string($0.value)) }) }),
                ("status", .str(signal.status)),
            ])
        })
    }
}
