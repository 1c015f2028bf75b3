import Foundation
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage

/// Andon calls and downtime reasons as the API changes them (README "Andon and downtime"). Each
/// command runs on the pipeline thread and returns once its rows and events are committed; it
/// throws `QualityActionError` (the API maps it to 404/409/422) or storage errors (503).
public protocol FloorBackend: Sendable {
    /// `POST /api/andon` → the call.
    func callAndon(station: String, kind: String, comment: String?, by principal: Principal) throws -> JSON
    /// `POST /api/andon/{id}/ack` → the call.
    func acknowledgeAndon(id: Int64, comment: String?, by principal: Principal) throws -> JSON
    /// `POST /api/andon/{id}/close` → the call.
    func closeAndon(id: Int64, comment: String?, by principal: Principal) throws -> JSON
    /// `POST /api/downtime/{id}/reason` → the stretch.
    func setDowntimeReason(id: Int64, code: String, comment: String?, by principal: Principal) throws -> JSON
}

/// Andon calls and downtime stretches as the API reads them from storage (any thread).
public protocol FloorQueries: Sendable {
    func andonCalls(state: AndonState?, station: String?, limit: Int) throws -> [AndonCall]
    func andonCall(id: Int64) throws -> AndonCall?
    func downtime(station: String?, from: Date?, to: Date?, openOnly: Bool, limit: Int) throws -> [DowntimeStretch]
}

/// ``FloorQueries`` over the event log's read connections.
public struct StoreFloorQueries: FloorQueries {
    let eventLog: EventLog

    public init(eventLog: EventLog) { self.eventLog = eventLog }

    public func andonCalls(state: AndonState?, station: String?, limit: Int) throws -> [AndonCall] {
        try eventLog.read { try FloorStore.calls(state: state, station: station, limit: limit, in: $0) }
    }

    public func andonCall(id: Int64) throws -> AndonCall? {
        try eventLog.read { try FloorStore.call(id: id, in: $0) }
    }

    public func downtime(station: String?, from: Date?, to: Date?, openOnly: Bool, limit: Int) throws -> [DowntimeStretch] {
        try eventLog.read { try FloorStore.downtime(station: station, from: from, to: to, openOnly: openOnly, limit: limit, in: $0) }
    }
}

extension PlantStage: FloorBackend {
    private static func call(in outputs: [QualityOutput]) -> JSON {
        var answer = JSON.null
        for case .andon(let call, _) in outputs { answer = call.json }
        return answer
    }

    public func callAndon(station: String, kind: String, comment: String?, by principal: Principal) throws -> JSON {
        try command { stage, now in
            let outputs = try stage.quality.callAndon(station: station, kind: kind, comment: comment, by: principal, at: now)
            return ([], outputs, Self.call(in: outputs))
        }
    }

    public func acknowledgeAndon(id: Int64, comment: String?, by principal: Principal) throws -> JSON {
        try command { stage, now in
            let outputs = try stage.quality.acknowledgeAndon(id: id, comment: comment, by: principal, at: now)
            return ([], outputs, Self.call(in: outputs))
        }
    }

    public func closeAndon(id: Int64, comment: String?, by principal: Principal) throws -> JSON {
        try command { stage, now in
            let outputs = try stage.quality.closeAndon(id: id, comment: comment, by: principal, at: now)
            return ([], outputs, Self.call(in: outputs))
        }
    }

    public func setDowntimeReason(id: Int64, code: String, comment: String?, by principal: Principal) throws -> JSON {
        // For a stretch older than the engine keeps: the stored row (the engine prefers its own copy).
        let stored = try eventLog.read { try FloorStore.stretch(id: id, in: $0) }
        return try command { stage, now in
            let outputs = try stage.quality.setDowntimeReason(id: id, code: code, comment: comment, stored: stored, by: principal, at: now)
            var answer = JSON.null
            for case .downtime(let stretch) in outputs { answer = stretch.json(now: now) }
            return ([], outputs, answer)
        }
    }
}
