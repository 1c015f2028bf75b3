import Foundation
import PlantModel
import Runtime

/// One entry of `GET /api/equipment`: a `condition` signal of a station (one unit of equipment)
/// scored against its own baseline and against its peer group.
public struct EquipmentHealth: Sendable, Equatable {
    public var station: String
    public var signal: String
    public var group: String?
    /// 1 = healthy … 0 = failing (README "Energy and equipment health").
    public var health: Double
    /// 0–1: how far the unit's level is from its own baseline (3σ of the window means: 0, 6σ: 1).
    public var score: Double
    /// The comparison with the group: other units with a level, the group's median level, and a
    /// 0–1 score of this unit's drift against the group's median drift. Nil without peers.
    public var peers: Peers?
    /// Mean and sigma of the baseline windows (nil while the unit is still learning).
    public var baselineMean: Double?
    public var baselineSigma: Double?
    /// Windows the baseline holds (or has so far, while learning).
    public var baselineN: Int
    /// The current level: mean of the last few windows.
    public var level: Double?
    /// Slope of the recent window means in units per hour (nil below 5 windows).
    public var trend: Double?
    /// Hours until the trend reaches a limit (0: already beyond); nil without a limit or a significant trend.
    public var hoursToLimit: Double?
    public var limits: SpecLimits?
    public var unit: String?
    /// Time of the last window.
    public var t: Date?

    static let placeholder = EquipmentHealth(station: "", signal: "", group: nil, health: 1, score: 0, peers: nil, baselineMean: nil,
                                             baselineSigma: nil, baselineN: 0, level: nil, trend: nil, hoursToLimit: nil,
                                             limits: nil, unit: nil, t: nil)

    public struct Peers: Sendable, Equatable {
        public var n: Int
        public var median: Double?
        public var score: Double
    }

    public var json: JSON {
        .obj([
            ("station", .string(station)),
            ("signal", .string(signal)),
            ("group", .str(group)),
            ("health", .double(health)),
            ("score", .double(score)),
            ("peers", peers.map { .obj([("n", .int(Int64($0.n))), ("median", .number($0.median.map(round6))), ("score", .double($0.score))]) } ?? .null),
            ("baseline", .obj([("mean", .number(baselineMean.map(round6))), ("sigma", .number(baselineSigma.map(round6))),
                               ("n", .int(Int64(baselineN)))])),
            ("level", .number(level.map(round6))),
            ("trend", .number(trend.map(round6))),
            ("hoursToLimit", .number(hoursToLimit)),
            ("limits", limits.map { .obj([("low", .number($0.low)), ("high", .number($0.high))]) } ?? .null),
            ("unit", .str(unit)),
            ("t", .str(t.map(Timestamp.format))),
        ])
    }
}

/// The learned state of one condition unit: the open window, the baseline and the recent window
/// means. Codable so a restart goes on from it (``LearnedState``).
struct ConditionUnit: Sendable, Codable, Equatable {
    let station: String
    let signal: String
    let group: String?
    let limits: SpecLimits?

    // The open window: time-weighted sum of the held value.
    var windowStart: Date?
    var area = 0.0
    var covered = 0.0
    var held: Double?
    var heldAt: Date?

    /// Baseline window means while learning; emptied once learned.
    var learning: [Double] = []
    var mean: Double?
    var sigma: Double?
    var baselineN = 0

    /// Recent window means and their times (oldest first), at most `trendWindows`.
    var recent: [Double] = []
    var recentAt: [Date] = []

    init(station: String, signal: String, group: String?, limits: SpecLimits?) {
        self.station = station
        self.signal = signal
        self.group = group
        self.limits = limits
    }

    /// The longest gap over which a held value counts (a silent station is offline).
    static let maxGapS = 600.0

    /// Adds a held value up to `t`; returns the mean of a window that closed (nil otherwise).
    mutating func advance(to t: Date, windowS: Double) -> Double? {
        guard let start = windowStart else {
            windowStart = t
            heldAt = t
            return nil
        }
        if let held, let at = heldAt, t > at {
            let dt = t.timeIntervalSince(at)
            if dt <= Self.maxGapS {
                area += held * dt
                covered += dt
            }
        }
        heldAt = max(heldAt ?? t, t)
        guard t.timeIntervalSince(start) >= windowS else { return nil }
        let windowMean = covered > 0 ? area / covered : held
        windowStart = t
        area = 0
        covered = 0
        return windowMean
    }

    mutating func addWindow(_ value: Double, at t: Date, rules: QualityRules.Maintenance) {
        recent.append(value)
        recentAt.append(t)
        if recent.count > rules.trendWindows {
            recent.removeFirst(recent.count - rules.trendWindows)
            recentAt.removeFirst(recentAt.count - rules.trendWindows)
        }
        guard mean == nil else { return }
        learning.append(value)
        baselineN = learning.count
        if learning.count >= rules.baselineWindows {
            let m = learning.reduce(0, +) / Double(learning.count)
            var ss = 0.0
            for x in learning { ss += (x - m) * (x - m) }
            var s = (ss / Double(learning.count - 1)).squareRoot()
            // A constant baseline still gets a sigma, so a later change shows.
            var floor = max(abs(m) * 1e-4, 1e-9)
            if let low = limits?.low, let high = limits?.high, high > low { floor = max(floor, (high - low) / 1000) }
            if s < floor { s = floor }
            mean = m
            sigma = s
            learning = []
        }
    }

    /// The level: mean of the last (up to) 5 windows.
    var level: Double? {
        guard !recent.isEmpty else { return nil }
        let tail = recent.suffix(5)
        return tail.reduce(0, +) / Double(tail.count)
    }

    /// The drift from the baseline in own sigmas (nil while learning).
    var drift: Double? {
        guard let mean, let sigma, let level else { return nil }
        return (level - mean) / sigma
    }

    /// Slope per hour of the recent window means and hours until it reaches a limit.
    func trend() -> (perHour: Double?, hoursToLimit: Double?) {
        let n = recent.count
        guard n >= 5, let t0 = recentAt.first else { return (nil, nil) }
        let xs = recentAt.map { $0.timeIntervalSince(t0) / 3600 }
        let xMean = xs.reduce(0, +) / Double(n)
        let yMean = recent.reduce(0, +) / Double(n)
        var sxx = 0.0, sxy = 0.0
        for i in 0..<n { sxx += (xs[i] - xMean) * (xs[i] - xMean); sxy += (xs[i] - xMean) * (recent[i] - yMean) }
        guard sxx > 0 else { return (nil, nil) }
        let slope = sxy / sxx
        guard let limits, limits.low != nil || limits.high != nil else { return (slope, nil) }
        let now = yMean + slope * (xs[n - 1] - xMean)
        if let high = limits.high, now >= high { return (slope, 0) }
        if let low = limits.low, now <= low { return (slope, 0) }
        var sse = 0.0
        for i in 0..<n { let r = recent[i] - (yMean + slope * (xs[i] - xMean)); sse += r * r }
        let standardError = n > 2 ? (sse / Double(n - 2)).squareRoot() / sxx.squareRoot() : 0
        guard standardError > 0 ? abs(slope) / standardError >= 3 : slope != 0 else { return (slope, nil) }
        if slope > 0, let high = limits.high { return (slope, ((high - now) / slope * 10).rounded() / 10) }
        if slope < 0, let low = limits.low { return (slope, ((now - low) / -slope * 10).rounded() / 10) }
        return (slope, nil)
    }

    /// The part of the margin between the baseline and the limit on the side of the level that is used (0…1).
    var marginUsed: Double? {
        guard let mean, let level, let limits else { return nil }
        if level > mean, let high = limits.high {
            return high > mean ? min(1, (level - mean) / (high - mean)) : 1
        }
        if level < mean, let low = limits.low {
            return low < mean ? min(1, (mean - level) / (mean - low)) : 1
        }
        return 0
    }
}

/// Scores for equipment health (README "Energy and equipment health").
enum HealthScore {
    /// |z| of 3 or less: 0; 6 or more: 1; linear between, two decimals.
    static func of(z: Double) -> Double {
        ((min(1, max(0, (abs(z) - 3) / 3))) * 100).rounded() / 100
    }

    /// Health from the own score, the peer score (nil: no peers) and the margin used toward a limit:
    /// the statistical evidence (own and peers must agree) takes up to 0.45 off with limits (0.6
    /// without); the margin used toward a limit takes its own share off.
    static func health(score: Double, peers: Double?, marginUsed: Double?) -> Double {
        let evidence = peers.map { min(score, $0) } ?? score
        let value: Double
        if let marginUsed { value = min(1 - 0.45 * evidence, 1 - marginUsed) } else { value = 1 - 0.6 * evidence }
        return (max(0, min(1, value)) * 100).rounded() / 100
    }
}

/// The quality engine's learned state, saved by the store (README "Energy and equipment health").
public struct LearnedState: Sendable, Equatable, Codable {
    struct Series: Sendable, Equatable, Codable {
        var station: String
        var signal: String
        var detector: SeriesDetector
    }

    /// A station's energy odometer and meter readings, and the time of its last poll.
    struct Energy: Sendable, Equatable, Codable {
        var station: String
        var saved: StationEnergy.Saved
        var lastAt: Date?
    }

    var series: [Series]
    var units: [ConditionUnit]
    var alertLoad: AlertLoadHistory
    /// Nil in a state saved before energy was kept.
    var energy: [Energy]?

    /// The JSON the store keeps.
    public func encoded() throws -> String { String(decoding: try JSONEncoder().encode(self), as: UTF8.self) }

    public static func decode(_ text: String) throws -> LearnedState { try JSONDecoder().decode(LearnedState.self, from: Data(text.utf8)) }

    /// Anomaly series and equipment units with a learned baseline.
    public var learnedCount: (series: Int, units: Int) {
        (series.filter { $0.detector.chart.mean != nil }.count, units.filter { $0.mean != nil }.count)
    }
}
