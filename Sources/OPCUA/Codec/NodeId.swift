import Foundation

/// An OPC UA NodeId: a namespace index and a numeric, string, GUID or opaque identifier.
public struct NodeId: Hashable, Sendable, CustomStringConvertible {
    public enum Identifier: Hashable, Sendable {
        case numeric(UInt32)
        case string(String)
        case guid(UUID)
        case opaque([UInt8])
    }

    public var namespace: UInt16
    public var identifier: Identifier

    public init(namespace: UInt16 = 0, _ identifier: Identifier) {
        self.namespace = namespace
        self.identifier = identifier
    }

    public init(_ numeric: UInt32, namespace: UInt16 = 0) {
        self.init(namespace: namespace, .numeric(numeric))
    }

    public init(_ string: String, namespace: UInt16) {
        self.init(namespace: namespace, .string(string))
    }

    /// The null NodeId `i=0`.
    public static let null = NodeId(0)
    public var isNull: Bool { namespace == 0 && identifier == .numeric(0) }

    /// Parses the standard text forms: `i=2258`, `ns=2;s=Paint.VehicleId`, `ns=2;i=1007`,
    /// `ns=3;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63`, `ns=1;b=<base64>`. Nil if malformed.
    public init?(_ text: String) {
        var rest = Substring(text)
        var namespace: UInt16 = 0
        if rest.hasPrefix("ns=") {
            guard let semicolon = rest.firstIndex(of: ";"),
                  let index = UInt16(rest[rest.index(rest.startIndex, offsetBy: 3)..<semicolon]) else { return nil }
            namespace = index
            rest = rest[rest.index(after: semicolon)...]
        }
        guard rest.count >= 2, rest[rest.index(after: rest.startIndex)] == "=" else { return nil }
        let kind = rest.first!
        let value = rest.dropFirst(2)
        switch kind {
        case "i":
            guard let number = UInt32(value) else { return nil }
            self.init(namespace: namespace, .numeric(number))
        case "s":
            self.init(namespace: namespace, .string(String(value)))
        case "g":
            guard let uuid = UUID(uuidString: String(value)) else { return nil }
            self.init(namespace: namespace, .guid(uuid))
        case "b":
            guard let data = Data(base64Encoded: String(value)) else { return nil }
            self.init(namespace: namespace, .opaque([UInt8](data)))
        default:
            return nil
        }
    }

    /// The standard text form (`ns=` left out for namespace 0).
    public var description: String {
        let prefix = namespace == 0 ? "" : "ns=\(namespace);"
        switch identifier {
        case .numeric(let value): return "\(prefix)i=\(value)"
        case .string(let value): return "\(prefix)s=\(value)"
        case .guid(let value): return "\(prefix)g=\(value.uuidString)"
        case .opaque(let value): return "\(prefix)b=\(Data(value).base64EncodedString())"
        }
    }
}

extension NodeId: UACodable {
    public func encode(to writer: inout BinaryWriter) { encode(to: &writer, flags: 0) }

    /// Encodes with extra high bits in the encoding byte (ExpandedNodeId uses 0x80 and 0x40).
    func encode(to writer: inout BinaryWriter, flags: UInt8) {
        switch identifier {
        case .numeric(let value):
            if namespace == 0 && value <= 0xFF {
                writer.write(UInt8(0x00) | flags)
                writer.write(UInt8(value))
            } else if namespace <= 0xFF && value <= 0xFFFF {
                writer.write(UInt8(0x01) | flags)
                writer.write(UInt8(namespace))
                writer.write(UInt16(value))
            } else {
                writer.write(UInt8(0x02) | flags)
                writer.write(namespace)
                writer.write(value)
            }
        case .string(let value):
            writer.write(UInt8(0x03) | flags)
            writer.write(namespace)
            writer.write(value)
        case .guid(let value):
            writer.write(UInt8(0x04) | flags)
            writer.write(namespace)
            writer.writeGuid(value)
        case .opaque(let value):
            writer.write(UInt8(0x05) | flags)
            writer.write(namespace)
            writer.writeByteString(value)
        }
    }

    public init(from reader: inout BinaryReader) throws {
        let (node, flags) = try NodeId.decode(from: &reader)
        guard flags == 0 else { throw DecodeError.invalid("NodeId with ExpandedNodeId flags \(flags)") }
        self = node
    }

    static func decode(from reader: inout BinaryReader) throws -> (NodeId, UInt8) {
        let encoding = try reader.readUInt8()
        let flags = encoding & 0xC0
        switch encoding & 0x3F {
        case 0x00:
            return (NodeId(namespace: 0, .numeric(UInt32(try reader.readUInt8()))), flags)
        case 0x01:
            let namespace = UInt16(try reader.readUInt8())
            return (NodeId(namespace: namespace, .numeric(UInt32(try reader.readUInt16()))), flags)
        case 0x02:
            let namespace = try reader.readUInt16()
            return (NodeId(namespace: namespace, .numeric(try reader.readUInt32())), flags)
        case 0x03:
            let namespace = try reader.readUInt16()
            return (NodeId(namespace: namespace, .string(try reader.readString() ?? "")), flags)
        case 0x04:
            let namespace = try reader.readUInt16()
            return (NodeId(namespace: namespace, .guid(try reader.readGuid())), flags)
        case 0x05:
            let namespace = try reader.readUInt16()
            return (NodeId(namespace: namespace, .opaque(try reader.readByteString() ?? [])), flags)
        default:
            throw DecodeError.invalid("NodeId encoding byte \(encoding)")
        }
    }
}

/// A NodeId that may name its namespace by URI and live on another server.
public struct ExpandedNodeId: Hashable, Sendable, CustomStringConvertible {
    public var nodeId: NodeId
    public var namespaceUri: String?
    public var serverIndex: UInt32

    public init(_ nodeId: NodeId, namespaceUri: String? = nil, serverIndex: UInt32 = 0) {
        self.nodeId = nodeId
        self.namespaceUri = namespaceUri
        self.serverIndex = serverIndex
    }

    public var description: String {
        var text = serverIndex == 0 ? "" : "svr=\(serverIndex);"
        if let namespaceUri { text += "nsu=\(namespaceUri);" }
        return text + nodeId.description
    }
}

extension ExpandedNodeId: UACodable {
    public func encode(to writer: inout BinaryWriter) {
        var flags: UInt8 = 0
        if namespaceUri != nil { flags |= 0x80 }
        if serverIndex != 0 { flags |= 0x40 }
        nodeId.encode(to: &writer, flags: flags)
        if let namespaceUri { writer.write(namespaceUri) }
        if serverIndex != 0 { writer.write(serverIndex) }
    }

    public init(from reader: inout BinaryReader) throws {
        let (node, flags) = try NodeId.decode(from: &reader)
        nodeId = node
        namespaceUri = flags & 0x80 != 0 ? try reader.readString() : nil
        serverIndex = flags & 0x40 != 0 ? try reader.readUInt32() : 0
    }
}

extension BinaryWriter {
    /// A Guid: Data1 (UInt32), Data2, Data3 (UInt16) little-endian, then Data4's eight bytes.
    public mutating func writeGuid(_ uuid: UUID) {
        let u = uuid.uuid
        write(UInt32(u.0) << 24 | UInt32(u.1) << 16 | UInt32(u.2) << 8 | UInt32(u.3))
        write(UInt16(u.4) << 8 | UInt16(u.5))
        write(UInt16(u.6) << 8 | UInt16(u.7))
        writeRaw([u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15])
    }
}

extension BinaryReader {
    public mutating func readGuid() throws -> UUID {
        try need(16)
        let data1 = try readUInt32()
        let data2 = try readUInt16()
        let data3 = try readUInt16()
        let d = try readRaw(8)
        return UUID(uuid: (UInt8(data1 >> 24), UInt8(data1 >> 16 & 0xFF), UInt8(data1 >> 8 & 0xFF), UInt8(data1 & 0xFF),
                           UInt8(data2 >> 8), UInt8(data2 & 0xFF), UInt8(data3 >> 8), UInt8(data3 & 0xFF),
                           d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]))
    }
}

/// Well-known nodes of namespace 0.
public enum WellKnown {
    public static let rootFolder = NodeId(84)
    public static let objectsFolder = NodeId(85)
    public static let typesFolder = NodeId(86)
    public static let viewsFolder = NodeId(87)
    public static let server = NodeId(2253)
    public static let serverArray = NodeId(2254)
    public static let namespaceArray = NodeId(2255)
    public static let serverStatus = NodeId(2256)
    public static let serverStatusStartTime = NodeId(2257)
    public static let serverStatusCurrentTime = NodeId(2258)
    public static let serverStatusState = NodeId(2259)
    public static let serverStatusBuildInfo = NodeId(2260)
    public static let serviceLevel = NodeId(2267)
    public static let serverCapabilities = NodeId(2268)

    public static let references = NodeId(31)
    public static let hierarchicalReferences = NodeId(33)
    public static let nonHierarchicalReferences = NodeId(32)
    public static let hasChild = NodeId(34)
    public static let organizes = NodeId(35)
    public static let hasTypeDefinition = NodeId(40)
    public static let aggregates = NodeId(44)
    public static let hasProperty = NodeId(46)
    public static let hasComponent = NodeId(47)
    public static let hasSubtype = NodeId(45)

    public static let folderType = NodeId(61)
    public static let baseDataVariableType = NodeId(63)
    public static let propertyType = NodeId(68)
    public static let serverType = NodeId(2004)
    public static let serverStatusType = NodeId(2138)
    public static let baseObjectType = NodeId(58)
}
