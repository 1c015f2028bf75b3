import COpenSSL
import Foundation

// The cryptographic primitives of the OPC UA security policies (OPC UA Part 6, 6.1 and Part 7's policy
// tables), on OpenSSL's EVP interface. The protocol around them (padding, chunk layout, key derivation
// order) is ours: see SecureChannel.swift and docs/ARCHITECTURE.md ("OPC UA security").

/// A failure inside a primitive; the channel turns it into an OPC UA status (BadSecurityChecksFailed …).
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let detail: String

    init(_ operation: String, _ detail: String = "") {
        self.operation = operation
        var text = detail
        // The reasons OpenSSL queued on this thread, if any (the queue is left empty).
        let reason = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer in
            cossl_drain_errors(buffer.baseAddress!, buffer.count) > 0 ? String(cString: buffer.baseAddress!) : nil
        }
        if let reason { text = text.isEmpty ? reason : "\(text) (\(reason))" }
        self.detail = text
    }

    public var description: String { detail.isEmpty ? "\(operation) failed" : "\(operation) failed: \(detail)" }
}

/// An RSA private key (PEM or DER, PKCS#1 or PKCS#8), owned: the EVP_PKEY is freed with the wrapper.
// @unchecked Sendable: the key is never mutated after loading; OpenSSL allows concurrent use of one EVP_PKEY.
public final class RSAPrivateKey: @unchecked Sendable {
    let pkey: OpaquePointer

    /// Loads a PEM text (`-----BEGIN PRIVATE KEY-----` or `-----BEGIN RSA PRIVATE KEY-----`).
    public convenience init(pem: String) throws {
        let bytes = Array(pem.utf8)
        let key: OpaquePointer? = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else { throw CryptoError("private key", "not a PEM private key") }
        try self.init(owning: key)
    }

    /// Loads DER bytes (PKCS#1 RSAPrivateKey or PKCS#8 PrivateKeyInfo).
    public convenience init(der: [UInt8]) throws {
        let key: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_AutoPrivateKey(nil, &pointer, buffer.count)
        }
        guard let key else { throw CryptoError("private key", "not a DER private key") }
        try self.init(owning: key)
    }

    /// Loads a key file: PEM when it starts with `-----BEGIN`, DER otherwise.
    public convenience init(file path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw CryptoError("private key", "cannot read \(path)") }
        let bytes = [UInt8](data)
        if bytes.starts(with: Array("-----BEGIN".utf8)) {
            try self.init(pem: String(decoding: bytes, as: UTF8.self))
        } else {
            try self.init(der: bytes)
        }
    }

    private init(owning key: OpaquePointer) throws {
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA else {
            EVP_PKEY_free(key)
            throw CryptoError("private key", "not an RSA key")
        }
        pkey = key
    }

    deinit { EVP_PKEY_free(pkey) }

    /// The modulus length in bits (2048, 4096 …).
    public var bits: Int { Int(EVP_PKEY_get_bits(pkey)) }
    /// The modulus length in bytes: the size of a signature and of one ciphertext block.
    public var byteCount: Int { Int(EVP_PKEY_get_size(pkey)) }

    /// Whether this key belongs to the certificate `der` (their public parts agree).
    public func matches(certificate der: [UInt8]) -> Bool {
        guard let publicKey = try? RSAPublicKey(certificate: der) else { return false }
        return EVP_PKEY_eq(pkey, publicKey.pkey) == 1
    }

    /// Signs `data` with SHA-256 (PKCS#1 v1.5 or PSS with a 32-byte salt).
    public func sign(_ data: some ContiguousBytes, padding: RSASignaturePadding) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw CryptoError("sign") }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        guard EVP_DigestSignInit(context, &keyContext, EVP_sha256(), nil, pkey) == 1, let keyContext else { throw CryptoError("sign") }
        try padding.apply(to: keyContext)
        var length = 0
        return try data.withUnsafeBytes { raw -> [UInt8] in
            let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            guard EVP_DigestSign(context, nil, &length, base, raw.count) == 1 else { throw CryptoError("sign") }
            var signature = [UInt8](repeating: 0, count: length)
            guard EVP_DigestSign(context, &signature, &length, base, raw.count) == 1 else { throw CryptoError("sign") }
            return Array(signature.prefix(length))
        }
    }

    /// Decrypts one RSA block of `byteCount` bytes with OAEP (SHA-1 or SHA-256).
    public func decryptBlock(_ block: some ContiguousBytes, padding: RSAEncryptionPadding) throws -> [UInt8] {
        guard let context = EVP_PKEY_CTX_new(pkey, nil) else { throw CryptoError("decrypt") }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_decrypt_init(context) == 1 else { throw CryptoError("decrypt") }
        try padding.apply(to: context)
        return try block.withUnsafeBytes { raw -> [UInt8] in
            let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            var length = byteCount
            var plain = [UInt8](repeating: 0, count: length)
            guard EVP_PKEY_decrypt(context, &plain, &length, base, raw.count) == 1 else { throw CryptoError("decrypt") }
            return Array(plain.prefix(length))
        }
    }

    /// Decrypts a message of whole RSA blocks (each `byteCount` bytes) and joins the plaintexts.
    public func decrypt(_ data: ArraySlice<UInt8>, padding: RSAEncryptionPadding) throws -> [UInt8] {
        let block = byteCount
        guard block > 0, data.count % block == 0 else { throw CryptoError("decrypt", "\(data.count) bytes are not whole \(block)-byte blocks") }
        var plain: [UInt8] = []
        plain.reserveCapacity(data.count)
        var start = data.startIndex
        while start < data.endIndex {
            plain += try decryptBlock(Array(data[start..<start + block]), padding: padding)
            start += block
        }
        return plain
    }
}

/// An RSA public key, taken from an X.509 certificate (DER).
// @unchecked Sendable: immutable after loading.
public final class RSAPublicKey: @unchecked Sendable {
    let pkey: OpaquePointer

    /// The subject public key of the DER certificate `der`; throws for a malformed certificate or a non-RSA key.
    public init(certificate der: [UInt8]) throws {
        let certificate: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &pointer, buffer.count)
        }
        guard let certificate else { throw CryptoError("certificate", "not a DER X.509 certificate") }
        defer { X509_free(certificate) }
        guard let key = X509_get_pubkey(certificate) else { throw CryptoError("certificate", "no public key") }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA else {
            EVP_PKEY_free(key)
            throw CryptoError("certificate", "not an RSA key")
        }
        pkey = key
    }

    deinit { EVP_PKEY_free(pkey) }

    public var bits: Int { Int(EVP_PKEY_get_bits(pkey)) }
    public var byteCount: Int { Int(EVP_PKEY_get_size(pkey)) }

    /// Checks an RSA-SHA-256 signature; false for a wrong one (never throws for that).
    public func verify(_ signature: some ContiguousBytes, of data: some ContiguousBytes, padding: RSASignaturePadding) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        guard EVP_DigestVerifyInit(context, &keyContext, EVP_sha256(), nil, pkey) == 1, let keyContext,
              (try? padding.apply(to: keyContext)) != nil else {
            ERR_clear_error()
            return false
        }
        let ok = signature.withUnsafeBytes { sig in
            data.withUnsafeBytes { raw in
                EVP_DigestVerify(context, sig.baseAddress?.assumingMemoryBound(to: UInt8.self), sig.count,
                                 raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count) == 1
            }
        }
        ERR_clear_error()
        return ok
    }

    /// The largest plaintext one RSA block takes with `padding`.
    public func plainBlockSize(_ padding: RSAEncryptionPadding) -> Int { byteCount - padding.overhead }

    /// Encrypts `data` in blocks of ``plainBlockSize(_:)`` bytes; the result is whole `byteCount`-byte blocks.
    public func encrypt(_ data: some Collection<UInt8>, padding: RSAEncryptionPadding) throws -> [UInt8] {
        let plainBlock = plainBlockSize(padding)
        guard plainBlock > 0 else { throw CryptoError("encrypt", "key too small") }
        let bytes = Array(data)
        var cipher: [UInt8] = []
        cipher.reserveCapacity((bytes.count + plainBlock - 1) / plainBlock * byteCount)
        guard let context = EVP_PKEY_CTX_new(pkey, nil) else { throw CryptoError("encrypt") }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_encrypt_init(context) == 1 else { throw CryptoError("encrypt") }
        try padding.apply(to: context)
        var start = 0
        repeat {
            let end = min(bytes.count, start + plainBlock)
            var length = byteCount
            var block = [UInt8](repeating: 0, count: length)
            let ok = bytes[start..<end].withUnsafeBufferPointer { chunk in
                EVP_PKEY_encrypt(context, &block, &length, chunk.baseAddress, chunk.count) == 1
            }
            guard ok else { throw CryptoError("encrypt") }
            cipher += block.prefix(length)
            start = end
        } while start < bytes.count
        return cipher
    }
}

/// RSA signature padding of the policies (hash: SHA-256 for all three).
public enum RSASignaturePadding: Sendable {
    case pkcs1v15
    /// PSS with MGF1-SHA-256 and a salt as long as the hash (32 bytes).
    case pss

    func apply(to context: OpaquePointer) throws {
        switch self {
        case .pkcs1v15:
            guard EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PADDING) == 1 else { throw CryptoError("padding") }
        case .pss:
            guard EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PSS_PADDING) == 1,
                  EVP_PKEY_CTX_set_rsa_mgf1_md(context, EVP_sha256()) == 1,
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(context, 32) == 1 else { throw CryptoError("padding") }
        }
    }
}

/// RSA encryption padding of the policies.
public enum RSAEncryptionPadding: Sendable {
    /// OAEP with SHA-1 (and MGF1-SHA-1): Basic256Sha256, Aes128_Sha256_RsaOaep.
    case oaepSha1
    /// OAEP with SHA-256 (and MGF1-SHA-256): Aes256_Sha256_RsaPss.
    case oaepSha256

    /// Bytes of a block taken by the padding: 2 + 2 × the hash length.
    public var overhead: Int {
        switch self {
        case .oaepSha1: 42
        case .oaepSha256: 66
        }
    }

    func apply(to context: OpaquePointer) throws {
        guard EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_OAEP_PADDING) == 1 else { throw CryptoError("padding") }
        if self == .oaepSha256 {
            guard EVP_PKEY_CTX_set_rsa_oaep_md(context, EVP_sha256()) == 1,
                  EVP_PKEY_CTX_set_rsa_mgf1_md(context, EVP_sha256()) == 1 else { throw CryptoError("padding") }
        }
    }
}

/// Symmetric primitives and hashes.
public enum Crypto {
    /// `count` bytes from OpenSSL's CSPRNG.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        if count > 0 && RAND_bytes(&bytes, Int32(count)) != 1 {
            // RAND_bytes fails only when the system has no entropy source: nothing secure can continue.
            fatalError("RAND_bytes failed: \(CryptoError("random"))")
        }
        return bytes
    }

    /// SHA-1 of `data` (certificate thumbprints).
    public static func sha1(_ data: some ContiguousBytes) -> [UInt8] { digest(data, EVP_sha1(), 20) }

    /// SHA-256 of `data`.
    public static func sha256(_ data: some ContiguousBytes) -> [UInt8] { digest(data, EVP_sha256(), 32) }

    private static func digest(_ data: some ContiguousBytes, _ md: OpaquePointer?, _ size: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var length: UInt32 = 0
        _ = data.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &out, &length, md, nil) }
        return out
    }

    /// HMAC-SHA-256 of `data` under `key` (32 bytes).
    public static func hmacSha256(key: [UInt8], _ data: some ContiguousBytes) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 32
        data.withUnsafeBytes { raw in
            _ = HMAC(EVP_sha256(), key, Int32(key.count), raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count, &out, &length)
        }
        return out
    }

    /// P_SHA256(secret, seed) of RFC 5246 section 5, cut to `length` bytes: the OPC UA key derivation.
    public static func pSha256(secret: [UInt8], seed: [UInt8], length: Int) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(length + 32)
        var a = hmacSha256(key: secret, seed)  // A(1)
        while output.count < length {
            output += hmacSha256(key: secret, a + seed)
            a = hmacSha256(key: secret, a)
        }
        return Array(output.prefix(length))
    }

    /// AES-CBC (128 or 256 by the key's length) without padding: `data` must be whole 16-byte blocks.
    public static func aesCBC(encrypt: Bool, key: [UInt8], iv: [UInt8], _ data: some ContiguousBytes) throws -> [UInt8] {
        let cipher: OpaquePointer?
        switch key.count {
        case 16: cipher = EVP_aes_128_cbc()
        case 32: cipher = EVP_aes_256_cbc()
        default: throw CryptoError("aes", "key of \(key.count) bytes")
        }
        guard iv.count == 16 else { throw CryptoError("aes", "iv of \(iv.count) bytes") }
        guard let context = EVP_CIPHER_CTX_new() else { throw CryptoError("aes") }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_CipherInit_ex(context, cipher, nil, key, iv, encrypt ? 1 : 0) == 1,
              EVP_CIPHER_CTX_set_padding(context, 0) == 1 else { throw CryptoError("aes") }
        return try data.withUnsafeBytes { raw -> [UInt8] in
            guard raw.count % 16 == 0 else { throw CryptoError("aes", "\(raw.count) bytes are not whole blocks") }
            var out = [UInt8](repeating: 0, count: raw.count + 16)
            var written: Int32 = 0
            var total = 0
            guard EVP_CipherUpdate(context, &out, &written, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(raw.count)) == 1 else {
                throw CryptoError("aes")
            }
            total = Int(written)
            let final = out.withUnsafeMutableBufferPointer { buffer in
                EVP_CipherFinal_ex(context, buffer.baseAddress! + total, &written)
            }
            guard final == 1 else { throw CryptoError("aes") }
            total += Int(written)
            return Array(out.prefix(total))
        }
    }

    /// The DER bytes of the first certificate in a PEM text, nil if there is none.
    public static func certificateDER(pem: String) -> [UInt8]? {
        let bytes = Array(pem.utf8)
        return bytes.withUnsafeBytes { raw -> [UInt8]? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            guard let certificate = PEM_read_bio_X509(bio, nil, nil, nil) else { ERR_clear_error(); return nil }
            defer { X509_free(certificate) }
            var out: UnsafeMutablePointer<UInt8>?
            let length = i2d_X509(certificate, &out)
            guard length > 0, let out else { return nil }
            defer { CRYPTO_free(out, nil, 0) }
            return Array(UnsafeBufferPointer(start: out, count: Int(length)))
        }
    }

    /// A certificate file's DER bytes: PEM or DER as found.
    public static func certificateDER(file path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CryptoError("certificate", "cannot read \(path)") }
        let bytes = [UInt8](data)
        if bytes.starts(with: Array("-----BEGIN".utf8)) {
            guard let der = certificateDER(pem: String(decoding: bytes, as: UTF8.self)) else { throw CryptoError("certificate", "no certificate in \(path)") }
            return der
        }
        return bytes
    }
}
