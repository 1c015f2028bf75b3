import Foundation
import Runtime

/// The client's connection lifecycle (connect, lose, back off, reconnect, close) as a pure state machine.
///
/// The owner performs `.connect` (socket, channel, session, subscriptions) and reports the outcome;
/// the machine decides what state to announce and when to try again. Times are monotonic nanoseconds.
public struct ClientConnectionMachine: Sendable {
    public enum State: Sendable, Equatable {
        case idle
        case connecting(attempt: Int)
        case connected
        /// Waiting before the next attempt; `untilNs == .max` waits for an explicit reconnect.
        case waiting(untilNs: UInt64, attempt: Int)
        case closed
    }

    public enum Action: Sendable, Equatable {
        /// Open socket, channel and session now, then report `connectSucceeded` or `connectionFailed`.
        case connect
        /// Tell observers.
        case notify(ConnectionState)
        /// Resolve the caller of the first `connect()`: nil on success, else the reason.
        case completeFirstConnect(failure: String?)
        /// Stop the I/O thread.
        case stop
    }

    public private(set) var state: State = .idle
    public let autoReconnect: Bool
    public let initialDelayMs: Int
    public let maxDelayMs: Int
    private var everConnected = false

    public init(autoReconnect: Bool, initialDelayMs: Int = 100, maxDelayMs: Int = 2000) {
        self.autoReconnect = autoReconnect
        self.initialDelayMs = max(1, initialDelayMs)
        self.maxDelayMs = max(self.initialDelayMs, maxDelayMs)
    }

    /// The pause before attempt `attempt + 1` after `attempt` failed: doubling from the initial delay, capped.
    public func delayMs(afterAttempt attempt: Int) -> Int {
        Backoff.baseMs(initialMs: initialDelayMs, maxMs: maxDelayMs, failures: attempt - 1)
    }

    public mutating func start() -> [Action] {
        guard state == .idle else { return [] }
        state = .connecting(attempt: 1)
        return [.notify(.connecting), .connect]
    }

    public mutating func connectSucceeded() -> [Action] {
        guard case .connecting = state else { return [] }
        state = .connected
        let first = !everConnected
        everConnected = true
        return [.notify(.connected)] + (first ? [.completeFirstConnect(failure: nil)] : [])
    }

    /// A connect attempt failed, or an established connection was lost.
    public mutating func connectionFailed(_ reason: String, nowNs: UInt64) -> [Action] {
        let attempt: Int
        switch state {
        case .connecting(let current): attempt = current
        case .connected: attempt = 0
        default: return []
        }
        guard everConnected else {
            // The first connect fails to its caller; no retries behind its back.
            state = .closed
            return [.notify(.disconnected(reason)), .completeFirstConnect(failure: reason), .stop]
        }
        if attempt == 0 && autoReconnect {
            // A fresh loss: try again at once.
            state = .waiting(untilNs: nowNs, attempt: 0)
        } else {
            state = .waiting(untilNs: autoReconnect ? nowNs + UInt64(delayMs(afterAttempt: attempt)) * 1_000_000 : .max, attempt: attempt)
        }
        return [.notify(.disconnected(reason))]
    }

    /// Time passed: start the next attempt when the wait is over.
    public mutating func tick(nowNs: UInt64) -> [Action] {
        guard case .waiting(let until, let attempt) = state, nowNs >= until else { return [] }
        state = .connecting(attempt: attempt + 1)
        return [.notify(.connecting), .connect]
    }

    /// `reconnect()` was called: connect now (the owner drops a live connection first).
    public mutating func reconnectRequested() -> [Action] {
        switch state {
        case .connected, .waiting:
            state = .connecting(attempt: 1)
            return [.notify(.connecting), .connect]
        default:
            return []
        }
    }

    public mutating func close() -> [Action] {
        guard state != .closed else { return [] }
        state = .closed
        return [.notify(.closed), .stop]
    }
}
