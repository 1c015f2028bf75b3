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
/// commands that change state. Implemented by the server's assembly; every command runs on the
/// pipeline thread and returns only once its rows and events are committed.
///
/// Commands throw `QualityActionError` / `VehicleCommandError` (mapped to 404/409/422) or storage errors (503).
public protocol PlantBackend: Sendable {
    func wip(station: String) -> Int
    func kpi(station: String) -> JSON
    /// `GET /api/kpis?shift=current`.
    func kpis() -> JSON
    /// `GET /api/anomalies`.
    func anomalies() -> JSON
    func acknowledgeAlert(id: Int64, comment: String?, by principal: Principal) throws -> JSON
    func shelveAlert(id: Int64, minutes: Double, reason: String?, by principal: Principal) throws -> JSON
    func raiseDefect(vehicleId: String, station: String?, code: String, description: String, severity: Severity,
                     by principal: Principal) throws -> JSON
    func resolveDefect(id: Int64, comment: String?, by principal: Principal) throws -> JSON
    func vehicle(_ command: VehicleCommand, vehicleId: String, reason: String, by principal: Principal) throws -> JSON
    /// Appends an audit line (failed authentication) without waiting.
    func audit(_ entry: AuditEntry)
}
