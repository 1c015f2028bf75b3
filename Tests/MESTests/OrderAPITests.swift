import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import Simulation
import Storage
import TestSupport

/// Orders and build specs through the real server (README "Orders and build specs"): the order
/// API and its refusals, vehicles checked against their order's spec, plan attainment, restart.
final class OrderAPITests: XCTestCase, PlantDriving {
    var dir: URL!
    var running: InProcessServer!
    var server: MESServer! { running.server }
    var http: TestHTTP! { running.http }
    /// 2026-11-22 06:00:00 in Asia/Shanghai (shift A of plannedDate 2026-11-22).
    var clock = Date(timeIntervalSince1970: 1_795_298_400)

    static let engineer = ["Authorization": "Bearer demo-engineer-token"]
    static let quality = ["Authorization": "Bearer demo-quality-token"]
    static let viewer = ["Authorization": "Bearer demo-viewer-token"]
    static let operatorToken = ["Authorization": "Bearer test-operator-token"]

    /// The default plant with its own master data (so these tests do not move with the demo's).
    static let masterData = """
        {
          "vin": {"checkDigit": true},
          "orders": {"required": true},
          "models": {
            "STD": {"name": "Standard"},
            "TIGHT": {"name": "Tight weld", "limits": {"weldCurrent": {"low": 9.0, "high": 11.5}},
                      "idealCycleTimeS": {"WELD-01": 40}, "parts": {"engine": "ENG-20T"}},
            "NOPAINT": {"name": "Primer only", "route": ["stamping", "welding", "assembly", "inspection"]}
          },
          "options": {
            "PANO": {"name": "Panoramic roof", "limits": {"ASSY-01.torque": {"low": 118, "high": 122}}, "parts": {"roof-glass": "RG-PANO"}}
          }
        }
        """

    /// Writes the test config (plant.json + `extra` members) and a tokens file with an operator.
    static func writeConfig(in dir: URL, extra: String = masterData) throws -> String {
        let base = try JSON.parse(String(contentsOf: repoRoot.appendingPathComponent("Stations/plant.json"), encoding: .utf8))
        guard case .object(var members) = base, case .object(let added) = try JSON.parse(extra) else { throw XCTSkip("bad fixture") }
        members.removeAll { key, _ in ["vin", "orders", "models", "options", "auth"].contains(key) }
        members += added
        members.append(("auth", .obj([("tokensFile", .string("tokens.json"))])))
        let path = dir.appendingPathComponent("plant.json").path
        try JSON.object(members).serialized().write(toFile: path, atomically: true, encoding: .utf8)
        let tokens = """
            [{"token": "demo-viewer-token", "user": "screen", "role": "viewer"},
             {"token": "test-operator-token", "user": "wang.fang", "role": "operator"},
             {"token": "demo-quality-token", "user": "li.wei", "role": "quality"},
             {"token": "demo-engineer-token", "user": "zhang.min", "role": "engineer"}]
            """
        try tokens.write(to: dir.appendingPathComponent("tokens.json"), atomically: true, encoding: .utf8)
        return path
    }

    func startServer() throws {
        running = try InProcessServer(config: dir.appendingPathComponent("plant.json").path,
                                      database: dir.appendingPathComponent("mes.sqlite").path)
    }

    func stopServer() async throws {
        try await running.stop()
    }

    override func setUp() async throws {
        dir = makeTempDirectory(self)
        _ = try Self.writeConfig(in: dir)
        try startServer()
    }

    override func tearDown() async throws {
        try await stopServer()
    }

    /// A valid VIN with serial `n` (check digit computed).
    static func vin(_ n: Int) -> String {
        var chars = Array("LSVAB3C10TS" + String(format: "%06d", n))
        chars[8] = VINRules.checkDigit(String(chars))!
        return String(chars)
    }

    var operationCounter = 0

    /// Every tracked process of the default plant, in-spec values for the default limits.
    func buildWholeVehicle(_ vin: String, weldCurrent: Double = 10.2) {
        operate(vin, at: "WELD-01", measurements: ["weldCurrent": .double(weldCurrent), "weldVoltage": .double(8), "spotCount": .int(50)])
        operate(vin, at: "PAINT-01", measurements: ["filmThickness": .double(110)])
        operate(vin, at: "ASSY-01", measurements: ["torque": .double(120), "angle": .double(45)])
        operate(vin, at: "INSP-01", measurements: ["gap": .double(4.0), "flush": .double(0.1)])
    }

    func settle() throws {
        server.pipeline.drain()
        try server.eventLog.flush()
    }

    @discardableResult
    func post(_ path: String, _ body: String, _ headers: [String: String] = engineer, expect status: Int,
              file: StaticString = #filePath, line: UInt = #line) throws -> TestHTTP.Response {
        let response = try http.request("POST", path, body: body, headers: headers)
        XCTAssertEqual(response.status, status, "\(path) \(body): \(response.body)", file: file, line: line)
        return response
    }

    func errorMessage(_ response: TestHTTP.Response) -> String { response.json?["error"]?["message"]?.stringValue ?? response.body }

    // MARK: Tests

    func testCreateReleaseCancelAndEveryRefusal() throws {
        // One order: 201 with its resolved spec.
        let created = try post("/api/orders", #"{"orderId": "SO-1", "model": "TIGHT", "options": ["PANO"], "customer": "Wang", "plannedDate": "2026-11-22", "plannedShift": "A", "sequence": 2}"#, expect: 201)
        let order = try XCTUnwrap(created.json)
        XCTAssertEqual(order["status"]?.stringValue, "planned")
        XCTAssertEqual(order["spec"]?["limits"]?["WELD-01.weldCurrent"]?["high"]?.doubleValue, 11.5)
        XCTAssertEqual(order["spec"]?["limits"]?["WELD-02.weldCurrent"]?["low"]?.doubleValue, 9.0)
        XCTAssertEqual(order["spec"]?["limits"]?["ASSY-01.torque"]?["low"]?.doubleValue, 118)
        XCTAssertNil(order["spec"]?["limits"]?["ASSY-02.torque"], "STATION.signal applies to that station only")
        XCTAssertEqual(order["spec"]?["idealCycleTimeS"]?["WELD-01"]?.doubleValue, 40)
        XCTAssertEqual(order["spec"]?["idealCycleTimeS"]?["WELD-02"]?.doubleValue, 55, "the station's own where the spec says nothing")
        XCTAssertEqual(order["spec"]?["parts"]?["roof-glass"]?.stringValue, "RG-PANO")
        XCTAssertEqual(order["spec"]?["parts"]?["engine"]?.stringValue, "ENG-20T")

        // Roles: engineer and up.
        let body = #"{"orderId": "SO-R", "model": "STD"}"#
        XCTAssertEqual(try post("/api/orders", body, [:], expect: 401).json?["error"]?["code"]?.stringValue, "unauthorized")
        try post("/api/orders", body, Self.viewer, expect: 403)
        try post("/api/orders", body, Self.operatorToken, expect: 403)
        try post("/api/orders", body, Self.quality, expect: 403)
        try post("/api/orders/SO-1/release", #"{"vehicleId": "\#(Self.vin(1))"}"#, Self.quality, expect: 403)
        try post("/api/orders/SO-1/cancel", "{}", Self.operatorToken, expect: 403)

        // Refusals of creation.
        let duplicate = try post("/api/orders", #"{"orderId": "SO-1", "model": "STD"}"#, expect: 409)
        XCTAssertEqual(duplicate.json?["error"]?["code"]?.stringValue, "conflict")
        XCTAssertTrue(errorMessage(try post("/api/orders", #"{"orderId": "SO-2", "model": "NOPE"}"#, expect: 422)).contains("unknown model \"NOPE\""))
        XCTAssertTrue(errorMessage(try post("/api/orders", #"{"orderId": "SO-2", "model": "STD", "options": ["PANO", "HUD"]}"#, expect: 422))
            .contains("options[1]: unknown option \"HUD\""))
        XCTAssertTrue(errorMessage(try post("/api/orders", #"{"model": "STD"}"#, expect: 422)).contains("orderId is required"))
        XCTAssertTrue(errorMessage(try post("/api/orders", #"{"orderId": "SO-2", "model": "STD", "plannedShift": "Z"}"#, expect: 422)).contains("plannedShift"))
        XCTAssertTrue(errorMessage(try post("/api/orders", #"{"orderId": "SO-2", "model": "STD", "dueDate": "2026-02-30"}"#, expect: 422)).contains("dueDate"))
        XCTAssertTrue(errorMessage(try post("/api/orders", #"{"orderId": "SO-2", "model": "STD", "colour": "red"}"#, expect: 422)).contains("colour"))

        // A batch is all or nothing; the refusal names the index.
        let badBatch = #"[{"orderId": "B-0", "model": "STD"}, {"orderId": "B-1", "model": "STD"}, {"orderId": "B-2", "model": "XX"}]"#
        XCTAssertTrue(errorMessage(try post("/api/orders", badBatch, expect: 422)).hasPrefix("[2].model"))
        XCTAssertTrue(errorMessage(try post("/api/orders", #"[{"orderId": "B-0", "model": "STD"}, {"orderId": "B-1"}]"#, expect: 422)).hasPrefix("[1].model"))
        XCTAssertTrue(errorMessage(try post("/api/orders", #"[{"orderId": "B-0", "model": "STD"}, {"orderId": "SO-1", "model": "STD"}]"#, expect: 409)).hasPrefix("[1].orderId"))
        XCTAssertTrue(errorMessage(try post("/api/orders", #"[{"orderId": "B-0", "model": "STD"}, {"orderId": "B-0", "model": "STD"}]"#, expect: 422)).contains("twice"))
        XCTAssertEqual(try http.get("/api/orders/B-0").status, 404, "nothing of a refused batch is stored")
        let batch = try post("/api/orders", #"[{"orderId": "B-0", "model": "STD", "sequence": 1}, {"orderId": "B-1", "model": "NOPAINT", "sequence": 3}, {"orderId": "B-2", "model": "STD"}]"#, expect: 201)
        XCTAssertEqual(batch.json?.arrayValue?.compactMap { $0["orderId"]?.stringValue }, ["B-0", "B-1", "B-2"])

        // VINs: every reason named.
        func releaseRefusal(_ vin: String) throws -> String {
            let r = try post("/api/orders/SO-1/release", #"{"vehicleId": "\#(vin)"}"#, expect: 422)
            XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "invalid_vin", r.body)
            return errorMessage(r)
        }
        var wrongDigit = Array(Self.vin(1))
        wrongDigit[8] = wrongDigit[8] == "0" ? "1" : "0"
        XCTAssertTrue(try releaseRefusal("LSVAB3C1").contains("17 characters"))
        XCTAssertTrue(try releaseRefusal("LSVAB3C10TS00000I").contains("character 17 \"I\""))
        XCTAssertTrue(try releaseRefusal(Self.vin(1).lowercased()).contains("upper case"))
        XCTAssertTrue(try releaseRefusal(String(wrongDigit)).contains("check digit"))
        try post("/api/orders/SO-1/release", "{}", expect: 422)
        try post("/api/orders/NOPE/release", #"{"vehicleId": "\#(Self.vin(1))"}"#, expect: 404)

        // Release, sequence, and the conflicts of release.
        let released = try XCTUnwrap(try post("/api/orders/SO-1/release", #"{"vehicleId": "\#(Self.vin(1))"}"#, expect: 200).json)
        XCTAssertEqual(released["status"]?.stringValue, "released")
        XCTAssertEqual(released["vehicleId"]?.stringValue, Self.vin(1))
        try post("/api/orders/SO-1/release", #"{"vehicleId": "\#(Self.vin(2))"}"#, expect: 409)
        XCTAssertTrue(errorMessage(try post("/api/orders/B-0/release", #"{"vehicleId": "\#(Self.vin(1))"}"#, expect: 409)).contains("SO-1"))
        try post("/api/orders/B-0/release", #"{"vehicleId": "\#(Self.vin(3))"}"#, expect: 200)
        try post("/api/orders/B-2/release", #"{"vehicleId": "\#(Self.vin(4))"}"#, expect: 200)
        let sequence = try XCTUnwrap(http.get("/api/sequence").json?.arrayValue)
        XCTAssertEqual(sequence.compactMap { $0["orderId"]?.stringValue }, ["B-0", "SO-1", "B-2"], "by sequence, unnumbered last")

        // Cancel: planned or released; the VIN is free again.
        XCTAssertEqual(try post("/api/orders/B-2/cancel", #"{"reason": "customer changed colour"}"#, expect: 200).json?["status"]?.stringValue, "cancelled")
        try post("/api/orders/B-2/cancel", "{}", expect: 409)
        try post("/api/orders/B-1/release", #"{"vehicleId": "\#(Self.vin(4))"}"#, expect: 200)

        // The vehicle starts: the order follows; cancel after start → 409.
        operate(Self.vin(1), at: "WELD-01", measurements: ["weldCurrent": .double(10.5)])
        try settle()
        let started = try XCTUnwrap(http.get("/api/orders/SO-1").json)
        XCTAssertEqual(started["status"]?.stringValue, "in_production")
        XCTAssertEqual(started["vehicleStatus"]?.stringValue, "in_process")
        XCTAssertNotNil(started["startedAt"]?.stringValue)
        XCTAssertEqual(errorMessage(try post("/api/orders/SO-1/cancel", "{}", expect: 409)),
                       "order SO-1 is in_production; only a planned or released order can be cancelled")
        XCTAssertEqual(try http.get("/api/sequence").json?.arrayValue?.compactMap { $0["orderId"]?.stringValue }, ["B-0", "B-1"])

        // Lists and filters.
        XCTAssertEqual(try http.get("/api/orders").json?.arrayValue?.first?["orderId"]?.stringValue, "B-2", "newest first")
        XCTAssertEqual(try http.get("/api/orders?status=cancelled").json?.arrayValue?.compactMap { $0["orderId"]?.stringValue }, ["B-2"])
        XCTAssertEqual(try http.get("/api/orders?model=TIGHT").json?.arrayValue?.compactMap { $0["orderId"]?.stringValue }, ["SO-1"])
        XCTAssertEqual(try http.get("/api/orders?q=Wan").json?.arrayValue?.compactMap { $0["orderId"]?.stringValue }, ["SO-1"])
        XCTAssertEqual(try http.get("/api/orders?status=flying").status, 400)
        XCTAssertEqual(try http.get("/api/orders/NOPE").status, 404)

        // Events: persisted `order` events with their change, in order.
        let events = try server.eventLog.events(after: 0, types: ["order"], limit: 1000)
        let changes = events.compactMap { event -> String? in
            guard let json = try? JSON.parse(event.data) else { return nil }
            return "\(json["orderId"]?.stringValue ?? "?"):\(json["change"]?.stringValue ?? "?")"
        }
        XCTAssertEqual(changes, ["SO-1:created", "B-0:created", "B-1:created", "B-2:created", "SO-1:released", "B-0:released",
                                 "B-2:released", "B-2:cancelled", "B-1:released", "SO-1:started"])
        // The audit trail holds the engineer's actions.
        let audit = try server.eventLog.read { try PlantStoreAudit.actions($0) }
        XCTAssertTrue(audit.contains("order.create") && audit.contains("order.release") && audit.contains("order.cancel"), "\(audit)")
    }

    func testTightModelGetsOutOfSpecDefectForAValueInSpecForTheDefault() throws {
        try post("/api/orders", #"[{"orderId": "T-1", "model": "TIGHT"}, {"orderId": "S-1", "model": "STD"}]"#, expect: 201)
        try post("/api/orders/T-1/release", #"{"vehicleId": "\#(Self.vin(11))"}"#, expect: 200)
        try post("/api/orders/S-1/release", #"{"vehicleId": "\#(Self.vin(12))"}"#, expect: 200)
        // 11.8 kA: inside the station's 8–12 kA, above TIGHT's 11.5 kA.
        operate(Self.vin(11), at: "WELD-01", measurements: ["weldCurrent": .double(11.8)])
        operate(Self.vin(12), at: "WELD-01", measurements: ["weldCurrent": .double(11.8)])
        try settle()
        let tight = try XCTUnwrap(http.get("/api/defects?vehicle=\(Self.vin(11))").json?.arrayValue)
        XCTAssertEqual(tight.compactMap { $0["code"]?.stringValue }, ["OUT_OF_SPEC:weldCurrent"])
        XCTAssertTrue(tight.first?["description"]?.stringValue?.contains("above high limit 11.5") ?? false, "\(tight)")
        XCTAssertEqual(try http.get("/api/defects?vehicle=\(Self.vin(12))").json?.arrayValue?.count, 0, "in spec for the default limits")

        // The vehicle page shows the order, model, options and resolved spec.
        let vehicle = try XCTUnwrap(http.get("/api/vehicles/\(Self.vin(11))").json)
        XCTAssertEqual(vehicle["orderId"]?.stringValue, "T-1")
        XCTAssertEqual(vehicle["model"]?.stringValue, "TIGHT")
        XCTAssertEqual(vehicle["options"], .array([]))
        XCTAssertEqual(vehicle["spec"]?["limits"]?["WELD-01.weldCurrent"]?["high"]?.doubleValue, 11.5)
        XCTAssertNil(try http.get("/api/vehicles/\(Self.vin(12))").json?["spec"]?["limits"]?["WELD-01.weldCurrent"])
    }

    func testRouteOfTheSpecAndVehiclesWithoutOrderOrWithInvalidVIN() throws {
        // NOPAINT skips paint by its spec: no skip defect, completed after inspection.
        try post("/api/orders", #"{"orderId": "NP-1", "model": "NOPAINT"}"#, expect: 201)
        try post("/api/orders/NP-1/release", #"{"vehicleId": "\#(Self.vin(21))"}"#, expect: 200)
        operate(Self.vin(21), at: "WELD-01", measurements: ["weldCurrent": .double(10)])
        operate(Self.vin(21), at: "ASSY-01", measurements: ["torque": .double(120), "angle": .double(45)])
        operate(Self.vin(21), at: "INSP-01", measurements: ["gap": .double(4.0), "flush": .double(0.1)])
        // A valid VIN with no order (orders are required here) and an invalid one from the PLC.
        operate(Self.vin(22), at: "WELD-01", measurements: ["weldCurrent": .double(10)])
        operate("BAD-VIN-7", at: "WELD-01", measurements: ["weldCurrent": .double(10)])
        try settle()
        XCTAssertEqual(try http.get("/api/defects?vehicle=\(Self.vin(21))").json?.arrayValue?.count, 0)
        XCTAssertEqual(try http.get("/api/orders/NP-1").json?["status"]?.stringValue, "completed")
        XCTAssertEqual(try http.get("/api/vehicles/\(Self.vin(21))").json?["status"]?.stringValue, "completed")
        let alerts = try XCTUnwrap(http.get("/api/alerts?state=all").json?.arrayValue)
        let sequence = alerts.filter { $0["type"]?.stringValue == "sequence" }.compactMap { $0["message"]?.stringValue }
        XCTAssertTrue(sequence.contains("no order for vehicle \(Self.vin(22)) (seen at WELD-01)"), "\(sequence)")
        XCTAssertTrue(sequence.contains { $0.hasPrefix("invalid vehicle id BAD-VIN-7 at WELD-01: a VIN has 17 characters") }, "\(sequence)")
        XCTAssertFalse(sequence.contains { $0.contains(Self.vin(21)) }, "\(sequence)")
        XCTAssertEqual(try http.get("/api/vehicles/BAD-VIN-7").json?["status"]?.stringValue, "in_process", "still tracked")
        // NOPAINT at the paint booth: off its route.
        try post("/api/orders", #"{"orderId": "NP-2", "model": "NOPAINT"}"#, expect: 201)
        try post("/api/orders/NP-2/release", #"{"vehicleId": "\#(Self.vin(23))"}"#, expect: 200)
        operate(Self.vin(23), at: "WELD-01", measurements: ["weldCurrent": .double(10)])
        operate(Self.vin(23), at: "PAINT-01", measurements: ["filmThickness": .double(110)])
        try settle()
        let offRoute = try XCTUnwrap(http.get("/api/alerts?state=all").json?.arrayValue).compactMap { $0["message"]?.stringValue }
        XCTAssertTrue(offRoute.contains("vehicle \(Self.vin(23)) worked at PAINT-01 (paint), which its route leaves out (NOPAINT: stamping, welding, assembly, inspection)"), "\(offRoute)")
    }

    /// The `tight-spec` scenario (weld current 11.75 kA) replayed with orders alternating TIGHT
    /// (high limit 11.5 kA) and STD (the stations' 12.0 kA): only TIGHT vehicles get a defect.
    func testTightSpecScenarioReplay() throws {
        let config = try PlantConfig.load(path: dir.appendingPathComponent("plant.json").path)
        let scenario = try Scenario.load(path: repoRoot.appendingPathComponent("Stations/scenarios/tight-spec.json").path)
        let recording = dir.appendingPathComponent("tight.jsonl").path
        _ = try generateRecording(config: config, scenario: scenario, duration: 20 * 60, to: recording)
        var vins: [String] = []
        for line in try String(contentsOfFile: recording, encoding: .utf8).split(separator: "\n") {
            guard let json = try? JSON.parse(String(line)), json["signal"]?.stringValue == "vehicleId",
                  let vin = json["value"]?.stringValue, !vin.isEmpty, !vins.contains(vin) else { continue }
            vins.append(vin)
        }
        XCTAssertGreaterThanOrEqual(vins.count, 10, "a 20-minute run builds vehicles")
        let orders = vins.enumerated().map { #"{"orderId": "TS-\#($0.offset)", "model": "\#($0.offset % 2 == 0 ? "TIGHT" : "STD")"}"# }
        try post("/api/orders", "[" + orders.joined(separator: ",") + "]", expect: 201)
        for (i, vin) in vins.enumerated() { try post("/api/orders/TS-\(i)/release", #"{"vehicleId": "\#(vin)"}"#, expect: 200) }
        _ = try replayRecording(path: recording, speed: .max) { poll in self.server.pipeline.submit(.poll(poll)) }
        try settle()
        let welded = try server.eventLog.read { db in
            try db.query("SELECT DISTINCT vehicle_id FROM operations WHERE process = 'welding' AND state = 'completed'") { $0.text(0) ?? "" }
        }
        XCTAssertGreaterThanOrEqual(welded.count, 6)
        let defects = try XCTUnwrap(http.get("/api/defects?limit=10000").json?.arrayValue)
        let outOfSpec = Set(defects.filter { $0["code"]?.stringValue == "OUT_OF_SPEC:weldCurrent" }.compactMap { $0["vehicleId"]?.stringValue })
        for vin in welded {
            let tight = (vins.firstIndex(of: vin) ?? 1) % 2 == 0
            XCTAssertEqual(outOfSpec.contains(vin), tight, "\(vin) (\(tight ? "TIGHT" : "STD"))")
        }
    }

    func testPlanAttainmentByShiftAndModelAndOnTheKPIs() throws {
        try post("/api/orders", """
            [{"orderId": "P-1", "model": "STD", "plannedDate": "2026-11-22", "plannedShift": "A"},
             {"orderId": "P-2", "model": "STD", "plannedDate": "2026-11-22", "plannedShift": "A"},
             {"orderId": "P-3", "model": "TIGHT", "plannedDate": "2026-11-22", "plannedShift": "A"},
             {"orderId": "P-4", "model": "TIGHT", "plannedDate": "2026-11-22", "plannedShift": "B"},
             {"orderId": "P-5", "model": "STD", "plannedDate": "2026-11-22", "plannedShift": "B"},
             {"orderId": "P-6", "model": "STD", "plannedDate": "2026-11-23", "plannedShift": "A"}]
            """, expect: 201)
        try post("/api/orders/P-5/cancel", "{}", expect: 200)
        for (i, id) in ["P-1", "P-3", "P-4", "P-2"].enumerated() {
            try post("/api/orders/\(id)/release", #"{"vehicleId": "\#(Self.vin(31 + i))"}"#, expect: 200)
        }
        buildWholeVehicle(Self.vin(31))
        buildWholeVehicle(Self.vin(32))
        buildWholeVehicle(Self.vin(33))
        operate(Self.vin(34), at: "WELD-01", measurements: ["weldCurrent": .double(10)])
        try settle()
        let plan = try XCTUnwrap(http.get("/api/plan?date=2026-11-22").json)
        XCTAssertEqual(plan["planned"]?.intValue, 4)
        XCTAssertEqual(plan["completed"]?.intValue, 3)
        XCTAssertEqual(plan["attainment"]?.doubleValue, 0.75)
        let shifts = try XCTUnwrap(plan["shifts"]?.arrayValue)
        XCTAssertEqual(shifts.compactMap { $0["name"]?.stringValue }, ["A", "B", "C"])
        XCTAssertEqual(shifts[0]["planned"]?.intValue, 3)
        XCTAssertEqual(shifts[0]["completed"]?.intValue, 2)
        XCTAssertEqual(shifts[1]["planned"]?.intValue, 1)
        XCTAssertEqual(shifts[1]["completed"]?.intValue, 1)
        XCTAssertEqual(shifts[2]["planned"]?.intValue, 0)
        XCTAssertEqual(shifts[2]["attainment"], .null)
        XCTAssertEqual(plan["models"]?["STD"]?["planned"]?.intValue, 2)
        XCTAssertEqual(plan["models"]?["STD"]?["completed"]?.intValue, 1)
        XCTAssertEqual(plan["models"]?["TIGHT"]?["planned"]?.intValue, 2)
        XCTAssertEqual(plan["models"]?["TIGHT"]?["completed"]?.intValue, 2)
        XCTAssertEqual(try http.get("/api/plan?date=2026-11-23").json?["planned"]?.intValue, 1)
        XCTAssertEqual(try http.get("/api/plan").status, 400)
        XCTAssertEqual(try http.get("/api/plan?date=22.11.2026").status, 400)
        // The shift of the last sample (A of 2026-11-22) on the KPIs.
        XCTAssertTrue(try eventually {
            let line = try http.get("/api/kpis").json?["line"]?["plan"]
            return line?["planned"]?.intValue == 3 && line?["completed"]?.intValue == 2 && line?["shift"]?.stringValue == "A"
        })
    }

    func testOrderFollowsHoldReleaseAndScrapOfItsVehicle() throws {
        try post("/api/orders", #"{"orderId": "H-1", "model": "STD"}"#, expect: 201)
        try post("/api/orders/H-1/release", #"{"vehicleId": "\#(Self.vin(51))"}"#, expect: 200)
        operate(Self.vin(51), at: "WELD-01", measurements: ["weldCurrent": .double(10)])
        try settle()
        try post("/api/vehicles/\(Self.vin(51))/hold", #"{"reason": "dent"}"#, Self.quality, expect: 200)
        XCTAssertEqual(try http.get("/api/orders/H-1").json?["status"]?.stringValue, "hold")
        try post("/api/vehicles/\(Self.vin(51))/release", #"{"reason": "repaired"}"#, Self.quality, expect: 200)
        XCTAssertEqual(try http.get("/api/orders/H-1").json?["status"]?.stringValue, "in_production")
        try post("/api/vehicles/\(Self.vin(51))/scrap", #"{"reason": "frame bent"}"#, Self.quality, expect: 200)
        XCTAssertEqual(try http.get("/api/orders/H-1").json?["status"]?.stringValue, "scrapped")
        let changes = try server.eventLog.events(after: 0, types: ["order"], limit: 100).compactMap { try? JSON.parse($0.data)["change"]?.stringValue }
        XCTAssertEqual(changes, ["created", "released", "started", "hold", "released_from_hold", "scrapped"])
    }

    func testRestartKeepsOrdersStatusesAndBindings() async throws {
        try post("/api/orders", #"[{"orderId": "K-1", "model": "TIGHT"}, {"orderId": "K-2", "model": "STD"}, {"orderId": "K-3", "model": "NOPAINT"}]"#, expect: 201)
        try post("/api/orders/K-1/release", #"{"vehicleId": "\#(Self.vin(41))"}"#, expect: 200)
        try post("/api/orders/K-3/release", #"{"vehicleId": "\#(Self.vin(43))"}"#, expect: 200)
        try post("/api/orders/K-2/cancel", "{}", expect: 200)
        operate(Self.vin(41), at: "WELD-01", measurements: ["weldCurrent": .double(10)])
        try settle()
        try await stopServer()
        try startServer()

        XCTAssertEqual(try http.get("/api/orders/K-1").json?["status"]?.stringValue, "in_production")
        XCTAssertEqual(try http.get("/api/orders/K-2").json?["status"]?.stringValue, "cancelled")
        XCTAssertEqual(try http.get("/api/orders/K-3").json?["status"]?.stringValue, "released")
        try post("/api/orders", #"{"orderId": "K-1", "model": "STD"}"#, expect: 409)
        try post("/api/orders", #"{"orderId": "K-4", "model": "STD"}"#, expect: 201)
        try post("/api/orders/K-4/release", #"{"vehicleId": "\#(Self.vin(41))"}"#, expect: 409)
        try post("/api/orders/K-1/cancel", "{}", expect: 409)
        // After the restart the spec still applies: the tight limit, and K-3's own route.
        operate(Self.vin(41), at: "ASSY-01", measurements: ["torque": .double(120), "angle": .double(45)])
        operate(Self.vin(43), at: "WELD-01", measurements: ["weldCurrent": .double(11.8)])
        operate(Self.vin(43), at: "ASSY-01", measurements: ["torque": .double(120), "angle": .double(45)])
        try settle()
        XCTAssertEqual(try http.get("/api/defects?vehicle=\(Self.vin(43))").json?.arrayValue?.count, 0, "NOPAINT: no paint skip, default limits")
        let k1 = try XCTUnwrap(http.get("/api/defects?vehicle=\(Self.vin(41))").json?.arrayValue)
        XCTAssertEqual(k1.compactMap { $0["code"]?.stringValue }, ["SKIPPED:paint"], "TIGHT follows the plant route")
    }
}

/// The audit actions stored (newest first).
enum PlantStoreAudit {
    static func actions(_ db: Database) throws -> [String] {
        try db.query("SELECT action FROM audit ORDER BY id DESC") { $0.text(0) ?? "" }
    }
}
