import PlantModel

/// Modbus TCP framing (MBAP header + PDU) for the read functions the read plan uses: 1 (coils),
/// 2 (discrete inputs), 3 (holding registers), 4 (input registers).
///
/// Pure: builds requests and parses answers from a byte buffer; says "need more bytes" on a short
/// buffer and throws ``ModbusError`` only on a bad answer. The MBAP header is 7 bytes: transaction
/// id, protocol id (0), length (bytes after the length field: unit + PDU), unit id.
public enum ModbusTCPFrame {
    /// The function code that reads `table`.
    public static func function(for table: ModbusTable) -> UInt8 {
        switch table {
        case .coil: return 1
        case .discreteInput: return 2
        case .holdingRegister: return 3
        case .inputRegister: return 4
        }
    }

    /// The length of a read request.
    public static let readRequestLength = 12

    /// A read request: 12 bytes.
    public static func readRequest(transaction: UInt16, unit: UInt8, table: ModbusTable, start: Int, count: Int) -> [UInt8] {
        var frame: [UInt8] = []
        frame.reserveCapacity(readRequestLength)
        appendReadRequest(to: &frame, transaction: transaction, unit: unit, table: table, start: start, count: count)
        return frame
    }

    /// Appends a read request to `buffer` (no allocation when it has the capacity).
    public static func appendReadRequest(to buffer: inout [UInt8], transaction: UInt16, unit: UInt8, table: ModbusTable,
                                         start: Int, count: Int) {
        let start = UInt16(truncatingIfNeeded: start), count = UInt16(truncatingIfNeeded: count)
        buffer.append(UInt8(transaction >> 8)); buffer.append(UInt8(transaction & 0xFF))
        buffer.append(0); buffer.append(0); buffer.append(0); buffer.append(6)
        buffer.append(unit); buffer.append(function(for: table))
        buffer.append(UInt8(start >> 8)); buffer.append(UInt8(start & 0xFF))
        buffer.append(UInt8(count >> 8)); buffer.append(UInt8(count & 0xFF))
    }

    /// What an answer carried.
    public enum Payload: Sendable, Equatable {
        case registers([UInt16])
        case bits([Bool])
    }

    /// The outcome of parsing the front of a receive buffer.
    public enum Parsed: Sendable, Equatable {
        /// The buffer holds no complete frame yet.
        case needMore
        /// A complete frame of `length` bytes answered the request.
        case answer(Payload, length: Int)
    }

    /// Parses the answer to a read of `count` items of `table` sent with `transaction` to `unit`.
    ///
    /// - Throws: ``ModbusError/exception(_:_:)`` for an exception response, ``ModbusError/badResponse(_:)``
    ///   for a frame that does not answer the request (wrong transaction, protocol, unit, function,
    ///   byte count or length).
    public static func parseReadAnswer(_ buffer: [UInt8], transaction: UInt16, unit: UInt8, table: ModbusTable,
                                       count: Int, context: @autoclosure () -> ModbusError.Context) throws(ModbusError) -> Parsed {
        guard buffer.count >= 7 else { return .needMore }
        let length = Int(buffer[4]) << 8 | Int(buffer[5])
        // Unit + function + at least one byte; at most a full PDU (253) plus the unit.
        guard length >= 3, length <= 254 else { throw .badResponse(context()) }
        let total = 6 + length
        guard buffer.count >= total else { return .needMore }
        let answered = UInt16(buffer[0]) << 8 | UInt16(buffer[1])
        guard answered == transaction, buffer[2] == 0, buffer[3] == 0, buffer[6] == unit else { throw .badResponse(context()) }
        let code = function(for: table)
        let fc = buffer[7]
        if fc == code | 0x80 {
            guard length == 3 else { throw .badResponse(context()) }
            throw .exception(ModbusException(code: buffer[8]), context())
        }
        guard fc == code else { throw .badResponse(context()) }
        let byteCount = Int(buffer[8])
        let expected = table.isRegister ? 2 * count : (count + 7) / 8
        guard byteCount == expected, length == 3 + byteCount else { throw .badResponse(context()) }
        if table.isRegister {
            var registers = [UInt16](repeating: 0, count: count)
            for i in 0..<count { registers[i] = UInt16(buffer[9 + 2 * i]) << 8 | UInt16(buffer[10 + 2 * i]) }
            return .answer(.registers(registers), length: total)
        }
        var bits = [Bool](repeating: false, count: count)
        for i in 0..<count { bits[i] = buffer[9 + i / 8] & (1 << UInt8(i % 8)) != 0 }
        return .answer(.bits(bits), length: total)
    }
}
