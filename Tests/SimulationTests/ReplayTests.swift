import Foundation
import PlantModel
import Runtime
import XCTest
@testable import Simulation
import TestSupport

final class ReplayTests: XCTestCase {
    func testSpeedParsing() {
        XCTAssertEqual(ReplaySpeed.parse("max"), .max)
        XCTAssertEqual(ReplaySpeed.parse("10"), .factor(10))
        XCTAssertEqual(ReplaySpeed.parse("2.5x"), .factor(2.5))
        XCTAssertNil(ReplaySpeed.parse("0"))
        XCTAssertNil(ReplaySpeed.parse("-1"))
        XCTAssertNil(ReplaySpeed.parse("fast"))
        XCTAssertEqual(ReplaySpeed.factor(10).description, "10x")
    }

    func testPacerKeepsTheSpeedAndReanchorsWhenFarBehind() {
        let t0 = Date(timeIntervalSince1970: 1000)
        var pacer = ReplayPacer(speed: .factor(10), maxLagS: 5)
        XCTAssertEqual(pacer.delay(for: t0, nowNanos: 1_000_000_000), 0)
        XCTAssertEqual(pacer.delay(for: t0.addingTimeInterval(10), nowNanos: 1_000_000_000), 1_000_000_000)
        XCTAssertEqual(pacer.delay(for: t0.addingTimeInterval(10), nowNanos: 1_600_000_000), 400_000_000)
        XCTAssertEqual(pacer.delay(for: t0.addingTimeInterval(5), nowNanos: 1_600_000_000), 0)
        // 20 s late: re-anchor, then pace from there.
        XCTAssertEqual(pacer.delay(for: t0.addingTimeInterval(20), nowNanos: 24_000_000_000), 0)
        XCTAssertEqual(pacer.delay(for: t0.addingTimeInterval(30), nowNanos: 24_000_000_000), 1_000_000_000)
        var max = ReplayPacer(speed: .max)
        XCTAssertEqual(max.delay(for: t0, nowNanos: 0), 0)
        XCTAssertEqual(max.delay(for: t0.addingTimeInterval(3600), nowNanos: 0), 0)
    }

    func testReplayDeliversEveryPollWithProgress() throws {
        let folder = TempFolder()
        let path = folder.file("r.jsonl")
        try generateRecording(config: try defaultPlant(), duration: 300, to: path)
        var expected = 0
        let reader = try RecordingReader(path: path)
        while try reader.next() != nil { expected += 1 }
        var delivered: [StationPoll] = []
        var reports: [ReplayProgress] = []
        let result = try replayRecording(path: path, speed: .max, progressIntervalS: 0, progress: { reports.append($0) }) {
            delivered.append($0)
        }
        XCTAssertEqual(delivered.count, expected)
        XCTAssertEqual(result.polls, UInt64(expected))
        XCTAssertTrue(result.finished)
        XCTAssertEqual(result.fraction, 1)
        XCTAssertEqual(reports.last, result)
        XCTAssertGreaterThan(reports.count, 1)
        XCTAssertTrue(result.description.hasPrefix("replay 100.0% "), result.description)
        XCTAssertEqual(delivered.first?.time, Scenario.defaultStart)
        XCTAssertEqual(zip(delivered, delivered.dropFirst()).filter { $0.time > $1.time }.count, 0, "time order")
    }

    func testReplayAtTwiceRealTimeTakesHalfTheRecordingsSpan() throws {
        let folder = TempFolder()
        let path = folder.file("r.jsonl")
        let writer = try RecordingWriter(path: path)
        let t0 = Date(timeIntervalSince1970: 1_795_384_800)
        for i in 0...10 {
            try writer.write(time: t0.addingTimeInterval(Double(i) * 0.1), station: "A", signal: "x", value: .int(Int64(i)))
        }
        try writer.close()
        let began = Monotonic.nanoseconds()
        var count = 0
        try replayRecording(path: path, speed: .factor(2)) { _ in count += 1 }
        let seconds = Double(Monotonic.nanoseconds() - began) / 1e9
        XCTAssertEqual(count, 11)
        XCTAssertGreaterThanOrEqual(seconds, 0.48)
        XCTAssertLessThan(seconds, 1.5)
        // Cancellation stops a slow replay early.
        let cancelAt = Monotonic.nanoseconds() + 150_000_000
        var delivered = 0
        let result = try replayRecording(path: path, speed: .factor(0.1), isCancelled: { Monotonic.nanoseconds() > cancelAt }) { _ in delivered += 1 }
        XCTAssertLessThan(delivered, 3)
        XCTAssertLessThan(result.polls, 3)
    }
}
