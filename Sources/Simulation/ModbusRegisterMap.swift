import CModbus
import Foundation
import ModbusAdapter
import PlantModel

/// The register map of one simulated Modbus PLC: a libmodbus `modbus_mapping_t` sized from the
/// station's signals, written by ``set(signal:value:)`` and served by the server threads.
///
/// Thread-safe: every access holds the map's lock (the servers hold it around `modbus_reply`).
// @unchecked Sendable: the C mapping is read and written only with `lock` held (libmodbus needs the raw pointer, which `Locked` cannot hand out).
public final class ModbusRegisterMap: @unchecked Sendable {
    public let station: StationConfig
    private let lock = NSLock()
    private let mapping: UnsafeMutablePointer<modbus_mapping_t>
    private let signalsByName: [String: SignalConfig]

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

    /// Answers one received request (`modbus_reply`) under the lock. For the servers.
    func reply(_ ctx: OpaquePointer, request: UnsafePointer<UInt8>, length: Int32) -> Int32 {
        lock.lock(); defer { lock.unlock() }
        return modbus_reply(ctx, request, length, mapping)
    }
}
