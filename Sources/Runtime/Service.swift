import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A long-running part of the server (an adapter, the storage writer, the HTTP listener …).
///
/// `run()` does the work until its task is cancelled, then releases what it holds and returns.
/// Nothing is started in an `init`: a ``ServiceGroup`` calls `run()`.
public protocol Service: Sendable {
    /// A short name for logs (`storage`, `http`, `modbus.WELD-01`).
    var name: String { get }
    /// Runs until cancelled; throws only for a failure that should stop the whole server.
    func run() async throws
}

/// Starts services in order and stops them in reverse order, on SIGINT/SIGTERM, on
/// ``shutdown()``, or when one of them fails.
public final class ServiceGroup: Sendable {
    private struct State {
        var shutdownRequested = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var signalSources: [any DispatchSourceSignal] = []
    }

    private let services: [any Service]
    private let logger: Logger
    private let state = Locked(State())

    public init(services: [any Service], logger: Logger) {
        self.services = services
        self.logger = logger
    }

    /// Asks the group to stop its services (reverse order). Safe from any thread.
    public func shutdown() {
        let pending = state.withLock { state in
            state.shutdownRequested = true
            let pending = state.waiters
            state.waiters.removeAll()
            return pending
        }
        for waiter in pending { waiter.resume() }
    }

    private func waitForShutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state in
                if state.shutdownRequested { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Makes SIGINT and SIGTERM call ``shutdown()``.
    public func installSignalHandlers() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let handler: @Sendable () -> Void = { [weak self] in
                self?.logger.info("signal \(sig == SIGINT ? "SIGINT" : "SIGTERM"): shutting down")
                self?.shutdown()
            }
            // Made inside the lock: a source is not Sendable, so it is created where it is kept.
            state.withLock { state in
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler(handler: handler)
                source.resume()
                state.signalSources.append(source)
            }
        }
    }

    /// Runs every service until shutdown; rethrows the first failure after stopping the rest.
    public func run() async throws {
        var tasks: [Task<Void, Never>] = []
        let failure = Locked<(any Error)?>(nil)
        for service in services {
            logger.debug("starting \(service.name)")
            let task = Task {
                do {
                    try await service.run()
                } catch is CancellationError {
                } catch {
                    if !Task.isCancelled {
                        self.logger.error("\(service.name) failed: \(error)")
                        failure.withLock { if $0 == nil { $0 = error } }
                        self.shutdown()
                    }
                }
            }
            tasks.append(task)
        }
        await waitForShutdown()
        for (service, task) in zip(services, tasks).reversed() {
            logger.debug("stopping \(service.name)")
            task.cancel()
            _ = await task.result
        }
        if let error = failure.value { throw error }
    }
}

/// Waits until the current task is cancelled (for services whose work runs on their own thread).
public func waitUntilCancelled() async {
    let stream = AsyncStream<Never> { _ in }
    for await _ in stream {}
}

/// The `run()` of a service whose work runs on its own threads: `start()`, wait for cancellation,
/// then `stop()` on a thread of its own named `stopThreadName` (a blocking stop never runs on
/// Swift's cooperative pool).
public func runThreadedService(stopThreadName: String, start: () -> Void, stop: @escaping @Sendable () -> Void) async {
    start()
    await waitUntilCancelled()
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let thread = Thread {
            stop()
            continuation.resume()
        }
        thread.name = stopThreadName
        thread.start()
    }
}
