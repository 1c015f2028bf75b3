import Foundation

// Subscription service set (OPC UA Part 4, 5.13): CreateSubscription, ModifySubscription, SetPublishingMode, DeleteSubscriptions.

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
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.write(publishingEnabled); w.writeUInt32s(subscriptionIds) }
    public init(from r: inout BinaryReader) throws {
        requestHeader = try r.read(); publishingEnabled = try r.readBool(); subscriptionIds = try r.readUInt32s()
    }
}

public struct DeleteSubscriptionsRequest: ServiceRequest {
    public static let encodingId: UInt32 = 847
    public var requestHeader = RequestHeader()
    public var subscriptionIds: [UInt32]
    public init(subscriptionIds: [UInt32]) { self.subscriptionIds = subscriptionIds }
    public func encode(to w: inout BinaryWriter) { w.write(requestHeader); w.writeUInt32s(subscriptionIds) }
    public init(from r: inout BinaryReader) throws { requestHeader = try r.read(); subscriptionIds = try r.readUInt32s() }
}
