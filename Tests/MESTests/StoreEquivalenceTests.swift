import Foundation
import XCTest
import Runtime
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Every API answer is the same on both stores: the golden recording replayed by the real
/// `mes-server` into SQLite and into PostgreSQL, then the lists read back from each and compared.
final class StoreEquivalenceTests: XCTestCase {
    static let recording = repoRoot.appendingPathComponent("Stations/scenarios/golden/normal-shift-3min.jsonl").path

    /// The read routes compared (lists and reports built from the stored rows).
    static let paths = [
        "/api/vehicles?limit=1000", "/api/defects?limit=1000", "/api/alerts?limit=1000", "/api/operations?limit=1000",
        "/api/operations?limit=1000&result=nok", "/api/orders?limit=1000", "/api/sequence", "/api/audit?limit=1000",
        "/api/defects/pareto", "/api/downtime?limit=1000", "/api/andon?limit=1000", "/api/shifts", "/api/kpis",
        "/api/vehicles?limit=1000&format=csv", "/api/operations?limit=1000&format=csv", "/api/notifications?limit=1000",
        "/api/equipment", "/api/reports/equipment", "/api/reports/shift", "/api/shifts/notes", "/api/plan?date=2026-11-21",
        "/api/anomalies", "/api/downtime/reasons",
    ]

    /// Replays the recording into `database` on a real server and returns each path's status and body.
    func answers(database: String) throws -> [String: String] {
        let port = try freePort()
        let server = try PeerProcess(executable: productPath("mes-server"), arguments: [
            "--config", repoRoot.appendingPathComponent("Stations/plant.json").path, "--listen", "127.0.0.1:\(port)",
            "--log-level", "warning", "--db", database, "--replay", Self.recording, "--speed", "max",
        ])
        defer { server.kill() }
        let http = TestHTTP(port: port)
        let finished = eventually(timeout: 120) {
            (try? http.get("/api/health").json?["replay"]?["finished"]?.boolValue) == true
        }
        XCTAssertTrue(finished, "the replay did not finish: \(server.text.suffix(2000))")
        var result: [String: String] = [:]
        for path in Self.paths {
            let response = try http.get(path)
            result[path] = "\(response.status) \(response.body)"
        }
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
        return result
    }

    func testListsAreTheSameOnSQLiteAndPostgreSQL() throws {
        let dir = makeTempDirectory(self)
        let sqlite = try answers(database: dir.appendingPathComponent("mes.sqlite").path)
        let postgres = try answers(database: try PostgresFixture.shared().newDatabase(for: self))
        XCTAssertTrue(sqlite["/api/vehicles?limit=1000"]?.hasPrefix("200 ") == true, sqlite["/api/vehicles?limit=1000"] ?? "")
        XCTAssertGreaterThan(sqlite["/api/operations?limit=1000"]?.count ?? 0, 1000, "the replay stored operations")
        for path in Self.paths {
            let a = sqlite[path] ?? "", b = postgres[path] ?? ""
            if a != b {
                let index = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
                let from = max(0, index - 80)
                XCTFail("\(path) differs at character \(index):\n sqlite   …\(a.dropFirst(from).prefix(200))\n postgres …\(b.dropFirst(from).prefix(200))")
            }
        }
    }
}
