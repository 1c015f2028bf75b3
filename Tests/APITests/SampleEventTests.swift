import Foundation
@testable import Pipeline
import PlantModel
import Runtime
import XCTest

/// The `sample` event written straight to bytes is the text its JSON value serializes to.
final class SampleEventTests: XCTestCase {
    /// What the pipeline built before it wrote the bytes itself.
    private func viaJSON(_ poll: StationPoll) -> String {
        var values: [(String, JSON)] = []
        var bad: [JSON] = []
        for reading in poll.readings {
            if reading.quality == .good, let value = reading.value {
                values.append((reading.name, value.json))
            } else if reading.quality == .bad {
                bad.append(.string(reading.name))
            }
        }
        return JSON.object([
            ("station", .string(poll.station)),
            ("t", .string(Timestamp.format(poll.time))),
            ("values", .object(values)),
            ("bad", .array(bad)),
        ]).serialized()
    }

    func testSampleBytesMatchTheSerializedValue() {
        var rng = SeededRandom(seed: 42)
        let names = ["weldCurrent", "state", "vin", "q\"uote", "中文", "line\nbreak", "temp"]
        for round in 0..<3000 {
            var readings: [SignalReading] = []
            for index in 0..<rng.below(8) {
                let value: SignalValue?
                switch rng.below(6) {
                case 0: value = .bool(rng.chance(0.5))
                case 1: value = .int(Int64(rng.below(2_000_000)) - 1_000_000)
                case 2: value = .double(Double(rng.below(2_000_000)) / 100 - 10_000)
                case 3: value = .double(rng.uniform() * 1e6)
                case 4: value = .string(names[rng.below(names.count)])
                default: value = nil
                }
                let quality: SampleQuality = [.good, .good, .good, .bad, .stale][rng.below(5)]
                readings.append(SignalReading(name: names[index % names.count] + "\(index)", value: value, quality: quality))
            }
            let station = round % 7 == 0 ? "ST-\"\(round)\"" : "WELD-\(round % 50)"
            let poll = StationPoll(station: station, time: Date(timeIntervalSince1970: 1_790_000_000 + Double(round) * 0.1234), readings: readings)
            var bytes: [UInt8] = Array("old".utf8)
            bytes.removeAll(keepingCapacity: true)
            Pipeline.writeSample(poll, into: &bytes)
            XCTAssertEqual(String(decoding: bytes, as: UTF8.self), viaJSON(poll))
        }
        let empty = StationPoll(station: "A", time: Date(timeIntervalSince1970: 0), readings: [])
        var bytes: [UInt8] = []
        Pipeline.writeSample(empty, into: &bytes)
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self),
                       #"{"station":"A","t":"1970-01-01T00:00:00.000Z","values":{},"bad":[]}"#)
    }
}
