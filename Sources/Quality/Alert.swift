import Foundation
import Runtime

/// Kind of an alert (docs/openapi.json `Alert.type`).
public enum AlertType: String, Sendable, Equatable, CaseIterable {
    case kpi, anomaly, quality, connection, sequence
    /// An andon call (README "Andon and downtime"): acknowledging it is the call's response.
    case andon
    /// Key parts: a duplicate serial or a wrong part number.
    case part
    /// Equipment health below `alerts.maintenance.below` (README "Energy and equipment health").
    case maintenance
}

/// ISA-18.2 alert states (docs/openapi.json `Alert.state`).
public enum AlertState: String, Sendable, Equatable, CaseIterable {
    case activeUnacknowledged = "active_unacknowledged"
    case activeAcknowledged = "active_acknowledged"
    case clearedUnacknowledged = "cleared_unacknowledged"
    case cleared
    case shelved
}

/// What happened to an alert (the `change` of an `alert` event).
public enum AlertChange: String, Sendable, Equatable, CaseIterable {
    case raised, acknowledged, shelved, unshelved, cleared, escalated
    /// A new owner or due time (`POST /api/alerts/{id}/assign`).
    case assigned
    /// Past its `dueAt` and still unacknowledged.
    case overdue
}

/// The `state` filter of `GET /api/alerts` (docs/openapi.json).
public enum AlertStateFilter: String, Sendable, Equatable, CaseIterable {
    /// Every alert not `cleared` (the default).
    case open
    /// Condition present: `active_unacknowledged`, `active_acknowledged`.
    case active
    /// `active_unacknowledged`, `cleared_unacknowledged`.
    case unacknowledged
    case shelved
    case all

    /// Parses the query value; nil or empty gives `.open`; unknown text gives nil.
    public init?(query: String?) {
        guard let query, !query.isEmpty else { self = .open; return }
        self.init(rawValue: query)
    }

    /// The states this filter selects.
    public var states: [AlertState] {
        switch self {
        case .open: [.activeUnacknowledged, .activeAcknowledged, .clearedUnacknowledged, .shelved]
        case .active: [.activeUnacknowledged, .activeAcknowledged]
        case .unacknowledged: [.activeUnacknowledged, .clearedUnacknowledged]
        case .shelved: [.shelved]
        case .all: AlertState.allCases
        }
    }
}

/// An alert (docs/openapi.json `Alert`) with its lifecycle bookkeeping.
public struct Alert: Sendable, Equatable {
    public var id: Int64
    /// Owner, due time and escalation (docs/CONFIG.md `responsibility`); nil without rules.
    public var assignment: Assignment?
    /// Stable per condition (`kpi:oee:WELD-01`), so a repeat is recognised.
    public var key: String
    public var type: AlertType
    public var severity: Severity
    public var state: AlertState
    public var station: String?
    public var signal: String?
    public var vehicleId: String?
    public var message: String
    public var raisedAt: Date
    public var acknowledgedAt: Date?
    public var acknowledgedBy: String?
    public var comment: String?
    public var clearedAt: Date?
    public var shelvedUntil: Date?
    public var escalationLevel: Int
    /// Whether the condition is present now (kept while shelved).
    public var conditionActive: Bool
    /// Whether the alert has no lasting condition (sequence events): it clears when acknowledged.
    public var momentary: Bool
    /// Last announcement (raise or escalation), for escalation timing.
    public var announcedAt: Date
    /// Whether the alert was acknowledged before it was shelved.
    public var acknowledgedBeforeShelve: Bool

    public init(id: Int64, key: String, type: AlertType, severity: Severity, station: String?, signal: String? = nil,
                vehicleId: String? = nil, message: String, raisedAt: Date, momentary: Bool = false) {
        self.id = id
        self.key = key
        self.type = type
        self.severity = severity
        self.state = .activeUnacknowledged
        self.station = station
        self.signal = signal
        self.vehicleId = vehicleId
        self.message = message
        self.raisedAt = raisedAt
        self.escalationLevel = 0
        self.conditionActive = true
        self.momentary = momentary
        self.announcedAt = raisedAt
        self.acknowledgedBeforeShelve = false
    }

    /// Whether the alert still needs attention (anything but `cleared`).
    public var isOpen: Bool { state != .cleared }

    /// Whether nobody has acknowledged the current occurrence.
    public var isUnacknowledged: Bool { state == .activeUnacknowledged || state == .clearedUnacknowledged }

    /// Its JSON (docs/openapi.json `Alert`).
    public var json: JSON {
        .obj([
            ("id", .int(id)),
            ("key", .string(key)),
            ("type", .string(type.rawValue)),
            ("severity", .string(severity.rawValue)),
            ("state", .string(state.rawValue)),
            ("station", .str(station)),
            ("signal", .str(signal)),
            ("vehicleId", .str(vehicleId)),
            ("message", .string(message)),
            ("raisedAt", .string(Timestamp.format(raisedAt))),
            ("acknowledgedAt", .str(acknowledgedAt.map(Timestamp.format))),
            ("acknowledgedBy", .str(acknowledgedBy)),
            ("comment", .str(comment)),
            ("clearedAt", .str(clearedAt.map(Timestamp.format))),
            ("shelvedUntil", .str(shelvedUntil.map(Timestamp.format))),
            ("escalationLevel", .int(Int64(escalationLevel))),
        ] + (assignment?.members ?? []).map { ($0.0, Optional($0.1)) })
    }

    /// The `alert` event payload: the alert plus `change`.
    public func eventJSON(change: AlertChange) -> JSON {
        guard case .object(var members) = json else { return json }
        members.append(("change", .string(change.rawValue)))
        return .object(members)
    }
}

/// Why a user action on an alert or defect was refused (the API maps each case to an HTTP status).
public enum QualityActionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No such alert or defect.
    case notFound(String)
    /// The action does not fit the current state, e.g. a second acknowledgement.
    case conflict(String)
    /// Bad arguments.
    case invalid(String)

    public var description: String {
        switch self {
        case .notFound(let m), .conflict(let m), .invalid(let m): m
        }
    }
}

/// The ISA-18.2 lifecycle as a pure state machine: each method takes the alert, an input and a
/// time, changes the alert and returns the announced change (nil: nothing to announce).
public enum AlertLifecycle {
    /// The condition is present again (or still). A cleared-unacknowledged alert becomes active again;
    /// a shelved one only records it.
    public static func conditionPresent(_ alert: inout Alert, at time: Date) -> AlertChange? {
        let wasActive = alert.conditionActive
        alert.conditionActive = true
        switch alert.state {
        case .activeUnacknowledged, .activeAcknowledged, .shelved:
            return nil
        case .clearedUnacknowledged:
            alert.state = .activeUnacknowledged
            alert.clearedAt = nil
            alert.announcedAt = time
            return wasActive ? nil : .raised
        case .cleared:
            return nil // a cleared alert is closed: the engine opens a new one
        }
    }

    /// The condition returned to normal.
    public static func conditionCleared(_ alert: inout Alert, at time: Date) -> AlertChange? {
        guard alert.conditionActive else { return nil }
        alert.conditionActive = false
        switch alert.state {
        case .activeUnacknowledged:
            alert.state = .clearedUnacknowledged
            alert.clearedAt = time
            return .cleared
        case .activeAcknowledged:
            alert.state = .cleared
            alert.clearedAt = time
            return .cleared
        case .shelved, .clearedUnacknowledged, .cleared:
            return nil
        }
    }

    /// An operator acknowledges. A second acknowledgement is a conflict.
    public static func acknowledge(_ alert: inout Alert, user: String, comment: String?, at time: Date) throws(QualityActionError) -> AlertChange {
        switch alert.state {
        case .activeUnacknowledged:
            alert.state = alert.momentary ? .cleared : .activeAcknowledged
            if alert.momentary {
                alert.conditionActive = false
                alert.clearedAt = time
            }
        case .clearedUnacknowledged:
            alert.state = .cleared
        case .activeAcknowledged, .cleared:
            throw .conflict("alert \(alert.id) is already acknowledged")
        case .shelved:
            throw .conflict("alert \(alert.id) is shelved")
        }
        alert.acknowledgedAt = time
        alert.acknowledgedBy = user
        if let comment, !comment.isEmpty { alert.comment = comment }
        return .acknowledged
    }

    /// An operator shelves the alert until `until`.
    public static func shelve(_ alert: inout Alert, until: Date, reason: String?, at time: Date) throws(QualityActionError) -> AlertChange {
        guard alert.state != .cleared else { throw .conflict("alert \(alert.id) is cleared") }
        guard until > time else { throw .invalid("minutes must be more than 0") }
        if alert.state != .shelved {
            alert.acknowledgedBeforeShelve = alert.state == .activeAcknowledged
        }
        alert.state = .shelved
        alert.shelvedUntil = until
        if let reason, !reason.isEmpty { alert.comment = reason }
        return .shelved
    }

    /// Times are compared at millisecond resolution (what the store keeps).
    static let tolerance: TimeInterval = 0.0005

    /// Time passes: unshelve at expiry, escalate an unacknowledged alert after `escalateAfter` seconds.
    public static func tick(_ alert: inout Alert, at time: Date, escalateAfter: TimeInterval) -> AlertChange? {
        if alert.state == .shelved, let until = alert.shelvedUntil, time.timeIntervalSince(until) > -tolerance {
            alert.shelvedUntil = nil
            if alert.conditionActive {
                if alert.acknowledgedBeforeShelve && !alert.momentary {
                    alert.state = .activeAcknowledged
                } else {
                    alert.state = .activeUnacknowledged
                    alert.announcedAt = time
                }
            } else {
                alert.state = .cleared
                alert.clearedAt = alert.clearedAt ?? time
            }
            return .unshelved
        }
        if alert.isUnacknowledged, time.timeIntervalSince(alert.announcedAt) > escalateAfter - tolerance {
            alert.escalationLevel += 1
            alert.announcedAt = time
            return .escalated
        }
        return nil
    }
}
