import Foundation
import XCTest
import TestSupport
import Runtime

/// Seeded random tests of the JSON parser and writer.
final class JSONHardeningTests: XCTestCase {
    private func randomString(_ rng: inout SplitMix64) -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<rng.below(12) {
            switch rng.below(6) {
            case 0: scalars.append(UnicodeScalar(UInt8(rng.below(32))))            // control characters
            case 1: scalars.append(rng.element(["\"", "\\", "/", "\u{7F}", "\u{2028}"]).unicodeScalars.first!)
            case 2: scalars.append(UnicodeScalar(0x1F600 + rng.below(80))!)       // astral (surrogate pairs)
            case 3: scalars.append(UnicodeScalar(0xA0 + rng.below(0xD000))!)      // BMP below the surrogates
            default: scalars.append(UnicodeScalar(UInt8(32 + rng.below(95))))
            }
        }
        return String(scalars)
    }

    private func randomDouble(_ rng: inout SplitMix64) -> Double {
        switch rng.below(4) {
        case 0: return Double(rng.below(2_000_001) - 1_000_000) / 1000
        case 1: return Double(bitPattern: rng.next() & 0xFFEF_FFFF_FFFF_FFFF)   // any finite bit pattern
        case 2: return rng.element([0.1, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, 1e15, 1e16, -123456.789e10])
        default: return Double(rng.next() >> 11) / Double(1 << 20) * (rng.chance(0.5) ? 1 : -1)
        }
    }

    private func randomValue(_ rng: inout SplitMix64, depth: Int = 0) -> JSON {
        let leaf = depth >= 6 || rng.chance(0.5)
        switch leaf ? rng.below(5) : 5 + rng.below(2) {
        case 0: return .null
        case 1: return .bool(rng.chance(0.5))
        case 2: return .int(rng.chance(0.3) ? Int64(bitPattern: rng.next()) : Int64(rng.below(2000)) - 1000)
        case 3: return .double(randomDouble(&rng))
        case 4: return .string(randomString(&rng))
        case 5: return .array((0..<rng.below(6)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            var members: [(String, JSON)] = []
            for _ in 0..<rng.below(6) {
                let key = randomString(&rng)
                if !members.contains(where: { $0.0 == key }) { members.append((key, randomValue(&rng, depth: depth + 1))) }
            }
            return .object(members)
        }
    }

    /// Adds random insignificant whitespace after structural bytes of a serialized value (bytes, not
    /// Characters: a quote followed by a combining mark is one Character).
    private func sprinkleSpaces(_ text: String, _ rng: inout SplitMix64) -> [UInt8] {
        var out: [UInt8] = []
        var inString = false, escaped = false
        for byte in text.utf8 {
            out.append(byte)
            if inString {
                if escaped { escaped = false } else if byte == 92 { escaped = true } else if byte == 34 { inString = false }
            } else if byte == 34 {
                inString = true
            } else if Array("{}[],:".utf8).contains(byte), rng.chance(0.3) {
                out += Array(rng.element([" ", "\n", "\t", "\r\n  "]).utf8)
            }
        }
        return out
    }

    func testParseOfSerializeIsIdentity() throws {
        var rng = SplitMix64(seed: 0x4A53_4F4E)
        for round in 0..<20000 {
            let value = randomValue(&rng)
            let text = value.serialized()
            let parsed = try JSON.parse(text)
            guard parsed == value else { return XCTFail("round \(round): \(text) parsed to \(parsed.serialized())") }
            XCTAssertEqual(try JSON.parse(bytes: sprinkleSpaces(text, &rng)), value, "round \(round): whitespace changed \(text)")
            XCTAssertEqual(parsed.serialized(), text, "round \(round): serialization is not stable")
        }
    }

    func testDoublesSurviveExactly() throws {
        var rng = SplitMix64(seed: 3)
        for _ in 0..<20000 {
            let d = randomDouble(&rng)
            let back = try JSON.parse(JSON.double(d).serialized())
            XCTAssertEqual(back.doubleValue, d, "\(d) → \(JSON.double(d).serialized())")
        }
    }

    func testDamagedTextParsesOrFailsWithAnOffsetInside() {
        var rng = SplitMix64(seed: 0xDA3A6E)
        var failures = 0
        for round in 0..<30000 {
            let valid = Array(randomValue(&rng).serialized().utf8)
            let input = rng.chance(0.05) ? rng.bytes(rng.below(64)) : Mutator.mutate(valid, &rng)
            do {
                let value = try JSON.parse(bytes: input)
                // Whatever parses must round-trip too.
                let text = value.serialized()
                XCTAssertEqual(try JSON.parse(text).serialized(), text, "round \(round)")
            } catch let error as JSONParseError {
                failures += 1
                XCTAssertTrue((0...input.count).contains(error.offset), "round \(round): offset \(error.offset) of \(input.count)")
                XCTAssertFalse(error.reason.isEmpty)
            } catch {
                XCTFail("round \(round): unexpected error type \(error)")
            }
        }
        XCTAssertGreaterThan(failures, 10000)
    }

    func testEveryTruncationOfAValidTextFails() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<600 {
            let value = randomValue(&rng)
            guard case .object = value else { continue }   // objects and arrays end with a bracket
            let bytes = Array(value.serialized().utf8)
            for cut in 0..<bytes.count {
                XCTAssertThrowsError(try JSON.parse(bytes: Array(bytes[..<cut])), "cut \(cut) of \(value.serialized())")
            }
        }
    }

    func testDeepNestingIsRefusedNotACrash() {
        for depth in [10, 63, 65, 1000, 100_000] {
            let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            let object = String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)
            if depth < 64 {
                XCTAssertNoThrow(try JSON.parse(text))
                XCTAssertNoThrow(try JSON.parse(object))
            } else {
                XCTAssertThrowsError(try JSON.parse(text))
                XCTAssertThrowsError(try JSON.parse(object))
            }
        }
    }
}
