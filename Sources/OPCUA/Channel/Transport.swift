import Foundation

/// The UA-TCP message types (first three bytes of every message).
public enum TCPMessageType: String, Sendable {
    case hello = "HEL", acknowledge = "ACK", error = "ERR", reverseHello = "RHE"
    case open = "OPN", message = "MSG", close = "CLO"

    /// The type named by the first three bytes of a message (without building a String).
    init?(_ a: UInt8, _ b: UInt8, _ c: UInt8) {
        switch (a, b, c) {
        case (0x4D, 0x53, 0x47): self = .message
        case (0x4F, 0x50, 0x4E): self = .open
        case (0x43, 0x4C, 0x4F): self = .close
        case (0x48, 0x45, 0x4C): self = .hello
        case (0x41, 0x43, 0x4B): self = .acknowledge
        case (0x45, 0x52, 0x52): self = .error
        case (0x52, 0x48, 0x45): self = .reverseHello
        default: return nil
        }
    }
}

/// One UA-TCP message or chunk as framed on the wire: type, chunk flag and the bytes after the 8-byte header.
public struct TCPFrame: Sendable, Equatable {
    public var type: TCPMessageType
    /// `F` final, `C` intermediate, `A` abort.
    public var chunkType: UInt8
    public var body: [UInt8]

    public init(type: TCPMessageType, chunkType: UInt8, body: [UInt8]) {
        self.type = type
        self.chunkType = chunkType
        self.body = body
    }

    /// The frame's wire bytes.
    public var encoded: [UInt8] {
        var writer = BinaryWriter(capacity: body.count + 8)
        writer.writeRaw(Array(type.rawValue.utf8))
        writer.write(chunkType)
        writer.write(UInt32(body.count + 8))
        writer.writeRaw(body)
        return writer.bytes
    }
}

/// Cuts a TCP byte stream into ``TCPFrame``s, refusing frames larger than `maxFrameSize`.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    public var maxFrameSize: Int

    public init(maxFrameSize: Int) { self.maxFrameSize = maxFrameSize }

    public mutating func append(_ bytes: some Collection<UInt8>) { buffer.append(contentsOf: bytes) }

    /// The next complete frame, nil when more bytes are needed; throws on a bad header or size.
    public mutating func next() throws -> TCPFrame? {
        let available = buffer.count - start
        guard available >= 8 else { compact(); return nil }
        guard let type = TCPMessageType(buffer[start], buffer[start + 1], buffer[start + 2]) else {
            throw DecodeError.invalid("unknown message type")
        }
        let chunkType = buffer[start + 3]
        guard chunkType == UInt8(ascii: "F") || chunkType == UInt8(ascii: "C") || chunkType == UInt8(ascii: "A") else {
            throw DecodeError.invalid("chunk type \(chunkType)")
        }
        let size = Int(UInt32(buffer[start + 4]) | UInt32(buffer[start + 5]) << 8 | UInt32(buffer[start + 6]) << 16 | UInt32(buffer[start + 7]) << 24)
        guard size >= 8 else { throw DecodeError.invalid("message size \(size)") }
        guard size <= maxFrameSize else { throw DecodeError.invalid("message of \(size) bytes exceeds \(maxFrameSize)") }
        guard available >= size else { compact(); return nil }
        let body = Array(buffer[start + 8..<start + size])
        start += size
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        return TCPFrame(type: type, chunkType: chunkType, body: body)
    }

    private mutating func compact() {
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
    }
}

/// Buffer sizes of a connection, as negotiated by HEL/ACK.
public struct TransportLimits: Sendable, Equatable {
    public var receiveBufferSize: UInt32
    public var sendBufferSize: UInt32
    public var maxMessageSize: UInt32
    public var maxChunkCount: UInt32

    public init(receiveBufferSize: UInt32 = 65535, sendBufferSize: UInt32 = 65535,
                maxMessageSize: UInt32 = 16 * 1024 * 1024, maxChunkCount: UInt32 = 0) {
        self.receiveBufferSize = receiveBufferSize
        self.sendBufferSize = sendBufferSize
        self.maxMessageSize = maxMessageSize
        self.maxChunkCount = maxChunkCount
    }
}

public struct HelloMessage: UACodable, Sendable, Equatable {
    public var protocolVersion: UInt32 = 0
    public var limits: TransportLimits
    public var endpointUrl: String?
    public init(limits: TransportLimits, endpointUrl: String?) { self.limits = limits; self.endpointUrl = endpointUrl }
    public func encode(to w: inout BinaryWriter) {
        w.write(protocolVersion); w.write(limits.receiveBufferSize); w.write(limits.sendBufferSize)
        w.write(limits.maxMessageSize); w.write(limits.maxChunkCount); w.write(endpointUrl)
    }
    public init(from r: inout BinaryReader) throws {
        protocolVersion = try r.readUInt32()
        limits = TransportLimits(receiveBufferSize: try r.readUInt32(), sendBufferSize: try r.readUInt32(),
                                 maxMessageSize: try r.readUInt32(), maxChunkCount: try r.readUInt32())
        endpointUrl = try r.readString()
    }
}

public struct AcknowledgeMessage: UACodable, Sendable, Equatable {
    public var protocolVersion: UInt32 = 0
    public var limits: TransportLimits
    public init(limits: TransportLimits) { self.limits = limits }
    public func encode(to w: inout BinaryWriter) {
        w.write(protocolVersion); w.write(limits.receiveBufferSize); w.write(limits.sendBufferSize)
        w.write(limits.maxMessageSize); w.write(limits.maxChunkCount)
    }
    public init(from r: inout BinaryReader) throws {
        protocolVersion = try r.readUInt32()
        limits = TransportLimits(receiveBufferSize: try r.readUInt32(), sendBufferSize: try r.readUInt32(),
                                 maxMessageSize: try r.readUInt32(), maxChunkCount: try r.readUInt32())
    }
}

public struct ErrorMessage: UACodable, Sendable, Equatable {
    public var error: StatusCode
    public var reason: String?
    public init(error: StatusCode, reason: String?) { self.error = error; self.reason = reason }
    public func encode(to w: inout BinaryWriter) { w.write(error); w.write(reason) }
    public init(from r: inout BinaryReader) throws { error = try r.read(); reason = try r.readString() }
}

/// The security header of a chunk: asymmetric on OPN, symmetric (a token id) otherwise.
public enum SecurityHeader: Sendable, Equatable {
    case asymmetric(policyUri: String?, senderCertificate: [UInt8]?, receiverThumbprint: [UInt8]?)
    case symmetric(tokenId: UInt32)

    func encode(to w: inout BinaryWriter) {
        switch self {
        case .asymmetric(let policy, let certificate, let thumbprint):
            w.write(policy); w.writeByteString(certificate); w.writeByteString(thumbprint)
        case .symmetric(let tokenId):
            w.write(tokenId)
        }
    }
}

/// One decoded secure-conversation chunk (OPN, MSG or CLO).
public struct SecureChunk: Sendable, Equatable {
    public var type: TCPMessageType
    public var chunkType: UInt8
    public var channelId: UInt32
    public var securityHeader: SecurityHeader
    public var sequenceNumber: UInt32
    public var requestId: UInt32
    public var payload: [UInt8]

    /// Decodes a frame of type OPN, MSG or CLO.
    public init(frame: TCPFrame) throws {
        var reader = BinaryReader(frame.body)
        do {
            type = frame.type
            chunkType = frame.chunkType
            channelId = try reader.readUInt32()
            if frame.type == .open {
                securityHeader = .asymmetric(policyUri: try reader.readString(), senderCertificate: try reader.readByteString(),
                                             receiverThumbprint: try reader.readByteString())
            } else {
                securityHeader = .symmetric(tokenId: try reader.readUInt32())
            }
            sequenceNumber = try reader.readUInt32()
            requestId = try reader.readUInt32()
            payload = Array(frame.body[reader.offset...])
        } catch DecodeError.needMoreBytes {
            throw DecodeError.invalid("chunk shorter than its headers")
        }
    }

    /// Splits `message` into chunks that fit `maxChunkSize` bytes each, numbering them from `sequenceNumber`.
    public static func encode(type: TCPMessageType, channelId: UInt32, securityHeader: SecurityHeader, requestId: UInt32,
                              message: [UInt8], maxChunkSize: Int, maxChunkCount: Int,
                              sequenceNumber: inout UInt32) throws -> [[UInt8]] {
        var header = BinaryWriter()
        securityHeader.encode(to: &header)
        let overhead = 8 + 4 + header.bytes.count + 8
        let capacity = maxChunkSize - overhead
        guard capacity > 0 else { throw DecodeError.invalid("chunk size \(maxChunkSize) too small") }
        let count = max(1, (message.count + capacity - 1) / capacity)
        if maxChunkCount > 0 && count > maxChunkCount { throw StatusCode.badTcpMessageTooLarge }
        var chunks: [[UInt8]] = []
        chunks.reserveCapacity(count)
        for index in 0..<count {
            let from = index * capacity
            let to = min(message.count, from + capacity)
            var writer = BinaryWriter(capacity: overhead + to - from)
            writer.writeRaw(Array(type.rawValue.utf8))
            writer.write(index == count - 1 ? UInt8(ascii: "F") : UInt8(ascii: "C"))
            writer.write(UInt32(overhead + to - from))
            writer.write(channelId)
            writer.writeRaw(header.bytes)
            sequenceNumber = sequenceNumber == UInt32.max ? 1 : sequenceNumber &+ 1
            writer.write(sequenceNumber)
            writer.write(requestId)
            writer.bytes.append(contentsOf: message[from..<to])
            chunks.append(writer.bytes)
        }
        return chunks
    }
}

/// Joins chunks into whole messages per request id and checks receive sequence numbers.
public struct ChunkAssembler: Sendable {
    public var maxMessageSize: Int
    public var maxChunkCount: Int
    private var partial: [UInt32: (chunks: Int, bytes: [UInt8])] = [:]
    private var lastSequenceNumber: UInt32?

    public init(maxMessageSize: Int, maxChunkCount: Int) {
        self.maxMessageSize = maxMessageSize
        self.maxChunkCount = maxChunkCount
    }

    /// Adds a chunk: the whole message when it was the final one, nil while more chunks are due or after an abort.
    public mutating func add(_ chunk: SecureChunk) throws -> [UInt8]? {
        if let last = lastSequenceNumber {
            let expected = last == UInt32.max ? 1 : last &+ 1
            // Wrap-around: after 4294966271 the sender may restart below 1024.
            let wrapped = last > UInt32.max - 1024 && chunk.sequenceNumber < 1024
            guard chunk.sequenceNumber == expected || wrapped else { throw StatusCode.badSequenceNumberInvalid }
        }
        lastSequenceNumber = chunk.sequenceNumber
        switch chunk.chunkType {
        case UInt8(ascii: "A"):
            partial[chunk.requestId] = nil
            return nil
        case UInt8(ascii: "C"):
            var entry = partial[chunk.requestId] ?? (0, [])
            entry.chunks += 1
            entry.bytes.append(contentsOf: chunk.payload)
            try check(entry)
            guard partial.count < 64 || partial[chunk.requestId] != nil else { throw StatusCode.badTcpMessageTooLarge }
            partial[chunk.requestId] = entry
            return nil
        default:
            guard var entry = partial.removeValue(forKey: chunk.requestId) else {
                // A message in one chunk (the usual case): its payload is the message, no copy.
                try check((1, chunk.payload))
                return chunk.payload
            }
            entry.chunks += 1
            entry.bytes.append(contentsOf: chunk.payload)
            try check(entry)
            return entry.bytes
        }
    }

    private func check(_ entry: (chunks: Int, bytes: [UInt8])) throws {
        if maxChunkCount > 0 && entry.chunks > maxChunkCount { throw StatusCode.badTcpMessageTooLarge }
        if maxMessageSize > 0 && entry.bytes.count > maxMessageSize { throw StatusCode.badTcpMessageTooLarge }
    }
}

/// Encodes a service message body: its binary encoding NodeId, then the structure.
public func encodeServiceMessage<T: UAEncodable>(_ message: T, encodingId: UInt32) -> [UInt8] {
    var writer = BinaryWriter()
    writer.write(NodeId(encodingId))
    message.encode(to: &writer)
    return writer.bytes
}

/// Reads the encoding id at the front of a service message; the reader is left at the structure.
public func readServiceTypeId(_ reader: inout BinaryReader) throws -> UInt32 {
    let node: NodeId = try reader.read()
    guard node.namespace == 0, case .numeric(let id) = node.identifier else {
        throw DecodeError.invalid("service type \(node)")
    }
    return id
}

/// Decodes a response message as `T`; a ServiceFault or a bad service result throws its StatusCode.
public func decodeServiceResponse<T: ServiceResponse>(_ bytes: [UInt8], as type: T.Type = T.self) throws -> T {
    var reader = BinaryReader(bytes)
    do {
        let typeId = try readServiceTypeId(&reader)
        if typeId == ServiceFault.encodingId {
            let fault = try ServiceFault(from: &reader)
            throw fault.responseHeader.serviceResult.isBad ? fault.responseHeader.serviceResult : StatusCode.bad
        }
        guard typeId == T.encodingId else { throw DecodeError.invalid("expected response \(T.encodingId), got \(typeId)") }
        let response = try T(from: &reader)
        if response.responseHeader.serviceResult.isBad { throw response.responseHeader.serviceResult }
        return response
    } catch DecodeError.needMoreBytes {
        throw DecodeError.invalid("truncated response")
    }
}
