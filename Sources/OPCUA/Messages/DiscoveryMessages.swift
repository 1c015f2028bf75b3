import Foundation

// Discovery service set (OPC UA Part 4, 5.4): FindServers, GetEndpoints.

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
        w.write(gatewayServerUri); w.write(discoveryProfileUri); w.writeStrings(discoveryUrls)
    }
    public init(from r: inout BinaryReader) throws {
        applicationUri = try r.readString(); productUri = try r.readString(); applicationName = try r.read()
        applicationType = ApplicationType(rawValue: try r.readUInt32()) ?? .server
        gatewayServerUri = try r.readString(); discoveryProfileUri = try r.readString()
        discoveryUrls = try r.readStrings()
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
        w.write(requestHeader); w.write(endpointUrl); w.writeStrings(localeIds); w.writeStrings(profileUris)
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); endpointUrl = try r.readString()
        localeIds = try r.readStrings(); profileUris = try r.readStrings()
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
        w.write(requestHeader); w.write(endpointUrl); w.writeStrings(localeIds); w.writeStrings(serverUris)
    }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); endpointUrl = try r.readString()
        localeIds = try r.readStrings(); serverUris = try r.readStrings()
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
