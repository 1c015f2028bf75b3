import Foundation
import PlantModel
import Runtime

/// Where an andon call is (docs/openapi.json `AndonCall.state`).
public enum AndonState: String, Sendable, Equatable, CaseIterable {
    /// Called, nobody has answered yet.
    case open
    /// Somebody answered (acknowledged the call or its alert): the response.
    case acknowledged
    /// The signal went back to 0 or the call was closed through the API.
    case closed
}

/// How an andon call was made.
public enum AndonSource: String, Sendable, Equatable, CaseIterable {
    /// The station's `andon` signal (a pull cord or button on the PLC).
    case signal
    /// `POST /api/andon`.
    case api
}

/// What happened to an andon call (the `change` of an `andon` event).
public enum AndonChange: String, Sendable, Equatable, CaseIterable {
    case opened, acknowledged, closed
}

/// An andon call (docs/openapi.json `AndonCall`): a station asks for help of a kind; its `andon`
/// alert goes to the station's owner; an acknowledgement is the response; closing ends it.
public struct AndonCall: Sendable, Equatable {
    public var id: Int64
    public var station: String
    public var kind: String
    public var source: AndonSource
    public var state: AndonState
    public var openedAt: Date
    /// Who called: the user of an API call, nil for a signal.
    public var openedBy: String?
    public var comment: String?
    public var acknowledgedAt: Date?
    public var acknowledgedBy: String?
    public var closedAt: Date?
    public var closedBy: String?
    /// The `andon` alert the call raised.
    public var alertId: Int64?
    /// The raw code of the signal that opened it (signal calls), so a restart does not open it again.
    public var signalCode: Int64?

    public init(id: Int64, station: String, kind: String, source: AndonSource, openedAt: Date, openedBy: String? = nil,
                comment: String? = nil, signalCode: Int64? = nil) {
        self.id = id
        self.station = station
        self.kind = kind
        self.source = source
        self.state = .open
        self.openedAt = openedAt
        self.openedBy = openedBy
        self.comment = comment
        self.signalCode = signalCode
    }

    /// Seconds from the call to its acknowledgement (nil until acknowledged).
    public var responseS: Double? {
        acknowledgedAt.map { ((($0.timeIntervalSince(openedAt)) * 1000).rounded() / 1000) }
    }

    /// Seconds the call was (or is, at `now`) not closed.
    public func elapsedS(now: Date) -> Double {
        max(0, ((closedAt ?? now).timeIntervalSince(openedAt) * 1000).rounded() / 1000)
    }

    public var json: JSON {
        .obj([
            ("id", .int(id)),
            ("station", .string(station)),
            ("kind", .string(kind)),
            ("source", .string(source.rawValue)),
            ("state", .string(state.rawValue)),
            ("openedAt", .string(Timestamp.format(openedAt))),
            ("openedBy", .str(openedBy)),
            ("comment", .str(comment)),
            ("acknowledgedAt", .str(acknowledgedAt.map(Timestamp.format))),
            ("acknowledgedBy", .str(acknowledgedBy)),
            ("closedAt", .str(closedAt.map(Timestamp.format))),
            ("closedBy", .str(closedBy)),
            ("responseS", .number(responseS)),
            ("alertId", alertId.map { .int($0) } ?? .null),
        ])
    }

    /// The `andon` event payload: the call plus `change`.
    public func eventJSON(change: AndonChange) -> JSON {
        guard case .object(var members) = json else { return json }
        members.append(("change", .string(change.rawValue)))
        return .object(members)
    }

    /// When a change happened (the event's time).
    public func time(of change: AndonChange) -> Date {
        switch change {
        case .opened: openedAt
        case .acknowledged: acknowledgedAt ?? openedAt
        case .closed: closedAt ?? openedAt
        }
    }
}

/// The open andon calls of the line. Part of ``QualityEngine``; time comes from its inputs only.
struct AndonBook: Sendable {
    /// Calls not closed, by id.
    private(set) var calls: [Int64: AndonCall] = [:]
    private var byAlert: [Int64: Int64] = [:]
    private var closed: Set<Int64> = []
    private var nextId: Int64 = 1
    /// The last andon signal code seen per station (nil: none seen since start).
    private var signalCodes: [String: Int64] = [:]

    /// The open signal call of a station, if any.
    func signalCall(station: String) -> AndonCall? {
        calls.values.first { $0.station == station && $0.source == .signal }
    }

    /// Whether the code differs from the last one seen at the station; remembers it.
    mutating func signalChanged(station: String, code: Int64) -> Bool {
        let last = signalCodes[station]
        signalCodes[station] = code
        return last != code && !(last == nil && code == 0)
    }

    /// A new call (not yet stored; ``store(_:)`` does that once its alert is known).
    mutating func make(station: String, kind: String, source: AndonSource, at t: Date, by user: String?, comment: String?,
                       signalCode: Int64?) -> AndonCall {
        defer { nextId += 1 }
        return AndonCall(id: nextId, station: station, kind: kind, source: source, openedAt: t, openedBy: user,
                         comment: comment, signalCode: signalCode)
    }

    mutating func store(_ call: AndonCall) {
        if call.state == .closed {
            calls[call.id] = nil
            closed.insert(call.id)
            if let alert = call.alertId { byAlert[alert] = nil }
        } else {
            calls[call.id] = call
            if let alert = call.alertId { byAlert[alert] = call.id }
        }
    }

    /// The open call an alert belongs to.
    func call(alertId: Int64) -> AndonCall? { byAlert[alertId].flatMap { calls[$0] } }

    /// An open call by id; `.notFound` or `.conflict` (closed) otherwise.
    func openCall(_ id: Int64) throws(QualityActionError) -> AndonCall {
        if let call = calls[id] { return call }
        if closed.contains(id) { throw .conflict("andon call \(id) is closed") }
        throw .notFound("no andon call \(id)")
    }

    /// Continues after a restart with the calls not closed and the next id.
    mutating func restore(_ open: [AndonCall], nextId: Int64) {
        for call in open where call.state != .closed {
            store(call)
            if call.source == .signal, let code = call.signalCode { signalCodes[call.station] = code }
        }
        let maxId = open.map(\.id).max() ?? 0
        self.nextId = max(self.nextId, nextId, maxId + 1)
        for id in max(1, self.nextId - 100_000)..<self.nextId where calls[id] == nil { closed.insert(id) }
    }

    /// Calls not closed, oldest first.
    var openCalls: [AndonCall] { calls.values.sorted { $0.id < $1.id } }
}

/// Response figures of a shift (`response` and `andon` of `GET /api/kpis`): sums and counts, so
/// a restart inside the shift goes on from them (saved with ``ShiftCounters``).
public struct ResponseCounters: Sendable, Equatable, Codable {
    /// Alerts acknowledged this shift and the sum of their times from raise to acknowledgement.
    public var acknowledged = 0
    public var ackSecondsSum = 0.0
    /// Defects resolved this shift and the sum of their times from raise to resolution.
    public var resolved = 0
    public var resolveSecondsSum = 0.0
    /// Andon calls opened this shift.
    public var andonCalls = 0
    /// Andon calls acknowledged this shift and the sum of their response times.
    public var andonResponses = 0
    public var andonResponseSecondsSum = 0.0

    public init() {}
}

/// `response` and `andon` of `GET /api/kpis`.
public struct ResponseKPIs: Sendable, Equatable {
    /// Mean seconds from raise to acknowledgement of the alerts acknowledged this shift.
    public var meanAckS: Double?
    /// Mean seconds from raise to resolution of the defects resolved this shift.
    public var meanResolveS: Double?
    /// Unacknowledged alerts and open defects past their due time now.
    public var overdueNow: Int
    /// Andon calls opened this shift.
    public var andonCalls: Int
    /// Mean seconds from call to acknowledgement of the calls acknowledged this shift.
    public var andonMeanResponseS: Double?
    /// Calls not closed now (open or acknowledged).
    public var andonOpenNow: Int

    /// Nothing acknowledged, resolved or called yet.
    public static let none = ResponseKPIs(meanAckS: nil, meanResolveS: nil, overdueNow: 0, andonCalls: 0, andonMeanResponseS: nil, andonOpenNow: 0)

    public var responseJSON: JSON {
        .obj([("meanAckS", .number(meanAckS)), ("meanResolveS", .number(meanResolveS)), ("overdueNow", .int(Int64(overdueNow)))])
    }

    public var andonJSON: JSON {
        .obj([("calls", .int(Int64(andonCalls))), ("meanResponseS", .number(andonMeanResponseS)), ("openNow", .int(Int64(andonOpenNow)))])
    }
}

extension ResponseKPIs {
    /// The means of a shift's counters, with what is overdue and open now.
    init(counters c: ResponseCounters, overdueNow: Int, andonOpenNow: Int) {
        func mean(_ sum: Double, _ n: Int) -> Double? { n > 0 ? round6(sum / Double(n)) : nil }
        self.init(meanAckS: mean(c.ackSecondsSum, c.acknowledged), meanResolveS: mean(c.resolveSecondsSum, c.resolved),
                  overdueNow: overdueNow, andonCalls: c.andonCalls, andonMeanResponseS: mean(c.andonResponseSecondsSum, c.andonResponses),
                  andonOpenNow: andonOpenNow)
    }
}
