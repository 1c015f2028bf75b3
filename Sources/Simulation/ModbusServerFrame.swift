/// Modbus TCP framing on the server side (the simulated PLCs): finds whole requests in received
/// bytes and frames answers. The client side is `ModbusTCPFrame` (ModbusAdapter).
///
/// Pure. The MBAP header is 7 bytes: transaction id, protocol id, length (bytes after the length
/// field: unit + PDU), unit id; the PDU (function code + data) follows.
enum ModbusServerFrame {
    static let headerLength = 7
    /// The longest PDU (function code + data) a frame may carry.
    static let maxPDU = 253

    /// The outcome of looking at the front of received bytes.
    enum Parsed: Equatable {
        /// No whole request yet.
        case needMore
        /// A request of `length` bytes (header + PDU) starts at the front.
        case request(length: Int)
        /// The header's length field cannot be a request (the stream cannot be resynchronised).
        case bad
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) -> Parsed {
        guard bytes.count >= headerLength else { return .needMore }
        let length = Int(bytes[4]) << 8 | Int(bytes[5])
        // Unit + at least the function code; at most the unit + the longest PDU.
        guard length >= 2, length <= 1 + maxPDU else { return .bad }
        return bytes.count >= 6 + length ? .request(length: 6 + length) : .needMore
    }

    /// Appends the header of an answer to `request` (its transaction and unit); the length is
    /// filled in by ``finish(_:from:)`` once the PDU is appended. Returns where the header starts.
    static func beginAnswer(to request: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Int {
        let start = out.count
        out.append(request[0]); out.append(request[1])
        out.append(0); out.append(0)
        out.append(0); out.append(0)
        out.append(request[6])
        return start
    }

    /// Writes the length field of the answer that starts at `start`.
    static func finish(_ out: inout [UInt8], from start: Int) {
        let length = out.count - start - 6
        out[start + 4] = UInt8(truncatingIfNeeded: length >> 8)
        out[start + 5] = UInt8(truncatingIfNeeded: length)
    }

    /// Appends an exception answer PDU: the function code with its high bit set, then the code.
    static func appendException(function: UInt8, code: UInt8, into out: inout [UInt8]) {
        out.append(function | 0x80)
        out.append(code)
    }
}

/// Modbus exception codes a simulated PLC answers with (the Modbus application protocol's).
enum ModbusExceptionCode {
    static let illegalFunction: UInt8 = 0x01
    static let illegalDataAddress: UInt8 = 0x02
    static let illegalDataValue: UInt8 = 0x03
    static let gatewayTargetFailed: UInt8 = 0x0B
}
