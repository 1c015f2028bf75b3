import Foundation
import PlantModel
import Runtime
import Storage

/// Decides which notifications the pipeline's events call for (README "Notifications").
///
/// Reads only the `alert` and `defect` events a pipeline step emits, so it needs no hook inside
/// the quality engine: a raised alert of `notify.minSeverity` or above, every andon call's alert, a raised defect of
/// severity `high` or above, and every alert or defect that became overdue, go to the owner (the item's `owner`, assigned by the quality engine
/// from the first `responsibility` rule that matches: station glob, process, type, severity), on
/// each of the owner's channels. Items no rule
/// matches, and owners without channels, give no notification. Pure: no I/O, no clock.
public struct NotificationPlanner: Sendable {
    public let config: PlantConfig
    private let minAlertRank: Int
    private static let minDefectRank = PeopleConfig.rank("high")!

    public init(config: PlantConfig) {
        self.config = config
        minAlertRank = PeopleConfig.rank(config.people.notify.minSeverity) ?? 2
    }

    /// False when no person has a channel: the planner then never produces anything.
    public var isActive: Bool { config.people.people.contains { !$0.notify.isEmpty } && !config.people.responsibility.isEmpty }

    /// The notifications for one step's events, created at `now`. Cheap for events of other types.
    public func notifications(for events: [NewEvent], now: Date) -> [NotifyMessage] {
        guard isActive else { return [] }
        var result: [NotifyMessage] = []
        for event in events where event.type == "alert" || event.type == "defect" {
            guard let item = try? JSON.parse(event.data), let change = item["change"]?.stringValue,
                  change == "raised" || change == "overdue" || change == "escalated" else { continue }
            result += notifications(type: event.type, change: change, item: item, now: now)
        }
        return result
    }

    func notifications(type eventType: String, change: String, item: JSON, now: Date) -> [NotifyMessage] {
        guard let id = item["id"]?.intValue, let severity = item["severity"]?.stringValue,
              let rank = PeopleConfig.rank(severity) else { return [] }
        let overdue = change == "overdue" || change == "escalated"
        // An escalation goes to the person it names (the last of `escalatedTo`), once per item.
        var recipient: String?
        if change == "escalated" {
            guard let last = item["escalatedTo"]?.arrayValue?.last?.stringValue else { return [] }
            recipient = last
        }
        let station = item["station"]?.stringValue
        let process = station.flatMap { config.station($0)?.process }
        let itemType: String
        var subject: String
        var text: String
        let link: String
        let due = item["dueAt"]?.stringValue.map { "\nDue / 期限: \($0)" } ?? ""
        if eventType == "alert" {
            // Raised alerts from notify.minSeverity up, andon calls whatever their severity; every overdue one.
            guard let alertType = item["type"]?.stringValue, overdue || rank >= minAlertRank || alertType == "andon" else { return [] }
            itemType = alertType
            let message = item["message"]?.stringValue ?? ""
            subject = "[\(alertType == "andon" ? "andon" : severity)] \(station ?? config.plant): \(message)"
            let headline = overdue ? "Alert overdue, not acknowledged / 报警逾期未确认"
                : alertType == "andon" ? "Andon call / 安灯呼叫" : "Alert raised / 报警"
            text = """
                \(headline): \(message)
                Type / 类型: \(alertType) · Severity / 严重度: \(severity)
                Station / 工位: \(station ?? "-")\(item["vehicleId"]?.stringValue.map { " · Vehicle / 车辆: \($0)" } ?? "")
                Raised / 时间: \(item["raisedAt"]?.stringValue ?? "")
                """ + due
            link = config.people.notify.baseUrl + "/api/alerts/\(id)"
        } else {
            // Raised defects from high up; every overdue one.
            guard overdue || rank >= Self.minDefectRank else { return [] }
            itemType = "defect"
            let vehicle = item["vehicleId"]?.stringValue ?? ""
            let code = item["code"]?.stringValue ?? ""
            let description = item["description"]?.stringValue ?? ""
            subject = "[\(severity)] defect \(code) on \(vehicle): \(description)"
            text = """
                \(overdue ? "Defect overdue, still open / 缺陷逾期未处理" : "Defect raised / 缺陷"): \(code) \(description)
                Vehicle / 车辆: \(vehicle) · Severity / 严重度: \(severity)
                Station / 工位: \(station ?? "-") · By / 提交人: \(item["raisedBy"]?.stringValue ?? "")
                Raised / 时间: \(item["raisedAt"]?.stringValue ?? "")
                """ + due
            link = config.people.notify.baseUrl + "/vehicle.html?id=" + Self.queryEscaped(vehicle)
        }
        if change == "escalated" {
            subject = "[escalated/升级] " + subject
            text += "\nOwner / 负责人: \(item["owner"]?.stringValue ?? "-")"
        } else if overdue {
            subject = "[overdue/逾期] " + subject
        }
        // The owner the quality engine assigned (`owner` in the item); the rules again for an item without one.
        let ownerName: String?
        if let assigned = item["owner"] {
            ownerName = assigned.stringValue
        } else {
            ownerName = config.people.rule(station: station, process: process, type: itemType, severity: severity)?.owner
        }
        guard let name = recipient ?? ownerName, let owner = config.people.person(name) else { return [] }
        let kind = change == "escalated" ? "escalation" : overdue ? "overdue" : itemType == "andon" ? "andon" : eventType
        return owner.notify.enumerated().map { index, channel in
            NotifyMessage(id: "\(eventType)-\(id)-\(change)-\(owner.user)-\(index)", to: owner.user, channel: channel.type,
                          url: channel.url, kind: kind, subject: subject, text: text, link: link, item: item,
                          createdAt: now, lane: "\(owner.user)/\(index)")
        }
    }

    static func queryEscaped(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
