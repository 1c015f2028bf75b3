import Foundation
import Runtime
import XCTest
@testable import Storage
import TestSupport

/// The lease's statements on a real PostgreSQL server: one holder, expiry on the database's clock,
/// the epoch going up at each takeover (README "Two nodes").
final class PostgresLeaseTests: XCTestCase {
    func testOneHolderAndTakeoverOnlyAfterTheLease() throws {
        let url = try PostgresFixture.shared().newDatabase(for: self)
        try ClusterLink(url: url).execute(ClusterSchema.leaseTable)
        let a = PostgresLeaseStore(url: url, plant: "P")
        let b = PostgresLeaseStore(url: url, plant: "P")
        defer { a.close(); b.close() }

        XCTAssertEqual(try a.acquire(node: "a", url: "http://a", leaseS: 1), LeaseHolder(node: "a", url: "http://a", epoch: 1))
        XCTAssertEqual(try b.acquire(node: "b", url: "http://b", leaseS: 1), LeaseHolder(node: "a", url: "http://a", epoch: 1),
                       "a fresh lease is not taken")
        XCTAssertTrue(try a.renew(node: "a", epoch: 1))
        XCTAssertFalse(try b.renew(node: "b", epoch: 1), "only the holder renews")

        // Nobody renews: after a second on the database's clock b gets it, with the next epoch.
        var taken: LeaseHolder?
        XCTAssertTrue(try eventually(timeout: 10) {
            taken = try b.acquire(node: "b", url: "http://b", leaseS: 1)
            return taken?.node == "b"
        })
        XCTAssertEqual(taken, LeaseHolder(node: "b", url: "http://b", epoch: 2))
        XCTAssertFalse(try a.renew(node: "a", epoch: 1), "the old holder's renewal fails: it must demote")
        XCTAssertEqual(try a.acquire(node: "a", url: "http://a", leaseS: 60), LeaseHolder(node: "b", url: "http://b", epoch: 2))

        // A clean stop releases it: the other node takes it at its next attempt, without waiting.
        try b.release(node: "b", epoch: 2)
        XCTAssertEqual(try a.acquire(node: "a", url: "http://a", leaseS: 60), LeaseHolder(node: "a", url: "http://a", epoch: 3))
    }

    /// Fencing: once another node took the lease, this node's commits are refused in their own
    /// transaction, and nothing of them is stored; while it holds the lease every commit notifies.
    func testCommitsOfANodeThatLostTheLeaseAreRefused() throws {
        let url = try PostgresFixture.shared().newDatabase(for: self)
        var configuration = EventLog.Configuration(path: url)
        configuration.migrations = [ClusterSchema.migrations]
        configuration.retryIntervalMs = 50
        let store = PostgresLeaseStore(url: url, plant: "P")
        defer { store.close() }
        // The table exists once the log has migrated; then node a takes the lease.
        let probe = try EventLog.open(configuration, logger: Logger(label: "probe", level: .critical))
        probe.close()
        let holder = try XCTUnwrap(try store.acquire(node: "a", url: "http://a", leaseS: 60))
        configuration.commitFence = ClusterSchema.fence(plant: "P", node: "a", epoch: holder.epoch, leaseS: 60)
        let log = try EventLog.open(configuration, logger: Logger(label: "a", level: .critical))
        log.start()
        defer { log.close() }
        let listener = try ClusterLink(url: url)
        try listener.listen(ClusterSchema.channel)

        let t = Date(timeIntervalSince1970: 1_790_000_000)
        let first = try log.write(events: [NewEvent(type: "test", time: t, data: "{}")]) { _ in }
        var notified: [String] = []
        XCTAssertTrue(try eventually(timeout: 5) {
            notified += try listener.notifications(waitingUpTo: 0.2)
            return notified.contains(String(first[0]))
        }, "a commit notifies its last id: \(notified)")

        // Node b takes over (the lease made stale by hand: its renewal long ago).
        let admin = try ClusterLink(url: url)
        try admin.execute("UPDATE cluster_lease SET renewed_at = now() - interval '1 hour'")
        XCTAssertEqual(try store.acquire(node: "b", url: "http://b", leaseS: 60)?.epoch, holder.epoch + 1)
        XCTAssertThrowsError(try log.write(events: [NewEvent(type: "test", time: t, data: #"{"late":true}"#)], timeout: 5) { _ in }) { error in
            XCTAssertTrue("\(error)".contains("lost the lease"), "\(error)")
        }
        XCTAssertFalse(log.isWritable)
        let rows = try admin.query("SELECT seq, data FROM events ORDER BY seq")
        XCTAssertEqual(rows.map { $0[1] ?? "" }, ["{}"], "only the commit made while holding the lease is stored")
    }

    func testPlantsHaveTheirOwnLease() throws {
        let url = try PostgresFixture.shared().newDatabase(for: self)
        try ClusterLink(url: url).execute(ClusterSchema.leaseTable)
        let one = PostgresLeaseStore(url: url, plant: "one"), two = PostgresLeaseStore(url: url, plant: "two")
        defer { one.close(); two.close() }
        XCTAssertEqual(try one.acquire(node: "a", url: "u", leaseS: 5)?.node, "a")
        XCTAssertEqual(try two.acquire(node: "b", url: "u", leaseS: 5)?.node, "b")
    }

    func testListenGetsTheNotifiedPayload() throws {
        let url = try PostgresFixture.shared().newDatabase(for: self)
        let listener = try ClusterLink(url: url), sender = try ClusterLink(url: url)
        try listener.listen(ClusterSchema.channel)
        XCTAssertEqual(try listener.notifications(waitingUpTo: 0), [])
        try sender.query("SELECT pg_notify($1, $2)", [ClusterSchema.channel, "42"])
        var got: [String] = []
        XCTAssertTrue(try eventually(timeout: 5) {
            got += try listener.notifications(waitingUpTo: 0.2)
            return !got.isEmpty
        })
        XCTAssertEqual(got, ["42"])
    }

    func testABadURLSaysWhereWithoutThePassword() {
        XCTAssertThrowsError(try ClusterLink(url: "postgresql://u:secret@127.0.0.1:1/db", timeoutS: 1)) { error in
            XCTAssertTrue("\(error)".contains("postgresql://u:***@127.0.0.1:1/db"), "\(error)")
            XCTAssertFalse("\(error)".contains("secret"))
        }
    }
}
