import Foundation
import XCTest
import Runtime

/// The shared seeded generator, stable hash and backoff, and the epoll + wake fd every loop waits in.
final class DeterministicAndEpollTests: XCTestCase {
    func testSeededRandomIsSplitMix64() {
        // Reference outputs of SplitMix64 for seed 0.
        var random = SeededRandom(seed: 0)
        XCTAssertEqual(random.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(random.next(), 0x6E78_9E6A_A1B9_65F4)
        var a = SeededRandom(seed: 42)
        var b = SeededRandom(seed: 42)
        XCTAssertEqual((0..<5).map { _ in a.below(1000) }, (0..<5).map { _ in b.below(1000) })
        XCTAssertFalse(a.chance(0))
        XCTAssertTrue(a.chance(1))
    }

    func testStableHashIsFNV1a() {
        XCTAssertEqual(StableHash.fnv1a64(""), 0xCBF2_9CE4_8422_2325)
        XCTAssertEqual(StableHash.fnv1a64("a"), 0xAF63_DC4C_8601_EC8C)
        XCTAssertEqual(StableHash.fnv1a64("foobar"), 0x8594_4171_F739_67E8)
    }

    func testBackoffDoublesToItsCapAndJittersDownOnly() {
        var plain = Backoff(initialMs: 100, maxMs: 1000, jitter: 0)
        XCTAssertEqual((0..<6).map { plain.delayMs(afterFailures: $0) }, [100, 200, 400, 800, 1000, 1000])
        XCTAssertEqual(Backoff.baseMs(initialMs: 100, maxMs: 1000, failures: -1), 100)
        var jittered = Backoff(initialMs: 100, maxMs: 1000, jitter: 0.2, seed: 9)
        for failures in 0..<6 {
            let base = Backoff.baseMs(initialMs: 100, maxMs: 1000, failures: failures)
            let delay = jittered.delayMs(afterFailures: failures)
            XCTAssertTrue((base * 8 / 10...base).contains(delay), "\(delay) for \(base)")
        }
    }

    func testWakeFdWakesAnEpollWaitAndDrains() throws {
        let epoll = try Epoll(capacity: 4, context: "test")
        defer { epoll.close() }
        let wake = try WakeFd()
        defer { wake.close() }
        try epoll.add(wake.fd, Epoll.readable)
        var ready: [Int32] = []
        try epoll.wait(timeoutMs: 0) { fd, _ in ready.append(fd) }
        XCTAssertEqual(ready, [])
        wake.signal()
        wake.signal()
        try epoll.wait(timeoutMs: 1000) { fd, events in
            XCTAssertNotEqual(events & Epoll.readable, 0)
            ready.append(fd)
        }
        XCTAssertEqual(ready, [wake.fd])
        wake.drain()
        ready = []
        try epoll.wait(timeoutMs: 0) { fd, _ in ready.append(fd) }
        XCTAssertEqual(ready, [])
    }
}
