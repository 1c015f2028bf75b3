import Foundation

// View service set (OPC UA Part 4, 5.8): Browse, BrowseNext, TranslateBrowsePathsToNodeIds.

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

public enum BrowseService: ResultsService {
    public typealias Item = BrowseResult
    public static let encodingId: UInt32 = 530
}
public typealias BrowseResponse = ResultsResponse<BrowseService>

public enum BrowseNextService: ResultsService {
    public typealias Item = BrowseResult
    public static let encodingId: UInt32 = 536
}
public typealias BrowseNextResponse = ResultsResponse<BrowseNextService>

public enum TranslateBrowsePathsService: ResultsService {
    public typealias Item = BrowsePathResult
    public static let encodingId: UInt32 = 557
}
public typealias TranslateBrowsePathsResponse = ResultsResponse<TranslateBrowsePathsService>
