/// A small seeded random generator (SplitMix64): the same seed gives the same stream on every machine
/// and every run. For simulations, jitter and tests; not for security.
public struct SeededRandom: RandomNumberGenerator, Sendable, Equatable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform integer in `0..<bound` (bound > 0).
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        return Int(next() % UInt64(bound))
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { p > 0 && uniform() < p }
}

/// Stable hashes: the same value in every process (Swift's `Hasher` is seeded per process and must not
/// be used for anything that is stored, compared across runs or seeds a generator).
public enum StableHash {
    /// FNV-1a, 64 bits.
    public static func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return hash
    }

    /// FNV-1a, 64 bits, of the UTF-8 bytes of `text`.
    public static func fnv1a64(_ text: String) -> UInt64 { fnv1a64(text.utf8) }
}

/// Retry delays: doubling from `initialMs` up to `maxMs`, with an optional jitter that is deterministic
/// from a seed (tests get the same delays every run). Used by every reconnecting link (Modbus, OPC UA).
public struct Backoff: Sendable, Equatable {
    public var initialMs: Int
    public var maxMs: Int
    /// Fraction of each delay taken off at random (0.2 → delay × 0.8…1.0); 0 for none.
    public var jitter: Double
    private var random: SeededRandom

    public init(initialMs: Int = 100, maxMs: Int = 5000, jitter: Double = 0.2, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        self.initialMs = max(1, initialMs)
        self.maxMs = max(self.initialMs, maxMs)
        self.jitter = min(max(jitter, 0), 1)
        random = SeededRandom(seed: seed)
    }

    /// The delay in ms before retry number `failures` (0 = the first retry): `initialMs × 2^failures`,
    /// capped at `maxMs`, less the jitter.
    public mutating func delayMs(afterFailures failures: Int) -> Int {
        let base = Self.baseMs(initialMs: initialMs, maxMs: maxMs, failures: failures)
        let r = random.uniform()
        return max(1, Int((Double(base) * (1 - jitter * r)).rounded()))
    }

    /// The delay without jitter: `initialMs × 2^failures`, capped at `maxMs`.
    public static func baseMs(initialMs: Int, maxMs: Int, failures: Int) -> Int {
        let exponent = min(max(failures, 0), 30)
        return Int(min(Double(maxMs), Double(initialMs) * Double(1 << exponent)))
    }
}
