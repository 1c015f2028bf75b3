import Foundation
import Runtime
import XCTest
@testable import Storage
import TestSupport

/// The lease as a pure state machine on a manual clock (README "Two nodes").
final class LeaseMachineTests: XCTestCase {
    struct Down: Error {}
    let clock = ManualClock(Date(timeIntervalSince1970: 1_000))
    var machine = LeaseMachine(node: "a", settings: .init(leaseS: 5))

    func holder(_ node: String, _ epoch: Int64) -> LeaseHolder { LeaseHolder(node: node, url: "http://\(node)", epoch: epoch) }

    func testStandbyAsksOncePerSecondUntilTheDatabaseGrantsIt() {
        XCTAssertEqual(machine.tick(now: clock.now()), .acquire)
        XCTAssertNil(machine.tick(now: clock.now()), "one request in flight at a time")
        XCTAssertNil(machine.acquired(.success(holder("b", 3)), now: clock.now()))
        XCTAssertEqual(machine.state, .standby)
        XCTAssertEqual(machine.holder, holder("b", 3))
        clock.advance(by: 0.5)
        XCTAssertNil(machine.tick(now: clock.now()))
        clock.advance(by: 0.5)
        XCTAssertEqual(machine.tick(now: clock.now()), .acquire)
        XCTAssertEqual(machine.acquired(.success(holder("a", 4)), now: clock.now()), .becomeActive(epoch: 4))
        XCTAssertEqual(machine.state, .active(epoch: 4))
        XCTAssertEqual(machine.epoch, 4)
    }

    func testAFailedAttemptIsRetriedAndChangesNothing() {
        XCTAssertEqual(machine.tick(now: clock.now()), .acquire)
        XCTAssertNil(machine.acquired(.failure(Down()), now: clock.now()))
        XCTAssertEqual(machine.state, .standby)
        clock.advance(by: 1)
        XCTAssertEqual(machine.tick(now: clock.now()), .acquire)
    }

    func testActiveRenewsEverySecondFromWhenItSent() {
        activate(epoch: 1)
        XCTAssertNil(machine.tick(now: clock.now()))
        clock.advance(by: 1)
        XCTAssertEqual(machine.tick(now: clock.now()), .renew(epoch: 1))
        clock.advance(by: 0.3)  // the answer takes 300 ms: the next renewal is still 1 s after the send
        XCTAssertNil(machine.renewed(.success(true), now: clock.now()))
        clock.advance(by: 0.6)
        XCTAssertNil(machine.tick(now: clock.now()))
        clock.advance(by: 0.1)
        XCTAssertEqual(machine.tick(now: clock.now()), .renew(epoch: 1))
    }

    func testLosingTheRowDemotesAtOnce() {
        activate(epoch: 2)
        clock.advance(by: 1)
        XCTAssertEqual(machine.tick(now: clock.now()), .renew(epoch: 2))
        XCTAssertEqual(machine.renewed(.success(false), now: clock.now()), .demote(reason: "another node took the lease"))
        XCTAssertEqual(machine.state, .demoted)
        clock.advance(by: 10)
        XCTAssertNil(machine.tick(now: clock.now()), "a demoted node asks for nothing")
    }

    func testFailedRenewalsDemoteWhenTheLeaseRunsOut() {
        activate(epoch: 1)  // the acquisition was sent at t0
        var sawDemote: LeaseMachine.Action?
        var retries = 0
        while sawDemote == nil {
            clock.advance(by: 0.25)
            guard let action = machine.tick(now: clock.now()) else { continue }
            if case .demote = action { sawDemote = action; break }
            XCTAssertEqual(action, .renew(epoch: 1))
            retries += 1
            if let demote = machine.renewed(.failure(Down()), now: clock.now()) { sawDemote = demote }
        }
        XCTAssertEqual(clock.now().timeIntervalSince1970, 1_005, accuracy: 1e-9, "demoted exactly leaseS after the last good send")
        XCTAssertEqual(retries, 16, "after the first renewal at 1 s, a retry every 250 ms until 5 s")
        XCTAssertEqual(machine.state, .demoted)
    }

    func testAHungRenewalStillDemotesOnTime() {
        // A stopped process (SIGSTOP) or a database that never answers: no answer comes back, the
        // clock alone demotes the node.
        activate(epoch: 7)
        clock.advance(by: 1)
        XCTAssertEqual(machine.tick(now: clock.now()), .renew(epoch: 7))
        clock.advance(by: 3.9)
        XCTAssertNil(machine.tick(now: clock.now()))
        clock.advance(by: 0.1)
        guard case .demote = machine.tick(now: clock.now()) else { return XCTFail("not demoted at leaseS") }
        XCTAssertNil(machine.renewed(.success(true), now: clock.now()), "a late answer does not bring it back")
        XCTAssertEqual(machine.state, .demoted)
    }

    func testALateAcquireAnswerAfterDemotionIsIgnored() {
        XCTAssertNil(machine.acquired(.success(holder("a", 1)), now: clock.now()), "no request was in flight")
        XCTAssertEqual(machine.state, .standby)
    }

    private func activate(epoch: Int64) {
        XCTAssertEqual(machine.tick(now: clock.now()), .acquire)
        XCTAssertEqual(machine.acquired(.success(holder("a", epoch)), now: clock.now()), .becomeActive(epoch: epoch))
    }
}

/// The lease thread against a scripted store: it wins, renews, and reports the loss.
final class LeaseDriverTests: XCTestCase {
    /// Grants the lease to whoever asks first; renewals succeed until `lose` is set.
    final class ScriptedStore: LeaseStore, @unchecked Sendable {
        let lock = NSLock()
        var renewals = 0
        var lose = false
        func acquire(node: String, url: String, leaseS: Double) throws -> LeaseHolder? {
            LeaseHolder(node: node, url: url, epoch: 9)
        }
        func renew(node: String, epoch: Int64) throws -> Bool {
            lock.lock(); defer { lock.unlock() }
            renewals += 1
            return !lose
        }
        func release(node: String, epoch: Int64) throws {}
    }

    func testWinsRenewsAndReportsTheLoss() throws {
        let store = ScriptedStore()
        let clock = ManualClock(Date(timeIntervalSince1970: 0))
        let events = Locked<[String]>([])
        let driver = LeaseDriver(node: "a", url: "http://a", settings: .init(leaseS: 5), clock: clock,
                                 logger: Logger(label: "lease", level: .critical)) { store }
        driver.onActive = { epoch in events.withLock { $0.append("active \(epoch)") } }
        driver.onDemote = { _ in events.withLock { $0.append("demoted") } }
        driver.start()
        defer { driver.stop(release: false) }
        XCTAssertTrue(eventually { events.value == ["active 9"] })
        XCTAssertEqual(driver.status.role, .active)
        XCTAssertEqual(driver.status.holder, LeaseHolder(node: "a", url: "http://a", epoch: 9))
        clock.advance(by: 1)
        XCTAssertTrue(eventually { store.lock.withLock { store.renewals } == 1 }, "a renewal a second later")
        store.lock.withLock { store.lose = true }
        clock.advance(by: 1)
        XCTAssertTrue(eventually { events.value == ["active 9", "demoted"] })
        XCTAssertEqual(driver.status.role, .standby)
    }
}
