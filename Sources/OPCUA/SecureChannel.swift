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

/// Client side of UA-TCP + UA SecureConversation with SecurityPolicy None, as a pure state machine.
///
/// Feed it received bytes and the time; it returns actions. It never touches a socket.
public struct ClientSecureChannel: Sendable {
    public enum State: Sendable, Equatable {
        case idle, awaitingAcknowledge, awaitingOpen, open, closed
    }

    public private(set) var state: State = .idle
    public let endpointUrl: String
    public private(set) var limits: TransportLimits
    public private(set) var token: ChannelSecurityToken?
    public var requestedLifetimeMs: UInt32
    private var previousTokenId: UInt32?
    private var decoder: FrameDecoder
    private var assembler: ChunkAssembler
    private var sendSequence: UInt32 = 0
    private var nextRequestId: UInt32 = 0
    private var openRequestId: UInt32?
    private var renewAtNs: UInt64 = .max
    private var renewing = false

    public init(endpointUrl: String, limits: TransportLimits = TransportLimits(), requestedLifetimeMs: UInt32 = 600_000) {
        self.endpointUrl = endpointUrl
        self.limits = limits
        self.requestedLifetimeMs = requestedLifetimeMs
        decoder = FrameDecoder(maxFrameSize: Int(limits.receiveBufferSize))
        assembler = ChunkAssembler(maxMessageSize: Int(limits.maxMessageSize), maxChunkCount: Int(limits.maxChunkCount))
    }

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
        guard state == .open, let token else { throw StatusCode.badSecureChannelClosed }
        return try SecureChunk.encode(type: .message, channelId: token.channelId, securityHeader: .symmetric(tokenId: token.tokenId),
                                      requestId: requestId, message: message, maxChunkSize: Int(limits.sendBufferSize),
                                      maxChunkCount: Int(limits.maxChunkCount), sequenceNumber: &sendSequence)
    }

    private mutating func chunks(_ type: TCPMessageType, tokenId: UInt32?, requestId: UInt32, body: [UInt8]) throws -> [ChannelAction] {
        let header: SecurityHeader = tokenId.map { .symmetric(tokenId: $0) }
            ?? .asymmetric(policyUri: securityPolicyNoneUri, senderCertificate: nil, receiverThumbprint: nil)
        let encoded = try SecureChunk.encode(type: type, channelId: token?.channelId ?? 0, securityHeader: header,
                                             requestId: requestId, message: body, maxChunkSize: Int(limits.sendBufferSize),
                                             maxChunkCount: Int(limits.maxChunkCount), sequenceNumber: &sendSequence)
        return encoded.map { .send($0) }
    }

    private mutating func sendOpen(_ type: SecurityTokenRequestType) throws -> [ChannelAction] {
        var request = OpenSecureChannelRequest()
        request.requestType = type
        request.requestedLifetime = requestedLifetimeMs
        let requestId = makeRequestId()
        openRequestId = requestId
        return try chunks(.open, tokenId: nil, requestId: requestId, body: encodeServiceMessage(request, encodingId: OpenSecureChannelRequest.encodingId))
    }

    /// Renews the token when 75% of its lifetime has passed.
    public mutating func tick(nowNs: UInt64) -> [ChannelAction] {
        guard state == .open, !renewing, nowNs >= renewAtNs else { return [] }
        renewing = true
        do { return try sendOpen(.renew) } catch { return fail(.badInternalError, "renew: \(error)") }
    }

    /// Sends CLO and closes.
    public mutating func close() -> [ChannelAction] {
        guard state == .open, let token else {
            state = .closed
            return []
        }
        var actions = (try? chunks(.close, tokenId: token.tokenId, requestId: makeRequestId(),
                                   body: encodeServiceMessage(CloseSecureChannelRequest(), encodingId: CloseSecureChannelRequest.encodingId))) ?? []
        state = .closed
        actions.append(.closed(.good, "closed by client"))
        return actions
    }

    private mutating func fail(_ status: StatusCode, _ reason: String) -> [ChannelAction] {
        state = .closed
        return [.closed(status, reason)]
    }

    /// Feeds bytes read from the socket.
    public mutating func receive(_ bytes: some Collection<UInt8>, nowNs: UInt64) -> [ChannelAction] {
        guard state != .closed else { return [] }
        decoder.append(bytes)
        var actions: [ChannelAction] = []
        while state != .closed {
            let frame: TCPFrame?
            do { frame = try decoder.next() } catch {
                actions += fail(.badTcpMessageTypeInvalid, "\(error)")
                break
            }
            guard let frame else { break }
            actions += handle(frame, nowNs: nowNs)
        }
        return actions
    }

    private mutating func handle(_ frame: TCPFrame, nowNs: UInt64) -> [ChannelAction] {
        do {
            switch (state, frame.type) {
            case (_, .error):
                var reader = BinaryReader(frame.body)
                let error = try ErrorMessage(from: &reader)
                return fail(error.error, error.reason ?? "")
            case (.awaitingAcknowledge, .acknowledge):
                var reader = BinaryReader(frame.body)
                let ack = try AcknowledgeMessage(from: &reader)
                // Our send size is bounded by what the server can receive, and vice versa.
                limits.sendBufferSize = min(limits.sendBufferSize, ack.limits.receiveBufferSize)
                limits.receiveBufferSize = min(limits.receiveBufferSize, ack.limits.sendBufferSize)
                if ack.limits.maxMessageSize > 0 { limits.maxMessageSize = min(limits.maxMessageSize, ack.limits.maxMessageSize) }
                if ack.limits.maxChunkCount > 0 { limits.maxChunkCount = ack.limits.maxChunkCount }
                guard limits.sendBufferSize >= 8192 else { return fail(.badTcpInternalError, "send buffer \(limits.sendBufferSize) too small") }
                state = .awaitingOpen
                return try sendOpen(.issue)
            case (.awaitingOpen, .open), (.open, .open):
                let chunk = try SecureChunk(frame: frame)
                guard let message = try assembler.add(chunk) else { return [] }
                guard chunk.requestId == openRequestId else { return fail(.badSecureChannelIdInvalid, "unexpected OPN response") }
                openRequestId = nil
                let response = try decodeServiceResponse(message, as: OpenSecureChannelResponse.self)
                if let token, response.securityToken.channelId != token.channelId {
                    return fail(.badSecureChannelIdInvalid, "renewed token for another channel")
                }
                previousTokenId = token?.tokenId
                token = response.securityToken
                let lifetime = UInt64(max(response.securityToken.revisedLifetime, 1000))
                renewAtNs = nowNs + lifetime * 750_000
                renewing = false
                state = .open
                return [.opened(response.securityToken)]
            case (.open, .message):
                let chunk = try SecureChunk(frame: frame)
                guard let token, chunk.channelId == token.channelId else { return fail(.badSecureChannelIdInvalid, "channel id \(chunk.channelId)") }
                guard case .symmetric(let tokenId) = chunk.securityHeader, tokenId == token.tokenId || tokenId == previousTokenId else {
                    return fail(.badSecureChannelTokenUnknown, "unknown token")
                }
                guard let message = try assembler.add(chunk) else { return [] }
                return [.message(requestId: chunk.requestId, body: message)]
            case (_, .close):
                return fail(.badSecureChannelClosed, "closed by server")
            default:
                return fail(.badTcpMessageTypeInvalid, "\(frame.type.rawValue) in state \(state)")
            }
        } catch let status as StatusCode {
            return fail(status, "\(status)")
        } catch {
            return fail(.badDecodingError, "\(error)")
        }
    }
}

/// Server side of UA-TCP + UA SecureConversation with SecurityPolicy None, as a pure state machine.
public struct ServerSecureChannel: Sendable {
    public enum State: Sendable, Equatable {
        case awaitingHello, awaitingOpen, open, closed
    }

    public private(set) var state: State = .awaitingHello
    public let channelId: UInt32
    public private(set) var limits: TransportLimits
    public private(set) var endpointUrl: String?
    public private(set) var tokens: [ChannelSecurityToken] = []
    private var decoder: FrameDecoder
    private var assembler: ChunkAssembler
    private var sendSequence: UInt32 = 0
    private var nextTokenId: UInt32 = 0
    private var expiresAtNs: UInt64 = .max
    public var maxLifetimeMs: UInt32 = 3_600_000

    public init(channelId: UInt32, limits: TransportLimits = TransportLimits()) {
        self.channelId = channelId
        self.limits = limits
        decoder = FrameDecoder(maxFrameSize: Int(limits.receiveBufferSize))
        assembler = ChunkAssembler(maxMessageSize: Int(limits.maxMessageSize), maxChunkCount: Int(limits.maxChunkCount))
    }

    /// The current token id used for sending.
    public var currentTokenId: UInt32? { tokens.last?.tokenId }

    /// Closes the channel once its token lifetime (plus 25%) passes without a renewal.
    public mutating func tick(nowNs: UInt64) -> [ChannelAction] {
        guard state == .open, nowNs > expiresAtNs else { return [] }
        return fail(.badSecureChannelTokenUnknown, "security token expired")
    }

    public mutating func receive(_ bytes: some Collection<UInt8>, nowNs: UInt64) -> [ChannelAction] {
        guard state != .closed else { return [] }
        decoder.append(bytes)
        var actions: [ChannelAction] = []
        while state != .closed {
            let frame: TCPFrame?
            do { frame = try decoder.next() } catch {
                actions += fail(.badTcpMessageTypeInvalid, "\(error)")
                break
            }
            guard let frame else { break }
            actions += handle(frame, nowNs: nowNs)
        }
        return actions
    }

    /// Encodes a response (or ServiceFault) for `requestId`.
    public mutating func respond<R: UAEncodable>(_ response: R, encodingId: UInt32, requestId: UInt32) -> [ChannelAction] {
        guard state == .open, let tokenId = currentTokenId else { return [] }
        do {
            return try SecureChunk.encode(type: .message, channelId: channelId, securityHeader: .symmetric(tokenId: tokenId),
                                          requestId: requestId, message: encodeServiceMessage(response, encodingId: encodingId),
                                          maxChunkSize: Int(limits.sendBufferSize), maxChunkCount: Int(limits.maxChunkCount),
                                          sequenceNumber: &sendSequence).map { .send($0) }
        } catch {
            var header = ResponseHeader()
            header.serviceResult = .badResponseTooLarge
            return (try? SecureChunk.encode(type: .message, channelId: channelId, securityHeader: .symmetric(tokenId: tokenId),
                                            requestId: requestId, message: encodeServiceMessage(ServiceFault(responseHeader: header), encodingId: ServiceFault.encodingId),
                                            maxChunkSize: Int(limits.sendBufferSize), maxChunkCount: 0,
                                            sequenceNumber: &sendSequence).map { .send($0) }) ?? []
        }
    }

    private mutating func fail(_ status: StatusCode, _ reason: String) -> [ChannelAction] {
        let wasOpen = state != .closed
        state = .closed
        guard wasOpen else { return [] }
        let error = TCPFrame(type: .error, chunkType: UInt8(ascii: "F"), body: ErrorMessage(error: status, reason: reason).encoded)
        return [.send(error.encoded), .closed(status, reason)]
    }

    private mutating func handle(_ frame: TCPFrame, nowNs: UInt64) -> [ChannelAction] {
        do {
            switch (state, frame.type) {
            case (.awaitingHello, .hello):
                var reader = BinaryReader(frame.body)
                let hello = try HelloMessage(from: &reader)
                guard hello.limits.receiveBufferSize >= 8192, hello.limits.sendBufferSize >= 8192 else {
                    return fail(.badTcpInternalError, "buffers too small")
                }
                endpointUrl = hello.endpointUrl
                limits.sendBufferSize = min(limits.sendBufferSize, hello.limits.receiveBufferSize)
                limits.receiveBufferSize = min(limits.receiveBufferSize, hello.limits.sendBufferSize)
                if hello.limits.maxMessageSize > 0 { limits.maxMessageSize = min(limits.maxMessageSize, hello.limits.maxMessageSize) }
                limits.maxChunkCount = hello.limits.maxChunkCount
                decoder.maxFrameSize = Int(limits.receiveBufferSize)
                state = .awaitingOpen
                return [.send(TCPFrame(type: .acknowledge, chunkType: UInt8(ascii: "F"), body: AcknowledgeMessage(limits: limits).encoded).encoded)]
            case (.awaitingOpen, .open), (.open, .open):
                let chunk = try SecureChunk(frame: frame)
                guard case .asymmetric(let policy, _, _) = chunk.securityHeader, policy == securityPolicyNoneUri else {
                    return fail(.badSecurityPolicyRejected, "only SecurityPolicy None is supported")
                }
                guard let message = try assembler.add(chunk) else { return [] }
                var reader = BinaryReader(message)
                guard try readServiceTypeId(&reader) == OpenSecureChannelRequest.encodingId else {
                    return fail(.badTcpMessageTypeInvalid, "OPN without OpenSecureChannelRequest")
                }
                let request = try OpenSecureChannelRequest(from: &reader)
                guard request.securityMode == .none else { return fail(.badSecurityPolicyRejected, "security mode") }
                if state == .awaitingOpen {
                    guard request.requestType == .issue else { return fail(.badSecureChannelIdInvalid, "renew before issue") }
                } else {
                    guard request.requestType == .renew, chunk.channelId == channelId else { return fail(.badSecureChannelIdInvalid, "bad renew") }
                }
                nextTokenId += 1
                let lifetime = min(max(request.requestedLifetime, 10_000), maxLifetimeMs)
                let token = ChannelSecurityToken(channelId: channelId, tokenId: nextTokenId, createdAt: .now, revisedLifetime: lifetime)
                tokens.append(token)
                if tokens.count > 2 { tokens.removeFirst(tokens.count - 2) }
                expiresAtNs = nowNs + UInt64(lifetime) * 1_250_000
                state = .open
                var response = OpenSecureChannelResponse(securityToken: token)
                response.responseHeader.requestHandle = request.requestHeader.requestHandle
                let chunks = try SecureChunk.encode(
                    type: .open, channelId: channelId,
                    securityHeader: .asymmetric(policyUri: securityPolicyNoneUri, senderCertificate: nil, receiverThumbprint: nil),
                    requestId: chunk.requestId, message: encodeServiceMessage(response, encodingId: OpenSecureChannelResponse.encodingId),
                    maxChunkSize: Int(limits.sendBufferSize), maxChunkCount: 0, sequenceNumber: &sendSequence)
                return chunks.map { .send($0) } + [.opened(token)]
            case (.open, .message):
                let chunk = try SecureChunk(frame: frame)
                guard chunk.channelId == channelId else { return fail(.badSecureChannelIdInvalid, "channel id \(chunk.channelId)") }
                guard case .symmetric(let tokenId) = chunk.securityHeader, tokens.contains(where: { $0.tokenId == tokenId }) else {
                    return fail(.badSecureChannelTokenUnknown, "unknown token")
                }
                // Once the client uses the newest token, older ones are no longer accepted.
                if tokenId == tokens.last?.tokenId, tokens.count > 1 { tokens.removeFirst(tokens.count - 1) }
                guard let message = try assembler.add(chunk) else { return [] }
                return [.message(requestId: chunk.requestId, body: message)]
            case (.open, .close), (.awaitingOpen, .close):
                state = .closed
                return [.closed(.good, "closed by client")]
            default:
                return fail(.badTcpMessageTypeInvalid, "\(frame.type.rawValue) in state \(state)")
            }
        } catch let status as StatusCode {
            return fail(status, "\(status)")
        } catch {
            return fail(.badDecodingError, "\(error)")
        }
    }
}

extension StatusCode {
    public static let badResponseTooLarge = StatusCode(0x80B9_0000)
}
