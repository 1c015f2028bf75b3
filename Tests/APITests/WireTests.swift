import Foundation
@testable import API
import HTTP
import Pipeline
import PlantModel
import Quality
import Runtime
import Tracking
import XCTest

/// The API's side of the domain: Bearer parsing, error statuses, the KPI document.
final class WireTests: XCTestCase {
    func testBearerHeader() {
        let store = TokenStore([("demo-quality-token", Principal(user: "li.wei", role: .quality)),
                                ("demo-admin-token", Principal(user: "admin", role: .admin))])
        XCTAssertEqual(BearerAuth.authenticate("Bearer demo-quality-token", tokens: store), .authenticated(Principal(user: "li.wei", role: .quality)))
        XCTAssertEqual(BearerAuth.authenticate("bearer demo-admin-token", tokens: store), .authenticated(Principal(user: "admin", role: .admin)))
        XCTAssertEqual(BearerAuth.authenticate("Bearer   demo-admin-token ", tokens: store), .authenticated(Principal(user: "admin", role: .admin)))
        XCTAssertEqual(BearerAuth.authenticate(nil, tokens: store), .anonymous)
        XCTAssertEqual(BearerAuth.authenticate("", tokens: store), .anonymous)
        XCTAssertEqual(BearerAuth.authenticate("Bearer demo-quality-tokeN", tokens: store), .rejected(reason: "unknown token"))
        XCTAssertEqual(BearerAuth.authenticate("Bearer demo-quality-token-longer", tokens: store), .rejected(reason: "unknown token"))
        XCTAssertEqual(BearerAuth.authenticate("Basic abc", tokens: store), .rejected(reason: "the Authorization header is not a Bearer token"))
        XCTAssertEqual(BearerAuth.authenticate("Bearer", tokens: store), .rejected(reason: "the Authorization header is not a Bearer token"))
    }

    func testDomainErrorsBecomeTheirStatuses() {
        func answer(_ error: any Error) -> (Int, String, String) {
            let e = HTTPError.command(error)
            return (e.status, e.code, e.message)
        }
        XCTAssertTrue(answer(QualityActionError.notFound("no alert 7")) == (404, "not_found", "no alert 7"))
        XCTAssertTrue(answer(QualityActionError.conflict("alert 7 is cleared")) == (409, "conflict", "alert 7 is cleared"))
        // One code per meaning: every 422 says `unprocessable`, as the routes do.
        XCTAssertTrue(answer(QualityActionError.invalid("minutes must be more than 0")) == (422, "unprocessable", "minutes must be more than 0"))
        XCTAssertTrue(answer(VehicleCommandError.notFound(vehicleId: "V1")) == (404, "not_found", "vehicle V1 not found"))
        XCTAssertTrue(answer(VehicleCommandError.conflict(vehicleId: "V1", message: "V1 is scrapped")) == (409, "conflict", "V1 is scrapped"))
        XCTAssertTrue(answer(HTTPError(401, "who")) == (401, "unauthorized", "who"))
        struct DiskFull: Error, CustomStringConvertible { var description: String { "disk full" } }
        XCTAssertTrue(answer(DiskFull()) == (503, "unavailable", "the change could not be stored: disk full"))
    }

    func testKPIDocument() throws {
        let config = try PlantConfig.decode(json: JSON.parse("""
        {"plant": "Test", "timezone": "UTC", "route": ["welding"],
         "shifts": [{"name": "A", "start": "06:00", "end": "14:00"}],
         "stations": [{"id": "WELD-01", "name": "Weld 1", "process": "welding", "protocol": "modbus",
           "endpoint": "modbus://127.0.0.1:15020?unit=1", "idealCycleTimeS": 50,
           "signals": [{"name": "cycleDone", "role": "cycleComplete", "address": "coil:0", "type": "bool"}]}]}
        """), file: "test.json", directory: URL(fileURLWithPath: "/tmp"))
        var engine = try QualityEngine(config: config)
        let start = Date(timeIntervalSince1970: 1_795_240_800) // 2026-11-21 06:00 UTC
        _ = engine.process(.operation(OperationRecord(id: "op1", vehicleId: "V1", station: "WELD-01", process: "welding",
                                                      startedAt: start, completedAt: start.addingTimeInterval(60),
                                                      result: .nok, measurements: [:], attempt: 1)))
        let quality = engine.kpis()
        let json = KPIJSON.document(PlantKPIs(quality: quality, lineWIP: 3, inProcess: 1, onHold: 2))
        XCTAssertEqual(json.objectValue?.map(\.0), ["shift", "line", "stations", "response", "andon", "rty", "alerts", "defects", "wip"])
        XCTAssertEqual(json["shift"], .obj([("name", .string("A")), ("start", .string("2026-11-21T06:00:00.000Z")),
                                            ("end", .string("2026-11-21T14:00:00.000Z")), ("date", .string("2026-11-21")),
                                            ("breaks", .array([])), ("countedFrom", .string("2026-11-21T06:01:00.000Z"))]))
        // Downtime by reason and category (README "Andon and downtime") follow each KPI object's own members.
        func withDowntime(_ kpi: JSON) -> JSON {
            .object((kpi.objectValue ?? []) + [("downtimeByReason", .object([])), ("downtimeByCategory", .object([]))])
        }
        XCTAssertEqual(json["line"], withDowntime(quality.line.json))
        XCTAssertEqual(json["stations"], .array([withDowntime(quality.stations[0].json)]))
        XCTAssertEqual(json["response"], .obj([("meanAckS", .null), ("meanResolveS", .null), ("overdueNow", .int(0))]))
        XCTAssertEqual(json["andon"], .obj([("calls", .int(0)), ("meanResponseS", .null), ("openNow", .int(0))]))
        XCTAssertEqual(json["rty"], .number(quality.line.rty))
        XCTAssertEqual(json["alerts"], .obj([("per10Min", .int(0)), ("floodTimePct", .double(0)), ("chattering", .array([]))]))
        XCTAssertEqual(json["defects"], .obj([
            ("byCode", .array([.obj([("code", .string("NOK")), ("count", .int(1))])])),
            ("byStation", .array([.obj([("station", .string("WELD-01")), ("count", .int(1))])])),
        ]))
        XCTAssertEqual(json["wip"], .obj([("line", .int(3)), ("inProcess", .int(1)), ("onHold", .int(2))]))
    }
}
