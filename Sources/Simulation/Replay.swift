import Foundation
import PlantModel
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// How fast a recording is replayed (`--speed X|max`).
public enum ReplaySpeed: Sendable, Equatable, CustomStringConvertible {
    /// As fast as possible: no sleeping.
    case max
    /// `x` times real time (1 = real time).
    case factor(Double)

    /// Parses `max`, `10`, `0.5` or `10x`. Nil for anything else (zero and negatives included).
    public static func parse(_ text: String) -> ReplaySpeed? {
        var t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "max" { return .max }
        if t.hasSuffix("x") { t.removeLast() }
        guard let x = Double(t), x.isFinite, x > 0 else { return nil }
        return .factor(x)
    }

    public var description: String {
        switch self {
        case .max: return "max"
        case .factor(let x): return x.rounded() == x ? String(Int(x)) + "x" : String(x) + "x"
        }
    }
}

/// Keeps a replay at its speed: recording time `t` is delivered at
/// `wall₀ + (t − t₀) / speed`, where (t₀, wall₀) is the first sample and the monotonic time then.
///
/// If delivery falls behind by more than `maxLagS` (a stalled consumer, a suspended machine) the
/// pacer re-anchors instead of rushing to catch up. Pure arithmetic in ``delay(for:nowNanos:)``;
/// ``wait(until:isCancelled:)`` sleeps the calling thread (run replays on their own thread).
public struct ReplayPacer: Sendable {
    public let speed: ReplaySpeed
    public let maxLagS: Double
    private var anchor: (recording: Date, wallNanos: UInt64)?

    public init(speed: ReplaySpeed, maxLagS: Double = 5) {
        self.speed = speed
        self.maxLagS = maxLagS
    }

    /// Nanoseconds to wait before delivering a sample of recording time `time`, at monotonic `nowNanos`.
    public mutating func delay(for time: Date, nowNanos: UInt64) -> UInt64 {
        guard case .factor(let x) = speed else { return 0 }
        guard let anchor else {
            self.anchor = (time, nowNanos)
            return 0
        }
        let offset = time.timeIntervalSince(anchor.recording) / x
        if offset <= 0 { return 0 }
        let target = anchor.wallNanos &+ UInt64(offset * 1e9)
        if target > nowNanos { return target - nowNanos }
        if Double(nowNanos - target) / 1e9 > maxLagS { self.anchor = (time, nowNanos) }
        return 0
    }

    /// Sleeps until `time` is due (in slices of at most 100 ms, checking `isCancelled`).
    /// Returns false if cancelled.
    @discardableResult
    public mutating func wait(until time: Date, isCancelled: () -> Bool = { false }) -> Bool {
        var remaining = delay(for: time, nowNanos: Monotonic.nanoseconds())
        while remaining > 0 {
            if isCancelled() { return false }
            let slice = min(remaining, 100_000_000)
            var request = timespec(tv_sec: Int(slice / 1_000_000_000), tv_nsec: Int(slice % 1_000_000_000))
            _ = nanosleep(&request, nil)
            remaining = delay(for: time, nowNanos: Monotonic.nanoseconds())
        }
        return !isCancelled()
    }
}

/// Where a replay (or a generation) is.
public struct ReplayProgress: Sendable, Equatable, CustomStringConvertible {
    public var samples: UInt64
    public var polls: UInt64
    public var bytesRead: UInt64
    public var totalBytes: UInt64
    public var elapsedS: Double
    /// The recording time of the last poll.
    public var recordingTime: Date?
    public var finished: Bool

    public init(samples: UInt64 = 0, polls: UInt64 = 0, bytesRead: UInt64 = 0, totalBytes: UInt64 = 0,
                elapsedS: Double = 0, recordingTime: Date? = nil, finished: Bool = false) {
        self.samples = samples
        self.polls = polls
        self.bytesRead = bytesRead
        self.totalBytes = totalBytes
        self.elapsedS = elapsedS
        self.recordingTime = recordingTime
        self.finished = finished
    }

    /// 0…1 (by bytes).
    public var fraction: Double { totalBytes == 0 ? 1 : min(1, Double(bytesRead) / Double(totalBytes)) }
    public var samplesPerSecond: Double { elapsedS > 0 ? Double(samples) / elapsedS : 0 }
    /// Seconds left at the speed so far; nil before there is a rate.
    public var etaS: Double? {
        guard elapsedS > 0, bytesRead > 0 else { return nil }
        return elapsedS * Double(totalBytes - min(totalBytes, bytesRead)) / Double(bytesRead)
    }

    /// One line for stderr: `replay 42.0% 1234567 samples (812345 samples/s), ETA 12 s, at 2026-11-22T23:10:00.000Z`.
    public var description: String {
        var text = "replay " + String(format: "%.1f%%", fraction * 100) + " \(samples) samples"
        text += " (" + String(Int(samplesPerSecond)) + " samples/s)"
        if finished { text += ", done in " + String(format: "%.1f s", elapsedS) }
        else if let eta = etaS { text += ", ETA " + String(Int(eta.rounded())) + " s" }
        if let t = recordingTime { text += ", at " + Timestamp.format(t) }
        return text
    }
}

/// Calls a progress callback at most every `intervalS` seconds of monotonic time.
public struct ProgressThrottle: Sendable {
    public let intervalS: Double
    private var lastNanos: UInt64

    public init(intervalS: Double = 2, startNanos: UInt64 = Monotonic.nanoseconds()) {
        self.intervalS = intervalS
        lastNanos = startNanos
    }

    /// True (and restarts the interval) when `intervalS` has passed since the last true.
    public mutating func due(nowNanos: UInt64 = Monotonic.nanoseconds()) -> Bool {
        guard Double(nowNanos &- lastNanos) / 1e9 >= intervalS else { return false }
        lastNanos = nowNanos
        return true
    }
}

/// Replays a recording on the calling thread: reads it poll by poll, keeps the pace of `speed`,
/// hands each poll to `deliver`, reports progress about every 2 s and once at the end.
///
/// Blocking: call it from a thread of its own. Stops early (returning what was done) when
/// `isCancelled` turns true. - Throws: ``RecordingError`` for a bad line (the polls before it
/// have been delivered).
@discardableResult
public func replayRecording(path: String, speed: ReplaySpeed, carryForward: Bool = true,
                            progressIntervalS: Double = 2,
                            isCancelled: () -> Bool = { false },
                            progress: ((ReplayProgress) -> Void)? = nil,
                            deliver: (StationPoll) -> Void) throws -> ReplayProgress {
    let reader = try RecordingReader(path: path, carryForward: carryForward)
    defer { reader.close() }
    let began = Monotonic.nanoseconds()
    var pacer = ReplayPacer(speed: speed)
    var throttle = ProgressThrottle(intervalS: progressIntervalS, startNanos: began)
    var status = ReplayProgress(totalBytes: reader.fileSize)
    func refresh() {
        status.samples = reader.samplesRead
        status.bytesRead = reader.bytesRead
        status.elapsedS = Double(Monotonic.nanoseconds() - began) / 1e9
    }
    while let poll = try reader.next() {
        if isCancelled() { break }
        if speed != .max, !pacer.wait(until: poll.time, isCancelled: isCancelled) { break }
        deliver(poll)
        status.polls += 1
        status.recordingTime = poll.time
        if progress != nil, status.polls & 255 == 0, throttle.due() {
            refresh()
            progress?(status)
        }
    }
    refresh()
    status.finished = true
    progress?(status)
    return status
}
