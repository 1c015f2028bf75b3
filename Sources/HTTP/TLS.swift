import COpenSSL
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// An OpenSSL failure: what was being done and OpenSSL's reasons (its error queue, emptied).
public struct TLSError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }

    /// `context: reason; reason` from the calling thread's OpenSSL error queue, which it empties.
    static func fromQueue(_ context: String) -> TLSError {
        let reasons = TLSError.drainQueue()
        return TLSError(reasons.isEmpty ? context : "\(context): \(reasons)")
    }

    /// The reasons on the calling thread's OpenSSL error queue, oldest first, as "reason; reason"
    /// (empty when there were none); the queue is left empty.
    static func drainQueue() -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { text in
            cossl_drain_errors(text.baseAddress!, text.count)
            return String(cString: text.baseAddress!)
        }
    }
}

/// The server side of HTTPS (`--tls-cert`, `--tls-key`; README "HTTPS"): one OpenSSL context with
/// the certificate chain and its key, shared by every loop of an ``HTTPServer``.
///
/// TLS 1.2 and 1.3 only; no renegotiation, no compression; ECDHE key exchange with AES-GCM or
/// ChaCha20 under TLS 1.2. Throws a ``TLSError`` naming the file when the certificate or the key
/// cannot be read or do not belong together.
// @unchecked Sendable: the SSL_CTX is configured in init and never changed after; OpenSSL makes
// sessions from one context on several threads safely.
public final class TLSServerContext: @unchecked Sendable {
    let context: OpaquePointer
    let socketMethod: OpaquePointer
    public let certificateFile: String
    public let keyFile: String

    public init(certificateFile: String, keyFile: String) throws {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        ERR_clear_error()
        guard let context = cossl_server_context_new() else { throw TLSError.fromQueue("TLS: cannot make a server context") }
        guard let method = cossl_socket_method_new() else {
            SSL_CTX_free(context)
            throw TLSError.fromQueue("TLS: cannot make the socket BIO method")
        }
        do {
            guard SSL_CTX_set_cipher_list(context, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL") == 1 else {
                throw TLSError.fromQueue("TLS: cipher list")
            }
            // The key first: a certificate that does not match it is then reported by the check below.
            guard SSL_CTX_use_PrivateKey_file(context, keyFile, COSSL_FILETYPE_PEM) == 1 else {
                throw TLSError.fromQueue("--tls-key \(keyFile): not a readable PEM private key")
            }
            guard SSL_CTX_use_certificate_chain_file(context, certificateFile) == 1 else {
                throw TLSError.fromQueue("--tls-cert \(certificateFile): not a readable PEM certificate")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw TLSError.fromQueue("--tls-key \(keyFile) does not belong to the certificate in \(certificateFile)")
            }
        } catch {
            SSL_CTX_free(context)
            BIO_meth_free(method)
            throw error
        }
        self.context = context
        socketMethod = method
    }

    deinit {
        SSL_CTX_free(context)
        BIO_meth_free(socketMethod)
    }

    /// A server session on an accepted non-blocking socket, before its handshake. The caller keeps
    /// the socket (``TLSSession/free()`` does not close it).
    func session(fd: Int32) throws -> TLSSession {
        ERR_clear_error()
        guard let ssl = SSL_new(context) else { throw TLSError.fromQueue("TLS: SSL_new") }
        guard cossl_attach_socket(ssl, socketMethod, fd) == 1 else {
            SSL_free(ssl)
            throw TLSError.fromQueue("TLS: cannot attach the socket")
        }
        SSL_set_accept_state(ssl)
        return TLSSession(ssl: ssl)
    }
}

/// One connection's TLS state over a non-blocking socket; touched only by its loop's thread.
///
/// Every call empties the thread's OpenSSL error queue first, so one connection's failure never
/// shows up as another's. Reads and writes answer like ``syscall(_:context:_:)``: `.wouldBlock`
/// when the socket is not ready (``wantsWrite`` says which way the handshake or a read waits).
final class TLSSession {
    /// What a handshake step came to.
    enum Handshake: Equatable {
        case established
        /// Call again when the socket is readable (``wantsWrite`` false) or writable (true).
        case waiting
        /// The client spoke plain HTTP to the TLS port.
        case plainHTTP
        case failed(String)
    }

    private var ssl: OpaquePointer?
    private(set) var established = false
    /// The handshake, or a read, waits until the socket is writable (not readable).
    var wantsWrite = false
    /// A fatal error happened: no close_notify is sent at close.
    private var broken = false

    init(ssl: OpaquePointer) { self.ssl = ssl }

    deinit { assert(ssl == nil, "TLSSession freed without free()") }

    /// Advances the handshake as far as the socket allows.
    func handshake() -> Handshake {
        guard let ssl else { return .failed("closed") }
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            established = true
            wantsWrite = false
            return .established
        }
        let code = SSL_get_error(ssl, result)
        switch code {
        case COSSL_ERROR_WANT_READ:
            wantsWrite = false
            return .waiting
        case COSSL_ERROR_WANT_WRITE:
            wantsWrite = true
            return .waiting
        default:
            broken = true
            let first = ERR_peek_error()
            if first != 0 && cossl_is_http_request(first) != 0 {
                ERR_clear_error()
                return .plainHTTP
            }
            if code == COSSL_ERROR_SYSCALL {
                let number = cossl_errno()
                ERR_clear_error()
                return .failed(number == 0 ? "the client closed during the handshake" : String(cString: strerror(number)))
            }
            return .failed(TLSError.drainQueue())
        }
    }

    /// Bytes OpenSSL holds that the socket will not report again (read ahead): read on before waiting.
    var hasPending: Bool {
        guard let ssl else { return false }
        return SSL_has_pending(ssl) == 1
    }

    /// One `SSL_read` into `buffer`: `.done(0)` at the end of the stream. Reads ahead: after
    /// `.done(n)`, ``hasPending`` says whether more is buffered here rather than in the socket.
    func read(into buffer: UnsafeMutableRawBufferPointer, context: @autoclosure () -> String) throws -> IOResult<Int> {
        guard let ssl else { return .done(0) }
        ERR_clear_error()
        let result = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        if result > 0 { return .done(Int(result)) }
        switch SSL_get_error(ssl, result) {
        case COSSL_ERROR_WANT_READ:
            return .wouldBlock
        case COSSL_ERROR_WANT_WRITE:
            // OpenSSL must send first (a TLS 1.3 key update on a full socket): wait for writable.
            wantsWrite = true
            return .wouldBlock
        case COSSL_ERROR_ZERO_RETURN:
            return .done(0)
        case COSSL_ERROR_SYSCALL:
            broken = true
            let number = cossl_errno()
            ERR_clear_error()
            if number == 0 { return .done(0) }
            throw SystemError(call: "SSL_read", errno: number, context: context())
        default:
            broken = true
            throw TLSError.fromQueue("\(context()): SSL_read")
        }
    }

    /// One `SSL_write` of up to `count` bytes (partial writes on): the bytes taken. After
    /// `.wouldBlock` the caller must offer the same bytes again.
    func write(_ bytes: UnsafeRawPointer, count: Int, context: @autoclosure () -> String) throws -> IOResult<Int> {
        guard let ssl else { throw SystemError(call: "SSL_write", errno: EBADF, context: context()) }
        guard count > 0 else { return .done(0) }
        ERR_clear_error()
        let result = SSL_write(ssl, bytes, Int32(clamping: count))
        if result > 0 { return .done(Int(result)) }
        switch SSL_get_error(ssl, result) {
        case COSSL_ERROR_WANT_WRITE, COSSL_ERROR_WANT_READ:
            // WANT_READ cannot happen without renegotiation (refused); treated as "not now".
            return .wouldBlock
        case COSSL_ERROR_SYSCALL:
            broken = true
            let number = cossl_errno()
            ERR_clear_error()
            throw SystemError(call: "SSL_write", errno: number == 0 ? EPIPE : number, context: context())
        default:
            broken = true
            throw TLSError.fromQueue("\(context()): SSL_write")
        }
    }

    /// Sends close_notify if the socket takes it now (never waits).
    func shutdown() {
        guard let ssl, established, !broken else { return }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
        broken = true
    }

    /// Sends close_notify when it can and frees the session (not the socket). Call once.
    func free() {
        guard let ssl else { return }
        shutdown()
        SSL_free(ssl)
        self.ssl = nil
    }
}
