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

    private struct Pending {
        var deadlineNs: UInt64
        var completion: @Sendable (Result<[UInt8], any Error>) -> Void
    }

    private struct Command {
        var timeoutMs: Int
        var encode: @Sendable (inout ClientSecureChannel, RequestHeader, UInt32) throws -> [ChannelAction]
        var completion: @Sendable (Result<[UInt8], any Error>) -> Void
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
    private let endpoint: EndpointURL
    private let lock = NSLock()
    // Shared state (under lock).
    private var commands: [Command] = []
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
    private var wakeRead: Int32 = -1
    private var wakeWrite: Int32 = -1

    // I/O thread state (only touched by the I/O thread).
    private var fd: Int32 = -1
    private var channel: ClientSecureChannel
    private var pending: [UInt32: Pending] = [:]
    private var authenticationToken: NodeId = .null
    private var requestHandle: UInt32 = 0
    private var publishOutstanding = 0
    private var maxPublishOutstanding = 2
    private var acknowledgements: [SubscriptionAcknowledgement] = []
    private var waitingFor: UInt32?
    private var waitedResult: [UInt8]?
    private var subscriptionsByServerId: [UInt32: LocalSubscription] = [:]
    private var readBuffer = [UInt8](repeating: 0, count: 65536)
    private var lastReceiveNs: UInt64 = 0

    public init(options: Options) throws {
        guard let endpoint = EndpointURL(options.endpointURL) else { throw ClientError.badEndpointURL(options.endpointURL) }
        self.options = options
        self.endpoint = endpoint
        channel = ClientSecureChannel(endpointUrl: options.endpointURL)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError(call: "pipe", errno: errno) }
        for descriptor in fds {
            Socket.setNonBlocking(descriptor)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    public convenience init(endpointURL: String) throws {
        try self.init(options: Options(endpointURL: endpointURL))
    }

    deinit {
        Socket.close(wakeRead)
        Socket.close(wakeWrite)
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
        let bytes: [UInt8] = try await withCheckedThrowingContinuation { continuation in
            let command = Command(timeoutMs: timeoutMs ?? options.requestTimeoutMs, encode: { channel, header, requestId in
                var request = request
                request.requestHeader = header
                return try channel.send(request, requestId: requestId)
            }, completion: { continuation.resume(with: $0) })
            // While disconnected, fail at once: the caller marks its values stale and tries again later.
            let accepted = lock.withLock { () -> Bool in
                guard threadRunning, !stopRequested, currentState == .connected else { return false }
                commands.append(command)
                return true
            }
            if accepted { wake() } else { continuation.resume(throwing: ClientError.notConnected) }
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

    // MARK: - I/O thread

    private func wake() {
        var byte: UInt8 = 1
        _ = Glibc.write(wakeWrite, &byte, 1)
    }

    private func setState(_ state: ConnectionState) {
        let handler: (@Sendable (ConnectionState) -> Void)? = lock.withLock {
            guard currentState != state else { return nil }
            currentState = state
            return stateHandler
        }
        handler?(state)
    }

    private func threadMain() {
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
                    dropConnection(error: ClientError.connectionLost(reason))
                    // Requests queued after the drop would otherwise wait for the next session.
                    let queued = lock.withLock { () -> [Command] in
                        defer { commands = [] }
                        return commands
                    }
                    for command in queued { command.completion(.failure(ClientError.connectionLost(reason))) }
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
        let (done, leftovers, toDelete) = lock.withLock { () -> (DispatchSemaphore, [Command], [(LocalSubscription, @Sendable (Result<Void, any Error>) -> Void)]) in
            threadRunning = false
            let result = (threadDone, commands, subscriptionsToDelete)
            commands = []
            subscriptionsToDelete = []
            let creating = subscriptionsToCreate
            subscriptionsToCreate = []
            for local in creating { local.created?(.failure(ClientError.closed)); local.created = nil }
            return result
        }
        for command in leftovers { command.completion(.failure(ClientError.closed)) }
        for (_, done) in toDelete { done(.success(())) }
        done.signal()
    }

    private func waitForWake(timeoutMs: Int, until condition: () -> Bool) {
        let deadline = timeoutMs < 0 ? UInt64.max : Monotonic.nanoseconds() + UInt64(timeoutMs) * 1_000_000
        while !lock.withLock(condition) {
            let now = Monotonic.nanoseconds()
            if now >= deadline { return }
            var poller = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
            let wait = deadline == .max ? 1000 : Int32(min(1000, (deadline - now) / 1_000_000 + 1))
            _ = Glibc.poll(&poller, 1, wait)
            drainWake()
        }
    }

    private func drainWake() {
        var scratch = [UInt8](repeating: 0, count: 64)
        while Glibc.read(wakeRead, &scratch, 64) > 0 {}
    }

    private func dropConnection(error: any Error) {
        if fd >= 0 {
            Socket.close(fd)
            fd = -1
        }
        let failed = pending
        pending = [:]
        publishOutstanding = 0
        acknowledgements = []
        subscriptionsByServerId = [:]
        for (_, entry) in failed { entry.completion(.failure(error)) }
    }

    private func gracefulClose() {
        if !authenticationToken.isNull {
            _ = try? transact(CloseSessionRequest(), timeoutMs: 1000)
        }
        for case .send(let bytes) in channel.close() { try? sendBytes(bytes) }
    }

    private func sendBytes(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try Socket.writeAll(fd, $0, context: "opcua \(endpoint)") }
    }

    private func makeHeader(timeoutMs: Int) -> RequestHeader {
        requestHandle = requestHandle == UInt32.max ? 1 : requestHandle + 1
        var header = RequestHeader()
        header.authenticationToken = authenticationToken
        header.requestHandle = requestHandle
        header.timeoutHint = UInt32(timeoutMs)
        return header
    }

    /// Opens socket, channel and session; recreates subscriptions. Runs on the I/O thread.
    private func establish() throws {
        dropConnection(error: ClientError.connectionLost("reconnecting"))
        authenticationToken = .null
        channel = ClientSecureChannel(endpointUrl: options.endpointURL, requestedLifetimeMs: options.channelLifetimeMs)
        fd = try Socket.connect(host: endpoint.host, port: endpoint.port, timeoutMs: options.connectTimeoutMs)
        var opened = false
        try perform(channel.start(), opened: &opened)
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
        authenticationToken = session.authenticationToken
        let activate = ActivateSessionRequest(userIdentityToken: try identityToken(from: session.serverEndpoints))
        _ = try transact(activate, as: ActivateSessionResponse.self, timeoutMs: options.connectTimeoutMs)
        // Recreate every known subscription; fresh ones are created by the run loop.
        let known = lock.withLock { () -> [LocalSubscription] in
            let creating = Set(subscriptionsToCreate.map(\.id))
            return subscriptions.values.filter { !creating.contains($0.id) }.sorted { $0.id < $1.id }
        }
        for local in known { try createOnServer(local) }
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
        request.requestHeader = makeHeader(timeoutMs: timeoutMs)
        let requestId = channel.makeRequestId()
        var opened = true
        try perform(try channel.send(request, requestId: requestId), opened: &opened)
        waitingFor = requestId
        waitedResult = nil
        defer { waitingFor = nil }
        let deadline = Monotonic.nanoseconds() + UInt64(timeoutMs) * 1_000_000
        while waitedResult == nil {
            guard Monotonic.nanoseconds() < deadline else { throw ClientError.timeout }
            try pump(timeoutMs: 50, opened: &opened)
        }
        return waitedResult!
    }

    private func perform(_ actions: [ChannelAction], opened: inout Bool) throws {
        for action in actions {
            switch action {
            case .send(let bytes):
                try sendBytes(bytes)
            case .opened:
                if opened { lock.withLock { renewals += 1 } }
                opened = true
            case .message(let requestId, let body):
                if requestId == waitingFor {
                    waitedResult = body
                } else if let entry = pending.removeValue(forKey: requestId) {
                    entry.completion(.success(body))
                } else {
                    options.logger.debug("response for unknown request id \(requestId)")
                }
            case .closed(let status, let reason):
                throw ClientError.connectionLost("\(status): \(reason)")
            }
        }
    }

    /// Waits up to `timeoutMs` for socket data or a wake-up and feeds what arrived to the channel.
    private func pump(timeoutMs: Int32, opened: inout Bool) throws {
        var pollers = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        let ready = try syscallOrThrow("poll", context: "opcua \(endpoint)") { Glibc.poll(&pollers, 2, timeoutMs) }
        if ready > 0 && pollers[1].revents != 0 { drainWake() }
        if ready > 0 && pollers[0].revents != 0 {
            let count = try readBuffer.withUnsafeMutableBytes { try Socket.read(fd, into: $0, context: "opcua \(endpoint)") }
            if count == 0 { throw ClientError.connectionLost("closed by server") }
            lastReceiveNs = Monotonic.nanoseconds()
            try perform(channel.receive(readBuffer[0..<count], nowNs: lastReceiveNs), opened: &opened)
        }
        try perform(channel.tick(nowNs: Monotonic.nanoseconds()), opened: &opened)
    }

    private func pump(timeoutMs: Int, opened: inout Bool) throws {
        try pump(timeoutMs: Int32(timeoutMs), opened: &opened)
    }

    private func runLoop() throws {
        var opened = true
        lastReceiveNs = Monotonic.nanoseconds()
        while true {
            let (stop, forced, newCommands, toCreate, toDelete) = lock.withLock {
                defer { commands = []; subscriptionsToCreate = []; subscriptionsToDelete = [] }
                return (stopRequested, reconnectRequested, commands, subscriptionsToCreate, subscriptionsToDelete)
            }
            if stop { return }
            if forced { throw ClientError.connectionLost("reconnect requested") }
            let now = Monotonic.nanoseconds()
            for command in newCommands {
                let requestId = channel.makeRequestId()
                do {
                    let actions = try command.encode(&channel, makeHeader(timeoutMs: command.timeoutMs), requestId)
                    pending[requestId] = Pending(deadlineNs: now + UInt64(command.timeoutMs) * 1_000_000, completion: command.completion)
                    try perform(actions, opened: &opened)
                } catch let error as ClientError {
                    pending[requestId] = nil
                    command.completion(.failure(error))
                    throw error
                } catch {
                    pending[requestId] = nil
                    command.completion(.failure(error))
                }
            }
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
            let keepAliveMs = subscriptionsByServerId.values.map(\.keepAliveMs).max() ?? 0
            let silenceMs = max(Double(options.silenceTimeoutMs), keepAliveMs * 3)
            if !subscriptionsByServerId.isEmpty, now > lastReceiveNs + UInt64(silenceMs * 1_000_000) {
                throw ClientError.connectionLost("no message from the server for \(Int(silenceMs)) ms")
            }
            // Request timeouts.
            let expired = pending.filter { $0.value.deadlineNs < now }
            for (id, entry) in expired {
                pending[id] = nil
                entry.completion(.failure(ClientError.timeout))
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
            request.requestHeader = makeHeader(timeoutMs: timeout)
            let requestId = channel.makeRequestId()
            publishOutstanding += 1
            pending[requestId] = Pending(deadlineNs: .max, completion: { [weak self] result in self?.handlePublish(result) })
            var opened = true
            try perform(try channel.send(request, requestId: requestId), opened: &opened)
        }
    }

    /// Runs on the I/O thread (from `perform`).
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
