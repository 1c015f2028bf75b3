import Foundation

/// How often the condition waits look again.
private let pollInterval: TimeInterval = 0.01

/// Polls `condition` until it holds or `timeout` seconds pass; returns whether it held (a last look
/// is taken at the deadline). The one way a test waits for something that happens on another
/// thread: no fixed sleeps.
public func eventually(timeout: TimeInterval = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: pollInterval)
    }
    return try condition()
}

/// ``eventually(timeout:_:)`` for async tests: the condition may await, and the wait suspends
/// instead of blocking a thread of the cooperative pool.
public func waitUntil(timeout: TimeInterval = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(nanoseconds: UInt64(pollInterval * 1e9))
    }
    return try await condition()
}
