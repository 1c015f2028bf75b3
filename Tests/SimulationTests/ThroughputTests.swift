import Foundation
import PlantModel
import Runtime
import XCTest
@testable import Simulation

/// Generation and reading speed. A 30-minute shift by default; `MES_SIM_HOURS=8` measures a full
/// shift (the figures in the report come from a release build with that setting).
final class ThroughputTests: XCTestCase {
    func testGenerateAndReadAShift() throws {
        let hours = Double(ProcessInfo.processInfo.environment["MES_SIM_HOURS"] ?? "") ?? 0.5
        let folder = try TempFolder()
        let path = folder.path("shift.jsonl")
        var reports = 0
        let summary = try generateRecording(config: try defaultPlant(), duration: hours * 3600, to: path,
                                            progressIntervalS: 0.5) { _ in reports += 1 }
        XCTAssertGreaterThan(reports, 0)
        print("generate \(hours) h: \(summary)")
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        XCTAssertEqual(UInt64(size), summary.bytes)
        var polls = 0
        let began = Monotonic.nanoseconds()
        let reader = try RecordingReader(path: path)
        while try reader.next() != nil { polls += 1 }
        let seconds = Double(Monotonic.nanoseconds() - began) / 1e9
        print("read \(hours) h: \(reader.samplesRead) samples, \(polls) polls, \(size) bytes in \(String(format: "%.3f", seconds)) s = \(Int(Double(reader.samplesRead) / seconds)) samples/s")
        XCTAssertEqual(reader.samplesRead, summary.samples)
        // Even a debug build must simulate much faster than real time.
        XCTAssertLessThan(summary.wallS, hours * 3600 / 50)
    }
}
