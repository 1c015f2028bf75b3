import Foundation
import Runtime
import XCTest
@testable import Storage
import TestSupport

func quietLogger(_ sink: LogSink = LogSink(capture: true)) -> Logger {
    Logger(label: "storage.test", level: .debug, sink: sink)
}

/// Thread-safe collection of committed events seen by a commit handler.
final class CommitRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var batches: [[StoredEvent]] = []
    var all: [StoredEvent] { lock.lock(); defer { lock.unlock() }; return batches.flatMap { $0 } }
    func add(_ events: [StoredEvent]) { lock.lock(); batches.append(events); lock.unlock() }
    var batchCount: Int { lock.lock(); defer { lock.unlock() }; return batches.count }
}

final class StorageTestCase: XCTestCase {}

/// The wall-clock time the storage tests run at. Their events carry fixed times near it; on the
/// real clock, retention (7 days of samples) would prune them once those times are a week old.
let storageTestNow = Timestamp.parse("2026-11-21T12:00:00.000Z")!

extension XCTestCase {
    /// Opens an event log in `folder`, started; the caller closes it. Its wall clock stands at
    /// ``storageTestNow`` unless a test passes its own.
    func openLog(_ folder: TempFolder, name: String = "mes.sqlite", clock: any WallClock = ManualClock(storageTestNow),
                 sink: LogSink = LogSink(capture: true), configure: (inout EventLog.Configuration) -> Void = { _ in }) throws -> EventLog {
        var configuration = EventLog.Configuration(path: folder.file(name))
        configuration.options.openLockTimeoutMs = 300
        configure(&configuration)
        let log = try EventLog.open(configuration, clock: clock, logger: quietLogger(sink))
        log.start()
        return log
    }
}
