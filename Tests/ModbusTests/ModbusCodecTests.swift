import XCTest
import PlantModel
@testable import ModbusAdapter
import Simulation

final class ModbusCodecTests: XCTestCase {
    private func signal(_ type: DataType, order: WordOrder = .abcd, length: Int? = nil, scale: Double? = nil,
                        offset: Double? = nil, table: ModbusTable = .holdingRegister) -> SignalConfig {
        SignalConfig(name: "s", address: ModbusAddress(table: table, index: 0), type: type, length: length,
                     wordOrder: order, scale: scale, offset: offset)
    }

    // The word orders of docs/CONFIG.md, with a known byte pattern: the 32-bit value 0xAABBCCDD.
    func testWordOrders32BitKnownPatterns() throws {
        let expected: [WordOrder: [UInt16]] = [
            .abcd: [0xAABB, 0xCCDD], .cdab: [0xCCDD, 0xAABB], .badc: [0xBBAA, 0xDDCC], .dcba: [0xDDCC, 0xBBAA],
        ]
        for (order, registers) in expected {
            XCTAssertEqual(try ModbusCodec.encodeRaw(.int(0xAABB_CCDD), type: .uint32, wordOrder: order), registers, "\(order)")
            XCTAssertEqual(try ModbusCodec.decodeRaw(registers: registers, type: .uint32, wordOrder: order), .int(0xAABB_CCDD), "\(order)")
            // dcba is fully little-endian: the bytes in memory order are DD CC BB AA.
        }
        let dcbaBytes = ModbusCodec.bigEndianBytes(registers: [0xDDCC, 0xBBAA], order: .abcd)
        XCTAssertEqual(dcbaBytes, [0xDD, 0xCC, 0xBB, 0xAA])
    }

    func testWordOrders64BitKnownPatterns() throws {
        // 1.0 as float64 is 0x3FF0_0000_0000_0000; use a pattern with distinct bytes instead.
        let value = Double(bitPattern: 0x0102_0304_0506_0708)
        let expected: [WordOrder: [UInt16]] = [
            .abcd: [0x0102, 0x0304, 0x0506, 0x0708], .cdab: [0x0708, 0x0506, 0x0304, 0x0102],
            .badc: [0x0201, 0x0403, 0x0605, 0x0807], .dcba: [0x0807, 0x0605, 0x0403, 0x0201],
        ]
        for (order, registers) in expected {
            XCTAssertEqual(try ModbusCodec.encodeRaw(.double(value), type: .float64, wordOrder: order), registers, "\(order)")
            guard case .double(let d) = try ModbusCodec.decodeRaw(registers: registers, type: .float64, wordOrder: order) else {
                return XCTFail("not a double")
            }
            XCTAssertEqual(d.bitPattern, 0x0102_0304_0506_0708, "\(order)")
        }
    }

    func testFloat32KnownPattern() throws {
        // 10.5f = 0x41280000
        XCTAssertEqual(try ModbusCodec.encodeRaw(.double(10.5), type: .float32), [0x4128, 0x0000])
        XCTAssertEqual(try ModbusCodec.encodeRaw(.double(10.5), type: .float32, wordOrder: .cdab), [0x0000, 0x4128])
        XCTAssertEqual(try ModbusCodec.encodeRaw(.double(10.5), type: .float32, wordOrder: .badc), [0x2841, 0x0000])
        XCTAssertEqual(try ModbusCodec.encodeRaw(.double(10.5), type: .float32, wordOrder: .dcba), [0x0000, 0x2841])
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0x4128, 0], type: .float32), .double(10.5))
    }

    func testSixteenBitTypes() throws {
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0xFFFF], type: .uint16), .int(65535))
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0xFFFF], type: .int16), .int(-1))
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0x8000], type: .int16), .int(-32768))
        XCTAssertEqual(try ModbusCodec.encodeRaw(.int(-2), type: .int16), [0xFFFE])
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0xFFFF, 0xFFFE], type: .int32), .int(-2))
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0xFFFF, 0xFFFE], type: .uint32), .int(4_294_967_294))
        // bool from a register: any non-zero value
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0], type: .bool), .bool(false))
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0x0100], type: .bool), .bool(true))
        XCTAssertEqual(ModbusCodec.decode(signal: signal(.bool, table: .coil), bit: true), .bool(true))
    }

    func testRangeChecks() {
        XCTAssertThrowsError(try ModbusCodec.encodeRaw(.int(65536), type: .uint16))
        XCTAssertThrowsError(try ModbusCodec.encodeRaw(.int(-1), type: .uint32))
        XCTAssertThrowsError(try ModbusCodec.encodeRaw(.int(40000), type: .int16))
        XCTAssertThrowsError(try ModbusCodec.encodeRaw(.string("x"), type: .float32))
        XCTAssertThrowsError(try ModbusCodec.encodeRaw(.string("TOO-LONG"), type: .string, length: 4))
        XCTAssertThrowsError(try ModbusCodec.decodeRaw(registers: [1], type: .float32)) { error in
            XCTAssertEqual(error as? ModbusCodecError, .needMoreRegisters(needed: 2, got: 1))
        }
        XCTAssertThrowsError(try ModbusCodec.decodeRaw(registers: [1, 2, 3, 4], type: .int64))
    }

    func testStrings() throws {
        // "AB" "C\0": two ASCII characters per register, high byte first
        XCTAssertEqual(try ModbusCodec.encodeRaw(.string("ABC"), type: .string, length: 4), [0x4142, 0x4300])
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0x4142, 0x4300], type: .string, length: 4), .string("ABC"))
        // space padded and odd length
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0x4142, 0x2020, 0x2000], type: .string, length: 5), .string("AB"))
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0x2041, 0x4200], type: .string, length: 3), .string("AB"))
        // length cuts the last byte of an odd-length string
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0x4142, 0x4344], type: .string, length: 3), .string("ABC"))
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: [0, 0], type: .string, length: 4), .string(""))
        let vin = "WVWZZZ1JZXW000001"
        let regs = try ModbusCodec.encodeRaw(.string(vin), type: .string, length: 17)
        XCTAssertEqual(regs.count, 9)
        XCTAssertEqual(try ModbusCodec.decodeRaw(registers: regs, type: .string, length: 17), .string(vin))
    }

    func testScaleAndOffset() throws {
        let s = signal(.int16, scale: 0.1, offset: -5)
        // raw 123 → 123 × 0.1 − 5 = 7.3: integers with a scale become doubles
        guard case .double(let d) = try ModbusCodec.decode(signal: s, registers: [123]) else { return XCTFail() }
        XCTAssertEqual(d, 7.3, accuracy: 1e-9)
        XCTAssertEqual(try ModbusCodec.encode(.double(7.3), signal: s), [123])
        XCTAssertEqual(try ModbusCodec.decode(signal: signal(.uint16), registers: [7]), .int(7))
        // scale does not touch strings or bools
        XCTAssertEqual(try ModbusCodec.decode(signal: signal(.bool, scale: 10), registers: [1]), .bool(true))
        guard case .double(let f) = try ModbusCodec.decode(signal: signal(.float32, scale: 2), registers: [0x4128, 0]) else { return XCTFail() }
        XCTAssertEqual(f, 21)
    }

    /// Every type × word order: encode (what the simulator serves) → decode is the identity.
    func testRoundTripEveryTypeAndOrder() throws {
        let samples: [(DataType, [SignalValue])] = [
            (.bool, [.bool(true), .bool(false)]),
            (.int16, [.int(-32768), .int(-1), .int(0), .int(32767)]),
            (.uint16, [.int(0), .int(1), .int(65535)]),
            (.int32, [.int(-2_147_483_648), .int(-123_456), .int(2_147_483_647)]),
            (.uint32, [.int(0), .int(305_419_896), .int(4_294_967_295)]),
            (.float32, [.double(-1.5), .double(10.21000003814697265625), .double(0)]),
            (.float64, [.double(3.141592653589793), .double(-1e300), .double(0.1)]),
            (.string, [.string("LOT-4711"), .string(""), .string("A")]),
        ]
        for (type, values) in samples {
            for order in WordOrder.allCases {
                let s = signal(type, order: order, length: type == .string ? 9 : nil)
                for value in values {
                    let regs = try ModbusCodec.encode(value, signal: s)
                    XCTAssertEqual(regs.count, s.registerCount, "\(type) \(order)")
                    XCTAssertEqual(try ModbusCodec.decode(signal: s, registers: regs), value, "\(type) \(order) \(value)")
                }
            }
        }
    }

    func testErrorKindsAndMessages() {
        let context = ModbusError.Context(station: "WELD-01", operation: "read hr:40…45 at modbus://127.0.0.1:1?unit=1")
        let illegal = ModbusError.from(errno: CMODBUS_EMBXILADD_forTest, context: context)
        XCTAssertTrue(illegal.isIllegalDataAddress)
        XCTAssertEqual(illegal.kind, "exception_2")
        XCTAssertTrue(illegal.description.contains("WELD-01"))
        XCTAssertTrue(illegal.description.contains("hr:40"))
        XCTAssertTrue(illegal.description.contains("illegal data address"))
        XCTAssertEqual(ModbusError.from(errno: ETIMEDOUT, context: context).kind, "timeout")
        XCTAssertEqual(ModbusError.from(errno: ECONNREFUSED, context: context).kind, "refused")
        XCTAssertEqual(ModbusError.from(errno: ECONNRESET, context: context).kind, "closed")
        XCTAssertEqual(ModbusError.from(errno: CMODBUS_EMBBADDATA_forTest, context: context).kind, "bad_response")
        XCTAssertEqual(ModbusError.from(errno: CMODBUS_GTAR_forTest, context: context).kind, "exception_11")
        if case .exception(.gatewayTargetFailed, _) = ModbusError.from(errno: CMODBUS_GTAR_forTest, context: context) {} else { XCTFail() }
        XCTAssertFalse(ModbusError.from(errno: EHOSTUNREACH, context: context).description.contains("errno"))
    }
}
