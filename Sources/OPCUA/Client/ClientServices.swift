import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Services, subscriptions and sending (any thread)

extension OPCUAClient {
    // MARK: - Services

    /// Sends one request and returns its decoded response (ServiceFaults and bad service results throw).
    /// Throws ``ClientError/notConnected`` at once while the connection is down.
    public func call<Request: ServiceRequest, Response: ServiceResponse>(_ request: Request, as type: Response.Type,
                                                                         timeoutMs: Int? = nil) async throws -> Response {
        let timeout = timeoutMs ?? options.requestTimeoutMs
        let bytes: [UInt8] = try await withUnsafeThrowingContinuation { continuation in
            if let failure = submitRequest(request, timeoutMs: timeout, waiter: .task(continuation)) {
                continuation.resume(throwing: failure)
            }
        }
        return try decodeServiceResponse(bytes, as: Response.self)
    }

    /// Encodes and sends one request from any thread, without blocking; the waiter gets the response.
    /// Returns the error instead when it was not sent (``ClientError/notConnected`` at once while the
    /// connection is down: the caller marks its values stale and tries again later).
    func submitRequest<Request: ServiceRequest>(_ request: Request, timeoutMs timeout: Int, waiter: Waiter) -> (any Error)? {
        let ticket: (generation: UInt64, header: RequestHeader, requestId: UInt32)? = lock.withLock {
            guard sessionReady, !stopRequested, currentState == .connected else { return nil }
            return (generation, makeHeaderLocked(timeoutMs: timeout), channel.makeRequestId())
        }
        guard let ticket else { return ClientError.notConnected }
        var request = request
        request.requestHeader = ticket.header
        // Encoded outside the lock; framed and sent by the caller under it, without waking the I/O thread.
        let message = encodeServiceMessage(request, encodingId: Request.encodingId)
        return submit(message, requestId: ticket.requestId, generation: ticket.generation, timeoutMs: timeout, waiter: waiter)
    }

    /// Reads the Value attribute of each node; a bad node gives its own bad status, the rest are unaffected.
    public func read(_ nodes: [NodeId]) async throws -> [DataValue] {
        try await read(nodes.map { ReadValueId(nodeId: $0) })
    }

    /// Reads any attributes.
    public func read(_ items: [ReadValueId], timestamps: TimestampsToReturn = .both) async throws -> [DataValue] {
        guard !items.isEmpty else { return [] }
        var results: [DataValue] = []
        results.reserveCapacity(items.count)
        var start = 0
        while start < items.count {
            let slice = Array(items[start..<min(items.count, start + max(1, options.maxNodesPerRead))])
            var request = ReadRequest(nodesToRead: slice)
            request.timestampsToReturn = timestamps
            let response = try await call(request, as: ReadResponse.self)
            guard response.results.count == slice.count else { throw StatusCode.badUnexpectedError }
            results += response.results
            start += slice.count
        }
        return results
    }

    /// Writes values (no timestamps, as some servers refuse them); one status per item.
    public func write(_ values: [(NodeId, Variant)]) async throws -> [StatusCode] {
        try await write(values.map { WriteValue(nodeId: $0.0, value: DataValue($0.1)) })
    }

    public func write(_ values: [WriteValue]) async throws -> [StatusCode] {
        guard !values.isEmpty else { return [] }
        let response = try await call(WriteRequest(nodesToWrite: values), as: WriteResponse.self)
        return response.results
    }

    /// Browses forward hierarchical references of `node`, following continuation points.
    public func browse(_ node: NodeId, referenceType: NodeId = WellKnown.hierarchicalReferences,
                       direction: BrowseDirection = .forward, maxReferencesPerNode: UInt32 = 0) async throws -> [ReferenceDescription] {
        var description = BrowseDescription(nodeId: node)
        description.referenceTypeId = referenceType
        description.browseDirection = direction
        var request = BrowseRequest(nodesToBrowse: [description])
        request.requestedMaxReferencesPerNode = maxReferencesPerNode
        let response = try await call(request, as: BrowseResponse.self)
        guard var result = response.results.first else { throw StatusCode.badUnexpectedError }
        if result.statusCode.isBad { throw result.statusCode }
        var references = result.references
        var rounds = 0
        while let point = result.continuationPoint, !point.isEmpty, rounds < 10_000 {
            rounds += 1
            let next = try await call(BrowseNextRequest(continuationPoints: [point]), as: BrowseNextResponse.self)
            guard let nextResult = next.results.first else { throw StatusCode.badUnexpectedError }
            if nextResult.statusCode.isBad { throw nextResult.statusCode }
            references += nextResult.references
            result = nextResult
        }
        return references
    }

    /// The server's endpoints (over this client's channel).
    public func getEndpoints() async throws -> [EndpointDescription] {
        try await call(GetEndpointsRequest(endpointUrl: options.endpointURL), as: GetEndpointsResponse.self).endpoints
    }

    /// Asks a server for its endpoints without creating a session.
    public static func getEndpoints(_ endpointURL: String, timeoutMs: Int = 3000) async throws -> [EndpointDescription] {
        guard let endpoint = EndpointURL(endpointURL) else { throw ClientError.badEndpointURL(endpointURL) }
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try discoverEndpoints(endpoint, url: endpointURL, timeoutMs: timeoutMs) })
            }
            thread.name = "opcua-discovery"
            thread.start()
        }
    }

    static func discoverEndpoints(_ endpoint: EndpointURL, url: String, timeoutMs: Int) throws -> [EndpointDescription] {
        let fd = try Socket.connect(host: endpoint.host, port: endpoint.port, timeoutMs: timeoutMs)
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: timeoutMs)
        var channel = ClientSecureChannel(endpointUrl: url)
        var buffer = [UInt8](repeating: 0, count: 65536)
        var actions = channel.start()
        var requestId: UInt32 = 0
        let deadline = Monotonic.nanoseconds() + UInt64(timeoutMs) * 1_000_000
        while Monotonic.nanoseconds() < deadline {
            for action in actions {
                switch action {
                case .send(let bytes):
                    try bytes.withUnsafeBytes { try Socket.writeAll(fd, $0, context: "opcua \(endpoint)") }
                case .opened:
                    requestId = channel.makeRequestId()
                    for case .send(let bytes) in try channel.send(GetEndpointsRequest(endpointUrl: url), requestId: requestId) {
                        try bytes.withUnsafeBytes { try Socket.writeAll(fd, $0, context: "opcua \(endpoint)") }
                    }
                case .message(let id, let body) where id == requestId:
                    let response = try decodeServiceResponse(body, as: GetEndpointsResponse.self)
                    for case .send(let bytes) in channel.close() {
                        try? bytes.withUnsafeBytes { try Socket.writeAll(fd, $0) }
                    }
                    return response.endpoints
                case .closed(let status, let reason):
                    throw ClientError.connectionLost("\(status): \(reason)")
                default:
                    break
                }
            }
            let count = try buffer.withUnsafeMutableBytes { try Socket.read(fd, into: $0, context: "opcua \(endpoint)") }
            if count == 0 { throw ClientError.connectionLost("closed by server") }
            actions = channel.receive(buffer[0..<count], nowNs: Monotonic.nanoseconds())
        }
        throw ClientError.timeout
    }

    // MARK: - Subscriptions

    /// Creates a subscription with one monitored item per entry; `handler` gets (client handle = index, value).
    /// The subscription is recreated after every reconnect (its handler then receives fresh initial values).
    /// Throws ``ClientError/notConnected`` while the connection is down.
    /// `published`, when given, is called after the changes of each publish response went to `handler`
    /// (on the same thread): a consumer that gathers one response's changes flushes them there, with no timer.
    public func subscribe(items: [MonitoredItemSpec], publishingIntervalMs: Double,
                          handler: @escaping DataChangeHandler,
                          published: (@Sendable () -> Void)? = nil) async throws -> SubscriptionResult {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = lock.withLock { () -> Bool in
                guard threadRunning, !stopRequested, currentState == .connected else { return false }
                let local = LocalSubscription(id: nextSubscriptionId, items: items, publishingIntervalMs: publishingIntervalMs, handler: handler,
                                              published: published)
                nextSubscriptionId += 1
                local.created = { continuation.resume(with: $0) }
                subscriptions[local.id] = local
                subscriptionsToCreate.append(local)
                return true
            }
            if accepted { wake() } else { continuation.resume(throwing: ClientError.notConnected) }
        }
    }

    /// Convenience form: `(node, samplingMs)` pairs.
    public func subscribe(items: [(NodeId, Double)], publishingMs: Double,
                          handler: @escaping DataChangeHandler) async throws -> SubscriptionResult {
        try await subscribe(items: items.map { MonitoredItemSpec($0.0, samplingIntervalMs: $0.1) },
                            publishingIntervalMs: publishingMs, handler: handler)
    }

    /// Deletes a subscription on the server and forgets it.
    public func unsubscribe(_ handle: SubscriptionHandle) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let accepted = lock.withLock { () -> Bool in
                guard threadRunning, let local = subscriptions.removeValue(forKey: handle.id) else { return false }
                local.deleted = true
                subscriptionsToDelete.append((local, { continuation.resume(with: $0) }))
                return true
            }
            if accepted { wake() } else { continuation.resume() }
        }
    }

    // MARK: - Sending (any thread)

    /// Frames and sends one encoded request and registers its waiter, all under the lock, without blocking:
    /// what the socket does not take at once waits in `outbox` for the I/O thread. Returns the error instead
    /// when it was not sent (the waiter is then not registered and must be completed by the caller).
    /// `generation` nil: sent by the I/O thread itself while it sets the session up.
    func submit(_ message: [UInt8], requestId: UInt32, generation: UInt64?, timeoutMs: Int, waiter: Waiter) -> (any Error)? {
        var needsFlush = false
        let failure: (any Error)? = lock.withLock {
            guard fd >= 0 else { return ClientError.notConnected }
            if let generation, generation != self.generation || !sessionReady { return ClientError.notConnected }
            do {
                let chunks = try channel.frame(message, requestId: requestId)
                let deadline: UInt64
                switch waiter {
                case .task, .expiring: deadline = Monotonic.nanoseconds() + UInt64(max(timeoutMs, 0)) * 1_000_000
                case .callback, .ioThread: deadline = .max
                }
                pending[requestId] = Pending(deadlineNs: deadline, waiter: waiter)
                do {
                    for chunk in chunks { needsFlush = try writeLocked(chunk) }
                } catch {
                    pending[requestId] = nil
                    throw error
                }
                return nil
            } catch {
                return error
            }
        }
        // The I/O thread flushes what waits, and notices a failed send at once.
        if needsFlush || failure.map({ if case ClientError.connectionLost = $0 { true } else { false } }) == true { wake() }
        return failure
    }

    /// Under `lock`: writes `bytes` now without blocking, or queues them behind bytes already waiting.
    /// Returns true when the I/O thread must be woken to flush `outbox`.
    func writeLocked(_ bytes: [UInt8]) throws -> Bool {
        guard outbox.isEmpty, !corked else {
            outbox.append(contentsOf: bytes)
            // While corked, the I/O thread writes the outbox itself once its tasks have run.
            return !corked
        }
        let written = bytes.withUnsafeBytes { raw in
            Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
        }
        if written == bytes.count { return false }
        if written < 0 {
            let code = errno
            guard code == EAGAIN || code == EWOULDBLOCK || code == EINTR else {
                throw ClientError.connectionLost("send: \(String(cString: strerror(code)))")
            }
            outbox.append(contentsOf: bytes)
        } else {
            outbox.append(contentsOf: bytes[written...])
        }
        return true
    }

    /// Under `lock`: writes what `outbox` holds as far as the socket takes it.
    func flushLocked() throws {
        guard !outbox.isEmpty, fd >= 0 else { return }
        let written = outbox.withUnsafeBytes { raw in
            Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
        }
        if written < 0 {
            let code = errno
            guard code == EAGAIN || code == EWOULDBLOCK || code == EINTR else {
                throw ClientError.connectionLost("send: \(String(cString: strerror(code)))")
            }
            return
        }
        outbox.removeFirst(written)
    }

    /// Under `lock`.
    func makeHeaderLocked(timeoutMs: Int) -> RequestHeader {
        requestHandle = requestHandle == UInt32.max ? 1 : requestHandle + 1
        var header = RequestHeader()
        header.authenticationToken = authenticationToken
        header.requestHandle = requestHandle
        header.timeoutHint = UInt32(clamping: timeoutMs)
        return header
    }
}
