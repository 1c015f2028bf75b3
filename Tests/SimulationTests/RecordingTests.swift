import Foundation
import PlantModel
import Runtime
import XCTest
@testable import Simulation
import TestSupport

final class RecordingTests: XCTestCase {
    func testSameScenarioAndSeedGiveTheSameBytes() throws {
        let config = try defaultPlant()
        let folder = TempFolder()
        let scenario = try shippedScenario("downtime-heavy")
        let a = try generateRecording(config: config, scenario: scenario, duration: 1200, to: folder.file("a.jsonl"))
        try generateRecording(config: config, scenario: scenario, duration: 1200, to: folder.file("b.jsonl"))
        try generateRecording(config: config, scenario: scenario, seed: 99, duration: 1200, to: folder.file("c.jsonl"))
        let bytesA = try Data(contentsOf: URL(fileURLWithPath: folder.file("a.jsonl")))
        XCTAssertEqual(UInt64(bytesA.count), a.bytes)
        XCTAssertEqual(bytesA, try Data(contentsOf: URL(fileURLWithPath: folder.file("b.jsonl"))))
        XCTAssertNotEqual(bytesA, try Data(contentsOf: URL(fileURLWithPath: folder.file("c.jsonl"))))
    }

    /// A short run of the default plant compared with a committed file. Regenerate it (after a
    /// deliberate behaviour change) with `MES_UPDATE_GOLDEN=1`.
    func testShortRunMatchesTheGoldenFile() throws {
        let golden = repoRoot.appendingPathComponent("Stations/scenarios/golden/normal-shift-3min.jsonl").path
        let folder = TempFolder()
        let path = ProcessInfo.processInfo.environment["MES_UPDATE_GOLDEN"] == "1" ? golden : folder.file("run.jsonl")
        try generateRecording(config: try defaultPlant(), scenario: .normalShift, duration: 180, to: path)
        let produced = try String(contentsOfFile: path, encoding: .utf8)
        let expected = try String(contentsOfFile: golden, encoding: .utf8)
        let a = produced.split(separator: "\n"), b = expected.split(separator: "\n")
        for (index, (x, y)) in zip(a, b).enumerated() where x != y {
            return XCTFail("line \(index + 1) differs:\n  got      \(x)\n  expected \(y)")
        }
        XCTAssertEqual(a.count, b.count)
        XCTAssertTrue(expected.hasPrefix(#"{"t":"2026-11-22T22:00:00.000Z","station":"PRESS-01","signal":"strokes","value":0}"#))
    }

    func testWriterAndReaderRoundTripEveryPoll() throws {
        let folder = TempFolder()
        let path = folder.file("polls.jsonl")
        let writer = try RecordingWriter(path: path, mode: .everyPoll)
        let t0 = Date(timeIntervalSince1970: 1_795_384_800)
        var polls: [StationPoll] = []
        for i in 0..<50 {
            let time = t0.addingTimeInterval(Double(i) * 0.1)
            polls.append(StationPoll(station: "WELD-01", time: time, readings: [
                SignalReading(name: "vehicleId", value: .string(i % 2 == 0 ? "" : "LSV\"quoted\\ \u{1}é"), quality: .good),
                SignalReading(name: "weldCurrent", value: .double(10.25 + Double(i) / 8), quality: .good),
                SignalReading(name: "state", value: .int(Int64(i % 5)), quality: .good),
                SignalReading(name: "cycleDone", value: .bool(i % 3 == 0), quality: .good),
                SignalReading(name: "bad", value: nil, quality: .bad, status: "illegal data address"),
            ]))
            polls.append(StationPoll(station: "PAINT-01", time: time, readings: [
                SignalReading(name: "filmThickness", value: .double(-1e-7 * Double(i)), quality: .good),
            ]))
        }
        for poll in polls { try writer.write(poll) }
        try writer.close()
        XCTAssertEqual(writer.samplesWritten, 250)
        let reader = try RecordingReader(path: path, carryForward: false)
        var read: [StationPoll] = []
        while let poll = try reader.next() { read.append(poll) }
        let expected = polls.map { poll in
            StationPoll(station: poll.station, time: poll.time, readings: poll.readings.filter { $0.quality == .good })
        }
        XCTAssertEqual(read.count, expected.count)
        for (a, b) in zip(read, expected) {
            XCTAssertEqual(a.station, b.station)
            XCTAssertEqual(a.time.timeIntervalSince1970, b.time.timeIntervalSince1970, accuracy: 0.0005)
            XCTAssertEqual(a.readings, b.readings)
        }
        XCTAssertEqual(reader.lineNumber, 250)
        XCTAssertEqual(reader.samplesRead, 250)
    }

    /// In changes mode, carrying values forward rebuilds exactly what the simulator had at every poll.
    func testChangesModeWithCarryForwardRebuildsTheSimulatedValues() throws {
        let config = try defaultPlant()
        let folder = TempFolder()
        let path = folder.file("changes.jsonl")
        let scenario = try shippedScenario("downtime-heavy")
        try generateRecording(config: config, scenario: scenario, duration: 900, to: path)
        let sim = try PlantSimulator(config: config, scenario: scenario)
        let reader = try RecordingReader(path: path)
        var compared = 0
        var fullPollsSeen = Set<String>()
        while let poll = try reader.next() {
            let elapsed = Int64((poll.time.timeIntervalSince(sim.start) * 1000).rounded())
            sim.advance(toElapsedMs: elapsed)
            XCTAssertEqual(sim.elapsedMs, elapsed)
            let s = config.stations.firstIndex { $0.id == poll.station }!
            let expected = sim.values(of: poll.station)
            if poll.readings.count == config.stations[s].signals.count { fullPollsSeen.insert(poll.station) }
            for reading in poll.readings {
                // JSON does not tell 8000 from 8000.0: numbers compare as numbers.
                let same = reading.value == expected[reading.name]
                    || (reading.value?.number != nil && reading.value?.number == expected[reading.name]?.number && reading.value?.text != "true")
                XCTAssertTrue(same, "\(poll.station).\(reading.name) at \(Timestamp.format(poll.time)): \(String(describing: reading.value)) vs \(String(describing: expected[reading.name]))")
                compared += 1
            }
        }
        XCTAssertEqual(fullPollsSeen.count, config.stations.count)
        XCTAssertGreaterThan(compared, 5_000)
    }

    func write(_ lines: [String]) throws -> (TempFolder, String) {
        let folder = TempFolder()
        let path = folder.file("r.jsonl")
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return (folder, path)
    }

    func readAll(_ path: String, carryForward: Bool = true) throws -> [StationPoll] {
        let reader = try RecordingReader(path: path, carryForward: carryForward)
        var polls: [StationPoll] = []
        while let poll = try reader.next() { polls.append(poll) }
        return polls
    }

    func testReaderErrorsNameTheLineAndTheReason() throws {
        let good = #"{"t":"2026-11-21T06:00:00.100Z","station":"WELD-01","signal":"state","value":1}"#
        let cases: [(String, String)] = [
            (#"{"t":"21/11/2026","station":"WELD-01","signal":"state","value":1}"#, #""t" is not an RFC 3339 time"#),
            (#"{"t":12,"station":"WELD-01","signal":"state","value":1}"#, #""t" is not an RFC 3339 time"#),
            (#"{"station":"WELD-01","signal":"state","value":1}"#, #""t" is missing"#),
            (#"{"t":"2026-11-21T06:00:01Z","signal":"state","value":1}"#, #""station" is missing"#),
            (#"{"t":"2026-11-21T06:00:01Z","station":"","signal":"state","value":1}"#, #""station" must be a non-empty string"#),
            (#"{"t":"2026-11-21T06:00:01Z","station":"WELD-01","value":1}"#, #""signal" is missing"#),
            (#"{"t":"2026-11-21T06:00:01Z","station":"WELD-01","signal":"state"}"#, #""value" is missing"#),
            (#"{"t":"2026-11-21T06:00:01Z","station":"WELD-01","signal":"state","value":null}"#, "not null"),
            (#"{"t":"2026-11-21T06:00:01Z","station":"WELD-01","signal":"state","value":[1]}"#, "not arrays or objects"),
            (#"{"t":"2026-11-21T06:00:01Z","station":"WELD-01","signal":"state","value":1"#, "is not valid JSON"),
            (#"{"t":"2026-11-21T06:00:01Z","station":"WELD-01","signal":"state","value":1} x"#, "unexpected text after the object"),
            (#"["t"]"#, "is not a JSON object"),
            (#"{"t":"2026-11-21T06:00:01Z","station":"WELD-01","signal":"state","value":1.2.3}"#, "bad number"),
        ]
        for (bad, reason) in cases {
            let (folder, path) = try write([good, "", good, bad, good])
            _ = folder
            let reader = try RecordingReader(path: path)
            var delivered = 0
            XCTAssertThrowsError(try { while try reader.next() != nil { delivered += 1 } }()) { error in
                guard let error = error as? RecordingError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.line, 4, bad)
                XCTAssertTrue(error.reason.contains(reason), "\(error) for \(bad)")
                XCTAssertTrue(error.description.hasPrefix("line 4: "), error.description)
            }
            XCTAssertEqual(delivered, 1, "the poll before the bad line is delivered: \(bad)")
            XCTAssertThrowsError(try reader.next(), "reading stays stopped")
        }
        XCTAssertEqual(RecordingError(file: "x", line: 12, reason: "\"t\" is not an RFC 3339 time").description,
                       "line 12: \"t\" is not an RFC 3339 time")
        XCTAssertThrowsError(try RecordingReader(path: "/nonexistent/rec.jsonl")) { error in
            XCTAssertTrue("\(error)".contains("cannot be opened"), "\(error)")
        }
    }

    func testReaderAcceptsTheContractsForms() throws {
        let (folder, path) = try write([
            #"{"t": "2026-11-21T06:00:00.100Z", "station": "WELD-01", "signal": "weldCurrent", "value": 10.21}"#,
            "{\"value\": \"LSV\\u00e9\\\"x\", \"signal\": \"vehicleId\", \"station\": \"WELD-01\", \"t\": \"2026-11-21T06:00:00.100Z\", \"quality\": \"good\"}\r",
            "   ",
            #"{"t":"2026-11-21T14:00:00.2+08:00","station":"WELD-01","signal":"cycleDone","value":true}"#,
            #"{"t":"2026-11-21T06:00:01Z","station":"PAINT-01","signal":"count","value":-12}"#,
            #"{"t":"2026-11-21T06:00:01Z","station":"PAINT-01","signal":"big","value":1.5e3}"#,
        ])
        _ = folder
        let polls = try readAll(path)
        XCTAssertEqual(polls.count, 3)
        XCTAssertEqual(polls[0].readings, [SignalReading(name: "weldCurrent", value: .double(10.21), quality: .good),
                                           SignalReading(name: "vehicleId", value: .string("LSVé\"x"), quality: .good)])
        XCTAssertEqual(polls[0].time, Timestamp.parse("2026-11-21T06:00:00.100Z"))
        // Carried forward: the second poll of WELD-01 still holds weldCurrent and vehicleId.
        XCTAssertEqual(polls[1].readings.map(\.name), ["weldCurrent", "vehicleId", "cycleDone"])
        XCTAssertEqual(polls[1].readings[2].value, .bool(true))
        XCTAssertEqual(polls[1].time.timeIntervalSince1970, Timestamp.parse("2026-11-21T06:00:00.200Z")!.timeIntervalSince1970, accuracy: 0.0001)
        XCTAssertEqual(polls[2].readings, [SignalReading(name: "count", value: .int(-12), quality: .good),
                                           SignalReading(name: "big", value: .double(1500), quality: .good)])
    }

    func testLinesOfOneStationWithTheSameTimeAreOnePoll() throws {
        let (folder, path) = try write([
            #"{"t":"2026-11-21T06:00:00.100Z","station":"A","signal":"x","value":1}"#,
            #"{"t":"2026-11-21T06:00:00.100Z","station":"B","signal":"x","value":2}"#,
            #"{"t":"2026-11-21T06:00:00.100Z","station":"A","signal":"y","value":3}"#,
            #"{"t":"2026-11-21T06:00:00.200Z","station":"A","signal":"x","value":4}"#,
            #"{"t":"2026-11-21T06:00:00.300Z","station":"B","signal":"y","value":5}"#,
        ])
        _ = folder
        let partial = try readAll(path, carryForward: false)
        XCTAssertEqual(partial.map(\.station), ["A", "B", "A", "B"])
        XCTAssertEqual(partial.map { $0.readings.map(\.name) }, [["x", "y"], ["x"], ["x"], ["y"]])
        let full = try readAll(path)
        XCTAssertEqual(full[2].readings.map(\.value), [.int(4), .int(3)])
        XCTAssertEqual(full[3].readings.map(\.value), [.int(2), .int(5)])
        let empty = try write([])
        XCTAssertEqual(try readAll(empty.1).count, 0)
    }

    /// Found by the replay fuzzer: one instant spelled two ways (`00Z`, `00.000Z`) is one poll, so a
    /// recording read and written again (in the canonical spelling) reads the same.
    func testTheSameInstantSpelledTwoWaysIsOnePoll() throws {
        let (folder, path) = try write([
            #"{"t":"2026-11-21T06:00:00.000Z","station":"A","signal":"x","value":1}"#,
            #"{"t":"2026-11-21T06:00:00Z","station":"B","signal":"x","value":2}"#,
            #"{"t":"2026-11-21T06:00:00.000Z","station":"A","signal":"y","value":3}"#,
            #"{"t":"2026-11-21T06:00:00.001Z","station":"A","signal":"z","value":4}"#,
        ])
        _ = folder
        let polls = try readAll(path, carryForward: false)
        XCTAssertEqual(polls.map(\.station), ["A", "B", "A"])
        XCTAssertEqual(polls.map { $0.readings.map(\.name) }, [["x", "y"], ["x"], ["z"]])
    }

    func residentKiB() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }

    /// A 60+ MB recording streams through the reader without its memory growing with the file.
    func testReaderStreamsALargeFileWithBoundedMemory() throws {
        let folder = TempFolder()
        let path = folder.file("large.jsonl")
        let writer = try RecordingWriter(path: path, mode: .everyPoll)
        let t0 = Date(timeIntervalSince1970: 1_795_384_800)
        let stations = ["PRESS-01", "WELD-01", "WELD-02", "PAINT-01", "ASSY-01", "ASSY-02", "INSP-01"]
        let lines = 700_000
        var written = 0
        var tick = 0
        while written < lines {
            let time = t0.addingTimeInterval(Double(tick) * 0.1)
            for station in stations {
                try writer.write(time: time, station: station, signal: "weldCurrent", value: .double(10 + Double(tick % 97) / 100))
                try writer.write(time: time, station: station, signal: "vehicleId", value: .string("LSVAB3C12TS\(100000 + tick)"))
                written += 2
            }
            tick += 1
        }
        try writer.close()
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        XCTAssertGreaterThan(size, 60_000_000)
        let before = residentKiB()
        var peak = before
        let reader = try RecordingReader(path: path)
        let began = Monotonic.nanoseconds()
        var polls = 0
        while let poll = try reader.next() {
            polls += 1
            XCTAssertEqual(poll.readings.count, 2)
            if polls % 100_000 == 0 { peak = max(peak, residentKiB()) }
        }
        let seconds = Double(Monotonic.nanoseconds() - began) / 1e9
        print("reader: \(reader.samplesRead) samples, \(size) bytes in \(String(format: "%.2f", seconds)) s = \(Int(Double(reader.samplesRead) / seconds)) samples/s (this build)")
        XCTAssertEqual(reader.samplesRead, UInt64(written))
        XCTAssertEqual(polls, written / 2)
        XCTAssertEqual(reader.bytesRead, UInt64(size))
        XCTAssertLessThan(peak - before, 32 * 1024, "resident memory grew by \(peak - before) KiB reading a \(size / 1_000_000) MB file")
    }
}
