import Foundation
import PlantModel
import Quality
import Runtime
import Tracking

/// A vehicle command of `POST /api/vehicles/{id}/hold|release|scrap`.
public enum VehicleCommand: String, Sendable, CaseIterable {
    case hold, release, scrap
}

/// The running plant as the API sees it: live facts from tracking and quality, and the
/// commands that change state. ``PlantStage`` implements it; every command runs on the
/// pipeline thread and returns only once its rows and events are committed.
///
/// Commands throw `QualityActionError` / `VehicleCommandError` (the API maps them to 404/409/422)
/// or storage errors (503).
public protocol PlantBackend: Sendable {
    func wip(station: String) -> Int
    /// A station's KPIs of the current shift (nil: no such station).
    func kpi(station: String) -> StationKPI?
    /// `GET /api/kpis?shift=current`.
    func kpis() -> PlantKPIs
    /// `GET /api/anomalies`: every measured series, highest score first.
    func anomalies() -> [AnomalyEntry]
    /// `GET /api/equipment`: every `condition` unit's health, worst first.
    func equipment() -> [EquipmentHealth]
    func acknowledgeAlert(id: Int64, comment: String?, by principal: Principal) throws -> JSON
    func shelveAlert(id: Int64, minutes: Double, reason: String?, by principal: Principal) throws -> JSON
    func raiseDefect(vehicleId: String, station: String?, code: String, description: String, severity: Severity,
                     by principal: Principal) throws -> JSON
    func resolveDefect(id: Int64, comment: String?, by principal: Principal) throws -> JSON
    /// `POST /api/alerts/{id}/assign` and `/api/defects/{id}/assign`: a new owner and, if given, due time.
    func assignAlert(id: Int64, owner: String, dueAt: Date?, by principal: Principal) throws -> JSON
    func assignDefect(id: Int64, owner: String, dueAt: Date?, by principal: Principal) throws -> JSON
    func vehicle(_ command: VehicleCommand, vehicleId: String, reason: String, by principal: Principal) throws -> JSON
    /// `release` with the quality gate (README "Key parts, recall and the quality gate"): refused
    /// (`VehicleCommandError.gateBlocked`) while the vehicle has open defects, unless `override`
    /// by an admin (audited).
    func releaseVehicle(vehicleId: String, reason: String, override: Bool, by principal: Principal) throws -> JSON
    /// Appends an audit line (failed authentication) without waiting.
    func audit(_ entry: AuditEntry)
}

extension PlantBackend {
    /// Without a gate: a plain release.
    public func releaseVehicle(vehicleId: String, reason: String, override: Bool, by principal: Principal) throws -> JSON {
        try vehicle(.release, vehicleId: vehicleId, reason: reason, by: principal)
    }
}

/// The KPIs of the current shift with the line's work in progress, as typed values; the API
/// writes their JSON.
public struct PlantKPIs: Sendable {
    public var quality: ShiftKPIs
    /// Vehicles on the line (in process or waiting), in process at a station, and on hold.
    public var lineWIP: Int
    public var inProcess: Int
    public var onHold: Int
    /// Orders planned for the current shift against those completed (plants with orders).
    public var plan: ShiftPlan?

    public init(quality: ShiftKPIs, lineWIP: Int, inProcess: Int, onHold: Int) {
        self.quality = quality
        self.lineWIP = lineWIP
        self.inProcess = inProcess
        self.onHold = onHold
    }
}

/// Plan against actual of one shift: orders planned for its date and shift, and how many of them
/// are completed (README "Orders and build specs").
public struct ShiftPlan: Sendable, Equatable {
    /// `YYYY-MM-DD` in the plant's time zone (the shift's start).
    public var date: String
    public var shift: String
    public var planned: Int
    public var completed: Int

    public init(date: String, shift: String, planned: Int, completed: Int) {
        self.date = date
        self.shift = shift
        self.planned = planned
        self.completed = completed
    }

    /// completed / planned; nil with nothing planned.
    public var attainment: Double? { planned > 0 ? Double(completed) / Double(planned) : nil }
}
