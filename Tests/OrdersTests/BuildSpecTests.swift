import Foundation
import XCTest
import Orders
import PlantModel
import Runtime
import TestSupport

/// Master data in the plant config, build spec overlay, VIN rules and the order book, without a server.
final class BuildSpecTests: XCTestCase {
    static let plantFile = repoRoot.appendingPathComponent("Stations/plant.json")

    /// The default plant with `extra` members replacing its own master data.
    func config(_ extra: String) throws -> PlantConfig {
        let base = try JSON.parse(String(contentsOf: Self.plantFile, encoding: .utf8))
        guard case .object(var members) = base, case .object(let added) = try JSON.parse(extra) else { throw XCTSkip("fixture") }
        members.removeAll { key, _ in ["vin", "orders", "models", "options"].contains(key) }
        members += added
        return try PlantConfig.decode(json: .object(members), file: "plant.json", directory: URL(fileURLWithPath: "/tmp"))
    }

    func configError(_ extra: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try config(extra)
            XCTFail("accepted: \(extra)", file: file, line: line)
            return ""
        } catch {
            return "\(error)"
        }
    }

    func testConfigErrorsNameTheJSONPath() {
        XCTAssertEqual(configError(#"{"models": {"A": {"idealCycleTimeS": {"WELD-09": 50}}}}"#),
                       "plant.json: models.A.idealCycleTimeS.WELD-09: \"WELD-09\" is not a station (PRESS-01, WELD-01, WELD-02, PAINT-01, ASSY-01, ASSY-02, INSP-01, UTIL-01)")
        XCTAssertEqual(configError(#"{"models": {"A": {"limits": {"weldCurent": {"high": 11}}}}}"#),
                       "plant.json: models.A.limits.weldCurent: no station has a measurement signal \"weldCurent\"")
        XCTAssertTrue(configError(#"{"models": {"A": {"limits": {"ASSY-01.weldCurrent": {"high": 11}}}}}"#)
            .hasPrefix("plant.json: models.A.limits.ASSY-01.weldCurrent: \"weldCurrent\" is not a measurement signal of ASSY-01 (torque, angle)"))
        XCTAssertTrue(configError(#"{"models": {"A": {"limits": {"NOPE-1.torque": {"high": 11}}}}}"#)
            .hasPrefix("plant.json: models.A.limits.NOPE-1.torque: \"NOPE-1\" is not a station"))
        XCTAssertTrue(configError(#"{"models": {"A": {"route": ["stamping", "welding", "coating"]}}}"#)
            .hasPrefix("plant.json: models.A.route[2]: \"coating\" is not a process of the plant route"))
        XCTAssertTrue(configError(#"{"models": {"A": {"route": ["welding", "stamping"]}}}"#)
            .hasPrefix("plant.json: models.A.route[1]: \"stamping\" is out of the plant route's order"))
        XCTAssertEqual(configError(#"{"models": {"A": {"limits": {"torque": {"low": 5, "high": 1}}}}}"#),
                       "plant.json: models.A.limits.torque: low 5.0 is above high 1.0")
        XCTAssertTrue(configError(#"{"models": {"A": {"colour": "red"}}}"#).hasPrefix("plant.json: models.A.colour: is not a known setting"))
        XCTAssertTrue(configError(#"{"models": {"A": {}}, "options": {"P": {"idealCycleTimeS": {"X": 1}}}}"#)
            .hasPrefix("plant.json: options.P.idealCycleTimeS.X: \"X\" is not a station"))
        XCTAssertTrue(configError(#"{"options": {"P": {}}}"#).hasPrefix("plant.json: options: options need a models block"))
        XCTAssertTrue(configError(#"{"orders": {"required": true}}"#).hasPrefix("plant.json: orders: required orders need a models block"))
        XCTAssertTrue(configError(#"{"vin": {"checkDigit": "yes"}}"#).hasPrefix("plant.json: vin.checkDigit: must be true or false"))
        XCTAssertTrue(configError(#"{"models": {"A B": {}}}"#).hasPrefix("plant.json: models[\"A B\"]: the code must be"))
    }

    func testNoBlocksMeansNoOrders() throws {
        let plain = try config("{}")
        XCTAssertFalse(plain.hasModels)
        XCTAssertFalse(plain.checksLineVINs)
        XCTAssertTrue(plain.vin.checkDigit, "the API checks VINs by default")
        XCTAssertTrue(try config(#"{"vin": {}}"#).checksLineVINs)
        XCTAssertFalse(try config(#"{"vin": {"checkDigit": false}, "models": {"A": {}}}"#).checksLineVINs)
    }

    func testOverlayModelThenOptionsMoreSpecificWins() throws {
        let plant = try config("""
            {"models": {"M": {"route": ["stamping", "welding", "assembly", "inspection"], "idealCycleTimeS": {"WELD-01": 60},
                              "limits": {"torque": {"low": 112, "high": 128}, "ASSY-01.angle": {"low": 35, "high": 55}},
                              "parts": {"engine": "ENG-1", "seat": "S-1"}}},
             "options": {"O1": {"limits": {"ASSY-02.torque": {"low": 118, "high": 122}, "angle": {"low": 40, "high": 50}},
                                "idealCycleTimeS": {"WELD-01": 65}, "parts": {"seat": "S-LUX"}},
                         "O2": {"route": ["stamping", "welding", "paint", "assembly", "inspection"], "limits": {"torque": {"low": 114, "high": 126}}}}}
            """)
        let base = try plant.buildSpec(model: "M", options: [])
        XCTAssertEqual(base.route, ["stamping", "welding", "assembly", "inspection"])
        XCTAssertTrue(base.routeChanged)
        XCTAssertEqual(base.limits(station: "ASSY-01", signal: "torque"), SpecLimits(low: 112, high: 128))
        XCTAssertEqual(base.limits(station: "ASSY-01", signal: "angle"), SpecLimits(low: 35, high: 55))
        XCTAssertNil(base.limits(station: "ASSY-02", signal: "angle"))
        XCTAssertNil(base.limits(station: "WELD-01", signal: "weldCurrent"))

        let spec = try plant.buildSpec(model: "M", options: ["O1", "O2"])
        XCTAssertEqual(spec.route, plant.route, "a later layer's route replaces the model's")
        XCTAssertFalse(spec.routeChanged)
        XCTAssertEqual(spec.idealCycleTimeS["WELD-01"], 65)
        XCTAssertEqual(spec.parts, ["engine": "ENG-1", "seat": "S-LUX"])
        XCTAssertEqual(spec.limits(station: "ASSY-02", signal: "torque"), SpecLimits(low: 118, high: 122), "STATION.signal beats signal")
        XCTAssertEqual(spec.limits(station: "ASSY-01", signal: "torque"), SpecLimits(low: 114, high: 126), "the later option's signal key")
        XCTAssertEqual(spec.limits(station: "ASSY-01", signal: "angle"), SpecLimits(low: 35, high: 55), "the model's STATION.signal beats the option's signal key")
        XCTAssertEqual(spec.limits(station: "ASSY-02", signal: "angle"), SpecLimits(low: 40, high: 50))

        let assy2 = try XCTUnwrap(spec.operationSpec(for: XCTUnwrap(plant.station("ASSY-02"))))
        XCTAssertEqual(assy2.limits, ["torque": SpecLimits(low: 118, high: 122), "angle": SpecLimits(low: 40, high: 50)])
        XCTAssertNil(assy2.idealCycleTimeS)
        XCTAssertEqual(spec.operationSpec(for: try XCTUnwrap(plant.station("WELD-01")))?.idealCycleTimeS, 65)
        XCTAssertNil(spec.operationSpec(for: try XCTUnwrap(plant.station("PAINT-01"))), "nothing changes at paint")

        XCTAssertThrowsError(try plant.buildSpec(model: "X", options: [])) { XCTAssertEqual(($0 as? BuildSpecError)?.field, "model") }
        XCTAssertThrowsError(try plant.buildSpec(model: "M", options: ["O1", "O9"])) { XCTAssertEqual(($0 as? BuildSpecError)?.field, "options[1]") }
        XCTAssertThrowsError(try plant.buildSpec(model: "M", options: ["O1", "O1"])) { XCTAssertEqual(($0 as? BuildSpecError)?.field, "options[1]") }
    }

    func testVINRules() {
        // The textbook example of ISO 3779 / FMVSS 115: check digit X.
        XCTAssertEqual(VINRules.checkDigit("1M8GDM9AXKP042788"), "X")
        XCTAssertNil(VINRules.problem("1M8GDM9AXKP042788"))
        XCTAssertEqual(VINRules.problem("1M8GDM9A1KP042788"), "check digit (character 9) is 1, expected X (ISO 3779 / GB 16735)")
        XCTAssertNil(VINRules.problem("LSVAB3C12TS372160"), "a simulator VIN")
        XCTAssertEqual(VINRules.problem("LSVAB3C12TS37216"), "a VIN has 17 characters; \"LSVAB3C12TS37216\" has 16")
        XCTAssertTrue(VINRules.problem("LSVAB3C12TS37216O")?.hasPrefix("character 17 \"O\" is not allowed in a VIN (I, O and Q are never used)") ?? false)
        XCTAssertTrue(VINRules.problem("lSVAB3C12TS372160")?.contains("upper case") ?? false)
        XCTAssertTrue(VINRules.problem("LSVAB3C12TS37216é")?.contains("17 characters") ?? false)
        XCTAssertNotNil(VINRules.problem(""))
    }

    func testBookFollowsTheVehicle() throws {
        let plant = try config(#"{"models": {"A": {}}}"#)
        var book = OrderBook(config: plant)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        _ = try book.create([OrderDraft(orderId: "O1", model: "A", plannedDate: "2027-01-15", plannedShift: "A")], batch: false, at: t)
        _ = try book.release(orderId: "O1", vehicleId: "V", at: t)
        var v = VehicleSummary(vehicleId: "V", status: .inProcess, currentStation: "WELD-01", firstSeenAt: t, lastSeenAt: t)
        XCTAssertEqual(book.vehicleChanged(v)?.change, .started)
        XCTAssertNil(book.vehicleChanged(v), "no change twice")
        v.status = .hold
        XCTAssertEqual(book.vehicleChanged(v)?.change, .hold)
        v.status = .inProcess
        XCTAssertEqual(book.vehicleChanged(v)?.change, .releasedFromHold)
        XCTAssertEqual(book.order("O1")?.status, .inProduction)
        v.status = .completed
        v.lastSeenAt = t.addingTimeInterval(600)
        let done = try XCTUnwrap(book.vehicleChanged(v))
        XCTAssertEqual(done.change, .completed)
        XCTAssertEqual(done.order.completedAt, t.addingTimeInterval(600))
        XCTAssertEqual(book.planCount(date: "2027-01-15", shift: "A"), PlanCount(planned: 1, completed: 1))
        v.status = .scrapped
        XCTAssertEqual(book.vehicleChanged(v)?.change, .scrapped)
        XCTAssertEqual(book.planCount(date: "2027-01-15", shift: nil), PlanCount(planned: 1, completed: 0))
        XCTAssertThrowsError(try book.cancel(orderId: "O1", reason: nil, at: t)) { XCTAssertEqual(($0 as? OrderError)?.kind, .conflict) }
        XCTAssertThrowsError(try book.release(orderId: "O2", vehicleId: "W", at: t)) { XCTAssertEqual(($0 as? OrderError)?.kind, .notFound) }
    }

    func testDraftDates() {
        XCTAssertTrue(OrderDraft.isDate("2028-02-29"))
        XCTAssertFalse(OrderDraft.isDate("2027-02-29"))
        XCTAssertFalse(OrderDraft.isDate("2027-13-01"))
        XCTAssertFalse(OrderDraft.isDate("2027-1-01"))
    }
}
