import Foundation
import PlantModel
import Runtime

/// The shift window the counters belong to, and the KPIs over it: station and line figures from
/// summed times and counts. Part of ``QualityEngine``; the per-station counters live in its
/// ``StationRuntime``s.
struct ShiftAccounting: Sendable {
    let config: PlantConfig

    /// The current shift window (nil before the first input).
    private(set) var window: ShiftWindow?
    /// Where the window's figures start: its start, the first input if that came later, or the
    /// saved counters' start after a restart inside the shift.
    private(set) var windowStart = Date(timeIntervalSince1970: 0)
    private var firstTime: Date?
    /// Counters saved before a restart, taken back if the first input falls in their shift.
    private var resumeFrom: ShiftCounters?

    init(config: PlantConfig) {
        self.config = config
    }

    /// Notes an input's time (the first one bounds the first window's figures).
    mutating func note(_ t: Date) {
        if firstTime == nil { firstTime = t }
    }

    /// Goes on from `counters` if the first window matches them; ignored once a window started.
    mutating func resume(_ counters: ShiftCounters) {
        guard window == nil else { return }
        resumeFrom = counters
    }

    /// Starts the window around `t`. Returns the saved counters to go on from when this is the
    /// first window and they belong to it (same name, start and end).
    mutating func startWindow(at t: Date) -> ShiftCounters? {
        let first = window == nil
        let w = shiftWindow(at: t)
        window = w
        windowStart = max(w.start, firstTime ?? w.start)
        defer { resumeFrom = nil }
        guard first, let saved = resumeFrom, saved.shiftName == w.name, saved.shiftStart == w.start, saved.shiftEnd == w.end else {
            return nil
        }
        // A restart inside the shift: its figures go on from the saved counters. The time the
        // server was down stays in the shift's elapsed time with no state, as for a station offline.
        windowStart = max(w.start, min(windowStart, saved.countedFrom))
        return saved
    }

    /// The configured shift around `t`; `day` (midnight to midnight) without shifts, `off-shift`
    /// between shifts.
    func shiftWindow(at t: Date) -> ShiftWindow {
        if let found = config.shift(at: t) {
            return ShiftWindow(name: found.shift.name, start: found.start, end: found.end)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = config.timezone
        let midnight = calendar.startOfDay(for: t)
        if config.shifts.isEmpty {
            let end = calendar.date(byAdding: .day, value: 1, to: midnight) ?? midnight.addingTimeInterval(86_400)
            return ShiftWindow(name: "day", start: midnight, end: end)
        }
        // Between shifts: from the last shift end to the next shift start.
        var start = midnight.addingTimeInterval(-86_400), end = midnight.addingTimeInterval(2 * 86_400)
        for shift in config.shifts {
            for day in -1...1 {
                let s = midnight.addingTimeInterval(Double(day) * 86_400 + Double(shift.startMinute) * 60)
                let e = s.addingTimeInterval(Double(shift.durationMinutes) * 60)
                if s > t && s < end { end = s }
                if e <= t && e > start { start = e }
            }
        }
        return ShiftWindow(name: "off-shift", start: start, end: end)
    }

    // MARK: Figures

    /// Seconds of the window up to `t`.
    func elapsed(at t: Date) -> Double { max(0, t.timeIntervalSince(windowStart)) }

    /// A station's current state since its last accounted time, not yet in its counters.
    func pending(_ s: StationRuntime, at t: Date) -> (MachineState, Double)? {
        guard let state = s.state, s.connection != .offline, let last = s.lastAccounted else { return nil }
        return (state, t.timeIntervalSince(max(last, windowStart)))
    }

    /// Adds a station's time up to `t` to its counters, in the state it was in.
    func account(_ s: inout StationRuntime, upTo t: Date) {
        let last = s.lastAccounted
        let from = max(last ?? t, windowStart)
        if let state = s.state, s.connection != .offline, t > from {
            let code = s.faultCode
            s.acc.account(state, faultCode: code, seconds: t.timeIntervalSince(from))
        }
        if t > (last ?? .distantPast) { s.lastAccounted = t }
    }

    /// A station's KPIs at `t`.
    func stationKPI(_ s: StationRuntime, at t: Date) -> StationKPI {
        s.acc.snapshot(elapsed: elapsed(at: t), pending: pending(s, at: t), pendingFaultCode: s.faultCode, state: s.state)
    }

    /// The line's KPIs at `t`, from the stations' summed times and counts (never averaged percentages).
    func lineKPI(_ stations: [StationRuntime], at t: Date) -> LineKPI {
        let e = elapsed(at: t)
        var run = 0.0, planned = 0.0, fault = 0.0, idealTime = 0.0, idealRun = 0.0
        var good = 0, total = 0, first = 0, firstGood = 0, faults = 0
        var downtime: [String: Double] = [:]
        var byProcess: [String: (Int, Int)] = [:]
        for s in stations {
            let p = pending(s, at: t)
            let f = s.acc.figures(elapsed: e, pending: p)
            run += f.run
            planned += f.planned
            fault += f.fault
            if let ideal = s.config.idealCycleTimeS {
                idealTime += ideal * Double(s.acc.totalCount) + s.acc.idealDelta
                idealRun += f.run
            }
            good += s.acc.goodCount
            total += s.acc.totalCount
            first += s.acc.firstAttempts
            firstGood += s.acc.firstAttemptsGood
            faults += s.acc.faults
            for (code, seconds) in s.acc.downtime { downtime[code, default: 0] += seconds }
            if let (state, dt) = p, state == .fault, dt > 0 { downtime[s.faultCode, default: 0] += dt }
            let current = byProcess[s.config.process] ?? (0, 0)
            byProcess[s.config.process] = (current.0 + s.acc.firstAttemptsGood, current.1 + s.acc.firstAttempts)
        }
        var rty: Double?
        for process in config.route {
            guard let (g, n) = byProcess[process], n > 0 else { continue }
            rty = (rty ?? 1) * Double(g) / Double(n)
        }
        let inspection = config.route.contains("inspection") ? "inspection" : config.route.last
        let inspectionFpy = inspection.flatMap { byProcess[$0] }.flatMap { ratio(Double($0.0), Double($0.1)) }
        let lastProcess = config.route.last
        let completed = stations.filter { $0.config.process == lastProcess }.map(\.acc.totalCount).reduce(0, +)
        let a = planned > 0 ? run / planned : nil
        let perf = idealRun > 0 ? min(1, idealTime / idealRun) : nil
        let q = total > 0 ? Double(good) / Double(total) : nil
        var oee: Double?
        if let a, let perf { oee = round6(a * perf * (q ?? 1)) }
        return LineKPI(availability: a.map(round6), performance: perf.map(round6), quality: q.map(round6), oee: oee,
                       fpy: ratio(Double(firstGood), Double(first)), inspectionFpy: inspectionFpy, rty: rty.map(round6),
                       goodCount: good, totalCount: total, completedVehicles: completed,
                       throughputPerHour: e > 0 ? round6(Double(completed) / (e / 3600)) : nil,
                       downtimeByFault: downtime.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                       mtbfS: faults > 0 ? round6(run / Double(faults)) : nil,
                       mttrS: faults > 0 ? round6(fault / Double(faults)) : nil)
    }
}
