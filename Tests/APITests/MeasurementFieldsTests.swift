import Foundation
@testable import API
import Runtime
import XCTest

/// An operation's stored measurements and lots as CSV fields (README "Exports (CSV)"): the byte
/// scan for what the genealogy writes, the JSON parser for anything else.
final class MeasurementFieldsTests: XCTestCase {
    func fields(_ json: String, _ names: [String]) -> String {
        var out = CSVWriter()
        var text = json
        text.withUTF8 { MeasurementFields.write(UnsafeRawBufferPointer($0), names: names.map { Array($0.utf8) }, into: &out) }
        return String(decoding: out.bytes, as: UTF8.self)
    }

    func lots(_ json: String) -> String {
        var out = CSVWriter()
        var text = json
        text.withUTF8 { MeasurementFields.writeLots(UnsafeRawBufferPointer($0), into: &out) }
        return String(decoding: out.bytes, as: UTF8.self)
    }

    func testStoredShapes() {
        XCTAssertEqual(fields(#"{"spotCount":42,"weldCurrent":11.7}"#, ["weldCurrent", "weldVoltage", "spotCount"]), "11.7,,42,")
        XCTAssertEqual(fields(#"{"gap":-0.25,"old":1e-7,"weldCurrent":null}"#, ["weldCurrent", "gap"]), ",-0.25,old=1e-7",
                       "null is empty; a name outside the columns goes to otherMeasurements; numbers are never formula-guarded")
        XCTAssertEqual(fields("{}", ["a"]), ",")
        XCTAssertEqual(fields("", ["a", "b"]), ",,")
    }

    func testUnusualTextsGoThroughTheParser() {
        XCTAssertEqual(fields(#"{ "a\"b" : 1, "c": 2.5 }"#, ["c"]), "2.5,\"a\"\"b=1\"", "an escaped name")
        XCTAssertEqual(fields(#"{"a": "text"}"#, ["a"]), "text,", "a non-number value")
    }

    func testLots() {
        XCTAssertEqual(lots("[]"), "")
        XCTAssertEqual(lots(#"["L1","COIL-7"]"#), "L1;COIL-7")
        XCTAssertEqual(lots(#"["批次,1","x\"y"]"#), "\"批次,1;x\"\"y\"")
    }

    func testMemberColumnsFlattenNestedObjects() {
        var out = CSVWriter()
        let row = JSON.obj([("id", .int(3)), ("reason", .obj([("code", .string("F1")), ("planned", .bool(false))])),
                            ("escalation", .array([.string("li.wei"), .string("张敏")]))])
        let columns = CSVColumn.members(["id", "reason.code", "reason.planned", "reason.missing", "escalation", "absent"])
        XCTAssertEqual(columns.flatMap(\.headers), ["id", "reason.code", "reason.planned", "reason.missing", "escalation", "absent"])
        for column in columns { column.write(row, &out) }
        XCTAssertEqual(String(decoding: out.bytes, as: UTF8.self), "3,F1,false,,li.wei;张敏,")
    }
}
