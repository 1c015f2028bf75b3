import Foundation

// MonitoredItem service set (OPC UA Part 4, 5.12): CreateMonitoredItems, DeleteMonitoredItems.

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

public struct DeleteMonitoredItemsRequest: ServiceRequest {
    public static let encodingId: UInt32 = 781
    public var requestHeader = RequestHeader()
    public var subscriptionId: UInt32
    public var monitoredItemIds: [UInt32]
    public init(subscriptionId: UInt32, monitoredItemIds: [UInt32]) { self.subscriptionId = subscriptionId; self.monitoredItemIds = monitoredItemIds }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(subscriptionId); w.writeUInt32s(monitoredItemIds) }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); subscriptionId = try r.readUInt32(); monitoredItemIds = try r.readUInt32s()
    }
}

public enum CreateMonitoredItemsService: ResultsService {
    public typealias Item = MonitoredItemCreateResult
    public static let encodingId: UInt32 = 754
}
public typealias CreateMonitoredItemsResponse = ResultsResponse<CreateMonitoredItemsService>
