import Foundation
import ComponentBenchmarks
import TestSupport
import XCTest

/// Prints the group-commit figures. Runs only with STORAGE_BENCH=1 (a measurement, not a timed test);
/// otherwise it checks on a small count that the benchmark itself works.
final class EventLogBenchmarkTests: XCTestCase {
    func testEventLogBenchmark() throws {
        let folder = makeTempDirectory(self)
        func file(_ name: String) -> String { folder.appendingPathComponent(name).path }
        let full = ProcessInfo.processInfo.environment["STORAGE_BENCH"] == "1"
        let count = full ? 200_000 : 2_000
        let plainCount = full ? 5_000 : 200
        for sync in ["NORMAL", "FULL"] {
            let group = try EventLogBenchmark.run(path: file("bench.sqlite"), count: count, synchronous: sync)
            let plain = try EventLogBenchmark.plainInsertLoop(path: file("plain.sqlite"), count: plainCount, synchronous: sync)
            XCTAssertEqual(group.events, count)
            XCTAssertLessThan(group.transactions, count, "group commit: fewer transactions than events")
            XCTAssertEqual(plain.events, plainCount)
            XCTAssertEqual(plain.transactions, plainCount, "the plain loop commits each insert")
            let paced = try EventLogBenchmark.paced(path: file("paced.sqlite"), ratePerSecond: 20_000, seconds: full ? 3 : 0.1, synchronous: sync)
            XCTAssertEqual(paced.events, Int(20_000 * (full ? 3 : 0.1)), "rate × seconds")
            if full {
                print("synchronous=\(sync) paced 20000/s: \(paced)")
                print("synchronous=\(sync) group commit: \(group)")
                print("synchronous=\(sync) plain insert loop: \(plain)")
            }
        }
    }
}
