import Foundation
import Orders
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage
import Tracking

/// Tracking and quality on the pipeline thread: turns polls into operations, vehicles, defects,
/// alerts, KPIs and anomaly scores, persists them with their events, and answers the API's
/// commands (`PlantBackend`).
// @unchecked Sendable: `tracker`, `quality`, the refresh/save times and `nextNoteId` are touched only on the pipeline thread (stage calls, and commands through `pipeline.perform`); `kpiDocument` is set before the pipeline starts; what other threads read is in `facts`.
public final class PlantStage: PipelineStage, PlantBackend, @unchecked Sendable {
    var tracker: Tracker
    var quality: QualityEngine
    /// Orders and build specs (PlantStage+Orders.swift); idle without models and orders.
    var orders: OrderBook
    var ordersActive: Bool
    /// Per build spec and station: what the spec changes there (nil: nothing).
    var operationSpecs: [String: OperationSpec?] = [:]
    /// VINs whose first sighting was checked (invalid VIN, no order); bounded.
    var checkedVehicles = Set<String>()
    /// Whether any station has an energy meter or power signal (operations then get `energyKWh`).
    let meteredOperations: Bool
    /// The current shift and its date for the plan on the KPIs.
    let planDates = PlanDates()
    /// Key parts in the vehicles (PlantStage+Parts.swift).
    var parts: PartBook
    /// Whether the end of a vehicle's route is watched (missing parts, the quality gate).
    let watchesRouteEnd: Bool
    /// Vehicles whose end of route was checked (bounded, like `checkedVehicles`).
    var finishedRoutes = Set<String>()
    let config: PlantConfig
    let eventLog: EventLog
    private let samples: SampleStore?
    /// The sample store's inputs of the poll being handled (kept for its capacity).
    private var sampleInputs: [SampleInput] = []
    weak var pipeline: Pipeline?
    let logger: Logger

    /// What the API reads from other threads, refreshed on ticks and after commands.
    private struct Facts {
        var wipByStation: [String: Int] = [:]
        var kpiByStation: [String: StationKPI] = [:]
        var plantKPIs: PlantKPIs?
        var anomalyList: [AnomalyEntry] = []
        var equipment: [EquipmentHealth] = []
    }

    private let facts = Locked(Facts())
    /// Encodes and writes the periodic saves off the pipeline and storage threads (``saveCounters(into:)``).
    private let saver = DispatchQueue(label: "mes.plant.save", qos: .utility)
    private let pendingSave = Locked<(ShiftCounters, LearnedState)?>(nil)
    private var lastFacts: Date?
    /// Pipeline time (of the ticks) of the last save of the shift counters.
    private var countersSavedAt: Date?
    /// How often (pipeline time) the shift counters are saved; also on stop.
    static let countersSaveInterval: TimeInterval = 30
    /// Writes the KPI document an ended shift is stored as (the API's `GET /api/kpis` shape);
    /// set by the assembly before the pipeline starts (PlantStage+Shifts.swift).
    public var kpiDocument: (@Sendable (PlantKPIs) -> JSON)?
    /// The id of the next handover note (read from storage at the first note).
    var nextNoteId: Int64?

    /// Loads the tracker's snapshot, quality's open alerts and defects, and the saved shift
    /// counters from storage.
    public init(config: PlantConfig, eventLog: EventLog, samples: SampleStore?, pipeline: Pipeline, logger: Logger) throws {
        self.eventLog = eventLog
        self.samples = samples
        self.pipeline = pipeline
        self.logger = logger.named("plant")
        var engine = try QualityEngine(config: config)
        let (snapshot, counters, storedOrders, learned) = try eventLog.read { db -> (TrackerSnapshot, Result<ShiftCounters?, any Error>, [Order], Result<LearnedState?, any Error>) in
            try QualityStore.restore(&engine, from: db)
            try FloorStore.restore(&engine, from: db)
            return (try GenealogyStore.loadSnapshot(db), Result { try QualityStore.shiftCounters(db) }, try OrderStore.loadAll(db),
                    Result { try EnergyStore.learnedState(db) })
        }
        let energyStarts = try eventLog.read { try EnergyStore.operationStarts($0) }
        let storedParts = try eventLog.read { try PartStore.loadCurrent($0) }
        parts = PartBook(current: storedParts.current, nextId: storedParts.nextId)
        watchesRouteEnd = config.gate.holdOnOpenDefects || config.models.values.contains { !$0.parts.isEmpty }
            || config.options.values.contains { !$0.parts.isEmpty }
        meteredOperations = config.stations.contains { $0.hasEnergy }
        self.config = config
        orders = OrderBook(config: config, orders: storedOrders)
        ordersActive = config.hasModels || config.checksLineVINs || !storedOrders.isEmpty
        switch counters {
        case .success(let saved?):
            engine.resume(saved)
            self.logger.info("saved counters of shift \(saved.shiftName) from \(Timestamp.format(saved.shiftStart)) (taken at \(Timestamp.format(saved.takenAt))): the shift's KPIs go on from them if the first input falls in that shift")
        case .success(nil):
            break
        case .failure(let error):
            self.logger.warning("the saved shift counters cannot be read (\(error)): this shift's KPIs start from now")
        }
        switch learned {
        case .success(let saved?):
            engine.restoreLearned(saved)
            engine.restoreOperationEnergy(energyStarts)
            let count = saved.learnedCount
            self.logger.info("learned state restored: \(count.series) anomaly baselines, \(count.units) equipment baselines, \(energyStarts.count) operations in progress with their energy at start")
        case .success(nil):
            break
        case .failure(let error):
            self.logger.warning("the saved anomaly and equipment baselines cannot be read (\(error)): they are learned anew")
        }
        tracker = Tracker(config: config, snapshot: snapshot)
        quality = engine
        restoreOrderRoutes()
        if !snapshot.vehicles.isEmpty {
            self.logger.info("restored \(snapshot.vehicles.count) vehicles and \(snapshot.operationsInProgress.count) operations in progress")
        }
        refreshFacts(force: true)
    }

    // MARK: Pipeline stage

    public func poll(_ poll: StationPoll, into emission: inout Emission) {
        if let samples {
            // One buffer for every poll's inputs (the store keeps none of them).
            sampleInputs.removeAll(keepingCapacity: true)
            for reading in poll.readings where reading.quality != .stale {
                sampleInputs.append(SampleInput(station: poll.station, signal: reading.name, value: Self.sampleValue(reading.value),
                                                quality: reading.quality.rawValue, time: poll.time))
            }
            _ = samples.record(sampleInputs)
        }
        let before = watchesRouteEnd ? statusesAt(poll.station) : []
        var tracking = tracker.process(poll)
        var outputs: [QualityOutput] = []
        quality.process(.poll(poll), into: &outputs)
        // After the poll's energy is counted: operations that start or complete in it.
        if meteredOperations && !tracking.isEmpty { quality.meterOperations(&tracking) }
        var partUpdates: [PartUpdate] = []
        if ordersActive {
            var updates: [OrderUpdate] = []
            followOrders(tracking, quality: &outputs, orders: &updates)
            let gate = followParts(tracking, before: before, quality: &outputs, parts: &partUpdates)
            if !gate.isEmpty {
                updates += followVehicleCommand(gate)
                tracking += gate
            }
            emit(tracking: tracking, quality: outputs, orders: updates, parts: partUpdates, into: &emission)
            return
        }
        for output in tracking {
            if let input = QualityInput(output) { quality.process(input, into: &outputs) }
        }
        tracking += followParts(tracking, before: before, quality: &outputs, parts: &partUpdates)
        emit(tracking: tracking, quality: outputs, parts: partUpdates, into: &emission)
    }

    public func connection(_ change: ConnectionChange, into emission: inout Emission) {
        var outputs: [QualityOutput] = []
        quality.process(.connection(change), into: &outputs)
        emit(tracking: [], quality: outputs, into: &emission)
    }

    public func tick(_ now: Date, into emission: inout Emission) {
        var outputs: [QualityOutput] = []
        quality.process(.tick(now), into: &outputs)
        emit(tracking: [], quality: outputs, into: &emission)
        refreshFacts(force: false, now: now)
        if let last = countersSavedAt, now >= last, now.timeIntervalSince(last) < Self.countersSaveInterval { return }
        // Timed by the ticks' clock (the engine's may run ahead with a station's timestamps).
        countersSavedAt = now
        saveCounters(into: &emission)
    }

    public func finish(into emission: inout Emission) {
        // The last save goes with the last commit; a periodic one still being encoded goes first.
        saver.sync {}
        guard let counters = quality.shiftCounters else { return }
        let learned = quality.learnedState
        emission.write { db in
            try QualityStore.save(counters, to: db)
            try EnergyStore.save(learned, at: counters.takenAt, to: db)
        }
    }

    /// Saves the shift counters and the learned state as they are now. Both are snapshots (a
    /// restart goes on from the last one saved), so they need not share a commit with the events:
    /// they are encoded on ``saver`` and written with a commit of their own. Encoding the learned
    /// state of a large plant takes long enough that, on the storage thread, every commit (and
    /// so every event on its way to the dashboards) would wait for it (README "How big one node goes").
    /// A save still waiting when the next is due is replaced by it.
    private func saveCounters(into emission: inout Emission) {
        guard let counters = quality.shiftCounters else { return }
        let learned = quality.learnedState
        let first = pendingSave.withLock { pending in
            defer { pending = (counters, learned) }
            return pending == nil
        }
        guard first else { return }
        let pendingSave = self.pendingSave, eventLog = self.eventLog, logger = self.logger
        saver.async {
            guard let (counters, learned) = pendingSave.withLock({ pending in defer { pending = nil }; return pending }) else { return }
            do {
                let countersText = try counters.encoded()
                let learnedText = try learned.encoded()
                _ = eventLog.enqueue({ db in
                    try QualityStore.save(counters, encoded: countersText, to: db)
                    try EnergyStore.save(encoded: learnedText, at: counters.takenAt, to: db)
                }, completion: { outcome in
                    if case .failed(let error) = outcome { logger.warning("the shift counters and learned state were not saved (the next save is in 30 s): \(error)") }
                })
            } catch {
                logger.warning("the shift counters and learned state cannot be encoded (the next save is in 30 s): \(error)")
            }
        }
    }

    static func sampleValue(_ value: SignalValue?) -> SampleValue {
        switch value {
        case .none: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .integer(i)
        case .double(let d): return .number(d)
        case .string(let s): return .text(s)
        }
    }

    func emit(tracking: [TrackingOutput], quality outputs: [QualityOutput], orders updates: [OrderUpdate] = [],
              parts partUpdates: [PartUpdate] = [], into emission: inout Emission) {
        if quality.hasEndedShifts { storeEndedShifts(into: &emission) }
        for output in tracking where output.eventType == "operation" || output.eventType == "vehicle" {
            emission.event(output.eventType, station: output.station, time: output.time, output.json)
        }
        if !updates.isEmpty { emitOrders(updates, into: &emission) }
        emitParts(partUpdates, tracking: tracking, into: &emission)
        for output in outputs {
            guard let type = output.eventType else { continue }
            let station: String?
            switch output {
            case .defect(let d, _): station = d.station
            case .alert(let a, _): station = a.station
            case .stationKPI(let k, _, _): station = k.id
            case .anomaly(let a): station = a.station
            case .andon(let call, _): station = call.station
            default: station = nil
            }
            emission.event(type, station: station, time: Self.time(of: output) ?? Date(timeIntervalSince1970: 0), output.payload)
        }
        if !tracking.isEmpty {
            if meteredOperations && EnergyStore.hasEnergy(tracking) {
                emission.write { db in
                    try GenealogyStore.apply(tracking, to: db)
                    try EnergyStore.apply(tracking, to: db)
                }
            } else {
                emission.write { db in try GenealogyStore.apply(tracking, to: db) }
            }
        }
        if !outputs.isEmpty {
            emission.write { db in try QualityStore.apply(outputs, to: db) }
        }
    }

    static func time(of output: QualityOutput) -> Date? {
        switch output {
        case .defect(let d, .overdue): return d.assignment?.dueAt ?? d.raisedAt
        case .alert(let a, .overdue): return a.assignment?.dueAt ?? a.announcedAt
        case .defect(let d, _): return d.resolvedAt ?? d.raisedAt
        case .alert(let a, _): return a.announcedAt
        case .stationKPI(_, _, let t), .lineKPI(_, _, let t): return t
        case .anomaly(let a): return a.since
        case .audit(let entry): return entry.t
        case .andon(let call, let change): return call.time(of: change)
        case .downtime(let d): return d.end ?? d.start
        }
    }

    /// Refreshes the API's facts at most every 500 ms of pipeline time (or now when forced).
    func refreshFacts(force: Bool, now: Date? = nil) {
        if !force, let now, let last = lastFacts, now.timeIntervalSince(last) < 0.5, now >= last { return }
        lastFacts = now
        let state = tracker.state()
        var wip: [String: Int] = [:]
        for station in state.stations { wip[station.station] = station.wip }
        var kpis = PlantKPIs(quality: quality.kpis(), lineWIP: state.lineWIP, inProcess: state.inProcess, onHold: state.onHold)
        if ordersActive { kpis.plan = shiftPlan(at: now ?? lastFacts) }
        var byStation: [String: StationKPI] = [:]
        for entry in kpis.quality.stations { byStation[entry.id] = entry }
        let anomalies = quality.anomalies()
        facts.set(Facts(wipByStation: wip, kpiByStation: byStation, plantKPIs: kpis, anomalyList: anomalies,
                        equipment: quality.equipment()))
    }

    // MARK: PlantBackend (any thread)

    public func wip(station: String) -> Int {
        facts.withLock { $0.wipByStation[station] ?? 0 }
    }

    public func kpi(station: String) -> StationKPI? {
        facts.withLock { $0.kpiByStation[station] }
    }

    public func kpis() -> PlantKPIs {
        facts.withLock { $0.plantKPIs! } // set by the init's refreshFacts
    }

    public func anomalies() -> [AnomalyEntry] {
        facts.withLock { $0.anomalyList }
    }

    public func equipment() -> [EquipmentHealth] {
        facts.withLock { $0.equipment }
    }

    /// Runs a command on the pipeline thread, commits its outputs and waits for the commit.
    func command(_ body: @escaping @Sendable (PlantStage, Date) throws -> (tracking: [TrackingOutput], quality: [QualityOutput], answer: JSON)) throws -> JSON {
        guard let pipeline else { throw EventLogError.closed }
        let answer: JSON = try pipeline.perform { [self] in
            let now = pipeline.commandTime
            let result = try body(self, now)
            var emission = Emission()
            // Hold, release and scrap move the vehicle's order along.
            let updates = ordersActive ? followVehicleCommand(result.tracking) : []
            emit(tracking: result.tracking, quality: result.quality, orders: updates, into: &emission)
            pipeline.commit(emission)
            refreshFacts(force: true, now: now)
            return result.answer
        }
        try eventLog.flush(timeout: 10)
        return answer
    }

    public func acknowledgeAlert(id: Int64, comment: String?, by principal: Principal) throws -> JSON {
        try command { stage, now in
            let outputs = try stage.quality.acknowledge(alertId: id, by: principal, comment: comment, at: now)
            return ([], outputs, stage.quality.alert(id: id)?.json ?? .null)
        }
    }

    public func shelveAlert(id: Int64, minutes: Double, reason: String?, by principal: Principal) throws -> JSON {
        try command { stage, now in
            let outputs = try stage.quality.shelve(alertId: id, minutes: minutes, reason: reason, by: principal, at: now)
            return ([], outputs, stage.quality.alert(id: id)?.json ?? .null)
        }
    }

    public func raiseDefect(vehicleId: String, station: String?, code: String, description: String, severity: Severity,
                     by principal: Principal) throws -> JSON {
        try command { stage, now in
            let outputs = try stage.quality.raiseDefect(vehicleId: vehicleId, station: station, code: code, description: description,
                                                        severity: severity, user: principal, at: now)
            let defect = outputs.compactMap { output -> JSON? in
                if case .defect(let d, _) = output { return d.json }
                return nil
            }.first ?? .null
            return ([], outputs, defect)
        }
    }

    public func resolveDefect(id: Int64, comment: String?, by principal: Principal) throws -> JSON {
        try command { stage, now in
            let outputs = try stage.quality.resolveDefect(id: id, comment: comment, user: principal, at: now)
            let defect = outputs.compactMap { output -> JSON? in
                if case .defect(let d, _) = output { return d.json }
                return nil
            }.first ?? .null
            return ([], outputs, defect)
        }
    }

    public func assignAlert(id: Int64, owner: String, dueAt: Date?, by principal: Principal) throws -> JSON {
        try command { stage, now in
            let outputs = try stage.quality.assignAlert(id: id, owner: owner, dueAt: dueAt, by: principal, at: now)
            return ([], outputs, stage.quality.alert(id: id)?.json ?? .null)
        }
    }

    public func assignDefect(id: Int64, owner: String, dueAt: Date?, by principal: Principal) throws -> JSON {
        try command { stage, now in
            let outputs = try stage.quality.assignDefect(id: id, owner: owner, dueAt: dueAt, by: principal, at: now)
            let defect = outputs.compactMap { output -> JSON? in
                if case .defect(let d, _) = output { return d.json }
                return nil
            }.first ?? .null
            return ([], outputs, defect)
        }
    }

    public func vehicle(_ command: VehicleCommand, vehicleId: String, reason: String, by principal: Principal) throws -> JSON {
        if command == .release { return try releaseVehicle(vehicleId: vehicleId, reason: reason, override: false, by: principal) }
        let stored = try eventLog.read { try GenealogyStore.vehicleSummary(id: vehicleId, in: $0) }
        return try self.command { stage, now in
            let outputs: [TrackingOutput]
            switch command {
            case .hold: outputs = try stage.tracker.hold(vehicleId: vehicleId, reason: reason, user: principal.user, at: now, stored: stored)
            case .release: outputs = try stage.tracker.release(vehicleId: vehicleId, reason: reason, user: principal.user, at: now, stored: stored)
            case .scrap: outputs = try stage.tracker.scrap(vehicleId: vehicleId, reason: reason, user: principal.user, at: now, stored: stored)
            }
            let audit = QualityOutput.audit(AuditEntry(t: now, by: principal, action: "vehicle.\(command.rawValue)",
                                                       target: "vehicle:\(vehicleId)", detail: reason))
            var summary = JSON.null
            for case .vehicleChanged(let v) in outputs { summary = v.json }
            if summary.isNull { summary = stage.tracker.vehicle(vehicleId)?.json ?? .null }
            return (outputs, [audit], summary)
        }
    }

    public func audit(_ entry: AuditEntry) {
        eventLog.enqueue { db in _ = try QualityStore.append(entry, to: db) }
    }
}
