import Foundation
import Runtime
import XCTest
@testable import Storage
import TestSupport

/// The event log's WAL checkpoints: never on the writer, done by the checkpointer, the WAL bounded.
final class CheckpointTests: XCTestCase {
    var folder: TempFolder!

    override func setUp() { folder = TempFolder() }
    override func tearDown() { folder.remove() }

    let t0 = Timestamp.parse("2026-11-21T06:00:00.100Z")!
    /// About one database page per event (a 4 KiB page holds one such row).
    let pageSizedData = "{\"pad\":\"" + String(repeating: "x", count: 3500) + "\"}"

    func testWriterNeverCheckpointsItself() throws {
        // Without the checkpointer, nothing may copy the WAL back: it must grow well past SQLite's
        // automatic threshold (1,000 pages) instead of starting over.
        let log = try openLog(folder) { $0.checkpoints.enabled = false }
        defer { log.close() }
        let autocheckpoint = Locked<Int64?>(nil)
        log.beforeBatchHook = { db in
            let value = try? db.scalarInt("PRAGMA wal_autocheckpoint")
            autocheckpoint.withLock { $0 = value }
        }
        for _ in 0..<30 {
            for _ in 0..<100 { log.append(type: "sample", station: "S", time: t0, data: pageSizedData) }
            try log.flush()
        }
        XCTAssertEqual(autocheckpoint.withLock { $0 }, 0, "the writer's automatic checkpoint is off")
        let statistics = log.statistics
        XCTAssertGreaterThanOrEqual(statistics.walPages, 2500, "the WAL kept every page (no checkpoint restarted it)")
        XCTAssertGreaterThanOrEqual(log.walFileBytes, 2500 * 4096)
        XCTAssertEqual(statistics.passiveCheckpoints, 0)
        XCTAssertEqual(statistics.truncateCheckpoints, 0)
        XCTAssertEqual(try log.read { try $0.scalarInt("SELECT count(*) FROM events") }, 3000)
    }

    func testCheckpointerKeepsTheWALBoundedUnderLoadWithAReader() throws {
        let passivePages = 32
        let truncatePages = 256
        let log = try openLog(folder) {
            $0.checkpoints.passivePages = passivePages
            $0.checkpoints.truncatePages = truncatePages
            $0.checkpoints.writerWaitPages = 2 * truncatePages
            $0.checkpoints.intervalSeconds = 0.02
            $0.checkpoints.idleSeconds = 0.5
        }
        defer { log.close() }
        // A reader that is always in a read transaction or about to start one: it keeps the writer
        // from starting the WAL over after a passive checkpoint, so only TRUNCATE bounds it.
        let stop = Locked(false)
        let reads = Counter()
        let readerDone = DispatchSemaphore(value: 0)
        let reader = Thread {
            while !stop.withLock({ $0 }) {
                _ = try? log.read { db in try db.scalarInt("SELECT count(*) FROM events WHERE seq > (SELECT max(seq) - 10 FROM events)") }
                reads.add(1)
            }
            readerDone.signal()
        }
        reader.start()
        XCTAssertTrue(eventually { reads.value > 0 }, "the reader runs")

        let rounds = 200
        let perRound = 50
        // Property: whatever the interleaving (and however slow the checkpointer's fsyncs), the
        // WAL never holds much more than the writer's bound (2 × the TRUNCATE threshold here).
        // Generous: 4 times that, plus two rounds; without checkpoints it would reach
        // rounds × perRound pages (10,000, about 40 MiB).
        let frameBytes = 4096 + 24
        let bound = (8 * truncatePages + 2 * perRound) * frameBytes
        var largest = 0
        for _ in 0..<rounds {
            for _ in 0..<perRound { log.append(type: "sample", station: "S", time: t0, data: pageSizedData) }
            try log.flush()
            largest = max(largest, log.walFileBytes)
            XCTAssertLessThanOrEqual(log.walFileBytes, bound, "\(log.statistics)")
        }
        stop.withLock { $0 = true }
        readerDone.wait()
        XCTAssertLessThan(largest, rounds * perRound * 4096 / 4, "bounded well below what was written")
        let statistics = log.statistics
        XCTAssertGreaterThanOrEqual(statistics.passiveCheckpoints, rounds * perRound / (8 * truncatePages + 2 * perRound),
                                    "checkpoints kept pace with the writes")
        XCTAssertEqual(statistics.checkpointFailures, 0)
        // Idle: the checkpointer truncates the WAL file to nothing.
        XCTAssertTrue(eventually(timeout: 20) { log.walFileBytes == 0 }, "WAL \(log.walFileBytes) bytes after the load")
        XCTAssertGreaterThanOrEqual(log.statistics.truncateCheckpoints, 1)
        XCTAssertEqual(try log.read { try $0.scalarInt("SELECT count(*) FROM events") }, Int64(rounds * perRound))
    }

    func testCloseTruncatesAndRemovesTheWALWithTheCheckpointerRunning() throws {
        let log = try openLog(folder) { $0.checkpoints.passivePages = 16 }
        for _ in 0..<200 { log.append(type: "sample", station: "S", time: t0, data: pageSizedData) }
        try log.flush()
        log.close()
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("mes.sqlite-wal")))
        let reopened = try openLog(folder)
        defer { reopened.close() }
        XCTAssertEqual(reopened.latestSeq, 200)
    }
}
