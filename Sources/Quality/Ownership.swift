import Foundation
import PlantModel
import Runtime

/// Who owns an alert or a defect, by when, and who comes next (docs/CONFIG.md `responsibility`, `due`).
public struct Assignment: Sendable, Equatable {
    /// The owner, nil when no `responsibility` rule matched.
    public var owner: String?
    /// When an alert should be acknowledged or a defect resolved (`due` minutes by severity), if set.
    public var dueAt: Date?
    /// Who is told next when the item is overdue.
    public var escalation: [String]
    /// Past `dueAt` while still unacknowledged (alert) or open (defect); set once, by the engine's clock.
    public var overdue: Bool
    /// The people of `escalation` told so far, in order (one more every `alerts.escalateAfterMin` once overdue).
    public var escalatedTo: [String] = []
    /// When the item became overdue or was last escalated.
    public var escalatedAt: Date?

    public init(owner: String?, dueAt: Date?, escalation: [String], overdue: Bool = false) {
        self.owner = owner
        self.dueAt = dueAt
        self.escalation = escalation
        self.overdue = overdue
    }

    /// Marks the item overdue at `t`.
    mutating func markOverdue(at t: Date) {
        overdue = true
        escalatedAt = t
    }

    /// The next person of `escalation` once `interval` has passed since the last step (overdue items
    /// only); records them as told at `t`.
    mutating func escalate(at t: Date, after interval: TimeInterval) -> String? {
        guard overdue, escalatedTo.count < escalation.count, let since = escalatedAt,
              t.timeIntervalSince(since) >= interval else { return nil }
        let next = escalation[escalatedTo.count]
        escalatedTo.append(next)
        escalatedAt = t
        return next
    }

    /// True once `dueAt` has passed at `t` and the item was not marked yet.
    func becomesOverdue(at t: Date) -> Bool {
        guard !overdue, let dueAt else { return false }
        return dueAt <= t
    }

    /// `current` with `owner` and, when given, `dueAt` (the escalation list stays).
    static func reassigned(_ current: Assignment?, owner: String, dueAt: Date?) -> Assignment {
        var assignment = current ?? Assignment(owner: nil, dueAt: nil, escalation: [])
        assignment.owner = owner
        if let dueAt { assignment.dueAt = dueAt }
        return assignment
    }

    static func auditDetail(owner: String, dueAt: Date?) -> String {
        "owner \(owner)" + (dueAt.map { ", due \(Timestamp.format($0))" } ?? "")
    }

    /// Stored form (a JSON text in the `assignment` column of `alerts` and `defects`).
    public var stored: String { JSON.object(members + [("escalatedAt", .str(escalatedAt.map(Timestamp.format)))]).serialized() }

    /// Reads the stored form back; nil for NULL or damaged text.
    public init?(stored: String?) {
        guard let stored, let json = try? JSON.parse(stored), case .object = json else { return nil }
        owner = json["owner"]?.stringValue
        dueAt = json["dueAt"]?.stringValue.flatMap(Timestamp.parse)
        escalation = json["escalation"]?.arrayValue?.compactMap(\.stringValue) ?? []
        overdue = json["overdue"]?.boolValue ?? false
        escalatedTo = json["escalatedTo"]?.arrayValue?.compactMap(\.stringValue) ?? []
        escalatedAt = json["escalatedAt"]?.stringValue.flatMap(Timestamp.parse)
    }

    /// The members added to an alert's or defect's JSON.
    var members: [(String, JSON)] {
        [("owner", .str(owner)), ("dueAt", .str(dueAt.map(Timestamp.format))), ("escalation", .array(escalation.map { .string($0) })),
         ("overdue", .bool(overdue)), ("escalatedTo", .array(escalatedTo.map { .string($0) }))]
    }
}

/// Assigns new alerts and defects from the config's `responsibility` rules and `due` minutes.
///
/// Off (every item's assignment nil, JSON unchanged) when the config has no `responsibility` rule.
public struct Ownership: Sendable {
    let people: PeopleConfig
    let processByStation: [String: String]

    public init(config: PlantConfig) {
        people = config.people
        var processes: [String: String] = [:]
        for station in config.stations { processes[station.id] = station.process }
        processByStation = processes
    }

    public var isActive: Bool { !people.responsibility.isEmpty }

    /// The assignment of an item of `type` (an alert type or `defect`) raised at `t`; nil when off.
    public func assign(type: String, station: String?, severity: Severity, at t: Date) -> Assignment? {
        guard isActive else { return nil }
        let process = station.flatMap { processByStation[$0] }
        guard let rule = people.rule(station: station, process: process, type: type, severity: severity.rawValue) else {
            return Assignment(owner: nil, dueAt: nil, escalation: [])
        }
        let due = people.dueMinutes[severity.rawValue].map { t.addingTimeInterval(Double($0) * 60) }
        return Assignment(owner: rule.owner, dueAt: due, escalation: rule.escalation)
    }
}
