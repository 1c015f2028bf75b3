import Foundation
import Runtime

/// A vehicle's status (docs/openapi.json `VehicleSummary`).
public enum VehicleStatus: String, Sendable, Equatable, CaseIterable {
    case inProcess = "in_process"
    case completed
    case hold
    case scrapped
}

/// The result of an operation.
public enum OperationResult: String, Sendable, Equatable {
    case ok
    case nok
}

/// One operation of a vehicle at a station: the unit of genealogy.
///
/// Produced by the tracking module; read by quality (KPIs, defects) and stored.
public struct OperationRecord: Sendable, Equatable {
    /// Unique, stable id (`WELD-01:2026-11-21T06:00:00.100Z` style, or a counter): used by defects.
    public var id: String
    public var vehicleId: String
    public var station: String
    public var process: String
    public var startedAt: Date
    /// Nil while the operation is in progress.
    public var completedAt: Date?
    /// Nil when the station has no `result` signal or the operation is in progress.
    public var result: OperationResult?
    /// Measurement values at completion, by signal name.
    public var measurements: [String: Double]
    /// Material lots consumed into the vehicle at this operation.
    public var lots: [String]
    /// The shift the operation completed in (name), if any.
    public var shift: String?
    public var operatorName: String?
    /// 1 for the first operation of this vehicle at this process, 2+ for rework.
    public var attempt: Int
    /// What the vehicle's build spec changes at this station (nil: the station's own limits and
    /// ideal cycle time). Set by the pipeline for quality; not stored with the operation.
    public var spec: OperationSpec?
    /// Key parts the station reported at completion (`partSerial` / `partNumber` signals). Bound to
    /// the vehicle by the pipeline; not part of the operation's JSON.
    public var parts: [PartScan] = []
    /// The station's energy between start and completion in kWh (nil: no meter, or the start was
    /// not seen). Set by the pipeline at completion (README "Energy and equipment health").
    public var energyKWh: Double?
    /// The station's energy odometer (kWh) when the operation started: set by the pipeline on the
    /// started operation and stored with its row, so an operation in progress across a restart
    /// still gets its `energyKWh` (README "Energy and equipment health"). Not part of the JSON.
    public var energyStartKWh: Double?

    public init(id: String, vehicleId: String, station: String, process: String, startedAt: Date, completedAt: Date? = nil,
                result: OperationResult? = nil, measurements: [String: Double] = [:], lots: [String] = [],
                shift: String? = nil, operatorName: String? = nil, attempt: Int = 1) {
        self.id = id
        self.vehicleId = vehicleId
        self.station = station
        self.process = process
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.result = result
        self.measurements = measurements
        self.lots = lots
        self.shift = shift
        self.operatorName = operatorName
        self.attempt = attempt
    }

    /// Cycle time in seconds, once completed.
    public var cycleTimeS: Double? { completedAt.map { $0.timeIntervalSince(startedAt) } }

    /// Its JSON (docs/openapi.json `Operation`, plus `vehicleId`, `id`, `attempt`, `cycleTimeS`).
    public var json: JSON {
        .obj([
            ("id", .string(id)),
            ("vehicleId", .string(vehicleId)),
            ("station", .string(station)),
            ("process", .string(process)),
            ("startedAt", .string(Timestamp.format(startedAt))),
            ("completedAt", completedAt.map { .string(Timestamp.format($0)) } ?? .null),
            ("result", result.map { .string($0.rawValue) } ?? .null),
            ("measurements", .object(measurements.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) })),
            ("lots", .array(lots.map { .string($0) })),
            ("shift", .str(shift)),
            ("operator", .str(operatorName)),
            ("attempt", .int(Int64(attempt))),
            ("cycleTimeS", .number(cycleTimeS)),
            ("energyKWh", .number(energyKWh)),
        ])
    }
}

/// A key part a station reported at a cycle's completion: its type, serial and, if the station
/// reports one, its part number.
public struct PartScan: Sendable, Equatable {
    public var partType: String
    public var serial: String
    public var partNumber: String?

    public init(partType: String, serial: String, partNumber: String? = nil) {
        self.partType = partType
        self.serial = serial
        self.partNumber = partNumber
    }
}

/// A vehicle's summary (`GET /api/vehicles`, docs/openapi.json).
public struct VehicleSummary: Sendable, Equatable {
    public var vehicleId: String
    public var status: VehicleStatus
    public var currentStation: String?
    public var firstSeenAt: Date
    public var lastSeenAt: Date
    /// Index in the route of the last process the vehicle completed (-1: none).
    public var lastRouteIndex: Int
    /// Why the vehicle is on hold (the hold's reason, or the quality gate's); nil unless on hold.
    public var holdReason: String?

    public init(vehicleId: String, status: VehicleStatus, currentStation: String?, firstSeenAt: Date, lastSeenAt: Date, lastRouteIndex: Int = -1) {
        self.vehicleId = vehicleId
        self.status = status
        self.currentStation = currentStation
        self.firstSeenAt = firstSeenAt
        self.lastSeenAt = lastSeenAt
        self.lastRouteIndex = lastRouteIndex
    }

    /// `holdReason` is there only while the vehicle is on hold with a known reason.
    public var json: JSON {
        .obj([
            ("vehicleId", .string(vehicleId)),
            ("status", .string(status.rawValue)),
            ("currentStation", .str(currentStation)),
            ("firstSeenAt", .string(Timestamp.format(firstSeenAt))),
            ("lastSeenAt", .string(Timestamp.format(lastSeenAt))),
            ("holdReason", status == .hold ? holdReason.map { .string($0) } : nil),
        ])
    }
}
