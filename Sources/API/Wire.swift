import Foundation
import HTTP
import Pipeline
import Quality
import Runtime
import Tracking

// The API's side of the domain: HTTP statuses and error codes of the domain's errors, and the
// JSON of the typed KPI values (README.md, "HTTP API").

extension HTTPError {
    /// A refused alert or defect action: 404 unknown id, 409 wrong state, 422 bad arguments.
    init(_ error: QualityActionError) {
        switch error {
        case .notFound(let message): self.init(404, message)
        case .conflict(let message): self.init(409, message)
        case .invalid(let message): self.init(422, message)
        }
    }

    /// A refused vehicle command: 404 unknown vehicle, 409 its status does not allow it.
    init(_ error: VehicleCommandError) {
        switch error {
        case .notFound: self.init(404, code: "not_found", error.message)
        case .conflict: self.init(409, code: "conflict", error.message)
        case .gateBlocked: self.init(409, code: "gate_blocked", error.message)
        }
    }

    /// A command's error as the API answers it: domain refusals by their kind, anything else
    /// (storage) 503.
    static func command(_ error: any Error) -> HTTPError {
        switch error {
        case let error as QualityActionError: HTTPError(error)
        case let error as VehicleCommandError: HTTPError(error)
        case let error as HTTPError: error
        default: HTTPError(503, code: "unavailable", "the change could not be stored: \(error)")
        }
    }
}

/// The JSON of `GET /api/kpis?shift=current`.
enum KPIJSON {
    /// The line's KPIs, with `plan` (README "Orders and build specs") once the plant uses orders.
    static func line(_ json: JSON, plan: ShiftPlan?) -> JSON {
        guard let plan, case .object(var members) = json else { return json }
        members.append(("plan", .obj([("date", .string(plan.date)), ("shift", .string(plan.shift)),
                                      ("planned", .int(Int64(plan.planned))), ("completed", .int(Int64(plan.completed))),
                                      ("attainment", .number(plan.attainment))])))
        return .object(members)
    }

    /// A station's or the line's KPI object with `downtimeByReason` and `downtimeByCategory`
    /// (seconds of this shift; README "Andon and downtime").
    static func withDowntime(_ json: JSON, _ split: DowntimeSplit?) -> JSON {
        guard case .object(var members) = json else { return json }
        let split = split ?? DowntimeSplit()
        members.append(("downtimeByReason", split.reasonJSON))
        members.append(("downtimeByCategory", split.categoryJSON))
        return .object(members)
    }

    static func document(_ kpis: PlantKPIs) -> JSON {
        let q = kpis.quality
        let response = q.response ?? .none
        return .obj([
            ("shift", q.shift.map { shift(q, $0) } ?? .null),
            ("line", withDowntime(line(q.line.json, plan: kpis.plan), q.downtime?.line)),
            ("stations", .array(q.stations.map { withDowntime($0.json, q.downtime?.stations[$0.id]) })),
            ("response", response.responseJSON),
            ("andon", response.andonJSON),
            ("rty", .number(q.line.rty)),
            ("alerts", .obj([
                ("per10Min", .int(Int64(q.alertsPer10Min))),
                ("floodTimePct", .double(q.floodTimePct)),
                ("chattering", .array(q.chattering.map { .string($0) })),
            ])),
            ("defects", .obj([
                ("byCode", .array(q.defectsByCode.map { .obj([("code", .string($0.code)), ("count", .int(Int64($0.count)))]) })),
                ("byStation", .array(q.defectsByStation.map { .obj([("station", .string($0.station)), ("count", .int(Int64($0.count)))]) })),
            ])),
            ("wip", .obj([("line", .int(Int64(kpis.lineWIP))), ("inProcess", .int(Int64(kpis.inProcess))),
                          ("onHold", .int(Int64(kpis.onHold)))])),
        ])
    }
}
