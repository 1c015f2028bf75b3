import CModbus
import Foundation

/// A Modbus exception code sent back by a PLC (function code | 0x80).
public enum ModbusException: Sendable, Equatable, Hashable, CustomStringConvertible {
    case illegalFunction
    case illegalDataAddress
    case illegalDataValue
    case serverDeviceFailure
    case acknowledge
    case serverDeviceBusy
    case negativeAcknowledge
    case memoryParityError
    case gatewayPathUnavailable
    case gatewayTargetFailed
    case other(UInt8)

    /// The exception from its wire code.
    public init(code: UInt8) {
        switch code {
        case 1: self = .illegalFunction
        case 2: self = .illegalDataAddress
        case 3: self = .illegalDataValue
        case 4: self = .serverDeviceFailure
        case 5: self = .acknowledge
        case 6: self = .serverDeviceBusy
        case 7: self = .negativeAcknowledge
        case 8: self = .memoryParityError
        case 0x0A: self = .gatewayPathUnavailable
        case 0x0B: self = .gatewayTargetFailed
        default: self = .other(code)
        }
    }

    /// The wire code (1 = illegal function, 2 = illegal data address, …).
    public var code: UInt8 {
        switch self {
        case .illegalFunction: return 1
        case .illegalDataAddress: return 2
        case .illegalDataValue: return 3
        case .serverDeviceFailure: return 4
        case .acknowledge: return 5
        case .serverDeviceBusy: return 6
        case .negativeAcknowledge: return 7
        case .memoryParityError: return 8
        case .gatewayPathUnavailable: return 0x0A
        case .gatewayTargetFailed: return 0x0B
        case .other(let code): return code
        }
    }

    public var description: String {
        switch self {
        case .illegalFunction: return "illegal function"
        case .illegalDataAddress: return "illegal data address"
        case .illegalDataValue: return "illegal data value"
        case .serverDeviceFailure: return "server device failure"
        case .acknowledge: return "acknowledge"
        case .serverDeviceBusy: return "server device busy"
        case .negativeAcknowledge: return "negative acknowledge"
        case .memoryParityError: return "memory parity error"
        case .gatewayPathUnavailable: return "gateway path unavailable"
        case .gatewayTargetFailed: return "gateway target device failed to respond"
        case .other(let code): return "exception \(code)"
        }
    }
}

/// Why a Modbus call failed, with the station and what was being done.
///
/// Match on the case (`case .exception(.illegalDataAddress, _)`); the text names the station and
/// the address, never a bare errno.
public enum ModbusError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No (complete) answer within the response timeout.
    case timeout(Context)
    /// The PLC's host refused the TCP connection (nothing listening).
    case connectionRefused(Context)
    /// The connection broke or the peer closed it.
    case connectionClosed(Context)
    /// The PLC answered with a Modbus exception.
    case exception(ModbusException, Context)
    /// An answer that does not fit the request (bad CRC, wrong length, wrong transaction or unit).
    case badResponse(Context)
    /// Any other system error.
    case other(errno: Int32, Context)

    /// The station and the operation an error belongs to.
    public struct Context: Sendable, Equatable, CustomStringConvertible {
        public var station: String
        /// What was being done: `read hr:10…18`, `connect 127.0.0.1:15020`.
        public var operation: String
        public init(station: String, operation: String) {
            self.station = station
            self.operation = operation
        }
        public var description: String { "station \(station): \(operation)" }
    }

    public var context: Context {
        switch self {
        case .timeout(let c), .connectionRefused(let c), .connectionClosed(let c), .badResponse(let c): return c
        case .exception(_, let c), .other(_, let c): return c
        }
    }

    /// A short label for metrics and stats: `timeout`, `refused`, `closed`, `exception_2`,
    /// `bad_response`, `errno_N`.
    public var kind: String {
        switch self {
        case .timeout: return "timeout"
        case .connectionRefused: return "refused"
        case .connectionClosed: return "closed"
        case .exception(let e, _): return "exception_\(e.code)"
        case .badResponse: return "bad_response"
        case .other(let code, _): return "errno_\(code)"
        }
    }

    /// The PLC's own status text for a bad reading (`illegal data address (exception 2)`).
    public var status: String {
        switch self {
        case .timeout: return "timeout"
        case .connectionRefused: return "connection refused"
        case .connectionClosed: return "connection closed"
        case .exception(let e, _): return "\(e) (exception \(e.code))"
        case .badResponse: return "bad response"
        case .other(let code, _): return String(cString: strerror(code))
        }
    }

    /// True when the PLC answered (an exception): the connection itself is fine.
    public var isException: Bool {
        if case .exception = self { return true }
        return false
    }

    /// True for the illegal-data-address exception (the address does not exist on the PLC).
    public var isIllegalDataAddress: Bool {
        if case .exception(.illegalDataAddress, _) = self { return true }
        return false
    }

    public var description: String { "\(context): \(status)" }

    /// Classifies a libmodbus failure from the errno it left.
    public static func from(errno code: Int32, context: Context) -> ModbusError {
        let base = CMODBUS_ENOBASE
        if code > base && code <= base + 0x0B {
            return .exception(ModbusException(code: UInt8(code - base)), context)
        }
        switch code {
        case CMODBUS_EMBBADCRC, CMODBUS_EMBBADDATA, CMODBUS_EMBBADEXC, CMODBUS_EMBMDATA, CMODBUS_EMBBADSLAVE:
            return .badResponse(context)
        case ETIMEDOUT, EAGAIN, EINPROGRESS:
            return .timeout(context)
        case ECONNREFUSED:
            return .connectionRefused(context)
        case ECONNRESET, EPIPE, ENOTCONN, EBADF, ESHUTDOWN, ECONNABORTED:
            return .connectionClosed(context)
        default:
            if code > base { return .badResponse(context) }
            return .other(errno: code, context)
        }
    }
}
