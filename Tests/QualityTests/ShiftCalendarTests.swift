import Foundation
import XCTest
import PlantModel
@testable import Quality
import Runtime

/// Breaks are planned stops (left out of planned time) and each shift's KPIs are taken at its end
/// (README "Shift calendar and shift history"), against hand-computed figures.
final class ShiftCalendarTests: XCTestCase {
    /// The test plant with a break 10:00–10:20 in shift A (06:00–14:00 UTC).
    func plantWithBreak() throws -> PlantConfig {
        var config = try testPlant()
        config.shifts[0].breaks = [ShiftBreak(startMinute: 600, endMinute: 620)]
        return config
    }

    static let h = 3600.0

    func testBreakIsLeftOutOfPlannedTime() throws {
        var engine = try QualityEngine(config: plantWithBreak())
        var plain = try QualityEngine(config: testPlant())
        let inputs: [QualityInput] = [
            .poll(poll("WELD-01", 0, state: 1)),              // running from 06:00
            .poll(poll("WELD-02", 0, state: 1)),              // running from 06:00, through the break
            .poll(poll("WELD-01", 3 * Self.h, state: 0)),     // idle 09:00–10:30 (the break 10:00–10:20 inside)
            .poll(poll("WELD-01", 4.5 * Self.h, state: 1)),   // running from 10:30
            .tick(at(5 * Self.h)),                            // 11:00
        ]
        for input in inputs {
            _ = engine.process(input)
            _ = plain.process(input)
        }
        // WELD-01 at 11:00: elapsed 18,000 s, of it 1,200 s break. Run 3 h + 30 min = 12,600 s.
        //   planned = 18,000 − 1,200 = 16,800 s → availability 12,600 / 16,800 = 0.75
        //   (without the break: 12,600 / 18,000 = 0.7).
        let w1 = try XCTUnwrap(engine.stationKPI("WELD-01"))
        XCTAssertEqual(w1.runTimeS, 12_600)
        XCTAssertEqual(w1.plannedTimeS, 16_800)
        XCTAssertEqual(w1.availability, 0.75)
        XCTAssertEqual(plain.stationKPI("WELD-01")?.availability, 0.7)
        // WELD-02 ran through the break: that time is production, planned time keeps it.
        //   run 18,000 s; planned = 18,000 − 1,200 + 1,200 = 18,000 s → availability 1.
        let w2 = try XCTUnwrap(engine.stationKPI("WELD-02"))
        XCTAssertEqual(w2.runTimeS, 18_000)
        XCTAssertEqual(w2.plannedTimeS, 18_000)
        XCTAssertEqual(w2.availability, 1)
        // The line from summed times: INSP-01 never reported (planned 16,800 s, run 0).
        //   (12,600 + 18,000 + 0) / (16,800 + 18,000 + 16,800) = 30,600 / 51,600 = 0.593023
        XCTAssertEqual(engine.lineKPI().availability, 0.593023)
        XCTAssertEqual(engine.kpis().shift?.breaks, [BreakWindow(start: at(4 * Self.h), end: at(4 * Self.h + 1200))])
    }

    func testStateOpenInsideTheBreakCountsOnlyOutsideIt() throws {
        var engine = try QualityEngine(config: plantWithBreak())
        _ = engine.process(.poll(poll("WELD-01", 0, state: 1)))          // running from 06:00
        _ = engine.process(.poll(poll("WELD-01", 3 * Self.h, state: 0)))  // idle from 09:00, no poll since
        _ = engine.process(.tick(at(4 * Self.h + 600)))                   // 10:10, ten minutes into the break
        // Pending idle 09:00–10:10 = 4,200 s, of it 600 s in the break: 3,600 s idle counted.
        //   elapsed 15,000 s, break so far 600 s → planned 14,400 s; run 10,800 s → 0.75.
        let w = try XCTUnwrap(engine.stationKPI("WELD-01"))
        XCTAssertEqual(w.plannedTimeS, 14_400)
        XCTAssertEqual(w.availability, 0.75)
    }

    func testFaultInsideTheBreakIsNotUnplannedDowntime() throws {
        var engine = try QualityEngine(config: plantWithBreak())
        _ = engine.process(.poll(poll("WELD-01", 0, state: 1)))                        // running from 06:00
        _ = engine.process(.poll(poll("WELD-01", 3 * Self.h + 50 * 60, state: 2, fault: 5))) // fault 5 from 09:50
        _ = engine.process(.poll(poll("WELD-01", 4 * Self.h + 10 * 60, state: 1)))     // running from 10:10
        _ = engine.process(.tick(at(5 * Self.h)))                                      // 11:00
        // Fault 09:50–10:10: 600 s before the break count; 10:00–10:10 is the break.
        // Run 06:00–09:50 (13,800 s) and 10:10–11:00 (3,000 s, 600 s of it in the break) = 16,800 s.
        //   planned = 18,000 − 1,200 + 600 (run in the break) = 17,400 s → 16,800 / 17,400 = 0.965517
        let w = try XCTUnwrap(engine.stationKPI("WELD-01"))
        XCTAssertEqual(w.downtimeByFault.map(\.code), ["5"])
        XCTAssertEqual(w.downtimeByFault.map(\.seconds), [600])
        XCTAssertEqual(w.mttrS, 600)
        XCTAssertEqual(w.runTimeS, 16_800)
        XCTAssertEqual(w.plannedTimeS, 17_400)
        XCTAssertEqual(w.availability, 0.965517)
    }

    func testShiftKPIsAreTakenAtTheShiftsEnd() throws {
        var engine = try QualityEngine(config: plantWithBreak())
        _ = engine.process(.poll(poll("WELD-01", 0, state: 1)))
        _ = engine.process(.poll(poll("WELD-01", 3 * Self.h, state: 0)))
        _ = engine.process(.poll(poll("WELD-01", 4.5 * Self.h, state: 1)))
        _ = engine.process(.operation(op("w1", vehicle: "V1", start: 5 * Self.h, end: 5 * Self.h + 60)))
        XCTAssertFalse(engine.hasEndedShifts)
        _ = engine.process(.tick(at(8 * Self.h + 30)))  // 14:00:30, in shift B
        XCTAssertTrue(engine.hasEndedShifts)
        let ended = engine.takeEndedShifts()
        XCTAssertTrue(engine.takeEndedShifts().isEmpty, "taken once")
        XCTAssertEqual(ended.count, 1)
        let a = try XCTUnwrap(ended.first)
        XCTAssertEqual(a.shift?.name, "A")
        XCTAssertEqual(a.shift?.date, "2026-11-21")
        XCTAssertEqual(a.countedFrom, at(0))
        XCTAssertFalse(a.fromSavedCounters)
        // WELD-01 up to 14:00 exactly (not 14:00:30): run 3 h + 3.5 h = 23,400 s;
        //   planned = 28,800 − 1,200 = 27,600 s → 0.847826; one part in 8 h → 0.125 per hour.
        let w = try XCTUnwrap(a.stations.first { $0.id == "WELD-01" })
        XCTAssertEqual(w.runTimeS, 23_400)
        XCTAssertEqual(w.plannedTimeS, 27_600)
        XCTAssertEqual(w.availability, 0.847826)
        XCTAssertEqual(w.totalCount, 1)
        XCTAssertEqual(w.throughputPerHour, 0.125)
        // Shift B starts from zero: WELD-01 has run 30 s in it.
        XCTAssertEqual(engine.shift?.name, "B")
        XCTAssertEqual(engine.stationKPI("WELD-01")?.runTimeS, 30)
        XCTAssertEqual(engine.stationKPI("WELD-01")?.totalCount, 0)
        XCTAssertEqual(engine.previousShiftKPIs?.stations.first?.runTimeS, 23_400)
    }

    func testOffShiftWindowsAreNotStored() throws {
        var engine = try QualityEngine(config: plantWithBreak()) // A 06–14, B 14–22: off-shift 22–06
        _ = engine.process(.poll(poll("WELD-01", 15 * Self.h, state: 1)))   // 21:00, shift B
        _ = engine.process(.tick(at(17 * Self.h)))                          // 23:00, off-shift
        _ = engine.process(.tick(at(24 * Self.h + 60)))                     // 06:01 next day, shift A
        XCTAssertEqual(engine.takeEndedShifts().map { $0.shift?.name }, ["B"])
    }

    func testCountersOfAShiftThatEndedWhileStoppedBecomeItsRecord() throws {
        var engine = try QualityEngine(config: plantWithBreak())
        _ = engine.process(.poll(poll("WELD-01", 0, state: 1)))
        _ = engine.process(.poll(poll("WELD-01", 2 * Self.h, state: 1)))  // 08:00: 7,200 s run counted
        let saved = try XCTUnwrap(engine.shiftCounters)

        var restarted = try QualityEngine(config: plantWithBreak())
        restarted.resume(saved)
        _ = restarted.process(.tick(at(8.5 * Self.h)))                    // 14:30: back in shift B
        let ended = restarted.takeEndedShifts()
        XCTAssertEqual(ended.count, 1)
        let a = try XCTUnwrap(ended.first)
        XCTAssertEqual(a.shift?.name, "A")
        XCTAssertTrue(a.fromSavedCounters)
        // Up to the shift's end; the stop's time has no state: run 7,200 of planned 27,600 s = 0.26087.
        let w = try XCTUnwrap(a.stations.first { $0.id == "WELD-01" })
        XCTAssertEqual(w.runTimeS, 7_200)
        XCTAssertEqual(w.plannedTimeS, 27_600)
        XCTAssertEqual(w.availability, 0.26087)
        XCTAssertEqual(a.shift?.breaks.count, 1)
        XCTAssertEqual(restarted.shift?.name, "B")

        // Counters of the same shift are taken back instead (no record).
        var sameShift = try QualityEngine(config: plantWithBreak())
        sameShift.resume(saved)
        _ = sameShift.process(.tick(at(3 * Self.h)))
        XCTAssertFalse(sameShift.hasEndedShifts)
    }

    func testSavedCountersKeepTheRunTimeInBreaks() throws {
        var engine = try QualityEngine(config: plantWithBreak())
        _ = engine.process(.poll(poll("WELD-02", 0, state: 1)))
        _ = engine.process(.poll(poll("WELD-02", 5 * Self.h, state: 1)))  // ran through the break
        let saved = try ShiftCounters.decode(try XCTUnwrap(engine.shiftCounters).encoded())
        XCTAssertEqual(saved.stations.first { $0.id == "WELD-02" }?.breakRunSeconds, 1200)
        var restarted = try QualityEngine(config: plantWithBreak())
        restarted.resume(saved)
        _ = restarted.process(.tick(at(5 * Self.h)))
        XCTAssertEqual(restarted.stationKPI("WELD-02")?.availability, 1)
        // Counters saved before breaks existed (no breakRunSeconds) still decode.
        let old = #"{"id":"W","seconds":{},"downtimeByFault":{},"faults":0,"totalCount":0,"goodCount":0,"firstAttempts":0,"firstAttemptsGood":0,"cycleTimes":"","cycleTimeSum":0,"cycleTimeCount":0}"#
        XCTAssertEqual(try JSONDecoder().decode(SavedStationCounters.self, from: Data(old.utf8)).breakRunSeconds, 0)
    }
}
