import Foundation
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage
import Tracking

/// The plant's history as the API reads it: vehicles, lots, defects, alerts, audit and signal
/// history from storage. Reads run on a read connection and may be called from any thread.
///
/// Errors are storage errors (the API answers 503).
public protocol PlantQueries: Sendable {
    /// `GET /api/stations/{id}/signals/{name}`: stored samples, oldest first.
    func signalHistory(station: String, signal: String, from: Date?, to: Date?, limit: Int) throws -> [StoredSample]
    /// `GET /api/vehicles`: summaries, newest first.
    func vehicles(status: VehicleStatus?, station: String?, limit: Int) throws -> [VehicleSummary]
    /// `GET /api/vehicles/{id}`: the vehicle with its defects, alerts and lots; nil if unknown.
    func vehicle(id: String) throws -> VehicleRecord?
    /// `GET /api/lots/{id}`: recall tracing of a lot; nil if the lot was never seen.
    func lot(id: String) throws -> JSON?
    /// `GET /api/defects`: newest first.
    func defects(status: DefectStatus?, vehicle: String?, station: String?, limit: Int) throws -> [Defect]
    /// `GET /api/defects/pareto`: defect counts by code and by station since `since`.
    func defectPareto(since: Date?) throws -> DefectPareto
    /// `GET /api/alerts`: newest first.
    func alerts(filter: AlertStateFilter, station: String?, limit: Int) throws -> [Alert]
    /// `GET /api/alerts/{id}`: the alert and its changes; nil if unknown.
    func alert(id: Int64) throws -> AlertRecord?
    /// `GET /api/audit`: newest first.
    func audit(limit: Int) throws -> [AuditEntry]
}

/// A stored vehicle with what quality and the lots know of it (read in one transaction).
public struct VehicleRecord: Sendable {
    /// The genealogy's vehicle with its operations (`GenealogyStore.vehicle(id:in:)`).
    public var vehicle: JSON
    public var defects: [Defect]
    public var alerts: [Alert]
    public var lots: [(lot: String, station: String)]
}

/// An alert and its changes, oldest first.
public struct AlertRecord: Sendable {
    public var alert: Alert
    public var history: [(t: Date, change: String, state: String, escalationLevel: Int, user: String?)]
}

/// Defect counts since a time, most first.
public struct DefectPareto: Sendable {
    public var byCode: [(key: String, count: Int)]
    public var byStation: [(key: String, count: Int)]
}

/// ``PlantQueries`` over the event log's read connections and the sample store.
public struct StoreQueries: PlantQueries {
    let eventLog: EventLog
    let samples: SampleStore?
    /// The plant config, for the build specs of vehicles with orders.
    let config: PlantConfig?

    /// `samples` nil: no signal history is kept (every history is empty).
    public init(eventLog: EventLog, samples: SampleStore?, config: PlantConfig? = nil) {
        self.config = config
        self.eventLog = eventLog
        self.samples = samples
    }

    public func signalHistory(station: String, signal: String, from: Date?, to: Date?, limit: Int) throws -> [StoredSample] {
        guard let samples else { return [] }
        return try samples.history(station: station, signal: signal, from: from, to: to, limit: limit)
    }

    public func vehicles(status: VehicleStatus?, station: String?, limit: Int) throws -> [VehicleSummary] {
        try eventLog.read { try GenealogyStore.vehicles(status: status, station: station, limit: limit, in: $0) }
    }

    public func vehicle(id: String) throws -> VehicleRecord? {
        try eventLog.read { db in
            guard var vehicle = try GenealogyStore.vehicle(id: id, in: db) else { return nil }
            vehicle = try EnergyStore.addEnergy(to: vehicle, vehicleId: id, in: db)
            if case .object(var members) = vehicle {
                members += try Self.orderMembers(vehicleId: id, config: config, in: db)
                let onHold = members.contains { $0.0 == "status" && $0.1.stringValue == VehicleStatus.hold.rawValue }
                members.removeAll { $0.0 == "holdReason" }
                members += try Self.partMembers(vehicleId: id, onHold: onHold, in: db)
                vehicle = .object(members)
            }
            return VehicleRecord(vehicle: vehicle,
                                 defects: try QualityStore.defects(vehicle: id, limit: 10_000, in: db),
                                 alerts: try QualityStore.alerts(filter: .all, vehicle: id, limit: 10_000, in: db),
                                 lots: try GenealogyStore.lots(vehicleId: id, in: db))
        }
    }

    public func lot(id: String) throws -> JSON? {
        try eventLog.read { try GenealogyStore.lot(id: id, in: $0) }
    }

    public func defects(status: DefectStatus?, vehicle: String?, station: String?, limit: Int) throws -> [Defect] {
        try eventLog.read { try QualityStore.defects(status: status, vehicle: vehicle, station: station, limit: limit, in: $0) }
    }

    public func defectPareto(since: Date?) throws -> DefectPareto {
        try eventLog.read { db in
            DefectPareto(byCode: try QualityStore.pareto(byStation: false, since: since, in: db),
                         byStation: try QualityStore.pareto(byStation: true, since: since, in: db))
        }
    }

    public func alerts(filter: AlertStateFilter, station: String?, limit: Int) throws -> [Alert] {
        try eventLog.read { try QualityStore.alerts(filter: filter, station: station, limit: limit, in: $0) }
    }

    public func alert(id: Int64) throws -> AlertRecord? {
        try eventLog.read { db in
            guard let alert = try QualityStore.alert(id: id, in: db) else { return nil }
            return AlertRecord(alert: alert, history: try QualityStore.history(alertId: id, in: db))
        }
    }

    public func audit(limit: Int) throws -> [AuditEntry] {
        try eventLog.read { try QualityStore.audit(limit: limit, in: $0) }
    }
}
