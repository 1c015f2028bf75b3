import Foundation
import PlantModel
import Runtime

/// A station's state since its last poll, as the counters will take it: `seconds` in `state`
/// (a break's share left out unless running), and `breakRun`, the running time inside breaks.
struct PendingTime {
    var state: MachineState
    var seconds: Double
    var breakRun: Double
}

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

    /// Saved counters (``resume(_:)``) whose shift ended by `t`, before the first window starts:
    /// their shift's record was never taken.
    func savedCountersEnded(before t: Date) -> ShiftCounters? {
        guard window == nil, let saved = resumeFrom, saved.shiftEnd <= t, saved.shiftName != "off-shift" else { return nil }
        return saved
    }

    /// Makes saved counters' shift the window (to compute its figures): breaks and date from the
    /// calendar when it still has that shift.
    mutating func restoreWindow(_ saved: ShiftCounters) -> ShiftWindow {
        var w = shiftWindow(at: saved.shiftStart)
        if w.name != saved.shiftName || w.start != saved.shiftStart || w.end != saved.shiftEnd {
            w = ShiftWindow(name: saved.shiftName, start: saved.shiftStart, end: saved.shiftEnd, date: config.localDate(of: saved.shiftStart))
        }
        window = w
        windowStart = max(w.start, saved.countedFrom)
        return w
    }

    /// The configured shift around `t`; `day` (midnight to midnight) without shifts, `off-shift`
    /// between shifts.
    func shiftWindow(at t: Date) -> ShiftWindow {
        if let found = config.shift(at: t) {
            let breaks = config.breaks(of: found.shift, startingAt: found.start).map { BreakWindow(start: $0.start, end: $0.end) }
            return ShiftWindow(name: found.shift.name, start: found.start, end: found.end, date: config.localDate(of: found.start),
                               breaks: breaks)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = config.timezone
        let midnight = calendar.startOfDay(for: t)
        if config.shifts.isEmpty {
            let end = calendar.date(byAdding: .day, value: 1, to: midnight) ?? midnight.addingTimeInterval(86_400)
            return ShiftWindow(name: "day", start: midnight, end: end, date: config.localDate(of: midnight))
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
        return ShiftWindow(name: "off-shift", start: start, end: end, date: config.localDate(of: start))
    }

    // MARK: Figures

    /// Seconds of the window up to `t`.
    func elapsed(at t: Date) -> Double { max(0, t.timeIntervalSince(windowStart)) }

    /// Seconds of the window's planned breaks up to `t` (left out of planned time).
    func breakSeconds(at t: Date) -> Double {
        guard let window, !window.breaks.isEmpty else { return 0 }
        return window.breakSeconds(from: windowStart, to: t)
    }

    /// A station's current state since its last accounted time, not yet in its counters.
    func pending(_ s: StationRuntime, at t: Date) -> PendingTime? {
        guard let state = s.state, s.connection != .offline, let last = s.lastAccounted else { return nil }
        let from = max(last, windowStart)
        return split(state, from: from, to: t)
    }

    /// The time `from ..< to` in `state` as counters take it: in a break only running time counts
    /// (working through a break adds to planned time); any other state there is the planned stop.
    private func split(_ state: MachineState, from: Date, to: Date) -> PendingTime {
        let dt = to.timeIntervalSince(from)
        guard let window, !window.breaks.isEmpty, dt > 0 else { return PendingTime(state: state, seconds: dt, breakRun: 0) }
        let inBreak = window.breakSeconds(from: from, to: to)
        if inBreak <= 0 { return PendingTime(state: state, seconds: dt, breakRun: 0) }
        return state == .running ? PendingTime(state: state, seconds: dt, breakRun: inBreak)
            : PendingTime(state: state, seconds: dt - inBreak, breakRun: 0)
    }

    /// Adds a station's time up to `t` to its counters, in the state it was in.
    func account(_ s: inout StationRuntime, upTo t: Date) {
        let last = s.lastAccounted
        let from = max(last ?? t, windowStart)
        if let state = s.state, s.connection != .offline, t > from {
            let code = s.faultCode
            let part = split(state, from: from, to: t)
            s.acc.account(state, faultCode: code, seconds: part.seconds)
            s.acc.breakRun += part.breakRun
        }
        if t > (last ?? .distantPast) { s.lastAccounted = t }
    }

    /// A station's KPIs at `t`.
    func stationKPI(_ s: StationRuntime, at t: Date) -> StationKPI {
        var kpi = s.acc.snapshot(elapsed: elapsed(at: t), breaks: breakSeconds(at: t), pending: pending(s, at: t), pendingFaultCode: s.faultCode,
                                 state: s.state)
        if s.acc.metered {
            kpi.energy = EnergyFigures(kWh: s.acc.energyKWh,
                                       kWhPerVehicle: s.acc.totalCount > 0 ? s.acc.energyKWh / Double(s.acc.totalCount) : nil,
                                       idleKWh: s.acc.idleKWh)
        }
        if !s.acc.capability.isEmpty {
            kpi.capability = s.acc.capability.keys.sorted().compactMap { name in
                guard let limits = s.config.signal(named: name)?.limits, let acc = s.acc.capability[name] else { return nil }
                return (name, acc.figures(limits))
            }
        }
        return kpi
    }

    /// The line's KPIs at `t`, from the stations' summed times and counts (never averaged percentages).
    func lineKPI(_ stations: [StationRuntime], at t: Date) -> LineKPI {
        let e = elapsed(at: t), breaks = breakSeconds(at: t)
        var run = 0.0, planned = 0.0, fault = 0.0, idealTime = 0.0, idealRun = 0.0
        var good = 0, total = 0, first = 0, firstGood = 0, faults = 0
        var downtime: [String: Double] = [:]
        var byProcess: [String: (Int, Int)] = [:]
        var metered = false, kWh = 0.0, idleKWh = 0.0
        for s in stations {
            if s.acc.metered {
                metered = true
                kWh += s.acc.energyKWh
                idleKWh += s.acc.idleKWh
            }
            // A station off the route (utilities) adds its energy only, not production figures.
            guard config.isOnRoute(s.config) else { continue }
            let p = pending(s, at: t)
            let f = s.acc.figures(elapsed: e, breaks: breaks, pending: p)
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
            if let p, p.state == .fault, p.seconds > 0 { downtime[s.faultCode, default: 0] += p.seconds }
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
        var line = LineKPI(availability: a.map(round6), performance: perf.map(round6), quality: q.map(round6), oee: oee,
                       fpy: ratio(Double(firstGood), Double(first)), inspectionFpy: inspectionFpy, rty: rty.map(round6),
                       goodCount: good, totalCount: total, completedVehicles: completed,
                       throughputPerHour: e > 0 ? round6(Double(completed) / (e / 3600)) : nil,
                       downtimeByFault: downtime.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                       mtbfS: faults > 0 ? round6(run / Double(faults)) : nil,
                       mttrS: faults > 0 ? round6(fault / Double(faults)) : nil)
        if metered {
            line.energy = EnergyFigures(kWh: kWh, kWhPerVehicle: completed > 0 ? kWh / Double(completed) : nil, idleKWh: idleKWh)
        }
        return line
    }
}
