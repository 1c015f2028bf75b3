import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import TestSupport

/// `GET /api/me` and `GET /api/people`, which the "my items" page and the assign dialogs use.
final class MyItemsAPITests: XCTestCase {
    func startServer(config: JSON) async throws -> (MESServer, Task<Void, any Error>) {
        let dir = makeTempDirectory(self)
        let path = dir.appendingPathComponent("plant.json").path
        try config.serialized().write(toFile: path, atomically: true, encoding: .utf8)
        let running = try InProcessServer(config: path, database: dir.appendingPathComponent("mes.sqlite").path)
        return (running.server, running.task)
    }

    func testWhoAmINeedsATokenAndThePeopleShowNoChannels() async throws {
        let (server, task) = try await startServer(config: notifyConfig(receiverPort: 9))
        let http = TestHTTP(port: server.port)
        let me = try http.get("/api/me", headers: ["Authorization": "Bearer demo-quality-token"])
        XCTAssertEqual(me.status, 200, me.body)
        XCTAssertEqual(me.json, .obj([("user", .string("li.wei")), ("role", .string("quality")), ("name", .string("Li Wei")),
                                      ("person", .bool(true)), ("ownership", .bool(true))]))
        let viewer = try http.get("/api/me", headers: ["Authorization": "Bearer demo-viewer-token"])
        XCTAssertEqual(viewer.json?["user"]?.stringValue, "screen.line1")
        XCTAssertEqual(viewer.json?["role"]?.stringValue, "viewer")
        XCTAssertEqual(viewer.json?["name"], .null, "not in people")
        XCTAssertEqual(viewer.json?["person"]?.boolValue, false)
        // Reads are anonymous in this config, but "who am I" has no anonymous answer.
        XCTAssertEqual(try http.get("/api/stations").status, 200)
        let anonymous = try http.get("/api/me")
        XCTAssertEqual(anonymous.status, 401)
        XCTAssertEqual(anonymous.json?["error"]?["code"]?.stringValue, "unauthorized")
        XCTAssertEqual(try http.get("/api/me", headers: ["Authorization": "Bearer wrong"]).status, 401)

        let people = try http.get("/api/people", headers: ["Authorization": "Bearer demo-operator-token"])
        XCTAssertEqual(people.status, 200, people.body)
        XCTAssertEqual(people.json, .array([.obj([("user", .string("li.wei")), ("name", .string("Li Wei"))]),
                                            .obj([("user", .string("zhang.min")), ("name", .string("张敏"))])]))
        XCTAssertFalse(people.body.contains("http://"), "channels never leave the server")
        XCTAssertEqual(try http.get("/api/people").status, 200, "a read like the owners on alerts (anonymousRead)")
        server.shutdown()
        try await task.value
    }

    func testWithoutPeopleTheUserIsNamedAndOwnsNothing() async throws {
        var text = try String(contentsOf: repoRoot.appendingPathComponent("Stations/plant.json"), encoding: .utf8)
        text = text.replacingOccurrences(of: "\"tokensFile\": \"tokens.json\"",
                                         with: "\"tokensFile\": \"\(repoRoot.appendingPathComponent("Stations/tokens.json").path)\"")
        let (server, task) = try await startServer(config: try JSON.parse(text))
        let http = TestHTTP(port: server.port)
        let me = try http.get("/api/me", headers: ["Authorization": "Bearer demo-engineer-token"])
        XCTAssertEqual(me.status, 200, me.body)
        XCTAssertEqual(me.json?["user"]?.stringValue, "zhang.min")
        XCTAssertEqual(me.json?["role"]?.stringValue, "engineer")
        XCTAssertEqual(me.json?["person"]?.boolValue, false)
        XCTAssertEqual(me.json?["ownership"]?.boolValue, false, "no responsibility rules: items carry no owner")
        XCTAssertEqual(try http.get("/api/people", headers: ["Authorization": "Bearer demo-engineer-token"]).json, .array([]))
        server.shutdown()
        try await task.value
    }
}
