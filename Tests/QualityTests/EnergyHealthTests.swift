import Foundation
import PlantModel
@testable import Quality
import Runtime
import Tracking
import XCTest

/// Energy meters (resets, wraps), Cp/Cpk, equipment health against the unit's baseline and its
/// group, and the learned state across a restart (README "Energy and equipment health").
final class EnergyHealthTests: XCTestCase {
    /// Three conveyor drives in one group at utilities stations; `alerts` the config's block.
    func drivePlant(alerts: String = #"{"maintenance": {"windowS": 60, "baselineWindows": 30}}"#) throws -> PlantConfig {
        func station(_ id: String, port: Int) -> String {
            """
            {"id": "\(id)", "process": "utilities", "protocol": "modbus", "endpoint": "modbus://127.0.0.1:\(port)?unit=1",
             "signals": [
               {"name": "state", "role": "state", "address": "hr:31", "type": "uint16"},
               {"name": "drive", "role": "condition", "group": "conveyor", "address": "hr:60", "type": "float32", "unit": "A",
                "limits": {"high": 25}}
             ]}
            """
        }
        let text = """
        {"plant": "Drives", "timezone": "UTC", "route": ["body"], "alerts": \(alerts),
         "stations": [\(station("D-01", port: 15101)), \(station("D-02", port: 15102)), \(station("D-03", port: 15103))]}
        """
        return try PlantConfig.decode(json: JSON.parse(text), file: "drives.json", directory: URL(fileURLWithPath: "/tmp"))
    }

    /// A deterministic noise in −1…1.
    struct Noise {
        var state: UInt64
        mutating func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) * 2 - 1
        }
    }

    /// The drives' value at `t` seconds: 15 A ± 0.2; D-02 rises from 1 h and reaches 25 A at 7 h.
    func drive(_ id: String, _ t: Double, _ noise: inout Noise) -> Double {
        var value = 15 + 0.2 * noise.next()
        if id == "D-02", t > 3600 { value += 10 * min(1, (t - 3600) / 21_600) }
        return value
    }

    func feed(_ engine: inout QualityEngine, from start: Double, to end: Double, step: Double = 10,
              noise: inout Noise, onAlert: (Alert, AlertChange, Double) -> Void = { _, _, _ in }) {
        var t = start
        while t <= end {
            for id in ["D-01", "D-02", "D-03"] {
                let poll = StationPoll(station: id, time: at(t), readings: [
                    SignalReading(name: "state", value: .int(1), quality: .good),
                    SignalReading(name: "drive", value: .double(drive(id, t, &noise)), quality: .good),
                ])
                for (alert, change) in engine.process(.poll(poll)).alerts { onAlert(alert, change, t) }
            }
            t += step
        }
    }

    func testDegradingUnitIsFlaggedBeforeItsLimitAndItsHealthyPeersAreNot() throws {
        var engine = try QualityEngine(config: drivePlant())
        var noise = Noise(state: 7)
        var raised: [(Alert, Double)] = []
        var lowestPeerHealth = 1.0
        var t = 0.0
        while t < 7 * 3600 {
            feed(&engine, from: t, to: t + 590, noise: &noise) { alert, change, at in
                if change == .raised { raised.append((alert, at)) }
            }
            for unit in engine.equipment() where unit.station != "D-02" { lowestPeerHealth = min(lowestPeerHealth, unit.health) }
            t += 600
        }
        XCTAssertEqual(raised.map(\.0.station), ["D-02"], "only the degrading unit gets a maintenance alert")
        let (alert, when) = try XCTUnwrap(raised.first)
        XCTAssertEqual(alert.type, .maintenance)
        XCTAssertNil(alert.vehicleId)
        // Raised when half the margin (15 → 25 A) is used: 20 A at 4 h, three hours before the limit.
        XCTAssertGreaterThan(when, 3.5 * 3600)
        XCTAssertLessThan(when, 4.5 * 3600, "hours before the limit is reached at 7 h")
        XCTAssertGreaterThanOrEqual(lowestPeerHealth, 0.5, "healthy peers never fall below the maintenance level")

        let list = engine.equipment()
        XCTAssertEqual(list.first?.station, "D-02", "worst first")
        let worn = try XCTUnwrap(list.first)
        XCTAssertLessThan(worn.health, 0.1)
        XCTAssertEqual(worn.group, "conveyor")
        XCTAssertEqual(worn.peers?.n, 2)
        XCTAssertEqual(try XCTUnwrap(worn.baselineMean), 15, accuracy: 0.05)
        XCTAssertEqual(try XCTUnwrap(worn.trend), 10.0 / 6, accuracy: 0.2, "A per hour")
        XCTAssertEqual(try XCTUnwrap(worn.hoursToLimit), 0.1, accuracy: 0.3)
        for healthy in list.dropFirst() {
            XCTAssertGreaterThanOrEqual(healthy.health, 0.5)
            XCTAssertEqual(healthy.peers?.n, 2)
        }
    }

    func testHealthAndBaselinesSurviveARestart() throws {
        let config = try drivePlant()
        var engine = try QualityEngine(config: config)
        var noise = Noise(state: 11)
        feed(&engine, from: 0, to: 2 * 3600, noise: &noise)
        let before = engine.equipment()
        XCTAssertTrue(before.allSatisfy { $0.baselineMean != nil && $0.baselineN == 30 }, "baselines learned in 2 h")

        let saved = try LearnedState.decode(engine.learnedState.encoded())
        var restarted = try QualityEngine(config: config)
        restarted.restoreLearned(saved)
        XCTAssertEqual(restarted.equipment(), before, "the same health, baselines and trends right after the restart")

        // Going on: the next windows score against the restored baseline, nothing is learned anew.
        var fresh = try QualityEngine(config: config)
        var noiseA = noise, noiseB = noise
        feed(&restarted, from: 2 * 3600 + 10, to: 2 * 3600 + 600, noise: &noiseA)
        feed(&fresh, from: 2 * 3600 + 10, to: 2 * 3600 + 600, noise: &noiseB)
        XCTAssertTrue(restarted.equipment().allSatisfy { $0.baselineN == 30 && $0.baselineMean != nil })
        XCTAssertTrue(fresh.equipment().allSatisfy { $0.baselineMean == nil }, "without the saved state it starts learning again")
    }

    func testAnomalyBaselineAndAlertLoadSurviveARestart() throws {
        let config = try testPlant()
        var engine = try QualityEngine(config: config)
        let values = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.3, 10.1, 9.9, 10.0, 10.2, 10.1, 9.9, 10.0, 10.1, 9.8, 10.2, 10.0, 9.9, 10.1, 10.0]
        for (i, v) in values.enumerated() {
            _ = engine.process(.operation(op("o\(i)", vehicle: "V\(i)", start: Double(i) * 60, end: Double(i) * 60 + 50,
                                             measurements: ["weldCurrent": v])))
        }
        let entry = try XCTUnwrap(engine.anomalies().first { $0.signal == "weldCurrent" })
        XCTAssertEqual(entry.baseline.n, 20)
        let mean = values.prefix(20).reduce(0, +) / 20
        XCTAssertEqual(try XCTUnwrap(entry.baseline.mean), mean, accuracy: 1e-9)
        var mr = 0.0
        for i in 1..<20 { mr += abs(values[i] - values[i - 1]) }
        let sigma = mr / 19 / 1.128
        XCTAssertEqual(try XCTUnwrap(entry.baseline.sigma), sigma, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(entry.baseline.ucl), mean + 3 * sigma, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(entry.baseline.lcl), mean - 3 * sigma, accuracy: 1e-6)

        var restarted = try QualityEngine(config: config)
        restarted.restoreLearned(try LearnedState.decode(engine.learnedState.encoded()))
        XCTAssertEqual(restarted.anomalies().first { $0.signal == "weldCurrent" }?.baseline, entry.baseline)
        XCTAssertEqual(restarted.learnedState, engine.learnedState)
    }

    func testCapabilityOfTheShiftAgainstHandComputedValues() throws {
        var engine = try QualityEngine(config: testPlant())
        // weldCurrent limits 8…12. Values 9, 10, 11, 10, 10: mean 10, s = sqrt(2/4) = 0.70711.
        for (i, v) in [9.0, 10, 11, 10, 10].enumerated() {
            _ = engine.process(.operation(op("o\(i)", vehicle: "V\(i)", start: Double(i) * 60, end: Double(i) * 60 + 50,
                                             measurements: ["weldCurrent": v])))
        }
        let kpi = try XCTUnwrap(engine.stationKPI("WELD-01"))
        let figures = try XCTUnwrap(kpi.capability.first { $0.signal == "weldCurrent" }?.figures)
        let s = (2.0 / 4).squareRoot()
        XCTAssertEqual(figures.n, 5)
        XCTAssertEqual(try XCTUnwrap(figures.cp), (4 / (6 * s) * 1e6).rounded() / 1e6)     // 0.942809
        XCTAssertEqual(try XCTUnwrap(figures.cpk), (2 / (3 * s) * 1e6).rounded() / 1e6)    // 0.942809
        XCTAssertEqual(try XCTUnwrap(figures.cp), 0.942809)

        // Off-centre: 11, 11.5, 11, 11.5 → mean 11.25, s = 0.288675; Cpk = (12 − 11.25) / 3s = 0.866025.
        var second = try QualityEngine(config: testPlant())
        for (i, v) in [11.0, 11.5, 11, 11.5].enumerated() {
            _ = second.process(.operation(op("p\(i)", vehicle: "W\(i)", start: Double(i) * 60, end: Double(i) * 60 + 50,
                                             measurements: ["weldCurrent": v])))
        }
        let off = try XCTUnwrap(second.stationKPI("WELD-01")?.capability.first?.figures)
        XCTAssertEqual(try XCTUnwrap(off.cp), 2.309401)
        XCTAssertEqual(try XCTUnwrap(off.cpk), 0.866025)
    }

    func testMeterWrapsResetsAndPowerIntegration() throws {
        func station(_ signals: String) throws -> StationConfig {
            let text = """
            {"route": ["body"], "stations": [{"id": "S", "process": "body", "protocol": "modbus",
             "endpoint": "modbus://127.0.0.1:15200?unit=1", "signals": [\(signals)]}]}
            """
            return try PlantConfig.decode(json: JSON.parse(text), file: "s.json", directory: URL(fileURLWithPath: "/tmp")).stations[0]
        }
        func reading(_ name: String, _ value: Double) -> [SignalReading] { [SignalReading(name: name, value: .double(value), quality: .good)] }

        var meter = try XCTUnwrap(StationEnergy(station(#"{"name": "e", "role": "energy", "address": "ir:0", "type": "uint16"}"#)))
        XCTAssertEqual(meter.step(reading("e", 65_000), at: at(0)), 0, "the first reading only sets the start")
        XCTAssertEqual(meter.step(reading("e", 65_530), at: at(10)), 530)
        XCTAssertEqual(meter.step(reading("e", 4), at: at(20)), 10, "a wrap at 65,536: 6 to the top and 4 after")
        XCTAssertEqual(meter.step(reading("e", 2), at: at(30)), 2, "a drop far from the top is a reset, counted from 0")
        XCTAssertEqual(meter.step([SignalReading(name: "e", value: nil, quality: .bad)], at: at(40)), 0)
        XCTAssertEqual(meter.odometer, 542)
        XCTAssertEqual(meter.resets, 2)

        var float = try XCTUnwrap(StationEnergy(station(#"{"name": "e", "role": "energy", "address": "hr:0", "type": "float32"}"#)))
        _ = float.step(reading("e", 1000), at: at(0))
        XCTAssertEqual(float.step(reading("e", 3), at: at(10)), 3, "a float meter has no top: a drop is a reset")

        var power = try XCTUnwrap(StationEnergy(station(#"{"name": "p", "role": "power", "address": "hr:0", "type": "float32"}"#)))
        XCTAssertEqual(power.step(reading("p", 36), at: at(0)), 0)
        XCTAssertEqual(power.step([], at: at(100)), 1, accuracy: 1e-12, "36 kW held for 100 s")
        XCTAssertEqual(power.step(reading("p", 72), at: at(200)), 1, accuracy: 1e-12, "the old value up to the new one")
        XCTAssertEqual(power.step([], at: at(250)), 1, accuracy: 1e-12)
        power.offline()
        XCTAssertEqual(power.step([], at: at(400)), 0, "no power is assumed while offline")

        let both = try station(#"{"name": "e", "role": "energy", "address": "ir:0", "type": "uint32"}, {"name": "p", "role": "power", "address": "hr:0", "type": "float32"}"#)
        var meterWins = try XCTUnwrap(StationEnergy(both))
        _ = meterWins.step(reading("e", 10) + reading("p", 3600), at: at(0))
        XCTAssertEqual(meterWins.step(reading("e", 11) + reading("p", 3600), at: at(10)), 1, "power is ignored where a meter exists")
    }

    /// An operation in progress across a restart (README "Energy and equipment health"): the
    /// learned state was saved before the operation started (as after `kill -9` between two saves),
    /// the start odometer comes from the operation's row, and the meter wrapped while the server
    /// was down. The answer is the meter's reading at completion − its reading at start.
    func testOperationInProgressAcrossARestartGetsItsEnergy() throws {
        let text = """
        {"route": ["body"], "stations": [{"id": "S", "process": "body", "protocol": "modbus",
         "endpoint": "modbus://127.0.0.1:15200?unit=1", "signals": [
           {"name": "vehicleId", "role": "vehicleId", "address": "hr:10", "type": "string", "length": 17},
           {"name": "cycleDone", "role": "cycleComplete", "address": "coil:0", "type": "bool"},
           {"name": "e", "role": "energy", "address": "ir:0", "type": "uint16"}]}]}
        """
        let config = try PlantConfig.decode(json: JSON.parse(text), file: "s.json", directory: URL(fileURLWithPath: "/tmp"))
        func meter(_ value: Double, _ t: Double) -> QualityInput {
            .poll(StationPoll(station: "S", time: at(t), readings: [SignalReading(name: "e", value: .double(value), quality: .good)]))
        }
        let operation = OperationRecord(id: "S:1", vehicleId: "V1", station: "S", process: "body", startedAt: at(10))

        var engine = try QualityEngine(config: config)
        _ = engine.process(meter(65_000, 0))
        // The learned state as saved at t = 0 (its next save never came).
        let saved = try engine.learnedState.encoded()
        _ = engine.process(meter(65_100, 10))
        var started: [TrackingOutput] = [.operationStarted(operation)]
        engine.meterOperations(&started)
        guard case .operationStarted(let withStart) = started[0] else { return XCTFail("\(started)") }
        // What the operation's row keeps (operations.energy_start_kwh).
        let start = try XCTUnwrap(withStart.energyStartKWh)
        XCTAssertEqual(start, 100, "100 kWh on the odometer since the first reading")
        _ = engine.process(meter(65_200, 20))

        var completed = operation
        completed.completedAt = at(90)
        var restarted = try QualityEngine(config: config)
        restarted.restoreLearned(try LearnedState.decode(saved))
        restarted.restoreOperationEnergy([(operation: operation.id, station: "S", kWh: start)])
        // Down until t = 60; the meter wrapped at 65,536 meanwhile.
        _ = restarted.process(meter(100, 60))
        _ = restarted.process(meter(120, 90))
        var outputs: [TrackingOutput] = [.operationCompleted(completed)]
        restarted.meterOperations(&outputs)
        guard case .operationCompleted(let done) = outputs[0] else { return XCTFail("\(outputs)") }
        XCTAssertEqual(try XCTUnwrap(done.energyKWh), 65_536 + 120 - 65_100, accuracy: 1e-9)

        // Without the saved odometer the stored start means nothing: no energy rather than a wrong one.
        var fresh = try QualityEngine(config: config)
        fresh.restoreOperationEnergy([(operation: operation.id, station: "S", kWh: start)])
        _ = fresh.process(meter(100, 60))
        _ = fresh.process(meter(120, 90))
        var unknown: [TrackingOutput] = [.operationCompleted(completed)]
        fresh.meterOperations(&unknown)
        guard case .operationCompleted(let none) = unknown[0] else { return XCTFail("\(unknown)") }
        XCTAssertNil(none.energyKWh)
    }

    func testStationsOffTheRouteCarryMetersAndEquipmentOnly() throws {
        let text = """
        {"route": ["body"], "stations": [{"id": "UTIL-01", "process": "utilities", "protocol": "modbus",
         "endpoint": "modbus://127.0.0.1:15300?unit=1", "signals": [
           {"name": "power", "role": "power", "address": "hr:0", "type": "float32"},
           {"name": "vehicleId", "role": "vehicleId", "address": "hr:10", "type": "string", "length": 17}]}]}
        """
        XCTAssertThrowsError(try PlantConfig.decode(json: JSON.parse(text), file: "u.json", directory: URL(fileURLWithPath: "/tmp"))) { error in
            XCTAssertTrue("\(error)".contains("stations[0].process: \"utilities\" is not on the route (body): a station off the route carries meters and equipment only"), "\(error)")
            XCTAssertTrue("\(error)".contains("signals[1] \"vehicleId\" has role vehicleId"), "\(error)")
        }
        let group = """
        {"route": ["body"], "stations": [{"id": "S", "process": "body", "protocol": "modbus",
         "endpoint": "modbus://127.0.0.1:15300?unit=1", "signals": [
           {"name": "m", "role": "measurement", "group": "g", "address": "hr:0", "type": "float32"}]}]}
        """
        XCTAssertThrowsError(try PlantConfig.decode(json: JSON.parse(group), file: "g.json", directory: URL(fileURLWithPath: "/tmp"))) { error in
            XCTAssertTrue("\(error)".contains("stations[0].signals[0].group: a peer group belongs to a signal with role condition"), "\(error)")
        }
    }
}
