import Foundation
import Runtime

/// The simulators' random source: the package's ``SeededRandom`` with a stream per part of the plant,
/// and the distributions they draw from. The same seed gives the same stream on every machine and every run.
public struct SimRandom: Sendable {
    private var source: SeededRandom

    public init(seed: UInt64) { source = SeededRandom(seed: seed) }

    /// A generator for one part of the plant, derived from the scenario seed and a stable name.
    public init(seed: UInt64, stream: String) {
        source = SeededRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ StableHash.fnv1a64(stream))
        _ = source.next()
    }

    public mutating func next() -> UInt64 { source.next() }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { source.uniform() }

    /// Uniform integer in 0..<bound.
    public mutating func below(_ bound: Int) -> Int { source.below(bound) }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { source.chance(p) }

    /// Standard normal (Box–Muller, one value per call).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300)
        let u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Exponentially distributed with this mean.
    public mutating func exponential(mean: Double) -> Double {
        -mean * log(max(1 - uniform(), 1e-300))
    }
}

/// Vehicle identification numbers (ISO 3779, 17 characters, with the North American check digit).
public enum VIN {
    static let transliteration: [Character: Int] = {
        var map: [Character: Int] = [:]
        for d in 0...9 { map[Character(String(d))] = d }
        let letters: [(String, Int)] = [("A", 1), ("B", 2), ("C", 3), ("D", 4), ("E", 5), ("F", 6), ("G", 7), ("H", 8),
                                        ("J", 1), ("K", 2), ("L", 3), ("M", 4), ("N", 5), ("P", 7), ("R", 9),
                                        ("S", 2), ("T", 3), ("U", 4), ("V", 5), ("W", 6), ("X", 7), ("Y", 8), ("Z", 9)]
        for (letter, value) in letters { map[Character(letter)] = value }
        return map
    }()
    static let weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
    static let yearCodes = Array("ABCDEFGHJKLMNPRSTVWXY123456789")

    /// The check digit (position 9) of a 17-character VIN; nil if a character is not allowed.
    public static func checkDigit(_ vin: String) -> Character? {
        let chars = Array(vin)
        guard chars.count == 17 else { return nil }
        var sum = 0
        for (i, c) in chars.enumerated() {
            guard let value = transliteration[c] else { return nil }
            sum += value * weights[i]
        }
        let r = sum % 11
        return r == 10 ? "X" : Character(String(r))
    }

    /// Whether `vin` has 17 allowed characters and a correct check digit.
    public static func isValid(_ vin: String) -> Bool {
        let chars = Array(vin)
        guard chars.count == 17, let check = checkDigit(vin) else { return false }
        return chars[8] == check
    }

    /// The model-year letter (2010 = A, 30-year cycle).
    public static func yearCode(_ year: Int) -> Character {
        yearCodes[((year - 2010) % 30 + 30) % 30]
    }

    /// Builds a VIN: `wmi` (3) + `descriptor` (5) + check digit + year code + `plant` (1) + 6-digit serial.
    public static func make(wmi: String, descriptor: String, year: Int, plant: Character, serial: Int) -> String {
        var digits = String(serial % 1_000_000)
        digits = String(repeating: "0", count: 6 - digits.count) + digits
        let draft = wmi + descriptor + "0" + String(yearCode(year)) + String(plant) + digits
        guard let check = checkDigit(draft) else { return draft }
        var chars = Array(draft)
        chars[8] = check
        return String(chars)
    }
}
