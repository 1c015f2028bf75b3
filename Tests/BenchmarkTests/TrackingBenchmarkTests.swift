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

final class RecallBenchmarkTests: XCTestCase {
    /// The recall benchmark's store and queries on a small store: every query finds what was put in.
    func testRecallQueriesFindTheirVehicles() throws {
        let result = try RecallBenchmark.run(path: makeTempDirectory(self).appendingPathComponent("recall.sqlite").path,
                                             vehicles: 4_000, operationsPerVehicle: 10, repeats: 1)
        let matched = Dictionary(uniqueKeysWithValues: result.queries.map { ($0.name, $0.matched) })
        XCTAssertEqual(matched["partNumber"], 200, "one engine part number of 20 in turn")
        XCTAssertEqual(matched["serial"], 1)
        XCTAssertEqual(matched["lot"], 4_000, "one panel lot per 5,000 vehicles")
        XCTAssertEqual(matched["station+1 h"], 60, "a vehicle a minute, one WELD-01 operation each")
        XCTAssertEqual(matched["partNumber+model"], 200, "every ENG-07 vehicle is an E30-EV (20 part numbers and 4 models in turn)")
        XCTAssertEqual(matched["lot+station+1 h"], 60)
        XCTAssertEqual(result.operations, 40_000)
    }
}
