import BenchSupport
import Foundation
import MESApp
import HTTP
import Runtime
#if canImport(Glibc)
import Glibc
#endif

// HTTP benchmarks against the assembled server in-process (replay of an empty recording, so nothing
// polls): slow-header connections; the event-stream ones are in BenchSSE.swift.
extension BenchSuite {
    /// 300 connections sending their header one byte a second while /api/health keeps answering.
    func slowHeaders() throws {
        raiseFileLimit()
        let connections = 300
        let seconds = short ? 3.0 : 15.0
        let server = try BenchServer()
        defer { server.stop() }
        let port = server.port
        let stop = Flag()
        // The swarm is thread-confined: the dripper thread makes it, connects it and drips.
        let connected = DispatchSemaphore(value: 0)
        let outcome = Locked<Result<Int, any Error>?>(nil)
        let dripper = Thread {
            do {
                let slow = try ClientSwarm(port: port, request: "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: \(String(repeating: "a", count: 60))\r\n\r\n")
                defer { slow.close() }
                do {
                    try slow.connect(connections, streaming: false)
                } catch {
                    outcome.set(.failure(error))
                    connected.signal()
                    return
                }
                connected.signal()
                while !stop.isSet {
                    slow.drip()
                    for _ in 0..<10 where !stop.isSet { usleep(100_000) }
                }
                outcome.set(.success(slow.reopened))
            } catch {
                outcome.set(.failure(error))
                connected.signal()
            }
        }
        dripper.start()
        connected.wait()
        if case .failure(let error)? = outcome.value { throw error }
        var latencies: [Double] = []
        var failures = 0
        let deadline = Monotonic.nanoseconds() + UInt64(seconds * 1e9)
        while Monotonic.nanoseconds() < deadline {
            if let ms = healthOnce(port: server.port) { latencies.append(ms) } else { failures += 1 }
            usleep(20_000)
        }
        stop.set()
        while !dripper.isFinished { usleep(10_000) }
        let reopened = try outcome.value?.get() ?? 0
        Self.figure("GET /api/health p99 during \(connections) slow-header connections", percentile(latencies, 0.99), unit: "ms",
                    target: 100, higherIsBetter: false,
                    reference: String(format: "max %.2f ms, %d answered, %d failed, %d slow connections reopened after the header timeout; load avg %@",
                                      percentile(latencies, 1), latencies.count, failures, reopened, loadAverage()))
    }
}

/// The assembled server on a free loopback port with a temp database, running on a thread of its
/// own; ready (answering /api/health) when `init` returns.
final class BenchServer: Sendable {
    let server: MESServer
    private let directory: URL
    private let done = DispatchSemaphore(value: 0)
    private let stopped = Flag()

    /// `configure` sets what the server runs on; the default replays an empty recording, so nothing polls.
    /// `tls` serves HTTPS with a self-signed certificate made by `openssl req` in the server's temp folder.
    init(config: String = "Stations/plant.json", tls: Bool = false, configure: (inout ServerOptions) -> Void = { $0.replay = "/dev/null" }) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-http-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var options = ServerOptions()
        options.config = config
        options.database = directory.appendingPathComponent("mes.sqlite").path
        options.port = 0
        configure(&options)
        if tls {
            let (certificate, key) = try Self.makeCertificate(in: directory.path)
            options.tlsCertificate = certificate
            options.tlsKey = key
        }
        server = try MESServer(options: options, logger: Logger(label: "bench", level: .error))
        let server = self.server, done = self.done
        Thread {
            let finished = DispatchSemaphore(value: 0)
            Task.detached {
                do { try await server.run(installSignalHandlers: false) } catch { print("bench server: \(error)") }
                finished.signal()
            }
            finished.wait()
            done.signal()
        }.start()
        let deadline = Monotonic.nanoseconds() + 10_000_000_000
        // Over TLS a plain request is answered 400 (https_required) once the loops run.
        while !(tls ? Self.answersPlain400(port: port) : healthOnce(port: port) != nil) {
            guard Monotonic.nanoseconds() < deadline else { throw UsageError("bench server did not answer /api/health") }
            usleep(20_000)
        }
    }

    var port: UInt16 { server.port }

    /// A self-signed certificate (RSA 2048) for 127.0.0.1 by the `openssl` command line: (certificate, key).
    static func makeCertificate(in folder: String) throws -> (String, String) {
        let certificate = folder + "/cert.pem", key = folder + "/key.pem"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2", "-keyout", key, "-out", certificate,
                             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw UsageError("openssl req could not make a test certificate (install openssl)") }
        return (certificate, key)
    }

    /// Whether a plain HTTP request to the port is answered `400` (an HTTPS server that runs).
    static func answersPlain400(port: UInt16) -> Bool {
        guard let fd = try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000) else { return false }
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: 2000)
        let request = Array("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard (try? request.withUnsafeBytes({ try Socket.writeAll(fd, $0) })) != nil else { return false }
        var buffer = [UInt8](repeating: 0, count: 512)
        guard let n = try? buffer.withUnsafeMutableBytes({ try Socket.read(fd, into: $0) }), n >= 12 else { return false }
        return buffer[0..<12].elementsEqual("HTTP/1.1 400".utf8)
    }

    /// Waits (up to 30 s) until `count` event streams are open.
    func waitForStreams(_ count: Int) -> Bool {
        let deadline = Monotonic.nanoseconds() + 30_000_000_000
        while server.hub.metrics.connectedClients < count {
            if Monotonic.nanoseconds() > deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// Stops the server (once; later calls do nothing).
    func stop() {
        guard !stopped.isSet else { return }
        stopped.set()
        server.shutdown()
        done.wait()
        try? FileManager.default.removeItem(at: directory)
    }
}
