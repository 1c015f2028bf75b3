import Foundation
import PlantModel
import Runtime
import Storage

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

/// When a report is due: every `everyH` hours of wall-clock time after the server first started.
///
/// The next due time is stored (``ReportScheduleStore``), so a restart keeps the schedule: the next
/// report comes when it would have without the restart, none twice, and a slot that passed while
/// the server was down is sent at once (one report, however many slots passed).
public struct ReportSchedule: Sendable, Equatable {
    public let everyS: Double
    public private(set) var next: Date

    public init(everyH: Double, start: Date) {
        everyS = everyH * 3600
        next = start.addingTimeInterval(everyH * 3600)
    }

    /// Goes on from a stored next due time (nil: none stored, the first start). A stored time
    /// further away than one interval (the interval was shortened in the config) is brought in
    /// to one interval from `start`.
    public init(everyH: Double, start: Date, storedNext: Date?) {
        self.init(everyH: everyH, start: start)
        if let storedNext, storedNext < next { next = storedNext }
    }

    /// Whether a report is due at `now`; moves on to the next slot when it is.
    public mutating func due(at now: Date) -> Bool {
        guard now >= next else { return false }
        // A long pause (the machine slept) gives one report, not one per missed slot.
        while next <= now { next = next.addingTimeInterval(everyS) }
        return true
    }
}

/// The stored next due time of each scheduled report: table `report_schedule` (migration group
/// `reports`), written in the same transaction as the report's notifications.
public enum ReportScheduleStore {
    public static let migrations = MigrationGroup(name: "reports", migrations: [
        Migration(version: 1, name: "report schedule", sql: """
            CREATE TABLE report_schedule (
                name TEXT PRIMARY KEY,
                next_ms INTEGER NOT NULL
            ) WITHOUT ROWID;
            """),
    ])

    /// The stored next due time of report `name` (e.g. `equipment`), if any.
    public static func next(_ name: String, in db: Database) throws -> Date? {
        try db.query("SELECT next_ms FROM report_schedule WHERE name = ?", [.text(name)],
                     row: { Date(timeIntervalSince1970: Double($0.int64(0)) / 1000) }).first
    }

    /// Stores the next due time of report `name` (whole milliseconds, read back as they were written).
    public static func save(_ name: String, next: Date, in db: Database) throws {
        _ = try db.run("INSERT OR REPLACE INTO report_schedule (name, next_ms) VALUES (?, ?)", [.text(name), .integer(Int64((next.timeIntervalSince1970 * 1000).rounded()))])
    }
}
