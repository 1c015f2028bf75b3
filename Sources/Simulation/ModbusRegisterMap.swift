import CModbus
import Foundation
import ModbusAdapter
import PlantModel

/// The register map of one simulated Modbus PLC: a libmodbus `modbus_mapping_t` sized from the
/// station's signals, written by ``set(signal:value:)`` and served by the servers (TCP: our own
/// answers, ``answer(_:into:)``; RTU: libmodbus's `modbus_reply`).
///
/// Thread-safe: every access holds the map's lock (the servers hold it while they answer).
// @unchecked Sendable: the C mapping is read and written only with `lock` held (libmodbus needs the raw pointer, which `Locked` cannot hand out).
public final class ModbusRegisterMap: @unchecked Sendable {
    public let station: StationConfig
    private let lock = NSLock()
    private let mapping: UnsafeMutablePointer<modbus_mapping_t>
    private let signalsByName: [String: SignalConfig]
    /// Signal index (config order) → its address, for ``set(index:value:)``.
    private let addresses: [(signal: SignalConfig, address: ModbusAddress)?]

    /// Sizes each table to just past its highest signal (reads past the end get the
    /// illegal-data-address exception), plus `spare` registers/bits.
    public init(station: StationConfig, spare: Int = 0) {
        self.station = station
        var size: [ModbusTable: Int] = [:]
        var byName: [String: SignalConfig] = [:]
        for signal in station.signals {
            guard let address = signal.address else { continue }
            size[address.table] = max(size[address.table] ?? 0, address.index + max(1, signal.registerCount))
            byName[signal.name] = signal
        }
        func n(_ t: ModbusTable) -> Int32 { Int32(min(65536, (size[t] ?? 0) + (size[t] == nil ? 0 : spare))) }
        guard let made = modbus_mapping_new(n(.coil), n(.discreteInput), n(.holdingRegister), n(.inputRegister)) else {
            fatalError("modbus_mapping_new: out of memory")
        }
        mapping = made
        signalsByName = byName
        addresses = station.signals.map { signal in signal.address.map { (signal, $0) } }
    }

    deinit { modbus_mapping_free(mapping) }

    /// Writes a signal's value using the contract's encoding (type, word order, scale/offset).
    /// Throws for an unknown signal or a value that does not fit its type.
    public func set(signal name: String, value: SignalValue) throws {
        guard let signal = signalsByName[name], let address = signal.address else {
            throw SimulationError("station \(station.id) has no Modbus signal \"\(name)\"")
        }
        if address.table.isRegister {
            try setRegisters(address.table, at: address.index, ModbusCodec.encode(value, signal: signal))
        } else {
            try setBits(address.table, at: address.index, [ModbusCodec.encodeBit(value)])
        }
    }

    /// Writes the value of the station's signal at `index` (config order), as ``set(signal:value:)``
    /// without looking the name up. Throws for a signal without an address or a value that does not fit.
    public func set(index: Int, value: SignalValue) throws {
        guard index >= 0, index < addresses.count, let (signal, address) = addresses[index] else {
            throw SimulationError("station \(station.id) has no Modbus signal at index \(index)")
        }
        if address.table.isRegister {
            try setRegisters(address.table, at: address.index, ModbusCodec.encode(value, signal: signal))
        } else {
            try setBits(address.table, at: address.index, [ModbusCodec.encodeBit(value)])
        }
    }

    /// Writes raw registers (holding or input) from `index`; throws past the table's end.
    public func setRegisters(_ table: ModbusTable, at index: Int, _ values: [UInt16]) throws {
        lock.lock(); defer { lock.unlock() }
        let (base, count): (UnsafeMutablePointer<UInt16>?, Int32) = table == .holdingRegister
            ? (mapping.pointee.tab_registers, mapping.pointee.nb_registers)
            : (mapping.pointee.tab_input_registers, mapping.pointee.nb_input_registers)
        guard table.isRegister, let base, index >= 0, index + values.count <= Int(count) else {
            throw SimulationError("\(table.rawValue):\(index) ×\(values.count) is outside the map of \(station.id)")
        }
        for (i, v) in values.enumerated() { base[index + i] = v }
    }

    /// Writes raw bits (coils or discrete inputs) from `index`; throws past the table's end.
    public func setBits(_ table: ModbusTable, at index: Int, _ values: [Bool]) throws {
        lock.lock(); defer { lock.unlock() }
        let (base, count): (UnsafeMutablePointer<UInt8>?, Int32) = table == .coil
            ? (mapping.pointee.tab_bits, mapping.pointee.nb_bits)
            : (mapping.pointee.tab_input_bits, mapping.pointee.nb_input_bits)
        guard !table.isRegister, let base, index >= 0, index + values.count <= Int(count) else {
            throw SimulationError("\(table.rawValue):\(index) ×\(values.count) is outside the map of \(station.id)")
        }
        for (i, v) in values.enumerated() { base[index + i] = v ? 1 : 0 }
    }

    /// Raw registers of a table (a copy), for checks.
    public func registers(_ table: ModbusTable, at index: Int, count: Int) -> [UInt16] {
        lock.lock(); defer { lock.unlock() }
        let (base, n): (UnsafeMutablePointer<UInt16>?, Int32) = table == .holdingRegister
            ? (mapping.pointee.tab_registers, mapping.pointee.nb_registers)
            : (mapping.pointee.tab_input_registers, mapping.pointee.nb_input_registers)
        guard let base, index >= 0, index + count <= Int(n) else { return [] }
        return (0..<count).map { base[index + $0] }
    }

    /// Answers one request PDU (function code + data) from the map under the lock, appending the
    /// answer PDU to `out`. The functions, limits and exceptions of libmodbus's `modbus_reply` (so the
    /// TCP and RTU simulators answer alike): read coils, discrete inputs, holding and input
    /// registers (1–4), write single coil and register (5, 6), write multiple coils and registers
    /// (15, 16), report server id (17), mask write register (22), read/write registers (23); any
    /// other function gets "illegal function". A PDU too short for its function gets "illegal data value".
    func answer(_ pdu: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let function = pdu[0]
        func word(_ at: Int) -> Int { Int(pdu[at]) << 8 | Int(pdu[at + 1]) }
        func exception(_ code: UInt8) { ModbusServerFrame.appendException(function: function, code: code, into: &out) }
        func echo(_ count: Int) { for i in 0..<count { out.append(pdu[i]) } }
        let minimum: Int
        switch function {
        case 1, 2, 3, 4, 5, 6: minimum = 5
        case 15, 16: minimum = pdu.count >= 6 ? 6 + Int(pdu[5]) : 6
        case 22: minimum = 7
        case 23: minimum = pdu.count >= 10 ? 10 + Int(pdu[9]) : 10
        default: minimum = 1
        }
        guard pdu.count >= minimum else { return exception(ModbusExceptionCode.illegalDataValue) }
        lock.lock(); defer { lock.unlock() }
        let m = mapping.pointee
        let address = pdu.count >= 3 ? word(1) : 0
        switch function {
        case 1, 2:
            let (tab, start, size) = function == 1 ? (m.tab_bits, m.start_bits, m.nb_bits) : (m.tab_input_bits, m.start_input_bits, m.nb_input_bits)
            let count = word(3), at = address - Int(start)
            guard count >= 1, count <= 2000 else { return exception(ModbusExceptionCode.illegalDataValue) }
            guard at >= 0, at + count <= Int(size), let tab else { return exception(ModbusExceptionCode.illegalDataAddress) }
            out.append(function)
            out.append(UInt8((count + 7) / 8))
            var byte: UInt8 = 0
            for i in 0..<count {
                if tab[at + i] != 0 { byte |= 1 << UInt8(i % 8) }
                if i % 8 == 7 || i == count - 1 { out.append(byte); byte = 0 }
            }
        case 3, 4:
            let (tab, start, size) = function == 3 ? (m.tab_registers, m.start_registers, m.nb_registers)
                                                   : (m.tab_input_registers, m.start_input_registers, m.nb_input_registers)
            let count = word(3), at = address - Int(start)
            guard count >= 1, count <= 125 else { return exception(ModbusExceptionCode.illegalDataValue) }
            guard at >= 0, at + count <= Int(size), let tab else { return exception(ModbusExceptionCode.illegalDataAddress) }
            out.append(function)
            out.append(UInt8(count * 2))
            for i in 0..<count {
                let v = tab[at + i]
                out.append(UInt8(v >> 8)); out.append(UInt8(v & 0xFF))
            }
        case 5:
            let at = address - Int(m.start_bits)
            guard at >= 0, at < Int(m.nb_bits), let tab = m.tab_bits else { return exception(ModbusExceptionCode.illegalDataAddress) }
            let data = word(3)
            guard data == 0xFF00 || data == 0 else { return exception(ModbusExceptionCode.illegalDataValue) }
            tab[at] = data == 0 ? 0 : 1
            echo(5)
        case 6:
            let at = address - Int(m.start_registers)
            guard at >= 0, at < Int(m.nb_registers), let tab = m.tab_registers else { return exception(ModbusExceptionCode.illegalDataAddress) }
            tab[at] = UInt16(word(3))
            echo(5)
        case 15:
            let count = word(3), bytes = Int(pdu[5]), at = address - Int(m.start_bits)
            guard count >= 1, count <= 1968, bytes * 8 >= count else { return exception(ModbusExceptionCode.illegalDataValue) }
            guard at >= 0, at + count <= Int(m.nb_bits), let tab = m.tab_bits else { return exception(ModbusExceptionCode.illegalDataAddress) }
            for i in 0..<count { tab[at + i] = pdu[6 + i / 8] & (1 << UInt8(i % 8)) != 0 ? 1 : 0 }
            echo(5)
        case 16:
            let count = word(3), bytes = Int(pdu[5]), at = address - Int(m.start_registers)
            guard count >= 1, count <= 123, bytes == count * 2 else { return exception(ModbusExceptionCode.illegalDataValue) }
            guard at >= 0, at + count <= Int(m.nb_registers), let tab = m.tab_registers else { return exception(ModbusExceptionCode.illegalDataAddress) }
            for i in 0..<count { tab[at + i] = UInt16(word(6 + 2 * i)) }
            echo(5)
        case 17:
            // libmodbus's answer: its server id (180), run indicator on, "LMB" and its version.
            let text = Array("LMB\(libmodbus_version_major).\(libmodbus_version_minor).\(libmodbus_version_micro)".utf8)
            out.append(function)
            out.append(UInt8(2 + text.count))
            out.append(180)
            out.append(0xFF)
            out.append(contentsOf: text)
        case 22:
            let at = address - Int(m.start_registers)
            guard at >= 0, at < Int(m.nb_registers), let tab = m.tab_registers else { return exception(ModbusExceptionCode.illegalDataAddress) }
            let and = UInt16(word(3)), or = UInt16(word(5))
            tab[at] = (tab[at] & and) | (or & ~and)
            echo(7)
        case 23:
            let count = word(3), writeAddress = word(5), writeCount = word(7), writeBytes = Int(pdu[9])
            guard writeCount >= 1, writeCount <= 121, count >= 1, count <= 125, writeBytes == writeCount * 2 else {
                return exception(ModbusExceptionCode.illegalDataValue)
            }
            let at = address - Int(m.start_registers), writeAt = writeAddress - Int(m.start_registers)
            guard at >= 0, at + count <= Int(m.nb_registers), writeAt >= 0, writeAt + writeCount <= Int(m.nb_registers),
                  let tab = m.tab_registers else { return exception(ModbusExceptionCode.illegalDataAddress) }
            for i in 0..<writeCount { tab[writeAt + i] = UInt16(word(10 + 2 * i)) }
            out.append(function)
            out.append(UInt8(count * 2))
            for i in 0..<count {
                let v = tab[at + i]
                out.append(UInt8(v >> 8)); out.append(UInt8(v & 0xFF))
            }
        default:
            exception(ModbusExceptionCode.illegalFunction)
        }
    }

    /// Answers one received request (`modbus_reply`) under the lock. For the RTU server.
    func reply(_ ctx: OpaquePointer, request: UnsafePointer<UInt8>, length: Int32) -> Int32 {
        lock.lock(); defer { lock.unlock() }
        return modbus_reply(ctx, request, length, mapping)
    }
}
