import Foundation
import XCTest

/// A Python peer script from Tests/peers, run as a subprocess until `stop()`.
final class PeerProcess: @unchecked Sendable {
    let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let lock = NSLock()
    private var output = ""
    private var lines: [String] = []
    private let ready = DispatchSemaphore(value: 0)
    private(set) var port: UInt16 = 0

    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var python: String {
        if let configured = ProcessInfo.processInfo.environment["MES_TEST_PYTHON"], !configured.isEmpty { return configured }
        return repoRoot.appendingPathComponent(".build/venv/bin/python3").path
    }

    /// Starts `script` with `arguments` and waits for its `READY <port>` line; throws (failing the test) otherwise.
    init(script: String, arguments: [String] = [], timeout: TimeInterval = 30) throws {
        let scriptPath = PeerProcess.repoRoot.appendingPathComponent("Tests/peers/\(script)").path
        guard FileManager.default.isExecutableFile(atPath: PeerProcess.python) else {
            throw PeerError.missing("Python interpreter not found at \(PeerProcess.python) (set MES_TEST_PYTHON)")
        }
        process.executableURL = URL(fileURLWithPath: PeerProcess.python)
        process.arguments = ["-u", scriptPath] + arguments
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = FileHandle.standardError
        stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.consume(String(decoding: data, as: UTF8.self))
        }
        try process.run()
        if ready.wait(timeout: .now() + timeout) == .timedOut {
            stop()
            throw PeerError.notReady("\(script) did not print READY within \(timeout)s; output: \(lock.withLock { output })")
        }
    }

    private func consume(_ text: String) {
        let signal: Bool = lock.withLock {
            output += text
            var found = false
            while let newline = output.firstIndex(of: "\n") {
                let line = String(output[..<newline])
                output.removeSubrange(...newline)
                lines.append(line)
                if line.hasPrefix("READY "), port == 0, let value = UInt16(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) {
                    port = value
                    found = true
                }
            }
            return found
        }
        if signal { ready.signal() }
    }

    /// Lines the peer printed so far (after READY too).
    var printedLines: [String] { lock.withLock { lines } }

    /// Waits until a printed line satisfies `predicate`.
    func waitForLine(timeout: TimeInterval, _ predicate: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = printedLines.first(where: predicate) { return line }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return nil
    }

    /// Ends the peer: closes its stdin, then SIGTERM, then SIGKILL; waits for it to exit.
    func stop() {
        try? stdinPipe.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { process.terminate() }
        let killDeadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < killDeadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
    }

    /// Kills the peer at once (SIGKILL), as a crash would.
    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
    }

    enum PeerError: Error { case missing(String), notReady(String) }
}
