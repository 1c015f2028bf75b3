import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// One client connection; touched only by its loop's thread.
final class Connection {
    let fd: Int32
    let remote: String
    var parser: HTTPRequestParser
    var out: [[UInt8]] = []
    var outIndex = 0
    var outOffset = 0
    var outBytes = 0
    var closeAfterWrite = false
    var peerClosed = false
    var closed = false
    var lastActivity: UInt64
    var headerStart: UInt64 = 0
    var interest: UInt32
    var sse: SSEClient?

    init(fd: Int32, remote: String, parser: HTTPRequestParser, now: UInt64) {
        self.fd = fd
        self.remote = remote
        self.parser = parser
        self.lastActivity = now
        self.interest = Epoll.readable
    }

    func enqueue(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        out.append(bytes)
        outBytes += bytes.count
    }
}

/// The stream side of a connection that answered with an event stream.
final class SSEClient {
    let hub: SSEHub
    let types: Set<String>?
    let backlog: SSEBacklog?
    /// Id of the last event sent or skipped in the backlog; nil until the first live event (live-only clients).
    var cursor: Int64?
    var inBacklog: Bool
    var held: [EncodedSSEEvent] = []
    var heldBytes = 0
    var lastWrite: UInt64

    init(stream: SSEStream, now: UInt64) {
        hub = stream.hub
        types = stream.types
        backlog = stream.backlog
        cursor = stream.resumeAfter
        inBacklog = stream.resumeAfter != nil && stream.backlog != nil
        lastWrite = now
    }

    func accepts(_ type: String) -> Bool { types.map { $0.contains(type) } ?? true }
}

/// An epoll loop on its own thread owning a share of the server's connections.
///
/// Other threads talk to it only through ``adopt(fd:remote:)``, ``deliver(_:from:)`` and ``stop()``,
/// which queue work under a lock and wake the loop with an eventfd.
final class EventLoop: SSESink, @unchecked Sendable {
    private let core: ServerCore
    private let index: Int
    private let epoll: Epoll
    private let wake: WakeFd

    private let lock = NSLock()
    private var newConnections: [(Int32, String)] = []
    private var inbox: [(SSEHub, EncodedSSEEvent)] = []
    private var stopping = false
    private var wakePending = false
    private var wakeClosed = false

    // Loop-thread state.
    private var connections: [Int32: Connection] = [:]
    private var streams: [Int32: Connection] = [:]
    private var backlogPending: [Connection] = []
    private var hubs: [ObjectIdentifier: SSEHub] = [:]
    private let readBuffer: UnsafeMutableRawBufferPointer
    private static let keepAliveBytes = Array(": keep-alive\n\n".utf8)
    private static let highWater = 256 * 1024

    init(core: ServerCore, index: Int) throws {
        self.core = core
        self.index = index
        epoll = try Epoll()
        do {
            wake = try WakeFd()
            try epoll.add(wake.fd, Epoll.readable)
        } catch {
            epoll.close()
            throw error
        }
        readBuffer = .allocate(byteCount: 65536, alignment: 16)
    }

    // MARK: Cross-thread entry points

    /// Hands an accepted, non-blocking socket to this loop. Any thread.
    func adopt(fd: Int32, remote: String) {
        lock.lock()
        defer { lock.unlock() }
        guard !wakeClosed else {
            Socket.close(fd)
            core.connectionClosed()
            return
        }
        newConnections.append((fd, remote))
        signalLocked()
    }

    func deliver(_ event: EncodedSSEEvent, from hub: SSEHub) {
        lock.lock()
        defer { lock.unlock() }
        guard !wakeClosed else { return }
        inbox.append((hub, event))
        signalLocked()
    }

    /// Asks the loop to close everything and return from ``run()``. Any thread.
    func stop() {
        lock.lock()
        defer { lock.unlock() }
        stopping = true
        if !wakeClosed { wake.signal() }
    }

    /// Wakes the loop once per batch; the lock is held so the eventfd cannot be closed meanwhile.
    private func signalLocked() {
        if !wakePending {
            wakePending = true
            wake.signal()
        }
    }

    // MARK: The loop

    /// Runs until ``stop()``; call once, on the loop's own thread.
    func run() {
        let tickNs = core.tickNanoseconds
        var nextTick = Monotonic.nanoseconds() + tickNs
        var running = true
        while running {
            let now = Monotonic.nanoseconds()
            let timeout: Int32 = backlogPending.isEmpty ? Int32(max(0, (Int64(nextTick) - Int64(now)) / 1_000_000) + 1) : 0
            do {
                try epoll.wait(timeoutMs: timeout) { fd, flags in
                    if fd == wake.fd {
                        if !drainInbox() { running = false }
                        return
                    }
                    guard let connection = connections[fd] else { return }
                    if flags & (Epoll.readable | Epoll.error | Epoll.hangup) != 0 {
                        readable(connection)
                    }
                    if !connection.closed && flags & Epoll.writable != 0 {
                        writable(connection)
                    }
                }
            } catch {
                core.logger.error("http loop \(index): \(error)")
                break
            }
            if !backlogPending.isEmpty { pumpPending() }
            let after = Monotonic.nanoseconds()
            if after >= nextTick {
                tick(now: after)
                nextTick = after + tickNs
            }
        }
        for connection in Array(connections.values) { close(connection, dropped: false) }
        for hub in hubs.values { hub.detach(self) }
        hubs.removeAll()
        lock.lock()
        let orphans = newConnections
        newConnections.removeAll()
        inbox.removeAll()
        wakeClosed = true
        wake.close()
        lock.unlock()
        for (fd, _) in orphans {
            Socket.close(fd)
            core.connectionClosed()
        }
        epoll.close()
        readBuffer.deallocate()
    }

    /// Takes queued connections and events; false when the loop must stop.
    private func drainInbox() -> Bool {
        wake.drain()
        lock.lock()
        let adopted = newConnections
        let events = inbox
        newConnections.removeAll()
        inbox.removeAll()
        wakePending = false
        let stop = stopping
        lock.unlock()
        if stop {
            for (fd, _) in adopted {
                Socket.close(fd)
                core.connectionClosed()
            }
            return false
        }
        let now = Monotonic.nanoseconds()
        for (fd, remote) in adopted {
            do {
                try epoll.add(fd, Epoll.readable)
                connections[fd] = Connection(fd: fd, remote: remote, parser: HTTPRequestParser(limits: core.limits), now: now)
            } catch {
                core.logger.warning("\(error)")
                Socket.close(fd)
                core.connectionClosed()
            }
        }
        if !events.isEmpty { fanOut(events, now: now) }
        return true
    }

    // MARK: Reading and requests

    private func readable(_ connection: Connection) {
        if connection.sse != nil {
            // An event stream's client has nothing more to say; read to notice when it leaves.
            while true {
                do {
                    switch try syscall("recv", context: connection.remote, { recv(connection.fd, readBuffer.baseAddress, readBuffer.count, 0) }) {
                    case .wouldBlock: return
                    case .done(0): close(connection, dropped: false); return
                    case .done: continue
                    }
                } catch {
                    close(connection, dropped: false)
                    return
                }
            }
        }
        var reads = 0
        while reads < 4 {
            reads += 1
            let n: Int
            do {
                switch try syscall("recv", context: connection.remote, { recv(connection.fd, readBuffer.baseAddress, readBuffer.count, 0) }) {
                case .wouldBlock: n = -1
                case .done(let count): n = count
                }
            } catch {
                close(connection, dropped: false)
                return
            }
            if n < 0 { break }
            if n == 0 {
                connection.peerClosed = true
                break
            }
            let wasIdle = connection.parser.phase == .idle
            connection.parser.append(UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]))
            let now = Monotonic.nanoseconds()
            connection.lastActivity = now
            if wasIdle { connection.headerStart = now }
            if n < readBuffer.count { break }
        }
        processRequests(connection)
    }

    private func writable(_ connection: Connection) {
        flush(connection)
        guard !connection.closed, connection.outBytes == 0 else { return }
        if connection.sse == nil && connection.parser.bufferedBytes > 0 { processRequests(connection) }
    }

    /// Answers every complete buffered request, in order, while the output stays below the high-water mark.
    private func processRequests(_ connection: Connection) {
        var progressed: Bool
        repeat {
            progressed = false
            while !connection.closeAfterWrite && connection.sse == nil && connection.outBytes < Self.highWater {
                switch connection.parser.next(remoteAddress: connection.remote) {
                case .needMore:
                    break
                case .error(let error):
                    core.count(status: error.status)
                    var response = HTTPResponse.error(error.status, message: error.message)
                    response.headers.set("Connection", "close")
                    connection.enqueue(core.serialize(response, head: false, keepAlive: false, http11: true))
                    connection.closeAfterWrite = true
                    continue
                case .request(let request):
                    progressed = true
                    handle(request, on: connection)
                    let now = Monotonic.nanoseconds()
                    connection.headerStart = connection.parser.phase == .idle ? 0 : now
                    continue
                }
                break
            }
            if connection.peerClosed && connection.sse == nil && !connection.closeAfterWrite && connection.outBytes < Self.highWater {
                connection.closeAfterWrite = true
            }
            flush(connection)
            if connection.closed { return }
        } while progressed && connection.outBytes == 0 && connection.sse == nil && !connection.closeAfterWrite
            && connection.parser.bufferedBytes > 0
    }

    private func handle(_ request: HTTPRequest, on connection: Connection) {
        let reply = core.dispatch(request)
        switch reply {
        case .response(let response):
            core.count(status: response.status)
            connection.enqueue(core.serialize(response, head: request.method == .head, keepAlive: request.keepAlive, http11: request.isHTTP11))
            if !request.keepAlive { connection.closeAfterWrite = true }
        case .eventStream(let stream):
            startStream(stream, request: request, on: connection)
        }
    }

    // MARK: Event streams

    private func startStream(_ stream: SSEStream, request: HTTPRequest, on connection: Connection) {
        if request.method == .head {
            core.count(status: 200)
            let response = HTTPResponse(status: 200, headers: ["Content-Type": "text/event-stream", "Cache-Control": "no-cache"])
            connection.enqueue(core.serialize(response, head: true, keepAlive: request.keepAlive, http11: request.isHTTP11))
            if !request.keepAlive { connection.closeAfterWrite = true }
            return
        }
        // Attach before counting the client in, so no event published after it counts is missed.
        let key = ObjectIdentifier(stream.hub)
        if hubs[key] == nil {
            hubs[key] = stream.hub
            stream.hub.attach(self)
        }
        guard stream.hub.reserveClient(limit: core.limits.maxSseClients) else {
            core.count(status: 503)
            var response = HTTPResponse.error(503, message: "too many event-stream clients (\(core.limits.maxSseClients))")
            response.headers.set("Retry-After", "5")
            connection.enqueue(core.serialize(response, head: false, keepAlive: request.keepAlive, http11: request.isHTTP11))
            if !request.keepAlive { connection.closeAfterWrite = true }
            return
        }
        core.count(status: 200)
        let now = Monotonic.nanoseconds()
        var head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\nX-Accel-Buffering: no\r\n"
        for field in stream.headers { head += "\(field.name): \(field.value)\r\n" }
        head += "\r\n"
        if let retry = core.limits.sseRetryMilliseconds { head += "retry: \(retry)\n\n" }
        let client = SSEClient(stream: stream, now: now)
        connection.sse = client
        connection.parser.discardAll()
        connection.peerClosed = false
        streams[connection.fd] = connection
        connection.enqueue(Array(head.utf8))
        if client.inBacklog { pumpBacklog(connection) }
    }

    /// Sends the next page of stored events; after the last page, the live events held meanwhile.
    private func pumpBacklog(_ connection: Connection) {
        guard let client = connection.sse, client.inBacklog, let backlog = client.backlog, let start = client.cursor else { return }
        let pageSize = core.limits.sseBacklogPageSize
        let page = backlog(start, pageSize)
        var cursor = start
        var sent = 0
        for event in page where event.id > cursor {
            cursor = event.id
            if client.accepts(event.type) {
                connection.enqueue(event.encoded)
                sent += 1
            }
        }
        client.cursor = cursor
        if page.count < pageSize || cursor == start {
            client.inBacklog = false
            for event in client.held where event.id > cursor {
                connection.enqueue(event.bytes)
                cursor = event.id
                sent += 1
            }
            client.cursor = cursor
            client.held = []
            client.heldBytes = 0
        }
        if sent > 0 { client.lastWrite = Monotonic.nanoseconds() }
        client.hub.countSent(sent)
    }

    private func pumpPending() {
        let pending = backlogPending
        backlogPending.removeAll()
        for connection in pending where !connection.closed && connection.outBytes == 0 {
            pumpBacklog(connection)
            flush(connection)
        }
    }

    private func fanOut(_ events: [(SSEHub, EncodedSSEEvent)], now: UInt64) {
        guard !streams.isEmpty else { return }
        let limit = core.limits.sseClientBufferBytes
        var sentByHub: [ObjectIdentifier: (SSEHub, Int)] = [:]
        for connection in Array(streams.values) {
            guard let client = connection.sse else { continue }
            var sent = 0
            var overflow = false
            for (hub, event) in events where hub === client.hub && client.accepts(event.type) {
                if client.inBacklog {
                    client.held.append(event)
                    client.heldBytes += event.bytes.count
                    if client.heldBytes + connection.outBytes > limit { overflow = true; break }
                    continue
                }
                if let cursor = client.cursor, event.id <= cursor { continue }
                client.cursor = event.id
                sent += 1
                // Nothing queued: write straight from the shared encoding; queue only what the
                // socket did not take.
                if connection.outBytes > 0 {
                    connection.enqueue(event.bytes)
                } else if !sendDirect(event.bytes, on: connection) {
                    break
                }
                if connection.outBytes > limit { overflow = true; break }
            }
            if sent > 0 {
                client.lastWrite = now
                let key = ObjectIdentifier(client.hub)
                sentByHub[key] = (client.hub, (sentByHub[key]?.1 ?? 0) + sent)
            }
            if connection.closed { continue }
            if overflow {
                core.logger.notice("event-stream client \(connection.remote) fell behind (\(connection.outBytes + client.heldBytes) bytes queued): dropped")
                close(connection, dropped: true)
            } else if connection.outBytes > 0 {
                flush(connection)
            }
        }
        for (hub, sent) in sentByHub.values { hub.countSent(sent) }
    }

    // MARK: Writing

    /// Sends `bytes` on a connection with nothing queued; queues the part the socket did not take.
    /// False when the connection failed (it is closed).
    private func sendDirect(_ bytes: [UInt8], on connection: Connection) -> Bool {
        guard let result = send(bytes, from: 0, on: connection) else { return false }
        switch result {
        case .done(let written) where written == bytes.count: break
        case .done(let written): connection.enqueue(Array(bytes[written...]))
        case .wouldBlock: connection.enqueue(bytes)
        }
        return true
    }

    /// One `send` of `bytes[offset...]`; nil when the connection failed (it is closed).
    private func send(_ bytes: [UInt8], from offset: Int, on connection: Connection) -> IOResult<Int>? {
        do {
            return try bytes.withUnsafeBytes { raw in
                try syscall("send", context: connection.remote) {
                    Glibc.send(connection.fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                }
            }
        } catch {
            close(connection, dropped: false)
            return nil
        }
    }

    private func flush(_ connection: Connection) {
        while connection.outIndex < connection.out.count {
            let chunk = connection.out[connection.outIndex]
            guard let result = send(chunk, from: connection.outOffset, on: connection) else { return }
            guard case .done(let written) = result else { break }
            connection.outBytes -= written
            connection.outOffset += written
            if connection.outOffset == chunk.count {
                connection.outIndex += 1
                connection.outOffset = 0
            }
        }
        if connection.outIndex == connection.out.count {
            connection.out.removeAll()
            connection.outIndex = 0
            if connection.closeAfterWrite {
                close(connection, dropped: false)
                return
            }
            if let client = connection.sse, client.inBacklog { backlogPending.append(connection) }
        } else if connection.outIndex > 64 {
            connection.out.removeSubrange(0..<connection.outIndex)
            connection.outIndex = 0
        }
        if connection.sse == nil { connection.lastActivity = Monotonic.nanoseconds() }
        setInterest(connection)
    }

    private func setInterest(_ connection: Connection) {
        var wanted = Epoll.readable
        if connection.outBytes > 0 {
            // An HTTP connection with unsent answers stops reading: backpressure on pipelining clients.
            wanted = connection.sse == nil ? Epoll.writable : (Epoll.readable | Epoll.writable)
        }
        guard wanted != connection.interest else { return }
        do {
            try epoll.modify(connection.fd, wanted)
            connection.interest = wanted
        } catch {
            close(connection, dropped: false)
        }
    }

    private func close(_ connection: Connection, dropped: Bool) {
        guard !connection.closed else { return }
        connection.closed = true
        Socket.close(connection.fd)
        connections[connection.fd] = nil
        if let client = connection.sse {
            streams[connection.fd] = nil
            client.hub.releaseClient(dropped: dropped)
            client.held = []
        }
        connection.out = []
        connection.parser.discardAll()
        core.connectionClosed()
    }

    // MARK: Timers

    private func tick(now: UInt64) {
        let limits = core.limits
        let headerNs = UInt64(limits.headerReadTimeout * 1e9)
        let idleNs = UInt64(limits.idleTimeout * 1e9)
        let keepAliveNs = UInt64(limits.sseKeepAliveInterval * 1e9)
        var expired: [Connection] = []
        var silent: [Connection] = []
        for connection in connections.values {
            if let client = connection.sse {
                if now &- client.lastWrite >= keepAliveNs { silent.append(connection) }
                continue
            }
            switch connection.parser.phase {
            case .header where connection.outBytes == 0 && !connection.closeAfterWrite:
                if now &- connection.headerStart > headerNs { expired.append(connection) }
            default:
                if now &- connection.lastActivity > idleNs { expired.append(connection) }
            }
        }
        for connection in expired {
            core.logger.debug("closing \(connection.remote): timed out")
            close(connection, dropped: false)
        }
        for connection in silent {
            guard let client = connection.sse else { continue }
            client.lastWrite = now
            if connection.outBytes == 0 {
                connection.enqueue(Self.keepAliveBytes)
                flush(connection)
            }
        }
    }
}
