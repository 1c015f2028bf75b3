import PlantModel

/// Why registers could not be turned into a value, or a value into registers.
public enum ModbusCodecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer registers than the type needs.
    case needMoreRegisters(needed: Int, got: Int)
    /// The signal's type is not a Modbus type (`double`, `int64` …) or it has none.
    case unsupportedType(String)
    /// The value cannot be stored in the signal's type (wrong kind, out of range, too long).
    case valueDoesNotFit(String)

    public var description: String {
        switch self {
        case let .needMoreRegisters(needed, got): return "need \(needed) registers, got \(got)"
        case let .unsupportedType(type): return "type \(type) is not a Modbus type"
        case let .valueDoesNotFit(why): return why
        }
    }
}

/// Registers ⇄ values for every Modbus type and word order of docs/CONFIG.md. Pure functions.
///
/// 32- and 64-bit values: `abcd` most significant register first, high byte first;
/// `cdab` least significant register first; `badc` bytes swapped in each register; `dcba` both.
/// Strings: two ASCII characters per register, high byte first, NUL/space padded.
public enum ModbusCodec {
    // MARK: Word order

    /// Big-endian bytes of a value (most significant first) → registers in `order`.
    public static func registers(bigEndianBytes bytes: [UInt8], order: WordOrder) -> [UInt16] {
        var regs: [UInt16] = []
        regs.reserveCapacity(bytes.count / 2)
        var i = 0
        while i + 1 < bytes.count {
            regs.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]))
            i += 2
        }
        if order == .cdab || order == .dcba { regs.reverse() }
        if order == .badc || order == .dcba { regs = regs.map { $0.byteSwapped } }
        return regs
    }

    /// Registers in `order` → big-endian bytes (most significant first).
    public static func bigEndianBytes(registers: some Collection<UInt16>, order: WordOrder) -> [UInt8] {
        var regs = Array(registers)
        if order == .badc || order == .dcba { regs = regs.map { $0.byteSwapped } }
        if order == .cdab || order == .dcba { regs.reverse() }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(regs.count * 2)
        for r in regs {
            bytes.append(UInt8(r >> 8))
            bytes.append(UInt8(r & 0xFF))
        }
        return bytes
    }

    static func combine(_ registers: some Collection<UInt16>, order: WordOrder) -> UInt64 {
        var value: UInt64 = 0
        for byte in bigEndianBytes(registers: registers, order: order) { value = value << 8 | UInt64(byte) }
        return value
    }

    static func split(_ value: UInt64, width: Int, order: WordOrder) -> [UInt16] {
        var bytes = [UInt8](repeating: 0, count: width * 2)
        var v = value
        for i in stride(from: bytes.count - 1, through: 0, by: -1) {
            bytes[i] = UInt8(v & 0xFF)
            v >>= 8
        }
        return registers(bigEndianBytes: bytes, order: order)
    }

    // MARK: Decoding

    /// Decodes the raw value (before `scale`/`offset`) of `type` from registers.
    ///
    /// `bool` is true for any non-zero register; `length` is the string length in characters.
    public static func decodeRaw(registers: some Collection<UInt16>, type: DataType, wordOrder: WordOrder = .abcd,
                                 length: Int? = nil) throws(ModbusCodecError) -> SignalValue {
        let needed = type == .string ? ((length ?? 2) + 1) / 2 : type.registerWidth
        guard registers.count >= needed else { throw .needMoreRegisters(needed: needed, got: registers.count) }
        let regs = registers.prefix(needed)
        switch type {
        case .bool: return .bool(regs.first! != 0)
        case .uint16: return .int(Int64(regs.first!))
        case .int16: return .int(Int64(Int16(bitPattern: regs.first!)))
        case .uint32: return .int(Int64(UInt32(truncatingIfNeeded: combine(regs, order: wordOrder))))
        case .int32: return .int(Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: combine(regs, order: wordOrder)))))
        case .float32:
            return .double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: combine(regs, order: wordOrder)))))
        case .float64: return .double(Double(bitPattern: combine(regs, order: wordOrder)))
        case .string: return .string(decodeString(regs, length: length ?? needed * 2))
        default: throw .unsupportedType(type.rawValue)
        }
    }

    /// The text of a string register block: high byte first, cut at the first NUL, spaces trimmed.
    public static func decodeString(_ registers: some Collection<UInt16>, length: Int) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length)
        for r in registers {
            bytes.append(UInt8(r >> 8))
            bytes.append(UInt8(r & 0xFF))
        }
        if bytes.count > length { bytes.removeLast(bytes.count - length) }
        if let nul = bytes.firstIndex(of: 0) { bytes.removeSubrange(nul...) }
        while let last = bytes.last, last == 0x20 { bytes.removeLast() }
        while let first = bytes.first, first == 0x20 { bytes.removeFirst() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Applies a signal's `scale`/`offset`: numbers with either become doubles; bools and strings
    /// pass through.
    public static func applyScale(_ raw: SignalValue, signal: SignalConfig) -> SignalValue {
        guard signal.scale != nil || signal.offset != nil else { return raw }
        switch raw {
        case .int(let i): return .double(signal.scaled(Double(i)))
        case .double(let d): return .double(signal.scaled(d))
        case .bool, .string: return raw
        }
    }

    /// Decodes a register-table signal from its registers, then applies `scale`/`offset`.
    public static func decode(signal: SignalConfig, registers: some Collection<UInt16>) throws(ModbusCodecError) -> SignalValue {
        guard let type = signal.type else { throw .unsupportedType("none") }
        let raw = try decodeRaw(registers: registers, type: type, wordOrder: signal.wordOrder, length: signal.length)
        return applyScale(raw, signal: signal)
    }

    /// Decodes a coil / discrete-input signal. Non-bool types read the bit as 0/1.
    public static func decode(signal: SignalConfig, bit: Bool) -> SignalValue {
        if signal.type == nil || signal.type == .bool { return .bool(bit) }
        return applyScale(.int(bit ? 1 : 0), signal: signal)
    }

    // MARK: Encoding

    /// Encodes a value for a register-table signal (the inverse of ``decode(signal:registers:)``,
    /// undoing `scale`/`offset`; integer types round to the nearest integer).
    public static func encode(_ value: SignalValue, signal: SignalConfig) throws(ModbusCodecError) -> [UInt16] {
        guard let type = signal.type else { throw .unsupportedType("none") }
        var raw = value
        if signal.scale != nil || signal.offset != nil, type != .bool, type != .string {
            guard let number = value.number else { throw .valueDoesNotFit("\(value) is not a number for \(signal.name)") }
            let scale = signal.scale ?? 1
            guard scale != 0 else { throw .valueDoesNotFit("\(signal.name) has scale 0") }
            raw = .double((number - (signal.offset ?? 0)) / scale)
        }
        return try encodeRaw(raw, type: type, wordOrder: signal.wordOrder, length: signal.length)
    }

    /// Encodes a raw value (no scale/offset) of `type`.
    public static func encodeRaw(_ value: SignalValue, type: DataType, wordOrder: WordOrder = .abcd,
                                 length: Int? = nil) throws(ModbusCodecError) -> [UInt16] {
        func integer(_ range: ClosedRange<Int64>) throws(ModbusCodecError) -> Int64 {
            let result: Int64
            switch value {
            case .bool(let b): result = b ? 1 : 0
            case .int(let i): result = i
            case .double(let d):
                guard d.isFinite, d.rounded() >= -9.2e18, d.rounded() <= 9.2e18 else {
                    throw .valueDoesNotFit("\(d) is not a \(type.rawValue)")
                }
                result = Int64(d.rounded())
            case .string(let s):
                guard let i = Int64(s) else { throw .valueDoesNotFit("\"\(s)\" is not a \(type.rawValue)") }
                result = i
            }
            guard range.contains(result) else { throw .valueDoesNotFit("\(result) is out of range for \(type.rawValue)") }
            return result
        }
        func real() throws(ModbusCodecError) -> Double {
            switch value {
            case .string(let s):
                guard let d = Double(s) else { throw .valueDoesNotFit("\"\(s)\" is not a \(type.rawValue)") }
                return d
            default: return value.number!
            }
        }
        switch type {
        case .bool:
            if case .string = value { throw .valueDoesNotFit("\(value) is not a bool") }
            return [value.number! != 0 ? 1 : 0]
        case .uint16: return [UInt16(try integer(0...65535))]
        case .int16: return [UInt16(bitPattern: Int16(try integer(-32768...32767)))]
        case .uint32: return split(UInt64(try integer(0...4_294_967_295)), width: 2, order: wordOrder)
        case .int32:
            let v = Int32(try integer(-2_147_483_648...2_147_483_647))
            return split(UInt64(UInt32(bitPattern: v)), width: 2, order: wordOrder)
        case .float32: return split(UInt64(Float(try real()).bitPattern), width: 2, order: wordOrder)
        case .float64: return split(try real().bitPattern, width: 4, order: wordOrder)
        case .string:
            let chars = length ?? 2
            let count = (chars + 1) / 2
            var bytes = Array(value.text.utf8)
            guard bytes.count <= chars else {
                throw .valueDoesNotFit("\"\(value.text)\" is longer than \(chars) characters")
            }
            bytes += [UInt8](repeating: 0, count: count * 2 - bytes.count)
            return (0..<count).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        default: throw .unsupportedType(type.rawValue)
        }
    }

    /// Encodes a value for a coil / discrete-input signal.
    public static func encodeBit(_ value: SignalValue) throws(ModbusCodecError) -> Bool {
        switch value {
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s):
            switch s.lowercased() {
            case "true", "1": return true
            case "false", "0", "": return false
            default: throw .valueDoesNotFit("\"\(s)\" is not a bool")
            }
        }
    }
}
