import Foundation

// Service messages: the request and response protocols, their headers and ServiceFault (OPC UA Part 4, clause 7).

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
        w.writeStrings(stringTable); w.write(additionalHeader)
    }
    public init(from r: inout BinaryReader) throws {
        timestamp = DateTime(ticks: try r.readInt64()); requestHandle = try r.readUInt32(); serviceResult = try r.read()
        serviceDiagnostics = try DiagnosticInfo(from: &r); stringTable = try r.readStrings()
        additionalHeader = try r.read()
    }
}

/// What a response of the common shape (per-operation results and their diagnostics) carries:
/// its encoding id and the type of each result.
public protocol ResultsService: Sendable {
    associatedtype Item: UACodable & Sendable
    static var encodingId: UInt32 { get }
}

/// A response of per-operation results (Read, Write, Browse, CreateMonitoredItems …): one generic
/// encode/decode pair instead of one per service.
public struct ResultsResponse<Service: ResultsService>: ServiceResponse {
    public static var encodingId: UInt32 { Service.encodingId }
    public var responseHeader = ResponseHeader()
    public var results: [Service.Item]
    public var diagnosticInfos: [DiagnosticInfo] = []
    public init(results: [Service.Item]) { self.results = results }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader); w.write(results); w.write(diagnosticInfos) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read(); results = try r.readArray(); diagnosticInfos = try r.readArray() }
}

public struct ServiceFault: ServiceResponse {
    public static let encodingId: UInt32 = 397
    public var responseHeader: ResponseHeader
    public init(responseHeader: ResponseHeader) { self.responseHeader = responseHeader }
    public func encode(to w: inout BinaryWriter) { w.write(responseHeader) }
    public init(from r: inout BinaryReader) throws { responseHeader = try r.read() }
}
