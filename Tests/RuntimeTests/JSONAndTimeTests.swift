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

    func testNumbersAreTakenAsRFC8259WritesThem() throws {
        for good in ["0", "-0", "1", "-12", "0.5", "1e3", "1E+3", "2.5e-3", "123456789012"] {
            XCTAssertNoThrow(try JSON.parse(good), good)
        }
        for bad in ["01", "-01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "1.e3", "00", "1e400", "Infinity", "NaN", "--1"] {
            XCTAssertThrowsError(try JSON.parse(bad), bad)
        }
        XCTAssertEqual(try JSON.parse("[1, 2.5]"), .array([.int(1), .double(2.5)]))
    }

    func testDuplicateNamesAndInvalidUTF8AreRefused() throws {
        XCTAssertThrowsError(try JSON.parse(#"{"a":1,"a":2}"#))
        let wide = "{" + (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + ",\"k7\":0}"
        XCTAssertThrowsError(try JSON.parse(wide), "a duplicate after many members")
        XCTAssertNoThrow(try JSON.parse(#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#), "the same name in different objects")
        XCTAssertThrowsError(try JSON.parse(bytes: Array(#"{"a":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)))
        XCTAssertThrowsError(try JSON.parse(bytes: Array(#"["\n"#.utf8) + [0xED, 0xA0, 0x80] + Array(#""]"#.utf8)), "an encoded surrogate")
        XCTAssertThrowsError(try JSON.parse(#"["\udc00"]"#), "a lone low surrogate")
        XCTAssertEqual(try JSON.parse(#"["a\u0000b"]"#), .array([.string("a\u{0}b")]), "an escaped NUL is valid JSON text")
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
