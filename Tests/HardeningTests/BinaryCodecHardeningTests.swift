import Foundation
import XCTest
import TestSupport
import ModbusAdapter
import OPCUA
import PlantModel

/// Seeded random tests of the Modbus register codec and the OPC UA binary decoders.
final class BinaryCodecHardeningTests: XCTestCase {
    // MARK: Modbus

    private func randomValue(for type: DataType, _ rng: inout SplitMix64, length: Int) -> SignalValue {
        switch type {
        case .bool: return .bool(rng.chance(0.5))
        case .uint16: return .int(Int64(rng.below(65536)))
        case .int16: return .int(Int64(rng.below(65536)) - 32768)
        case .uint32: return .int(Int64(UInt32(truncatingIfNeeded: rng.next())))
        case .int32: return .int(Int64(Int32(truncatingIfNeeded: rng.next())))
        case .float32:
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            return .double(Double(f.isNaN ? 1.25 : f))
        case .float64:
            let d = Double(bitPattern: rng.next())
            return .double(d.isNaN ? -2.5 : d)
        default:
            let text = String(decoding: (0..<rng.below(length + 1)).map { _ in UInt8(33 + rng.below(94)) }, as: UTF8.self)
            return .string(text)
        }
    }

    func testModbusEncodeThenDecodeIsIdentityForEveryTypeAndOrder() throws {
        var rng = SplitMix64(seed: 0x4D42)
        for round in 0..<20000 {
            let type = rng.element(DataType.modbusTypes)
            let order = rng.element(WordOrder.allCases)
            let length = 1 + rng.below(40)
            let value = randomValue(for: type, &rng, length: length)
            let registers = try ModbusCodec.encodeRaw(value, type: type, wordOrder: order, length: length)
            XCTAssertEqual(registers.count, type == .string ? (length + 1) / 2 : type.registerWidth, "round \(round)")
            // Extra registers after the value are ignored.
            let decoded = try ModbusCodec.decodeRaw(registers: registers + rng.bytes(rng.below(3)).map(UInt16.init),
                                                    type: type, wordOrder: order, length: length)
            XCTAssertEqual(decoded, value, "round \(round): \(type) \(order)")
        }
    }

    func testModbusRandomRegistersDecodeOrAskForMore() throws {
        var rng = SplitMix64(seed: 0x5245_47)
        for round in 0..<20000 {
            let type = rng.element(DataType.modbusTypes)
            let order = rng.element(WordOrder.allCases)
            let length = rng.below(40)
            let registers = (0..<rng.below(24)).map { _ in UInt16(truncatingIfNeeded: rng.next()) }
            let needed = type == .string ? (length + 1) / 2 : type.registerWidth
            let result = Result { () throws(ModbusCodecError) -> SignalValue in
                try ModbusCodec.decodeRaw(registers: registers, type: type, wordOrder: order, length: length)
            }
            switch result {
            case .success(let value):
                XCTAssertGreaterThanOrEqual(registers.count, needed, "round \(round)")
                // Numbers re-encode to the same registers (NaN payloads aside).
                guard type != .string && type != .bool else { continue }
                if case let .double(d) = value, d.isNaN { continue }
                let again = try ModbusCodec.encodeRaw(value, type: type, wordOrder: order, length: length)
                XCTAssertEqual(again, Array(registers.prefix(needed)), "round \(round): \(type) \(order) \(value)")
            case .failure(let error):
                XCTAssertEqual(error, .needMoreRegisters(needed: needed, got: registers.count), "round \(round)")
                XCTAssertLessThan(registers.count, needed, "round \(round)")
            }
        }
    }

    func testModbusValuesThatDoNotFitAreRefused() {
        var rng = SplitMix64(seed: 17)
        for _ in 0..<5000 {
            let big = Int64(rng.below(1_000_000)) + 4_294_967_296
            XCTAssertThrowsError(try ModbusCodec.encodeRaw(.int(big), type: .uint32))
            XCTAssertThrowsError(try ModbusCodec.encodeRaw(.int(-1 - Int64(rng.below(1000))), type: .uint16))
            XCTAssertThrowsError(try ModbusCodec.encodeRaw(.double(.infinity), type: .int32))
            XCTAssertThrowsError(try ModbusCodec.encodeRaw(.string(String(repeating: "x", count: 5 + rng.below(10))), type: .string, length: 4))
        }
    }

    // MARK: OPC UA

    private func randomVariant(_ rng: inout SplitMix64, depth: Int = 0) -> Variant {
        switch rng.below(depth < 2 ? 15 : 13) {
        case 0: return .boolean(rng.chance(0.5))
        case 1: return .sbyte(Int8(truncatingIfNeeded: rng.next()))
        case 2: return .uint16(UInt16(truncatingIfNeeded: rng.next()))
        case 3: return .int32(Int32(truncatingIfNeeded: rng.next()))
        case 4: return .uint64(rng.next())
        case 5: return .float(Float(rng.below(100_000)) / 7)
        case 6: return .double(Double(Int64(bitPattern: rng.next()) >> 12) / 1024)
        case 7: return .string(rng.chance(0.1) ? nil : String(decoding: rng.bytes(rng.below(20)).map { 32 + $0 % 90 }, as: UTF8.self))
        case 8: return .dateTime(DateTime(ticks: Int64(rng.below(1 << 40))))
        case 9: return .byteString(rng.chance(0.1) ? nil : rng.bytes(rng.below(20)))
        case 10: return .nodeId(rng.chance(0.5) ? NodeId(UInt32(truncatingIfNeeded: rng.next()), namespace: UInt16(rng.below(4)))
                                                 : NodeId("Paint.\(rng.below(1000))", namespace: 2))
        case 11: return .statusCode(StatusCode(UInt32(truncatingIfNeeded: rng.next()) & 0xFFFF_0000))
        case 12: return .localizedText(LocalizedText("text \(rng.below(100))", locale: rng.chance(0.5) ? "en" : nil))
        case 13: return .array(.int32, (0..<rng.below(6)).map { _ in .int32(Int32(truncatingIfNeeded: rng.next())) })
        default: return .array(.double, (0..<rng.below(6)).map { _ in .double(Double(rng.below(1000)) / 8) })
        }
    }

    func testVariantsAndDataValuesRoundTripAndTruncationsAskForMoreBytes() throws {
        var rng = SplitMix64(seed: 0x4F50_4355)
        for round in 0..<10000 {
            let value = DataValue(randomVariant(&rng), status: rng.chance(0.3) ? StatusCode(0x8000_0000) : nil,
                                  sourceTimestamp: rng.chance(0.5) ? DateTime(ticks: Int64(rng.below(1 << 50))) : nil)
            var writer = BinaryWriter()
            writer.write(value)
            let bytes = writer.bytes
            var reader = BinaryReader(bytes)
            let back = try reader.read(DataValue.self)
            XCTAssertEqual(back, value, "round \(round)")
            XCTAssertEqual(reader.offset, bytes.count, "round \(round): trailing bytes")
            let cut = rng.below(bytes.count)
            var short = BinaryReader(Array(bytes[..<cut]))
            XCTAssertThrowsError(try short.read(DataValue.self), "round \(round): cut \(cut)") { error in
                XCTAssertEqual(error as? DecodeError, .needMoreBytes, "round \(round): cut \(cut) of \(bytes.count): \(error)")
            }
        }
    }

    func testDamagedUAStreamsThrowAndNeverCrash() throws {
        let corpus = repoRoot.appendingPathComponent("Tests/fuzz/corpus/opcua")
        let seeds = try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted()
            .map { Array(try Data(contentsOf: corpus.appendingPathComponent($0))) }
        XCTAssertGreaterThanOrEqual(seeds.count, 3)
        var rng = SplitMix64(seed: 0x5541)
        var frames = 0, messages = 0
        for _ in 0..<20000 {
            let input = Mutator.mutate(rng.element(seeds), &rng, maxSteps: 3)
            var decoder = FrameDecoder(maxFrameSize: 1 << 16)
            var assembler = ChunkAssembler(maxMessageSize: 1 << 18, maxChunkCount: 16)
            decoder.append(input)
            while let frame = try? decoder.next() {
                frames += 1
                guard frame.type == .message || frame.type == .open, let chunk = try? SecureChunk(frame: frame),
                      let message = try? assembler.add(chunk) else { continue }
                messages += 1
                var reader = BinaryReader(message)
                if (try? readServiceTypeId(&reader)) == ReadRequest.encodingId { _ = try? ReadRequest(from: &reader) }
            }
            var reader = BinaryReader(input)
            if (try? readServiceTypeId(&reader)) != nil {
                var a = reader, b = reader
                _ = try? ReadRequest(from: &a)
                _ = try? ReadResponse(from: &b)
            }
            _ = try? decodeServiceResponse(input, as: ReadResponse.self)
        }
        XCTAssertGreaterThan(frames, 1000)
        XCTAssertGreaterThan(messages, 100)
    }
}
