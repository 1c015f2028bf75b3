import Foundation
import PlantModel
import Runtime

/// A station's energy figures for a shift (`energy` of a station or the line in `GET /api/kpis`).
public struct EnergyFigures: Sendable, Equatable {
    /// kWh used in the shift so far.
    public var kWh: Double
    /// kWh per operation completed at the station (the line: per completed vehicle); nil without any.
    public var kWhPerVehicle: Double?
    /// kWh used while the station was not `running` (idle, blocked, starved, fault, setup, offline).
    public var idleKWh: Double

    public init(kWh: Double, kWhPerVehicle: Double?, idleKWh: Double) {
        self.kWh = kWh
        self.kWhPerVehicle = kWhPerVehicle
        self.idleKWh = idleKWh
    }

    public var json: JSON {
        .obj([("kWh", .double(round6(kWh))), ("kWhPerVehicle", .number(kWhPerVehicle.map(round6))), ("idleKWh", .double(round6(idleKWh)))])
    }
}

/// The energy of one station from its `energy` meters (cumulative kWh) or, without a meter, its
/// `power` signals (kW held until the next value, integrated over time).
///
/// A meter's drop is a wrap when the meter is an unsigned integer close to its top (the rest of
/// the range plus the new reading), otherwise a reset (the new reading, counted from zero after
/// the signal's offset): energy is never negative. Part of ``StationRuntime``.
struct StationEnergy: Sendable {
    struct Meter: Sendable {
        let name: String
        /// The scaled value at which an unsigned integer meter wraps to 0 (nil: floats, signed).
        let wrap: Double?
        /// The scaled value of a raw 0 (the signal's offset).
        let zero: Double
    }

    let meters: [Meter]
    let powers: [String]
    /// Signal name → index in `meters` (≥ 0) or `powers` (−1 − index).
    let slots: [String: Int]
    /// `slots` as a list: a station has a meter or a power signal or two, so a poll's readings
    /// are matched by name with no hashing.
    private let slotList: [(name: String, slot: Int)]
    private var lastMeter: [Double?]
    private var power: [Double?]
    private var powerSince: Date?
    /// kWh counted by this engine, or since the first start when restored (never decreasing):
    /// operations take differences of it.
    private(set) var odometer = 0.0
    /// Meter resets and wraps seen.
    private(set) var resets = 0

    /// Longest gap over which a held power value is integrated (a station silent longer is offline).
    static let maxPowerGapS = 600.0

    init?(_ config: StationConfig) {
        var meters: [Meter] = [], powers: [String] = [], slots: [String: Int] = [:]
        for signal in config.signals {
            switch signal.role {
            case .energy:
                var wrap: Double?
                let scale = abs(signal.scale ?? 1)
                switch signal.type {
                case .uint16: wrap = 65_536 * scale
                case .uint32: wrap = 4_294_967_296 * scale
                case .uint64: wrap = 18_446_744_073_709_551_616 * scale
                default: wrap = nil
                }
                slots[signal.name] = meters.count
                meters.append(Meter(name: signal.name, wrap: wrap, zero: signal.offset ?? 0))
            case .power:
                slots[signal.name] = -1 - powers.count
                powers.append(signal.name)
            default: break
            }
        }
        guard !meters.isEmpty || !powers.isEmpty else { return nil }
        self.meters = meters
        // Power counts only where the station has no meter.
        self.powers = meters.isEmpty ? powers : []
        if !meters.isEmpty { slots = slots.filter { $0.value >= 0 } }
        self.slots = slots
        slotList = slots.map { ($0.key, $0.value) }
        lastMeter = [Double?](repeating: nil, count: meters.count)
        power = [Double?](repeating: nil, count: self.powers.count)
    }

    /// The energy used since the previous poll, from this poll's readings at `t`; the odometer
    /// moves by it. Held power is integrated up to `t` before the poll's new values take over.
    mutating func step(_ readings: [SignalReading], at t: Date) -> Double {
        var delta = 0.0
        if !powers.isEmpty {
            if let since = powerSince, t > since {
                let dt = t.timeIntervalSince(since)
                if dt <= Self.maxPowerGapS {
                    for value in power { if let kW = value, kW > 0 { delta += kW * dt / 3600 } }
                }
            }
            powerSince = t
        }
        for reading in readings {
            guard reading.quality == .good, let slot = slot(of: reading.name), let value = reading.value?.number, value.isFinite else { continue }
            if slot >= 0 {
                delta += meterDelta(slot, value)
            } else {
                power[-1 - slot] = value
            }
        }
        odometer += delta
        return delta
    }

    private func slot(of name: String) -> Int? {
        for entry in slotList where entry.name == name { return entry.slot }
        return nil
    }

    private mutating func meterDelta(_ index: Int, _ value: Double) -> Double {
        defer { lastMeter[index] = value }
        guard let last = lastMeter[index] else { return 0 }
        if value >= last { return value - last }
        let meter = meters[index]
        if let wrap = meter.wrap {
            let wrapped = wrap - (last - meter.zero) + (value - meter.zero)
            // A wrap: the meter was near its top and the new reading near zero.
            if wrapped >= 0, wrapped < wrap * 0.01 {
                resets += 1
                return wrapped
            }
        }
        resets += 1
        return max(0, value - meter.zero)
    }

    /// The odometer and the meters' last readings, saved with the learned state: after a restart
    /// the odometer goes on from them, so the first reading after it counts what the meters measured
    /// while the server was down (a drop below the saved reading is a reset or wrap as always), and
    /// an operation started before the restart keeps its start on the same scale.
    struct Saved: Sendable, Equatable, Codable {
        var meters: [String]
        var powers: [String]
        var lastMeter: [Double?]
        var odometer: Double
    }

    var saved: Saved { Saved(meters: meters.map(\.name), powers: powers, lastMeter: lastMeter, odometer: odometer) }

    /// Goes on from a saved odometer when the station's meters and power signals are still the
    /// same (names and order); returns whether it did.
    mutating func restore(_ saved: Saved) -> Bool {
        guard saved.meters == meters.map(\.name), saved.powers == powers, saved.lastMeter.count == meters.count,
              saved.odometer.isFinite, saved.odometer >= 0 else { return false }
        lastMeter = saved.lastMeter
        odometer = saved.odometer
        return true
    }

    /// Moves the odometer up to `value` (a power-only station whose saved odometer is older than an
    /// operation's stored start: the energy of that stretch is unknown, counted as none).
    mutating func raiseOdometer(to value: Double) {
        if meters.isEmpty, value.isFinite, value > odometer { odometer = value }
    }

    /// Forgets the held power (the station went offline: its power is unknown until it answers).
    mutating func offline() {
        powerSince = nil
        for i in power.indices { power[i] = nil }
    }
}

/// Mean and variance of one measurement over the shift (Welford), for Cp and Cpk.
struct CapabilityAccumulator: Sendable, Equatable, Codable {
    var n = 0
    var mean = 0.0
    var m2 = 0.0

    mutating func add(_ x: Double) {
        guard x.isFinite else { return }
        n += 1
        let d = x - mean
        mean += d / Double(n)
        m2 += d * (x - mean)
    }

    /// Sample standard deviation (n − 1); nil below 2 values.
    var sigma: Double? { n > 1 ? (m2 / Double(n - 1)).squareRoot() : nil }

    /// Cp = (USL − LSL) / 6σ (both limits needed); Cpk = min(USL − μ, μ − LSL) / 3σ (either limit).
    func figures(_ limits: SpecLimits) -> Capability {
        guard let sigma, sigma > 0 else { return Capability(cp: nil, cpk: nil, n: n) }
        var cp: Double?
        if let low = limits.low, let high = limits.high { cp = round6((high - low) / (6 * sigma)) }
        var sides: [Double] = []
        if let high = limits.high { sides.append((high - mean) / (3 * sigma)) }
        if let low = limits.low { sides.append((mean - low) / (3 * sigma)) }
        return Capability(cp: cp, cpk: sides.min().map(round6), n: n)
    }
}

/// Process capability of one measurement for the shift (`capability` of a station in `GET /api/kpis`).
public struct Capability: Sendable, Equatable {
    public var cp: Double?
    public var cpk: Double?
    public var n: Int

    public var json: JSON { .obj([("cp", .number(cp)), ("cpk", .number(cpk)), ("n", .int(Int64(n)))]) }
}
