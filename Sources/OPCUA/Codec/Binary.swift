import Foundation

/// Why a decode stopped.
public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended before the value did: feed more bytes and try again.
    case needMoreBytes
    /// The input can never decode (bad length, unknown tag, limit exceeded).
    case invalid(String)

    public var description: String {
        switch self {
        case .needMoreBytes: "need more bytes"
        case .invalid(let reason): "invalid encoding: \(reason)"
        }
    }
}

/// Bounds every decoder obeys, so hostile input cannot make it allocate or recurse without end.
public struct DecodeLimits: Sendable, Equatable {
    public var maxStringLength: Int
    public var maxByteStringLength: Int
    public var maxArrayLength: Int
    public var maxDepth: Int

    public init(maxStringLength: Int = 1 << 24, maxByteStringLength: Int = 1 << 24,
                maxArrayLength: Int = 1 << 20, maxDepth: Int = 64) {
        self.maxStringLength = maxStringLength
        self.maxByteStringLength = maxByteStringLength
        self.maxArrayLength = maxArrayLength
        self.maxDepth = maxDepth
    }

    public static let standard = DecodeLimits()
}

/// Appends OPC UA binary encodings (little-endian) to a byte array.
public struct BinaryWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }
    public mutating func write(_ value: UInt8) { bytes.append(value) }
    public mutating func write(_ value: Int8) { bytes.append(UInt8(bitPattern: value)) }
    public mutating func write(_ value: UInt16) { writeInteger(value) }
    public mutating func write(_ value: Int16) { writeInteger(value) }
    public mutating func write(_ value: UInt32) { writeInteger(value) }
    public mutating func write(_ value: Int32) { writeInteger(value) }
    public mutating func write(_ value: UInt64) { writeInteger(value) }
    public mutating func write(_ value: Int64) { writeInteger(value) }
    public mutating func write(_ value: Float) { writeInteger(value.bitPattern) }
    public mutating func write(_ value: Double) { writeInteger(value.bitPattern) }

    @inline(__always)
    mutating func writeInteger<T: FixedWidthInteger>(_ value: T) {
        var little = value.littleEndian
        withUnsafeBytes(of: &little) { bytes.append(contentsOf: $0) }
    }

    /// A String; nil encodes as the null string (length -1).
    public mutating func write(_ value: String?) {
        guard let value else { write(Int32(-1)); return }
        let utf8 = Array(value.utf8)
        write(Int32(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// A ByteString; nil encodes as the null byte string (length -1).
    public mutating func writeByteString(_ value: [UInt8]?) {
        guard let value else { write(Int32(-1)); return }
        write(Int32(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func writeRaw(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }

    /// An array: its length (nil → -1), then each element.
    public mutating func writeArray<T>(_ values: [T]?, _ element: (inout BinaryWriter, T) -> Void) {
        guard let values else { write(Int32(-1)); return }
        write(Int32(values.count))
        for value in values { element(&self, value) }
    }

    /// An array of strings (elements may be null).
    public mutating func writeStrings(_ values: [String?]) { writeArray(values) { $0.write($1) } }

    /// An array of UInt32 (ids, sequence numbers).
    public mutating func writeUInt32s(_ values: [UInt32]) { writeArray(values) { $0.write($1) } }

    public mutating func write<T: UAEncodable>(_ value: T) { value.encode(to: &self) }

    public mutating func write<T: UAEncodable>(_ values: [T]) {
        write(Int32(values.count))
        for value in values { value.encode(to: &self) }
    }

    /// Overwrites four bytes at `offset` (used to patch message sizes).
    public mutating func patch(_ value: UInt32, at offset: Int) {
        let little = value.littleEndian
        withUnsafeBytes(of: little) { raw in
            for index in 0..<4 { bytes[offset + index] = raw[index] }
        }
    }
}

/// Reads OPC UA binary encodings from bytes.
///
/// Short input throws ``DecodeError/needMoreBytes``; malformed input throws ``DecodeError/invalid(_:)``.
/// Lengths are checked against ``DecodeLimits`` and nesting depth is bounded.
public struct BinaryReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    public let end: Int
    public var limits: DecodeLimits
    var depth = 0

    public init(_ bytes: [UInt8], offset: Int = 0, limits: DecodeLimits = .standard) {
        self.bytes = bytes
        self.offset = offset
        self.end = bytes.count
        self.limits = limits
    }

    public var remaining: Int { end - offset }
    public var isAtEnd: Bool { offset >= end }

    @inline(__always)
    mutating func need(_ count: Int) throws {
        if count > end - offset { throw DecodeError.needMoreBytes }
    }

    public mutating func readUInt8() throws -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readBool() throws -> Bool { try readUInt8() != 0 }
    public mutating func readInt8() throws -> Int8 { Int8(bitPattern: try readUInt8()) }
    public mutating func readUInt16() throws -> UInt16 { try readInteger() }
    public mutating func readInt16() throws -> Int16 { try readInteger() }
    public mutating func readUInt32() throws -> UInt32 { try readInteger() }
    public mutating func readInt32() throws -> Int32 { try readInteger() }
    public mutating func readUInt64() throws -> UInt64 { try readInteger() }
    public mutating func readInt64() throws -> Int64 { try readInteger() }
    public mutating func readFloat() throws -> Float { Float(bitPattern: try readInteger()) }
    public mutating func readDouble() throws -> Double { Double(bitPattern: try readInteger()) }

    @inline(__always)
    mutating func readInteger<T: FixedWidthInteger>() throws -> T {
        let size = MemoryLayout<T>.size
        try need(size)
        var value: T = 0
        for index in 0..<size {
            value |= T(truncatingIfNeeded: bytes[offset + index]) << (8 * index)
        }
        offset += size
        return value
    }

    public mutating func readRaw(_ count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw DecodeError.invalid("negative length") }
        try need(count)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    public mutating func skip(_ count: Int) throws {
        try need(count)
        offset += count
    }

    public mutating func readString() throws -> String? {
        let length = try readInt32()
        if length < 0 { return nil }
        guard Int(length) <= limits.maxStringLength else { throw DecodeError.invalid("string of \(length) bytes exceeds limit") }
        let raw = try readRaw(Int(length))
        return String(decoding: raw, as: UTF8.self)
    }

    public mutating func readByteString() throws -> [UInt8]? {
        let length = try readInt32()
        if length < 0 { return nil }
        guard Int(length) <= limits.maxByteStringLength else { throw DecodeError.invalid("byte string of \(length) bytes exceeds limit") }
        return try readRaw(Int(length))
    }

    /// An array length: nil for -1, throws on other negatives and on lengths past the limit.
    public mutating func readArrayLength() throws -> Int? {
        let length = try readInt32()
        if length == -1 { return nil }
        if length < -1 { throw DecodeError.invalid("negative array length \(length)") }
        guard Int(length) <= limits.maxArrayLength else { throw DecodeError.invalid("array of \(length) elements exceeds limit") }
        return Int(length)
    }

    /// An array of elements read by `element`; a null array reads as empty.
    public mutating func readArray<T>(_ element: (inout BinaryReader) throws -> T) throws -> [T] {
        guard let count = try readArrayLength() else { return [] }
        var result: [T] = []
        result.reserveCapacity(Swift.min(count, remaining))
        for _ in 0..<count { result.append(try element(&self)) }
        return result
    }

    /// An array of strings (elements may be null); a null array reads as empty.
    public mutating func readStrings() throws -> [String?] { try readArray { try $0.readString() } }

    /// An array of UInt32; a null array reads as empty.
    public mutating func readUInt32s() throws -> [UInt32] { try readArray { try $0.readUInt32() } }

    public mutating func read<T: UADecodable>(_ type: T.Type = T.self) throws -> T { try T(from: &self) }

    public mutating func readArray<T: UADecodable>(of type: T.Type = T.self) throws -> [T] {
        try readArray { try T(from: &$0) }
    }

    /// Runs `body` one nesting level deeper; throws past ``DecodeLimits/maxDepth``.
    public mutating func nested<T>(_ body: (inout BinaryReader) throws -> T) throws -> T {
        depth += 1
        defer { depth -= 1 }
        guard depth <= limits.maxDepth else { throw DecodeError.invalid("nesting deeper than \(limits.maxDepth)") }
        return try body(&self)
    }
}

/// A value with an OPC UA binary encoding.
public protocol UAEncodable {
    func encode(to writer: inout BinaryWriter)
}

/// A value decodable from OPC UA binary.
public protocol UADecodable {
    init(from reader: inout BinaryReader) throws
}

public typealias UACodable = UAEncodable & UADecodable

extension UAEncodable {
    /// The value's encoding as bytes.
    public var encoded: [UInt8] {
        var writer = BinaryWriter()
        encode(to: &writer)
        return writer.bytes
    }
}
