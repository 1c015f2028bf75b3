import Foundation
import Runtime
import XCTest
@testable import Storage
import TestSupport

final class SampleDecisionTests: XCTestCase {
    let t = Date(timeIntervalSince1970: 1_000_000)

    func decide(_ value: SampleValue, _ quality: String = "good", after seconds: TimeInterval = 1,
                last: SampleValue?, lastQuality: String = "good", deadband: Double? = nil) -> Bool {
        SampleDecision.shouldStore(value: value, quality: quality, time: t.addingTimeInterval(seconds),
                                   last: last.map { LastStoredSample(value: $0, quality: lastQuality, time: t) },
                                   deadband: deadband, maxInterval: 60)
    }

    func testFirstValueIsStored() {
        XCTAssertTrue(decide(.number(1), last: nil))
    }

    func testNumericDeadband() {
        XCTAssertFalse(decide(.number(10.05), last: .number(10.0), deadband: 0.1))
        XCTAssertFalse(decide(.number(9.9), last: .number(10.0), deadband: 0.1 + 1e-9))
        XCTAssertTrue(decide(.number(10.2), last: .number(10.0), deadband: 0.1))
        XCTAssertTrue(decide(.number(9.8), last: .number(10.0), deadband: 0.1))
        XCTAssertTrue(decide(.integer(12), last: .number(10.0), deadband: 1))
        XCTAssertFalse(decide(.integer(11), last: .integer(10), deadband: 1), "exactly the deadband is not beyond it")
    }

    func testNoDeadbandStoresAnyChangeOnly() {
        XCTAssertFalse(decide(.number(10.0), last: .number(10.0)))
        XCTAssertTrue(decide(.number(10.000001), last: .number(10.0)))
        XCTAssertFalse(decide(.number(10.0), last: .number(10.0), deadband: 0))
    }

    func testNonNumericStoresOnChange() {
        XCTAssertFalse(decide(.text("VIN1"), last: .text("VIN1"), deadband: 5))
        XCTAssertTrue(decide(.text("VIN2"), last: .text("VIN1"), deadband: 5))
        XCTAssertTrue(decide(.bool(true), last: .bool(false)))
        XCTAssertFalse(decide(.bool(true), last: .bool(true)))
        XCTAssertTrue(decide(.text("1"), last: .integer(1)), "a type change is a change")
        XCTAssertTrue(decide(.null, last: .number(1)))
    }

    func testQualityChangeAndMaxIntervalForceAStore() {
        XCTAssertTrue(decide(.number(10), "bad", last: .number(10)))
        XCTAssertTrue(decide(.number(10), after: 60, last: .number(10), deadband: 1))
        XCTAssertFalse(decide(.number(10), after: 59.9, last: .number(10), deadband: 1))
        XCTAssertTrue(decide(.number(10), after: -1, last: .number(10)), "time going backwards")
    }

    func testNaN() {
        XCTAssertFalse(decide(.number(.nan), last: .number(.nan), deadband: 1))
        XCTAssertTrue(decide(.number(.nan), last: .number(1), deadband: 1))
        XCTAssertTrue(decide(.number(1), last: .number(.nan), deadband: 1))
    }

    func testJSONRoundTrip() {
        let values: [SampleValue] = [.number(10.21), .number(2), .number(-1.5e-7), .integer(-42), .bool(true), .bool(false),
                                     .text("WVW \"1\"\n\u{1}é"), .null]
        for value in values {
            XCTAssertEqual(SampleValue(json: value.json), value, value.json)
            XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(value.json.utf8), options: .fragmentsAllowed), value.json)
        }
        XCTAssertEqual(SampleValue.number(.infinity).json, "null")
        XCTAssertNil(SampleValue(json: "{"))
    }
}

final class SampleStoreTests: XCTestCase {
    var folder: TempFolder!

    override func setUp() { folder = TempFolder() }
    override func tearDown() { folder.remove() }

    let t0 = Timestamp.parse("2026-11-21T06:00:00.000Z")!

    func testStoresOnChangeAndQueriesNewestFirst() throws {
        try onBothStores { folder in
            let log = try openLog(folder)
            defer { log.close() }
            let store = SampleStore(log: log, maxInterval: 60)
            store.setDeadband(station: "WELD-01", signal: "weldCurrent", 0.5)
            let currents: [Double] = [10.0, 10.2, 10.6, 10.7, 11.1, 11.1, 9.0]
            var stored: [Bool] = []
            for (i, value) in currents.enumerated() {
                stored.append(store.record(station: "WELD-01", signal: "weldCurrent", value: .number(value), quality: "good",
                                           time: t0.addingTimeInterval(Double(i) * 0.1)))
            }
            XCTAssertEqual(stored, [true, false, true, false, false, false, true])
            store.record(station: "WELD-01", signal: "weldCurrent", value: .number(9.0), quality: "bad", time: t0.addingTimeInterval(1))
            store.record(station: "WELD-01", signal: "vehicleId", value: .text("VIN1"), quality: "good", time: t0)
            try log.flush()

            let all = try store.history(station: "WELD-01", signal: "weldCurrent")
            XCTAssertEqual(all.map(\.value), [.number(9.0), .number(9.0), .number(10.6), .number(10.0)])
            XCTAssertEqual(all.map(\.quality), ["bad", "good", "good", "good"])
            XCTAssertEqual(Timestamp.format(all[0].time), "2026-11-21T06:00:01.000Z")
            XCTAssertEqual(all[2].json, "10.6")
            XCTAssertEqual(try store.history(station: "WELD-01", signal: "weldCurrent", limit: 2).map(\.timeMs),
                           all.prefix(2).map(\.timeMs))
            let window = try store.history(station: "WELD-01", signal: "weldCurrent",
                                           from: t0.addingTimeInterval(0.2), to: t0.addingTimeInterval(0.6))
            XCTAssertEqual(window.map(\.value), [.number(9.0), .number(10.6)])
            XCTAssertEqual(try store.history(station: "WELD-01", signal: "vehicleId").map(\.value), [.text("VIN1")])
            XCTAssertEqual(try store.history(station: "PAINT-01", signal: "weldCurrent"), [])
        }
    }

    /// Polls of two stations in one call, their signals in a changing order (one twice), deadbands
    /// set before and after a signal's first sample: each signal follows its own last stored
    /// sample, as the model (one key per station and signal) says.
    func testEverySignalOfEveryStationFollowsItsOwnLastSample() throws {
        let log = try openLog(folder)
        defer { log.close() }
        let store = SampleStore(log: log, defaultDeadband: 0.25, maxInterval: 5)
        store.setDeadband(station: "A", signal: "x", 1.0)
        var model: [String: LastStoredSample] = [:]
        var deadbands: [String: Double] = ["A/x": 1.0]
        var stored: [String: Int] = [:]
        var state: UInt64 = 7
        func draw() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33)
        }
        for step in 0..<300 {
            let t = t0.addingTimeInterval(Double(step) * 0.1)
            if step == 100 { store.setDeadband(station: "B", signal: "y", 2.0); deadbands["B/y"] = 2.0 }
            if step == 150 { store.setDeadband(station: "A", signal: "x", nil); deadbands["A/x"] = nil }
            if step == 200 { store.setDeadband(station: "B", signal: "new", 0.5); deadbands["B/new"] = 0.5 }
            var batch: [SampleInput] = []
            for station in ["A", "B", "A"] {
                var signals = step % 3 == 0 ? ["x", "y", "z"] : ["z", "x", "y", "x"]
                if step >= 250 { signals.append("new") }
                for signal in signals {
                    let r = draw()
                    let value: SampleValue = signal == "z" ? .text(r % 4 == 0 ? "on" : "off") : .number(Double(r % 16) / 4)
                    batch.append(SampleInput(station: station, signal: signal, value: value, quality: r % 31 == 0 ? "bad" : "good", time: t))
                }
            }
            var expected = 0
            for sample in batch {
                let key = sample.station + "/" + sample.signal
                if SampleDecision.shouldStore(value: sample.value, quality: sample.quality, time: sample.time, last: model[key],
                                              deadband: deadbands[key] ?? 0.25, maxInterval: 5) {
                    model[key] = LastStoredSample(value: sample.value, quality: sample.quality, time: sample.time)
                    stored[key, default: 0] += 1
                    expected += 1
                }
            }
            XCTAssertEqual(store.record(batch), expected, "step \(step)")
        }
        try log.flush()
        XCTAssertEqual(stored.count, 8)
        for (key, count) in stored {
            let parts = key.split(separator: "/").map(String.init)
            let history = try store.history(station: parts[0], signal: parts[1], limit: 10_000)
            XCTAssertEqual(history.count, count, key)
            XCTAssertEqual(history.first?.value, model[key]?.value, key)
        }
    }

    func testSamplesArePrunedWithTheLog() throws {
        try onBothStores { folder in
            let clock = ManualClock(t0)
            let log = try openLog(folder, clock: clock)
            defer { log.close() }
            let store = SampleStore(log: log)
            store.record(station: "S", signal: "x", value: .integer(1), quality: "good", time: t0.addingTimeInterval(-8 * 86_400))
            store.record(station: "S", signal: "x", value: .integer(2), quality: "good", time: t0.addingTimeInterval(-86_400))
            try log.flush()
            try log.pruneNow()
            XCTAssertEqual(try store.history(station: "S", signal: "x").map(\.value), [.integer(2)])
        }
    }
}
