import Foundation

// Session service set (OPC UA Part 4, 5.6): CreateSession, ActivateSession, CloseSession.

public struct SignatureData: UACodable, Sendable, Equatable {
    public var algorithm: String? = nil
    public var signature: [UInt8]? = nil
    public init() {}
    public func encode(to w: inout BinaryWriter) { w.write(algorithm); w.writeByteString(signature) }
    public init(from r: inout BinaryReader) throws { algorithm = try r.readString(); signature = try r.readByteString() }
}

struct SignedSoftwareCertificate: UACodable, Sendable {
    var certificateData: [UInt8]?
    var signature: [UInt8]?
    func encode(to w: inout BinaryWriter) { w.writeByteString(certificateData); w.writeByteString(signature) }
    init(from r: inout BinaryReader) throws { certificateData = try r.readByteString(); signature = try r.readByteString() }
}

public struct CreateSessionRequest: ServiceRequest {
    public static let encodingId: UInt32 = 461
    public var requestHeader = RequestHeader()
    public var clientDescription: ApplicationDescription
    public var serverUri: String? = nil
    public var endpointUrl: String?
    public var sessionName: String?
    public var clientNonce: [UInt8]? = nil
    public var clientCertificate: [UInt8]? = nil
    public var requestedSessionTimeout: Double = 60_000
    public var maxResponseMessageSize: UInt32 = 0
    public init(clientDescription: ApplicationDescription, endpointUrl: String?, sessionName: String?) {
        self.clientDescription = clientDescription; self.endpointUrl = endpointUrl; self.sessionName = sessionName
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(requestHeader); w.write(clientDescription); w.write(serverUri); w.write(endpointUrl); w.write(sessionName)
        w.writeByteString(clientNonce); w.writeByteString(clientCertificate); w.write(requestedSessionTimeout)
        w.write(maxResponseMessageSize)
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); clientDescription = try r.read(); serverUri = try r.readString()
        endpointUrl = try r.readString(); sessionName = try r.readString(); clientNonce = try r.readByteString()
        clientCertificate = try r.readByteString(); requestedSessionTimeout = try r.readDouble()
        maxResponseMessageSize = try r.readUInt32()
    }
}

public struct CreateSessionResponse: ServiceResponse {
    public static let encodingId: UInt32 = 464
    public var responseHeader = ResponseHeader()
    public var sessionId: NodeId
    public var authenticationToken: NodeId
    public var revisedSessionTimeout: Double
    public var serverNonce: [UInt8]? = nil
    public var serverCertificate: [UInt8]? = nil
    public var serverEndpoints: [EndpointDescription] = []
    public var serverSignature = SignatureData()
    public var maxRequestMessageSize: UInt32 = 0
    public init(sessionId: NodeId, authenticationToken: NodeId, revisedSessionTimeout: Double) {
        self.sessionId = sessionId; self.authenticationToken = authenticationToken; self.revisedSessionTimeout = revisedSessionTimeout
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(responseHeader); w.write(sessionId); w.write(authenticationToken); w.write(revisedSessionTimeout)
        w.writeByteString(serverNonce); w.writeByteString(serverCertificate); w.write(serverEndpoints)
        w.write(Int32(0)); w.write(serverSignature); w.write(maxRequestMessageSize)
    }
    public init(from r: inout BinaryReader) throws {
        responseHeader = try r.read(); sessionId = try r.read(); authenticationToken = try r.read()
        revisedSessionTimeout = try r.readDouble(); serverNonce = try r.readByteString(); serverCertificate = try r.readByteString()
        serverEndpoints = try r.readArray(); _ = try r.readArray(of: SignedSoftwareCertificate.self)
        serverSignature = try r.read(); maxRequestMessageSize = try r.readUInt32()
    }
}

public struct AnonymousIdentityToken: UACodable, Sendable {
    public static let encodingId: UInt32 = 321
    public var policyId: String?
    public init(policyId: String?) { self.policyId = policyId }
    public func encode(to w: inout BinaryWriter) { w.write(policyId) }
    public init(from r: inout BinaryReader) throws { policyId = try r.readString() }
}

public struct UserNameIdentityToken: UACodable, Sendable {
    public static let encodingId: UInt32 = 324
    public var policyId: String?
    public var userName: String?
    public var password: [UInt8]?
    public var encryptionAlgorithm: String? = nil
    public init(policyId: String?, userName: String?, password: [UInt8]?) {
        self.policyId = policyId; self.userName = userName; self.password = password
    }
    public func encode(to w: inout BinaryWriter) { w.write(policyId); w.write(userName); w.writeByteString(password); w.write(encryptionAlgorithm) }
    public init(from r: inout BinaryReader) throws {
        policyId = try r.readString(); userName = try r.readString(); password = try r.readByteString()
        encryptionAlgorithm = try r.readString()
    }
}

public struct ActivateSessionRequest: ServiceRequest {
    public static let encodingId: UInt32 = 467
    public var requestHeader = RequestHeader()
    public var clientSignature = SignatureData()
    public var localeIds: [String?] = []
    public var userIdentityToken: ExtensionObject
    public var userTokenSignature = SignatureData()
    public init(userIdentityToken: ExtensionObject) { self.userIdentityToken = userIdentityToken }
    public func encode(to w: inout BinaryWriter) {
        w.write(requestHeader); w.write(clientSignature); w.write(Int32(0)); w.writeStrings(localeIds)
        w.write(userIdentityToken); w.write(userTokenSignature)
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); clientSignature = try r.read(); _ = try r.readArray(of: SignedSoftwareCertificate.self)
        localeIds = try r.readStrings(); userIdentityToken = try r.read(); userTokenSignature = try r.read()
    }
}

public struct ActivateSessionResponse: ServiceResponse {
    public static let encodingId: UInt32 = 470
    public var responseHeader = ResponseHeader()
    public var serverNonce: [UInt8]? = nil
    public var results: [StatusCode] = []
    public var diagnosticInfos: [DiagnosticInfo] = []
    public init() {}
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.writeByteString(serverNonce); w.write(results); w.write(diagnosticInfos) }
    public init(from r: inout BinaryReader) throws {
        responseHeader = try r.read(); serverNonce = try r.readByteString(); results = try r.readArray(); diagnosticInfos = try r.readArray()
    }
}

public struct CloseSessionRequest: ServiceRequest {
    public static let encodingId: UInt32 = 473
    public var requestHeader = RequestHeader()
    public var deleteSubscriptions = true
    public init() {}
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(deleteSubscriptions) }
    public init(from r: inout BinaryReader) throws { requestHeader = try r.read(); deleteSubscriptions = try r.readBool() }
}

public struct CloseSessionResponse: ServiceResponse {
    public static let encodingId: UInt32 = 476
    public var responseHeader = ResponseHeader()
    public init() {}
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read() }
}
