import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// An OPC UA client over UA-TCP: SecurityPolicy None, or a secure endpoint chosen by ``Options/security``.
///
/// While the session is up, the client's socket is served by one of a few shared event-loop threads
/// (``OPCUAClientLoopGroup``): requests are written by whoever sends them, responses are read and decoded
/// on the loop, and polls (``startPolling(_:intervalMs:timestamps:handler:)``) run there with no thread
/// or task hop. Connecting, session setup, subscription changes, reconnect back-off and closing run on a
/// short-lived thread of the client's own (the "I/O thread" below), which hands the socket back to the
/// loop when it is done. After a lost connection the client reconnects (when `autoReconnect`), creates a
/// new session and recreates every subscription with the same client handles.
// @unchecked Sendable: the shared state and the connection are guarded by `lock`; the I/O thread state (and `fd`, which only the I/O thread opens and closes) is touched by whoever owns the connection now: the client's own thread or its loop, handed over under `lock` (`attachedLoop`).
public final class OPCUAClient: @unchecked Sendable {
    public struct Options: Sendable {
        public var endpointURL: String
        public var identity: UserIdentity = .anonymous
        /// Secure channel and session security (README.md, "OPC UA security"). nil: SecurityPolicy None
        /// with ``identity``; set: the endpoint of its policy and mode is chosen from GetEndpoints, and its
        /// `user` replaces ``identity``.
        public var security: ClientSecurity? = nil
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
        /// The event loops that serve the connection; nil: ``OPCUAClientLoopGroup/shared``.
        public var loops: OPCUAClientLoopGroup? = nil

        public init(endpointURL: String) { self.endpointURL = endpointURL }
    }

    /// Who waits for a response: an awaiting task, a callback on the I/O thread (Publish), a callback with
    /// the request's deadline (a poll), or the I/O thread itself.
    enum Waiter {
        case task(UnsafeContinuation<[UInt8], any Error>)
        case callback(@Sendable (Result<[UInt8], any Error>) -> Void)
        case expiring(@Sendable (Result<[UInt8], any Error>) -> Void)
        case ioThread

        /// Called exactly once per request, after its entry left `pending`, never under `lock`.
        func complete(_ result: Result<[UInt8], any Error>) {
            switch self {
            case .task(let continuation): continuation.resume(with: result)
            case .callback(let callback), .expiring(let callback): callback(result)
            case .ioThread: break
            }
        }
    }

    struct Pending {
        var deadlineNs: UInt64
        var waiter: Waiter
    }

    /// Not `Sendable`: kept in the client's state and touched under `lock` or by the I/O thread.
    final class LocalSubscription {
        let id: Int
        let items: [MonitoredItemSpec]
        let publishingIntervalMs: Double
        let handler: DataChangeHandler
        var serverId: UInt32?
        var itemStatuses: [StatusCode] = []
        var revisedIntervalMs: Double = 0
        var keepAliveMs: Double = 0
        /// Called after the data changes of each publish response were handed to `handler` (optional).
        let published: (@Sendable () -> Void)?
        var created: (@Sendable (Result<SubscriptionResult, any Error>) -> Void)?
        var deleted = false

        init(id: Int, items: [MonitoredItemSpec], publishingIntervalMs: Double, handler: @escaping DataChangeHandler,
             published: (@Sendable () -> Void)? = nil) {
            self.id = id
            self.published = published
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
    let endpoint: EndpointURL
    /// Error context of socket calls (built once, not per call).
    let ioContext: String
    let lock = NSLock()
    // Shared state (under lock).
    var subscriptionsToCreate: [LocalSubscription] = []
    var subscriptionsToDelete: [(LocalSubscription, @Sendable (Result<Void, any Error>) -> Void)] = []
    var subscriptions: [Int: LocalSubscription] = [:]
    var nextSubscriptionId = 1
    var stateHandler: (@Sendable (ConnectionState) -> Void)?
    var currentState: ConnectionState = .disconnected("not started")
    var stopRequested = false
    var reconnectRequested = false
    var renewals = 0
    var threadRunning = false
    var firstConnect: (@Sendable (Result<Void, any Error>) -> Void)?
    var threadDone = DispatchSemaphore(value: 0)

    // The connection (under lock): any task sends its request itself, the I/O thread receives.
    /// The socket; only the I/O thread opens and closes it (so it may read `fd` without the lock).
    var fd: Int32 = -1
    var channel: ClientSecureChannel
    /// Requests sent and not yet answered, by request id.
    var pending: [UInt32: Pending] = [:]
    /// Bytes a non-blocking send could not write yet; the I/O thread flushes them, and later sends queue behind them.
    var outbox: [UInt8] = []
    /// True once the session is active on the current socket; requests from tasks are only sent then.
    var sessionReady = false
    /// True while the I/O thread runs tasks: their requests collect in `outbox` and leave in one write after.
    var corked = false
    var authenticationToken: NodeId = .null
    var requestHandle: UInt32 = 0
    /// Counts sockets opened; a request prepared for one connection is not sent on the next.
    var generation: UInt64 = 0

    /// The loop that serves this client's socket while the session is up (fixed for its life).
    let homeLoop: OPCUAClientLoop
    /// The loop that owns the connection now (under lock); nil while the client's own thread does.
    var attachedLoop: OPCUAClientLoop?
    /// The socket's interest on the loop's epoll (loop thread); 0 while not registered there.
    var loopInterest: UInt32 = 0
    /// The housekeeping timer on the loop (loop thread).
    lazy var loopTimer = ClientHousekeepingTimer(client: self)

    // I/O thread state (only touched by the I/O thread, or by the loop while it owns the connection).
    var machine = ClientConnectionMachine(autoReconnect: true)
    var failures = 0
    var lastError: (any Error)?
    var publishOutstanding = 0
    var maxPublishOutstanding = 2
    var acknowledgements: [SubscriptionAcknowledgement] = []
    var internalResults: [UInt32: [UInt8]] = [:]
    var subscriptionsByServerId: [UInt32: LocalSubscription] = [:]
    var readBuffer = [UInt8](repeating: 0, count: 65536)
    var lastReceiveNs: UInt64 = 0
    var nextTimeoutCheckNs: UInt64 = 0
    var completions: [(Waiter, Result<[UInt8], any Error>)] = []
    /// Where the I/O thread waits: the task executor's wake fd, and the socket while one is open.
    let epoll: Epoll
    /// The socket's epoll interest, nil while it is not registered.
    var socketInterest: UInt32?

    public init(options: Options) throws {
        guard let endpoint = EndpointURL(options.endpointURL) else { throw ClientError.badEndpointURL(options.endpointURL) }
        self.options = options
        self.endpoint = endpoint
        ioContext = "opcua \(endpoint)"
        channel = ClientSecureChannel(endpointUrl: options.endpointURL)
        homeLoop = (options.loops ?? .shared).next()
        taskExecutor = try ClientTaskExecutor()
        epoll = try Epoll(capacity: 4, context: ioContext)
        do { try epoll.add(taskExecutor.wakeFd.fd, Epoll.readable) } catch {
            epoll.close()
            throw error
        }
        let loop = homeLoop
        taskExecutor.setLoopWake { [weak self] in
            if let self { loop.poke(self) }
        }
    }

    deinit {
        // The I/O thread and the loop hold the client while it runs: by now it has stopped.
        epoll.close()
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
            startThread(named: "opcua-client") { [self] in controlMain(.start) }
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
}
