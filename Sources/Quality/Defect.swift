import Foundation
import Runtime

/// Whether a defect still needs work.
public enum DefectStatus: String, Sendable, Equatable, CaseIterable {
    case open, resolved
}

/// What happened to a defect (the `change` of a `defect` event).
public enum DefectChange: String, Sendable, Equatable {
    case raised, resolved
    /// A new owner or due time (`POST /api/defects/{id}/assign`).
    case assigned
    /// Past its `dueAt` and still open.
    case overdue
    /// Overdue, and the next person of its `escalation` list was told (`escalatedTo`).
    case escalated
}

/// A defect on a vehicle (docs/openapi.json `Defect`). Defects never change a vehicle's status.
public struct Defect: Sendable, Equatable {
    public var id: Int64
    /// Owner, due time and escalation (docs/CONFIG.md `responsibility`); nil without rules.
    public var assignment: Assignment?
    public var vehicleId: String
    public var station: String?
    /// The operation the defect came from (automatic ones), if any.
    public var operation: String?
    /// `NOK`, `OUT_OF_SPEC:<signal>`, `SKIPPED:<process>`, or the code a person gave.
    public var code: String
    public var description: String
    public var severity: Severity
    public var status: DefectStatus
    public var raisedAt: Date
    /// `system` for automatic defects.
    public var raisedBy: String
    public var resolvedAt: Date?
    public var resolvedBy: String?
    public var comment: String?

    public init(id: Int64, vehicleId: String, station: String?, operation: String?, code: String, description: String,
                severity: Severity, raisedAt: Date, raisedBy: String) {
        self.id = id
        self.vehicleId = vehicleId
        self.station = station
        self.operation = operation
        self.code = code
        self.description = description
        self.severity = severity
        self.status = .open
        self.raisedAt = raisedAt
        self.raisedBy = raisedBy
    }

    /// Its JSON (docs/openapi.json `Defect`).
    public var json: JSON {
        .obj([
            ("id", .int(id)),
            ("vehicleId", .string(vehicleId)),
            ("station", .str(station)),
            ("operation", .str(operation)),
            ("code", .string(code)),
            ("description", .string(description)),
            ("severity", .string(severity.rawValue)),
            ("status", .string(status.rawValue)),
            ("raisedAt", .string(Timestamp.format(raisedAt))),
            ("raisedBy", .string(raisedBy)),
            ("resolvedAt", .str(resolvedAt.map(Timestamp.format))),
            ("resolvedBy", .str(resolvedBy)),
            ("comment", .str(comment)),
        ] + (assignment?.members ?? []).map { ($0.0, Optional($0.1)) })
    }

    /// The `defect` event payload: the defect plus `change`.
    public func eventJSON(change: DefectChange) -> JSON {
        guard case .object(var members) = json else { return json }
        members.append(("change", .string(change.rawValue)))
        return .object(members)
    }
}
