import Foundation
import XCTest
@testable import Runtime


/// The byte writers the events are built with give exactly the text the String-based code gave.
final class EventEncodingTests: XCTestCase {
    /// `Timestamp.format` (arithmetic) against `gmtime_r` over leap days, year and era boundaries,
    /// dates before 1970, and random milliseconds.
    func testTimestampsMatchGmtime() {
        var dates: [Date] = []
        for text in ["1970-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z", "2000-02-29T12:00:00.001Z",
                     "1900-03-01T00:00:00.000Z", "2100-02-28T23:59:59.999Z", "2400-02-29T00:00:00.000Z",
                     "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "2026-11-21T06:00:00.100Z"] {
            dates.append(Timestamp.parse(text)!)
        }
        var rng = SeededRandom(seed: 19)
        for _ in 0..<20_000 {
            dates.append(Date(timeIntervalSince1970: Double(Int64.random(in: -62_000_000_000_000...253_000_000_000_000, using: &rng)) / 1000))
        }
        func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
        for date in dates {
            let expected = Timestamp.formatWithCalendar(milliseconds: ms(date))
            XCTAssertEqual(Timestamp.format(date), expected)
            var bytes: [UInt8] = [1]
            Timestamp.write(date, into: &bytes)
            XCTAssertEqual(bytes, [1] + Array(expected.utf8))
            // The CSV writer's times are the same text.
            var csv = CSVWriter()
            csv.time(ms: ms(date))
            XCTAssertEqual(csv.bytes, Array(expected.utf8))
        }
        // Outside four-digit years the old way still answers, for the CSV writer too.
        let far = Date(timeIntervalSince1970: 300_000_000_000)
        XCTAssertEqual(Timestamp.format(far), Timestamp.formatWithCalendar(milliseconds: ms(far)))
        var csv = CSVWriter()
        csv.time(ms: ms(far))
        XCTAssertEqual(String(decoding: csv.bytes, as: UTF8.self), Timestamp.format(far))
    }

    func testNumbersAndStringsAsStringsWroteThem() {
        var rng = SeededRandom(seed: 7)
        var ints: [Int64] = [0, 9, 10, -1, -9, -10, 99, 100, Int64.max, Int64.min, Int64.min + 1]
        for _ in 0..<2000 { ints.append(Int64.random(in: Int64.min...Int64.max, using: &rng)) }
        for i in ints {
            var out: [UInt8] = []
            JSON.writeInt(i, into: &out)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), String(i))
        }
        var doubles: [Double] = [0, -0.0, 1.5, -2.25, 1e15, 1e15 - 1, -1e15, 1e16, 1e-7, 0.1 + 0.2, .pi, 10.21,
                                 Double.greatestFiniteMagnitude, Double.leastNonzeroMagnitude, .infinity, -.infinity, .nan]
        for _ in 0..<2000 {
            doubles.append(Double.random(in: -1e6...1e6, using: &rng))
            doubles.append(Double(Int.random(in: -1_000_000...1_000_000, using: &rng)) / 100)
        }
        for d in doubles {
            var out: [UInt8] = []
            JSON.writeDouble(d, into: &out)
            let expected: String
            if !d.isFinite { expected = "null" } else if d.rounded() == d && abs(d) < 1e15 { expected = String(Int64(d)) } else { expected = "\(d)" }
            XCTAssertEqual(String(decoding: out, as: UTF8.self), expected)
        }
        for text in ["", "plain", "q\"uote", "back\\slash", "line\nbreak\r\ttab", "\u{1}\u{1f}\u{7f}", "中文 → ok", "\u{2028}", "é"] {
            var out: [UInt8] = []
            JSON.writeString(text, into: &out)
            var expected = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": expected += "\\\""
                case "\\": expected += "\\\\"
                case "\n": expected += "\\n"
                case "\r": expected += "\\r"
                case "\t": expected += "\\t"
                case _ where scalar.value < 32: expected += String(format: "\\u%04x", scalar.value)
                default: expected.unicodeScalars.append(scalar)
                }
            }
            expected += "\""
            XCTAssertEqual(String(decoding: out, as: UTF8.self), expected)
            XCTAssertEqual(try JSON.parse(bytes: out), .string(text))
        }
        let value = JSON.obj([("a", .null), ("b", .bool(true)), ("c", .bool(false)), ("d", .array([.int(-3), .double(2.5), .object([])])), ("e", .array([]))])
        XCTAssertEqual(value.serialized(), #"{"a":null,"b":true,"c":false,"d":[-3,2.5,{}],"e":[]}"#)
    }
}
