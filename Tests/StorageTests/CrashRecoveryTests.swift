import Foundation
import Runtime
import XCTest
@testable import Storage
import TestSupport

/// kill -9 of a process writing through our EventLog: every acknowledged event survives.
final class CrashRecoveryTests: XCTestCase {
    static let dbVariable = "STORAGE_CHILD_WRITER_DB"

    /// Not a test on its own: the writer half of `testKill9KeepsEveryAcknowledgedEvent`.
    ///
    /// Skipped unless the environment names a database (it checks nothing by itself). In the child
    /// process it appends events from four threads, waits for each commit and prints `ACK <seq>`
    /// only then; it runs until killed (or 60 s).
    func testChildWriterProcess_helper() throws {
        guard let path = ProcessInfo.processInfo.environment[Self.dbVariable] else {
            throw XCTSkip("the writer half of testKill9KeepsEveryAcknowledgedEvent, run only as its child process")
        }
        var configuration = EventLog.Configuration(path: path)
        configuration.options.openLockTimeoutMs = 5000
        let log = try EventLog.open(configuration, logger: Logger(label: "child", level: .error))
        log.start()
        let output = NSLock()
        let deadline = Date().addingTimeInterval(60)
        let group = DispatchGroup()
        for worker in 0..<4 {
            group.enter()
            Thread {
                var i = 0
                while Date() < deadline {
                    let seq = log.append(type: worker == 0 ? "alert" : "sample", station: "S\(worker)", time: Date(), data: "{\"i\":\(i)}")
                    i += 1
                    do { try log.waitForCommit(seq: seq, timeout: 10) } catch { break }
                    let line = Array("ACK \(seq)\n".utf8)
                    output.lock()
                    _ = line.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
                    output.unlock()
                }
                group.leave()
            }.start()
        }
        // A firehose that never waits: many events are queued or mid-commit when the kill comes.
        group.enter()
        Thread {
            while Date() < deadline {
                for _ in 0..<20 { log.append(type: "sample", station: "F", time: Date(), data: "{}") }
                usleep(1000) // paces the load generator at about 20,000 events/s (the target load), not a wait
            }
            group.leave()
        }.start()
        group.wait()
        log.close()
    }

    func testKill9KeepsEveryAcknowledgedEvent() throws {
        let folder = TempFolder()
        defer { folder.remove() }
        let path = folder.file("crash.sqlite")
        // Some history first, so recovery continues above an existing max.
        let first = try openLog(folder, name: "crash.sqlite")
        for _ in 0..<100 { first.append(type: "sample", time: Date(), data: "{}") }
        first.close()

        let process = Process()
        process.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        process.arguments = ["StorageTests.CrashRecoveryTests/testChildWriterProcess_helper"]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.dbVariable] = path
        process.environment = environment
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        // Safety net: never leave the child running.
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: watchdog)
        defer { watchdog.cancel() }

        var acknowledged: [Int64] = []
        var buffer = ""
        var killed = false
        let reader = stdout.fileHandleForReading
        while true {
            let data = reader.availableData
            if data.isEmpty { break } // EOF: the child is gone
            buffer += String(decoding: data, as: UTF8.self)
            while let newline = buffer.firstIndex(of: "\n") {
                let line = buffer[..<newline]
                buffer = String(buffer[buffer.index(after: newline)...])
                if line.hasPrefix("ACK "), let seq = Int64(line.dropFirst(4)) { acknowledged.append(seq) }
            }
            if !killed && acknowledged.count >= 3000 {
                kill(pid, SIGKILL) // mid-stream: appends and commits are in flight
                killed = true
            }
        }
        process.waitUntilExit()
        XCTAssertTrue(killed, "child ended before being killed (acknowledged \(acknowledged.count))")
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertEqual(process.terminationStatus, SIGKILL)
        XCTAssertGreaterThanOrEqual(acknowledged.count, 3000)

        let log = try openLog(folder, name: "crash.sqlite")
        defer { log.close() }
        var stored: [Int64] = []
        var after: Int64 = 0
        while true {
            let page = try log.events(after: after, limit: 10_000)
            if page.isEmpty { break }
            stored += page.map(\.seq)
            after = page.last!.seq
        }
        let storedSet = Set(stored)
        print("kill -9 test: \(acknowledged.count) acknowledged (max \(acknowledged.max() ?? 0)), \(stored.count) stored (max \(stored.max() ?? 0))")
        let missing = acknowledged.filter { !storedSet.contains($0) }
        XCTAssertEqual(missing, [], "acknowledged events lost after kill -9")
        XCTAssertEqual(stored, stored.sorted())
        XCTAssertTrue(acknowledged.allSatisfy { $0 > 100 })
        let maxStored = stored.max() ?? 0
        XCTAssertGreaterThanOrEqual(maxStored, acknowledged.max() ?? 0)
        XCTAssertEqual(log.latestSeq, maxStored)
        let next = log.append(type: "alert", time: Date(), data: "{}")
        XCTAssertEqual(next, maxStored + 1)
        try log.waitForCommit(seq: next)
        XCTAssertEqual(try log.events(after: maxStored).map(\.seq), [next])
    }
}
