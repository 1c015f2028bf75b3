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

/// A station's KPIs for a shift (contract §4 `stations[]`). Ratios are 0–1; nil when undefined
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
        ])
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

    init(id: String, process: String, ideal: Double?) {
        self.id = id
        self.process = process
        self.ideal = ideal
    }

    static func index(_ state: MachineState) -> Int {
        switch state {
        case .running: 0
        case .idle: 1
        case .fault: 2
        case .blocked: 3
        case .starved: 4
        case .setup: 5
        case .maintenance: 6
        }
    }

    mutating func account(_ state: MachineState, faultCode: String, seconds dt: Double) {
        guard dt > 0 else { return }
        seconds[Self.index(state)] += dt
        if state == .fault { downtime[faultCode, default: 0] += dt }
    }

    mutating func count(good: Bool, firstAttempt: Bool, cycleTime: Double?) {
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
    /// last poll) included.
    func figures(elapsed: Double, pending: (MachineState, Double)?) -> (run: Double, planned: Double, fault: Double, a: Double?, p: Double?, q: Double?, oee: Double?) {
        var s = seconds
        if let (state, dt) = pending, dt > 0 { s[Self.index(state)] += dt }
        let run = s[0]
        let planned = max(0, elapsed - s[5] - s[6])
        let a = planned > 0 ? run / planned : nil
        let p = ideal.flatMap { ideal in run > 0 ? min(1, ideal * Double(totalCount) / run) : nil }
        let q = totalCount > 0 ? Double(goodCount) / Double(totalCount) : nil
        var oee: Double?
        if let a, let p { oee = round6(a * p * (q ?? 1)) } // no parts: P = 0, so OEE = 0
        return (run, planned, s[2], a.map(round6), p.map(round6), q.map(round6), oee)
    }

    func snapshot(elapsed: Double, pending: (MachineState, Double)?, pendingFaultCode: String, state: MachineState?) -> StationKPI {
        let f = figures(elapsed: elapsed, pending: pending)
        var downtime = self.downtime
        if let (pendingState, dt) = pending, pendingState == .fault, dt > 0 { downtime[pendingFaultCode, default: 0] += dt }
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
