import XCTest
@testable import HTTP

final class ParserTests: XCTestCase {
    private func parse(_ text: String, maxHeader: Int = 16384, maxBody: Int = 1_048_576) -> [HTTPRequestParser.Result] {
        var parser = HTTPRequestParser(maxHeaderBytes: maxHeader, maxBodyBytes: maxBody)
        parser.append(Array(text.utf8))
        var results: [HTTPRequestParser.Result] = []
        while true {
            let result = parser.next()
            if case .needMore = result { break }
            results.append(result)
            if case .error = result { break }
        }
        return results
    }

    private func request(_ result: HTTPRequestParser.Result?, file: StaticString = #filePath, line: UInt = #line) -> HTTPRequest? {
        guard case .request(let request)? = result else {
            XCTFail("expected a request, got \(String(describing: result))", file: file, line: line)
            return nil
        }
        return request
    }

    private func errorStatus(_ result: HTTPRequestParser.Result?) -> Int? {
        if case .error(let error)? = result { return error.status }
        return nil
    }

    func testRequestLineHeadersAndQuery() throws {
        let results = parse("GET /api/vehicles/VIN%201?status=in_process&station=WELD%2D01&q=a+b&flag HTTP/1.1\r\nHost: x\r\nX-Token:  abc \r\n\r\n")
        XCTAssertEqual(results.count, 1)
        let r = try XCTUnwrap(request(results.first))
        XCTAssertEqual(r.method, .get)
        XCTAssertEqual(r.path, "/api/vehicles/VIN 1")
        XCTAssertEqual(r.rawPath, "/api/vehicles/VIN%201")
        XCTAssertEqual(r.query, ["status": "in_process", "station": "WELD-01", "q": "a b", "flag": ""])
        XCTAssertEqual(r.headers["host"], "x")
        XCTAssertEqual(r.headers["x-TOKEN"], "abc")
        XCTAssertNil(r.headers["Content-Length"])
        XCTAssertTrue(r.keepAlive)
        XCTAssertTrue(r.isHTTP11)
        XCTAssertEqual(r.body, [])
    }

    func testPipelinedRequestsWithBodiesComeOutInOrder() throws {
        let text = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\nPUT /c HTTP/1.1\r\ncontent-length: 3\r\n\r\nxyz"
        let results = parse(text)
        XCTAssertEqual(results.count, 3)
        let a = try XCTUnwrap(request(results[0])), b = try XCTUnwrap(request(results[1])), c = try XCTUnwrap(request(results[2]))
        XCTAssertEqual(a.method, .post); XCTAssertEqual(a.path, "/a"); XCTAssertEqual(a.bodyText, "hello")
        XCTAssertEqual(b.method, .get); XCTAssertEqual(b.path, "/b"); XCTAssertEqual(b.body, [])
        XCTAssertEqual(c.method, .put); XCTAssertEqual(c.bodyText, "xyz")
    }

    func testSplitReadsByteByByte() throws {
        let text = "POST /x?y=1 HTTP/1.1\r\nContent-Length: 4\r\nA: b\r\n\r\nbodyGET /z HTTP/1.1\r\n\r\n"
        var parser = HTTPRequestParser()
        var requests: [HTTPRequest] = []
        for byte in text.utf8 {
            parser.append([byte])
            while case .request(let r) = parser.next() { requests.append(r) }
            if case .error(let e) = parser.next() { XCTFail("\(e)") }
        }
        XCTAssertEqual(requests.map(\.path), ["/x", "/z"])
        XCTAssertEqual(requests.first?.bodyText, "body")
        XCTAssertEqual(requests.first?.query["y"], "1")
        XCTAssertEqual(parser.phase, .idle)
    }

    func testPhaseTracksHeaderAndBody() {
        var parser = HTTPRequestParser()
        XCTAssertEqual(parser.phase, .idle)
        parser.append(Array("POST / HTTP/1.1\r\nContent-Le".utf8))
        guard case .needMore = parser.next() else { return XCTFail() }
        XCTAssertEqual(parser.phase, .header)
        parser.append(Array("ngth: 3\r\n\r\nab".utf8))
        guard case .needMore = parser.next() else { return XCTFail() }
        XCTAssertEqual(parser.phase, .body)
        parser.append(Array("c".utf8))
        guard case .request(let r) = parser.next() else { return XCTFail() }
        XCTAssertEqual(r.bodyText, "abc")
        XCTAssertEqual(parser.phase, .idle)
    }

    func testBadRequestLinesAndHeadersAre400() {
        XCTAssertEqual(errorStatus(parse("GET\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("GET /a b HTTP/1.1\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("GET a HTTP/1.1\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("GET / FTP/1.1\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("G(T / HTTP/1.1\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("GET / HTTP/1.1\r\n folded\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("GET /%zz HTTP/1.1\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("GET /a%00 HTTP/1.1\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").first), 400)
        XCTAssertEqual(errorStatus(parse("GET / HTTP/2.0\r\n\r\n").first), 505)
    }

    func testUnknownMethodIs501() {
        XCTAssertEqual(errorStatus(parse("BREW /pot HTTP/1.1\r\n\r\n").first), 501)
    }

    func testErrorIsStickyAndLaterBytesIgnored() {
        var parser = HTTPRequestParser()
        parser.append(Array("BAD\r\n\r\nGET / HTTP/1.1\r\n\r\n".utf8))
        XCTAssertEqual(errorStatus(parser.next()), 400)
        XCTAssertEqual(errorStatus(parser.next()), 400)
    }

    func testOversizeHeaderIs431EvenBeforeItEnds() {
        let big = "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 200)
        XCTAssertEqual(errorStatus(parse(big, maxHeader: 128).first), 431)
        XCTAssertEqual(errorStatus(parse(big + "\r\n\r\n", maxHeader: 128).first), 431)
        XCTAssertNotNil(request(parse(big + "\r\n\r\n", maxHeader: 1024).first))
    }

    func testOversizeBodyIs413BeforeTheBodyArrives() {
        // Only the header is fed: the decision must not wait for the body.
        XCTAssertEqual(errorStatus(parse("POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", maxBody: 1000).first), 413)
        XCTAssertTrue(parse("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n", maxBody: 1000).isEmpty) // waits for its body
    }

    func testChunkedBodiesAre411() {
        XCTAssertEqual(errorStatus(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").first), 411)
    }

    func testKeepAliveRules() throws {
        let results = parse("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nConnection: close\r\n\r\nGET /3 HTTP/1.0\r\n\r\nGET /4 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /5 HTTP/1.1\r\nConnection: foo, Close\r\n\r\n")
        let requests = results.compactMap { r -> HTTPRequest? in if case .request(let x) = r { return x }; return nil }
        XCTAssertEqual(requests.map(\.keepAlive), [true, false, false, true, false])
        XCTAssertEqual(requests.map(\.isHTTP11), [true, true, false, false, true])
    }

    func testLeadingEmptyLinesAndBareLineFeeds() throws {
        let results = parse("\r\n\r\nGET /a HTTP/1.1\nHost: h\n\n")
        let r = try XCTUnwrap(request(results.first))
        XCTAssertEqual(r.path, "/a")
        XCTAssertEqual(r.headers["Host"], "h")
    }

    func testHeadersLookupAndPercentDecoding() {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "a")
        headers.add("X-A", "1")
        headers.add("x-a", "2")
        XCTAssertEqual(headers["content-type"], "a")
        XCTAssertEqual(headers.values("X-a"), ["1", "2"])
        headers.set("X-A", "3")
        XCTAssertEqual(headers.values("x-a"), ["3"])
        XCTAssertNil(headers["X-B"])
        XCTAssertFalse(HTTPHeaders.same("a-b", "a_b"))
        XCTAssertEqual(PercentDecoding.decode(Array("%2e%2E%2f".utf8), plusIsSpace: false), "../")
        XCTAssertNil(PercentDecoding.decode(Array("%2".utf8), plusIsSpace: false))
        XCTAssertNil(PercentDecoding.decode(Array("%ff".utf8), plusIsSpace: false))
    }

    func testErrorResponseShapeAndEventEncoding() throws {
        let response = HTTPResponse.error(404, message: "no \"such\" thing")
        XCTAssertEqual(response.status, 404)
        XCTAssertEqual(response.headers["content-type"], "application/json; charset=utf-8")
        let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: [String: String]]
        XCTAssertEqual(object?["error"]?["code"], "not_found")
        XCTAssertEqual(object?["error"]?["message"], "no \"such\" thing")
        XCTAssertEqual(String(decoding: SSEEvent(id: 7, type: "alert", data: "{\"a\":1}").encoded, as: UTF8.self),
                       "id: 7\nevent: alert\ndata: {\"a\":1}\n\n")
        XCTAssertEqual(String(decoding: SSEEvent(id: 8, type: "x", data: "a\nb").encoded, as: UTF8.self),
                       "id: 8\nevent: x\ndata: a\ndata: b\n\n")
    }

    func testAbsoluteFormDuplicateAuthorizationAndExpect() throws {
        var parser = HTTPRequestParser()
        parser.append(Array("GET http://Example.COM:8080/a/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n".utf8))
        guard case .request(let request) = parser.next() else { return XCTFail("absolute form should parse") }
        XCTAssertEqual(request.path, "/a/b")
        XCTAssertEqual(request.query["x"], "1")
        XCTAssertEqual(request.headers["Host"], "Example.COM:8080", "the target's authority replaces Host")
        XCTAssertEqual(request.hostName, "example.com")
        var bare = HTTPRequestParser()
        bare.append(Array("GET http://h HTTP/1.1\r\n\r\n".utf8))
        guard case .request(let root) = bare.next() else { return XCTFail("authority only") }
        XCTAssertEqual(root.path, "/")
        for bad in ["GET ftp://h/ HTTP/1.1\r\n\r\n", "GET http://user@h/ HTTP/1.1\r\n\r\n", "GET http:///x HTTP/1.1\r\n\r\n",
                    "GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n\r\n",
                    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"] {
            var p = HTTPRequestParser()
            p.append(Array(bad.utf8))
            guard case .error(let error) = p.next() else { XCTFail(bad); continue }
            XCTAssertEqual(error.status, 400, bad)
        }
        var expect = HTTPRequestParser()
        expect.append(Array("POST / HTTP/1.1\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\n".utf8))
        guard case .error(let unmet) = expect.next() else { return XCTFail("unknown expectation") }
        XCTAssertEqual(unmet.status, 417)
        var waiting = HTTPRequestParser()
        waiting.append(Array("POST /p?q=2 HTTP/1.1\r\nContent-Length: 10\r\n\r\nab".utf8))
        guard case .needMore = waiting.next() else { return XCTFail("body incomplete") }
        XCTAssertEqual(waiting.headAwaitingBody?.bodyLength, 10)
        XCTAssertEqual(waiting.headAwaitingBody?.request.path, "/p")
    }
}
