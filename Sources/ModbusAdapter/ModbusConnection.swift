import CModbus
import Foundation
import PlantModel

/// The one owner of a libmodbus context (`modbus_t*`) for one station: TCP or RTU.
///
/// Not thread-safe: use it from one thread (the station's poll thread). A connection-level
/// failure (timeout, closed, bad response) closes the context before throwing, so the caller
/// reconnects; a Modbus exception leaves it open. Call ``close()`` before dropping it.
public final class ModbusConnection {
    public let station: String
    public let endpoint: Endpoint
    /// Response timeout in milliseconds (also the connect timeout for TCP).
    public let timeoutMs: Int
    private var context: OpaquePointer?

    public init(station: String, endpoint: Endpoint, timeoutMs: Int) {
        self.station = station
        self.endpoint = endpoint
        self.timeoutMs = max(1, timeoutMs)
    }

    deinit {
        assert(context == nil, "ModbusConnection of \(station) dropped while open: call close()")
        if let context { modbus_close(context); modbus_free(context) }
    }

    /// Whether a context is open.
    public var isOpen: Bool { context != nil }

    private func errorContext(_ operation: String) -> ModbusError.Context {
        ModbusError.Context(station: station, operation: "\(operation) at \(endpoint)")
    }

    /// Opens the connection (TCP connect or serial port open). No-op when already open.
    public func open() throws(ModbusError) {
        if context != nil { return }
        let made: OpaquePointer?
        let unit: Int
        switch endpoint {
        case let .modbusTCP(host, port, u):
            made = modbus_new_tcp_pi(host, String(port))
            unit = u
        case let .modbusRTU(device, baud, parity, dataBits, stopBits, u):
            made = modbus_new_rtu(device, Int32(baud), CChar(parity.asciiValue ?? 78), Int32(dataBits), Int32(stopBits))
            unit = u
        case .opcua:
            throw .other(errno: EINVAL, errorContext("connect (not a Modbus endpoint)"))
        }
        guard let ctx = made else {
            throw ModbusError.from(errno: cmodbus_errno(), context: errorContext("create context"))
        }
        let seconds = UInt32(timeoutMs / 1000), micros = UInt32((timeoutMs % 1000) * 1000)
        modbus_set_response_timeout(ctx, seconds, micros)
        modbus_set_byte_timeout(ctx, seconds, micros)
        if modbus_set_slave(ctx, Int32(unit)) != 0 {
            let code = cmodbus_errno()
            modbus_free(ctx)
            throw ModbusError.from(errno: code, context: errorContext("set unit \(unit)"))
        }
        if modbus_connect(ctx) != 0 {
            let code = cmodbus_errno()
            modbus_free(ctx)
            throw ModbusError.from(errno: code, context: errorContext("connect"))
        }
        if case .modbusTCP = endpoint {
            let fd = modbus_get_socket(ctx)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        context = ctx
    }

    /// Closes the connection. Safe to call when closed.
    public func close() {
        guard let ctx = context else { return }
        context = nil
        modbus_close(ctx)
        modbus_free(ctx)
    }

    /// Reads `count` holding or input registers from `start`.
    public func readRegisters(_ table: ModbusTable, start: Int, count: Int) throws(ModbusError) -> [UInt16] {
        guard let ctx = context else { throw .connectionClosed(errorContext(Self.operation(table, start, count))) }
        var values = [UInt16](repeating: 0, count: max(count, 1))
        let result: Int32 = values.withUnsafeMutableBufferPointer { buffer in
            switch table {
            case .holdingRegister: return modbus_read_registers(ctx, Int32(start), Int32(count), buffer.baseAddress)
            case .inputRegister: return modbus_read_input_registers(ctx, Int32(start), Int32(count), buffer.baseAddress)
            case .coil, .discreteInput:
                cmodbus_set_errno(EINVAL)
                return -1
            }
        }
        if result < 0 { throw failure(Self.operation(table, start, count)) }
        if Int(result) != count { throw failure(Self.operation(table, start, count), errno: CMODBUS_EMBBADDATA) }
        if values.count != count { values.removeLast(values.count - count) }
        return values
    }

    /// Reads `count` coils or discrete inputs from `start`.
    public func readBits(_ table: ModbusTable, start: Int, count: Int) throws(ModbusError) -> [Bool] {
        guard let ctx = context else { throw .connectionClosed(errorContext(Self.operation(table, start, count))) }
        var values = [UInt8](repeating: 0, count: max(count, 1))
        let result: Int32 = values.withUnsafeMutableBufferPointer { buffer in
            switch table {
            case .coil: return modbus_read_bits(ctx, Int32(start), Int32(count), buffer.baseAddress)
            case .discreteInput: return modbus_read_input_bits(ctx, Int32(start), Int32(count), buffer.baseAddress)
            case .holdingRegister, .inputRegister:
                cmodbus_set_errno(EINVAL)
                return -1
            }
        }
        if result < 0 { throw failure(Self.operation(table, start, count)) }
        if Int(result) != count { throw failure(Self.operation(table, start, count), errno: CMODBUS_EMBBADDATA) }
        return values.prefix(count).map { $0 != 0 }
    }

    /// What a read was, for its error message (only built when it fails).
    private static func operation(_ table: ModbusTable, _ start: Int, _ count: Int) -> String {
        "read \(ModbusReadRequest(table: table, start: start, count: count, signals: []))"
    }

    /// The error of the last libmodbus call; closes the connection unless the PLC answered with
    /// a Modbus exception (a late or garbled answer would desynchronise the next request).
    private func failure(_ operation: String, errno code: Int32? = nil) -> ModbusError {
        let error = ModbusError.from(errno: code ?? cmodbus_errno(), context: errorContext(operation))
        if !error.isException { close() }
        return error
    }
}
