import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process (a test peer: a Python script of `Tests/peers`, socat, …) whose standard output
/// and error are captured; ``stop()`` or ``kill()`` ends it and waits for it.
public final class PeerProcess: @unchecked Sendable {
    public let process = Process()
    private let stdinPipe = Pipe()
    private let outPipe = Pipe()
    private let lock = NSLock()
    private var output = ""
    private var pending = ""
    private var lines: [String] = []
    private var readyPort: UInt16?

    public enum PeerError: Error, CustomStringConvertible {
        case missing(String), notReady(String)
        public var description: String {
            switch self {
            case .missing(let text), .notReady(let text): text
            }
        }
    }

    /// Starts `executable` with `arguments`; throws if it is not there.
    public init(executable: String, arguments: [String]) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw PeerError.missing("peer executable missing: \(executable) (tools/test installs the Debian packages and the venv; MES_TEST_PYTHON names the interpreter)")
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = stdinPipe
        process.standardOutput = outPipe
        process.standardError = outPipe
        outPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.consume(String(decoding: data, as: UTF8.self))
        }
        try process.run()
    }

    /// Starts the Python peer `Tests/peers/<script>` and waits for its `READY <port>` line (``port``).
    public convenience init(script: String, arguments: [String] = [], timeout: TimeInterval = 30) throws {
        let path = repoRoot.appendingPathComponent("Tests/peers/\(script)").path
        try self.init(executable: peerPython(), arguments: ["-u", path] + arguments)
        let ready = { self.lock.withLock { self.readyPort != nil } }
        guard eventually(timeout: timeout, { ready() || !process.isRunning }) && ready() else {
            stop()
            throw PeerError.notReady("\(script) did not print READY <port> within \(timeout) s (or ended); output: \(text)")
        }
    }

    private func consume(_ text: String) {
        lock.withLock {
            output += text
            pending += text
            while let newline = pending.firstIndex(of: "\n") {
                let line = String(pending[..<newline])
                pending.removeSubrange(...newline)
                lines.append(line)
                if line.hasPrefix("READY "), readyPort == nil,
                   let value = UInt16(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) {
                    readyPort = value
                }
            }
        }
    }

    /// Everything the peer printed so far.
    public var text: String { lock.withLock { output } }

    /// The complete lines the peer printed so far.
    public var printedLines: [String] { lock.withLock { lines } }

    /// The port of the peer's first `READY <port>` line (0 for a client peer, or before it).
    public var port: UInt16 { lock.withLock { readyPort ?? 0 } }

    /// Waits until the output contains `marker` (false on timeout or if the peer ended without it).
    public func waitFor(_ marker: String, timeout: TimeInterval = 20) -> Bool {
        eventually(timeout: timeout) { text.contains(marker) || !process.isRunning } && text.contains(marker)
    }

    /// Waits until a printed line satisfies `predicate`; returns that line, or nil on timeout.
    public func waitForLine(timeout: TimeInterval, _ predicate: (String) -> Bool) -> String? {
        var found: String?
        _ = eventually(timeout: timeout) {
            found = printedLines.first(where: predicate)
            return found != nil
        }
        return found
    }

    /// Ends the peer politely: closes its standard input, then SIGTERM, then SIGKILL; waits for it.
    public func stop() {
        try? stdinPipe.fileHandleForWriting.close()
        if !eventually(timeout: 3, { !process.isRunning }) { process.terminate() }
        if !eventually(timeout: 2, { !process.isRunning }) { Glibc.kill(process.processIdentifier, SIGKILL) }
        finish()
    }

    /// Kills the peer at once (SIGKILL), as a crash would; waits for it.
    public func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        finish()
    }

    private func finish() {
        process.waitUntilExit()
        outPipe.fileHandleForReading.readabilityHandler = nil
    }
}

/// Runs `executable` to its end (killed after `timeout` seconds); returns its exit status and its
/// standard output and error together.
public func runToEnd(_ executable: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
    guard FileManager.default.isExecutableFile(atPath: executable) else {
        throw PeerProcess.PeerError.missing("\(executable) is missing (tools/test installs it)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let pid = process.processIdentifier
    let watchdog = DispatchWorkItem { Glibc.kill(pid, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    watchdog.cancel()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
