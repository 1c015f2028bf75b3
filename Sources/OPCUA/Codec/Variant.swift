import Foundation

/// The 25 built-in types, by their Variant type id (also their DataType NodeId in namespace 0).
public enum BuiltinType: UInt8, Sendable, CaseIterable {
    case boolean = 1, sbyte, byte, int16, uint16, int32, uint32, int64, uint64, float, double, string, dateTime, guid
    case byteString, xmlElement, nodeId, expandedNodeId, statusCode, qualifiedName, localizedText, extensionObject
    case dataValue, variant, diagnosticInfo

    /// The DataType node of this type (`i=1` … `i=25`).
    public var dataTypeId: NodeId { NodeId(UInt32(rawValue)) }
}

/// A value of any built-in type: a scalar, a one-dimensional array, or a matrix.
public indirect enum Variant: Hashable, Sendable {
    case null
    case boolean(Bool)
    case sbyte(Int8)
    case byte(UInt8)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case uint64(UInt64)
    case float(Float)
    case double(Double)
    case string(String?)
    case dateTime(DateTime)
    case guid(UUID)
    case byteString([UInt8]?)
    case xmlElement(String?)
    case nodeId(NodeId)
    case expandedNodeId(ExpandedNodeId)
    case statusCode(StatusCode)
    case qualifiedName(QualifiedName)
    case localizedText(LocalizedText)
    case extensionObject(ExtensionObject)
    case dataValue(DataValue)
    case diagnosticInfo(DiagnosticInfo)
    /// A one-dimensional array of scalars of `type` (elements of type `.variant` are any Variant).
    case array(BuiltinType, [Variant])
    /// A multi-dimensional array, elements in row-major order; the product of `dimensions` is the count.
    case matrix(BuiltinType, [Variant], dimensions: [Int32])

    /// The built-in type of a scalar (or of the elements of an array); nil for `.null`.
    public var type: BuiltinType? {
        switch self {
        case .null: nil
        case .boolean: .boolean
        case .sbyte: .sbyte
        case .byte: .byte
        case .int16: .int16
        case .uint16: .uint16
        case .int32: .int32
        case .uint32: .uint32
        case .int64: .int64
        case .uint64: .uint64
        case .float: .float
        case .double: .double
        case .string: .string
        case .dateTime: .dateTime
        case .guid: .guid
        case .byteString: .byteString
        case .xmlElement: .xmlElement
        case .nodeId: .nodeId
        case .expandedNodeId: .expandedNodeId
        case .statusCode: .statusCode
        case .qualifiedName: .qualifiedName
        case .localizedText: .localizedText
        case .extensionObject: .extensionObject
        case .dataValue: .dataValue
        case .diagnosticInfo: .diagnosticInfo
        case .array(let type, _), .matrix(let type, _, _): type
        }
    }

    public var isArray: Bool {
        switch self {
        case .array, .matrix: true
        default: false
        }
    }

    /// The value as a Double when it is a numeric or boolean scalar.
    public var doubleValue: Double? {
        switch self {
        case .boolean(let v): v ? 1 : 0
        case .sbyte(let v): Double(v)
        case .byte(let v): Double(v)
        case .int16(let v): Double(v)
        case .uint16(let v): Double(v)
        case .int32(let v): Double(v)
        case .uint32(let v): Double(v)
        case .int64(let v): Double(v)
        case .uint64(let v): Double(v)
        case .float(let v): Double(v)
        case .double(let v): v
        default: nil
        }
    }

    /// The value as an Int64 when it is an integer or boolean scalar (UInt64 above Int64.max gives nil).
    public var int64Value: Int64? {
        switch self {
        case .boolean(let v): v ? 1 : 0
        case .sbyte(let v): Int64(v)
        case .byte(let v): Int64(v)
        case .int16(let v): Int64(v)
        case .uint16(let v): Int64(v)
        case .int32(let v): Int64(v)
        case .uint32(let v): Int64(v)
        case .int64(let v): v
        case .uint64(let v): Int64(exactly: v)
        default: nil
        }
    }

    /// The value as a Bool when it is a boolean or numeric scalar (non-zero is true).
    public var boolValue: Bool? {
        if case .boolean(let v) = self { return v }
        return doubleValue.map { $0 != 0 }
    }

    /// The value as a String when it is a string-like scalar.
    public var stringValue: String? {
        switch self {
        case .string(let v), .xmlElement(let v): v
        case .localizedText(let v): v.text
        default: nil
        }
    }
}

extension Variant: UACodable {
    public func encode(to writer: inout BinaryWriter) {
        switch self {
        case .null:
            writer.write(UInt8(0))
        case .array(let type, let elements):
            writer.write(type.rawValue | 0x80)
            writer.write(Int32(elements.count))
            for element in elements { element.encodeElement(to: &writer, as: type) }
        case .matrix(let type, let elements, let dimensions):
            writer.write(type.rawValue | 0xC0)
            writer.write(Int32(elements.count))
            for element in elements { element.encodeElement(to: &writer, as: type) }
            writer.write(Int32(dimensions.count))
            for dimension in dimensions { writer.write(dimension) }
        default:
            writer.write(type!.rawValue)
            encodeScalarBody(to: &writer)
        }
    }

    /// An array element: a Variant in full for `.variant` arrays, else the scalar body only.
    func encodeElement(to writer: inout BinaryWriter, as type: BuiltinType) {
        if type == .variant {
            encode(to: &writer)
        } else {
            encodeScalarBody(to: &writer)
        }
    }

    func encodeScalarBody(to writer: inout BinaryWriter) {
        switch self {
        case .null, .array, .matrix: break
        case .boolean(let v): writer.write(v)
        case .sbyte(let v): writer.write(v)
        case .byte(let v): writer.write(v)
        case .int16(let v): writer.write(v)
        case .uint16(let v): writer.write(v)
        case .int32(let v): writer.write(v)
        case .uint32(let v): writer.write(v)
        case .int64(let v): writer.write(v)
        case .uint64(let v): writer.write(v)
        case .float(let v): writer.write(v)
        case .double(let v): writer.write(v)
        case .string(let v): writer.write(v)
        case .dateTime(let v): writer.write(v.ticks)
        case .guid(let v): writer.writeGuid(v)
        case .byteString(let v): writer.writeByteString(v)
        case .xmlElement(let v): writer.write(v)
        case .nodeId(let v): writer.write(v)
        case .expandedNodeId(let v): writer.write(v)
        case .statusCode(let v): writer.write(v)
        case .qualifiedName(let v): writer.write(v)
        case .localizedText(let v): writer.write(v)
        case .extensionObject(let v): writer.write(v)
        case .dataValue(let v): writer.write(v)
        case .diagnosticInfo(let v): v.encode(to: &writer)
        }
    }

    public init(from reader: inout BinaryReader) throws {
        let mask = try reader.readUInt8()
        let typeId = mask & 0x3F
        if typeId == 0 {
            guard mask == 0 else { throw DecodeError.invalid("null Variant with flags \(mask)") }
            self = .null
            return
        }
        guard let type = BuiltinType(rawValue: typeId) else { throw DecodeError.invalid("Variant type \(typeId)") }
        if mask & 0x80 == 0 {
            guard mask & 0x40 == 0 else { throw DecodeError.invalid("Variant dimensions without array") }
            guard type != .variant else { throw DecodeError.invalid("scalar Variant of type Variant") }
            self = try Variant.decodeScalar(type, from: &reader)
            return
        }
        let count = try reader.readArrayLength() ?? 0
        var elements: [Variant] = []
        elements.reserveCapacity(Swift.min(count, reader.remaining))
        for _ in 0..<count {
            if type == .variant {
                elements.append(try reader.nested { try Variant(from: &$0) })
            } else {
                elements.append(try Variant.decodeScalar(type, from: &reader))
            }
        }
        if mask & 0x40 != 0 {
            let dimensionCount = try reader.readArrayLength() ?? 0
            var dimensions: [Int32] = []
            var product = 1
            for _ in 0..<dimensionCount {
                let dimension = try reader.readInt32()
                guard dimension >= 0 else { throw DecodeError.invalid("negative array dimension") }
                dimensions.append(dimension)
                product = product.multipliedReportingOverflow(by: Int(dimension)).overflow ? Int.max : product * Int(dimension)
            }
            guard product == count else { throw DecodeError.invalid("array dimensions do not match \(count) elements") }
            self = .matrix(type, elements, dimensions: dimensions)
        } else {
            self = .array(type, elements)
        }
    }

    static func decodeScalar(_ type: BuiltinType, from reader: inout BinaryReader) throws -> Variant {
        switch type {
        case .boolean: return .boolean(try reader.readBool())
        case .sbyte: return .sbyte(try reader.readInt8())
        case .byte: return .byte(try reader.readUInt8())
        case .int16: return .int16(try reader.readInt16())
        case .uint16: return .uint16(try reader.readUInt16())
        case .int32: return .int32(try reader.readInt32())
        case .uint32: return .uint32(try reader.readUInt32())
        case .int64: return .int64(try reader.readInt64())
        case .uint64: return .uint64(try reader.readUInt64())
        case .float: return .float(try reader.readFloat())
        case .double: return .double(try reader.readDouble())
        case .string: return .string(try reader.readString())
        case .dateTime: return .dateTime(DateTime(ticks: try reader.readInt64()))
        case .guid: return .guid(try reader.readGuid())
        case .byteString: return .byteString(try reader.readByteString())
        case .xmlElement: return .xmlElement(try reader.readString())
        case .nodeId: return .nodeId(try reader.read())
        case .expandedNodeId: return .expandedNodeId(try reader.read())
        case .statusCode: return .statusCode(try reader.read())
        case .qualifiedName: return .qualifiedName(try reader.read())
        case .localizedText: return .localizedText(try reader.read())
        case .extensionObject: return .extensionObject(try reader.read())
        case .dataValue: return .dataValue(try reader.nested { try DataValue(from: &$0) })
        case .diagnosticInfo: return .diagnosticInfo(try reader.nested { try DiagnosticInfo(from: &$0) })
        case .variant: return try reader.nested { try Variant(from: &$0) }
        }
    }
}
