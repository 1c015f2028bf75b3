import Foundation
import PlantModel
import Runtime

/// A break of the route rules (README "Quality"), found by the ``Tracker``.
///
/// Quality turns every issue into a `sequence` alert; a `skipped` one also into a defect.
public struct SequenceIssue: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The vehicle reached a process while an earlier tracked process of the route is not done.
        case skipped
        /// A second completed cycle of the vehicle at a station (or at a process behind one it
        /// completed): rework; raised when that cycle completes.
        case repeated
        /// The vehicle was first seen at a process after the first tracked one.
        case unknownVehicle = "unknown_vehicle"
        /// The same vehicle id is being worked (operations in progress) at two stations at once; a
        /// station still showing it after its cycle is not working it.
        case duplicateId = "duplicate_id"
    }

    public var kind: Kind
    public var vehicleId: String
    /// The station where the issue was seen (for `duplicateId`: the station the vehicle appeared at last).
    public var station: String
    public var process: String
    /// `skipped`: the first missing process; `repeated`: the process done already; `unknownVehicle`:
    /// the first tracked process of the route; `duplicateId`: the other station reporting the id.
    public var expected: String?
    public var at: Date
    public var message: String
    /// The operation the issue is about (the one that started, or for `repeated` completed), if any.
    public var operationId: String?

    public init(kind: Kind, vehicleId: String, station: String, process: String, expected: String?, at: Date,
                message: String, operationId: String? = nil) {
        self.kind = kind
        self.vehicleId = vehicleId
        self.station = station
        self.process = process
        self.expected = expected
        self.at = at
        self.message = message
        self.operationId = operationId
    }

    /// `{kind, vehicleId, station, process, expected, operationId, t, message}`.
    public var json: JSON {
        .obj([
            ("kind", .string(kind.rawValue)),
            ("vehicleId", .string(vehicleId)),
            ("station", .string(station)),
            ("process", .string(process)),
            ("expected", .str(expected)),
            ("operationId", .str(operationId)),
            ("t", .string(Timestamp.format(at))),
            ("message", .string(message)),
        ])
    }
}

/// Parts counted into a lot at a station without vehicles (stamping).
public struct LotCount: Sendable, Equatable {
    public var station: String
    public var lotId: String
    /// Parts made in this lot at this station so far.
    public var count: Int64
    /// Parts added by this change (0 when the lot just started).
    public var delta: Int64
    public var at: Date

    public init(station: String, lotId: String, count: Int64, delta: Int64, at: Date) {
        self.station = station
        self.lotId = lotId
        self.count = count
        self.delta = delta
        self.at = at
    }

    /// `{lotId, station, count, delta, t}`.
    public var json: JSON {
        .obj([
            ("lotId", .string(lotId)),
            ("station", .string(station)),
            ("count", .int(count)),
            ("delta", .int(delta)),
            ("t", .string(Timestamp.format(at))),
        ])
    }
}

/// What the ``Tracker`` reports: writes for the store and events for the stream.
public enum TrackingOutput: Sendable, Equatable {
    /// A vehicle began an operation at a station (`completedAt` nil).
    case operationStarted(OperationRecord)
    /// The operation ended on `cycleComplete` (or, at a station without that signal, when the vehicle left).
    case operationCompleted(OperationRecord)
    /// The vehicle left (or another replaced it) before the cycle completed; the operation stays incomplete.
    case operationAborted(OperationRecord)
    /// A vehicle was created, moved, finished its route or changed status.
    case vehicleChanged(VehicleSummary)
    case sequenceIssue(SequenceIssue)
    /// A stamping lot started or counted parts.
    case lotCounted(LotCount)

    /// The event type for the stream: `operation` (all three operation cases), `vehicle`,
    /// `sequence` or `lot`. The event stream (docs/openapi.json) publishes `operation` and `vehicle`; `sequence`
    /// issues reach clients as quality's alerts.
    public var eventType: String {
        switch self {
        case .operationStarted, .operationCompleted, .operationAborted: return "operation"
        case .vehicleChanged: return "vehicle"
        case .sequenceIssue: return "sequence"
        case .lotCounted: return "lot"
        }
    }

    /// The time the output happened (sample time).
    public var time: Date {
        switch self {
        case .operationStarted(let op): return op.startedAt
        case .operationCompleted(let op): return op.completedAt ?? op.startedAt
        case .operationAborted(let op): return op.completedAt ?? op.startedAt
        case .vehicleChanged(let v): return v.lastSeenAt
        case .sequenceIssue(let issue): return issue.at
        case .lotCounted(let count): return count.at
        }
    }

    /// The station concerned (the event's `station` column), if any; nil for vehicle changes.
    public var station: String? {
        switch self {
        case .operationStarted(let op), .operationCompleted(let op), .operationAborted(let op): return op.station
        case .vehicleChanged: return nil
        case .sequenceIssue(let issue): return issue.station
        case .lotCounted(let count): return count.station
        }
    }

    /// The vehicle concerned, if any.
    public var vehicleId: String? {
        switch self {
        case .operationStarted(let op), .operationCompleted(let op), .operationAborted(let op): return op.vehicleId
        case .vehicleChanged(let v): return v.vehicleId
        case .sequenceIssue(let issue): return issue.vehicleId
        case .lotCounted: return nil
        }
    }

    /// The event payload (one JSON object). Operations: the operation of docs/openapi.json plus `vehicleId` and
    /// `state` (`running`, `completed`, `aborted`); vehicles: the vehicle summary.
    public var json: JSON {
        switch self {
        case .operationStarted(let op): return Self.operationJSON(op, state: "running")
        case .operationCompleted(let op): return Self.operationJSON(op, state: "completed")
        case .operationAborted(let op): return Self.operationJSON(op, state: "aborted")
        case .vehicleChanged(let v): return v.json
        case .sequenceIssue(let issue): return issue.json
        case .lotCounted(let count): return count.json
        }
    }

    static func operationJSON(_ op: OperationRecord, state: String) -> JSON {
        guard case .object(var members) = op.json else { return op.json }
        members.append(("state", .string(state)))
        return .object(members)
    }
}

/// Why a hold, release or scrap was refused (the API maps each case to an HTTP status).
public enum VehicleCommandError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No such vehicle.
    case notFound(vehicleId: String)
    /// The vehicle's status does not allow it.
    case conflict(vehicleId: String, message: String)
    /// The quality gate refuses a release while the vehicle has open defects (README "Key parts,
    /// recall and the quality gate").
    case gateBlocked(vehicleId: String, message: String)

    public var message: String {
        switch self {
        case .notFound(let id): return "vehicle \(id) not found"
        case .conflict(_, let message), .gateBlocked(_, let message): return message
        }
    }

    public var description: String { message }
}
