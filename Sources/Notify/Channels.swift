import Foundation
import PlantModel
import Runtime

/// The request body of each channel and how its answer is judged (README "Notifications").
public enum ChannelFormat {
    /// The JSON body for a notification on its channel.
    public static func body(_ n: NotifyMessage) -> JSON {
        switch n.channel {
        case .webhook:
            return .obj([
                ("id", .string(n.id)), ("kind", .string(n.kind)), ("to", .string(n.to)), ("subject", .string(n.subject)),
                ("text", .string(n.text)), ("link", .str(n.link)), ("item", n.item),
            ])
        case .wecom:
            return .obj([
                ("msgtype", .string("text")),
                ("text", .obj([("content", .string(content(n))), ("mentioned_list", .array([.string(n.to)]))])),
            ])
        case .dingtalk:
            return .obj([
                ("msgtype", .string("text")),
                ("text", .obj([("content", .string(content(n)))])),
                ("at", .obj([("atUserIds", .array([.string(n.to)]))])),
            ])
        }
    }

    /// The one text of the robot channels: subject, text and link.
    static func content(_ n: NotifyMessage) -> String {
        var text = n.subject + "\n" + n.text
        if let link = n.link { text += "\n" + link }
        return text
    }

    /// nil when the answer means delivered; otherwise why not. A webhook needs a 2xx; WeCom and
    /// DingTalk robots answer 200 with `{"errcode": 0}` on success and a non-zero `errcode` on failure.
    public static func failure(of answer: HTTPAnswer, channel: NotifyChannel.Kind) -> String? {
        guard (200..<300).contains(answer.status) else {
            let body = String(decoding: answer.body.prefix(200), as: UTF8.self)
            return "HTTP \(answer.status)" + (body.isEmpty ? "" : ": \(body)")
        }
        switch channel {
        case .webhook:
            return nil
        case .wecom, .dingtalk:
            guard let json = try? JSON.parse(bytes: answer.body), let code = json["errcode"]?.intValue else {
                return "HTTP \(answer.status) without an errcode"
            }
            if code == 0 { return nil }
            return "errcode \(code): \(json["errmsg"]?.stringValue ?? "")"
        }
    }
}

/// When to try again: exponential backoff with jitter, capped, for a limited time.
///
/// The n-th failed attempt (n ≥ 1) waits `min(cap, base · 2^(n−1))` times a factor drawn from
/// 0.5…1 (so the first retry comes within `base`, 2 s by default, well inside 5 s); after `giveUpAfter`
/// (24 h) from the notification's creation it is `failed`.
public struct RetryPolicy: Sendable, Equatable {
    public var base: TimeInterval = 2
    public var cap: TimeInterval = 60
    public var giveUpAfter: TimeInterval = 24 * 3600

    public init() {}

    /// The time of the next attempt after failed attempt `attempts` (1-based) at `now`, or nil to give up.
    /// `jitter` is a number in 0…1 (random in production).
    public func next(after attempts: Int, createdAt: Date, now: Date, jitter: Double) -> Date? {
        // The doubling of every reconnecting link (Runtime's Backoff), with half of it as jitter.
        let baseMs = Backoff.baseMs(initialMs: max(1, Int(base * 1000)), maxMs: max(1, Int(cap * 1000)), failures: attempts - 1)
        let delay = Double(baseMs) / 1000 * (0.5 + 0.5 * min(max(jitter, 0), 1))
        let at = now.addingTimeInterval(delay)
        if at.timeIntervalSince(createdAt) > giveUpAfter { return nil }
        return at
    }
}
