import Foundation
import PlantModel
import Runtime
import Storage

/// Where a notification is in its delivery.
public enum NotificationStatus: String, Sendable, Equatable, CaseIterable {
    /// Waiting for its first attempt or for a retry.
    case pending
    /// A 2xx (and, for WeCom and DingTalk, `errcode` 0) was received.
    case sent
    /// Still not delivered 24 hours after it was created; no more attempts.
    case failed
}

/// One message to one person on one channel (README "Notifications").
public struct NotifyMessage: Sendable, Equatable {
    /// Stable and unique: also the `Idempotency-Key` of every attempt.
    public var id: String
    /// The user it is for.
    public var to: String
    public var channel: NotifyChannel.Kind
    public var url: HTTPURL
    /// `alert` or `defect` (later `overdue`, `escalation`, `andon`).
    public var kind: String
    public var subject: String
    public var text: String
    public var link: String?
    /// The alert or defect as JSON (its event payload).
    public var item: JSON
    public var createdAt: Date
    public var attempts: Int = 0
    public var lastError: String?
    public var sentAt: Date?
    public var status: NotificationStatus = .pending
    /// When the next attempt is due (pending only).
    public var nextAttemptAt: Date
    /// The delivery lane (`user/index of the channel`): one lane delivers strictly in order.
    public var lane: String
    /// Its place in the outbox (0 until stored): a lane delivers in `seq` order.
    public var seq: Int64 = 0

    public init(id: String, to: String, channel: NotifyChannel.Kind, url: HTTPURL, kind: String, subject: String,
                text: String, link: String?, item: JSON, createdAt: Date, lane: String) {
        self.id = id
        self.to = to
        self.channel = channel
        self.url = url
        self.kind = kind
        self.subject = subject
        self.text = text
        self.link = link
        self.item = item
        self.createdAt = createdAt
        self.nextAttemptAt = createdAt
        self.lane = lane
    }

    /// The entry of `GET /api/notifications` (docs/openapi.json `NotifyMessage`).
    public var json: JSON {
        .obj([
            ("id", .string(id)),
            ("to", .string(to)),
            ("channel", .string(channel.rawValue)),
            ("kind", .string(kind)),
            ("subject", .string(subject)),
            ("createdAt", .string(Timestamp.format(createdAt))),
            ("attempts", .int(Int64(attempts))),
            ("lastError", .str(lastError)),
            ("sentAt", .str(sentAt.map(Timestamp.format))),
            ("status", .string(status.rawValue)),
        ])
    }
}

/// The persisted outbox: table `notifications` (migration group `notify`) and its reads and writes.
///
/// Rows are inserted inside the pipeline's transaction, together with the `alert`/`defect` event
/// that caused them, so a committed event's notification is never lost. Times are integer
/// milliseconds since 1970 UTC. `seq` orders a lane.
public enum Outbox {
    public static let migrations = MigrationGroup(name: "notify", migrations: [
        Migration(version: 1, name: "notification outbox", sql: """
            CREATE TABLE notifications (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                recipient TEXT NOT NULL,
                channel TEXT NOT NULL,
                url TEXT NOT NULL,
                kind TEXT NOT NULL,
                subject TEXT NOT NULL,
                text TEXT NOT NULL,
                link TEXT,
                item TEXT NOT NULL,
                created_ms INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                sent_ms INTEGER,
                status TEXT NOT NULL,
                next_ms INTEGER NOT NULL,
                lane TEXT NOT NULL
            );
            CREATE INDEX notifications_lane ON notifications (status, lane, seq);
            CREATE INDEX notifications_created ON notifications (created_ms);
            CREATE INDEX notifications_recipient ON notifications (recipient, created_ms);
            """),
    ])

    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down)) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: (Double(ms) + 0.001) / 1000) }

    // MARK: Writes

    /// Inserts notifications; one whose id is already stored is left as it is. Returns how many were new.
    @discardableResult
    public static func insert(_ notifications: [NotifyMessage], into db: Database) throws -> Int {
        let sql = """
            INSERT OR IGNORE INTO notifications (id, recipient, channel, url, kind, subject, text, link, item, created_ms,
                attempts, last_error, sent_ms, status, next_ms, lane)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, 'pending', ?, ?)
            """
        var inserted = 0
        for n in notifications {
            inserted += try db.run(sql, [.text(n.id), .text(n.to), .text(n.channel.rawValue), .text(n.url.description), .text(n.kind),
                                         .text(n.subject), .text(n.text), n.link.map { .text($0) } ?? .null, .text(n.item.serialized()),
                                         .integer(ms(n.createdAt)), .integer(ms(n.nextAttemptAt)), .text(n.lane)])
        }
        return inserted
    }

    /// Records a delivered notification (only ever after its 2xx).
    public static func markSent(id: String, attempts: Int, at time: Date, in db: Database) throws {
        _ = try db.run("UPDATE notifications SET status = 'sent', attempts = ?, sent_ms = ?, last_error = NULL WHERE id = ? AND status = 'pending'",
                       [.integer(Int64(attempts)), .integer(ms(time)), .text(id)])
    }

    /// Records a failed attempt: the next one is due at `next`, or, with `next` nil, the notification has failed for good.
    public static func markAttemptFailed(id: String, attempts: Int, error: String, next: Date?, in db: Database) throws {
        if let next {
            _ = try db.run("UPDATE notifications SET attempts = ?, last_error = ?, next_ms = ? WHERE id = ? AND status = 'pending'",
                           [.integer(Int64(attempts)), .text(error), .integer(ms(next)), .text(id)])
        } else {
            _ = try db.run("UPDATE notifications SET attempts = ?, last_error = ?, status = 'failed' WHERE id = ? AND status = 'pending'",
                           [.integer(Int64(attempts)), .text(error), .text(id)])
        }
    }

    /// Deletes up to `limit` sent or failed notifications created before `cutoff` (pending ones are
    /// never deleted); returns how many went.
    @discardableResult
    public static func prune(before cutoff: Date, limit: Int = 5000, in db: Database) throws -> Int {
        try db.run("""
            DELETE FROM notifications WHERE seq IN
                (SELECT seq FROM notifications WHERE created_ms < ? AND status != 'pending' ORDER BY created_ms LIMIT ?)
            """, [.integer(ms(cutoff)), .integer(Int64(limit))])
    }

    // MARK: Reads

    static let columns = """
        id, recipient, channel, url, kind, subject, text, link, item, created_ms, attempts, last_error, sent_ms, status, next_ms, lane, seq
        """

    /// A row of `notifications` (the columns of ``listQuery(status:to:limit:)``).
    @Sendable public static func row(_ s: Statement) -> NotifyMessage {
        let url = (try? HTTPURL.parse(s.text(3) ?? "").get()) ?? HTTPURL(host: "invalid", port: 80, path: "/")
        var n = NotifyMessage(id: s.text(0) ?? "", to: s.text(1) ?? "", channel: NotifyChannel.Kind(rawValue: s.text(2) ?? "") ?? .webhook,
                             url: url, kind: s.text(4) ?? "", subject: s.text(5) ?? "", text: s.text(6) ?? "", link: s.text(7),
                             item: (try? JSON.parse(s.text(8) ?? "null")) ?? .null, createdAt: date(s.int64(9)), lane: s.text(15) ?? "")
        n.attempts = Int(s.int64(10))
        n.lastError = s.text(11)
        n.sentAt = s.isNull(12) ? nil : date(s.int64(12))
        n.status = NotificationStatus(rawValue: s.text(13) ?? "") ?? .pending
        n.nextAttemptAt = date(s.int64(14))
        n.seq = s.int64(16)
        return n
    }

    /// The lanes that have pending notifications.
    public static func pendingLanes(in db: Database) throws -> [String] {
        try db.query("SELECT DISTINCT lane FROM notifications WHERE status = 'pending'", row: { $0.text(0) ?? "" })
    }

    /// The oldest pending notification of a lane: it goes first, the rest of the lane waits for it.
    public static func head(lane: String, in db: Database) throws -> NotifyMessage? {
        try db.query("SELECT \(columns) FROM notifications WHERE status = 'pending' AND lane = ? ORDER BY seq LIMIT 1",
                     [.text(lane)], row: row).first
    }

    /// The next pending notifications of a lane after `seq`, oldest first: a lane reads its work
    /// in batches and delivers them in this order.
    public static func pending(lane: String, after seq: Int64, limit: Int, in db: Database) throws -> [NotifyMessage] {
        try db.query("SELECT \(columns) FROM notifications WHERE status = 'pending' AND lane = ? AND seq > ? ORDER BY seq LIMIT ?",
                     [.text(lane), .integer(seq), .integer(Int64(max(1, limit)))], row: row)
    }

    /// One notification by id.
    public static func notification(id: String, in db: Database) throws -> NotifyMessage? {
        try db.query("SELECT \(columns) FROM notifications WHERE id = ?", [.text(id)], row: row).first
    }

    /// Newest first (`GET /api/notifications?status=&to=`); `limit` clamped to 1…10,000.
    public static func list(status: NotificationStatus? = nil, to user: String? = nil, limit: Int = 100,
                            in db: Database) throws -> [NotifyMessage] {
        try db.query(listQuery(status: status, to: user, limit: min(max(limit, 1), 10_000)), row: row)
    }

    /// The query of ``list(status:to:limit:in:)`` with `limit` as given (a CSV export's may pass
    /// 10,000); rows decode with ``row(_:)``.
    public static func listQuery(status: NotificationStatus?, to user: String?, limit: Int) -> SQLQuery {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if let status { conditions.append("status = ?"); arguments.append(.text(status.rawValue)) }
        if let user { conditions.append("recipient = ?"); arguments.append(.text(user)) }
        arguments.append(.integer(Int64(max(limit, 0))))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return SQLQuery("SELECT \(columns) FROM notifications \(whereClause) ORDER BY seq DESC LIMIT ?", arguments)
    }

    /// How many notifications are in each status.
    public static func counts(in db: Database) throws -> [NotificationStatus: Int] {
        var result: [NotificationStatus: Int] = [:]
        for status in NotificationStatus.allCases { result[status] = 0 }
        for (name, count) in try db.query("SELECT status, count(*) FROM notifications GROUP BY status", row: { ($0.text(0) ?? "", Int($0.int64(1))) }) {
            if let status = NotificationStatus(rawValue: name) { result[status] = count }
        }
        return result
    }
}
