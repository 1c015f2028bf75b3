import Foundation
import XCTest
import Notify
import PlantModel
import Quality
import Runtime
import TestSupport
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// The plant config of Stations/plant.json with `people`, `responsibility` and `notify` added, the
/// channels pointing at `receiverPort`; tokens from Stations/tokens.json.
/// With `freeStationPorts`, every PLC endpoint moves to a free port (for `--simulate` beside other tests).
func notifyConfig(receiverPort: UInt16, minSeverity: String = "high", freeStationPorts: Bool = false) throws -> JSON {
    var text = try String(contentsOf: repoRoot.appendingPathComponent("Stations/plant.json"), encoding: .utf8)
    if freeStationPorts {
        for port in [15010, 15020, 15021, 14840, 14841, 15030, 15040] {
            text = text.replacingOccurrences(of: "127.0.0.1:\(port)", with: "127.0.0.1:\(try freePort())")
        }
    }
    guard case .object(var members) = try JSON.parse(text) else { throw SystemError(call: "config", errno: EINVAL) }
    members.removeAll { $0.0 == "auth" }
    members.append(("auth", .obj([("tokensFile", .string(repoRoot.appendingPathComponent("Stations/tokens.json").path))])))
    let base = "http://127.0.0.1:\(receiverPort)"
    members.append(("people", try JSON.parse("""
        [{"user": "li.wei", "name": "Li Wei", "notify": [{"type": "webhook", "url": "\(base)/hooks/li"}]},
         {"user": "zhang.min", "name": "张敏", "notify": [{"type": "wecom", "url": "\(base)/wecom"},
                                                          {"type": "dingtalk", "url": "\(base)/ding"}]}]
        """)))
    members.append(("responsibility", try JSON.parse("""
        [{"station": "WELD-*", "types": ["defect", "quality"], "owner": "li.wei", "escalation": ["zhang.min"]},
         {"types": ["defect"], "owner": "zhang.min"}]
        """)))
    members.append(("due", .obj([("critical", .int(30)), ("high", .int(120))])))
    members.append(("notify", .obj([("minSeverity", .string(minSeverity))])))
    return .object(members)
}

final class NotificationTests: XCTestCase {
    // MARK: Pure parts

    func testBackoffFirstRetryWithinFiveSecondsCappedAtAMinuteGivesUpAfterADay() {
        let policy = RetryPolicy()
        let created = Date(timeIntervalSince1970: 1_800_000_000)
        for jitter in [0.0, 0.5, 1.0] {
            let first = policy.next(after: 1, createdAt: created, now: created, jitter: jitter)!
            XCTAssertLessThanOrEqual(first.timeIntervalSince(created), 5)
            XCTAssertGreaterThan(first.timeIntervalSince(created), 0)
            let late = policy.next(after: 40, createdAt: created, now: created.addingTimeInterval(3600), jitter: jitter)!
            XCTAssertLessThanOrEqual(late.timeIntervalSince(created.addingTimeInterval(3600)), 60)
            XCTAssertGreaterThanOrEqual(late.timeIntervalSince(created.addingTimeInterval(3600)), 30)
        }
        let second = policy.next(after: 2, createdAt: created, now: created, jitter: 1)!
        let third = policy.next(after: 3, createdAt: created, now: created, jitter: 1)!
        XCTAssertEqual(second.timeIntervalSince(created), 4, accuracy: 0.001)
        XCTAssertEqual(third.timeIntervalSince(created), 8, accuracy: 0.001)
        XCTAssertNil(policy.next(after: 500, createdAt: created, now: created.addingTimeInterval(24 * 3600 - 10), jitter: 1),
                     "a retry that would fall after 24 h gives up")
    }

    func testChannelBodiesAndHowTheirAnswersAreJudged() throws {
        var n = NotifyMessage(id: "defect-7-raised-zhang.min-0", to: "zhang.min", channel: .webhook,
                              url: try HTTPURL.parse("http://127.0.0.1:9/x").get(), kind: "defect", subject: "S", text: "T",
                              link: "/vehicle.html?id=V1", item: .obj([("id", .int(7))]), createdAt: Date(), lane: "zhang.min/0")
        XCTAssertEqual(ChannelFormat.body(n).serialized(),
                       #"{"id":"defect-7-raised-zhang.min-0","kind":"defect","to":"zhang.min","subject":"S","text":"T","link":"/vehicle.html?id=V1","item":{"id":7}}"#)
        n.channel = .wecom
        XCTAssertEqual(ChannelFormat.body(n).serialized(),
                       #"{"msgtype":"text","text":{"content":"S\nT\n/vehicle.html?id=V1","mentioned_list":["zhang.min"]}}"#)
        n.channel = .dingtalk
        XCTAssertEqual(ChannelFormat.body(n).serialized(),
                       #"{"msgtype":"text","text":{"content":"S\nT\n/vehicle.html?id=V1"},"at":{"atUserIds":["zhang.min"]}}"#)

        func answer(_ status: Int, _ body: String) -> HTTPAnswer { HTTPAnswer(status: status, body: Array(body.utf8)) }
        XCTAssertNil(ChannelFormat.failure(of: answer(204, ""), channel: .webhook))
        XCTAssertEqual(ChannelFormat.failure(of: answer(500, "boom"), channel: .webhook), "HTTP 500: boom")
        XCTAssertNil(ChannelFormat.failure(of: answer(200, #"{"errcode":0,"errmsg":"ok"}"#), channel: .wecom))
        XCTAssertEqual(ChannelFormat.failure(of: answer(200, #"{"errcode":93000,"errmsg":"invalid webhook url"}"#), channel: .wecom),
                       "errcode 93000: invalid webhook url")
        XCTAssertEqual(ChannelFormat.failure(of: answer(200, "ok"), channel: .dingtalk), "HTTP 200 without an errcode")
    }

    func testConfigBlocksAreOptionalAndErrorsNameTheJSONPath() throws {
        let plain = try PlantConfig.load(path: repoRoot.appendingPathComponent("Stations/plant.json").path)
        XCTAssertTrue(plain.people.isEmpty)
        XCTAssertFalse(NotificationPlanner(config: plain).isActive)

        let good = try PlantConfig.decode(json: notifyConfig(receiverPort: 9100), file: "p.json", directory: repoRoot)
        XCTAssertEqual(good.people.people.map(\.user), ["li.wei", "zhang.min"])
        XCTAssertEqual(good.people.people[1].notify.map(\.type), [.wecom, .dingtalk])
        XCTAssertEqual(good.people.responsibility.first?.escalation, ["zhang.min"])

        func error(_ edit: (inout [(String, JSON)]) throws -> Void) throws -> String {
            guard case .object(var members) = try notifyConfig(receiverPort: 9100) else { return "" }
            try edit(&members)
            do {
                _ = try PlantConfig.decode(json: .object(members), file: "p.json", directory: repoRoot)
                return "accepted"
            } catch let error as ConfigError {
                return "\(error.path): \(error.message)"
            }
        }
        func replace(_ key: String, _ json: String) -> (inout [(String, JSON)]) throws -> Void {
            { members in
                members.removeAll { $0.0 == key }
                members.append((key, try JSON.parse(json)))
            }
        }
        XCTAssertEqual(try error(replace("people", #"[{"user": "a", "notify": [{"type": "sms", "url": "http://x:1/"}]}]"#)),
                       #"people[0].notify[0].type: "sms" is not a channel type (webhook, wecom, dingtalk)"#)
        XCTAssertEqual(try error(replace("people", #"[{"user": "a", "notify": [{"type": "webhook", "url": "ftp://x/"}]}]"#)),
                       #"people[0].notify[0].url: "ftp://x/" is not an http:// or https:// address"#)
        XCTAssertEqual(try error(replace("people", #"[{"user": "li.wei", "notify": [{"type": "wecom", "url": "http://relay.plant/x"}]}, {"user": "zhang.min"}]"#)),
                       "accepted", "a host name is looked up when delivering")
        XCTAssertEqual(try error(replace("people", #"[{"user": "a", "notify": [{"type": "wecom", "url": "http://relay plant/x"}]}]"#)),
                       #"people[0].notify[0].url: host "relay plant" is neither an IPv4 address nor a DNS name"#)
        XCTAssertEqual(try error(replace("people", #"[{"user": "a"}, {"user": "a"}]"#)), #"people[1].user: user "a" is listed twice"#)
        XCTAssertEqual(try error(replace("responsibility", #"[{"owner": "nobody"}]"#)),
                       #"responsibility[0].owner: "nobody" is not in people"#)
        XCTAssertEqual(try error(replace("responsibility", #"[{"owner": "li.wei", "severity": "urgent"}]"#)),
                       #"responsibility[0].severity: "urgent" is not a severity (low, medium, high, critical)"#)
        XCTAssertEqual(try error(replace("notify", #"{"minSeverity": "loud"}"#)),
                       #"notify.minSeverity: "loud" is not a severity (low, medium, high, critical)"#)
        XCTAssertEqual(try error(replace("due", #"{"high": 0}"#)), "due.high: 0 is out of range 1…525600")
    }

    func testTheFirstMatchingRuleOwnerIsNotifiedOnEachOfTheirChannels() throws {
        let config = try PlantConfig.decode(json: notifyConfig(receiverPort: 9100), file: "p.json", directory: repoRoot)
        let planner = NotificationPlanner(config: config)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func defect(_ id: Int, station: String, severity: String, change: String = "raised") -> NewEvent {
            NewEvent(type: "defect", station: station, time: now, data: #"{"id":\#(id),"vehicleId":"VIN1","station":"\#(station)","code":"D1","description":"dent","severity":"\#(severity)","status":"open","change":"\#(change)"}"#)
        }
        let weld = planner.notifications(for: [defect(1, station: "WELD-02", severity: "high")], now: now)
        XCTAssertEqual(weld.map(\.id), ["defect-1-raised-li.wei-0"])
        XCTAssertEqual(weld.first?.lane, "li.wei/0")
        XCTAssertEqual(weld.first?.link, "/vehicle.html?id=VIN1")
        let paint = planner.notifications(for: [defect(2, station: "PAINT-01", severity: "critical")], now: now)
        XCTAssertEqual(paint.map(\.id), ["defect-2-raised-zhang.min-0", "defect-2-raised-zhang.min-1"])
        XCTAssertEqual(paint.map(\.channel), [.wecom, .dingtalk])
        XCTAssertEqual(planner.notifications(for: [defect(3, station: "WELD-01", severity: "medium")], now: now).count, 0,
                       "defects below high are not notified")
        XCTAssertEqual(planner.notifications(for: [defect(4, station: "WELD-01", severity: "high", change: "resolved")], now: now).count, 0)
        let alert = NewEvent(type: "alert", station: "WELD-01", time: now,
                             data: #"{"id":9,"type":"quality","severity":"high","station":"WELD-01","message":"torque out of spec","change":"raised"}"#)
        XCTAssertEqual(planner.notifications(for: [alert], now: now).map(\.id), ["alert-9-raised-li.wei-0"])
        let connection = NewEvent(type: "alert", station: "WELD-01", time: now,
                                  data: #"{"id":10,"type":"connection","severity":"high","station":"WELD-01","message":"offline","change":"raised"}"#)
        XCTAssertEqual(planner.notifications(for: [connection], now: now).count, 0, "no rule takes connection alerts")
        let low = try PlantConfig.decode(json: notifyConfig(receiverPort: 9100, minSeverity: "critical"), file: "p.json", directory: repoRoot)
        XCTAssertEqual(NotificationPlanner(config: low).notifications(for: [alert], now: now).count, 0, "below notify.minSeverity")
        XCTAssertTrue(ResponsibilityRule.glob("WELD-*", matches: "WELD-01"))
        XCTAssertTrue(ResponsibilityRule.glob("?ELD-0?", matches: "WELD-01"))
        XCTAssertFalse(ResponsibilityRule.glob("WELD-*", matches: "PAINT-01"))
    }

    func testOwnershipAssignsTheFirstMatchingRuleWithItsDueTime() throws {
        let config = try PlantConfig.decode(json: notifyConfig(receiverPort: 9100), file: "p.json", directory: repoRoot)
        let ownership = Ownership(config: config)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        XCTAssertEqual(ownership.assign(type: "defect", station: "WELD-01", severity: .high, at: t),
                       Assignment(owner: "li.wei", dueAt: t.addingTimeInterval(120 * 60), escalation: ["zhang.min"]))
        XCTAssertEqual(ownership.assign(type: "defect", station: "PAINT-01", severity: .critical, at: t),
                       Assignment(owner: "zhang.min", dueAt: t.addingTimeInterval(30 * 60), escalation: []))
        XCTAssertEqual(ownership.assign(type: "connection", station: "PAINT-01", severity: .low, at: t),
                       Assignment(owner: nil, dueAt: nil, escalation: []), "no rule matches: no owner")
        let stored = try XCTUnwrap(ownership.assign(type: "quality", station: "WELD-02", severity: .medium, at: t))
        XCTAssertEqual(Assignment(stored: stored.stored), stored)
        let plain = try PlantConfig.load(path: repoRoot.appendingPathComponent("Stations/plant.json").path)
        XCTAssertNil(Ownership(config: plain).assign(type: "defect", station: "WELD-01", severity: .high, at: t),
                     "without rules nothing is assigned (and the JSON has no owner fields)")

        var engine = try QualityEngine(config: config)
        let outputs = try engine.raiseDefect(vehicleId: "VIN1", station: "WELD-01", code: "D", description: "dent", severity: .high,
                                             user: Principal(user: "li.wei", role: .quality), at: t)
        guard case .defect(let defect, _)? = outputs.first else { return XCTFail("no defect") }
        XCTAssertEqual(defect.json["owner"]?.stringValue, "li.wei")
        XCTAssertEqual(defect.json["dueAt"]?.stringValue, Timestamp.format(t.addingTimeInterval(7200)))
        XCTAssertEqual(defect.json["escalation"], .array([.string("zhang.min")]))
    }

    func testAssigningAnAlertKeepsItsEscalationAndChecksTheOwner() throws {
        let config = try PlantConfig.decode(json: notifyConfig(receiverPort: 9100), file: "p.json", directory: repoRoot)
        var engine = try QualityEngine(config: config)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        _ = engine.process(.connection(ConnectionChange(station: "WELD-01", state: .offline, time: t, reason: "refused")))
        let raised = engine.process(.tick(t.addingTimeInterval(3600)))
        guard case .alert(let alert, .raised)? = raised.first(where: { if case .alert = $0 { return true }; return false }) else {
            return XCTFail("no connection alert: \(raised)")
        }
        XCTAssertEqual(alert.assignment, Assignment(owner: nil, dueAt: nil, escalation: []), "no rule takes connection alerts")
        XCTAssertTrue(alert.json["owner"]?.isNull == true, "with rules the owner is shown, null when none matched")
        let user = Principal(user: "li.wei", role: .quality)
        let due = t.addingTimeInterval(7200)
        let outputs = try engine.assignAlert(id: alert.id, owner: "zhang.min", dueAt: due, by: user, at: t.addingTimeInterval(3601))
        guard case .alert(let assigned, .assigned)? = outputs.first else { return XCTFail("no assigned change") }
        XCTAssertEqual(assigned.assignment, Assignment(owner: "zhang.min", dueAt: due, escalation: []))
        XCTAssertEqual(engine.alert(id: alert.id)?.assignment?.owner, "zhang.min", "kept for later changes")
        guard case .audit(let entry)? = outputs.last else { return XCTFail("not audited") }
        XCTAssertEqual(entry.action, "alert.assign")
        XCTAssertThrowsError(try engine.assignAlert(id: alert.id, owner: "nobody", dueAt: nil, by: user, at: t)) { error in
            XCTAssertEqual((error as? QualityActionError).map { "\($0)" }, "\(QualityActionError.invalid("owner \"nobody\" is not in the plant config's people"))")
        }
        XCTAssertThrowsError(try engine.assignAlert(id: 999, owner: "li.wei", dueAt: nil, by: user, at: t))
    }

    func testAnOpenDefectPastItsDueTimeBecomesOverdueOnceAndItsOwnerIsTold() throws {
        let config = try PlantConfig.decode(json: notifyConfig(receiverPort: 9100), file: "p.json", directory: repoRoot)
        var engine = try QualityEngine(config: config)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        let user = Principal(user: "li.wei", role: .quality)
        _ = engine.process(.tick(t))
        _ = try engine.raiseDefect(vehicleId: "VIN1", station: "WELD-01", code: "D", description: "dent", severity: .high, user: user, at: t)
        _ = try engine.raiseDefect(vehicleId: "VIN2", station: "WELD-01", code: "D", description: "dent", severity: .high, user: user, at: t)
        _ = try engine.resolveDefect(id: 2, comment: "fixed", user: user, at: t.addingTimeInterval(60))
        func overdue(_ outputs: [QualityOutput]) -> [Defect] {
            outputs.compactMap { if case .defect(let d, .overdue) = $0 { return d }; return nil }
        }
        XCTAssertEqual(overdue(engine.process(.tick(t.addingTimeInterval(119 * 60)))).count, 0, "due after 120 min")
        let late = overdue(engine.process(.tick(t.addingTimeInterval(120 * 60 + 1))))
        XCTAssertEqual(late.map(\.id), [1], "the open one only")
        XCTAssertEqual(late.first?.json["overdue"], .bool(true))
        XCTAssertEqual(overdue(engine.process(.tick(t.addingTimeInterval(125 * 60)))).count, 0, "marked once")
        XCTAssertEqual(engine.openDefects.first?.assignment?.overdue, true)

        // Then every alerts.escalateAfterMin (15) the next person of the rule's escalation is told, once each.
        func escalated(_ outputs: [QualityOutput]) -> [Defect] {
            outputs.compactMap { if case .defect(let d, .escalated) = $0 { return d }; return nil }
        }
        XCTAssertEqual(escalated(engine.process(.tick(t.addingTimeInterval(134 * 60)))).count, 0, "not before 15 min")
        let step = escalated(engine.process(.tick(t.addingTimeInterval(135 * 60 + 2))))
        XCTAssertEqual(step.map(\.id), [1])
        XCTAssertEqual(step.first?.json["escalatedTo"], .array([.string("zhang.min")]))
        XCTAssertEqual(escalated(engine.process(.tick(t.addingTimeInterval(200 * 60)))).count, 0, "the list has one person")
        let escalation = NewEvent(type: "defect", station: "WELD-01", time: t, data: step[0].eventJSON(change: .escalated).serialized())
        let told = NotificationPlanner(config: config).notifications(for: [escalation], now: t)
        XCTAssertEqual(told.map(\.id), ["defect-1-escalated-zhang.min-0", "defect-1-escalated-zhang.min-1"])
        XCTAssertEqual(told.first?.kind, "escalation")

        let event = NewEvent(type: "defect", station: "WELD-01", time: t, data: late[0].eventJSON(change: .overdue).serialized())
        let notes = NotificationPlanner(config: config).notifications(for: [event], now: t)
        XCTAssertEqual(notes.map(\.id), ["defect-1-overdue-li.wei-0"])
        XCTAssertEqual(notes.first?.kind, "overdue")
        XCTAssertTrue(notes.first?.subject.hasPrefix("[overdue/逾期]") == true)
    }

    func testAnOverdueAlertEscalatesToTheNextPersonWithItsNextEscalation() throws {
        guard case .object(var members) = try notifyConfig(receiverPort: 9100) else { return XCTFail() }
        members.removeAll { $0.0 == "responsibility" || $0.0 == "due" }
        members.append(("responsibility", try JSON.parse(#"[{"types": ["connection"], "owner": "li.wei", "escalation": ["zhang.min"]}]"#)))
        members.append(("due", try JSON.parse(#"{"high": 20}"#)))
        let config = try PlantConfig.decode(json: .object(members), file: "p.json", directory: repoRoot)
        var engine = try QualityEngine(config: config)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        _ = engine.process(.connection(ConnectionChange(station: "WELD-01", state: .offline, time: t, reason: "refused")))
        var changes: [(AlertChange, Assignment?)] = []
        for minute in stride(from: 1, through: 70, by: 1) {
            for case .alert(let alert, let change) in engine.process(.tick(t.addingTimeInterval(Double(minute) * 60))) {
                changes.append((change, alert.assignment))
            }
        }
        XCTAssertEqual(changes.first?.0, .raised)
        XCTAssertEqual(changes.first?.1?.owner, "li.wei")
        XCTAssertEqual(changes.filter { $0.0 == .overdue }.count, 1, "overdue once")
        let escalations = changes.filter { $0.0 == .escalated }
        let overdueIndex = try XCTUnwrap(changes.firstIndex { $0.0 == .overdue })
        XCTAssertGreaterThanOrEqual(escalations.count, 3, "the alert keeps escalating while unacknowledged")
        XCTAssertTrue(changes[..<overdueIndex].filter { $0.0 == .escalated }.allSatisfy { $0.1?.escalatedTo == [] },
                      "escalations before overdue name nobody")
        let after = changes[overdueIndex...].filter { $0.0 == .escalated }
        XCTAssertEqual(after.first?.1?.escalatedTo, ["zhang.min"], "the first escalation after overdue tells the next person")
        XCTAssertEqual(after.last?.1?.escalatedTo, ["zhang.min"], "then nobody else: the list has one person")
    }

    // MARK: Delivery over real sockets

    func openLog(_ dir: URL) throws -> EventLog {
        var storage = EventLog.Configuration(path: dir.appendingPathComponent("mes.sqlite").path)
        storage.migrations = [Outbox.migrations]
        let log = try EventLog.open(storage, logger: Logger(label: "test", level: .error))
        log.start()
        return log
    }

    /// Outbox rows always commit with the event that caused them (the commit wakes delivery).
    let cause = NewEvent(type: "defect", time: Date(), data: "{}")

    func messages(_ config: PlantConfig, defects: [(Int, String)]) -> [NotifyMessage] {
        let planner = NotificationPlanner(config: config)
        let now = Date()
        return defects.flatMap { id, station in
            planner.notifications(for: [NewEvent(type: "defect", station: station, time: now,
                                                 data: #"{"id":\#(id),"vehicleId":"VIN\#(id)","station":"\#(station)","code":"D","description":"d","severity":"high","change":"raised"}"#)],
                                  now: now)
        }
    }

    func testEveryNotificationArrivesOnceAfterItsSuccessInOrderPerChannel() throws {
        // Per path: 500, a stall past the read timeout, a dropped connection, then success (robots:
        // first a 200 with a non-zero errcode, then errcode 0).
        let receiver = try NotifyReceiver { nth, path in
            switch nth {
            case 0: return .answer(500, "busy")
            case 1: return .stall
            case 2: return .drop
            case 3 where path != "/hooks/li": return .answer(200, #"{"errcode":45009,"errmsg":"api freq out of limit"}"#)
            default: return .answer(200, path == "/hooks/li" ? "" : #"{"errcode":0,"errmsg":"ok"}"#)
            }
        }
        defer { receiver.close() }
        let dir = makeTempDirectory(self)
        let log = try openLog(dir)
        defer { log.close() }
        var settings = NotificationDelivery.Configuration()
        settings.connectTimeoutMs = 1000
        settings.readTimeoutMs = 300
        settings.policy.base = 0.02
        settings.policy.cap = 0.1
        let delivery = NotificationDelivery(eventLog: log, configuration: settings, logger: Logger(label: "test", level: .critical))
        delivery.start()
        defer { delivery.stop() }

        let config = try PlantConfig.decode(json: notifyConfig(receiverPort: receiver.port), file: "p.json", directory: repoRoot)
        let list = messages(config, defects: [(1, "WELD-01"), (2, "PAINT-01"), (3, "WELD-02"), (4, "ASSY-01"), (5, "WELD-01")])
        XCTAssertEqual(list.count, 3 + 2 * 2)
        try log.write(events: [cause]) { db in try delivery.write(list, to: db) }

        let allSent = try eventually(timeout: 60) {
            try log.read { try Outbox.list(status: .sent, in: $0) }.count == list.count
        }
        let states = try log.read { try Outbox.list(in: $0) }.map { "\($0.id) \($0.status) \($0.lastError ?? "")" }
        XCTAssertTrue(allSent, "all sent: \(states)")
        let requests = receiver.received
        for n in list {
            let mine = requests.filter { $0.idempotencyKey == n.id }
            XCTAssertEqual(mine.filter(\.succeeded).count, 1, "\(n.id) succeeds exactly once")
            XCTAssertTrue(mine.last?.succeeded == true, "\(n.id): nothing is sent after its success")
            for request in mine where n.channel == .webhook {
                XCTAssertEqual(request.json?["id"]?.stringValue, n.id, "the body names the notification")
            }
        }
        for path in ["/hooks/li", "/wecom", "/ding"] {
            let keys = requests.filter { $0.path == path }.compactMap(\.idempotencyKey)
            var order: [String] = []
            for key in keys where order.last != key {
                XCTAssertFalse(order.contains(key), "\(path): \(key) is not sent again once the next one started")
                order.append(key)
            }
            XCTAssertEqual(order, list.filter { $0.url.path == path }.map(\.id), "\(path) delivers in order")
        }
        let sent = try log.read { try Outbox.notification(id: list[0].id, in: $0) }
        XCTAssertEqual(sent?.attempts, 4)
        XCTAssertNotNil(sent?.sentAt)
        let robot = try XCTUnwrap(list.first { $0.channel == .wecom })
        XCTAssertEqual(try log.read { try Outbox.notification(id: robot.id, in: $0) }?.attempts, 5, "a non-zero errcode is a failure")
        XCTAssertTrue(NotificationDelivery.metrics(log).contains("mes_notifications{status=\"sent\"} 7"))
    }

    func testANotificationStillUndeliveredAtTheLimitFailsAndTheLaneGoesOn() throws {
        let receiver = try NotifyReceiver { _, _ in .answer(503, "down") }
        defer { receiver.close() }
        let dir = makeTempDirectory(self)
        let log = try openLog(dir)
        defer { log.close() }
        var settings = NotificationDelivery.Configuration()
        settings.policy.base = 0.02
        settings.policy.cap = 0.05
        settings.policy.giveUpAfter = 0.3
        let delivery = NotificationDelivery(eventLog: log, configuration: settings, logger: Logger(label: "test", level: .critical))
        delivery.start()
        defer { delivery.stop() }
        let config = try PlantConfig.decode(json: notifyConfig(receiverPort: receiver.port), file: "p.json", directory: repoRoot)
        let list = messages(config, defects: [(1, "WELD-01"), (2, "WELD-01")])
        try log.write(events: [cause]) { db in try delivery.write(list, to: db) }
        XCTAssertTrue(try eventually(timeout: 30) { try log.read { try Outbox.list(status: .failed, in: $0) }.count == 2 })
        let failed = try log.read { try Outbox.list(status: .failed, in: $0) }
        for n in failed {
            XCTAssertEqual(n.lastError, "HTTP 503: down")
            XCTAssertNil(n.sentAt)
        }
        XCTAssertGreaterThanOrEqual(failed.last?.attempts ?? 0, 2, "the lane's first was retried until the limit")
        XCTAssertEqual(Set(receiver.received.compactMap(\.idempotencyKey)), Set(list.map(\.id)), "the second was tried after the first failed")
        delivery.stop()
        try log.write(events: [cause]) { db in
            try delivery.write([NotifyMessage(id: "old-pending", to: "li.wei", channel: .webhook, url: list[0].url, kind: "defect",
                                              subject: "s", text: "t", link: nil, item: .null,
                                              createdAt: Date(timeIntervalSince1970: 1), lane: "nobody/0")], to: db)
        }
        let pruned = try log.write { db in _ = try Outbox.prune(before: Date().addingTimeInterval(60), in: db) }
        XCTAssertEqual(pruned, [])
        XCTAssertEqual(try log.read { try Outbox.list(in: $0) }.map(\.id), ["old-pending"], "retention takes sent and failed ones, never pending")
    }
}
