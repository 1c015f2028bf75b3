import COpenSSL
import Foundation

// How a secure channel signs and encrypts its chunks (OPC UA Part 6, 6.7): the algorithms of each
// policy, the symmetric keys of a token, and the chunk layouts. SecureChannelCore's seal()/unseal()
// are the only callers; docs/ARCHITECTURE.md ("OPC UA security") shows where this sits.

/// The algorithms and sizes of a policy other than None.
struct PolicyAlgorithms: Sendable {
    var signaturePadding: RSASignaturePadding
    var encryptionPadding: RSAEncryptionPadding
    var signingKeyLength = 32
    var encryptingKeyLength: Int
    var blockSize = 16
    var symmetricSignatureSize = 32
    var nonceLength = 32
    var minKeyBits = 2048
    var maxKeyBits = 4096
    var asymmetricSignatureURI: String
    var asymmetricEncryptionURI: String
}

extension SecurityPolicy {
    /// The algorithms of the policy; nil for None.
    var algorithms: PolicyAlgorithms? {
        let rsaSha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        let oaep = "http://www.w3.org/2001/04/xmlenc#rsa-oaep"
        switch self {
        case .none:
            return nil
        case .basic256Sha256:
            return PolicyAlgorithms(signaturePadding: .pkcs1v15, encryptionPadding: .oaepSha1, encryptingKeyLength: 32,
                                    asymmetricSignatureURI: rsaSha256, asymmetricEncryptionURI: oaep)
        case .aes128Sha256RsaOaep:
            return PolicyAlgorithms(signaturePadding: .pkcs1v15, encryptionPadding: .oaepSha1, encryptingKeyLength: 16,
                                    asymmetricSignatureURI: rsaSha256, asymmetricEncryptionURI: oaep)
        case .aes256Sha256RsaPss:
            return PolicyAlgorithms(signaturePadding: .pss, encryptionPadding: .oaepSha256, encryptingKeyLength: 32,
                                    asymmetricSignatureURI: "http://opcfoundation.org/UA/security/rsa-pss-sha2-256",
                                    asymmetricEncryptionURI: "http://opcfoundation.org/UA/security/rsa-oaep-sha2-256")
        }
    }
}

/// The RSA encryption padding named by an encryption algorithm URI (user token secrets).
func encryptionPadding(algorithmURI: String) -> RSAEncryptionPadding? {
    switch algorithmURI {
    case "http://www.w3.org/2001/04/xmlenc#rsa-oaep": .oaepSha1
    case "http://opcfoundation.org/UA/security/rsa-oaep-sha2-256": .oaepSha256
    default: nil
    }
}

/// One direction's symmetric keys of a token.
struct SymmetricKeys: Sendable, Equatable {
    var signingKey: [UInt8]
    var encryptingKey: [UInt8]
    var iv: [UInt8]
}

/// The keys of one token: what this end secures with (`local`) and what it checks with (`remote`).
struct TokenKeys: Sendable, Equatable {
    var local: SymmetricKeys
    var remote: SymmetricKeys

    /// Derives both sides' keys from the nonces (Part 6, 6.7.5): the client's keys are
    /// P_SHA256(serverNonce, clientNonce), the server's P_SHA256(clientNonce, serverNonce).
    init(_ algorithms: PolicyAlgorithms, clientNonce: [UInt8], serverNonce: [UInt8], isClient: Bool) {
        func derive(secret: [UInt8], seed: [UInt8]) -> SymmetricKeys {
            let sign = algorithms.signingKeyLength, encrypt = algorithms.encryptingKeyLength
            let bytes = Crypto.pSha256(secret: secret, seed: seed, length: sign + encrypt + algorithms.blockSize)
            return SymmetricKeys(signingKey: Array(bytes[0..<sign]), encryptingKey: Array(bytes[sign..<sign + encrypt]),
                                 iv: Array(bytes[(sign + encrypt)...]))
        }
        let client = derive(secret: serverNonce, seed: clientNonce)
        let server = derive(secret: clientNonce, seed: serverNonce)
        local = isClient ? client : server
        remote = isClient ? server : client
    }
}

/// The security of one channel: policy and mode, this end's certificate and key, the peer's.
struct ChannelSecurity: Sendable {
    var policy: SecurityPolicy = .none
    /// `.none` with policy None; Sign or SignAndEncrypt otherwise (a server learns it from the OPN request).
    var mode: MessageSecurityMode = .none
    var localCertificate: [UInt8]?
    var localKey: RSAPrivateKey?
    var remoteCertificate: [UInt8]?
    var remoteKey: RSAPublicKey?

    init() {}

    init(policy: SecurityPolicy, mode: MessageSecurityMode, localCertificate: [UInt8], localKey: RSAPrivateKey,
         remoteCertificate: [UInt8]) throws {
        self.policy = policy
        self.mode = mode
        self.localCertificate = localCertificate
        self.localKey = localKey
        self.remoteCertificate = remoteCertificate
        do { remoteKey = try RSAPublicKey(certificate: remoteCertificate) } catch {
            throw ChannelFailure(.badCertificateInvalid, "peer certificate: \(error)")
        }
        if let algorithms = policy.algorithms, let remoteKey {
            guard (algorithms.minKeyBits...algorithms.maxKeyBits).contains(remoteKey.bits) else {
                throw ChannelFailure(.badCertificatePolicyCheckFailed, "peer key of \(remoteKey.bits) bits outside \(algorithms.minKeyBits)…\(algorithms.maxKeyBits) for \(policy.rawValue)")
            }
        }
    }

    var isSecure: Bool { policy != .none }
    var signs: Bool { isSecure && (mode == .sign || mode == .signAndEncrypt) }
    var encrypts: Bool { isSecure && mode == .signAndEncrypt }
}

/// Compares in time independent of where the bytes differ.
func constantTimeEqual(_ a: ArraySlice<UInt8>, _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, b.count) == 0 } }
}

/// The 8-byte message header of a chunk whose total size is `size`.
func messageHeader(_ type: TCPMessageType, chunkType: UInt8, size: Int) -> [UInt8] {
    var writer = BinaryWriter(capacity: 8)
    writer.writeRaw(Array(type.rawValue.utf8))
    writer.write(chunkType)
    writer.write(UInt32(size))
    return writer.bytes
}

/// Removes `PaddingSize | Padding | [ExtraPaddingSize]` from the end of `plain` (the signature already
/// removed), checking every padding byte. Throws BadSecurityChecksFailed on a malformed padding.
func removePadding(_ plain: inout [UInt8], extra: Bool) throws {
    let overhead = extra ? 2 : 1
    guard plain.count >= overhead else { throw ChannelFailure(.badSecurityChecksFailed, "chunk too short for its padding") }
    let low = plain[plain.count - overhead]
    let size = Int(low) | (extra ? Int(plain[plain.count - 1]) << 8 : 0)
    let total = size + overhead
    guard total <= plain.count else { throw ChannelFailure(.badSecurityChecksFailed, "padding of \(size) bytes exceeds the chunk") }
    let start = plain.count - total
    guard plain[start..<(start + size + 1)].allSatisfy({ $0 == low }) else { throw ChannelFailure(.badSecurityChecksFailed, "bad padding") }
    plain.removeLast(total)
}

/// Appends the padding that makes `count + padding + signatureSize` a multiple of `blockSize`.
func appendPadding(_ plain: inout [UInt8], blockSize: Int, signatureSize: Int, extra: Bool) {
    let overhead = extra ? 2 : 1
    let total = plain.count + overhead + signatureSize
    let size = (blockSize - total % blockSize) % blockSize
    plain.append(contentsOf: repeatElement(UInt8(truncatingIfNeeded: size), count: size + 1))
    if extra { plain.append(UInt8(truncatingIfNeeded: size >> 8)) }
}
