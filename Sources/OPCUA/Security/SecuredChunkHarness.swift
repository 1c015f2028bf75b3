import Foundation

/// Both ends of one secured channel with fixed keys, for fuzzing the receive path of signed and
/// encrypted chunks (`Tests/fuzz/opcua_secure.swift`, `Tests/OPCUATests/SecureFuzzTests.swift`; README "Fuzzing").
///
/// The sending end seals OPN (asymmetric: the client's key signs, the server's certificate encrypts)
/// and MSG/CLO chunks (symmetric: keys derived from two fixed nonces, token 1 of channel 1); the
/// receiving end is a fresh server-side ``SecureChannelCore`` per input that decrypts, checks the
/// signature and padding, and assembles messages. Inputs sealed with the same certificates and keys
/// get past the signature check, so a fuzzer mutating them reaches padding, sequence and assembly code.
public struct SecuredChunkHarness: Sendable {
    public let policy: SecurityPolicy
    public let mode: MessageSecurityMode
    private var sender: SecureChannelCore
    private let receiver: SecureChannelCore

    /// What a receiving end made of some bytes: the messages it assembled, and the status it failed with.
    public struct Outcome: Sendable, Equatable {
        public var messages: [[UInt8]] = []
        public var failure: StatusCode?
    }

    /// The policies and modes the fuzz harness covers; an input's first byte picks one (modulo the count).
    public static let fuzzCases: [(SecurityPolicy, MessageSecurityMode)] = [
        (.basic256Sha256, .signAndEncrypt), (.basic256Sha256, .sign), (.aes128Sha256RsaOaep, .signAndEncrypt),
        (.aes256Sha256RsaPss, .signAndEncrypt), (.aes256Sha256RsaPss, .sign),
    ]

    /// The nonces the token's keys are derived from (fixed, so sealed seeds stay valid across runs).
    static let clientNonce = [UInt8](repeating: 0xC1, count: 32)
    static let serverNonce = [UInt8](repeating: 0x5E, count: 32)

    /// - Throws: when a certificate does not parse or its key does not fit the policy.
    public init(policy: SecurityPolicy, mode: MessageSecurityMode, clientCertificate: [UInt8], clientKey: RSAPrivateKey,
                serverCertificate: [UInt8], serverKey: RSAPrivateKey) throws {
        self.policy = policy
        self.mode = mode
        let limits = TransportLimits()
        let clientSecurity = try ChannelSecurity(policy: policy, mode: mode, localCertificate: clientCertificate, localKey: clientKey,
                                                 remoteCertificate: serverCertificate)
        let serverSecurity = try ChannelSecurity(policy: policy, mode: mode, localCertificate: serverCertificate, localKey: serverKey,
                                                 remoteCertificate: clientCertificate)
        var sender = SecureChannelCore(channelId: 1, limits: limits, security: clientSecurity)
        var receiver = SecureChannelCore(channelId: 1, limits: limits, security: serverSecurity)
        let token = ChannelSecurityToken(channelId: 1, tokenId: 1, createdAt: DateTime(ticks: 0), revisedLifetime: 600_000)
        if let algorithms = policy.algorithms {
            sender.install(token, keys: TokenKeys(algorithms, clientNonce: Self.clientNonce, serverNonce: Self.serverNonce, isClient: true))
            receiver.install(token, keys: TokenKeys(algorithms, clientNonce: Self.clientNonce, serverNonce: Self.serverNonce, isClient: false))
        } else {
            sender.install(token)
            receiver.install(token)
        }
        self.sender = sender
        self.receiver = receiver
    }

    /// Seals `message` as chunks of `type` (OPN, MSG or CLO) from the client end: the bytes as they go on the wire.
    public mutating func seal(_ type: TCPMessageType, requestId: UInt32, message: [UInt8], maxChunkCount: Int = 16) throws -> [UInt8] {
        try sender.seal(type, requestId: requestId, message: message, maxChunkCount: maxChunkCount).flatMap { $0 }
    }

    /// Feeds `bytes` to a fresh server end. Never traps on any input; stops at the first failure.
    public func receive(_ bytes: [UInt8]) -> Outcome {
        var core = receiver
        var outcome = Outcome()
        core.append(bytes)
        do {
            while let frame = try core.nextFrame() {
                switch frame.type {
                case .open:
                    if let message = try core.receiveOpen(frame) { outcome.messages.append(message.body) }
                case .message, .close:
                    if let message = try core.receiveMessage(frame, retireOlderTokens: true) { outcome.messages.append(message.body) }
                case .hello, .acknowledge, .error, .reverseHello:
                    continue
                }
            }
        } catch let failure as ChannelFailure {
            outcome.failure = failure.status
        } catch let status as StatusCode {
            outcome.failure = status
        } catch {
            outcome.failure = .badDecodingError
        }
        return outcome
    }
}
