import Foundation
import XCTest
@testable import Storage
import TestSupport

/// Prints the group-commit figures. Runs only with STORAGE_BENCH=1 (a measurement, not a timed test);
/// otherwise it checks on a small count that the benchmark itself works.
final class BenchmarkTests: XCTestCase {
    func testEventLogBenchmark() throws {
        let folder = TempFolder()
        defer { folder.remove() }
        let full = ProcessInfo.processInfo.environment["STORAGE_BENCH"] == "1"
        let count = full ? 200_000 : 2_000
        let plainCount = full ? 5_000 : 200
        for sync in ["NORMAL", "FULL"] {
            let group = try EventLogBenchmark.run(path: folder.file("bench.sqlite"), count: count, synchronous: sync)
            let plain = try EventLogBenchmark.plainInsertLoop(path: folder.file("plain.sqlite"), count: plainCount, synchronous: sync)
            XCTAssertEqual(group.events, count)
            XCTAssertLessThan(group.transactions, count, "group commit: fewer transactions than events")
            XCTAssertEqual(plain.events, plainCount)
            XCTAssertEqual(plain.transactions, plainCount, "the plain loop commits each insert")
            let paced = try EventLogBenchmark.paced(path: folder.file("paced.sqlite"), ratePerSecond: 20_000, seconds: full ? 3 : 0.1, synchronous: sync)
            XCTAssertEqual(paced.events, Int(20_000 * (full ? 3 : 0.1)), "rate × seconds")
            if full {
                print("synchronous=\(sync) paced 20000/s: \(paced)")
                print("synchronous=\(sync) group commit: \(group)")
                print("synchronous=\(sync) plain insert loop: \(plain)")
            }
        }
    }
}
