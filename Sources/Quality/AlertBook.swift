import Foundation
import PlantModel
import Runtime

/// The open alerts of the line, one per condition key, with the alert load figures (flood,
/// chattering) of README.md's alarm management. Part of ``QualityEngine``; time comes from its
/// inputs only.
struct AlertBook: Sendable {
    let rules: QualityRules
    /// Owners of new alerts (off without `responsibility` rules).
    var ownership: Ownership?

    private var alerts: [Int64: Alert] = [:]
    private var openByKey: [String: Int64] = [:]
    private var closedAlerts: Set<Int64> = []
    private var nextAlertId: Int64 = 1

    private var raiseTimes: [Date] = []
    private var raisesByKey: [String: [Date]] = [:]
    private var inFlood = false
    /// Seconds of the current shift spent in a flood (counted from ``shiftStart``).
    private(set) var floodSeconds = 0.0
    private var floodEvaluatedAt: Date?
    private var shiftStart = Date(timeIntervalSince1970: 0)
    private var lastPrune: Date?

    init(rules: QualityRules) {
        self.rules = rules
    }

    /// A new shift window: flood time counts from `start`, going on from `floodSeconds` (a restart
    /// inside the shift) evaluated last at `evaluatedAt`.
    mutating func startShift(from start: Date, floodSeconds: Double, evaluatedAt: Date) {
        shiftStart = start
        self.floodSeconds = floodSeconds
        floodEvaluatedAt = evaluatedAt
    }

    /// The alert load history (raises of the last 10 minutes, raises per key for chattering,
    /// the flood flag), saved so a restart does not forget them.
    var loadHistory: AlertLoadHistory {
        AlertLoadHistory(raiseTimes: raiseTimes, raisesByKey: raisesByKey, inFlood: inFlood, floodEvaluatedAt: floodEvaluatedAt)
    }

    /// Takes back a saved history (before the first input).
    mutating func restoreLoad(_ history: AlertLoadHistory) {
        raiseTimes = history.raiseTimes
        raisesByKey = history.raisesByKey
        inFlood = history.inFlood
        if floodEvaluatedAt == nil { floodEvaluatedAt = history.floodEvaluatedAt }
    }

    // MARK: Conditions

    /// Whether any alert is open (a fast path: clearing needs an open alert).
    var hasOpen: Bool { !openByKey.isEmpty }

    /// Whether an alert is open for `key`.
    func isOpen(_ key: String) -> Bool { openByKey[key] != nil }

    /// Whether the open alert of `key` still has its condition present.
    func hasActiveCondition(_ key: String) -> Bool {
        guard let id = openByKey[key] else { return false }
        return alerts[id]?.conditionActive != false
    }

    /// The condition of `key` is present: a new alert, or the open one raised again.
    /// `momentary`: a one-off event (sequence issues) whose message is updated on every occurrence.
    mutating func raise(key: String, type: AlertType, severity: Severity, station: String?, signal: String?, vehicleId: String?,
                        message: String, momentary: Bool = false, at t: Date, into out: inout [QualityOutput]) {
        if let id = openByKey[key], var alert = alerts[id] {
            let change = AlertLifecycle.conditionPresent(&alert, at: t)
            if change != nil || momentary {
                alert.message = message
                if let vehicleId { alert.vehicleId = vehicleId }
            }
            store(alert)
            if let change {
                out.append(.alert(alert, change))
                countRaise(key, at: t)
            }
            return
        }
        var alert = Alert(id: nextAlertId, key: key, type: type, severity: severity, station: station, signal: signal,
                          vehicleId: vehicleId, message: message, raisedAt: t, momentary: momentary)
        alert.assignment = ownership?.assign(type: type.rawValue, station: station, severity: severity, at: t)
        nextAlertId += 1
        store(alert)
        out.append(.alert(alert, .raised))
        countRaise(key, at: t)
    }

    /// The condition of `key` returned to normal.
    mutating func clear(key: String, at t: Date, into out: inout [QualityOutput]) {
        guard let id = openByKey[key], var alert = alerts[id] else { return }
        if let change = AlertLifecycle.conditionCleared(&alert, at: t) {
            store(alert)
            out.append(.alert(alert, change))
        } else {
            store(alert)
        }
    }

    /// Time passes: shelving expiry and escalation of every open alert, oldest first.
    mutating func tick(at t: Date, into out: inout [QualityOutput]) {
        let escalateAfter = rules.escalateAfterMin * 60
        for id in alerts.keys.sorted() {
            var alert = alerts[id]!
            if let change = AlertLifecycle.tick(&alert, at: t, escalateAfter: escalateAfter) {
                // An overdue alert's escalation also tells the next person of its `escalation` list.
                if change == .escalated, var assignment = alert.assignment, assignment.overdue,
                   assignment.escalate(at: t, after: 0) != nil {
                    alert.assignment = assignment
                }
                store(alert)
                out.append(.alert(alert, change))
            }
        }
    }

    /// Marks unacknowledged alerts past their `dueAt` as overdue (once each); nothing without owners.
    mutating func markOverdue(at t: Date, into out: inout [QualityOutput]) {
        guard ownership != nil else { return }
        for id in alerts.keys.sorted() {
            guard var alert = alerts[id], alert.isUnacknowledged, var assignment = alert.assignment,
                  assignment.becomesOverdue(at: t) else { continue }
            assignment.markOverdue(at: t)
            alert.assignment = assignment
            store(alert)
            out.append(.alert(alert, .overdue))
        }
    }

    private mutating func store(_ alert: Alert) {
        if alert.state == .cleared {
            alerts[alert.id] = nil
            if openByKey[alert.key] == alert.id { openByKey[alert.key] = nil }
            closedAlerts.insert(alert.id)
        } else {
            alerts[alert.id] = alert
            openByKey[alert.key] = alert.id
        }
    }

    // MARK: Alert load

    private mutating func countRaise(_ key: String, at t: Date) {
        raiseTimes.append(t)
        var times = raisesByKey[key] ?? []
        let cutoff = t.addingTimeInterval(-rules.chatterMinutes * 60)
        times.removeAll { $0 <= cutoff }
        times.append(t)
        raisesByKey[key] = times
        if raiseTimes.count > rules.floodPer10Min || inFlood { evaluateFlood(at: t) }
    }

    /// Drops raises older than 10 minutes, counts flood time and decides whether the line is in a flood.
    mutating func evaluateFlood(at t: Date) {
        let cutoff = t.addingTimeInterval(-600)
        if let firstKept = raiseTimes.firstIndex(where: { $0 > cutoff }) {
            if firstKept > 0 { raiseTimes.removeFirst(firstKept) }
        } else {
            raiseTimes.removeAll()
        }
        if inFlood, let last = floodEvaluatedAt, t > last { floodSeconds += t.timeIntervalSince(max(last, shiftStart)) }
        floodEvaluatedAt = t
        inFlood = raiseTimes.count > rules.floodPer10Min
        // Forget keys that have not been raised within the chattering window (once a minute).
        if t.timeIntervalSince(lastPrune ?? .distantPast) >= 60 {
            lastPrune = t
            let chatterCutoff = t.addingTimeInterval(-rules.chatterMinutes * 60)
            raisesByKey = raisesByKey.filter { ($0.value.last ?? .distantPast) > chatterCutoff }
        }
    }

    /// Alerts raised in the 10 minutes up to `now`.
    func alertsPer10Min(now: Date) -> Int {
        let cutoff = now.addingTimeInterval(-600)
        return raiseTimes.filter { $0 > cutoff }.count
    }

    /// Percent (0–100) of the shift's elapsed time up to `now` in a flood.
    func floodTimePct(now: Date) -> Double {
        var seconds = floodSeconds
        if inFlood, let last = floodEvaluatedAt, now > last { seconds += now.timeIntervalSince(last) }
        let e = max(0, now.timeIntervalSince(shiftStart))
        return e > 0 ? round6(min(100, seconds / e * 100)) : 0
    }

    /// Keys raised at least `chatterCount` times within `chatterMinutes` up to `now`, sorted.
    func chatteringKeys(now: Date) -> [String] {
        let cutoff = now.addingTimeInterval(-rules.chatterMinutes * 60)
        return raisesByKey.filter { $0.value.filter { $0 > cutoff }.count >= rules.chatterCount }.keys.sorted()
    }

    // MARK: User actions

    /// Acknowledges an alert. `.notFound` for an unknown id, `.conflict` when it is already
    /// acknowledged (or cleared, or shelved). Returns the alert change and the audit line.
    mutating func acknowledge(alertId: Int64, by user: Principal, comment: String?, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        guard var alert = alerts[alertId] else {
            if closedAlerts.contains(alertId) { throw .conflict("alert \(alertId) is already acknowledged and cleared") }
            throw .notFound("no alert \(alertId)")
        }
        let change = try AlertLifecycle.acknowledge(&alert, user: user.user, comment: comment, at: t)
        store(alert)
        return [.alert(alert, change),
                .audit(AuditEntry(t: t, by: user, action: "alert.acknowledge", target: "alert:\(alertId)",
                                  detail: "\(alert.key)" + (comment.map { ": \($0)" } ?? "")))]
    }

    /// Shelves an alert for `minutes` (0 < minutes ≤ 10,080); it unshelves itself at expiry on a later input.
    mutating func shelve(alertId: Int64, minutes: Double, reason: String?, by user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        guard minutes > 0, minutes <= 10_080, minutes.isFinite else { throw .invalid("minutes must be more than 0 and at most 10080") }
        guard var alert = alerts[alertId] else {
            if closedAlerts.contains(alertId) { throw .conflict("alert \(alertId) is cleared") }
            throw .notFound("no alert \(alertId)")
        }
        let until = Date(timeIntervalSince1970: ((t.timeIntervalSince1970 + minutes * 60) * 1000).rounded() / 1000)
        let change = try AlertLifecycle.shelve(&alert, until: until, reason: reason, at: t)
        store(alert)
        return [.alert(alert, change),
                .audit(AuditEntry(t: t, by: user, action: "alert.shelve", target: "alert:\(alertId)",
                                  detail: "\(alert.key) for \(format(minutes)) min" + (reason.map { ": \($0)" } ?? "")))]
    }

    /// Gives an open alert a new owner and, if given, a new due time (docs/openapi.json).
    mutating func assign(alertId: Int64, owner: String, dueAt: Date?, by user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        guard var alert = alerts[alertId] else {
            if closedAlerts.contains(alertId) { throw .conflict("alert \(alertId) is cleared") }
            throw .notFound("no alert \(alertId)")
        }
        alert.assignment = Assignment.reassigned(alert.assignment, owner: owner, dueAt: dueAt)
        store(alert)
        return [.alert(alert, .assigned),
                .audit(AuditEntry(t: t, by: user, action: "alert.assign", target: "alert:\(alertId)",
                                  detail: Assignment.auditDetail(owner: owner, dueAt: dueAt)))]
    }

    /// Continues after a restart: the open alerts from the store and the next id. Ids below it
    /// that are not open were closed before the restart.
    mutating func restore(_ restored: [Alert], nextAlertId: Int64) {
        for alert in restored.sorted(by: { $0.id < $1.id }) where alert.isOpen { store(alert) }
        let maxAlert = restored.map(\.id).max() ?? 0
        self.nextAlertId = max(self.nextAlertId, nextAlertId, maxAlert + 1)
        for id in 1..<self.nextAlertId where alerts[id] == nil && id > self.nextAlertId - 100_000 { closedAlerts.insert(id) }
    }

    // MARK: Queries

    /// An open alert by id.
    func alert(id: Int64) -> Alert? { alerts[id] }

    /// Open alerts (not `cleared`), oldest first.
    var openAlerts: [Alert] { alerts.values.sorted { $0.id < $1.id } }
}

/// What ``AlertBook`` remembers of the alert load: raise times and the flood flag.
public struct AlertLoadHistory: Sendable, Equatable, Codable {
    var raiseTimes: [Date]
    var raisesByKey: [String: [Date]]
    var inFlood: Bool
    var floodEvaluatedAt: Date?
}
