import Runtime

/// The tests' seeded generator is the product's one (`Runtime.SeededRandom`, SplitMix64), so every
/// run of a randomised test sees the same inputs and a failure reproduces from its seed.
public typealias SplitMix64 = SeededRandom

extension SeededRandom {
    /// A uniformly chosen element of a non-empty array.
    public mutating func element<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// `count` random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}
