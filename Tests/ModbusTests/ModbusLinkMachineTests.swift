import XCTest
import PlantModel
@testable import ModbusAdapter

final class ModbusLinkMachineTests: XCTestCase {
    let ms: UInt64 = 1_000_000

    /// Slots sit at phase + k × interval: stepping slot to slot never drifts, and a late start skips
    /// to the next slot instead of catching up with a burst.
    func testPollGridHasNoDriftAndSkipsMissedSlots() {
        let grid = PollGrid(interval: 20 * ms, station: "T-01")
        XCTAssertLessThan(grid.phase, 20 * ms)
        XCTAssertEqual(PollGrid(interval: 20 * ms, station: "T-01").phase, grid.phase, "the phase is stable")
        var slot = grid.slot(after: 0)
        for k in 1...10_000 {
            slot = grid.slot(after: slot)
            XCTAssertEqual(slot, grid.phase + UInt64(k) * 20 * ms + (grid.phase == 0 ? 20 * ms : 0))
        }
        // A poll that overran by 2.5 slots: the next deadline is the first slot after now.
        let late = grid.phase + 1_000 * 20 * ms + 50 * ms
        XCTAssertEqual(grid.slot(after: late), grid.phase + 1_003 * 20 * ms)
        XCTAssertEqual(grid.slot(after: grid.phase + 7 * 20 * ms), grid.phase + 8 * 20 * ms, "strictly after")
    }

    /// With the event loops' shared tick, phases are multiples of 10 ms (many stations share one),
    /// still below the interval, and slots still step by the station's own interval.
    func testSharedTickGroupsPhasesWithoutChangingIntervals() {
        let tick = PollGrid.sharedTick
        var phases = Set<UInt64>()
        for i in 0..<200 {
            let grid = PollGrid(interval: 100 * ms, station: "S-\(i)", tick: tick)
            XCTAssertEqual(grid.phase % tick, 0)
            XCTAssertLessThan(grid.phase, 100 * ms)
            XCTAssertEqual(grid.phase, PollGrid(interval: 100 * ms, station: "S-\(i)").phase / tick * tick, "the unrounded phase, rounded down")
            XCTAssertEqual(grid.slot(after: grid.slot(after: 5 * ms)) - grid.slot(after: 5 * ms), 100 * ms)
            phases.insert(grid.phase)
        }
        XCTAssertLessThanOrEqual(phases.count, 10, "200 stations at 100 ms share at most 10 phases")
        XCTAssertEqual(PollGrid(interval: 64 * ms, station: "S-1", tick: tick).slot(after: 64 * ms * 1000 + 1) % ms, 0)
        XCTAssertEqual(PollGrid(interval: 1 * ms, station: "S-1", tick: tick).phase, 0, "an interval under the tick: one phase")
    }

    func testBackoffDoublesToCapWithDeterministicJitter() {
        var a = ReconnectBackoff(initialMs: 100, maxMs: 5000, jitter: 0.2, seed: 42)
        var b = ReconnectBackoff(initialMs: 100, maxMs: 5000, jitter: 0.2, seed: 42)
        let delays = (0..<10).map { a.delayMs(afterFailures: $0) }
        XCTAssertEqual(delays, (0..<10).map { b.delayMs(afterFailures: $0) }, "same seed, same delays")
        let bases = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        for (delay, base) in zip(delays, bases) {
            XCTAssertLessThanOrEqual(delay, base)
            XCTAssertGreaterThanOrEqual(delay, Int(Double(base) * 0.8) - 1)
        }
        var c = ReconnectBackoff(initialMs: 100, maxMs: 5000, jitter: 0.2, seed: 43)
        XCTAssertNotEqual(delays, (0..<10).map { c.delayMs(afterFailures: $0) }, "jitter depends on the seed")
        var none = ReconnectBackoff(initialMs: 100, maxMs: 5000, jitter: 0)
        XCTAssertEqual((0..<8).map { none.delayMs(afterFailures: $0) }, [100, 200, 400, 800, 1600, 3200, 5000, 5000])
    }

    func testConnectingOnlineOfflineOnline() {
        var m = ModbusLinkMachine(backoff: ReconnectBackoff(initialMs: 100, maxMs: 1000, jitter: 0), now: 0)
        XCTAssertEqual(m.reported, .connecting)
        XCTAssertEqual(m.tick(now: 0), [.connect])
        XCTAssertEqual(m.connectSucceeded(now: 1 * ms), [])
        XCTAssertEqual(m.reported, .connecting, "connecting until the first successful poll")
        XCTAssertEqual(m.pollSucceeded(now: 2 * ms), [.report(.online, reason: nil)])
        XCTAssertEqual(m.pollSucceeded(now: 3 * ms), [], "no repeated report")
        XCTAssertNil(m.wakeAt)
        // the peer vanishes
        XCTAssertEqual(m.pollFailed(now: 10 * ms, reason: "timeout"),
                       [.close, .report(.offline, reason: "timeout"), .markStale])
        XCTAssertEqual(m.wakeAt, 110 * ms)
        XCTAssertEqual(m.tick(now: 50 * ms), [], "not before the backoff")
        XCTAssertEqual(m.tick(now: 110 * ms), [.countReconnect, .connect])
        XCTAssertEqual(m.connectFailed(now: 111 * ms, reason: "refused"), [], "already offline: no new report")
        XCTAssertEqual(m.wakeAt, 311 * ms, "doubled")
        XCTAssertEqual(m.tick(now: 311 * ms), [.countReconnect, .connect])
        XCTAssertEqual(m.connectFailed(now: 311 * ms, reason: "refused"), [])
        XCTAssertEqual(m.wakeAt, 711 * ms)
        XCTAssertEqual(m.tick(now: 711 * ms), [.countReconnect, .connect])
        XCTAssertEqual(m.connectFailed(now: 711 * ms, reason: "refused"), [])
        XCTAssertEqual(m.wakeAt, 1511 * ms)
        XCTAssertEqual(m.tick(now: 1511 * ms), [.countReconnect, .connect])
        XCTAssertEqual(m.connectFailed(now: 1511 * ms, reason: "refused"), [])
        XCTAssertEqual(m.wakeAt, 2511 * ms, "capped at 1000 ms")
        XCTAssertEqual(m.tick(now: 2511 * ms), [.countReconnect, .connect])
        XCTAssertEqual(m.connectSucceeded(now: 1712 * ms), [])
        XCTAssertEqual(m.reported, .offline, "offline until a poll succeeds")
        XCTAssertEqual(m.pollSucceeded(now: 1713 * ms), [.report(.online, reason: nil)])
        XCTAssertEqual(m.failures, 0)
        // after recovery the backoff starts again from the initial delay
        _ = m.pollFailed(now: 2000 * ms, reason: "closed")
        XCTAssertEqual(m.wakeAt, 2100 * ms)
    }

    func testFirstConnectFailureReportsOffline() {
        var m = ModbusLinkMachine(backoff: ReconnectBackoff(initialMs: 100, maxMs: 1000, jitter: 0), now: 0)
        XCTAssertEqual(m.tick(now: 0), [.connect])
        XCTAssertEqual(m.connectFailed(now: 0, reason: "refused"), [.report(.offline, reason: "refused"), .markStale])
        XCTAssertEqual(m.tick(now: 100 * ms), [.connect], "not a reconnect: never connected")
    }

    func testStop() {
        var m = ModbusLinkMachine(now: 0)
        _ = m.tick(now: 0)
        _ = m.connectSucceeded(now: 0)
        XCTAssertEqual(m.stop(), [.close])
        XCTAssertEqual(m.tick(now: 10_000 * ms), [])
        XCTAssertEqual(m.pollFailed(now: 0, reason: "x"), [])
        XCTAssertEqual(m.connectSucceeded(now: 0), [.close])
    }
}
