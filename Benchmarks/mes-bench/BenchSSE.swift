import BenchSupport
import Foundation
import MESApp
import HTTP
import Runtime
#if canImport(Glibc)
import Glibc
#endif

// Event-stream benchmarks. The clients run in a child process (`mes-bench --swarm`), as a load
// generator would: the server process holds only the server's side of each connection (its own
// descriptor limit, its own memory figure), and the clients can stand aside on the CPU.
extension BenchSuite {
    /// 2,000 event-stream clients, 10 events/s each: delivery latency (publish → arrival in the
    /// client's socket) and server memory per client; beside it, in the same run, a bare fan-out
    /// loop writing the same events to the same kind of clients: the floor of this machine.
    func sseFanout() throws {
        raiseFileLimit()
        let clients = short ? 200 : 2000
        let seconds = short ? 3.0 : 20.0
        let threads = ServerOptions().httpLoops

        let server = try BenchServer()
        defer { server.stop() }
        let before = residentBytes(), heapBefore = heapInUseBytes()
        let swarm = try SwarmProcess(port: server.port, clients: clients, stamped: true, idlePriority: true)
        defer { swarm.kill() }
        guard try swarm.waitConnected() == clients, server.waitForStreams(clients) else {
            throw UsageError("SSE fan-out: only \(server.server.hub.metrics.connectedClients) of \(clients) clients connected")
        }
        let afterConnect = residentBytes(), heapAfterConnect = heapInUseBytes()
        let hub = server.server.hub
        var id: Int64 = 1 << 40
        let published = publishTenPerSecond(seconds: seconds) { stamp in
            id += 1
            hub.publish(SSEEvent(id: id, type: "bench", data: String(stamp)))
        }
        let result = try swarm.finish()
        let afterRun = residentBytes()
        swarm.kill()
        server.stop()

        // Then the floor: the kernel's loopback TCP, the same clients, no HTTP server.
        let plain = try PlainFanout(threads: threads)
        defer { plain.stop() }
        let floorSwarm = try SwarmProcess(port: plain.port, clients: clients, stamped: true, idlePriority: true)
        defer { floorSwarm.kill() }
        guard plain.accept(clients), try floorSwarm.waitConnected() == clients else {
            throw UsageError("SSE fan-out: the plain fan-out reference did not get its \(clients) clients")
        }
        id = 0
        let floorPublished = publishTenPerSecond(seconds: seconds) { stamp in
            id += 1
            plain.publish(SSEEvent(id: id, type: "bench", data: String(stamp)).encoded)
        }
        let floor = try floorSwarm.finish()

        Self.figure("SSE delivery p99 (\(clients) clients × 10 events/s, publish → arrival at the client)", result.arrival.p99,
                    unit: "ms", target: 15, higherIsBetter: false,
                    reference: String(format: "p50 %.2f ms, max %.2f ms; bare fan-out loop (%d threads, no server) in the same run: p99 %.2f ms, p50 %.2f ms; read by the client: p99 %.2f ms (bare loop %.2f); %d of %d deliveries, %d with a kernel arrival stamp (bare loop %d of %d), %d clients dropped; clients in a child process at idle priority; load avg %@",
                                      result.arrival.p50, result.arrival.max, threads, floor.arrival.p99, floor.arrival.p50,
                                      result.read.p99, floor.read.p99, result.deliveries, published * clients, result.stamped,
                                      floor.deliveries, floorPublished * clients, hub.metrics.droppedClients, loadAverage()))
        let perClient = memoryPerClientKiB(rss: afterConnect - before, heap: heapAfterConnect - heapBefore, clients: clients)
        Self.figure("SSE server memory per client", perClient, unit: "KiB", target: 16, higherIsBetter: false,
                    reference: String(format: "RSS +%.1f MiB, heap in use +%.1f MiB for %d clients; RSS +%.1f MiB more after %.0f s of events",
                                      Double(afterConnect - before) / 1_048_576, Double(heapAfterConnect - heapBefore) / 1_048_576, clients,
                                      Double(afterRun - afterConnect) / 1_048_576, seconds))
    }

    /// The same fan-out (2,000 clients × 10 events/s) over HTTPS and over plain HTTP in one run: the
    /// delivery p99 from publish to the bytes' arrival in the client's socket (kernel stamp, as in
    /// ``sseFanout()``), the time the swarm read them beside it, and the server's CPU time while
    /// the events flow.
    func sseFanoutTLS() throws {
        raiseFileLimit()
        let clients = short ? 200 : 2000
        let seconds = short ? 3.0 : 20.0
        struct Run {
            var result: SwarmProcess.Result; var published: Int; var cpuSeconds: Double; var dropped: Int; var connectSeconds: Double
            var heapPerClientKiB: Double
        }
        func run(tls: Bool) throws -> Run {
            let server = try BenchServer(tls: tls)
            defer { server.stop() }
            let started = Monotonic.nanoseconds()
            let heapBefore = heapInUseBytes()
            let swarm = try SwarmProcess(port: server.port, clients: clients, stamped: true, idlePriority: true, tls: tls)
            defer { swarm.kill() }
            guard try swarm.waitConnected(timeoutSeconds: 120) == clients, server.waitForStreams(clients) else {
                throw UsageError("SSE fan-out\(tls ? " over TLS" : ""): only \(server.server.hub.metrics.connectedClients) of \(clients) clients connected")
            }
            let connectSeconds = Double(Monotonic.nanoseconds() - started) / 1e9
            let heapPerClient = Double(heapInUseBytes() - heapBefore) / 1024 / Double(clients)
            let hub = server.server.hub
            var id: Int64 = 1 << 40
            let cpuBefore = processCPUMicroseconds()
            let published = publishTenPerSecond(seconds: seconds) { stamp in
                id += 1
                hub.publish(SSEEvent(id: id, type: "bench", data: String(stamp)))
            }
            let cpu = (processCPUMicroseconds() - cpuBefore) / 1e6
            let result = try swarm.finish()
            return Run(result: result, published: published, cpuSeconds: cpu, dropped: hub.metrics.droppedClients, connectSeconds: connectSeconds,
                       heapPerClientKiB: heapPerClient)
        }
        let plain = try run(tls: false)
        let tls = try run(tls: true)
        Self.figure("SSE delivery p99 over TLS (\(clients) clients × 10 events/s, publish → arrival at the client)", tls.result.arrival.p99,
                    unit: "ms", target: 15, higherIsBetter: false,
                    reference: String(format: "p50 %.2f ms, max %.2f ms, read by the client p99 %.2f ms, %d of %d deliveries (%d stamped), %d dropped, server CPU %.2f s for %.0f s of events, heap %.1f KiB per client, %d handshakes in %.1f s; plain HTTP in the same run: p99 %.2f ms, p50 %.2f ms, read p99 %.2f ms, %d of %d deliveries, %d dropped, server CPU %.2f s, heap %.1f KiB per client; clients in a child process at idle priority; load avg %@",
                                      tls.result.arrival.p50, tls.result.arrival.max, tls.result.read.p99, tls.result.deliveries,
                                      tls.published * clients, tls.result.stamped, tls.dropped, tls.cpuSeconds, seconds, tls.heapPerClientKiB, clients, tls.connectSeconds,
                                      plain.result.arrival.p99, plain.result.arrival.p50, plain.result.read.p99, plain.result.deliveries,
                                      plain.published * clients, plain.dropped, plain.cpuSeconds, plain.heapPerClientKiB, loadAverage()))
    }

    /// 10,000 idle event-stream clients (in a child process): memory per client, and /api/health
    /// latency meanwhile.
    func sseIdle() throws {
        let files = raiseFileLimit()
        let wanted = short ? 1000 : 10_000
        // The server holds one descriptor per client; the child its own.
        let clients = min(wanted, files - 512)
        if clients < wanted { print("sse-idle: open-file limit \(files) (hard limit, cannot be raised here): \(clients) clients instead of \(wanted)") }
        let server = try BenchServer()
        defer { server.stop() }
        let before = residentBytes(), heapBefore = heapInUseBytes()
        let started = Monotonic.nanoseconds()
        let swarm = try SwarmProcess(port: server.port, clients: clients, stamped: false, idlePriority: false)
        defer { swarm.kill() }
        let connected = try swarm.waitConnected(timeoutSeconds: 120)
        guard connected == clients, server.waitForStreams(clients) else {
            throw UsageError("SSE idle: only \(server.server.hub.metrics.connectedClients) of \(clients) clients connected (the swarm reports \(connected))")
        }
        let connectSeconds = Double(Monotonic.nanoseconds() - started) / 1e9
        let after = residentBytes(), heapAfter = heapInUseBytes()
        let count = short ? 50 : 300
        var health: [Double] = []
        for _ in 0..<count {
            if let ms = healthOnce(port: server.port) { health.append(ms) }
            usleep(5_000)
        }
        let held = server.server.hub.metrics.connectedClients
        _ = try swarm.finish()
        let perClient = memoryPerClientKiB(rss: after - before, heap: heapAfter - heapBefore, clients: clients)
        Self.figure("idle SSE clients held", Double(held), unit: "clients", target: Double(wanted), higherIsBetter: true,
                    reference: String(format: "all connected in %.1f s, still open after the health requests; clients in a child process",
                                      connectSeconds))
        Self.figure("idle SSE memory per client (\(clients) clients)", perClient, unit: "KiB", target: 16, higherIsBetter: false,
                    reference: String(format: "RSS +%.1f MiB, heap in use +%.1f MiB", Double(after - before) / 1_048_576,
                                      Double(heapAfter - heapBefore) / 1_048_576))
        Self.figure("GET /api/health p99 with \(clients) idle SSE clients", percentile(health, 0.99), unit: "ms", target: 10,
                    higherIsBetter: false,
                    reference: String(format: "p50 %.2f ms, %d requests, %d failed; load avg %@", percentile(health, 0.5), health.count,
                                      count - health.count, loadAverage()))
    }

    /// Calls `publish` with a ``realtimeNanoseconds()`` stamp every 100 ms for `seconds`; the count.
    private func publishTenPerSecond(seconds: Double, _ publish: (UInt64) -> Void) -> Int {
        var published = 0
        var next = Monotonic.nanoseconds()
        let end = next + UInt64(seconds * 1e9)
        while next < end {
            publish(realtimeNanoseconds())
            published += 1
            next += 100_000_000
            let now = Monotonic.nanoseconds()
            if next > now { usleep(UInt32((next - now) / 1000)) }
        }
        // Let the last event arrive.
        usleep(300_000)
        return published
    }
}

/// The floor of the fan-out figure: the accepted sockets split among `threads` threads that each
/// `send` the same bytes to their share on every event. No HTTP, no hub, no per-client state.
final class PlainFanout: Sendable {
    let port: UInt16
    private let listener: Int32
    private let threads: Int
    private let triggers: [DispatchSemaphore]
    /// The event the senders send next.
    private let bytes = Locked<[UInt8]>([])
    private let stopping = Flag()
    /// Each sender's sockets and how many senders run (set by ``accept(_:)``).
    private let senders = Locked<(shares: [[Int32]], workers: Int)>(([], 0))
    /// Signalled by each sender as it ends.
    private let senderEnded = DispatchSemaphore(value: 0)

    init(threads: Int) throws {
        listener = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 4096, nonBlocking: false)
        port = try Socket.localPort(listener)
        self.threads = max(1, threads)
        triggers = (0..<max(1, threads)).map { _ in DispatchSemaphore(value: 0) }
    }

    /// Accepts `count` clients, answering each request with an event-stream header; then starts the senders.
    func accept(_ count: Int) -> Bool {
        Socket.setTimeouts(listener, milliseconds: 10_000)
        let header = Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n".utf8)
        var buffer = [UInt8](repeating: 0, count: 4096)
        var shares = [[Int32]](repeating: [], count: threads)
        // A socket accepted so far is closed by stop() even if accepting fails midway.
        defer { senders.withLock { $0.shares = shares } }
        for index in 0..<count {
            let fd = Glibc.accept(listener, nil, nil)
            guard fd >= 0 else { return false }
            Socket.setNoDelay(fd)
            Socket.setTimeouts(fd, milliseconds: 10_000)
            // The request is small: read to its blank line, then answer.
            var request: [UInt8] = []
            while !request.suffix(4).elementsEqual([13, 10, 13, 10]) {
                guard let n = try? buffer.withUnsafeMutableBytes({ try Socket.read(fd, into: $0) }), n > 0 else { Socket.close(fd); return false }
                request += buffer[0..<n]
            }
            guard (try? header.withUnsafeBytes({ try Socket.writeAll(fd, $0) })) != nil else { Socket.close(fd); return false }
            shares[index % shares.count].append(fd)
        }
        var workers = 0
        for (share, trigger) in zip(shares, triggers) {
            let worker = Thread { [self] in
                defer { senderEnded.signal() }
                while true {
                    trigger.wait()
                    if stopping.isSet { return }
                    let event = bytes.value
                    event.withUnsafeBytes { raw in
                        for fd in share { _ = Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                    }
                }
            }
            worker.start()
            workers += 1
        }
        senders.withLock { $0.workers = workers }
        return true
    }

    func publish(_ event: [UInt8]) {
        bytes.set(event)
        for trigger in triggers { trigger.signal() }
    }

    func stop() {
        stopping.set()
        for trigger in triggers { trigger.signal() }
        let (shares, workers) = senders.value
        for _ in 0..<workers { senderEnded.wait() }
        for share in shares { for fd in share { Socket.close(fd) } }
        Socket.close(listener)
    }
}
