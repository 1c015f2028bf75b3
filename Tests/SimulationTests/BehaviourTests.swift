import Foundation
import PlantModel
import Runtime
import XCTest
@testable import Simulation
import TestSupport

/// Each shipped scenario does what its description promises.
final class BehaviourTests: XCTestCase {
    func number(_ o: Observation, _ name: String) -> Double { o.values[name]?.number ?? .nan }

    func testWeldDriftCrossesTheHighLimitOnWeld01AtThreeHours() throws {
        let (cycles, _) = try runCycles(try defaultPlant(), try shippedScenario("weld-drift"), hours: 4)
        let weld1 = cycles.filter { $0.station == "WELD-01" }
        XCTAssertGreaterThan(weld1.count, 80)
        let h = 3_600_000.0
        // Far from the stated time, no value is above the limit.
        XCTAssertTrue(weld1.filter { Double($0.t) < 2.25 * h }.allSatisfy { number($0, "weldCurrent") <= 12.0 })
        // The rolling mean of 5 operations crosses 12.0 kA at 3 h ± 15 min.
        var crossing: Int64?
        for i in 4..<weld1.count {
            let mean = weld1[(i - 4)...i].map { number($0, "weldCurrent") }.reduce(0, +) / 5
            if mean > 12.0 { crossing = weld1[i].t; break }
        }
        let at = try XCTUnwrap(crossing, "weldCurrent never crossed 12.0 kA")
        XCTAssertEqual(Double(at) / h, 3.0, accuracy: 0.25, "crossed at \(Double(at) / h) h")
        // After 3 h 30 min nearly every operation is above the limit, and those end NOK.
        let late = weld1.filter { Double($0.t) > 3.5 * h }
        XCTAssertGreaterThan(late.count, 10)
        XCTAssertGreaterThanOrEqual(late.filter { number($0, "weldCurrent") > 12.0 }.count * 100 / late.count, 95)
        for o in late where number(o, "weldCurrent") > 12.0 { XCTAssertEqual(o.values["result"], .int(2)) }
        // WELD-02 stays within its spec.
        XCTAssertTrue(cycles.filter { $0.station == "WELD-02" }.allSatisfy { number($0, "weldCurrent") <= 12.0 })
    }

    func testPaintExcursionPutsFilmThicknessOutOfSpecDuringItsWindow() throws {
        let (cycles, _) = try runCycles(try defaultPlant(), try shippedScenario("paint-excursion"), hours: 3)
        let paint = cycles.filter { $0.station == "PAINT-01" }
        let start: Int64 = 7_200_000, end: Int64 = 9_000_000
        let inside = paint.filter { $0.t >= start + 200 && $0.t < end }
        let outside = paint.filter { $0.t < start || $0.t >= end + 200 }
        XCTAssertGreaterThanOrEqual(inside.count, 20)
        XCTAssertGreaterThan(outside.count, 100)
        let out = inside.filter { number($0, "filmThickness") > 130 }
        XCTAssertGreaterThanOrEqual(out.count * 100 / inside.count, 80)
        for o in out { XCTAssertEqual(o.values["result"], .int(2), "out-of-spec paint must be NOK") }
        for o in outside { XCTAssertTrue((90...130).contains(number(o, "filmThickness")), "\(o.t): \(number(o, "filmThickness"))") }
    }

    func testDowntimeHeavyHasFaultsWithCodesAndItsInjectedEvents() throws {
        let config = try defaultPlant()
        let scenario = try shippedScenario("downtime-heavy")
        var faultCodes: [String: Set<Int64>] = [:]
        var stateAt: [String: [Int64: Int64]] = [:]
        var offline: [String: [Int64]] = [:]
        var inconsistent = 0
        let probes: [Int64] = [50 * 60_000, 61 * 60_000, 125 * 60_000, 185 * 60_000, 242 * 60_000, 310 * 60_000]
        _ = try runCycles(config, scenario, hours: 5.5) { sim, s in
            let station = config.stations[s]
            let values = sim.values(at: s)
            let state = values[station.signals.firstIndex { $0.role == .state }!].integer!
            let code = values[station.signals.firstIndex { $0.role == .faultCode }!].integer!
            if code != 0 { faultCodes[station.id, default: []].insert(code) }
            if (state == 2) != (code != 0) { inconsistent += 1 }
            if probes.contains(sim.elapsedMs) { stateAt[station.id, default: [:]][sim.elapsedMs] = state }
            if !sim.isOnline(s) { offline[station.id, default: []].append(sim.elapsedMs) }
        }
        XCTAssertEqual(inconsistent, 0, "state fault ⇔ fault code ≠ 0")
        // The utilities station UTIL-01 (off the route) has the default codes 901–905.
        let random = Set([101, 102, 103, 201, 202, 203, 204, 301, 302, 303, 401, 402, 403, 501, 502, 901, 902, 903, 904, 905].map(Int64.init))
        let stationsWithRandomFaults = faultCodes.filter { !$0.value.intersection(random).isEmpty }
        XCTAssertGreaterThanOrEqual(stationsWithRandomFaults.count, 4, "\(faultCodes)")
        for (station, codes) in faultCodes {
            XCTAssertTrue(codes.isSubset(of: random.union([217, 305])), "\(station): \(codes)")
        }
        XCTAssertTrue(faultCodes["WELD-02"]?.contains(217) ?? false)
        XCTAssertTrue(faultCodes["PAINT-01"]?.contains(305) ?? false)
        XCTAssertEqual(stateAt["WELD-02"]?[50 * 60_000], 2)
        XCTAssertEqual(stateAt["PAINT-01"]?[125 * 60_000], 2)
        XCTAssertEqual(stateAt["ASSY-02"]?[185 * 60_000], 4, "starved")
        XCTAssertEqual(stateAt["INSP-01"]?[242 * 60_000], 3, "blocked")
        XCTAssertEqual(stateAt["PRESS-01"]?[310 * 60_000], 6, "maintenance")
        let window = try XCTUnwrap(offline["ASSY-01"])
        XCTAssertEqual(window.first, 3_600_000)
        XCTAssertEqual(window.last, 3_720_000 - 100)
        XCTAssertEqual(Set(offline.keys), ["ASSY-01"])
    }

    func testOfflineStationHasNoLinesInTheRecording() throws {
        let folder = TempFolder()
        let path = folder.file("d.jsonl")
        try generateRecording(config: try defaultPlant(), scenario: try shippedScenario("downtime-heavy"), duration: 3900, to: path)
        let start = Scenario.defaultStart
        var assyTimes: [Double] = []
        let again = try RecordingReader(path: path)
        while let poll = try again.next() {
            if poll.station == "ASSY-01" { assyTimes.append(poll.time.timeIntervalSince(start)) }
        }
        XCTAssertTrue(assyTimes.allSatisfy { $0 < 3600 || $0 >= 3720 })
        // Back online: a full poll at once.
        XCTAssertTrue(assyTimes.contains(3720))
    }

    func testNormalShiftVehiclesPassEveryProcessInOrderAtTheTakt() throws {
        let config = try defaultPlant()
        let folder = TempFolder()
        let path = folder.file("n.jsonl")
        let summary = try generateRecording(config: config, scenario: .normalShift, duration: 7200, to: path)
        let process = Dictionary(uniqueKeysWithValues: config.stations.map { ($0.id, $0.process) })
        var visits: [String: [String]] = [:]
        var current: [String: String] = [:]
        var completions: [Int64] = []
        var pulseStart: [String: Date] = [:]
        var shortestPulse = Double.infinity
        var pressLots = Set<String>(), weldLots = Set<String>()
        var pressStates = Set<Int64>()
        let reader = try RecordingReader(path: path)
        while let poll = try reader.next() {
            let values = Dictionary(poll.readings.map { ($0.name, $0.value!) }, uniquingKeysWith: { $1 })
            if case .string(let vin)? = values["vehicleId"], !vin.isEmpty, current[poll.station] != vin {
                visits[vin, default: []].append(process[poll.station]!)
            }
            current[poll.station] = values["vehicleId"]?.text
            if case .bool(let on)? = values["cycleDone"] {
                if on, pulseStart[poll.station] == nil { pulseStart[poll.station] = poll.time }
                if !on, let began = pulseStart.removeValue(forKey: poll.station) {
                    shortestPulse = min(shortestPulse, poll.time.timeIntervalSince(began))
                    if poll.station == "INSP-01" { completions.append(Int64(poll.time.timeIntervalSince(Scenario.defaultStart))) }
                }
            }
            if poll.station == "PRESS-01" {
                pressLots.insert(values["panelLot"]!.text)
                pressStates.insert(values["state"]!.integer!)
            }
            if poll.station.hasPrefix("WELD"), let lot = values["panelLot"]?.text { weldLots.insert(lot) }
        }
        let route = ["welding", "paint", "assembly", "inspection"]
        let finished = visits.filter { $0.value.last == "inspection" }
        XCTAssertGreaterThan(finished.count, 90)
        for (vin, steps) in finished {
            XCTAssertEqual(steps, route, vin)
            XCTAssertTrue(VIN.isValid(vin))
        }
        for (vin, steps) in visits {
            let indices = steps.map { route.firstIndex(of: $0)! }
            XCTAssertEqual(indices, indices.sorted(), "\(vin) went \(steps)")
        }
        // About the takt (54 vehicles/h) in the second hour, when the line is full.
        let secondHour = completions.filter { $0 >= 3600 && $0 < 7200 }.count
        XCTAssertTrue((46...58).contains(secondHour), "\(secondHour) vehicles completed in hour 2")
        XCTAssertGreaterThanOrEqual(shortestPulse, 0.2, "cycleDone must stay true for at least 2 polls")
        // Press lots: a die change (setup) after 250 strokes, and weld stations consume press lots.
        XCTAssertTrue(pressStates.contains(5), "\(pressStates)")
        XCTAssertGreaterThanOrEqual(pressLots.count, 3)
        XCTAssertTrue(weldLots.isSubset(of: pressLots.union(["SP261123-000"])), "\(weldLots) vs \(pressLots)")
        XCTAssertGreaterThanOrEqual(weldLots.count, 2)
        XCTAssertEqual(summary.stats.vehiclesCompleted, finished.count, accuracy: 2)
    }

    func testSequenceErrorsScenarioSkipsDuplicatesAndSpikes() throws {
        let (cycles, _) = try runCycles(try defaultPlant(), try shippedScenario("sequence-errors"), hours: 1.2)
        var steps: [String: [String]] = [:]
        for o in cycles { steps[o.vehicle, default: []].append(o.station) }
        let skipped = steps.filter { $0.value.contains { $0.hasPrefix("ASSY") } && !$0.value.contains("PAINT-01") }
        XCTAssertEqual(skipped.count, 1, "one vehicle skips paint: \(skipped)")
        let duplicated = steps.filter { $0.value.filter { $0.hasPrefix("WELD") }.count == 2 }
        XCTAssertEqual(duplicated.count, 1, "one VIN is welded twice")
        let spikes = cycles.filter { $0.station == "WELD-02" && $0.values["weldCurrent"]?.number == 13.5 }
        XCTAssertEqual(spikes.count, 1)
        XCTAssertGreaterThanOrEqual(spikes.first?.t ?? 0, 2_400_000)
    }

    /// Another plant: different ids, signal names and state codes; roles drive everything.
    func testAnyConfigWorksThroughSignalRoles() throws {
        let config = PlantConfig(plant: "Other", route: ["press", "mill"], stations: [
            StationConfig(id: "M1", name: "Mill", process: "mill", protocol: .opcua,
                          endpoint: .opcua(url: "opc.tcp://127.0.0.1:1", host: "127.0.0.1", port: 1),
                          pollIntervalMs: 250, idealCycleTimeS: 20, signals: [
                SignalConfig(name: "body", role: .vehicleId, type: .string),
                SignalConfig(name: "done", role: .cycleComplete, type: .uint32),
                SignalConfig(name: "mode", role: .state, type: .uint16, states: [7: "running", 8: "idle", 9: "fault", 10: "starved"]),
                SignalConfig(name: "depth", role: .measurement, type: .int16, scale: 0.01, limits: SpecLimits(low: 1, high: 2)),
                SignalConfig(name: "verdict", role: .result, type: .uint16, okValues: [0]),
            ]),
        ])
        let (cycles, sim) = try runCycles(config, Scenario(mtbfS: 0), hours: 0.5)
        XCTAssertEqual(sim.tickMs, 50)
        XCTAssertGreaterThan(cycles.count, 60)
        var states = Set<Int64>()
        for o in cycles {
            XCTAssertEqual(o.values["mode"], .int(7))
            let depth = try XCTUnwrap(o.values["depth"]?.number)
            XCTAssertEqual(depth, (depth * 100).rounded() / 100, accuracy: 1e-9)
            XCTAssertTrue((1...2).contains(depth))
            XCTAssertTrue([0, 2].contains(o.values["verdict"]?.integer ?? -1))
            XCTAssertTrue(VIN.isValid(o.vehicle))
        }
        sim.advance(toElapsedMs: sim.elapsedMs + 100_000)
        states.insert(sim.values(of: "M1")["mode"]!.integer!)
        XCTAssertTrue(states.isSubset(of: [7, 8, 10]))
    }
}
