import Foundation
import PlantModel
import Runtime

/// One key part bound to one vehicle (README "Key parts, recall and the quality gate").
///
/// A binding is never deleted: a replacement sets `removedAt`, `removedBy` and `reason` on the old
/// one, so a serial's whole history stays readable.
public struct PartBinding: Sendable, Equatable {
    /// Stable id, in binding order (the store's row id).
    public var id: Int64
    public var partType: String
    public var serial: String
    public var partNumber: String?
    public var vehicleId: String
    /// The station that fitted or scanned the part, if known.
    public var station: String?
    public var boundAt: Date
    /// `plc`, or the user who bound it through the API.
    public var boundBy: String
    public var removedAt: Date?
    public var removedBy: String?
    /// Why it was removed.
    public var reason: String?

    public init(id: Int64, partType: String, serial: String, partNumber: String?, vehicleId: String, station: String?,
                boundAt: Date, boundBy: String, removedAt: Date? = nil, removedBy: String? = nil, reason: String? = nil) {
        self.id = id
        self.partType = partType
        self.serial = serial
        self.partNumber = partNumber
        self.vehicleId = vehicleId
        self.station = station
        self.boundAt = boundAt
        self.boundBy = boundBy
        self.removedAt = removedAt
        self.removedBy = removedBy
        self.reason = reason
    }

    /// Whether the part is still in the vehicle.
    public var isCurrent: Bool { removedAt == nil }

    /// `{partType, serial, partNumber, vehicleId, station, boundAt, boundBy, removedAt, removedBy, reason}`.
    public var json: JSON {
        .obj([
            ("partType", .string(partType)),
            ("serial", .string(serial)),
            ("partNumber", .str(partNumber)),
            ("vehicleId", .string(vehicleId)),
            ("station", .str(station)),
            ("boundAt", .string(Timestamp.format(boundAt))),
            ("boundBy", .string(boundBy)),
            ("removedAt", removedAt.map { .string(Timestamp.format($0)) } ?? .null),
            ("removedBy", .str(removedBy)),
            ("reason", .str(reason)),
        ])
    }
}

/// A change of a binding: for the `part` event and the stored row.
public struct PartUpdate: Sendable, Equatable {
    public enum Change: String, Sendable, Equatable {
        /// A part was bound to a vehicle.
        case bound
        /// A part was taken out of a vehicle (replaced).
        case removed
    }

    public var binding: PartBinding
    public var change: Change

    public init(binding: PartBinding, change: Change) {
        self.binding = binding
        self.change = change
    }

    /// The time of the change.
    public var at: Date { change == .removed ? binding.removedAt ?? binding.boundAt : binding.boundAt }

    /// The `part` event's data: the binding with `change`.
    public var eventJSON: JSON {
        guard case .object(var members) = binding.json else { return binding.json }
        members.append(("change", .string(change.rawValue)))
        return .object(members)
    }
}

/// A break of the key part rules, for quality (a `part` alert and a defect, or a defect alone).
public struct PartIssue: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The serial is bound (and not removed) to another vehicle: `DUPLICATE_SERIAL:<type>`.
        case duplicateSerial
        /// The part number is not the build spec's: `WRONG_PART:<type>`.
        case wrongPart
        /// The vehicle finished its route without a part its spec lists: `MISSING_PART:<type>`.
        case missingPart
    }

    public var kind: Kind
    public var vehicleId: String
    public var partType: String
    public var station: String?
    public var serial: String?
    /// `wrongPart`: the part number found; `duplicateSerial`: the other vehicle.
    public var found: String?
    /// `wrongPart`, `missingPart`: the spec's part number.
    public var expected: String?
    public var at: Date

    public init(kind: Kind, vehicleId: String, partType: String, station: String? = nil, serial: String? = nil,
                found: String? = nil, expected: String? = nil, at: Date) {
        self.kind = kind
        self.vehicleId = vehicleId
        self.partType = partType
        self.station = station
        self.serial = serial
        self.found = found
        self.expected = expected
        self.at = at
    }

    /// The defect code: `DUPLICATE_SERIAL:engine`, `WRONG_PART:engine`, `MISSING_PART:engine`.
    public var defectCode: String {
        switch kind {
        case .duplicateSerial: "DUPLICATE_SERIAL:\(partType)"
        case .wrongPart: "WRONG_PART:\(partType)"
        case .missingPart: "MISSING_PART:\(partType)"
        }
    }

    /// What happened, for the alert's message and the defect's description.
    public var message: String {
        let at = station.map { " at \($0)" } ?? ""
        switch kind {
        case .duplicateSerial:
            return "\(partType) serial \(serial ?? "?") bound to vehicle \(vehicleId)\(at) is already in vehicle \(found ?? "?")"
        case .wrongPart:
            return "\(partType) \(serial ?? "") in vehicle \(vehicleId)\(at) has part number \(found ?? "?"); its build spec expects \(expected ?? "?")"
        case .missingPart:
            return "vehicle \(vehicleId) finished its route without \(partType)" + (expected.map { " (\($0))" } ?? "")
        }
    }
}

/// Why a part command was refused (the API maps each kind to a status).
public struct PartError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No such vehicle or no such part on it (404).
        case notFound
        /// The serial is in another vehicle, or the vehicle already has a part of the type (409).
        case duplicateSerial
        case conflict
        /// A bad field (422).
        case invalid
    }

    public var kind: Kind
    public var message: String
    public var description: String { message }

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// The key parts in the vehicles: which serial is in which vehicle now, and what each vehicle holds.
///
/// Pure and deterministic like the ``Tracker``; owned by the pipeline thread. It holds the current
/// bindings only (loaded from the store at start); removed ones live in the store.
public struct PartBook: Sendable {
    /// Serial → the current bindings of it (more than one only after a duplicate from a PLC).
    private var bySerial: [String: [Ref]] = [:]
    /// Vehicle → part type → its current binding.
    private var byVehicle: [String: [String: PartBinding]] = [:]
    private var nextId: Int64

    private struct Ref: Sendable, Equatable {
        var vehicleId: String
        var partType: String
    }

    /// A book holding the current bindings; new ids start after `nextId - 1`.
    public init(current: [PartBinding] = [], nextId: Int64 = 1) {
        var next = nextId
        for binding in current where binding.isCurrent {
            bySerial[binding.serial, default: []].append(Ref(vehicleId: binding.vehicleId, partType: binding.partType))
            byVehicle[binding.vehicleId, default: [:]][binding.partType] = binding
            next = max(next, binding.id + 1)
        }
        self.nextId = next
    }

    /// The parts in a vehicle now, by part type.
    public func parts(of vehicleId: String) -> [String: PartBinding] { byVehicle[vehicleId] ?? [:] }

    /// Vehicles other than `vehicleId` that hold `serial` now.
    public func holders(of serial: String, except vehicleId: String) -> [String] {
        (bySerial[serial] ?? []).filter { $0.vehicleId != vehicleId }.map(\.vehicleId)
    }

    /// A part a station reported at a cycle's completion (bound by `plc`). A duplicate serial keeps
    /// the binding and is reported; a different serial of a type the vehicle already holds replaces
    /// it (the old binding removed by `plc`); the same serial again changes nothing.
    /// `expected`: the build spec's part number for the type, if the spec lists it.
    public mutating func scan(_ scan: PartScan, vehicleId: String, station: String, at t: Date, expected: String?)
        -> (updates: [PartUpdate], issues: [PartIssue]) {
        var updates: [PartUpdate] = []
        var issues: [PartIssue] = []
        if let held = byVehicle[vehicleId]?[scan.partType] {
            if held.serial == scan.serial { return ([], []) }
            updates.append(remove(held, at: t, by: "plc", reason: "replaced by \(scan.serial) at \(station)"))
        }
        if let other = holders(of: scan.serial, except: vehicleId).first {
            issues.append(PartIssue(kind: .duplicateSerial, vehicleId: vehicleId, partType: scan.partType, station: station,
                                    serial: scan.serial, found: other, at: t))
        }
        updates.append(add(partType: scan.partType, serial: scan.serial, partNumber: scan.partNumber, vehicleId: vehicleId,
                           station: station, at: t, by: "plc"))
        if let issue = check(scan.partNumber, expected: expected, partType: scan.partType, serial: scan.serial,
                             vehicleId: vehicleId, station: station, at: t) {
            issues.append(issue)
        }
        return (updates, issues)
    }

    /// Binds a part through the API (a scanner station). Refused when the serial is in another
    /// vehicle or the vehicle already holds a part of the type (replace it instead).
    public mutating func bind(partType: String, serial: String, partNumber: String?, vehicleId: String, station: String?,
                              by user: String, at t: Date, expected: String?) throws(PartError) -> (updates: [PartUpdate], issues: [PartIssue]) {
        if let other = holders(of: serial, except: vehicleId).first {
            throw PartError(.duplicateSerial, "serial \(serial) is bound to vehicle \(other) (\(bySerial[serial]!.first!.partType))")
        }
        if let held = byVehicle[vehicleId]?[partType] {
            throw PartError(.conflict, held.serial == serial
                ? "vehicle \(vehicleId) already holds \(partType) \(serial)"
                : "vehicle \(vehicleId) already holds \(partType) \(held.serial); replace it instead")
        }
        if let held = byVehicle[vehicleId]?.values.first(where: { $0.serial == serial }) {
            throw PartError(.conflict, "vehicle \(vehicleId) already holds serial \(serial) as \(held.partType)")
        }
        let update = add(partType: partType, serial: serial, partNumber: partNumber, vehicleId: vehicleId, station: station, at: t, by: user)
        let issue = check(partNumber, expected: expected, partType: partType, serial: serial, vehicleId: vehicleId, station: station, at: t)
        return ([update], issue.map { [$0] } ?? [])
    }

    /// Replaces the vehicle's part of a type: the old binding is removed (with `reason`), the new
    /// one bound. 404 when the vehicle holds no part of the type; 409 when the serial is in
    /// another vehicle or is the one already fitted.
    public mutating func replace(partType: String, serial: String, partNumber: String?, vehicleId: String, station: String?,
                                 reason: String, by user: String, at t: Date, expected: String?) throws(PartError) -> (updates: [PartUpdate], issues: [PartIssue]) {
        guard let held = byVehicle[vehicleId]?[partType] else {
            throw PartError(.notFound, "vehicle \(vehicleId) holds no \(partType)")
        }
        if held.serial == serial { throw PartError(.conflict, "\(partType) \(serial) is the one already in vehicle \(vehicleId)") }
        if let other = holders(of: serial, except: vehicleId).first {
            throw PartError(.duplicateSerial, "serial \(serial) is bound to vehicle \(other) (\(bySerial[serial]!.first!.partType))")
        }
        if let other = byVehicle[vehicleId]?.values.first(where: { $0.serial == serial }) {
            throw PartError(.conflict, "vehicle \(vehicleId) already holds serial \(serial) as \(other.partType)")
        }
        var updates = [remove(held, at: t, by: user, reason: reason)]
        updates.append(add(partType: partType, serial: serial, partNumber: partNumber, vehicleId: vehicleId,
                           station: station ?? held.station, at: t, by: user))
        let issue = check(partNumber, expected: expected, partType: partType, serial: serial, vehicleId: vehicleId, station: station, at: t)
        return (updates, issue.map { [$0] } ?? [])
    }

    /// The part types of `spec` (type → part number) the vehicle does not hold, as issues.
    public func missing(vehicleId: String, spec: [String: String], station: String?, at t: Date) -> [PartIssue] {
        let held = byVehicle[vehicleId] ?? [:]
        return spec.keys.sorted().filter { held[$0] == nil }.map {
            PartIssue(kind: .missingPart, vehicleId: vehicleId, partType: $0, station: station, expected: spec[$0], at: t)
        }
    }

    // MARK: Internals

    private func check(_ partNumber: String?, expected: String?, partType: String, serial: String, vehicleId: String,
                       station: String?, at t: Date) -> PartIssue? {
        guard let partNumber, let expected, partNumber != expected else { return nil }
        return PartIssue(kind: .wrongPart, vehicleId: vehicleId, partType: partType, station: station, serial: serial,
                         found: partNumber, expected: expected, at: t)
    }

    private mutating func add(partType: String, serial: String, partNumber: String?, vehicleId: String, station: String?,
                              at t: Date, by user: String) -> PartUpdate {
        let binding = PartBinding(id: nextId, partType: partType, serial: serial, partNumber: partNumber, vehicleId: vehicleId,
                                  station: station, boundAt: t, boundBy: user)
        nextId += 1
        bySerial[serial, default: []].append(Ref(vehicleId: vehicleId, partType: partType))
        byVehicle[vehicleId, default: [:]][partType] = binding
        return PartUpdate(binding: binding, change: .bound)
    }

    private mutating func remove(_ held: PartBinding, at t: Date, by user: String, reason: String) -> PartUpdate {
        var old = held
        old.removedAt = t
        old.removedBy = user
        old.reason = reason
        byVehicle[held.vehicleId]?[held.partType] = nil
        if byVehicle[held.vehicleId]?.isEmpty == true { byVehicle[held.vehicleId] = nil }
        let ref = Ref(vehicleId: held.vehicleId, partType: held.partType)
        if var refs = bySerial[held.serial] {
            refs.removeAll { $0 == ref }
            bySerial[held.serial] = refs.isEmpty ? nil : refs
        }
        return PartUpdate(binding: old, change: .removed)
    }
}
