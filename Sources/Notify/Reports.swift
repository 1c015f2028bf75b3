import Foundation
import PlantModel
import Runtime

/// Scheduled reports as notifications (README "Energy and equipment health"): one message per
/// recipient and notify channel, through the same outbox and delivery lanes as alerts. Pure.
public enum ReportNotifications {
    /// The messages of one report. `id` must be unique per report run (e.g. `report-equipment-<ms>`);
    /// people without channels get nothing.
    public static func messages(config: PlantConfig, id: String, to users: [String], subject: String, text: String,
                                path: String, item: JSON, now: Date) -> [NotifyMessage] {
        var result: [NotifyMessage] = []
        for user in users {
            guard let person = config.people.person(user) else { continue }
            for (index, channel) in person.notify.enumerated() {
                result.append(NotifyMessage(id: "\(id)-\(person.user)-\(index)", to: person.user, channel: channel.type, url: channel.url,
                                            kind: "report", subject: subject, text: text, link: config.people.notify.baseUrl + path,
                                            item: item, createdAt: now, lane: "\(person.user)/\(index)"))
            }
        }
        return result
    }
}

/// When a report is due: every `everyH` hours of wall-clock time after the server started.
public struct ReportSchedule: Sendable, Equatable {
    public let everyS: Double
    public private(set) var next: Date

    public init(everyH: Double, start: Date) {
        everyS = everyH * 3600
        next = start.addingTimeInterval(everyH * 3600)
    }

    /// Whether a report is due at `now`; moves on to the next slot when it is.
    public mutating func due(at now: Date) -> Bool {
        guard now >= next else { return false }
        // A long pause (the machine slept) gives one report, not one per missed slot.
        while next <= now { next = next.addingTimeInterval(everyS) }
        return true
    }
}
