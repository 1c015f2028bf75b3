import CEpoll
import Foundation
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
        let slow = try ClientSwarm(port: server.port, request: "GET /api/health HTTP/1.1\r\nHost: slow\r\nX-Padding: \(String(repeating: "a", count: 60))\r\n\r\n")
        defer { slow.close() }
        try slow.connect(connections, streaming: false)
        let stop = Flag()
        let dripper = Thread {
            while !stop.isSet {
                slow.drip()
                for _ in 0..<10 where !stop.isSet { usleep(100_000) }
            }
        }
        dripper.start()
        var latencies: [Double] = []
        var failures = 0
        let deadline = Monotonic.nanoseconds() + UInt64(seconds * 1e9)
        while Monotonic.nanoseconds() < deadline {
            if let ms = healthOnce(port: server.port) { latencies.append(ms) } else { failures += 1 }
            usleep(20_000)
        }
        stop.set()
        while !dripper.isFinished { usleep(10_000) }
        Self.figure("GET /api/health p99 during \(connections) slow-header connections", percentile(latencies, 0.99), unit: "ms",
                    target: 100, higherIsBetter: false,
                    reference: String(format: "max %.2f ms, %d answered, %d failed, %d slow connections reopened after the header timeout; load avg %@",
                                      percentile(latencies, 1), latencies.count, failures, slow.reopened, loadAverage()))
    }
}

/// One `GET /api/health` on a new connection; its latency in ms, nil if it failed or was not 200.
func healthOnce(port: UInt16, path: String = "/api/health") -> Double? {
    let start = Monotonic.nanoseconds()
    guard let fd = try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000) else { return nil }
    defer { Socket.close(fd) }
    Socket.setTimeouts(fd, milliseconds: 5000)
    let request = Array("GET \(path) HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".utf8)
    guard (try? request.withUnsafeBytes({ try Socket.writeAll(fd, $0) })) != nil else { return nil }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        guard let n = try? buffer.withUnsafeMutableBytes({ try Socket.read(fd, into: $0) }), n > 0 else { break }
        response += buffer[0..<n]
    }
    guard response.starts(with: Array("HTTP/1.1 200".utf8)) else { return nil }
    return Double(Monotonic.nanoseconds() - start) / 1e6
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted[max(0, min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
}

/// CLOCK_REALTIME in ns: the clock of the kernel's socket receive timestamps, shared by processes.
func realtimeNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The 1-minute load average (the benchmarks share the machine), from /proc/loadavg.
func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?"
    return String(text.split(separator: " ").first ?? "?")
}

/// Resident set size of this process, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Bytes this process has allocated with malloc and not freed (reused pages count, unlike in RSS).
func heapInUseBytes() -> Int { Int(cmalloc_in_use_bytes()) }

/// Memory per client in KiB from the growth of RSS and of the heap in use while `clients`
/// connected: the larger of the two (RSS misses reused pages, the heap misses what is not malloc's).
func memoryPerClientKiB(rss: Int, heap: Int, clients: Int) -> Double {
    Double(max(0, rss, heap)) / Double(max(1, clients)) / 1024
}

/// Raises the open-file limit to 65,536 (or the hard limit) for many-connection benchmarks; returns the limit now in force.
@discardableResult
func raiseFileLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
    let wanted: rlim_t = 65536
    if limit.rlim_max < wanted { limit.rlim_max = wanted }
    limit.rlim_cur = wanted
    if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) != 0 {
        _ = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
    var now = rlimit()
    _ = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &now)
    return Int(now.rlim_cur)
}

/// The assembled server on a free loopback port with a temp database, replaying an empty recording.
final class BenchServer: @unchecked Sendable {
    let server: MESServer
    private let directory: URL
    private let done = DispatchSemaphore(value: 0)
    private let stopped = Flag()

    init(config: String = "Stations/plant.json") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-http-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var options = ServerOptions()
        options.config = config
        options.database = directory.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = "/dev/null"
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
        while healthOnce(port: port) == nil {
            guard Monotonic.nanoseconds() < deadline else { throw UsageError("bench server did not answer /api/health") }
            usleep(20_000)
        }
    }

    var port: UInt16 { server.port }

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

/// Many non-blocking client connections on one epoll set, driven by the calling thread.
///
/// Streaming clients send `request` at once and then read server-sent events whose `data:` is a
/// ``realtimeNanoseconds()`` stamp, recording the delivery latency twice: when the client read it,
/// and (with `stamped`, SO_TIMESTAMPNS) when it arrived in the client's socket. Non-streaming (slow)
/// clients send `request` one byte per ``drip()`` and reopen when the server closes them.
final class ClientSwarm: @unchecked Sendable {
    private struct Client {
        var fd: Int32 = -1
        var sent = 0
        var headerDone = false
        var pending: [UInt8] = []
    }

    private let port: UInt16
    private let request: [UInt8]
    private let epfd: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    private let capacity = 1024
    private var clients: [Client] = []
    private var indexOfFd: [Int32: Int] = [:]
    private var buffer = [UInt8](repeating: 0, count: 65536)
    private var latenciesMicros: [UInt32] = []
    private var arrivalMicros: [UInt32] = []
    private let stamped: Bool
    private let lock = NSLock()
    private(set) var deliveries = 0
    private(set) var reopened = 0

    init(port: UInt16, request: String, stamped: Bool = false) throws {
        self.port = port
        self.request = Array(request.utf8)
        self.stamped = stamped
        epfd = try syscallOrThrow("epoll_create1", context: "bench clients") { epoll_create1(CEPOLL_CLOEXEC) }
        events = .allocate(capacity: capacity)
        latenciesMicros.reserveCapacity(1 << 20)
        if stamped { arrivalMicros.reserveCapacity(1 << 20) }
    }

    /// Opens `count` connections, in batches so the listen backlog never overflows; streaming ones
    /// are pumped until their response header arrived.
    func connect(_ count: Int, streaming: Bool) throws {
        var opened = 0
        while opened < count {
            let batch = min(200, count - opened)
            for _ in 0..<batch {
                let index = clients.count
                clients.append(Client())
                try open(index, streaming: streaming)
            }
            opened += batch
            if streaming {
                let deadline = Monotonic.nanoseconds() + 10_000_000_000
                while clients.suffix(batch).contains(where: { !$0.headerDone }) && Monotonic.nanoseconds() < deadline {
                    pump(timeoutMs: 20)
                }
            }
        }
    }

    private func open(_ index: Int, streaming: Bool) throws {
        var address = try Socket.ipv4Address(host: "127.0.0.1", port: port)
        let fd = try syscallOrThrow("socket", context: "bench client") {
            Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        }
        // A non-blocking connect answers EINPROGRESS; completion shows as writability.
        let started: Int32 = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard started == 0 || errno == EINPROGRESS else {
            let code = errno
            Socket.close(fd)
            throw SystemError(call: "connect", errno: code, context: "bench client \(index)")
        }
        if stamped {
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, CSO_TIMESTAMPNS, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        lock.lock()
        clients[index] = Client(fd: fd)
        indexOfFd[fd] = index
        lock.unlock()
        let interest = streaming ? (CEPOLL_IN | CEPOLL_OUT) : CEPOLL_IN
        _ = try syscallOrThrow("epoll_ctl", context: "bench client") { cepoll_ctl_fd(epfd, CEPOLL_CTL_ADD, fd, interest) }
    }

    /// Handles ready connections for up to `timeoutMs`.
    func pump(timeoutMs: Int32) {
        let count = epoll_wait(epfd, events, Int32(capacity), timeoutMs)
        guard count > 0 else { return }
        let now = realtimeNanoseconds()
        lock.lock(); defer { lock.unlock() }
        for i in 0..<Int(count) {
            let fd = cepoll_event_fd(events, Int32(i))
            let flags = cepoll_event_flags(events, Int32(i))
            guard let index = indexOfFd[fd] else { continue }
            if flags & CEPOLL_OUT != 0 && clients[index].sent < request.count {
                let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + clients[index].sent, request.count - clients[index].sent, Int32(MSG_NOSIGNAL)) }
                if n > 0 { clients[index].sent += n }
                if clients[index].sent == request.count { _ = cepoll_ctl_fd(epfd, CEPOLL_CTL_MOD, fd, CEPOLL_IN) }
            }
            if flags & (CEPOLL_IN | CEPOLL_HUP | CEPOLL_ERR) != 0 { readAll(index, now: now) }
        }
    }

    private func readAll(_ index: Int, now: UInt64) {
        let fd = clients[index].fd
        while true {
            var arrival: Int64 = 0
            let n = buffer.withUnsafeMutableBytes { raw in
                stamped ? csocket_recv_stamped(fd, raw.baseAddress, UInt(raw.count), &arrival) : recv(fd, raw.baseAddress, raw.count, 0)
            }
            if n > 0 {
                consume(index, n, now: now, arrival: UInt64(max(0, arrival)))
                // Level-triggered: a socket with more to read is reported again.
                if n < buffer.count { return }
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            // Closed by the server (or failed).
            _ = cepoll_ctl_fd(epfd, CEPOLL_CTL_DEL, fd, 0)
            Socket.close(fd)
            indexOfFd[fd] = nil
            clients[index] = Client()
            return
        }
    }

    /// Parses received bytes line by line, in place (a line cut by the end of a read waits in
    /// `pending`); `data: <stamp>` lines become latencies.
    private func consume(_ index: Int, _ n: Int, now: UInt64, arrival: UInt64) {
        buffer.withUnsafeBufferPointer { data in
            var lineStart = 0
            for i in 0..<n where data[i] == 10 {
                if clients[index].pending.isEmpty {
                    line(index, UnsafeBufferPointer(rebasing: data[lineStart..<i]), now: now, arrival: arrival)
                } else {
                    clients[index].pending += data[lineStart..<i]
                    let joined = clients[index].pending
                    clients[index].pending.removeAll()
                    joined.withUnsafeBufferPointer { line(index, $0, now: now, arrival: arrival) }
                }
                lineStart = i + 1
            }
            if lineStart < n { clients[index].pending += data[lineStart..<n] }
        }
    }

    private func line(_ index: Int, _ line: UnsafeBufferPointer<UInt8>, now: UInt64, arrival: UInt64) {
        if !clients[index].headerDone {
            if line.isEmpty || (line.count == 1 && line[0] == 13) { clients[index].headerDone = true }
            return
        }
        guard line.count > 6, line[0] == 100, line[1] == 97, line[2] == 116, line[3] == 97, line[4] == 58, line[5] == 32 else { return } // "data: "
        var stamp: UInt64 = 0
        var digits = 0
        for b in line[6...] {
            guard b >= 48 && b <= 57 else { digits = 0; break }
            stamp = stamp &* 10 &+ UInt64(b - 48)
            digits += 1
        }
        guard digits > 0 else { return }
        deliveries += 1
        latenciesMicros.append(UInt32(clamping: now > stamp ? (now - stamp) / 1000 : 0))
        if arrival > 0 { arrivalMicros.append(UInt32(clamping: arrival > stamp ? (arrival - stamp) / 1000 : 0)) }
    }

    /// Sends the next byte of the request on every slow connection; reopens the ones the server closed.
    func drip() {
        lock.lock()
        let snapshot = clients.enumerated().map { ($0.offset, $0.element.fd, $0.element.sent) }
        lock.unlock()
        for (index, fd, sent) in snapshot {
            if fd < 0 {
                if (try? open(index, streaming: false)) != nil { reopened += 1 }
                continue
            }
            guard sent < request.count else { continue }
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, 1, Int32(MSG_NOSIGNAL)) }
            lock.lock()
            if n == 1 && clients[index].fd == fd { clients[index].sent += 1 }
            lock.unlock()
        }
        pump(timeoutMs: 0)
    }

    /// The `p` quantile of delivery latencies (stamp → read by the client), in ms.
    func latencyPercentile(_ p: Double) -> Double {
        lock.lock(); defer { lock.unlock() }
        return percentile(latenciesMicros.map { Double($0) / 1000 }, p)
    }

    /// The `p` quantile of arrival latencies (stamp → in the client's socket, by the kernel's
    /// receive timestamp), in ms; NaN unless `stamped`.
    func arrivalPercentile(_ p: Double) -> Double {
        lock.lock(); defer { lock.unlock() }
        return percentile(arrivalMicros.map { Double($0) / 1000 }, p)
    }

    /// How many streaming clients have their response header.
    var streamingClients: Int { lock.lock(); defer { lock.unlock() }; return clients.filter(\.headerDone).count }

    /// How many of the deliveries carried a kernel arrival stamp.
    var stampedDeliveries: Int { lock.lock(); defer { lock.unlock() }; return arrivalMicros.count }

    func close() {
        lock.lock(); defer { lock.unlock() }
        for client in clients where client.fd >= 0 { Socket.close(client.fd) }
        clients.removeAll()
        indexOfFd.removeAll()
        Socket.close(epfd)
        events.deallocate()
    }
}
