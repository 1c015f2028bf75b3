import Foundation
import PlantModel
import Runtime
import Tracking

/// Kinds of route problems the tracking module reports.
public enum SequenceIssueKind: String, Sendable, Equatable, CaseIterable {
    /// The vehicle skipped one or more route steps (a defect per skipped process, plus an alert).
    case skipped
    /// The vehicle was worked again at a process it already passed.
    case repeated
    /// A vehicle id seen mid-route that never entered the line.
    case unknownVehicle
    /// The same id at two stations at once.
    case duplicateId
    /// A PLC reported a vehicle id that is not a valid VIN (the vehicle is still tracked).
    case invalidVehicleId
    /// A vehicle on the line has no released order, where the plant requires orders.
    case noOrder
    /// A vehicle worked at a process its build spec's route leaves out.
    case offRoute
}

/// A route problem as the quality engine needs it (the pipeline maps the tracker's issue onto it).
public struct SequenceIssueInput: Sendable, Equatable {
    public var kind: SequenceIssueKind
    public var vehicleId: String
    /// Where it was detected.
    public var station: String
    public var process: String?
    /// `skipped`: the processes left out.
    public var skippedProcesses: [String]
    /// `duplicateId`: the other station with the same id.
    public var otherStation: String?
    public var time: Date
    /// Free text from the tracker, if any.
    public var detail: String?

    public init(kind: SequenceIssueKind, vehicleId: String, station: String, process: String? = nil,
                skippedProcesses: [String] = [], otherStation: String? = nil, time: Date, detail: String? = nil) {
        self.kind = kind
        self.vehicleId = vehicleId
        self.station = station
        self.process = process
        self.skippedProcesses = skippedProcesses
        self.otherStation = otherStation
        self.time = time
        self.detail = detail
    }
}

/// What the quality engine consumes, in pipeline order. Time comes only from these.
public enum QualityInput: Sendable, Equatable {
    /// A completed operation (from tracking).
    case operation(OperationRecord)
    /// A route problem (from tracking).
    case sequenceIssue(SequenceIssueInput)
    /// A station poll (machine state, fault code, counter; measurements of counter-only stations).
    case poll(StationPoll)
    /// A station's connection changed.
    case connection(ConnectionChange)
    /// Time passes (shelve expiry, escalation, offline and downtime limits). Send about once a second.
    case tick(Date)
    /// A key part rule was broken (from the pipeline's part book).
    case partIssue(PartIssue)

    /// The input's time.
    public var time: Date {
        switch self {
        case .operation(let op): op.completedAt ?? op.startedAt
        case .sequenceIssue(let issue): issue.time
        case .poll(let poll): poll.time
        case .connection(let change): change.time
        case .tick(let t): t
        case .partIssue(let issue): issue.at
        }
    }
}

/// The line's KPIs for a shift, from summed times and counts (never averaged percentages).
public struct LineKPI: Sendable, Equatable {
    public var availability: Double?
    public var performance: Double?
    public var quality: Double?
    public var oee: Double?
    /// First-attempt OK / first attempts over every station.
    public var fpy: Double?
    /// FPY of the inspection process (the last route process if none is called `inspection`).
    public var inspectionFpy: Double?
    /// Product of the processes' FPYs along the route (processes without first attempts left out).
    public var rty: Double?
    public var goodCount: Int
    public var totalCount: Int
    /// Operations completed at the last route process.
    public var completedVehicles: Int
    public var throughputPerHour: Double?
    public var downtimeByFault: [(code: String, seconds: Double)]
    public var mtbfS: Double?
    public var mttrS: Double?
    /// The line's energy: every metered station, utilities included (nil: no station is metered).
    public var energy: EnergyFigures? = nil

    public static func == (a: LineKPI, b: LineKPI) -> Bool { a.json == b.json }

    public var json: JSON {
        .obj([
            ("id", .string("line")),
            ("oee", .number(oee)),
            ("availability", .number(availability)),
            ("performance", .number(performance)),
            ("quality", .number(quality)),
            ("fpy", .number(fpy)),
            ("inspectionFpy", .number(inspectionFpy)),
            ("rty", .number(rty)),
            ("goodCount", .int(Int64(goodCount))),
            ("totalCount", .int(Int64(totalCount))),
            ("completedVehicles", .int(Int64(completedVehicles))),
            ("throughputPerHour", .number(throughputPerHour)),
            ("downtimeByFault", .object(downtimeByFault.map { ($0.code, .double(round6($0.seconds))) })),
            ("mtbfS", .number(mtbfS)),
            ("mttrS", .number(mttrS)),
            ("energy", energy?.json ?? .null),
        ])
    }
}

/// The shift a KPI set belongs to.
public struct ShiftWindow: Sendable, Equatable {
    /// The shift's name; `day` when the plant has no shifts, `off-shift` between shifts.
    public var name: String
    public var start: Date
    public var end: Date
    /// The plant-local date of its start (`YYYY-MM-DD`): with the name it identifies a past shift.
    public var date: String
    /// Its planned breaks (README "Shift calendar and shift history"), in time order.
    public var breaks: [BreakWindow]

    public init(name: String, start: Date, end: Date, date: String = "", breaks: [BreakWindow] = []) {
        self.name = name
        self.start = start
        self.end = end
        self.date = date
        self.breaks = breaks
    }

    public var json: JSON {
        .obj([("name", .string(name)), ("start", .string(Timestamp.format(start))), ("end", .string(Timestamp.format(end))),
              ("date", .string(date)), ("breaks", .array(breaks.map(\.json)))])
    }

    /// Seconds of its breaks inside `from ..< to`.
    public func breakSeconds(from: Date, to: Date) -> Double {
        var total = 0.0
        for b in breaks where b.end > from && b.start < to {
            total += min(b.end, to).timeIntervalSince(max(b.start, from))
        }
        return total
    }
}

/// A planned break as instants.
public struct BreakWindow: Sendable, Equatable {
    public var start: Date
    public var end: Date

    public init(start: Date, end: Date) {
        self.start = start
        self.end = end
    }

    public var json: JSON { .obj([("start", .string(Timestamp.format(start))), ("end", .string(Timestamp.format(end)))]) }
}

/// What the quality engine produces. Each has an event type (nil: not an event) and a JSON payload.
public enum QualityOutput: Sendable, Equatable {
    case defect(Defect, DefectChange)
    case alert(Alert, AlertChange)
    case stationKPI(StationKPI, shift: String, t: Date)
    case lineKPI(LineKPI, shift: String, t: Date)
    case anomaly(AnomalyEntry)
    /// An audit line to append (acknowledge, shelve, defect changes). Not an event.
    case audit(AuditEntry)
    /// An andon call opened, acknowledged or closed (event `andon`).
    case andon(AndonCall, AndonChange)
    /// A downtime stretch opened, ended or given a reason. Stored, not an event.
    case downtime(DowntimeStretch)

    /// The event type (docs/openapi.json `EventPayloads`): `defect`, `alert`, `kpi`, `anomaly`; nil for audit lines.
    public var eventType: String? {
        switch self {
        case .defect: "defect"
        case .alert: "alert"
        case .stationKPI, .lineKPI: "kpi"
        case .anomaly: "anomaly"
        case .andon: "andon"
        case .audit, .downtime: nil
        }
    }

    /// The event's `data` (or the audit line's JSON).
    public var payload: JSON {
        switch self {
        case let .defect(d, change): return d.eventJSON(change: change)
        case let .alert(a, change): return a.eventJSON(change: change)
        case let .stationKPI(k, shift, t):
            guard case .object(var m) = k.json else { return k.json }
            m.insert(("scope", .string("station")), at: 0)
            m.append(("shift", .string(shift)))
            m.append(("t", .string(Timestamp.format(t))))
            return .object(m)
        case let .lineKPI(k, shift, t):
            guard case .object(var m) = k.json else { return k.json }
            m.insert(("scope", .string("line")), at: 0)
            m.append(("shift", .string(shift)))
            m.append(("t", .string(Timestamp.format(t))))
            return .object(m)
        case let .anomaly(e): return e.json
        case let .audit(a): return a.json
        case let .andon(call, change): return call.eventJSON(change: change)
        case let .downtime(d): return d.json(now: d.end ?? d.start)
        }
    }
}

extension SequenceIssueInput {
    /// The tracker's issue as the engine's input.
    public init(_ issue: SequenceIssue) {
        let kind: SequenceIssueKind
        switch issue.kind {
        case .skipped: kind = .skipped
        case .repeated: kind = .repeated
        case .unknownVehicle: kind = .unknownVehicle
        case .duplicateId: kind = .duplicateId
        }
        self.init(kind: kind, vehicleId: issue.vehicleId, station: issue.station, process: issue.process,
                  skippedProcesses: issue.kind == .skipped ? issue.expected.map { [$0] } ?? [] : [],
                  otherStation: issue.kind == .duplicateId ? issue.expected : nil, time: issue.at, detail: issue.message)
    }
}

extension QualityInput {
    /// The quality input for a tracker output: completed operations and sequence issues; nil for the rest.
    public init?(_ output: TrackingOutput) {
        switch output {
        case .operationCompleted(let op): self = .operation(op)
        case .sequenceIssue(let issue): self = .sequenceIssue(SequenceIssueInput(issue))
        default: return nil
        }
    }
}
