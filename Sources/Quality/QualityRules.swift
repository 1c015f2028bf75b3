import Foundation
import PlantModel
import Runtime

/// Severity of an alert or a defect (docs/openapi.json `Severity`).
public enum Severity: String, Sendable, Equatable, CaseIterable, Comparable {
    case low, medium, high, critical

    private var rank: Int {
        switch self {
        case .low: 0
        case .medium: 1
        case .high: 2
        case .critical: 3
        }
    }

    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// The alert rules and engine settings, decoded from the plant config's `alerts` block.
///
/// Every member has a default, so an absent block (or an absent rule) gives working rules.
/// Shape (all optional):
/// ```json
/// "alerts": {
///   "escalateAfterMin": 15, "kpiIntervalMs": 500,
///   "flood": {"per10Min": 10}, "chattering": {"count": 3, "minutes": 10},
///   "oee": {"enabled": true, "below": 0.6, "clearAbove": 0.65, "forS": 300, "minElapsedS": 600, "severity": "medium"},
///   "cycleTime": {"factor": 1.5, "clearFactor": 1.2, "consecutive": 3, "severity": "low"},
///   "downtime": {"afterS": 120, "severity": "high"},
///   "fpy": {"below": 0.9, "clearAbove": 0.95, "lastN": 20, "severity": "medium"},
///   "anomaly": {"above": 0.8, "clearBelow": 0.5, "baselineN": 20, "window": 30, "horizonCycles": 50, "severity": "medium"},
///   "maintenance": {"below": 0.5, "clearAbove": 0.6, "windowS": 60, "baselineWindows": 30, "trendWindows": 60, "severity": "medium"},
///   "outOfSpec": {"severity": "high"}, "nok": {"severity": "medium"},
///   "sequence": {"severity": "medium"}, "connection": {"severity": "high"}
/// }
/// ```
public struct QualityRules: Sendable, Equatable {
    public struct OEE: Sendable, Equatable {
        public var enabled = true
        /// Raise when OEE is below this …
        public var below = 0.6
        /// … and clear when it is back at or above this (hysteresis).
        public var clearAbove = 0.65
        /// … for this long (seconds of sample time).
        public var forS = 300.0
        /// No OEE verdict before this much planned time in the shift.
        public var minElapsedS = 600.0
        public var severity = Severity.medium
        public init() {}
    }

    public struct CycleTime: Sendable, Equatable {
        public var enabled = true
        /// A cycle is slow when longer than `factor` × the station's ideal cycle time.
        public var factor = 1.5
        /// The alert clears on a cycle at or below `clearFactor` × ideal.
        public var clearFactor = 1.2
        /// Slow cycles in a row that raise the alert.
        public var consecutive = 3
        public var severity = Severity.low
        public init() {}
    }

    public struct Downtime: Sendable, Equatable {
        public var enabled = true
        /// A station in `fault` longer than this raises a downtime alert.
        public var afterS = 120.0
        public var severity = Severity.high
        public init() {}
    }

    public struct FPY: Sendable, Equatable {
        public var enabled = true
        public var below = 0.9
        public var clearAbove = 0.95
        /// Over the last N first attempts at the station.
        public var lastN = 20
        public var severity = Severity.medium
        public init() {}
    }

    public struct Anomaly: Sendable, Equatable {
        public var enabled = true
        /// An anomaly alert when a signal's score reaches this …
        public var above = 0.8
        /// … cleared when it falls below this.
        public var clearBelow = 0.5
        /// Values that set the SPC chart's centre line and sigma.
        public var baselineN = 20
        /// Rolling window for the robust score, the drift fit and the peer comparison.
        public var window = 30
        /// A drift that reaches its limit within this many cycles scores.
        public var horizonCycles = 50.0
        public var severity = Severity.medium
        public init() {}
    }

    /// Equipment health from `condition` signals (README "Energy and equipment health").
    public struct Maintenance: Sendable, Equatable {
        public var enabled = true
        /// A `maintenance` alert when a unit's health falls below this …
        public var below = 0.5
        /// … cleared when it is back at or above this.
        public var clearAbove = 0.6
        /// Condition values are averaged over windows of this many seconds (time-weighted).
        public var windowS = 60.0
        /// Windows that set a unit's own baseline (mean and sigma of the window means).
        public var baselineWindows = 30
        /// Recent windows for the level (mean of the last few) and the trend fit.
        public var trendWindows = 60
        public var severity = Severity.medium
        public init() {}
    }

    public var oee = OEE()
    public var maintenance = Maintenance()
    public var cycleTime = CycleTime()
    public var downtime = Downtime()
    public var fpy = FPY()
    public var anomaly = Anomaly()
    public var outOfSpecSeverity = Severity.high
    public var nokSeverity = Severity.medium
    public var sequenceSeverity = Severity.medium
    public var connectionSeverity = Severity.high
    /// Severity of the alert an andon call raises (`alerts.andon.severity`).
    public var andonSeverity = Severity.high
    /// Key part alerts and defects (duplicate serial, wrong part, missing part).
    public var partSeverity = Severity.high
    /// Unacknowledged alerts are announced again (escalationLevel + 1) after this many minutes.
    public var escalateAfterMin = 15.0
    /// At most one `kpi` output per station (and for the line) per this many ms of sample time.
    public var kpiIntervalMs = 500.0
    /// More alerts than this in 10 minutes is a flood (ISA-18.2: 10).
    public var floodPer10Min = 10
    /// A key raised at least `chatterCount` times within `chatterMinutes` is chattering.
    public var chatterCount = 3
    public var chatterMinutes = 10.0

    public init() {}

    /// Decodes the `alerts` block; nil gives the defaults. Errors name the JSON path (`alerts.oee.below`).
    public static func decode(_ node: ConfigNode?) throws -> QualityRules {
        var rules = QualityRules()
        guard let node else { return rules }
        try node.rejectUnknownKeys(["escalateAfterMin", "kpiIntervalMs", "flood", "chattering", "oee", "cycleTime",
                                    "downtime", "fpy", "anomaly", "maintenance", "outOfSpec", "nok", "sequence", "connection", "andon", "part"])
        func severity(_ parent: ConfigNode?, _ current: Severity) throws -> Severity {
            guard let n = try parent?.optional("severity") else { return current }
            let text = try n.string()
            guard let s = Severity(rawValue: text) else {
                throw n.error("\"\(text)\" is not a severity (low, medium, high, critical)")
            }
            return s
        }
        if let n = try node.optional("escalateAfterMin") { rules.escalateAfterMin = try n.double(in: 0.1...10_080) }
        if let n = try node.optional("kpiIntervalMs") { rules.kpiIntervalMs = try n.double(in: 0...3_600_000) }
        if let f = try node.optional("flood") {
            try f.rejectUnknownKeys(["per10Min"])
            if let n = try f.optional("per10Min") { rules.floodPer10Min = try n.int(in: 1...100_000) }
        }
        if let c = try node.optional("chattering") {
            try c.rejectUnknownKeys(["count", "minutes"])
            if let n = try c.optional("count") { rules.chatterCount = try n.int(in: 2...100_000) }
            if let n = try c.optional("minutes") { rules.chatterMinutes = try n.double(in: 0.1...1440) }
        }
        if let o = try node.optional("oee") {
            try o.rejectUnknownKeys(["enabled", "below", "clearAbove", "forS", "minElapsedS", "severity"])
            if let n = try o.optional("enabled") { rules.oee.enabled = try n.bool() }
            if let n = try o.optional("below") { rules.oee.below = try n.double(in: 0...1) }
            rules.oee.clearAbove = max(rules.oee.below, rules.oee.clearAbove)
            if let n = try o.optional("clearAbove") {
                rules.oee.clearAbove = try n.double(in: 0...1)
                if rules.oee.clearAbove < rules.oee.below { throw n.error("must be at least oee.below (\(rules.oee.below))") }
            }
            if let n = try o.optional("forS") { rules.oee.forS = try n.double(in: 0...86_400) }
            if let n = try o.optional("minElapsedS") { rules.oee.minElapsedS = try n.double(in: 0...86_400) }
            rules.oee.severity = try severity(o, rules.oee.severity)
        }
        if let o = try node.optional("cycleTime") {
            try o.rejectUnknownKeys(["enabled", "factor", "clearFactor", "consecutive", "severity"])
            if let n = try o.optional("enabled") { rules.cycleTime.enabled = try n.bool() }
            if let n = try o.optional("factor") { rules.cycleTime.factor = try n.double(in: 1...100) }
            rules.cycleTime.clearFactor = min(rules.cycleTime.clearFactor, rules.cycleTime.factor)
            if let n = try o.optional("clearFactor") {
                rules.cycleTime.clearFactor = try n.double(in: 0...100)
                if rules.cycleTime.clearFactor > rules.cycleTime.factor { throw n.error("must be at most cycleTime.factor (\(rules.cycleTime.factor))") }
            }
            if let n = try o.optional("consecutive") { rules.cycleTime.consecutive = try n.int(in: 1...10_000) }
            rules.cycleTime.severity = try severity(o, rules.cycleTime.severity)
        }
        if let o = try node.optional("downtime") {
            try o.rejectUnknownKeys(["enabled", "afterS", "severity"])
            if let n = try o.optional("enabled") { rules.downtime.enabled = try n.bool() }
            if let n = try o.optional("afterS") { rules.downtime.afterS = try n.double(in: 0...86_400) }
            rules.downtime.severity = try severity(o, rules.downtime.severity)
        }
        if let o = try node.optional("fpy") {
            try o.rejectUnknownKeys(["enabled", "below", "clearAbove", "lastN", "severity"])
            if let n = try o.optional("enabled") { rules.fpy.enabled = try n.bool() }
            if let n = try o.optional("below") { rules.fpy.below = try n.double(in: 0...1) }
            rules.fpy.clearAbove = max(rules.fpy.below, rules.fpy.clearAbove)
            if let n = try o.optional("clearAbove") {
                rules.fpy.clearAbove = try n.double(in: 0...1)
                if rules.fpy.clearAbove < rules.fpy.below { throw n.error("must be at least fpy.below (\(rules.fpy.below))") }
            }
            if let n = try o.optional("lastN") { rules.fpy.lastN = try n.int(in: 1...100_000) }
            rules.fpy.severity = try severity(o, rules.fpy.severity)
        }
        if let o = try node.optional("anomaly") {
            try o.rejectUnknownKeys(["enabled", "above", "clearBelow", "baselineN", "window", "horizonCycles", "severity"])
            if let n = try o.optional("enabled") { rules.anomaly.enabled = try n.bool() }
            if let n = try o.optional("above") { rules.anomaly.above = try n.double(in: 0.01...1) }
            rules.anomaly.clearBelow = min(rules.anomaly.clearBelow, rules.anomaly.above)
            if let n = try o.optional("clearBelow") {
                rules.anomaly.clearBelow = try n.double(in: 0...1)
                if rules.anomaly.clearBelow > rules.anomaly.above { throw n.error("must be at most anomaly.above (\(rules.anomaly.above))") }
            }
            if let n = try o.optional("baselineN") { rules.anomaly.baselineN = try n.int(in: 5...10_000) }
            if let n = try o.optional("window") { rules.anomaly.window = try n.int(in: 8...1_000) }
            if let n = try o.optional("horizonCycles") { rules.anomaly.horizonCycles = try n.double(in: 1...100_000) }
            rules.anomaly.severity = try severity(o, rules.anomaly.severity)
        }
        if let o = try node.optional("maintenance") {
            try o.rejectUnknownKeys(["enabled", "below", "clearAbove", "windowS", "baselineWindows", "trendWindows", "severity"])
            if let n = try o.optional("enabled") { rules.maintenance.enabled = try n.bool() }
            if let n = try o.optional("below") { rules.maintenance.below = try n.double(in: 0...1) }
            rules.maintenance.clearAbove = max(rules.maintenance.below, rules.maintenance.clearAbove)
            if let n = try o.optional("clearAbove") {
                rules.maintenance.clearAbove = try n.double(in: 0...1)
                if rules.maintenance.clearAbove < rules.maintenance.below { throw n.error("must be at least maintenance.below (\(rules.maintenance.below))") }
            }
            if let n = try o.optional("windowS") { rules.maintenance.windowS = try n.double(in: 0.1...86_400) }
            if let n = try o.optional("baselineWindows") { rules.maintenance.baselineWindows = try n.int(in: 3...100_000) }
            if let n = try o.optional("trendWindows") { rules.maintenance.trendWindows = try n.int(in: 5...100_000) }
            rules.maintenance.severity = try severity(o, rules.maintenance.severity)
        }
        for (key, which) in [("outOfSpec", 0), ("nok", 1), ("sequence", 2), ("connection", 3), ("andon", 4), ("part", 5)] {
            guard let o = try node.optional(key) else { continue }
            try o.rejectUnknownKeys(["severity"])
            switch which {
            case 0: rules.outOfSpecSeverity = try severity(o, rules.outOfSpecSeverity)
            case 1: rules.nokSeverity = try severity(o, rules.nokSeverity)
            case 2: rules.sequenceSeverity = try severity(o, rules.sequenceSeverity)
            case 4: rules.andonSeverity = try severity(o, rules.andonSeverity)
            case 5: rules.partSeverity = try severity(o, rules.partSeverity)
            default: rules.connectionSeverity = try severity(o, rules.connectionSeverity)
            }
        }
        return rules
    }
}
