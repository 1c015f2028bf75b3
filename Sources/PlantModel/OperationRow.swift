import Foundation
import Runtime

/// Filters of `GET /api/operations` (README "Operations query"): every one given must hold.
public struct OperationFilter: Sendable, Equatable {
    public var station: String?
    public var process: String?
    public var vehicle: String?
    public var result: OperationResult?
    /// Bounds of `completedAt`, both inclusive.
    public var from: Date?
    public var to: Date?
    /// A measurement name; with `min`/`max` (inclusive) the operation must carry it within them.
    public var signal: String?
    public var min: Double?
    public var max: Double?

    public init(station: String? = nil, process: String? = nil, vehicle: String? = nil, result: OperationResult? = nil,
                from: Date? = nil, to: Date? = nil, signal: String? = nil, min: Double? = nil, max: Double? = nil) {
        self.station = station
        self.process = process
        self.vehicle = vehicle
        self.result = result
        self.from = from
        self.to = to
        self.signal = signal
        self.min = min
        self.max = max
    }
}

/// One completed operation as the operations query reads it: times in milliseconds, and the
/// measurements and lots as the JSON text they are stored as (`{"name": value}`, `["lot"]`), so
/// answers and exports copy them without decoding.
public struct OperationRow: Sendable, Equatable {
    public var id: String
    public var vehicleId: String
    public var station: String
    public var process: String
    public var startedMs: Int64
    public var completedMs: Int64?
    public var result: String?
    public var measurementsJSON: String
    public var lotsJSON: String
    public var operatorName: String?
    public var attempt: Int64
    /// Energy of the operation; nil until energy metering stores it (PlantStore's `OperationQuery.energyColumn`).
    public var energyKWh: Double?

    public init(id: String, vehicleId: String, station: String, process: String, startedMs: Int64, completedMs: Int64?,
                result: String?, measurementsJSON: String, lotsJSON: String, operatorName: String?, attempt: Int64,
                energyKWh: Double?) {
        self.id = id
        self.vehicleId = vehicleId
        self.station = station
        self.process = process
        self.startedMs = startedMs
        self.completedMs = completedMs
        self.result = result
        self.measurementsJSON = measurementsJSON
        self.lotsJSON = lotsJSON
        self.operatorName = operatorName
        self.attempt = attempt
        self.energyKWh = energyKWh
    }

    /// The contract's JSON object, appended to `out`:
    /// `{id, vehicleId, station, process, startedAt, completedAt, result, measurements, lots, operator, attempt, energyKWh}`.
    public func writeJSON(into out: inout [UInt8]) {
        func key(_ k: String) { out.append(contentsOf: "\"\(k)\":".utf8) }
        func string(_ s: String?) {
            if let s { JSON.string(s).write(into: &out) } else { out.append(contentsOf: "null".utf8) }
        }
        func time(_ ms: Int64?) {
            guard let ms else { return out.append(contentsOf: "null".utf8) }
            out.append(34)
            out.append(contentsOf: Timestamp.format(Date(timeIntervalSince1970: (Double(ms) + 0.001) / 1000)).utf8)
            out.append(34)
        }
        out.append(123)
        key("id"); string(id); out.append(44)
        key("vehicleId"); string(vehicleId); out.append(44)
        key("station"); string(station); out.append(44)
        key("process"); string(process); out.append(44)
        key("startedAt"); time(startedMs); out.append(44)
        key("completedAt"); time(completedMs); out.append(44)
        key("result"); string(result); out.append(44)
        key("measurements"); out.append(contentsOf: (measurementsJSON.isEmpty ? "{}" : measurementsJSON).utf8); out.append(44)
        key("lots"); out.append(contentsOf: (lotsJSON.isEmpty ? "[]" : lotsJSON).utf8); out.append(44)
        key("operator"); string(operatorName); out.append(44)
        key("attempt"); out.append(contentsOf: String(attempt).utf8); out.append(44)
        key("energyKWh"); JSON.number(energyKWh).write(into: &out)
        out.append(125)
    }
}
