import Foundation
import PlantModel
import Runtime

/// Cycle time figures in seconds (nearest-rank percentiles).
public struct CycleTimeFigures: Sendable, Equatable {
    public var mean: Double?
    public var p50: Double?
    public var p95: Double?

    public init(mean: Double? = nil, p50: Double? = nil, p95: Double? = nil) {
        self.mean = mean
        self.p50 = p50
        self.p95 = p95
    }

    public var json: JSON { .obj([("mean", .number(mean)), ("p50", .number(p50)), ("p95", .number(p95))]) }

    /// Mean and nearest-rank percentiles (p = the value at rank ⌈p·n⌉ of the sorted values).
    static func of(sorted: [Double], sum: Double, count: Int) -> CycleTimeFigures {
        guard !sorted.isEmpty, count > 0 else { return CycleTimeFigures() }
        func rank(_ p: Double) -> Double { sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))] }
        return CycleTimeFigures(mean: round6(sum / Double(count)), p50: rank(0.5), p95: rank(0.95))
    }
}

func round6(_ x: Double) -> Double { (x * 1_000_000).rounded() / 1_000_000 }
func ratio(_ a: Double, _ b: Double) -> Double? { b > 0 ? round6(a / b) : nil }

/// A station's KPIs for a shift (docs/openapi.json `StationKPI`). Ratios are 0–1; nil when undefined
/// (no planned time, no run time, no count, no ideal cycle time).
public struct StationKPI: Sendable, Equatable {
    public var id: String
    public var oee: Double?
    public var availability: Double?
    public var performance: Double?
    public var quality: Double?
    public var fpy: Double?
    public var goodCount: Int
    public var totalCount: Int
    public var throughputPerHour: Double?
    public var cycleTimeS: CycleTimeFigures
    public var downtimeByFault: [(code: String, seconds: Double)]
    public var mtbfS: Double?
    public var mttrS: Double?
    /// Extra figures behind the ratios.
    public var runTimeS: Double
    public var plannedTimeS: Double
    public var faults: Int
    public var state: String?
    /// The shift's energy (nil: the station has no `energy` or `power` signal).
    public var energy: EnergyFigures? = nil
    /// Cp and Cpk of each measurement with limits over the shift, by signal name.
    public var capability: [(signal: String, figures: Capability)] = []

    public static func == (a: StationKPI, b: StationKPI) -> Bool { a.json == b.json }

    public var json: JSON {
        .obj([
            ("id", .string(id)),
            ("oee", .number(oee)),
            ("availability", .number(availability)),
            ("performance", .number(performance)),
            ("quality", .number(quality)),
            ("fpy", .number(fpy)),
            ("goodCount", .int(Int64(goodCount))),
            ("totalCount", .int(Int64(totalCount))),
            ("throughputPerHour", .number(throughputPerHour)),
            ("cycleTimeS", cycleTimeS.json),
            ("downtimeByFault", .object(downtimeByFault.map { ($0.code, .double(round6($0.seconds))) })),
            ("mtbfS", .number(mtbfS)),
            ("mttrS", .number(mttrS)),
            ("runTimeS", .double(round6(runTimeS))),
            ("plannedTimeS", .double(round6(plannedTimeS))),
            ("faults", .int(Int64(faults))),
            ("state", .str(state)),
            ("energy", energy?.json ?? .null),
            ("capability", .object(capability.map { ($0.signal, $0.figures.json) })),
        ])
    }
}

/// The KPIs of a shift as typed values (``QualityEngine/kpis()``); the API writes their JSON.
public struct ShiftKPIs: Sendable {
    /// The shift they belong to (nil before the first input).
    public var shift: ShiftWindow?
    public var line: LineKPI
    /// Every configured station, in config order.
    public var stations: [StationKPI]
    /// Alerts raised in the trailing 10 minutes.
    public var alertsPer10Min: Int
    /// Percent (0–100) of the shift's elapsed time in an alert flood.
    public var floodTimePct: Double
    /// Keys of chattering alerts, sorted.
    public var chattering: [String]
    /// Defects raised this shift by code and by station, most first.
    public var defectsByCode: [(code: String, count: Int)]
    public var defectsByStation: [(station: String, count: Int)]
    /// Where the figures start: the shift's start, or later when the server started inside it.
    public var countedFrom: Date?
    /// Made after a restart from counters saved before the stop (the shift ended while the server
    /// was down), not taken at the shift's end.
    public var fromSavedCounters = false
    /// Response and andon figures (README "Andon and downtime").
    public var response: ResponseKPIs?
    /// Downtime seconds by reason and category, per station and line.
    public var downtime: DowntimeKPIs?
}

/// A station's counters of the current shift, as saved in ``ShiftCounters``.
public struct SavedStationCounters: Sendable, Equatable, Codable {
    public var id: String
    /// Seconds in each machine state, by state name.
    public var seconds: [String: Double]
    public var downtimeByFault: [String: Double]
    public var faults: Int
    public var totalCount: Int
    public var goodCount: Int
    public var firstAttempts: Int
    public var firstAttemptsGood: Int
    /// The shift's cycle times, sorted (at most the first 50,000); in JSON as base64 of 8-byte
    /// little-endian numbers, so a long shift encodes in a copy, not 50,000 number conversions.
    public var cycleTimes: [Double]
    public var cycleTimeSum: Double
    public var cycleTimeCount: Int
    /// Seconds running inside the shift's breaks (they count as planned time).
    public var breakRunSeconds: Double = 0
    /// The shift's kWh and kWh while not running (absent in counters saved before energy was counted).
    public var energyKWh: Double = 0
    public var idleKWh: Double = 0
    /// Per measurement: n, mean and sum of squared deviations (for Cp and Cpk).
    var capability: [String: CapabilityAccumulator] = [:]
}

extension SavedStationCounters {
    private enum CodingKeys: String, CodingKey {
        case id, seconds, downtimeByFault, faults, totalCount, goodCount, firstAttempts, firstAttemptsGood, cycleTimes
        case cycleTimeSum, cycleTimeCount, breakRunSeconds, energyKWh, idleKWh, capability
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let raw = try c.decode(Data.self, forKey: .cycleTimes)
        guard raw.count % 8 == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .cycleTimes, in: c, debugDescription: "not a list of 8-byte numbers")
        }
        let cycleTimes = raw.withUnsafeBytes { bytes in
            stride(from: 0, to: bytes.count, by: 8).map {
                Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: $0, as: UInt64.self)))
            }
        }
        self.init(id: try c.decode(String.self, forKey: .id), seconds: try c.decode([String: Double].self, forKey: .seconds),
                  downtimeByFault: try c.decode([String: Double].self, forKey: .downtimeByFault),
                  faults: try c.decode(Int.self, forKey: .faults), totalCount: try c.decode(Int.self, forKey: .totalCount),
                  goodCount: try c.decode(Int.self, forKey: .goodCount), firstAttempts: try c.decode(Int.self, forKey: .firstAttempts),
                  firstAttemptsGood: try c.decode(Int.self, forKey: .firstAttemptsGood), cycleTimes: cycleTimes,
                  cycleTimeSum: try c.decode(Double.self, forKey: .cycleTimeSum), cycleTimeCount: try c.decode(Int.self, forKey: .cycleTimeCount),
                  breakRunSeconds: try c.decodeIfPresent(Double.self, forKey: .breakRunSeconds) ?? 0,
                  energyKWh: try c.decodeIfPresent(Double.self, forKey: .energyKWh) ?? 0,
                  idleKWh: try c.decodeIfPresent(Double.self, forKey: .idleKWh) ?? 0,
                  capability: try c.decodeIfPresent([String: CapabilityAccumulator].self, forKey: .capability) ?? [:])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(downtimeByFault, forKey: .downtimeByFault)
        try c.encode(faults, forKey: .faults)
        try c.encode(totalCount, forKey: .totalCount)
        try c.encode(goodCount, forKey: .goodCount)
        try c.encode(firstAttempts, forKey: .firstAttempts)
        try c.encode(firstAttemptsGood, forKey: .firstAttemptsGood)
        var raw = Data(capacity: cycleTimes.count * 8)
        for value in cycleTimes { withUnsafeBytes(of: value.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        try c.encode(raw, forKey: .cycleTimes)
        try c.encode(cycleTimeSum, forKey: .cycleTimeSum)
        try c.encode(cycleTimeCount, forKey: .cycleTimeCount)
        try c.encode(breakRunSeconds, forKey: .breakRunSeconds)
        try c.encode(energyKWh, forKey: .energyKWh)
        try c.encode(idleKWh, forKey: .idleKWh)
        if !capability.isEmpty { try c.encode(capability, forKey: .capability) }
    }
}

/// The counters of the current shift, saved so that a restart inside the same shift goes on from
/// them (``QualityEngine/shiftCounters`` and ``QualityEngine/resume(_:)``).
public struct ShiftCounters: Sendable, Equatable, Codable {
    public var shiftName: String
    public var shiftStart: Date
    public var shiftEnd: Date
    /// Where the shift's figures start: the shift's start, or the first input if that came later.
    public var countedFrom: Date
    /// The engine's time when they were taken.
    public var takenAt: Date
    public var stations: [SavedStationCounters]
    public var defectsByCode: [String: Int]
    public var defectsByStation: [String: Int]
    public var floodSeconds: Double
    /// Response and andon counters (absent in counters saved before they existed).
    public var response: ResponseCounters?

    /// The JSON the store keeps.
    public func encoded() throws -> String {
        String(decoding: try JSONEncoder().encode(self), as: UTF8.self)
    }

    public static func decode(_ text: String) throws -> ShiftCounters {
        try JSONDecoder().decode(ShiftCounters.self, from: Data(text.utf8))
    }
}

/// Running counters of one station in the current shift.
struct StationAccumulator: Sendable {
    let id: String
    let process: String
    let ideal: Double?
    /// Seconds in each machine state (indexed like `MachineState.allCases`).
    var seconds = [Double](repeating: 0, count: MachineState.allCases.count)
    var downtime: [String: Double] = [:]
    var faults = 0
    var totalCount = 0
    var goodCount = 0
    var firstAttempts = 0
    var firstAttemptsGood = 0
    /// Cycle times of the shift, kept sorted (for percentiles without sorting on every snapshot).
    var sortedCycleTimes: [Double] = []
    var cycleTimeSum = 0.0
    var cycleTimeCount = 0
    /// Σ (a build spec's ideal cycle time − the station's) over the shift's counted operations:
    /// the performance figure uses each vehicle's own ideal time. Exactly 0 without specs.
    var idealDelta = 0.0
    /// Seconds running inside the shift's planned breaks (also in the running seconds): planned
    /// time, since the station worked through the break.
    var breakRun = 0.0
    /// Whether the station has an energy meter or power signal.
    var metered = false
    var energyKWh = 0.0
    var idleKWh = 0.0
    var capability: [String: CapabilityAccumulator] = [:]

    init(id: String, process: String, ideal: Double?) {
        self.id = id
        self.process = process
        self.ideal = ideal
    }

    /// The counters as saved; ``restore(_:)`` takes them back.
    var saved: SavedStationCounters {
        var byState: [String: Double] = [:]
        for state in MachineState.allCases where seconds[state.ordinal] > 0 { byState[state.rawValue] = seconds[state.ordinal] }
        return SavedStationCounters(id: id, seconds: byState, downtimeByFault: downtime, faults: faults, totalCount: totalCount,
                                    goodCount: goodCount, firstAttempts: firstAttempts, firstAttemptsGood: firstAttemptsGood,
                                    cycleTimes: sortedCycleTimes, cycleTimeSum: cycleTimeSum, cycleTimeCount: cycleTimeCount,
                                    breakRunSeconds: breakRun,
                                    energyKWh: energyKWh, idleKWh: idleKWh, capability: capability)
    }

    /// Takes back saved counters (states it does not know are left out).
    mutating func restore(_ saved: SavedStationCounters) {
        seconds = [Double](repeating: 0, count: MachineState.allCases.count)
        for (name, value) in saved.seconds {
            if let state = MachineState(rawValue: name) { seconds[state.ordinal] = value }
        }
        downtime = saved.downtimeByFault
        faults = saved.faults
        totalCount = saved.totalCount
        goodCount = saved.goodCount
        firstAttempts = saved.firstAttempts
        firstAttemptsGood = saved.firstAttemptsGood
        sortedCycleTimes = saved.cycleTimes.sorted()
        cycleTimeSum = saved.cycleTimeSum
        cycleTimeCount = saved.cycleTimeCount
        breakRun = saved.breakRunSeconds
        energyKWh = saved.energyKWh
        idleKWh = saved.idleKWh
        capability = saved.capability
    }

    mutating func account(_ state: MachineState, faultCode: String, seconds dt: Double) {
        guard dt > 0 else { return }
        seconds[state.ordinal] += dt
        if state == .fault { downtime[faultCode, default: 0] += dt }
    }

    mutating func count(good: Bool, firstAttempt: Bool, cycleTime: Double?, ideal specIdeal: Double? = nil) {
        if let specIdeal, let ideal { idealDelta += specIdeal - ideal }
        totalCount += 1
        if good { goodCount += 1 }
        if firstAttempt {
            firstAttempts += 1
            if good { firstAttemptsGood += 1 }
        }
        if let cycleTime, cycleTime > 0 {
            cycleTimeSum += cycleTime
            cycleTimeCount += 1
            // Percentiles over the first 50,000 cycles of a shift (a 1 s cycle for 8 h is 28,800).
            if sortedCycleTimes.count < 50_000 {
                var low = 0, high = sortedCycleTimes.count
                while low < high {
                    let mid = (low + high) / 2
                    if sortedCycleTimes[mid] <= cycleTime { low = mid + 1 } else { high = mid }
                }
                sortedCycleTimes.insert(cycleTime, at: low)
            }
        }
    }

    /// Run time, planned time and OEE parts with a pending interval (the current state since the
    /// last poll) included. `breaks`: seconds of planned breaks in `elapsed` (planned time leaves
    /// them out, except where the station ran through them).
    func figures(elapsed: Double, breaks: Double = 0, pending: PendingTime?) -> (run: Double, planned: Double, fault: Double, a: Double?, p: Double?, q: Double?, oee: Double?) {
        var s = seconds
        var breakRun = self.breakRun
        if let pending, pending.seconds > 0 {
            s[pending.state.ordinal] += pending.seconds
            breakRun += pending.breakRun
        }
        let run = s[0]
        let plannedStops = MachineState.allCases.filter { $0.isPlannedStop }.reduce(0.0) { $0 + s[$1.ordinal] }
        let planned = max(0, elapsed - breaks + breakRun - plannedStops)
        let a = planned > 0 ? run / planned : nil
        let p = ideal.flatMap { ideal in run > 0 ? min(1, (ideal * Double(totalCount) + idealDelta) / run) : nil }
        let q = totalCount > 0 ? Double(goodCount) / Double(totalCount) : nil
        var oee: Double?
        if let a, let p { oee = round6(a * p * (q ?? 1)) } // no parts: P = 0, so OEE = 0
        return (run, planned, s[2], a.map(round6), p.map(round6), q.map(round6), oee)
    }

    func snapshot(elapsed: Double, breaks: Double = 0, pending: PendingTime?, pendingFaultCode: String, state: MachineState?) -> StationKPI {
        let f = figures(elapsed: elapsed, breaks: breaks, pending: pending)
        var downtime = self.downtime
        if let pending, pending.state == .fault, pending.seconds > 0 { downtime[pendingFaultCode, default: 0] += pending.seconds }
        return StationKPI(
            id: id, oee: f.oee, availability: f.a, performance: f.p, quality: f.q,
            fpy: ratio(Double(firstAttemptsGood), Double(firstAttempts)),
            goodCount: goodCount, totalCount: totalCount,
            throughputPerHour: elapsed > 0 ? round6(Double(totalCount) / (elapsed / 3600)) : nil,
            cycleTimeS: .of(sorted: sortedCycleTimes, sum: cycleTimeSum, count: cycleTimeCount),
            downtimeByFault: downtime.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
            mtbfS: faults > 0 ? round6(f.run / Double(faults)) : nil,
            mttrS: faults > 0 ? round6(f.fault / Double(faults)) : nil,
            runTimeS: f.run, plannedTimeS: f.planned, faults: faults, state: state?.rawValue)
    }
}
