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

/// The half of UA SecureConversation that a client and a server share (open62541, too, has one receive
/// path for both): framing, chunk headers and their security, sequence numbers, chunk assembly and the
/// tokens a received chunk may name.
///
/// The role on top (``ClientSecureChannel``, ``ServerSecureChannel``) decides what a frame means in its
/// state; every chunk it sends passes through ``seal(_:requestId:message:maxChunkCount:)`` and every chunk
/// it receives through ``unseal(_:)``: the one place where signing and encryption go (OPC UA Part 6, 6.7;
/// the layouts are in Security/ChannelSecurity.swift).
struct SecureChannelCore: Sendable {
    /// The buffer sizes, negotiated by HEL/ACK once ``negotiate(peer:boundReceivedFrames:)`` ran.
    public private(set) var limits: TransportLimits
    /// The channel's id: the server's choice, 0 on a client until its first token arrives.
    public private(set) var channelId: UInt32
    /// Tokens a received MSG chunk may name, oldest first, at most two.
    public private(set) var tokens: [ChannelSecurityToken] = []
    /// Policy, mode and certificates; a server adopts them from the first OPN (``receiveOpen(_:adopt:)``).
    var security = ChannelSecurity()
    /// The symmetric keys of each token in ``tokens`` (secured policies only).
    private var keys: [UInt32: TokenKeys] = [:]
    /// Which token secures what is sent: a client uses the newest at once; a server keeps the older one
    /// until the client used the newer (Part 6, 6.7.6), as ``receiveMessage(_:retireOlderTokens:)`` retires it.
    var sendsWithOldestToken = false
    /// Whether the policy is fixed (a client from the start, a server after the first OPN).
    private var securityAdopted = false
    private var decoder: FrameDecoder
    private var assembler: ChunkAssembler
    private var sendSequence: UInt32 = 0

    init(channelId: UInt32, limits: TransportLimits, security: ChannelSecurity? = nil) {
        self.channelId = channelId
        self.limits = limits
        if let security {
            self.security = security
            securityAdopted = true
        }
        decoder = FrameDecoder(maxFrameSize: Int(limits.receiveBufferSize))
        assembler = ChunkAssembler(maxMessageSize: Int(limits.maxMessageSize), maxChunkCount: Int(limits.maxChunkCount))
    }

    /// The newest token.
    public var currentToken: ChannelSecurityToken? { tokens.last }

    /// The token that secures chunks sent now.
    var sendingToken: ChannelSecurityToken? { sendsWithOldestToken ? tokens.first : tokens.last }

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
    /// `adopt` (a server before its first OPN): given the chunk's policy URI and sender certificate, returns the
    /// channel's security or throws the status to refuse it with. Later OPNs must name the same policy and certificate.
    mutating func receiveOpen(_ frame: TCPFrame,
                              adopt: ((_ policyUri: String, _ senderCertificate: [UInt8]?) throws -> ChannelSecurity)? = nil) throws -> ReceivedMessage? {
        let header = try OpenChunkHeader(frame)
        if !securityAdopted, let adopt {
            security = try adopt(header.policyUri, header.senderCertificate)
            securityAdopted = true
        }
        guard header.policyUri == security.policy.uri else {
            throw ChannelFailure(.badSecurityPolicyRejected, "OPN for \(header.policyUri), channel uses \(security.policy.rawValue)")
        }
        let chunk = try unseal(frame)
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
        if retireOlderTokens, tokenId == tokens.last?.tokenId, tokens.count > 1 {
            for old in tokens.dropLast() { keys[old.tokenId] = nil }
            tokens.removeFirst(tokens.count - 1)
        }
        return try assemble(chunk)
    }

    private mutating func assemble(_ chunk: SecureChunk) throws -> ReceivedMessage? {
        guard let body = try assembler.add(chunk) else { return nil }
        return ReceivedMessage(channelId: chunk.channelId, requestId: chunk.requestId, body: body)
    }

    /// Decodes a received chunk and undoes its security: decrypts it and checks its signature and padding
    /// before its sequence number is trusted. With None it checks nothing and removes nothing.
    /// A wrong signature, padding or size throws BadSecurityChecksFailed; an unknown token BadSecureChannelTokenUnknown.
    func unseal(_ frame: TCPFrame) throws -> SecureChunk {
        guard security.isSecure else { return try SecureChunk(frame: frame) }
        if frame.type == .open { return try unsealAsymmetric(frame) }
        return try unsealSymmetric(frame)
    }

    private func unsealAsymmetric(_ frame: TCPFrame) throws -> SecureChunk {
        let header = try OpenChunkHeader(frame)
        guard let localKey = security.localKey, let localCertificate = security.localCertificate,
              let remoteKey = security.remoteKey, let algorithms = security.policy.algorithms else {
            throw ChannelFailure(.badSecurityChecksFailed, "channel without certificates")
        }
        guard header.senderCertificate == security.remoteCertificate else {
            throw ChannelFailure(.badSecurityChecksFailed, "OPN from another certificate than the channel's")
        }
        guard header.receiverThumbprint == Crypto.sha1(localCertificate) else {
            throw ChannelFailure(.badCertificateInvalid, "OPN encrypted for another certificate (thumbprint)")
        }
        var plain: [UInt8]
        do { plain = try localKey.decrypt(frame.body[header.size...], padding: algorithms.encryptionPadding) } catch {
            throw ChannelFailure(.badSecurityChecksFailed, "OPN decryption: \(error)")
        }
        let signatureSize = remoteKey.byteCount
        guard plain.count >= 8 + signatureSize + 1 else { throw ChannelFailure(.badSecurityChecksFailed, "OPN chunk too short") }
        let signed = messageHeader(frame.type, chunkType: frame.chunkType, size: frame.body.count + 8) + frame.body[..<header.size]
            + plain[..<(plain.count - signatureSize)]
        guard remoteKey.verify(plain[(plain.count - signatureSize)...], of: signed, padding: algorithms.signaturePadding) else {
            throw ChannelFailure(.badSecurityChecksFailed, "OPN signature invalid")
        }
        plain.removeLast(signatureSize)
        try removePadding(&plain, extra: localKey.byteCount > 256)
        return try SecureChunk(type: frame.type, chunkType: frame.chunkType, channelId: header.channelId,
                               securityHeader: header.securityHeader, plain: plain)
    }

    private func unsealSymmetric(_ frame: TCPFrame) throws -> SecureChunk {
        guard frame.body.count >= 8 else { throw ChannelFailure(.badSecurityChecksFailed, "chunk shorter than its headers") }
        var reader = BinaryReader(frame.body)
        let channelId = try reader.readUInt32()
        let tokenId = try reader.readUInt32()
        guard let tokenKeys = keys[tokenId], let algorithms = security.policy.algorithms else {
            throw ChannelFailure(.badSecureChannelTokenUnknown, "token \(tokenId) unknown")
        }
        let keys = tokenKeys.remote
        var plain: [UInt8]
        if security.encrypts {
            let cipher = frame.body[8...]
            guard cipher.count % algorithms.blockSize == 0 else { throw ChannelFailure(.badSecurityChecksFailed, "chunk not whole cipher blocks") }
            do { plain = try Crypto.aesCBC(encrypt: false, key: keys.encryptingKey, iv: keys.iv, cipher) } catch {
                throw ChannelFailure(.badSecurityChecksFailed, "decryption: \(error)")
            }
        } else {
            plain = Array(frame.body[8...])
        }
        let signatureSize = algorithms.symmetricSignatureSize
        guard plain.count >= 8 + signatureSize + (security.encrypts ? 1 : 0) else { throw ChannelFailure(.badSecurityChecksFailed, "chunk too short") }
        let signed = messageHeader(frame.type, chunkType: frame.chunkType, size: frame.body.count + 8) + frame.body[..<8]
            + plain[..<(plain.count - signatureSize)]
        guard constantTimeEqual(plain[(plain.count - signatureSize)...], Crypto.hmacSha256(key: keys.signingKey, signed)) else {
            throw ChannelFailure(.badSecurityChecksFailed, "signature invalid")
        }
        plain.removeLast(signatureSize)
        if security.encrypts { try removePadding(&plain, extra: false) }
        return try SecureChunk(type: frame.type, chunkType: frame.chunkType, channelId: channelId,
                               securityHeader: .symmetric(tokenId: tokenId), plain: plain)
    }

    // MARK: Tokens

    /// Adds a token issued (server) or received (client) with its keys (nil with None); the oldest beyond two is forgotten.
    mutating func install(_ token: ChannelSecurityToken, keys tokenKeys: TokenKeys? = nil) {
        channelId = token.channelId
        tokens.append(token)
        keys[token.tokenId] = tokenKeys
        if tokens.count > 2 {
            for old in tokens.prefix(tokens.count - 2) { keys[old.tokenId] = nil }
            tokens.removeFirst(tokens.count - 2)
        }
    }

    // MARK: Sending

    /// Cuts `message` into chunks of `type` under `requestId`, numbered in sending order: write them in the
    /// order returned, before any later ones. OPN carries the asymmetric header, MSG and CLO the sending token.
    /// With a secured policy each chunk is padded, signed and (SignAndEncrypt, and always for OPN) encrypted here.
    mutating func seal(_ type: TCPMessageType, requestId: UInt32, message: [UInt8], maxChunkCount: Int) throws -> [[UInt8]] {
        if type == .open {
            guard security.isSecure else {
                return try SecureChunk.encode(type: type, channelId: channelId,
                                              securityHeader: .asymmetric(policyUri: security.policy.uri, senderCertificate: nil, receiverThumbprint: nil),
                                              requestId: requestId, message: message, maxChunkSize: Int(limits.sendBufferSize),
                                              maxChunkCount: maxChunkCount, sequenceNumber: &sendSequence)
            }
            return try sealAsymmetric(requestId: requestId, message: message, maxChunkCount: maxChunkCount)
        }
        guard let token = sendingToken else { throw StatusCode.badSecureChannelClosed }
        guard security.isSecure else {
            return try SecureChunk.encode(type: type, channelId: channelId, securityHeader: .symmetric(tokenId: token.tokenId),
                                          requestId: requestId, message: message, maxChunkSize: Int(limits.sendBufferSize),
                                          maxChunkCount: maxChunkCount, sequenceNumber: &sendSequence)
        }
        return try sealSymmetric(type, token: token.tokenId, requestId: requestId, message: message, maxChunkCount: maxChunkCount)
    }

    private mutating func nextSequenceNumber() -> UInt32 {
        sendSequence = sendSequence == UInt32.max ? 1 : sendSequence &+ 1
        return sendSequence
    }

    /// Chunk count for `message` with `capacity` body bytes per chunk, within `maxChunkCount` (0: any).
    private func chunkCount(_ messageSize: Int, capacity: Int, maxChunkCount: Int) throws -> Int {
        guard capacity > 0 else { throw StatusCode.badTcpInternalError }
        let count = max(1, (messageSize + capacity - 1) / capacity)
        if maxChunkCount > 0 && count > maxChunkCount { throw StatusCode.badTcpMessageTooLarge }
        return count
    }

    private mutating func sealAsymmetric(requestId: UInt32, message: [UInt8], maxChunkCount: Int) throws -> [[UInt8]] {
        guard let localKey = security.localKey, let localCertificate = security.localCertificate,
              let remoteKey = security.remoteKey, let remoteCertificate = security.remoteCertificate,
              let algorithms = security.policy.algorithms else { throw StatusCode.badSecurityChecksFailed }
        var securityHeader = BinaryWriter()
        SecurityHeader.asymmetric(policyUri: security.policy.uri, senderCertificate: localCertificate,
                                  receiverThumbprint: Crypto.sha1(remoteCertificate)).encode(to: &securityHeader)
        let headerSize = 12 + securityHeader.bytes.count
        let cipherBlock = remoteKey.byteCount
        let plainBlock = remoteKey.plainBlockSize(algorithms.encryptionPadding)
        let signatureSize = localKey.byteCount
        let extra = remoteKey.byteCount > 256
        let maxPlain = (Int(limits.sendBufferSize) - headerSize) / cipherBlock * plainBlock
        let capacity = maxPlain - 8 - signatureSize - (extra ? 2 : 1)
        let count = try chunkCount(message.count, capacity: capacity, maxChunkCount: maxChunkCount)
        var chunks: [[UInt8]] = []
        for index in 0..<count {
            var plain = BinaryWriter()
            plain.write(nextSequenceNumber())
            plain.write(requestId)
            plain.writeRaw(Array(message[(index * capacity)..<min(message.count, (index + 1) * capacity)]))
            var bytes = plain.bytes
            appendPadding(&bytes, blockSize: plainBlock, signatureSize: signatureSize, extra: extra)
            let size = headerSize + (bytes.count + signatureSize) / plainBlock * cipherBlock
            var head = messageHeader(.open, chunkType: index == count - 1 ? UInt8(ascii: "F") : UInt8(ascii: "C"), size: size)
            var channel = BinaryWriter(capacity: 4)
            channel.write(channelId)
            head += channel.bytes + securityHeader.bytes
            do {
                bytes += try localKey.sign(head + bytes, padding: algorithms.signaturePadding)
                chunks.append(head + (try remoteKey.encrypt(bytes, padding: algorithms.encryptionPadding)))
            } catch {
                throw ChannelFailure(.badSecurityChecksFailed, "OPN: \(error)")
            }
        }
        return chunks
    }

    private mutating func sealSymmetric(_ type: TCPMessageType, token: UInt32, requestId: UInt32, message: [UInt8],
                                        maxChunkCount: Int) throws -> [[UInt8]] {
        guard let keys = keys[token]?.local, let algorithms = security.policy.algorithms else { throw StatusCode.badSecureChannelClosed }
        let encrypts = security.encrypts
        let signatureSize = algorithms.symmetricSignatureSize
        let block = algorithms.blockSize
        let room = Int(limits.sendBufferSize) - 16
        let capacity = encrypts ? room / block * block - 8 - signatureSize - 1 : room - 8 - signatureSize
        let count = try chunkCount(message.count, capacity: capacity, maxChunkCount: maxChunkCount)
        var chunks: [[UInt8]] = []
        chunks.reserveCapacity(count)
        for index in 0..<count {
            let from = index * capacity, to = min(message.count, from + capacity)
            var plain = BinaryWriter(capacity: to - from + 8 + signatureSize + block)
            plain.write(nextSequenceNumber())
            plain.write(requestId)
            plain.bytes.append(contentsOf: message[from..<to])
            var bytes = plain.bytes
            if encrypts { appendPadding(&bytes, blockSize: block, signatureSize: signatureSize, extra: false) }
            var head = BinaryWriter(capacity: 16)
            head.writeRaw(Array(type.rawValue.utf8))
            head.write(index == count - 1 ? UInt8(ascii: "F") : UInt8(ascii: "C"))
            head.write(UInt32(16 + bytes.count + signatureSize))
            head.write(channelId)
            head.write(token)
            bytes += Crypto.hmacSha256(key: keys.signingKey, head.bytes + bytes)
            if encrypts {
                do { bytes = try Crypto.aesCBC(encrypt: true, key: keys.encryptingKey, iv: keys.iv, bytes) } catch {
                    throw ChannelFailure(.badSecurityChecksFailed, "encryption: \(error)")
                }
            }
            chunks.append(head.bytes + bytes)
        }
        return chunks
    }

    /// ``seal(_:requestId:message:maxChunkCount:)`` with the negotiated chunk limit, as send actions.
    mutating func send(_ type: TCPMessageType, requestId: UInt32, message: [UInt8]) throws -> [ChannelAction] {
        try seal(type, requestId: requestId, message: message, maxChunkCount: Int(limits.maxChunkCount)).map { .send($0) }
    }
}

/// The plain part of an OPN chunk: channel id and asymmetric security header, and where the rest begins.
struct OpenChunkHeader {
    var channelId: UInt32
    var policyUri: String
    var senderCertificate: [UInt8]?
    var receiverThumbprint: [UInt8]?
    /// Bytes of the frame body taken by channel id and security header.
    var size: Int

    init(_ frame: TCPFrame) throws {
        var reader = BinaryReader(frame.body)
        do {
            channelId = try reader.readUInt32()
            guard let uri = try reader.readString() else { throw ChannelFailure(.badSecurityPolicyRejected, "OPN without a policy") }
            policyUri = uri
            senderCertificate = try reader.readByteString()
            receiverThumbprint = try reader.readByteString()
            if senderCertificate?.isEmpty == true { senderCertificate = nil }
            if receiverThumbprint?.isEmpty == true { receiverThumbprint = nil }
            size = reader.offset
        } catch DecodeError.needMoreBytes {
            throw ChannelFailure(.badDecodingError, "OPN chunk shorter than its headers")
        }
    }

    var securityHeader: SecurityHeader {
        .asymmetric(policyUri: policyUri, senderCertificate: senderCertificate, receiverThumbprint: receiverThumbprint)
    }
}

extension SecureChunk {
    /// A chunk from its plain (decrypted, signature and padding removed) sequence header and body.
    init(type: TCPMessageType, chunkType: UInt8, channelId: UInt32, securityHeader: SecurityHeader, plain: [UInt8]) throws {
        guard plain.count >= 8 else { throw ChannelFailure(.badSecurityChecksFailed, "chunk without sequence header") }
        self.type = type
        self.chunkType = chunkType
        self.channelId = channelId
        self.securityHeader = securityHeader
        sequenceNumber = UInt32(plain[0]) | UInt32(plain[1]) << 8 | UInt32(plain[2]) << 16 | UInt32(plain[3]) << 24
        requestId = UInt32(plain[4]) | UInt32(plain[5]) << 8 | UInt32(plain[6]) << 16 | UInt32(plain[7]) << 24
        payload = Array(plain[8...])
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
