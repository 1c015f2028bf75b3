import Foundation
import XCTest
import PlantModel
@testable import Quality
import Runtime

/// Andon calls, downtime stretches and the response figures on the engine's own clock
/// (README "Andon and downtime").
final class AndonDowntimeTests: XCTestCase {
    /// The test plant with an `andon` signal on WELD-01 and a small reason catalogue.
    func floorPlant(owners: Bool = false) throws -> PlantConfig {
        var config = try testPlant()
        config.stations[0].signals.append(SignalConfig(name: "andon", role: .andon, address: ModbusAddress(table: .holdingRegister, index: 33),
                                                       type: .uint16))
        config.downtimeReasons = [
            DowntimeReason(code: "201", text: "Weld tip worn", textZh: "焊接电极磨损", category: "tooling", planned: false),
            DowntimeReason(code: "202", text: "Weld current", textZh: "焊接电流异常", category: "electrical", planned: false),
            DowntimeReason(code: "blocked", text: "Blocked", textZh: "下游堵塞", category: "flow", planned: false),
            DowntimeReason(code: "ops", text: "Operator away", textZh: "操作员离岗", category: "people", planned: false),
        ]
        if owners {
            config.people.people = [Person(user: "li.wei", name: "Li Wei", notify: [])]
            config.people.responsibility = [ResponsibilityRule(owner: "li.wei")]
            config.people.dueMinutes = ["high": 1]
        }
        return config
    }

    func andonPoll(_ t: Double, code: Int64, state: Int64 = 1) -> StationPoll {
        StationPoll(station: "WELD-01", time: at(t), readings: [
            SignalReading(name: "andon", value: .int(code), quality: .good),
            SignalReading(name: "state", value: .int(state), quality: .good),
            SignalReading(name: "faultCode", value: .int(0), quality: .good),
        ])
    }

    let operatorUser = Principal(user: "wang.fang", role: .operator)

    func calls(_ outputs: [QualityOutput]) -> [(AndonCall, AndonChange)] {
        outputs.compactMap { if case let .andon(c, change) = $0 { return (c, change) }; return nil }
    }

    func stretches(_ outputs: [QualityOutput]) -> [DowntimeStretch] {
        outputs.compactMap { if case let .downtime(d) = $0 { return d }; return nil }
    }

    // MARK: Andon

    func testAndonSignalOpensACallWhoseAlertAcknowledgementIsTheResponseAndZeroClosesIt() throws {
        var engine = try QualityEngine(config: floorPlant())
        XCTAssertTrue(calls(engine.process(.poll(andonPoll(0, code: 0)))).isEmpty, "0 is no call")
        let opened = engine.process(.poll(andonPoll(10, code: 3)))
        let (call, change) = try XCTUnwrap(calls(opened).first)
        XCTAssertEqual(change, .opened)
        XCTAssertEqual(call.kind, "material", "code 3 of the default calls")
        XCTAssertEqual(call.source, .signal)
        XCTAssertEqual(call.state, .open)
        XCTAssertEqual(call.openedAt, at(10))
        let alert = try XCTUnwrap(opened.alerts.first { $0.1 == .raised }?.0)
        XCTAssertEqual(alert.type, .andon)
        XCTAssertEqual(alert.station, "WELD-01")
        XCTAssertEqual(alert.severity, .high)
        XCTAssertEqual(call.alertId, alert.id)
        XCTAssertTrue(calls(engine.process(.poll(andonPoll(20, code: 3)))).isEmpty, "the same code goes on")

        let acked = try engine.acknowledge(alertId: alert.id, by: quality, comment: "on my way", at: at(40))
        let (answered, answer) = try XCTUnwrap(calls(acked).first)
        XCTAssertEqual(answer, .acknowledged)
        XCTAssertEqual(answered.state, .acknowledged)
        XCTAssertEqual(answered.acknowledgedBy, "li.wei")
        XCTAssertEqual(answered.responseS, 30)
        XCTAssertEqual(answered.json["responseS"], .double(30))

        let closed = engine.process(.poll(andonPoll(70, code: 0)))
        let (ended, endChange) = try XCTUnwrap(calls(closed).first)
        XCTAssertEqual(endChange, .closed)
        XCTAssertEqual(ended.closedAt, at(70))
        XCTAssertNil(ended.closedBy, "the signal closed it")
        XCTAssertEqual(closed.alerts.map(\.1), [.cleared], "its acknowledged alert clears")
        XCTAssertTrue(engine.openAndonCalls.isEmpty)

        // Another code while a call is open closes it and opens the new kind.
        _ = engine.process(.poll(andonPoll(80, code: 1)))
        let switched = calls(engine.process(.poll(andonPoll(90, code: 2))))
        XCTAssertEqual(switched.map { "\($0.0.kind) \($0.1.rawValue)" }, ["help closed", "quality opened"])
        XCTAssertEqual(engine.openAndonCalls.map(\.kind), ["quality"])

        let figures = try XCTUnwrap(engine.kpis().response)
        XCTAssertEqual(figures.andonCalls, 3)
        XCTAssertEqual(figures.andonMeanResponseS, 30)
        XCTAssertEqual(figures.andonOpenNow, 1)
        XCTAssertEqual(figures.meanAckS, 30, "the andon alert's acknowledgement counts as any alert's")
    }

    func testAndonThroughTheAPICallAcknowledgeAndClose() throws {
        var engine = try QualityEngine(config: floorPlant())
        _ = engine.process(.tick(at(0)))
        let opened = try engine.callAndon(station: "WELD-02", kind: "maintenance", comment: "hydraulic leak", by: operatorUser, at: at(5))
        let call = try XCTUnwrap(calls(opened).first?.0)
        XCTAssertEqual(call.source, .api)
        XCTAssertEqual(call.openedBy, "wang.fang")
        XCTAssertEqual(call.comment, "hydraulic leak")
        XCTAssertEqual(opened.audits.map(\.action), ["andon.call"])
        XCTAssertTrue(opened.alerts.first?.0.message.contains("hydraulic leak") ?? false)
        XCTAssertThrowsError(try engine.callAndon(station: "WELD-02", kind: "maintenance", comment: nil, by: operatorUser, at: at(6))) {
            XCTAssertEqual($0 as? QualityActionError, .conflict("andon call 1 (maintenance) is already open at WELD-02"))
        }
        XCTAssertThrowsError(try engine.callAndon(station: "PAINT-09", kind: "help", comment: nil, by: operatorUser, at: at(6))) {
            guard case .invalid = $0 as? QualityActionError else { return XCTFail("\($0)") }
        }
        let acked = try engine.acknowledgeAndon(id: call.id, comment: nil, by: operatorUser, at: at(17))
        XCTAssertEqual(calls(acked).first?.0.responseS, 12)
        XCTAssertEqual(acked.alerts.map(\.1), [.acknowledged], "the call's alert is acknowledged with it")
        XCTAssertThrowsError(try engine.acknowledgeAndon(id: call.id, comment: nil, by: operatorUser, at: at(18))) {
            guard case .conflict = $0 as? QualityActionError else { return XCTFail("\($0)") }
        }
        let closed = try engine.closeAndon(id: call.id, comment: "fixed", by: operatorUser, at: at(60))
        XCTAssertEqual(calls(closed).first?.0.closedBy, "wang.fang")
        XCTAssertEqual(calls(closed).first?.0.comment, "hydraulic leak · fixed")
        XCTAssertEqual(closed.alerts.map(\.1), [.cleared])
        XCTAssertThrowsError(try engine.closeAndon(id: call.id, comment: nil, by: operatorUser, at: at(61))) {
            XCTAssertEqual($0 as? QualityActionError, .conflict("andon call 1 is closed"))
        }
        XCTAssertThrowsError(try engine.closeAndon(id: 99, comment: nil, by: operatorUser, at: at(61))) {
            XCTAssertEqual($0 as? QualityActionError, .notFound("no andon call 99"))
        }

        // Closed before anybody answered: no response time, the alert waits for its acknowledgement.
        let second = try XCTUnwrap(calls(try engine.callAndon(station: "INSP-01", kind: "help", comment: nil, by: operatorUser, at: at(70))).first?.0)
        let early = try engine.closeAndon(id: second.id, comment: nil, by: operatorUser, at: at(80))
        XCTAssertNil(calls(early).first?.0.responseS)
        XCTAssertEqual(early.alerts.first?.0.state, .clearedUnacknowledged)
        XCTAssertEqual(engine.kpis().response?.andonCalls, 2)
        XCTAssertEqual(engine.kpis().response?.andonMeanResponseS, 12)
    }

    func testRestoreKeepsOpenCallsAndDoesNotReopenTheSameSignal() throws {
        var engine = try QualityEngine(config: floorPlant())
        let opened = engine.process(.poll(andonPoll(10, code: 4)))
        let call = try XCTUnwrap(calls(opened).first?.0)
        XCTAssertEqual(call.signalCode, 4)

        var restarted = try QualityEngine(config: floorPlant())
        restarted.restore(alerts: opened.alerts.map(\.0), defects: [], nextAlertId: 2, nextDefectId: 1)
        restarted.restoreFloor(calls: [call], nextCallId: 2, stretches: [], nextStretchId: 1)
        XCTAssertTrue(calls(restarted.process(.poll(andonPoll(20, code: 4)))).isEmpty, "the cord still pulled: the same call")
        let acked = try restarted.acknowledge(alertId: try XCTUnwrap(call.alertId), by: quality, comment: nil, at: at(25))
        XCTAssertEqual(calls(acked).first?.0.responseS, 15, "acknowledging the restored alert answers the restored call")
        let closed = calls(restarted.process(.poll(andonPoll(30, code: 0))))
        XCTAssertEqual(closed.map { "\($0.0.id) \($0.1.rawValue)" }, ["1 closed"])
        let next = calls(try restarted.callAndon(station: "WELD-01", kind: "help", comment: nil, by: operatorUser, at: at(31)))
        XCTAssertEqual(next.first?.0.id, 2, "ids go on")
    }

    // MARK: Downtime

    func testDowntimeStretchesReasonsAndShiftFiguresByReasonAndCategory() throws {
        var engine = try QualityEngine(config: floorPlant())
        var out: [QualityOutput] = []
        out += engine.process(.poll(poll("WELD-01", 0, state: 1)))
        out += engine.process(.poll(poll("WELD-02", 0, state: 1)))
        out += engine.process(.poll(poll("WELD-02", 50, state: 2, fault: 999)))   // not in the catalogue
        out += engine.process(.poll(poll("WELD-01", 100, state: 2)))              // fault, code not yet there
        out += engine.process(.poll(poll("WELD-01", 105, state: 2, fault: 201)))  // the code arrives
        out += engine.process(.poll(poll("WELD-01", 130, state: 2, fault: 202)))  // another fault: a new stretch
        out += engine.process(.poll(poll("WELD-02", 150, state: 1)))
        out += engine.process(.poll(poll("WELD-01", 160, state: 3, fault: 0)))    // blocked
        out += engine.process(.poll(poll("WELD-01", 200, state: 1)))
        out += engine.process(.poll(poll("WELD-01", 300, state: 5)))              // setup: no entry
        out += engine.process(.tick(at(360)))

        let latest = Dictionary(stretches(out).map { ($0.id, $0) }) { $1 }
        XCTAssertEqual(latest.count, 5)
        let weld2 = try XCTUnwrap(latest[1])
        XCTAssertEqual([weld2.station, weld2.state.rawValue, weld2.faultCode], ["WELD-02", "fault", "999"])
        XCTAssertNil(weld2.reason)
        XCTAssertEqual(weld2.end, at(150))
        let first = try XCTUnwrap(latest[2])
        XCTAssertEqual(first.faultCode, "201", "the code a poll after the state")
        XCTAssertEqual(first.reason?.code, "201")
        XCTAssertEqual(first.reasonBy, "system")
        XCTAssertEqual(first.start, at(100))
        XCTAssertEqual(first.end, at(130))
        XCTAssertEqual(first.durationS(now: at(360)), 30)
        XCTAssertEqual(latest[3]?.reason?.code, "202")
        XCTAssertEqual(latest[3]?.end, at(160))
        XCTAssertEqual(latest[4]?.state, .blocked)
        XCTAssertEqual(latest[4]?.reason?.category, "flow", "a stop state takes the entry named after it")
        XCTAssertNil(latest[4]?.faultCode)
        XCTAssertEqual(latest[5]?.state, .setup)
        XCTAssertNil(latest[5]?.end, "goes on")
        XCTAssertEqual(latest[5]?.json(now: at(360))["durationS"], .double(60))

        // Shift A from 06:00 (the first input): WELD-01 30 s 201 + 30 s 202 + 40 s blocked + 60 s setup so far;
        // WELD-02 100 s of code 999.
        let figures = try XCTUnwrap(engine.kpis().downtime)
        XCTAssertEqual(figures.stations["WELD-01"]?.byReason, ["201": 30, "202": 30, "blocked": 40, "unassigned": 60])
        XCTAssertEqual(figures.stations["WELD-01"]?.byCategory, ["tooling": 30, "electrical": 30, "flow": 40, "unassigned": 60])
        XCTAssertEqual(figures.stations["WELD-02"]?.byReason, ["unassigned": 100])
        XCTAssertEqual(figures.stations["INSP-01"]?.byReason, [:])
        XCTAssertEqual(figures.line.byReason, ["201": 30, "202": 30, "blocked": 40, "unassigned": 160])
        XCTAssertEqual(figures.line.byCategory, ["tooling": 30, "electrical": 30, "flow": 40, "unassigned": 160])

        // An operator says why: the figures follow at once, also for a stretch that goes on.
        let set = try engine.setDowntimeReason(id: 5, code: "ops", comment: "waiting for the setter", stored: nil,
                                               by: operatorUser, at: at(361))
        XCTAssertEqual(stretches(set).first?.reason?.code, "ops")
        XCTAssertEqual(stretches(set).first?.reasonBy, "wang.fang")
        XCTAssertEqual(stretches(set).first?.comment, "waiting for the setter")
        XCTAssertEqual(set.audits.map(\.action), ["downtime.reason"])
        _ = engine.process(.tick(at(420)))
        XCTAssertEqual(engine.kpis().downtime?.stations["WELD-01"]?.byCategory, ["tooling": 30, "electrical": 30, "flow": 40, "people": 120])
        // An ended stretch can be corrected too.
        _ = try engine.setDowntimeReason(id: 1, code: "201", comment: nil, stored: nil, by: operatorUser, at: at(421))
        XCTAssertEqual(engine.kpis().downtime?.stations["WELD-02"]?.byReason, ["201": 100])

        XCTAssertThrowsError(try engine.setDowntimeReason(id: 5, code: "999", comment: nil, stored: nil, by: operatorUser, at: at(422))) {
            guard case .invalid(let message) = $0 as? QualityActionError else { return XCTFail("\($0)") }
            XCTAssertTrue(message.contains("not in the downtime reason catalogue"), message)
        }
        XCTAssertThrowsError(try engine.setDowntimeReason(id: 77, code: "ops", comment: nil, stored: nil, by: operatorUser, at: at(422))) {
            XCTAssertEqual($0 as? QualityActionError, .notFound("no downtime 77"))
        }
        // A stretch the engine no longer holds is changed from its stored copy.
        let old = DowntimeStretch(id: 40, station: "INSP-01", state: .starved, faultCode: nil, start: at(-90_000))
        XCTAssertEqual(stretches(try engine.setDowntimeReason(id: 40, code: "ops", comment: nil, stored: old, by: operatorUser, at: at(423))).first?.reason?.code, "ops")

        // Going offline ends a stretch.
        _ = engine.process(.poll(poll("WELD-02", 430, state: 2, fault: 202)))
        let offline = stretches(engine.process(.connection(ConnectionChange(station: "WELD-02", state: .offline, time: at(450)))))
        XCTAssertEqual(offline.map(\.end), [at(450)])
    }

    // MARK: Response figures

    func testResponseFiguresAgainstHandComputedValues() throws {
        var engine = try QualityEngine(config: floorPlant(owners: true))
        _ = engine.process(.tick(at(0)))
        // Defects (high: due in 1 min) resolved after 90 s and 30 s: mean 60 s; the third stays open.
        for vin in ["VIN1", "VIN2", "VIN3"] {
            _ = try engine.raiseDefect(vehicleId: vin, station: "WELD-01", code: "D", description: "dent", severity: .high, user: quality, at: at(0))
        }
        _ = try engine.resolveDefect(id: 1, comment: nil, user: quality, at: at(90))
        _ = try engine.resolveDefect(id: 2, comment: nil, user: quality, at: at(30))
        // Andon calls: one answered after 20 s through the call, one after 40 s through its alert, one not at all.
        let a = try XCTUnwrap(calls(try engine.callAndon(station: "WELD-01", kind: "help", comment: nil, by: operatorUser, at: at(100))).first?.0)
        let b = try XCTUnwrap(calls(try engine.callAndon(station: "WELD-02", kind: "quality", comment: nil, by: operatorUser, at: at(100))).first?.0)
        _ = try engine.callAndon(station: "INSP-01", kind: "material", comment: nil, by: operatorUser, at: at(100))
        _ = try engine.acknowledgeAndon(id: a.id, comment: nil, by: operatorUser, at: at(120))
        _ = try engine.acknowledge(alertId: try XCTUnwrap(b.alertId), by: quality, comment: nil, at: at(140))
        XCTAssertEqual(engine.kpis().response?.overdueNow, 0, "nothing past its due time yet")
        _ = engine.process(.tick(at(200)))

        let r = try XCTUnwrap(engine.kpis().response)
        XCTAssertEqual(r.meanResolveS, 60)
        XCTAssertEqual(r.meanAckS, 30)
        XCTAssertEqual(r.andonCalls, 3)
        XCTAssertEqual(r.andonMeanResponseS, 30)
        XCTAssertEqual(r.andonOpenNow, 3, "acknowledged calls are not closed")
        // Past due (1 min): the open defect (due 00:01) and the unanswered call's alert (due 00:02:40).
        XCTAssertEqual(r.overdueNow, 2)
        XCTAssertEqual(r.responseJSON, .obj([("meanAckS", .double(30)), ("meanResolveS", .double(60)), ("overdueNow", .int(2))]))
        XCTAssertEqual(r.andonJSON, .obj([("calls", .int(3)), ("meanResponseS", .double(30)), ("openNow", .int(3))]))

        // Saved with the shift counters and back after a restart in the same shift.
        let saved = try XCTUnwrap(engine.shiftCounters)
        var restarted = try QualityEngine(config: floorPlant(owners: true))
        restarted.resume(try ShiftCounters.decode(try saved.encoded()))
        _ = restarted.process(.tick(at(300)))
        XCTAssertEqual(restarted.kpis().response?.meanResolveS, 60)
        XCTAssertEqual(restarted.kpis().response?.andonCalls, 3)
        // The next shift starts from zero.
        _ = restarted.process(.tick(at(8 * 3600 + 1)))
        XCTAssertNil(restarted.kpis().response?.meanAckS)
        XCTAssertEqual(restarted.kpis().response?.andonCalls, 0)
    }

    func testAndonSignalConfigErrorsNameTheirJSONPath() throws {
        func load(_ signal: String) throws -> PlantConfig {
            let text = """
            {"route": ["welding"], "stations": [{"id": "W", "process": "welding", "protocol": "modbus",
              "endpoint": "modbus://127.0.0.1:1502", "signals": [\(signal)]}],
             "downtimeReasons": [{"code": 217, "text": "Tip dresser"}]}
            """
            return try PlantConfig.decode(json: JSON.parse(text), file: "p.json", directory: URL(fileURLWithPath: "/tmp"))
        }
        let config = try load(#"{"name": "cord", "role": "andon", "address": "hr:1", "type": "uint16", "calls": {"1": "help", "7": "safety"}}"#)
        XCTAssertEqual(config.stations[0].signal(role: .andon)?.calls, [1: "help", 7: "safety"])
        XCTAssertEqual(config.downtimeReasons, [DowntimeReason(code: "217", text: "Tip dresser", textZh: "Tip dresser", category: "other", planned: false)])
        func message(_ signal: String) -> String {
            do { _ = try load(signal); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(#"{"name": "x", "address": "hr:1", "type": "uint16", "calls": {"1": "help"}}"#)
            .contains("stations[0].signals[0].calls: calls belong to a signal with role andon"))
        XCTAssertTrue(message(#"{"name": "x", "role": "andon", "address": "hr:1", "type": "uint16", "calls": {"0": "help"}}"#)
            .contains("stations[0].signals[0].calls.0"))
        XCTAssertTrue(message(#"{"name": "x", "role": "andon", "address": "hr:1", "type": "uint16", "calls": {"1": "a b"}}"#)
            .contains("is not a call kind"))
    }
}
