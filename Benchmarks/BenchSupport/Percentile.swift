/// The `p` quantile (0…1) of `values` by the nearest-rank rule, the one rule of every benchmark.
///
/// Nearest rank: the smallest value such that at least a fraction `p` of all values are at or
/// below it, i.e. `sorted[⌈p·n⌉ − 1]` (clamped to the first and last value). So `p = 0.5` of
/// 100 values is the 50th smallest, `p = 0.99` the 99th, `p = 1` the largest; a value that was
/// measured, never an interpolation. NaN when there are no values (no figure, rather than 0).
public func percentile(_ values: [Double], _ p: Double) -> Double {
    percentile(sorted: values.sorted(), p)
}

/// ``percentile(_:_:)`` of values already sorted ascending (several quantiles of one sort).
public func percentile(sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((Double(sorted.count) * p).rounded(.up))
    return sorted[max(0, min(sorted.count - 1, rank - 1))]
}
