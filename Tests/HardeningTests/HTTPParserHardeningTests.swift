import Foundation
import XCTest
import TestSupport
import HTTP

/// Seeded random tests of the incremental HTTP request parser: split feeds, damaged and truncated input.
final class HTTPParserHardeningTests: XCTestCase {
    /// A request the generator made, with what the parser must report for it.
    private struct Expected: Equatable {
        var method: HTTPMethod
        var path: String
        var query: [String: String]
        var headers: [String: String]
        var body: [UInt8]
        var keepAlive: Bool
    }

    private static let pathChars = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~".utf8)
    private static let tokenChars = Array("abcdefghijklmnopqrstuvwxyz0123456789-".utf8)

    private func word(_ rng: inout SplitMix64, _ alphabet: [UInt8], _ maxLength: Int = 10) -> String {
        String(decoding: (0...rng.below(maxLength)).map { _ in rng.element(alphabet) }, as: UTF8.self)
    }

    /// Percent-encodes every byte of `text` with probability ½ (or always for bytes that need it).
    private func encode(_ text: String, _ rng: inout SplitMix64) -> String {
        var out = ""
        for byte in text.utf8 {
            let needs = !Self.pathChars.contains(byte)
            if needs || rng.chance(0.2) { out += String(format: "%%%02X", byte) } else { out.append(Character(UnicodeScalar(byte))) }
        }
        return out
    }

    /// A random valid request: its wire bytes and what it must parse to.
    private func makeRequest(_ rng: inout SplitMix64) -> ([UInt8], Expected) {
        let method = rng.element(HTTPMethod.allCases)
        let segments = (0..<rng.below(4)).map { _ in rng.chance(0.2) ? "é \(rng.below(99))/x" : word(&rng, Self.pathChars) }
        let path = "/" + segments.joined(separator: "/")
        let rawPath = "/" + segments.map { encode($0, &rng) }.joined(separator: "/")
        var query: [String: String] = [:]
        var queryParts: [String] = []
        for _ in 0..<rng.below(4) {
            let name = word(&rng, Self.tokenChars, 6), value = rng.chance(0.3) ? "a b&c=d" : word(&rng, Self.pathChars)
            query[name] = value
            queryParts.append(encode(name, &rng) + "=" + encode(value, &rng))
        }
        let http11 = rng.chance(0.8)
        var keepAlive = http11
        var lines = ["\(method.rawValue) \(rawPath)\(queryParts.isEmpty ? "" : "?" + queryParts.joined(separator: "&")) HTTP/\(http11 ? "1.1" : "1.0")"]
        var headers: [String: String] = [:]
        for i in 0..<rng.below(6) {
            let name = "X-\(word(&rng, Self.tokenChars, 8))-\(i)"
            let value = word(&rng, Self.pathChars + Array(" ,;=".utf8), 30).trimmingCharacters(in: .whitespaces)
            headers[name.lowercased()] = value
            lines.append("\(name):\(rng.chance(0.5) ? " " : "")\(value)\(rng.chance(0.2) ? "  " : "")")
        }
        if rng.chance(0.2) {
            keepAlive = !http11
            lines.append("Connection: \(http11 ? "close" : "keep-alive")")
        }
        let body = rng.chance(0.4) ? rng.bytes(rng.below(300)) : []
        if !body.isEmpty || rng.chance(0.1) { lines.append("Content-Length: \(body.count)") }
        let eol = rng.chance(0.1) ? "\n" : "\r\n"
        let wire = Array((lines.joined(separator: eol) + eol + eol).utf8) + body
        return (wire, Expected(method: method, path: path, query: query, headers: headers, body: body, keepAlive: keepAlive))
    }

    private func expected(from request: HTTPRequest) -> Expected {
        var headers: [String: String] = [:]
        for (name, value) in request.headers.fields where name.hasPrefix("X-") { headers[name.lowercased()] = value }
        return Expected(method: request.method, path: request.path, query: request.query, headers: headers,
                        body: request.body, keepAlive: request.keepAlive)
    }

    /// Feeds `stream` in random chunk sizes; returns the requests and the error, if any.
    private func feed(_ stream: [UInt8], _ rng: inout SplitMix64, maxChunk: Int,
                      maxHeader: Int = 16384, maxBody: Int = 1_048_576) -> ([HTTPRequest], HTTPParseError?) {
        var parser = HTTPRequestParser(maxHeaderBytes: maxHeader, maxBodyBytes: maxBody)
        var requests: [HTTPRequest] = []
        var offset = 0
        while offset < stream.count {
            let n = min(stream.count - offset, 1 + rng.below(maxChunk))
            parser.append(stream[offset..<offset + n])
            offset += n
            while true {
                switch parser.next() {
                case .needMore: break
                case .request(let r): requests.append(r); continue
                case .error(let e): return (requests, e)
                }
                break
            }
        }
        return (requests, nil)
    }

    func testPipelinedStreamInRandomChunksGivesTheSameRequests() {
        var rng = SplitMix64(seed: 0x4854_5450)
        for round in 0..<1500 {
            var stream: [UInt8] = []
            var wanted: [Expected] = []
            for _ in 0..<(1 + rng.below(8)) {
                let (bytes, expect) = makeRequest(&rng)
                stream += bytes
                wanted.append(expect)
            }
            let maxChunk = rng.element([1, 2, 7, 64, 1000, 100_000])
            let (requests, error) = feed(stream, &rng, maxChunk: maxChunk)
            XCTAssertNil(error, "round \(round): \(String(describing: error)) for \(String(decoding: stream, as: UTF8.self).prefix(300))")
            let got = requests.map(expected(from:))
            if got != wanted {
                XCTFail("round \(round), chunk \(maxChunk): got \(got.count) requests, wanted \(wanted.count)\n\(got.first.map { "\($0)" } ?? "")\n\(wanted.first.map { "\($0)" } ?? "")")
                return
            }
        }
    }

    func testTruncatedStreamYieldsOnlyWholeRequestsAndWaits() {
        var rng = SplitMix64(seed: 7)
        for round in 0..<3000 {
            var stream: [UInt8] = []
            var ends: [Int] = []
            for _ in 0..<(1 + rng.below(4)) {
                stream += makeRequest(&rng).0
                ends.append(stream.count)
            }
            let cut = rng.below(stream.count + 1)
            var parser = HTTPRequestParser()
            parser.append(stream[..<cut])
            var count = 0
            loop: while true {
                switch parser.next() {
                case .request: count += 1
                case .needMore: break loop
                case .error(let e): XCTFail("round \(round): a truncated valid stream is an error: \(e)"); return
                }
            }
            XCTAssertEqual(count, ends.filter { $0 <= cut }.count, "round \(round): cut at \(cut) of \(ends)")
            let lastEnd = ends.last(where: { $0 <= cut }) ?? 0
            XCTAssertEqual(parser.phase == .idle, cut == lastEnd, "round \(round): cut \(cut) of \(ends), phase \(parser.phase)")
        }
    }

    func testDamagedInputEndsInRequestsNeedMoreOrAKnownError() {
        var rng = SplitMix64(seed: 0xBAD)
        let statuses: Set<Int> = [400, 411, 413, 431, 501, 505]
        var errors = 0
        for round in 0..<20000 {
            var stream: [UInt8] = []
            for _ in 0..<(1 + rng.below(3)) { stream += makeRequest(&rng).0 }
            let damaged = rng.chance(0.05) ? rng.bytes(rng.below(200)) : Mutator.mutate(stream, &rng)
            let (_, error) = feed(damaged, &rng, maxChunk: rng.element([3, 50, 5000]), maxHeader: 512, maxBody: 200)
            if let error {
                errors += 1
                XCTAssertTrue(statuses.contains(error.status), "round \(round): status \(error.status)")
                XCTAssertFalse(error.message.isEmpty)
                XCTAssertFalse(error.message.contains("\n"))
            }
        }
        XCTAssertGreaterThan(errors, 2000, "the mutations should break many requests")
    }

    func testErrorIsStickyWhateverFollows() {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<2000 {
            var parser = HTTPRequestParser(maxHeaderBytes: 256, maxBodyBytes: 64)
            parser.append(Array("GET /x HTTP/1.1\r\nBad Header\r\n\r\n".utf8))
            guard case .error(let first) = parser.next() else { return XCTFail("expected an error") }
            parser.append(makeRequest(&rng).0)
            guard case .error(let again) = parser.next() else { return XCTFail("the error must stay") }
            XCTAssertEqual(first, again)
        }
    }

    func testHeaderLimitHoldsWhateverTheChunking() {
        var rng = SplitMix64(seed: 431)
        for _ in 0..<300 {
            let limit = 64 + rng.below(2000)
            var stream = Array("GET / HTTP/1.1\r\n".utf8)
            while stream.count <= limit + 10 { stream += Array("X-A: \(rng.below(1_000_000))\r\n".utf8) }
            let (requests, error) = feed(stream, &rng, maxChunk: 1 + rng.below(100), maxHeader: limit)
            XCTAssertTrue(requests.isEmpty)
            XCTAssertEqual(error?.status, 431, "header of \(stream.count) bytes past a \(limit)-byte limit")
        }
    }
}
