import Foundation
import XCTest
import Notify
import PlantModel
import Runtime
import Storage
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The outbox's delivery beyond NotificationTests: kept connections a receiver closes, and a
/// receiver down for ten minutes of the delivery's clock (a ManualClock: no waiting) then up.
final class NotificationDeliveryTests: XCTestCase {
    let cause = NewEvent(type: "defect", time: Date(), data: "{}")

    func openLog(_ dir: URL) throws -> EventLog {
        var storage = EventLog.Configuration(path: dir.appendingPathComponent("mes.sqlite").path)
        storage.migrations = [Outbox.migrations]
        let log = try EventLog.open(storage, logger: Logger(label: "test", level: .error))
        log.start()
        return log
    }

    /// The planner's notifications for high defects raised at `now` (li.wei's webhook for WELD-*,
    /// zhang.min's WeCom and DingTalk for the rest).
    func messages(_ config: PlantConfig, ids: Range<Int>, now: Date) -> [NotifyMessage] {
        let planner = NotificationPlanner(config: config)
        let stations = ["WELD-01", "PAINT-01", "WELD-02", "ASSY-01"]
        return ids.flatMap { id in
            let station = stations[id % stations.count]
            return planner.notifications(for: [NewEvent(type: "defect", station: station, time: now,
                                                        data: #"{"id":\#(id),"vehicleId":"VIN\#(id)","station":"\#(station)","code":"D","description":"d","severity":"high","change":"raised"}"#)],
                                         now: now)
        }
    }

    /// Every notification succeeded exactly once and nothing of it came after its success; each
    /// path got its notifications in creation order.
    func assertOnceInOrder(_ receiver: NotifyReceiver, _ list: [NotifyMessage], file: StaticString = #filePath, line: UInt = #line) {
        let requests = receiver.received
        for n in list {
            let mine = requests.filter { $0.idempotencyKey == n.id }
            XCTAssertEqual(mine.filter(\.succeeded).count, 1, "\(n.id) succeeds exactly once", file: file, line: line)
            XCTAssertTrue(mine.last?.succeeded == true, "\(n.id): nothing after its success", file: file, line: line)
        }
        for path in ["/hooks/li", "/wecom", "/ding"] {
            let succeeded = requests.filter { $0.path == path && $0.succeeded }.compactMap(\.idempotencyKey)
            XCTAssertEqual(succeeded, list.filter { $0.url.path == path }.map(\.id), "\(path) in order", file: file, line: line)
        }
    }

    func testAKeptConnectionTheReceiverClosedIsOpenedAgainAndEachArrivesOnceInOrder() throws {
        // Keep-alive answers, but every connection is closed by the receiver after its third answer
        // without a word: the lane's next POST on it finds it closed and goes out again on a new one.
        let receiver = try NotifyReceiver(keepAliveRequests: 3) { _, path in
            .answer(200, path == "/hooks/li" ? "" : #"{"errcode":0,"errmsg":"ok"}"#)
        }
        defer { receiver.close() }
        let dir = makeTempDirectory(self)
        let log = try openLog(dir)
        defer { log.close() }
        let delivery = NotificationDelivery(eventLog: log, logger: Logger(label: "test", level: .critical))
        delivery.start()
        defer { delivery.stop() }
        let config = try PlantConfig.decode(json: notifyConfig(receiverPort: receiver.port), file: "p.json", directory: repoRoot)
        let first = messages(config, ids: 0..<10, now: Date())
        try log.write(events: [cause]) { db in try delivery.write(first, to: db) }
        XCTAssertTrue(try eventually(timeout: 30) { try log.read { try Outbox.list(status: .sent, in: $0) }.count == first.count })
        // A second run on the lanes' kept (and by now closed) connections.
        let second = messages(config, ids: 10..<20, now: Date())
        try log.write(events: [cause]) { db in try delivery.write(second, to: db) }
        let all = first + second
        XCTAssertTrue(try eventually(timeout: 30) { try log.read { try Outbox.list(status: .sent, limit: 1000, in: $0) }.count == all.count })
        assertOnceInOrder(receiver, all)
        XCTAssertEqual(receiver.received.count, all.count, "a closed kept connection is not a failed attempt: nothing went twice")
        let attempts = try log.read { try Outbox.list(limit: 1000, in: $0) }.map(\.attempts)
        XCTAssertEqual(Set(attempts), [1])
        XCTAssertLessThan(receiver.connections, all.count, "connections are kept between notifications")
        XCTAssertGreaterThanOrEqual(receiver.connections, all.count / 3, "and opened again after the receiver closed them")
    }

    func testAPythonHTTPServerThatFailsStallsAndDropsThenAnswersGetsEachOnceInOrder() throws {
        // Python's http.server (HTTP/1.1, keep-alive), per path: 500, a stall past the read timeout,
        // a dropped connection, then 200.
        let peer = try PeerProcess(script: "notify_receiver.py", arguments: ["1.5"])
        defer { peer.stop() }
        let dir = makeTempDirectory(self)
        let log = try openLog(dir)
        defer { log.close() }
        var settings = NotificationDelivery.Configuration()
        settings.readTimeoutMs = 300
        settings.policy.base = 0.02
        settings.policy.cap = 0.1
        let delivery = NotificationDelivery(eventLog: log, configuration: settings, logger: Logger(label: "test", level: .critical))
        delivery.start()
        defer { delivery.stop() }
        let config = try PlantConfig.decode(json: notifyConfig(receiverPort: peer.port), file: "p.json", directory: repoRoot)
        let list = messages(config, ids: 1..<9, now: Date())
        try log.write(events: [cause]) { db in try delivery.write(list, to: db) }
        let allSent = try eventually(timeout: 60) { try log.read { try Outbox.list(status: .sent, in: $0) }.count == list.count }
        let states = try log.read { try Outbox.list(in: $0) }.map { "\($0.id) \($0.status) \($0.lastError ?? "")" }
        XCTAssertTrue(allSent, states.joined(separator: "\n"))
        // REQ <path> <key> <action> <client port>, in the order the receiver decided them.
        XCTAssertTrue(eventually(timeout: 10) { peer.printedLines.filter { $0.hasPrefix("REQ ") && $0.split(separator: " ").dropFirst(3).first == "200" }.count >= list.count })
        let requests = peer.printedLines.filter { $0.hasPrefix("REQ ") }.map { $0.split(separator: " ").map(String.init) }
        for n in list {
            let actions = requests.filter { $0[2] == n.id }.map { $0[3] }
            XCTAssertEqual(actions.filter { $0 == "200" }.count, 1, "\(n.id) succeeds exactly once: \(actions)")
            XCTAssertEqual(actions.last, "200", "\(n.id): nothing after its success")
        }
        for path in ["/hooks/li", "/wecom", "/ding"] {
            let succeeded = requests.filter { $0[1] == path && $0[3] == "200" }.map { $0[2] }
            XCTAssertEqual(succeeded, list.filter { $0.url.path == path }.map(\.id), "\(path) in order")
            let first = requests.filter { $0[1] == path }.prefix(4).map { $0[3] }
            XCTAssertEqual(Array(first), ["500", "stall", "drop", "200"], "\(path): every failure kind came first")
        }
        let head = try XCTUnwrap(log.read { try Outbox.notification(id: list[0].id, in: $0) })
        XCTAssertEqual(head.attempts, 4, "three failed attempts, then the success")
    }

    func testAReceiverDownTenMinutesOnTheClockThenUpGetsEveryNotificationOnce() throws {
        // The receiver's port is closed (connections refused) for ten minutes of the delivery's clock.
        let probe = try NotifyReceiver { _, _ in .answer(200, "") }
        let port = probe.port
        probe.close()
        let dir = makeTempDirectory(self)
        let log = try openLog(dir)
        defer { log.close() }
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let clock = ManualClock(start)
        let delivery = NotificationDelivery(eventLog: log, clock: clock, logger: Logger(label: "test", level: .critical))
        delivery.start()
        defer { delivery.stop() }
        let config = try PlantConfig.decode(json: notifyConfig(receiverPort: port), file: "p.json", directory: repoRoot)

        /// True once every lane has made every attempt due at the clock's time (and stored its outcome).
        func settled() throws -> Bool {
            let pending = try log.read { try Outbox.list(status: .pending, limit: 10_000, in: $0) }
            var heads: [String: NotifyMessage] = [:]
            for n in pending where heads[n.lane].map({ n.seq < $0.seq }) ?? true { heads[n.lane] = n }
            // Whole milliseconds, as stored.
            let now = (clock.now().timeIntervalSince1970 * 1000).rounded(.down)
            return heads.values.allSatisfy { ($0.nextAttemptAt.timeIntervalSince1970 * 1000).rounded(.down) > now }
        }
        var list: [NotifyMessage] = []
        var id = 0
        // Ten minutes in 5 s steps; two new defects every 30 s.
        for step in 0..<120 {
            if step % 6 == 0 {
                let new = messages(config, ids: id..<(id + 2), now: clock.now())
                id += 2
                list += new
                try log.write(events: [cause]) { db in try delivery.write(new, to: db) }
            }
            XCTAssertTrue(try eventually(timeout: 10) { try settled() }, "step \(step): the due attempts were made")
            clock.advance(by: 5)
            delivery.wake()
        }
        let before = try log.read { try Outbox.list(limit: 10_000, in: $0) }
        XCTAssertTrue(before.allSatisfy { $0.status == .pending }, "nothing is sent or failed while the receiver is down")
        let oldest = try XCTUnwrap(before.last)
        XCTAssertGreaterThan(oldest.attempts, 5, "retried all along")
        XCTAssertLessThan(oldest.attempts, 30, "with backoff, not every step")
        XCTAssertTrue(oldest.lastError?.contains("connect to 127.0.0.1:\(port)") ?? false, oldest.lastError ?? "")

        // Up again on the same port: within a couple of minutes of the clock every one arrives, once.
        let receiver = try NotifyReceiver(port: port) { _, path in
            .answer(200, path == "/hooks/li" ? "" : #"{"errcode":0,"errmsg":"ok"}"#)
        }
        defer { receiver.close() }
        var steps = 0
        while try log.read({ try Outbox.counts(in: $0) })[.pending] ?? 0 > 0 && steps < 48 {
            clock.advance(by: 5)
            delivery.wake()
            steps += 1
            XCTAssertTrue(try eventually(timeout: 10) { try settled() })
        }
        XCTAssertTrue(try eventually(timeout: 10) { try log.read { try Outbox.list(status: .sent, limit: 10_000, in: $0) }.count == list.count },
                      "every notification was delivered within \(steps * 5) s of the clock after the receiver came back")
        XCTAssertLessThanOrEqual(steps, 14, "the backoff is capped at 60 s")
        assertOnceInOrder(receiver, list)
        XCTAssertEqual(receiver.received.count, list.count, "none twice")
        let sent = try log.read { try Outbox.list(status: .sent, limit: 10_000, in: $0) }
        XCTAssertTrue(sent.allSatisfy { ($0.sentAt ?? .distantPast) >= start.addingTimeInterval(600) }, "sent on the delivery's clock")
    }
}

/// The real `mes-server`: notifications piling up for a receiver that is down do not slow polling.
final class NotificationPollingTests: XCTestCase {
    let quality = ["Authorization": "Bearer demo-quality-token"]

    func testTheOutboxGrowingWhileTheReceiverIsDownDoesNotSlowPolling() throws {
        // Down: nobody listens on the receiver's port (each attempt is refused at once).
        let probe = try NotifyReceiver { _, _ in .answer(200, "") }
        let receiverPort = probe.port
        probe.close()
        let dir = makeTempDirectory(self)
        let configPath = dir.appendingPathComponent("plant.json").path
        try notifyConfig(receiverPort: receiverPort, freeStationPorts: true).serialized()
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: productPath("mes-server"))
        process.arguments = ["--config", configPath, "--db", dir.appendingPathComponent("mes.sqlite").path,
                             "--listen", "127.0.0.1:\(port)", "--log-level", "error", "--simulate"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() } }
        let http = TestHTTP(port: port)
        XCTAssertTrue(eventually(timeout: 30) { (try? http.get("/api/health").status) == 200 }, "server did not start")
        let events = try TestSSEClient(port: port, path: "/api/events?types=sample")
        XCTAssertTrue(events.waitUntilSubscribed())

        /// Sample events per second over `seconds` (polling runs at the stations' intervals).
        func sampleRate(seconds: Double) -> Double {
            let started = Monotonic.nanoseconds()
            var count = 0
            while Double(Monotonic.nanoseconds() - started) / 1e9 < seconds {
                count += events.read(count: 100_000, timeout: 0.2).filter { $0.type == "sample" }.count
            }
            return Double(count) / (Double(Monotonic.nanoseconds() - started) / 1e9)
        }
        XCTAssertTrue(eventually(timeout: 30) { !events.read(count: 20, timeout: 0.5).isEmpty }, "samples flow")
        let baseline = sampleRate(seconds: 4)
        XCTAssertGreaterThan(baseline, 1, "the simulated plant polls")

        // Meanwhile the outbox grows: high defects, each notified on the owner's channels, all refused.
        let posting = Flag()
        let posted = Locked(0)
        let poster = Thread {
            let client = TestHTTP(port: port)
            let stations = ["WELD-01", "PAINT-01", "WELD-02", "ASSY-01"]
            var i = 0
            while !posting.isSet {
                let body = #"{"vehicleId":"VIN-P\#(i)","station":"\#(stations[i % 4])","code":"P\#(i)","description":"dent","severity":"high"}"#
                if (try? client.request("POST", "/api/defects", body: body, headers: ["Authorization": "Bearer demo-quality-token"]).status) == 201 {
                    posted.withLock { $0 += 1 }
                }
                i += 1
            }
        }
        poster.start()
        let during = sampleRate(seconds: 4)
        posting.set()
        XCTAssertTrue(eventually(timeout: 10) { poster.isFinished }, "the poster stopped")
        let pending = try XCTUnwrap(http.get("/api/notifications?status=pending&limit=10000", headers: quality).json?.arrayValue)
        XCTAssertGreaterThanOrEqual(pending.count, posted.value, "every defect left at least one notification pending (\(posted.value) posted)")
        XCTAssertGreaterThanOrEqual(posted.value, 50, "the outbox grew")
        // A generous bound: polling keeps at least half its rate while the outbox grows.
        XCTAssertGreaterThan(during, baseline * 0.5, String(format: "samples/s: %.1f before, %.1f while %d defects were notified to a receiver that is down",
                                                            baseline, during, posted.value))
    }
}
