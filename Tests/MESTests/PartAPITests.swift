import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import Storage
import TestSupport

/// Key parts, recall and the quality gate through the real server (README "Key parts, recall and
/// the quality gate"): the part API and its refusals, PLC scans checked for duplicates, wrong and
/// missing parts, the gate's hold and release, recall queries, restart.
final class PartAPITests: XCTestCase, PlantDriving {
    var dir: URL!
    var running: InProcessServer!
    var server: MESServer! { running.server }
    var http: TestHTTP! { running.http }
    /// 2026-11-22 06:00:00 in Asia/Shanghai.
    var clock = Date(timeIntervalSince1970: 1_795_298_400)
    var operationCounter = 0

    static let operatorToken = ["Authorization": "Bearer test-operator-token"]
    static let quality = ["Authorization": "Bearer demo-quality-token"]
    static let engineer = ["Authorization": "Bearer demo-engineer-token"]
    static let viewer = ["Authorization": "Bearer demo-viewer-token"]
    static let admin = ["Authorization": "Bearer test-admin-token"]

    /// The default plant (both assembly stations scan the engine) with two models and the gate.
    static let masterData = """
        {
          "vin": {"checkDigit": true},
          "models": {
            "D90": {"name": "D90", "parts": {"engine": "ENG-20T"}},
            "D90X": {"name": "D90 with airbag check", "parts": {"engine": "ENG-20T", "airbag": "AB-1"}},
            "EV": {"name": "EV"}
          },
          "gate": {"holdOnOpenDefects": true}
        }
        """

    /// The test config and tokens (with an admin).
    static func writeConfig(in dir: URL, extra: String = masterData) throws {
        _ = try OrderAPITests.writeConfig(in: dir, extra: extra)
        let tokens = """
            [{"token": "demo-viewer-token", "user": "screen", "role": "viewer"},
             {"token": "test-operator-token", "user": "wang.fang", "role": "operator"},
             {"token": "demo-quality-token", "user": "li.wei", "role": "quality"},
             {"token": "demo-engineer-token", "user": "zhang.min", "role": "engineer"},
             {"token": "test-admin-token", "user": "chen.jie", "role": "admin"}]
            """
        try tokens.write(to: dir.appendingPathComponent("tokens.json"), atomically: true, encoding: .utf8)
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
        try Self.writeConfig(in: dir)
        try startServer()
    }

    override func tearDown() async throws {
        try await stopServer()
    }

    static func vin(_ n: Int) -> String { OrderAPITests.vin(n) }

    func settle() throws {
        server.pipeline.drain()
        try server.eventLog.flush()
    }

    @discardableResult
    func post(_ path: String, _ body: String, _ headers: [String: String], expect status: Int,
              file: StaticString = #filePath, line: UInt = #line) throws -> TestHTTP.Response {
        let response = try http.request("POST", path, body: body, headers: headers)
        XCTAssertEqual(response.status, status, "\(path) \(body): \(response.body)", file: file, line: line)
        return response
    }

    func code(_ response: TestHTTP.Response) -> String? { response.json?["error"]?["code"]?.stringValue }

    /// An order of `model` released to `vin`.
    func order(_ vin: String, model: String = "D90") throws {
        try post("/api/orders", #"{"orderId": "SO-\#(vin)", "model": "\#(model)"}"#, Self.engineer, expect: 201)
        try post("/api/orders/SO-\(vin)/release", #"{"vehicleId": "\#(vin)"}"#, Self.engineer, expect: 200)
    }

    /// Every tracked process, in spec; at assembly (ASSY-02, whose cycle signal is a bool) the engine
    /// `serial` (empty: none) and `partNumber`.
    func build(_ vin: String, serial: String, partNumber: String = "ENG-20T", nokAtInspection: Bool = false) {
        operate(vin, at: "WELD-01", measurements: ["weldCurrent": .double(10.2), "weldVoltage": .double(8), "spotCount": .int(50)])
        operate(vin, at: "PAINT-01", measurements: ["filmThickness": .double(110)])
        operate(vin, at: "ASSY-02", measurements: ["torque": .double(120), "angle": .double(45),
                                                   "engineSerial": .string(serial), "enginePartNo": .string(serial.isEmpty ? "" : partNumber)])
        operate(vin, at: "INSP-01", result: nokAtInspection ? 2 : 1, measurements: ["gap": .double(4.0), "flush": .double(0.1)])
    }

    func vehicle(_ vin: String) throws -> JSON { try XCTUnwrap(http.get("/api/vehicles/\(vin)").json) }

    func defectCodes(_ vin: String) throws -> [String] {
        try XCTUnwrap(http.get("/api/defects?vehicle=\(vin)&limit=1000").json?.arrayValue).compactMap { $0["code"]?.stringValue }.sorted()
    }

    // MARK: The part API

    func testBindThroughTheAPIAndEveryRefusal() throws {
        let (v1, v2) = (Self.vin(1), Self.vin(2))
        operate(v1, at: "WELD-01")
        operate(v2, at: "WELD-01")
        try settle()
        let path = "/api/vehicles/\(v1)/parts"
        let body = #"{"partType": "engine", "serial": "ENG-0001", "partNumber": "ENG-20T", "station": "ASSY-01"}"#
        XCTAssertEqual(code(try post(path, body, [:], expect: 401)), "unauthorized")
        try post(path, body, Self.viewer, expect: 403)
        let bound = try XCTUnwrap(try post(path, body, Self.operatorToken, expect: 201).json)
        XCTAssertEqual(bound["serial"]?.stringValue, "ENG-0001")
        XCTAssertEqual(bound["boundBy"]?.stringValue, "wang.fang", "the user comes from the token")
        XCTAssertEqual(bound["vehicleId"]?.stringValue, v1)
        XCTAssertEqual(bound["station"]?.stringValue, "ASSY-01")
        XCTAssertEqual(bound["removedAt"], .null)

        // Refusals.
        let duplicate = try post("/api/vehicles/\(v2)/parts", #"{"partType": "engine", "serial": "ENG-0001"}"#, Self.operatorToken, expect: 409)
        XCTAssertEqual(code(duplicate), "duplicate_serial")
        XCTAssertTrue(duplicate.body.contains(v1), duplicate.body)
        XCTAssertEqual(code(try post(path, #"{"partType": "engine", "serial": "ENG-0002"}"#, Self.operatorToken, expect: 409)), "conflict")
        XCTAssertEqual(code(try post("/api/vehicles/\(Self.vin(99))/parts", body, Self.operatorToken, expect: 404)), "not_found")
        XCTAssertEqual(code(try post(path, #"{"partType": "seat"}"#, Self.operatorToken, expect: 422)), "unprocessable")
        XCTAssertEqual(code(try post(path, #"{"partType": "seat", "serial": " S1"}"#, Self.operatorToken, expect: 422)), "unprocessable")
        XCTAssertEqual(code(try post(path, #"{"partType": "seat", "serial": "S1", "station": "NOPE"}"#, Self.operatorToken, expect: 422)), "unprocessable")
        try post(path, #"{"partType": "seat", "serial": 5}"#, Self.operatorToken, expect: 422)

        // Reads.
        let history = try XCTUnwrap(http.get("/api/parts/ENG-0001").json?.arrayValue)
        XCTAssertEqual(history.count, 1)
        XCTAssertEqual(history[0]["vehicleId"]?.stringValue, v1)
        XCTAssertEqual(try http.get("/api/parts/NEVER-SEEN").status, 404)
        // The same list as CSV (streamed): a header row and the binding; a serial never bound is the header alone.
        let (csv, csvBody) = try Download.body(port: http.port, "/api/parts/ENG-0001?format=csv")
        XCTAssertEqual(csv.status, 200)
        let lines = String(decoding: csvBody, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: true).map(String.init)
        XCTAssertEqual(lines.first, "serial,partType,partNumber,vehicleId,station,boundAt,boundBy,removedAt,removedBy,reason")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines.last?.hasPrefix("ENG-0001,engine,") == true, lines.last ?? "")
        XCTAssertTrue(lines.last?.contains(",\(v1),") == true, lines.last ?? "")
        let (_, none) = try Download.body(port: http.port, "/api/parts/NEVER-SEEN?format=csv")
        XCTAssertEqual(String(decoding: none, as: UTF8.self).split(separator: "\r\n").count, 1)
        let parts = try XCTUnwrap(vehicle(v1)["parts"]?.arrayValue)
        XCTAssertEqual(parts.map { $0["serial"]?.stringValue }, ["ENG-0001"])
        XCTAssertEqual(try vehicle(v2)["parts"]?.arrayValue?.count, 0)

        // A `part` event with the binding, and the audit line.
        let events = try server.eventLog.events(after: 0, types: ["part"], limit: 100)
        XCTAssertEqual(events.count, 1)
        let event = try JSON.parse(events[0].data)
        XCTAssertEqual(event["change"]?.stringValue, "bound")
        XCTAssertEqual(event["serial"]?.stringValue, "ENG-0001")
        let audit = try XCTUnwrap(http.get("/api/audit", headers: Self.admin).json?.arrayValue)
        XCTAssertTrue(audit.contains { $0["action"]?.stringValue == "part.bind" && $0["user"]?.stringValue == "wang.fang" }, "\(audit)")
        let meta = try XCTUnwrap(http.get("/api/meta").json)
        XCTAssertTrue(meta["eventTypes"]?.arrayValue?.contains(.string("part")) ?? false)
        XCTAssertTrue(meta["alertTypes"]?.arrayValue?.contains(.string("part")) ?? false)
    }

    func testWrongPartThroughTheAPIRaisesAnAlertAndADefect() throws {
        let v = Self.vin(3)
        try order(v)
        operate(v, at: "WELD-01")
        try settle()
        try post("/api/vehicles/\(v)/parts", #"{"partType": "engine", "serial": "ENG-0003", "partNumber": "ENG-15T"}"#, Self.operatorToken, expect: 201)
        XCTAssertEqual(try defectCodes(v), ["WRONG_PART:engine"])
        let alerts = try XCTUnwrap(http.get("/api/alerts?state=all&limit=1000").json?.arrayValue).filter { $0["type"]?.stringValue == "part" }
        XCTAssertEqual(alerts.count, 1)
        XCTAssertEqual(alerts.first?["vehicleId"]?.stringValue, v)
        XCTAssertTrue(alerts.first?["message"]?.stringValue?.contains("ENG-20T") ?? false, "\(alerts)")
    }

    func testReplaceKeepsTheHistory() throws {
        let v = Self.vin(4)
        operate(v, at: "WELD-01")
        try settle()
        try post("/api/vehicles/\(v)/parts", #"{"partType": "engine", "serial": "ENG-0004", "partNumber": "ENG-20T", "station": "ASSY-02"}"#, Self.operatorToken, expect: 201)
        let path = "/api/vehicles/\(v)/parts/engine/replace"
        let body = #"{"serial": "ENG-0005", "partNumber": "ENG-20T", "reason": "oil leak at end-of-line test"}"#
        try post(path, body, Self.operatorToken, expect: 403)
        XCTAssertEqual(code(try post(path, #"{"serial": "ENG-0005"}"#, Self.quality, expect: 422)), "unprocessable", "a reason is required")
        XCTAssertEqual(code(try post("/api/vehicles/\(v)/parts/seat/replace", body, Self.quality, expect: 404)), "not_found")
        XCTAssertEqual(code(try post(path, #"{"serial": "ENG-0004", "reason": "x"}"#, Self.quality, expect: 409)), "conflict")
        let replaced = try XCTUnwrap(try post(path, body, Self.quality, expect: 200).json)
        XCTAssertEqual(replaced["serial"]?.stringValue, "ENG-0005")
        XCTAssertEqual(replaced["boundBy"]?.stringValue, "li.wei")
        XCTAssertEqual(replaced["station"]?.stringValue, "ASSY-02", "the new part is where the old one was")

        let old = try XCTUnwrap(http.get("/api/parts/ENG-0004").json?.arrayValue?.first)
        XCTAssertEqual(old["removedBy"]?.stringValue, "li.wei")
        XCTAssertEqual(old["reason"]?.stringValue, "oil leak at end-of-line test")
        XCTAssertNotEqual(old["removedAt"], .null)
        let parts = try XCTUnwrap(vehicle(v)["parts"]?.arrayValue)
        XCTAssertEqual(parts.map { $0["serial"]?.stringValue }, ["ENG-0005", "ENG-0004"], "newest first, the removed one kept")
        // The old serial is free for another vehicle; the new one is not.
        let other = Self.vin(5)
        operate(other, at: "WELD-01")
        try settle()
        try post("/api/vehicles/\(other)/parts", #"{"partType": "engine", "serial": "ENG-0004"}"#, Self.operatorToken, expect: 201)
        XCTAssertEqual(try XCTUnwrap(http.get("/api/parts/ENG-0004").json?.arrayValue).map { $0["vehicleId"]?.stringValue }, [other, v])
        let events = try server.eventLog.events(after: 0, types: ["part"], limit: 100).compactMap { try? JSON.parse($0.data)["change"]?.stringValue }
        XCTAssertEqual(events, ["bound", "removed", "bound", "bound"])
    }

    // MARK: PLC scans

    func testPLCScansBindDuplicatesAndWrongParts() throws {
        let (v1, v2) = (Self.vin(11), Self.vin(12))
        try order(v1)
        try order(v2)
        build(v1, serial: "ENG-1001")
        build(v2, serial: "ENG-1001", partNumber: "ENG-15T")   // the serial of v1's engine and another part number
        try settle()
        let first = try XCTUnwrap(vehicle(v1)["parts"]?.arrayValue?.first)
        XCTAssertEqual(first["boundBy"]?.stringValue, "plc")
        XCTAssertEqual(first["station"]?.stringValue, "ASSY-02")
        XCTAssertEqual(first["partNumber"]?.stringValue, "ENG-20T")
        XCTAssertEqual(try defectCodes(v1), [])
        XCTAssertEqual(try defectCodes(v2), ["DUPLICATE_SERIAL:engine", "WRONG_PART:engine"])
        let history = try XCTUnwrap(http.get("/api/parts/ENG-1001").json?.arrayValue)
        XCTAssertEqual(history.map { $0["vehicleId"]?.stringValue }, [v2, v1], "from a PLC the duplicate binding is kept")
        let alerts = try XCTUnwrap(http.get("/api/alerts?state=all&limit=1000").json?.arrayValue).filter { $0["type"]?.stringValue == "part" }
        XCTAssertEqual(alerts.count, 2, "\(alerts)")
        XCTAssertTrue(alerts.allSatisfy { $0["vehicleId"]?.stringValue == v2 && $0["station"]?.stringValue == "ASSY-02" })
        // v2 had a defect and finished its route: the gate holds it.
        XCTAssertEqual(try vehicle(v2)["status"]?.stringValue, "hold")
        XCTAssertEqual(try vehicle(v1)["status"]?.stringValue, "completed")
    }

    // MARK: Missing parts and the gate

    func testMissingPartHoldsAtTheGateAndReleaseNeedsAnAdminOverride() throws {
        let v = Self.vin(21)
        try order(v)
        build(v, serial: "")
        try settle()
        XCTAssertEqual(try defectCodes(v), ["MISSING_PART:engine"])
        var detail = try vehicle(v)
        XCTAssertEqual(detail["status"]?.stringValue, "hold")
        let reason = try XCTUnwrap(detail["holdReason"]?.stringValue)
        XCTAssertTrue(reason.contains("quality gate") && reason.contains("MISSING_PART:engine"), reason)
        let vehicleEvents = try server.eventLog.events(after: 0, types: ["vehicle"], limit: 1000).compactMap { try? JSON.parse($0.data) }
        XCTAssertEqual(vehicleEvents.last?["status"]?.stringValue, "hold")
        XCTAssertEqual(vehicleEvents.last?["holdReason"]?.stringValue, reason, "the vehicle event says why")
        XCTAssertEqual(try XCTUnwrap(http.get("/api/orders/SO-\(v)").json)["status"]?.stringValue, "hold", "the order follows")

        let path = "/api/vehicles/\(v)/release"
        let refused = try post(path, #"{"reason": "looks fine"}"#, Self.quality, expect: 409)
        XCTAssertEqual(code(refused), "gate_blocked")
        XCTAssertTrue(refused.body.contains("MISSING_PART:engine"), refused.body)
        XCTAssertEqual(code(try post(path, #"{"reason": "looks fine", "override": true}"#, Self.quality, expect: 409)), "gate_blocked",
                       "only an admin overrides")
        try post(path, #"{"override": "yes"}"#, Self.admin, expect: 422)
        XCTAssertEqual(code(try post(path, #"{"reason": "x"}"#, Self.admin, expect: 409)), "gate_blocked", "an admin too needs override")
        let released = try XCTUnwrap(try post(path, #"{"reason": "engine fitted off-line", "override": true}"#, Self.admin, expect: 200).json)
        XCTAssertEqual(released["status"]?.stringValue, "completed")
        XCTAssertNil(released["holdReason"])
        detail = try vehicle(v)
        XCTAssertNil(detail["holdReason"], "no hold reason once released")
        let audit = try XCTUnwrap(http.get("/api/audit", headers: Self.admin).json?.arrayValue)
        let line = try XCTUnwrap(audit.first { $0["action"]?.stringValue == "vehicle.release" })
        XCTAssertEqual(line["user"]?.stringValue, "chen.jie")
        XCTAssertTrue(line["detail"]?.stringValue?.contains("override") ?? false, "\(line)")
        XCTAssertTrue(audit.contains { $0["action"]?.stringValue == "vehicle.hold" && $0["user"]?.stringValue == "system" })
    }

    func testGateReleasesOnceDefectsAreResolvedAndLetsCleanVehiclesThrough() throws {
        let (clean, nok, ev) = (Self.vin(31), Self.vin(32), Self.vin(33))
        try order(clean)
        try order(nok)
        try order(ev, model: "EV")
        build(clean, serial: "ENG-3101")
        build(nok, serial: "ENG-3201", nokAtInspection: true)
        build(ev, serial: "")
        try settle()
        XCTAssertEqual(try vehicle(clean)["status"]?.stringValue, "completed")
        XCTAssertEqual(try vehicle(ev)["status"]?.stringValue, "completed", "a spec without parts needs none: \((try? defectCodes(ev)) ?? [])")
        XCTAssertEqual(try vehicle(nok)["status"]?.stringValue, "hold", "open defects of any kind hold a vehicle")
        XCTAssertEqual(code(try post("/api/vehicles/\(nok)/release", "{}", Self.quality, expect: 409)), "gate_blocked")
        let defects = try XCTUnwrap(http.get("/api/defects?vehicle=\(nok)").json?.arrayValue)
        for defect in defects {
            let id = try XCTUnwrap(defect["id"]?.doubleValue.map { Int($0) })
            try post("/api/defects/\(id)/resolve", #"{"comment": "reworked"}"#, Self.quality, expect: 200)
        }
        let released = try XCTUnwrap(try post("/api/vehicles/\(nok)/release", #"{"reason": "reworked"}"#, Self.quality, expect: 200).json)
        XCTAssertEqual(released["status"]?.stringValue, "completed")
        // A hold by hand carries its own reason.
        try post("/api/vehicles/\(clean)/hold", #"{"reason": "audit sample"}"#, Self.quality, expect: 200)
        XCTAssertEqual(try vehicle(clean)["holdReason"]?.stringValue, "audit sample")
    }

    // MARK: Recall

    func testRecallCombinesCriteria() throws {
        let (a, b, c) = (Self.vin(41), Self.vin(42), Self.vin(43))
        try order(a)
        try order(b)
        try order(c, model: "EV")
        let weldStart = clock
        operate(a, at: "WELD-01", measurements: ["weldCurrent": .double(10.2)], lots: ["panelLot": .string("LOT-A")])
        operate(b, at: "WELD-01", measurements: ["weldCurrent": .double(10.2)], lots: ["panelLot": .string("LOT-A")])
        let afterB = clock
        clock = clock.addingTimeInterval(3600)
        operate(c, at: "WELD-01", measurements: ["weldCurrent": .double(10.2)], lots: ["panelLot": .string("LOT-B")])
        try settle()
        try post("/api/vehicles/\(a)/parts", #"{"partType": "engine", "serial": "ENG-4101", "partNumber": "ENG-20T"}"#, Self.operatorToken, expect: 201)
        try post("/api/vehicles/\(b)/parts", #"{"partType": "engine", "serial": "ENG-4201", "partNumber": "ENG-15T"}"#, Self.operatorToken, expect: 201)
        try post("/api/vehicles/\(c)/parts", #"{"partType": "engine", "serial": "ENG-4301", "partNumber": "ENG-20T"}"#, Self.operatorToken, expect: 201)

        func recall(_ query: String) throws -> JSON { try XCTUnwrap(http.get("/api/recall?\(query)").json) }
        func ids(_ answer: JSON) -> [String] { answer["vehicles"]?.arrayValue?.compactMap { $0["vehicleId"]?.stringValue } ?? [] }

        let byNumber = try recall("partNumber=ENG-20T")
        XCTAssertEqual(ids(byNumber), [a, c].sorted())
        XCTAssertEqual(byNumber["count"]?.doubleValue, 2)
        XCTAssertEqual(byNumber["criteria"]?["partNumber"]?.stringValue, "ENG-20T")
        let first = try XCTUnwrap(byNumber["vehicles"]?.arrayValue?.first { $0["vehicleId"]?.stringValue == a })
        XCTAssertEqual(first["orderId"]?.stringValue, "SO-\(a)")
        XCTAssertEqual(first["model"]?.stringValue, "D90")
        XCTAssertEqual(first["status"]?.stringValue, "in_process")
        XCTAssertEqual(first["matchedBy"]?.arrayValue?.compactMap(\.stringValue), ["partNumber ENG-20T (engine ENG-4101)"])

        XCTAssertEqual(ids(try recall("lot=LOT-A")), [a, b].sorted())
        XCTAssertEqual(ids(try recall("lot=LOT-A&partNumber=ENG-20T")), [a], "every criterion must match")
        XCTAssertEqual(ids(try recall("serial=ENG-4201")), [b])
        XCTAssertEqual(ids(try recall("model=EV")), [c])
        XCTAssertEqual(ids(try recall("model=D90&lot=LOT-B")), [])
        let window = "station=WELD-01&from=\(Timestamp.format(weldStart))&to=\(Timestamp.format(afterB))"
        let byWindow = try recall(window)
        XCTAssertEqual(ids(byWindow), [a, b].sorted(), "operations completed at WELD-01 in the window")
        XCTAssertTrue(byWindow["vehicles"]?.arrayValue?.first?["matchedBy"]?.arrayValue?.first?.stringValue?.hasPrefix("WELD-01 completed ") ?? false)
        XCTAssertEqual(ids(try recall("from=\(Timestamp.format(afterB))")), [c], "a window without a station: any station")
        let combined = try recall("\(window)&partNumber=ENG-15T&lot=LOT-A&model=D90")
        XCTAssertEqual(ids(combined), [b])
        XCTAssertEqual(combined["vehicles"]?.arrayValue?.first?["matchedBy"]?.arrayValue?.count, 4, "one text per criterion")
        XCTAssertEqual(ids(try recall("partNumber=ENG-20T&limit=1")).count, 1)
        XCTAssertEqual(try recall("partNumber=ENG-20T&limit=1")["count"]?.doubleValue, 2, "count counts every match")
        XCTAssertEqual(try recall("partNumber=NOTHING")["count"]?.doubleValue, 0)

        // A replaced part no longer matches.
        try post("/api/vehicles/\(a)/parts/engine/replace", #"{"serial": "ENG-4102", "partNumber": "ENG-15T", "reason": "wrong engine"}"#, Self.quality, expect: 200)
        XCTAssertEqual(ids(try recall("partNumber=ENG-20T")), [c])
        XCTAssertEqual(ids(try recall("serial=ENG-4101")), [])

        XCTAssertEqual(try http.get("/api/recall").status, 400)
        XCTAssertEqual(try http.get("/api/recall?station=NOPE").status, 400)
        XCTAssertEqual(try http.get("/api/recall?from=yesterday").status, 400)
        XCTAssertEqual(try http.get("/api/recall?from=2026-11-22T10:00:00Z&to=2026-11-22T09:00:00Z").status, 400)
    }

    // MARK: Restart

    func testBindingsAndHoldReasonsSurviveARestart() async throws {
        let (v1, v2) = (Self.vin(51), Self.vin(52))
        try order(v1)
        operate(v2, at: "WELD-01")
        build(v1, serial: "")   // held by the gate: no engine
        try settle()
        try post("/api/vehicles/\(v2)/parts", #"{"partType": "engine", "serial": "ENG-5201"}"#, Self.operatorToken, expect: 201)
        try await stopServer()
        try startServer()
        XCTAssertEqual(try XCTUnwrap(http.get("/api/parts/ENG-5201").json?.arrayValue).count, 1)
        XCTAssertEqual(code(try post("/api/vehicles/\(v1)/parts", #"{"partType": "engine", "serial": "ENG-5201"}"#, Self.operatorToken, expect: 409)),
                       "duplicate_serial", "the part book is restored")
        let detail = try vehicle(v1)
        XCTAssertEqual(detail["status"]?.stringValue, "hold")
        XCTAssertTrue(detail["holdReason"]?.stringValue?.contains("MISSING_PART:engine") ?? false, "\(detail)")
        XCTAssertEqual(code(try post("/api/vehicles/\(v1)/release", "{}", Self.quality, expect: 409)), "gate_blocked", "the gate still knows the open defects")
        try post("/api/vehicles/\(v1)/parts", #"{"partType": "engine", "serial": "ENG-5101", "partNumber": "ENG-20T"}"#, Self.operatorToken, expect: 201)
        let next = try XCTUnwrap(http.get("/api/parts/ENG-5101").json?.arrayValue?.first)
        XCTAssertEqual(next["boundBy"]?.stringValue, "wang.fang")
        let ids = try server.eventLog.read { try $0.query("SELECT id FROM part_bindings ORDER BY id") { $0.int64(0) } }
        XCTAssertEqual(ids, [1, 2], "ids go on after a restart")
    }
}
