import Foundation

/// A reference from one node to another.
public struct NodeReference: Sendable, Hashable {
    public var referenceTypeId: NodeId
    public var isForward: Bool
    public var target: NodeId
}

/// One node of the server's address space.
public struct Node: Sendable {
    public var nodeId: NodeId
    public var nodeClass: NodeClass
    public var browseName: QualifiedName
    public var displayName: LocalizedText
    public var description: LocalizedText? = nil
    public var typeDefinition: NodeId?
    public var references: [NodeReference] = []
    // Variables only.
    public var value = DataValue()
    public var dataType: NodeId = NodeId(24)
    public var valueRank: Int32 = -1
    public var writable = false
    public var isAbstract = false
    /// Bumped on every value change (used by sampling to skip unchanged nodes).
    public var version: UInt64 = 0
}

/// Errors of address space edits.
public enum AddressSpaceError: Error, Equatable, Sendable {
    case duplicateNodeId(NodeId)
    case unknownParent(NodeId)
    case unknownNode(NodeId)
}

/// The nodes of a server: the standard ones clients need plus the application's folders and variables.
/// Not thread-safe by itself; ``OPCUAServer`` guards it with a lock.
struct AddressSpace {
    var nodes: [NodeId: Node] = [:]
    var namespaces: [String]
    let startTime = DateTime.now

    /// Subtypes (direct) of each reference type we know.
    static let referenceSubtypes: [NodeId: [NodeId]] = [
        WellKnown.references: [WellKnown.hierarchicalReferences, WellKnown.nonHierarchicalReferences],
        WellKnown.hierarchicalReferences: [WellKnown.hasChild, WellKnown.organizes, NodeId(36)],
        WellKnown.hasChild: [WellKnown.aggregates, WellKnown.hasSubtype],
        WellKnown.aggregates: [WellKnown.hasComponent, WellKnown.hasProperty],
        WellKnown.nonHierarchicalReferences: [WellKnown.hasTypeDefinition, NodeId(37), NodeId(38), NodeId(39), NodeId(41)],
    ]

    /// True when `type` is `base` or (with `includeSubtypes`) one of its subtypes.
    static func matches(_ type: NodeId, _ base: NodeId, includeSubtypes: Bool) -> Bool {
        if base.isNull || type == base { return true }
        guard includeSubtypes else { return false }
        var pending = referenceSubtypes[base] ?? []
        var depth = 0
        while !pending.isEmpty && depth < 10 {
            if pending.contains(type) { return true }
            pending = pending.flatMap { referenceSubtypes[$0] ?? [] }
            depth += 1
        }
        return false
    }

    init(applicationUri: String, namespaceUri: String) {
        namespaces = ["http://opcfoundation.org/UA/", applicationUri, namespaceUri]
        addObject(WellKnown.rootFolder, "Root", parent: nil, type: WellKnown.folderType)
        addObject(WellKnown.objectsFolder, "Objects", parent: WellKnown.rootFolder, type: WellKnown.folderType)
        addObject(WellKnown.typesFolder, "Types", parent: WellKnown.rootFolder, type: WellKnown.folderType)
        addObject(WellKnown.viewsFolder, "Views", parent: WellKnown.rootFolder, type: WellKnown.folderType)
        addObject(WellKnown.server, "Server", parent: WellKnown.objectsFolder, type: WellKnown.serverType)
        addVariable(WellKnown.namespaceArray, "NamespaceArray", parent: WellKnown.server, reference: WellKnown.hasProperty,
                    value: .array(.string, namespaces.map { .string($0) }), type: WellKnown.propertyType)
        addVariable(WellKnown.serverArray, "ServerArray", parent: WellKnown.server, reference: WellKnown.hasProperty,
                    value: .array(.string, [.string(applicationUri)]), type: WellKnown.propertyType)
        addVariable(WellKnown.serverStatus, "ServerStatus", parent: WellKnown.server, reference: WellKnown.hasComponent,
                    value: .null, type: WellKnown.serverStatusType)
        nodes[WellKnown.serverStatus]?.dataType = NodeId(862)
        addVariable(WellKnown.serverStatusStartTime, "StartTime", parent: WellKnown.serverStatus, reference: WellKnown.hasComponent,
                    value: .dateTime(startTime), type: WellKnown.baseDataVariableType)
        addVariable(WellKnown.serverStatusCurrentTime, "CurrentTime", parent: WellKnown.serverStatus, reference: WellKnown.hasComponent,
                    value: .dateTime(startTime), type: WellKnown.baseDataVariableType)
        addVariable(WellKnown.serverStatusState, "State", parent: WellKnown.serverStatus, reference: WellKnown.hasComponent,
                    value: .int32(0), type: WellKnown.baseDataVariableType)
        nodes[WellKnown.serverStatusState]?.dataType = NodeId(852)
        addVariable(WellKnown.serviceLevel, "ServiceLevel", parent: WellKnown.server, reference: WellKnown.hasProperty,
                    value: .byte(255), type: WellKnown.propertyType)
    }

    private mutating func addObject(_ id: NodeId, _ name: String, parent: NodeId?, type: NodeId) {
        nodes[id] = Node(nodeId: id, nodeClass: .object, browseName: QualifiedName(name), displayName: LocalizedText(name),
                         typeDefinition: type)
        if let parent { link(parent, id, WellKnown.organizes) }
    }

    private mutating func addVariable(_ id: NodeId, _ name: String, parent: NodeId, reference: NodeId, value: Variant, type: NodeId) {
        var node = Node(nodeId: id, nodeClass: .variable, browseName: QualifiedName(name), displayName: LocalizedText(name),
                        typeDefinition: type)
        node.value = DataValue(value, sourceTimestamp: startTime, serverTimestamp: startTime)
        node.dataType = value.type?.dataTypeId ?? NodeId(24)
        node.valueRank = value.isArray ? 1 : -1
        nodes[id] = node
        link(parent, id, reference)
    }

    mutating func link(_ source: NodeId, _ target: NodeId, _ type: NodeId) {
        nodes[source]?.references.append(NodeReference(referenceTypeId: type, isForward: true, target: target))
        nodes[target]?.references.append(NodeReference(referenceTypeId: type, isForward: false, target: source))
    }

    mutating func add(_ node: Node, parent: NodeId, reference: NodeId) throws {
        guard nodes[node.nodeId] == nil else { throw AddressSpaceError.duplicateNodeId(node.nodeId) }
        guard nodes[parent] != nil else { throw AddressSpaceError.unknownParent(parent) }
        nodes[node.nodeId] = node
        link(parent, node.nodeId, reference)
    }

    /// The current value of a variable; CurrentTime and ServerStatus are computed on read.
    func value(of id: NodeId) -> DataValue? {
        if id == WellKnown.serverStatusCurrentTime {
            let now = DateTime.now
            return DataValue(.dateTime(now), sourceTimestamp: now, serverTimestamp: now)
        }
        if id == WellKnown.serverStatus {
            let now = DateTime.now
            return DataValue(.extensionObject(ExtensionObject(encodingId: 864, ServerStatusBody(startTime: startTime, currentTime: now))),
                             sourceTimestamp: now, serverTimestamp: now)
        }
        return nodes[id].map { $0.nodeClass == .variable ? $0.value : DataValue(status: .badAttributeIdInvalid) }
    }

    /// Reads one attribute.
    func read(_ item: ReadValueId) -> DataValue {
        // A variable's value (what clients read most), without copying the node out.
        if item.attributeId == AttributeId.value.rawValue, item.indexRange == nil || item.indexRange == "",
           item.nodeId != WellKnown.serverStatusCurrentTime, item.nodeId != WellKnown.serverStatus,
           let index = nodes.index(forKey: item.nodeId) {
            return nodes.values[index].nodeClass == .variable ? nodes.values[index].value : DataValue(status: .badAttributeIdInvalid)
        }
        guard let node = nodes[item.nodeId] else { return DataValue(status: .badNodeIdUnknown) }
        guard let attribute = AttributeId(rawValue: item.attributeId) else { return DataValue(status: .badAttributeIdInvalid) }
        let isVariable = node.nodeClass == .variable
        func plain(_ variant: Variant) -> DataValue { DataValue(variant) }
        switch attribute {
        case .nodeId: return plain(.nodeId(node.nodeId))
        case .nodeClass: return plain(.int32(Int32(node.nodeClass.rawValue)))
        case .browseName: return plain(.qualifiedName(node.browseName))
        case .displayName: return plain(.localizedText(node.displayName))
        case .description: return plain(.localizedText(node.description ?? LocalizedText(nil)))
        case .writeMask, .userWriteMask: return plain(.uint32(0))
        case .eventNotifier:
            return node.nodeClass == .object ? plain(.byte(0)) : DataValue(status: .badAttributeIdInvalid)
        case .isAbstract:
            return [.objectType, .variableType, .referenceType, .dataType].contains(node.nodeClass)
                ? plain(.boolean(node.isAbstract)) : DataValue(status: .badAttributeIdInvalid)
        case .value:
            guard isVariable else { return DataValue(status: .badAttributeIdInvalid) }
            if item.indexRange != nil && item.indexRange != "" { return DataValue(status: .badIndexRangeInvalid) }
            return value(of: node.nodeId) ?? DataValue(status: .badNodeIdUnknown)
        case .dataType: return isVariable ? plain(.nodeId(node.dataType)) : DataValue(status: .badAttributeIdInvalid)
        case .valueRank: return isVariable ? plain(.int32(node.valueRank)) : DataValue(status: .badAttributeIdInvalid)
        case .arrayDimensions:
            guard isVariable else { return DataValue(status: .badAttributeIdInvalid) }
            if case .array(_, let elements) = node.value.value { return plain(.array(.uint32, [.uint32(UInt32(elements.count))])) }
            return plain(.array(.uint32, []))
        case .accessLevel, .userAccessLevel:
            return isVariable ? plain(.byte(node.writable ? 3 : 1)) : DataValue(status: .badAttributeIdInvalid)
        case .minimumSamplingInterval: return isVariable ? plain(.double(10)) : DataValue(status: .badAttributeIdInvalid)
        case .historizing: return isVariable ? plain(.boolean(false)) : DataValue(status: .badAttributeIdInvalid)
        default: return DataValue(status: .badAttributeIdInvalid)
        }
    }

    func describe(_ reference: NodeReference) -> ReferenceDescription? {
        guard let target = nodes[reference.target] else { return nil }
        return ReferenceDescription(referenceTypeId: reference.referenceTypeId, isForward: reference.isForward,
                                    nodeId: ExpandedNodeId(target.nodeId), browseName: target.browseName,
                                    displayName: target.displayName, nodeClass: target.nodeClass,
                                    typeDefinition: ExpandedNodeId(target.typeDefinition ?? .null))
    }

    /// The references of a browse description, or a bad status.
    func browse(_ description: BrowseDescription) -> Result<[ReferenceDescription], StatusCode> {
        guard let node = nodes[description.nodeId] else { return .failure(.badNodeIdUnknown) }
        guard description.browseDirection != .invalid else { return .failure(.badBrowseDirectionInvalid) }
        var result: [ReferenceDescription] = []
        for reference in node.references {
            switch description.browseDirection {
            case .forward where !reference.isForward, .inverse where reference.isForward: continue
            default: break
            }
            guard AddressSpace.matches(reference.referenceTypeId, description.referenceTypeId,
                                       includeSubtypes: description.includeSubtypes) else { continue }
            guard var described = describe(reference) else { continue }
            if description.nodeClassMask != 0 && description.nodeClassMask & described.nodeClass.rawValue == 0 { continue }
            if description.resultMask & 0x01 == 0 { described.referenceTypeId = .null }
            result.append(described)
        }
        // The type definition reference, for forward browses that include it.
        if description.browseDirection != .inverse, let type = node.typeDefinition,
           AddressSpace.matches(WellKnown.hasTypeDefinition, description.referenceTypeId, includeSubtypes: description.includeSubtypes),
           description.referenceTypeId != WellKnown.hierarchicalReferences {
            let name = QualifiedName("\(type)")
            result.append(ReferenceDescription(referenceTypeId: WellKnown.hasTypeDefinition, isForward: true, nodeId: ExpandedNodeId(type),
                                               browseName: name, displayName: LocalizedText(name.name), nodeClass: .objectType,
                                               typeDefinition: ExpandedNodeId(.null)))
        }
        return .success(result)
    }

    func translate(_ path: BrowsePath) -> BrowsePathResult {
        guard nodes[path.startingNode] != nil else { return BrowsePathResult(statusCode: .badNodeIdUnknown, targets: []) }
        guard !path.elements.isEmpty else { return BrowsePathResult(statusCode: .badNothingToDo, targets: []) }
        var current: [NodeId] = [path.startingNode]
        for element in path.elements {
            var next: [NodeId] = []
            for id in current {
                for reference in nodes[id]?.references ?? [] where reference.isForward != element.isInverse {
                    guard AddressSpace.matches(reference.referenceTypeId, element.referenceTypeId, includeSubtypes: element.includeSubtypes),
                          let target = nodes[reference.target], target.browseName == element.targetName else { continue }
                    next.append(target.nodeId)
                }
            }
            current = next
            if current.isEmpty { return BrowsePathResult(statusCode: .badNoMatch, targets: []) }
        }
        return BrowsePathResult(statusCode: .good, targets: current.map { BrowsePathTarget(targetId: ExpandedNodeId($0)) })
    }
}

/// The ServerStatusDataType structure (encoding id 864).
struct ServerStatusBody: UAEncodable {
    var startTime: DateTime
    var currentTime: DateTime
    func encode(to w: inout BinaryWriter) {
        w.write(startTime.ticks); w.write(currentTime.ticks); w.write(Int32(0))
        // BuildInfo
        w.write("urn:linemes:opcua"); w.write("LineMES"); w.write("LineMES OPC UA server"); w.write("1.0"); w.write("1")
        w.write(startTime.ticks)
        w.write(UInt32(0)); w.write(LocalizedText(nil))
    }
}
