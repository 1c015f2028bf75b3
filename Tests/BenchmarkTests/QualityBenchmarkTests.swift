import ComponentBenchmarks
import Foundation
import Quality
import XCTest

final class QualityBenchmarkTests: XCTestCase {
    /// A small run that checks the benchmark exercises the rules (the figures are measured in release by `mes-bench`).
    func testBenchmarkRunsEveryRule() {
        let inputs = QualityBenchmark.inputs(count: 150_000)
        var engine = QualityEngine(config: QualityBenchmark.plant(), rules: QualityRules())
        var types = Set<String>()
        var alertTypes = Set<String>()
        for input in inputs {
            for output in engine.process(input) {
                if case .downtime = output { types.insert("downtime") } else { types.insert(output.eventType ?? "audit") }
                if case .alert(let alert, _) = output { alertTypes.insert(alert.type.rawValue) }
            }
        }
        // Faults in the inputs also close downtime stretches (stored, not events).
        XCTAssertEqual(types, ["defect", "alert", "kpi", "anomaly", "downtime"])
        XCTAssertTrue(alertTypes.isSuperset(of: ["kpi", "sequence", "connection", "anomaly"]), "\(alertTypes)")
        let result = QualityBenchmark.run(inputs: 20_000)
        XCTAssertEqual(result.inputs, 20_000)
    }
}
