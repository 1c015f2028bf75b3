import Foundation
import PlantModel
import Runtime

/// Follows every vehicle through every operation: station cycles, route checks, vehicle status,
/// stamping lot counts.
///
/// Pure and deterministic: no threads, no I/O, no clock; every time comes from the polls (or the
/// `at:` of a command), so one recording always gives the same outputs.
///
/// Not thread-safe: call ``process(_:)`` and the commands from one thread (the pipeline's), and
/// hand ``state()`` (a value) to other threads, e.g. through a `Locked<TrackingState>`.
///
/// Per station, an operation begins when a vehicle id appears (or, with a vehicle present and
/// nothing in progress, the machine starts `running`); it ends on `cycleComplete` (a bool's rising
/// edge or a number's change; at a station without that signal, when the vehicle leaves or starts
/// at a later station of the route). A vehicle that leaves before completion aborts its operation.
///
/// Real PLCs keep the last vehicle id after the cycle until the next vehicle arrives, fault and come
/// back still showing it, and keep showing it while vehicles pass a parallel station; the vehicle
/// is then *held*: shown, with its operation there done. A held vehicle is not worked again until
/// the station shows new work (README "Tracking on real PLC behaviour"): the machine *starts*
/// `running` (from a state other than `fault`; the end of a fault resumes, it starts nothing), or,
/// at a station that reports no state, the vehicle reappears or a cycle completes with no fault
/// since the last operation. A vehicle coming back after another one was shown is worked again
/// right away (rework). A second completed cycle is a `repeated` issue, raised when it completes;
/// `duplicateId` is one id *being worked* (operations in progress) at two stations at once.
public struct Tracker: Sendable {
    public let config: PlantConfig
    public let options: TrackerOptions

    private var stations: [StationRuntime]
    private let stationIndex: [String: Int]
    /// Route processes that have at least one station with a `vehicleId` signal, in route order.
    private let trackedRoute: [String]
    private let firstTrackedIndex: Int?
    /// Stations with a `vehicleId` and no `cycleComplete` signal (their operations end when the vehicle moves on).
    private let withoutCycleSignal: [Int]
    private let lastTrackedIndex: Int?
    private var vehicles: [String: VehicleRuntime] = [:]
    private var lotCounts: [LotKey: Int64] = [:]
    private var finishedOrder: [String] = []
    private var finishedHead = 0
    private var inProcessCount = 0
    private var onHoldCount = 0
    /// Vehicles whose build spec has its own route (by VIN); the others follow the plant's.
    private var vehicleRoutes: [String: RoutePlan] = [:]

    public init(config: PlantConfig, options: TrackerOptions = TrackerOptions()) {
        self.config = config
        self.options = options
        var runtimes: [StationRuntime] = []
        var index: [String: Int] = [:]
        for station in config.stations {
            index[station.id] = runtimes.count
            runtimes.append(StationRuntime(config: station, routeIndex: config.routeIndex(of: station.process)))
        }
        stations = runtimes
        stationIndex = index
        withoutCycleSignal = runtimes.indices.filter { runtimes[$0].slots.vehicleId != nil && runtimes[$0].slots.cycle == nil }
        let trackedProcesses = Set(config.stations.filter(\.tracksVehicles).map(\.process))
        trackedRoute = config.route.filter { trackedProcesses.contains($0) }
        firstTrackedIndex = trackedRoute.first.flatMap { config.routeIndex(of: $0) }
        lastTrackedIndex = trackedRoute.last.flatMap { config.routeIndex(of: $0) }
    }

    /// A tracker that continues from a stored snapshot (after a clean stop or a crash).
    public init(config: PlantConfig, snapshot: TrackerSnapshot, options: TrackerOptions = TrackerOptions()) {
        self.init(config: config, options: options)
        restore(snapshot)
    }

    // MARK: Queries

    /// The current picture of stations and WIP.
    public func state() -> TrackingState {
        TrackingState(stations: stations.map(\.tracking), inProcess: inProcessCount, onHold: onHoldCount)
    }

    /// The station's tracking state, or nil for an unknown station.
    public func station(_ id: String) -> StationTracking? {
        stationIndex[id].map { stations[$0].tracking }
    }

    /// The vehicle shown at a station and the one its operation works (each once, shown first),
    /// with their status; vehicles the tracker does not remember are left out. Reads the station
    /// in place, for every poll (the pipeline's end-of-route watch).
    public func vehicleStatuses(at id: String) -> [(String, VehicleStatus)] {
        guard let index = stationIndex[id] else { return [] }
        let shown = stations[index].currentVehicle, worked = stations[index].operation?.vehicleId
        var out: [(String, VehicleStatus)] = []
        if let shown, let status = vehicles[shown]?.summary.status { out.append((shown, status)) }
        if let worked, worked != shown, let status = vehicles[worked]?.summary.status { out.append((worked, status)) }
        return out
    }

    /// A vehicle the tracker remembers (in process, on hold, or recently finished).
    public func vehicle(_ id: String) -> VehicleSummary? { vehicles[id]?.summary }

    /// Vehicles remembered now.
    public var vehicleCount: Int { vehicles.count }

    /// The state to persist for a restart; what ``init(config:snapshot:options:)`` takes.
    public func snapshot() -> TrackerSnapshot {
        let vs = vehicles.values.sorted { $0.summary.vehicleId < $1.summary.vehicleId }.map {
            TrackerSnapshot.Vehicle(summary: $0.summary, completedByStation: $0.completedByStation,
                                    completedProcesses: $0.completedProcesses)
        }
        let ops = stations.compactMap(\.operation)
        var lots: [LotCount] = []
        for station in stations {
            guard let lot = station.currentLot else { continue }
            lots.append(LotCount(station: station.config.id, lotId: lot,
                                 count: lotCounts[LotKey(station: station.config.id, lot: lot)] ?? 0, delta: 0,
                                 at: station.lastPollAt ?? Date(timeIntervalSince1970: 0)))
        }
        return TrackerSnapshot(vehicles: vs, operationsInProgress: ops, lotCounts: lots)
    }

    // MARK: Routes per vehicle

    /// Gives a vehicle its own route (a build spec's processes, in plant route order), or back
    /// the plant's with nil. Route checks and completion follow it from the next operation on.
    public mutating func setRoute(_ route: [String]?, for vehicleId: String) {
        guard let route else {
            vehicleRoutes[vehicleId] = nil
            return
        }
        let tracked = route.filter { trackedRoute.contains($0) }
        vehicleRoutes[vehicleId] = RoutePlan(tracked: tracked, first: tracked.first.flatMap { config.routeIndex(of: $0) },
                                             last: tracked.last.flatMap { config.routeIndex(of: $0) })
    }

    /// The tracked route of a vehicle with its first and last route index.
    private func plan(_ vehicleId: String) -> RoutePlan {
        if !vehicleRoutes.isEmpty, let plan = vehicleRoutes[vehicleId] { return plan }
        return RoutePlan(tracked: trackedRoute, first: firstTrackedIndex, last: lastTrackedIndex)
    }

    // MARK: Polls

    /// Feeds one poll of one station; returns what changed, in order. Unknown stations give nothing.
    ///
    /// Readings without a value (failed reads) keep the signal's last value; a poll may hold only
    /// the signals that changed.
    public mutating func process(_ poll: StationPoll) -> [TrackingOutput] {
        guard let index = stationIndex[poll.station] else { return [] }
        var outputs: [TrackingOutput] = []
        stations[index].absorb(poll.readings)
        stations[index].lastPollAt = poll.time
        if stations[index].slots.vehicleId != nil {
            processVehicleStation(index, at: poll.time, into: &outputs)
        } else {
            processLotStation(index, at: poll.time, into: &outputs)
        }
        return outputs
    }

    private mutating func processVehicleStation(_ index: Int, at time: Date, into outputs: inout [TrackingOutput]) {
        let slots = stations[index].slots
        let vehicleNow = slots.vehicleId.flatMap { StationRuntime.text(of: stations[index].values[$0]) }

        // Cycle completion (edge) and machine start.
        var edge = false
        if let cycleSlot = slots.cycle, let value = stations[index].values[cycleSlot] {
            let previous = stations[index].lastCycle
            if let previous {
                if slots.cycleIsBool {
                    edge = previous.number == 0 && (value.number ?? 0) != 0
                } else {
                    edge = previous != value
                }
            } else if slots.cycleIsBool, stations[index].restoredOperation, (value.number ?? 0) != 0 {
                // First value after a restart: the cycle of the restored operation ended meanwhile.
                edge = true
            }
            stations[index].lastCycle = value
        }
        stations[index].restoredOperation = false
        // The machine state now (nil without a state value).
        let machine = StationRuntime.machineState(code: slots.state.flatMap { stations[index].values[$0]?.integer }, states: slots.states)
        let previousMachine = stations[index].machine
        // A station that reports no state shows a fault only by its fault code.
        let faulted: Bool
        if let machine {
            faulted = machine == .fault
        } else if let slot = slots.faultCode, let code = stations[index].values[slot]?.integer {
            faulted = code != 0
        } else {
            faulted = false
        }
        let startedRunning = machine == .running && previousMachine != nil && previousMachine != .running
        // A start, not the resume after a fault.
        let startedWork = startedRunning && previousMachine != .fault && !stations[index].faulted
        if let machine { stations[index].machine = machine }
        stations[index].faulted = faulted
        if faulted {
            stations[index].freshStart = false
            if stations[index].operation == nil { stations[index].faultSinceOperation = true }
        } else if startedWork {
            stations[index].freshStart = true
        }

        var edgeUsed = false
        if edge, stations[index].operation != nil {
            complete(index, at: time, into: &outputs)
            edgeUsed = true
        }
        if vehicleNow != stations[index].currentVehicle {
            if let old = stations[index].currentVehicle { depart(old, from: index, at: time, into: &outputs) }
            if let new = vehicleNow {
                // A vehicle reappearing where it is done (a register blank for a moment, a fault)
                // is worked again only with new work in sight.
                let newWork = (machine == nil ? !faulted && !stations[index].faultSinceOperation
                    : machine == .running && stations[index].freshStart) && !isWorked(new, awayFrom: index)
                arrive(new, at: index, time: time, newWork: newWork, into: &outputs)
                if edge && !edgeUsed {
                    complete(index, at: time, into: &outputs)
                }
            }
        } else if let vehicle = vehicleNow {
            vehicles[vehicle]?.summary.lastSeenAt = time
            if stations[index].operation == nil && !edgeUsed {
                // A held vehicle: worked again when the machine starts, or when a cycle completes
                // after a start (or, at a station that reports no state, with no fault since). A
                // start while the vehicle is worked elsewhere is on a body the PLC has not named yet.
                let cycled = edge && (machine == nil ? !faulted && !stations[index].faultSinceOperation : stations[index].freshStart)
                if cycled || (startedWork && options.startOnRunning && !isWorked(vehicle, awayFrom: index)) {
                    startOperation(vehicle, at: index, time: time, into: &outputs)
                    if edge { complete(index, at: time, into: &outputs) }
                }
            }
            if let v = vehicles[vehicle], v.presentCount > 1 {
                checkDuplicate(vehicle, at: index, time: time, into: &outputs)
            }
        }
        // Lots consumed while the operation runs: a lot that changes in mid-cycle counts too (the
        // value standing at arrival may still be the previous vehicle's, so it does not).
        for (position, slot) in slots.lots.enumerated() {
            let lot = StationRuntime.text(of: stations[index].values[slot])
            if lot != stations[index].lastLots[position] {
                stations[index].lastLots[position] = lot
                if let lot, stations[index].operation != nil, !stations[index].operation!.lots.contains(lot) {
                    stations[index].operation!.lots.append(lot)
                }
            }
        }
    }

    private mutating func processLotStation(_ index: Int, at time: Date, into outputs: inout [TrackingOutput]) {
        let slots = stations[index].slots
        let stationId = stations[index].config.id
        if let counterSlot = slots.counter, let value = stations[index].values[counterSlot]?.integer {
            if let last = stations[index].lastCounter, value != last {
                let delta = value > last ? value - last : max(value, 0)
                if delta > 0, let lot = stations[index].currentLot {
                    let key = LotKey(station: stationId, lot: lot)
                    let count = (lotCounts[key] ?? 0) + delta
                    lotCounts[key] = count
                    outputs.append(.lotCounted(LotCount(station: stationId, lotId: lot, count: count, delta: delta, at: time)))
                }
            }
            stations[index].lastCounter = value
        }
        if let lotSlot = slots.lots.first {
            let lot = StationRuntime.text(of: stations[index].values[lotSlot])
            if let lot, lot != stations[index].currentLot {
                stations[index].currentLot = lot
                let key = LotKey(station: stationId, lot: lot)
                if lotCounts[key] == nil {
                    lotCounts[key] = 0
                    outputs.append(.lotCounted(LotCount(station: stationId, lotId: lot, count: 0, delta: 0, at: time)))
                }
            }
        }
    }

    // MARK: Vehicle movements

    /// `newWork`: whether the station shows new work, for a vehicle that reappears where it is done.
    private mutating func arrive(_ vehicleId: String, at index: Int, time: Date, newWork: Bool, into outputs: inout [TrackingOutput]) {
        let reappears = stations[index].lastVehicle == vehicleId
        stations[index].currentVehicle = vehicleId
        stations[index].lastVehicle = vehicleId
        let station = stations[index].config
        if vehicles[vehicleId] == nil {
            var runtime = VehicleRuntime(summary: VehicleSummary(vehicleId: vehicleId, status: .inProcess,
                                                                 currentStation: station.id, firstSeenAt: time, lastSeenAt: time))
            let route = plan(vehicleId)
            if let routeIndex = stations[index].routeIndex, let first = route.first, routeIndex > first {
                // First seen mid-route: one issue, and no skip issues for the steps before.
                let earlier = route.tracked.filter { (config.routeIndex(of: $0) ?? 0) < routeIndex }
                runtime.reportedSkips.formUnion(earlier)
                outputs.append(.sequenceIssue(SequenceIssue(
                    kind: .unknownVehicle, vehicleId: vehicleId, station: station.id, process: station.process,
                    expected: route.tracked.first, at: time,
                    message: "vehicle \(vehicleId) first seen at \(station.id) (\(station.process)); the route starts with \(route.tracked.first ?? "?")",
                    operationId: StationRuntime.operationId(station: station.id, at: time))))
            }
            vehicles[vehicleId] = runtime
            inProcessCount += 1
        }
        let shownElsewhere = vehicles[vehicleId]!.presentCount > 0
        let starts = !reappears || newWork || !isDone(vehicleId, at: index)
        vehicles[vehicleId]!.presentCount += 1
        if starts || !shownElsewhere { vehicles[vehicleId]!.summary.currentStation = station.id }
        vehicles[vehicleId]!.summary.lastSeenAt = time
        if starts { startOperation(vehicleId, at: index, time: time, into: &outputs) }
        outputs.append(.vehicleChanged(vehicles[vehicleId]!.summary))
        if vehicles[vehicleId]!.presentCount > 1 {
            checkDuplicate(vehicleId, at: index, time: time, into: &outputs)
        }
    }

    /// Whether another station has an operation of the vehicle in progress.
    private func isWorked(_ vehicleId: String, awayFrom index: Int) -> Bool {
        stations.indices.contains { $0 != index && stations[$0].operation?.vehicleId == vehicleId }
    }

    /// Whether the vehicle completed this station already, or its process while it is past it
    /// (a new operation here is rework).
    private func isDone(_ vehicleId: String, at index: Int) -> Bool {
        guard let vehicle = vehicles[vehicleId], let routeIndex = stations[index].routeIndex else { return false }
        let doneHere = (vehicle.completedByStation[stations[index].config.id] ?? 0) > 0
        let wentBack = vehicle.completedProcesses.contains(stations[index].config.process) && routeIndex < vehicle.summary.lastRouteIndex
        return doneHere || wentBack
    }

    private mutating func depart(_ vehicleId: String, from index: Int, at time: Date, into outputs: inout [TrackingOutput]) {
        if stations[index].operation != nil {
            if stations[index].slots.cycle == nil {
                complete(index, at: time, into: &outputs)
            } else {
                var op = stations[index].operation!
                stations[index].operation = nil
                stations[index].rework = false
                stations[index].freshStart = false
                op.completedAt = nil
                outputs.append(.operationAborted(op))
            }
        }
        stations[index].currentVehicle = nil
        guard var vehicle = vehicles[vehicleId] else { return }
        vehicle.presentCount = max(0, vehicle.presentCount - 1)
        vehicle.summary.lastSeenAt = time
        if vehicle.summary.currentStation == stations[index].config.id {
            vehicle.summary.currentStation = nil
            if vehicle.presentCount > 0 {
                // Still worked elsewhere (duplicate id): point at that station; one only holding
                // the id after its cycle is not where the vehicle is.
                vehicle.summary.currentStation = stations.first { $0.operation?.vehicleId == vehicleId }?.config.id
            }
        }
        vehicles[vehicleId] = vehicle
        outputs.append(.vehicleChanged(vehicle.summary))
        if vehicle.isFinished && vehicle.presentCount == 0 { noteFinished(vehicleId) }
    }

    private mutating func startOperation(_ vehicleId: String, at index: Int, time: Date, into outputs: inout [TrackingOutput]) {
        finishWithoutCycleSignal(vehicleId, before: index, at: time, into: &outputs)
        let station = stations[index].config
        guard var vehicle = vehicles[vehicleId] else { return }
        let opId = StationRuntime.operationId(station: station.id, at: time)
        let attempt = (vehicle.completedByStation[station.id] ?? 0) + 1
        let rework = isDone(vehicleId, at: index)
        stations[index].rework = rework
        stations[index].faultSinceOperation = false
        stations[index].duplicateReported = false
        if let routeIndex = stations[index].routeIndex, !rework {
            let missing = plan(vehicleId).tracked.filter {
                (config.routeIndex(of: $0) ?? 0) < routeIndex && !vehicle.completedProcesses.contains($0)
                    && !vehicle.reportedSkips.contains($0)
            }
            if !missing.isEmpty {
                vehicle.reportedSkips.formUnion(missing)
                outputs.append(.sequenceIssue(SequenceIssue(
                    kind: .skipped, vehicleId: vehicleId, station: station.id, process: station.process,
                    expected: missing.first, at: time,
                    message: "vehicle \(vehicleId) reached \(station.process) at \(station.id) without \(missing.joined(separator: ", "))",
                    operationId: opId)))
            }
        }
        vehicles[vehicleId] = vehicle
        var op = OperationRecord(id: opId, vehicleId: vehicleId, station: station.id, process: station.process,
                                 startedAt: time, attempt: attempt)
        op.operatorName = stations[index].slots.operatorSlot.flatMap { StationRuntime.text(of: stations[index].values[$0]) }
        op.shift = config.shift(at: time)?.shift.name
        stations[index].operation = op
        outputs.append(.operationStarted(op))
    }

    /// A station without `cycleComplete` ends its operation when the vehicle leaves; one whose PLC
    /// keeps the id shows that only by the vehicle starting at a later station of the route.
    private mutating func finishWithoutCycleSignal(_ vehicleId: String, before index: Int, at time: Date,
                                                   into outputs: inout [TrackingOutput]) {
        guard !withoutCycleSignal.isEmpty, let here = stations[index].routeIndex,
              let vehicle = vehicles[vehicleId], vehicle.presentCount > 1 else { return }
        for other in withoutCycleSignal where other != index
            && stations[other].operation?.vehicleId == vehicleId && (stations[other].routeIndex ?? here) < here {
            complete(other, at: time, into: &outputs)
        }
    }

    private mutating func complete(_ index: Int, at time: Date, into outputs: inout [TrackingOutput]) {
        guard var op = stations[index].operation else { return }
        stations[index].operation = nil
        let rework = stations[index].rework
        stations[index].rework = false
        stations[index].freshStart = false
        let runtime = stations[index]
        let slots = runtime.slots
        op.completedAt = time
        if let resultSlot = slots.result {
            if let code = runtime.values[resultSlot]?.integer {
                op.result = slots.okValues.contains(code) ? .ok : .nok
            }
        }
        var measurements: [String: Double] = [:]
        for (name, slot) in slots.measurements {
            if let number = runtime.values[slot]?.number, number.isFinite { measurements[name] = number }
        }
        op.measurements = measurements
        for slot in slots.lots {
            if let lot = runtime.text(slot), !op.lots.contains(lot) { op.lots.append(lot) }
        }
        if let slot = slots.operatorSlot, let name = runtime.text(slot) { op.operatorName = name }
        for part in slots.parts {
            guard let serial = runtime.text(part.serial) else { continue }
            op.parts.append(PartScan(partType: part.type, serial: serial, partNumber: part.number.flatMap { runtime.text($0) }))
        }
        op.shift = config.shift(at: time)?.shift.name
        if rework {
            // A second completed cycle: a repeat (a started one that never completes is none).
            outputs.append(.sequenceIssue(SequenceIssue(
                kind: .repeated, vehicleId: op.vehicleId, station: op.station, process: op.process,
                expected: op.process, at: time,
                message: "vehicle \(op.vehicleId) worked again at \(op.station) (\(op.process)), attempt \(op.attempt)",
                operationId: op.id)))
        }
        outputs.append(.operationCompleted(op))

        guard var vehicle = vehicles[op.vehicleId] else { return }
        vehicle.completedByStation[op.station, default: 0] += 1
        vehicle.completedProcesses.insert(op.process)
        vehicle.summary.lastSeenAt = time
        if let routeIndex = runtime.routeIndex, routeIndex > vehicle.summary.lastRouteIndex {
            vehicle.summary.lastRouteIndex = routeIndex
        }
        if let last = plan(op.vehicleId).last, runtime.routeIndex == last, vehicle.summary.status == .inProcess {
            setStatus(&vehicle, .completed)
        }
        vehicles[op.vehicleId] = vehicle
        outputs.append(.vehicleChanged(vehicle.summary))
    }

    /// One id being worked at two stations at once: operations in progress for it at both, each
    /// station polled past the grace after the later one started (a vehicle the next station shows
    /// before the last one clears is a handover; one held after its cycle is not being worked).
    private mutating func checkDuplicate(_ vehicleId: String, at index: Int, time: Date, into outputs: inout [TrackingOutput]) {
        guard let mine = stations[index].operation, mine.vehicleId == vehicleId else { return }
        for other in stations.indices where other != index {
            guard let theirs = stations[other].operation, theirs.vehicleId == vehicleId else { continue }
            let (later, earlier) = mine.startedAt >= theirs.startedAt ? (index, other) : (other, index)
            guard !stations[later].duplicateReported else { continue }
            let since = max(mine.startedAt, theirs.startedAt)
            let due = since.addingTimeInterval(options.duplicateGraceS)
            guard (stations[later].lastPollAt ?? since) >= due, (stations[earlier].lastPollAt ?? since) >= due else { continue }
            stations[later].duplicateReported = true
            let station = stations[later].config
            outputs.append(.sequenceIssue(SequenceIssue(
                kind: .duplicateId, vehicleId: vehicleId, station: station.id, process: station.process,
                expected: stations[earlier].config.id, at: time,
                message: "vehicle id \(vehicleId) worked at \(station.id) and \(stations[earlier].config.id) at once",
                operationId: stations[later].operation?.id)))
        }
    }

    // MARK: Commands

    /// Puts a vehicle on hold. Refused (409) for a scrapped vehicle or one already on hold.
    ///
    /// `stored` is the vehicle as the store knows it, used when the tracker has forgotten it
    /// (finished long ago); nil and unknown → 404.
    public mutating func hold(vehicleId: String, reason: String, user: String, at time: Date,
                              stored: VehicleSummary? = nil) throws(VehicleCommandError) -> [TrackingOutput] {
        var vehicle = try lookup(vehicleId, stored: stored)
        switch vehicle.summary.status {
        case .hold: throw .conflict(vehicleId: vehicleId, message: "vehicle \(vehicleId) is already on hold")
        case .scrapped: throw .conflict(vehicleId: vehicleId, message: "vehicle \(vehicleId) is scrapped")
        case .inProcess, .completed: break
        }
        vehicle.statusBeforeHold = vehicle.summary.status
        vehicle.summary.holdReason = reason
        return commit(&vehicle, status: .hold)
    }

    /// Releases a vehicle from hold: back to `completed` if its last route step is done, else `in_process`.
    /// Refused (409) unless the vehicle is on hold.
    public mutating func release(vehicleId: String, reason: String, user: String, at time: Date,
                                 stored: VehicleSummary? = nil) throws(VehicleCommandError) -> [TrackingOutput] {
        var vehicle = try lookup(vehicleId, stored: stored)
        guard vehicle.summary.status == .hold else {
            throw .conflict(vehicleId: vehicleId, message: "vehicle \(vehicleId) is not on hold (status \(vehicle.summary.status.rawValue))")
        }
        let finishedRoute = plan(vehicleId).last.map { vehicle.summary.lastRouteIndex >= $0 } ?? false
        let status: VehicleStatus = vehicle.statusBeforeHold == .completed || finishedRoute ? .completed : .inProcess
        vehicle.summary.holdReason = nil
        return commit(&vehicle, status: status)
    }

    /// Scraps a vehicle (final). Refused (409) if it is scrapped already.
    public mutating func scrap(vehicleId: String, reason: String, user: String, at time: Date,
                               stored: VehicleSummary? = nil) throws(VehicleCommandError) -> [TrackingOutput] {
        var vehicle = try lookup(vehicleId, stored: stored)
        guard vehicle.summary.status != .scrapped else {
            throw .conflict(vehicleId: vehicleId, message: "vehicle \(vehicleId) is already scrapped")
        }
        vehicle.summary.holdReason = nil
        return commit(&vehicle, status: .scrapped)
    }

    private mutating func lookup(_ vehicleId: String, stored: VehicleSummary?) throws(VehicleCommandError) -> VehicleRuntime {
        if let vehicle = vehicles[vehicleId] { return vehicle }
        guard let stored, stored.vehicleId == vehicleId else { throw .notFound(vehicleId: vehicleId) }
        let runtime = VehicleRuntime(summary: stored)
        vehicles[vehicleId] = runtime
        countStatus(stored.status, +1)
        return runtime
    }

    /// Status changes by command keep `lastSeenAt` (a sample time): replays stay deterministic.
    private mutating func commit(_ vehicle: inout VehicleRuntime, status: VehicleStatus) -> [TrackingOutput] {
        setStatus(&vehicle, status)
        let id = vehicle.summary.vehicleId
        vehicles[id] = vehicle
        if vehicle.isFinished && vehicle.presentCount == 0 { noteFinished(id) }
        return [.vehicleChanged(vehicle.summary)]
    }

    private mutating func setStatus(_ vehicle: inout VehicleRuntime, _ status: VehicleStatus) {
        countStatus(vehicle.summary.status, -1)
        vehicle.summary.status = status
        countStatus(status, +1)
    }

    private mutating func countStatus(_ status: VehicleStatus, _ delta: Int) {
        switch status {
        case .inProcess: inProcessCount += delta
        case .hold: onHoldCount += delta
        case .completed, .scrapped: break
        }
    }

    /// Remembers finished vehicles in order; forgets the oldest beyond the retention.
    private mutating func noteFinished(_ vehicleId: String) {
        finishedOrder.append(vehicleId)
        while finishedOrder.count - finishedHead > options.retainFinishedVehicles {
            let oldest = finishedOrder[finishedHead]
            finishedHead += 1
            if let v = vehicles[oldest], v.isFinished, v.presentCount == 0, stations.allSatisfy({ $0.operation?.vehicleId != oldest }) {
                vehicles[oldest] = nil
            }
        }
        if finishedHead > 4096 && finishedHead * 2 > finishedOrder.count {
            finishedOrder.removeFirst(finishedHead)
            finishedHead = 0
        }
    }

    // MARK: Restore

    private mutating func restore(_ snapshot: TrackerSnapshot) {
        for stored in snapshot.vehicles {
            var runtime = VehicleRuntime(summary: stored.summary)
            runtime.completedByStation = stored.completedByStation
            runtime.completedProcesses = stored.completedProcesses
            vehicles[stored.summary.vehicleId] = runtime
            countStatus(stored.summary.status, +1)
        }
        // Vehicles standing at a station: present without a new arrival.
        for (id, vehicle) in vehicles {
            guard let station = vehicle.summary.currentStation, let index = stationIndex[station],
                  stations[index].currentVehicle == nil else { continue }
            stations[index].currentVehicle = id
            stations[index].lastVehicle = id
            vehicles[id]!.presentCount = 1
        }
        for op in snapshot.operationsInProgress {
            guard let index = stationIndex[op.station] else { continue }
            if let present = stations[index].currentVehicle, present != op.vehicleId {
                vehicles[present]?.presentCount -= 1
            }
            if stations[index].currentVehicle != op.vehicleId {
                stations[index].currentVehicle = op.vehicleId
                stations[index].lastVehicle = op.vehicleId
                vehicles[op.vehicleId]?.presentCount += 1
            }
            stations[index].rework = isDone(op.vehicleId, at: index)
            stations[index].operation = op
            stations[index].restoredOperation = true
        }
        for count in snapshot.lotCounts {
            lotCounts[LotKey(station: count.station, lot: count.lotId)] = count.count
        }
        let latest = Dictionary(grouping: snapshot.lotCounts, by: \.station).compactMapValues { $0.max { $0.at < $1.at } }
        for (station, count) in latest {
            if let index = stationIndex[station] { stations[index].currentLot = count.lotId }
        }
        let finished = vehicles.values.filter { $0.isFinished && $0.presentCount == 0 }
            .sorted { ($0.summary.lastSeenAt, $0.summary.vehicleId) < ($1.summary.lastSeenAt, $1.summary.vehicleId) }
        for vehicle in finished { noteFinished(vehicle.summary.vehicleId) }
    }
}

// MARK: - Internals

private struct RoutePlan: Sendable {
    var tracked: [String]
    var first: Int?
    var last: Int?
}

private struct LotKey: Hashable {
    var station: String
    var lot: String
}

private struct VehicleRuntime {
    var summary: VehicleSummary
    var completedByStation: [String: Int] = [:]
    var completedProcesses: Set<String> = []
    var reportedSkips: Set<String> = []
    /// Stations reporting this id now (more than one: duplicate id).
    var presentCount = 0
    var statusBeforeHold: VehicleStatus?

    init(summary: VehicleSummary) { self.summary = summary }

    var isFinished: Bool { summary.status == .completed || summary.status == .scrapped }
}

/// Slot numbers (indexes into a station's value cache) of the signals tracking reads. Made once
/// and never changed: a class, so that a poll reading them takes one reference, not a copy of
/// its sets, maps and lists.
private final class SignalSlots: Sendable {
    let vehicleId: Int?
    let cycle: Int?
    let cycleIsBool: Bool
    let result: Int?
    let okValues: Set<Int64>
    let state: Int?
    /// The `states` map, decoded once.
    let states: [Int64: MachineState]
    let faultCode: Int?
    let operatorSlot: Int?
    let measurements: [(String, Int)]
    let lots: [Int]
    let counter: Int?
    /// Key parts: the `partSerial` slot of each part type and its `partNumber` slot, if any.
    let parts: [(type: String, serial: Int, number: Int?)]

    init(_ layout: Layout) {
        vehicleId = layout.vehicleId
        cycle = layout.cycle
        cycleIsBool = layout.cycleIsBool
        result = layout.result
        okValues = layout.okValues
        state = layout.state
        states = layout.states
        faultCode = layout.faultCode
        operatorSlot = layout.operatorSlot
        measurements = layout.measurements
        lots = layout.lots
        counter = layout.counter
        parts = layout.parts
    }

    /// The slots while they are found.
    struct Layout {
        var vehicleId: Int?
        var cycle: Int?
        var cycleIsBool = false
        var result: Int?
        var okValues: Set<Int64> = []
        var state: Int?
        var states: [Int64: MachineState] = [:]
        var faultCode: Int?
        var operatorSlot: Int?
        var measurements: [(String, Int)] = []
        var lots: [Int] = []
        var counter: Int?
        var parts: [(type: String, serial: Int, number: Int?)] = []
    }
}

private struct StationRuntime {
    let config: StationConfig
    let routeIndex: Int?
    let slots: SignalSlots
    let slotByName: [String: Int]
    /// Each slot's signal name where it is the first slot of that name (nil for a later one).
    let firstNames: [String?]
    var values: [SignalValue?]
    var currentVehicle: String?
    /// The last vehicle shown (kept while the id is blank).
    var lastVehicle: String?
    var operation: OperationRecord?
    /// The operation in progress works a vehicle done here already (a repeat once it completes).
    var rework = false
    var restoredOperation = false
    var duplicateReported = false
    var lastCycle: SignalValue?
    /// The last machine state reported (nil: the station reports none).
    var machine: MachineState?
    /// A fault showed at the last poll.
    var faulted = false
    /// The machine started `running` (not resumed from a fault) since the last operation ended.
    var freshStart = false
    /// A fault showed since the last operation ended.
    var faultSinceOperation = false
    var lastPollAt: Date?
    var currentLot: String?
    var lastCounter: Int64?
    /// The last value of each `lotId` signal (vehicle stations), to see changes.
    var lastLots: [String?]

    init(config: StationConfig, routeIndex: Int?) {
        self.config = config
        self.routeIndex = routeIndex
        var byName: [String: Int] = [:]
        var slots = SignalSlots.Layout()
        for (i, signal) in config.signals.enumerated() {
            if byName[signal.name] == nil { byName[signal.name] = i }
            switch signal.role {
            case .vehicleId: if slots.vehicleId == nil { slots.vehicleId = i }
            case .cycleComplete:
                if slots.cycle == nil { slots.cycle = i; slots.cycleIsBool = signal.type == .bool || signal.type == nil }
            case .result: if slots.result == nil { slots.result = i; slots.okValues = Set(signal.okValues) }
            case .state:
                if slots.state == nil {
                    slots.state = i
                    slots.states = signal.states.compactMapValues { MachineState(rawValue: $0) }
                }
            case .operator: if slots.operatorSlot == nil { slots.operatorSlot = i }
            case .measurement: slots.measurements.append((signal.name, i))
            case .lotId: slots.lots.append(i)
            case .counter: if slots.counter == nil { slots.counter = i }
            case .partSerial:
                if let type = signal.partType {
                    let number = config.signals.firstIndex { $0.role == .partNumber && $0.partType == type }
                    slots.parts.append((type, i, number))
                }
            case .faultCode, .partNumber, .andon, .energy, .power, .condition, .none: break
            }
        }
        slots.faultCode = config.signals.firstIndex { $0.role == .faultCode }
        self.slots = SignalSlots(slots)
        self.slotByName = byName
        self.firstNames = config.signals.indices.map { byName[config.signals[$0].name] == $0 ? config.signals[$0].name : nil }
        self.values = Array(repeating: nil, count: config.signals.count)
        self.lastLots = Array(repeating: nil, count: slots.lots.count)
    }

    mutating func absorb(_ readings: [SignalReading]) {
        // Readings come in the signals' order as a rule: the slot after the last one is tried first.
        var next = 0
        for reading in readings {
            guard let value = reading.value else { continue }
            let slot: Int
            if next < firstNames.count, firstNames[next] == reading.name {
                slot = next
            } else if let found = slotByName[reading.name] {
                slot = found
            } else {
                continue
            }
            next = slot + 1
            values[slot] = value
        }
    }

    /// A string signal's text, trimmed of padding; nil when empty or unknown.
    func text(_ slot: Int) -> String? { Self.text(of: values[slot]) }

    /// A value's text, trimmed of padding; nil when empty or no value. (The poll path reads
    /// `stations[i].values[slot]` with it: a method called on `stations[i]` would copy the runtime.)
    static func text(of value: SignalValue?) -> String? {
        guard let value else { return nil }
        let raw: String
        if case .string(let s) = value { raw = s } else { raw = value.text }
        if let last = raw.utf8.last, last == 32 || last == 0 || raw.utf8.first == 32 {
            let trimmed = raw.trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
            return trimmed.isEmpty ? nil : trimmed
        }
        return raw.isEmpty ? nil : raw
    }

    /// The machine state of a state code: the `states` map, else the conventional codes; nil without a code.
    static func machineState(code: Int64?, states: [Int64: MachineState]) -> MachineState? {
        guard let code else { return nil }
        return states[code] ?? MachineState(conventionalCode: code)
    }

    var tracking: StationTracking {
        StationTracking(station: config.id, process: config.process, currentVehicle: currentVehicle,
                        operation: operation, currentLot: currentLot)
    }

    static func operationId(station: String, at time: Date) -> String { "\(station):\(Timestamp.format(time))" }
}
