import Foundation
import Notify
import Pipeline
import PlantModel
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

    init(config: PlantConfig, pipeline: Pipeline, eventLog: EventLog, logger: Logger) {
        // Sent and failed notifications go with the samples' retention (`retentionDays`).
        eventLog.addMaintenance { db, cutoff in try Outbox.prune(before: cutoff, in: db) >= 5000 }
        let planner = NotificationPlanner(config: config)
        guard planner.isActive else {
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
        let delivery = NotificationDelivery(eventLog: eventLog, logger: logger)
        self.delivery = delivery
        pipeline.addEmissionObserver { emission in
            let list = planner.notifications(for: emission.events, now: Date())
            guard !list.isEmpty else { return }
            emission.write { db in try delivery.write(list, to: db) }
        }
    }

    /// The outbox counts for `/metrics` (zero rows when notifications were never used).
    static func metrics(_ eventLog: EventLog) -> String {
        NotificationDelivery.metrics(eventLog)
    }
}
