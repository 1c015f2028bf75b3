import BenchSupport
import CBench
import Foundation
import MESApp
import Notify
import PlantModel
import Runtime
import Simulation
import Storage
#if canImport(Glibc)
import Glibc
#endif

// Notification benchmarks (README "Notifications"): the outbox and its delivery lanes against a
// receiver of our own on loopback. Figures: delivered per second, trigger → delivery p99 at a
// sustained 1,000/s, a receiver down ten minutes (on a ManualClock) then up, and sample → SSE p99
// of a live server while its outbox drains 100,000 notifications.
extension BenchSuite {
    func notify() throws {
        let lanes = 8
        // 1. Capacity: an outbox filled beforehand, drained by 8 lanes, then by one.
        let count = short ? 4_000 : 50_000
        let eight = try drainFilledOutbox(lanes: lanes, count: count)
        let one = try drainFilledOutbox(lanes: 1, count: short ? 1_000 : 10_000)
        let previous = try previousLaneLoop(count: short ? 300 : 2_000)
        Self.figure("notifications delivered to a local receiver (\(lanes) lanes, \(count) queued)", eight.perSecond, unit: "notifications/s",
                    target: 1000, higherIsBetter: true,
                    reference: String(format: "one lane: %.0f/s; the previous lane loop (a connection and a waited commit per notification) in the same run: %.0f/s; %d connections opened; %d sent twice; load avg %@",
                                      one.perSecond, previous, eight.connections, eight.duplicates, loadAverage()))

        // 2. Sustained: triggers at 1,000/s (an event and its notification committed together, as the pipeline does).
        let sustained = try sustainedTriggers(lanes: lanes, perSecond: 1000, seconds: short ? 2 : 10)
        Self.figure("trigger → delivery p99 at 1000 notifications/s sustained (receiver up)",
                    sustained.p99, unit: "ms", target: 1000, higherIsBetter: false,
                    reference: String(format: "p50 %.1f ms, max %.1f ms; %d triggered in %.1f s, %d delivered (%.0f/s), %d sent twice",
                                      sustained.p50, sustained.max, sustained.triggered, sustained.seconds, sustained.delivered,
                                      sustained.deliveredPerSecond, sustained.duplicates))

        // 3. A receiver down ten minutes of the delivery's clock, then up.
        let outage = try receiverOutage(lanes: lanes, minutes: 10, perSecond: short ? 1 : 10)
        Self.figure("receiver down 10 min (simulated clock) then up: notifications delivered", Double(outage.delivered), unit: "notifications",
                    target: Double(outage.created), higherIsBetter: true,
                    reference: String(format: "%d created during the outage; %d sent twice; all delivered %.0f s (clock) after the receiver came back, %.1f s real for the whole run; oldest tried %d times while down",
                                      outage.created, outage.duplicates, outage.drainClockSeconds, outage.realSeconds, outage.oldestAttempts))
        Self.figure("receiver down 10 min then up: notifications sent twice", Double(outage.duplicates), unit: "notifications",
                    target: 0, higherIsBetter: false)

        // 4. Sample → SSE p99 of a live server, before and while its outbox drains.
        let drain = try sseWhileDraining(notifications: short ? 5_000 : 100_000, people: 10, baselineSeconds: short ? 3 : 15)
        let bound = max(drain.baselineP99 * 1.25, drain.baselineP99 + 5)
        Self.figure("sample → SSE p99 while the outbox drains \(drain.notifications) notifications", drain.drainP99, unit: "ms",
                    target: (bound * 10).rounded() / 10, higherIsBetter: false,
                    reference: String(format: "same run before the drain: p99 %.1f ms, p50 %.1f ms (%d samples); while draining: p50 %.1f ms (%d samples); target: the baseline p99 + 25 %% or + 5 ms; drained in %.1f s (%.0f/s), %d sent twice; outbox filled in %.1f s; load avg %@",
                                      drain.baselineP99, drain.baselineP50, drain.baselineCount, drain.drainP50, drain.drainCount,
                                      drain.drainSeconds, Double(drain.notifications) / drain.drainSeconds, drain.duplicates, drain.fillSeconds,
                                      loadAverage()))
    }

    // MARK: The parts

    /// A temporary event log with the outbox's table, and a delivery on it (not started).
    private func outboxRig(clock: any WallClock = SystemWallClock()) throws -> (log: EventLog, delivery: NotificationDelivery, cleanup: () -> Void) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var storage = EventLog.Configuration(path: dir.appendingPathComponent("outbox.sqlite").path)
        storage.migrations = [Outbox.migrations]
        let log = try EventLog.open(storage, clock: clock, logger: Logger(label: "bench", level: .error))
        log.start()
        let delivery = NotificationDelivery(eventLog: log, clock: clock, logger: Logger(label: "bench", level: .critical))
        return (log, delivery, {
            delivery.stop()
            log.close()
            try? FileManager.default.removeItem(at: dir)
        })
    }

    /// A webhook notification of a high defect to person `lane` (one lane per person), as the planner makes them.
    private func benchMessage(_ n: Int, lane: Int, port: UInt16, at time: Date) -> NotifyMessage {
        let item = JSON.obj([
            ("id", .int(Int64(n))), ("vehicleId", .string("LSVBENCH\(100_000 + n)")), ("station", .string("WELD-01")),
            ("code", .string("D17")), ("description", .string("dent on the left door")), ("severity", .string("high")),
            ("status", .string("open")), ("raisedAt", .string(Timestamp.format(time))), ("owner", .string("p\(lane)")),
            ("change", .string("raised")),
        ])
        return NotifyMessage(id: "bench-\(n)-p\(lane)-0", to: "p\(lane)", channel: .webhook,
                             url: HTTPURL(host: "127.0.0.1", port: port, path: "/hooks/p\(lane)"), kind: "defect",
                             subject: "[high] defect D17 on LSVBENCH\(100_000 + n): dent on the left door",
                             text: "Defect raised / 缺陷: D17 dent on the left door\nVehicle / 车辆: LSVBENCH\(100_000 + n) · Severity / 严重度: high",
                             link: "http://127.0.0.1:8080/vehicle.html?id=LSVBENCH\(100_000 + n)", item: item,
                             createdAt: time, lane: "p\(lane)/0")
    }

    private func waitUntil(timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Monotonic.nanoseconds() + UInt64(timeout * 1e9)
        while Monotonic.nanoseconds() < deadline {
            if try condition() { return true }
            usleep(2_000)
        }
        return try condition()
    }

    /// Fills the outbox with `count` notifications over `lanes` lanes, then starts delivery: delivered per second.
    private func drainFilledOutbox(lanes: Int, count: Int) throws -> (perSecond: Double, connections: Int, duplicates: Int) {
        let receiver = try BenchReceiver()
        defer { receiver.close() }
        let rig = try outboxRig()
        defer { rig.cleanup() }
        let now = Date()
        for start in stride(from: 0, to: count, by: 10_000) {
            let chunk = (start..<min(count, start + 10_000)).map { benchMessage($0, lane: $0 % lanes, port: receiver.port, at: now) }
            let delivery = rig.delivery
            try rig.log.write { db in try delivery.write(chunk, to: db) }
        }
        let t0 = Monotonic.nanoseconds()
        rig.delivery.start()
        guard waitUntil(timeout: 300, { receiver.distinct >= count }) else {
            throw UsageError("notify: only \(receiver.distinct) of \(count) notifications arrived")
        }
        let seconds = Double(receiver.lastArrival - t0) / 1e9
        guard try waitUntil(timeout: 30, { try rig.log.read { try Outbox.counts(in: $0) }[.sent] == count }) else {
            throw UsageError("notify: the sent marks were not all stored")
        }
        return (Double(count) / seconds, receiver.connections, receiver.duplicates)
    }

    /// The lane loop as it was before batching (one lane): read the head, POST it on a new
    /// connection, wait for its `sent` mark to commit, next. Delivered per second.
    private func previousLaneLoop(count: Int) throws -> Double {
        let receiver = try BenchReceiver()
        defer { receiver.close() }
        let rig = try outboxRig()
        defer { rig.cleanup() }
        let now = Date()
        let list = (0..<count).map { benchMessage($0, lane: 0, port: receiver.port, at: now) }
        let delivery = rig.delivery
        try rig.log.write { db in try delivery.write(list, to: db) }
        let client = HTTPPost()
        let t0 = Monotonic.nanoseconds()
        while let n = try rig.log.read({ try Outbox.head(lane: "p0/0", in: $0) }) {
            let answer = try client.post(n.url, body: Array(ChannelFormat.body(n).serialized().utf8), headers: [("Idempotency-Key", n.id)])
            guard ChannelFormat.failure(of: answer, channel: n.channel) == nil else { throw UsageError("notify: the receiver refused") }
            let id = n.id
            try rig.log.write { db in try Outbox.markSent(id: id, attempts: 1, at: Date(), in: db) }
        }
        return Double(count) / (Double(Monotonic.nanoseconds() - t0) / 1e9)
    }

    private struct Sustained {
        var triggered = 0, delivered = 0, duplicates = 0
        var seconds = 0.0, deliveredPerSecond = 0.0, p50 = Double.nan, p99 = Double.nan, max = Double.nan
    }

    /// Triggers `perSecond` notifications for `seconds` (each an event and its notification in one
    /// write, as the pipeline's emission does), spread over `lanes`; trigger → arrival latencies.
    private func sustainedTriggers(lanes: Int, perSecond: Int, seconds: Double) throws -> Sustained {
        let receiver = try BenchReceiver()
        defer { receiver.close() }
        let rig = try outboxRig()
        defer { rig.cleanup() }
        rig.delivery.start()
        var triggeredAt: [String: UInt64] = [:]
        let total = Int(Double(perSecond) * seconds)
        let interval = 1e9 / Double(perSecond)
        let t0 = Monotonic.nanoseconds()
        for i in 0..<total {
            let due = t0 + UInt64(Double(i) * interval)
            while Monotonic.nanoseconds() < due { usleep(100) }
            let m = benchMessage(i, lane: i % lanes, port: receiver.port, at: Date())
            let event = NewEvent(type: "defect", station: "WELD-01", time: m.createdAt, data: m.item.serialized())
            triggeredAt[m.id] = Monotonic.nanoseconds()
            let delivery = rig.delivery
            rig.log.enqueue(events: [event]) { db in try delivery.write([m], to: db) }
        }
        let triggerSeconds = Double(Monotonic.nanoseconds() - t0) / 1e9
        _ = waitUntil(timeout: 60) { receiver.distinct >= total }
        var latencies: [Double] = []
        for (id, at) in triggeredAt {
            if let arrived = receiver.arrival(id) { latencies.append(Double(Int64(arrived) - Int64(at)) / 1e6) }
        }
        let sorted = latencies.sorted()
        var result = Sustained()
        result.triggered = total
        result.delivered = latencies.count
        result.duplicates = receiver.duplicates
        result.seconds = triggerSeconds
        result.deliveredPerSecond = Double(latencies.count) / (Double(receiver.lastArrival - t0) / 1e9)
        result.p50 = percentile(sorted: sorted, 0.5)
        result.p99 = percentile(sorted: sorted, 0.99)
        result.max = percentile(sorted: sorted, 1)
        return result
    }

    private struct Outage {
        var created = 0, delivered = 0, duplicates = 0, oldestAttempts = 0
        var drainClockSeconds = 0.0, realSeconds = 0.0
    }

    /// The receiver's port closed for `minutes` of a ManualClock while notifications are created at
    /// `perSecond` (clock), then a receiver on the same port: every one delivered, none twice.
    private func receiverOutage(lanes: Int, minutes: Int, perSecond: Int) throws -> Outage {
        let started = Monotonic.nanoseconds()
        let probe = try BenchReceiver()
        let port = probe.port
        probe.close()
        let clock = ManualClock(Date(timeIntervalSince1970: 1_800_000_000))
        let rig = try outboxRig(clock: clock)
        defer { rig.cleanup() }
        rig.delivery.start()
        /// True once every lane has made the attempt due at the clock's time and stored its outcome.
        func settled() throws -> Bool {
            let nowMs = Int64((clock.now().timeIntervalSince1970 * 1000).rounded(.down))
            let due = try rig.log.read { db in
                try db.query("""
                    SELECT count(*) FROM notifications n WHERE status = 'pending' AND next_ms <= ?
                        AND seq = (SELECT min(seq) FROM notifications WHERE status = 'pending' AND lane = n.lane)
                    """, [.integer(nowMs)]) { $0.int64(0) }.first ?? 0
            }
            return due == 0
        }
        var created = 0
        for _ in 0..<(minutes * 60) {
            let batch = (created..<(created + perSecond)).map { benchMessage($0, lane: $0 % lanes, port: port, at: clock.now()) }
            created += perSecond
            let delivery = rig.delivery
            try rig.log.write(events: [NewEvent(type: "defect", time: clock.now(), data: "{}")]) { db in try delivery.write(batch, to: db) }
            guard try waitUntil(timeout: 10, settled) else {
                let rows = try rig.log.read { try Outbox.list(status: .pending, limit: 20, in: $0) }
                throw UsageError("notify outage: attempts did not settle at \(clock.now()): \(rows.map { "\($0.seq) \($0.lane) \($0.attempts) \($0.nextAttemptAt) \($0.lastError ?? "")" })")
            }
            clock.advance(by: 1)
            rig.delivery.wake()
        }
        let pending = try rig.log.read { try Outbox.list(status: .pending, limit: 10_000, in: $0) }
        var result = Outage()
        result.created = created
        result.oldestAttempts = pending.last?.attempts ?? 0
        // Up again on the same port.
        let receiver = try BenchReceiver(port: port)
        defer { receiver.close() }
        let up = clock.now()
        while try rig.log.read({ try Outbox.counts(in: $0) })[.pending] ?? 0 > 0 {
            guard clock.now().timeIntervalSince(up) < 600 else { break }
            clock.advance(by: 1)
            rig.delivery.wake()
            guard try waitUntil(timeout: 30, settled) else { throw UsageError("notify outage: delivery did not settle") }
        }
        _ = waitUntil(timeout: 10) { receiver.distinct >= created }
        result.drainClockSeconds = clock.now().timeIntervalSince(up)
        result.delivered = receiver.distinct
        result.duplicates = receiver.duplicates
        result.realSeconds = Double(Monotonic.nanoseconds() - started) / 1e9
        return result
    }

    private struct Drain {
        var notifications = 0, duplicates = 0, baselineCount = 0, drainCount = 0
        var baselineP50 = 0.0, baselineP99 = 0.0, drainP50 = 0.0, drainP99 = 0.0, drainSeconds = 0.0, fillSeconds = 0.0
    }

    /// A live server with four PLCs polled every 50 ms and `people` with webhooks to our receiver:
    /// sample → SSE latency for `baselineSeconds`, then while its outbox drains `notifications`.
    private func sseWhileDraining(notifications: Int, people: Int, baselineSeconds: Double) throws -> Drain {
        // The receiver stands in for WeCom, DingTalk or a webhook on another machine: idle priority.
        let receiver = try BenchReceiver(idle: true)
        defer { receiver.close() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-notify-sse-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var plcs: [ModbusStationServer] = []
        defer { for plc in plcs { plc.stop() } }
        var stations: [String] = []
        for i in 1...4 {
            let probe = SignalConfig(name: "probe", role: .measurement, address: ModbusAddress(table: .holdingRegister, index: 0), type: .uint16)
            let template = StationConfig(id: "NOTE-0\(i)", name: "probe PLC", process: "welding", protocol: .modbus,
                                         endpoint: .modbusTCP(host: "127.0.0.1", port: 1, unit: 1), pollIntervalMs: 50, signals: [probe])
            let plc = ModbusStationServer(station: template, port: 0, logger: Logger(label: "bench", level: .error))
            let plcPort = try plc.start()
            plcs.append(plc)
            try plc.set(signal: "probe", value: .int(Int64(i)))
            stations.append("""
                {"id": "NOTE-0\(i)", "process": "welding", "protocol": "modbus", "endpoint": "modbus://127.0.0.1:\(plcPort)?unit=1",
                 "pollIntervalMs": 50, "signals": [{"name": "probe", "role": "measurement", "address": "hr:0", "type": "uint16"}]}
                """)
        }
        let persons = (0..<people).map { #"{"user": "p\#($0)", "notify": [{"type": "webhook", "url": "http://127.0.0.1:\#(receiver.port)/hooks/p\#($0)"}]}"# }
        let tokens = FileManager.default.currentDirectoryPath + "/Stations/tokens.json"
        let configPath = dir.appendingPathComponent("plant.json").path
        try """
        {"plant": "notify bench", "route": ["welding"], "auth": {"tokensFile": "\(tokens)"},
         "stations": [\(stations.joined(separator: ",\n"))],
         "people": [\(persons.joined(separator: ", "))], "responsibility": [{"owner": "p0"}]}
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let server = try BenchServer(config: configPath) { _ in }
        defer { server.stop() }

        let reader = try SampleLatencyReader(port: server.port)
        defer { reader.close() }
        guard waitUntil(timeout: 10, { reader.count >= 20 }) else { throw UsageError("notify: no sample events") }
        let nowMs = { Double(realtimeNanoseconds()) / 1e6 }
        let baselineStart = nowMs()
        usleep(UInt32(baselineSeconds * 1e6))
        let baselineEnd = nowMs()

        // Fill the outbox (not measured: samples polled meanwhile wait behind its writes), then a
        // defect of high severity wakes delivery, which drains it.
        var result = Drain()
        result.notifications = notifications
        let fill0 = Monotonic.nanoseconds()
        let now = Date()
        for start in stride(from: 0, to: notifications, by: 10_000) {
            let chunk = (start..<min(notifications, start + 10_000)).map { benchMessage($0, lane: $0 % people, port: receiver.port, at: now) }
            try server.server.eventLog.write { db in _ = try Outbox.insert(chunk, into: db) }
        }
        result.fillSeconds = Double(Monotonic.nanoseconds() - fill0) / 1e9
        let t0 = Monotonic.nanoseconds()
        let drainStart = nowMs()
        let fd = try Socket.connect(host: "127.0.0.1", port: server.port, timeoutMs: 2000)
        let body = #"{"vehicleId":"LSVBENCHDRAIN","station":"NOTE-01","code":"D1","description":"wake","severity":"high"}"#
        let request = "POST /api/defects HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer demo-quality-token\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        let answer = try Socket.exchangeClosing(fd, request: Array(request.utf8))
        Socket.close(fd)
        guard answer.status == 201 else { throw UsageError("notify: POST /api/defects answered \(answer.status): \(answer.body)") }
        guard waitUntil(timeout: 600, { receiver.distinct(prefix: "bench-") >= notifications }) else {
            throw UsageError("notify: only \(receiver.distinct(prefix: "bench-")) of \(notifications) drained")
        }
        result.drainSeconds = Double(receiver.lastArrival - t0) / 1e9
        let drainEnd = drainStart + result.drainSeconds * 1000
        usleep(200_000) // the last samples of the drain arrive
        result.duplicates = receiver.duplicates
        let baseline = reader.latencies(polledFrom: baselineStart, to: baselineEnd).sorted()
        let during = reader.latencies(polledFrom: drainStart, to: drainEnd).sorted()
        result.baselineCount = baseline.count
        result.drainCount = during.count
        result.baselineP50 = percentile(sorted: baseline, 0.5)
        result.baselineP99 = percentile(sorted: baseline, 0.99)
        result.drainP50 = percentile(sorted: during, 0.5)
        result.drainP99 = percentile(sorted: during, 0.99)
        return result
    }
}

/// Reads `/api/events?types=sample` on a thread of its own: each sample's delay from its poll time
/// (`t`, milliseconds) to its arrival here (the realtime clock), kept with that poll time (a phase
/// of a benchmark takes the samples polled within it).
final class SampleLatencyReader: Sendable {
    private let recorded = Locked<[(Double, Double)]>([])
    private let fd: Int32
    private let done = DispatchSemaphore(value: 0)

    init(port: UInt16) throws {
        let socket = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000)
        fd = socket
        let request = "GET /api/events?types=sample HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        try Array(request.utf8).withUnsafeBytes { try Socket.writeAll(socket, $0) }
        let fd = socket, recorded = self.recorded, done = self.done
        Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let marker = Array("\"t\":\"".utf8)
            while let n = try? buffer.withUnsafeMutableBytes({ try Socket.read(fd, into: $0) }), n > 0 {
                let arrived = Double(realtimeNanoseconds()) / 1e6
                pending.append(contentsOf: buffer[0..<n])
                // One line per `data:`; a sample's poll time is its "t". The lines read are dropped
                // once per read (dropping each line on its own moves the rest every time: a reader
                // that falls behind would fall further behind).
                var lineStart = pending.startIndex
                var found: [(Double, Double)] = []
                while let newline = pending[lineStart...].firstIndex(of: 10) {
                    let line = pending[lineStart..<newline]
                    if let at = Self.find(marker, in: line) {
                        let start = at + marker.count
                        if let end = line[start...].firstIndex(of: 34),
                           let t = Timestamp.parse(String(decoding: line[start..<end], as: UTF8.self)) {
                            let polled = t.timeIntervalSince1970 * 1000
                            found.append((polled, arrived - polled))
                        }
                    }
                    lineStart = newline + 1
                }
                if !found.isEmpty { recorded.withLock { $0.append(contentsOf: found) } }
                pending.removeSubrange(..<lineStart)
            }
            done.signal()
        }.start()
    }

    private static func find(_ needle: [UInt8], in line: ArraySlice<UInt8>) -> Int? {
        guard line.count >= needle.count else { return nil }
        var i = line.startIndex
        while i + needle.count <= line.endIndex {
            if line[i] == needle[0] && line[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    var count: Int { recorded.withLock { $0.count } }
    /// The worst delay in each second of poll time from `start` to `end` (where latency spikes sit).
    func worstPerSecond(polledFrom start: Double, to end: Double) -> [(second: Int, worst: Double, samples: Int)] {
        var seconds: [Int: (Double, Int)] = [:]
        for (polled, delay) in recorded.withLock({ $0 }) where polled >= start && polled <= end {
            let s = Int((polled - start) / 1000)
            let (worst, n) = seconds[s] ?? (0, 0)
            seconds[s] = (max(worst, delay), n + 1)
        }
        return seconds.keys.sorted().map { ($0, seconds[$0]!.0, seconds[$0]!.1) }
    }
    /// The delays of the samples polled from `start` to `end` (realtime milliseconds).
    func latencies(polledFrom start: Double, to end: Double) -> [Double] {
        recorded.withLock { $0.filter { $0.0 >= start && $0.0 <= end }.map(\.1) }
    }

    func close() {
        shutdown(fd, Int32(SHUT_RDWR))
        done.wait()
        Socket.close(fd)
    }
}

/// A fast receiver of our own on 127.0.0.1 for the notification benchmarks: one thread per
/// connection, keep-alive, every request answered `200 {"errcode":0,"errmsg":"ok"}` (good for every
/// channel); the first arrival of each `Idempotency-Key` and how often it came are kept.
final class BenchReceiver: Sendable {
    let port: UInt16
    private let listener: Int32
    private let state = Locked(State())

    private struct State {
        var arrivals: [String: (count: Int, firstNs: UInt64)] = [:]
        var duplicates = 0
        var lastNs: UInt64 = 0
        var open: Set<Int32> = []
        var connections = 0
        var closed = false
    }

    /// Listens on `port` (0: any free port; a given one again, for a receiver back up). With
    /// `idle`, its threads run in SCHED_IDLE, standing in for a receiver on another machine.
    init(port: UInt16 = 0, idle: Bool = false) throws {
        listener = try Socket.listen(host: "127.0.0.1", port: port, nonBlocking: false)
        self.port = try Socket.localPort(listener)
        let listener = self.listener
        Thread { [self] in
            if idle { _ = csched_idle_self() }
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 {
                    if errno == EINTR { continue }
                    return
                }
                let accepted = state.withLock { s -> Bool in
                    guard !s.closed else { return false }
                    s.open.insert(fd)
                    s.connections += 1
                    return true
                }
                guard accepted else { Socket.close(fd); return }
                Socket.setNoDelay(fd)
                Thread { [self] in
                    if idle { _ = csched_idle_self() }
                    serve(fd)
                }.start()
            }
        }.start()
    }

    var distinct: Int { state.withLock { $0.arrivals.count } }
    var duplicates: Int { state.withLock { $0.duplicates } }
    var connections: Int { state.withLock { $0.connections } }
    /// When the last new key arrived (Monotonic nanoseconds).
    var lastArrival: UInt64 { state.withLock { $0.lastNs } }
    func arrival(_ id: String) -> UInt64? { state.withLock { $0.arrivals[id]?.firstNs } }
    func distinct(prefix: String) -> Int { state.withLock { $0.arrivals.keys.filter { $0.hasPrefix(prefix) }.count } }

    /// Stops listening and ends every connection.
    func close() {
        let open = state.withLock { s -> Set<Int32> in
            s.closed = true
            return s.open
        }
        shutdown(listener, Int32(SHUT_RDWR))
        Socket.close(listener)
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        _ = waitOpenClosed()
    }

    private func waitOpenClosed() -> Bool {
        for _ in 0..<500 {
            if state.withLock({ $0.open.isEmpty }) { return true }
            usleep(2_000)
        }
        return false
    }

    private static let answer = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\nConnection: keep-alive\r\n\r\n{\"errcode\":0,\"errmsg\":\"ok\"}".utf8)

    private func serve(_ fd: Int32) {
        defer {
            state.withLock { _ = $0.open.remove(fd) }
            Socket.close(fd)
        }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while let n = try? buffer.withUnsafeMutableBytes({ try Socket.read(fd, into: $0) }), n > 0 {
            data.append(contentsOf: buffer[0..<n])
            var consumed = 0
            while let (length, key) = Self.request(in: data, from: consumed) {
                consumed += length
                let now = Monotonic.nanoseconds()
                if let key {
                    state.withLock { s in
                        if let seen = s.arrivals[key] {
                            s.arrivals[key] = (seen.count + 1, seen.firstNs)
                            s.duplicates += 1
                        } else {
                            s.arrivals[key] = (1, now)
                            s.lastNs = now
                        }
                    }
                }
                do {
                    try Self.answer.withUnsafeBytes { try Socket.writeAll(fd, $0) }
                } catch {
                    return
                }
            }
            if consumed > 0 { data.removeFirst(consumed) }
        }
    }

    /// A complete request at `start`: its length in bytes and its `Idempotency-Key`; nil while incomplete.
    private static func request(in data: [UInt8], from start: Int) -> (Int, String?)? {
        var i = start
        var end = -1
        while i + 3 < data.count {
            if data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 { end = i; break }
            i += 1
        }
        guard end >= 0 else { return nil }
        let head = String(decoding: data[start..<end], as: UTF8.self)
        var length = 0
        var key: String?
        for line in head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "content-length" { length = Int(value) ?? 0 } else if name == "idempotency-key" { key = value }
        }
        let total = end + 4 + length - start
        guard data.count >= start + total else { return nil }
        return (total, key)
    }
}
