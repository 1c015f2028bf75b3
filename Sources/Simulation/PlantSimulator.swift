import Foundation
import PlantModel
import Runtime

/// Figures of a simulation run so far.
public struct SimulationStats: Sendable, Equatable {
    /// Vehicles released into the first vehicle process.
    public var vehiclesReleased = 0
    /// Vehicles that left the last vehicle process.
    public var vehiclesCompleted = 0
    /// Completed operations at vehicle stations.
    public var operations = 0
    public var nokOperations = 0
    /// Press strokes (cycles of stations without vehicles).
    public var strokes = 0
    /// Faults started (random and injected).
    public var faults = 0
    public init() {}
}

/// The simulated plant: vehicles flowing along the route at the takt, stations cycling,
/// measurements with noise, results, faults, lots, and the scenario's events.
///
/// Pure and deterministic: the same config, scenario and seed give the same values at every tick,
/// on any machine. It knows stations only through their signal roles (docs/CONFIG.md), so any plant
/// config works. Time moves only through ``step()`` / ``advance(toElapsedMs:)`` in ticks of
/// ``tickMs`` (the greatest common divisor of 100 ms and every station's poll interval).
/// Thread-confined, so not `Sendable`: the thread that creates it steps and reads it.
///
/// Behaviour of a vehicle station (one with a `vehicleId` signal): a vehicle arrives → `vehicleId`
/// shows it, state `running`, lots and operator set → one poll interval before the end of the
/// cycle the measurements (noise around nominal) and the `result` are set → `cycleComplete` rises
/// (a bool held for `max(cyclePulseMs, 2 × poll interval)`, or a counter increments), `counter`
/// increments → the vehicle moves on (`vehicleId` empty, state `idle`), or waits in state
/// `blocked` while the next process's buffer is full. A station waiting for a vehicle longer
/// than twice its share of the takt shows `starved`. Parallel stations of one process take
/// vehicles in turn (round robin, skipping busy ones).
///
/// A station without `vehicleId` (a press) cycles on its own: each stroke increments its
/// counters and sets its measurements; after `pressLotSize` strokes its lot is complete (later
/// stations' `lotId` signal of the same name report it) and a die change (`setup`) follows.
public final class PlantSimulator {
    public let config: PlantConfig
    public let scenario: Scenario
    public let seed: UInt64
    /// Recording time at elapsed 0.
    public let start: Date
    public let tickMs: Int64
    /// The release interval of vehicles, in ms.
    public let taktMs: Int64
    public private(set) var elapsedMs: Int64 = 0
    public private(set) var stats = SimulationStats()
    /// VINs released into the line since the last ``takeReleased()`` (orders for them).
    private var releasedVINs: [String] = []
    /// The part number a vehicle's build spec lists for a part type; nil: the spec does not list
    /// it and the station fits no such part (its serial stays empty). Set by the owner, e.g. from
    /// the server's orders; without it every vehicle gets every part, with an empty part number.
    public var partNumbers: ((_ vin: String, _ partType: String) -> String?)?
    /// The last serial scanned per station and part type (a `duplicateSerial` event repeats it).
    var lastSerials: [String: String] = [:]

    var stations: [StationSim]
    var processes: [ProcessSim]
    /// Route indices of processes vehicles pass (those with vehicle stations), in route order.
    let flow: [Int]
    var lineRandom: SimRandom
    var nextReleaseMs: Int64 = 0
    var pendingRelease: Vehicle?
    var nextSerial: Int
    var lastVIN: String?
    var eventUsed: [Bool]
    var spikeLeft: [Int]
    var completedLots: [String: String] = [:]
    let lotDate: String
    let stationIndexByID: [String: Int]

    /// The VINs released into the line since the last call, in release order.
    public func takeReleased() -> [String] {
        defer { releasedVINs.removeAll(keepingCapacity: true) }
        return releasedVINs
    }

    /// The VINs of the next `count` vehicles to be released (a duplicate-VIN event may change them).
    public func upcomingVINs(_ count: Int) -> [String] {
        let year = Calendar(identifier: .gregorian).component(.year, from: start)
        var vins = pendingRelease.map { [$0.vin] } ?? []
        var serial = nextSerial
        while vins.count < count {
            vins.append(VIN.make(wmi: scenario.vin.wmi, descriptor: scenario.vin.descriptor, year: year,
                                 plant: scenario.vin.plant, serial: serial))
            serial += 1
        }
        return vins
    }

    /// The time of the current tick.
    public var time: Date { start.addingTimeInterval(Double(elapsedMs) / 1000) }

    /// Station ids in config order (the order of every per-station call).
    public var stationIDs: [String] { stations.map(\.config.id) }

    /// Makes a simulator at elapsed 0 (values of the first tick already set).
    /// - Parameters:
    ///   - seed: nil uses the scenario's seed.
    ///   - start: nil uses the scenario's start (live serving passes the wall-clock time).
    /// - Throws: ``ConfigError`` naming the scenario path of an event whose station, process or
    ///   signal is not in the config.
    public init(config: PlantConfig, scenario: Scenario = .normalShift, seed: UInt64? = nil, start: Date? = nil) throws {
        self.config = config
        self.scenario = scenario
        self.seed = seed ?? scenario.seed
        self.start = start ?? scenario.start
        var gcdMs = 100
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        for station in config.stations { gcdMs = gcd(gcdMs, max(1, station.pollIntervalMs)) }
        tickMs = Int64(max(10, gcdMs))

        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = config.timezone
        let parts = calendar.dateComponents([.year, .month, .day], from: self.start)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : String(v % 100) }
        lotDate = two((parts.year ?? 2026) % 100) + two(parts.month ?? 1) + two(parts.day ?? 1)

        let processes: [ProcessSim] = config.route.enumerated().map { ProcessSim(routeIndex: $0.offset, name: $0.element) }
        var stations: [StationSim] = []
        var byID: [String: Int] = [:]
        for (index, station) in config.stations.enumerated() {
            let routeIndex = config.routeIndex(of: station.process)
            let sim = StationSim(index: index, config: station, routeIndex: routeIndex, scenario: scenario,
                                 seed: self.seed, tickMs: tickMs)
            stations.append(sim)
            byID[station.id] = index
            if let r = routeIndex { processes[r].stations.append(index) }
        }
        for r in processes.indices {
            processes[r].trackingStations = processes[r].stations.filter { stations[$0].tracks }
            processes[r].tracksVehicles = !processes[r].trackingStations.isEmpty
        }
        flow = processes.filter(\.tracksVehicles).map(\.routeIndex)
        stationIndexByID = byID

        // Takt: 90 % of the bottleneck's capacity unless the scenario says.
        var bottleneckS = 1.0
        for r in flow {
            let tracking = processes[r].stations.filter { stations[$0].tracks }
            let share = tracking.map { stations[$0].idealS }.reduce(0, +) / Double(tracking.count * tracking.count)
            bottleneckS = max(bottleneckS, share)
        }
        let vph = scenario.vehiclesPerHour ?? (3600 / bottleneckS * 0.9)
        taktMs = max(tickMs, Int64((3_600_000 / vph).rounded()))
        for r in flow {
            let count = processes[r].stations.filter { stations[$0].tracks }.count
            for s in processes[r].stations { stations[s].starvedAfterMs = 2 * taktMs * Int64(count) }
        }

        lineRandom = SimRandom(seed: self.seed, stream: "line")
        var vinRandom = SimRandom(seed: self.seed, stream: "vin")
        nextSerial = scenario.vin.firstSerial ?? (100_000 + Int(vinRandom.next() % 800_000))
        eventUsed = Array(repeating: false, count: scenario.events.count)
        spikeLeft = scenario.events.map { if case .spike(_, _, let count) = $0.kind { return count } else { return 0 } }
        self.processes = processes
        self.stations = stations
        try validateEvents()
        for i in self.stations.indices {
            self.stations[i].attachEvents(scenario.events)
            self.stations[i].faultCodes = faultCodes(i)
        }
        // Producers start with the lot before the shift already complete (consumers use it first).
        for i in self.stations.indices where !self.stations[i].tracks {
            for lot in self.stations[i].lotSignals {
                let name = self.stations[i].config.signals[lot].name
                let id = lotID(station: i, signal: lot, sequence: 0)
                completedLots[name] = id
            }
        }
        for i in self.stations.indices { setup(i) }
        update(elapsed: 0)
    }

    func validateEvents() throws {
        for event in scenario.events {
            func fail(_ message: String) -> ConfigError { ConfigError(file: event.file, path: event.path, message: message) }
            if let id = event.station {
                guard let index = stationIndexByID[id] else {
                    throw fail("station \"\(id)\" is not in the plant config (\(config.stations.map(\.id).joined(separator: ", ")))")
                }
                let station = config.stations[index]
                switch event.kind {
                case .drift(let signal, _):
                    guard let role = station.signal(named: signal)?.role, role == .measurement || role == .condition else {
                        throw fail("\(id) has no measurement signal \"\(signal)\" (nor a condition signal of that name)")
                    }
                case .excursion(let signal, _), .spike(let signal, _, _):
                    guard station.signal(named: signal)?.role == .measurement else {
                        throw fail("\(id) has no measurement signal \"\(signal)\"")
                    }
                case .fault:
                    if station.signal(role: .state) == nil && station.signal(role: .faultCode) == nil {
                        throw fail("\(id) has neither a state nor a faultCode signal to show a fault")
                    }
                case .nokRate:
                    if station.signal(role: .result) == nil { throw fail("\(id) has no result signal") }
                case .andon:
                    if station.signal(role: .andon) == nil { throw fail("\(id) has no andon signal") }
                case .duplicateSerial, .wrongPart:
                    if station.signal(role: .partSerial) == nil { throw fail("\(id) has no partSerial signal") }
                default: break
                }
            }
            if let process = event.process {
                guard let r = config.routeIndex(of: process), processes[r].tracksVehicles else {
                    throw fail("process \"\(process)\" is not a vehicle process of the route (\(flow.map { config.route[$0] }.joined(separator: ", ")))")
                }
            }
        }
    }

    // MARK: Reading values

    /// Every configured signal's current value, by signal name.
    public func values(of station: String) -> [String: SignalValue] {
        guard let index = stationIndexByID[station] else { return [:] }
        var map: [String: SignalValue] = [:]
        for (signal, value) in zip(stations[index].config.signals, stations[index].values) { map[signal.name] = value }
        return map
    }

    /// The current values of station `index` in config signal order.
    public func values(at index: Int) -> [SignalValue] { stations[index].values }

    /// Whether the station's PLC answers now (false during an `offline` event).
    public func isOnline(_ index: Int) -> Bool {
        !stations[index].events.contains { scenario.events[$0].kind == .offline && scenario.events[$0].active(at: elapsedMs) }
    }

    /// Whether a value of station `index` changed since the last call (true at the start); clears the flag.
    public func takeChanged(_ index: Int) -> Bool {
        let changed = stations[index].changed
        stations[index].changed = false
        return changed
    }

    /// Whether station `index` is polled at the current tick (elapsed time is a multiple of its poll interval).
    public func isPollDue(_ index: Int) -> Bool { elapsedMs % stations[index].pollMs == 0 }

    /// The current values of station `index` as a poll at the current time.
    public func poll(_ index: Int) -> StationPoll {
        let station = stations[index]
        return StationPoll(station: station.config.id, time: time,
                           readings: zip(station.config.signals, station.values).map {
                               SignalReading(name: $0.name, value: $1, quality: .good)
                           })
    }

    // MARK: Time

    /// Advances one tick.
    public func step() {
        update(elapsed: elapsedMs + tickMs)
    }

    /// Advances tick by tick until `elapsedMs` is reached.
    public func advance(toElapsedMs target: Int64) {
        while elapsedMs + tickMs <= target { step() }
    }

    func update(elapsed t: Int64) {
        elapsedMs = t
        release(t)
        for r in flow.reversed() {
            for s in processes[r].stations where stations[s].tracks { updateVehicleStation(s, t) }
        }
        for s in stations.indices where !stations[s].tracks {
            if stations[s].routeIndex == nil { updateUtility(s, t) } else { updateProducer(s, t) }
        }
        for r in flow { dispatch(r, t) }
        for s in stations.indices { stations[s].showState(t, events: scenario.events) }
        for s in stations.indices where stations[s].metered { updateEnergy(s, t) }
    }

    // MARK: Energy and equipment condition

    /// A utilities station (its process is not on the route): runs all the time but for its faults.
    func updateUtility(_ s: Int, _ t: Int64) {
        let faulted = stations[s].updateFault(t, events: scenario.events, codes: stations[s].faultCodes, running: true, stats: &stats)
        stations[s].workLeftMs = faulted ? 0 : tickMs
    }

    /// Meters (cumulative kWh), power (kW by machine state) and condition values (each second).
    func updateEnergy(_ s: Int, _ t: Int64) {
        let station = stations[s]
        let state = station.shownState
        let model = station.energyModel
        var kW: Double
        switch state {
        case .running: kW = model.runKW
        case .fault, .setup, .maintenance: kW = model.idleKW * 0.6
        default: kW = model.idleKW
        }
        if !isOnline(s) { kW = model.idleKW }
        station.kWh += kW * Double(tickMs) / 3_600_000
        for m in station.energySignals {
            // Meters read in steps of 0.01 kWh; integer meters wrap at their type's top.
            var value = (station.kWh * 100).rounded(.down) / 100
            if let wrap = station.meterWraps[m] { value = value.truncatingRemainder(dividingBy: wrap) }
            station.set(m, station.numerics[m].value(value))
        }
        for p in station.powerSignals { station.set(p, station.numerics[p].value(kW)) }
        guard t % 1000 == 0 else { return }
        for c in station.conditionSignals {
            guard let model = station.conditionModels[c] else { continue }
            var mean = model.nominal
            for e in station.events {
                if case .drift(let name, let to) = scenario.events[e].kind, name == station.config.signals[c].name, t >= scenario.events[e].atMs {
                    let progress = min(1, Double(t - scenario.events[e].atMs) / Double(max(1, scenario.events[e].durationMs)))
                    mean += (to - model.nominal) * progress
                }
            }
            // Under load a motor runs a little warmer and draws more.
            if state == .running { mean += model.sigma }
            station.set(c, station.numerics[c].value(mean + model.sigma * station.conditionRandom.normal()))
        }
    }

    // MARK: Vehicles

    func release(_ t: Int64) {
        guard let first = flow.first else { return }
        if pendingRelease == nil, t >= nextReleaseMs {
            var vin = VIN.make(wmi: scenario.vin.wmi, descriptor: scenario.vin.descriptor,
                               year: Calendar(identifier: .gregorian).component(.year, from: start),
                               plant: scenario.vin.plant, serial: nextSerial)
            if let last = lastVIN, let e = takeInstant(.duplicateVIN, at: t) {
                _ = e
                vin = last
            } else {
                nextSerial += 1
            }
            pendingRelease = Vehicle(vin: vin)
        }
        if let vehicle = pendingRelease, enqueue(vehicle, fromFlow: -1, t) {
            _ = first
            pendingRelease = nil
            lastVIN = vehicle.vin
            releasedVINs.append(vehicle.vin)
            stats.vehiclesReleased += 1
            let jitter = 1 + 0.02 * lineRandom.normal()
            nextReleaseMs = t + max(tickMs, Int64(Double(taktMs) * min(1.1, max(0.9, jitter))))
        }
    }

    /// Index of an unused instant event of this kind that is due, marking it used.
    func takeInstant(_ kind: ScenarioEvent.Kind, at t: Int64, process: String? = nil) -> Int? {
        for (i, event) in scenario.events.enumerated() where !eventUsed[i] && event.kind == kind && t >= event.atMs {
            if let process, event.process != process { continue }
            eventUsed[i] = true
            return i
        }
        return nil
    }

    /// Puts a vehicle into the next process after flow position `position` (-1: the first),
    /// honouring skips. False if that buffer is full.
    func enqueue(_ vehicle: Vehicle, fromFlow position: Int, _ t: Int64) -> Bool {
        var next = position + 1
        while next < flow.count {
            let name = config.route[flow[next]]
            if scenario.events.contains(where: { $0.kind == .skip && $0.process == name }) {
                // Peek: only consume the skip when the vehicle can actually move on.
                var copy = eventUsed
                var skipped = false
                for (i, e) in scenario.events.enumerated() where !copy[i] && e.kind == .skip && e.process == name && t >= e.atMs {
                    copy[i] = true
                    skipped = true
                    break
                }
                if skipped {
                    let after = next + 1
                    if after < flow.count, processes[flow[after]].queue.count >= scenario.bufferSize { return false }
                    eventUsed = copy
                    next = after
                    continue
                }
            }
            let r = flow[next]
            guard processes[r].queue.count < scenario.bufferSize else { return false }
            processes[r].queue.append(vehicle)
            return true
        }
        stats.vehiclesCompleted += 1
        return true
    }

    func dispatch(_ r: Int, _ t: Int64) {
        let candidates = processes[r].trackingStations
        guard !candidates.isEmpty else { return }
        while !processes[r].queue.isEmpty {
            var chosen: Int?
            for k in 0..<candidates.count {
                let s = candidates[(processes[r].turn + k) % candidates.count]
                if stations[s].canTake(t, events: scenario.events) { chosen = s; processes[r].turn = (processes[r].turn + k + 1) % candidates.count; break }
            }
            guard let s = chosen else { return }
            let vehicle = processes[r].queue.removeFirst()
            startOperation(s, vehicle, t)
        }
    }

    func startOperation(_ s: Int, _ vehicle: Vehicle, _ t: Int64) {
        stations[s].vehicle = vehicle
        stations[s].phase = .working
        stations[s].measured = false
        stations[s].workLeftMs = stations[s].cycleTime()
        if let v = stations[s].vehicleSignal { stations[s].set(v, .string(vehicle.vin)) }
        for lot in stations[s].lotSignals { stations[s].set(lot, .string(consumerLot(s, lot))) }
        if let op = stations[s].operatorSignal { stations[s].set(op, .string(operatorName(t))) }
    }

    func operatorName(_ t: Int64) -> String {
        guard !scenario.operators.isEmpty else { return "" }
        let now = start.addingTimeInterval(Double(t) / 1000)
        let index = config.shift(at: now).flatMap { found in config.shifts.firstIndex { $0.name == found.shift.name } } ?? 0
        return scenario.operators[index % scenario.operators.count]
    }

    func lotID(station s: Int, signal: Int, sequence: Int) -> String {
        let station = stations[s].config
        let sig = station.signals[signal]
        let prefix = String(station.process.prefix(1) + sig.name.prefix(1)).uppercased()
        var seq = String(sequence % 1000)
        seq = String(repeating: "0", count: 3 - seq.count) + seq
        let id = prefix + lotDate + "-" + seq
        if let length = sig.length, id.count > length { return String(id.suffix(length)) }
        return id
    }

    /// The lot a vehicle station consumes: the latest lot completed by a station without vehicles
    /// whose lotId signal has the same name (presses → `panelLot`), else the station's own lot
    /// sequence (a new lot every `lotSize` vehicles).
    func consumerLot(_ s: Int, _ lot: Int) -> String {
        let name = stations[s].config.signals[lot].name
        var id = completedLots[name]
        if id == nil {
            let sequence = stations[s].vehiclesDone / max(1, scenario.lotSize) + 1
            id = lotID(station: s, signal: lot, sequence: sequence)
        }
        if let length = stations[s].config.signals[lot].length, let text = id, text.count > length { return String(text.suffix(length)) }
        return id ?? ""
    }

    func updateVehicleStation(_ s: Int, _ t: Int64) {
        let faulted = stations[s].updateFault(t, events: scenario.events, codes: stations[s].faultCodes,
                                              running: stations[s].phase == .working, stats: &stats)
        switch stations[s].phase {
        case .empty:
            break
        case .working:
            if faulted { break }
            stations[s].workLeftMs -= tickMs
            if !stations[s].measured && stations[s].workLeftMs <= stations[s].pollMs {
                measure(s, t)
                stats.operations += 1
            }
            if stations[s].workLeftMs <= 0 {
                stations[s].completeCycle(t)
                stations[s].vehiclesDone += 1
            }
        case .pulse:
            if t >= stations[s].pulseOffMs {
                stations[s].endPulse()
                handOff(s, t)
            }
        case .blocked:
            handOff(s, t)
        }
    }

    func handOff(_ s: Int, _ t: Int64) {
        guard let vehicle = stations[s].vehicle, let r = stations[s].routeIndex, let position = flow.firstIndex(of: r) else {
            stations[s].leave(t)
            return
        }
        if enqueue(vehicle, fromFlow: position, t) {
            stations[s].leave(t)
        } else {
            stations[s].phase = .blocked
        }
    }

    func updateProducer(_ s: Int, _ t: Int64) {
        let faulted = stations[s].updateFault(t, events: scenario.events, codes: stations[s].faultCodes,
                                              running: stations[s].workLeftMs > 0, stats: &stats)
        if stations[s].phase == .pulse, t >= stations[s].pulseOffMs { stations[s].endPulse(); stations[s].phase = .empty }
        if faulted { return }
        if stations[s].workLeftMs <= 0 {
            // Between strokes: no new stroke during a die change or a forced state.
            if t < stations[s].setupUntilMs || stations[s].forcedState(t, events: scenario.events) != nil { return }
            stations[s].workLeftMs = stations[s].cycleTime()
            stations[s].measured = false
        }
        guard stations[s].workLeftMs > 0 else { return }
        stations[s].workLeftMs -= tickMs
        if stations[s].workLeftMs <= 0 {
            measure(s, t)
            stations[s].completeCycle(t)
            stats.strokes += 1
            stations[s].strokesInLot += 1
            if stations[s].strokesInLot >= scenario.pressLotSize, !stations[s].lotSignals.isEmpty {
                for lot in stations[s].lotSignals {
                    if case .string(let id) = stations[s].values[lot] {
                        completedLots[stations[s].config.signals[lot].name] = id
                    }
                }
                stations[s].lotSequence += 1
                stations[s].strokesInLot = 0
                stations[s].setupUntilMs = t + Int64(scenario.dieChangeS * 1000)
                setLots(s)
            }
        }
    }

    func setup(_ s: Int) {
        let station = stations[s]
        for (i, signal) in station.config.signals.enumerated() {
            switch signal.role {
            case .vehicleId, .lotId, .operator, .partSerial, .partNumber: stations[s].set(i, .string(""))
            case .cycleComplete:
                stations[s].set(i, StationSim.numeric(0, signal: signal))
            case .measurement:
                stations[s].set(i, StationSim.numeric(stations[s].models[i]?.nominal ?? 0, signal: signal))
            case .result:
                stations[s].set(i, StationSim.numeric(Double(station.okCode), signal: signal))
            case .state, .faultCode, .counter, .andon, .energy, .power:
                stations[s].set(i, StationSim.numeric(0, signal: signal))
            case .condition:
                stations[s].set(i, StationSim.numeric(stations[s].conditionModels[i]?.nominal ?? 0, signal: signal))
            case nil:
                if signal.type == .string || (signal.type == nil && signal.node != nil && false) {
                    stations[s].set(i, .string(plainText(s, i)))
                } else {
                    stations[s].set(i, StationSim.numeric(0, signal: signal))
                }
            }
        }
        if !station.tracks {
            stations[s].lotSequence = 1
            setLots(s)
        } else {
            for lot in station.lotSignals { stations[s].set(lot, .string(consumerLot(s, lot))) }
        }
    }

    func setLots(_ s: Int) {
        for lot in stations[s].lotSignals {
            stations[s].set(lot, .string(lotID(station: s, signal: lot, sequence: stations[s].lotSequence)))
        }
        for (i, signal) in stations[s].config.signals.enumerated() where signal.role == nil && signal.type == .string {
            stations[s].set(i, .string(plainText(s, i)))
        }
    }

    /// A string signal without a role: a tool id that changes with each lot (`DIE-2`).
    func plainText(_ s: Int, _ i: Int) -> String {
        let signal = stations[s].config.signals[i]
        let text = signal.name.prefix(3).uppercased() + "-" + String(stations[s].lotSequence % 4 + 1)
        if let length = signal.length, text.count > length { return String(text.prefix(length)) }
        return text
    }

    func faultCodes(_ s: Int) -> [Int] {
        let process = stations[s].config.process
        if let codes = scenario.faultCodes[process], !codes.isEmpty { return codes }
        let base = 100 * ((stations[s].routeIndex ?? 8) + 1)
        return (1...5).map { base + $0 }
    }

    /// Index of an unused part event (`duplicateSerial` or `wrongPart`) that is due for station
    /// `s` (its own, or one without a station), marking it used.
    func takePartEvent(wrongPart: Bool, station s: Int, at t: Int64) -> ScenarioEvent.Kind? {
        for (i, event) in scenario.events.enumerated() where !eventUsed[i] && t >= event.atMs {
            if let id = event.station, id != stations[s].config.id { continue }
            switch event.kind {
            case .duplicateSerial where !wrongPart, .wrongPart where wrongPart:
                eventUsed[i] = true
                return event.kind
            default: continue
            }
        }
        return nil
    }

    /// Sets the key parts the station fits into the vehicle now in work: a serial made from the
    /// part type and the VIN (`ENG-…`), and the part number its spec expects (``partNumbers``).
    func scanParts(_ s: Int, _ t: Int64) {
        guard let vin = stations[s].vehicle?.vin else { return }
        let signals = stations[s].config.signals
        for (i, signal) in signals.enumerated() where signal.role == .partSerial {
            guard let type = signal.partType else { continue }
            let key = "\(stations[s].config.id)|\(type)"
            let expected: String?? = partNumbers.map { $0(vin, type) }
            if case .some(.none) = expected {
                stations[s].set(i, .string(""))
                if let n = signals.firstIndex(where: { $0.role == .partNumber && $0.partType == type }) { stations[s].set(n, .string("")) }
                continue
            }
            var serial = String(type.uppercased().filter { $0.isLetter || $0.isNumber }.prefix(3)) + "-" + String(vin.suffix(8))
            if let length = signal.length, serial.count > length { serial = String(serial.suffix(length)) }
            if let last = lastSerials[key], takePartEvent(wrongPart: false, station: s, at: t) != nil { serial = last }
            lastSerials[key] = serial
            stations[s].set(i, .string(serial))
            guard let n = signals.firstIndex(where: { $0.role == .partNumber && $0.partType == type }) else { continue }
            var number = (expected ?? nil) ?? ""
            if case .wrongPart(let wrong)? = takePartEvent(wrongPart: true, station: s, at: t) { number = wrong }
            if let length = signals[n].length, number.count > length { number = String(number.prefix(length)) }
            stations[s].set(n, .string(number))
        }
    }

    /// Sets the measurements and the result of the operation now ending.
    func measure(_ s: Int, _ t: Int64) {
        stations[s].measured = true
        if stations[s].tracks { scanParts(s, t) }
        var outOfSpec = false
        for m in stations[s].measurementSignals {
            guard let model = stations[s].models[m] else { continue }
            let signal = stations[s].config.signals[m]
            var mean = model.nominal
            var spiked: Double?
            for e in stations[s].events {
                let event = scenario.events[e]
                switch event.kind {
                case .drift(let name, let to) where name == signal.name && t >= event.atMs:
                    let progress = min(1, Double(t - event.atMs) / Double(max(1, event.durationMs)))
                    mean += (to - model.nominal) * progress
                case .excursion(let name, let value) where name == signal.name && event.active(at: t):
                    mean = value
                case .spike(let name, let value, _) where name == signal.name && t >= event.atMs && spikeLeft[e] > 0 && spiked == nil:
                    spikeLeft[e] -= 1
                    spiked = value
                default: break
                }
            }
            let x = spiked ?? (mean + model.sigma * stations[s].random.normal())
            let value = stations[s].numerics[m].value(x)
            stations[s].set(m, value)
            if let limits = signal.limits, let number = value.number, !limits.contains(number) { outOfSpec = true }
        }
        if let r = stations[s].resultSignal {
            var rate = scenario.nokRates[stations[s].config.id] ?? scenario.nokRate
            for e in stations[s].events {
                if case .nokRate(let value) = scenario.events[e].kind, scenario.events[e].active(at: t) { rate = value }
            }
            let nok = stations[s].random.chance(rate) || outOfSpec
            if nok && stations[s].tracks { stats.nokOperations += 1 }
            stations[s].set(r, stations[s].numerics[r].value(Double(nok ? stations[s].nokCode : stations[s].okCode)))
        }
    }
}

struct Vehicle: Sendable, Equatable {
    var vin: String
}

final class ProcessSim {
    let routeIndex: Int
    let name: String
    var stations: [Int] = []
    var tracksVehicles = false
    var trackingStations: [Int] = []
    var queue: [Vehicle] = []
    var turn = 0

    init(routeIndex: Int, name: String) {
        self.routeIndex = routeIndex
        self.name = name
    }
}

struct MeasurementModel: Sendable {
    var nominal: Double
    var sigma: Double
}

/// One station's simulated PLC.
final class StationSim {
    enum Phase: Sendable, Equatable { case empty, working, pulse, blocked }

    let index: Int
    let config: StationConfig
    let routeIndex: Int?
    let tracks: Bool
    let pollMs: Int64
    let tickMs: Int64
    let idealS: Double
    let jitter: Double
    let pulseMs: Int64
    let mtbfS: Double
    let mttrS: Double
    var starvedAfterMs: Int64 = .max
    var faultCodes: [Int] = [1]

    let vehicleSignal: Int?
    let cycleSignal: Int?
    let resultSignal: Int?
    let stateSignal: Int?
    let faultSignal: Int?
    let operatorSignal: Int?
    let andonSignal: Int?
    let counterSignals: [Int]
    let lotSignals: [Int]
    let measurementSignals: [Int]
    let models: [Int: MeasurementModel]
    let okCode: Int64
    let nokCode: Int64
    /// ``code(_:)`` of each state by ``MachineState/ordinal``.
    let stateCodeTable: [Int64]
    /// Each signal's type, scale and offset (config order).
    let numerics: [NumericSpec]

    private(set) var values: [SignalValue]
    /// Whether a value changed since the last ``PlantSimulator/takeChanged(_:)``.
    var changed = true
    var random: SimRandom
    var events: [Int] = []
    var phase: Phase = .empty
    var vehicle: Vehicle?
    var workLeftMs: Int64 = 0
    var measured = false
    var pulseOffMs: Int64 = 0
    var idleSinceMs: Int64 = 0
    var vehiclesDone = 0
    var cycles: Int64 = 0
    var counter: Int64 = 0
    var randomFaultCode = 0
    var randomFaultUntilMs: Int64 = 0
    var runLeftMs: Double
    var lastFaultCode = 0
    var strokesInLot = 0
    var lotSequence = 0
    var setupUntilMs: Int64 = 0
    /// The state last shown (for power by state).
    var shownState: MachineState = .idle

    let energySignals: [Int]
    let powerSignals: [Int]
    let conditionSignals: [Int]
    let conditionModels: [Int: MeasurementModel]
    let meterWraps: [Int: Double]
    let energyModel: EnergySpec
    var metered: Bool { !energySignals.isEmpty || !powerSignals.isEmpty || !conditionSignals.isEmpty }
    /// Energy used since the simulation started (kWh).
    var kWh = 0.0
    /// Condition noise, a stream of its own (measurements stay as without condition signals).
    var conditionRandom: SimRandom

    init(index: Int, config: StationConfig, routeIndex: Int?, scenario: Scenario, seed: UInt64, tickMs: Int64) {
        self.index = index
        self.config = config
        self.routeIndex = routeIndex
        self.tickMs = tickMs
        tracks = config.tracksVehicles
        pollMs = Int64(max(1, config.pollIntervalMs))
        idealS = config.idealCycleTimeS ?? (tracks ? 60 : 10)
        jitter = scenario.cycleTimeJitter
        pulseMs = max(Int64(scenario.cyclePulseMs), 2 * pollMs)
        mtbfS = scenario.mtbfS
        mttrS = scenario.mttrS
        func first(_ role: SignalRole) -> Int? { config.signals.firstIndex { $0.role == role } }
        func all(_ role: SignalRole) -> [Int] { config.signals.indices.filter { config.signals[$0].role == role } }
        vehicleSignal = first(.vehicleId)
        cycleSignal = first(.cycleComplete)
        resultSignal = first(.result)
        stateSignal = first(.state)
        faultSignal = first(.faultCode)
        operatorSignal = first(.operator)
        andonSignal = first(.andon)
        counterSignals = all(.counter)
        lotSignals = all(.lotId)
        measurementSignals = all(.measurement)
        var models: [Int: MeasurementModel] = [:]
        for m in measurementSignals {
            let signal = config.signals[m]
            let spec = scenario.measurements["\(config.id).\(signal.name)"] ?? scenario.measurements[signal.name]
            var nominal = 0.0, sigma = 0.0
            switch (signal.limits?.low, signal.limits?.high) {
            case let (low?, high?): nominal = (low + high) / 2; sigma = (high - low) * scenario.sigmaFraction
            case let (low?, nil): nominal = low + max(1, abs(low) * 0.1); sigma = abs(nominal - low) * scenario.sigmaFraction
            case let (nil, high?): nominal = high - max(1, abs(high) * 0.1); sigma = abs(high - nominal) * scenario.sigmaFraction
            case (nil, nil): nominal = 0; sigma = 0
            }
            models[m] = MeasurementModel(nominal: spec?.nominal ?? nominal, sigma: spec?.sigma ?? sigma)
        }
        self.models = models
        energySignals = all(.energy)
        powerSignals = all(.power)
        conditionSignals = all(.condition)
        var conditionModels: [Int: MeasurementModel] = [:]
        for c in conditionSignals {
            let signal = config.signals[c]
            let spec = scenario.measurements["\(config.id).\(signal.name)"] ?? scenario.measurements[signal.name]
            var nominal = 0.0, sigma = 0.0
            switch (signal.limits?.low, signal.limits?.high) {
            case let (low?, high?): nominal = low + (high - low) * 0.4; sigma = (high - low) * 0.01
            case let (nil, high?): nominal = high * 0.6; sigma = abs(high) * 0.01
            case let (low?, nil): nominal = low * 1.5 + 1; sigma = abs(nominal) * 0.01
            case (nil, nil): nominal = 1; sigma = 0.01
            }
            conditionModels[c] = MeasurementModel(nominal: spec?.nominal ?? nominal, sigma: spec?.sigma ?? sigma)
        }
        self.conditionModels = conditionModels
        var wraps: [Int: Double] = [:]
        for m in energySignals {
            let signal = config.signals[m]
            let scale = abs(signal.scale ?? 1)
            switch signal.type {
            case .uint16?: wraps[m] = 65_536 * scale
            case .uint32?: wraps[m] = 4_294_967_296 * scale
            default: break
            }
        }
        meterWraps = wraps
        energyModel = scenario.energy[config.id] ?? StationSim.defaultEnergy(process: config.process)
        conditionRandom = SimRandom(seed: seed, stream: "condition:" + config.id)
        let result = resultSignal.map { config.signals[$0] }
        okCode = result?.okValues.first ?? 1
        let okValues = Set(result?.okValues ?? [1])
        var nok: Int64 = 2
        while okValues.contains(nok) { nok += 1 }
        nokCode = nok
        var codes: [MachineState: Int64] = [:]
        if let state = stateSignal.map({ config.signals[$0] }) {
            for (code, name) in state.states.sorted(by: { $0.key < $1.key }) {
                if let s = MachineState(rawValue: name), codes[s] == nil { codes[s] = code }
            }
            if state.states.isEmpty {
                codes = Dictionary(uniqueKeysWithValues: MachineState.allCases.map { ($0, $0.conventionalCode) })
            }
        }

        var table = [Int64](repeating: 0, count: MachineState.allCases.count)
        for state in MachineState.allCases { table[state.ordinal] = codes[state] ?? codes[.idle] ?? 0 }
        stateCodeTable = table
        numerics = config.signals.map(NumericSpec.init)
        values = Array(repeating: .int(0), count: config.signals.count)
        random = SimRandom(seed: seed, stream: "station:" + config.id)
        runLeftMs = mtbfS > 0 ? random.exponential(mean: mtbfS * 1000) : .infinity
    }

    /// Running and idle power of a process's station when the scenario does not say (`energy`).
    static func defaultEnergy(process: String) -> EnergySpec {
        switch process {
        case "stamping": EnergySpec(runKW: 250, idleKW: 40)
        case "welding": EnergySpec(runKW: 90, idleKW: 15)
        case "paint": EnergySpec(runKW: 120, idleKW: 60)
        case "assembly": EnergySpec(runKW: 30, idleKW: 8)
        case "inspection": EnergySpec(runKW: 10, idleKW: 4)
        default: EnergySpec(runKW: 55, idleKW: 18)
        }
    }

    func set(_ i: Int, _ value: SignalValue) {
        if values[i] != value {
            values[i] = value
            changed = true
        }
    }

    func attachEvents(_ all: [ScenarioEvent]) {
        events = all.indices.filter { all[$0].station == config.id }
    }

    /// A cycle time in ms: ideal × (1 + |jitter noise|), at least 98 % of ideal, a whole number of ticks.
    func cycleTime() -> Int64 {
        let factor = max(0.98, 1 + jitter * random.normal())
        let ms = Int64(idealS * 1000 * factor)
        return max(tickMs, (ms / tickMs) * tickMs)
    }

    /// A value of `signal`'s type for the number `x` (after scale/offset, as a poll would decode it).
    static func numeric(_ x: Double, signal: SignalConfig) -> SignalValue {
        NumericSpec(signal).value(x)
    }

    func canTake(_ t: Int64, events all: [ScenarioEvent]) -> Bool {
        phase == .empty && currentFault(t, events: all) == 0 && forcedState(t, events: all) == nil
    }

    func injectedFault(_ t: Int64, events all: [ScenarioEvent]) -> Int? {
        for e in events {
            if case .fault(let code) = all[e].kind, all[e].active(at: t) { return code }
        }
        return nil
    }

    func currentFault(_ t: Int64, events all: [ScenarioEvent]) -> Int {
        if let code = injectedFault(t, events: all) { return code }
        return t < randomFaultUntilMs ? randomFaultCode : 0
    }

    func forcedState(_ t: Int64, events all: [ScenarioEvent]) -> MachineState? {
        for e in events {
            if case .state(let state) = all[e].kind, all[e].active(at: t) { return state }
        }
        return nil
    }

    /// Runs the random-fault clock; returns whether the station is faulted at `t`.
    func updateFault(_ t: Int64, events all: [ScenarioEvent], codes: [Int], running: Bool, stats: inout SimulationStats) -> Bool {
        let injected = injectedFault(t, events: all)
        if injected == nil, t >= randomFaultUntilMs, running {
            runLeftMs -= Double(tickMs)
            if runLeftMs <= 0 {
                randomFaultCode = codes[random.below(codes.count)]
                randomFaultUntilMs = t + max(20_000, Int64(random.exponential(mean: mttrS * 1000)))
                runLeftMs = random.exponential(mean: mtbfS * 1000)
            }
        }
        let code = currentFault(t, events: all)
        if code != 0 && code != lastFaultCode { stats.faults += 1 }
        lastFaultCode = code
        return code != 0
    }

    func completeCycle(_ t: Int64) {
        cycles += 1
        counter += 1
        if let c = cycleSignal {
            let signal = config.signals[c]
            if signal.type == .bool || signal.address?.table.isRegister == false && signal.type == nil {
                set(c, .bool(true))
            } else {
                set(c, numerics[c].value(Double(cycles % 4_294_967_296)))
            }
        }
        for k in counterSignals { set(k, numerics[k].value(Double(counter % 4_294_967_296))) }
        phase = .pulse
        pulseOffMs = t + pulseMs
    }

    func endPulse() {
        if let c = cycleSignal, case .bool = values[c] { set(c, .bool(false)) }
    }

    func leave(_ t: Int64) {
        vehicle = nil
        phase = .empty
        idleSinceMs = t
        if let v = vehicleSignal { set(v, .string("")) }
    }

    func code(_ state: MachineState) -> Int64 {
        stateCodeTable[state.ordinal]
    }

    func showState(_ t: Int64, events all: [ScenarioEvent]) {
        let fault = currentFault(t, events: all)
        if let f = faultSignal { set(f, numerics[f].value(Double(fault))) }
        if let a = andonSignal {
            var code = 0
            for e in events { if case .andon(let c) = all[e].kind, all[e].active(at: t) { code = c } }
            set(a, numerics[a].value(Double(code)))
        }
        let state: MachineState
        if fault != 0 {
            state = .fault
        } else if !tracks {
            if t < setupUntilMs { state = .setup }
            else if phase == .pulse || workLeftMs > 0 { state = .running }
            else { state = forcedState(t, events: all) ?? .idle }
        } else {
            switch phase {
            case .working, .pulse: state = .running
            case .blocked: state = .blocked
            case .empty:
                if let forced = forcedState(t, events: all) { state = forced }
                else { state = t - idleSinceMs >= starvedAfterMs ? .starved : .idle }
            }
        }
        shownState = state
        guard let s = stateSignal else { return }
        set(s, numerics[s].value(Double(code(state))))
    }
}

/// What ``StationSim/numeric(_:signal:)`` needs of a signal (its type, scale and offset), copied
/// out once per signal: the simulation step makes values without copying whole `SignalConfig`s.
struct NumericSpec {
    let type: DataType?
    let scale: Double?
    let offset: Double?

    init(_ signal: SignalConfig) {
        type = signal.type
        scale = signal.scale
        offset = signal.offset
    }

    /// `SignalConfig.scaled(_:)`: raw × scale + offset.
    func scaled(_ raw: Double) -> Double { raw * (scale ?? 1) + (offset ?? 0) }

    /// A value of the signal's type for the number `x` (after scale/offset, as a poll would decode it).
    func value(_ x: Double) -> SignalValue {
        let scaled = scale != nil || offset != nil
        let raw = scaled ? (x - (offset ?? 0)) / ((scale ?? 1) == 0 ? 1 : scale!) : x
        func finish(_ r: Double) -> SignalValue { scaled ? .double(self.scaled(r)) : .double(r) }
        func integer(_ range: ClosedRange<Double>) -> SignalValue {
            let r = min(max(raw.rounded(), range.lowerBound), range.upperBound)
            return scaled ? .double(self.scaled(r)) : .int(Int64(r))
        }
        switch type {
        case .bool?: return .bool(x != 0)
        case .string?: return .string(String(x))
        case .float32?, .float?: return finish(Double(Float((raw * 1000).rounded() / 1000)))
        case .int16?: return integer(-32768...32767)
        case .uint16?: return integer(0...65535)
        case .int32?: return integer(-2_147_483_648...2_147_483_647)
        case .uint32?: return integer(0...4_294_967_295)
        case .byte?: return integer(0...255)
        case .sbyte?: return integer(-128...127)
        case .int64?, .uint64?: return integer(-9e15...9e15)
        case .float64?, .double?, .datetime?, nil: return finish((raw * 10000).rounded() / 10000)
        }
    }
}
