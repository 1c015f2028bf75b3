import CBench
import CEpoll
import COpenSSL
import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Many non-blocking HTTP client connections on one epoll set, driven by the calling thread: the one
/// load generator of the HTTP and event-stream benchmarks (in-process, or in a child process through
/// ``SwarmProcess``).
///
/// Streaming clients send `request` at once and then read the server-sent event stream line by line.
/// Two measurements come from those lines:
/// - `data: <stamp>` lines, where the stamp is ``realtimeNanoseconds()`` at publication: the delivery
///   latency, recorded twice, when the client read it and (with `stamped`, SO_TIMESTAMPNS) when it
///   arrived in the client's socket (``latencyPercentile(_:)``, ``arrivalPercentile(_:)``);
/// - a watched text (``watch(_:since:)``): per client, the time from a monotonic start to the first
///   line containing it (``collectWatched(timeout:)``).
///
/// Non-streaming (slow) clients send `request` one byte per ``drip()`` and reopen when the server
/// closes them.
///
/// With `tls` the streaming clients speak HTTPS: each connects and completes its handshake blocking
/// (the certificate is not checked), then reads non-blocking: the encrypted bytes are received here
/// (with their kernel arrival stamp) and handed to OpenSSL through a memory BIO.
///
/// Thread-confined, so not `Sendable`: the thread that makes it drives it.
public final class ClientSwarm {
    private struct Client {
        var fd: Int32 = -1
        var sent = 0
        var headerDone = false
        var pending: [UInt8] = []
        var ssl: OpaquePointer?
    }

    /// `GET path` asking for an event stream.
    public static func eventStreamRequest(path: String = "/api/events", host: String = "127.0.0.1") -> String {
        "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nAccept: text/event-stream\r\n\r\n"
    }

    private let port: UInt16
    private let request: [UInt8]
    private let epfd: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    private let capacity = 1024
    private var clients: [Client] = []
    private var indexOfFd: [Int32: Int] = [:]
    private var buffer = [UInt8](repeating: 0, count: 65536)
    /// Encrypted bytes of a TLS client, before OpenSSL decrypts them into `buffer`.
    private var cipherBuffer = [UInt8](repeating: 0, count: 65536)
    private var latenciesMicros: [UInt32] = []
    private var arrivalMicros: [UInt32] = []
    private let stamped: Bool
    private var watched: [UInt8] = []
    private var watchStart: UInt64 = 0
    private var watchSeen: [Bool] = []
    private var watchLatencies: [Double] = []
    public private(set) var deliveries = 0
    public private(set) var reopened = 0
    private var tlsContext: OpaquePointer?
    private var tlsMethod: OpaquePointer?

    public init(port: UInt16, request: String, stamped: Bool = false, tls: Bool = false) throws {
        self.port = port
        self.request = Array(request.utf8)
        self.stamped = stamped
        if tls {
            guard let context = cossl_client_context_new(nil), let method = cossl_socket_method_new() else {
                throw BenchError("bench clients: cannot make a TLS client context")
            }
            tlsContext = context
            tlsMethod = method
        }
        epfd = try syscallOrThrow("epoll_create1", context: "bench clients") { epoll_create1(CEPOLL_CLOEXEC) }
        events = .allocate(capacity: capacity)
        latenciesMicros.reserveCapacity(1 << 20)
        if stamped { arrivalMicros.reserveCapacity(1 << 20) }
    }

    /// Opens `count` connections, in batches so the listen backlog never overflows; streaming ones
    /// are pumped until their response header arrived (up to 10 s a batch).
    public func connect(_ count: Int, streaming: Bool) throws {
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

    /// A streaming HTTPS client: blocking connect and handshake, the request sent, then non-blocking reads.
    private func openTLS(_ index: Int, context: OpaquePointer, method: OpaquePointer) throws {
        let fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 10_000)
        Socket.setTimeouts(fd, milliseconds: 10_000)
        guard let ssl = SSL_new(context) else {
            Socket.close(fd)
            throw BenchError("bench client \(index): SSL_new failed")
        }
        guard cossl_attach_socket(ssl, method, fd) == 1, SSL_connect(ssl) == 1,
              request.withUnsafeBytes({ SSL_write(ssl, $0.baseAddress, Int32($0.count)) }) == Int32(request.count) else {
            ERR_clear_error()
            SSL_free(ssl)
            Socket.close(fd)
            throw BenchError("bench client \(index): TLS handshake or request failed")
        }
        // From now on the client receives the bytes itself (kernel stamps) and feeds OpenSSL from memory.
        guard let memory = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            Socket.close(fd)
            throw BenchError("bench client \(index): BIO_new failed")
        }
        SSL_set0_rbio(ssl, memory)
        if stamped {
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, CSO_TIMESTAMPNS, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        Socket.setNonBlocking(fd)
        clients[index] = Client(fd: fd, sent: request.count, ssl: ssl)
        indexOfFd[fd] = index
        _ = try syscallOrThrow("epoll_ctl", context: "bench client") { cepoll_ctl_fd(epfd, CEPOLL_CTL_ADD, fd, CEPOLL_IN) }
    }

    private func open(_ index: Int, streaming: Bool) throws {
        if streaming, let tlsContext, let tlsMethod {
            try openTLS(index, context: tlsContext, method: tlsMethod)
            return
        }
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
        clients[index] = Client(fd: fd)
        indexOfFd[fd] = index
        let interest = streaming ? (CEPOLL_IN | CEPOLL_OUT) : CEPOLL_IN
        _ = try syscallOrThrow("epoll_ctl", context: "bench client") { cepoll_ctl_fd(epfd, CEPOLL_CTL_ADD, fd, interest) }
    }

    /// Handles ready connections for up to `timeoutMs`.
    public func pump(timeoutMs: Int32) {
        let count = epoll_wait(epfd, events, Int32(capacity), timeoutMs)
        guard count > 0 else { return }
        let now = realtimeNanoseconds()
        let monotonicNow = Monotonic.nanoseconds()
        for i in 0..<Int(count) {
            let fd = cepoll_event_fd(events, Int32(i))
            let flags = cepoll_event_flags(events, Int32(i))
            guard let index = indexOfFd[fd] else { continue }
            if flags & CEPOLL_OUT != 0 && clients[index].sent < request.count {
                let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + clients[index].sent, request.count - clients[index].sent, Int32(MSG_NOSIGNAL)) }
                if n > 0 { clients[index].sent += n }
                if clients[index].sent == request.count { _ = cepoll_ctl_fd(epfd, CEPOLL_CTL_MOD, fd, CEPOLL_IN) }
            }
            if flags & (CEPOLL_IN | CEPOLL_HUP | CEPOLL_ERR) != 0 { readAll(index, now: now, monotonicNow: monotonicNow) }
        }
    }

    private func readAll(_ index: Int, now: UInt64, monotonicNow: UInt64) {
        let fd = clients[index].fd
        if let ssl = clients[index].ssl {
            reading: while true {
                var arrival: Int64 = 0
                let received = cipherBuffer.withUnsafeMutableBytes { raw in
                    stamped ? csocket_recv_stamped(fd, raw.baseAddress, UInt(raw.count), &arrival) : recv(fd, raw.baseAddress, raw.count, 0)
                }
                if received < 0 && (errno == EAGAIN || errno == EINTR) { return }
                guard received > 0 else { break }
                let rbio = SSL_get_rbio(ssl)
                _ = cipherBuffer.withUnsafeBytes { BIO_write(rbio, $0.baseAddress, Int32(received)) }
                while true {
                    let n = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
                    if n > 0 {
                        consume(index, Int(n), now: now, monotonicNow: monotonicNow, arrival: UInt64(max(0, arrival)))
                        continue
                    }
                    let code = SSL_get_error(ssl, n)
                    ERR_clear_error()
                    if code == COSSL_ERROR_WANT_READ || code == COSSL_ERROR_WANT_WRITE { continue reading }
                    break reading
                }
            }
            _ = cepoll_ctl_fd(epfd, CEPOLL_CTL_DEL, fd, 0)
            SSL_free(ssl)
            Socket.close(fd)
            indexOfFd[fd] = nil
            clients[index] = Client()
            return
        }
        while true {
            var arrival: Int64 = 0
            let n = buffer.withUnsafeMutableBytes { raw in
                stamped ? csocket_recv_stamped(fd, raw.baseAddress, UInt(raw.count), &arrival) : recv(fd, raw.baseAddress, raw.count, 0)
            }
            if n > 0 {
                consume(index, n, now: now, monotonicNow: monotonicNow, arrival: UInt64(max(0, arrival)))
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
    /// `pending`).
    private func consume(_ index: Int, _ n: Int, now: UInt64, monotonicNow: UInt64, arrival: UInt64) {
        buffer.withUnsafeBufferPointer { data in
            var lineStart = 0
            for i in 0..<n where data[i] == 10 {
                if clients[index].pending.isEmpty {
                    line(index, UnsafeBufferPointer(rebasing: data[lineStart..<i]), now: now, monotonicNow: monotonicNow, arrival: arrival)
                } else {
                    clients[index].pending += data[lineStart..<i]
                    let joined = clients[index].pending
                    clients[index].pending.removeAll()
                    joined.withUnsafeBufferPointer { line(index, $0, now: now, monotonicNow: monotonicNow, arrival: arrival) }
                }
                lineStart = i + 1
            }
            if lineStart < n { clients[index].pending += data[lineStart..<n] }
        }
    }

    private func line(_ index: Int, _ line: UnsafeBufferPointer<UInt8>, now: UInt64, monotonicNow: UInt64, arrival: UInt64) {
        if !clients[index].headerDone {
            if line.isEmpty || (line.count == 1 && line[0] == 13) { clients[index].headerDone = true }
            return
        }
        if !watched.isEmpty && index < watchSeen.count && !watchSeen[index] && Self.contains(line, watched) {
            watchSeen[index] = true
            watchLatencies.append(Double(monotonicNow - watchStart) / 1e6)
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

    private static func contains(_ line: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
        guard needle.count <= line.count, let first = needle.first else { return false }
        var i = 0
        while i + needle.count <= line.count {
            if line[i] == first && needle.indices.allSatisfy({ line[i + $0] == needle[$0] }) { return true }
            i += 1
        }
        return false
    }

    /// Starts watching for `text` in the event streams: from now on, each streaming client's first
    /// line containing it counts once, timed from `start` (``Monotonic/nanoseconds()``).
    public func watch(_ text: String, since start: UInt64) {
        watched = Array(text.utf8)
        watchStart = start
        watchSeen = Array(repeating: false, count: clients.count)
        watchLatencies.removeAll(keepingCapacity: true)
    }

    /// Pumps until every streaming client saw the watched text or `timeout` seconds after its start
    /// passed; the latencies (ms) of those that saw it.
    public func collectWatched(timeout: Double) -> [Double] {
        let deadline = watchStart + UInt64(timeout * 1e9)
        let wanted = streamingClients
        while watchLatencies.count < wanted && Monotonic.nanoseconds() < deadline { pump(timeoutMs: 20) }
        return watchLatencies
    }

    /// Sends the next byte of the request on every slow connection; reopens the ones the server closed.
    public func drip() {
        let snapshot = clients.enumerated().map { ($0.offset, $0.element.fd, $0.element.sent) }
        for (index, fd, sent) in snapshot {
            if fd < 0 {
                if (try? open(index, streaming: false)) != nil { reopened += 1 }
                continue
            }
            guard sent < request.count else { continue }
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, 1, Int32(MSG_NOSIGNAL)) }
            if n == 1 && clients[index].fd == fd { clients[index].sent += 1 }
        }
        pump(timeoutMs: 0)
    }

    /// The `p` quantile of delivery latencies (stamp → read by the client), in ms.
    public func latencyPercentile(_ p: Double) -> Double {
        percentile(latenciesMicros.map { Double($0) / 1000 }, p)
    }

    /// The `p` quantile of arrival latencies (stamp → in the client's socket, by the kernel's
    /// receive timestamp), in ms; NaN unless `stamped`.
    public func arrivalPercentile(_ p: Double) -> Double {
        percentile(arrivalMicros.map { Double($0) / 1000 }, p)
    }

    /// How many streaming clients have their response header.
    public var streamingClients: Int { clients.filter(\.headerDone).count }

    /// How many of the deliveries carried a kernel arrival stamp.
    public var stampedDeliveries: Int { arrivalMicros.count }

    public func close() {
        for client in clients where client.fd >= 0 {
            if let ssl = client.ssl { SSL_free(ssl) }
            Socket.close(client.fd)
        }
        if let tlsContext { SSL_CTX_free(tlsContext) }
        if let tlsMethod { BIO_meth_free(tlsMethod) }
        tlsContext = nil
        tlsMethod = nil
        clients.removeAll()
        indexOfFd.removeAll()
        Socket.close(epfd)
        events.deallocate()
    }
}
