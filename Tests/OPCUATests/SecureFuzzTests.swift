import Foundation
import OPCUA
import Runtime
import XCTest
import TestSupport

/// The seeded half of fuzzing secured chunks (README "Fuzzing"; the libFuzzer harness is
/// Tests/fuzz/opcua_secure.swift): the committed seeds get past the signature check, every single-byte
/// change of a sealed chunk is caught, and seeded mutations never trap.
final class SecureFuzzTests: XCTestCase {
    static let keys = repoRoot.appendingPathComponent("Tests/fuzz/keys").path
    static let corpus = repoRoot.appendingPathComponent("Tests/fuzz/corpus/opcua_secure").path

    static func harnesses() throws -> [SecuredChunkHarness] {
        let clientCertificate = Array(try Data(contentsOf: URL(fileURLWithPath: keys + "/client.der")))
        let serverCertificate = Array(try Data(contentsOf: URL(fileURLWithPath: keys + "/server.der")))
        let clientKey = try RSAPrivateKey(file: keys + "/client-key.pem")
        let serverKey = try RSAPrivateKey(file: keys + "/server-key.pem")
        return try SecuredChunkHarness.fuzzCases.map { policy, mode in
            try SecuredChunkHarness(policy: policy, mode: mode, clientCertificate: clientCertificate, clientKey: clientKey,
                                    serverCertificate: serverCertificate, serverKey: serverKey)
        }
    }

    /// The seeds of one harness: an OPN request, a Read in one MSG chunk, a Write cut into several chunks.
    static func seeds(_ harness: inout SecuredChunkHarness) throws -> [String: (bytes: [UInt8], messages: [[UInt8]])] {
        var open = OpenSecureChannelRequest()
        open.requestType = .issue
        open.securityMode = harness.mode
        open.clientNonce = [UInt8](repeating: 0xC1, count: 32)
        open.requestedLifetime = 600_000
        let openMessage = encodeServiceMessage(open, encodingId: OpenSecureChannelRequest.encodingId)
        let read = encodeServiceMessage(ReadRequest(nodesToRead: [ReadValueId(nodeId: NodeId("Weld.Current", namespace: 2)), ReadValueId(nodeId: NodeId(2258))]),
                                        encodingId: ReadRequest.encodingId)
        let write = encodeServiceMessage(WriteRequest(nodesToWrite: [WriteValue(nodeId: NodeId(1), value: DataValue(.string(String(repeating: "x", count: 20_000))))]),
                                         encodingId: WriteRequest.encodingId)
        return [
            "open": (try harness.seal(.open, requestId: 1, message: openMessage), [openMessage]),
            "read": (try harness.seal(.message, requestId: 2, message: read), [read]),
            "write-chunks": (try harness.seal(.message, requestId: 3, message: write), [write]),
        ]
    }

    static func seedName(_ index: Int, _ name: String) -> String {
        let (policy, mode) = SecuredChunkHarness.fuzzCases[index]
        return "\(index)-\(policy.rawValue)-\(mode)-\(name)"
    }

    /// Writes the seed corpus (run once with MES_WRITE_FUZZ_SEEDS=1 after changing the chunk layout).
    func testWriteSeedsWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["MES_WRITE_FUZZ_SEEDS"] == "1" else { throw XCTSkip("set MES_WRITE_FUZZ_SEEDS=1 to rewrite Tests/fuzz/corpus/opcua_secure") }
        var harnesses = try Self.harnesses()
        try FileManager.default.createDirectory(atPath: Self.corpus, withIntermediateDirectories: true)
        for index in harnesses.indices {
            for (name, seed) in try Self.seeds(&harnesses[index]) {
                try Data([UInt8(index)] + seed.bytes).write(to: URL(fileURLWithPath: Self.corpus + "/" + Self.seedName(index, name)))
            }
        }
    }

    func testCommittedSeedsGetPastTheSignatureCheck() throws {
        let harnesses = try Self.harnesses()
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.corpus).sorted()
        XCTAssertEqual(names.count, harnesses.count * 3, "\(names)")
        for name in names {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.corpus + "/" + name)))
            let harness = harnesses[Int(bytes[0]) % harnesses.count]
            let outcome = harness.receive(Array(bytes.dropFirst()))
            XCTAssertNil(outcome.failure, name)
            XCTAssertEqual(outcome.messages.count, 1, name)
            var reader = BinaryReader(outcome.messages.first ?? [])
            XCTAssertNotNil(try? readServiceTypeId(&reader), name)
        }
    }

    func testEveryChangedByteOfASealedChunkIsCaught() throws {
        var harnesses = try Self.harnesses()
        for index in harnesses.indices {
            let seeds = try Self.seeds(&harnesses[index])
            for name in ["open", "read"] {
                let seed = try XCTUnwrap(seeds[name])
                XCTAssertEqual(harnesses[index].receive(seed.bytes).messages, seed.messages, "\(index) \(name) as sealed")
                // Bytes 8 on (after type, chunk type and size): channel, security header, sequence header, body, padding, signature.
                for position in 8..<seed.bytes.count {
                    var tampered = seed.bytes
                    tampered[position] ^= 0x01
                    let outcome = harnesses[index].receive(tampered)
                    XCTAssertTrue(outcome.messages.isEmpty, "\(Self.seedName(index, name)): a flip at byte \(position) went through")
                    XCTAssertNotNil(outcome.failure, "\(Self.seedName(index, name)): a flip at byte \(position) was not refused")
                }
            }
        }
    }

    func testSeededMutationsNeverTrap() throws {
        var harnesses = try Self.harnesses()
        var seeds: [(Int, [UInt8])] = []
        for index in harnesses.indices { for (_, seed) in try Self.seeds(&harnesses[index]) { seeds.append((index, seed.bytes)) } }
        var random = SplitMix64(seed: 0x5EC_0C0A)
        var refused = [StatusCode: Int]()
        for iteration in 0..<3000 {
            let (index, seed) = seeds[Int(random.next() % UInt64(seeds.count))]
            var input = seed
            switch iteration % 4 {
            case 0: input = Array(seed.prefix(Int(random.next() % UInt64(seed.count + 1))))
            case 1:
                for _ in 0..<(1 + Int(random.next() % 8)) { input[Int(random.next() % UInt64(input.count))] = UInt8(truncatingIfNeeded: random.next()) }
            case 2: input = seed + seeds[Int(random.next() % UInt64(seeds.count))].1
            default:
                // A plausible header over random bytes: the size field says what follows.
                let body = random.bytes(Int(random.next() % 600))
                let size = UInt32(body.count + 12)
                input = Array(seed.prefix(3)) + [UInt8(ascii: "F")] + withUnsafeBytes(of: size.littleEndian, Array.init) + [1, 0, 0, 0] + body
            }
            let outcome = harnesses[index].receive(input)
            if let failure = outcome.failure { refused[failure, default: 0] += 1 }
        }
        XCTAssertGreaterThan(refused[.badSecurityChecksFailed, default: 0], 100, "\(refused)")
    }
}
