import Foundation
@testable import OPCUA
import TestSupport
import XCTest

/// Certificates shared by the security tests (made once: RSA key generation is slow on a busy machine).
enum SecurityFixtures {
    static let folder = TempFolder(prefix: "uasec")
    static let client = try! UATestCertificate(in: folder.path, name: "client", applicationURI: "urn:linemes:test:client")
    static let server = try! UATestCertificate(in: folder.path, name: "server", applicationURI: "urn:linemes:test:server")
    static let clientKey = try! RSAPrivateKey(file: client.keyPEM)
    /// 4096-bit keys: a block of more than 256 bytes, so chunks carry ExtraPaddingSize.
    static let client4096 = try! UATestCertificate(in: folder.path, name: "client4096", applicationURI: "urn:linemes:test:client", bits: 4096)
    static let server4096 = try! UATestCertificate(in: folder.path, name: "server4096", applicationURI: "urn:linemes:test:server4096", bits: 4096)
    static let serverKey = try! RSAPrivateKey(file: server.keyPEM)

    static let securedPolicies: [SecurityPolicy] = [.basic256Sha256, .aes128Sha256RsaOaep, .aes256Sha256RsaPss]
    static let securedModes: [MessageSecurityMode] = [.sign, .signAndEncrypt]

    static func serverSecurity(endpoints: [(SecurityPolicy, MessageSecurityMode)]? = nil, users: [String: String] = ["li.wei": "s3cret"],
                               trust: any CertificateTrust = AcceptAllCertificates()) -> ServerSecurity {
        ServerSecurity(endpoints: endpoints ?? securedPolicies.flatMap { policy in securedModes.map { (policy, $0) } },
                       certificate: server.der, privateKey: serverKey, applicationURI: server.applicationURI, trust: trust, users: users)
    }

    static func clientSecurity(_ policy: SecurityPolicy, _ mode: MessageSecurityMode, user: UserIdentity = .userName("li.wei", password: "s3cret"),
                               trust: any CertificateTrust = AcceptAllCertificates()) -> ClientSecurity {
        ClientSecurity(policy: policy, mode: mode, certificate: client.der, privateKey: clientKey,
                       applicationURI: client.applicationURI, trust: trust, user: user)
    }
}

/// A trust that refuses every certificate with one status.
struct RefuseAll: CertificateTrust {
    let status: StatusCode
    func check(peerCertificate der: [UInt8], expectedApplicationURI: String?) -> StatusCode? { status }
}

final class CryptoPrimitiveTests: XCTestCase {
    func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    func testKnownVectors() throws {
        // RFC 4231 test case 2.
        XCTAssertEqual(Crypto.hmacSha256(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)),
                       hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"))
        // The TLS 1.2 PRF (P_SHA256) vector: secret, "test label" + seed, 100 bytes.
        let prf = Crypto.pSha256(secret: hex("9bbe436ba940f017b17652849a71db35"),
                                 seed: Array("test label".utf8) + hex("a0ba9f936cda311827a6f796ffd5198c"), length: 100)
        XCTAssertEqual(prf, hex("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66"))
        // NIST SP 800-38A F.2.1 and F.2.5 (first block).
        let iv = hex("000102030405060708090a0b0c0d0e0f")
        let plain = hex("6bc1bee22e409f96e93d7e117393172a")
        let aes128 = try Crypto.aesCBC(encrypt: true, key: hex("2b7e151628aed2a6abf7158809cf4f3c"), iv: iv, plain)
        XCTAssertEqual(aes128, hex("7649abac8119b246cee98e9b12e9197d"))
        XCTAssertEqual(try Crypto.aesCBC(encrypt: false, key: hex("2b7e151628aed2a6abf7158809cf4f3c"), iv: iv, aes128), plain)
        let key256 = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
        XCTAssertEqual(try Crypto.aesCBC(encrypt: true, key: key256, iv: iv, plain), hex("f58c4c04d6e5f1ba779eabfb5f7bfbd6"))
        XCTAssertThrowsError(try Crypto.aesCBC(encrypt: true, key: key256, iv: iv, [UInt8](repeating: 0, count: 15)))
        XCTAssertEqual(Crypto.sha1(Array("abc".utf8)), hex("a9993e364706816aba3e25717850c26c9cd0d89d"))
    }

    func testRSAEncryptionAndSignatures() throws {
        let key = SecurityFixtures.clientKey
        let publicKey = try RSAPublicKey(certificate: SecurityFixtures.client.der)
        XCTAssertEqual(key.bits, 2048)
        XCTAssertTrue(key.matches(certificate: SecurityFixtures.client.der))
        XCTAssertFalse(key.matches(certificate: SecurityFixtures.server.der))
        let message = Array(0..<UInt8(250)) + Array(0..<UInt8(250))  // more than one block
        for padding in [RSAEncryptionPadding.oaepSha1, .oaepSha256] {
            let cipher = try publicKey.encrypt(message, padding: padding)
            XCTAssertEqual(cipher.count, 3 * 256, "\(padding)")
            XCTAssertEqual(try key.decrypt(cipher[...], padding: padding), message)
        }
        // OAEP-SHA-1 ciphertext does not decrypt as OAEP-SHA-256.
        let sha1Cipher = try publicKey.encrypt(message.prefix(100), padding: .oaepSha1)
        XCTAssertThrowsError(try key.decrypt(sha1Cipher[...], padding: .oaepSha256))
        for padding in [RSASignaturePadding.pkcs1v15, .pss] {
            let signature = try key.sign(message, padding: padding)
            XCTAssertEqual(signature.count, 256)
            XCTAssertTrue(publicKey.verify(signature, of: message, padding: padding))
            var tampered = message
            tampered[7] ^= 1
            XCTAssertFalse(publicKey.verify(signature, of: tampered, padding: padding))
        }
        XCTAssertFalse(publicKey.verify(try key.sign(message, padding: .pss), of: message, padding: .pkcs1v15))
        XCTAssertThrowsError(try RSAPublicKey(certificate: [1, 2, 3]))
        XCTAssertThrowsError(try RSAPrivateKey(pem: "not a key"))
    }

    func testPaddingRoundTrip() throws {
        for extra in [false, true] {
            for length in [0, 1, 15, 16, 200, 300] {
                var bytes = [UInt8](repeating: 0xAB, count: length)
                appendPadding(&bytes, blockSize: extra ? 446 : 16, signatureSize: 32, extra: extra)
                XCTAssertEqual((bytes.count + 32) % (extra ? 446 : 16), 0)
                try removePadding(&bytes, extra: extra)
                XCTAssertEqual(bytes, [UInt8](repeating: 0xAB, count: length))
            }
        }
        var bad: [UInt8] = [1, 2, 3, 3, 3]
        XCTAssertThrowsError(try removePadding(&bad, extra: false))
    }
}

/// The secure channel state machines wired to each other in memory, for each policy and mode.
final class SecureChannelSecurityTests: XCTestCase {
    struct Pair {
        var client: ClientSecureChannel
        var server: ServerSecureChannel
        var toServer: [[UInt8]] = []
        var clientEvents: [ChannelAction] = []
        var serverEvents: [ChannelAction] = []

        init(_ policy: SecurityPolicy, _ mode: MessageSecurityMode, serverSecurity: ServerSecurity = SecurityFixtures.serverSecurity(),
             serverCertificate: [UInt8] = SecurityFixtures.server.der, sendBuffer: UInt32 = 65535) throws {
            let security = try ChannelSecurity(policy: policy, mode: mode, localCertificate: SecurityFixtures.client.der,
                                               localKey: SecurityFixtures.clientKey, remoteCertificate: serverCertificate)
            client = ClientSecureChannel(endpointUrl: "opc.tcp://127.0.0.1:4840",
                                         limits: TransportLimits(receiveBufferSize: sendBuffer, sendBufferSize: sendBuffer),
                                         requestedLifetimeMs: 60_000, security: security)
            server = ServerSecureChannel(channelId: 9, security: serverSecurity)
        }

        /// Delivers actions both ways until quiet; returns what each side reported (not sends).
        mutating func run(_ fromClient: [ChannelAction], now: UInt64 = 0) {
            var toServer = fromClient
            while !toServer.isEmpty {
                var toClient: [ChannelAction] = []
                for action in toServer {
                    if case .send(let bytes) = action { toClient += server.receive(bytes, nowNs: now) } else { clientEvents.append(action) }
                }
                toServer = []
                for action in toClient {
                    if case .send(let bytes) = action { toServer += client.receive(bytes, nowNs: now) } else { serverEvents.append(action) }
                }
            }
        }
    }

    static func sends(_ actions: [ChannelAction]) -> [[UInt8]] {
        actions.compactMap { if case .send(let bytes) = $0 { bytes } else { nil } }
    }

    func testEveryPolicyAndModeCarriesMessagesBothWays() throws {
        let big = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for policy in SecurityFixtures.securedPolicies {
            for mode in SecurityFixtures.securedModes {
                var pair = try Pair(policy, mode, sendBuffer: 8192)
                pair.run(pair.client.start())
                XCTAssertEqual(pair.client.state, .open, "\(policy) \(mode): \(pair.clientEvents) \(pair.serverEvents)")
                XCTAssertEqual(pair.server.state, .open)
                XCTAssertEqual(pair.server.securityPolicy, policy)
                XCTAssertEqual(pair.server.securityMode, mode)
                // A small and a many-chunk message from the client, and an answer.
                for body in [[UInt8](Array("hello".utf8)), big] {
                    let chunks = try pair.client.frame(body, requestId: 5)
                    if mode == .signAndEncrypt {
                        // Encrypted: the body's bytes are not visible on the wire.
                        XCTAssertFalse(chunks[0].count > 40 && chunks[0][24...].starts(with: body.prefix(16)))
                    }
                    var received: [ChannelAction] = []
                    for chunk in chunks { received += pair.server.receive(chunk, nowNs: 0) }
                    XCTAssertEqual(received, [.message(requestId: 5, body: body)], "\(policy) \(mode) \(body.count)")
                }
                let answer = pair.server.respond(ReadResponse(results: [DataValue(.double(1.5))]), encodingId: ReadResponse.encodingId, requestId: 5)
                var back: [ChannelAction] = []
                for chunk in Self.sends(answer) { back += pair.client.receive(chunk, nowNs: 0) }
                guard case .message(5, let bytes)? = back.first else { return XCTFail("\(policy) \(mode): \(back)") }
                XCTAssertEqual(try decodeServiceResponse(bytes, as: ReadResponse.self).results.first?.value, .double(1.5))
            }
        }
    }

    func testTamperedChunkFailsTheSecurityChecks() throws {
        for mode in SecurityFixtures.securedModes {
            var pair = try Pair(.basic256Sha256, mode)
            pair.run(pair.client.start())
            var chunk = try pair.client.frame(Array("payload of a read".utf8), requestId: 3)[0]
            chunk[chunk.count - 40] ^= 0x01
            let actions = pair.server.receive(chunk, nowNs: 0)
            XCTAssertTrue(actions.contains(.closed(.badSecurityChecksFailed, "signature invalid")) ||
                          actions.contains { if case .closed(.badSecurityChecksFailed, _) = $0 { true } else { false } }, "\(mode): \(actions)")
            XCTAssertEqual(pair.server.state, .closed)
        }
        // A replayed chunk (its sequence number again) is refused too.
        var pair = try Pair(.aes256Sha256RsaPss, .signAndEncrypt)
        pair.run(pair.client.start())
        let chunk = try pair.client.frame([1, 2, 3], requestId: 4)[0]
        XCTAssertEqual(pair.server.receive(chunk, nowNs: 0), [.message(requestId: 4, body: [1, 2, 3])])
        XCTAssertTrue(pair.server.receive(chunk, nowNs: 0).contains { if case .closed(.badSequenceNumberInvalid, _) = $0 { true } else { false } })
    }

    func testRefusalsAreStatusesNotCrashes() throws {
        // A policy the server does not offer.
        var pair = try Pair(.aes128Sha256RsaOaep, .sign, serverSecurity: SecurityFixtures.serverSecurity(endpoints: [(.basic256Sha256, .sign)]))
        pair.run(pair.client.start())
        XCTAssertEqual(pair.client.failure, .badSecurityPolicyRejected)
        // A mode the server does not offer for the policy.
        pair = try Pair(.basic256Sha256, .signAndEncrypt, serverSecurity: SecurityFixtures.serverSecurity(endpoints: [(.basic256Sha256, .sign)]))
        pair.run(pair.client.start())
        XCTAssertEqual(pair.client.failure, .badSecurityModeRejected)
        // An untrusted client certificate: the trust's status.
        pair = try Pair(.basic256Sha256, .sign, serverSecurity: SecurityFixtures.serverSecurity(trust: RefuseAll(status: .badCertificateUntrusted)))
        pair.run(pair.client.start())
        XCTAssertEqual(pair.client.failure, .badCertificateUntrusted)
        // Encrypted for another server certificate: the server cannot match the thumbprint.
        pair = try Pair(.basic256Sha256, .sign, serverCertificate: SecurityFixtures.client.der)
        pair.run(pair.client.start())
        XCTAssertEqual(pair.client.failure, .badCertificateInvalid)
        // Garbage after a valid asymmetric header.
        var server = ServerSecureChannel(channelId: 1, security: SecurityFixtures.serverSecurity())
        var hello = BinaryWriter()
        HelloMessage(limits: TransportLimits(), endpointUrl: "opc.tcp://x").encode(to: &hello)
        _ = server.receive(TCPFrame(type: .hello, chunkType: UInt8(ascii: "F"), body: hello.bytes).encoded, nowNs: 0)
        var body = BinaryWriter()
        body.write(UInt32(0))
        SecurityHeader.asymmetric(policyUri: SecurityPolicy.basic256Sha256.uri, senderCertificate: SecurityFixtures.client.der,
                                  receiverThumbprint: Crypto.sha1(SecurityFixtures.server.der)).encode(to: &body)
        body.writeRaw([UInt8](repeating: 7, count: 256))
        let actions = server.receive(TCPFrame(type: .open, chunkType: UInt8(ascii: "F"), body: body.bytes).encoded, nowNs: 0)
        XCTAssertTrue(actions.contains { if case .closed(.badSecurityChecksFailed, _) = $0 { true } else { false } }, "\(actions)")
    }

    func testTokenRenewalKeepsTheOldTokenUntilTheClientUsesTheNew() throws {
        var pair = try Pair(.aes256Sha256RsaPss, .signAndEncrypt)
        pair.run(pair.client.start())
        let first = try XCTUnwrap(pair.client.token)
        // 75 % of the 60 s lifetime later the client renews.
        XCTAssertEqual(pair.client.renewDeadlineNs, 45_000 * 1_000_000)
        XCTAssertEqual(pair.client.tick(nowNs: 44_000 * 1_000_000), [])
        pair.run(pair.client.tick(nowNs: 45_000 * 1_000_000), now: 45_000 * 1_000_000)
        let second = try XCTUnwrap(pair.client.token)
        XCTAssertNotEqual(first.tokenId, second.tokenId)
        XCTAssertEqual(pair.server.tokens.map(\.tokenId), [first.tokenId, second.tokenId])
        // The server still answers with the old token, and the client reads it.
        func tokenId(_ chunk: [UInt8]) -> UInt32 { UInt32(chunk[12]) | UInt32(chunk[13]) << 8 | UInt32(chunk[14]) << 16 | UInt32(chunk[15]) << 24 }
        let early = Self.sends(pair.server.respond(CloseSessionResponse(), encodingId: CloseSessionResponse.encodingId, requestId: 8))
        XCTAssertEqual(tokenId(early[0]), first.tokenId)
        XCTAssertEqual(pair.client.receive(early[0], nowNs: 0).count, 1)
        // Once the client used the new one, the server switches and forgets the old.
        let chunk = try pair.client.frame([9], requestId: 9)[0]
        XCTAssertEqual(tokenId(chunk), second.tokenId)
        XCTAssertEqual(pair.server.receive(chunk, nowNs: 0), [.message(requestId: 9, body: [9])])
        XCTAssertEqual(pair.server.tokens.map(\.tokenId), [second.tokenId])
        let late = Self.sends(pair.server.respond(CloseSessionResponse(), encodingId: CloseSessionResponse.encodingId, requestId: 10))
        XCTAssertEqual(tokenId(late[0]), second.tokenId)
        XCTAssertEqual(pair.client.receive(late[0], nowNs: 0).count, 1)
        XCTAssertEqual(pair.client.state, .open)
    }

    func testKeysLargerThan2048BitsUseExtraPadding() throws {
        let big = SecurityFixtures.server4096
        let security = ServerSecurity(endpoints: [(.basic256Sha256, .signAndEncrypt)], certificate: big.der,
                                      privateKey: try RSAPrivateKey(file: big.keyPEM), applicationURI: big.applicationURI,
                                      trust: AcceptAllCertificates())
        var pair = try Pair(.basic256Sha256, .signAndEncrypt, serverSecurity: security, serverCertificate: big.der)
        pair.run(pair.client.start())
        XCTAssertEqual(pair.client.state, .open, "\(pair.clientEvents)")
        let chunk = try pair.client.frame(Array(repeating: 42, count: 1000), requestId: 2)
        XCTAssertEqual(chunk.flatMap { pair.server.receive($0, nowNs: 0) }, [.message(requestId: 2, body: Array(repeating: 42, count: 1000))])
    }
}

/// Seeded mutations of signed and encrypted chunks: every one is refused with a status or, where the
/// mutation missed the secured part, delivered intact; none crashes or delivers altered bytes.
final class SecureChunkMutationTests: XCTestCase {
    func testMutatedSecuredChunksAreRefusedCleanly() throws {
        var random = SplitMix64(seed: 0x5EC0)
        for (policy, mode) in [(SecurityPolicy.basic256Sha256, MessageSecurityMode.signAndEncrypt), (.aes256Sha256RsaPss, .sign),
                               (.aes128Sha256RsaOaep, .signAndEncrypt)] {
            var pair = try SecureChannelSecurityTests.Pair(policy, mode)
            pair.run(pair.client.start())
            let body = random.bytes(300)
            let chunk = try pair.client.frame(body, requestId: 11)[0]
            var refused = 0, unchanged = 0
            for _ in 0..<400 {
                var server = pair.server  // the state after the handshake, fresh for each mutation
                var mutated = chunk
                switch random.below(4) {
                case 0: mutated[8 + random.below(mutated.count - 8)] ^= UInt8(1 + random.below(255))  // one byte after the message header
                case 1: mutated = Array(mutated.prefix(8 + random.below(mutated.count - 8)))          // truncated (size field too)
                        mutated.replaceSubrange(4..<8, with: withUnsafeBytes(of: UInt32(mutated.count).littleEndian, Array.init))
                case 2: for _ in 0..<4 { mutated[16 + random.below(mutated.count - 16)] = UInt8(truncatingIfNeeded: random.next()) }
                default: mutated += random.bytes(16 * (1 + random.below(4)))                          // appended blocks
                        mutated.replaceSubrange(4..<8, with: withUnsafeBytes(of: UInt32(mutated.count).littleEndian, Array.init))
                }
                let actions = server.receive(mutated, nowNs: 0)
                if mutated == chunk {
                    unchanged += 1
                    continue
                }
                if actions.contains(where: { if case .closed(let status, _) = $0 { status.isBad } else { false } }) {
                    refused += 1
                } else {
                    XCTAssertTrue(actions.allSatisfy { if case .message(_, let bytes) = $0 { bytes == body } else { true } }, "\(policy) \(mode)")
                }
            }
            // Every changed chunk is refused: the signature covers all of it, headers included.
            XCTAssertEqual(refused + unchanged, 400, "\(policy) \(mode): \(refused) refused, \(unchanged) unchanged")
        }
    }
}
