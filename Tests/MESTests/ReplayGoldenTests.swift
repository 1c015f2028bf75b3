import Foundation
import XCTest
import API
@testable import MESApp
import Runtime
import TestSupport

/// The same recording gives the same events: the committed 3-minute recording replayed through
/// the whole server yields exactly the committed event stream (types and payloads; replay payloads
/// hold recording times only). `MES_UPDATE_GOLDEN=1` rewrites the golden file.
final class ReplayGoldenTests: XCTestCase {
    static let recording = repoRoot.appendingPathComponent("Stations/scenarios/golden/normal-shift-3min.jsonl").path
    static let golden = repoRoot.appendingPathComponent("Tests/MESTests/golden/normal-shift-3min.events.jsonl").path

    /// Replays the recording into a fresh database: a SQLite file, or (`postgres`) a new database on
    /// the test PostgreSQL server.
    func replayEvents(postgres: Bool = false) async throws -> String {
        let dir = makeTempDirectory(self)
        var options = ServerOptions()
        options.config = repoRoot.appendingPathComponent("Stations/plant.json").path
        options.database = postgres ? try PostgresFixture.shared().newDatabase(for: self) : dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = Self.recording
        options.speed = .max
        options.exitAfterReplay = true
        let server = try MESServer(options: options, logger: Logger(label: "golden", level: .error))
        try await server.run(installSignalHandlers: false)
        // Read the committed log back (the server has closed it; reopen read-only through a new server).
        options.replay = "/dev/null"
        options.exitAfterReplay = false
        let reader = try MESServer(options: options, logger: Logger(label: "golden", level: .error))
        let events = try reader.eventLog.events(after: 0, types: nil, limit: 1_000_000)
        reader.eventLog.close()
        return events.map { "\($0.type) \($0.data)" }.joined(separator: "\n") + "\n"
    }

    func testSameRecordingGivesTheSameEvents() async throws {
        let first = try await replayEvents()
        XCTAssertGreaterThan(first.split(separator: "\n").count, 100)
        XCTAssertTrue(first.contains("\noperation "), "operations are part of the stream")
        let types = Set(first.split(separator: "\n").compactMap { $0.split(separator: " ", maxSplits: 1).first.map(String.init) })
        XCTAssertEqual(types.subtracting(APIRoutes.eventTypes), [], "event types missing from /api/meta's eventTypes")
        if ProcessInfo.processInfo.environment["MES_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: (Self.golden as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try first.write(toFile: Self.golden, atomically: true, encoding: .utf8)
        }
        let second = try await replayEvents()
        XCTAssertEqual(first, second, "two replays of one file give identical event streams")
        let golden = try String(contentsOfFile: Self.golden, encoding: .utf8)
        if first != golden {
            let a = first.split(separator: "\n", omittingEmptySubsequences: false), b = golden.split(separator: "\n", omittingEmptySubsequences: false)
            let index = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
            XCTFail("differs from \(Self.golden) at event \(index + 1):\n got      \(index < a.count ? a[index] : "<end>")\n expected \(index < b.count ? b[index] : "<end>")")
        }
    }

    /// The same recording through the server on PostgreSQL gives the same events as the golden file.
    func testPostgreSQLGivesTheSameEvents() async throws {
        let events = try await replayEvents(postgres: true)
        let golden = try String(contentsOfFile: Self.golden, encoding: .utf8)
        if events != golden {
            let a = events.split(separator: "\n", omittingEmptySubsequences: false), b = golden.split(separator: "\n", omittingEmptySubsequences: false)
            let index = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
            XCTFail("PostgreSQL differs from \(Self.golden) at event \(index + 1) of \(a.count):\n got      \(index < a.count ? a[index] : "<end>")\n expected \(index < b.count ? b[index] : "<end>")")
        }
    }
}
