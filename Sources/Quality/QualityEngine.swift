import Foundation
import PlantModel
import Runtime
import Tracking

/// Defects, KPIs, alerts and anomaly scores of the line, as a pure, deterministic value.
///
/// No threads, no I/O, no clock: time comes only from the inputs (and the `at:` of user actions),
/// so a replay gives the same outputs. Not thread-safe by itself: the pipeline owns it and calls
/// it from one thread (readers take a copy or call the query methods under the owner's lock).
///
/// The engine dispatches each input to the rules that watch it; what they find is kept in three
/// parts: the ``AlertBook`` (open alerts, alert load), the ``DefectBook`` (open defects, Pareto)
/// and the ``ShiftAccounting`` (the shift window and the KPIs over it).
public struct QualityEngine: Sendable {
    public let config: PlantConfig
    public let rules: QualityRules

    private var stations: [StationRuntime]
    private let stationIndex: [String: Int]
    /// The stations' ids in config order.
    private let stationIDs: [String]
    /// Stations of each process (route order of processes is `config.route`).
    private let peers: [String: [Int]]

    private var now: Date?
    private var nextHousekeeping: Date?
    private var lastLineKPI: Date?
    private var previousShift: ShiftKPIs?
    /// Shifts that ended and were not yet taken (``takeEndedShifts()``), oldest first.
    private var endedShifts: [ShiftKPIs] = []

    private var alertBook: AlertBook
    private var defectBook = DefectBook()
    private var accounting: ShiftAccounting
    private var andonBook = AndonBook()
    private var downtimeBook: DowntimeBook
    private var response = ResponseCounters()

    /// `condition` units (README "Energy and equipment health"), in config order, and each
    /// group's members (a unit without a group is its own).
    private var units: [ConditionUnit] = []
    private var unitGroups: [[Int]] = []
    private var unitHealth: [EquipmentHealth] = []
    /// The odometer of an operation's station when it started, by operation id.
    private var energyAtStart: [String: Double] = [:]
    /// Stations whose odometer goes on from the learned state (``restoreLearned(_:)``).
    private var energyRestored: Set<Int> = []

    /// Builds the engine; decodes the config's `alerts` block (errors name its JSON path).
    public init(config: PlantConfig) throws {
        self.init(config: config, rules: try QualityRules.decode(config.alertRules))
    }

    public init(config: PlantConfig, rules: QualityRules) {
        self.config = config
        self.rules = rules
        var index: [String: Int] = [:]
        var peers: [String: [Int]] = [:]
        var runtimes: [StationRuntime] = []
        var units: [ConditionUnit] = []
        var groups: [String: [Int]] = [:]
        for (i, station) in config.stations.enumerated() {
            index[station.id] = i
            peers[station.process, default: []].append(i)
            var runtime = StationRuntime(station, rules: rules)
            for signal in station.signals where signal.role == .condition {
                runtime.conditionUnits.append((signal.name, units.count))
                groups[signal.group ?? "\u{0}\(station.id).\(signal.name)", default: []].append(units.count)
                units.append(ConditionUnit(station: station.id, signal: signal.name, group: signal.group, limits: signal.limits))
            }
            runtimes.append(runtime)
        }
        self.units = units
        var unitGroups = [[Int]](repeating: [], count: units.count)
        for members in groups.values { for u in members { unitGroups[u] = members } }
        self.unitGroups = unitGroups
        unitHealth = units.indices.map { _ in EquipmentHealth.placeholder }
        self.stations = runtimes
        self.stationIndex = index
        stationIDs = config.stations.map(\.id)
        self.peers = peers
        alertBook = AlertBook(rules: rules)
        accounting = ShiftAccounting(config: config)
        downtimeBook = DowntimeBook(catalogue: config.downtimeReasons)
        let ownership = Ownership(config: config)
        if ownership.isActive {
            alertBook.ownership = ownership
            defectBook.ownership = ownership
        }
    }

    // MARK: Inputs

    /// Processes one input; returns what it raised or changed.
    public mutating func process(_ input: QualityInput) -> [QualityOutput] {
        var out: [QualityOutput] = []
        process(input, into: &out)
        return out
    }

    /// Processes one input, appending its outputs to `out` (no allocation when nothing happens).
    public mutating func process(_ input: QualityInput, into out: inout [QualityOutput]) {
        let t = input.time
        advance(to: t, into: &out)
        switch input {
        case .operation(let op): handleOperation(op, into: &out)
        case .sequenceIssue(let issue): handleSequence(issue, into: &out)
        case .poll(let poll): handlePoll(poll, into: &out)
        case .connection(let change): handleConnection(change, into: &out)
        case .tick: housekeeping(at: now ?? t, into: &out)
        case .partIssue(let issue): handlePart(issue, into: &out)
        }
        if let next = nextHousekeeping, let now, now >= next {
            housekeeping(at: now, into: &out)
        }
    }

    private mutating func advance(to t: Date, into out: inout [QualityOutput]) {
        accounting.note(t)
        // Engine time only moves forward; a late input from one station does not move it back.
        let current = max(now ?? t, t)
        now = current
        if let window = accounting.window, current < window.end { return }
        roll(to: current)
    }

    /// Starts a new shift window: counters restart; open alerts and defects go on. The ended
    /// shift's KPIs, taken at its end, wait in ``takeEndedShifts()``.
    private mutating func roll(to t: Date) {
        let first = accounting.window == nil
        if let window = accounting.window {
            // The stations' time up to the shift's end belongs to it; the figures are as at its end.
            let end = min(window.end, t)
            for i in stations.indices { accounting.account(&stations[i], upTo: end) }
            let ended = kpis(at: end)
            previousShift = ended
            if window.name != "off-shift" { endedShifts.append(ended) }
        } else if let saved = accounting.savedCountersEnded(before: t) {
            // Stopped in a shift that ended while the server was down: what was counted is that shift's record.
            endedShifts.append(kpis(of: saved))
        }
        let resumed = accounting.startWindow(at: t)
        downtimeBook.prune(before: t.addingTimeInterval(-DowntimeBook.keep))
        for i in stations.indices { stations[i].resetShift() }
        nextHousekeeping = t
        if let saved = resumed {
            for saved in saved.stations {
                if let si = stationIndex[saved.id] { stations[si].acc.restore(saved) }
            }
            defectBook.startShift(byCode: saved.defectsByCode, byStation: saved.defectsByStation)
            alertBook.startShift(from: accounting.windowStart, floodSeconds: saved.floodSeconds, evaluatedAt: t)
            response = saved.response ?? ResponseCounters()
        } else {
            response = ResponseCounters()
            // Defects raised by hand before the first input count in the first shift.
            if !first { defectBook.startShift(byCode: [:], byStation: [:]) }
            alertBook.startShift(from: accounting.windowStart, floodSeconds: 0, evaluatedAt: accounting.windowStart)
        }
    }

    /// The current shift's counters, to save (nil before the first input).
    public var shiftCounters: ShiftCounters? {
        guard let window = accounting.window, let now else { return nil }
        return ShiftCounters(shiftName: window.name, shiftStart: window.start, shiftEnd: window.end, countedFrom: accounting.windowStart,
                             takenAt: now, stations: stations.map(\.acc.saved), defectsByCode: defectBook.byCode,
                             defectsByStation: defectBook.byStation, floodSeconds: alertBook.floodSeconds, response: response)
    }

    /// Goes on from counters saved before a restart, if the first input falls in the same shift
    /// (same name, start and end); otherwise they are dropped and the shift starts from zero.
    /// Call before the first input.
    public mutating func resume(_ counters: ShiftCounters) {
        accounting.resume(counters)
    }

    // MARK: Operations

    private mutating func handleOperation(_ op: OperationRecord, into out: inout [QualityOutput]) {
        let t = op.completedAt ?? op.startedAt
        let si = stationIndex[op.station]
        let station = si.map { stations[$0].config }
        var good = op.result != .nok
        var outOfSpec: [(String, Double, SpecLimits)] = []
        // A build spec may change the limits of this vehicle's measurements (README "Orders and build specs").
        let specLimits = op.spec?.limits
        for (name, value) in op.measurements.sorted(by: { $0.key < $1.key }) {
            if let limits = specLimits?[name] ?? station?.signal(named: name)?.limits, !limits.contains(value) {
                good = false
                outOfSpec.append((name, value, limits))
            }
        }

        if op.result == .nok {
            newDefect(vehicleId: op.vehicleId, station: op.station, operation: op.id, code: "NOK",
                      description: "\(op.process) at \(op.station) reported NOK (attempt \(op.attempt))",
                      severity: rules.nokSeverity, at: t, by: "system", into: &out)
        }
        for (name, value, limits) in outOfSpec {
            let unit = station?.signal(named: name)?.unit.map { " \($0)" } ?? ""
            let side = limits.low.map { value < $0 } == true ? "below low limit \(format(limits.low!))" : "above high limit \(format(limits.high ?? value))"
            let text = "\(name) \(format(value))\(unit) \(side) at \(op.station)"
            newDefect(vehicleId: op.vehicleId, station: op.station, operation: op.id, code: "OUT_OF_SPEC:\(name)",
                      description: text, severity: rules.outOfSpecSeverity, at: t, by: "system", into: &out)
            raise(key: "quality:\(op.station):\(name)", type: .quality, severity: rules.outOfSpecSeverity, station: op.station,
                  signal: name, vehicleId: op.vehicleId, message: text + " (vehicle \(op.vehicleId))", at: t, into: &out)
        }
        if let station {
            for signal in station.signals where signal.role == .measurement {
                guard let limits = specLimits?[signal.name] ?? signal.limits else { continue }
                if alertBook.hasOpen, let value = op.measurements[signal.name], limits.contains(value) {
                    clear(key: "quality:\(op.station):\(signal.name)", at: t, into: &out)
                }
            }
        }

        guard let si else { return }
        stations[si].acc.count(good: good, firstAttempt: op.attempt <= 1, cycleTime: op.cycleTimeS,
                               ideal: op.spec?.idealCycleTimeS)
        for (name, value) in op.measurements where specLimits?[name] == nil && station?.signal(named: name)?.limits != nil {
            stations[si].acc.capability[name, default: CapabilityAccumulator()].add(value)
        }
        for (name, value) in op.measurements.sorted(by: { $0.key < $1.key }) {
            addMeasurement(station: si, signal: name, value: value, limits: specLimits?[name], at: t, into: &out)
        }
        checkCycleTime(si, cycleTime: op.cycleTimeS, ideal: op.spec?.idealCycleTimeS, at: t, into: &out)
        if op.attempt <= 1 { checkFPY(si, good: good, at: t, into: &out) }
        maybeEmitKPI(si, at: t, into: &out)
    }

    private mutating func checkCycleTime(_ si: Int, cycleTime: Double?, ideal specIdeal: Double? = nil, at t: Date,
                                         into out: inout [QualityOutput]) {
        guard rules.cycleTime.enabled, let ideal = specIdeal ?? stations[si].config.idealCycleTimeS, ideal > 0, let cycleTime else { return }
        let id = stations[si].config.id
        let key = stations[si].keys.cycle
        if cycleTime > rules.cycleTime.factor * ideal {
            stations[si].slowCycles += 1
            if stations[si].slowCycles >= rules.cycleTime.consecutive {
                raise(key: key, type: .kpi, severity: rules.cycleTime.severity, station: id, signal: nil, vehicleId: nil,
                      message: "\(id): \(stations[si].slowCycles) cycles in a row over \(format(rules.cycleTime.factor)) × ideal \(format(ideal)) s (last \(format(cycleTime)) s)",
                      at: t, into: &out)
            }
        } else {
            stations[si].slowCycles = 0
            if cycleTime <= rules.cycleTime.clearFactor * ideal { clear(key: key, at: t, into: &out) }
        }
    }

    private mutating func checkFPY(_ si: Int, good: Bool, at t: Date, into out: inout [QualityOutput]) {
        guard rules.fpy.enabled else { return }
        stations[si].recentFirst.append(good ? 1 : 0)
        let ring = stations[si].recentFirst
        guard ring.count >= rules.fpy.lastN else { return }
        let fpy = ring.mean()
        let id = stations[si].config.id
        let key = stations[si].keys.fpy
        if fpy < rules.fpy.below {
            raise(key: key, type: .kpi, severity: rules.fpy.severity, station: id, signal: nil, vehicleId: nil,
                  message: "\(id): FPY \(format(fpy * 100))% over the last \(ring.count) vehicles (below \(format(rules.fpy.below * 100))%)",
                  at: t, into: &out)
        } else if fpy >= rules.fpy.clearAbove {
            clear(key: key, at: t, into: &out)
        }
    }

    // MARK: Anomalies

    /// `limits`: a build spec's own limits for this value; its baseline is then kept apart from the
    /// station's (series `signal[low…high]`), since a variant with other limits has another target.
    private mutating func addMeasurement(station si: Int, signal name: String, value: Double, limits specLimits: SpecLimits? = nil,
                                         at t: Date, into out: inout [QualityOutput]) {
        guard rules.anomaly.enabled else { return }
        let signal = specLimits.map { "\(name)[\($0.low.map(format) ?? "")…\($0.high.map(format) ?? "")]" } ?? name
        if stations[si].detectors[signal] == nil {
            let limits = specLimits ?? stations[si].config.signal(named: name)?.limits
            stations[si].detectors[signal] = SeriesDetector(limits: limits, baselineN: rules.anomaly.baselineN,
                                                            window: rules.anomaly.window, horizon: rules.anomaly.horizonCycles)
        }
        stations[si].detectors[signal]!.add(value, at: t)
        let group = peers[stations[si].config.process] ?? [si]
        if group.count > 1 {
            // Each member's window figures once, in group order (publishing changes no detector);
            // every member is then compared with all the others' figures.
            var stats: [(mean: Double, sd: Double, count: Int)?] = []
            stats.reserveCapacity(group.count)
            for member in group { stats.append(stations[member].detectors[signal]?.windowStats()) }
            for (k, member) in group.enumerated() {
                guard let own = stats[k] else { continue }
                stations[member].peerHealth[signal] = PeerComparison.health(own: own, peers: stats, skipping: k)
                if member != si { publishAnomaly(member, signal: signal, at: t, into: &out) }
            }
        }
        publishAnomaly(si, signal: signal, at: t, into: &out)
    }

    private func entry(_ si: Int, signal: String) -> AnomalyEntry? {
        guard let d = stations[si].detectors[signal] else { return nil }
        let ownHealth = ((1 - d.score) * 100).rounded() / 100
        let health = min(ownHealth, stations[si].peerHealth[signal].flatMap { $0 } ?? 1)
        var e = AnomalyEntry(station: stations[si].config.id, signal: signal, score: d.score, rule: d.rule, since: d.since,
                             health: health, cyclesToLimit: d.cyclesToLimit)
        e.baseline = d.chart
        return e
    }

    private mutating func publishAnomaly(_ si: Int, signal: String, at t: Date, into out: inout [QualityOutput]) {
        guard let e = entry(si, signal: signal) else { return }
        let last = stations[si].published[signal]
        var changed = last == nil ? (e.score > 0 || e.health < 1) : false
        if let last {
            changed = abs(last.score - e.score) >= 0.05 || (last.score == 0) != (e.score == 0)
                || (e.score > 0 && last.rule != e.rule) || abs(last.health - e.health) >= 0.05
                || (last.cyclesToLimit == nil) != (e.cyclesToLimit == nil)
                || (e.cyclesToLimit != nil && last.cyclesToLimit!.rounded() != e.cyclesToLimit!.rounded())
        }
        if changed {
            stations[si].published[signal] = e
            out.append(.anomaly(e))
        }
        let key = stations[si].keys.anomaly(signal)
        if e.score >= rules.anomaly.above {
            var message = "\(signal) at \(e.station) is abnormal (\(e.rule), score \(format(e.score)))"
            if let c = e.cyclesToLimit { message += "; about \(format(c)) cycles to its spec limit" }
            raise(key: key, type: .anomaly, severity: rules.anomaly.severity, station: e.station, signal: signal,
                  vehicleId: nil, message: message, at: t, into: &out)
        } else if e.score < rules.anomaly.clearBelow, alertBook.isOpen(key) {
            clear(key: key, at: t, into: &out)
        }
    }

    // MARK: Energy

    /// The energy since the station's previous poll, counted in the shift (the part of the interval
    /// inside the window) and as idle when the station was not running.
    private mutating func meterEnergy(_ si: Int, _ poll: StationPoll) {
        let t = poll.time
        let delta = stations[si].energy!.step(poll.readings, at: t)
        let last = stations[si].lastEnergyAt
        stations[si].lastEnergyAt = max(last ?? t, t)
        guard delta > 0 else { return }
        var counted = delta
        let windowStart = accounting.windowStart
        if let last, last < windowStart, t > last {
            counted *= max(0, t.timeIntervalSince(windowStart)) / t.timeIntervalSince(last)
        }
        stations[si].acc.energyKWh += counted
        if stations[si].state != .running { stations[si].acc.idleKWh += counted }
    }

    /// Notes the energy odometer of operations that start and gives completed ones their
    /// `energyKWh` (the station's energy between start and completion). Call with the tracker's
    /// outputs after the poll that made them has been processed.
    public mutating func meterOperations(_ outputs: inout [TrackingOutput]) {
        for i in outputs.indices {
            switch outputs[i] {
            case .operationStarted(var op):
                guard let si = stationIndex[op.station], let energy = stations[si].energy else { continue }
                energyAtStart[op.id] = energy.odometer
                // Stored with the operation's row, for a completion after a restart.
                op.energyStartKWh = energy.odometer
                outputs[i] = .operationStarted(op)
            case .operationCompleted(var op):
                guard let start = energyAtStart.removeValue(forKey: op.id), let si = stationIndex[op.station],
                      let energy = stations[si].energy else { continue }
                op.energyKWh = round6(max(0, energy.odometer - start))
                outputs[i] = .operationCompleted(op)
            case .operationAborted(let op):
                energyAtStart[op.id] = nil
            default: continue
            }
        }
    }

    /// Takes back the odometer at the start of operations in progress (stored with their rows)
    /// after a restart, so their completion gets its `energyKWh`. Only for stations whose
    /// odometer was restored (``restoreLearned(_:)``): on another scale the difference would mean
    /// nothing, and those operations complete without energy. Call after ``restoreLearned(_:)``.
    public mutating func restoreOperationEnergy(_ starts: [(operation: String, station: String, kWh: Double)]) {
        for start in starts {
            guard let si = stationIndex[start.station], energyRestored.contains(si), start.kWh.isFinite else { continue }
            energyAtStart[start.operation] = start.kWh
            stations[si].energy?.raiseOdometer(to: start.kWh)
        }
    }

    // MARK: Equipment health

    private mutating func followCondition(_ si: Int, _ poll: StationPoll, into out: inout [QualityOutput]) {
        let t = poll.time
        let rules = rules.maintenance
        for (name, u) in stations[si].conditionUnits {
            var value: Double?
            for reading in poll.readings where reading.name == name {
                if reading.quality == .good, let v = reading.value?.number, v.isFinite { value = v }
            }
            let closed = units[u].advance(to: t, windowS: rules.windowS)
            if let value { units[u].held = value }
            if let closed {
                units[u].addWindow(closed, at: t, rules: rules)
                evaluateGroup(of: u, at: t, into: &out, alerts: true)
            }
        }
    }

    /// Scores every unit of `u`'s group (a unit's peer score depends on the others) and raises or
    /// clears their `maintenance` alerts.
    private mutating func evaluateGroup(of u: Int, at t: Date, into out: inout [QualityOutput], alerts: Bool) {
        let members = unitGroups[u]
        let drifts = members.compactMap { units[$0].drift }
        let medianDrift = drifts.isEmpty ? nil : SeriesDetector.median(sorted: drifts.sorted())
        for m in members {
            let unit = units[m]
            let others = members.filter { $0 != m }
            var peers: EquipmentHealth.Peers?
            let score = unit.drift.map { HealthScore.of(z: $0) } ?? 0
            if !others.isEmpty {
                let levels = others.compactMap { units[$0].level }.sorted()
                let peerScore: Double
                if let drift = unit.drift, let medianDrift, drifts.count > 1 { peerScore = HealthScore.of(z: drift - medianDrift) } else { peerScore = 0 }
                peers = EquipmentHealth.Peers(n: others.count, median: levels.isEmpty ? nil : SeriesDetector.median(sorted: levels), score: peerScore)
            }
            let health = unit.mean == nil ? 1 : HealthScore.health(score: score, peers: peers?.score, marginUsed: unit.marginUsed)
            let trend = unit.trend()
            let signal = stations[stationIndex[unit.station]!].config.signal(named: unit.signal)
            unitHealth[m] = EquipmentHealth(station: unit.station, signal: unit.signal, group: unit.group, health: health, score: score,
                                            peers: peers, baselineMean: unit.mean, baselineSigma: unit.sigma, baselineN: unit.baselineN,
                                            level: unit.level, trend: trend.perHour, hoursToLimit: trend.hoursToLimit,
                                            limits: unit.limits, unit: signal?.unit, t: unit.recentAt.last)
            guard alerts, rules.maintenance.enabled else { continue }
            let key = "maintenance:\(unit.station):\(unit.signal)"
            let e = unitHealth[m]
            if health < rules.maintenance.below {
                var message = "\(unit.signal) at \(unit.station): health \(format(health))"
                if let level = e.level, let mean = e.baselineMean { message += " (level \(format(level))\(e.unit.map { " \($0)" } ?? ""), baseline \(format(mean)))" }
                if let trend = e.trend { message += ", trend \(trend >= 0 ? "+" : "")\(format(trend))/h" }
                if let hours = e.hoursToLimit { message += ", about \(format(hours)) h to its limit" }
                raise(key: key, type: .maintenance, severity: rules.maintenance.severity, station: unit.station, signal: unit.signal,
                      vehicleId: nil, message: message, at: t, into: &out)
            } else if health >= rules.maintenance.clearAbove, alertBook.isOpen(key) {
                clear(key: key, at: t, into: &out)
            }
        }
    }

    /// Every `condition` unit's health (`GET /api/equipment`), worst first (config order among equals).
    public func equipment() -> [EquipmentHealth] {
        let list = units.indices.map { u -> EquipmentHealth in
            if unitHealth[u].station.isEmpty {
                let unit = units[u]
                let signalUnit = stationIndex[unit.station].flatMap { stations[$0].config.signal(named: unit.signal)?.unit }
                return EquipmentHealth(station: unit.station, signal: unit.signal, group: unit.group, health: 1, score: 0,
                                       peers: nil, baselineMean: nil, baselineSigma: nil, baselineN: unit.baselineN, level: unit.level,
                                       trend: nil, hoursToLimit: nil, limits: unit.limits, unit: signalUnit, t: nil)
            }
            return unitHealth[u]
        }
        return list.enumerated().sorted { a, b in
            a.element.health != b.element.health ? a.element.health < b.element.health : a.offset < b.offset
        }.map(\.element)
    }

    // MARK: Learned state

    /// What the engine has learned (anomaly baselines and windows, equipment units, the alert
    /// load history), to save; ``restoreLearned(_:)`` takes it back after a restart.
    public var learnedState: LearnedState {
        var detectors: [LearnedState.Series] = []
        for s in stations {
            for signal in s.detectors.keys.sorted() { detectors.append(.init(station: s.config.id, signal: signal, detector: s.detectors[signal]!)) }
        }
        let energy = stations.compactMap { s in s.energy.map { LearnedState.Energy(station: s.config.id, saved: $0.saved, lastAt: s.lastEnergyAt) } }
        return LearnedState(series: detectors, units: units, alertLoad: alertBook.loadHistory, energy: energy)
    }

    /// Goes on from a saved state: series and units whose station, signal, limits and group are
    /// still configured the same; the rest start learning anew. Call before the first input.
    public mutating func restoreLearned(_ saved: LearnedState) {
        for series in saved.series {
            guard let si = stationIndex[series.station] else { continue }
            let name = String(series.signal.prefix { $0 != "[" })
            if series.signal == name, stations[si].config.signal(named: name)?.limits != series.detector.limits { continue }
            stations[si].detectors[series.signal] = series.detector
        }
        for unit in saved.units {
            guard let u = units.firstIndex(where: { $0.station == unit.station && $0.signal == unit.signal }),
                  units[u].group == unit.group, units[u].limits == unit.limits else { continue }
            units[u] = unit
        }
        alertBook.restoreLoad(saved.alertLoad)
        for energy in saved.energy ?? [] {
            guard let si = stationIndex[energy.station], stations[si].energy?.restore(energy.saved) == true else { continue }
            stations[si].lastEnergyAt = energy.lastAt
            energyRestored.insert(si)
        }
        var ignored: [QualityOutput] = []
        for u in units.indices where units[u].recentAt.last != nil {
            evaluateGroup(of: u, at: units[u].recentAt.last!, into: &ignored, alerts: false)
        }
        for si in stations.indices {
            for signal in stations[si].detectors.keys { if let e = entry(si, signal: signal) { stations[si].published[signal] = e } }
        }
    }

    // MARK: Polls and connections

    private mutating func handlePoll(_ poll: StationPoll, into out: inout [QualityOutput]) {
        guard let si = stationIndex[poll.station] else { return }
        let t = poll.time
        // The interval up to this poll belongs to the previous state.
        accountTime(si, upTo: t)
        if stations[si].energy != nil { meterEnergy(si, poll) }
        if !stations[si].conditionUnits.isEmpty { followCondition(si, poll, into: &out) }
        var newState: MachineState? = stations[si].stateSignal == nil ? .running : stations[si].state
        var newFault = stations[si].faultCode
        var counter: Int64?
        let stateSignal = stations[si].stateSignal, faultSignal = stations[si].faultSignal
        let counterSignal = stations[si].usesCounter ? stations[si].counterSignal : nil
        let andonSignal = stations[si].andonSignal
        var andonCode: Int64?
        for reading in poll.readings {
            guard reading.quality == .good, let value = reading.value else { continue }
            if reading.name == andonSignal {
                andonCode = value.integer
            } else if reading.name == stateSignal, let code = value.integer {
                newState = stations[si].stateMap[code] ?? MachineState(conventionalCode: code) ?? .idle
            } else if reading.name == faultSignal, let code = value.integer {
                if code != stations[si].faultCodeValue {
                    stations[si].faultCodeValue = code
                    newFault = String(code)
                }
            } else if reading.name == counterSignal, let c = value.integer {
                counter = c
            }
        }
        if stations[si].connection != .online {
            stations[si].connection = .online
            stations[si].offlineSince = nil
        }
        if newState == .fault && stations[si].state != .fault {
            stations[si].acc.faults += 1
            stations[si].faultSince = t
        } else if newState != .fault {
            stations[si].faultSince = nil
        }
        stations[si].state = newState
        if newFault != stations[si].faultCode { stations[si].faultCode = newFault }
        if let newState, newState.isDowntime || stations[si].inDowntime {
            downtimeBook.observe(station: poll.station, state: newState, faultCode: stations[si].faultCode, at: t, into: &out)
            stations[si].inDowntime = downtimeBook.isOpen(station: poll.station)
        }
        if let andonCode { andonChanged(si, code: andonCode, at: t, into: &out) }

        if newState != .fault {
            if alertBook.hasOpen { clear(key: stations[si].keys.downtime, at: t, into: &out) }
        } else {
            checkDowntime(si, at: t, into: &out)
        }
        if alertBook.hasOpen { clear(key: stations[si].keys.connection, at: t, into: &out) }

        if let counter { counterChanged(si, value: counter, poll: poll, into: &out) }
        maybeEmitKPI(si, at: t, into: &out)
    }

    /// Stations that count parts instead of reporting cycles: each counter increase is a good part;
    /// the measurements in that poll are one value per cycle.
    private mutating func counterChanged(_ si: Int, value: Int64, poll: StationPoll, into out: inout [QualityOutput]) {
        let t = poll.time
        guard let last = stations[si].lastCounter else {
            stations[si].lastCounter = value
            stations[si].lastCounterAt = t
            return
        }
        guard value != last else { return }
        let delta = value > last ? Int(min(value - last, 100_000)) : Int(min(max(value, 0), 100_000))
        let cycle = stations[si].lastCounterAt.map { t.timeIntervalSince($0) / Double(max(delta, 1)) }
        stations[si].lastCounter = value
        stations[si].lastCounterAt = t
        guard delta > 0 else { return }
        let station = stations[si].config
        var good = true
        var values: [(String, Double, SpecLimits?)] = []
        for reading in poll.readings where reading.quality == .good {
            guard let signal = station.signal(named: reading.name), signal.role == .measurement,
                  let v = reading.value?.number else { continue }
            values.append((signal.name, v, signal.limits))
        }
        values.sort { $0.0 < $1.0 }
        for (name, v, limits) in values {
            let key = "quality:\(station.id):\(name)"
            if let limits, !limits.contains(v) {
                good = false
                raise(key: key, type: .quality, severity: rules.outOfSpecSeverity, station: station.id, signal: name,
                      vehicleId: nil, message: "\(name) \(format(v)) out of spec at \(station.id)", at: t, into: &out)
            } else if limits != nil {
                clear(key: key, at: t, into: &out)
            }
        }
        for _ in 0..<delta { stations[si].acc.count(good: good, firstAttempt: true, cycleTime: cycle) }
        for (name, v, limits) in values where limits != nil { stations[si].acc.capability[name, default: CapabilityAccumulator()].add(v) }
        for (name, v, _) in values { addMeasurement(station: si, signal: name, value: v, at: t, into: &out) }
        checkCycleTime(si, cycleTime: cycle, at: t, into: &out)
    }

    private mutating func handleConnection(_ change: ConnectionChange, into out: inout [QualityOutput]) {
        guard let si = stationIndex[change.station] else { return }
        let t = change.time
        accountTime(si, upTo: t)
        switch change.state {
        case .online:
            stations[si].connection = .online
            stations[si].offlineSince = nil
            clear(key: "connection:\(change.station)", at: t, into: &out)
        case .offline:
            if stations[si].connection != .offline {
                stations[si].connection = .offline
                stations[si].offlineSince = t
            }
            // The machine's state is unknown while offline: no run time is counted.
            stations[si].state = nil
            stations[si].energy?.offline()
            stations[si].faultSince = nil
            if stations[si].inDowntime {
                downtimeBook.observe(station: change.station, state: nil, faultCode: "0", at: t, into: &out)
                stations[si].inDowntime = false
            }
            clear(key: "kpi:downtime:\(change.station)", at: t, into: &out)
            checkOffline(si, at: t, reason: change.reason, into: &out)
        case .connecting:
            stations[si].connection = change.state
        }
    }

    private mutating func accountTime(_ si: Int, upTo t: Date) {
        accounting.account(&stations[si], upTo: t)
    }

    private mutating func checkOffline(_ si: Int, at t: Date, reason: String? = nil, into out: inout [QualityOutput]) {
        guard stations[si].connection == .offline, let since = stations[si].offlineSince,
              t.timeIntervalSince(since) >= stations[si].config.offlineAlertAfterS else { return }
        let key = stations[si].keys.connection
        guard !alertBook.hasActiveCondition(key) else { return }
        let id = stations[si].config.id
        raise(key: key, type: .connection, severity: rules.connectionSeverity, station: id, signal: nil, vehicleId: nil,
              message: "\(id) offline since \(Timestamp.format(since))" + (reason.map { ": \($0)" } ?? ""), at: t, into: &out)
    }

    private mutating func checkDowntime(_ si: Int, at t: Date, into out: inout [QualityOutput]) {
        guard rules.downtime.enabled else { return }
        guard stations[si].state == .fault, let since = stations[si].faultSince,
              t.timeIntervalSince(since) >= rules.downtime.afterS else { return }
        let key = stations[si].keys.downtime
        if alertBook.hasActiveCondition(key) { return }
        let id = stations[si].config.id
        raise(key: key, type: .kpi, severity: rules.downtime.severity, station: id, signal: nil, vehicleId: nil,
              message: "\(id) in fault (code \(stations[si].faultCode)) for \(format(t.timeIntervalSince(since).rounded())) s",
              at: t, into: &out)
    }

    // MARK: Sequence issues

    private mutating func handleSequence(_ issue: SequenceIssueInput, into out: inout [QualityOutput]) {
        let t = issue.time
        let v = issue.vehicleId
        switch issue.kind {
        case .skipped:
            let skipped = issue.skippedProcesses.isEmpty ? [issue.process ?? "unknown"] : issue.skippedProcesses
            for process in skipped {
                let text = "vehicle \(v) skipped \(process) (detected at \(issue.station))"
                newDefect(vehicleId: v, station: issue.station, operation: nil, code: "SKIPPED:\(process)", description: text,
                          severity: rules.sequenceSeverity, at: t, by: "system", into: &out)
                raise(key: "sequence:skipped:\(v):\(process)", type: .sequence, severity: rules.sequenceSeverity,
                      station: issue.station, signal: nil, vehicleId: v, message: text, momentary: true, at: t, into: &out)
            }
        case .repeated:
            raise(key: "sequence:repeated:\(issue.station):\(v)", type: .sequence, severity: rules.sequenceSeverity,
                  station: issue.station, signal: nil, vehicleId: v,
                  message: "vehicle \(v) repeated \(issue.process ?? "an operation") at \(issue.station)" + (issue.detail.map { ": \($0)" } ?? ""),
                  momentary: true, at: t, into: &out)
        case .unknownVehicle:
            raise(key: "sequence:unknownVehicle:\(issue.station):\(v)", type: .sequence, severity: rules.sequenceSeverity,
                  station: issue.station, signal: nil, vehicleId: v,
                  message: "unknown vehicle \(v) at \(issue.station) mid-route", momentary: true, at: t, into: &out)
        case .duplicateId:
            raise(key: "sequence:duplicateId:\(v)", type: .sequence, severity: rules.sequenceSeverity,
                  station: issue.station, signal: nil, vehicleId: v,
                  message: "vehicle id \(v) at \(issue.station) and \(issue.otherStation ?? "another station") at once",
                  momentary: true, at: t, into: &out)
        case .invalidVehicleId:
            raise(key: "sequence:invalidVehicleId:\(v)", type: .sequence, severity: rules.sequenceSeverity,
                  station: issue.station, signal: nil, vehicleId: v,
                  message: "invalid vehicle id \(v) at \(issue.station)" + (issue.detail.map { ": \($0)" } ?? ""),
                  momentary: true, at: t, into: &out)
        case .noOrder:
            raise(key: "sequence:noOrder:\(v)", type: .sequence, severity: rules.sequenceSeverity,
                  station: issue.station, signal: nil, vehicleId: v,
                  message: "no order for vehicle \(v) (seen at \(issue.station))", momentary: true, at: t, into: &out)
        case .offRoute:
            raise(key: "sequence:offRoute:\(issue.station):\(v)", type: .sequence, severity: rules.sequenceSeverity,
                  station: issue.station, signal: nil, vehicleId: v,
                  message: "vehicle \(v) worked at \(issue.station) (\(issue.process ?? "?")), which its route leaves out" + (issue.detail.map { " (\($0))" } ?? ""),
                  momentary: true, at: t, into: &out)
        }
    }

    // MARK: Key parts

    /// A duplicate serial or a wrong part: a momentary `part` alert and a defect; a missing part:
    /// a defect (README "Key parts, recall and the quality gate").
    private mutating func handlePart(_ issue: PartIssue, into out: inout [QualityOutput]) {
        let text = issue.message
        newDefect(vehicleId: issue.vehicleId, station: issue.station, operation: nil, code: issue.defectCode, description: text,
                  severity: rules.partSeverity, at: issue.at, by: "system", into: &out)
        switch issue.kind {
        case .duplicateSerial:
            raise(key: "part:duplicate:\(issue.partType):\(issue.serial ?? ""):\(issue.vehicleId)", type: .part, severity: rules.partSeverity,
                  station: issue.station, signal: nil, vehicleId: issue.vehicleId, message: text, momentary: true, at: issue.at, into: &out)
        case .wrongPart:
            raise(key: "part:wrong:\(issue.partType):\(issue.vehicleId)", type: .part, severity: rules.partSeverity,
                  station: issue.station, signal: nil, vehicleId: issue.vehicleId, message: text, momentary: true, at: issue.at, into: &out)
        case .missingPart:
            break
        }
    }

    // MARK: Housekeeping

    private mutating func housekeeping(at t: Date, into out: inout [QualityOutput]) {
        nextHousekeeping = t.addingTimeInterval(1)
        alertBook.tick(at: t, into: &out)
        alertBook.markOverdue(at: t, into: &out)
        defectBook.markOverdue(at: t, escalateAfter: rules.escalateAfterMin * 60, into: &out)
        for si in stations.indices {
            checkOffline(si, at: t, into: &out)
            checkDowntime(si, at: t, into: &out)
            checkOEE(si, at: t, into: &out)
        }
        alertBook.evaluateFlood(at: t)
    }

    private mutating func checkOEE(_ si: Int, at t: Date, into out: inout [QualityOutput]) {
        guard rules.oee.enabled, stations[si].config.idealCycleTimeS != nil else { return }
        let f = stations[si].acc.figures(elapsed: elapsed(at: t), breaks: accounting.breakSeconds(at: t), pending: pending(si, at: t))
        guard f.planned >= rules.oee.minElapsedS, let oee = f.oee else { return }
        let id = stations[si].config.id
        let key = stations[si].keys.oee
        if oee < rules.oee.below {
            let since = stations[si].oeeBelowSince ?? t
            stations[si].oeeBelowSince = since
            if t.timeIntervalSince(since) >= rules.oee.forS {
                if alertBook.hasActiveCondition(key) { return }
                raise(key: key, type: .kpi, severity: rules.oee.severity, station: id, signal: nil, vehicleId: nil,
                      message: "\(id): OEE \(format(oee * 100))% below \(format(rules.oee.below * 100))% for \(format(t.timeIntervalSince(since).rounded())) s",
                      at: t, into: &out)
            }
        } else {
            stations[si].oeeBelowSince = nil
            if oee >= rules.oee.clearAbove { clear(key: key, at: t, into: &out) }
        }
    }

    // MARK: Alert and defect helpers

    private mutating func raise(key: String, type: AlertType, severity: Severity, station: String?, signal: String?, vehicleId: String?,
                                message: String, momentary: Bool = false, at t: Date, into out: inout [QualityOutput]) {
        alertBook.raise(key: key, type: type, severity: severity, station: station, signal: signal, vehicleId: vehicleId,
                        message: message, momentary: momentary, at: t, into: &out)
    }

    private mutating func clear(key: String, at t: Date, into out: inout [QualityOutput]) {
        alertBook.clear(key: key, at: t, into: &out)
    }

    private mutating func newDefect(vehicleId: String, station: String?, operation: String?, code: String, description: String,
                                    severity: Severity, at t: Date, by user: String, into out: inout [QualityOutput]) {
        defectBook.raise(vehicleId: vehicleId, station: station, operation: operation, code: code, description: description,
                         severity: severity, at: t, by: user, into: &out)
    }

    // MARK: User actions

    /// Acknowledges an alert. Throws `.notFound` for an unknown id, `.conflict` when it is already
    /// acknowledged (or cleared, or shelved). Returns the alert change and the audit line.
    public mutating func acknowledge(alertId: Int64, by user: Principal, comment: String?, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        var out = try alertBook.acknowledge(alertId: alertId, by: user, comment: comment, at: t)
        countAcknowledged(out)
        // An andon call's alert: its acknowledgement is the call's response.
        if let call = andonBook.call(alertId: alertId), call.state == .open { respond(to: call, by: user.user, at: t, into: &out) }
        return out
    }

    private mutating func countAcknowledged(_ outputs: [QualityOutput]) {
        for case .alert(let alert, .acknowledged) in outputs {
            guard let at = alert.acknowledgedAt else { continue }
            response.acknowledged += 1
            response.ackSecondsSum += max(0, at.timeIntervalSince(alert.raisedAt))
        }
    }

    /// Shelves an alert for `minutes` (0 < minutes ≤ 10,080); it unshelves itself at expiry on a later input.
    public mutating func shelve(alertId: Int64, minutes: Double, reason: String?, by user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        try alertBook.shelve(alertId: alertId, minutes: minutes, reason: reason, by: user, at: t)
    }

    /// Raises a defect by hand. `station`, when given, must be a configured station.
    public mutating func raiseDefect(vehicleId: String, station: String?, code: String, description: String, severity: Severity,
                                     user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        let vehicle = vehicleId.trimmingCharacters(in: .whitespaces)
        let code = code.trimmingCharacters(in: .whitespaces)
        guard !vehicle.isEmpty else { throw .invalid("vehicleId must not be empty") }
        guard !code.isEmpty else { throw .invalid("code must not be empty") }
        if let station, stationIndex[station] == nil { throw .invalid("no station \(station)") }
        var out: [QualityOutput] = []
        newDefect(vehicleId: vehicle, station: station, operation: nil, code: code, description: description,
                  severity: severity, at: t, by: user.user, into: &out)
        if case .defect(let d, _) = out[0] {
            out.append(.audit(AuditEntry(t: t, by: user, action: "defect.raise", target: "defect:\(d.id)",
                                         detail: "\(code) on \(vehicle)" + (station.map { " at \($0)" } ?? ""))))
        }
        return out
    }

    /// Resolves an open defect. `.notFound` for an unknown id, `.conflict` when already resolved.
    public mutating func resolveDefect(id: Int64, comment: String?, user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        let out = try defectBook.resolve(id: id, comment: comment, user: user, at: t)
        for case .defect(let defect, .resolved) in out {
            response.resolved += 1
            response.resolveSecondsSum += max(0, (defect.resolvedAt ?? t).timeIntervalSince(defect.raisedAt))
        }
        return out
    }

    /// Gives an open alert a new owner (a user of the config's `people`) and, if given, a new due time.
    public mutating func assignAlert(id: Int64, owner: String, dueAt: Date?, by user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        guard config.people.person(owner) != nil else { throw .invalid("owner \"\(owner)\" is not in the plant config's people") }
        return try alertBook.assign(alertId: id, owner: owner, dueAt: dueAt, by: user, at: t)
    }

    /// Gives an open defect a new owner (a user of the config's `people`) and, if given, a new due time.
    public mutating func assignDefect(id: Int64, owner: String, dueAt: Date?, by user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        guard config.people.person(owner) != nil else { throw .invalid("owner \"\(owner)\" is not in the plant config's people") }
        return try defectBook.assign(id: id, owner: owner, dueAt: dueAt, by: user, at: t)
    }

    /// Continues after a restart: the open alerts and defects from the store and the next ids.
    /// Ids already used (closed alerts, resolved defects) are known from `nextAlertId`/`nextDefectId`.
    public mutating func restore(alerts restored: [Alert], defects restoredDefects: [Defect], nextAlertId: Int64, nextDefectId: Int64) {
        alertBook.restore(restored, nextAlertId: nextAlertId)
        defectBook.restore(restoredDefects, nextDefectId: nextDefectId)
    }

    // MARK: Andon and downtime (README "Andon and downtime")

    /// The station's `andon` signal read `code` at `t`: a change closes the station's signal call
    /// and, unless 0, opens one of the kind the code stands for.
    private mutating func andonChanged(_ si: Int, code: Int64, at t: Date, into out: inout [QualityOutput]) {
        let station = stations[si].config.id
        guard andonBook.signalChanged(station: station, code: code) else { return }
        if let call = andonBook.signalCall(station: station) { close(call, by: nil, at: t, into: &out) }
        guard code != 0 else { return }
        let kind = stations[si].andonCalls[code] ?? SignalConfig.defaultAndonCalls[code] ?? "help"
        open(station: station, kind: kind, source: .signal, by: nil, comment: nil, signalCode: code, at: t, into: &out)
    }

    private mutating func open(station: String, kind: String, source: AndonSource, by user: String?, comment: String?,
                               signalCode: Int64?, at t: Date, into out: inout [QualityOutput]) {
        var call = andonBook.make(station: station, kind: kind, source: source, at: t, by: user, comment: comment, signalCode: signalCode)
        let before = out.count
        raise(key: "andon:\(station):\(call.id)", type: .andon, severity: rules.andonSeverity, station: station, signal: nil, vehicleId: nil,
              message: "Andon \(kind) at \(station)" + (comment.map { ": \($0)" } ?? "") + (user.map { " (\($0))" } ?? ""), at: t, into: &out)
        for case .alert(let alert, .raised) in out[before...] { call.alertId = alert.id }
        andonBook.store(call)
        response.andonCalls += 1
        out.insert(.andon(call, .opened), at: before)
    }

    /// Records the call's response (acknowledged by `user` at `t`).
    private mutating func respond(to call: AndonCall, by user: String, at t: Date, into out: inout [QualityOutput]) {
        var call = call
        call.state = .acknowledged
        call.acknowledgedAt = t
        call.acknowledgedBy = user
        andonBook.store(call)
        response.andonResponses += 1
        response.andonResponseSecondsSum += max(0, t.timeIntervalSince(call.openedAt))
        out.append(.andon(call, .acknowledged))
    }

    private mutating func close(_ call: AndonCall, by user: String?, at t: Date, into out: inout [QualityOutput]) {
        var call = call
        call.state = .closed
        call.closedAt = t
        call.closedBy = user
        andonBook.store(call)
        out.append(.andon(call, .closed))
        clear(key: "andon:\(call.station):\(call.id)", at: t, into: &out)
    }

    /// `POST /api/andon`: a call of `kind` at a configured station. `.invalid` for an unknown
    /// station, `.conflict` when a call of that kind is already open there.
    public mutating func callAndon(station: String, kind: String, comment: String?, by user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        guard stationIndex[station] != nil else { throw .invalid("no station \(JSON.string(station).serialized())") }
        if let existing = andonBook.openCalls.first(where: { $0.station == station && $0.kind == kind }) {
            throw .conflict("andon call \(existing.id) (\(kind)) is already open at \(station)")
        }
        var out: [QualityOutput] = []
        advance(to: t, into: &out)
        open(station: station, kind: kind, source: .api, by: user.user, comment: comment, signalCode: nil, at: t, into: &out)
        if case .andon(let call, _)? = out.first(where: { if case .andon = $0 { true } else { false } }) {
            out.append(.audit(AuditEntry(t: t, by: user, action: "andon.call", target: "andon:\(call.id)",
                                         detail: "\(kind) at \(station)" + (comment.map { ": \($0)" } ?? ""))))
        }
        return out
    }

    /// Acknowledges a call (and its alert, if still unacknowledged): the response.
    /// `.notFound`, `.conflict` when already acknowledged or closed.
    public mutating func acknowledgeAndon(id: Int64, comment: String?, by user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        let call = try andonBook.openCall(id)
        guard call.state == .open else { throw .conflict("andon call \(id) is already acknowledged") }
        var out: [QualityOutput] = []
        if let alertId = call.alertId, let alert = alertBook.alert(id: alertId), alert.isUnacknowledged {
            out = try alertBook.acknowledge(alertId: alertId, by: user, comment: comment, at: t)
            countAcknowledged(out)
        } else {
            out.append(.audit(AuditEntry(t: t, by: user, action: "andon.acknowledge", target: "andon:\(id)", detail: "\(call.kind) at \(call.station)")))
        }
        respond(to: call, by: user.user, at: t, into: &out)
        return out
    }

    /// Closes a call (`POST /api/andon/{id}/close`); its alert's condition clears.
    public mutating func closeAndon(id: Int64, comment: String?, by user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        var call = try andonBook.openCall(id)
        if let comment, !comment.isEmpty { call.comment = [call.comment, comment].compactMap { $0 }.joined(separator: " · ") }
        var out: [QualityOutput] = []
        close(call, by: user.user, at: t, into: &out)
        out.append(.audit(AuditEntry(t: t, by: user, action: "andon.close", target: "andon:\(id)",
                                     detail: "\(call.kind) at \(call.station)" + (comment.map { ": \($0)" } ?? ""))))
        return out
    }

    /// Sets or corrects a downtime stretch's reason (`POST /api/downtime/{id}/reason`). `stored`:
    /// the stretch as stored, for one no longer in memory. `.invalid` for a code not in the catalogue.
    public mutating func setDowntimeReason(id: Int64, code: String, comment: String?, stored: DowntimeStretch?,
                                           by user: Principal, at t: Date) throws(QualityActionError) -> [QualityOutput] {
        try downtimeBook.setReason(id: id, code: code, comment: comment, stored: stored, by: user, at: t)
    }

    /// Continues after a restart: andon calls not closed, recent downtime stretches and the next ids.
    public mutating func restoreFloor(calls: [AndonCall], nextCallId: Int64, stretches: [DowntimeStretch], nextStretchId: Int64) {
        andonBook.restore(calls, nextId: nextCallId)
        downtimeBook.restore(stretches, nextId: nextStretchId)
        for si in stations.indices { stations[si].inDowntime = downtimeBook.isOpen(station: stations[si].config.id) }
    }

    /// Andon calls not closed, oldest first.
    public var openAndonCalls: [AndonCall] { andonBook.openCalls }

    /// A downtime stretch still in memory.
    public func downtimeStretch(id: Int64) -> DowntimeStretch? { downtimeBook.stretch(id: id) }

    /// Response and andon figures now.
    func responseKPIs() -> ResponseKPIs {
        let overdueAlerts = alertBook.openAlerts.filter { $0.isUnacknowledged && $0.assignment?.overdue == true }.count
        let overdueDefects = defectBook.openDefects.filter { $0.assignment?.overdue == true }.count
        return ResponseKPIs(counters: response, overdueNow: overdueAlerts + overdueDefects, andonOpenNow: andonBook.calls.count)
    }

    // MARK: Queries

    /// An open alert by id.
    public func alert(id: Int64) -> Alert? { alertBook.alert(id: id) }

    /// Open alerts (not `cleared`), oldest first.
    public var openAlerts: [Alert] { alertBook.openAlerts }

    /// Open defects, oldest first.
    public var openDefects: [Defect] { defectBook.openDefects }

    /// A vehicle's open defects, oldest first (the quality gate).
    public func openDefects(vehicleId: String) -> [Defect] { defectBook.openDefects(vehicleId: vehicleId) }

    /// The current anomaly list (`GET /api/anomalies`): every measured series, highest score first.
    public func anomalies() -> [AnomalyEntry] {
        var list: [AnomalyEntry] = []
        for si in stations.indices {
            for signal in stations[si].detectors.keys.sorted() { if let e = entry(si, signal: signal) { list.append(e) } }
        }
        return list.enumerated().sorted { a, b in
            a.element.score != b.element.score ? a.element.score > b.element.score : a.offset < b.offset
        }.map(\.element)
    }

    /// Each station's equipment health: the lowest health of its signals and the signal behind it.
    public func equipmentHealth() -> [(station: String, health: Double, signal: String?)] {
        stations.indices.map { si in
            var worst: (Double, String?) = (1, nil)
            for signal in stations[si].detectors.keys.sorted() {
                if let e = entry(si, signal: signal), e.health < worst.0 { worst = (e.health, signal) }
            }
            return (stations[si].config.id, worst.0, worst.1)
        }
    }

    /// Defects raised this shift by code, most first (Pareto).
    public func paretoByCode() -> [(code: String, count: Int)] { defectBook.paretoByCode() }

    /// Defects raised this shift by station, most first (Pareto).
    public func paretoByStation() -> [(station: String, count: Int)] { defectBook.paretoByStation() }

    /// The current shift window (nil before the first input).
    public var shift: ShiftWindow? { accounting.window }

    private func elapsed(at t: Date) -> Double { accounting.elapsed(at: t) }

    private func pending(_ si: Int, at t: Date) -> PendingTime? { accounting.pending(stations[si], at: t) }

    /// A station's KPIs now (nil for an unknown station).
    public func stationKPI(_ id: String) -> StationKPI? {
        guard let si = stationIndex[id] else { return nil }
        return stationKPI(si, at: now ?? accounting.windowStart)
    }

    private func stationKPI(_ si: Int, at t: Date) -> StationKPI { accounting.stationKPI(stations[si], at: t) }

    /// The line's KPIs now.
    public func lineKPI() -> LineKPI { lineKPI(at: now ?? accounting.windowStart) }

    private func lineKPI(at t: Date) -> LineKPI { accounting.lineKPI(stations, at: t) }

    /// Alerts raised in the 10 minutes up to the engine's time.
    public var alertsPer10Min: Int {
        guard let now else { return 0 }
        return alertBook.alertsPer10Min(now: now)
    }

    /// Percent (0–100) of this shift's elapsed time with more than `floodPer10Min` alerts in the trailing 10 minutes.
    public var floodTimePct: Double {
        guard let now else { return 0 }
        return alertBook.floodTimePct(now: now)
    }

    /// Alert keys raised at least `chatterCount` times within `chatterMinutes`, sorted.
    public var chatteringKeys: [String] {
        guard let now else { return [] }
        return alertBook.chatteringKeys(now: now)
    }

    /// The current shift's KPIs: the line, every station (config order), alert load and defect
    /// Pareto lists (the API writes them as `GET /api/kpis`, docs/openapi.json).
    public func kpis() -> ShiftKPIs { kpis(at: now ?? accounting.windowStart) }

    private func kpis(at t: Date) -> ShiftKPIs {
        var k = ShiftKPIs(shift: accounting.window, line: lineKPI(at: t), stations: stations.indices.map { stationKPI($0, at: t) },
                          alertsPer10Min: alertBook.alertsPer10Min(now: t), floodTimePct: alertBook.floodTimePct(now: t),
                          chattering: alertBook.chatteringKeys(now: t), defectsByCode: paretoByCode(), defectsByStation: paretoByStation())
        k.countedFrom = accounting.window == nil ? nil : accounting.windowStart
        k.response = responseKPIs()
        k.downtime = downtimeBook.figures(stations: stationIDs, from: accounting.windowStart, to: t)
        return k
    }

    /// The KPIs of saved counters whose shift ended while the server was down: as at the shift's
    /// end, the time after the save with no state (as for a station offline); no alert load known.
    private func kpis(of saved: ShiftCounters) -> ShiftKPIs {
        var accounting = ShiftAccounting(config: config)
        let window = accounting.restoreWindow(saved)
        var restored = config.stations.map { StationRuntime($0, rules: rules) }
        for counters in saved.stations {
            if let si = stationIndex[counters.id] { restored[si].acc.restore(counters) }
        }
        let end = window.end
        var book = DefectBook()
        book.startShift(byCode: saved.defectsByCode, byStation: saved.defectsByStation)
        let elapsed = accounting.elapsed(at: end)
        var k = ShiftKPIs(shift: window, line: accounting.lineKPI(restored, at: end),
                          stations: restored.map { accounting.stationKPI($0, at: end) }, alertsPer10Min: 0,
                          floodTimePct: elapsed > 0 ? round6(min(100, saved.floodSeconds / elapsed * 100)) : 0, chattering: [],
                          defectsByCode: book.paretoByCode(), defectsByStation: book.paretoByStation())
        k.countedFrom = accounting.windowStart
        k.fromSavedCounters = true
        // What was counted before the stop; nothing is open or overdue "now" in a shift that is over.
        k.response = saved.response.map { ResponseKPIs(counters: $0, overdueNow: 0, andonOpenNow: 0) }
        k.downtime = downtimeBook.figures(stations: stationIDs, from: accounting.windowStart, to: end)
        return k
    }

    /// The last KPI set of the previous shift, if a shift ended since start.
    public var previousShiftKPIs: ShiftKPIs? { previousShift }

    /// Whether a shift ended whose KPIs were not yet taken.
    public var hasEndedShifts: Bool { !endedShifts.isEmpty }

    /// The KPIs of the shifts that ended since the last call, each as at its end (oldest first;
    /// `off-shift` windows are left out). The pipeline stores them (README "Shift calendar and shift history").
    public mutating func takeEndedShifts() -> [ShiftKPIs] {
        defer { endedShifts.removeAll() }
        return endedShifts
    }

    /// The shift window around `t` (a configured shift, `off-shift` between shifts, `day` without shifts).
    public func shiftWindow(at t: Date) -> ShiftWindow { accounting.shiftWindow(at: t) }

    private mutating func maybeEmitKPI(_ si: Int, at t: Date, into out: inout [QualityOutput]) {
        let interval = rules.kpiIntervalMs / 1000
        let shiftName = accounting.window?.name ?? "day"
        let at = max(t, now ?? t)
        if let last = stations[si].lastKPIAt, at.timeIntervalSince(last) < interval {} else {
            stations[si].lastKPIAt = at
            out.append(.stationKPI(stationKPI(si, at: at), shift: shiftName, t: at))
        }
        if let last = lastLineKPI, at.timeIntervalSince(last) < interval {} else {
            lastLineKPI = at
            out.append(.lineKPI(lineKPI(at: at), shift: shiftName, t: at))
        }
    }
}

/// Compact number text for messages (no trailing zeros, at most 3 decimals).
func format(_ x: Double) -> String {
    let rounded = (x * 1000).rounded() / 1000
    if rounded == rounded.rounded() && abs(rounded) < 1e15 { return String(Int64(rounded)) }
    return String(rounded)
}
