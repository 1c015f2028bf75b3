import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// An error of the OPC UA client.
public enum ClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case badEndpointURL(String)
    case notConnected
    case timeout
    case closed
    case connectionLost(String)
    case noSuitableEndpoint(String)

    public var description: String {
        switch self {
        case .badEndpointURL(let url): "bad endpoint URL \(url)"
        case .notConnected: "not connected"
        case .timeout: "request timed out"
        case .closed: "client closed"
        case .connectionLost(let reason): "connection lost: \(reason)"
        case .noSuitableEndpoint(let reason): "no suitable endpoint: \(reason)"
        }
    }
}

/// How the client authenticates its session.
public enum UserIdentity: Sendable, Equatable {
    case anonymous
    case userName(String, password: String)
}

/// The connection state the client reports to its observer.
public enum ConnectionState: Sendable, Equatable {
    /// Opening the channel and session (first time or after a loss).
    case connecting
    /// Session active; subscriptions (re)created.
    case connected
    /// The connection is down; values from it are stale. The client retries if `autoReconnect`.
    case disconnected(String)
    /// `close()` was called.
    case closed
}

/// One item to monitor: a node and its sampling interval in milliseconds.
public struct MonitoredItemSpec: Sendable, Equatable {
    public var nodeId: NodeId
    public var samplingIntervalMs: Double
    public var attribute: AttributeId
    public var queueSize: UInt32

    public init(_ nodeId: NodeId, samplingIntervalMs: Double, attribute: AttributeId = .value, queueSize: UInt32 = 1) {
        self.nodeId = nodeId
        self.samplingIntervalMs = samplingIntervalMs
        self.attribute = attribute
        self.queueSize = queueSize
    }
}

/// A subscription made by ``OPCUAClient/subscribe(items:publishingIntervalMs:handler:)``.
public struct SubscriptionHandle: Sendable, Hashable {
    /// The client's own id for it; stable across reconnects.
    public let id: Int
}

/// Per-item outcome of a subscribe: item `i` has client handle `UInt32(i)`.
public struct SubscriptionResult: Sendable {
    public let handle: SubscriptionHandle
    /// The server's status for each item, in the order given (e.g. BadNodeIdUnknown for a bad node).
    public let itemStatuses: [StatusCode]
    public let revisedPublishingIntervalMs: Double
}

/// Called with (client handle, value) for every data change; runs on the client's I/O thread, so keep it short.
public typealias DataChangeHandler = @Sendable (UInt32, DataValue) -> Void

/// An OPC UA client over UA-TCP with SecurityPolicy None.
///
/// All socket I/O runs on one dedicated thread per client; the async methods enqueue requests to it and
/// resume when the response arrives. After a lost connection it reconnects (when `autoReconnect`),
/// creates a new session and recreates every subscription with the same client handles.
public final class OPCUAClient: @unchecked Sendable {
    public struct Options: Sendable {
        public var endpointURL: String
        public var identity: UserIdentity = .anonymous
        public var requestTimeoutMs: Int = 5000
        public var connectTimeoutMs: Int = 3000
        public var sessionTimeoutMs: Double = 60_000
        public var channelLifetimeMs: UInt32 = 600_000
        public var autoReconnect = true
        public var maxReconnectDelayMs: Int = 2000
        /// Reads of more nodes are split into requests of at most this many.
        public var maxNodesPerRead = 5000
        /// With subscriptions active, the connection counts as lost after this long without any message
        /// from the server (keep-alives arrive at least every ~5 s).
        public var silenceTimeoutMs = 15_000
        public var applicationName = "LineMES OPC UA client"
        public var applicationUri = "urn:linemes:opcua:client"
        public var logger = Logger(label: "opcua.client", level: .warning)

        public init(endpointURL: String) { self.endpointURL = endpointURL }
    }

    /// Who waits for a response: an awaiting task, a callback on the I/O thread (Publish), or the I/O thread itself.
    private enum Waiter {
        case task(UnsafeContinuation<[UInt8], any Error>)
        case callback(@Sendable (Result<[UInt8], any Error>) -> Void)
        case ioThread

        /// Called exactly once per request, after its entry left `pending`, never under `lock`.
        func complete(_ result: Result<[UInt8], any Error>) {
            switch self {
            case .task(let continuation): continuation.resume(with: result)
            case .callback(let callback): callback(result)
            case .ioThread: break
            }
        }
    }

    private struct Pending {
        var deadlineNs: UInt64
        var waiter: Waiter
    }

    private final class LocalSubscription: @unchecked Sendable {
        let id: Int
        let items: [MonitoredItemSpec]
        let publishingIntervalMs: Double
        let handler: DataChangeHandler
        var serverId: UInt32?
        var itemStatuses: [StatusCode] = []
        var revisedIntervalMs: Double = 0
        var keepAliveMs: Double = 0
        var created: (@Sendable (Result<SubscriptionResult, any Error>) -> Void)?
        var deleted = false

        init(id: Int, items: [MonitoredItemSpec], publishingIntervalMs: Double, handler: @escaping DataChangeHandler) {
            self.id = id
            self.items = items
            self.publishingIntervalMs = publishingIntervalMs
            self.handler = handler
        }
    }

    public let options: Options
    /// Runs tasks that prefer it on this client's I/O thread, so a response resumes its task without a
    /// thread hop (as an event loop would); see ``ClientTaskExecutor``. Such tasks must not block.
    /// Other tasks work as well, from any executor.
    public let taskExecutor: ClientTaskExecutor
    private let endpoint: EndpointURL
    /// Error context of socket calls (built once, not per call).
    private let ioContext: String
    private let lock = NSLock()
    // Shared state (under lock).
    private var subscriptionsToCreate: [LocalSubscription] = []
    private var subscriptionsToDelete: [(LocalSubscription, @Sendable (Result<Void, any Error>) -> Void)] = []
    private var subscriptions: [Int: LocalSubscription] = [:]
    private var nextSubscriptionId = 1
    private var stateHandler: (@Sendable (ConnectionState) -> Void)?
    private var currentState: ConnectionState = .disconnected("not started")
    private var stopRequested = false
    private var reconnectRequested = false
    private var renewals = 0
    private var threadRunning = false
    private var firstConnect: (@Sendable (Result<Void, any Error>) -> Void)?
    private var threadDone = DispatchSemaphore(value: 0)

    // The connection (under lock): any task sends its request itself, the I/O thread receives.
    /// The socket; only the I/O thread opens and closes it (so it may read `fd` without the lock).
    private var fd: Int32 = -1
    private var channel: ClientSecureChannel
    /// Requests sent and not yet answered, by request id.
    private var pending: [UInt32: Pending] = [:]
    /// Bytes a non-blocking send could not write yet; the I/O thread flushes them, and later sends queue behind them.
    private var outbox: [UInt8] = []
    /// True once the session is active on the current socket; requests from tasks are only sent then.
    private var sessionReady = false
    /// True while the I/O thread runs tasks: their requests collect in `outbox` and leave in one write after.
    private var corked = false
    private var authenticationToken: NodeId = .null
    private var requestHandle: UInt32 = 0
    /// Counts sockets opened; a request prepared for one connection is not sent on the next.
    private var generation: UInt64 = 0

    // I/O thread state (only touched by the I/O thread).
    private var publishOutstanding = 0
    private var maxPublishOutstanding = 2
    private var acknowledgements: [SubscriptionAcknowledgement] = []
    private var internalResults: [UInt32: [UInt8]] = [:]
    private var subscriptionsByServerId: [UInt32: LocalSubscription] = [:]
    private var readBuffer = [UInt8](repeating: 0, count: 65536)
    private var lastReceiveNs: UInt64 = 0
    private var nextTimeoutCheckNs: UInt64 = 0
    private var completions: [(Waiter, Result<[UInt8], any Error>)] = []
    private var pollers = (pollfd(), pollfd())

    public init(options: Options) throws {
        guard let endpoint = EndpointURL(options.endpointURL) else { throw ClientError.badEndpointURL(options.endpointURL) }
        self.options = options
        self.endpoint = endpoint
        ioContext = "opcua \(endpoint)"
        channel = ClientSecureChannel(endpointUrl: options.endpointURL)
        taskExecutor = try ClientTaskExecutor()
    }

    public convenience init(endpointURL: String) throws {
        try self.init(options: Options(endpointURL: endpointURL))
    }

    /// The latest connection state.
    public var state: ConnectionState { lock.withLock { currentState } }

    /// How many times the secure channel's token was renewed on a live channel (diagnostics).
    public var tokenRenewals: Int { lock.withLock { renewals } }

    /// Sets the observer of connection state changes (called on the I/O thread).
    public func onStateChange(_ handler: @escaping @Sendable (ConnectionState) -> Void) {
        lock.withLock { stateHandler = handler }
    }

    // MARK: - Lifecycle

    /// Connects, opens the channel and activates a session; throws if the first attempt fails.
    public func connect() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let started: Bool = lock.withLock {
                guard !threadRunning else { return false }
                threadRunning = true
                stopRequested = false
                firstConnect = { continuation.resume(with: $0) }
                threadDone = DispatchSemaphore(value: 0)
                return true
            }
            guard started else {
                continuation.resume(throwing: ClientError.notConnected)
                return
            }
            let thread = Thread { [self] in threadMain() }
            thread.name = "opcua-client \(endpoint)"
            thread.start()
        }
    }

    /// Connects with the given options in one step.
    /// `onStateChange` is installed before connecting, so it sees every transition.
    public static func connect(_ endpointURL: String, timeoutMs: Int = 3000, identity: UserIdentity = .anonymous,
                               autoReconnect: Bool = true,
                               onStateChange: (@Sendable (ConnectionState) -> Void)? = nil) async throws -> OPCUAClient {
        var options = Options(endpointURL: endpointURL)
        options.connectTimeoutMs = timeoutMs
        options.requestTimeoutMs = max(timeoutMs, 1000)
        options.identity = identity
        options.autoReconnect = autoReconnect
        let client = try OPCUAClient(options: options)
        if let onStateChange { client.onStateChange(onStateChange) }
        try await client.connect()
        return client
    }

    /// Drops the current connection (if any) and opens a new channel and session, recreating subscriptions.
    /// Returns once the new session is active or the attempt failed.
    public func reconnect() async throws {
        let running = lock.withLock { () -> Bool in
            reconnectRequested = true
            return threadRunning
        }
        if !running {
            try await connect()
            return
        }
        wake()
        // Wait for the connected state (or failure) after the forced drop.
        let deadline = Monotonic.nanoseconds() + UInt64(options.connectTimeoutMs + options.maxReconnectDelayMs + 1000) * 1_000_000
        try await Task.sleep(nanoseconds: 20_000_000)
        while Monotonic.nanoseconds() < deadline {
            let (current, requested) = lock.withLock { (currentState, reconnectRequested) }
            if !requested, current == .connected { return }
            if current == .closed { throw ClientError.closed }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        throw ClientError.timeout
    }

    /// Closes the session and the channel and stops the I/O thread. Idempotent.
    public func close() async {
        let running = lock.withLock { () -> Bool in
            stopRequested = true
            return threadRunning
        }
        guard running else { return }
        wake()
        let done = lock.withLock { threadDone }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                done.wait()
                continuation.resume()
            }
        }
    }

    // MARK: - Services

    /// Sends one request and returns its decoded response (ServiceFaults and bad service results throw).
    /// Throws ``ClientError/notConnected`` at once while the connection is down.
    public func call<Request: ServiceRequest, Response: ServiceResponse>(_ request: Request, as type: Response.Type,
                                                                         timeoutMs: Int? = nil) async throws -> Response {
        let timeout = timeoutMs ?? options.requestTimeoutMs
        // While disconnected, fail at once: the caller marks its values stale and tries again later.
        let ticket: (generation: UInt64, header: RequestHeader, requestId: UInt32)? = lock.withLock {
            guard sessionReady, !stopRequested, currentState == .connected else { return nil }
            return (generation, makeHeaderLocked(timeoutMs: timeout), channel.makeRequestId())
        }
        guard let ticket else { throw ClientError.notConnected }
        var request = request
        request.requestHeader = ticket.header
        // Encoded outside the lock; framed and sent by this task under it, without waking the I/O thread.
        let message = encodeServiceMessage(request, encodingId: Request.encodingId)
        let bytes: [UInt8] = try await withUnsafeThrowingContinuation { continuation in
            if let failure = submit(message, requestId: ticket.requestId, generation: ticket.generation,
                                    timeoutMs: timeout, waiter: .task(continuation)) {
                continuation.resume(throwing: failure)
            }
        }
        return try decodeServiceResponse(bytes, as: Response.self)
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

    private static func discoverEndpoints(_ endpoint: EndpointURL, url: String, timeoutMs: Int) throws -> [EndpointDescription] {
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
    public func subscribe(items: [MonitoredItemSpec], publishingIntervalMs: Double,
                          handler: @escaping DataChangeHandler) async throws -> SubscriptionResult {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = lock.withLock { () -> Bool in
                guard threadRunning, !stopRequested, currentState == .connected else { return false }
                let local = LocalSubscription(id: nextSubscriptionId, items: items, publishingIntervalMs: publishingIntervalMs, handler: handler)
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
    private func submit(_ message: [UInt8], requestId: UInt32, generation: UInt64?, timeoutMs: Int, waiter: Waiter) -> (any Error)? {
        var needsFlush = false
        let failure: (any Error)? = lock.withLock {
            guard fd >= 0 else { return ClientError.notConnected }
            if let generation, generation != self.generation || !sessionReady { return ClientError.notConnected }
            do {
                let chunks = try channel.frame(message, requestId: requestId)
                let deadline: UInt64
                if case .task = waiter { deadline = Monotonic.nanoseconds() + UInt64(max(timeoutMs, 0)) * 1_000_000 } else { deadline = .max }
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
    private func writeLocked(_ bytes: [UInt8]) throws -> Bool {
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
    private func flushLocked() throws {
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
    private func makeHeaderLocked(timeoutMs: Int) -> RequestHeader {
        requestHandle = requestHandle == UInt32.max ? 1 : requestHandle + 1
        var header = RequestHeader()
        header.authenticationToken = authenticationToken
        header.requestHandle = requestHandle
        header.timeoutHint = UInt32(clamping: timeoutMs)
        return header
    }

    // MARK: - I/O thread

    private func wake() { taskExecutor.wake() }

    private func setState(_ state: ConnectionState) {
        let handler: (@Sendable (ConnectionState) -> Void)? = lock.withLock {
            guard currentState != state else { return nil }
            currentState = state
            return stateHandler
        }
        handler?(state)
    }

    private func threadMain() {
        taskExecutor.attach()
        var machine = ClientConnectionMachine(autoReconnect: options.autoReconnect, initialDelayMs: 100,
                                              maxDelayMs: options.maxReconnectDelayMs)
        var actions = machine.start()
        var lastError: (any Error)?
        var failures = 0
        let logger = options.logger.with("endpoint", options.endpointURL)
        running: while true {
            var shouldConnect = false
            for action in actions {
                switch action {
                case .notify(let state):
                    setState(state)
                case .completeFirstConnect(let failure):
                    let first = lock.withLock { () -> (@Sendable (Result<Void, any Error>) -> Void)? in
                        defer { firstConnect = nil }
                        return firstConnect
                    }
                    first?(failure == nil ? .success(()) : .failure(lastError ?? ClientError.connectionLost(failure ?? "")))
                case .connect:
                    shouldConnect = true
                case .stop:
                    break running
                }
            }
            actions = []
            if lock.withLock({ stopRequested }) {
                actions = machine.close()
                continue
            }
            if shouldConnect {
                do {
                    lock.withLock { reconnectRequested = false }
                    try establish()
                    failures = 0
                    for case .notify(let state) in machine.connectSucceeded() { setState(state) }
                    let first = lock.withLock { () -> (@Sendable (Result<Void, any Error>) -> Void)? in
                        defer { firstConnect = nil }
                        return firstConnect
                    }
                    first?(.success(()))
                    try runLoop()
                    actions = machine.close()
                } catch {
                    lastError = error
                    let reason = "\(error)"
                    failures += 1
                    // The first failure in a row is worth a warning; the retries that follow are not.
                    if failures == 1 { logger.warning("connection failed: \(reason)") } else { logger.debug("reconnect attempt \(failures) failed: \(reason)") }
                    // Every request in flight fails now with the reason, rather than waiting for its timeout.
                    dropConnection(error: ClientError.connectionLost(reason))
                    actions = machine.connectionFailed(reason, nowNs: Monotonic.nanoseconds())
                    if lock.withLock({ reconnectRequested }) { actions += machine.reconnectRequested() }
                }
                continue
            }
            if case .waiting(let until, _) = machine.state {
                let now = Monotonic.nanoseconds()
                let timeoutMs = until == .max ? -1 : (until <= now ? 0 : Int((until - now) / 1_000_000) + 1)
                waitForWake(timeoutMs: timeoutMs, until: { self.stopRequested || self.reconnectRequested })
                if lock.withLock({ reconnectRequested }) {
                    actions = machine.reconnectRequested()
                } else {
                    actions = machine.tick(nowNs: Monotonic.nanoseconds())
                }
            }
        }
        if fd >= 0 { gracefulClose() }
        dropConnection(error: ClientError.closed)
        let (done, toDelete) = lock.withLock { () -> (DispatchSemaphore, [(LocalSubscription, @Sendable (Result<Void, any Error>) -> Void)]) in
            threadRunning = false
            let result = (threadDone, subscriptionsToDelete)
            subscriptionsToDelete = []
            let creating = subscriptionsToCreate
            subscriptionsToCreate = []
            for local in creating { local.created?(.failure(ClientError.closed)); local.created = nil }
            return result
        }
        for (_, done) in toDelete { done(.success(())) }
        try? runTasks()
        taskExecutor.detach()
        done.signal()
    }

    private func waitForWake(timeoutMs: Int, until condition: () -> Bool) {
        let deadline = timeoutMs < 0 ? UInt64.max : Monotonic.nanoseconds() + UInt64(timeoutMs) * 1_000_000
        while !lock.withLock(condition) {
            try? runTasks()
            let now = Monotonic.nanoseconds()
            if now >= deadline { return }
            var poller = pollfd(fd: taskExecutor.wakeRead, events: Int16(POLLIN), revents: 0)
            let wait = taskExecutor.hasJobs ? 0 : deadline == .max ? 1000 : Int32(min(1000, (deadline - now) / 1_000_000 + 1))
            _ = Glibc.poll(&poller, 1, wait)
            drainWake()
        }
    }

    private func drainWake() { taskExecutor.drainWake() }

    /// Runs the tasks waiting for the I/O thread; the requests they send leave together in one write.
    private func runTasks() throws {
        guard taskExecutor.hasJobs else { return }
        lock.withLock { corked = true }
        taskExecutor.runJobs()
        try lock.withLock {
            corked = false
            try flushLocked()
        }
    }

    /// Closes the socket and fails every request in flight with `error`.
    private func dropConnection(error: any Error) {
        let failed: [Pending] = lock.withLock {
            // Closed under the lock, so no task writes to a descriptor number the system hands out again.
            if fd >= 0 {
                Socket.close(fd)
                fd = -1
            }
            sessionReady = false
            outbox = []
            let entries = Array(pending.values)
            pending = [:]
            return entries
        }
        publishOutstanding = 0
        acknowledgements = []
        internalResults = [:]
        subscriptionsByServerId = [:]
        for entry in failed { entry.waiter.complete(.failure(error)) }
    }

    private func gracefulClose() {
        let hasSession = lock.withLock { !authenticationToken.isNull && sessionReady }
        if hasSession {
            _ = try? transact(CloseSessionRequest(), timeoutMs: 1000)
        }
        var opened = true
        try? step(opened: &opened) { channel.close() }
        _ = try? lock.withLock { try flushLocked() }
    }

    /// Opens socket, channel and session; recreates subscriptions. Runs on the I/O thread.
    private func establish() throws {
        dropConnection(error: ClientError.connectionLost("reconnecting"))
        let socket = try Socket.connect(host: endpoint.host, port: endpoint.port, timeoutMs: options.connectTimeoutMs)
        lock.withLock {
            authenticationToken = .null
            channel = ClientSecureChannel(endpointUrl: options.endpointURL, requestedLifetimeMs: options.channelLifetimeMs)
            fd = socket
            generation &+= 1
        }
        var opened = false
        try step(opened: &opened) { channel.start() }
        let deadline = Monotonic.nanoseconds() + UInt64(options.connectTimeoutMs) * 1_000_000
        while !opened {
            guard Monotonic.nanoseconds() < deadline else { throw ClientError.timeout }
            try pump(timeoutMs: 100, opened: &opened)
        }
        let description = ApplicationDescription(applicationUri: options.applicationUri, productUri: options.applicationUri,
                                                 applicationName: LocalizedText(options.applicationName), applicationType: .client)
        var create = CreateSessionRequest(clientDescription: description, endpointUrl: options.endpointURL,
                                          sessionName: "\(options.applicationName) \(UInt32.random(in: 0...UInt32.max))")
        create.requestedSessionTimeout = options.sessionTimeoutMs
        create.clientNonce = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let session = try transact(create, as: CreateSessionResponse.self, timeoutMs: options.connectTimeoutMs)
        lock.withLock { authenticationToken = session.authenticationToken }
        let activate = ActivateSessionRequest(userIdentityToken: try identityToken(from: session.serverEndpoints))
        _ = try transact(activate, as: ActivateSessionResponse.self, timeoutMs: options.connectTimeoutMs)
        // Recreate every known subscription; fresh ones are created by the run loop.
        let known = lock.withLock { () -> [LocalSubscription] in
            let creating = Set(subscriptionsToCreate.map(\.id))
            return subscriptions.values.filter { !creating.contains($0.id) }.sorted { $0.id < $1.id }
        }
        for local in known { try createOnServer(local) }
        lock.withLock { sessionReady = true }
    }

    private func identityToken(from endpoints: [EndpointDescription]) throws -> ExtensionObject {
        let candidates = endpoints.filter { $0.securityPolicyUri == securityPolicyNoneUri || $0.securityMode == .none }
        let policies = (candidates.isEmpty ? endpoints : candidates).flatMap(\.userIdentityTokens)
        switch options.identity {
        case .anonymous:
            let policy = policies.first { $0.tokenType == .anonymous }
            if policy == nil && !endpoints.isEmpty { throw ClientError.noSuitableEndpoint("server offers no anonymous login") }
            return ExtensionObject(encodingId: AnonymousIdentityToken.encodingId, AnonymousIdentityToken(policyId: policy?.policyId ?? "anonymous"))
        case .userName(let user, let password):
            guard let policy = policies.first(where: { $0.tokenType == .userName }) else {
                throw ClientError.noSuitableEndpoint("server offers no user name login")
            }
            return ExtensionObject(encodingId: UserNameIdentityToken.encodingId,
                                   UserNameIdentityToken(policyId: policy.policyId, userName: user, password: Array(password.utf8)))
        }
    }

    private func createOnServer(_ local: LocalSubscription) throws {
        var request = CreateSubscriptionRequest(publishingInterval: local.publishingIntervalMs)
        request.requestedMaxKeepAliveCount = UInt32(max(3, min(100, 5000 / max(local.publishingIntervalMs, 1))))
        request.requestedLifetimeCount = request.requestedMaxKeepAliveCount * 6
        let response = try transact(request, as: CreateSubscriptionResponse.self, timeoutMs: options.requestTimeoutMs)
        local.serverId = response.subscriptionId
        local.revisedIntervalMs = response.revisedPublishingInterval
        local.keepAliveMs = response.revisedPublishingInterval * Double(max(1, response.revisedMaxKeepAliveCount))
        subscriptionsByServerId[response.subscriptionId] = local
        var statuses: [StatusCode] = []
        let batch = 1000
        var start = 0
        while start < local.items.count {
            let slice = local.items[start..<min(local.items.count, start + batch)]
            let creates = slice.enumerated().map { offset, item in
                MonitoredItemCreateRequest(itemToMonitor: ReadValueId(nodeId: item.nodeId, attributeId: item.attribute),
                                           requestedParameters: MonitoringParameters(clientHandle: UInt32(start + offset),
                                                                                     samplingInterval: item.samplingIntervalMs,
                                                                                     queueSize: item.queueSize))
            }
            let items = try transact(CreateMonitoredItemsRequest(subscriptionId: response.subscriptionId, itemsToCreate: creates),
                                     as: CreateMonitoredItemsResponse.self, timeoutMs: options.requestTimeoutMs)
            statuses += items.results.map(\.statusCode)
            start += batch
        }
        local.itemStatuses = statuses
        if let created = local.created {
            local.created = nil
            created(.success(SubscriptionResult(handle: SubscriptionHandle(id: local.id), itemStatuses: statuses,
                                                revisedPublishingIntervalMs: response.revisedPublishingInterval)))
        }
    }

    private func transact<Request: ServiceRequest, Response: ServiceResponse>(_ request: Request, as type: Response.Type,
                                                                              timeoutMs: Int) throws -> Response {
        try decodeServiceResponse(try transact(request, timeoutMs: timeoutMs), as: Response.self)
    }

    /// Sends a request from the I/O thread and pumps the socket until its response arrives, dispatching others.
    private func transact<Request: ServiceRequest>(_ request: Request, timeoutMs: Int) throws -> [UInt8] {
        var request = request
        let requestId: UInt32 = lock.withLock {
            request.requestHeader = makeHeaderLocked(timeoutMs: timeoutMs)
            return channel.makeRequestId()
        }
        let message = encodeServiceMessage(request, encodingId: Request.encodingId)
        if let failure = submit(message, requestId: requestId, generation: nil, timeoutMs: timeoutMs, waiter: .ioThread) { throw failure }
        var opened = true
        let deadline = Monotonic.nanoseconds() + UInt64(timeoutMs) * 1_000_000
        while true {
            if let result = internalResults.removeValue(forKey: requestId) { return result }
            guard Monotonic.nanoseconds() < deadline else {
                lock.withLock { _ = pending.removeValue(forKey: requestId) }
                throw ClientError.timeout
            }
            try pump(timeoutMs: 50, opened: &opened)
        }
    }

    /// Runs one step of the channel under the lock, sends what it asks for, and hands each arrived response
    /// to its waiter after releasing the lock. A closed channel throws (after the responses are handed over).
    private func step(opened: inout Bool, _ body: () throws -> [ChannelAction]) throws {
        var failure: (any Error)?
        var openedNow = false
        var needsFlush = false
        lock.lock()
        do {
            for action in try body() {
                switch action {
                case .send(let bytes):
                    if try writeLocked(bytes) { needsFlush = true }
                case .opened:
                    openedNow = true
                case .message(let requestId, let message):
                    guard let entry = pending.removeValue(forKey: requestId) else {
                        options.logger.debug("response for unknown request id \(requestId)")
                        continue
                    }
                    if case .ioThread = entry.waiter {
                        internalResults[requestId] = message
                    } else {
                        completions.append((entry.waiter, .success(message)))
                    }
                case .closed(let status, let reason):
                    if failure == nil { failure = ClientError.connectionLost("\(status): \(reason)") }
                }
            }
        } catch {
            failure = failure ?? error
        }
        lock.unlock()
        _ = needsFlush // the next pump polls for POLLOUT while the outbox holds bytes
        if openedNow {
            if opened { lock.withLock { renewals += 1 } }
            opened = true
        }
        deliverCompletions()
        if let failure { throw failure }
    }

    /// Resumes waiters collected by `step` or the timeout sweep (I/O thread, outside the lock).
    private func deliverCompletions() {
        guard !completions.isEmpty else { return }
        var batch: [(Waiter, Result<[UInt8], any Error>)] = []
        swap(&batch, &completions)
        for (waiter, result) in batch { waiter.complete(result) }
        batch.removeAll(keepingCapacity: true)
        if completions.isEmpty { swap(&batch, &completions) }
    }

    /// Waits up to `timeoutMs` for socket data, room to send, or a wake-up, and feeds what arrived to the channel.
    private func pump(timeoutMs: Int32, opened: inout Bool) throws {
        try runTasks()
        let wantsWrite = lock.withLock { !outbox.isEmpty }
        pollers.0 = pollfd(fd: fd, events: Int16(POLLIN) | (wantsWrite ? Int16(POLLOUT) : 0), revents: 0)
        pollers.1 = pollfd(fd: taskExecutor.wakeRead, events: Int16(POLLIN), revents: 0)
        let wait = taskExecutor.hasJobs ? 0 : timeoutMs
        let ready = try withUnsafeMutableBytes(of: &pollers) { raw in
            try syscallOrThrow("poll", context: ioContext) {
                Glibc.poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, wait)
            }
        }
        if ready > 0 && pollers.1.revents != 0 { drainWake() }
        let socketEvents = ready > 0 ? pollers.0.revents : 0
        if socketEvents & Int16(POLLOUT) != 0 {
            try lock.withLock { try flushLocked() }
        }
        if socketEvents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
            let count = try readBuffer.withUnsafeMutableBytes { try Socket.read(fd, into: $0, context: ioContext) }
            if count == 0 { throw ClientError.connectionLost("closed by server") }
            lastReceiveNs = Monotonic.nanoseconds()
            try step(opened: &opened) { channel.receive(readBuffer[0..<count], nowNs: lastReceiveNs) }
        }
        let now = Monotonic.nanoseconds()
        try step(opened: &opened) { channel.tick(nowNs: now) }
        // Tasks resumed by these responses run now, and their next requests leave together.
        try runTasks()
    }

    private func pump(timeoutMs: Int, opened: inout Bool) throws {
        try pump(timeoutMs: Int32(timeoutMs), opened: &opened)
    }

    private func runLoop() throws {
        var opened = true
        lastReceiveNs = Monotonic.nanoseconds()
        while true {
            let (stop, forced, toCreate, toDelete) = lock.withLock {
                defer {
                    if !subscriptionsToCreate.isEmpty { subscriptionsToCreate = [] }
                    if !subscriptionsToDelete.isEmpty { subscriptionsToDelete = [] }
                }
                return (stopRequested, reconnectRequested, subscriptionsToCreate, subscriptionsToDelete)
            }
            if stop { return }
            if forced { throw ClientError.connectionLost("reconnect requested") }
            for local in toCreate {
                do { try createOnServer(local) } catch let error as ClientError {
                    lock.withLock { subscriptionsToCreate.insert(local, at: 0) }
                    throw error
                } catch {
                    lock.withLock { _ = subscriptions.removeValue(forKey: local.id) }
                    local.created?(.failure(error))
                    local.created = nil
                }
            }
            for (local, done) in toDelete {
                if let serverId = local.serverId {
                    subscriptionsByServerId[serverId] = nil
                    _ = try? transact(DeleteSubscriptionsRequest(subscriptionIds: [serverId]), timeoutMs: options.requestTimeoutMs)
                }
                done(.success(()))
            }
            try replenishPublish()
            let now = Monotonic.nanoseconds()
            if !subscriptionsByServerId.isEmpty {
                let keepAliveMs = subscriptionsByServerId.values.map(\.keepAliveMs).max() ?? 0
                let silenceMs = max(Double(options.silenceTimeoutMs), keepAliveMs * 3)
                if now > lastReceiveNs + UInt64(silenceMs * 1_000_000) {
                    throw ClientError.connectionLost("no message from the server for \(Int(silenceMs)) ms")
                }
            }
            // Request timeouts, swept every 20 ms (not per message: many requests may be in flight).
            if now >= nextTimeoutCheckNs {
                nextTimeoutCheckNs = now + 20_000_000
                lock.withLock {
                    guard pending.values.contains(where: { $0.deadlineNs < now }) else { return }
                    for (id, entry) in pending where entry.deadlineNs < now {
                        pending[id] = nil
                        completions.append((entry.waiter, .failure(ClientError.timeout)))
                    }
                }
                deliverCompletions()
            }
            try pump(timeoutMs: 100, opened: &opened)
        }
    }

    private func replenishPublish() throws {
        guard !subscriptionsByServerId.isEmpty else { return }
        while publishOutstanding < maxPublishOutstanding {
            var request = PublishRequest(acknowledgements: acknowledgements)
            acknowledgements = []
            let maxInterval = subscriptionsByServerId.values.map(\.revisedIntervalMs).max() ?? 1000
            let timeout = Int(max(60_000, maxInterval * 200))
            let requestId: UInt32 = lock.withLock {
                request.requestHeader = makeHeaderLocked(timeoutMs: timeout)
                return channel.makeRequestId()
            }
            publishOutstanding += 1
            let message = encodeServiceMessage(request, encodingId: PublishRequest.encodingId)
            if let failure = submit(message, requestId: requestId, generation: nil, timeoutMs: timeout,
                                    waiter: .callback({ [weak self] result in self?.handlePublish(result) })) {
                throw failure
            }
        }
    }

    /// Runs on the I/O thread (from `step`).
    private func handlePublish(_ result: Result<[UInt8], any Error>) {
        publishOutstanding = max(0, publishOutstanding - 1)
        guard case .success(let bytes) = result else { return }
        do {
            let response = try decodeServiceResponse(bytes, as: PublishResponse.self)
            let message = response.notificationMessage
            guard let local = subscriptionsByServerId[response.subscriptionId] else { return }
            if !message.notificationData.isEmpty {
                acknowledgements.append(SubscriptionAcknowledgement(subscriptionId: response.subscriptionId, sequenceNumber: message.sequenceNumber))
            }
            for data in message.notificationData where data.typeId == NodeId(DataChangeNotification.encodingId) {
                guard let change = try data.decodeBody(DataChangeNotification.self) else { continue }
                for item in change.monitoredItems where !local.deleted { local.handler(item.clientHandle, item.value) }
            }
        } catch let status as StatusCode {
            if status == .badTooManyPublishRequests { maxPublishOutstanding = max(1, maxPublishOutstanding - 1) }
            if status == .badSessionIdInvalid || status == .badSessionClosed || status == .badSubscriptionIdInvalid {
                lock.withLock { reconnectRequested = true }
            }
        } catch {
            options.logger.warning("bad publish response: \(error)")
        }
    }
}
