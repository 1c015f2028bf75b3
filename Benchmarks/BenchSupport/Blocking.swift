import Foundation
import Runtime

/// Runs an async benchmark body to completion from synchronous code (the calling thread waits).
public func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = ResultBox<T>()
    Task {
        do { outcome.set(.success(try await body())) } catch { outcome.set(.failure(error)) }
    }
    return try outcome.wait().get()
}
