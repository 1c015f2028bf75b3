import Foundation
import Runtime
import XCTest

/// RFC 4180 writing (README "Exports (CSV)"): exact bytes for each quoting rule.
final class CSVWriterTests: XCTestCase {
    func text(_ build: (inout CSVWriter) -> Void) -> String {
        var writer = CSVWriter()
        build(&writer)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    func testQuotingRules() {
        XCTAssertEqual(text { $0.record(["a", "b,c", "say \"hi\"", "two\nlines", "cr\rhere", "焊点，裂纹", ""]) },
                       "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rhere\",焊点，裂纹,\r\n")
        XCTAssertEqual(text { w in w.text(nil); w.text("x"); w.empty(); w.endRecord() }, ",x,\r\n")
    }

    func testFormulaGuardOnTextOnly() {
        XCTAssertEqual(text { $0.record(["=SUM(A1)", "+1", "-x", "@a", "\tt", "=a,b"]) },
                       "'=SUM(A1),'+1,'-x,'@a,'\tt,\"'=a,b\"\r\n")
        XCTAssertEqual(text { w in w.number(-1.5); w.number(Int64(-3)); w.endRecord() }, "-1.5,-3\r\n", "numbers are never guarded")
    }

    func testNumbersBoolsTimesAndJSON() {
        XCTAssertEqual(text { w in
            w.number(11.7); w.number(42.0); w.number(Double.nan); w.number(Int64?.none); w.bool(true); w.bool(nil)
            w.endRecord()
        }, "11.7,42,,,true,\r\n")
        let date = Date(timeIntervalSince1970: 1_790_000_000.1234)
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        XCTAssertEqual(text { $0.time(ms: ms) }, Timestamp.format(date))
        XCTAssertEqual(text { $0.time(ms: -1) }, "1969-12-31T23:59:59.999Z")
        XCTAssertEqual(text { w in
            w.json(.array([.string("L1"), .string("L2")])); w.json(.obj([("a", .int(1))])); w.json(nil); w.json(.string("t"))
        }, "L1;L2,\"{\"\"a\"\":1}\",,t")
    }

    func testBufferReuseAndByteOrderMark() {
        var writer = CSVWriter(buffer: Array("old".utf8))
        writer.byteOrderMark()
        writer.record(["x"])
        XCTAssertEqual(writer.bytes, [0xEF, 0xBB, 0xBF, 120, 13, 10])
        XCTAssertEqual(writer.take(), [0xEF, 0xBB, 0xBF, 120, 13, 10])
        XCTAssertEqual(writer.count, 0)
    }
}
