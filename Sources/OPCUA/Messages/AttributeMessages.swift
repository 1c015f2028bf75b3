import Foundation

// Attribute service set (OPC UA Part 4, 5.10): Read, Write.

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

public enum ReadService: ResultsService {
    public typealias Item = DataValue
    public static let encodingId: UInt32 = 634
}
public typealias ReadResponse = ResultsResponse<ReadService>

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

/// Responses carrying only per-operation status codes (Write, DeleteSubscriptions, DeleteMonitoredItems, SetPublishingMode).
public enum WriteService: ResultsService { public typealias Item = StatusCode; public static let encodingId: UInt32 = 676 }
public enum DeleteSubscriptionsService: ResultsService { public typealias Item = StatusCode; public static let encodingId: UInt32 = 850 }
public enum DeleteMonitoredItemsService: ResultsService { public typealias Item = StatusCode; public static let encodingId: UInt32 = 784 }
public enum SetPublishingModeService: ResultsService { public typealias Item = StatusCode; public static let encodingId: UInt32 = 802 }
public typealias WriteResponse = ResultsResponse<WriteService>
public typealias DeleteSubscriptionsResponse = ResultsResponse<DeleteSubscriptionsService>
public typealias DeleteMonitoredItemsResponse = ResultsResponse<DeleteMonitoredItemsService>
public typealias SetPublishingModeResponse = ResultsResponse<SetPublishingModeService>
