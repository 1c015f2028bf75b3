import Foundation
import XCTest
@testable import MESApp
import Notify
import PlantModel
import Runtime
import Storage
import TestSupport

/// Andon calls and downtime reasons through the real server (README "Andon and downtime"): the
/// default plant's andon signal and the API, the response, stretches and their reasons, the KPIs
/// on the test clock, the `andon` events, and everything again after a restart.
final class AndonAPITests: XCTestCase, PlantDriving {
    var dir: URL!
    var running: InProcessServer!
    var server: MESServer! { running.server }
    var http: TestHTTP! { running.http }
    /// 2026-11-22 06:00:00 in Asia/Shanghai: the start of shift A.
    var clock = Date(timeIntervalSince1970: 1_795_298_400)
    var operationCounter = 0

    static let operatorToken = ["Authorization": "Bearer demo-operator-token"]
    static let quality = ["Authorization": "Bearer demo-quality-token"]
    static let viewer = ["Authorization": "Bearer demo-viewer-token"]

    func startServer() throws {
        running = try InProcessServer(config: repoRoot.appendingPathComponent("Stations/plant.json").path,
                                      database: dir.appendingPathComponent("mes.sqlite").path)
    }

    func stopServer() async throws {
        try await running.stop()
    }

    override func setUp() async throws {
        dir = makeTempDirectory(self)
        try startServer()
    }

    override func tearDown() async throws {
        try await stopServer()
    }

    func settle() throws {
        server.pipeline.drain()
        try server.eventLog.flush()
    }

    /// Moves the test clock `seconds` with polls of a quiet station.
    func wait(_ seconds: Int) {
        for _ in 0..<seconds { poll("INSP-01", ["state": .int(1), "faultCode": .int(0)]) }
    }

    func post(_ path: String, _ body: String, _ headers: [String: String] = operatorToken) throws -> TestHTTP.Response {
        try http.request("POST", path, body: body, headers: headers)
    }

    func testAndonFromTheSignalAndTheAPIWithResponseDowntimeReasonsKPIsAndRestart() async throws {
        let start = clock
        poll("WELD-01", ["state": .int(1), "faultCode": .int(0), "andon": .int(0)])      // t+1
        poll("WELD-01", ["state": .int(1), "faultCode": .int(0), "andon": .int(1)])      // t+2: the cord
        try settle()
        let signalCalls = try XCTUnwrap(http.get("/api/andon?state=open").json?.arrayValue)
        XCTAssertEqual(signalCalls.count, 1, "\(signalCalls)")
        let cord = signalCalls[0]
        XCTAssertEqual(cord["station"]?.stringValue, "WELD-01")
        XCTAssertEqual(cord["kind"]?.stringValue, "help")
        XCTAssertEqual(cord["source"]?.stringValue, "signal")
        XCTAssertEqual(cord["openedAt"]?.stringValue, Timestamp.format(start.addingTimeInterval(2)))
        let cordId = try XCTUnwrap(cord["id"]?.intValue)
        let cordAlert = try XCTUnwrap(http.get("/api/alerts/\(try XCTUnwrap(cord["alertId"]?.intValue))").json)
        XCTAssertEqual(cordAlert["type"]?.stringValue, "andon")

        // The API: an operator calls; refusals first.
        let body = #"{"station": "PAINT-01", "kind": "material", "comment": "primer drum empty"}"#
        XCTAssertEqual(try http.request("POST", "/api/andon", body: body).status, 401)
        XCTAssertEqual(try post("/api/andon", body, Self.viewer).status, 403)
        let badKind = try post("/api/andon", #"{"station": "PAINT-01", "kind": "coffee"}"#)
        XCTAssertEqual(badKind.status, 422)
        XCTAssertEqual(badKind.json?["error"]?["code"]?.stringValue, "unprocessable")
        XCTAssertEqual(try post("/api/andon", #"{"station": "PAINT-09"}"#).status, 422)
        XCTAssertEqual(try post("/api/andon", "{not json").status, 400)
        let called = try post("/api/andon", body)
        XCTAssertEqual(called.status, 201, called.body)
        XCTAssertEqual(called.json?["source"]?.stringValue, "api")
        XCTAssertEqual(called.json?["openedBy"]?.stringValue, "wang.fang")
        XCTAssertEqual(called.json?["state"]?.stringValue, "open")
        XCTAssertEqual(called.json?["openedAt"]?.stringValue, Timestamp.format(start.addingTimeInterval(2)), "the pipeline's clock")
        let paintId = try XCTUnwrap(called.json?["id"]?.intValue)
        let paintAlert = try XCTUnwrap(called.json?["alertId"]?.intValue)
        XCTAssertEqual(try post("/api/andon", body).status, 409, "that kind is already open there")

        // Responses: the cord's call acknowledged as a call after 10 s, the paint call's alert after 20 s.
        wait(10)
        let ack = try post("/api/andon/\(cordId)/ack", #"{"comment": "coming"}"#)
        XCTAssertEqual(ack.status, 200, ack.body)
        XCTAssertEqual(ack.json?["state"]?.stringValue, "acknowledged")
        XCTAssertEqual(ack.json?["acknowledgedBy"]?.stringValue, "wang.fang")
        XCTAssertEqual(ack.json?["responseS"]?.doubleValue, 10)
        XCTAssertEqual(try post("/api/andon/\(cordId)/ack", "{}").status, 409)
        XCTAssertEqual(try post("/api/andon/9999/ack", "{}").status, 404)
        wait(10)
        XCTAssertEqual(try post("/api/alerts/\(paintAlert)/ack", "{}", Self.quality).status, 200)
        let paint = try XCTUnwrap(http.get("/api/andon?station=PAINT-01").json?.arrayValue?.first)
        XCTAssertEqual(paint["state"]?.stringValue, "acknowledged")
        XCTAssertEqual(paint["acknowledgedBy"]?.stringValue, "li.wei")
        XCTAssertEqual(paint["responseS"]?.doubleValue, 20)

        // The cord released: the signal call closes.
        poll("WELD-01", ["state": .int(1), "faultCode": .int(0), "andon": .int(0)])
        try settle()
        let closedCord = try XCTUnwrap(http.get("/api/andon?state=closed").json?.arrayValue)
        XCTAssertEqual(closedCord.map { $0["id"]?.intValue }, [cordId])
        XCTAssertEqual(try http.get("/api/andon?state=maybe").status, 400)

        // Downtime: WELD-02 in fault 217 for 30 s, then running; WELD-01 blocked and still so.
        poll("WELD-02", ["state": .int(2), "faultCode": .int(217)])
        let faultStart = clock
        wait(29)
        poll("WELD-02", ["state": .int(1), "faultCode": .int(0)])
        poll("WELD-01", ["state": .int(3), "faultCode": .int(0), "andon": .int(0)])
        let blockedStart = clock
        wait(5)
        try settle()
        let weld2 = try XCTUnwrap(http.get("/api/downtime?station=WELD-02").json?.arrayValue)
        XCTAssertEqual(weld2.count, 1, "\(weld2)")
        let stretch = weld2[0]
        XCTAssertEqual(stretch["state"]?.stringValue, "fault")
        XCTAssertEqual(stretch["faultCode"]?.stringValue, "217")
        XCTAssertEqual(stretch["start"]?.stringValue, Timestamp.format(faultStart))
        XCTAssertEqual(stretch["durationS"]?.doubleValue, 30)
        XCTAssertEqual(stretch["reason"]?["text"]?.stringValue, "Electrode tip dresser fault")
        XCTAssertEqual(stretch["reason"]?["textZh"]?.stringValue, "电极修磨器故障")
        XCTAssertEqual(stretch["reasonBy"]?.stringValue, "system")
        let open = try XCTUnwrap(http.get("/api/downtime?open=true").json?.arrayValue)
        XCTAssertEqual(open.map { $0["station"]?.stringValue }, ["WELD-01"])
        XCTAssertEqual(open.first?["reason"]?["code"]?.stringValue, "blocked")
        XCTAssertEqual(open.first?["durationS"]?.doubleValue, clock.timeIntervalSince(blockedStart), "measured on the pipeline's clock")
        XCTAssertEqual(try http.get("/api/downtime?open=yes").status, 400)
        XCTAssertEqual(try http.get("/api/downtime?from=yesterday").status, 400)
        XCTAssertEqual(try http.get("/api/downtime?to=\(Timestamp.format(faultStart.addingTimeInterval(-1)))").json?.arrayValue?.count, 0)
        let reasons = try XCTUnwrap(http.get("/api/downtime/reasons").json?.arrayValue)
        XCTAssertTrue(reasons.contains { $0["code"]?.stringValue == "ops-break" && $0["category"]?.stringValue == "people" })

        let stretchId = try XCTUnwrap(stretch["id"]?.intValue)
        let unknown = try post("/api/downtime/\(stretchId)/reason", #"{"code": "999"}"#)
        XCTAssertEqual(unknown.status, 422, unknown.body)
        XCTAssertEqual(try post("/api/downtime/\(stretchId)/reason", #"{"comment": "x"}"#).status, 422)
        XCTAssertEqual(try post("/api/downtime/\(stretchId)/reason", #"{"code": "ops-break"}"#, Self.viewer).status, 403)
        XCTAssertEqual(try post("/api/downtime/424242/reason", #"{"code": "ops-break"}"#).status, 404)
        let set = try post("/api/downtime/\(stretchId)/reason", #"{"code": "ops-break", "comment": "tip dresser was fine, no operator"}"#)
        XCTAssertEqual(set.status, 200, set.body)
        XCTAssertEqual(set.json?["reason"]?["code"]?.stringValue, "ops-break")
        XCTAssertEqual(set.json?["reasonBy"]?.stringValue, "wang.fang")
        XCTAssertEqual(set.json?["comment"]?.stringValue, "tip dresser was fine, no operator")
        XCTAssertEqual(set.json?["durationS"]?.doubleValue, 30)

        // End WELD-01's blocked stretch so the figures stand still, then read the KPIs.
        poll("WELD-01", ["state": .int(1), "faultCode": .int(0), "andon": .int(0)])
        let blockedS = clock.timeIntervalSince(blockedStart)
        try settle()
        wait(1)
        try settle()
        let kpis = try XCTUnwrap(http.get("/api/kpis").json)
        func station(_ id: String) -> JSON? { kpis["stations"]?.arrayValue?.first { $0["id"]?.stringValue == id } }
        XCTAssertEqual(station("WELD-02")?["downtimeByReason"], .obj([("ops-break", .double(30))]))
        XCTAssertEqual(station("WELD-02")?["downtimeByCategory"], .obj([("people", .double(30))]))
        XCTAssertEqual(station("WELD-01")?["downtimeByReason"], .obj([("blocked", .double(blockedS))]))
        XCTAssertEqual(station("PAINT-01")?["downtimeByReason"], .obj([]))
        XCTAssertEqual(kpis["line"]?["downtimeByCategory"], .obj([("flow", .double(blockedS)), ("people", .double(30))]))
        XCTAssertEqual(kpis["andon"], .obj([("calls", .int(2)), ("meanResponseS", .double(15)), ("openNow", .int(1))]))
        XCTAssertEqual(kpis["response"]?["meanAckS"]?.doubleValue, 15, "two andon alerts acknowledged: with the call after 10 s, itself after 20 s")
        XCTAssertEqual(kpis["response"]?["overdueNow"]?.intValue, 0)

        // The `andon` events, in order.
        let events = try server.eventLog.events(after: 0, types: ["andon"], limit: 100)
        let changes = try events.map { event -> String in
            let data = try JSON.parse(event.data)
            return "\(data["id"]?.intValue ?? 0) \(data["change"]?.stringValue ?? "")"
        }
        XCTAssertEqual(changes, ["\(cordId) opened", "\(paintId) opened", "\(cordId) acknowledged", "\(paintId) acknowledged", "\(cordId) closed"])

        // Restart: calls, stretches, reasons and this shift's andon figures are all back.
        try await stopServer()
        try startServer()
        let after = try XCTUnwrap(http.get("/api/andon").json?.arrayValue)
        XCTAssertEqual(after.map { $0["id"]?.intValue }, [paintId, cordId])
        XCTAssertEqual(after.first?["state"]?.stringValue, "acknowledged")
        XCTAssertEqual(after.first?["responseS"]?.doubleValue, 20)
        let stored = try XCTUnwrap(http.get("/api/downtime?station=WELD-02").json?.arrayValue?.first)
        XCTAssertEqual(stored["reason"]?["code"]?.stringValue, "ops-break")
        XCTAssertEqual(stored["reasonBy"]?.stringValue, "wang.fang")
        poll("WELD-01", ["state": .int(1), "faultCode": .int(0), "andon": .int(0)])
        try settle()
        let closed = try post("/api/andon/\(paintId)/close", #"{"comment": "drum replaced"}"#)
        XCTAssertEqual(closed.status, 200, closed.body)
        XCTAssertEqual(closed.json?["closedBy"]?.stringValue, "wang.fang")
        XCTAssertEqual(try post("/api/andon/\(paintId)/close", "{}").status, 409)
        let next = try post("/api/andon", #"{"station": "ASSY-02", "kind": "maintenance"}"#)
        XCTAssertEqual(next.json?["id"]?.intValue, paintId + 1, "ids go on after the restart")
        let restarted = try XCTUnwrap(http.get("/api/kpis").json)
        XCTAssertEqual(restarted["andon"]?["calls"]?.intValue, 3, "the shift's two calls before the restart and the new one")
        XCTAssertEqual(restarted["andon"]?["meanResponseS"]?.doubleValue, 15)
        XCTAssertEqual(restarted["andon"]?["openNow"]?.intValue, 1)
    }

    func testAndonCallsAreNotifiedToTheOwnerWhateverTheMinimumSeverity() throws {
        guard case .object(var members) = try notifyConfig(receiverPort: 9100, minSeverity: "critical") else { return XCTFail() }
        members.removeAll { $0.0 == "responsibility" }
        members.append(("responsibility", try JSON.parse(#"[{"station": "WELD-*", "types": ["andon"], "owner": "li.wei"}, {"owner": "zhang.min"}]"#)))
        let config = try PlantConfig.decode(json: .object(members), file: "p.json", directory: repoRoot)
        let planner = NotificationPlanner(config: config)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let andon = NewEvent(type: "alert", station: "WELD-01", time: now,
                             data: #"{"id":5,"type":"andon","severity":"high","station":"WELD-01","message":"Andon help at WELD-01","owner":"li.wei","change":"raised"}"#)
        let notes = planner.notifications(for: [andon], now: now)
        XCTAssertEqual(notes.map(\.id), ["alert-5-raised-li.wei-0"])
        XCTAssertEqual(notes.first?.kind, "andon")
        XCTAssertTrue(notes.first?.subject.hasPrefix("[andon] WELD-01") ?? false, notes.first?.subject ?? "")
        XCTAssertTrue(notes.first?.text.hasPrefix("Andon call / 安灯呼叫") ?? false)
        let other = NewEvent(type: "alert", station: "WELD-01", time: now,
                             data: #"{"id":6,"type":"quality","severity":"high","station":"WELD-01","message":"x","owner":"li.wei","change":"raised"}"#)
        XCTAssertEqual(planner.notifications(for: [other], now: now).count, 0, "other alerts still follow notify.minSeverity")
    }
}
