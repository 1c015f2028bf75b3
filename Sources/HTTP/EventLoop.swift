import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// One client connection; touched only by its loop's thread (worker threads only carry it back
/// to the loop in a completion).
// @unchecked Sendable: touched only by its loop's thread; a worker only carries it back to the loop in a completion.
final class Connection: @unchecked Sendable {
    let fd: Int32
    let remote: String
    var parser: HTTPRequestParser
    var out: [[UInt8]] = []
    var outIndex = 0
    var outOffset = 0
    var outBytes = 0
    var closeAfterWrite = false
    /// After the last byte is written: half-close and read what the client still sends for a
    /// moment, so an answer sent before its request's body is not lost to a reset.
    var lingerOnClose = false
    /// Set while lingering: close at this monotonic time at the latest.
    var lingerUntil: UInt64?
    var peerClosed = false
    var closed = false
    var lastActivity: UInt64
    var headerStart: UInt64 = 0
    var interest: UInt32
    var sse: SSEClient?
    /// A deferred answer is being computed on a worker; nothing else is parsed meanwhile.
    var awaiting = false
    /// Has complete requests left after its per-wakeup budget; queued in the loop's ready list.
    var inReady = false
    /// The head of the request whose body is arriving has been checked (precheck, body budget, 100 Continue).
    var headChecked = false
    /// When the header of the request whose body is arriving was complete.
    var bodyStart: UInt64 = 0
    /// Bytes of the server's body budget held for the body arriving.
    var reservedBody = 0
    /// Bytes charged to the server's event-stream budget.
    var sseCharged = 0
    /// The TLS session on an HTTPS server; nil on a plain one (plain sockets pay nothing more than this check).
    var tls: TLSSession?
    /// Accepted past `maxConnections` on the HTTPS port: once its handshake is done it gets the
    /// 503 a plain client gets at once, and is closed (README "HTTPS and tokens").
    var refusing = false
    /// The streamed answer being sent (``HTTPReply/streamed(_:)``); `awaiting` stays set meanwhile.
    var pump: BodyPump?
    /// Whether the connection stays open after the streamed answer.
    var pumpKeepAlive = false

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
    /// A backlog page is being read on a worker.
    var pageInFlight = false

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

/// What a worker hands back to a loop.
private enum Completion {
    /// The answer of a deferred request.
    case reply(HTTPReply, HTTPRequest)
    /// A page of stored events for a resuming client, read after `start`.
    case page(start: Int64, events: [EncodedSSEEvent])
    /// A piece of a streamed answer's body.
    case piece(BodyPump, BodyPump.Piece)
}

/// An epoll loop on its own thread owning a share of the server's connections.
///
/// Other threads talk to it only through ``adopt(fd:remote:)``, ``deliver(_:from:)``, worker
/// completions and ``stop()``, which queue work under a lock and wake the loop with an eventfd.
///
/// Fairness: a connection gets at most ``HTTPLimits/requestsPerWakeup`` requests answered per turn
/// (then the loop serves its other clients and comes back), reads at most 256 KiB per turn, and
/// stops being read while its answers or a deferred job are pending. Slow work (deferred routes,
/// backlog pages) runs on the worker pools; the loop writes the answer when it comes back.
// @unchecked Sendable: the queues and flags other threads use are guarded by `lock`; connections, streams and the epoll set are touched only by the loop's thread.
final class EventLoop: SSESink, @unchecked Sendable {
    private let core: ServerCore
    private let index: Int
    private let epoll: Epoll
    private let wake: WakeFd

    private let lock = NSLock()
    private var newConnections: [(fd: Int32, remote: String, refusing: Bool)] = []
    private var inbox: [(SSEHub, [EncodedSSEEvent])] = []
    private var completions: [(Connection, Completion)] = []
    private var stopping = false
    private var wakePending = false
    private var wakeClosed = false

    // Loop-thread state.
    private var connections: [Int32: Connection] = [:]
    private var streams: [Int32: Connection] = [:]
    /// Connections with complete requests left over from their last turn.
    private var ready: [Connection] = []
    /// Resuming clients whose page could not be queued (pool full): retried on the tick.
    private var pageRetry: [Connection] = []
    /// Streamed answers whose next piece could not be queued (pool full): retried on the tick.
    private var pieceRetry: [Connection] = []
    /// A streamed answer's next piece is asked for while fewer bytes than this wait to be sent,
    /// so at most this plus one piece is held per connection whatever the body's size.
    private static let streamLowWater = 256 * 1024
    private var hubs: [ObjectIdentifier: SSEHub] = [:]
    private let readBuffer: UnsafeMutableRawBufferPointer
    /// Where ``flush(_:)`` gathers a connection's queued pieces (events, answers) for one write.
    private let gatherBuffer: UnsafeMutableRawBufferPointer
    private static let gatherBytes = 64 * 1024
    private static let keepAliveBytes = Array(": keep-alive\n\n".utf8)
    private static let continueBytes = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
    private static let highWater = 256 * 1024
    private static let lingerNanoseconds: UInt64 = 2_000_000_000
    /// Stored-event bytes written to resuming clients per loop turn; past it they wait for the next
    /// turn, so a crowd resuming from id 0 cannot make a turn long for everyone else.
    private static let backlogBytesPerTurn = 256 * 1024
    private var backlogBytesThisTurn = 0

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
        gatherBuffer = .allocate(byteCount: Self.gatherBytes, alignment: 16)
    }

    // MARK: Cross-thread entry points

    /// Hands an accepted, non-blocking socket to this loop. Any thread.
    /// Takes an accepted connection; `refusing`: an HTTPS client past the cap, answered 503 after its handshake.
    func adopt(fd: Int32, remote: String, refusing: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        guard !wakeClosed else {
            Socket.close(fd)
            core.connectionClosed()
            return
        }
        newConnections.append((fd, remote, refusing))
        signalLocked()
    }

    func deliver(_ events: [EncodedSSEEvent], from hub: SSEHub) {
        lock.lock()
        defer { lock.unlock() }
        guard !wakeClosed else { return }
        inbox.append((hub, events))
        signalLocked()
    }

    /// A worker's result for one of this loop's connections. Any thread.
    private func complete(_ connection: Connection, _ completion: Completion) {
        lock.lock()
        defer { lock.unlock() }
        guard !wakeClosed else { return }
        completions.append((connection, completion))
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
            backlogBytesThisTurn = 0
            let now = Monotonic.nanoseconds()
            let timeout: Int32 = ready.isEmpty ? Int32(max(0, (Int64(nextTick) - Int64(now)) / 1_000_000) + 1) : 0
            do {
                try epoll.wait(timeoutMs: timeout) { fd, flags in
                    if fd == wake.fd {
                        if !drainInbox() { running = false }
                        return
                    }
                    guard let connection = connections[fd] else { return }
                    if flags & (Epoll.error | Epoll.hangup) != 0 && (connection.awaiting || connection.inReady) {
                        // Reset while its answer is pending: nobody is left to answer.
                        close(connection, dropped: false)
                        return
                    }
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
            if running && !ready.isEmpty { serveReady() }
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
        completions.removeAll()
        wakeClosed = true
        wake.close()
        lock.unlock()
        for (fd, _, _) in orphans {
            Socket.close(fd)
            core.connectionClosed()
        }
        epoll.close()
        readBuffer.deallocate()
        gatherBuffer.deallocate()
    }

    /// Takes queued connections, events and completions; false when the loop must stop.
    private func drainInbox() -> Bool {
        wake.drain()
        lock.lock()
        let adopted = newConnections
        let events = inbox
        let done = completions
        newConnections.removeAll()
        inbox.removeAll()
        completions.removeAll()
        wakePending = false
        let stop = stopping
        lock.unlock()
        if stop {
            for (fd, _, _) in adopted {
                Socket.close(fd)
                core.connectionClosed()
            }
            return false
        }
        let now = Monotonic.nanoseconds()
        for (fd, remote, refusing) in adopted {
            let connection = Connection(fd: fd, remote: remote, parser: HTTPRequestParser(limits: core.limits), now: now)
            connection.refusing = refusing
            do {
                if let context = core.tls {
                    connection.tls = try context.session(fd: fd)
                    // The handshake must finish within the header timeout, as a request header must.
                    connection.headerStart = now
                }
                try epoll.add(fd, Epoll.readable)
                connections[fd] = connection
            } catch {
                core.logger.warning("\(error)")
                connection.tls?.free()
                Socket.close(fd)
                core.connectionClosed()
            }
        }
        for (connection, completion) in done where !connection.closed {
            finish(completion, on: connection)
        }
        if !events.isEmpty { fanOut(events, now: now) }
        return true
    }

    /// Gives each connection left with complete requests another turn.
    private func serveReady() {
        let turn = ready
        ready.removeAll()
        for connection in turn {
            connection.inReady = false
            if !connection.closed { processRequests(connection) }
        }
    }

    // MARK: TLS handshakes

    /// Advances a TLS handshake; once established, reads what the client already sent. A client
    /// speaking plain HTTP gets a plain 400 (the port speaks HTTPS) and is closed; any other failure closes.
    private func handshake(_ connection: Connection, _ tls: TLSSession) {
        switch tls.handshake() {
        case .waiting:
            setInterest(connection)
        case .established where connection.refusing:
            // Past the connection cap: the 503 of a plain client, now that the client can read it.
            core.count(status: 503)
            connection.lastActivity = Monotonic.nanoseconds()
            connection.enqueue(core.busyAnswer)
            connection.closeAfterWrite = true
            connection.lingerOnClose = true
            flush(connection)
        case .established:
            let now = Monotonic.nanoseconds()
            connection.lastActivity = now
            connection.headerStart = now
            setInterest(connection)
            readable(connection)
        case .plainHTTP:
            core.logger.debug("\(connection.remote): plain HTTP on the HTTPS port: answered 400")
            tls.free()
            connection.tls = nil
            core.count(status: 400)
            var response = HTTPResponse.error(400, code: "https_required",
                                              message: "this port speaks HTTPS only: use https:// in the address")
            response.headers.set("Connection", "close")
            connection.enqueue(core.serialize(response, head: false, keepAlive: false, http11: true))
            connection.closeAfterWrite = true
            connection.lingerOnClose = true
            flush(connection)
        case .failed(let reason):
            core.logger.debug("\(connection.remote): TLS handshake failed: \(reason)")
            close(connection, dropped: false)
        }
    }

    // MARK: Reading and requests

    /// One read from the connection's transport into `readBuffer`: `recv`, or `SSL_read` over TLS.
    @inline(__always)
    private func receive(_ connection: Connection) throws -> IOResult<Int> {
        if let tls = connection.tls { return try tls.read(into: readBuffer, context: connection.remote) }
        return try syscall("recv", context: connection.remote) { recv(connection.fd, readBuffer.baseAddress, readBuffer.count, 0) }
    }

    private func readable(_ connection: Connection) {
        if let tls = connection.tls {
            if !tls.established {
                handshake(connection, tls)
                return
            }
            tls.wantsWrite = false
        }
        if connection.sse != nil || connection.lingerUntil != nil {
            // An event stream's client (or one being closed) has nothing more to say; read to notice when it leaves.
            var discarded = 0
            while discarded < 1_048_576 {
                do {
                    switch try receive(connection) {
                    case .wouldBlock: setInterest(connection); return
                    case .done(0): close(connection, dropped: false); return
                    case .done(let n): discarded += n
                    }
                } catch {
                    close(connection, dropped: false)
                    return
                }
            }
            return
        }
        // Paused (answers or a job pending, or requests left for the next turn): the socket keeps the bytes.
        if connection.awaiting || connection.inReady || connection.outBytes > 0 {
            setInterest(connection)
            return
        }
        var reads = 0
        // A TLS read returns one record (16 KiB at most): more of them per turn for the same bytes;
        // and what OpenSSL read ahead is always taken, since epoll will not report it again.
        let maxReads = connection.tls == nil ? 4 : 16
        while reads < maxReads || connection.tls?.hasPending == true {
            reads += 1
            let n: Int
            do {
                switch try receive(connection) {
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
            if let tls = connection.tls {
                // A short record with nothing read ahead: the socket was drained (as a short recv says below).
                if n < 16384 && !tls.hasPending { break }
            } else if n < readBuffer.count {
                break
            }
        }
        if connection.tls?.wantsWrite == true { setInterest(connection) }
        processRequests(connection)
    }

    private func writable(_ connection: Connection) {
        if let tls = connection.tls, tls.wantsWrite || !tls.established {
            // The handshake, or a read, waited for the socket to take OpenSSL's bytes.
            readable(connection)
            if connection.closed { return }
        }
        flush(connection)
        guard !connection.closed, connection.outBytes == 0 else { return }
        if connection.sse == nil && connection.parser.bufferedBytes > 0 { processRequests(connection) }
    }

    private func markReady(_ connection: Connection) {
        guard !connection.inReady else { return }
        connection.inReady = true
        ready.append(connection)
    }

    /// Answers buffered requests in order: at most the per-wakeup budget, while the output stays
    /// below the high-water mark and no deferred answer is pending.
    private func processRequests(_ connection: Connection) {
        var budget = max(1, core.limits.requestsPerWakeup)
        parsing: while !connection.closed && !connection.closeAfterWrite && connection.sse == nil && !connection.awaiting
                && connection.outBytes < Self.highWater {
            if budget == 0 {
                if connection.parser.bufferedBytes > 0 { markReady(connection) }
                break
            }
            switch connection.parser.next(remoteAddress: connection.remote) {
            case .needMore:
                if connection.parser.phase == .body && !connection.headChecked { checkHead(connection) }
                if connection.peerClosed && !connection.closeAfterWrite { connection.closeAfterWrite = true }
                break parsing
            case .error(let error):
                core.count(status: error.status)
                var response = HTTPResponse.error(error.status, message: error.message)
                response.headers.set("Connection", "close")
                connection.enqueue(core.serialize(response, head: false, keepAlive: false, http11: true))
                connection.closeAfterWrite = true
                connection.lingerOnClose = true
            case .request(let request):
                budget -= 1
                releaseBody(connection)
                handle(request, on: connection)
                connection.headerStart = connection.parser.phase == .idle ? 0 : Monotonic.nanoseconds()
            }
        }
        if !connection.closed { flush(connection) }
    }

    /// The header of a request with a body has arrived, the body has not: check the host and the
    /// route's authorization, hold the body's bytes in the shared budget, answer `100 Continue`.
    /// A refusal answers now and closes (lingering) without reading the body.
    private func checkHead(_ connection: Connection) {
        guard let (head, length) = connection.parser.headAwaitingBody else { return }
        connection.headChecked = true
        connection.bodyStart = Monotonic.nanoseconds()
        var refusal = core.precheck(head)
        if refusal == nil {
            if core.bodyBudget.reserve(length) {
                connection.reservedBody = length
                connection.parser.reserveBody()
            } else {
                var busy = HTTPResponse.error(503, message: "too many request bodies are arriving at once; retry later")
                busy.headers.set("Retry-After", "1")
                refusal = busy
            }
        }
        if var refusal {
            core.count(status: refusal.status)
            refusal.headers.set("Connection", "close")
            connection.enqueue(core.serialize(refusal, head: false, keepAlive: false, http11: true))
            connection.closeAfterWrite = true
            connection.lingerOnClose = true
            return
        }
        if head.isHTTP11, head.headers["Expect"]?.lowercased() == "100-continue" {
            connection.enqueue(Self.continueBytes)
        }
    }

    private func releaseBody(_ connection: Connection) {
        connection.headChecked = false
        if connection.reservedBody > 0 {
            core.bodyBudget.release(connection.reservedBody)
            connection.reservedBody = 0
        }
    }

    private func handle(_ request: HTTPRequest, on connection: Connection) {
        answer(core.dispatch(request), to: request, on: connection)
    }

    private func answer(_ reply: HTTPReply, to request: HTTPRequest, on connection: Connection) {
        switch reply {
        case .response(let response):
            respond(response, to: request, on: connection)
        case .eventStream(let stream):
            startStream(stream, request: request, on: connection)
        case .streamed(let streamed):
            startBody(streamed, request: request, on: connection)
        case .deferred(let work):
            let core = self.core
            connection.awaiting = true
            let queued = core.pool(work.lane).submit { [self] in
                complete(connection, .reply(core.run(work, for: request), request))
            }
            if !queued {
                connection.awaiting = false
                core.busyRefused()
                var busy = HTTPResponse.error(503, message: "the server is busy; retry later")
                busy.headers.set("Retry-After", "1")
                respond(busy, to: request, on: connection)
            }
        }
    }

    private func respond(_ response: HTTPResponse, to request: HTTPRequest, on connection: Connection) {
        core.count(status: response.status)
        connection.enqueue(core.serialize(response, head: request.method == .head, keepAlive: request.keepAlive, http11: request.isHTTP11))
        if !request.keepAlive { connection.closeAfterWrite = true }
    }

    /// Applies a worker's result, then goes on with the connection's pipelined requests.
    private func finish(_ completion: Completion, on connection: Connection) {
        switch completion {
        case .reply(let reply, let request):
            connection.awaiting = false
            connection.lastActivity = Monotonic.nanoseconds()
            if case .deferred = reply {
                respond(.error(500, message: "internal server error"), to: request, on: connection)
            } else {
                answer(reply, to: request, on: connection)
            }
            processRequests(connection)
        case .page(let start, let events):
            guard let client = connection.sse else { return }
            client.pageInFlight = false
            applyPage(events, after: start, on: connection)
            if !connection.closed { flush(connection) }
        case .piece(let pump, let piece):
            guard connection.pump === pump else { return }
            applyPiece(piece, of: pump, on: connection)
        }
    }

    // MARK: Streamed answers

    /// Sends the head of a streamed answer and asks for its first piece. HEAD gets the head only.
    private func startBody(_ streamed: StreamedResponse, request: HTTPRequest, on connection: Connection) {
        core.count(status: streamed.status)
        let chunked = request.isHTTP11
        // HTTP/1.0 has no chunked encoding: the body ends when the connection closes.
        let keepAlive = request.keepAlive && chunked
        var head = "HTTP/1.1 \(streamed.status) \(StatusText.reason(streamed.status))\r\n"
        for field in streamed.headers {
            if HTTPHeaders.same(field.name, "Content-Length") || HTTPHeaders.same(field.name, "Connection")
                || HTTPHeaders.same(field.name, "Transfer-Encoding") { continue }
            head += "\(field.name): \(field.value)\r\n"
        }
        if chunked { head += "Transfer-Encoding: chunked\r\n" }
        if !keepAlive { head += "Connection: close\r\n" }
        head += "\r\n"
        connection.enqueue(Array(head.utf8))
        let pump = BodyPump(producer: streamed.producer, lane: streamed.lane, chunked: chunked)
        if request.method == .head {
            if pump.cancel() { closeProducer(pump) }
            if !keepAlive { connection.closeAfterWrite = true }
            return
        }
        connection.pump = pump
        connection.pumpKeepAlive = keepAlive
        connection.awaiting = true
        requestPiece(connection)
    }

    /// Asks the pump's pool for the next piece while the connection's queue is below the low-water mark.
    private func requestPiece(_ connection: Connection) {
        guard let pump = connection.pump, !connection.closed, connection.outBytes < Self.streamLowWater, pump.begin() else { return }
        let queued = core.pool(pump.lane).submit { [self] in
            complete(connection, .piece(pump, pump.produce()))
        }
        if !queued {
            pump.abandon()
            if !pieceRetry.contains(where: { $0 === connection }) { pieceRetry.append(connection) }
        }
    }

    /// Queues a piece (as a chunk); after the last, the end of the body, then the connection's next requests.
    private func applyPiece(_ piece: BodyPump.Piece, of pump: BodyPump, on connection: Connection) {
        switch piece {
        case .cancelled:
            return
        case .failed(let error):
            core.logger.error("streamed answer to \(connection.remote) failed after \(pump.bodyBytes) bytes: \(error)")
            connection.pump = nil
            close(connection, dropped: false)
        case .bytes(let bytes, let last):
            if !bytes.isEmpty {
                pump.bodyBytes += bytes.count
                if pump.chunked { connection.enqueue(Array((String(bytes.count, radix: 16) + "\r\n").utf8)) }
                connection.enqueue(bytes)
                if pump.chunked { connection.enqueue([13, 10]) }
            }
            guard last else {
                flush(connection)
                return
            }
            if pump.chunked { connection.enqueue(Array("0\r\n\r\n".utf8)) }
            connection.pump = nil
            connection.awaiting = false
            connection.lastActivity = Monotonic.nanoseconds()
            if !connection.pumpKeepAlive { connection.closeAfterWrite = true }
            processRequests(connection)
        }
    }

    /// Closes a producer off the loop when the pool takes the job, else here.
    private func closeProducer(_ pump: BodyPump) {
        let producer = pump.producer
        if !core.pool(pump.lane).submit({ producer.close() }) { producer.close() }
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
        if connection.inReady {
            connection.inReady = false
            ready.removeAll { $0 === connection }
        }
        connection.peerClosed = false
        streams[connection.fd] = connection
        connection.enqueue(Array(head.utf8))
        if client.inBacklog { requestPage(connection) }
    }

    /// Asks the read pool for the next page of stored events (one page in flight per client).
    private func requestPage(_ connection: Connection) {
        guard let client = connection.sse, client.inBacklog, !client.pageInFlight,
              let backlog = client.backlog, let start = client.cursor else { return }
        let pageSize = core.limits.sseBacklogPageSize
        client.pageInFlight = true
        let queued = core.readPool.submit { [self] in
            let events = backlog(start, pageSize).map(EncodedSSEEvent.init)
            complete(connection, .page(start: start, events: events))
        }
        if !queued {
            client.pageInFlight = false
            if !pageRetry.contains(where: { $0 === connection }) { pageRetry.append(connection) }
        }
    }

    /// Queues a page of stored events; after the last page, the live events held meanwhile.
    private func applyPage(_ page: [EncodedSSEEvent], after start: Int64, on connection: Connection) {
        guard let client = connection.sse, client.inBacklog else { return }
        var cursor = start
        var sent = 0
        for event in page where event.id > cursor {
            cursor = event.id
            if client.accepts(event.type) {
                connection.enqueue(event.bytes)
                sent += 1
            }
        }
        client.cursor = cursor
        if page.count < core.limits.sseBacklogPageSize || cursor == start {
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
        if !charge(connection) {
            core.logger.notice("event-stream client \(connection.remote) dropped: the server's event-stream queues are full")
            close(connection, dropped: true)
        }
    }

    /// Brings the connection's charge in the shared event-stream budget up to date; false when it
    /// would pass the total (the caller drops the client).
    private func charge(_ connection: Connection) -> Bool {
        guard let client = connection.sse else { return true }
        let now = connection.outBytes + client.heldBytes
        let delta = now - connection.sseCharged
        guard core.sseBudget.adjust(delta) else { return false }
        connection.sseCharged = now
        return true
    }

    /// Queues each client's share of the events delivered since the last turn, then writes it:
    /// one write per client for all of them (``flush(_:)`` gathers the queued events).
    private func fanOut(_ batches: [(SSEHub, [EncodedSSEEvent])], now: UInt64) {
        guard !streams.isEmpty else { return }
        let limit = core.limits.sseClientBufferBytes
        var sentByHub: [ObjectIdentifier: (SSEHub, Int)] = [:]
        for connection in Array(streams.values) {
            guard let client = connection.sse else { continue }
            var sent = 0
            var overflow = false
            batches: for (hub, events) in batches where hub === client.hub {
                for event in events where client.accepts(event.type) {
                    if client.inBacklog {
                        client.held.append(event)
                        client.heldBytes += event.bytes.count
                        if client.heldBytes + connection.outBytes > limit { overflow = true; break batches }
                        continue
                    }
                    if let cursor = client.cursor, event.id <= cursor { continue }
                    client.cursor = event.id
                    sent += 1
                    connection.enqueue(event.bytes)
                }
            }
            if sent > 0 {
                client.lastWrite = now
                let key = ObjectIdentifier(client.hub)
                sentByHub[key] = (client.hub, (sentByHub[key]?.1 ?? 0) + sent)
                if !overflow { flush(connection) }
            }
            if connection.closed { continue }
            if overflow || connection.outBytes > limit {
                core.logger.notice("event-stream client \(connection.remote) fell behind (\(connection.outBytes + client.heldBytes) bytes queued): dropped")
                close(connection, dropped: true)
            } else if !charge(connection) {
                core.logger.notice("event-stream client \(connection.remote) dropped: the server's event-stream queues are full")
                close(connection, dropped: true)
            }
        }
        for (hub, sent) in sentByHub.values { hub.countSent(sent) }
    }

    // MARK: Writing

    /// One `send` (or TLS write) of `count` bytes; nil when the connection failed (it is closed).
    private func send(_ bytes: UnsafeRawPointer, count: Int, on connection: Connection) -> IOResult<Int>? {
        do {
            if let tls = connection.tls {
                return try tls.write(bytes, count: count, context: connection.remote)
            }
            return try syscall("send", context: connection.remote) {
                Glibc.send(connection.fd, bytes, count, Int32(MSG_NOSIGNAL))
            }
        } catch {
            close(connection, dropped: false)
            return nil
        }
    }

    /// Writes the connection's queue until the socket takes no more. Several small pieces (the
    /// events of a fan-out, pipelined answers) are gathered into ``gatherBuffer`` and go out in
    /// one write; a piece of ``gatherBytes`` or more goes out from its own bytes. After a TLS
    /// write that would block, the next write starts with the same bytes, as OpenSSL asks (the
    /// queue only grows at its end, so a gathered write offers at least those bytes again).
    private func flush(_ connection: Connection) {
        // A resuming client's stored events share a per-turn budget; the rest waits for the next turn
        // (the socket stays writable, so epoll brings it back at once).
        let resuming = connection.sse?.inBacklog == true
        writing: while connection.outIndex < connection.out.count {
            if resuming && backlogBytesThisTurn >= Self.backlogBytesPerTurn { break }
            let chunk = connection.out[connection.outIndex]
            let rest = chunk.count - connection.outOffset
            let result: IOResult<Int>?
            var offered = rest
            if rest >= Self.gatherBytes || connection.outIndex + 1 == connection.out.count {
                result = chunk.withUnsafeBytes { raw in
                    send(raw.baseAddress! + connection.outOffset, count: rest, on: connection)
                }
            } else {
                var filled = 0
                var index = connection.outIndex
                var offset = connection.outOffset
                while index < connection.out.count && filled < Self.gatherBytes {
                    let piece = connection.out[index]
                    let take = min(piece.count - offset, Self.gatherBytes - filled)
                    piece.withUnsafeBytes { raw in
                        (gatherBuffer.baseAddress! + filled).copyMemory(from: raw.baseAddress! + offset, byteCount: take)
                    }
                    filled += take
                    offset += take
                    if offset == piece.count {
                        index += 1
                        offset = 0
                    }
                }
                offered = filled
                result = send(gatherBuffer.baseAddress!, count: filled, on: connection)
            }
            guard let result else { return }
            guard case .done(let written) = result else { break }
            if resuming { backlogBytesThisTurn += written }
            connection.outBytes -= written
            var taken = written
            while taken > 0 {
                let left = connection.out[connection.outIndex].count - connection.outOffset
                if taken < left {
                    connection.outOffset += taken
                    break
                }
                taken -= left
                connection.outIndex += 1
                connection.outOffset = 0
            }
            // A plain socket that took less than offered is full for now (a TLS write returns
            // after each record: it goes on).
            if written < offered && connection.tls == nil { break writing }
        }
        if connection.sse != nil { _ = charge(connection) }
        if connection.outIndex == connection.out.count {
            connection.out.removeAll()
            connection.outIndex = 0
            if connection.closeAfterWrite {
                if connection.lingerOnClose && connection.lingerUntil == nil && !connection.peerClosed {
                    linger(connection)
                } else if connection.lingerUntil == nil {
                    close(connection, dropped: false)
                }
                return
            }
            if let client = connection.sse, client.inBacklog { requestPage(connection) }
        } else if connection.outIndex > 64 {
            connection.out.removeSubrange(0..<connection.outIndex)
            connection.outIndex = 0
        }
        if connection.sse == nil { connection.lastActivity = Monotonic.nanoseconds() }
        if connection.pump != nil { requestPiece(connection) }
        setInterest(connection)
    }

    /// Half-closes after an early answer and discards what the client still sends, until it
    /// closes or ``lingerNanoseconds`` pass.
    private func linger(_ connection: Connection) {
        releaseBody(connection)
        connection.parser.discardAll()
        connection.lingerUntil = Monotonic.nanoseconds() + Self.lingerNanoseconds
        connection.tls?.shutdown()
        _ = Glibc.shutdown(connection.fd, Int32(SHUT_WR))
        setInterest(connection)
    }

    private func setInterest(_ connection: Connection) {
        guard !connection.closed else { return }
        var wanted: UInt32
        if let tls = connection.tls, !tls.established {
            wanted = tls.wantsWrite ? Epoll.writable : Epoll.readable
        } else if connection.lingerUntil != nil {
            wanted = Epoll.readable
        } else if let _ = connection.sse {
            wanted = connection.outBytes > 0 ? (Epoll.readable | Epoll.writable) : Epoll.readable
        } else if connection.outBytes > 0 {
            // An HTTP connection with unsent answers stops reading: backpressure on pipelining clients.
            wanted = Epoll.writable
        } else if connection.awaiting || connection.inReady || connection.closeAfterWrite {
            wanted = 0
        } else {
            wanted = Epoll.readable
        }
        if let tls = connection.tls, tls.wantsWrite { wanted |= Epoll.writable }
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
        if let tls = connection.tls {
            tls.free()
            connection.tls = nil
        }
        Socket.close(connection.fd)
        connections[connection.fd] = nil
        releaseBody(connection)
        if let pump = connection.pump {
            connection.pump = nil
            if pump.cancel() { closeProducer(pump) }
        }
        if let client = connection.sse {
            streams[connection.fd] = nil
            client.hub.releaseClient(dropped: dropped)
            client.held = []
            core.sseBudget.release(connection.sseCharged)
            connection.sseCharged = 0
        }
        connection.out = []
        connection.parser.discardAll()
        core.connectionClosed()
    }

    // MARK: Timers

    private func tick(now: UInt64) {
        let limits = core.limits
        let headerNs = UInt64(limits.headerReadTimeout * 1e9)
        let bodyNs = UInt64(limits.bodyTimeout * 1e9)
        let idleNs = UInt64(limits.idleTimeout * 1e9)
        let keepAliveNs = UInt64(limits.sseKeepAliveInterval * 1e9)
        var expired: [Connection] = []
        var slowBodies: [Connection] = []
        var silent: [Connection] = []
        for connection in connections.values {
            if let until = connection.lingerUntil {
                if now >= until { expired.append(connection) }
                continue
            }
            if let tls = connection.tls, !tls.established {
                if now &- connection.headerStart > headerNs { expired.append(connection) }
                continue
            }
            if let client = connection.sse {
                if now &- client.lastWrite >= keepAliveNs { silent.append(connection) }
                continue
            }
            if connection.pump != nil {
                // A streamed answer the client stopped reading: its queue stays full past the idle time.
                if connection.outBytes > 0 && now &- connection.lastActivity > idleNs { expired.append(connection) }
                continue
            }
            if connection.awaiting { continue }
            switch connection.parser.phase {
            case .header where connection.outBytes == 0 && !connection.closeAfterWrite:
                if now &- connection.headerStart > headerNs { expired.append(connection) }
            case .body where connection.headChecked && !connection.closeAfterWrite:
                if now &- connection.bodyStart > bodyNs { slowBodies.append(connection) }
            default:
                if now &- connection.lastActivity > idleNs { expired.append(connection) }
            }
        }
        for connection in expired {
            core.logger.debug("closing \(connection.remote): timed out")
            close(connection, dropped: false)
        }
        for connection in slowBodies where !connection.closed {
            core.count(status: 408)
            var response = HTTPResponse.error(408, message: "the request body did not arrive within \(limits.bodyTimeout) s")
            response.headers.set("Connection", "close")
            connection.enqueue(core.serialize(response, head: false, keepAlive: false, http11: true))
            connection.closeAfterWrite = true
            connection.lingerOnClose = true
            flush(connection)
        }
        for connection in silent {
            guard let client = connection.sse else { continue }
            client.lastWrite = now
            if connection.outBytes == 0 {
                connection.enqueue(Self.keepAliveBytes)
                flush(connection)
            }
        }
        if !pieceRetry.isEmpty {
            let retry = pieceRetry
            pieceRetry.removeAll()
            for connection in retry where !connection.closed { requestPiece(connection) }
        }
        if !pageRetry.isEmpty {
            let retry = pageRetry
            pageRetry.removeAll()
            for connection in retry where !connection.closed { requestPage(connection) }
        }
    }
}
