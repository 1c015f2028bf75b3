import Synchronization

/// Mutable state shared between threads, reached only inside ``withLock(_:)``.
///
/// The one lock box of the code base: a class (so closures and several owners can share it)
/// around the standard library's `Mutex`. It is `Sendable` for any value because the value only
/// moves in and out through `sending`: the compiler checks that nothing non-Sendable escapes the
/// lock still shared with the caller.
///
/// Keep the body short: every other caller waits while it runs. A non-Sendable value can go in
/// only if it is made inside the body (or comes in `sending`); it cannot be captured from outside.
public final class Locked<Value: ~Copyable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: consuming sending Value) {
        mutex = Mutex(value)
    }

    /// Runs `body` with exclusive access to the value and returns its result.
    public func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try mutex.withLock(body)
    }
}

extension Locked where Value: Sendable {
    /// A copy of the current value.
    public var value: Value { withLock { $0 } }

    /// Replaces the value.
    public func set(_ newValue: Value) { withLock { $0 = newValue } }
}
