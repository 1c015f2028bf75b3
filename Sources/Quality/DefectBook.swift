import Foundation
import PlantModel
import Runtime

/// The open defects of the line and this shift's defect Pareto counts. Part of ``QualityEngine``.
struct DefectBook: Sendable {
    private var defects: [Int64: Defect] = [:]
    private var resolvedDefects: Set<Int64> = []
    private var nextDefectId: Int64 = 1
    /// Owners of new defects (off without `responsibility` rules).
    var ownership: Ownership?
    /// Defects raised this shift, by code and by station.
    private(set) var byCode: [String: Int] = [:]
    private(set) var byStation: [String: Int] = [:]

    /// A new shift window: the Pareto counts start from `byCode`/`byStation` (empty, or the saved
    /// counts of a restart inside the shift).
    mutating func startShift(byCode: [String: Int], byStation: [String: Int]) {
        self.byCode = byCode
        self.byStation = byStation
    }

    /// Raises a defect (by the system or by hand); `user` is the raiser's name.
    mutating func raise(vehicleId: String, station: String?, operation: String?, code: String, description: String,
                        severity: Severity, at t: Date, by user: String, into out: inout [QualityOutput]) {
        var defect = Defect(id: nextDefectId, vehicleId: vehicleId, station: station, operation: operation, code: code,
                            description: description, severity: severity, raisedAt: t, raisedBy: user)
        defect.assignment = ownership?.assign(type: "defect", station: station, severity: severity, at: t)
        nextDefectId += 1
        defects[defect.id] = defect
        byCode[code, default: 0] += 1
        if let station { byStation[station, default: 0] += 1 }
        out.append(.defect(defect, .raised))
    }

    /// Resolves an open defect. `.notFound` for an unknown id, `.conflict` when already resolved.
    mutating func resolve(id: Int64, comment: String?, user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        guard var defect = defects[id] else {
            if resolvedDefects.contains(id) { throw .conflict("defect \(id) is already resolved") }
            throw .notFound("no defect \(id)")
        }
        defect.status = .resolved
        defect.resolvedAt = t
        defect.resolvedBy = user.user
        defect.comment = comment
        defects[id] = nil
        resolvedDefects.insert(id)
        return [.defect(defect, .resolved),
                .audit(AuditEntry(t: t, by: user, action: "defect.resolve", target: "defect:\(id)",
                                  detail: "\(defect.code) on \(defect.vehicleId)" + (comment.map { ": \($0)" } ?? "")))]
    }

    /// Gives an open defect a new owner and, if given, a new due time (docs/openapi.json).
    mutating func assign(id: Int64, owner: String, dueAt: Date?, by user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        guard var defect = defects[id] else {
            if resolvedDefects.contains(id) { throw .conflict("defect \(id) is already resolved") }
            throw .notFound("no defect \(id)")
        }
        defect.assignment = Assignment.reassigned(defect.assignment, owner: owner, dueAt: dueAt)
        defects[id] = defect
        return [.defect(defect, .assigned),
                .audit(AuditEntry(t: t, by: user, action: "defect.assign", target: "defect:\(id)",
                                  detail: Assignment.auditDetail(owner: owner, dueAt: dueAt)))]
    }

    /// Continues after a restart: the open defects from the store and the next id. Ids below it
    /// that are not open were resolved before the restart.
    mutating func restore(_ restored: [Defect], nextDefectId: Int64) {
        for defect in restored where defect.status == .open { defects[defect.id] = defect }
        let maxDefect = restored.map(\.id).max() ?? 0
        self.nextDefectId = max(self.nextDefectId, nextDefectId, maxDefect + 1)
        for id in 1..<self.nextDefectId where defects[id] == nil && id > self.nextDefectId - 100_000 { resolvedDefects.insert(id) }
    }

    /// Open defects, oldest first.
    /// Marks open defects past their `dueAt` as overdue (once each), then tells the next person of
    /// an overdue defect's `escalation` every `escalateAfter` seconds; nothing without owners.
    mutating func markOverdue(at t: Date, escalateAfter: TimeInterval, into out: inout [QualityOutput]) {
        guard ownership != nil else { return }
        for id in defects.keys.sorted() {
            guard var defect = defects[id], var assignment = defect.assignment else { continue }
            if assignment.becomesOverdue(at: t) {
                assignment.markOverdue(at: t)
                defect.assignment = assignment
                defects[id] = defect
                out.append(.defect(defect, .overdue))
            } else if assignment.escalate(at: t, after: escalateAfter) != nil {
                defect.assignment = assignment
                defects[id] = defect
                out.append(.defect(defect, .escalated))
            }
        }
    }

    var openDefects: [Defect] { defects.values.sorted { $0.id < $1.id } }

    func openDefects(vehicleId: String) -> [Defect] {
        defects.values.filter { $0.vehicleId == vehicleId }.sorted { $0.id < $1.id }
    }

    /// Defects raised this shift by code, most first (Pareto).
    func paretoByCode() -> [(code: String, count: Int)] {
        byCode.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Defects raised this shift by station, most first (Pareto).
    func paretoByStation() -> [(station: String, count: Int)] {
        byStation.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
