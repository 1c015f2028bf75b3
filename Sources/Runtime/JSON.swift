/// A JSON value with object keys kept in the order they were written or read.
///
/// Used for every payload the server writes (events, API answers), so the same input always
/// gives byte-identical output, and for reading config, requests and recordings.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y || (x.isNaN && y.isNaN)
        case let (.int(x), .double(y)), let (.double(y), .int(x)): return Double(x) == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            guard x.count == y.count else { return false }
            for (l, r) in zip(x, y) where l.0 != r.0 || l.1 != r.1 { return false }
            return true
        default: return false
        }
    }

    // MARK: Access

    /// The member `key` of an object (the last one if repeated), or nil.
    public subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.0 == key })?.1
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [(String, JSON)]? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// A number as Double (ints too).
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// A number as Int64 when it is integral.
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int64(d)
        default: return nil
        }
    }

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    // MARK: Building

    /// An object from key/value pairs, leaving out nil values.
    public static func obj(_ members: [(String, JSON?)]) -> JSON {
        .object(members.compactMap { key, value in value.map { (key, $0) } })
    }

    public static func number(_ value: Double?) -> JSON {
        guard let value else { return .null }
        return .double(value)
    }

    public static func str(_ value: String?) -> JSON {
        guard let value else { return .null }
        return .string(value)
    }

    // MARK: Writing

    /// The compact one-line text of this value.
    public func serialized() -> String {
        var out = [UInt8]()
        out.reserveCapacity(256)
        write(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the compact UTF-8 text of this value.
    public func write(into out: inout [UInt8]) {
        switch self {
        case .null: JSON.appendLiteral("null", into: &out)
        case .bool(let b): JSON.appendLiteral(b ? "true" : "false", into: &out)
        case .int(let i): JSON.writeInt(i, into: &out)
        case .double(let d): JSON.writeDouble(d, into: &out)
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let items):
            out.append(91)
            var first = true
            for item in items {
                if !first { out.append(44) }
                first = false
                item.write(into: &out)
            }
            out.append(93)
        case .object(let members):
            out.append(123)
            var first = true
            for (key, value) in members {
                if !first { out.append(44) }
                first = false
                JSON.writeString(key, into: &out)
                out.append(58)
                value.write(into: &out)
            }
            out.append(125)
        }
    }

    /// Appends the bytes of an ASCII literal (`null`, a key with its quotes, punctuation).
    @inline(__always)
    public static func appendLiteral(_ text: StaticString, into out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends an integer in decimal, as `String(value)` writes it, without making a String.
    public static func writeInt(_ value: Int64, into out: inout [UInt8]) {
        if value >= 0 && value < 10 {
            out.append(UInt8(truncatingIfNeeded: 48 + value))
            return
        }
        if value < 0 { out.append(45) }
        var magnitude = value.magnitude
        // 20 digits hold UInt64.max; written from the right.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var index = buffer.count
            repeat {
                index -= 1
                buffer[index] = UInt8(truncatingIfNeeded: 48 + magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[index...]))
        }
    }

    /// Appends a number: integral values below 1e15 as integers, others as Swift prints them
    /// (shortest text that reads back the same), non-finite ones as `null`.
    public static func writeDouble(_ d: Double, into out: inout [UInt8]) {
        guard d.isFinite else { appendLiteral("null", into: &out); return }
        if d.rounded() == d && abs(d) < 1e15 {
            writeInt(Int64(d), into: &out)
        } else {
            // `description` is what string interpolation prints; short ones need no allocation.
            var text = d.description
            text.withUTF8 { out.append(contentsOf: $0) }
        }
    }

    /// Appends a JSON string: quotes, and escapes for `"`, `\\` and control characters; runs
    /// without escapes are copied at once.
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(34)
        var text = s
        text.withUTF8 { bytes in
            var start = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                if byte >= 32 && byte != 34 && byte != 92 { continue }
                if start < index { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index])) }
                start = index + 1
                switch byte {
                case 34: out.append(92); out.append(34)
                case 92: out.append(92); out.append(92)
                case 10: out.append(92); out.append(110)
                case 13: out.append(92); out.append(114)
                case 9: out.append(92); out.append(116)
                default:
                    let hex: StaticString = "0123456789abcdef"
                    let digits = hex.utf8Start
                    out.append(contentsOf: [92, 117, 48, 48, digits[Int(byte >> 4)], digits[Int(byte & 15)]])
                }
            }
            if start < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...])) }
        }
        out.append(34)
    }

    // MARK: Reading

    /// Parses JSON text. Throws ``JSONParseError`` with the byte offset of the problem.
    public static func parse(_ text: String) throws -> JSON {
        var copy = text
        return try copy.withUTF8 { try parse(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Parses JSON from bytes.
    public static func parse(bytes: UnsafeRawBufferPointer) throws -> JSON {
        var parser = JSONParser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    public static func parse(bytes: [UInt8]) throws -> JSON {
        try bytes.withUnsafeBytes { try parse(bytes: $0) }
    }
}

/// Why a JSON text could not be read, and where (byte offset).
public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public let offset: Int
    public let reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

private struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    static let maxDepth = 64

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func error(_ reason: String) -> JSONParseError { JSONParseError(offset: index, reason: reason) }

    mutating func skipSpace() {
        while index < bytes.count {
            let c = bytes[index]
            if c == 32 || c == 9 || c == 10 || c == 13 { index += 1 } else { break }
        }
    }

    mutating func value(depth: Int) throws -> JSON {
        guard depth < JSONParser.maxDepth else { throw error("nested deeper than \(JSONParser.maxDepth)") }
        guard index < bytes.count else { throw error("unexpected end of text") }
        switch bytes[index] {
        case 123: return try object(depth: depth)
        case 91: return try array(depth: depth)
        case 34: return .string(try string())
        case 116: try literal("true"); return .bool(true)
        case 102: try literal("false"); return .bool(false)
        case 110: try literal("null"); return .null
        case 45, 48...57: return try number()
        default: throw error("unexpected character '\(Character(UnicodeScalar(bytes[index])))'")
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("unexpected end of text") }
        let expected = UnsafeRawBufferPointer(start: word.utf8Start, count: count)
        for i in 0..<count where bytes[index + i] != expected[i] { throw error("invalid literal") }
        index += count
    }

    mutating func object(depth: Int) throws -> JSON {
        index += 1
        var members: [(String, JSON)] = []
        var seen: Set<String>?
        skipSpace()
        if index < bytes.count && bytes[index] == 125 { index += 1; return .object(members) }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == 34 else { throw error("expected a string key") }
            let keyOffset = index
            let key = try string()
            // RFC 8259 leaves duplicate names undefined; one value per name is the only safe reading.
            // A set once the object is large, so a big body cannot make this quadratic.
            let duplicate: Bool
            if members.count < 16 {
                duplicate = members.contains(where: { $0.0 == key })
            } else {
                if seen == nil { seen = Set(members.map(\.0)) }
                duplicate = !seen!.insert(key).inserted
            }
            if duplicate { throw JSONParseError(offset: keyOffset, reason: "duplicate key \"\(key.prefix(64))\"") }
            skipSpace()
            guard index < bytes.count, bytes[index] == 58 else { throw error("expected ':'") }
            index += 1
            skipSpace()
            members.append((key, try value(depth: depth + 1)))
            skipSpace()
            guard index < bytes.count else { throw error("unexpected end of text") }
            if bytes[index] == 44 { index += 1; continue }
            if bytes[index] == 125 { index += 1; return .object(members) }
            throw error("expected ',' or '}'")
        }
    }

    mutating func array(depth: Int) throws -> JSON {
        index += 1
        var items: [JSON] = []
        skipSpace()
        if index < bytes.count && bytes[index] == 93 { index += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard index < bytes.count else { throw error("unexpected end of text") }
            if bytes[index] == 44 { index += 1; continue }
            if bytes[index] == 93 { index += 1; return .array(items) }
            throw error("expected ',' or ']'")
        }
    }

    mutating func string() throws -> String {
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let c = bytes[index]
            if c == 34 {
                guard let s = String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self) else {
                    index = start
                    throw error("invalid UTF-8 in string")
                }
                index += 1
                return s
            }
            if c == 92 || c < 32 { break }
            index += 1
        }
        index = start
        var out = [UInt8]()
        while index < bytes.count {
            let c = bytes[index]
            if c == 34 {
                guard let s = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
                index += 1
                return s
            }
            if c < 32 { throw error("control character in string") }
            if c == 92 {
                index += 1
                guard index < bytes.count else { break }
                let e = bytes[index]
                index += 1
                switch e {
                case 34: out.append(34)
                case 92: out.append(92)
                case 47: out.append(47)
                case 98: out.append(8)
                case 102: out.append(12)
                case 110: out.append(10)
                case 114: out.append(13)
                case 116: out.append(9)
                case 117:
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == 92, bytes[index + 1] == 117 else {
                            throw error("lone surrogate in string")
                        }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("bad surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = UnicodeScalar(scalar) else { throw error("bad \\u escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw error("bad escape")
                }
                continue
            }
            out.append(c)
            index += 1
        }
        throw error("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("bad \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt32
            switch c {
            case 48...57: digit = UInt32(c - 48)
            case 97...102: digit = UInt32(c - 87)
            case 65...70: digit = UInt32(c - 55)
            default: throw error("bad \\u escape")
            }
            value = value * 16 + digit
            index += 1
        }
        return value
    }

    /// A number exactly as RFC 8259 §6 writes it: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    mutating func number() throws -> JSON {
        let start = index
        var isInteger = true
        func digits() -> Int {
            let first = index
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
            return index - first
        }
        if bytes[index] == 45 { index += 1 }
        guard index < bytes.count, (48...57).contains(bytes[index]) else { throw error("bad number: a digit must follow '-'") }
        if bytes[index] == 48 {
            index += 1
            if index < bytes.count, (48...57).contains(bytes[index]) { throw error("bad number: leading zero") }
        } else {
            _ = digits()
        }
        if index < bytes.count, bytes[index] == 46 {
            isInteger = false
            index += 1
            guard digits() > 0 else { throw error("bad number: a digit must follow '.'") }
        }
        if index < bytes.count, bytes[index] == 101 || bytes[index] == 69 {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == 43 || bytes[index] == 45 { index += 1 }
            guard digits() > 0 else { throw error("bad number: a digit must follow the exponent") }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let i = Int64(text) { return .int(i) }
        guard let d = Double(text), d.isFinite else { index = start; throw error("bad number '\(text)'") }
        return .double(d)
    }
}
