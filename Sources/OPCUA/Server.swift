import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Called when a client writes a variable's value; return Good to accept (the value is then stored), or a bad code.
/// Runs on the server's I/O thread.
public typealias WriteHandler = @Sendable (NodeId, Variant) -> StatusCode

/// An OPC UA server over UA-TCP with SecurityPolicy None and anonymous sessions, for station simulators.
///
/// One thread runs every connection, session and subscription; `addVariable`/`setValue` may be called from
/// any thread. Values are sampled for monitored items at their sampling interval.
public final class OPCUAServer: @unchecked Sendable {
    public struct Options: Sendable {
        public var host = "127.0.0.1"
        public var port: UInt16 = 0
        /// The URI of namespace 2, where the application's nodes live.
        public var namespaceUri = "urn:linemes:station"
        public var applicationUri = "urn:linemes:opcua:server"
        public var applicationName = "LineMES station simulator"
        public var maxConnections = 64
        public var maxSessions = 64
        public var maxSubscriptionsPerSession = 64
        public var maxMonitoredItemsPerSubscription = 100_000
        public var maxOperationsPerRequest = 10_000
        public var maxPublishRequestsPerSession = 10
        public var minSamplingIntervalMs: Double = 10
        public var minPublishingIntervalMs: Double = 10
        public var logger = Logger(label: "opcua.server", level: .warning)
        public init() {}
    }

    public let options: Options
    private let lock = NSLock()
    private var space: AddressSpace
    private var writeHandler: WriteHandler?
    private var listenFd: Int32 = -1
    private var boundPort: UInt16 = 0
    private var running = false
    private var stopRequested = false
    private var wakeRead: Int32 = -1
    private var wakeWrite: Int32 = -1
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    // I/O thread state.
    private var connections: [Int32: Connection] = [:]
    private var sessions: [NodeId: Session] = [:]
    private var nextChannelId: UInt32 = 0
    private var nextSubscriptionId: UInt32 = 0
    private var nextMonitoredItemId: UInt32 = 0
    private var readBuffer = [UInt8](repeating: 0, count: 65536)

    public init(options: Options = Options()) {
        self.options = options
        space = AddressSpace(applicationUri: options.applicationUri, namespaceUri: options.namespaceUri)
    }

    /// The bound port (after `start()`).
    public var port: UInt16 { lock.withLock { boundPort } }

    /// `opc.tcp://HOST:PORT`.
    public var endpointURL: String { "opc.tcp://\(options.host):\(port)" }

    /// Index of the application namespace (always 2).
    public var namespaceIndex: UInt16 { 2 }

    // MARK: - Address space API

    /// Adds a folder under `parent` (Objects by default), linked by Organizes.
    public func addFolder(nodeId: NodeId, browseName: String, parent: NodeId = WellKnown.objectsFolder) throws {
        let node = Node(nodeId: nodeId, nodeClass: .object, browseName: QualifiedName(browseName, namespace: nodeId.namespace),
                        displayName: LocalizedText(browseName), typeDefinition: WellKnown.folderType)
        try lock.withLock { try space.add(node, parent: parent, reference: WellKnown.organizes) }
    }

    /// Adds a variable under `parent`; its data type follows the value's built-in type.
    public func addVariable(nodeId: NodeId, browseName: String, parent: NodeId = WellKnown.objectsFolder, value: Variant,
                            writable: Bool = false) throws {
        var node = Node(nodeId: nodeId, nodeClass: .variable, browseName: QualifiedName(browseName, namespace: nodeId.namespace),
                        displayName: LocalizedText(browseName), typeDefinition: WellKnown.baseDataVariableType)
        let now = DateTime.now
        node.value = DataValue(value, sourceTimestamp: now, serverTimestamp: now)
        node.dataType = value.type?.dataTypeId ?? NodeId(24)
        node.valueRank = value.isArray ? 1 : -1
        node.writable = writable
        try lock.withLock {
            // Folders organize their content; other objects and variables have components.
            let isFolder = space.nodes[parent]?.typeDefinition == WellKnown.folderType
            try space.add(node, parent: parent, reference: isFolder ? WellKnown.organizes : WellKnown.hasComponent)
        }
    }

    /// Sets a variable's value (thread-safe); `sourceTime` defaults to now.
    public func setValue(nodeId: NodeId, value: Variant, status: StatusCode = .good, sourceTime: Date? = nil) throws {
        let now = DateTime.now
        try lock.withLock {
            guard var node = space.nodes[nodeId], node.nodeClass == .variable else { throw AddressSpaceError.unknownNode(nodeId) }
            node.value = DataValue(value, status: status == .good ? nil : status,
                                   sourceTimestamp: sourceTime.map(DateTime.init) ?? now, serverTimestamp: now)
            node.version &+= 1
            space.nodes[nodeId] = node
        }
    }

    /// The current value of a variable, nil if unknown.
    public func value(of nodeId: NodeId) -> DataValue? {
        lock.withLock { space.value(of: nodeId) }
    }

    /// Sets the handler consulted for client writes.
    public func onWrite(_ handler: @escaping WriteHandler) {
        lock.withLock { writeHandler = handler }
    }

    // MARK: - Lifecycle

    /// Binds and starts serving on its own thread.
    public func start() throws {
        try lock.withLock {
            guard !running else { return }
            listenFd = try Socket.listen(host: options.host, port: options.port, backlog: 128, nonBlocking: true)
            boundPort = try Socket.localPort(listenFd)
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw SystemError(call: "pipe", errno: errno) }
            for descriptor in fds { Socket.setNonBlocking(descriptor) }
            wakeRead = fds[0]
            wakeWrite = fds[1]
            running = true
            stopRequested = false
        }
        let thread = Thread { [self] in loop() }
        thread.name = "opcua-server :\(port)"
        self.thread = thread
        thread.start()
    }

    /// Stops serving, closes every connection and waits for the thread. Idempotent.
    public func stop() {
        let wasRunning = lock.withLock { () -> Bool in
            guard running, !stopRequested else { return false }
            stopRequested = true
            return true
        }
        guard wasRunning else { return }
        var byte: UInt8 = 1
        _ = Glibc.write(wakeWrite, &byte, 1)
        stopped.wait()
    }

    deinit {
        stop()
    }

    // MARK: - Internals

    private final class Connection {
        let fd: Int32
        var channel: ServerSecureChannel
        var outbound: [UInt8] = []
        var closing = false
        init(fd: Int32, channelId: UInt32) {
            self.fd = fd
            channel = ServerSecureChannel(channelId: channelId)
        }
    }

    private struct QueuedPublish {
        var fd: Int32
        var requestId: UInt32
        var requestHandle: UInt32
        var deadlineNs: UInt64
        var results: [StatusCode]
    }

    private final class MonitoredItem {
        let id: UInt32
        let clientHandle: UInt32
        let nodeId: NodeId
        let attributeId: UInt32
        var samplingNs: UInt64
        var queueSize: Int
        var discardOldest: Bool
        var trigger: UInt32 = 1
        var deadband: Double = 0
        var nextSampleNs: UInt64 = 0
        var lastVersion: UInt64 = .max
        var lastValue: DataValue?
        var queue: [DataValue] = []
        var mode: MonitoringMode
        init(id: UInt32, clientHandle: UInt32, nodeId: NodeId, attributeId: UInt32, samplingNs: UInt64, queueSize: Int,
             discardOldest: Bool, mode: MonitoringMode) {
            self.id = id; self.clientHandle = clientHandle; self.nodeId = nodeId; self.attributeId = attributeId
            self.samplingNs = samplingNs; self.queueSize = queueSize; self.discardOldest = discardOldest; self.mode = mode
        }
    }

    private final class Subscription {
        let id: UInt32
        var intervalNs: UInt64
        var maxKeepAlive: UInt32
        var lifetimeCount: UInt32
        var maxNotifications: UInt32
        var publishingEnabled: Bool
        var timestamps: TimestampsToReturn = .both
        var items: [UInt32: MonitoredItem] = [:]
        var nextPublishNs: UInt64
        var keepAliveCounter: UInt32
        var lifetimeCounter: UInt32 = 0
        var sequenceNumber: UInt32 = 1
        var late = false
        var retransmit: [NotificationMessage] = []
        var firstMessageSent = false
        init(id: UInt32, intervalNs: UInt64, maxKeepAlive: UInt32, lifetimeCount: UInt32, maxNotifications: UInt32,
             publishingEnabled: Bool, nowNs: UInt64) {
            self.id = id; self.intervalNs = intervalNs; self.maxKeepAlive = maxKeepAlive; self.lifetimeCount = lifetimeCount
            self.maxNotifications = maxNotifications; self.publishingEnabled = publishingEnabled
            nextPublishNs = nowNs + intervalNs
            keepAliveCounter = maxKeepAlive
        }
        var hasNotifications: Bool { items.values.contains { !$0.queue.isEmpty } }
    }

    private final class Session {
        let id: NodeId
        let token: NodeId
        var timeoutNs: UInt64
        var lastActivityNs: UInt64
        var fd: Int32?
        var activated = false
        var subscriptions: [UInt32: Subscription] = [:]
        var publishQueue: [QueuedPublish] = []
        var continuationPoints: [[UInt8]: [ReferenceDescription]] = [:]
        init(id: NodeId, token: NodeId, timeoutNs: UInt64, nowNs: UInt64) {
            self.id = id; self.token = token; self.timeoutNs = timeoutNs; lastActivityNs = nowNs
        }
    }

    private func loop() {
        while !lock.withLock({ stopRequested }) {
            let now = Monotonic.nanoseconds()
            let timeout = nextTimerMs(now)
            var pollers = [pollfd(fd: listenFd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            let fds = Array(connections.keys)
            for fd in fds {
                let wantsWrite = !(connections[fd]?.outbound.isEmpty ?? true)
                pollers.append(pollfd(fd: fd, events: Int16(POLLIN) | (wantsWrite ? Int16(POLLOUT) : 0), revents: 0))
            }
            let ready = (try? syscallOrThrow("poll") { Glibc.poll(&pollers, nfds_t(pollers.count), timeout) }) ?? 0
            if ready > 0 {
                if pollers[1].revents != 0 {
                    var scratch = [UInt8](repeating: 0, count: 64)
                    while Glibc.read(wakeRead, &scratch, 64) > 0 {}
                }
                if pollers[0].revents != 0 { acceptConnections() }
                for poller in pollers.dropFirst(2) where poller.revents != 0 {
                    guard let connection = connections[poller.fd] else { continue }
                    if poller.revents & Int16(POLLOUT) != 0 { flush(connection) }
                    if poller.revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 { readFrom(connection) }
                }
            }
            runTimers(Monotonic.nanoseconds())
            for connection in Array(connections.values) where connection.closing && connection.outbound.isEmpty {
                closeConnection(connection)
            }
        }
        for connection in Array(connections.values) { closeConnection(connection) }
        sessions.removeAll()
        lock.withLock {
            Socket.close(listenFd)
            Socket.close(wakeRead)
            Socket.close(wakeWrite)
            listenFd = -1
            running = false
        }
        stopped.signal()
    }

    private func nextTimerMs(_ now: UInt64) -> Int32 {
        var next = now + 50_000_000
        for session in sessions.values {
            for subscription in session.subscriptions.values {
                next = min(next, subscription.nextPublishNs)
                for item in subscription.items.values { next = min(next, item.nextSampleNs) }
            }
        }
        return next <= now ? 0 : Int32((next - now + 999_999) / 1_000_000)
    }

    private func acceptConnections() {
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
            connections[fd] = Connection(fd: fd, channelId: nextChannelId)
        }
    }

    /// Reads from every connection with input waiting (peers that closed are closed here) and closes those done.
    private func reapClosedConnections() {
        var pollers = connections.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard Glibc.poll(&pollers, nfds_t(pollers.count), 0) > 0 else { return }
        for poller in pollers where poller.revents != 0 {
            guard let connection = connections[poller.fd] else { continue }
            readFrom(connection)
            if connection.closing && connection.outbound.isEmpty { closeConnection(connection) }
        }
    }

    private func readFrom(_ connection: Connection) {
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

    private func closeConnection(_ connection: Connection) {
        guard connections.removeValue(forKey: connection.fd) != nil else { return }
        Socket.close(connection.fd)
        for session in sessions.values where session.fd == connection.fd {
            session.fd = nil
            session.publishQueue.removeAll()
        }
    }

    private func write(_ bytes: [UInt8], to connection: Connection) {
        connection.outbound.append(contentsOf: bytes)
        flush(connection)
        if connection.outbound.count > 64 * 1024 * 1024 {
            options.logger.warning("dropping slow client")
            closeConnection(connection)
        }
    }

    private func flush(_ connection: Connection) {
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

    private func handle(_ actions: [ChannelAction], _ connection: Connection) {
        for action in actions {
            switch action {
            case .send(let bytes): write(bytes, to: connection)
            case .opened: break
            case .message(let requestId, let body): dispatch(body, requestId: requestId, connection)
            case .closed: connection.closing = true
            }
        }
    }

    private func respond<R: ServiceResponse>(_ response: R, requestId: UInt32, _ connection: Connection) {
        handle(connection.channel.respond(response, encodingId: R.encodingId, requestId: requestId), connection)
    }

    private func fault(_ status: StatusCode, handle: UInt32, requestId: UInt32, _ connection: Connection) {
        respond(ServiceFault(responseHeader: ResponseHeader(requestHandle: handle, serviceResult: status)), requestId: requestId, connection)
    }

    private func dispatch(_ body: [UInt8], requestId: UInt32, _ connection: Connection) {
        var reader = BinaryReader(body)
        let now = Monotonic.nanoseconds()
        var handleId: UInt32 = 0
        do {
            let typeId = try readServiceTypeId(&reader)
            // Every request starts with its header: peek at it for the handle and token.
            var peek = reader
            let header = try RequestHeader(from: &peek)
            handleId = header.requestHandle
            switch typeId {
            case GetEndpointsRequest.encodingId:
                var response = GetEndpointsResponse(endpoints: endpoints())
                response.responseHeader.requestHandle = handleId
                return respond(response, requestId: requestId, connection)
            case FindServersRequest.encodingId:
                var response = FindServersResponse(servers: [applicationDescription()])
                response.responseHeader.requestHandle = handleId
                return respond(response, requestId: requestId, connection)
            case CreateSessionRequest.encodingId:
                let request = try CreateSessionRequest(from: &reader)
                return createSession(request, requestId: requestId, connection, now: now)
            case CloseSecureChannelRequest.encodingId:
                connection.closing = true
                return
            default:
                break
            }
            guard let session = sessions[header.authenticationToken] else {
                return fault(.badSessionIdInvalid, handle: handleId, requestId: requestId, connection)
            }
            if typeId == ActivateSessionRequest.encodingId {
                let request = try ActivateSessionRequest(from: &reader)
                return activateSession(request, session, requestId: requestId, connection)
            }
            guard session.activated, session.fd == connection.fd else {
                return fault(.badSessionNotActivated, handle: handleId, requestId: requestId, connection)
            }
            session.lastActivityNs = now
            switch typeId {
            case CloseSessionRequest.encodingId:
                sessions[session.token] = nil
                var response = CloseSessionResponse()
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
            case ReadRequest.encodingId:
                respondRead(try ReadRequest(from: &reader), requestId: requestId, connection)
            case WriteRequest.encodingId:
                respondWrite(try WriteRequest(from: &reader), requestId: requestId, connection)
            case BrowseRequest.encodingId:
                respondBrowse(try BrowseRequest(from: &reader), session, requestId: requestId, connection)
            case BrowseNextRequest.encodingId:
                respondBrowseNext(try BrowseNextRequest(from: &reader), session, requestId: requestId, connection)
            case TranslateBrowsePathsRequest.encodingId:
                let request = try TranslateBrowsePathsRequest(from: &reader)
                guard request.browsePaths.count <= options.maxOperationsPerRequest else { throw StatusCode.badTooManyOperations }
                let results = lock.withLock { request.browsePaths.map { space.translate($0) } }
                var response = TranslateBrowsePathsResponse(results: results)
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
            case CreateSubscriptionRequest.encodingId:
                createSubscription(try CreateSubscriptionRequest(from: &reader), session, requestId: requestId, connection, now: now)
            case ModifySubscriptionRequest.encodingId:
                modifySubscription(try ModifySubscriptionRequest(from: &reader), session, requestId: requestId, connection)
            case SetPublishingModeRequest.encodingId:
                let request = try SetPublishingModeRequest(from: &reader)
                let results = request.subscriptionIds.map { id -> StatusCode in
                    guard let subscription = session.subscriptions[id] else { return .badSubscriptionIdInvalid }
                    subscription.publishingEnabled = request.publishingEnabled
                    return .good
                }
                var response = SetPublishingModeResponse(results: results)
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
            case DeleteSubscriptionsRequest.encodingId:
                let request = try DeleteSubscriptionsRequest(from: &reader)
                let results = request.subscriptionIds.map { id -> StatusCode in
                    session.subscriptions.removeValue(forKey: id) == nil ? .badSubscriptionIdInvalid : .good
                }
                var response = DeleteSubscriptionsResponse(results: results)
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
                if session.subscriptions.isEmpty { failQueuedPublishes(session, .badNoSubscription) }
            case CreateMonitoredItemsRequest.encodingId:
                createMonitoredItems(try CreateMonitoredItemsRequest(from: &reader), session, requestId: requestId, connection, now: now)
            case DeleteMonitoredItemsRequest.encodingId:
                let request = try DeleteMonitoredItemsRequest(from: &reader)
                guard let subscription = session.subscriptions[request.subscriptionId] else { throw StatusCode.badSubscriptionIdInvalid }
                let results = request.monitoredItemIds.map { id -> StatusCode in
                    subscription.items.removeValue(forKey: id) == nil ? .badMonitoredItemIdInvalid : .good
                }
                var response = DeleteMonitoredItemsResponse(results: results)
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
            case PublishRequest.encodingId:
                queuePublish(try PublishRequest(from: &reader), session, requestId: requestId, connection, now: now)
            case RepublishRequest.encodingId:
                let request = try RepublishRequest(from: &reader)
                guard let subscription = session.subscriptions[request.subscriptionId] else { throw StatusCode.badSubscriptionIdInvalid }
                guard let message = subscription.retransmit.first(where: { $0.sequenceNumber == request.retransmitSequenceNumber }) else {
                    throw StatusCode.badMessageNotAvailable
                }
                var response = RepublishResponse(notificationMessage: message)
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
            default:
                fault(.badServiceUnsupported, handle: handleId, requestId: requestId, connection)
            }
        } catch let status as StatusCode {
            fault(status, handle: handleId, requestId: requestId, connection)
        } catch {
            fault(.badDecodingError, handle: handleId, requestId: requestId, connection)
        }
    }

    private func applicationDescription() -> ApplicationDescription {
        ApplicationDescription(applicationUri: options.applicationUri, productUri: "urn:linemes:opcua",
                               applicationName: LocalizedText(options.applicationName, locale: "en"),
                               applicationType: .server, discoveryUrls: [endpointURL])
    }

    private func endpoints() -> [EndpointDescription] {
        var endpoint = EndpointDescription(endpointUrl: endpointURL, server: applicationDescription(), securityMode: .none,
                                           securityPolicyUri: securityPolicyNoneUri,
                                           userIdentityTokens: [UserTokenPolicy(policyId: "anonymous", tokenType: .anonymous)])
        endpoint.securityLevel = 0
        return [endpoint]
    }

    private func createSession(_ request: CreateSessionRequest, requestId: UInt32, _ connection: Connection, now: UInt64) {
        guard sessions.count < options.maxSessions else {
            return fault(.badTooManySessions, handle: request.requestHeader.requestHandle, requestId: requestId, connection)
        }
        let id = NodeId(namespace: 1, .guid(UUID()))
        let token = NodeId(namespace: 1, .opaque((0..<32).map { _ in UInt8.random(in: 0...255) }))
        let timeout = min(max(request.requestedSessionTimeout, 10_000), 3_600_000)
        let session = Session(id: id, token: token, timeoutNs: UInt64(timeout * 1_000_000), nowNs: now)
        session.fd = connection.fd
        sessions[token] = session
        var response = CreateSessionResponse(sessionId: id, authenticationToken: token, revisedSessionTimeout: timeout)
        response.responseHeader.requestHandle = request.requestHeader.requestHandle
        response.serverNonce = (0..<32).map { _ in UInt8.random(in: 0...255) }
        response.serverEndpoints = endpoints()
        response.maxRequestMessageSize = connection.channel.limits.maxMessageSize
        respond(response, requestId: requestId, connection)
    }

    private func activateSession(_ request: ActivateSessionRequest, _ session: Session, requestId: UInt32, _ connection: Connection) {
        let handle = request.requestHeader.requestHandle
        let tokenType = request.userIdentityToken.typeId
        // An empty token is taken as anonymous, as many clients send it that way.
        guard tokenType == NodeId(AnonymousIdentityToken.encodingId) || tokenType.isNull else {
            return fault(.badIdentityTokenInvalid, handle: handle, requestId: requestId, connection)
        }
        session.activated = true
        session.fd = connection.fd
        session.lastActivityNs = Monotonic.nanoseconds()
        var response = ActivateSessionResponse()
        response.responseHeader.requestHandle = handle
        response.serverNonce = (0..<32).map { _ in UInt8.random(in: 0...255) }
        respond(response, requestId: requestId, connection)
    }

    private func respondRead(_ request: ReadRequest, requestId: UInt32, _ connection: Connection) {
        let handle = request.requestHeader.requestHandle
        guard request.timestampsToReturn != .invalid else { return fault(.badTimestampsToReturnInvalid, handle: handle, requestId: requestId, connection) }
        guard !request.nodesToRead.isEmpty else { return fault(.badNothingToDo, handle: handle, requestId: requestId, connection) }
        guard request.nodesToRead.count <= options.maxOperationsPerRequest else {
            return fault(.badTooManyOperations, handle: handle, requestId: requestId, connection)
        }
        let now = DateTime.now
        let results = lock.withLock { request.nodesToRead.map { space.read($0) } }.map { value in
            filterTimestamps(value, request.timestampsToReturn, now: now)
        }
        var response = ReadResponse(results: results)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    private func filterTimestamps(_ value: DataValue, _ which: TimestampsToReturn, now: DateTime) -> DataValue {
        var value = value
        guard value.value != nil else { return value }
        switch which {
        case .source: value.serverTimestamp = nil
        case .server: value.sourceTimestamp = nil; value.serverTimestamp = now
        case .neither: value.sourceTimestamp = nil; value.serverTimestamp = nil
        default: value.serverTimestamp = now
        }
        return value
    }

    private func respondWrite(_ request: WriteRequest, requestId: UInt32, _ connection: Connection) {
        let handle = request.requestHeader.requestHandle
        guard !request.nodesToWrite.isEmpty else { return fault(.badNothingToDo, handle: handle, requestId: requestId, connection) }
        guard request.nodesToWrite.count <= options.maxOperationsPerRequest else {
            return fault(.badTooManyOperations, handle: handle, requestId: requestId, connection)
        }
        let handler = lock.withLock { writeHandler }
        var results: [StatusCode] = []
        for item in request.nodesToWrite {
            let check: StatusCode = lock.withLock {
                guard let node = space.nodes[item.nodeId] else { return .badNodeIdUnknown }
                guard item.attributeId == AttributeId.value.rawValue else {
                    return AttributeId(rawValue: item.attributeId) == nil ? .badAttributeIdInvalid : .badNotWritable
                }
                guard node.nodeClass == .variable, node.writable else { return .badNotWritable }
                guard item.indexRange == nil || item.indexRange == "" else { return .badWriteNotSupported }
                guard let value = item.value.value else { return .badTypeMismatch }
                if node.dataType != NodeId(24), value.type?.dataTypeId != node.dataType { return .badTypeMismatch }
                return .good
            }
            guard check == .good, let value = item.value.value else { results.append(check); continue }
            let verdict = handler?(item.nodeId, value) ?? .good
            if verdict.isGood {
                let source = item.value.sourceTimestamp?.date
                try? setValue(nodeId: item.nodeId, value: value, status: item.value.status ?? .good, sourceTime: source)
            }
            results.append(verdict)
        }
        var response = WriteResponse(results: results)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    private func makeContinuation(_ rest: [ReferenceDescription], _ session: Session) -> [UInt8]? {
        guard !rest.isEmpty, session.continuationPoints.count < 100 else { return nil }
        let point = (0..<16).map { _ in UInt8.random(in: 0...255) }
        session.continuationPoints[point] = rest
        return point
    }

    private func respondBrowse(_ request: BrowseRequest, _ session: Session, requestId: UInt32, _ connection: Connection) {
        let handle = request.requestHeader.requestHandle
        guard !request.nodesToBrowse.isEmpty else { return fault(.badNothingToDo, handle: handle, requestId: requestId, connection) }
        guard request.nodesToBrowse.count <= options.maxOperationsPerRequest else {
            return fault(.badTooManyOperations, handle: handle, requestId: requestId, connection)
        }
        let limit = request.requestedMaxReferencesPerNode == 0 ? Int.max : Int(request.requestedMaxReferencesPerNode)
        let outcomes = lock.withLock { request.nodesToBrowse.map { space.browse($0) } }
        let results = outcomes.map { outcome -> BrowseResult in
            switch outcome {
            case .failure(let status):
                return BrowseResult(statusCode: status, continuationPoint: nil, references: [])
            case .success(let references):
                if references.count <= limit { return BrowseResult(statusCode: .good, continuationPoint: nil, references: references) }
                let point = makeContinuation(Array(references[limit...]), session)
                return BrowseResult(statusCode: point == nil ? .badNoContinuationPoints : .good, continuationPoint: point,
                                    references: point == nil ? [] : Array(references[..<limit]))
            }
        }
        var response = BrowseResponse(results: results)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    private func respondBrowseNext(_ request: BrowseNextRequest, _ session: Session, requestId: UInt32, _ connection: Connection) {
        let handle = request.requestHeader.requestHandle
        let results = request.continuationPoints.map { point -> BrowseResult in
            guard let point, let rest = session.continuationPoints.removeValue(forKey: point) else {
                return BrowseResult(statusCode: .badContinuationPointInvalid, continuationPoint: nil, references: [])
            }
            if request.releaseContinuationPoints { return BrowseResult(statusCode: .good, continuationPoint: nil, references: []) }
            // Keep the page size of the first call: the number of references it returned is not known here, so use 1000.
            let page = min(rest.count, 1000)
            let next = makeContinuation(Array(rest[page...]), session)
            return BrowseResult(statusCode: .good, continuationPoint: next, references: Array(rest[..<page]))
        }
        var response = BrowseNextResponse(results: results)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    private func reviseInterval(_ requested: Double) -> Double {
        requested.isNaN || requested < options.minPublishingIntervalMs ? options.minPublishingIntervalMs : min(requested, 3_600_000)
    }

    private func createSubscription(_ request: CreateSubscriptionRequest, _ session: Session, requestId: UInt32, _ connection: Connection, now: UInt64) {
        let handle = request.requestHeader.requestHandle
        guard session.subscriptions.count < options.maxSubscriptionsPerSession else {
            return fault(.badTooManySubscriptions, handle: handle, requestId: requestId, connection)
        }
        nextSubscriptionId &+= 1
        let interval = reviseInterval(request.requestedPublishingInterval)
        let keepAlive = max(1, min(request.requestedMaxKeepAliveCount, 10_000))
        let lifetime = max(keepAlive * 3, request.requestedLifetimeCount)
        let subscription = Subscription(id: nextSubscriptionId, intervalNs: UInt64(interval * 1_000_000), maxKeepAlive: keepAlive,
                                        lifetimeCount: lifetime, maxNotifications: request.maxNotificationsPerPublish,
                                        publishingEnabled: request.publishingEnabled, nowNs: now)
        session.subscriptions[subscription.id] = subscription
        var response = CreateSubscriptionResponse(subscriptionId: subscription.id, revisedPublishingInterval: interval,
                                                  revisedLifetimeCount: lifetime, revisedMaxKeepAliveCount: keepAlive)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    private func modifySubscription(_ request: ModifySubscriptionRequest, _ session: Session, requestId: UInt32, _ connection: Connection) {
        guard let subscription = session.subscriptions[request.subscriptionId] else {
            return fault(.badSubscriptionIdInvalid, handle: request.requestHeader.requestHandle, requestId: requestId, connection)
        }
        let interval = reviseInterval(request.requestedPublishingInterval)
        subscription.intervalNs = UInt64(interval * 1_000_000)
        subscription.maxKeepAlive = max(1, min(request.requestedMaxKeepAliveCount, 10_000))
        subscription.lifetimeCount = max(subscription.maxKeepAlive * 3, request.requestedLifetimeCount)
        subscription.maxNotifications = request.maxNotificationsPerPublish
        var response = ModifySubscriptionResponse(revisedPublishingInterval: interval, revisedLifetimeCount: subscription.lifetimeCount,
                                                  revisedMaxKeepAliveCount: subscription.maxKeepAlive)
        response.responseHeader.requestHandle = request.requestHeader.requestHandle
        respond(response, requestId: requestId, connection)
    }

    private func createMonitoredItems(_ request: CreateMonitoredItemsRequest, _ session: Session, requestId: UInt32,
                                      _ connection: Connection, now: UInt64) {
        let handle = request.requestHeader.requestHandle
        guard let subscription = session.subscriptions[request.subscriptionId] else {
            return fault(.badSubscriptionIdInvalid, handle: handle, requestId: requestId, connection)
        }
        guard request.timestampsToReturn != .invalid else { return fault(.badTimestampsToReturnInvalid, handle: handle, requestId: requestId, connection) }
        guard !request.itemsToCreate.isEmpty else { return fault(.badNothingToDo, handle: handle, requestId: requestId, connection) }
        guard request.itemsToCreate.count <= options.maxOperationsPerRequest else {
            return fault(.badTooManyOperations, handle: handle, requestId: requestId, connection)
        }
        subscription.timestamps = request.timestampsToReturn
        var results: [MonitoredItemCreateResult] = []
        for create in request.itemsToCreate {
            let probe = lock.withLock { space.read(create.itemToMonitor) }
            if let status = probe.status, status == .badNodeIdUnknown || status == .badAttributeIdInvalid {
                results.append(MonitoredItemCreateResult(statusCode: status, monitoredItemId: 0, revisedSamplingInterval: 0, revisedQueueSize: 0))
                continue
            }
            guard subscription.items.count < options.maxMonitoredItemsPerSubscription else {
                results.append(MonitoredItemCreateResult(statusCode: .badTooManyOperations, monitoredItemId: 0, revisedSamplingInterval: 0, revisedQueueSize: 0))
                continue
            }
            let parameters = create.requestedParameters
            var trigger: UInt32 = 1
            var deadband: Double = 0
            if parameters.filter.typeId == NodeId(724), case .binary(let bytes) = parameters.filter.body {
                var reader = BinaryReader(bytes)
                trigger = (try? reader.readUInt32()) ?? 1
                let deadbandType = (try? reader.readUInt32()) ?? 0
                let value = (try? reader.readDouble()) ?? 0
                if deadbandType == 1 { deadband = value } else if deadbandType != 0 {
                    results.append(MonitoredItemCreateResult(statusCode: .badMonitoredItemFilterUnsupported, monitoredItemId: 0,
                                                             revisedSamplingInterval: 0, revisedQueueSize: 0))
                    continue
                }
            } else if !parameters.filter.typeId.isNull {
                results.append(MonitoredItemCreateResult(statusCode: .badMonitoredItemFilterUnsupported, monitoredItemId: 0,
                                                         revisedSamplingInterval: 0, revisedQueueSize: 0))
                continue
            }
            var sampling = parameters.samplingInterval
            if sampling < 0 || sampling.isNaN { sampling = Double(subscription.intervalNs) / 1_000_000 }
            sampling = max(sampling, options.minSamplingIntervalMs)
            let queueSize = Int(max(1, min(parameters.queueSize, 1000)))
            nextMonitoredItemId &+= 1
            let item = MonitoredItem(id: nextMonitoredItemId, clientHandle: parameters.clientHandle, nodeId: create.itemToMonitor.nodeId,
                                     attributeId: create.itemToMonitor.attributeId, samplingNs: UInt64(sampling * 1_000_000),
                                     queueSize: queueSize, discardOldest: parameters.discardOldest, mode: create.monitoringMode)
            item.trigger = trigger
            item.deadband = deadband
            item.nextSampleNs = now
            subscription.items[item.id] = item
            results.append(MonitoredItemCreateResult(statusCode: .good, monitoredItemId: item.id, revisedSamplingInterval: sampling,
                                                     revisedQueueSize: UInt32(queueSize)))
        }
        var response = CreateMonitoredItemsResponse(results: results)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    private func queuePublish(_ request: PublishRequest, _ session: Session, requestId: UInt32, _ connection: Connection, now: UInt64) {
        let handle = request.requestHeader.requestHandle
        let results = request.subscriptionAcknowledgements.map { ack -> StatusCode in
            guard let subscription = session.subscriptions[ack.subscriptionId] else { return .badSubscriptionIdInvalid }
            guard let index = subscription.retransmit.firstIndex(where: { $0.sequenceNumber == ack.sequenceNumber }) else {
                return .badSequenceNumberUnknown
            }
            subscription.retransmit.remove(at: index)
            return .good
        }
        guard !session.subscriptions.isEmpty else {
            return fault(.badNoSubscription, handle: handle, requestId: requestId, connection)
        }
        let timeoutHint = request.requestHeader.timeoutHint
        let deadline = timeoutHint == 0 ? UInt64.max : now + UInt64(timeoutHint) * 1_000_000
        session.publishQueue.append(QueuedPublish(fd: connection.fd, requestId: requestId, requestHandle: handle, deadlineNs: deadline, results: results))
        if session.publishQueue.count > options.maxPublishRequestsPerSession {
            let oldest = session.publishQueue.removeFirst()
            if let target = connections[oldest.fd] {
                fault(.badTooManyPublishRequests, handle: oldest.requestHandle, requestId: oldest.requestId, target)
            }
        }
        // Serve a late subscription at once.
        for subscription in session.subscriptions.values.sorted(by: { $0.id < $1.id }) where subscription.late {
            if !publish(subscription, session, now: now) { break }
        }
    }

    private func failQueuedPublishes(_ session: Session, _ status: StatusCode) {
        let queued = session.publishQueue
        session.publishQueue.removeAll()
        for entry in queued {
            if let target = connections[entry.fd] { fault(status, handle: entry.requestHandle, requestId: entry.requestId, target) }
        }
    }

    /// Sends a notification or keep-alive for `subscription` if a publish request is queued; false if none was.
    @discardableResult
    private func publish(_ subscription: Subscription, _ session: Session, now: UInt64) -> Bool {
        guard !session.publishQueue.isEmpty else {
            subscription.late = true
            return false
        }
        let entry = session.publishQueue.removeFirst()
        guard let connection = connections[entry.fd] else { return publish(subscription, session, now: now) }
        var notifications: [MonitoredItemNotification] = []
        let limit = subscription.maxNotifications == 0 ? 10_000 : Int(subscription.maxNotifications)
        var more = false
        if subscription.publishingEnabled {
            for item in subscription.items.values.sorted(by: { $0.id < $1.id }) where !item.queue.isEmpty {
                let room = limit - notifications.count
                if room <= 0 { more = true; break }
                let take = min(room, item.queue.count)
                for value in item.queue[..<take] { notifications.append(MonitoredItemNotification(clientHandle: item.clientHandle, value: value)) }
                item.queue.removeFirst(take)
                if !item.queue.isEmpty { more = true }
            }
        }
        let message: NotificationMessage
        if notifications.isEmpty {
            message = NotificationMessage(sequenceNumber: subscription.sequenceNumber, publishTime: .now, notificationData: [])
        } else {
            let data = ExtensionObject(encodingId: DataChangeNotification.encodingId, DataChangeNotification(monitoredItems: notifications))
            message = NotificationMessage(sequenceNumber: subscription.sequenceNumber, publishTime: .now, notificationData: [data])
            subscription.sequenceNumber = subscription.sequenceNumber == UInt32.max ? 1 : subscription.sequenceNumber + 1
            subscription.retransmit.append(message)
            if subscription.retransmit.count > 32 { subscription.retransmit.removeFirst() }
        }
        subscription.late = more
        subscription.keepAliveCounter = 0
        subscription.lifetimeCounter = 0
        subscription.firstMessageSent = true
        var response = PublishResponse(subscriptionId: subscription.id, availableSequenceNumbers: subscription.retransmit.map(\.sequenceNumber),
                                       moreNotifications: more, notificationMessage: message, results: entry.results)
        response.responseHeader.requestHandle = entry.requestHandle
        respond(response, requestId: entry.requestId, connection)
        return true
    }

    private func sample(_ item: MonitoredItem, now: UInt64, timestamps: TimestampsToReturn) {
        item.nextSampleNs = now + item.samplingNs
        guard item.mode != .disabled else { return }
        let (current, version): (DataValue, UInt64) = lock.withLock {
            let version = space.nodes[item.nodeId]?.version ?? 0
            if item.attributeId == AttributeId.value.rawValue, version == item.lastVersion, item.nodeId != WellKnown.serverStatusCurrentTime {
                return (DataValue(), version)
            }
            return (space.read(ReadValueId(nodeId: item.nodeId, attributeId: AttributeId(rawValue: item.attributeId) ?? .value)), version)
        }
        if version == item.lastVersion && item.lastValue != nil && item.nodeId != WellKnown.serverStatusCurrentTime { return }
        item.lastVersion = version
        if let last = item.lastValue {
            let statusChanged = last.statusCode != current.statusCode
            var valueChanged = last.value != current.value
            if valueChanged, item.deadband > 0, let old = last.value?.doubleValue, let new = current.value?.doubleValue {
                valueChanged = abs(new - old) > item.deadband
            }
            let timestampChanged = last.sourceTimestamp != current.sourceTimestamp
            let changed = statusChanged || (item.trigger >= 1 && valueChanged) || (item.trigger == 2 && timestampChanged)
            guard changed else { return }
        }
        item.lastValue = current
        guard item.mode == .reporting else { return }
        var value = current
        switch timestamps {
        case .source: value.serverTimestamp = nil
        case .server: value.sourceTimestamp = nil
        case .neither: value.sourceTimestamp = nil; value.serverTimestamp = nil
        default: break
        }
        if item.queue.count >= item.queueSize {
            if item.discardOldest { item.queue.removeFirst() } else { item.queue.removeLast() }
        }
        item.queue.append(value)
    }

    private func runTimers(_ now: UInt64) {
        for session in Array(sessions.values) {
            if now > session.lastActivityNs + session.timeoutNs && session.publishQueue.isEmpty {
                sessions[session.token] = nil
                continue
            }
            // Publish requests that timed out get BadTimeout.
            let expired = session.publishQueue.filter { $0.deadlineNs <= now }
            if !expired.isEmpty {
                session.publishQueue.removeAll { $0.deadlineNs <= now }
                for entry in expired {
                    if let target = connections[entry.fd] { fault(.badTimeout, handle: entry.requestHandle, requestId: entry.requestId, target) }
                }
            }
            if !session.publishQueue.isEmpty { session.lastActivityNs = now }
            for subscription in Array(session.subscriptions.values) {
                for item in subscription.items.values where item.nextSampleNs <= now {
                    sample(item, now: now, timestamps: subscription.timestamps)
                }
                guard subscription.nextPublishNs <= now else { continue }
                subscription.nextPublishNs = max(subscription.nextPublishNs + subscription.intervalNs, now)
                // Items sampled no faster than the subscription publishes are sampled again right
                // before each publish, so a change waits at most one publishing interval, not two.
                for item in subscription.items.values where item.samplingNs >= subscription.intervalNs && item.nextSampleNs > now {
                    sample(item, now: now, timestamps: subscription.timestamps)
                }
                if subscription.publishingEnabled && subscription.hasNotifications {
                    if !publish(subscription, session, now: now) { subscription.lifetimeCounter += 1 }
                } else {
                    subscription.keepAliveCounter += 1
                    if subscription.keepAliveCounter >= subscription.maxKeepAlive || !subscription.firstMessageSent {
                        if !publish(subscription, session, now: now) { subscription.lifetimeCounter += 1 }
                    }
                }
                if subscription.lifetimeCounter > subscription.lifetimeCount {
                    session.subscriptions[subscription.id] = nil
                }
            }
        }
        for connection in Array(connections.values) {
            handle(connection.channel.tick(nowNs: now), connection)
        }
    }
}

extension OPCUAServer: Service {
    public var name: String { "opcua.server:\(options.port)" }

    /// Starts the server (if not started) and serves until the task is cancelled.
    public func run() async throws {
        try start()
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        stop()
    }
}
