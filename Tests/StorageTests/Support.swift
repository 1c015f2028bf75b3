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

/// Where a storage test keeps its database: files in a temp folder (SQLite), or fresh databases on
/// the test PostgreSQL server (``PostgresFixture``), one per file name asked for.
///
/// Tests written against a `TestLocation` run on both stores through ``XCTestCase/onBothStores(_:)``:
/// the same body, `folder.file("mes.sqlite")` a file path first and a `postgresql://` URL then.
final class TestLocation: @unchecked Sendable {
    let isPostgres: Bool
    private let temp = TempFolder()
    private let lock = NSLock()
    private var databases: [String: String] = [:]

    init(postgres: Bool) { isPostgres = postgres }

    /// The folder's path (SQLite files live in it; PostgreSQL tests keep nothing there).
    var path: String { temp.path }

    /// The database called `name`: a file in the folder, or a PostgreSQL database made on first use.
    func file(_ name: String) -> String {
        guard isPostgres, !name.hasSuffix("-wal"), !name.hasSuffix("-shm") else { return temp.file(name) }
        return lock.withLock {
            if let url = databases[name] { return url }
            let url = (try? PostgresFixture.shared().newDatabase()) ?? "postgresql://unavailable"
            databases[name] = url
            return url
        }
    }

    func remove() {
        temp.remove()
        let urls = lock.withLock { () -> [String] in
            defer { databases.removeAll() }
            return Array(databases.values)
        }
        if let fixture = try? PostgresFixture.shared() { for url in urls { fixture.dropDatabase(url) } }
    }
}

/// A storage error's broad reason, on either store.
func storageKind(_ error: (any Error)?) -> SQLiteError.Kind? {
    if let error = error as? SQLiteError { return error.kind }
    if let error = error as? PostgresError { return error.kind }
    return nil
}

extension XCTestCase {
    /// Runs `body` on SQLite, then on PostgreSQL, each with a fresh ``TestLocation`` (removed after).
    /// A failure names the store in the log line before it.
    func onBothStores(_ body: (TestLocation) throws -> Void) throws {
        for postgres in [false, true] {
            if postgres { _ = try PostgresFixture.shared() }
            let location = TestLocation(postgres: postgres)
            defer { location.remove() }
            print("store: \(postgres ? "postgresql" : "sqlite")")
            try body(location)
        }
    }

    /// ``openLog(_:name:clock:sink:configure:)`` at a ``TestLocation``.
    func openLog(_ location: TestLocation, name: String = "mes.sqlite", clock: any WallClock = ManualClock(storageTestNow),
                 sink: LogSink = LogSink(capture: true), configure: (inout EventLog.Configuration) -> Void = { _ in }) throws -> EventLog {
        var configuration = EventLog.Configuration(path: location.file(name))
        configuration.options.openLockTimeoutMs = 300
        configure(&configuration)
        let log = try EventLog.open(configuration, clock: clock, logger: quietLogger(sink))
        log.start()
        return log
    }
}
