import PlantModel

/// Values → registers for the simulated PLCs (contract §3 types, word orders and strings).
///
/// The same rules as `ModbusAdapter.ModbusCodec.encode`; kept here because Simulation does not
/// depend on the adapter module. The Modbus tests check both against each other.
public enum ModbusValueEncoding {
    public struct EncodingError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// Registers for `value` of a register-table signal, undoing `scale`/`offset`.
    public static func registers(for value: SignalValue, signal: SignalConfig) throws -> [UInt16] {
        guard let type = signal.type else { throw EncodingError("\(signal.name) has no type") }
        var raw = value
        if signal.scale != nil || signal.offset != nil, type != .bool, type != .string {
            guard let number = value.number, (signal.scale ?? 1) != 0 else {
                throw EncodingError("\(value) is not a number for \(signal.name)")
            }
            raw = .double((number - (signal.offset ?? 0)) / (signal.scale ?? 1))
        }
        func integer(_ range: ClosedRange<Int64>) throws -> Int64 {
            let result: Int64
            switch raw {
            case .bool(let b): result = b ? 1 : 0
            case .int(let i): result = i
            case .double(let d):
                guard d.isFinite, abs(d) < 9.2e18 else { throw EncodingError("\(d) is not a \(type.rawValue)") }
                result = Int64(d.rounded())
            case .string(let s):
                guard let i = Int64(s) else { throw EncodingError("\"\(s)\" is not a \(type.rawValue)") }
                result = i
            }
            guard range.contains(result) else { throw EncodingError("\(result) is out of range for \(type.rawValue) (\(signal.name))") }
            return result
        }
        func real() throws -> Double {
            if case .string(let s) = raw {
                guard let d = Double(s) else { throw EncodingError("\"\(s)\" is not a \(type.rawValue)") }
                return d
            }
            return raw.number!
        }
        switch type {
        case .bool: return [try bit(for: raw) ? 1 : 0]
        case .uint16: return [UInt16(try integer(0...65535))]
        case .int16: return [UInt16(bitPattern: Int16(try integer(-32768...32767)))]
        case .uint32: return split(UInt64(try integer(0...4_294_967_295)), bytes: 4, order: signal.wordOrder)
        case .int32:
            let v = Int32(try integer(-2_147_483_648...2_147_483_647))
            return split(UInt64(UInt32(bitPattern: v)), bytes: 4, order: signal.wordOrder)
        case .float32: return split(UInt64(Float(try real()).bitPattern), bytes: 4, order: signal.wordOrder)
        case .float64: return split(try real().bitPattern, bytes: 8, order: signal.wordOrder)
        case .string:
            let chars = signal.length ?? 2
            let count = (chars + 1) / 2
            var bytes = Array(raw.text.utf8)
            guard bytes.count <= chars else { throw EncodingError("\"\(raw.text)\" is longer than \(chars) characters (\(signal.name))") }
            bytes += [UInt8](repeating: 0, count: count * 2 - bytes.count)
            return (0..<count).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        default: throw EncodingError("type \(type.rawValue) of \(signal.name) is not a Modbus type")
        }
    }

    /// The bit for a coil / discrete-input value.
    public static func bit(for value: SignalValue) throws -> Bool {
        switch value {
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s):
            switch s.lowercased() {
            case "true", "1": return true
            case "false", "0", "": return false
            default: throw EncodingError("\"\(s)\" is not a bool")
            }
        }
    }

    /// A value's big-endian bytes laid out as registers in `order`.
    static func split(_ value: UInt64, bytes width: Int, order: WordOrder) -> [UInt16] {
        var regs: [UInt16] = []
        for i in stride(from: width / 2 - 1, through: 0, by: -1) {
            regs.append(UInt16(truncatingIfNeeded: value >> (UInt64(i) * 16)))
        }
        if order == .cdab || order == .dcba { regs.reverse() }
        if order == .badc || order == .dcba { regs = regs.map { $0.byteSwapped } }
        return regs
    }
}
