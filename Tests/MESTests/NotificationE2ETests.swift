import Foundation
import XCTest
import Runtime
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The real `mes-server` with people and responsibility rules: the outbox grows while the
/// receiver stalls and the pipeline goes on; SIGKILL with notifications pending, restart on the
/// same database: every notification arrives, none again after its success.
final class NotificationE2ETests: XCTestCase {
    let quality = ["Authorization": "Bearer demo-quality-token"]

    func startServer(config: String, db: String, port: UInt16, simulate: Bool) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: productPath("mes-server"))
        process.arguments = ["--config", config, "--db", db, "--listen", "127.0.0.1:\(port)", "--log-level", "warning",
                             "--dashboards", repoRoot.appendingPathComponent("Dashboards").path] + (simulate ? ["--simulate"] : [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        addTeardownBlock { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        XCTAssertTrue(eventually(timeout: 30) { (try? TestHTTP(port: port).get("/api/health").status) == 200 }, "server did not start")
        return process
    }

    func notifications(_ http: TestHTTP, _ query: String) throws -> [JSON] {
        let response = try http.get("/api/notifications?limit=1000" + query, headers: quality)
        XCTAssertEqual(response.status, 200, response.body)
        return response.json?.arrayValue ?? []
    }

    func testKill9WithNotificationsPendingDeliversEachOnceAfterRestart() throws {
        let receiver = try NotifyReceiver { _, _ in .stall }
        defer { receiver.close() }
        let dir = makeTempDirectory(self)
        let configPath = dir.appendingPathComponent("plant.json").path
        try notifyConfig(receiverPort: receiver.port, freeStationPorts: true).serialized()
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let db = dir.appendingPathComponent("mes.sqlite").path
        let port = try freePort()
        let server = try startServer(config: configPath, db: db, port: port, simulate: true)
        let http = TestHTTP(port: port)
        XCTAssertEqual(try http.get("/api/notifications").status, 401, "the list needs the quality role")

        // The receiver stalls every request: the outbox grows, and defects keep being stored and
        // streamed (the pipeline does not wait for delivery). The simulated plant may add its own.
        let events = try TestSSEClient(port: port, lastEventId: 0)
        let stations = ["WELD-01", "PAINT-01", "WELD-02", "ASSY-01"]
        var defectIds: [Int64] = []
        for i in 0..<12 {
            let body = #"{"vehicleId":"VIN-N\#(i)","station":"\#(stations[i % 4])","code":"D\#(i)","description":"dent","severity":"high"}"#
            let response = try http.request("POST", "/api/defects", body: body, headers: quality)
            XCTAssertEqual(response.status, 201, response.body)
            defectIds.append(try XCTUnwrap(response.json?["id"]?.intValue))
            let weld = stations[i % 4].hasPrefix("WELD")
            XCTAssertEqual(response.json?["owner"]?.stringValue, weld ? "li.wei" : "zhang.min", "the first matching rule owns it")
            XCTAssertEqual(response.json?["escalation"], .array(weld ? [.string("zhang.min")] : []))
            let raised = try XCTUnwrap(response.json?["raisedAt"]?.stringValue.flatMap(Timestamp.parse))
            XCTAssertEqual(response.json?["dueAt"]?.stringValue, Timestamp.format(raised.addingTimeInterval(120 * 60)), "due.high")
        }
        var streamed: Set<Int64> = []
        XCTAssertTrue(eventually(timeout: 20) {
            for event in events.read(count: 5000, timeout: 0.2) where event.type == "defect" {
                if let id = (try? JSON.parse(event.data))?["id"]?.intValue { streamed.insert(id) }
            }
            return streamed.isSuperset(of: defectIds)
        }, "every defect event is streamed while delivery stalls")
        // WELD: li.wei's webhook; the others: zhang.min's WeCom and DingTalk.
        var expected: [String] = []
        for (i, id) in defectIds.enumerated() {
            if stations[i % 4].hasPrefix("WELD") { expected.append("defect-\(id)-raised-li.wei-0") }
            else { expected += ["defect-\(id)-raised-zhang.min-0", "defect-\(id)-raised-zhang.min-1"] }
        }
        XCTAssertTrue(try eventually(timeout: 10) {
            Set(try notifications(http, "&status=pending").compactMap { $0["id"]?.stringValue }).isSuperset(of: expected)
        }, "the 18 notifications of these defects are pending")
        XCTAssertEqual(try notifications(http, "&status=sent").count, 0)
        XCTAssertEqual(try http.get("/api/notifications?status=maybe", headers: quality).status, 400)
        let metrics = try http.get("/metrics").body
        let pendingLine = metrics.split(separator: "\n").first { $0.hasPrefix("mes_notifications{status=\"pending\"}") }
        XCTAssertGreaterThanOrEqual(Int(pendingLine?.split(separator: " ").last ?? "") ?? -1, 18, metrics)

        // With the outbox pending and the receiver still stalling, samples keep flowing.
        let mark = try XCTUnwrap(http.get("/api/health").json?["lastEventId"]?.intValue)
        var newSamples = 0
        XCTAssertTrue(eventually(timeout: 30) {
            newSamples += events.read(count: 5000, timeout: 0.2).filter { $0.type == "sample" && $0.id > mark }.count
            return newSamples >= 50
        }, "sample events go on while notifications wait")

        // Then the receivers fail fast; once every lane has tried again, kill -9.
        receiver.setScript { _, _ in .answer(500, "down") }
        XCTAssertTrue(try eventually(timeout: 30) {
            try notifications(http, "&status=pending").filter { $0["lastError"]?.stringValue == "HTTP 500: down" }.count >= 3
        }, "each lane's first notification was retried")
        XCTAssertFalse(receiver.received.contains(where: \.succeeded))
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()

        receiver.setScript { _, path in .answer(200, path == "/hooks/li" ? #"{"ok":true}"# : #"{"errcode":0,"errmsg":"ok"}"#) }
        let port2 = try freePort()
        let restarted = try startServer(config: configPath, db: db, port: port2, simulate: false)
        let http2 = TestHTTP(port: port2)
        let delivered = try eventually(timeout: 90) {
            try notifications(http2, "&status=pending").isEmpty && notifications(http2, "&status=failed").isEmpty
        }
        let states = try notifications(http2, "").map { "\($0["id"]?.stringValue ?? "") \($0["status"]?.stringValue ?? "")" }
        XCTAssertTrue(delivered, "all delivered after the restart: \(states)")
        let all = try notifications(http2, "")
        let defect = try XCTUnwrap(http2.get("/api/defects?limit=1000").json?.arrayValue?.first { $0["id"]?.intValue == defectIds[0] })
        XCTAssertEqual(defect["owner"]?.stringValue, "li.wei", "the owner is stored with the defect")
        let assign = try http2.request("POST", "/api/defects/\(defectIds[0])/assign",
                                       body: #"{"owner":"zhang.min","dueAt":"2030-01-01T08:00:00Z"}"#, headers: quality)
        XCTAssertEqual(assign.status, 200, assign.body)
        XCTAssertEqual(assign.json?["owner"]?.stringValue, "zhang.min")
        XCTAssertEqual(assign.json?["dueAt"]?.stringValue, "2030-01-01T08:00:00.000Z")
        XCTAssertEqual(assign.json?["escalation"], .array([.string("zhang.min")]), "the escalation list stays")
        XCTAssertEqual(try http2.request("POST", "/api/defects/\(defectIds[0])/assign", body: #"{"owner":"nobody"}"#, headers: quality).status, 422)
        XCTAssertEqual(try http2.request("POST", "/api/defects/99999/assign", body: #"{"owner":"li.wei"}"#, headers: quality).status, 404)
        XCTAssertEqual(try http2.request("POST", "/api/alerts/99999/assign", body: #"{"owner":"li.wei"}"#, headers: quality).status, 404)
        XCTAssertEqual(try http2.request("POST", "/api/defects/\(defectIds[0])/assign", body: #"{"owner":"li.wei"}"#).status, 401)
        let reread = try XCTUnwrap(http2.get("/api/defects?limit=1000").json?.arrayValue?.first { $0["id"]?.intValue == defectIds[0] })
        XCTAssertEqual(reread["owner"]?.stringValue, "zhang.min", "the new owner is stored")
        XCTAssertTrue(Set(all.compactMap { $0["id"]?.stringValue }).isSuperset(of: expected))
        let requests = receiver.received
        for entry in all {
            let id = try XCTUnwrap(entry["id"]?.stringValue)
            let mine = requests.filter { $0.idempotencyKey == id }
            XCTAssertEqual(mine.filter(\.succeeded).count, 1, "\(id) arrives exactly once")
            XCTAssertTrue(mine.last?.succeeded == true, "\(id): nothing after its success")
            XCTAssertNotNil(entry["sentAt"]?.stringValue)
        }
        for path in ["/hooks/li", "/wecom", "/ding"] {
            let succeeded = requests.filter { $0.path == path && $0.succeeded }.compactMap(\.idempotencyKey)
            let created = all.reversed().compactMap { $0["id"]?.stringValue }.filter { id in
                requests.contains { $0.path == path && $0.idempotencyKey == id }
            }
            XCTAssertEqual(succeeded, created, "\(path) in creation order")
            XCTAssertGreaterThanOrEqual(succeeded.count, 6)
        }
        kill(restarted.processIdentifier, SIGTERM)
        restarted.waitUntilExit()
    }
}
