import Foundation
import PlantModel
import Quality
import Runtime
import XCTest

final class QualityEngineTests: XCTestCase {
    // MARK: Anomalies

    func testSlowWeldCurrentDriftRaisesAnomalyAlertBeforeFirstOutOfSpecValue() throws {
        var engine = try QualityEngine(config: testPlant())
        var noise = Noise(state: 7)
        var firstAnomalyAlert: Int?
        var firstOutOfSpec: Int?
        var cyclesToLimitSeen: Double?
        var estimates: [Int: Double] = [:]   // cycle → the projected cycles to the 12 kA limit
        for i in 0..<400 {
            // 40 stable cycles around 10.0 kA (±0.1), then +0.02 kA per cycle: reaches 12 kA near cycle 140.
            let drift = i < 40 ? 0 : Double(i - 40) * 0.02
            let value = 10.0 + 0.1 * noise.next() + drift
            let out = engine.process(.operation(op("op\(i)", vehicle: "V\(i)", start: Double(i) * 60, end: Double(i) * 60 + 55,
                                                   measurements: ["weldCurrent": value])))
            if firstAnomalyAlert == nil, let (alert, _) = out.alerts.first(where: { $0.0.type == .anomaly && $0.1 == .raised }) {
                firstAnomalyAlert = i
                XCTAssertEqual(alert.key, "anomaly:WELD-01:weldCurrent")
                XCTAssertEqual(alert.signal, "weldCurrent")
                cyclesToLimitSeen = engine.anomalies().first { $0.signal == "weldCurrent" }?.cyclesToLimit
            }
            estimates[i] = engine.anomalies().first { $0.signal == "weldCurrent" }?.cyclesToLimit
            if out.defects.contains(where: { $0.0.code == "OUT_OF_SPEC:weldCurrent" }) {
                firstOutOfSpec = i
                XCTAssertTrue(value > 12)
                break
            }
        }
        let anomaly = try XCTUnwrap(firstAnomalyAlert, "no anomaly alert")
        let outOfSpec = try XCTUnwrap(firstOutOfSpec, "the drift never left the spec")
        XCTAssertGreaterThanOrEqual(anomaly, 40, "alert during the stable phase")
        XCTAssertLessThan(anomaly, outOfSpec, "the anomaly alert must come before the first out-of-spec value")
        XCTAssertGreaterThan(outOfSpec - anomaly, 20, "warning should come well ahead (alert at \(anomaly), out of spec at \(outOfSpec))")
        XCTAssertNotNil(cyclesToLimitSeen, "the alert already carries a projection")
        // Once the 30-cycle window holds drift only (cycle 70 on), the projection is the true distance:
        // the mean at cycle i is 10 + 0.02 × (i − 40) kA, rising 0.02 kA a cycle towards 12 kA.
        for i in 70..<outOfSpec {
            let expected = (12 - (10 + 0.02 * Double(i - 40))) / 0.02
            XCTAssertEqual(try XCTUnwrap(estimates[i], "cycle \(i)"), expected, accuracy: 10, "cycle \(i)")
        }
        let entry = try XCTUnwrap(engine.anomalies().first { $0.station == "WELD-01" && $0.signal == "weldCurrent" })
        XCTAssertEqual(entry.score, 1)
        XCTAssertNotNil(entry.since)
        XCTAssertNotNil(entry.cyclesToLimit, "a drift towards a limit estimates cycles to the limit")
    }

    func testStableNoisyProcessRaisesNoAnomalyAlert() throws {
        var engine = try QualityEngine(config: testPlant())
        var noise = Noise(state: 42)
        var raised = 0
        for i in 0..<1000 {
            let out = engine.process(.operation(op("op\(i)", vehicle: "V\(i)", start: Double(i) * 60, end: Double(i) * 60 + 55,
                                                   measurements: ["weldCurrent": 10 + 0.3 * noise.next()])))
            raised += out.alerts.filter { $0.0.type == .anomaly && $0.1 == .raised }.count
        }
        XCTAssertEqual(raised, 0)
        XCTAssertNil(engine.anomalies().first?.cyclesToLimit)
    }

    func testDriftPrediction() throws {
        var engine = try QualityEngine(config: testPlant())
        // A clean ramp: 10.0 + 0.05 per cycle; after 30 cycles the value is 11.45 → (12 − 11.45) / 0.05 = 11 cycles left.
        for i in 0..<30 {
            _ = engine.process(.operation(op("op\(i)", vehicle: "V\(i)", start: Double(i) * 60, end: Double(i) * 60 + 55,
                                             measurements: ["weldCurrent": 10 + 0.05 * Double(i)])))
        }
        let entry = try XCTUnwrap(engine.anomalies().first { $0.signal == "weldCurrent" })
        XCTAssertEqual(try XCTUnwrap(entry.cyclesToLimit), 11, accuracy: 0.05)
        XCTAssertGreaterThanOrEqual(entry.score, 0.8)
    }

    func testPeerComparisonLowersHealthOfTheOddStation() throws {
        var engine = try QualityEngine(config: testPlant())
        var noise = Noise(state: 3)
        for i in 0..<40 {
            for (station, centre) in [("WELD-01", 10.0), ("WELD-02", 10.6)] {
                _ = engine.process(.operation(op("\(station)-\(i)", vehicle: "V\(station)\(i)", station: station,
                                                 start: Double(i) * 60, end: Double(i) * 60 + 55,
                                                 measurements: ["weldCurrent": centre + 0.1 * noise.next()])))
            }
        }
        // 0.6 kA apart with sd ≈ 0.06: both look unhealthy to each other (a two-machine group cannot say which one is off).
        let health = engine.equipmentHealth()
        XCTAssertEqual(health.first { $0.station == "WELD-01" }?.signal, "weldCurrent")
        XCTAssertEqual(try XCTUnwrap(health.first { $0.station == "WELD-01" }).health, 0, accuracy: 0.01)
        XCTAssertEqual(try XCTUnwrap(health.first { $0.station == "INSP-01" }).health, 1)
    }

    // MARK: Defects

    func testNOKResultRaisesDefectWithoutAlert() throws {
        var engine = try QualityEngine(config: testPlant())
        let out = engine.process(.operation(op("op1", vehicle: "VIN1", start: 0, end: 55, result: .nok)))
        let defects = out.defects
        XCTAssertEqual(defects.count, 1)
        let d = defects[0].0
        XCTAssertEqual(defects[0].1, .raised)
        XCTAssertEqual(d.code, "NOK")
        XCTAssertEqual(d.vehicleId, "VIN1")
        XCTAssertEqual(d.station, "WELD-01")
        XCTAssertEqual(d.operation, "op1")
        XCTAssertEqual(d.raisedBy, "system")
        XCTAssertEqual(d.status, .open)
        XCTAssertTrue(out.alerts.isEmpty)
        XCTAssertEqual(QualityOutput.defect(d, .raised).eventType, "defect")
        XCTAssertEqual(QualityOutput.defect(d, .raised).payload["change"], .string("raised"))
        XCTAssertEqual(QualityOutput.defect(d, .raised).payload["raisedAt"], .string("2026-11-21T06:00:55.000Z"))

        let resolved = try engine.resolveDefect(id: d.id, comment: "rewelded", user: quality, at: at(100))
        XCTAssertEqual(resolved.defects.first?.0.status, .resolved)
        XCTAssertEqual(resolved.defects.first?.0.resolvedBy, "li.wei")
        XCTAssertEqual(resolved.audits.first?.action, "defect.resolve")
        XCTAssertThrowsError(try engine.resolveDefect(id: d.id, comment: nil, user: quality, at: at(101))) {
            guard case .conflict? = $0 as? QualityActionError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try engine.resolveDefect(id: 999, comment: nil, user: quality, at: at(101))) {
            guard case .notFound? = $0 as? QualityActionError else { return XCTFail("\($0)") }
        }
    }

    func testOutOfSpecRaisesDefectAndQualityAlertThatClearsWhenBackInSpec() throws {
        var engine = try QualityEngine(config: testPlant())
        let out = engine.process(.operation(op("op1", vehicle: "VIN1", start: 0, end: 55, measurements: ["weldCurrent": 12.6])))
        XCTAssertEqual(out.defects.map(\.0.code), ["OUT_OF_SPEC:weldCurrent"])
        let alert = try XCTUnwrap(out.alerts.first)
        XCTAssertEqual(alert.0.type, .quality)
        XCTAssertEqual(alert.0.key, "quality:WELD-01:weldCurrent")
        XCTAssertEqual(alert.0.vehicleId, "VIN1")
        XCTAssertEqual(alert.0.state, .activeUnacknowledged)
        XCTAssertEqual(alert.1, .raised)
        let back = engine.process(.operation(op("op2", vehicle: "VIN2", start: 60, end: 115, measurements: ["weldCurrent": 10])))
        XCTAssertEqual(back.alerts.first?.0.state, .clearedUnacknowledged)
        XCTAssertEqual(back.alerts.first?.1, .cleared)
        XCTAssertTrue(back.defects.isEmpty)
        // Stats: the out-of-spec operation is not good.
        XCTAssertEqual(engine.stationKPI("WELD-01")?.goodCount, 1)
        XCTAssertEqual(engine.stationKPI("WELD-01")?.totalCount, 2)
    }

    func testSkippedStepRaisesDefectAndSequenceAlert() throws {
        var engine = try QualityEngine(config: testPlant())
        let out = engine.process(.sequenceIssue(SequenceIssueInput(kind: .skipped, vehicleId: "VIN9", station: "INSP-01",
                                                                    process: "inspection", skippedProcesses: ["welding"], time: at(10))))
        XCTAssertEqual(out.defects.map(\.0.code), ["SKIPPED:welding"])
        XCTAssertEqual(out.alerts.map(\.0.type), [.sequence])
        let alert = out.alerts[0].0
        // A momentary alert stays active until acknowledged, then is cleared.
        let ack = try engine.acknowledge(alertId: alert.id, by: quality, comment: "seen", at: at(20))
        XCTAssertEqual(ack.alerts.first?.0.state, .cleared)
        XCTAssertNil(engine.alert(id: alert.id))
        let repeated = engine.process(.sequenceIssue(SequenceIssueInput(kind: .repeated, vehicleId: "VIN9", station: "WELD-01", time: at(30))))
        XCTAssertEqual(repeated.alerts.map(\.0.type), [.sequence])
        XCTAssertTrue(repeated.defects.isEmpty)
    }

    func testManualDefectAndPareto() throws {
        var engine = try QualityEngine(config: testPlant())
        let out = try engine.raiseDefect(vehicleId: "VIN1", station: "WELD-01", code: "SCRATCH", description: "door scratch",
                                         severity: .low, user: quality, at: at(5))
        XCTAssertEqual(out.defects.first?.0.raisedBy, "li.wei")
        XCTAssertEqual(out.audits.first?.action, "defect.raise")
        XCTAssertThrowsError(try engine.raiseDefect(vehicleId: "VIN1", station: "NOPE", code: "X", description: "", severity: .low, user: quality, at: at(6)))
        XCTAssertThrowsError(try engine.raiseDefect(vehicleId: " ", station: nil, code: "X", description: "", severity: .low, user: quality, at: at(6)))
        _ = engine.process(.operation(op("a", vehicle: "V1", start: 10, end: 60, result: .nok)))
        _ = engine.process(.operation(op("b", vehicle: "V2", start: 60, end: 110, result: .nok)))
        _ = engine.process(.operation(op("c", vehicle: "V3", station: "INSP-01", process: "inspection", start: 60, end: 110, result: .nok)))
        XCTAssertEqual(engine.paretoByCode().map(\.code), ["NOK", "SCRATCH"])
        XCTAssertEqual(engine.paretoByCode().map(\.count), [3, 1])
        XCTAssertEqual(engine.paretoByStation().map(\.station), ["WELD-01", "INSP-01"])
        XCTAssertEqual(engine.paretoByStation().map(\.count), [3, 1])
    }

    // MARK: Availability and downtime

    func testFaultLowersAvailabilityAndRaisesDowntimeAlert() throws {
        var engine = try QualityEngine(config: testPlant())
        var downtimeAlerts: [(Alert, AlertChange)] = []
        for s in 0...1000 {
            let t = Double(s)
            let state: Int64 = (600..<800).contains(s) ? 2 : 1
            let out = engine.process(.poll(poll("WELD-01", t, state: state, fault: state == 2 ? 17 : 0)))
            downtimeAlerts += out.alerts.filter { $0.0.key == "kpi:downtime:WELD-01" }
        }
        // Running 0–600 s and 800–1000 s, fault 600–800 s: availability = 800 / 1000.
        let kpi = try XCTUnwrap(engine.stationKPI("WELD-01"))
        XCTAssertEqual(try XCTUnwrap(kpi.availability), 0.8, accuracy: 1e-9)
        XCTAssertEqual(kpi.downtimeByFault.map(\.code), ["17"])
        XCTAssertEqual(kpi.downtimeByFault.first?.seconds ?? 0, 200, accuracy: 1e-9)
        XCTAssertEqual(kpi.faults, 1)
        XCTAssertEqual(try XCTUnwrap(kpi.mttrS), 200, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(kpi.mtbfS), 800, accuracy: 1e-9)
        // Raised once the fault lasted 120 s (at 720 s), cleared when it ended (800 s).
        XCTAssertEqual(downtimeAlerts.map(\.1), [.raised, .cleared])
        XCTAssertEqual(downtimeAlerts.first?.0.raisedAt, at(720))
        XCTAssertEqual(downtimeAlerts.first?.0.type, .kpi)
        XCTAssertEqual(downtimeAlerts.last?.0.clearedAt, at(800))
    }

    func testOfflineStationRaisesConnectionAlertClearedWhenOnline() throws {
        var engine = try QualityEngine(config: testPlant())
        _ = engine.process(.poll(poll("WELD-01", 0, state: 1)))
        var out = engine.process(.connection(ConnectionChange(station: "WELD-01", state: .offline, time: at(1), reason: "refused")))
        XCTAssertTrue(out.alerts.isEmpty)
        out = engine.process(.tick(at(5)))
        XCTAssertTrue(out.alerts.isEmpty, "offlineAlertAfterS is 5: not yet at 4 s")
        out = engine.process(.tick(at(6)))
        XCTAssertEqual(out.alerts.map(\.0.key), ["connection:WELD-01"])
        XCTAssertEqual(out.alerts.first?.0.type, .connection)
        out = engine.process(.tick(at(7)))
        XCTAssertTrue(out.alerts.isEmpty, "raised once")
        out = engine.process(.connection(ConnectionChange(station: "WELD-01", state: .online, time: at(9))))
        XCTAssertEqual(out.alerts.map(\.1), [.cleared])
        // Offline time counts as planned but not run time: run 1 s of 9 s.
        XCTAssertEqual(try XCTUnwrap(engine.stationKPI("WELD-01")?.availability), 1.0 / 9.0, accuracy: 1e-6)
    }

    // MARK: Lifecycle

    func testAcknowledgeLifecycle() throws {
        var engine = try QualityEngine(config: testPlant())
        let raised = engine.process(.operation(op("op1", vehicle: "VIN1", start: 0, end: 55, measurements: ["weldCurrent": 13])))
        let id = try XCTUnwrap(raised.alerts.first?.0.id)
        let ack = try engine.acknowledge(alertId: id, by: quality, comment: "checking tips", at: at(60))
        XCTAssertEqual(ack.alerts.first?.0.state, .activeAcknowledged)
        XCTAssertEqual(ack.alerts.first?.1, .acknowledged)
        XCTAssertEqual(ack.alerts.first?.0.acknowledgedBy, "li.wei")
        XCTAssertEqual(ack.alerts.first?.0.comment, "checking tips")
        XCTAssertEqual(ack.audits.first?.action, "alert.acknowledge")
        XCTAssertEqual(ack.audits.first?.target, "alert:\(id)")
        XCTAssertEqual(ack.audits.first?.role, .quality)
        XCTAssertThrowsError(try engine.acknowledge(alertId: id, by: quality, comment: nil, at: at(61))) { error in
            XCTAssertEqual(error as? QualityActionError, .conflict("alert \(id) is already acknowledged"))
            guard case .conflict? = error as? QualityActionError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try engine.acknowledge(alertId: 4242, by: quality, comment: nil, at: at(61))) {
            guard case .notFound? = $0 as? QualityActionError else { return XCTFail("\($0)") }
        }
        // Condition back to normal: an acknowledged alert clears completely.
        let back = engine.process(.operation(op("op2", vehicle: "VIN2", start: 60, end: 115, measurements: ["weldCurrent": 10])))
        XCTAssertEqual(back.alerts.first?.0.state, .cleared)
        XCTAssertTrue(engine.openAlerts.isEmpty)
        XCTAssertThrowsError(try engine.acknowledge(alertId: id, by: quality, comment: nil, at: at(200))) {
            guard case .conflict? = $0 as? QualityActionError else { return XCTFail("\($0)") }
        }
        // A new occurrence of the same condition is a new alert with the same key.
        let again = engine.process(.operation(op("op3", vehicle: "VIN3", start: 120, end: 175, measurements: ["weldCurrent": 13])))
        XCTAssertNotEqual(again.alerts.first?.0.id, id)
        XCTAssertEqual(again.alerts.first?.0.key, "quality:WELD-01:weldCurrent")
    }

    func testClearedUnacknowledgedThenAcknowledged() throws {
        var engine = try QualityEngine(config: testPlant())
        let id = try XCTUnwrap(engine.process(.operation(op("op1", vehicle: "VIN1", start: 0, end: 55, measurements: ["weldCurrent": 13]))).alerts.first?.0.id)
        _ = engine.process(.operation(op("op2", vehicle: "VIN2", start: 60, end: 115, measurements: ["weldCurrent": 10])))
        XCTAssertEqual(engine.alert(id: id)?.state, .clearedUnacknowledged)
        let ack = try engine.acknowledge(alertId: id, by: quality, comment: nil, at: at(120))
        XCTAssertEqual(ack.alerts.first?.0.state, .cleared)
        XCTAssertNil(engine.alert(id: id))
    }

    func testShelveAndAutomaticUnshelve() throws {
        var engine = try QualityEngine(config: testPlant())
        let id = try XCTUnwrap(engine.process(.operation(op("op1", vehicle: "VIN1", start: 0, end: 55, measurements: ["weldCurrent": 13]))).alerts.first?.0.id)
        let shelved = try engine.shelve(alertId: id, minutes: 10, reason: "tip change planned", by: quality, at: at(60))
        XCTAssertEqual(shelved.alerts.first?.0.state, .shelved)
        XCTAssertEqual(shelved.alerts.first?.0.shelvedUntil, at(660))
        XCTAssertEqual(shelved.audits.first?.action, "alert.shelve")
        XCTAssertThrowsError(try engine.acknowledge(alertId: id, by: quality, comment: nil, at: at(61)))
        XCTAssertThrowsError(try engine.shelve(alertId: id, minutes: 0, reason: nil, by: quality, at: at(61))) {
            guard case .invalid? = $0 as? QualityActionError else { return XCTFail("\($0)") }
        }
        XCTAssertTrue(engine.process(.tick(at(659))).alerts.isEmpty)
        let unshelved = engine.process(.tick(at(660))).alerts
        XCTAssertEqual(unshelved.map(\.1), [.unshelved])
        XCTAssertEqual(unshelved.first?.0.state, .activeUnacknowledged, "the condition is still present")
        XCTAssertNil(unshelved.first?.0.shelvedUntil)

        // Shelved while the condition returns to normal: unshelves to cleared.
        _ = try engine.shelve(alertId: id, minutes: 1, reason: nil, by: quality, at: at(700))
        let quiet = engine.process(.operation(op("op2", vehicle: "VIN2", start: 700, end: 710, measurements: ["weldCurrent": 10])))
        XCTAssertTrue(quiet.alerts.isEmpty, "no announcement while shelved")
        let end = engine.process(.tick(at(760))).alerts
        XCTAssertEqual(end.first?.1, .unshelved)
        XCTAssertEqual(end.first?.0.state, .cleared)
        XCTAssertTrue(engine.openAlerts.isEmpty)
    }

    func testEscalationAfterConfiguredTime() throws {
        var engine = try QualityEngine(config: testPlant(alerts: #"{"escalateAfterMin": 15}"#))
        let id = try XCTUnwrap(engine.process(.operation(op("op1", vehicle: "VIN1", start: 0, end: 60, measurements: ["weldCurrent": 13]))).alerts.first?.0.id)
        XCTAssertTrue(engine.process(.tick(at(60 + 14 * 60))).alerts.isEmpty)
        let first = engine.process(.tick(at(60 + 15 * 60))).alerts
        XCTAssertEqual(first.map(\.1), [.escalated])
        XCTAssertEqual(first.first?.0.escalationLevel, 1)
        XCTAssertTrue(engine.process(.tick(at(60 + 20 * 60))).alerts.isEmpty)
        let second = engine.process(.tick(at(60 + 30 * 60))).alerts
        XCTAssertEqual(second.first?.0.escalationLevel, 2)
        _ = try engine.acknowledge(alertId: id, by: quality, comment: nil, at: at(60 + 31 * 60))
        XCTAssertTrue(engine.process(.tick(at(60 + 60 * 60))).alerts.isEmpty, "acknowledged alerts do not escalate")
    }

    // MARK: KPIs by hand

    func testKPIsAgainstHandComputedFigures() throws {
        var engine = try QualityEngine(config: testPlant())
        var inputs: [QualityInput] = [
            .poll(poll("WELD-01", 0, state: 1)),                                              // running from 06:00:00
            .operation(op("w1", vehicle: "V1", start: 0, end: 60)),                           // 60 s, OK, first attempt
            .operation(op("w2", vehicle: "V2", start: 60, end: 120, result: .nok)),           // 60 s, NOK, first attempt
            .poll(poll("WELD-01", 120, state: 2, fault: 5)),                                  // fault 5 from 06:02:00
            .poll(poll("WELD-01", 240, state: 5)),                                            // setup from 06:04:00
            .poll(poll("WELD-01", 300, state: 1)),                                            // running from 06:05:00
            .operation(op("w3", vehicle: "V2", start: 300, end: 400, attempt: 2)),            // 100 s, OK, rework
            .operation(op("i1", vehicle: "V1", station: "INSP-01", process: "inspection", start: 400, end: 440)), // OK
            .tick(at(600)),
        ]
        inputs.sort { $0.time < $1.time }
        for input in inputs { _ = engine.process(input) }

        // WELD-01 at 06:10:00, elapsed 600 s:
        //   running 0–120 and 300–600 → run 420 s; fault 120–240 → 120 s (code 5); setup 240–300 → 60 s.
        //   planned = 600 − 60 (setup) = 540 s. availability = 420 / 540 = 0.777778
        //   performance = 50 s × 3 / 420 = 0.357143; quality = 2 / 3 = 0.666667
        //   OEE = 420/540 × 150/420 × 2/3 = 150/540 × 2/3 = 0.185185
        //   FPY = 1 OK first attempt / 2 first attempts = 0.5
        //   cycle times 60, 60, 100: mean 73.333333, p50 (rank ⌈1.5⌉ = 2) 60, p95 (rank ⌈2.85⌉ = 3) 100
        //   throughput = 3 / (600 / 3600) = 18 per hour; MTBF = 420 / 1; MTTR = 120 / 1
        let w = try XCTUnwrap(engine.stationKPI("WELD-01"))
        XCTAssertEqual(w.availability, 0.777778)
        XCTAssertEqual(w.performance, 0.357143)
        XCTAssertEqual(w.quality, 0.666667)
        XCTAssertEqual(w.oee, 0.185185)
        XCTAssertEqual(w.fpy, 0.5)
        XCTAssertEqual(w.goodCount, 2)
        XCTAssertEqual(w.totalCount, 3)
        XCTAssertEqual(w.cycleTimeS, CycleTimeFigures(mean: 73.333333, p50: 60, p95: 100))
        XCTAssertEqual(w.throughputPerHour, 18)
        XCTAssertEqual(w.downtimeByFault.map(\.code), ["5"])
        XCTAssertEqual(w.downtimeByFault.map(\.seconds), [120])
        XCTAssertEqual(w.mtbfS, 420)
        XCTAssertEqual(w.mttrS, 120)

        // INSP-01 (no state signal, never polled): run 0 of planned 600 s; one OK first attempt.
        let i = try XCTUnwrap(engine.stationKPI("INSP-01"))
        XCTAssertEqual(i.availability, 0)
        XCTAssertNil(i.performance)
        XCTAssertEqual(i.fpy, 1)

        // Line, from summed times and counts (WELD-02: no data, planned 600 s):
        //   availability = 420 / (540 + 600 + 600) = 0.241379
        //   performance = (50×3 + 40×1 + 50×0) / (420 + 0 + 0) = 190 / 420 = 0.452381
        //   quality = 3 good / 4 = 0.75;  OEE = 420/1740 × 190/420 × 0.75 = 0.081897
        //   RTY = FPY(welding) 0.5 × FPY(inspection) 1 = 0.5; completed vehicles (inspection) 1 → 6 per hour
        let line = engine.lineKPI()
        XCTAssertEqual(line.availability, 0.241379)
        XCTAssertEqual(line.performance, 0.452381)
        XCTAssertEqual(line.quality, 0.75)
        XCTAssertEqual(line.oee, 0.081897)
        XCTAssertEqual(line.rty, 0.5)
        XCTAssertEqual(line.inspectionFpy, 1)
        XCTAssertEqual(line.completedVehicles, 1)
        XCTAssertEqual(line.throughputPerHour, 6)

        // The typed set behind `GET /api/kpis` (its JSON is the API's: APITests).
        let kpis = engine.kpis()
        XCTAssertEqual(kpis.shift?.name, "A")
        XCTAssertEqual(kpis.shift?.start, at(0))
        XCTAssertEqual(kpis.shift?.end, at(8 * 3600))
        XCTAssertEqual(kpis.line, line)
        XCTAssertEqual(kpis.stations.map(\.id), ["WELD-01", "WELD-02", "INSP-01"])
        XCTAssertEqual(kpis.stations.first, w)
        XCTAssertEqual(kpis.alertsPer10Min, engine.alertsPer10Min)
    }

    func testKPIOutputsAreRateLimitedPerStation() throws {
        var engine = try QualityEngine(config: testPlant())
        var stationKPIs = 0, lineKPIs = 0
        for step in 0..<100 { // 10 s of 100 ms polls
            for output in engine.process(.poll(poll("WELD-01", Double(step) * 0.1, state: 1))) {
                if case .stationKPI = output { stationKPIs += 1 }
                if case .lineKPI(_, let shift, _) = output { lineKPIs += 1; XCTAssertEqual(shift, "A") }
            }
        }
        XCTAssertEqual(stationKPIs, 20) // one per 500 ms of sample time
        XCTAssertEqual(lineKPIs, 20)
    }

    func testShiftChangeRestartsCounters() throws {
        var engine = try QualityEngine(config: testPlant())
        _ = engine.process(.operation(op("w1", vehicle: "V1", start: 0, end: 60)))
        XCTAssertEqual(engine.stationKPI("WELD-01")?.totalCount, 1)
        _ = engine.process(.tick(at(8 * 3600 + 1)))
        XCTAssertEqual(engine.shift?.name, "B")
        XCTAssertEqual(engine.stationKPI("WELD-01")?.totalCount, 0)
        XCTAssertEqual(engine.previousShiftKPIs?.shift?.name, "A")
    }

    // MARK: Shift counters across a restart

    func testRestartInsideTheShiftGoesOnFromTheSavedCounters() throws {
        let before: [QualityInput] = [
            .poll(poll("WELD-01", 0, state: 1)),                                              // running from 06:00:00
            .operation(op("w1", vehicle: "V1", start: 0, end: 60)),
            .operation(op("w2", vehicle: "V2", start: 60, end: 120, result: .nok)),
            .poll(poll("WELD-01", 120, state: 2, fault: 5)),                                  // fault 5 from 06:02:00
            .poll(poll("WELD-01", 240, state: 5)),                                            // setup from 06:04:00
            .operation(op("i0", vehicle: "V0", station: "INSP-01", process: "inspection", start: 200, end: 245)),
        ]
        let after: [QualityInput] = [
            .poll(poll("WELD-01", 300, state: 1)),                                            // running from 06:05:00
            .operation(op("w3", vehicle: "V2", start: 300, end: 400, attempt: 2)),
            .operation(op("i1", vehicle: "V1", station: "INSP-01", process: "inspection", start: 400, end: 440)),
            .tick(at(600)),
        ]
        var engine = try QualityEngine(config: testPlant())
        for input in before { _ = engine.process(input) }
        _ = try engine.raiseDefect(vehicleId: "V2", station: "WELD-01", code: "SPOT-MISSING", description: "spot 14", severity: .high,
                                   user: quality, at: at(250))
        let saved = try XCTUnwrap(engine.shiftCounters)
        XCTAssertEqual(saved.shiftName, "A")
        XCTAssertEqual(saved.countedFrom, at(0))
        // What the store keeps is JSON; it reads back as the same counters.
        let restored = try ShiftCounters.decode(try saved.encoded())
        XCTAssertEqual(restored, saved)

        // The restarted engine: its first input comes 50 s after the last one before the stop.
        var restarted = try QualityEngine(config: testPlant())
        restarted.resume(restored)
        for input in after { _ = restarted.process(input) }
        for input in after { _ = engine.process(input) }

        // Counts, cycle times and downtime carry on as if nothing happened.
        let w = try XCTUnwrap(restarted.stationKPI("WELD-01")), uninterrupted = try XCTUnwrap(engine.stationKPI("WELD-01"))
        XCTAssertEqual(w.totalCount, 3)
        XCTAssertEqual(w.goodCount, 2)
        XCTAssertEqual(w.fpy, 0.5)
        XCTAssertEqual(w.cycleTimeS, CycleTimeFigures(mean: 73.333333, p50: 60, p95: 100))
        XCTAssertEqual(w.downtimeByFault.map(\.code), ["5"])
        XCTAssertEqual(w.downtimeByFault.map(\.seconds), [120])
        XCTAssertEqual(w.mtbfS, 420)
        XCTAssertEqual(w.mttrS, 120)
        XCTAssertEqual(w.throughputPerHour, 18)                    // 3 in the 600 s since 06:00, not since the restart
        for figure in [\StationKPI.totalCount, \.goodCount] { XCTAssertEqual(w[keyPath: figure], uninterrupted[keyPath: figure]) }
        // The stop lost the setup interval 240–300 s (no state while down, as for a station
        // offline): run 420 s of planned 600 s, where the uninterrupted engine knows of 60 s setup.
        XCTAssertEqual(w.availability, 0.7)
        XCTAssertEqual(uninterrupted.availability, 0.777778)
        XCTAssertEqual(restarted.stationKPI("INSP-01")?.totalCount, 2)
        XCTAssertEqual(restarted.lineKPI().completedVehicles, 2)
        XCTAssertEqual(restarted.paretoByCode().map(\.code), ["NOK", "SPOT-MISSING"]) // w2 NOK, and the one raised by hand
        XCTAssertEqual(restarted.kpis().shift?.start, at(0))
    }

    func testSavedCountersOfAnotherShiftAreDropped() throws {
        var engine = try QualityEngine(config: testPlant())
        _ = engine.process(.operation(op("w1", vehicle: "V1", start: 0, end: 60)))
        let saved = try XCTUnwrap(engine.shiftCounters)

        // Back after the shift ended: shift B starts from zero.
        var restarted = try QualityEngine(config: testPlant())
        restarted.resume(saved)
        _ = restarted.process(.operation(op("w2", vehicle: "V2", start: 8 * 3600 + 100, end: 8 * 3600 + 160)))
        XCTAssertEqual(restarted.shift?.name, "B")
        XCTAssertEqual(restarted.stationKPI("WELD-01")?.totalCount, 1)

        // Counters are taken back only before the first input.
        var running = try QualityEngine(config: testPlant())
        _ = running.process(.operation(op("w3", vehicle: "V3", start: 100, end: 160)))
        running.resume(saved)
        _ = running.process(.operation(op("w4", vehicle: "V4", start: 160, end: 220)))
        XCTAssertEqual(running.stationKPI("WELD-01")?.totalCount, 2)
        XCTAssertEqual(running.kpis().shift?.start, at(0))
        XCTAssertEqual(running.shiftCounters?.countedFrom, at(160)) // its own first input (w3 completed)
    }

    // MARK: Rules

    func testCycleTimeAndFPYRules() throws {
        var engine = try QualityEngine(config: testPlant(alerts: #"{"cycleTime": {"factor": 1.5, "consecutive": 3}, "fpy": {"below": 0.8, "lastN": 5}}"#))
        var keys: [String] = []
        for i in 0..<3 { // 90 s > 1.5 × 50 s
            keys += engine.process(.operation(op("s\(i)", vehicle: "S\(i)", start: Double(i) * 100, end: Double(i) * 100 + 90))).alerts.map(\.0.key)
        }
        XCTAssertEqual(keys, ["kpi:cycle:WELD-01"])
        let cleared = engine.process(.operation(op("s3", vehicle: "S3", start: 300, end: 350))).alerts
        XCTAssertEqual(cleared.map(\.1), [.cleared])
        // FPY over the last 5 first attempts: 4 OK so far; 1 NOK → 4/5 = 0.8 (not below); 2 NOK → 3/5.
        var fpyAlerts = engine.process(.operation(op("n1", vehicle: "N1", start: 400, end: 450, result: .nok))).alerts.filter { $0.0.key.hasPrefix("kpi:fpy") }
        XCTAssertTrue(fpyAlerts.isEmpty)
        fpyAlerts = engine.process(.operation(op("n2", vehicle: "N2", start: 450, end: 500, result: .nok))).alerts.filter { $0.0.key.hasPrefix("kpi:fpy") }
        XCTAssertEqual(fpyAlerts.map(\.1), [.raised])
    }

    func testOEERuleNeedsDurationAndUsesHysteresis() throws {
        var engine = try QualityEngine(config: testPlant(alerts: #"{"oee": {"below": 0.5, "clearAbove": 0.6, "forS": 60, "minElapsedS": 0}}"#))
        // Running with no parts: performance 0 → OEE 0, defined from 1 s (planned time 0 before).
        // Parts at 168 and 169 s: OEE = 100 / t s, 0.59 … 0.50 up to 199 s: above `below`, under `clearAbove`.
        // A third part at 200 s: 150 / 201 = 0.75 at the next check → cleared.
        var changes: [(AlertChange, Date)] = []
        for s in 0...230 {
            var out = engine.process(.poll(poll("WELD-01", Double(s), state: 1)))
            if [168, 169, 200].contains(s) {
                out += engine.process(.operation(op("p\(s)", vehicle: "P\(s)", start: Double(s) - 50, end: Double(s))))
            }
            for (alert, change) in out.alerts where alert.key == "kpi:oee:WELD-01" {
                changes.append((change, change == .raised ? alert.raisedAt : alert.clearedAt!))
            }
        }
        XCTAssertEqual(changes.map(\.0), [.raised, .cleared])
        XCTAssertEqual(changes.first?.1, at(61))
        XCTAssertEqual(changes.last?.1, at(201)) // rules are evaluated once a second: the part came after the 200 s check
    }

    // MARK: Flood and chattering

    func testFloodFiguresAndChattering() throws {
        var engine = try QualityEngine(config: testPlant(alerts: #"{"flood": {"per10Min": 10}, "chattering": {"count": 3, "minutes": 10}}"#))
        for i in 0..<12 { // 12 alerts in 12 s
            _ = engine.process(.sequenceIssue(SequenceIssueInput(kind: .repeated, vehicleId: "V\(i)", station: "WELD-01", time: at(Double(i)))))
        }
        XCTAssertEqual(engine.alertsPer10Min, 12)
        _ = engine.process(.tick(at(310)))
        // Flood from the 11th alert (10 s) to 310 s = 300 s of 310 s elapsed.
        XCTAssertEqual(engine.floodTimePct, 300.0 / 310.0 * 100, accuracy: 1e-4)
        _ = engine.process(.tick(at(700)))
        XCTAssertEqual(engine.alertsPer10Min, 0)
        let pctAfter = engine.floodTimePct
        _ = engine.process(.tick(at(800)))
        XCTAssertLessThan(engine.floodTimePct, pctAfter, "no longer in flood")

        XCTAssertTrue(engine.chatteringKeys.isEmpty)
        for i in 0..<3 { // raise and clear the same condition three times
            _ = engine.process(.operation(op("c\(i)a", vehicle: "C\(i)", start: 900 + Double(i) * 20, end: 905 + Double(i) * 20, measurements: ["weldCurrent": 13])))
            _ = engine.process(.operation(op("c\(i)b", vehicle: "D\(i)", start: 910 + Double(i) * 20, end: 915 + Double(i) * 20, measurements: ["weldCurrent": 10])))
        }
        XCTAssertEqual(engine.chatteringKeys, ["quality:WELD-01:weldCurrent"])
        XCTAssertEqual(engine.kpis().chattering, ["quality:WELD-01:weldCurrent"])
        // Re-raised occurrences of one open alert keep their id.
        XCTAssertEqual(engine.openAlerts.filter { $0.key == "quality:WELD-01:weldCurrent" }.count, 1)
    }

    // MARK: Config

    func testAlertsBlockErrorsNameTheirJSONPath() throws {
        func error(_ block: String) -> ConfigError? {
            do { _ = try QualityEngine(config: testPlant(alerts: block)); return nil } catch { return error as? ConfigError }
        }
        XCTAssertEqual(error(#"{"oee": {"below": 1.5}}"#)?.path, "alerts.oee.below")
        XCTAssertEqual(error(#"{"cycleTime": {"factr": 2}}"#)?.path, "alerts.cycleTime.factr")
        XCTAssertEqual(error(#"{"downtime": {"severity": "urgent"}}"#)?.path, "alerts.downtime.severity")
        XCTAssertEqual(error(#"{"fpy": {"lastN": "ten"}}"#)?.path, "alerts.fpy.lastN")
        XCTAssertEqual(error(#"{"anomaly": {"above": 0.5, "clearBelow": 0.7}}"#)?.path, "alerts.anomaly.clearBelow")
        XCTAssertEqual(error(#"{"oee": []}"#)?.path, "alerts.oee")
        XCTAssertTrue(error(#"{"oee": {"below": 1.5}}"#)?.description.hasPrefix("test.json: alerts.oee.below: ") == true)
        XCTAssertNil(error(#"{"oee": {"below": 0.7, "forS": 30}, "escalateAfterMin": 5}"#))
        let rules = try QualityEngine(config: testPlant(alerts: #"{"oee": {"below": 0.7}, "downtime": {"afterS": 30, "severity": "critical"}}"#)).rules
        XCTAssertEqual(rules.oee.below, 0.7)
        XCTAssertEqual(rules.oee.clearAbove, 0.7)
        XCTAssertEqual(rules.downtime.severity, .critical)
        XCTAssertEqual(try QualityEngine(config: testPlant()).rules, QualityRules())
    }

    // MARK: Determinism and restart

    func testSameInputsGiveSameOutputs() throws {
        func run() throws -> [String] {
            var engine = try QualityEngine(config: testPlant())
            var noise = Noise(state: 11)
            var lines: [String] = []
            for i in 0..<300 {
                let t = Double(i) * 10
                var out = engine.process(.poll(poll("WELD-01", t, state: i % 50 < 5 ? 2 : 1, fault: 3)))
                out += engine.process(.operation(op("o\(i)", vehicle: "V\(i)", start: t, end: t + 9, result: i % 7 == 0 ? .nok : .ok,
                                                    measurements: ["weldCurrent": 10 + Double(i) * 0.01 + 0.1 * noise.next()])))
                lines += out.map { ($0.eventType ?? "audit") + " " + $0.payload.serialized() }
            }
            return lines
        }
        let a = try run(), b = try run()
        XCTAssertGreaterThan(a.count, 100)
        XCTAssertEqual(a, b)
    }

    func testRestoreContinuesOpenAlertsAndIds() throws {
        var engine = try QualityEngine(config: testPlant())
        let out = engine.process(.operation(op("op1", vehicle: "VIN1", start: 0, end: 55, result: .nok, measurements: ["weldCurrent": 13])))
        let alert = try XCTUnwrap(out.alerts.first?.0)
        let defects = out.defects.map(\.0)
        var restarted = try QualityEngine(config: testPlant())
        restarted.restore(alerts: [alert], defects: defects, nextAlertId: alert.id + 1, nextDefectId: (defects.map(\.id).max() ?? 0) + 1)
        let ack = try restarted.acknowledge(alertId: alert.id, by: quality, comment: nil, at: at(60))
        XCTAssertEqual(ack.alerts.first?.0.state, .activeAcknowledged)
        let cleared = restarted.process(.operation(op("op2", vehicle: "VIN2", start: 60, end: 115, measurements: ["weldCurrent": 10])))
        XCTAssertEqual(cleared.alerts.first?.0.id, alert.id)
        let next = restarted.process(.operation(op("op3", vehicle: "VIN3", start: 120, end: 175, result: .nok)))
        XCTAssertEqual(next.defects.first?.0.id, (defects.map(\.id).max() ?? 0) + 1)
        XCTAssertEqual(restarted.openDefects.count, defects.count + 1)
    }
}

final class DefaultPlantTests: XCTestCase {
    /// The shipped plant config: its `alerts` block (if any) decodes, and the stamping press (no
    /// cycleComplete, a part counter) is counted from its counter, with its tonnage as one value per stroke.
    func testDefaultPlantAndCounterStation() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let config = try PlantConfig.load(path: root.appendingPathComponent("Stations/plant.json").path)
        var engine = try QualityEngine(config: config)
        let start = Date(timeIntervalSince1970: 1_795_240_800)
        var outputs: [QualityOutput] = []
        for i in 0..<40 {
            let tonnage = i == 39 ? 9000.0 : 8000 + Double(i % 5) * 10 // the last stroke is over the 8800 limit
            outputs += engine.process(.poll(StationPoll(station: "PRESS-01", time: start.addingTimeInterval(Double(i) * 6), readings: [
                SignalReading(name: "strokes", value: .int(Int64(100 + i)), quality: .good),
                SignalReading(name: "tonnage", value: .double(tonnage), quality: .good),
                SignalReading(name: "state", value: .int(1), quality: .good),
                SignalReading(name: "faultCode", value: .int(0), quality: .good),
            ])))
        }
        let kpi = try XCTUnwrap(engine.stationKPI("PRESS-01"))
        XCTAssertEqual(kpi.totalCount, 39, "the first counter value is the reference")
        XCTAssertEqual(kpi.goodCount, 38)
        XCTAssertEqual(kpi.cycleTimeS.p50, 6)
        // Out of spec, and far outside its own history (SPC + robust score): both alerts.
        XCTAssertEqual(outputs.alerts.map(\.0.key), ["quality:PRESS-01:tonnage", "anomaly:PRESS-01:tonnage"])
        XCTAssertTrue(outputs.defects.isEmpty, "no vehicle, no defect")
        XCTAssertNotNil(engine.anomalies().first { $0.station == "PRESS-01" && $0.signal == "tonnage" })
        XCTAssertEqual(engine.kpis().stations.count, config.stations.count)
    }
}
