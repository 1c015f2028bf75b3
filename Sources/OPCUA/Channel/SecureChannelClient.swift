import Foundation

/// Client side of UA-TCP + UA SecureConversation, as a pure state machine: SecurityPolicy None, or the
/// policy, mode and certificates given at init (the server's certificate from the chosen endpoint).
///
/// Feed it received bytes and the time; it returns actions. It never touches a socket. Framing, chunks,
/// sequence numbers and tokens are the ``SecureChannelCore`` it shares with ``ServerSecureChannel``.
public struct ClientSecureChannel: Sendable, SecureChannelRole {
    public enum State: Sendable, Equatable {
        case idle, awaitingAcknowledge, awaitingOpen, open, closed
    }

    public private(set) var state: State = .idle
    /// The status the channel failed with (an ERR from the server, or a check of ours), nil while it has not.
    public private(set) var failure: StatusCode?
    public let endpointUrl: String
    public var requestedLifetimeMs: UInt32
    var core: SecureChannelCore
    private var nextRequestId: UInt32 = 0
    private var openRequestId: UInt32?
    private var renewAtNs: UInt64 = .max
    private var renewing = false
    /// The nonce of the OPN request in flight (secured policies).
    private var clientNonce: [UInt8] = []

    public init(endpointUrl: String, limits: TransportLimits = TransportLimits(), requestedLifetimeMs: UInt32 = 600_000) {
        self.endpointUrl = endpointUrl
        self.requestedLifetimeMs = requestedLifetimeMs
        core = SecureChannelCore(channelId: 0, limits: limits, security: ChannelSecurity())
    }

    /// A channel secured by `policy` and `mode` with this client's certificate and key and the server's certificate
    /// (of the endpoint chosen). Throws a ``ChannelFailure``-backed ``StatusCode`` for an unusable server certificate.
    init(endpointUrl: String, limits: TransportLimits = TransportLimits(), requestedLifetimeMs: UInt32 = 600_000,
         security: ChannelSecurity) {
        self.endpointUrl = endpointUrl
        self.requestedLifetimeMs = requestedLifetimeMs
        core = SecureChannelCore(channelId: 0, limits: limits, security: security)
    }

    /// The channel's policy and mode.
    public var securityPolicy: SecurityPolicy { core.security.policy }
    public var securityMode: MessageSecurityMode { core.security.mode }

    public var limits: TransportLimits { core.limits }
    /// The newest token (nil until the channel opened).
    public var token: ChannelSecurityToken? { core.currentToken }
    var isClosed: Bool { state == .closed }

    /// Starts the handshake: sends HEL.
    public mutating func start() -> [ChannelAction] {
        guard state == .idle else { return [] }
        state = .awaitingAcknowledge
        return [.send(TCPFrame(type: .hello, chunkType: UInt8(ascii: "F"),
                               body: HelloMessage(limits: limits, endpointUrl: endpointUrl).encoded).encoded)]
    }

    /// The time (monotonic ns) when the token should be renewed: 75% of its lifetime.
    public var renewDeadlineNs: UInt64 { renewAtNs }

    /// Allocates the next request id (never 0).
    public mutating func makeRequestId() -> UInt32 {
        nextRequestId = nextRequestId == UInt32.max ? 1 : nextRequestId + 1
        return nextRequestId
    }

    /// Encodes `request` into MSG chunks under `requestId`.
    public mutating func send<R: ServiceRequest>(_ request: R, requestId: UInt32) throws -> [ChannelAction] {
        try frame(encodeServiceMessage(request, encodingId: R.encodingId), requestId: requestId).map { .send($0) }
    }

    /// Cuts an encoded service message (``encodeServiceMessage(_:encodingId:)``) into MSG chunks under `requestId`,
    /// numbering them in sending order: write them to the socket in the order returned, before any later frame.
    public mutating func frame(_ message: [UInt8], requestId: UInt32) throws -> [[UInt8]] {
        guard state == .open, token != nil else { throw StatusCode.badSecureChannelClosed }
        return try core.seal(.message, requestId: requestId, message: message, maxChunkCount: Int(limits.maxChunkCount))
    }

    private mutating func sendOpen(_ type: SecurityTokenRequestType) throws -> [ChannelAction] {
        var request = OpenSecureChannelRequest()
        request.requestType = type
        request.requestedLifetime = requestedLifetimeMs
        request.securityMode = core.security.isSecure ? core.security.mode : .none
        if let algorithms = core.security.policy.algorithms {
            clientNonce = Crypto.randomBytes(algorithms.nonceLength)
            request.clientNonce = clientNonce
        }
        let requestId = makeRequestId()
        openRequestId = requestId
        return try core.send(.open, requestId: requestId, message: encodeServiceMessage(request, encodingId: OpenSecureChannelRequest.encodingId))
    }

    /// Renews the token when 75% of its lifetime has passed.
    public mutating func tick(nowNs: UInt64) -> [ChannelAction] {
        guard state == .open, !renewing, nowNs >= renewAtNs else { return [] }
        renewing = true
        do { return try sendOpen(.renew) } catch { return fail(.badInternalError, "renew: \(error)") }
    }

    /// Sends CLO and closes.
    public mutating func close() -> [ChannelAction] {
        guard state == .open, token != nil else {
            state = .closed
            return []
        }
        var actions = (try? core.send(.close, requestId: makeRequestId(),
                                      message: encodeServiceMessage(CloseSecureChannelRequest(), encodingId: CloseSecureChannelRequest.encodingId))) ?? []
        state = .closed
        actions.append(.closed(.good, "closed by client"))
        return actions
    }

    mutating func fail(_ status: StatusCode, _ reason: String) -> [ChannelAction] {
        if state != .closed { failure = status }
        state = .closed
        return [.closed(status, reason)]
    }

    /// Feeds bytes read from the socket.
    public mutating func receive(_ bytes: some Collection<UInt8>, nowNs: UInt64) -> [ChannelAction] {
        process(bytes, nowNs: nowNs)
    }

    mutating func handle(_ frame: TCPFrame, nowNs: UInt64) throws -> [ChannelAction] {
        switch (state, frame.type) {
        case (_, .error):
            let error = try frame.decodeBody(as: ErrorMessage.self)
            return fail(error.error, error.reason ?? "")
        case (.awaitingAcknowledge, .acknowledge):
            let ack = try frame.decodeBody(as: AcknowledgeMessage.self)
            // Our send size is bounded by what the server can receive, and vice versa.
            core.negotiate(peer: ack.limits, boundReceivedFrames: false)
            guard limits.sendBufferSize >= 8192 else { throw ChannelFailure(.badTcpInternalError, "send buffer \(limits.sendBufferSize) too small") }
            state = .awaitingOpen
            return try sendOpen(.issue)
        case (.awaitingOpen, .open), (.open, .open):
            guard let message = try core.receiveOpen(frame) else { return [] }
            guard message.requestId == openRequestId else { throw ChannelFailure(.badSecureChannelIdInvalid, "unexpected OPN response") }
            openRequestId = nil
            let response = try decodeServiceResponse(message.body, as: OpenSecureChannelResponse.self)
            if let token, response.securityToken.channelId != token.channelId {
                throw ChannelFailure(.badSecureChannelIdInvalid, "renewed token for another channel")
            }
            var keys: TokenKeys?
            if let algorithms = core.security.policy.algorithms {
                guard let serverNonce = response.serverNonce, serverNonce.count == algorithms.nonceLength else {
                    throw ChannelFailure(.badNonceInvalid, "server nonce of \(response.serverNonce?.count ?? 0) bytes")
                }
                keys = TokenKeys(algorithms, clientNonce: clientNonce, serverNonce: serverNonce, isClient: true)
            }
            core.install(response.securityToken, keys: keys)
            let lifetime = UInt64(max(response.securityToken.revisedLifetime, 1000))
            renewAtNs = nowNs + lifetime * 750_000
            renewing = false
            state = .open
            return [.opened(response.securityToken)]
        case (.open, .message):
            guard let message = try core.receiveMessage(frame, retireOlderTokens: false) else { return [] }
            return [.message(requestId: message.requestId, body: message.body)]
        case (_, .close):
            return fail(.badSecureChannelClosed, "closed by server")
        default:
            return fail(.badTcpMessageTypeInvalid, "\(frame.type.rawValue) in state \(state)")
        }
    }
}
