import Foundation
import PlantModel
import Runtime

/// One entry of `GET /api/anomalies` and the payload of an `anomaly` event.
public struct AnomalyEntry: Sendable, Equatable {
    public var station: String
    public var signal: String
    /// 0 (normal) … 1 (certainly abnormal), two decimals.
    public var score: Double
    /// What drives the score: `spc:nelson1` … `spc:nelson6`, `robust`, `drift`, or `none`.
    public var rule: String
    /// When the current abnormal episode began (nil while the score is 0).
    public var since: Date?
    /// Equipment health 0–1 from this signal: the peer comparison with the other stations of the
    /// same process (or 1 − score when the station has no peers).
    public var health: Double
    /// For a drifting value: cycles until the linear trend crosses a spec limit (0: already beyond).
    public var cyclesToLimit: Double?
    /// The SPC chart the rules use: centre, sigma, ±3σ limits and the values it was learned from
    /// (centre and sigma nil while learning).
    public var baseline = ControlBaseline(mean: nil, sigma: nil, n: 0)

    public init(station: String, signal: String, score: Double, rule: String, since: Date?, health: Double, cyclesToLimit: Double?) {
        self.station = station
        self.signal = signal
        self.score = score
        self.rule = rule
        self.since = since
        self.health = health
        self.cyclesToLimit = cyclesToLimit
    }

    public var json: JSON {
        .obj([
            ("station", .string(station)),
            ("signal", .string(signal)),
            ("score", .double(score)),
            ("rule", .string(rule)),
            ("since", .str(since.map(Timestamp.format))),
            ("health", .double(health)),
            ("cyclesToLimit", .number(cyclesToLimit)),
            ("baseline", baseline.json),
        ])
    }
}

/// The centre line and sigma of an individuals chart, with its control limits (mean ± 3σ).
public struct ControlBaseline: Sendable, Equatable {
    public var mean: Double?
    public var sigma: Double?
    /// Values learned from (so far, while learning).
    public var n: Int

    public var lcl: Double? { mean.flatMap { m in sigma.map { m - 3 * $0 } } }
    public var ucl: Double? { mean.flatMap { m in sigma.map { m + 3 * $0 } } }

    public var json: JSON {
        .obj([("mean", .number(mean.map(round6))), ("sigma", .number(sigma.map(round6))), ("lcl", .number(lcl.map(round6))),
              ("ucl", .number(ucl.map(round6))), ("n", .int(Int64(n)))])
    }
}

/// A fixed-capacity ring of the most recent values, oldest first.
struct Ring: Sendable, Codable, Equatable {
    private var storage: [Double]
    private var start = 0
    private(set) var count = 0

    init(capacity: Int) { storage = [Double](repeating: 0, count: max(1, capacity)) }

    var capacity: Int { storage.count }

    mutating func append(_ value: Double) {
        if count < storage.count {
            storage[(start + count) % storage.count] = value
            count += 1
        } else {
            storage[start] = value
            start = (start + 1) % storage.count
        }
    }

    /// The i-th value, oldest first.
    subscript(i: Int) -> Double { storage[(start + i) % storage.count] }

    /// The i-th value from the newest (0 = newest).
    func fromEnd(_ i: Int) -> Double { self[count - 1 - i] }

    var values: [Double] { (0..<count).map { self[$0] } }

    func mean() -> Double {
        guard count > 0 else { return 0 }
        var sum = 0.0
        for i in 0..<count { sum += self[i] }
        return sum / Double(count)
    }

    func standardDeviation(mean m: Double) -> Double {
        guard count > 1 else { return 0 }
        var sum = 0.0
        for i in 0..<count { let d = self[i] - m; sum += d * d }
        return (sum / Double(count - 1)).squareRoot()
    }
}

/// The anomaly score of one measurement series (one value per cycle), from:
/// - an SPC individuals chart whose centre and sigma (average moving range / 1.128) are learned
///   from the first `baselineN` values, with Nelson rules 1, 2, 3, 5 and 6;
/// - a robust score: distance from the rolling median in MADs;
/// - a drift projection: a least-squares line over the rolling window, significant when its
///   slope is at least 3 standard errors from 0, extrapolated to the nearest spec limit.
///
/// The score is the largest of the parts plus 0.1 for each further part that agrees; a single
/// point beyond 3σ alone scores 0.7, so one outlier does not reach the default alert level 0.8.
struct SeriesDetector: Sendable, Codable, Equatable {
    let limits: SpecLimits?
    let baselineN: Int
    let horizon: Double
    private var baseline: [Double] = []
    private(set) var centre: Double?
    private(set) var sigma: Double = 0
    private(set) var recent: Ring
    private var zRecent = Ring(capacity: 9)

    private(set) var score = 0.0
    private(set) var rule = "none"
    private(set) var cyclesToLimit: Double?
    private(set) var since: Date?

    init(limits: SpecLimits?, baselineN: Int, window: Int, horizon: Double) {
        self.limits = limits
        self.baselineN = baselineN
        self.horizon = horizon
        self.recent = Ring(capacity: window)
    }

    /// The chart's baseline as the API shows it.
    var chart: ControlBaseline {
        centre == nil ? ControlBaseline(mean: nil, sigma: nil, n: baseline.count) : ControlBaseline(mean: centre, sigma: sigma, n: baselineN)
    }

    /// Adds one cycle's value.
    mutating func add(_ x: Double, at time: Date) {
        guard x.isFinite else { return }
        var parts: [(String, Double)] = []

        // Robust score against the window before this value.
        if recent.count >= 10 {
            let values = recent.values.sorted()
            let median = Self.median(sorted: values)
            let deviations = values.map { abs($0 - median) }.sorted()
            var mad = Self.median(sorted: deviations) * 1.4826
            if mad <= 0 { mad = sigma > 0 ? sigma : Self.floorSigma(median, limits) }
            let z = abs(x - median) / mad
            if z >= 3.5 { parts.append(("robust", min(1, 0.4 + (z - 3.5) * 0.1))) }
        }
        recent.append(x)

        if centre == nil {
            baseline.append(x)
            if baseline.count >= baselineN { learnBaseline() }
        } else if let centre {
            let z = (x - centre) / sigma
            zRecent.append(z)
            if let (name, value) = nelson() { parts.append((name, value)) }
        }

        cyclesToLimit = projectDrift()
        if let cycles = cyclesToLimit, cycles <= horizon {
            parts.append(("drift", 0.5 + 0.5 * (1 - cycles / horizon)))
        }

        var best = ("none", 0.0)
        for part in parts where part.1 > best.1 { best = part }
        var total = best.1
        if parts.count > 1 { total += 0.1 * Double(parts.count - 1) }
        total = (min(1, total) * 100).rounded() / 100
        if total > 0 && score == 0 { since = time }
        if total == 0 { since = nil }
        score = total
        rule = best.0
    }

    private mutating func learnBaseline() {
        let n = baseline.count
        let m = baseline.reduce(0, +) / Double(n)
        var mr = 0.0
        for i in 1..<n { mr += abs(baseline[i] - baseline[i - 1]) }
        var s = n > 1 ? (mr / Double(n - 1)) / 1.128 : 0
        if s <= 0 { s = Self.floorSigma(m, limits) }
        centre = m
        sigma = s
        baseline = []
    }

    /// A small sigma for a constant series, so a later change still shows.
    private static func floorSigma(_ m: Double, _ limits: SpecLimits?) -> Double {
        if let low = limits?.low, let high = limits?.high, high > low { return (high - low) / 1000 }
        return max(abs(m) * 1e-6, 1e-9)
    }

    /// The strongest Nelson rule that holds on the newest value, with its score, plus 0.15 per further rule.
    private func nelson() -> (String, Double)? {
        let n = zRecent.count
        var hits: [(String, Double)] = []
        let z0 = zRecent.fromEnd(0)
        if abs(z0) > 3 { hits.append(("spc:nelson1", 0.7)) }
        if n >= 9 {
            var above = 0, below = 0
            for i in 0..<9 { let z = zRecent.fromEnd(i); if z > 0 { above += 1 } else if z < 0 { below += 1 } }
            if above == 9 || below == 9 { hits.append(("spc:nelson2", 0.5)) }
        }
        if n >= 6 {
            var up = true, down = true
            for i in 0..<5 {
                let newer = zRecent.fromEnd(i), older = zRecent.fromEnd(i + 1)
                if !(newer > older) { up = false }
                if !(newer < older) { down = false }
            }
            if up || down { hits.append(("spc:nelson3", 0.5)) }
        }
        if n >= 3 {
            var above = 0, below = 0
            for i in 0..<3 { let z = zRecent.fromEnd(i); if z > 2 { above += 1 } else if z < -2 { below += 1 } }
            if above >= 2 || below >= 2 { hits.append(("spc:nelson5", 0.6)) }
        }
        if n >= 5 {
            var above = 0, below = 0
            for i in 0..<5 { let z = zRecent.fromEnd(i); if z > 1 { above += 1 } else if z < -1 { below += 1 } }
            if above >= 4 || below >= 4 { hits.append(("spc:nelson6", 0.5)) }
        }
        guard var best = hits.first else { return nil }
        for hit in hits where hit.1 > best.1 { best = hit }
        return (best.0, min(1, best.1 + 0.15 * Double(hits.count - 1)))
    }

    /// Cycles until the window's linear trend crosses a limit, when the trend is significant.
    private func projectDrift() -> Double? {
        let n = recent.count
        guard n >= 10, let limits, limits.low != nil || limits.high != nil else { return nil }
        let nd = Double(n)
        let xMean = (nd - 1) / 2
        let yMean = recent.mean()
        var sxx = 0.0, sxy = 0.0
        for i in 0..<n {
            let dx = Double(i) - xMean
            sxx += dx * dx
            sxy += dx * (recent[i] - yMean)
        }
        let slope = sxy / sxx
        let intercept = yMean - slope * xMean
        var sse = 0.0
        for i in 0..<n {
            let r = recent[i] - (intercept + slope * Double(i))
            sse += r * r
        }
        let residual = (sse / (nd - 2)).squareRoot()
        let standardError = residual / sxx.squareRoot()
        let now = intercept + slope * (nd - 1)
        if let high = limits.high, now > high { return 0 }
        if let low = limits.low, now < low { return 0 }
        guard standardError > 0 ? abs(slope) / standardError >= 3 : slope != 0 else { return nil }
        if slope > 0, let high = limits.high { return ((high - now) / slope * 10).rounded() / 10 }
        if slope < 0, let low = limits.low { return ((now - low) / -slope * 10).rounded() / 10 }
        return nil
    }

    static func median(sorted values: [Double]) -> Double {
        let n = values.count
        guard n > 0 else { return 0 }
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2
    }

    /// Mean and standard deviation of the rolling window (for the peer comparison).
    func windowStats() -> (mean: Double, sd: Double, count: Int) {
        let m = recent.mean()
        return (m, recent.standardDeviation(mean: m), recent.count)
    }
}

/// Peer comparison: each station's rolling mean of a signal against the other stations of the
/// same process. Distance d = |mean − others' mean| / others' pooled sd; health = 1 − (d − 1) / 2,
/// clamped to 0…1 (within 1 sd: 1; 3 sd or more: 0). Nil when a peer has fewer than 10 values.
enum PeerComparison {
    static func health(own: (mean: Double, sd: Double, count: Int), others: [(mean: Double, sd: Double, count: Int)]) -> Double? {
        guard own.count >= 10, !others.isEmpty, others.allSatisfy({ $0.count >= 10 }) else { return nil }
        let othersMean = others.map(\.mean).reduce(0, +) / Double(others.count)
        var pooled = (others.map { $0.sd * $0.sd }.reduce(0, +) / Double(others.count)).squareRoot()
        if pooled <= 0 { pooled = max(own.sd, abs(othersMean) * 1e-6, 1e-9) }
        let d = abs(own.mean - othersMean) / pooled
        return ((1 - min(1, max(0, (d - 1) / 2))) * 100).rounded() / 100
    }

    /// ``health(own:others:)`` with the others being `peers` without the entry at `skipping` and
    /// without the nil ones, in order: the same sums in the same order, with no array made.
    static func health(own: (mean: Double, sd: Double, count: Int), peers: [(mean: Double, sd: Double, count: Int)?],
                       skipping k: Int) -> Double? {
        guard own.count >= 10 else { return nil }
        var n = 0
        var meanSum = 0.0, varianceSum = 0.0
        for (j, peer) in peers.enumerated() where j != k {
            guard let peer else { continue }
            guard peer.count >= 10 else { return nil }
            n += 1
            meanSum += peer.mean
            varianceSum += peer.sd * peer.sd
        }
        guard n > 0 else { return nil }
        let othersMean = meanSum / Double(n)
        var pooled = (varianceSum / Double(n)).squareRoot()
        if pooled <= 0 { pooled = max(own.sd, abs(othersMean) * 1e-6, 1e-9) }
        let d = abs(own.mean - othersMean) / pooled
        return ((1 - min(1, max(0, (d - 1) / 2))) * 100).rounded() / 100
    }
}
