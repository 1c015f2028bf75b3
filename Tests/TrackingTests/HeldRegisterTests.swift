import Foundation
import PlantModel
import Runtime
import Tracking
import XCTest

/// Real PLC behaviour (README "Tracking on real PLC behaviour"): a station keeps the last vehicle
/// id after its cycle until the next vehicle arrives, faults and comes back still showing it, and
/// keeps showing it while vehicles pass a parallel station. None of that is a new operation, a
/// repeat or a duplicate; a second completed cycle and one id worked at two stations still are.
/// Codes of the fixture's `state`: 0 idle, 1 running, 2 fault.
final class HeldRegisterTests: XCTestCase {
    typealias F = Fixtures

    /// Polls sorted by time (stable: one time keeps its order).
    static func inTimeOrder(_ polls: [StationPoll]) -> [StationPoll] {
        polls.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element)
    }

    /// `vehicle` at WELD with the machine's states as a PLC shows them: it arrives running, the
    /// cycle completes, the machine goes idle and the id and `cycleDone` stay (no clearing poll).
    static func weldAndHold(_ vehicle: String, start: Double, result: Int64 = 1) -> [StationPoll] {
        [
            F.poll("WELD", start, ["vehicleId": .string(vehicle), "cycleDone": .bool(false), "state": .int(1)]),
            F.poll("WELD", start + 10, ["cycleDone": .bool(true), "result": .int(result), "state": .int(0)]),
        ]
    }

    /// `vehicle` worked at PAINT from `start`, completed at `start + 10`, the id kept afterwards.
    static func paintAndHold(_ vehicle: String, start: Double) -> [StationPoll] {
        [
            F.poll("PAINT", start, ["vehicleId": .string(vehicle), "cycleDone": .bool(false)]),
            F.poll("PAINT", start + 5, ["filmThickness": .double(110)]),
            F.poll("PAINT", start + 10, ["cycleDone": .bool(true)]),
        ]
    }

    func testIdKeptAfterTheCycleIsNoDuplicateWhileTheVehicleIsWorkedDownstream() {
        var tracker = Tracker(config: F.config())
        var polls = Self.weldAndHold("V1", start: 0)
        // WELD keeps showing V1 (and cycleDone true) while V1 is painted; both are polled all along.
        polls += [F.poll("PAINT", 12, ["vehicleId": .string("V1"), "cycleDone": .bool(false)])]
        for t in stride(from: 13.0, through: 21, by: 1) {
            polls += [F.poll("WELD", t, [:]), F.poll("PAINT", t, ["filmThickness": .double(100 + t)])]
        }
        polls += [F.poll("PAINT", 22, ["cycleDone": .bool(true)])]
        let out = tracker.feed(polls)
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
        XCTAssertEqual(out.completed.map(\.station), ["WELD", "PAINT"])
        XCTAssertEqual(tracker.station("WELD")?.currentVehicle, "V1", "the station still shows it")
        XCTAssertNil(tracker.station("WELD")?.operation)
        XCTAssertEqual(tracker.vehicle("V1")?.currentStation, "PAINT")

        // The next vehicle replaces the id: no abort, V1 is not moved back.
        let next = tracker.feed(Self.weldAndHold("V2", start: 30))
        XCTAssertTrue(next.aborted.isEmpty)
        XCTAssertTrue(next.issues.isEmpty, "\(next.issues)")
        XCTAssertEqual(next.completed.map(\.vehicleId), ["V2"])
        XCTAssertEqual(tracker.vehicle("V1")?.currentStation, "PAINT")
    }

    func testFaultInTheMiddleOfAHoldIsNoNewOperation() {
        var tracker = Tracker(config: F.config())
        _ = tracker.feed(Self.weldAndHold("V1", start: 0, result: 1))
        _ = tracker.feed([F.poll("PAINT", 12, ["vehicleId": .string("V1"), "cycleDone": .bool(false)])])
        let out = tracker.feed([
            // The fault drops cycleDone; the end of the fault resumes running and sets it again.
            F.poll("WELD", 14, ["state": .int(2), "cycleDone": .bool(false)]),
            F.poll("WELD", 16, ["state": .int(1)]),
            F.poll("WELD", 17, ["cycleDone": .bool(true)]),
            F.poll("PAINT", 17, [:]),
            F.poll("WELD", 18, ["state": .int(0)]),
            // A second fault, back to idle, and the register blank for a moment before the id returns.
            F.poll("WELD", 19, ["state": .int(2)]),
            F.poll("WELD", 20, ["vehicleId": .string("")]),
            F.poll("WELD", 21, ["state": .int(0)]),
            F.poll("WELD", 22, ["vehicleId": .string("V1")]),
            F.poll("WELD", 23, ["cycleDone": .bool(false)]),
            F.poll("WELD", 24, ["cycleDone": .bool(true), "state": .int(0)]),
            F.poll("PAINT", 24, [:]),
        ])
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
        XCTAssertTrue(out.started.isEmpty, "\(out.started)")
        XCTAssertTrue(out.completed.isEmpty, "\(out.completed)")
        XCTAssertTrue(out.aborted.isEmpty)
        XCTAssertEqual(tracker.vehicle("V1")?.currentStation, "PAINT", "a blank and the id again do not move the vehicle back")
        XCTAssertEqual(tracker.station("PAINT")?.operation?.vehicleId, "V1")
    }

    func testFaultInTheMiddleOfACycleResumesTheSameOperation() {
        var tracker = Tracker(config: F.config())
        let out = tracker.feed([
            F.poll("WELD", 0, ["vehicleId": .string("V1"), "cycleDone": .bool(false), "state": .int(1)]),
            F.poll("WELD", 4, ["state": .int(2)]),
            F.poll("WELD", 6, ["state": .int(1)]),
            F.poll("WELD", 12, ["cycleDone": .bool(true), "result": .int(1), "state": .int(0)]),
        ])
        XCTAssertEqual(out.started.count, 1)
        XCTAssertEqual(out.completed.map(\.startedAt), [F.t(0)])
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
    }

    func testParallelStationLeavesTheOtherShowingTheVehicleBefore() {
        var config = F.config()
        var second = config.stations[1]
        second.id = "WELD2"
        config.stations.insert(second, at: 2)
        var tracker = Tracker(config: config)
        var polls = Self.weldAndHold("V1", start: 0)
        // V2 and V3 take WELD2; WELD keeps V1 for minutes while V1, V2 and V3 go on.
        for (n, vehicle) in ["V2", "V3"].enumerated() {
            let start = 12 + Double(n) * 30
            polls += [
                F.poll("WELD2", start, ["vehicleId": .string(vehicle), "cycleDone": .bool(false), "state": .int(1)]),
                F.poll("WELD2", start + 10, ["cycleDone": .bool(true), "result": .int(1), "state": .int(0)]),
                F.poll("WELD", start + 10, [:]),
            ]
        }
        polls += F.pass("V1", at: "PAINT", start: 12)
        polls += F.pass("V1", at: "ASSY", start: 30)
        polls += F.pass("V2", at: "PAINT", start: 42)
        polls += F.pass("V1", at: "INSP", start: 50, values: ["result": .int(1)])
        polls += [F.poll("WELD", 100, ["state": .int(2)]), F.poll("WELD", 110, ["state": .int(0)])]
        let out = tracker.feed(Self.inTimeOrder(polls))
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
        XCTAssertEqual(out.completed.filter { $0.vehicleId == "V1" }.map(\.station), ["WELD", "PAINT", "ASSY", "INSP"])
        XCTAssertEqual(tracker.vehicle("V1")?.status, .completed)
        XCTAssertNil(tracker.vehicle("V1")?.currentStation, "finished; WELD only still shows it")
        XCTAssertEqual(tracker.station("WELD")?.currentVehicle, "V1")
    }

    func testReworkInPlaceOfAHeldVehicleIsARepeatWhenTheCycleCompletes() {
        var tracker = Tracker(config: F.config())
        _ = tracker.feed(Self.weldAndHold("V1", start: 0, result: 2))
        // The operator starts the cell again on the vehicle standing there.
        var out = tracker.feed([
            F.poll("WELD", 14, ["state": .int(1), "cycleDone": .bool(false)]),
        ])
        XCTAssertEqual(out.started.map(\.attempt), [2], "the machine started: an operation")
        XCTAssertTrue(out.issues.isEmpty, "no repeat before the cycle completes: \(out.issues)")
        out = tracker.feed([F.poll("WELD", 24, ["cycleDone": .bool(true), "result": .int(1), "state": .int(0)])])
        XCTAssertEqual(out.issues.map(\.kind), [.repeated])
        XCTAssertEqual(out.issues.first?.at, F.t(24))
        XCTAssertEqual(out.issues.first?.operationId, out.completed.first?.id)
        XCTAssertEqual(out.completed.map(\.attempt), [2])
        XCTAssertEqual(out.completed.first?.startedAt, F.t(14))
    }

    func testMachineStartWhileTheHeldVehicleIsWorkedElsewhereIsNoRework() {
        var tracker = Tracker(config: F.config())
        var polls = Self.weldAndHold("V1", start: 0)
        polls += [F.poll("PAINT", 12, ["vehicleId": .string("V1"), "cycleDone": .bool(false)])]
        // WELD starts on the next body before its PLC has the new id.
        polls += [F.poll("WELD", 13, ["state": .int(1), "cycleDone": .bool(false)])]
        for t in [14.0, 15, 16, 17] { polls += [F.poll("WELD", t, [:]), F.poll("PAINT", t, [:])] }
        polls += [F.poll("WELD", 18, ["vehicleId": .string("V2")])]
        polls += [F.poll("WELD", 28, ["cycleDone": .bool(true), "result": .int(1), "state": .int(0)])]
        let out = tracker.feed(polls)
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
        XCTAssertTrue(out.aborted.isEmpty, "\(out.aborted)")
        XCTAssertEqual(out.started.map(\.vehicleId), ["V1", "V1", "V2"], "WELD's V1, PAINT's V1, then V2")
        XCTAssertEqual(out.completed.map(\.vehicleId), ["V1", "V2"])
    }

    func testReworkStartedAndNeverCompletedIsNoRepeat() {
        var tracker = Tracker(config: F.config())
        _ = tracker.feed(Self.weldAndHold("V1", start: 0))
        let out = tracker.feed([
            F.poll("WELD", 14, ["state": .int(1), "cycleDone": .bool(false)]),
            F.poll("WELD", 16, ["state": .int(0)]),
            F.poll("WELD", 30, ["vehicleId": .string("V2"), "state": .int(1)]),
        ])
        XCTAssertEqual(out.aborted.map(\.vehicleId), ["V1"])
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
    }

    func testVehicleComingBackAfterAnotherIsReworkAndARepeatOnCompletion() {
        var tracker = Tracker(config: F.config())
        _ = tracker.feed(Self.weldAndHold("V1", start: 0))
        _ = tracker.feed(Self.weldAndHold("V2", start: 20))
        let out = tracker.feed(Self.weldAndHold("V1", start: 40))
        XCTAssertEqual(out.started.map(\.attempt), [2])
        XCTAssertEqual(out.issues.map(\.kind), [.repeated])
        XCTAssertEqual(out.issues.first?.at, F.t(50))
    }

    func testOneIdWorkedAtTwoStationsIsADuplicate() {
        var tracker = Tracker(config: F.config())
        var polls = Self.weldAndHold("V1", start: 0)
        // V1 painted (WELD keeps showing it: no duplicate) while another body with the same id is
        // worked at ASSY.
        polls += [F.poll("PAINT", 12, ["vehicleId": .string("V1"), "cycleDone": .bool(false)])]
        polls += [F.poll("ASSY", 13, ["vehicleId": .string("V1"), "cycleCount": .int(7)])]
        for t in [14.0, 15, 16] {
            polls += [F.poll("WELD", t, [:]), F.poll("PAINT", t, [:]), F.poll("ASSY", t, [:])]
        }
        let out = tracker.feed(polls)
        let duplicates = out.issues.filter { $0.kind == .duplicateId }
        XCTAssertEqual(duplicates.count, 1, "\(out.issues)")
        XCTAssertEqual(duplicates.first?.station, "ASSY")
        XCTAssertEqual(duplicates.first?.expected, "PAINT", "not WELD, which only holds the id")
        XCTAssertEqual(duplicates.first?.at, F.t(15))
    }

    func testHeldIdAtAStationWithoutStateNeedsAFaultFreeCycle() {
        var config = F.config()
        config.stations[2].signals.append(SignalConfig(name: "faultCode", role: .faultCode, type: .uint16))
        var tracker = Tracker(config: config)
        _ = tracker.feed(Self.paintAndHold("V1", start: 0))
        // A fault code, cycleDone re-sent after it, the id blank and back: nothing new.
        var out = tracker.feed([
            F.poll("PAINT", 12, ["faultCode": .int(5), "cycleDone": .bool(false), "vehicleId": .string("")]),
            F.poll("PAINT", 14, ["faultCode": .int(0), "vehicleId": .string("V1")]),
            F.poll("PAINT", 15, ["cycleDone": .bool(true)]),
        ])
        XCTAssertTrue(out.started.isEmpty, "\(out.started)")
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
        // Without a fault since its operation, a cycle on the vehicle standing there is all a
        // stateless PLC shows of rework.
        _ = tracker.feed(Self.paintAndHold("V2", start: 40))
        out = tracker.feed([
            F.poll("PAINT", 60, ["cycleDone": .bool(false)]),
            F.poll("PAINT", 70, ["cycleDone": .bool(true)]),
        ])
        XCTAssertEqual(out.completed.map(\.attempt), [2])
        XCTAssertEqual(out.issues.map(\.kind), [.repeated])
    }

    func testStationWithoutCycleSignalThatKeepsTheIdEndsWhenTheVehicleStartsLater() {
        var config = F.config()
        config.stations[2].signals.removeAll { $0.role == .cycleComplete }
        var tracker = Tracker(config: config)
        _ = tracker.feed(F.pass("N1", at: "WELD", start: 0))
        var polls: [StationPoll] = [
            F.poll("PAINT", 20, ["vehicleId": .string("N1")]),
            F.poll("PAINT", 25, ["filmThickness": .double(101)]),
        ]
        polls += F.pass("N1", at: "ASSY", start: 30)
        polls += [F.poll("PAINT", 33, [:]), F.poll("ASSY", 33, [:]), F.poll("PAINT", 35, [:]), F.poll("ASSY", 35, [:])]
        let out = tracker.feed(Self.inTimeOrder(polls))
        XCTAssertTrue(out.issues.isEmpty, "no skip, no duplicate: \(out.issues)")
        XCTAssertEqual(out.completed.map(\.station), ["PAINT", "ASSY"])
        XCTAssertEqual(out.completed.first?.completedAt, F.t(30))
        XCTAssertTrue(out.aborted.isEmpty)
    }

    func testHeldVehicleAfterARestartFaultsWithoutAnOperation() {
        var tracker = Tracker(config: F.config())
        _ = tracker.feed(Self.weldAndHold("R1", start: 0))
        var restored = Tracker(config: F.config(), snapshot: tracker.snapshot())
        XCTAssertEqual(restored.station("WELD")?.currentVehicle, "R1")
        let out = restored.feed([
            F.poll("WELD", 60, ["vehicleId": .string("R1"), "cycleDone": .bool(true), "state": .int(0)]),
            F.poll("WELD", 61, ["state": .int(2), "cycleDone": .bool(false)]),
            F.poll("WELD", 63, ["state": .int(1), "cycleDone": .bool(true)]),
            F.poll("WELD", 64, ["state": .int(0)]),
        ])
        XCTAssertTrue(out.started.isEmpty, "\(out.started)")
        XCTAssertTrue(out.issues.isEmpty, "\(out.issues)")
    }
}
