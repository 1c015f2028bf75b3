import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import TestSupport

/// Tracking and quality through the real server: polls go into the pipeline, answers come over
/// HTTP from the SQLite projections, with the tokens of Stations/tokens.json.
final class PlantAPITests: XCTestCase, PlantDriving {
    var running: InProcessServer!
    var server: MESServer! { running.server }
    var http: TestHTTP! { running.http }
    var clock = Date(timeIntervalSince1970: 1_795_400_000)

    override func setUp() async throws {
        let dir = makeTempDirectory(self)
        running = try InProcessServer(config: repoRoot.appendingPathComponent("Stations/plant.json").path,
                                      database: dir.appendingPathComponent("mes.sqlite").path)
    }

    override func tearDown() async throws {
        try await running.stop()
    }

    static let quality = ["Authorization": "Bearer demo-quality-token"]
    static let viewer = ["Authorization": "Bearer demo-viewer-token"]
    static let admin = ["Authorization": "Bearer demo-admin-token"]

    var operationCounter = 0

    func settle() throws {
        server.pipeline.drain()
        try server.eventLog.flush()
    }

    func testGenealogyThroughEveryProcessAndLotTracing() throws {
        let vin = "LSVAB3C12TS000001"
        poll("PRESS-01", ["strokes": .int(1), "state": .int(1), "panelLot": .string("SP-LOT-7"), "tonnage": .double(8000)])
        operate(vin, at: "WELD-01", measurements: ["weldCurrent": .double(10.2), "weldVoltage": .double(8), "spotCount": .int(50)],
                lots: ["panelLot": .string("SP-LOT-7")])
        operate(vin, at: "PAINT-01", measurements: ["filmThickness": .double(110)], lots: ["paintLot": .string("PT-1")])
        operate(vin, at: "ASSY-01", measurements: ["torque": .double(120), "angle": .double(45)],
                lots: ["boltLot": .string("BL-3")])
        operate(vin, at: "INSP-01", measurements: ["gap": .double(4.0), "flush": .double(0.1)])
        try settle()

        let vehicle = try http.get("/api/vehicles/\(vin)")
        XCTAssertEqual(vehicle.status, 200, vehicle.body)
        let json = try XCTUnwrap(vehicle.json)
        XCTAssertEqual(json["status"]?.stringValue, "completed")
        let operations = json["operations"]?.arrayValue ?? []
        XCTAssertEqual(operations.compactMap { $0["station"]?.stringValue }, ["WELD-01", "PAINT-01", "ASSY-01", "INSP-01"])
        XCTAssertTrue(operations.allSatisfy { $0["result"]?.stringValue == "ok" })
        XCTAssertEqual(operations[0]["measurements"]?["weldCurrent"]?.doubleValue, 10.2)
        XCTAssertEqual(operations[0]["lots"], .array([.string("SP-LOT-7")]))
        XCTAssertEqual(operations[2]["measurements"]?["torque"]?.doubleValue, 120)
        XCTAssertEqual(json["defects"], .array([]))

        let lot = try XCTUnwrap(http.get("/api/lots/SP-LOT-7").json)
        XCTAssertEqual(lot["vehicles"], .array([.string(vin)]))
        XCTAssertTrue(lot["stations"]?.arrayValue?.contains(.string("WELD-01")) ?? false)
        XCTAssertEqual(try http.get("/api/lots/NOPE").status, 404)
        XCTAssertEqual(try http.get("/api/vehicles/NOPE").status, 404)
        let list = try XCTUnwrap(http.get("/api/vehicles?status=completed").json?.arrayValue)
        XCTAssertEqual(list.first?["vehicleId"]?.stringValue, vin)
        XCTAssertEqual(try http.get("/api/vehicles?status=flying").status, 400)
    }

    func testSkipRaisesSequenceAlertAndDefect() throws {
        let vin = "LSVAB3C12TS000002"
        operate(vin, at: "WELD-01", measurements: ["weldCurrent": .double(10)])
        operate(vin, at: "ASSY-02", measurements: ["torque": .double(120), "angle": .double(45)]) // paint skipped
        try settle()
        let defects = try XCTUnwrap(http.get("/api/defects?vehicle=\(vin)").json?.arrayValue)
        XCTAssertTrue(defects.contains { $0["code"]?.stringValue?.hasPrefix("SKIPPED") ?? false }, "\(defects)")
        let alerts = try XCTUnwrap(http.get("/api/alerts").json?.arrayValue)
        XCTAssertTrue(alerts.contains { $0["type"]?.stringValue == "sequence" && $0["vehicleId"]?.stringValue == vin }, "\(alerts)")
    }

    func testAlertAcknowledgeWithEveryRole() throws {
        let vin = "LSVAB3C12TS000003"
        operate(vin, at: "WELD-01", measurements: ["weldCurrent": .double(13.5)]) // above the 12 kA limit
        try settle()
        let alerts = try XCTUnwrap(http.get("/api/alerts?state=active").json?.arrayValue)
        let alert = try XCTUnwrap(alerts.first { $0["type"]?.stringValue == "quality" }, "\(alerts)")
        let id = try XCTUnwrap(alert["id"]?.intValue)
        XCTAssertEqual(alert["state"]?.stringValue, "active_unacknowledged")
        let defects = try XCTUnwrap(http.get("/api/defects?status=open&station=WELD-01").json?.arrayValue)
        XCTAssertTrue(defects.contains { $0["vehicleId"]?.stringValue == vin && $0["raisedBy"]?.stringValue == "system" })

        let body = #"{"comment": "checked the gun"}"#
        let anonymous = try http.request("POST", "/api/alerts/\(id)/ack", body: body)
        XCTAssertEqual(anonymous.status, 401)
        XCTAssertEqual(anonymous.json?["error"]?["code"]?.stringValue, "unauthorized")
        XCTAssertEqual(try http.request("POST", "/api/alerts/\(id)/ack", body: body, headers: ["Authorization": "Bearer wrong"]).status, 401)
        XCTAssertEqual(try http.request("POST", "/api/alerts/\(id)/ack", body: body, headers: Self.viewer).status, 403)
        let acked = try http.request("POST", "/api/alerts/\(id)/ack", body: body, headers: Self.quality)
        XCTAssertEqual(acked.status, 200, acked.body)
        XCTAssertEqual(acked.json?["acknowledgedBy"]?.stringValue, "li.wei", "the user comes from the token")
        XCTAssertEqual(acked.json?["comment"]?.stringValue, "checked the gun")
        XCTAssertEqual(acked.json?["state"]?.stringValue, "active_acknowledged")
        XCTAssertEqual(try http.request("POST", "/api/alerts/\(id)/ack", body: body, headers: Self.quality).status, 409)
        XCTAssertEqual(try http.request("POST", "/api/alerts/999999/ack", body: body, headers: Self.quality).status, 404)
        XCTAssertEqual(try http.request("POST", "/api/alerts/\(id)/ack", body: "{not json", headers: Self.quality).status, 400)

        // The acknowledged state is what the API serves afterwards, and the audit has the trail.
        XCTAssertEqual(try http.get("/api/alerts/\(id)").json?["state"]?.stringValue, "active_acknowledged")
        XCTAssertEqual(try http.get("/api/audit", headers: Self.quality).status, 403)
        let audit = try XCTUnwrap(http.get("/api/audit", headers: Self.admin).json?.arrayValue)
        XCTAssertTrue(audit.contains { $0["action"]?.stringValue?.contains("ack") ?? false && $0["user"]?.stringValue == "li.wei" }, "\(audit)")
        XCTAssertTrue(audit.contains { $0["action"]?.stringValue?.hasPrefix("auth.") ?? false }, "failed authentication is audited")
        XCTAssertFalse(audit.map { $0.serialized() }.joined().contains("demo-quality-token"), "tokens never appear in the audit")
        XCTAssertEqual(try http.request("DELETE", "/api/audit", headers: Self.admin).status, 405)
    }

    func testShelveHoldReleaseAndDefects() throws {
        let vin = "LSVAB3C12TS000004"
        operate(vin, at: "WELD-01", measurements: ["weldCurrent": .double(7.0)])
        try settle()
        let alert = try XCTUnwrap(http.get("/api/alerts").json?.arrayValue?.first { $0["type"]?.stringValue == "quality" })
        let id = try XCTUnwrap(alert["id"]?.intValue)
        XCTAssertEqual(try http.request("POST", "/api/alerts/\(id)/shelve", body: #"{"minutes": 0}"#, headers: Self.quality).status, 422)
        let shelved = try http.request("POST", "/api/alerts/\(id)/shelve", body: #"{"minutes": 30, "reason": "sensor swap"}"#, headers: Self.quality)
        XCTAssertEqual(shelved.status, 200, shelved.body)
        XCTAssertEqual(shelved.json?["state"]?.stringValue, "shelved")
        XCTAssertNotNil(shelved.json?["shelvedUntil"]?.stringValue)
        XCTAssertTrue(try http.get("/api/alerts?state=shelved").json?.arrayValue?.contains { $0["id"]?.intValue == id } ?? false)

        XCTAssertEqual(try http.request("POST", "/api/vehicles/\(vin)/release", body: "{}", headers: Self.quality).status, 409)
        let held = try http.request("POST", "/api/vehicles/\(vin)/hold", body: #"{"reason": "weld check"}"#, headers: Self.quality)
        XCTAssertEqual(held.status, 200, held.body)
        XCTAssertEqual(held.json?["status"]?.stringValue, "hold")
        XCTAssertEqual(try http.get("/api/vehicles/\(vin)").json?["status"]?.stringValue, "hold")
        XCTAssertEqual(try http.request("POST", "/api/vehicles/\(vin)/hold", body: #"{"reason": "again"}"#, headers: Self.quality).status, 409)
        XCTAssertEqual(try http.request("POST", "/api/vehicles/\(vin)/hold", body: #"{"reason": "x"}"#, headers: Self.viewer).status, 403)
        XCTAssertEqual(try http.request("POST", "/api/vehicles/NOPE/hold", body: #"{"reason": "x"}"#, headers: Self.quality).status, 404)
        let released = try http.request("POST", "/api/vehicles/\(vin)/release", body: #"{"reason": "ok"}"#, headers: Self.quality)
        XCTAssertEqual(released.json?["status"]?.stringValue, "in_process")

        let created = try http.request("POST", "/api/defects", body: #"{"vehicleId": "\#(vin)", "station": "WELD-01", "code": "SCRATCH", "description": "door", "severity": "low"}"#, headers: Self.quality)
        XCTAssertEqual(created.status, 201, created.body)
        XCTAssertEqual(created.json?["raisedBy"]?.stringValue, "li.wei")
        let defectId = try XCTUnwrap(created.json?["id"]?.intValue)
        XCTAssertEqual(try http.request("POST", "/api/defects", body: #"{"vehicleId": "x", "code": "A", "severity": "huge"}"#, headers: Self.quality).status, 422)
        XCTAssertEqual(try http.request("POST", "/api/defects", body: #"{"code": "A"}"#, headers: Self.quality).status, 422)
        let resolved = try http.request("POST", "/api/defects/\(defectId)/resolve", body: #"{"comment": "polished"}"#, headers: Self.quality)
        XCTAssertEqual(resolved.json?["status"]?.stringValue, "resolved")
        XCTAssertEqual(resolved.json?["resolvedBy"]?.stringValue, "li.wei")
        XCTAssertEqual(try http.request("POST", "/api/defects/\(defectId)/resolve", body: "{}", headers: Self.quality).status, 409)
        XCTAssertTrue(try http.get("/api/defects?status=resolved").json?.arrayValue?.contains { $0["id"]?.intValue == defectId } ?? false)
    }

    func testKpisAnomaliesAndSignalHistory() throws {
        for i in 0..<3 {
            operate("LSVAB3C12TS00010\(i)", at: "WELD-01", measurements: ["weldCurrent": .double(10 + Double(i) / 10)])
        }
        try settle()
        clock = clock.addingTimeInterval(2)
        poll("WELD-01", ["state": .int(0)])
        try settle()
        let kpis = try XCTUnwrap(http.get("/api/kpis?shift=current").json)
        XCTAssertNotNil(kpis["shift"]?["name"]?.stringValue)
        let weld = try XCTUnwrap(kpis["stations"]?.arrayValue?.first { $0["id"]?.stringValue == "WELD-01" })
        XCTAssertEqual(weld["totalCount"]?.intValue, 3)
        XCTAssertEqual(weld["goodCount"]?.intValue, 3)
        XCTAssertEqual(try http.get("/api/kpis?shift=yesterday").status, 400)
        XCTAssertEqual(try http.get("/api/anomalies").status, 200)
        let history = try XCTUnwrap(http.get("/api/stations/WELD-01/signals/weldCurrent?limit=10").json?.arrayValue)
        XCTAssertFalse(history.isEmpty)
        XCTAssertNotNil(history.first?["t"]?.stringValue)
        XCTAssertEqual(try http.get("/api/stations/WELD-01/signals/nope").status, 404)
        XCTAssertEqual(try http.get("/api/stations/WELD-01/signals/weldCurrent?from=yesterday").status, 400)
        XCTAssertEqual(try http.get("/api/stations/WELD-01/signals/weldCurrent?limit=0").status, 400)
    }
}
