import CBench
import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// A ``ClientSwarm`` of event-stream clients in a child process (this executable run again with
/// `--swarm`), as a load generator would be: the measured process holds only the server's side of
/// each connection (its own descriptor limit, its own memory figure), and the clients can stand
/// aside on the CPU (`idlePriority`). Talks through the child's standard input (closing it ends the
/// run) and output (one line per step).
///
/// The executable must hand `--swarm …` arguments to ``SwarmProcess/child(_:)`` (mes-bench's `main` does).
public final class SwarmProcess: Sendable {
    public struct Quantiles: Sendable { public var p50 = Double.nan, p99 = Double.nan, max = Double.nan }
    public struct Result: Sendable {
        public var deliveries = 0
        /// Deliveries with a kernel arrival stamp.
        public var stamped = 0
        /// Publish → read by the client, ms.
        public var read = Quantiles()
        /// Publish → in the client's socket (kernel stamp), ms.
        public var arrival = Quantiles()
    }

    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    /// Lines read from the child and not yet taken, and whether its output ended.
    private let received = Locked<(lines: [String], ended: Bool)>(([], false))
    /// Signalled once per line and once at the end.
    private let arrived = DispatchSemaphore(value: 0)

    /// `tls`: the clients speak HTTPS (read latency only, see ``ClientSwarm``).
    public init(port: UInt16, clients: Int, stamped: Bool, idlePriority: Bool, tls: Bool = false) throws {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--swarm", String(port), String(clients)] + (stamped ? ["--stamped"] : []) + (idlePriority ? ["--idle-priority"] : []) + (tls ? ["--tls"] : [])
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let handle = output.fileHandleForReading
        let received = received, arrived = arrived
        Thread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 10) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    received.withLock { $0.lines.append(line) }
                    arrived.signal()
                }
            }
            received.withLock { $0.ended = true }
            arrived.signal()
        }.start()
    }

    /// How many clients the child connected (its `connected N` line).
    public func waitConnected(timeoutSeconds: Double = 60) throws -> Int {
        let line = try nextLine(timeoutSeconds: timeoutSeconds)
        guard line.hasPrefix("connected "), let count = Int(line.dropFirst("connected ".count)) else {
            throw BenchError("bench client swarm: \(line)")
        }
        return count
    }

    /// Ends the run and reads the child's result.
    public func finish() throws -> Result {
        try? input.fileHandleForWriting.close()
        let line = try nextLine(timeoutSeconds: 60)
        process.waitUntilExit()
        guard line.hasPrefix("result ") else { throw BenchError("bench client swarm: \(line)") }
        var result = Result()
        for field in line.dropFirst("result ".count).split(separator: " ") {
            let parts = field.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let values = parts[1].split(separator: ",").compactMap { Double($0) }
            let quantiles = values.count == 3 ? Quantiles(p50: values[0], p99: values[1], max: values[2]) : Quantiles()
            switch parts[0] {
            case "deliveries": result.deliveries = Int(parts[1]) ?? 0
            case "stamped": result.stamped = Int(parts[1]) ?? 0
            case "read": result.read = quantiles
            case "arrival": result.arrival = quantiles
            default: break
            }
        }
        return result
    }

    /// Stops the child if it still runs (a failed benchmark).
    public func kill() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
    }

    private func nextLine(timeoutSeconds: Double) throws -> String {
        let deadline = DispatchTime.now() + timeoutSeconds
        while true {
            let (line, ended) = received.withLock { received in
                (received.lines.isEmpty ? nil : received.lines.removeFirst(), received.ended)
            }
            if let line { return line }
            if ended { throw BenchError("bench client swarm ended early") }
            if arrived.wait(timeout: deadline) == .timedOut { throw BenchError("bench client swarm: no answer in \(Int(timeoutSeconds)) s") }
        }
    }

    /// The child side: `--swarm PORT CLIENTS [--stamped] [--idle-priority] [--tls]` (the arguments after
    /// `--swarm` come first here). Opens `GET /api/events` streams, prints `connected N`, reads events
    /// until its standard input closes, then prints
    /// `result deliveries=D stamped=S read=P50,P99,MAX arrival=P50,P99,MAX` (ms); the exit status.
    public static func child(_ arguments: [String]) -> Int32 {
        guard arguments.count >= 2, let port = UInt16(arguments[0]), let clients = Int(arguments[1]) else {
            print("usage: mes-bench --swarm PORT CLIENTS [--stamped] [--idle-priority] [--tls]")
            return 2
        }
        raiseFileLimit()
        let stop = Flag()
        // Standard input closing (the parent asked, or died) ends the run.
        Thread {
            var byte: UInt8 = 0
            while Glibc.read(0, &byte, 1) > 0 {}
            stop.set()
        }.start()
        do {
            let swarm = try ClientSwarm(port: port, request: ClientSwarm.eventStreamRequest(), stamped: arguments.contains("--stamped"),
                                        tls: arguments.contains("--tls"))
            defer { swarm.close() }
            try swarm.connect(clients, streaming: true)
            print("connected \(swarm.streamingClients)")
            fflush(nil)
            if arguments.contains("--idle-priority") && csched_idle_self() != 0 {
                FileHandle.standardError.write(Data("swarm: SCHED_IDLE refused (errno \(errno)); running at normal priority\n".utf8))
            }
            while !stop.isSet { swarm.pump(timeoutMs: 50) }
            swarm.pump(timeoutMs: 0)
            func quantiles(_ value: (Double) -> Double) -> String {
                String(format: "%.3f,%.3f,%.3f", value(0.5), value(0.99), value(1))
            }
            print("result deliveries=\(swarm.deliveries) stamped=\(swarm.stampedDeliveries) read=\(quantiles(swarm.latencyPercentile)) arrival=\(quantiles(swarm.arrivalPercentile))")
            fflush(nil)
            return 0
        } catch {
            print("failed \(error)")
            fflush(nil)
            return 1
        }
    }
}
