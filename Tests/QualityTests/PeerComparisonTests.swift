import XCTest
@testable import Quality

/// The engine compares each station of a process with the others from their window figures taken
/// once (``PeerComparison/health(own:peers:skipping:)``): the same health, to the last bit, as
/// the list of the others (``PeerComparison/health(own:others:)``).
final class PeerComparisonTests: XCTestCase {
    func testSkippingOneOfThePeersGivesTheHealthOfTheOthersList() {
        var state: UInt64 = 19
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        var compared = 0
        for round in 0..<300 {
            let size = 2 + round % 9
            let peers: [(mean: Double, sd: Double, count: Int)?] = (0..<size).map { _ in
                let draw = next()
                if draw < 0.1 { return nil }
                // A few short windows (fewer than 10 values: no health), some with no spread.
                let count = draw < 0.15 ? 5 : 10 + Int(next() * 40)
                return (mean: 10 + next() * 3, sd: draw < 0.2 ? 0 : next() * 0.5, count: count)
            }
            for k in peers.indices {
                guard let own = peers[k] else { continue }
                let others = peers.indices.filter { $0 != k }.compactMap { peers[$0] }
                let expected = PeerComparison.health(own: own, others: others)
                let health = PeerComparison.health(own: own, peers: peers, skipping: k)
                XCTAssertEqual(health?.bitPattern, expected?.bitPattern, "round \(round), peer \(k)")
                if expected != nil { compared += 1 }
            }
        }
        XCTAssertGreaterThan(compared, 500, "most comparisons give a health")
    }
}
