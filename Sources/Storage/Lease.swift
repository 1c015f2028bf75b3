import Foundation
import Runtime

/// A server's part in a group of servers on one PostgreSQL database (README "Two nodes").
public enum NodeRole: String, Sendable, Equatable {
    /// Holds the lease: polls the PLCs, runs tracking and quality, writes events.
    case active
    /// Serves the API and the event stream from the database; forwards writes to the active.
    case standby
}

/// Who holds a plant's lease, as the database says.
public struct LeaseHolder: Sendable, Equatable {
    /// The holder's `--node` name.
    public var node: String
    /// Where the holder serves HTTP (standbys forward writes there).
    public var url: String
    /// The fencing token: incremented at each takeover; commits check it (README "Two nodes").
    public var epoch: Int64

    public init(node: String, url: String, epoch: Int64) {
        self.node = node
        self.url = url
        self.epoch = epoch
    }
}

/// The lease row's operations, each one statement on the database's clock (`now()`).
///
/// Implementations block (a database round trip) and are called on one thread only.
public protocol LeaseStore: AnyObject {
    /// Takes the lease if nobody holds it or its holder's last renewal is more than `leaseS`
    /// seconds old (one conditional update); the epoch goes up by one. Returns the holder after the
    /// attempt: this node with its new epoch when it won, else the one that holds it.
    func acquire(node: String, url: String, leaseS: Double) throws -> LeaseHolder?
    /// Renews the lease if this node still holds it with `epoch`; false when another took it.
    func renew(node: String, epoch: Int64) throws -> Bool
    /// Gives the lease up at a clean stop (its renewal time is cleared, so a standby takes over at once).
    func release(node: String, epoch: Int64) throws
}

/// The lease as a pure state machine: time and the database's answers in, actions out.
///
/// A standby asks for the lease every ``Settings/attemptEveryS``; the database grants it only when
/// the holder's renewal is older than the lease. The active renews every ``Settings/renewEveryS``.
/// It demotes itself when the database says another holds the lease, and when no renewal has
/// succeeded for ``Settings/leaseS`` (measured from when the last good renewal was *sent*, so on
/// its own clock it gives up no later than the database lets a standby take over). Commits check
/// the epoch in their own transaction as well (fencing), so a demotion that comes late (a stopped
/// process) still writes nothing.
///
/// Times are the driver's monotonic clock; only their differences matter.
public struct LeaseMachine: Sendable {
    public struct Settings: Sendable, Equatable {
        public var leaseS: Double
        public var renewEveryS: Double = 1
        public var attemptEveryS: Double = 1
        /// After a failed renewal (no answer from the database), the next try comes this soon.
        public var retryEveryS: Double = 0.25
        public init(leaseS: Double) { self.leaseS = leaseS }
    }

    public enum State: Sendable, Equatable {
        case standby
        case active(epoch: Int64)
        /// Lost the lease: the node stops writing (terminal).
        case demoted
    }

    /// What the driver does next.
    public enum Action: Sendable, Equatable {
        /// Call ``LeaseStore/acquire(node:url:leaseS:)`` and hand the answer to ``acquired(_:now:)``.
        case acquire
        /// Call ``LeaseStore/renew(node:epoch:)`` and hand the answer to ``renewed(_:now:)``.
        case renew(epoch: Int64)
        /// This node won the lease: restore, then start polling and writing.
        case becomeActive(epoch: Int64)
        /// This node lost the lease: stop writing at once.
        case demote(reason: String)
    }

    public let node: String
    public let settings: Settings
    public private(set) var state: State = .standby
    /// The holder the database named last (this node once active).
    public private(set) var holder: LeaseHolder?
    /// The request in flight and when it was sent.
    private var pending: (action: Action, sentAt: Date)?
    private var nextAttempt: Date?
    /// When the last successful renewal (or the acquisition) was sent.
    private var lastGoodSend: Date?

    public init(node: String, settings: Settings) {
        self.node = node
        self.settings = settings
    }

    /// The next request, or a demotion when the lease ran out without a successful renewal.
    /// Call it often (at least every 250 ms); at most one request is in flight.
    public mutating func tick(now: Date) -> Action? {
        if case .active = state, let last = lastGoodSend, now.timeIntervalSince(last) >= settings.leaseS {
            return demote("no lease renewal succeeded for \(Self.seconds(now.timeIntervalSince(last))) s (lease \(Self.seconds(settings.leaseS)) s)")
        }
        guard pending == nil, state != .demoted else { return nil }
        if let next = nextAttempt, now < next { return nil }
        let action: Action
        switch state {
        case .standby: action = .acquire
        case .active(let epoch): action = .renew(epoch: epoch)
        case .demoted: return nil
        }
        pending = (action, now)
        return action
    }

    /// The answer to ``Action/acquire``: the holder after the attempt, or the error.
    public mutating func acquired(_ result: Result<LeaseHolder?, any Error>, now: Date) -> Action? {
        guard let sent = pending, sent.action == .acquire else { return nil }
        pending = nil
        guard state == .standby else { return nil }
        switch result {
        case .success(let current):
            holder = current
            if let current, current.node == node {
                state = .active(epoch: current.epoch)
                lastGoodSend = sent.sentAt
                nextAttempt = sent.sentAt.addingTimeInterval(settings.renewEveryS)
                return .becomeActive(epoch: current.epoch)
            }
            nextAttempt = now.addingTimeInterval(settings.attemptEveryS)
        case .failure:
            nextAttempt = now.addingTimeInterval(settings.attemptEveryS)
        }
        return nil
    }

    /// The answer to ``Action/renew(epoch:)``: true renewed, false another holds it, or the error.
    public mutating func renewed(_ result: Result<Bool, any Error>, now: Date) -> Action? {
        guard let sent = pending, case .renew = sent.action else { return nil }
        pending = nil
        guard case .active = state else { return nil }
        switch result {
        case .success(true):
            lastGoodSend = sent.sentAt
            nextAttempt = sent.sentAt.addingTimeInterval(settings.renewEveryS)
            return nil
        case .success(false):
            return demote("another node took the lease")
        case .failure(let error):
            nextAttempt = now.addingTimeInterval(settings.retryEveryS)
            if let last = lastGoodSend, now.timeIntervalSince(last) >= settings.leaseS {
                return demote("no lease renewal succeeded for \(Self.seconds(now.timeIntervalSince(last))) s: \(error)")
            }
            return nil
        }
    }

    /// The epoch this node holds, nil unless active.
    public var epoch: Int64? {
        if case .active(let epoch) = state { epoch } else { nil }
    }

    private mutating func demote(_ reason: String) -> Action {
        state = .demoted
        pending = nil
        return .demote(reason: reason)
    }

    private static func seconds(_ value: Double) -> String { String(format: "%.1f", value) }
}
