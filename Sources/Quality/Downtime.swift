import Foundation
import PlantModel
import Runtime

/// One continuous stretch of a station in a stop state (docs/openapi.json `Downtime`): `fault`,
/// `blocked`, `starved`, `setup` or `maintenance`, with the reason from the catalogue.
public struct DowntimeStretch: Sendable, Equatable {
    public var id: Int64
    public var station: String
    public var state: MachineState
    /// The fault code the station reported (nil while it reported 0).
    public var faultCode: String?
    public var start: Date
    /// Nil while the stretch goes on.
    public var end: Date?
    public var reason: DowntimeReason?
    /// `system` when filled from the fault code, else the user who set it.
    public var reasonBy: String?
    public var comment: String?

    public init(id: Int64, station: String, state: MachineState, faultCode: String?, start: Date) {
        self.id = id
        self.station = station
        self.state = state
        self.faultCode = faultCode
        self.start = start
    }

    /// The machine states a stretch is made of.
    public static let states: Set<MachineState> = [.fault, .blocked, .starved, .setup, .maintenance]

    /// Seconds of the stretch up to `now` (its end once ended).
    public func durationS(now: Date) -> Double {
        max(0, ((end ?? max(now, start)).timeIntervalSince(start) * 1000).rounded() / 1000)
    }

    /// Seconds of the stretch inside `[from, to)`.
    func seconds(from: Date, to: Date) -> Double {
        let a = max(start, from), b = min(end ?? to, to)
        return b > a ? b.timeIntervalSince(a) : 0
    }

    /// The catalogue entry for a stretch: its fault code's, else its state's, else none.
    static func reason(state: MachineState, faultCode: String?, in catalogue: [DowntimeReason]) -> DowntimeReason? {
        if let faultCode, let entry = catalogue.first(where: { $0.code == faultCode }) { return entry }
        return catalogue.first { $0.code == state.rawValue }
    }

    /// `{id, station, state, faultCode, start, end, durationS, reason, reasonBy, comment}` at `now`.
    public func json(now: Date) -> JSON {
        .obj([
            ("id", .int(id)),
            ("station", .string(station)),
            ("state", .string(state.rawValue)),
            ("faultCode", .str(faultCode)),
            ("start", .string(Timestamp.format(start))),
            ("end", .str(end.map(Timestamp.format))),
            ("durationS", .double(durationS(now: now))),
            ("reason", reason?.json ?? .null),
            ("reasonBy", .str(reasonBy)),
            ("comment", .str(comment)),
        ])
    }
}

extension MachineState {
    /// Whether the state is a stop that makes a downtime stretch: `fault`, `blocked`, `starved`,
    /// `setup`, `maintenance` (``DowntimeStretch/states``).
    public var isDowntime: Bool {
        switch self {
        case .fault, .blocked, .starved, .setup, .maintenance: true
        case .running, .idle: false
        }
    }
}

/// Downtime seconds of a station (or the line) in the current shift, by reason code and category
/// (`unassigned` for stretches without a reason).
public struct DowntimeSplit: Sendable, Equatable {
    public var byReason: [String: Double] = [:]
    public var byCategory: [String: Double] = [:]

    public init() {}

    /// Key of stretches without a reason.
    public static let unassigned = "unassigned"

    mutating func add(_ reason: DowntimeReason?, seconds: Double) {
        guard seconds > 0 else { return }
        byReason[reason?.code ?? Self.unassigned, default: 0] += seconds
        byCategory[reason?.category ?? Self.unassigned, default: 0] += seconds
    }

    public var reasonJSON: JSON { .object(byReason.sorted { $0.key < $1.key }.map { ($0.key, .double(round6($0.value))) }) }
    public var categoryJSON: JSON { .object(byCategory.sorted { $0.key < $1.key }.map { ($0.key, .double(round6($0.value))) }) }
}

/// The downtime figures of the current shift: per station (config order) and the line.
public struct DowntimeKPIs: Sendable, Equatable {
    public var stations: [String: DowntimeSplit]
    public var line: DowntimeSplit
}

/// Downtime stretches per station. Part of ``QualityEngine``: it sees every station's state and
/// fault code as the engine computes them, and keeps the stretches of the last days in memory (the
/// current shift's figures, reason changes); older ones are in the store only.
struct DowntimeBook: Sendable {
    let catalogue: [DowntimeReason]
    /// How long ended stretches stay in memory.
    static let keep: TimeInterval = 2 * 86_400

    private var stretches: [Int64: DowntimeStretch] = [:]
    private var openByStation: [String: Int64] = [:]
    private var nextId: Int64 = 1

    init(catalogue: [DowntimeReason]) {
        self.catalogue = catalogue
    }

    /// A station's state and fault code at `t` (state nil: offline or unknown). Opens, ends or
    /// updates the station's stretch; returns the stretches that changed.
    mutating func observe(station: String, state: MachineState?, faultCode: String, at t: Date, into out: inout [QualityOutput]) {
        let code: String? = faultCode == "0" || faultCode.isEmpty ? nil : faultCode
        let down = state?.isDowntime ?? false
        if let id = openByStation[station], var open = stretches[id] {
            let sameFault = open.state != .fault || code == nil || open.faultCode == nil || open.faultCode == code
            if down, state == open.state, sameFault {
                // The fault code may arrive a poll after the state: take it and its reason.
                if open.faultCode == nil, let code {
                    open.faultCode = code
                    if open.reasonBy == nil || open.reasonBy == "system" {
                        open.reason = DowntimeStretch.reason(state: open.state, faultCode: code, in: catalogue)
                        open.reasonBy = open.reason == nil ? nil : "system"
                    }
                    stretches[id] = open
                    out.append(.downtime(open))
                }
                return
            }
            open.end = max(t, open.start)
            stretches[id] = open
            openByStation[station] = nil
            out.append(.downtime(open))
        }
        guard down, let state else { return }
        var stretch = DowntimeStretch(id: nextId, station: station, state: state, faultCode: code, start: t)
        nextId += 1
        stretch.reason = DowntimeStretch.reason(state: state, faultCode: code, in: catalogue)
        stretch.reasonBy = stretch.reason == nil ? nil : "system"
        stretches[stretch.id] = stretch
        openByStation[station] = stretch.id
        out.append(.downtime(stretch))
    }

    /// Whether a station has a stretch going on (cheap: the hot path asks on every poll).
    func isOpen(station: String) -> Bool { openByStation[station] != nil }

    /// Sets or corrects a stretch's reason. `stored` is the stretch from the store when it is no
    /// longer in memory. `.notFound` for an unknown stretch, `.invalid` for a code not in the catalogue.
    mutating func setReason(id: Int64, code: String, comment: String?, stored: DowntimeStretch?, by user: Principal,
                            at t: Date) throws(QualityActionError) -> [QualityOutput] {
        guard var stretch = stretches[id] ?? stored else { throw .notFound("no downtime \(id)") }
        guard let reason = catalogue.first(where: { $0.code == code }) else {
            throw .invalid("\(JSON.string(code).serialized()) is not in the downtime reason catalogue (\(catalogue.map(\.code).joined(separator: ", ")))")
        }
        stretch.reason = reason
        stretch.reasonBy = user.user
        if let comment { stretch.comment = comment.isEmpty ? nil : comment }
        if stretches[id] != nil { stretches[id] = stretch }
        return [.downtime(stretch),
                .audit(AuditEntry(t: t, by: user, action: "downtime.reason", target: "downtime:\(id)",
                                  detail: "\(stretch.station) \(stretch.state.rawValue) → \(code)" + (comment.map { ": \($0)" } ?? "")))]
    }

    /// A stretch in memory.
    func stretch(id: Int64) -> DowntimeStretch? { stretches[id] }

    /// Drops ended stretches that ended before `cutoff`.
    mutating func prune(before cutoff: Date) {
        stretches = stretches.filter { $0.value.end.map { $0 >= cutoff } ?? true }
    }

    /// Seconds by reason and category per station and for the line inside `[from, to)`.
    func figures(stations: [String], from: Date, to: Date) -> DowntimeKPIs {
        var byStation: [String: DowntimeSplit] = [:]
        for id in stations { byStation[id] = DowntimeSplit() }
        var line = DowntimeSplit()
        for stretch in stretches.values {
            let seconds = stretch.seconds(from: from, to: to)
            guard seconds > 0 else { continue }
            byStation[stretch.station, default: DowntimeSplit()].add(stretch.reason, seconds: seconds)
            line.add(stretch.reason, seconds: seconds)
        }
        return DowntimeKPIs(stations: byStation, line: line)
    }

    /// Continues after a restart: recent stretches (open ones go on) and the next id.
    mutating func restore(_ recent: [DowntimeStretch], nextId: Int64) {
        for stretch in recent {
            stretches[stretch.id] = stretch
            if stretch.end == nil { openByStation[stretch.station] = stretch.id }
        }
        self.nextId = max(self.nextId, nextId, (recent.map(\.id).max() ?? 0) + 1)
    }
}
