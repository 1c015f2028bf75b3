import Foundation
import Orders
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage
import Tracking

/// Key parts and the quality gate on the pipeline thread (README "Key parts, recall and the
/// quality gate"): serials a station reports are bound at cycle completion, checked for duplicates
/// and against the build spec; a vehicle that finishes its route is checked for missing parts and,
/// with `gate.holdOnOpenDefects`, held while it has open defects.
extension PlantStage: PartBackend {
    /// The statuses of the vehicles at a station (present or in an operation) before a poll, to
    /// see which of them the poll brings to the end of the route.
    func statusesAt(_ station: String) -> [(String, VehicleStatus)] {
        Self.statuses(at: station, in: &tracker)
    }

    /// Reads the tracker through an `inout` access: a method called on the stored `tracker`
    /// works on a copy of it (for every poll).
    private static func statuses(at station: String, in tracker: inout Tracker) -> [(String, VehicleStatus)] {
        tracker.vehicleStatuses(at: station)
    }

    /// The build spec's part number for a vehicle's part type (nil: no order, or the spec does not list it).
    func expectedPart(vehicleId: String, partType: String) -> String? {
        specParts(vehicleId: vehicleId)?[partType]
    }

    /// The part number the build spec of a vehicle's order lists for a part type, read from
    /// storage (any thread; nil without an order or on a read error). The simulator scans it.
    public func specPartNumber(vehicleId: String, partType: String) -> String? {
        guard let order = try? eventLog.read({ try OrderStore.order(vehicleId: vehicleId, in: $0) }),
              let spec = try? config.buildSpec(model: order.model, options: order.options) else { return nil }
        return spec.parts[partType]
    }

    private func specParts(vehicleId: String) -> [String: String]? {
        guard let order = orders.order(vehicleId: vehicleId), let spec = orders.spec(of: order) else { return nil }
        return spec.parts
    }

    /// Binds the parts of completed operations, and checks vehicles that a poll brought to the end
    /// of their route (`before`: their statuses before it). Returns the gate's holds (tracking outputs).
    func followParts(_ tracking: [TrackingOutput], before: [(String, VehicleStatus)], quality outputs: inout [QualityOutput],
                     parts updates: inout [PartUpdate]) -> [TrackingOutput] {
        var holds: [TrackingOutput] = []
        for output in tracking {
            switch output {
            case .operationCompleted(let op) where !op.parts.isEmpty:
                let t = op.completedAt ?? op.startedAt
                for scan in op.parts {
                    let result = parts.scan(scan, vehicleId: op.vehicleId, station: op.station, at: t,
                                            expected: expectedPart(vehicleId: op.vehicleId, partType: scan.partType))
                    updates += result.updates
                    for issue in result.issues { quality.process(.partIssue(issue), into: &outputs) }
                }
            case .vehicleChanged(let v) where watchesRouteEnd && v.status == .completed:
                guard before.contains(where: { $0.0 == v.vehicleId && $0.1 == .inProcess }) else { continue }
                if finishedRoutes.count >= 10_000 { finishedRoutes.removeAll(keepingCapacity: true) }
                guard finishedRoutes.insert(v.vehicleId).inserted else { continue }
                holds += routeFinished(v, quality: &outputs)
            default:
                break
            }
        }
        return holds
    }

    /// A vehicle finished its route: a `MISSING_PART` defect per part its spec lists and it lacks;
    /// then, with the gate on, a hold while it has open defects.
    private func routeFinished(_ vehicle: VehicleSummary, quality outputs: inout [QualityOutput]) -> [TrackingOutput] {
        let t = vehicle.lastSeenAt
        if let spec = specParts(vehicleId: vehicle.vehicleId), !spec.isEmpty {
            for issue in parts.missing(vehicleId: vehicle.vehicleId, spec: spec, station: vehicle.currentStation, at: t) {
                quality.process(.partIssue(issue), into: &outputs)
            }
        }
        guard config.gate.holdOnOpenDefects else { return [] }
        let open = quality.openDefects(vehicleId: vehicle.vehicleId)
        guard !open.isEmpty else { return [] }
        var codes = open.prefix(5).map(\.code).joined(separator: ", ")
        if open.count > 5 { codes += ", …" }
        let reason = "quality gate: \(open.count) open defect\(open.count == 1 ? "" : "s") (\(codes))"
        guard let held = try? tracker.hold(vehicleId: vehicle.vehicleId, reason: reason, user: Principal.system.user, at: t) else { return [] }
        outputs.append(.audit(AuditEntry(t: t, by: .system, action: "vehicle.hold", target: "vehicle:\(vehicle.vehicleId)", detail: reason)))
        return held
    }

    /// `part` events and their rows, and the reasons of vehicles that went on hold, committed together.
    func emitParts(_ updates: [PartUpdate], tracking: [TrackingOutput], into emission: inout Emission) {
        for update in updates {
            emission.event("part", station: update.binding.station, time: update.at, update.eventJSON)
        }
        if !updates.isEmpty { emission.write { db in try PartStore.apply(updates, to: db) } }
        guard tracking.contains(where: { if case .vehicleChanged(let v) = $0 { v.status == .hold } else { false } }) else { return }
        let held: [VehicleSummary] = tracking.compactMap {
            if case .vehicleChanged(let v) = $0, v.status == .hold, v.holdReason != nil { v } else { nil }
        }
        if !held.isEmpty { emission.write { db in try PartStore.applyHolds(held, to: db) } }
    }

    // MARK: Commands (any thread; run on the pipeline thread)

    /// Runs a part command on the pipeline thread, commits its bindings, defects, alerts and audit
    /// line, and waits until they are stored.
    private func partCommand(_ body: @escaping @Sendable (PlantStage, Date) throws -> (updates: [PartUpdate], issues: [PartIssue], audit: AuditEntry, answer: JSON)) throws -> JSON {
        guard let pipeline else { throw EventLogError.closed }
        let answer: JSON = try pipeline.perform { [self] in
            let now = pipeline.commandTime
            let result = try body(self, now)
            var outputs: [QualityOutput] = [.audit(result.audit)]
            for issue in result.issues { quality.process(.partIssue(issue), into: &outputs) }
            var emission = Emission()
            emit(tracking: [], quality: outputs, parts: result.updates, into: &emission)
            pipeline.commit(emission)
            refreshFacts(force: true, now: now)
            return result.answer
        }
        try eventLog.flush(timeout: 10)
        return answer
    }

    public func bindPart(vehicleId: String, partType: String, serial: String, partNumber: String?, station: String?,
                         by principal: Principal) throws -> JSON {
        if let station, config.station(station) == nil {
            throw PartError(.invalid, "no station \(JSON.string(station).serialized())")
        }
        let stored = try eventLog.read { try GenealogyStore.vehicleSummary(id: vehicleId, in: $0) } != nil
        return try partCommand { stage, now in
            guard stored || stage.tracker.vehicle(vehicleId) != nil || stage.orders.order(vehicleId: vehicleId) != nil else {
                throw PartError(.notFound, "no vehicle \(JSON.string(vehicleId).serialized())")
            }
            let result = try stage.parts.bind(partType: partType, serial: serial, partNumber: partNumber, vehicleId: vehicleId,
                                              station: station, by: principal.user, at: now,
                                              expected: stage.expectedPart(vehicleId: vehicleId, partType: partType))
            let audit = AuditEntry(t: now, by: principal, action: "part.bind", target: "vehicle:\(vehicleId)",
                                   detail: "\(partType) \(serial)" + (partNumber.map { " (\($0))" } ?? ""))
            return (result.updates, result.issues, audit, result.updates.last!.binding.json)
        }
    }

    public func replacePart(vehicleId: String, partType: String, serial: String, partNumber: String?, station: String?,
                            reason: String, by principal: Principal) throws -> JSON {
        if let station, config.station(station) == nil {
            throw PartError(.invalid, "no station \(JSON.string(station).serialized())")
        }
        return try partCommand { stage, now in
            let result = try stage.parts.replace(partType: partType, serial: serial, partNumber: partNumber, vehicleId: vehicleId,
                                                 station: station, reason: reason, by: principal.user, at: now,
                                                 expected: stage.expectedPart(vehicleId: vehicleId, partType: partType))
            let old = result.updates.first!.binding
            let audit = AuditEntry(t: now, by: principal, action: "part.replace", target: "vehicle:\(vehicleId)",
                                   detail: "\(partType) \(old.serial) → \(serial): \(reason)")
            return (result.updates, result.issues, audit, result.updates.last!.binding.json)
        }
    }

    public func releaseVehicle(vehicleId: String, reason: String, override: Bool, by principal: Principal) throws -> JSON {
        let stored = try eventLog.read { try GenealogyStore.vehicleSummary(id: vehicleId, in: $0) }
        return try command { stage, now in
            var detail = reason
            if stage.config.gate.holdOnOpenDefects {
                let open = stage.quality.openDefects(vehicleId: vehicleId)
                if !open.isEmpty, stage.tracker.vehicle(vehicleId) != nil || stored != nil {
                    let codes = open.prefix(5).map { "\($0.id) \($0.code)" }.joined(separator: ", ")
                    guard override else {
                        throw VehicleCommandError.gateBlocked(vehicleId: vehicleId, message:
                            "vehicle \(vehicleId) has \(open.count) open defect\(open.count == 1 ? "" : "s") (\(codes)); resolve them, or an admin releases with \"override\": true")
                    }
                    guard principal.has(.admin) else {
                        throw VehicleCommandError.gateBlocked(vehicleId: vehicleId, message:
                            "overriding the quality gate needs the admin role (\(principal.user) is \(principal.role.rawValue))")
                    }
                    detail = "override of the quality gate with \(open.count) open defect\(open.count == 1 ? "" : "s") (\(codes))"
                        + (reason.isEmpty ? "" : ": \(reason)")
                }
            }
            let outputs = try stage.tracker.release(vehicleId: vehicleId, reason: reason, user: principal.user, at: now, stored: stored)
            let audit = QualityOutput.audit(AuditEntry(t: now, by: principal, action: "vehicle.release",
                                                       target: "vehicle:\(vehicleId)", detail: detail))
            var summary = JSON.null
            for case .vehicleChanged(let v) in outputs { summary = v.json }
            if summary.isNull { summary = stage.tracker.vehicle(vehicleId)?.json ?? .null }
            return (outputs, [audit], summary)
        }
    }
}
