import Foundation

// SecureChannel service set (OPC UA Part 4, 5.5): OpenSecureChannel, CloseSecureChannel.

public enum SecurityTokenRequestType: UInt32, Sendable { case issue = 0, renew = 1 }
public enum MessageSecurityMode: UInt32, Sendable { case invalid = 0, none = 1, sign = 2, signAndEncrypt = 3 }

public let securityPolicyNoneUri = "http://opcfoundation.org/UA/SecurityPolicy#None"
public let transportProfileBinaryUri = "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary"

public struct OpenSecureChannelRequest: ServiceRequest {
    public static let encodingId: UInt32 = 446
    public var requestHeader = RequestHeader()
    public var clientProtocolVersion: UInt32 = 0
    public var requestType: SecurityTokenRequestType = .issue
    public var securityMode: MessageSecurityMode = .none
    public var clientNonce: [UInt8]? = nil
    public var requestedLifetime: UInt32 = 3_600_000
    public init() {}
    public func encode(to w: inout BinaryWriter) {
        w.write(requestHeader); w.write(clientProtocolVersion); w.write(requestType.rawValue)
        w.write(securityMode.rawValue); w.writeByteString(clientNonce); w.write(requestedLifetime)
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); clientProtocolVersion = try r.readUInt32()
        guard let type = SecurityTokenRequestType(rawValue: try r.readUInt32()) else { throw DecodeError.invalid("request type") }
        requestType = type
        securityMode = MessageSecurityMode(rawValue: try r.readUInt32()) ?? .invalid
        clientNonce = try r.readByteString(); requestedLifetime = try r.readUInt32()
    }
}

public struct ChannelSecurityToken: UACodable, Sendable, Equatable {
    public var channelId: UInt32
    public var tokenId: UInt32
    public var createdAt: DateTime
    public var revisedLifetime: UInt32
    public init(channelId: UInt32, tokenId: UInt32, createdAt: DateTime, revisedLifetime: UInt32) {
        self.channelId = channelId; self.tokenId = tokenId; self.createdAt = createdAt; self.revisedLifetime = revisedLifetime
    }
    public func encode(to w: inout BinaryWriter) { w.write(channelId); w.write(tokenId); w.write(createdAt.ticks); w.write(revisedLifetime) }
    public init(from r: inout BinaryReader) throws {
        channelId = try r.readUInt32(); tokenId = try r.readUInt32(); createdAt = DateTime(ticks: try r.readInt64())
        revisedLifetime = try r.readUInt32()
    }
}

public struct OpenSecureChannelResponse: ServiceResponse {
    public static let encodingId: UInt32 = 449
    public var responseHeader = ResponseHeader()
    public var serverProtocolVersion: UInt32 = 0
    public var securityToken: ChannelSecurityToken
    public var serverNonce: [UInt8]? = []
    public init(securityToken: ChannelSecurityToken) { self.securityToken = securityToken }
    public func encode(to w: inout BinaryWriter) {
        w.write(responseHeader); w.write(serverProtocolVersion); w.write(securityToken); w.writeByteString(serverNonce)
    }
    public init(from r: inout BinaryReader) throws {
        responseHeader = try r.read(); serverProtocolVersion = try r.readUInt32(); securityToken = try r.read()
        serverNonce = try r.readByteString()
    }
}

public struct CloseSecureChannelRequest: ServiceRequest {
    public static let encodingId: UInt32 = 452
    public var requestHeader = RequestHeader()
    public init() {}
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader) }
    public init(from r: inout BinaryReader) throws { requestHeader = try r.read() }
}
