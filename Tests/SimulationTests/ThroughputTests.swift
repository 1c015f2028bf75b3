import Foundation
import PlantModel
import Runtime
import XCTest
import TestSupport
@testable import Simulation

/// A generated shift reads back whole. A 30-minute shift by default, `MES_SIM_HOURS=8` a full one;
/// the generation and reading speed are measured by `tools/bench`, not here.
final class ThroughputTests: XCTestCase {
    func testGenerateAndReadAShift() throws {
        let hours = Double(ProcessInfo.processInfo.environment["MES_SIM_HOURS"] ?? "") ?? 0.5
        let folder = TempFolder()
        let path = folder.file("shift.jsonl")
        var reports: [GenerationProgress] = []
        let summary = try generateRecording(config: try defaultPlant(), duration: hours * 3600, to: path,
                                            progressIntervalS: 0.5) { reports.append($0) }
        // The last report is the end of the run, whatever the wall clock did meanwhile.
        XCTAssertEqual(reports.last?.simulatedS, hours * 3600)
        XCTAssertEqual(reports.last?.samples, summary.samples)
        XCTAssertEqual(summary.simulatedS, hours * 3600)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        XCTAssertEqual(UInt64(size), summary.bytes)
        let reader = try RecordingReader(path: path)
        while try reader.next() != nil {}
        XCTAssertEqual(reader.samplesRead, summary.samples)
    }
}
