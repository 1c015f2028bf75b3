import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Transport: the I/O thread, connections and their secure channels

extension OPCUAServer {
    final class Connection {
        let fd: Int32
        var channel: ServerSecureChannel
        var outbound: [UInt8] = []
        var closing = false
        /// Tokens issued on this channel (the first, then renewals).
        var tokensIssued = 0
        /// Whether the epoll interest includes writable (while `outbound` holds bytes).
        var watchingWrite = false
        init(fd: Int32, channelId: UInt32, security: ServerSecurity?) {
            self.fd = fd
            channel = ServerSecureChannel(channelId: channelId, security: security)
        }
    }

    /// The I/O thread of a server with a thread of its own: waits in the epoll for sockets and the
    /// wake fd, or until the next subscription timer. A server on an ``OPCUAServerLoop`` runs the
    /// same steps (``prepareWait(_:)``, ``handleReady(_:_:)``, ``finishTurn(_:)``) on that loop's thread.
    func loop() {
        guard let epoll, let wake else { return }
        var ready: [(fd: Int32, events: UInt32)] = []
        while !lock.withLock({ stopRequested }) {
            let timeout = prepareWait(Monotonic.nanoseconds())
            // Collected first: handling one event may accept or close connections.
            ready.removeAll(keepingCapacity: true)
            do {
                try epoll.wait(timeoutMs: timeout) { fd, events in ready.append((fd, events)) }
            } catch {
                options.logger.error("\(error)")
            }
            for (fd, events) in ready {
                if fd == wake.fd {
                    wake.drain()
                } else {
                    handleReady(fd, events)
                }
            }
            finishTurn(Monotonic.nanoseconds())
        }
        closeAll()
        lock.withLock {
            epoll.close()
            wake.close()
            self.epoll = nil
            self.wake = nil
            Socket.close(listenFd)
            listenFd = -1
            running = false
        }
        stopped.signal()
    }

    /// Before a wait: the writable interest follows each connection's unsent bytes. Returns how long
    /// the wait may last (ms), until the next subscription timer.
    func prepareWait(_ now: UInt64) -> Int32 {
        let timeout = nextTimerMs(now)
        for connection in connections.values where connection.watchingWrite == connection.outbound.isEmpty {
            connection.watchingWrite.toggle()
            try? epoll?.modify(connection.fd, connection.watchingWrite ? Epoll.readable | Epoll.writable : Epoll.readable)
        }
        return timeout
    }

    /// One ready descriptor of this server: its listener or one of its connections.
    func handleReady(_ fd: Int32, _ events: UInt32) {
        if fd == listenFd {
            acceptConnections()
        } else if let connection = connections[fd] {
            if events & Epoll.writable != 0 { flush(connection) }
            if events & Epoll.input != 0 { readFrom(connection) }
        }
    }

    /// After a wait: subscription and channel timers, then connections whose close is due.
    func finishTurn(_ now: UInt64) {
        runTimers(now)
        for connection in Array(connections.values) where connection.closing && connection.outbound.isEmpty {
            closeConnection(connection)
        }
    }

    /// Closes every connection and forgets the sessions (the server stops).
    func closeAll() {
        for connection in Array(connections.values) { closeConnection(connection) }
        sessions.removeAll()
    }

    func acceptConnections() {
        while true {
            let fd = Glibc.accept(listenFd, nil, nil)
            if fd < 0 { return }
            Socket.setNonBlocking(fd)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            Socket.setNoDelay(fd)
            // Connections accepted in the same batch may already be closed by their peers: reap those first.
            if connections.count >= options.maxConnections { reapClosedConnections() }
            if connections.count >= options.maxConnections {
                let error = TCPFrame(type: .error, chunkType: UInt8(ascii: "F"),
                                     body: ErrorMessage(error: .badMaxConnectionsReached, reason: "too many connections").encoded)
                _ = error.encoded.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                Socket.close(fd)
                continue
            }
            nextChannelId &+= 1
            if nextChannelId == 0 { nextChannelId = 1 }
            do {
                try epoll?.add(fd, Epoll.readable)
            } catch {
                options.logger.warning("\(error)")
                Socket.close(fd)
                continue
            }
            connections[fd] = Connection(fd: fd, channelId: nextChannelId, security: options.security)
            host?.owners[fd] = self
        }
    }

    /// Reads from every connection (one with nothing waiting returns at once), so peers that closed are closed here.
    func reapClosedConnections() {
        for connection in Array(connections.values) {
            readFrom(connection)
            if connection.closing && connection.outbound.isEmpty { closeConnection(connection) }
        }
    }

    func readFrom(_ connection: Connection) {
        while true {
            let count = readBuffer.withUnsafeMutableBytes { recv(connection.fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                handle(connection.channel.receive(readBuffer[0..<count], nowNs: Monotonic.nanoseconds()), connection)
                if connection.closing { return }
                continue
            }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            if count < 0 && errno == EINTR { continue }
            closeConnection(connection)
            return
        }
    }

    func closeConnection(_ connection: Connection) {
        guard connections.removeValue(forKey: connection.fd) != nil else { return }
        try? epoll?.remove(connection.fd)
        host?.owners[connection.fd] = nil
        Socket.close(connection.fd)
        for session in sessions.values where session.fd == connection.fd {
            session.fd = nil
            session.publishQueue.removeAll()
        }
    }

    func write(_ bytes: [UInt8], to connection: Connection) {
        connection.outbound.append(contentsOf: bytes)
        flush(connection)
        if connection.outbound.count > 64 * 1024 * 1024 {
            options.logger.warning("dropping slow client")
            closeConnection(connection)
        }
    }

    func flush(_ connection: Connection) {
        while !connection.outbound.isEmpty {
            let sent = connection.outbound.withUnsafeBytes { send(connection.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 {
                connection.outbound.removeFirst(sent)
            } else if sent < 0 && errno == EINTR {
                continue
            } else if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                return
            } else {
                connection.outbound.removeAll()
                connection.closing = true
                return
            }
        }
    }

    func handle(_ actions: [ChannelAction], _ connection: Connection) {
        for action in actions {
            switch action {
            case .send(let bytes): write(bytes, to: connection)
            case .opened:
                connection.tokensIssued += 1
                if connection.tokensIssued > 1 { lock.withLock { renewals += 1 } }
            case .message(let requestId, let body): dispatch(body, requestId: requestId, connection)
            case .closed: connection.closing = true
            }
        }
    }

    func respond<R: ServiceResponse>(_ response: R, requestId: UInt32, _ connection: Connection) {
        handle(connection.channel.respond(response, encodingId: R.encodingId, requestId: requestId), connection)
    }

    func fault(_ status: StatusCode, handle: UInt32, requestId: UInt32, _ connection: Connection) {
        respond(ServiceFault(responseHeader: ResponseHeader(requestHandle: handle, serviceResult: status)), requestId: requestId, connection)
    }

}
