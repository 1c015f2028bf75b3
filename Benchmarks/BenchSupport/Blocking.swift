import Foundation

/// Runs an async benchmark body to completion from synchronous code (the calling thread waits).
public func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = Outcome<T>()
    Task {
        do { outcome.set(.success(try await body())) } catch { outcome.set(.failure(error)) }
    }
    return try outcome.wait().get()
}

private final class Outcome<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var result: Result<T, any Error>?

    func set(_ value: Result<T, any Error>) {
        lock.withLock { result = value }
        done.signal()
    }

    func wait() -> Result<T, any Error> {
        done.wait()
        return lock.withLock { result! }
    }
}
