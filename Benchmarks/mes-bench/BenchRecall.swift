import ComponentBenchmarks
import Foundation

/// Recall queries of README "Key parts, recall and the quality gate" on a plant-sized store.
extension BenchSuite {
    /// `GET /api/recall`'s query (`PartStore.recall`) with 1,000,000 vehicles and 10,000,000
    /// operations stored (`short`: 20,000 vehicles); the target is the 200 ms for `partNumber`.
    func recall() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-recall-\(getpid()).sqlite").path
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let vehicles = Int(ProcessInfo.processInfo.environment["MES_BENCH_RECALL_VEHICLES"] ?? "") ?? (short ? 20_000 : 1_000_000)
        let result = try RecallBenchmark.run(path: path, vehicles: vehicles, repeats: short ? 3 : 20)
        print(result)
        for query in result.queries {
            Self.figure("GET /api/recall?\(query.name) (\(query.matched) of \(result.vehicles) vehicles, \(result.operations) operations), p99",
                        query.p99Ms, unit: "ms", target: 200, higherIsBetter: false,
                        reference: String(format: "p50 %.1f ms, page of at most 1000", query.p50Ms))
        }
    }
}
