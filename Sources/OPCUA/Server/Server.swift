import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Called when a client writes a variable's value; return Good to accept (the value is then stored), or a bad code.
/// Runs on the server's I/O thread.
public typealias WriteHandler = @Sendable (NodeId, Variant) -> StatusCode

/// An OPC UA server over UA-TCP for station simulators: SecurityPolicy None and anonymous sessions, or the
/// endpoints, certificate and users of ``Options/security``.
///
/// One thread runs every connection, session and subscription: the server's own, or with ``Options/loop``
/// the thread of an ``OPCUAServerLoop`` shared with other servers (station simulators); `addVariable`/`setValue`
/// may be called from any thread. Values are sampled for monitored items at their sampling interval.
// @unchecked Sendable: the address space, the handlers and the lifecycle fields are guarded by `lock`; connections, sessions and subscriptions are touched only by the I/O thread.
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
        /// Security (README.md, "OPC UA security"). nil: SecurityPolicy None and anonymous sessions only.
        public var security: ServerSecurity? = nil
        /// The loop thread that runs this server's I/O together with other servers'; nil: a thread of its own.
        public var loop: OPCUAServerLoop? = nil
        public init() {}
    }

    public let options: Options
    let lock = NSLock()
    var space: AddressSpace
    var writeHandler: WriteHandler?
    var listenFd: Int32 = -1
    var boundPort: UInt16 = 0
    var running = false
    var stopRequested = false
    /// Wakes the I/O thread from `stop()`; with `epoll`, created by `start()` and closed by the I/O thread.
    var wake: WakeFd?
    var epoll: Epoll?
    var thread: Thread?
    let stopped = DispatchSemaphore(value: 0)
    /// The latest session activations (under `lock`), newest last, at most 100.
    var activations: [SessionActivation] = []
    /// Security token renewals on live channels (under `lock`).
    var renewals = 0

    // I/O thread state.
    var connections: [Int32: Connection] = [:]
    var sessions: [NodeId: Session] = [:]
    var nextChannelId: UInt32 = 0
    var nextSubscriptionId: UInt32 = 0
    var nextMonitoredItemId: UInt32 = 0
    var readBuffer = [UInt8](repeating: 0, count: 65536)
    /// The shared loop's state while this server runs on an ``OPCUAServerLoop`` (its descriptors are registered there).
    var host: OPCUAServerLoopState?
    /// On a shared loop: when this server's timers are next due (monotonic ns).
    var loopDueNs: UInt64 = 0
    /// On a shared loop: whether one of its descriptors was ready in this turn.
    var loopTouched = false

    public init(options: Options = Options()) {
        self.options = options
        space = AddressSpace(applicationUri: options.applicationUri, namespaceUri: options.namespaceUri)
    }

    /// The bound port (after `start()`).
    public var port: UInt16 { lock.withLock { boundPort } }

    /// `opc.tcp://HOST:PORT`.
    public var endpointURL: String { "opc.tcp://\(options.host):\(port)" }

    /// The latest session activations (at most 100, newest last): which policy, mode and user each used.
    public var sessionActivations: [SessionActivation] { lock.withLock { activations } }

    /// How many times a client renewed its channel's security token (diagnostics).
    public var tokenRenewals: Int { lock.withLock { renewals } }

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
        let dataValue = DataValue(value, status: status == .good ? nil : status,
                                  sourceTimestamp: sourceTime.map(DateTime.init) ?? now, serverTimestamp: now)
        try lock.withLock {
            // One lookup, and the node changed in place (not copied out and back).
            guard let index = space.nodes.index(forKey: nodeId), space.nodes.values[index].nodeClass == .variable else {
                throw AddressSpaceError.unknownNode(nodeId)
            }
            space.nodes.values[index].value = dataValue
            space.nodes.values[index].version &+= 1
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

    /// Binds and starts serving on its own thread. With ``Options/security``, first checks that the key
    /// belongs to the certificate and that some endpoint is offered (a ``CryptoError`` says which is wrong).
    public func start() throws {
        if let security = options.security {
            guard !security.endpoints.isEmpty else { throw CryptoError("server security", "no endpoint (policy, mode) configured") }
            if security.endpoints.contains(where: { $0.0 != .none }) {
                guard security.privateKey.matches(certificate: security.certificate) else {
                    throw CryptoError("server security", "the private key does not belong to the certificate")
                }
            }
            if let bad = security.endpoints.first(where: { ($0.0 == .none) != ($0.1 == .none) || $0.1 == .invalid }) {
                throw CryptoError("server security", "policy \(bad.0.rawValue) cannot go with mode \(bad.1)")
            }
        }
        if let loop = options.loop { return try start(on: loop) }
        let bound = try bindListener { listener in
            let wake = try WakeFd()
            do {
                let epoll = try Epoll(context: "opcua server :\(boundPort)")
                do {
                    try epoll.add(listener, Epoll.readable)
                    try epoll.add(wake.fd, Epoll.readable)
                } catch {
                    epoll.close()
                    throw error
                }
                self.wake = wake
                self.epoll = epoll
            } catch {
                wake.close()
                throw error
            }
        }
        guard bound != nil else { return }
        let thread = Thread { [self] in loop() }
        thread.name = "opcua-server :\(port)"
        self.thread = thread
        thread.start()
    }

    /// Binds and hands the server to `loop`'s thread.
    private func start(on loop: OPCUAServerLoop) throws {
        guard let listener = try bindListener({ _ in }) else { return }
        do {
            try loop.send(.add(self))
        } catch {
            lock.withLock {
                Socket.close(listener)
                listenFd = -1
                running = false
            }
            throw error
        }
    }

    /// Under the lock: binds the listening socket, lets `prepare` set up what the server's I/O needs
    /// around it, and marks the server running; nil when it already runs. On an error nothing is left
    /// open (what `prepare` made it closes itself).
    private func bindListener(_ prepare: (Int32) throws -> Void) throws -> Int32? {
        try lock.withLock {
            guard !running else { return nil }
            // A deep accept queue: a burst of connections (a plant's clients reconnecting at once) waits
            // for the I/O thread instead of timing out while it is busy or not yet scheduled.
            let listener = try Socket.listen(host: options.host, port: options.port, backlog: 1024, nonBlocking: true)
            do {
                boundPort = try Socket.localPort(listener)
                try prepare(listener)
            } catch {
                Socket.close(listener)
                throw error
            }
            listenFd = listener
            running = true
            stopRequested = false
            return listener
        }
    }

    /// Stops serving, closes every connection and waits for the thread (on a shared loop: until the
    /// loop has closed them). Idempotent.
    public func stop() {
        if let loop = options.loop {
            let stopping = lock.withLock {
                guard running, !stopRequested else { return false }
                stopRequested = true
                return true
            }
            guard stopping else { return }
            let done = DispatchSemaphore(value: 0)
            do {
                try loop.send(.remove(self, done))
                done.wait()
            } catch {
                options.logger.error("stop: \(error)")
            }
            return
        }
        let wake: WakeFd? = lock.withLock {
            guard running, !stopRequested else { return nil }
            stopRequested = true
            return self.wake
        }
        guard let wake else { return }
        wake.signal()
        stopped.wait()
    }

    deinit {
        stop()
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

/// How a session was activated: over which policy and mode, by which user (nil: anonymous).
public struct SessionActivation: Sendable, Equatable {
    public var policy: SecurityPolicy
    public var mode: MessageSecurityMode
    public var user: String?

    public init(policy: SecurityPolicy, mode: MessageSecurityMode, user: String?) {
        self.policy = policy
        self.mode = mode
        self.user = user
    }
}
