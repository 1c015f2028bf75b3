import Foundation
import Runtime
import XCTest
@testable import Storage
import TestSupport

final class EventLogTests: XCTestCase {
    var folder: TempFolder!

    override func setUp() { folder = TempFolder() }
    override func tearDown() { folder.remove() }

    let t0 = Timestamp.parse("2026-11-21T06:00:00.100Z")!

    func testAppendCommitReadRoundTrip() throws {
        try onBothStores { folder in
            let log = try openLog(folder)
            defer { log.close() }
            let a = log.append(type: "station", station: "WELD-01", time: t0, data: #"{"state":"running"}"#)
            let b = log.append(type: "alert", station: nil, time: t0.addingTimeInterval(1.234), data: #"{"id":1}"#)
            XCTAssertEqual(a, 1)
            XCTAssertEqual(b, 2)
            try log.flush()
            XCTAssertEqual(log.latestSeq, 2)
            let events = try log.events(after: 0)
            XCTAssertEqual(events, [
                StoredEvent(seq: 1, type: "station", station: "WELD-01", timeMs: 1_795_240_800_100, data: #"{"state":"running"}"#),
                StoredEvent(seq: 2, type: "alert", station: nil, timeMs: 1_795_240_801_334, data: #"{"id":1}"#),
            ])
            XCTAssertEqual(Timestamp.format(events[0].time), "2026-11-21T06:00:00.100Z")
            XCTAssertEqual(Timestamp.format(events[1].time), "2026-11-21T06:00:01.334Z")
            XCTAssertEqual(try log.events(after: 1).map(\.seq), [2])
            XCTAssertEqual(try log.events(after: 0, types: ["alert"]).map(\.seq), [2])
            XCTAssertEqual(try log.events(after: 0, types: []).count, 0)
            XCTAssertEqual(try log.events(after: 0, limit: 1).map(\.seq), [1])
        }
    }

    func testSequenceContinuesAcrossReopen() throws {
        try onBothStores { folder in
            var log = try openLog(folder)
            for i in 0..<10 { log.append(type: "sample", station: "S", time: t0, data: "{\"i\":\(i)}") }
            log.close() // commits what is pending
            log = try openLog(folder)
            defer { log.close() }
            XCTAssertEqual(log.latestSeq, 10)
            let next = log.append(type: "sample", station: "S", time: t0, data: "{}")
            XCTAssertEqual(next, 11)
            try log.waitForCommit(seq: next)
            XCTAssertEqual(try log.events(after: 0).map(\.seq), Array(1...11))
        }
    }

    func testCommitHandlerSeesOnlyCommittedEventsInOrder() throws {
        try onBothStores { folder in
            let log = try openLog(folder)
            let recorder = CommitRecorder()
            // A second connection, opened by the writer thread that uses it (a Database is thread-confined).
            let path = folder.file("mes.sqlite")
            let verifier = Locked<Database?>(nil)
            let invisible = CommitRecorder()
            log.addCommitHandler { events in
                // Another connection must already see every published event: it is committed.
                let visible = verifier.withLock { db -> Int64 in
                    if db == nil { db = try? Database(path: path, mode: .readOnly) }
                    return (try? db?.scalarInt("SELECT count(*) FROM events WHERE seq <= ?", [.integer(events.last!.seq)])) ?? -1
                }
                if visible != events.last!.seq { invisible.add(events) }
                recorder.add(events)
            }
            let producers = 4
            let group = DispatchGroup()
            for p in 0..<producers {
                group.enter()
                Thread {
                    for i in 0..<500 { log.append(type: "sample", station: "S\(p)", time: Date(), data: "{\"i\":\(i)}") }
                    group.leave()
                }.start()
            }
            group.wait()
            try log.flush()
            log.close()
            verifier.withLock { $0?.close() }
            let seqs = recorder.all.map(\.seq)
            XCTAssertEqual(seqs, Array(1...2000), "published in strictly increasing order, each once")
            XCTAssertEqual(invisible.batchCount, 0, "a batch was published before it was visible to another connection")
        }
    }

    func testGroupCommitBatchesManyAppendsIntoFewTransactions() throws {
        try onBothStores { folder in
            let log = try openLog(folder)
            defer { log.close() }
            let recorder = CommitRecorder()
            log.addCommitHandler { recorder.add($0) }
            for i in 0..<20_000 { log.append(type: "sample", station: "S", time: t0, data: "{\"i\":\(i)}") }
            try log.flush()
            let stats = log.statistics
            XCTAssertEqual(stats.eventsCommitted, 20_000)
            XCTAssertLessThan(stats.transactions, 2_000, "expected group commit, got \(stats.transactions) transactions")
            XCTAssertEqual(recorder.all.count, 20_000)
            XCTAssertEqual(try log.read { try $0.scalarInt("SELECT count(*) FROM events") }, 20_000)
        }
    }

    func testLowLoadCommitIsImmediate() throws {
        try onBothStores { folder in
            let log = try openLog(folder)
            defer { log.close() }
            let before = log.statistics.transactions
            for i in 0..<20 {
                let seq = log.append(type: "station", station: "S", time: Date(), data: "{}")
                try log.waitForCommit(seq: seq)
                // An idle writer commits what it has at once: one event, one transaction (no waiting for a batch).
                XCTAssertEqual(log.statistics.transactions - before, i + 1)
            }
            XCTAssertEqual(log.statistics.eventsCommitted, 20)
        }
    }

    func testEnqueuedWritesCommitWithEventsAndAFailingOneLosesOnlyItself() throws {
        try onBothStores { folder in
            var configuration = EventLog.Configuration(path: folder.file("mes.sqlite"))
            configuration.migrations = [MigrationGroup(name: "quality", migrations: [
                Migration(version: 1, name: "defects", sql: "CREATE TABLE defects (id INTEGER PRIMARY KEY, code TEXT NOT NULL)"),
            ])]
            let log = try EventLog.open(configuration, clock: ManualClock(storageTestNow), logger: quietLogger())
            defer { log.close() }
            let outcomes = OutcomeRecorder()

            // Queued before the writer starts, so all of it lands in one transaction (a started writer
            // may take the first item alone if it wakes before the rest is queued).
            log.append(type: "sample", station: "S", time: t0, data: "{\"before\":1}")
            let good = log.enqueue(events: [NewEvent(type: "defect", station: "S", time: t0, data: #"{"id":1}"#)], { db in
                try db.run("INSERT INTO defects (id, code) VALUES (1, 'NOK')")
            }, completion: { outcomes.add("good", $0) })
            let bad = log.enqueue(events: [NewEvent(type: "defect", station: "S", time: t0, data: #"{"id":2}"#)], { db in
                try db.run("INSERT INTO defects (id, code) VALUES (2, 'X')")
                try db.run("INSERT INTO defects (id, code) VALUES (1, 'duplicate')") // fails: rolls back id 2 as well
            }, completion: { outcomes.add("bad", $0) })
            log.append(type: "sample", station: "S", time: t0, data: "{\"after\":1}")
            log.start()
            try log.flush()

            XCTAssertEqual(log.statistics.transactions, 1, "the batch was one transaction")
            XCTAssertEqual(outcomes.names(committed: true), ["good"])
            XCTAssertEqual(outcomes.names(committed: false), ["bad"])
            let events = try log.events(after: 0)
            if folder.isPostgres {
                // PostgreSQL gives ids at commit: gap-free where the failed write's event would have been.
                XCTAssertEqual(events.map(\.seq), [1, 2, 3])
                XCTAssertEqual(events.map(\.data), ["{\"before\":1}", #"{"id":1}"#, "{\"after\":1}"])
            } else {
                XCTAssertEqual(events.map(\.seq), [1, good[0], 4])
                XCTAssertFalse(events.map(\.seq).contains(bad[0]))
            }
            XCTAssertEqual(try log.read { db in try db.query("SELECT id, code FROM defects") { "\($0.int64(0)):\($0.text(1)!)" } }, ["1:NOK"])

            // The blocking form rethrows the closure's error and returns the committed seqs otherwise.
            XCTAssertThrowsError(try log.write { db in try db.run("INSERT INTO defects (id, code) VALUES (1, 'again')") }) { error in
                XCTAssertEqual(storageKind(error), .constraint)
            }
            let seqs = try log.write(events: [NewEvent(type: "defect", time: t0, data: "{}")]) { db in
                try db.run("INSERT INTO defects (id, code) VALUES (3, 'OK')")
            }
            XCTAssertEqual(try log.events(after: seqs[0] - 1).first?.seq, seqs[0])
        }
    }

    func testBlockingCallsFromTheWriterThreadAreRefused() throws {
        try onBothStores { folder in
            let log = try openLog(folder)
            defer { log.close() }
            let result = OutcomeRecorder()
            log.enqueue({ _ in
                do { try log.flush(timeout: 1) } catch { result.add("\(error)", .failed(error)) }
            })
            try log.flush()
            XCTAssertTrue(result.names(committed: false).first?.contains("writer thread") == true)
        }
    }

    func testRetentionPrunesOnlyOldSamplesAndKeepsTheNewestEvent() throws {
        try onBothStores { folder in
            let clock = ManualClock(t0)
            let log = try openLog(folder, clock: clock)
            defer { log.close() }
            let old = t0.addingTimeInterval(-8 * 86_400)
            log.append(type: "sample", station: "S", time: old, data: "{}")          // 1 pruned
            log.append(type: "alert", station: "S", time: old, data: "{}")           // 2 kept: not a sample
            log.append(type: "sample", station: "S", time: t0.addingTimeInterval(-86_400), data: "{}") // 3 kept: young
            log.append(type: "sample", station: "S", time: old, data: "{}")          // 4 pruned
            log.append(type: "sample", station: "S", time: old, data: "{}")          // 5 kept: newest
            try log.flush()
            try log.pruneNow()
            XCTAssertEqual(try log.events(after: 0).map(\.seq), [2, 3, 5])
        }
    }

    func testPruneRunsInChunks() throws {
        try onBothStores { folder in
            let clock = ManualClock(t0)
            let log = try openLog(folder, clock: clock) { $0.retention.chunkSize = 7 }
            defer { log.close() }
            for _ in 0..<50 { log.append(type: "sample", station: "S", time: t0.addingTimeInterval(-30 * 86_400), data: "{}") }
            log.append(type: "kpi", time: t0, data: "{}")
            try log.flush()
            try log.pruneNow()
            XCTAssertEqual(try log.events(after: 0).map(\.seq), [51])
        }
    }

    func testDiskFullKeepsEventsQueuedServesReadsAndRecovers() throws {
        let sink = LogSink(capture: true)
        let log = try openLog(folder, sink: sink) { $0.retryIntervalMs = 50 }
        defer { log.close() }
        for i in 0..<10 { log.append(type: "sample", station: "S", time: t0, data: "{\"i\":\(i)}") }
        try log.flush()
        XCTAssertTrue(log.isWritable)

        // The page limit makes SQLite report SQLITE_FULL exactly as a full disk does.
        let limit = PageLimit()
        log.beforeBatchHook = { db in
            if let pages = limit.pages { try? db.execute("PRAGMA max_page_count = \(pages)") }
        }
        let pages = try log.read { try $0.scalarInt("PRAGMA page_count") }!
        limit.set(pages)
        let big = String(repeating: "x", count: 20_000)
        let seq = log.append(type: "alert", station: "S", time: t0, data: "{\"big\":\"\(big)\"}")
        XCTAssertThrowsError(try log.waitForCommit(seq: seq, timeout: 10)) { error in
            guard case EventLogError.notWriting(let underlying) = error else { return XCTFail("\(error)") }
            XCTAssertEqual((underlying as? SQLiteError)?.kind, .full, "\(underlying)")
        }
        XCTAssertFalse(log.isWritable)
        XCTAssertEqual((log.lastError as? SQLiteError)?.kind, .full)
        XCTAssertTrue(sink.lines.contains { $0.contains("storage cannot commit") && $0.contains("full") }, "\(sink.lines)")
        // Reads still served.
        XCTAssertEqual(try log.events(after: 0).count, 10)
        XCTAssertEqual(log.latestSeq, 10)
        // More appends queue up meanwhile.
        let later = log.append(type: "alert", station: "S", time: t0, data: "{}")

        limit.set(1_000_000)
        try log.waitForCommit(seq: later, timeout: 10)
        XCTAssertTrue(log.isWritable)
        XCTAssertEqual(try log.events(after: 10).map(\.seq), [seq, later])
    }

    func testReadOnlyAtRuntimeDropsHealthAndFlushThrows() throws {
        let log = try openLog(folder) { $0.retryIntervalMs = 50 }
        defer { log.close() }
        log.append(type: "sample", time: t0, data: "{}")
        try log.flush()
        let limit = PageLimit()
        limit.set(1)
        log.beforeBatchHook = { db in try? db.execute("PRAGMA query_only = \(limit.pages == 1 ? "ON" : "OFF")") }
        log.append(type: "alert", time: t0, data: "{}")
        XCTAssertThrowsError(try log.flush(timeout: 10)) { error in
            guard case EventLogError.notWriting(let underlying) = error else { return XCTFail("\(error)") }
            XCTAssertEqual((underlying as? SQLiteError)?.kind, .readOnly, "\(underlying)")
            XCTAssertTrue("\(error)".contains("storage is not writing"))
        }
        XCTAssertFalse(log.isWritable)
        limit.set(0)
        try log.flush(timeout: 10)
        XCTAssertTrue(log.isWritable)
        XCTAssertEqual(try log.events(after: 0).map(\.seq), [1, 2])
    }

    func testReadOnlyFileAtStartIsAClearError() throws {
        let path = folder.file("mes.sqlite")
        let log = try openLog(folder)
        log.append(type: "alert", time: t0, data: "{}")
        log.close()
        try makeReadOnly(path)
        defer { undoReadOnly(path) }
        XCTAssertThrowsError(try openLog(folder)) { error in
            XCTAssertEqual((error as? SQLiteError)?.kind, .readOnly, "\(error)")
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }

    func testDatabaseWrittenByAnotherProcessAtStartIsAClearError() throws {
        let path = folder.file("mes.sqlite")
        let setup = try openLog(folder)
        setup.close()
        let holder = try Database(path: path)
        defer { holder.close() }
        try holder.execute("BEGIN IMMEDIATE")
        defer { try? holder.execute("ROLLBACK") }
        let started = Date()
        XCTAssertThrowsError(try openLog(folder)) { error in
            XCTAssertEqual((error as? SQLiteError)?.kind, .busy, "\(error)")
            XCTAssertTrue("\(error)".contains("locked by another"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
    }

    func testServiceRunClosesOnCancellation() async throws {
        let log = try openLog(folder)
        let task = Task { try await log.run() }
        let seq = log.append(type: "alert", time: t0, data: "{}")
        task.cancel() // at once: the append may still be pending, and closing must commit it
        try await task.value
        XCTAssertEqual(log.append(type: "alert", time: t0, data: "{}"), 0, "closed: dropped")
        // Checkpointed and closed: SQLite removes the WAL when the last connection closes.
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("mes.sqlite-wal")))
        let reopened = try openLog(folder)
        defer { reopened.close() }
        XCTAssertEqual(reopened.latestSeq, seq)
    }

    func testCloseCommitsWhatIsPendingAndLaterAppendsAreDropped() throws {
        try onBothStores { folder in
            let log = try openLog(folder)
            for _ in 0..<1000 { log.append(type: "sample", time: t0, data: "{}") }
            log.close()
            log.append(type: "sample", time: t0, data: "{}")
            let reopened = try openLog(folder)
            defer { reopened.close() }
            XCTAssertEqual(reopened.latestSeq, 1000)
        }
    }
}

final class OutcomeRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(String, Bool)] = []
    func add(_ name: String, _ outcome: WriteOutcome) {
        lock.lock()
        if case .committed = outcome { items.append((name, true)) } else { items.append((name, false)) }
        lock.unlock()
    }
    func names(committed: Bool) -> [String] {
        lock.lock(); defer { lock.unlock() }
        return items.filter { $0.1 == committed }.map(\.0)
    }
}

final class PageLimit: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64?
    var pages: Int64? { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ pages: Int64) { lock.lock(); value = pages; lock.unlock() }
}
