import Foundation
import XCTest
@testable import Runtime

final class JSONAndTimeTests: XCTestCase {
    func testRoundTripKeepsKeyOrder() throws {
        let text = #"{"b":1,"a":[true,false,null,"x\"y\n",2.5,-3],"c":{"z":"中文"}}"#
        let value = try JSON.parse(text)
        XCTAssertEqual(value.serialized(), text)
        XCTAssertEqual(value["a"]?.arrayValue?.count, 6)
        XCTAssertEqual(value["c"]?["z"]?.stringValue, "中文")
    }

    func testParseErrorsHaveOffsets() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "\"abc", "01x", "{\"a\":1}x"] {
            XCTAssertThrowsError(try JSON.parse(bad), bad) { error in
                XCTAssertTrue(error is JSONParseError)
            }
        }
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertThrowsError(try JSON.parse(deep))
    }

    func testUnicodeEscapes() throws {
        XCTAssertEqual(try JSON.parse(#""\u00e9\ud83d\ude00""#).stringValue, "é😀")
        XCTAssertEqual(JSON.string("\u{01}").serialized(), #""\u0001""#)
    }

    func testTimestamps() throws {
        let date = try XCTUnwrap(Timestamp.parse("2026-11-21T06:00:00.100Z"))
        XCTAssertEqual(Timestamp.format(date), "2026-11-21T06:00:00.100Z")
        XCTAssertEqual(Timestamp.format(try XCTUnwrap(Timestamp.parse("2026-11-21T14:00:00+08:00"))), "2026-11-21T06:00:00.000Z")
        XCTAssertEqual(Timestamp.format(try XCTUnwrap(Timestamp.parse("2026-11-21T06:00:00.123456Z"))), "2026-11-21T06:00:00.123Z")
        XCTAssertNil(Timestamp.parse("2026-13-21T06:00:00Z"))
        XCTAssertNil(Timestamp.parse("yesterday"))
        XCTAssertNil(Timestamp.parse("2026-11-21T06:00:00"))
    }
}
