import BenchSupport
import Foundation
import HTTP
import MESApp
import Runtime
#if canImport(Glibc)
import Glibc
#endif

// The "abuse" benchmark: what one client (or a few hundred) without good intentions can do to the
// assembled server. /api/health p99 under each attack is printed beside the same figure with no
// attacker, measured in the same run. The attackers' threads run at idle priority (SCHED_IDLE),
// standing in for clients on other machines as the event-stream benchmarks' swarm does: on one
// machine their own receiving would otherwise take the server's CPU, which no remote attacker can.
extension BenchSuite {
    func abuse() throws {
        raiseFileLimit()
        let seconds = short ? 1.5 : 8.0
        let server = try BenchServer()
        defer { server.stop() }
        let port = server.port

        // Stored events, for the clients that resume from id 0.
        let stored = short ? 2_000 : 20_000
        let log = server.server.eventLog
        let payload = "{\"station\":\"WELD-01\",\"note\":\"" + String(repeating: "x", count: 120) + "\"}"
        for _ in 0..<stored { _ = log.append(type: "alert", station: "WELD-01", time: Date(), data: payload) }
        try log.flush(timeout: 120)

        let baseline = healthLatencies(port: port, seconds: seconds)
        let base99 = percentile(baseline.latencies, 0.99)
        let reference = { (m: (latencies: [Double], failures: Int), extra: String) -> String in
            String(format: "no attacker: p99 %.2f ms; max %.2f ms, %d answered, %d failed; %@; load avg %@",
                   base99, percentile(m.latencies, 1), m.latencies.count, m.failures, extra, loadAverage())
        }

        // 1. One client pipelining 50,000 requests in one write, reading as fast as it can.
        do {
            let stop = Flag(), answered = Counter()
            let attacker = Thread { Self.pipeline(port: port, requests: short ? 10_000 : 50_000, stop: stop, answered: answered) }
            attacker.start()
            _ = waitUntil(5) { answered.value > 0 }
            let m = healthLatencies(port: port, seconds: seconds)
            stop.set()
            while !attacker.isFinished { usleep(10_000) }
            Self.figure("GET /api/health p99 while one client pipelines 50,000 requests", percentile(m.latencies, 0.99), unit: "ms",
                        target: 50, higherIsBetter: false, reference: reference(m, "\(answered.value) pipelined answers meanwhile"))
        }

        // 2. 64 clients resuming from id 0 in a loop.
        do {
            let stop = Flag(), resumes = Counter()
            var threads: [Thread] = []
            for _ in 0..<64 {
                let thread = Thread { Self.resumeLoop(port: port, lastId: Int64(stored), stop: stop, resumes: resumes) }
                thread.start()
                threads.append(thread)
            }
            _ = waitUntil(10) { resumes.value > 0 }
            let m = healthLatencies(port: port, seconds: seconds)
            stop.set()
            for thread in threads { while !thread.isFinished { usleep(10_000) } }
            Self.figure("GET /api/health p99 while 64 clients resume from id 0 (\(stored) events)", percentile(m.latencies, 0.99), unit: "ms",
                        target: 50, higherIsBetter: false, reference: reference(m, "\(resumes.value) full resumes meanwhile"))
        }

        // 3. 300 clients trickling request bodies (a byte every 100 ms, with a valid token).
        do {
            let stop = Flag()
            let trickle = Thread { Self.trickleBodies(port: port, clients: 300, stop: stop) }
            trickle.start()
            usleep(500_000)
            let m = healthLatencies(port: port, seconds: seconds)
            stop.set()
            while !trickle.isFinished { usleep(10_000) }
            Self.figure("GET /api/health p99 while 300 clients trickle request bodies", percentile(m.latencies, 0.99), unit: "ms",
                        target: 50, higherIsBetter: false, reference: reference(m, "bodies must arrive within bodyTimeoutS"))
        }

        // 4. 1,000 connections each holding a body one byte short of the 1 MiB limit.
        do {
            let connections = short ? 200 : 1000
            let rssBefore = residentBytes(), heapBefore = heapInUseBytes()
            let held = Self.holdNearLimitBodies(port: port, connections: connections)
            let growth = max(residentBytes() - rssBefore, heapInUseBytes() - heapBefore)
            for fd in held.fds { Socket.close(fd) }
            Self.figure("server memory growth with \(connections) connections holding near-limit bodies", Double(max(0, growth)) / 1_048_576,
                        unit: "MiB", target: 64, higherIsBetter: false,
                        reference: "\(held.accepted) bodies held, \(held.refused) refused with 503 (maxBufferedBodyBytes); client and server in one process")
        }

        // 5. 10,000 failed authentications with 16 KB paths.
        do {
            let attempts = short ? 2_000 : 10_000
            try log.flush(timeout: 60)
            let before = Self.databaseBytes(server.server.options.database)
            let refused = Self.failAuthentications(port: port, attempts: attempts)
            server.server.pipeline.drain()
            try log.flush(timeout: 60)
            let growth = Self.databaseBytes(server.server.options.database) - before
            let perTenThousand = Double(max(0, growth)) * 10_000 / Double(max(1, attempts))
            Self.figure("database growth per 10,000 failed authentications with 16 KB paths", perTenThousand / 1_048_576, unit: "MiB",
                        target: 1, higherIsBetter: false, reference: "\(refused) of \(attempts) answered 401 or 429 (throttled); database + WAL bytes")
        }
    }

    /// Health latencies on fresh connections for `seconds`.
    private func healthLatencies(port: UInt16, seconds: Double) -> (latencies: [Double], failures: Int) {
        var latencies: [Double] = []
        var failures = 0
        let deadline = Monotonic.nanoseconds() + UInt64(seconds * 1e9)
        while Monotonic.nanoseconds() < deadline {
            if let ms = healthOnce(port: port) { latencies.append(ms) } else { failures += 1 }
            usleep(10_000)
        }
        return (latencies, failures)
    }

    private func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Monotonic.nanoseconds() + UInt64(seconds * 1e9)
        while !condition() {
            if Monotonic.nanoseconds() > deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// One connection: writes `requests` pipelined health requests at once (from a second thread),
    /// reads the answers as fast as possible, again until `stop`.
    private static func pipeline(port: UInt16, requests: Int, stop: Flag, answered: Counter) {
        let one = Array("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(one.count * requests)
        for _ in 0..<requests { bytes += one }
        let batch = bytes
        let marker = Array("HTTP/1.1 200".utf8)
        Self.idlePriority()
        while !stop.isSet {
            guard let fd = try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000) else { return }
            Socket.setTimeouts(fd, milliseconds: 200)
            let writer = Thread { Self.idlePriority(); Self.sendAll(fd, batch, stop: stop) }
            writer.start()
            var buffer = [UInt8](repeating: 0, count: 65536)
            var seen = 0, carry: [UInt8] = []
            while seen < requests && !stop.isSet {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n == 0 { break }
                if n < 0 { if errno == EAGAIN || errno == EINTR { continue } else { break } }
                let chunk = carry + buffer[0..<n]
                var count = 0
                var i = 0
                while i + marker.count <= chunk.count {
                    if chunk[i] == marker[0] && Array(chunk[i..<(i + marker.count)]) == marker { count += 1; i += marker.count } else { i += 1 }
                }
                carry = Array(chunk.suffix(marker.count - 1))
                seen += count
                answered.add(count)
            }
            shutdown(fd, Int32(SHUT_RDWR))
            while !writer.isFinished { usleep(1000) }
            Socket.close(fd)
        }
    }

    /// Opens an event stream resuming from id 0, reads until `lastId` arrived, closes; again until `stop`.
    private static func resumeLoop(port: UInt16, lastId: Int64, stop: Flag, resumes: Counter) {
        let marker = Array("id: \(lastId)\n".utf8)
        let request = Array("GET /api/events?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".utf8)
        var buffer = [UInt8](repeating: 0, count: 65536)
        Self.idlePriority()
        while !stop.isSet {
            guard let fd = try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000) else { usleep(10_000); continue }
            Socket.setTimeouts(fd, milliseconds: 200)
            _ = try? request.withUnsafeBytes { try Socket.writeAll(fd, $0) }
            var tail: [UInt8] = []
            var done = false
            let deadline = Monotonic.nanoseconds() + 60_000_000_000
            while !done && !stop.isSet && Monotonic.nanoseconds() < deadline {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n == 0 { break }
                if n < 0 { continue }
                let chunk = tail + buffer[0..<n]
                if chunk.count >= marker.count {
                    for i in 0...(chunk.count - marker.count) where chunk[i] == marker[0] && Array(chunk[i..<(i + marker.count)]) == marker {
                        done = true
                        break
                    }
                }
                tail = Array(chunk.suffix(marker.count))
            }
            Socket.close(fd)
            if done { resumes.add(1) }
        }
    }

    /// `clients` connections sending a 1,000-byte body a byte every 100 ms (reopened when closed).
    private static func trickleBodies(port: UInt16, clients: Int, stop: Flag) {
        let head = Array(("POST /api/defects HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer demo-quality-token\r\n"
            + "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").utf8)
        var fds = [Int32](repeating: -1, count: clients)
        Self.idlePriority()
        while !stop.isSet {
            for i in 0..<clients where !stop.isSet {
                if fds[i] < 0 {
                    guard let fd = try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000) else { continue }
                    Socket.setNonBlocking(fd)
                    _ = head.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    fds[i] = fd
                }
                var byte: UInt8 = 32
                if send(fds[i], &byte, 1, Int32(MSG_NOSIGNAL)) < 0 && errno != EAGAIN {
                    Socket.close(fds[i])
                    fds[i] = -1
                }
            }
            for _ in 0..<10 where !stop.isSet { usleep(10_000) }
        }
        for fd in fds where fd >= 0 { Socket.close(fd) }
    }

    /// `connections` connections each sending a 1 MiB body but its last byte; returns the open
    /// descriptors (whose bodies the server holds) and how many the server refused.
    private static func holdNearLimitBodies(port: UInt16, connections: Int) -> (fds: [Int32], accepted: Int, refused: Int) {
        let length = 1_048_576
        let head = Array(("POST /api/defects HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer demo-quality-token\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(length)\r\n\r\n").utf8)
        let body = [UInt8](repeating: 32, count: length - 1)
        let results = HeldBodies()
        let threads = 8
        var workers: [Thread] = []
        for t in 0..<threads {
            let worker = Thread {
                for _ in stride(from: t, to: connections, by: threads) {
                    guard let fd = try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000) else { continue }
                    Socket.setTimeouts(fd, milliseconds: 2000)
                    let ok = (try? (head + body).withUnsafeBytes { try Socket.writeAll(fd, $0) }) != nil
                    // A refused body is answered (503) and closed; a held one stays silent.
                    var peek = [UInt8](repeating: 0, count: 512)
                    Socket.setTimeouts(fd, milliseconds: 50)
                    let n = peek.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if ok && n < 0 { results.hold(fd) } else { results.refuse(); Socket.close(fd) }
                }
            }
            worker.start()
            workers.append(worker)
        }
        for worker in workers { while !worker.isFinished { usleep(10_000) } }
        usleep(200_000)
        let (open, refused) = results.snapshot
        return (open, open.count, refused)
    }

    /// `attempts` POSTs with a wrong token and a 16 KB path, pipelined on a few keep-alive connections.
    private static func failAuthentications(port: UInt16, attempts: Int) -> Int {
        let path = "/api/defects/" + String(repeating: "p", count: 16_000) + "/resolve"
        let one = Array("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer not-a-token\r\nContent-Length: 0\r\n\r\n".utf8)
        // 401 until the address is throttled, 429 after (README "HTTPS and tokens").
        let marker = Array("HTTP/1.1 4".utf8)
        let refused = Counter()
        var workers: [Thread] = []
        let perConnection = 500
        for start in stride(from: 0, to: attempts, by: perConnection) {
            let count = min(perConnection, attempts - start)
            let worker = Thread {
                guard let fd = try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000) else { return }
                defer { Socket.close(fd) }
                Socket.setTimeouts(fd, milliseconds: 10_000)
                var bytes: [UInt8] = []
                for _ in 0..<count { bytes += one }
                let batch = bytes
                let writer = Thread { _ = try? batch.withUnsafeBytes { try Socket.writeAll(fd, $0) } }
                writer.start()
                var buffer = [UInt8](repeating: 0, count: 65536)
                var seen = 0, carry: [UInt8] = []
                while seen < count {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { break }
                    let chunk = carry + buffer[0..<n]
                    var i = 0
                    while i + marker.count <= chunk.count {
                        if chunk[i] == marker[0] && Array(chunk[i..<(i + marker.count)]) == marker { seen += 1; i += marker.count } else { i += 1 }
                    }
                    carry = Array(chunk.suffix(marker.count - 1))
                }
                refused.add(seen)
                while !writer.isFinished { usleep(1000) }
            }
            worker.start()
            workers.append(worker)
            if workers.count >= 4 {
                for w in workers { while !w.isFinished { usleep(10_000) } }
                workers.removeAll()
            }
        }
        for w in workers { while !w.isFinished { usleep(10_000) } }
        return refused.value
    }

    /// Puts the calling thread in SCHED_IDLE (5 in Linux's sched.h): it runs only when nothing else
    /// wants the CPU.
    private static func idlePriority() {
        var parameter = sched_param()
        _ = sched_setscheduler(0, 5, &parameter)
    }

    /// Sends everything, waiting out a full socket buffer (the server pausing its reads) until `stop`.
    private static func sendAll(_ fd: Int32, _ bytes: [UInt8], stop: Flag) {
        var offset = 0
        bytes.withUnsafeBytes { raw in
            while offset < raw.count && !stop.isSet {
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n > 0 { offset += n } else if n < 0 && errno != EAGAIN && errno != EINTR { return }
            }
        }
    }

    private static func databaseBytes(_ path: String) -> Int {
        ["", "-wal"].reduce(0) { total, suffix in
            total + ((try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? Int) ?? 0)
        }
    }
}

/// Connections whose bodies the server holds, and the count it refused (filled by several threads).
private final class HeldBodies: Sendable {
    private let state = Locked<(fds: [Int32], refused: Int)>(([], 0))
    func hold(_ fd: Int32) { state.withLock { $0.fds.append(fd) } }
    func refuse() { state.withLock { $0.refused += 1 } }
    var snapshot: ([Int32], Int) { state.value }
}
