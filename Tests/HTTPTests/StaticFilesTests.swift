import Foundation
import XCTest
import TestSupport
@testable import HTTP

final class StaticFilesTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = makeTempDirectory(self, prefix: "http-static")
        let root = folder.appendingPathComponent("Dashboards")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("css"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try "<h1>line</h1>".write(to: root.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try "sub index".write(to: root.appendingPathComponent("sub/index.html"), atomically: true, encoding: .utf8)
        try "body{}".write(to: root.appendingPathComponent("css/app.css"), atomically: true, encoding: .utf8)
        try "x=1".write(to: root.appendingPathComponent("app.js"), atomically: true, encoding: .utf8)
        try "{}".write(to: root.appendingPathComponent("plant.json"), atomically: true, encoding: .utf8)
        try "<svg/>".write(to: root.appendingPathComponent("logo.svg"), atomically: true, encoding: .utf8)
        try Data([0x89, 0x50, 0x4e, 0x47]).write(to: root.appendingPathComponent("logo.png"))
        try Data([0, 0, 1, 0]).write(to: root.appendingPathComponent("favicon.ico"))
        try Data([0x77, 0x4f, 0x46, 0x32]).write(to: root.appendingPathComponent("font.woff2"))
        try "notes".write(to: root.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        try "TOP-SECRET-CONTENT".write(to: folder.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("escape.txt").path,
                                                   withDestinationPath: folder.appendingPathComponent("secret.txt").path)
    }

    private func start() throws -> RunningServer {
        var router = Router(fallback: try StaticFiles(root: folder.appendingPathComponent("Dashboards").path))
        router.get("/api/health") { _ in .json("{}") }
        return try RunningServer(router)
    }

    func testServesFilesWithTypesAndIndex() throws {
        let running = try start()
        defer { running.stop() }
        let client = try TestClient(port: running.port)
        let expected: [(String, String, String?)] = [
            ("/", "text/html; charset=utf-8", "<h1>line</h1>"),
            ("/index.html", "text/html; charset=utf-8", "<h1>line</h1>"),
            ("/sub/", "text/html; charset=utf-8", "sub index"),
            ("/sub", "text/html; charset=utf-8", "sub index"),
            ("/css/app.css", "text/css; charset=utf-8", "body{}"),
            ("/app.js", "text/javascript; charset=utf-8", "x=1"),
            ("/plant.json", "application/json; charset=utf-8", "{}"),
            ("/logo.svg", "image/svg+xml", "<svg/>"),
            ("/logo.png", "image/png", nil),
            ("/favicon.ico", "image/x-icon", nil),
            ("/font.woff2", "font/woff2", nil),
            ("/notes.txt", "text/plain; charset=utf-8", "notes"),
        ]
        for (path, type, body) in expected {
            try client.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try client.readResponse()
            XCTAssertEqual(response.status, 200, path)
            XCTAssertEqual(response.headers["Content-Type"], type, path)
            XCTAssertNotNil(response.headers["Cache-Control"], path)
            if let body { XCTAssertEqual(response.text, body, path) }
        }
        try client.send("GET /logo.png HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.readResponse().body, [0x89, 0x50, 0x4e, 0x47])
        try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.readResponse().headers["Cache-Control"], "no-cache")
        try client.send("HEAD /css/app.css HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = try client.readResponse(head: true)
        XCTAssertEqual(head.headers["Content-Length"], "6")
        try client.send("GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.readResponse().text, "{}")
    }

    func testMissingAndEscapingPathsAreNotServed() throws {
        let running = try start()
        defer { running.stop() }
        let attempts = [
            "/missing.html", "/../secret.txt", "/css/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
            "/css/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/escape.txt", "/./index.html", "/..\\secret.txt",
        ]
        for path in attempts {
            let client = try TestClient(port: running.port)
            try client.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try client.readResponse()
            XCTAssertTrue(response.status == 404 || response.status == 400, "\(path): \(response.status)")
            XCTAssertNotNil(response.errorCode, path)
            XCTAssertFalse(response.text.contains("TOP-SECRET"), path)
        }
        // A NUL, encoded, never reaches the file system.
        let client = try TestClient(port: running.port)
        try client.send("GET /index.html%00.png HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.readResponse().status, 400)
        // Writes to a static path are not routed there.
        let poster = try TestClient(port: running.port)
        try poster.send("POST /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(try poster.readResponse().status, 404)
    }

    func testDirectStaticFilesChecks() throws {
        let files = try StaticFiles(root: folder.appendingPathComponent("Dashboards").path)
        XCTAssertThrowsError(try files.respond(to: HTTPRequest(method: .get, path: "/../secret.txt"))) { error in
            XCTAssertEqual((error as? HTTPError)?.status, 404)
        }
        XCTAssertThrowsError(try files.respond(to: HTTPRequest(method: .get, path: "/a\0b")))
        XCTAssertThrowsError(try StaticFiles(root: folder.appendingPathComponent("nope").path))
        XCTAssertEqual(StaticFiles.contentType(forPath: "/x/Y.WOFF2"), "font/woff2")
        XCTAssertEqual(StaticFiles.contentType(forPath: "/x/noext"), "application/octet-stream")
    }
}
