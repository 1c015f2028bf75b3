import ComponentBenchmarks
import Foundation
import TestSupport
import XCTest

final class TrackingBenchmarkTests: XCTestCase {
    /// The benchmark's synthetic line (its speed is measured by `tools/bench`): every vehicle completes
    /// one operation at each of the four vehicle stations, in route order.
    func testBenchmarkLineCompletesEveryOperation() {
        let vehicles = 2_000
        let result = TrackingBenchmark.run(vehicles: vehicles)
        let steps = (vehicles + 4) * 10                    // 10 polls per vehicle slot, 4 slots to drain the line
        XCTAssertEqual(result.polls, steps * 5)            // the press and four vehicle stations each step
        XCTAssertEqual(result.samples, steps * (4 + 4 * 8))
        XCTAssertEqual(result.operationsCompleted, vehicles * 4)
        XCTAssertEqual(result.sequenceIssues, 0)
    }
}

final class GenealogyBenchmarkTests: XCTestCase {
    func testQueryLatencyOnSmallStore() throws {
        let count = Int(ProcessInfo.processInfo.environment["MES_GENEALOGY_BENCH_OPS"] ?? "") ?? 50_000
        let result = try GenealogyBenchmark.run(path: makeTempDirectory(self).appendingPathComponent("bench.sqlite").path, operations: count,
                                                lotVehicles: min(5_000, count / 5), vehicleQueries: 1_000, lotQueries: 10)
        print(result)
        XCTAssertEqual(result.lotVehicles, min(5_000, count / 5))
        XCTAssertEqual(result.vehicleQueries, 1_000)
        // The query latencies are figures for `tools/bench` (release build), not limits for a debug test.
    }
}
