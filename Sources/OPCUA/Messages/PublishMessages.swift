import Foundation

// Publishing (OPC UA Part 4, 5.13.5–5.13.6): Publish, Republish and the notifications they carry.

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
        w.write(responseHeader); w.write(subscriptionId); w.writeUInt32s(availableSequenceNumbers)
        w.write(moreNotifications); w.write(notificationMessage); w.write(results); w.write(diagnosticInfos)
    }
    public init(from r: inout BinaryReader) throws {
        responseHeader = try r.read(); subscriptionId = try r.readUInt32()
        availableSequenceNumbers = try r.readUInt32s(); moreNotifications = try r.readBool()
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
