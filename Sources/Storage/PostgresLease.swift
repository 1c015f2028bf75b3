import Foundation
import Runtime

/// The lease table of a group of nodes on one PostgreSQL database (README "Two nodes"): one row per
/// plant, its times on the database's clock only.
public enum ClusterSchema {
    public static let migrations = MigrationGroup(name: "cluster", migrations: [
        Migration(version: 1, name: "lease", sql: leaseTable),
    ])

    /// The lease row: the holder's name and URL, the epoch (fencing token), the last renewal (`now()`).
    public static let leaseTable = """
        CREATE TABLE cluster_lease (
            plant TEXT PRIMARY KEY,
            node TEXT NOT NULL,
            url TEXT NOT NULL,
            epoch BIGINT NOT NULL,
            renewed_at TIMESTAMPTZ
        )
        """

    /// The channel the active's commits notify with their last event id.
    public static let channel = "mes_events"

    /// A commit's fencing check and notification, run inside the event log's transaction before
    /// COMMIT: the row is read `FOR SHARE`, so a takeover (an UPDATE of it) waits for this commit
    /// and every later commit of this node sees the new epoch and is refused.
    ///
    /// It also bounds how long this connection may sit idle inside a transaction (half the lease): a
    /// stopped process (SIGSTOP) holding its locks — the lease row, the event ids it inserted — would
    /// otherwise keep the next active from taking the lease or writing those ids; PostgreSQL ends such a
    /// session and rolls its transaction back instead.
    public static func fence(plant: String, node: String, epoch: Int64, leaseS: Double) -> @Sendable (Database, Int64?) throws -> Void {
        let idleMs = max(500, Int(leaseS * 500))
        return { db, lastSeq in
            try db.execute("SET idle_in_transaction_session_timeout = \(idleMs)")
            let rows = try db.query("SELECT node, epoch FROM cluster_lease WHERE plant = ? FOR SHARE", [.text(plant)]) { row in
                (row.text(0) ?? "", row.int64(1))
            }
            guard let holder = rows.first, holder.0 == node, holder.1 == epoch else {
                let now = rows.first.map { "\($0.0) holds it with epoch \($0.1)" } ?? "nobody holds it"
                throw LeaseFenced(message: "this node (\(node), epoch \(epoch)) lost the lease: \(now); nothing is committed")
            }
            if let lastSeq { _ = try db.query("SELECT pg_notify(?, ?)", [.text(channel), .text(String(lastSeq))]) { _ in 0 } }
        }
    }
}

/// A commit refused because this node no longer holds the lease.
public struct LeaseFenced: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// ``LeaseStore`` on PostgreSQL through a ``ClusterLink`` of its own (reconnected after a failure).
public final class PostgresLeaseStore: LeaseStore {
    public let url: String
    public let plant: String
    private var link: ClusterLink?

    public init(url: String, plant: String) {
        self.url = url
        self.plant = plant
    }

    private func connected() throws -> ClusterLink {
        if let link, link.isHealthy { return link }
        link?.close()
        link = nil
        let fresh = try ClusterLink(url: url)
        link = fresh
        return fresh
    }

    private func run(_ sql: String, _ parameters: [String?]) throws -> [[String?]] {
        do {
            return try connected().query(sql, parameters)
        } catch {
            if link?.isHealthy == false { link?.close(); link = nil }
            throw error
        }
    }

    public func acquire(node: String, url: String, leaseS: Double) throws -> LeaseHolder? {
        func holder(_ rows: [[String?]]) -> LeaseHolder? {
            guard let row = rows.first, row.count == 3, let epoch = row[2].flatMap({ Int64($0) }) else { return nil }
            return LeaseHolder(node: row[0] ?? "", url: row[1] ?? "", epoch: epoch)
        }
        let inserted = try run("""
            INSERT INTO cluster_lease (plant, node, url, epoch, renewed_at) VALUES ($1, $2, $3, 1, now())
            ON CONFLICT (plant) DO NOTHING RETURNING node, url, epoch
            """, [plant, node, url])
        if let won = holder(inserted) { return won }
        let taken = try run("""
            UPDATE cluster_lease SET node = $2, url = $3, epoch = epoch + 1, renewed_at = now()
            WHERE plant = $1 AND (renewed_at IS NULL OR renewed_at < now() - make_interval(secs => $4::float8))
            RETURNING node, url, epoch
            """, [plant, node, url, String(leaseS)])
        if let won = holder(taken) { return won }
        return holder(try run("SELECT node, url, epoch FROM cluster_lease WHERE plant = $1", [plant]))
    }

    public func renew(node: String, epoch: Int64) throws -> Bool {
        let rows = try run("UPDATE cluster_lease SET renewed_at = now() WHERE plant = $1 AND node = $2 AND epoch = $3 RETURNING epoch",
                           [plant, node, String(epoch)])
        return !rows.isEmpty
    }

    public func release(node: String, epoch: Int64) throws {
        _ = try run("UPDATE cluster_lease SET renewed_at = NULL WHERE plant = $1 AND node = $2 AND epoch = $3",
                    [plant, node, String(epoch)])
    }

    public func close() {
        link?.close()
        link = nil
    }
}

/// Drives a ``LeaseMachine`` on a thread of its own against a ``LeaseStore`` (README "Two nodes").
///
/// It ticks every 100 ms on the monotonic clock; ``onActive`` runs (on the lease thread) when this
/// node wins the lease, ``onDemote`` when it loses it. ``status`` is safe from any thread.
// @unchecked Sendable: the machine and the store are used only on the lease thread; the status is a `Locked`.
public final class LeaseDriver: @unchecked Sendable {
    public struct Status: Sendable {
        public var role: NodeRole = .standby
        public var holder: LeaseHolder?
    }

    public let node: String
    public let url: String
    private var machine: LeaseMachine
    private let makeStore: @Sendable () -> any LeaseStore
    private let clock: any WallClock
    private let logger: Logger
    private let shared = Locked((status: Status(), stopping: false, thread: false))
    public var onActive: @Sendable (Int64) -> Void = { _ in }
    public var onDemote: @Sendable (String) -> Void = { _ in }

    public init(node: String, url: String, settings: LeaseMachine.Settings, clock: any WallClock = MonotonicClock(),
                logger: Logger, store: @escaping @Sendable () -> any LeaseStore) {
        self.node = node
        self.url = url
        machine = LeaseMachine(node: node, settings: settings)
        makeStore = store
        self.clock = clock
        self.logger = logger
    }

    public var status: Status { shared.value.status }

    /// Starts the lease thread (once).
    public func start() {
        let begin = shared.withLock { state -> Bool in
            if state.thread { return false }
            state.thread = true
            return true
        }
        guard begin else { return }
        let thread = Thread { [self] in loop() }
        thread.name = "lease"
        thread.start()
    }

    /// Stops asking and renewing; gives the lease up when this node holds it (a clean stop: a standby
    /// takes over at its next attempt instead of after the lease).
    public func stop(release: Bool) {
        shared.withLock { $0.stopping = true }
        guard release, let epoch = shared.value.status.holder.flatMap({ $0.node == node ? $0.epoch : nil }),
              shared.value.status.role == .active else { return }
        do {
            try makeStore().release(node: node, epoch: epoch)
            logger.notice("released the lease (epoch \(epoch)): a standby takes over at its next attempt")
        } catch {
            logger.warning("could not release the lease (a standby takes it after the lease runs out): \(error)")
        }
    }

    private func loop() {
        let store = makeStore()
        while !shared.value.stopping {
            var next = machine.tick(now: clock.now())
            while let action = next, !shared.value.stopping {
                next = nil
                switch action {
                case .acquire:
                    let result = Result { try store.acquire(node: node, url: url, leaseS: machine.settings.leaseS) }
                    if case .failure(let error) = result { logger.debug("lease attempt failed: \(error)") }
                    next = machine.acquired(result, now: clock.now())
                    let holder = machine.holder
                    shared.withLock { $0.status.holder = holder }
                case .renew(let epoch):
                    let result = Result { try store.renew(node: node, epoch: epoch) }
                    if case .failure(let error) = result { logger.warning("lease renewal failed: \(error)") }
                    next = machine.renewed(result, now: clock.now())
                case .becomeActive(let epoch):
                    logger.notice("took the lease (epoch \(epoch)): this node is active")
                    shared.withLock { $0.status.role = .active }
                    onActive(epoch)
                case .demote(let reason):
                    logger.error("lost the lease: \(reason); this node stops writing")
                    shared.withLock { $0.status.role = .standby }
                    onDemote(reason)
                }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }
}

/// The monotonic clock as a `WallClock` (only differences are meaningful): the lease's time never
/// jumps with the system clock.
public struct MonotonicClock: WallClock {
    public init() {}
    public func now() -> Date { Date(timeIntervalSince1970: Double(Monotonic.nanoseconds()) / 1e9) }
}
