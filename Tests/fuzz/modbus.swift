import ModbusAdapter
import PlantModel

/// libFuzzer entry: byte 0 picks the type, byte 1 the word order, byte 2 a string length; the rest
/// are registers. Decoding must not crash; a numeric value must encode back to registers that
/// decode to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    guard bytes.count >= 3 else { return 0 }
    let type = DataType.modbusTypes[Int(bytes[0]) % DataType.modbusTypes.count]
    let order = WordOrder.allCases[Int(bytes[1]) % WordOrder.allCases.count]
    let length = Int(bytes[2])
    var registers: [UInt16] = []
    var i = 3
    while i + 1 < bytes.count { registers.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])); i += 2 }
    guard let value = try? ModbusCodec.decodeRaw(registers: registers, type: type, wordOrder: order, length: length) else { return 0 }
    switch (type, value) {
    case (.string, _), (.bool, _): break
    case (_, .double(let d)) where d.isNaN: break
    default:
        guard let encoded = try? ModbusCodec.encodeRaw(value, type: type, wordOrder: order, length: length) else {
            fatalError("\(value) decoded from \(type) does not encode back")
        }
        let again = try? ModbusCodec.decodeRaw(registers: encoded, type: type, wordOrder: order, length: length)
        if again != value { fatalError("\(type) \(order): \(value) → \(encoded) → \(String(describing: again))") }
    }
    return 0
}
