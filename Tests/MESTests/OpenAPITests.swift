import Foundation
import XCTest
@testable import MESApp
import Runtime
import TestSupport

/// docs/openapi.json and the server's router describe the same routes: every routed (method, path)
/// is in the document and every operation of the document is routed; the server serves the file.
final class OpenAPITests: XCTestCase {
    static let document = repoRoot.appendingPathComponent("docs/openapi.json")

    func testDocumentAndRouterAgree() async throws {
        let dir = makeTempDirectory(self)
        let running = try InProcessServer(config: repoRoot.appendingPathComponent("Stations/plant.json").path,
                                          database: dir.appendingPathComponent("mes.sqlite").path)
        let server = running.server, task = running.task
        defer { server.shutdown() }

        let text = try String(contentsOf: Self.document, encoding: .utf8)
        let document = try JSON.parse(text)
        XCTAssertEqual(document["openapi"]?.stringValue?.hasPrefix("3.1"), true, "an OpenAPI 3.1 document")
        var documented = Set<String>()
        for (path, item) in document["paths"]?.objectValue ?? [] {
            for (method, _) in item.objectValue ?? [] where Self.methods.contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let routed = Set(server.routes.map { "\($0.method.rawValue) \($0.pattern)" })
        XCTAssertFalse(routed.isEmpty)
        XCTAssertEqual(routed.subtracting(documented).sorted(), [], "routed but missing from docs/openapi.json")
        XCTAssertEqual(documented.subtracting(routed).sorted(), [], "in docs/openapi.json but not routed")

        // Served as committed.
        let served = try TestHTTP(port: server.port).get("/api/openapi.json")
        XCTAssertEqual(served.status, 200)
        XCTAssertEqual(served.json, document)

        server.shutdown()
        try await task.value
    }

    static let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]
}
