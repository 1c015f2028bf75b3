import Foundation
import XCTest
import Runtime
import TestSupport

/// `LoopInbox`: the command inbox of the loops that run only while they have work
/// (docs/ARCHITECTURE.md, "Simulated PLCs on shared loops").
final class LoopInboxTests: XCTestCase {
    /// A loop as the real ones are written: its thread takes commands at the top of each turn, waits
    /// in epoll with the wake descriptor, and stops when it has none and holds nothing (`open == 0`).
    private final class CountingLoop: Sendable {
        enum Command: Sendable { case add(Int), open, close }
        let inbox = LoopInbox<Command>(name: "test-loop")
        let sum = Locked(0)
        let threadsStarted = Counter()
        let ranOnLoopThread = Locked<[Bool]>([])

        func send(_ command: Command) throws {
            try inbox.post(command) { [self] wake in run(wake: wake) }
        }

        private func run(wake: WakeFd) {
            threadsStarted.add(1)
            guard let epoll = inbox.openEpoll(capacity: 4, wake: wake, failed: { _, _ in }) else { return }
            var open = 0
            var commands: [Command] = []
            while inbox.take(into: &commands, stopIfIdle: open == 0) {
                for command in commands {
                    switch command {
                    case .add(let n): sum.withLock { $0 += n }
                    case .open: open += 1
                    case .close: open -= 1
                    }
                }
                ranOnLoopThread.withLock { $0.append(inbox.onLoopThread) }
                commands.removeAll(keepingCapacity: true)
                if open == 0 { continue }
                try? epoll.wait(timeoutMs: 1000) { fd, _ in if fd == wake.fd { wake.drain() } }
            }
            epoll.close()
            wake.close()
        }
    }

    func testEveryCommandPostedFromManyThreadsRunsOnceAndTheThreadEndsWhenIdle() throws {
        let loop = CountingLoop()
        try loop.send(.open)  // held open while the others post
        XCTAssertTrue(loop.inbox.isRunning)
        let threads = 4, perThread = 2_000
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<perThread { try? loop.send(.add(t * perThread + i + 1)) }
        }
        let n = threads * perThread
        XCTAssertTrue(eventually { loop.sum.value == n * (n + 1) / 2 }, "sum \(loop.sum.value)")
        XCTAssertEqual(loop.threadsStarted.value, 1, "one thread while the loop held something open")
        XCTAssertTrue(loop.inbox.isRunning)

        try loop.send(.close)
        XCTAssertTrue(eventually { !loop.inbox.isRunning }, "the thread did not end with nothing to serve")
        XCTAssertFalse(loop.inbox.onLoopThread)

        // The next command starts a new thread, which runs it and ends again.
        try loop.send(.add(5))
        XCTAssertTrue(eventually { loop.sum.value == n * (n + 1) / 2 + 5 && !loop.inbox.isRunning })
        XCTAssertEqual(loop.threadsStarted.value, 2)
        XCTAssertEqual(Set(loop.ranOnLoopThread.value), [true], "onLoopThread on the loop's thread")
    }

    func testCommandsPostedWhileTheThreadStopsAreNeverStranded() throws {
        // Each command may land as the thread decides to stop: either that thread takes it or a new
        // thread starts for it. None may wait with no thread.
        let loop = CountingLoop()
        for i in 1...500 {
            try loop.send(.add(1))
            if i % 50 == 0 {
                XCTAssertTrue(eventually { loop.sum.value == i }, "after \(i): sum \(loop.sum.value)")
            }
        }
        XCTAssertTrue(eventually { loop.sum.value == 500 && !loop.inbox.isRunning })
    }
}
