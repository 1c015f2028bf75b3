import Foundation
import Notify
import Pipeline
import PlantModel
import Quality
import Runtime
import Storage

/// Wires notifications (README "Notifications") around the pipeline: the planner watches each
/// step's emission and writes outbox rows in the same transaction as the `alert`/`defect` events
/// that caused them; ``delivery`` sends them on its own threads.
///
/// With no `people` with channels or no `responsibility` rules in the config, nothing is hooked and
/// the server behaves exactly as without these blocks. In replay nothing is notified: a recording's
/// alerts are history, not news for anyone's phone.
final class NotifyAssembly: Sendable {
    /// The delivery service, nil when notifications are off.
    let delivery: NotificationDelivery?

    /// `clock` times the scheduled reports (a ``ManualClock`` in tests).
    init(config: PlantConfig, pipeline: Pipeline, eventLog: EventLog, logger: Logger, clock: any WallClock = SystemWallClock(),
         equipment: @escaping @Sendable () -> EquipmentReport? = { nil }) {
        // Sent and failed notifications go with the samples' retention (`retentionDays`).
        eventLog.addMaintenance { db, cutoff in try Outbox.prune(before: cutoff, in: db) >= 5000 }
        let planner = NotificationPlanner(config: config)
        // The equipment report (`reports.equipmentEveryH`) to people with a channel.
        let reportEveryH = config.reports.to.contains { !(config.people.person($0)?.notify.isEmpty ?? true) } ? config.reports.equipmentEveryH : nil
        guard planner.isActive || reportEveryH != nil else {
            if !config.people.people.isEmpty {
                logger.info("notifications off: no person has a notify channel, or there is no responsibility rule")
            }
            delivery = nil
            return
        }
        guard pipeline.mode == .live else {
            logger.info("notifications off in replay")
            delivery = nil
            return
        }
        var configuration = NotificationDelivery.Configuration()
        configuration.trust(config.people)
        let delivery = NotificationDelivery(eventLog: eventLog, configuration: configuration, logger: logger)
        self.delivery = delivery
        // The schedule goes on from its stored next due time; a new one is stored with the first step.
        var storedNext: Date?
        if reportEveryH != nil {
            do {
                storedNext = try eventLog.read { try ReportScheduleStore.next("equipment", in: $0) }
            } catch {
                logger.warning("the equipment report's schedule cannot be read (\(error)): it starts from now")
            }
        }
        let schedule = Locked(reportEveryH.map { ReportSchedule(everyH: $0, start: clock.now(), storedNext: storedNext) })
        let scheduleStored = Locked(storedNext != nil)
        if let next = schedule.value?.next, reportEveryH != nil {
            logger.info("equipment report next due at \(Timestamp.format(next))")
        }
        pipeline.addEmissionObserver { emission in
            let now = clock.now()
            var list = planner.isActive ? planner.notifications(for: emission.events, now: now) : []
            var due = false
            var storeNext: Date?
            if reportEveryH != nil {
                schedule.withLock { current in
                    guard var s = current else { return }
                    due = s.due(at: now)
                    current = s
                    if due || !scheduleStored.value { storeNext = s.next }
                }
                if storeNext != nil { scheduleStored.set(true) }
            }
            if let next = storeNext {
                emission.write { db in try ReportScheduleStore.save("equipment", next: next, in: db) }
            }
            if due, let report = equipment() {
                let at = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
                let messages = ReportNotifications.messages(
                    config: config, id: "report-equipment-\(at)", to: config.reports.to,
                    subject: "Equipment health / 设备健康: \(report.atRisk.count) of \(report.units.count) below \(report.below)",
                    text: report.summary, path: "/api/reports/equipment?format=html", item: report.json, now: now)
                logger.info("equipment report: \(report.atRisk.count) of \(report.units.count) units at risk, \(messages.count) notifications")
                list += messages
            }
            guard !list.isEmpty else { return }
            let messages = list
            emission.write { db in try delivery.write(messages, to: db) }
        }
    }

    /// The outbox counts for `/metrics` (zero rows when notifications were never used).
    static func metrics(_ eventLog: EventLog) -> String {
        NotificationDelivery.metrics(eventLog)
    }
}
