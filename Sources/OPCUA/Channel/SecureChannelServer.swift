import Foundation

/// Server side of UA-TCP + UA SecureConversation, as a pure state machine: the first OPN fixes the channel's
/// policy (None, or one of ``ServerSecurity/endpoints`` with a trusted client certificate) and its request the mode.
///
/// Framing, chunks, sequence numbers and tokens are the ``SecureChannelCore`` it shares with ``ClientSecureChannel``.
public struct ServerSecureChannel: Sendable, SecureChannelRole {
    public enum State: Sendable, Equatable {
        case awaitingHello, awaitingOpen, open, closed
    }

    public private(set) var state: State = .awaitingHello
    public let channelId: UInt32
    public private(set) var endpointUrl: String?
    public var maxLifetimeMs: UInt32 = 3_600_000
    var core: SecureChannelCore
    private var nextTokenId: UInt32 = 0
    private var expiresAtNs: UInt64 = .max
    /// What the server offers; nil: SecurityPolicy None only.
    public let serverSecurity: ServerSecurity?

    public init(channelId: UInt32, limits: TransportLimits = TransportLimits(), security: ServerSecurity? = nil) {
        self.channelId = channelId
        serverSecurity = security
        core = SecureChannelCore(channelId: channelId, limits: limits)
        core.sendsWithOldestToken = true
    }

    /// The channel's policy and mode (None until an OPN fixed them).
    public var securityPolicy: SecurityPolicy { core.security.policy }
    public var securityMode: MessageSecurityMode { core.security.mode }
    /// The client's certificate (DER) on a secured channel.
    public var peerCertificate: [UInt8]? { core.security.remoteCertificate }
    /// The client's public key on a secured channel.
    public var peerKey: RSAPublicKey? { core.security.remoteKey }

    public var limits: TransportLimits { core.limits }
    public var tokens: [ChannelSecurityToken] { core.tokens }
    /// The current token id used for sending.
    public var currentTokenId: UInt32? { core.currentToken?.tokenId }
    var isClosed: Bool { state == .closed }

    /// Closes the channel once its token lifetime (plus 25%) passes without a renewal.
    public mutating func tick(nowNs: UInt64) -> [ChannelAction] {
        guard state == .open, nowNs > expiresAtNs else { return [] }
        return fail(.badSecureChannelTokenUnknown, "security token expired")
    }

    public mutating func receive(_ bytes: some Collection<UInt8>, nowNs: UInt64) -> [ChannelAction] {
        process(bytes, nowNs: nowNs)
    }

    /// Encodes a response (or ServiceFault) for `requestId`.
    public mutating func respond<R: UAEncodable>(_ response: R, encodingId: UInt32, requestId: UInt32) -> [ChannelAction] {
        guard state == .open, currentTokenId != nil else { return [] }
        do {
            return try core.send(.message, requestId: requestId, message: encodeServiceMessage(response, encodingId: encodingId))
        } catch {
            var header = ResponseHeader()
            header.serviceResult = .badResponseTooLarge
            let fault = encodeServiceMessage(ServiceFault(responseHeader: header), encodingId: ServiceFault.encodingId)
            return (try? core.seal(.message, requestId: requestId, message: fault, maxChunkCount: 0).map { .send($0) }) ?? []
        }
    }

    mutating func fail(_ status: StatusCode, _ reason: String) -> [ChannelAction] {
        let wasOpen = state != .closed
        state = .closed
        guard wasOpen else { return [] }
        let error = TCPFrame(type: .error, chunkType: UInt8(ascii: "F"), body: ErrorMessage(error: status, reason: reason).encoded)
        return [.send(error.encoded), .closed(status, reason)]
    }

    mutating func handle(_ frame: TCPFrame, nowNs: UInt64) throws -> [ChannelAction] {
        switch (state, frame.type) {
        case (.awaitingHello, .hello):
            let hello = try frame.decodeBody(as: HelloMessage.self)
            guard hello.limits.receiveBufferSize >= 8192, hello.limits.sendBufferSize >= 8192 else {
                throw ChannelFailure(.badTcpInternalError, "buffers too small")
            }
            endpointUrl = hello.endpointUrl
            core.negotiate(peer: hello.limits, boundReceivedFrames: true)
            state = .awaitingOpen
            return [.send(TCPFrame(type: .acknowledge, chunkType: UInt8(ascii: "F"), body: AcknowledgeMessage(limits: limits).encoded).encoded)]
        case (.awaitingOpen, .open), (.open, .open):
            guard let message = try core.receiveOpen(frame, adopt: { [serverSecurity] uri, certificate in
                try Self.adopt(policyUri: uri, senderCertificate: certificate, serverSecurity)
            }) else { return [] }
            return try open(message, nowNs: nowNs)
        case (.open, .message):
            guard let message = try core.receiveMessage(frame, retireOlderTokens: true) else { return [] }
            return [.message(requestId: message.requestId, body: message.body)]
        case (.open, .close), (.awaitingOpen, .close):
            state = .closed
            return [.closed(.good, "closed by client")]
        default:
            return fail(.badTcpMessageTypeInvalid, "\(frame.type.rawValue) in state \(state)")
        }
    }

    /// Issues or renews a token for a whole OpenSecureChannelRequest.
    private mutating func open(_ message: ReceivedMessage, nowNs: UInt64) throws -> [ChannelAction] {
        var reader = BinaryReader(message.body)
        guard try readServiceTypeId(&reader) == OpenSecureChannelRequest.encodingId else {
            throw ChannelFailure(.badTcpMessageTypeInvalid, "OPN without OpenSecureChannelRequest")
        }
        let request = try OpenSecureChannelRequest(from: &reader)
        let policy = core.security.policy
        if let algorithms = policy.algorithms {
            guard request.securityMode == .sign || request.securityMode == .signAndEncrypt,
                  serverSecurity?.offers(policy, request.securityMode) == true else {
                throw ChannelFailure(.badSecurityModeRejected, "\(policy.rawValue) with mode \(request.securityMode) is not offered")
            }
            guard state == .awaitingOpen || request.securityMode == core.security.mode else {
                throw ChannelFailure(.badSecurityModeRejected, "renewal changes the security mode")
            }
            guard let nonce = request.clientNonce, nonce.count == algorithms.nonceLength else {
                throw ChannelFailure(.badNonceInvalid, "client nonce of \(request.clientNonce?.count ?? 0) bytes")
            }
            core.security.mode = request.securityMode
        } else {
            guard request.securityMode == .none else { throw ChannelFailure(.badSecurityModeRejected, "mode \(request.securityMode) with policy None") }
        }
        if state == .awaitingOpen {
            guard request.requestType == .issue else { throw ChannelFailure(.badSecureChannelIdInvalid, "renew before issue") }
        } else {
            guard request.requestType == .renew, message.channelId == channelId else { throw ChannelFailure(.badSecureChannelIdInvalid, "bad renew") }
        }
        nextTokenId += 1
        let lifetime = min(max(request.requestedLifetime, 10_000), maxLifetimeMs)
        let token = ChannelSecurityToken(channelId: channelId, tokenId: nextTokenId, createdAt: .now, revisedLifetime: lifetime)
        var response = OpenSecureChannelResponse(securityToken: token)
        if let algorithms = policy.algorithms, let clientNonce = request.clientNonce {
            let serverNonce = Crypto.randomBytes(algorithms.nonceLength)
            response.serverNonce = serverNonce
            core.install(token, keys: TokenKeys(algorithms, clientNonce: clientNonce, serverNonce: serverNonce, isClient: false))
        } else {
            core.install(token)
        }
        expiresAtNs = nowNs + UInt64(lifetime) * 1_250_000
        state = .open
        response.responseHeader.requestHandle = request.requestHeader.requestHandle
        let chunks = try core.seal(.open, requestId: message.requestId,
                                   message: encodeServiceMessage(response, encodingId: OpenSecureChannelResponse.encodingId), maxChunkCount: 0)
        return chunks.map { .send($0) } + [.opened(token)]
    }

    /// The security of a channel whose first OPN names `policyUri` and `senderCertificate`: None always (a None
    /// channel serves discovery; sessions on it only when offered), a secured policy when offered and the
    /// client's certificate is trusted. Throws the status to refuse with.
    static func adopt(policyUri: String, senderCertificate: [UInt8]?, _ serverSecurity: ServerSecurity?) throws -> ChannelSecurity {
        guard let policy = SecurityPolicy(uri: policyUri) else {
            throw ChannelFailure(.badSecurityPolicyRejected, "policy \(policyUri) not supported")
        }
        guard policy != .none else { return ChannelSecurity() }
        guard let serverSecurity, serverSecurity.endpoints.contains(where: { $0.0 == policy }) else {
            throw ChannelFailure(.badSecurityPolicyRejected, "policy \(policy.rawValue) not offered")
        }
        guard let certificate = senderCertificate else { throw ChannelFailure(.badCertificateInvalid, "OPN without a client certificate") }
        if let status = serverSecurity.trust.check(peerCertificate: certificate, expectedApplicationURI: nil) {
            throw ChannelFailure(status, "client certificate refused")
        }
        return try ChannelSecurity(policy: policy, mode: .invalid, localCertificate: serverSecurity.certificate,
                                   localKey: serverSecurity.privateKey, remoteCertificate: certificate)
    }
}
