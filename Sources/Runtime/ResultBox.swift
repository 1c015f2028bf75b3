import Dispatch

/// A one-shot result handed from one thread to a caller waiting on another (the pipeline's
/// commands, a benchmark waiting for an async body).
public final class ResultBox<T: Sendable>: Sendable {
    private let result = Locked<Result<T, any Error>?>(nil)
    /// Signalled by each ``set(_:)``; a waiter passes the signal on to the next.
    private let ready = DispatchSemaphore(value: 0)

    public init() {}

    public func set(_ value: Result<T, any Error>) {
        result.set(value)
        ready.signal()
    }

    /// Blocks until ``set(_:)`` has been called.
    public func wait() -> Result<T, any Error> {
        ready.wait()
        ready.signal()
        return result.value!
    }
}
