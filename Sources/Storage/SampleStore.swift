import Foundation
import Runtime

/// A signal value as stored in the sample history (JSON scalar).
public enum SampleValue: Sendable, Equatable {
    case number(Double)
    case integer(Int64)
    case bool(Bool)
    case text(String)
    case null

    /// The numeric value, for deadbands (integers and numbers; not booleans).
    public var numeric: Double? {
        switch self {
        case .number(let v): v
        case .integer(let v): Double(v)
        default: nil
        }
    }

    /// The value as JSON text (`10.21`, `42`, `true`, `"WVW…"`, `null`; NaN and infinities as `null`).
    public var json: String {
        switch self {
        case .number(let v): v.isFinite ? "\(v)" : "null"
        case .integer(let v): String(v)
        case .bool(let v): v ? "true" : "false"
        case .text(let v): SampleValue.quote(v)
        case .null: "null"
        }
    }

    /// Parses what ``json`` wrote. Nil for anything else.
    public init?(json text: String) {
        switch text {
        case "null": self = .null
        case "true": self = .bool(true)
        case "false": self = .bool(false)
        default:
            if text.hasPrefix("\"") {
                guard let data = text.data(using: .utf8),
                      let string = try? JSONDecoder().decode(String.self, from: data) else { return nil }
                self = .text(string)
            } else if text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
                guard let v = Double(text) else { return nil }
                self = .number(v)
            } else if let v = Int64(text) {
                self = .integer(v)
            } else if let v = Double(text) {
                self = .number(v)
            } else {
                return nil
            }
        }
    }

    static func quote(_ string: String) -> String { JSON.string(string).serialized() }
}

/// What was last stored for one signal (input of the store-on-change decision).
public struct LastStoredSample: Sendable, Equatable {
    public var value: SampleValue
    public var quality: String
    public var time: Date

    public init(value: SampleValue, quality: String, time: Date) {
        self.value = value
        self.quality = quality
        self.time = time
    }
}

/// The store-on-change rule, as a pure function.
public enum SampleDecision {
    /// Whether a new sample is stored.
    ///
    /// Stored when: nothing was stored yet; the quality changed; `maxInterval` seconds have passed
    /// since the last stored one (or time went backwards); for two numbers, |v − last| > `deadband`
    /// (any change when the deadband is nil or 0; NaN counts as a change unless both are NaN);
    /// for anything else, the value differs.
    public static func shouldStore(value: SampleValue, quality: String, time: Date, last: LastStoredSample?,
                                   deadband: Double?, maxInterval: TimeInterval) -> Bool {
        guard let last else { return true }
        if quality != last.quality { return true }
        let elapsed = time.timeIntervalSince(last.time)
        if elapsed >= maxInterval || elapsed < 0 { return true }
        if let new = value.numeric, let old = last.value.numeric {
            if new.isNaN || old.isNaN { return !(new.isNaN && old.isNaN) }
            if let deadband, deadband > 0 { return abs(new - old) > deadband }
            return new != old
        }
        return value != last.value
    }
}

/// One stored sample of a signal.
public struct StoredSample: Sendable, Equatable {
    public let timeMs: Int64
    /// The value's JSON text, as stored (ready to splice into a response).
    public let json: String
    public let quality: String

    public var time: Date { EventTime.date(timeMs) }
    public var value: SampleValue { SampleValue(json: json) ?? .null }
}

/// One polled value offered to the history.
public struct SampleInput: Sendable, Equatable {
    public var station: String
    public var signal: String
    public var value: SampleValue
    public var quality: String
    public var time: Date

    public init(station: String, signal: String, value: SampleValue, quality: String, time: Date) {
        self.station = station
        self.signal = signal
        self.value = value
        self.quality = quality
        self.time = time
    }
}

/// Signal history (`samples` table): stores on change, writes through the event log's writer queue.
///
/// Thread-safe. The last stored value per signal is kept in memory (the first sample after a
/// start is always stored). Samples older than the log's retention age are pruned with it.
public final class SampleStore: Sendable {
    private struct State {
        /// By station: each signal's slot and its last stored sample and deadband.
        var stations: [String: StationSlots] = [:]
    }

    /// One station's signals, each in a slot given the first time its name is seen: a poll's
    /// samples look up their station once and find their signals by position, with no key made
    /// or hashed per sample.
    private struct StationSlots {
        var names: [String] = []
        var slotByName: [String: Int] = [:]
        var last: [LastStoredSample?] = []
        /// The signal's own deadband (nil: the store's default).
        var deadbands: [Double?] = []

        /// The slot of `signal`; `hint` is tried first (samples come in the same order every poll).
        mutating func slot(_ signal: String, hint: Int) -> Int {
            if hint < names.count, names[hint] == signal { return hint }
            if let slot = slotByName[signal] { return slot }
            names.append(signal)
            slotByName[signal] = names.count - 1
            last.append(nil)
            deadbands.append(nil)
            return names.count - 1
        }

        mutating func setDeadband(_ signal: String, _ deadband: Double?) {
            deadbands[slot(signal, hint: names.count)] = deadband
        }

        /// Applies ``SampleDecision`` to each sample, in order; appends those stored to `chosen`.
        mutating func offer(_ samples: ArraySlice<SampleInput>, defaultDeadband: Double?, maxInterval: TimeInterval,
                            chosen: inout [SampleInput]) {
            var hint = 0
            for sample in samples {
                let slot = slot(sample.signal, hint: hint)
                hint = slot + 1
                if SampleDecision.shouldStore(value: sample.value, quality: sample.quality, time: sample.time,
                                              last: last[slot], deadband: deadbands[slot] ?? defaultDeadband, maxInterval: maxInterval) {
                    last[slot] = LastStoredSample(value: sample.value, quality: sample.quality, time: sample.time)
                    chosen.append(sample)
                }
            }
        }
    }

    private let log: EventLog
    private let state = Locked(State())
    /// Deadband for numeric signals without their own (nil: store any change).
    public let defaultDeadband: Double?
    /// A signal is stored at least this often while it is polled, even without change (seconds).
    public let maxInterval: TimeInterval

    public init(log: EventLog, defaultDeadband: Double? = nil, maxInterval: TimeInterval = 60, pruneChunk: Int = 5000) {
        self.log = log
        self.defaultDeadband = defaultDeadband
        self.maxInterval = maxInterval
        log.addMaintenance { db, cutoff in
            let deleted = try db.run("DELETE FROM samples WHERE rowid IN (SELECT rowid FROM samples WHERE t < ? LIMIT ?)",
                                     [.integer(EventTime.milliseconds(cutoff)), .integer(Int64(pruneChunk))])
            return deleted >= pruneChunk
        }
    }

    /// Sets the deadband of one numeric signal (nil: back to the default).
    public func setDeadband(station: String, signal: String, _ deadband: Double?) {
        state.withLock { state in
            state.stations[station, default: StationSlots()].setDeadband(signal, deadband)
        }
    }

    /// Offers one poll's values; stores those that pass ``SampleDecision`` in one queued write.
    /// Returns how many were stored (queued).
    @discardableResult
    public func record(_ samples: [SampleInput]) -> Int {
        let chosen = state.withLock { state in
            var chosen: [SampleInput] = []
            var start = samples.startIndex
            while start < samples.endIndex {
                // A run of samples of one station (a poll's): one look-up of the station.
                let station = samples[start].station
                var end = start + 1
                while end < samples.endIndex && samples[end].station == station { end += 1 }
                state.stations[station, default: StationSlots()].offer(samples[start..<end], defaultDeadband: defaultDeadband,
                                                                       maxInterval: maxInterval, chosen: &chosen)
                start = end
            }
            return chosen
        }
        guard !chosen.isEmpty else { return 0 }
        let rows = chosen
        log.enqueue { db in
            let insert = try db.cached("INSERT INTO samples (station, signal, t, value, quality) VALUES (?, ?, ?, ?, ?)")
            for row in rows {
                try insert.bind(row.station, at: 1)
                try insert.bind(row.signal, at: 2)
                try insert.bind(EventTime.milliseconds(row.time), at: 3)
                try insert.bind(row.value.json, at: 4)
                try insert.bind(row.quality, at: 5)
                _ = try insert.step()
                insert.reset()
            }
        }
        return rows.count
    }

    /// Offers one value; true if it is stored.
    @discardableResult
    public func record(station: String, signal: String, value: SampleValue, quality: String, time: Date) -> Bool {
        record([SampleInput(station: station, signal: signal, value: value, quality: quality, time: time)]) == 1
    }

    /// Stored samples of a signal, newest first, with `from <= t <= to`, at most `limit`.
    public func history(station: String, signal: String, from: Date? = nil, to: Date? = nil, limit: Int = 100) throws -> [StoredSample] {
        let fromMs = from.map(EventTime.milliseconds) ?? Int64.min
        let toMs = to.map(EventTime.milliseconds) ?? Int64.max
        return try log.read { db in
            try db.query("""
                SELECT t, value, quality FROM samples
                WHERE station = ? AND signal = ? AND t >= ? AND t <= ? ORDER BY t DESC, rowid DESC LIMIT ?
                """, [.text(station), .text(signal), .integer(fromMs), .integer(toMs), .integer(Int64(max(0, limit)))]) { row in
                StoredSample(timeMs: row.int64(0), json: row.text(1) ?? "null", quality: row.text(2) ?? "")
            }
        }
    }
}
