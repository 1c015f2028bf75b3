import Foundation

/// A service request: a body encoded after its binary encoding NodeId.
public protocol ServiceRequest: UACodable, Sendable {
    static var encodingId: UInt32 { get }
    var requestHeader: RequestHeader { get set }
}

/// A service response.
public protocol ServiceResponse: UACodable, Sendable {
    static var encodingId: UInt32 { get }
    var responseHeader: ResponseHeader { get set }
}

public struct RequestHeader: UACodable, Sendable, Equatable {
    public var authenticationToken: NodeId = .null
    public var timestamp: DateTime = .now
    public var requestHandle: UInt32 = 0
    public var returnDiagnostics: UInt32 = 0
    public var auditEntryId: String? = nil
    public var timeoutHint: UInt32 = 10_000
    public var additionalHeader: ExtensionObject = .empty

    public init() {}

    public func encode(to w: inout BinaryWriter) {
        w.write(authenticationToken); w.write(timestamp.ticks); w.write(requestHandle); w.write(returnDiagnostics)
        w.write(auditEntryId); w.write(timeoutHint); w.write(additionalHeader)
    }
    public init(from r: inout BinaryReader) throws {
        authenticationToken = try r.read(); timestamp = DateTime(ticks: try r.readInt64()); requestHandle = try r.readUInt32()
        returnDiagnostics = try r.readUInt32(); auditEntryId = try r.readString(); timeoutHint = try r.readUInt32()
        additionalHeader = try r.read()
    }
}

public struct ResponseHeader: UACodable, Sendable, Equatable {
    public var timestamp: DateTime = .now
    public var requestHandle: UInt32 = 0
    public var serviceResult: StatusCode = .good
    public var serviceDiagnostics: DiagnosticInfo = DiagnosticInfo()
    public var stringTable: [String?] = []
    public var additionalHeader: ExtensionObject = .empty

    public init(requestHandle: UInt32 = 0, serviceResult: StatusCode = .good) {
        self.requestHandle = requestHandle
        self.serviceResult = serviceResult
    }

    public func encode(to w: inout BinaryWriter) {
        w.write(timestamp.ticks); w.write(requestHandle); w.write(serviceResult); serviceDiagnostics.encode(to: &w)
        w.writeArray(stringTable) { $0.write($1) }; w.write(additionalHeader)
    }
    public init(from r: inout BinaryReader) throws {
        timestamp = DateTime(ticks: try r.readInt64()); requestHandle = try r.readUInt32(); serviceResult = try r.read()
        serviceDiagnostics = try DiagnosticInfo(from: &r); stringTable = try r.readArray { try $0.readString() }
        additionalHeader = try r.read()
    }
}

public struct ServiceFault: ServiceResponse {
    public static let encodingId: UInt32 = 397
    public var responseHeader: ResponseHeader
    public init(responseHeader: ResponseHeader) { self.responseHeader = responseHeader }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read() }
}

// MARK: - Secure channel

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

// MARK: - Discovery

public enum ApplicationType: UInt32, Sendable { case server = 0, client = 1, clientAndServer = 2, discoveryServer = 3 }

public struct ApplicationDescription: UACodable, Sendable, Equatable {
    public var applicationUri: String?
    public var productUri: String?
    public var applicationName: LocalizedText
    public var applicationType: ApplicationType
    public var gatewayServerUri: String? = nil
    public var discoveryProfileUri: String? = nil
    public var discoveryUrls: [String?] = []
    public init(applicationUri: String?, productUri: String?, applicationName: LocalizedText,
                applicationType: ApplicationType, discoveryUrls: [String?] = []) {
        self.applicationUri = applicationUri; self.productUri = productUri; self.applicationName = applicationName
        self.applicationType = applicationType; self.discoveryUrls = discoveryUrls
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(applicationUri); w.write(productUri); w.write(applicationName); w.write(applicationType.rawValue)
        w.write(gatewayServerUri); w.write(discoveryProfileUri); w.writeArray(discoveryUrls) { $0.write($1) }
    }
    public init(from r: inout BinaryReader) throws {
        applicationUri = try r.readString(); productUri = try r.readString(); applicationName = try r.read()
        applicationType = ApplicationType(rawValue: try r.readUInt32()) ?? .server
        gatewayServerUri = try r.readString(); discoveryProfileUri = try r.readString()
        discoveryUrls = try r.readArray { try $0.readString() }
    }
}

public enum UserTokenType: UInt32, Sendable { case anonymous = 0, userName = 1, certificate = 2, issuedToken = 3 }

public struct UserTokenPolicy: UACodable, Sendable, Equatable {
    public var policyId: String?
    public var tokenType: UserTokenType
    public var issuedTokenType: String? = nil
    public var issuerEndpointUrl: String? = nil
    public var securityPolicyUri: String? = nil
    public init(policyId: String?, tokenType: UserTokenType, securityPolicyUri: String? = nil) {
        self.policyId = policyId; self.tokenType = tokenType; self.securityPolicyUri = securityPolicyUri
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(policyId); w.write(tokenType.rawValue); w.write(issuedTokenType); w.write(issuerEndpointUrl); w.write(securityPolicyUri)
    }
    public init(from r: inout BinaryReader) throws {
        policyId = try r.readString(); tokenType = UserTokenType(rawValue: try r.readUInt32()) ?? .issuedToken
        issuedTokenType = try r.readString(); issuerEndpointUrl = try r.readString(); securityPolicyUri = try r.readString()
    }
}

public struct EndpointDescription: UACodable, Sendable, Equatable {
    public var endpointUrl: String?
    public var server: ApplicationDescription
    public var serverCertificate: [UInt8]? = nil
    public var securityMode: MessageSecurityMode
    public var securityPolicyUri: String?
    public var userIdentityTokens: [UserTokenPolicy]
    public var transportProfileUri: String? = transportProfileBinaryUri
    public var securityLevel: UInt8 = 0
    public init(endpointUrl: String?, server: ApplicationDescription, securityMode: MessageSecurityMode,
                securityPolicyUri: String?, userIdentityTokens: [UserTokenPolicy]) {
        self.endpointUrl = endpointUrl; self.server = server; self.securityMode = securityMode
        self.securityPolicyUri = securityPolicyUri; self.userIdentityTokens = userIdentityTokens
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(endpointUrl); w.write(server); w.writeByteString(serverCertificate); w.write(securityMode.rawValue)
        w.write(securityPolicyUri); w.write(userIdentityTokens); w.write(transportProfileUri); w.write(securityLevel)
    }
    public init(from r: inout BinaryReader) throws {
        endpointUrl = try r.readString(); server = try r.read(); serverCertificate = try r.readByteString()
        securityMode = MessageSecurityMode(rawValue: try r.readUInt32()) ?? .invalid
        securityPolicyUri = try r.readString(); userIdentityTokens = try r.readArray()
        transportProfileUri = try r.readString(); securityLevel = try r.readUInt8()
    }
}

public struct GetEndpointsRequest: ServiceRequest {
    public static let encodingId: UInt32 = 428
    public var requestHeader = RequestHeader()
    public var endpointUrl: String?
    public var localeIds: [String?] = []
    public var profileUris: [String?] = []
    public init(endpointUrl: String?) { self.endpointUrl = endpointUrl }
    public func encode(to w: inout BinaryWriter) {
        w.write(requestHeader); w.write(endpointUrl); w.writeArray(localeIds) { $0.write($1) }; w.writeArray(profileUris) { $0.write($1) }
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); endpointUrl = try r.readString()
        localeIds = try r.readArray { try $0.readString() }; profileUris = try r.readArray { try $0.readString() }
    }
}

public struct GetEndpointsResponse: ServiceResponse {
    public static let encodingId: UInt32 = 431
    public var responseHeader = ResponseHeader()
    public var endpoints: [EndpointDescription]
    public init(endpoints: [EndpointDescription]) { self.endpoints = endpoints }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.write(endpoints) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read(); endpoints = try r.readArray() }
}

public struct FindServersRequest: ServiceRequest {
    public static let encodingId: UInt32 = 422
    public var requestHeader = RequestHeader()
    public var endpointUrl: String?
    public var localeIds: [String?] = []
    public var serverUris: [String?] = []
    public init(endpointUrl: String?) { self.endpointUrl = endpointUrl }
    public func encode(to w: inout BinaryWriter) {
        w.write(requestHeader); w.write(endpointUrl); w.writeArray(localeIds) { $0.write($1) }; w.writeArray(serverUris) { $0.write($1) }
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); endpointUrl = try r.readString()
        localeIds = try r.readArray { try $0.readString() }; serverUris = try r.readArray { try $0.readString() }
    }
}

public struct FindServersResponse: ServiceResponse {
    public static let encodingId: UInt32 = 425
    public var responseHeader = ResponseHeader()
    public var servers: [ApplicationDescription]
    public init(servers: [ApplicationDescription]) { self.servers = servers }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.write(servers) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read(); servers = try r.readArray() }
}

// MARK: - Session

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
        w.write(requestHeader); w.write(clientSignature); w.write(Int32(0)); w.writeArray(localeIds) { $0.write($1) }
        w.write(userIdentityToken); w.write(userTokenSignature)
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); clientSignature = try r.read(); _ = try r.readArray(of: SignedSoftwareCertificate.self)
        localeIds = try r.readArray { try $0.readString() }; userIdentityToken = try r.read(); userTokenSignature = try r.read()
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

// MARK: - Attribute services

/// Attribute ids of the Read and Write services.
public enum AttributeId: UInt32, Sendable, CaseIterable {
    case nodeId = 1, nodeClass, browseName, displayName, description, writeMask, userWriteMask, isAbstract, symmetric
    case inverseName, containsNoLoops, eventNotifier, value, dataType, valueRank, arrayDimensions, accessLevel
    case userAccessLevel, minimumSamplingInterval, historizing, executable, userExecutable
}

public enum TimestampsToReturn: UInt32, Sendable { case source = 0, server = 1, both = 2, neither = 3, invalid = 4 }

public struct ReadValueId: UACodable, Sendable, Hashable {
    public var nodeId: NodeId
    public var attributeId: UInt32
    public var indexRange: String? = nil
    public var dataEncoding = QualifiedName(nil)
    public init(nodeId: NodeId, attributeId: AttributeId = .value) { self.nodeId = nodeId; self.attributeId = attributeId.rawValue }
    public func encode(to w: inout BinaryWriter) { w.write(nodeId); w.write(attributeId); w.write(indexRange); w.write(dataEncoding) }
    public init(from r: inout BinaryReader) throws {
        nodeId = try r.read(); attributeId = try r.readUInt32(); indexRange = try r.readString(); dataEncoding = try r.read()
    }
}

public struct ReadRequest: ServiceRequest {
    public static let encodingId: UInt32 = 631
    public var requestHeader = RequestHeader()
    public var maxAge: Double = 0
    public var timestampsToReturn: TimestampsToReturn = .both
    public var nodesToRead: [ReadValueId]
    public init(nodesToRead: [ReadValueId]) { self.nodesToRead = nodesToRead }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(maxAge); w.write(timestampsToReturn.rawValue); w.write(nodesToRead) }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); maxAge = try r.readDouble()
        timestampsToReturn = TimestampsToReturn(rawValue: try r.readUInt32()) ?? .invalid; nodesToRead = try r.readArray()
    }
}

public struct ReadResponse: ServiceResponse {
    public static let encodingId: UInt32 = 634
    public var responseHeader = ResponseHeader()
    public var results: [DataValue]
    public var diagnosticInfos: [DiagnosticInfo] = []
    public init(results: [DataValue]) { self.results = results }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.write(results); w.write(diagnosticInfos) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read(); results = try r.readArray(); diagnosticInfos = try r.readArray() }
}

public struct WriteValue: UACodable, Sendable {
    public var nodeId: NodeId
    public var attributeId: UInt32 = AttributeId.value.rawValue
    public var indexRange: String? = nil
    public var value: DataValue
    public init(nodeId: NodeId, value: DataValue) { self.nodeId = nodeId; self.value = value }
    public func encode(to w: inout BinaryWriter) { w.write(nodeId); w.write(attributeId); w.write(indexRange); w.write(value) }
    public init(from r: inout BinaryReader) throws {
        nodeId = try r.read(); attributeId = try r.readUInt32(); indexRange = try r.readString(); value = try r.read()
    }
}

public struct WriteRequest: ServiceRequest {
    public static let encodingId: UInt32 = 673
    public var requestHeader = RequestHeader()
    public var nodesToWrite: [WriteValue]
    public init(nodesToWrite: [WriteValue]) { self.nodesToWrite = nodesToWrite }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(nodesToWrite) }
    public init(from r: inout BinaryReader) throws { requestHeader = try r.read(); nodesToWrite = try r.readArray() }
}

/// A response carrying only per-operation status codes (Write, DeleteSubscriptions, DeleteMonitoredItems, SetPublishingMode).
public struct StatusResultsResponse<Tag: StatusResultsTag>: ServiceResponse {
    public static var encodingId: UInt32 { Tag.encodingId }
    public var responseHeader = ResponseHeader()
    public var results: [StatusCode]
    public var diagnosticInfos: [DiagnosticInfo] = []
    public init(results: [StatusCode]) { self.results = results }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.write(results); w.write(diagnosticInfos) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read(); results = try r.readArray(); diagnosticInfos = try r.readArray() }
}

public protocol StatusResultsTag: Sendable { static var encodingId: UInt32 { get } }
public enum WriteTag: StatusResultsTag { public static let encodingId: UInt32 = 676 }
public enum DeleteSubscriptionsTag: StatusResultsTag { public static let encodingId: UInt32 = 850 }
public enum DeleteMonitoredItemsTag: StatusResultsTag { public static let encodingId: UInt32 = 784 }
public enum SetPublishingModeTag: StatusResultsTag { public static let encodingId: UInt32 = 802 }
public typealias WriteResponse = StatusResultsResponse<WriteTag>
public typealias DeleteSubscriptionsResponse = StatusResultsResponse<DeleteSubscriptionsTag>
public typealias DeleteMonitoredItemsResponse = StatusResultsResponse<DeleteMonitoredItemsTag>
public typealias SetPublishingModeResponse = StatusResultsResponse<SetPublishingModeTag>

// MARK: - View services

public enum BrowseDirection: UInt32, Sendable { case forward = 0, inverse = 1, both = 2, invalid = 3 }

public enum NodeClass: UInt32, Sendable {
    case unspecified = 0, object = 1, variable = 2, method = 4, objectType = 8, variableType = 16
    case referenceType = 32, dataType = 64, view = 128
}

public struct BrowseDescription: UACodable, Sendable {
    public var nodeId: NodeId
    public var browseDirection: BrowseDirection = .forward
    public var referenceTypeId: NodeId = WellKnown.hierarchicalReferences
    public var includeSubtypes = true
    public var nodeClassMask: UInt32 = 0
    public var resultMask: UInt32 = 0x3F
    public init(nodeId: NodeId) { self.nodeId = nodeId }
    public func encode(to w: inout BinaryWriter) {
        w.write(nodeId); w.write(browseDirection.rawValue); w.write(referenceTypeId); w.write(includeSubtypes)
        w.write(nodeClassMask); w.write(resultMask)
    }
    public init(from r: inout BinaryReader) throws {
        nodeId = try r.read(); browseDirection = BrowseDirection(rawValue: try r.readUInt32()) ?? .invalid
        referenceTypeId = try r.read(); includeSubtypes = try r.readBool(); nodeClassMask = try r.readUInt32()
        resultMask = try r.readUInt32()
    }
}

public struct ReferenceDescription: UACodable, Sendable, Equatable {
    public var referenceTypeId: NodeId
    public var isForward: Bool
    public var nodeId: ExpandedNodeId
    public var browseName: QualifiedName
    public var displayName: LocalizedText
    public var nodeClass: NodeClass
    public var typeDefinition: ExpandedNodeId
    public init(referenceTypeId: NodeId, isForward: Bool, nodeId: ExpandedNodeId, browseName: QualifiedName,
                displayName: LocalizedText, nodeClass: NodeClass, typeDefinition: ExpandedNodeId) {
        self.referenceTypeId = referenceTypeId; self.isForward = isForward; self.nodeId = nodeId; self.browseName = browseName
        self.displayName = displayName; self.nodeClass = nodeClass; self.typeDefinition = typeDefinition
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(referenceTypeId); w.write(isForward); w.write(nodeId); w.write(browseName); w.write(displayName)
        w.write(nodeClass.rawValue); w.write(typeDefinition)
    }
    public init(from r: inout BinaryReader) throws {
        referenceTypeId = try r.read(); isForward = try r.readBool(); nodeId = try r.read(); browseName = try r.read()
        displayName = try r.read(); nodeClass = NodeClass(rawValue: try r.readUInt32()) ?? .unspecified
        typeDefinition = try r.read()
    }
}

public struct BrowseResult: UACodable, Sendable {
    public var statusCode: StatusCode
    public var continuationPoint: [UInt8]?
    public var references: [ReferenceDescription]
    public init(statusCode: StatusCode, continuationPoint: [UInt8]?, references: [ReferenceDescription]) {
        self.statusCode = statusCode; self.continuationPoint = continuationPoint; self.references = references
    }
    public func encode(to w: inout BinaryWriter) { w.write(statusCode); w.writeByteString(continuationPoint); w.write(references) }
    public init(from r: inout BinaryReader) throws {
        statusCode = try r.read(); continuationPoint = try r.readByteString(); references = try r.readArray()
    }
}

public struct BrowseRequest: ServiceRequest {
    public static let encodingId: UInt32 = 527
    public var requestHeader = RequestHeader()
    public var viewId: NodeId = .null
    public var viewTimestamp: DateTime = .null
    public var viewVersion: UInt32 = 0
    public var requestedMaxReferencesPerNode: UInt32 = 0
    public var nodesToBrowse: [BrowseDescription]
    public init(nodesToBrowse: [BrowseDescription]) { self.nodesToBrowse = nodesToBrowse }
    public func encode(to w: inout BinaryWriter) {
        w.write(requestHeader); w.write(viewId); w.write(viewTimestamp.ticks); w.write(viewVersion)
        w.write(requestedMaxReferencesPerNode); w.write(nodesToBrowse)
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); viewId = try r.read(); viewTimestamp = DateTime(ticks: try r.readInt64())
        viewVersion = try r.readUInt32(); requestedMaxReferencesPerNode = try r.readUInt32(); nodesToBrowse = try r.readArray()
    }
}

public struct BrowseResponse: ServiceResponse {
    public static let encodingId: UInt32 = 530
    public var responseHeader = ResponseHeader()
    public var results: [BrowseResult]
    public var diagnosticInfos: [DiagnosticInfo] = []
    public init(results: [BrowseResult]) { self.results = results }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.write(results); w.write(diagnosticInfos) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read(); results = try r.readArray(); diagnosticInfos = try r.readArray() }
}

public struct BrowseNextRequest: ServiceRequest {
    public static let encodingId: UInt32 = 533
    public var requestHeader = RequestHeader()
    public var releaseContinuationPoints = false
    public var continuationPoints: [[UInt8]?]
    public init(continuationPoints: [[UInt8]?], release: Bool = false) {
        self.continuationPoints = continuationPoints; releaseContinuationPoints = release
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(requestHeader); w.write(releaseContinuationPoints); w.writeArray(continuationPoints) { $0.writeByteString($1) }
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); releaseContinuationPoints = try r.readBool()
        continuationPoints = try r.readArray { try $0.readByteString() }
    }
}

public struct BrowseNextResponse: ServiceResponse {
    public static let encodingId: UInt32 = 536
    public var responseHeader = ResponseHeader()
    public var results: [BrowseResult]
    public var diagnosticInfos: [DiagnosticInfo] = []
    public init(results: [BrowseResult]) { self.results = results }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.write(results); w.write(diagnosticInfos) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read(); results = try r.readArray(); diagnosticInfos = try r.readArray() }
}

public struct RelativePathElement: UACodable, Sendable {
    public var referenceTypeId: NodeId
    public var isInverse: Bool
    public var includeSubtypes: Bool
    public var targetName: QualifiedName
    public init(referenceTypeId: NodeId = WellKnown.hierarchicalReferences, isInverse: Bool = false, includeSubtypes: Bool = true,
                targetName: QualifiedName) {
        self.referenceTypeId = referenceTypeId; self.isInverse = isInverse; self.includeSubtypes = includeSubtypes; self.targetName = targetName
    }
    public func encode(to w: inout BinaryWriter) { w.write(referenceTypeId); w.write(isInverse); w.write(includeSubtypes); w.write(targetName) }
    public init(from r: inout BinaryReader) throws {
        referenceTypeId = try r.read(); isInverse = try r.readBool(); includeSubtypes = try r.readBool(); targetName = try r.read()
    }
}

public struct BrowsePath: UACodable, Sendable {
    public var startingNode: NodeId
    public var elements: [RelativePathElement]
    public init(startingNode: NodeId, elements: [RelativePathElement]) { self.startingNode = startingNode; self.elements = elements }
    public func encode(to w: inout BinaryWriter) { w.write(startingNode); w.write(elements) }
    public init(from r: inout BinaryReader) throws { startingNode = try r.read(); elements = try r.readArray() }
}

public struct BrowsePathTarget: UACodable, Sendable {
    public var targetId: ExpandedNodeId
    public var remainingPathIndex: UInt32
    public func encode(to w: inout BinaryWriter) { w.write(targetId); w.write(remainingPathIndex) }
    public init(from r: inout BinaryReader) throws { targetId = try r.read(); remainingPathIndex = try r.readUInt32() }
    public init(targetId: ExpandedNodeId) { self.targetId = targetId; remainingPathIndex = UInt32.max }
}

public struct BrowsePathResult: UACodable, Sendable {
    public var statusCode: StatusCode
    public var targets: [BrowsePathTarget]
    public init(statusCode: StatusCode, targets: [BrowsePathTarget]) { self.statusCode = statusCode; self.targets = targets }
    public func encode(to w: inout BinaryWriter) { w.write(statusCode); w.write(targets) }
    public init(from r: inout BinaryReader) throws { statusCode = try r.read(); targets = try r.readArray() }
}

public struct TranslateBrowsePathsRequest: ServiceRequest {
    public static let encodingId: UInt32 = 554
    public var requestHeader = RequestHeader()
    public var browsePaths: [BrowsePath]
    public init(browsePaths: [BrowsePath]) { self.browsePaths = browsePaths }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(browsePaths) }
    public init(from r: inout BinaryReader) throws { requestHeader = try r.read(); browsePaths = try r.readArray() }
}

public struct TranslateBrowsePathsResponse: ServiceResponse {
    public static let encodingId: UInt32 = 557
    public var responseHeader = ResponseHeader()
    public var results: [BrowsePathResult]
    public var diagnosticInfos: [DiagnosticInfo] = []
    public init(results: [BrowsePathResult]) { self.results = results }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.write(results); w.write(diagnosticInfos) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read(); results = try r.readArray(); diagnosticInfos = try r.readArray() }
}

// MARK: - Subscriptions

public struct CreateSubscriptionRequest: ServiceRequest {
    public static let encodingId: UInt32 = 787
    public var requestHeader = RequestHeader()
    public var requestedPublishingInterval: Double
    public var requestedLifetimeCount: UInt32 = 600
    public var requestedMaxKeepAliveCount: UInt32 = 10
    public var maxNotificationsPerPublish: UInt32 = 0
    public var publishingEnabled = true
    public var priority: UInt8 = 0
    public init(publishingInterval: Double) { requestedPublishingInterval = publishingInterval }
    public func encode(to w: inout BinaryWriter) {
        w.write(requestHeader); w.write(requestedPublishingInterval); w.write(requestedLifetimeCount)
        w.write(requestedMaxKeepAliveCount); w.write(maxNotificationsPerPublish); w.write(publishingEnabled); w.write(priority)
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); requestedPublishingInterval = try r.readDouble(); requestedLifetimeCount = try r.readUInt32()
        requestedMaxKeepAliveCount = try r.readUInt32(); maxNotificationsPerPublish = try r.readUInt32()
        publishingEnabled = try r.readBool(); priority = try r.readUInt8()
    }
}

public struct CreateSubscriptionResponse: ServiceResponse {
    public static let encodingId: UInt32 = 790
    public var responseHeader = ResponseHeader()
    public var subscriptionId: UInt32
    public var revisedPublishingInterval: Double
    public var revisedLifetimeCount: UInt32
    public var revisedMaxKeepAliveCount: UInt32
    public init(subscriptionId: UInt32, revisedPublishingInterval: Double, revisedLifetimeCount: UInt32, revisedMaxKeepAliveCount: UInt32) {
        self.subscriptionId = subscriptionId; self.revisedPublishingInterval = revisedPublishingInterval
        self.revisedLifetimeCount = revisedLifetimeCount; self.revisedMaxKeepAliveCount = revisedMaxKeepAliveCount
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(responseHeader); w.write(subscriptionId); w.write(revisedPublishingInterval); w.write(revisedLifetimeCount)
        w.write(revisedMaxKeepAliveCount)
    }
    public init(from r: inout BinaryReader) throws {
        responseHeader = try r.read(); subscriptionId = try r.readUInt32(); revisedPublishingInterval = try r.readDouble()
        revisedLifetimeCount = try r.readUInt32(); revisedMaxKeepAliveCount = try r.readUInt32()
    }
}

public struct ModifySubscriptionRequest: ServiceRequest {
    public static let encodingId: UInt32 = 793
    public var requestHeader = RequestHeader()
    public var subscriptionId: UInt32
    public var requestedPublishingInterval: Double
    public var requestedLifetimeCount: UInt32
    public var requestedMaxKeepAliveCount: UInt32
    public var maxNotificationsPerPublish: UInt32
    public var priority: UInt8
    public init(subscriptionId: UInt32, publishingInterval: Double, lifetimeCount: UInt32 = 600, maxKeepAliveCount: UInt32 = 10,
                maxNotificationsPerPublish: UInt32 = 0, priority: UInt8 = 0) {
        self.subscriptionId = subscriptionId; requestedPublishingInterval = publishingInterval; requestedLifetimeCount = lifetimeCount
        requestedMaxKeepAliveCount = maxKeepAliveCount; self.maxNotificationsPerPublish = maxNotificationsPerPublish; self.priority = priority
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(requestHeader); w.write(subscriptionId); w.write(requestedPublishingInterval); w.write(requestedLifetimeCount)
        w.write(requestedMaxKeepAliveCount); w.write(maxNotificationsPerPublish); w.write(priority)
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); subscriptionId = try r.readUInt32(); requestedPublishingInterval = try r.readDouble()
        requestedLifetimeCount = try r.readUInt32(); requestedMaxKeepAliveCount = try r.readUInt32()
        maxNotificationsPerPublish = try r.readUInt32(); priority = try r.readUInt8()
    }
}

public struct ModifySubscriptionResponse: ServiceResponse {
    public static let encodingId: UInt32 = 796
    public var responseHeader = ResponseHeader()
    public var revisedPublishingInterval: Double
    public var revisedLifetimeCount: UInt32
    public var revisedMaxKeepAliveCount: UInt32
    public init(revisedPublishingInterval: Double, revisedLifetimeCount: UInt32, revisedMaxKeepAliveCount: UInt32) {
        self.revisedPublishingInterval = revisedPublishingInterval; self.revisedLifetimeCount = revisedLifetimeCount
        self.revisedMaxKeepAliveCount = revisedMaxKeepAliveCount
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(responseHeader); w.write(revisedPublishingInterval); w.write(revisedLifetimeCount); w.write(revisedMaxKeepAliveCount)
    }
    public init(from r: inout BinaryReader) throws {
        responseHeader = try r.read(); revisedPublishingInterval = try r.readDouble(); revisedLifetimeCount = try r.readUInt32()
        revisedMaxKeepAliveCount = try r.readUInt32()
    }
}

public struct SetPublishingModeRequest: ServiceRequest {
    public static let encodingId: UInt32 = 799
    public var requestHeader = RequestHeader()
    public var publishingEnabled: Bool
    public var subscriptionIds: [UInt32]
    public init(publishingEnabled: Bool, subscriptionIds: [UInt32]) { self.publishingEnabled = publishingEnabled; self.subscriptionIds = subscriptionIds }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(publishingEnabled); w.writeArray(subscriptionIds) { $0.write($1) } }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); publishingEnabled = try r.readBool(); subscriptionIds = try r.readArray { try $0.readUInt32() }
    }
}

public struct DeleteSubscriptionsRequest: ServiceRequest {
    public static let encodingId: UInt32 = 847
    public var requestHeader = RequestHeader()
    public var subscriptionIds: [UInt32]
    public init(subscriptionIds: [UInt32]) { self.subscriptionIds = subscriptionIds }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.writeArray(subscriptionIds) { $0.write($1) } }
    public init(from r: inout BinaryReader) throws { requestHeader = try r.read(); subscriptionIds = try r.readArray { try $0.readUInt32() } }
}

public enum MonitoringMode: UInt32, Sendable { case disabled = 0, sampling = 1, reporting = 2 }

public struct MonitoringParameters: UACodable, Sendable {
    public var clientHandle: UInt32
    public var samplingInterval: Double
    public var filter: ExtensionObject = .empty
    public var queueSize: UInt32 = 1
    public var discardOldest = true
    public init(clientHandle: UInt32, samplingInterval: Double, queueSize: UInt32 = 1) {
        self.clientHandle = clientHandle; self.samplingInterval = samplingInterval; self.queueSize = queueSize
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(clientHandle); w.write(samplingInterval); w.write(filter); w.write(queueSize); w.write(discardOldest)
    }
    public init(from r: inout BinaryReader) throws {
        clientHandle = try r.readUInt32(); samplingInterval = try r.readDouble(); filter = try r.read()
        queueSize = try r.readUInt32(); discardOldest = try r.readBool()
    }
}

public struct MonitoredItemCreateRequest: UACodable, Sendable {
    public var itemToMonitor: ReadValueId
    public var monitoringMode: MonitoringMode = .reporting
    public var requestedParameters: MonitoringParameters
    public init(itemToMonitor: ReadValueId, requestedParameters: MonitoringParameters) {
        self.itemToMonitor = itemToMonitor; self.requestedParameters = requestedParameters
    }
    public func encode(to w: inout BinaryWriter) { w.write(itemToMonitor); w.write(monitoringMode.rawValue); w.write(requestedParameters) }
    public init(from r: inout BinaryReader) throws {
        itemToMonitor = try r.read(); monitoringMode = MonitoringMode(rawValue: try r.readUInt32()) ?? .reporting
        requestedParameters = try r.read()
    }
}

public struct MonitoredItemCreateResult: UACodable, Sendable {
    public var statusCode: StatusCode
    public var monitoredItemId: UInt32
    public var revisedSamplingInterval: Double
    public var revisedQueueSize: UInt32
    public var filterResult: ExtensionObject = .empty
    public init(statusCode: StatusCode, monitoredItemId: UInt32, revisedSamplingInterval: Double, revisedQueueSize: UInt32) {
        self.statusCode = statusCode; self.monitoredItemId = monitoredItemId
        self.revisedSamplingInterval = revisedSamplingInterval; self.revisedQueueSize = revisedQueueSize
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(statusCode); w.write(monitoredItemId); w.write(revisedSamplingInterval); w.write(revisedQueueSize); w.write(filterResult)
    }
    public init(from r: inout BinaryReader) throws {
        statusCode = try r.read(); monitoredItemId = try r.readUInt32(); revisedSamplingInterval = try r.readDouble()
        revisedQueueSize = try r.readUInt32(); filterResult = try r.read()
    }
}

public struct CreateMonitoredItemsRequest: ServiceRequest {
    public static let encodingId: UInt32 = 751
    public var requestHeader = RequestHeader()
    public var subscriptionId: UInt32
    public var timestampsToReturn: TimestampsToReturn = .both
    public var itemsToCreate: [MonitoredItemCreateRequest]
    public init(subscriptionId: UInt32, itemsToCreate: [MonitoredItemCreateRequest]) {
        self.subscriptionId = subscriptionId; self.itemsToCreate = itemsToCreate
    }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(subscriptionId); w.write(timestampsToReturn.rawValue); w.write(itemsToCreate) }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); subscriptionId = try r.readUInt32()
        timestampsToReturn = TimestampsToReturn(rawValue: try r.readUInt32()) ?? .invalid; itemsToCreate = try r.readArray()
    }
}

public struct CreateMonitoredItemsResponse: ServiceResponse {
    public static let encodingId: UInt32 = 754
    public var responseHeader = ResponseHeader()
    public var results: [MonitoredItemCreateResult]
    public var diagnosticInfos: [DiagnosticInfo] = []
    public init(results: [MonitoredItemCreateResult]) { self.results = results }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.write(results); w.write(diagnosticInfos) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read(); results = try r.readArray(); diagnosticInfos = try r.readArray() }
}

public struct DeleteMonitoredItemsRequest: ServiceRequest {
    public static let encodingId: UInt32 = 781
    public var requestHeader = RequestHeader()
    public var subscriptionId: UInt32
    public var monitoredItemIds: [UInt32]
    public init(subscriptionId: UInt32, monitoredItemIds: [UInt32]) { self.subscriptionId = subscriptionId; self.monitoredItemIds = monitoredItemIds }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(subscriptionId); w.writeArray(monitoredItemIds) { $0.write($1) } }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); subscriptionId = try r.readUInt32(); monitoredItemIds = try r.readArray { try $0.readUInt32() }
    }
}

public struct SubscriptionAcknowledgement: UACodable, Sendable, Hashable {
    public var subscriptionId: UInt32
    public var sequenceNumber: UInt32
    public init(subscriptionId: UInt32, sequenceNumber: UInt32) { self.subscriptionId = subscriptionId; self.sequenceNumber = sequenceNumber }
    public func encode(to w: inout BinaryWriter) { w.write(subscriptionId); w.write(sequenceNumber) }
    public init(from r: inout BinaryReader) throws { subscriptionId = try r.readUInt32(); sequenceNumber = try r.readUInt32() }
}

public struct PublishRequest: ServiceRequest {
    public static let encodingId: UInt32 = 826
    public var requestHeader = RequestHeader()
    public var subscriptionAcknowledgements: [SubscriptionAcknowledgement]
    public init(acknowledgements: [SubscriptionAcknowledgement]) { subscriptionAcknowledgements = acknowledgements }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(subscriptionAcknowledgements) }
    public init(from r: inout BinaryReader) throws { requestHeader = try r.read(); subscriptionAcknowledgements = try r.readArray() }
}

public struct MonitoredItemNotification: UACodable, Sendable, Equatable {
    public var clientHandle: UInt32
    public var value: DataValue
    public init(clientHandle: UInt32, value: DataValue) { self.clientHandle = clientHandle; self.value = value }
    public func encode(to w: inout BinaryWriter) { w.write(clientHandle); w.write(value) }
    public init(from r: inout BinaryReader) throws { clientHandle = try r.readUInt32(); value = try r.read() }
}

public struct DataChangeNotification: UACodable, Sendable {
    public static let encodingId: UInt32 = 811
    public var monitoredItems: [MonitoredItemNotification]
    public var diagnosticInfos: [DiagnosticInfo] = []
    public init(monitoredItems: [MonitoredItemNotification]) { self.monitoredItems = monitoredItems }
    public func encode(to w: inout BinaryWriter) { w.write(monitoredItems); w.write(diagnosticInfos) }
    public init(from r: inout BinaryReader) throws { monitoredItems = try r.readArray(); diagnosticInfos = try r.readArray() }
}

public struct StatusChangeNotification: UACodable, Sendable {
    public static let encodingId: UInt32 = 820
    public var status: StatusCode
    public var diagnosticInfo = DiagnosticInfo()
    public init(status: StatusCode) { self.status = status }
    public func encode(to w: inout BinaryWriter) { w.write(status); diagnosticInfo.encode(to: &w) }
    public init(from r: inout BinaryReader) throws { status = try r.read(); diagnosticInfo = try DiagnosticInfo(from: &r) }
}

public struct NotificationMessage: UACodable, Sendable {
    public var sequenceNumber: UInt32
    public var publishTime: DateTime
    public var notificationData: [ExtensionObject]
    public init(sequenceNumber: UInt32, publishTime: DateTime, notificationData: [ExtensionObject]) {
        self.sequenceNumber = sequenceNumber; self.publishTime = publishTime; self.notificationData = notificationData
    }
    public func encode(to w: inout BinaryWriter) { w.write(sequenceNumber); w.write(publishTime.ticks); w.write(notificationData) }
    public init(from r: inout BinaryReader) throws {
        sequenceNumber = try r.readUInt32(); publishTime = DateTime(ticks: try r.readInt64()); notificationData = try r.readArray()
    }
}

public struct PublishResponse: ServiceResponse {
    public static let encodingId: UInt32 = 829
    public var responseHeader = ResponseHeader()
    public var subscriptionId: UInt32
    public var availableSequenceNumbers: [UInt32]
    public var moreNotifications: Bool
    public var notificationMessage: NotificationMessage
    public var results: [StatusCode]
    public var diagnosticInfos: [DiagnosticInfo] = []
    public init(subscriptionId: UInt32, availableSequenceNumbers: [UInt32], moreNotifications: Bool,
                notificationMessage: NotificationMessage, results: [StatusCode]) {
        self.subscriptionId = subscriptionId; self.availableSequenceNumbers = availableSequenceNumbers
        self.moreNotifications = moreNotifications; self.notificationMessage = notificationMessage; self.results = results
    }
    public func encode(to w: inout BinaryWriter) {
        w.write(responseHeader); w.write(subscriptionId); w.writeArray(availableSequenceNumbers) { $0.write($1) }
        w.write(moreNotifications); w.write(notificationMessage); w.write(results); w.write(diagnosticInfos)
    }
    public init(from r: inout BinaryReader) throws {
        responseHeader = try r.read(); subscriptionId = try r.readUInt32()
        availableSequenceNumbers = try r.readArray { try $0.readUInt32() }; moreNotifications = try r.readBool()
        notificationMessage = try r.read(); results = try r.readArray(); diagnosticInfos = try r.readArray()
    }
}

public struct RepublishRequest: ServiceRequest {
    public static let encodingId: UInt32 = 832
    public var requestHeader = RequestHeader()
    public var subscriptionId: UInt32
    public var retransmitSequenceNumber: UInt32
    public init(subscriptionId: UInt32, retransmitSequenceNumber: UInt32) {
        self.subscriptionId = subscriptionId; self.retransmitSequenceNumber = retransmitSequenceNumber
    }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(subscriptionId); w.write(retransmitSequenceNumber) }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); subscriptionId = try r.readUInt32(); retransmitSequenceNumber = try r.readUInt32()
    }
}

public struct RepublishResponse: ServiceResponse {
    public static let encodingId: UInt32 = 835
    public var responseHeader = ResponseHeader()
    public var notificationMessage: NotificationMessage
    public init(notificationMessage: NotificationMessage) { self.notificationMessage = notificationMessage }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.write(notificationMessage) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read(); notificationMessage = try r.read() }
}
