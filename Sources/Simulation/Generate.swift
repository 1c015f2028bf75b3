import Foundation
import PlantModel
import Runtime

/// What ``generateRecording(config:scenario:seed:duration:to:mode:progressIntervalS:progress:)`` did.
public struct GenerationSummary: Sendable, Equatable, CustomStringConvertible {
    /// Lines written.
    public var samples: UInt64
    public var bytes: UInt64
    /// Station polls simulated (online ones).
    public var polls: UInt64
    /// Simulated seconds.
    public var simulatedS: Double
    public var wallS: Double
    public var stats: SimulationStats

    public var samplesPerSecond: Double { wallS > 0 ? Double(samples) / wallS : 0 }

    public var description: String {
        "\(samples) samples, \(bytes) bytes, \(polls) polls, \(Int(simulatedS)) s simulated in "
            + String(format: "%.2f s (%.0f samples/s)", wallS, samplesPerSecond)
            + "; vehicles released \(stats.vehiclesReleased), completed \(stats.vehiclesCompleted), operations \(stats.operations) (NOK \(stats.nokOperations)), strokes \(stats.strokes), faults \(stats.faults)"
    }
}

/// Where a generation is (every ~2 s to the progress callback).
public struct GenerationProgress: Sendable, Equatable {
    public var simulatedS: Double
    public var durationS: Double
    public var samples: UInt64
    public var wallS: Double
    public var fraction: Double { durationS > 0 ? min(1, simulatedS / durationS) : 1 }
    public var etaS: Double { fraction > 0 ? wallS * (1 - fraction) / fraction : 0 }
}

/// Simulates the plant for `duration` seconds and writes what its pollers would have recorded
/// (Stations/README-stations.md "Recordings") to `path`: every station at each of its poll intervals, while its PLC is online.
///
/// The same config, scenario and seed give the same file byte for byte. What is written per poll
/// follows `mode` (default: changes, plus every signal of each station every 10 s and after
/// it was offline). Streams through a buffered writer: memory stays flat for any duration.
/// Blocking; `progress` is called on the calling thread about every `progressIntervalS`.
/// - Throws: ``ConfigError`` for scenario events that do not fit the config; `SystemError` if
///   the file cannot be written.
@discardableResult
public func generateRecording(config: PlantConfig, scenario: Scenario = .normalShift, seed: UInt64? = nil,
                              duration: TimeInterval, to path: String, mode: RecordingMode = .default,
                              progressIntervalS: Double = 2,
                              progress: ((GenerationProgress) -> Void)? = nil) throws -> GenerationSummary {
    let began = Monotonic.nanoseconds()
    let simulator = try PlantSimulator(config: config, scenario: scenario, seed: seed)
    let writer = try RecordingWriter(path: path, mode: .everyPoll)
    let stations = simulator.stationIDs
    let names = config.stations.map { $0.signals.map(\.name) }
    let keyframeMs: Int64? = {
        if case .changes(let s) = mode { return max(1, Int64(s * 1000)) }
        return nil
    }()
    var lastWritten: [[SignalValue]?] = Array(repeating: nil, count: stations.count)
    var lastKeyframe: [Int64] = Array(repeating: 0, count: stations.count)
    var polls: UInt64 = 0
    var throttle = ProgressThrottle(intervalS: progressIntervalS, startNanos: began)
    let endMs = Int64((duration * 1000).rounded())
    while true {
        let t = simulator.elapsedMs
        let time = simulator.time
        for s in stations.indices where simulator.isPollDue(s) {
            guard simulator.isOnline(s) else {
                lastWritten[s] = nil
                continue
            }
            polls += 1
            let changed = simulator.takeChanged(s)
            var full = keyframeMs == nil
            if let keyframeMs, t - lastKeyframe[s] >= keyframeMs { full = true }
            guard let previous = lastWritten[s], !full else {
                lastKeyframe[s] = t
                let values = simulator.values(at: s)
                for (i, value) in values.enumerated() {
                    try writer.write(time: time, station: stations[s], signal: names[s][i], value: value)
                }
                lastWritten[s] = values
                continue
            }
            guard changed else { continue }
            let values = simulator.values(at: s)
            for i in values.indices where previous[i] != values[i] {
                try writer.write(time: time, station: stations[s], signal: names[s][i], value: values[i])
            }
            lastWritten[s] = values
        }
        if t + simulator.tickMs > endMs { break }
        simulator.step()
        if let progress, t % 60_000 == 0, throttle.due() {
            progress(GenerationProgress(simulatedS: Double(t) / 1000, durationS: duration, samples: writer.samplesWritten,
                                        wallS: Double(Monotonic.nanoseconds() - began) / 1e9))
        }
    }
    try writer.close()
    let wall = Double(Monotonic.nanoseconds() - began) / 1e9
    progress?(GenerationProgress(simulatedS: duration, durationS: duration, samples: writer.samplesWritten, wallS: wall))
    return GenerationSummary(samples: writer.samplesWritten, bytes: writer.bytesWritten, polls: polls,
                             simulatedS: Double(simulator.elapsedMs) / 1000, wallS: wall, stats: simulator.stats)
}
