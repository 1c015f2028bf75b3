import Foundation
import PlantModel
import Runtime
import Tracking
import XCTest

final class TrackerTests: XCTestCase {
    typealias F = Fixtures

    /// One vehicle through all five processes, with panels from a stamping lot.
    static func fullRoute(_ vehicle: String = "V1") -> [StationPoll] {
        var polls: [StationPoll] = [
            F.poll("PRESS", 0, ["strokes": .int(100), "panelLot": .string("P-001     ")]),
            F.poll("PRESS", 1, ["strokes": .int(101)]),
            F.poll("PRESS", 2, ["strokes": .int(103)]),
        ]
        polls += F.pass(vehicle, at: "WELD", start: 10,
                        values: ["result": .int(1), "weldCurrent": .double(10.5), "panelLot": .string("P-001")])
        polls += F.pass(vehicle, at: "PAINT", start: 30, values: ["filmThickness": .double(110), "paintLot": .string("PL-7")])
        polls += F.pass(vehicle, at: "ASSY", start: 50,
                        values: ["result": .int(3), "torque": .double(120), "operator": .string("li.wei"), "boltLot": .string("B-3")])
        polls += F.pass(vehicle, at: "INSP", start: 70, values: ["result": .int(2), "gap": .double(4.1)])
        return polls
    }

    func testFullGenealogyThroughFiveProcesses() {
        var tracker = Tracker(config: F.config())
        let out = tracker.feed(Self.fullRoute())

        let ops = out.completed
        XCTAssertEqual(ops.map(\.station), ["WELD", "PAINT", "ASSY", "INSP"])
        XCTAssertEqual(ops.map(\.process), ["welding", "paint", "assembly", "inspection"])
        XCTAssertEqual(ops.map(\.result), [.ok, nil, .ok, .nok])
        XCTAssertEqual(ops[0].lots, ["P-001"])
        XCTAssertEqual(ops[0].measurements, ["weldCurrent": 10.5])
        XCTAssertEqual(ops[0].startedAt, F.t(10))
        XCTAssertEqual(ops[0].completedAt, F.t(20))
        XCTAssertEqual(ops[0].cycleTimeS, 10)
        XCTAssertEqual(ops[0].attempt, 1)
        XCTAssertEqual(ops[0].shift, "A") // 1_795_000_000 is 11:06:40 UTC
        XCTAssertEqual(ops[1].lots, ["PL-7"])
        XCTAssertEqual(ops[2].operatorName, "li.wei")
        XCTAssertEqual(ops[2].lots, ["B-3"])
        XCTAssertEqual(ops[3].measurements, ["gap": 4.1])
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
        XCTAssertEqual(out.started.count, 4)

        // Stamping counted its lot.
        XCTAssertEqual(out.lotCounts.map(\.count), [0, 1, 3])
        XCTAssertEqual(out.lotCounts.last?.lotId, "P-001")

        let vehicle = tracker.vehicle("V1")
        XCTAssertEqual(vehicle?.status, .completed)
        XCTAssertEqual(vehicle?.currentStation, nil)
        XCTAssertEqual(vehicle?.firstSeenAt, F.t(10))
        XCTAssertEqual(vehicle?.lastSeenAt, F.t(82))
        XCTAssertEqual(vehicle?.lastRouteIndex, 4)
        // The vehicle event stream: in process until the inspection completes.
        XCTAssertEqual(out.vehicles.first?.status, .inProcess)
        XCTAssertEqual(out.vehicles.first?.currentStation, "WELD")
        XCTAssertEqual(tracker.state().lineWIP, 0)
    }

    func testOutputsCarryEventJSON() throws {
        var tracker = Tracker(config: F.config())
        let out = tracker.feed(F.pass("V9", at: "WELD", start: 0, values: ["result": .int(1)]))
        guard case .operationCompleted(let op) = out.first(where: { if case .operationCompleted = $0 { return true }; return false }) else {
            return XCTFail("no completion")
        }
        let completed = TrackingOutput.operationCompleted(op)
        XCTAssertEqual(completed.eventType, "operation")
        XCTAssertEqual(completed.station, "WELD")
        XCTAssertEqual(completed.vehicleId, "V9")
        XCTAssertEqual(completed.time, F.t(10))
        let json = completed.json
        XCTAssertEqual(json["vehicleId"]?.stringValue, "V9")
        XCTAssertEqual(json["station"]?.stringValue, "WELD")
        XCTAssertEqual(json["result"]?.stringValue, "ok")
        XCTAssertEqual(json["completedAt"]?.stringValue, Timestamp.format(F.t(10)))
        XCTAssertEqual(json["state"]?.stringValue, "completed")
        XCTAssertNotNil(json["measurements"]?.objectValue)
        let vehicle = try XCTUnwrap(out.first { $0.eventType == "vehicle" })
        XCTAssertEqual(vehicle.json["status"]?.stringValue, "in_process")
        XCTAssertEqual(vehicle.json["currentStation"]?.stringValue, "WELD")
    }

    func testSkippedStepRaisesIssueOnce() {
        var tracker = Tracker(config: F.config())
        var out = tracker.feed(F.pass("V2", at: "WELD", start: 0, values: ["result": .int(1)]))
        out = tracker.feed(F.pass("V2", at: "ASSY", start: 20, values: ["result": .int(1)]))
        XCTAssertEqual(out.issues.count, 1)
        let issue = out.issues[0]
        XCTAssertEqual(issue.kind, .skipped)
        XCTAssertEqual(issue.expected, "paint")
        XCTAssertEqual(issue.station, "ASSY")
        XCTAssertEqual(issue.operationId, out.started.first?.id)
        XCTAssertEqual(out.completed.count, 1, "the operation is still recorded")
        // Inspection next: paint is still missing but already reported.
        out = tracker.feed(F.pass("V2", at: "INSP", start: 40, values: ["result": .int(1)]))
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
        XCTAssertEqual(tracker.vehicle("V2")?.status, .completed)
    }

    func testReworkIsKeptAsSecondAttempt() {
        var tracker = Tracker(config: F.config())
        _ = tracker.feed(F.pass("V3", at: "WELD", start: 0, values: ["result": .int(2)]))
        let out = tracker.feed(F.pass("V3", at: "WELD", start: 20, values: ["result": .int(1)]))
        XCTAssertEqual(out.issues.map(\.kind), [.repeated])
        XCTAssertEqual(out.completed.map(\.attempt), [2])
        XCTAssertEqual(out.completed.first?.result, .ok)
        XCTAssertNotEqual(out.completed.first?.id, "WELD:" + Timestamp.format(F.t(0)), "a new record, not the first overwritten")
    }

    func testReworkInPlaceWhenMachineRunsAgain() {
        var tracker = Tracker(config: F.config())
        var out = tracker.feed([
            F.poll("WELD", 0, ["vehicleId": .string("V4"), "cycleDone": .bool(false), "state": .int(0)]),
            F.poll("WELD", 1, ["state": .int(1)]),
            F.poll("WELD", 10, ["cycleDone": .bool(true), "result": .int(2), "state": .int(0)]),
            F.poll("WELD", 11, ["cycleDone": .bool(false)]),
        ])
        XCTAssertEqual(out.started.count, 1, "running after arrival is the same operation")
        XCTAssertEqual(out.completed.map(\.result), [.nok])
        out = tracker.feed([
            F.poll("WELD", 12, ["state": .int(1)]),
            F.poll("WELD", 20, ["cycleDone": .bool(true), "result": .int(1), "state": .int(0)]),
        ])
        XCTAssertEqual(out.started.map(\.attempt), [2])
        XCTAssertEqual(out.completed.map(\.result), [.ok])
        XCTAssertEqual(out.issues.map(\.kind), [.repeated])
    }

    func testUnknownVehicleMidRoute() {
        var tracker = Tracker(config: F.config())
        var out = tracker.feed(F.pass("V5", at: "PAINT", start: 0))
        XCTAssertEqual(out.issues.map(\.kind), [.unknownVehicle])
        XCTAssertEqual(out.issues.first?.expected, "welding")
        XCTAssertEqual(out.completed.count, 1)
        // Its next step does not report the welding it was never seen at as skipped.
        out = tracker.feed(F.pass("V5", at: "ASSY", start: 20))
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
        // First process of the route: a new vehicle, no issue.
        out = tracker.feed(F.pass("V6", at: "WELD", start: 40))
        XCTAssertTrue(out.issues.isEmpty)
    }

    func testDuplicateIdAtTwoStations() {
        var tracker = Tracker(config: F.config())
        var out = tracker.feed([
            F.poll("WELD", 0, ["vehicleId": .string("V7"), "cycleDone": .bool(false)]),
            F.poll("WELD", 10, ["cycleDone": .bool(true)]),
            // The vehicle moves: the next station is polled before the old one clears (within grace).
            F.poll("PAINT", 10.5, ["vehicleId": .string("V7"), "cycleDone": .bool(false)]),
            F.poll("WELD", 10.6, ["vehicleId": .string("")]),
            F.poll("PAINT", 11, [:]),
        ])
        XCTAssertTrue(out.issues.isEmpty, "a handover is no duplicate: \(out.issues)")
        // Now the same id at PAINT and ASSY for several seconds.
        out = tracker.feed([
            F.poll("ASSY", 20, ["vehicleId": .string("V7"), "cycleCount": .int(5)]),
            F.poll("PAINT", 21, [:]),
            F.poll("ASSY", 21, [:]),
            F.poll("PAINT", 22.5, [:]),
            F.poll("ASSY", 22.5, [:]),
            F.poll("PAINT", 23, [:]),
        ])
        let duplicates = out.issues.filter { $0.kind == .duplicateId }
        XCTAssertEqual(duplicates.count, 1, "\(out.issues)")
        XCTAssertEqual(duplicates.first?.station, "ASSY")
        XCTAssertEqual(duplicates.first?.expected, "PAINT")
        XCTAssertEqual(duplicates.first?.at, F.t(22.5))
    }

    func testVehicleLeavingBeforeCycleEndAbortsOperation() {
        var tracker = Tracker(config: F.config())
        let out = tracker.feed([
            F.poll("WELD", 0, ["vehicleId": .string("V8"), "cycleDone": .bool(false)]),
            F.poll("WELD", 5, ["vehicleId": .string("V9")]),
        ])
        XCTAssertEqual(out.aborted.map(\.vehicleId), ["V8"])
        XCTAssertNil(out.aborted.first?.completedAt)
        XCTAssertEqual(tracker.station("WELD")?.currentVehicle, "V9")
        XCTAssertEqual(tracker.station("WELD")?.operation?.vehicleId, "V9")
        XCTAssertEqual(tracker.state().lineWIP, 2)
        XCTAssertEqual(tracker.state().station("WELD")?.wip, 1)
        XCTAssertEqual(tracker.state().station("PAINT")?.wip, 0)
    }

    func testVehicleAppearingWithCycleCompleteInOnePoll() {
        var tracker = Tracker(config: F.config())
        let out = tracker.feed([
            F.poll("ASSY", 0, ["cycleCount": .int(1)]),
            F.poll("ASSY", 1, ["vehicleId": .string("V10"), "cycleCount": .int(2), "result": .int(1)]),
        ])
        XCTAssertEqual(out.completed.map(\.vehicleId), ["V10"])
        XCTAssertEqual(out.completed.first?.startedAt, F.t(1))
    }

    func testStationWithoutCycleSignalCompletesWhenVehicleLeaves() {
        var config = F.config()
        config.stations[2].signals.removeAll { $0.role == .cycleComplete }
        var tracker = Tracker(config: config)
        _ = tracker.feed(F.pass("N1", at: "WELD", start: 0))
        let out = tracker.feed([
            F.poll("PAINT", 20, ["vehicleId": .string("N1")]),
            F.poll("PAINT", 25, ["filmThickness": .double(101), "paintLot": .string("PL-2")]),
            F.poll("PAINT", 30, ["vehicleId": .string("")]),
        ])
        XCTAssertEqual(out.completed.map(\.station), ["PAINT"])
        XCTAssertEqual(out.completed.first?.completedAt, F.t(30))
        XCTAssertEqual(out.completed.first?.measurements, ["filmThickness": 101])
        XCTAssertEqual(out.completed.first?.lots, ["PL-2"])
        XCTAssertNil(out.completed.first?.result)
        XCTAssertTrue(out.aborted.isEmpty)
    }

    func testLotStandingFromPreviousVehicleIsNotTaken() {
        var tracker = Tracker(config: F.config())
        var out = tracker.feed(F.pass("K1", at: "WELD", start: 0, values: ["panelLot": .string("P-1")]))
        XCTAssertEqual(out.completed.first?.lots, ["P-1"])
        // K2 arrives while P-1 still shows; the PLC switches to P-2 during K2's cycle.
        out = tracker.feed([
            F.poll("WELD", 20, ["vehicleId": .string("K2"), "cycleDone": .bool(false)]),
            F.poll("WELD", 21, ["panelLot": .string("P-2")]),
            F.poll("WELD", 30, ["cycleDone": .bool(true)]),
        ])
        XCTAssertEqual(out.completed.first?.lots, ["P-2"])
    }

    func testFailedReadsKeepLastValue() {
        var tracker = Tracker(config: F.config())
        let out = tracker.feed([
            F.poll("WELD", 0, ["vehicleId": .string("V11"), "cycleDone": .bool(false)]),
            StationPoll(station: "WELD", time: F.t(1), readings: [SignalReading(name: "vehicleId", value: nil, quality: .bad)]),
            F.poll("WELD", 2, ["cycleDone": .bool(true), "result": .int(1)]),
        ])
        XCTAssertTrue(out.aborted.isEmpty)
        XCTAssertEqual(out.completed.map(\.vehicleId), ["V11"])
    }

    func testHoldReleaseScrapRules() throws {
        var tracker = Tracker(config: F.config())
        _ = tracker.feed(F.pass("H1", at: "WELD", start: 0))
        XCTAssertThrowsError(try tracker.release(vehicleId: "H1", reason: "x", user: "q", at: F.t(20))) { error in
            guard case .conflict? = error as? VehicleCommandError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try tracker.hold(vehicleId: "NOPE", reason: "x", user: "q", at: F.t(20))) { error in
            XCTAssertEqual(error as? VehicleCommandError, .notFound(vehicleId: "NOPE"))
        }
        var out = try tracker.hold(vehicleId: "H1", reason: "paint check", user: "q", at: F.t(20))
        XCTAssertEqual(out.vehicles.map(\.status), [.hold])
        XCTAssertEqual(tracker.state().onHold, 1)
        XCTAssertEqual(tracker.state().inProcess, 0)
        XCTAssertThrowsError(try tracker.hold(vehicleId: "H1", reason: "x", user: "q", at: F.t(21)))
        // Operations continue while on hold; the status stays hold.
        _ = tracker.feed(F.pass("H1", at: "PAINT", start: 30))
        XCTAssertEqual(tracker.vehicle("H1")?.status, .hold)
        out = try tracker.release(vehicleId: "H1", reason: "ok", user: "q", at: F.t(50))
        XCTAssertEqual(out.vehicles.map(\.status), [.inProcess])
        out = try tracker.scrap(vehicleId: "H1", reason: "dent", user: "q", at: F.t(60))
        XCTAssertEqual(out.vehicles.map(\.status), [.scrapped])
        XCTAssertThrowsError(try tracker.scrap(vehicleId: "H1", reason: "x", user: "q", at: F.t(61)))
        XCTAssertThrowsError(try tracker.hold(vehicleId: "H1", reason: "x", user: "q", at: F.t(61)))
        XCTAssertEqual(tracker.state().lineWIP, 0)

        // A completed vehicle on hold goes back to completed; one the tracker forgot can be given.
        _ = tracker.feed(Self.fullRoute("C1"))
        _ = try tracker.hold(vehicleId: "C1", reason: "recall", user: "q", at: F.t(100))
        XCTAssertEqual(try tracker.release(vehicleId: "C1", reason: "ok", user: "q", at: F.t(101)).vehicles.first?.status, .completed)
        let old = VehicleSummary(vehicleId: "OLD", status: .completed, currentStation: nil, firstSeenAt: F.t(-1000), lastSeenAt: F.t(-900), lastRouteIndex: 4)
        XCTAssertEqual(try tracker.hold(vehicleId: "OLD", reason: "recall", user: "q", at: F.t(102), stored: old).vehicles.first?.status, .hold)
    }

    func testSnapshotRestoreContinuesHistory() {
        var tracker = Tracker(config: F.config())
        _ = tracker.feed(F.pass("R1", at: "WELD", start: 0, values: ["result": .int(1)]))
        // R1 in the middle of paint when the process dies.
        _ = tracker.feed([F.poll("PAINT", 20, ["vehicleId": .string("R1"), "cycleDone": .bool(false), "paintLot": .string("PL-1")])])
        let snapshot = tracker.snapshot()
        XCTAssertEqual(snapshot.operationsInProgress.map(\.vehicleId), ["R1"])

        var restored = Tracker(config: F.config(), snapshot: snapshot)
        XCTAssertEqual(restored.station("PAINT")?.currentVehicle, "R1")
        XCTAssertEqual(restored.state().inProcess, 1)
        var out = restored.feed([
            F.poll("PAINT", 30, ["vehicleId": .string("R1"), "cycleDone": .bool(false)]),
            F.poll("PAINT", 31, ["cycleDone": .bool(true), "filmThickness": .double(100)]),
        ])
        XCTAssertTrue(out.started.isEmpty, "the restored operation continues")
        XCTAssertEqual(out.completed.first?.startedAt, F.t(20))
        XCTAssertEqual(out.completed.first?.id, snapshot.operationsInProgress.first?.id)
        // Route check still knows welding was done: rework at WELD is a repeat, ASSY is in order.
        out = restored.feed(F.pass("R1", at: "WELD", start: 40))
        XCTAssertEqual(out.issues.map(\.kind), [.repeated])
        XCTAssertEqual(out.completed.first?.attempt, 2)
    }

    func testStampingLotCountsAndCounterReset() {
        var tracker = Tracker(config: F.config())
        let out = tracker.feed([
            F.poll("PRESS", 0, ["strokes": .int(10), "panelLot": .string("L1")]),
            F.poll("PRESS", 1, ["strokes": .int(12)]),
            F.poll("PRESS", 2, ["strokes": .int(13), "panelLot": .string("L2")]),
            F.poll("PRESS", 3, ["strokes": .int(0)]),
            F.poll("PRESS", 4, ["strokes": .int(4)]),
        ])
        XCTAssertEqual(out.lotCounts.map { "\($0.lotId)=\($0.count)" }, ["L1=0", "L1=2", "L1=3", "L2=0", "L2=4"])
        XCTAssertEqual(tracker.station("PRESS")?.currentLot, "L2")
        let snapshot = tracker.snapshot()
        var restored = Tracker(config: F.config(), snapshot: snapshot)
        let more = restored.feed([F.poll("PRESS", 10, ["strokes": .int(4)]), F.poll("PRESS", 11, ["strokes": .int(6)])])
        XCTAssertEqual(more.lotCounts.map { "\($0.lotId)=\($0.count)" }, ["L2=6"])
    }

    func testSameInputSameOutput() {
        var a = Tracker(config: F.config())
        var b = Tracker(config: F.config())
        let polls = Self.fullRoute("D1") + F.pass("D1", at: "WELD", start: 200)
        XCTAssertEqual(a.feed(polls), b.feed(polls))
    }
}
