import Foundation
import XCTest
import Runtime

final class LockedTests: XCTestCase {
    func testUpdatesFromManyThreadsAreNotLost() {
        let total = Locked(0)
        let threads = 8, perThread = 10_000
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<perThread { total.withLock { $0 += 1 } }
        }
        XCTAssertEqual(total.value, threads * perThread)
    }

    func testWithLockReturnsTheBodysResultAndRethrows() {
        struct Refused: Error {}
        let names = Locked(["a"])
        XCTAssertEqual(names.withLock { names -> Int in names.append("b"); return names.count }, 2)
        XCTAssertThrowsError(try names.withLock { _ in throw Refused() }) { XCTAssertTrue($0 is Refused) }
        XCTAssertEqual(names.value, ["a", "b"])
    }

    func testFlagAndCounter() {
        let flag = Flag(), counter = Counter()
        XCTAssertFalse(flag.isSet)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in counter.add(5) }
        flag.set()
        XCTAssertTrue(flag.isSet)
        XCTAssertEqual(counter.value, 20)
    }

    /// A non-Sendable value made here is used by the thread it is handed to.
    func testStartThreadHandsOverAThreadConfinedValue() {
        final class Tally { var items: [Int] = [] }
        let tally = Tally()
        tally.items.append(1)
        let seen = Locked<[Int]>([])
        let done = DispatchSemaphore(value: 0)
        startThread(named: "handover-test") {
            tally.items.append(2)
            seen.set(tally.items)
            done.signal()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(seen.value, [1, 2])
    }
}
