import Foundation
import XCTest
@testable import MESApp
import Notify
import Pipeline
import PlantModel
import Quality
import Runtime
import Storage
import TestSupport

/// `GET /api/equipment`, the health report in three formats, baselines across a server restart,
/// and the scheduled report as notifications (README "Energy and equipment health").
final class EquipmentAPITests: XCTestCase {
    static func config(reports: String = "") -> String {
        func station(_ id: String, _ port: Int) -> String {
            """
            {"id": "\(id)", "process": "utilities", "protocol": "modbus", "endpoint": "modbus://127.0.0.1:\(port)?unit=1",
             "signals": [{"name": "state", "role": "state", "address": "hr:31", "type": "uint16"},
                         {"name": "vibration", "role": "condition", "group": "fans", "address": "hr:60", "type": "float32",
                          "unit": "mm/s", "limits": {"high": 7.1}}]}
            """
        }
        return """
        {"plant": "Fans", "timezone": "UTC", "route": ["body"],
         "people": [{"user": "li.wei", "name": "Li Wei", "notify": [{"type": "webhook", "url": "http://127.0.0.1:9/hook"}]}],
         \(reports)
         "stations": [\(station("FAN-01", 15501)), \(station("FAN-02", 15502)), \(station("FAN-03", 15503))]}
        """
    }

    /// 50 minutes of vibration at 10 s: FAN-03 runs rough from 40 min (4.5 → 6.5 mm/s).
    static func recording(start: Date) -> String {
        var lines: [String] = []
        var noise: UInt64 = 3
        for step in 0...300 {
            let t = Double(step) * 10
            for id in ["FAN-01", "FAN-02", "FAN-03"] {
                noise = noise &* 6364136223846793005 &+ 1442695040888963407
                var value = 2.5 + 0.1 * (Double(noise >> 11) / Double(1 << 53) - 0.5)
                if id == "FAN-03", t >= 2400 { value += 4 * min(1, (t - 2400) / 600) }
                let time = Timestamp.format(start.addingTimeInterval(t))
                if step == 0 { lines.append("{\"t\":\"\(time)\",\"station\":\"\(id)\",\"signal\":\"state\",\"value\":1}") }
                lines.append("{\"t\":\"\(time)\",\"station\":\"\(id)\",\"signal\":\"vibration\",\"value\":\(value)}")
            }
        }
        // A last poll a few seconds later: the API's figures are refreshed on the pipeline's ticks.
        lines.append("{\"t\":\"\(Timestamp.format(start.addingTimeInterval(3005)))\",\"station\":\"FAN-01\",\"signal\":\"state\",\"value\":1}")
        return lines.joined(separator: "\n") + "\n"
    }

    func testEquipmentListReportFormatsAndRestart() async throws {
        let dir = makeTempDirectory(self)
        let configPath = dir.appendingPathComponent("plant.json").path
        try Self.config().write(toFile: configPath, atomically: true, encoding: .utf8)
        let recordingPath = dir.appendingPathComponent("fans.jsonl").path
        try Self.recording(start: try XCTUnwrap(Timestamp.parse("2026-11-23T00:00:00Z"))).write(toFile: recordingPath, atomically: true, encoding: .utf8)
        let database = dir.appendingPathComponent("mes.sqlite").path
        let first = try InProcessServer(config: configPath, database: database, replay: recordingPath, level: .error)
        let http = first.http
        XCTAssertTrue(eventually(timeout: 60) { (try? http.get("/api/health").json?["replay"]?["finished"]) == .bool(true) })
        var list: [JSON] = []
        XCTAssertTrue(eventually(timeout: 10) {
            list = (try? http.get("/api/equipment").json?.arrayValue) ?? []
            return list.count == 3 && list.allSatisfy { $0["baseline"]?["mean"]?.doubleValue != nil }
        }, "\(list)")
        XCTAssertEqual(list.first?["station"]?.stringValue, "FAN-03", "worst first: \(list)")
        XCTAssertLessThan(try XCTUnwrap(list.first?["health"]?.doubleValue), 0.5)
        XCTAssertEqual(list.first?["group"]?.stringValue, "fans")
        XCTAssertEqual(list.first?["peers"]?["n"]?.intValue, 2)
        for healthy in list.dropFirst() { XCTAssertGreaterThanOrEqual(try XCTUnwrap(healthy["health"]?.doubleValue), 0.5) }
        let alerts = try XCTUnwrap(http.get("/api/alerts?state=all").json?.arrayValue)
        XCTAssertEqual(alerts.filter { $0["type"]?.stringValue == "maintenance" }.map { $0["station"]?.stringValue }, ["FAN-03"])
        XCTAssertTrue(try XCTUnwrap(http.get("/api/defects").json?.arrayValue).isEmpty, "never a vehicle defect")

        let json = try http.get("/api/reports/equipment?format=json")
        XCTAssertEqual(json.json?["atRisk"]?.intValue, 1)
        XCTAssertEqual(json.json?["units"]?.arrayValue?.count, 3)
        let csv = try http.get("/api/reports/equipment?format=csv")
        XCTAssertEqual(csv.headers["content-type"], "text/csv; charset=utf-8")
        let rows = csv.body.split(separator: "\r\n")
        XCTAssertEqual(rows.count, 4)
        XCTAssertTrue(rows[0].hasPrefix("station,signal,group,health,score,peers"))
        XCTAssertTrue(rows[1].hasPrefix("FAN-03,vibration,fans,"))
        // The list itself as CSV: the same rows, as an attachment.
        let listCSV = try http.get("/api/equipment?format=csv")
        XCTAssertEqual(listCSV.headers["content-type"], "text/csv; charset=utf-8")
        XCTAssertEqual(listCSV.headers["content-disposition"], "attachment; filename=\"equipment.csv\"")
        XCTAssertEqual(listCSV.body.split(separator: "\r\n").map { $0.split(separator: ",").prefix(3).joined(separator: ",") },
                       rows.map { $0.split(separator: ",").prefix(3).joined(separator: ",") })
        XCTAssertEqual(try http.get("/api/equipment?format=xml").status, 400)
        let html = try http.get("/api/reports/equipment?format=html")
        XCTAssertEqual(html.headers["content-type"], "text/html; charset=utf-8")
        XCTAssertTrue(html.body.contains("设备健康报告") && html.body.contains("Equipment health report") && html.body.contains("FAN-03"))
        XCTAssertEqual(try http.get("/api/reports/equipment?format=xml").status, 400)
        try await first.stop()

        // A restart: the baselines and health come back from the store, not learned again.
        let again = try InProcessServer(config: configPath, database: database, level: .error)
        let http2 = again.http
        var after: [JSON] = []
        XCTAssertTrue(eventually(timeout: 10) {
            after = (try? http2.get("/api/equipment").json?.arrayValue) ?? []
            return after.count == 3
        })
        XCTAssertEqual(after.map { $0["baseline"] }, list.map { $0["baseline"] })
        XCTAssertEqual(after.map { $0["health"] }, list.map { $0["health"] })
        try await again.stop()
    }

    func testReportsConfigScheduleAndMessages() throws {
        func load(_ text: String) throws -> PlantConfig {
            try PlantConfig.decode(json: JSON.parse(text), file: "fans.json", directory: URL(fileURLWithPath: "/tmp"))
        }
        XCTAssertThrowsError(try load(Self.config(reports: #""reports": {"equipmentEveryH": 24, "to": ["zhang.san"]},"#))) {
            XCTAssertTrue("\($0)".contains("reports.to[0]: \"zhang.san\" is not in the config's people"), "\($0)")
        }
        XCTAssertThrowsError(try load(Self.config(reports: #""reports": {"equipmentEveryH": 0},"#))) {
            XCTAssertTrue("\($0)".contains("reports.equipmentEveryH"), "\($0)")
        }
        let config = try load(Self.config(reports: #""reports": {"equipmentEveryH": 24, "to": ["li.wei"]},"#))
        XCTAssertEqual(config.reports.equipmentEveryH, 24)
        XCTAssertEqual(config.reports.to, ["li.wei"])

        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var schedule = ReportSchedule(everyH: 24, start: start)
        XCTAssertFalse(schedule.due(at: start.addingTimeInterval(23 * 3600)))
        XCTAssertTrue(schedule.due(at: start.addingTimeInterval(24 * 3600)))
        XCTAssertFalse(schedule.due(at: start.addingTimeInterval(25 * 3600)))
        XCTAssertTrue(schedule.due(at: start.addingTimeInterval(100 * 3600)), "one report after a long pause")
        XCTAssertFalse(schedule.due(at: start.addingTimeInterval(101 * 3600)))

        let messages = ReportNotifications.messages(config: config, id: "report-equipment-1", to: config.reports.to, subject: "s",
                                                    text: "t", path: "/api/reports/equipment?format=html", item: .obj([]), now: start)
        XCTAssertEqual(messages.map(\.to), ["li.wei"])
        XCTAssertEqual(messages.first?.kind, "report")
        XCTAssertEqual(messages.first?.id, "report-equipment-1-li.wei-0")
        XCTAssertTrue(messages.first?.link?.hasSuffix("/api/reports/equipment?format=html") ?? false)
    }

    /// The report schedule across restarts, on a ManualClock (README "Energy and equipment
    /// health"): every 24 h from the first start; a restart neither moves the next report nor sends
    /// one twice, and a slot passed while the server was down is sent at once, once.
    func testReportScheduleSurvivesRestarts() throws {
        let dir = makeTempDirectory(self)
        let config = try PlantConfig.decode(json: JSON.parse(Self.config(reports: #""reports": {"equipmentEveryH": 24, "to": ["li.wei"]},"#)),
                                            file: "fans.json", directory: dir)
        var storage = EventLog.Configuration(path: dir.appendingPathComponent("mes.sqlite").path)
        storage.migrations = [Outbox.migrations, ReportScheduleStore.migrations]
        let log = try EventLog.open(storage, logger: Logger(label: "test", level: .error))
        log.start()
        defer { log.close() }
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let clock = ManualClock(start)
        let report = EquipmentReport(plant: "Fans", generatedAt: start, units: [], below: 0.5)

        /// A server run: a live pipeline with the notification hooks, as `mes-server` wires them.
        final class Run {
            let pipeline: Pipeline
            let notify: NotifyAssembly
            var online = false
            init(_ config: PlantConfig, _ log: EventLog, _ clock: ManualClock, _ report: EquipmentReport) {
                pipeline = Pipeline(config: config, eventLog: log, mode: .live, logger: Logger(label: "test", level: .error))
                notify = NotifyAssembly(config: config, pipeline: pipeline, eventLog: log, logger: Logger(label: "test", level: .error),
                                        clock: clock, equipment: { report })
                pipeline.start()
            }
            /// One pipeline step with an event (a station going on- or offline), committed.
            func step(_ log: EventLog, at time: Date) throws {
                online.toggle()
                pipeline.submit(.connection(ConnectionChange(station: "FAN-01", state: online ? .online : .offline, time: time)))
                pipeline.drain()
                try log.flush()
            }
        }
        func reports() throws -> [NotifyMessage] {
            try log.read { try Outbox.list(in: $0) }.filter { $0.kind == "report" }.sorted { $0.createdAt < $1.createdAt }
        }
        func storedNext() throws -> Date? { try log.read { try ReportScheduleStore.next("equipment", in: $0) } }
        func near(_ a: Date?, _ b: Date) -> Bool { a.map { abs($0.timeIntervalSince(b)) < 0.01 } ?? false }

        // First start: the schedule is stored with the first step, due 24 h later.
        var run = Run(config, log, clock, report)
        try run.step(log, at: clock.now())
        let first = try storedNext()
        XCTAssertTrue(near(first, start.addingTimeInterval(24 * 3600)), "\(String(describing: first))")
        clock.advance(by: 10 * 3600)
        try run.step(log, at: clock.now())
        run.pipeline.stop()

        // Restarted after 10 h: the report is still due at 24 h, not 24 h after the restart.
        run = Run(config, log, clock, report)
        clock.set(start.addingTimeInterval(24 * 3600 - 1))
        try run.step(log, at: clock.now())
        XCTAssertEqual(try reports().count, 0)
        clock.set(start.addingTimeInterval(24 * 3600))
        try run.step(log, at: clock.now())
        XCTAssertEqual(try reports().count, 1)
        XCTAssertTrue(near(try reports().first?.createdAt, start.addingTimeInterval(24 * 3600)))
        XCTAssertTrue(near(try storedNext(), start.addingTimeInterval(48 * 3600)))
        run.pipeline.stop()

        // Restarted a minute after that report: not sent again.
        clock.advance(by: 60)
        run = Run(config, log, clock, report)
        try run.step(log, at: clock.now())
        clock.advance(by: 3600)
        try run.step(log, at: clock.now())
        XCTAssertEqual(try reports().count, 1, "no report twice")
        run.pipeline.stop()

        // Down across the 48 h and 72 h slots: one report at once on the restart, then on the grid again.
        clock.set(start.addingTimeInterval(80 * 3600))
        run = Run(config, log, clock, report)
        try run.step(log, at: clock.now())
        XCTAssertEqual(try reports().count, 2, "the missed slot is sent at once")
        XCTAssertTrue(near(try storedNext(), start.addingTimeInterval(96 * 3600)))
        clock.set(start.addingTimeInterval(96 * 3600))
        try run.step(log, at: clock.now())
        XCTAssertEqual(try reports().count, 3)
        run.pipeline.stop()
    }
}
