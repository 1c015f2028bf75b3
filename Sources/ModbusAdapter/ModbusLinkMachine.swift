import PlantModel
import Runtime

/// Reconnect delays of a station: the package's one ``Backoff`` (exponential, capped, seeded jitter).
public typealias ReconnectBackoff = Backoff

/// The connection lifecycle of one Modbus station as a pure state machine.
///
/// connecting → online → offline → (reconnect with backoff) → online … Methods take what
/// happened and the monotonic time (ns) and return what the adapter must do. The reported
/// ``ConnectionState`` is `connecting` until the first successful poll, `online` while polls
/// succeed, `offline` from the first connection-level failure until a poll succeeds again.
public struct ModbusLinkMachine: Sendable {
    public enum State: Sendable, Equatable {
        /// No connection; the next attempt is due at `retryAt` (monotonic ns).
        case disconnected(retryAt: UInt64)
        /// Connected (polls may run).
        case connected
        /// Stopped for good.
        case stopped
    }

    public enum Action: Sendable, Equatable {
        /// Open the connection now.
        case connect
        /// Close the connection.
        case close
        /// Report a change of the connection state (emit a ``ConnectionChange``).
        case report(ConnectionState, reason: String?)
        /// Emit the last known values with quality `stale`.
        case markStale
        /// Count a reconnect in the stats.
        case countReconnect
    }

    public private(set) var state: State
    public private(set) var reported: ConnectionState = .connecting
    /// Consecutive failed attempts since the last successful poll.
    public private(set) var failures = 0
    private var backoff: ReconnectBackoff
    private var everConnected = false

    public init(backoff: ReconnectBackoff = ReconnectBackoff(), now: UInt64) {
        self.backoff = backoff
        self.state = .disconnected(retryAt: now)
    }

    /// When the machine next wants to act on its own (a reconnect), or nil while connected.
    public var wakeAt: UInt64? {
        if case .disconnected(let at) = state { return at }
        return nil
    }

    /// Time passes: a due reconnect becomes `.connect`.
    public mutating func tick(now: UInt64) -> [Action] {
        guard case .disconnected(let at) = state, now >= at else { return [] }
        return everConnected ? [.countReconnect, .connect] : [.connect]
    }

    /// The connection is open.
    public mutating func connectSucceeded(now: UInt64) -> [Action] {
        guard state != .stopped else { return [.close] }
        state = .connected
        everConnected = true
        return []
    }

    /// Opening the connection failed.
    public mutating func connectFailed(now: UInt64, reason: String) -> [Action] {
        guard state != .stopped else { return [] }
        return fail(now: now, reason: reason, close: false)
    }

    /// A poll got answers (possibly Modbus exceptions for some signals: the link is fine).
    public mutating func pollSucceeded(now: UInt64) -> [Action] {
        guard state == .connected else { return [] }
        failures = 0
        if reported != .online {
            reported = .online
            return [.report(.online, reason: nil)]
        }
        return []
    }

    /// A poll failed at the connection level (timeout, closed, refused, garbage).
    public mutating func pollFailed(now: UInt64, reason: String) -> [Action] {
        guard state == .connected else { return [] }
        return fail(now: now, reason: reason, close: true)
    }

    /// Stop: close if connected.
    public mutating func stop() -> [Action] {
        let wasConnected = state == .connected
        state = .stopped
        return wasConnected ? [.close] : []
    }

    private mutating func fail(now: UInt64, reason: String, close: Bool) -> [Action] {
        var actions: [Action] = close ? [.close] : []
        let delay = backoff.delayMs(afterFailures: failures)
        failures += 1
        state = .disconnected(retryAt: now + UInt64(delay) * 1_000_000)
        if reported != .offline {
            reported = .offline
            actions.append(.report(.offline, reason: reason))
            actions.append(.markStale)
        }
        return actions
    }
}
