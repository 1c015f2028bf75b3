import Foundation

/// What a channel state machine asks its owner to do.
public enum ChannelAction: Sendable, Equatable {
    /// Write these bytes to the socket.
    case send([UInt8])
    /// The channel is open (or its token was renewed).
    case opened(ChannelSecurityToken)
    /// A whole service message arrived for `requestId` (encoding NodeId + structure).
    case message(requestId: UInt32, body: [UInt8])
    /// The channel is finished; close the socket.
    case closed(StatusCode, String)
}

/// Why a channel ends: the status its owner reports (and a server sends in ERR) and a reason for the log.
struct ChannelFailure: Error {
    var status: StatusCode
    var reason: String

    init(_ status: StatusCode, _ reason: String) {
        self.status = status
        self.reason = reason
    }
}

/// The security a channel applies to each chunk. Only None today; Sign and SignAndEncrypt belong in
/// ``SecureChannelCore/seal(_:requestId:message:maxChunkCount:)`` and ``SecureChannelCore/unseal(_:)``.
enum ChannelSecurityPolicy: Sendable, Equatable {
    case none

    public var uri: String {
        switch self {
        case .none: securityPolicyNoneUri
        }
    }
}

/// The half of UA SecureConversation that a client and a server share (open62541, too, has one receive
/// path for both): framing, chunk headers and their security, sequence numbers, chunk assembly and the
/// tokens a received chunk may name.
///
/// The role on top (``ClientSecureChannel``, ``ServerSecureChannel``) decides what a frame means in its
/// state; every chunk it sends passes through ``seal(_:requestId:message:maxChunkCount:)`` and every chunk
/// it receives through ``unseal(_:)``: the one place where signing and encryption go.
struct SecureChannelCore: Sendable {
    /// The buffer sizes, negotiated by HEL/ACK once ``negotiate(peer:boundReceivedFrames:)`` ran.
    public private(set) var limits: TransportLimits
    /// The channel's id: the server's choice, 0 on a client until its first token arrives.
    public private(set) var channelId: UInt32
    /// Tokens a received MSG chunk may name, oldest first, at most two; the last secures what is sent.
    public private(set) var tokens: [ChannelSecurityToken] = []
    public let policy: ChannelSecurityPolicy = .none
    private var decoder: FrameDecoder
    private var assembler: ChunkAssembler
    private var sendSequence: UInt32 = 0

    init(channelId: UInt32, limits: TransportLimits) {
        self.channelId = channelId
        self.limits = limits
        decoder = FrameDecoder(maxFrameSize: Int(limits.receiveBufferSize))
        assembler = ChunkAssembler(maxMessageSize: Int(limits.maxMessageSize), maxChunkCount: Int(limits.maxChunkCount))
    }

    /// The token that secures chunks sent now.
    public var currentToken: ChannelSecurityToken? { tokens.last }

    // MARK: Receiving

    mutating func append(_ bytes: some Collection<UInt8>) { decoder.append(bytes) }

    /// The next whole frame, nil while more bytes are needed.
    mutating func nextFrame() throws -> TCPFrame? {
        do { return try decoder.next() } catch { throw ChannelFailure(.badTcpMessageTypeInvalid, "\(error)") }
    }

    /// Takes the peer's HEL or ACK limits: each side sends no more than the other receives.
    /// `boundReceivedFrames`: from now on refuse frames larger than the negotiated receive size.
    mutating func negotiate(peer: TransportLimits, boundReceivedFrames: Bool) {
        limits.sendBufferSize = min(limits.sendBufferSize, peer.receiveBufferSize)
        limits.receiveBufferSize = min(limits.receiveBufferSize, peer.sendBufferSize)
        if peer.maxMessageSize > 0 { limits.maxMessageSize = min(limits.maxMessageSize, peer.maxMessageSize) }
        // The peer's chunk limit bounds what is sent (0: none).
        limits.maxChunkCount = peer.maxChunkCount
        if boundReceivedFrames { decoder.maxFrameSize = Int(limits.receiveBufferSize) }
    }

    /// An OPN chunk: its security checked, then added to its message; the message once its last chunk arrived.
    mutating func receiveOpen(_ frame: TCPFrame) throws -> ReceivedMessage? {
        let chunk = try unseal(frame)
        guard case .asymmetric(let policyUri, _, _) = chunk.securityHeader, policyUri == policy.uri else {
            throw ChannelFailure(.badSecurityPolicyRejected, "only SecurityPolicy None is supported")
        }
        return try assemble(chunk)
    }

    /// A MSG chunk: channel and token checked, then added to its message; the message once its last chunk arrived.
    /// `retireOlderTokens`: once the peer uses the newest token, the older one is no longer accepted.
    mutating func receiveMessage(_ frame: TCPFrame, retireOlderTokens: Bool) throws -> ReceivedMessage? {
        let chunk = try unseal(frame)
        guard !tokens.isEmpty, chunk.channelId == channelId else {
            throw ChannelFailure(.badSecureChannelIdInvalid, "channel id \(chunk.channelId)")
        }
        guard case .symmetric(let tokenId) = chunk.securityHeader, tokens.contains(where: { $0.tokenId == tokenId }) else {
            throw ChannelFailure(.badSecureChannelTokenUnknown, "unknown token")
        }
        if retireOlderTokens, tokenId == tokens.last?.tokenId, tokens.count > 1 { tokens.removeFirst(tokens.count - 1) }
        return try assemble(chunk)
    }

    private mutating func assemble(_ chunk: SecureChunk) throws -> ReceivedMessage? {
        guard let body = try assembler.add(chunk) else { return nil }
        return ReceivedMessage(channelId: chunk.channelId, requestId: chunk.requestId, body: body)
    }

    /// Decodes a received chunk and undoes its security (with None: checks nothing, removes nothing).
    /// Sign / SignAndEncrypt: decrypt and verify the signature here, before the sequence number is trusted.
    func unseal(_ frame: TCPFrame) throws -> SecureChunk {
        switch policy {
        case .none: try SecureChunk(frame: frame)
        }
    }

    // MARK: Tokens

    /// Adds a token issued (server) or received (client); the oldest beyond two is forgotten.
    mutating func install(_ token: ChannelSecurityToken) {
        channelId = token.channelId
        tokens.append(token)
        if tokens.count > 2 { tokens.removeFirst(tokens.count - 2) }
    }

    // MARK: Sending

    /// Cuts `message` into chunks of `type` under `requestId`, numbered in sending order: write them in the
    /// order returned, before any later ones. OPN carries the asymmetric header, MSG and CLO the current token.
    /// Sign / SignAndEncrypt: pad, sign and encrypt each chunk here.
    mutating func seal(_ type: TCPMessageType, requestId: UInt32, message: [UInt8], maxChunkCount: Int) throws -> [[UInt8]] {
        let header: SecurityHeader
        if type == .open {
            header = .asymmetric(policyUri: policy.uri, senderCertificate: nil, receiverThumbprint: nil)
        } else {
            guard let token = tokens.last else { throw StatusCode.badSecureChannelClosed }
            header = .symmetric(tokenId: token.tokenId)
        }
        switch policy {
        case .none:
            return try SecureChunk.encode(type: type, channelId: channelId, securityHeader: header, requestId: requestId,
                                          message: message, maxChunkSize: Int(limits.sendBufferSize),
                                          maxChunkCount: maxChunkCount, sequenceNumber: &sendSequence)
        }
    }

    /// ``seal(_:requestId:message:maxChunkCount:)`` with the negotiated chunk limit, as send actions.
    mutating func send(_ type: TCPMessageType, requestId: UInt32, message: [UInt8]) throws -> [ChannelAction] {
        try seal(type, requestId: requestId, message: message, maxChunkCount: Int(limits.maxChunkCount)).map { .send($0) }
    }
}

/// A whole message assembled from its chunks.
struct ReceivedMessage {
    var channelId: UInt32
    var requestId: UInt32
    var body: [UInt8]
}

/// One end of a channel on top of ``SecureChannelCore``: what frames mean in its state, and how it fails.
protocol SecureChannelRole {
    var core: SecureChannelCore { get set }
    var isClosed: Bool { get }
    /// Handles one frame; a thrown error ends the channel through ``fail(_:_:)``.
    mutating func handle(_ frame: TCPFrame, nowNs: UInt64) throws -> [ChannelAction]
    /// Closes the channel for `status` and says what to do about it.
    mutating func fail(_ status: StatusCode, _ reason: String) -> [ChannelAction]
}

extension SecureChannelRole {
    /// The one receive path of both ends: bytes → frames → the role's handling, until more bytes are due or it closed.
    mutating func process(_ bytes: some Collection<UInt8>, nowNs: UInt64) -> [ChannelAction] {
        guard !isClosed else { return [] }
        core.append(bytes)
        var actions: [ChannelAction] = []
        while !isClosed {
            do {
                guard let frame = try core.nextFrame() else { break }
                actions += try handle(frame, nowNs: nowNs)
            } catch let failure as ChannelFailure {
                actions += fail(failure.status, failure.reason)
            } catch let status as StatusCode {
                actions += fail(status, "\(status)")
            } catch {
                actions += fail(.badDecodingError, "\(error)")
            }
        }
        return actions
    }
}

extension TCPFrame {
    /// The body of a HEL, ACK or ERR frame, decoded.
    func decodeBody<T: UADecodable>(as type: T.Type = T.self) throws -> T {
        var reader = BinaryReader(body)
        return try T(from: &reader)
    }
}

extension StatusCode {
    public static let badResponseTooLarge = StatusCode(0x80B9_0000)
}
