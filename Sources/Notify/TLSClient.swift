import COpenSSL
import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// The trust of one delivery lane's `https://` receivers (README "Notifications"): an OpenSSL
/// client context that verifies the receiver's certificate chain against the system's CA store
/// (`/etc/ssl/certs`) or, with a `caFile`, against the certificates in that file only.
///
/// TLS 1.2 and 1.3; the peer's certificate is always verified and its name checked against the
/// URL's host (a DNS name through SNI and the certificate's names, an IPv4 address against its IP
/// addresses). Made by a lane on its own thread and used only there.
package final class TLSClientContext {
    let context: OpaquePointer
    let socketMethod: OpaquePointer
    /// nil: the system's CA store.
    let caFile: String?

    /// The system's CA store (Debian: a folder of hashed links and one bundle file).
    static let systemFolder = "/etc/ssl/certs"
    static let systemBundle = "/etc/ssl/certs/ca-certificates.crt"

    /// `anchorAnyInFile`: every certificate in `caFile` is a trust anchor, also one that is not a
    /// root (X509_V_FLAG_PARTIAL_CHAIN): a node of a group trusts the certificate chain it serves
    /// itself (README "Two nodes").
    package init(caFile: String?, anchorAnyInFile: Bool = false) throws {
        self.caFile = caFile
        ERR_clear_error()
        // TLS 1.2 at least, no verification yet (set below), a close without close_notify read as the end.
        guard let context = cossl_client_context_new(nil) else { throw DeliveryError(TLSClientContext.reasons("TLS: cannot make a client context")) }
        guard let method = cossl_socket_method_new() else {
            SSL_CTX_free(context)
            throw DeliveryError(TLSClientContext.reasons("TLS: cannot make the socket BIO method"))
        }
        if let caFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                SSL_CTX_free(context)
                BIO_meth_free(method)
                throw DeliveryError(TLSClientContext.reasons("TLS: caFile \(caFile) cannot be loaded"))
            }
        } else {
            let bundle = FileManager.default.fileExists(atPath: Self.systemBundle) ? Self.systemBundle : nil
            guard SSL_CTX_load_verify_locations(context, bundle, Self.systemFolder) == 1 else {
                SSL_CTX_free(context)
                BIO_meth_free(method)
                throw DeliveryError(TLSClientContext.reasons("TLS: the system's CA store \(Self.systemFolder) cannot be loaded"))
            }
        }
        if anchorAnyInFile, caFile != nil {
            X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(context), UInt(X509_V_FLAG_PARTIAL_CHAIN))
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        self.context = context
        socketMethod = method
    }

    deinit {
        SSL_CTX_free(context)
        BIO_meth_free(socketMethod)
    }

    /// `context: reason; reason` from the calling thread's OpenSSL error queue, which it empties.
    static func reasons(_ context: String) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { text in
            cossl_drain_errors(text.baseAddress!, text.count) == 0 ? context : "\(context): \(String(cString: text.baseAddress!))"
        }
    }
}

/// One TLS connection to a receiver over a connected blocking socket whose `SO_RCVTIMEO` and
/// `SO_SNDTIMEO` bound every read and write (a would-block answer is a timeout). The caller keeps
/// the socket; ``close()`` sends close_notify and frees the session, not the socket.
package final class TLSClientConnection {
    private var ssl: OpaquePointer?
    private var broken = false
    /// Kept while the connection lives: its socket BIO uses the context's BIO method, which the
    /// context frees with itself.
    private let context: TLSClientContext

    /// Handshakes with `host` (checked against the certificate) on `fd`; throws ``DeliveryError``
    /// saying why (a certificate that fails verification: `certificate verify failed (reason)`).
    package init(context: TLSClientContext, fd: Int32, host: String, port: UInt16, hostIsIPv4: Bool) throws {
        self.context = context
        ERR_clear_error()
        guard let ssl = SSL_new(context.context) else { throw DeliveryError(TLSClientContext.reasons("TLS: SSL_new")) }
        self.ssl = ssl
        guard cossl_attach_socket(ssl, context.socketMethod, fd) == 1 else {
            free()
            throw DeliveryError(TLSClientContext.reasons("TLS: cannot attach the socket"))
        }
        // The name the certificate must carry: a DNS name (also sent as SNI), or an IP address.
        let named = hostIsIPv4 ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) : cossl_set_host(ssl, host)
        guard named == 1 else {
            free()
            throw DeliveryError(TLSClientContext.reasons("TLS: cannot set the host name \(host)"))
        }
        SSL_set_connect_state(ssl)
        let result = SSL_connect(ssl)
        guard result == 1 else {
            let code = SSL_get_error(ssl, result)
            let number = cossl_errno()
            let verify = SSL_get_verify_result(ssl)
            var message: String
            if verify != Int(X509_V_OK) {
                let reason = String(cString: X509_verify_cert_error_string(verify))
                message = "TLS handshake with \(host):\(port): certificate verify failed (\(reason))"
                ERR_clear_error()
            } else if code == COSSL_ERROR_WANT_READ || code == COSSL_ERROR_WANT_WRITE {
                message = "TLS handshake with \(host):\(port) timed out"
                ERR_clear_error()
            } else if code == COSSL_ERROR_SYSCALL, ERR_peek_error() == 0 {
                message = "TLS handshake with \(host):\(port): " + (number == 0 ? "the receiver closed the connection" : String(cString: strerror(number)))
            } else {
                message = TLSClientContext.reasons("TLS handshake with \(host):\(port) failed")
            }
            broken = true
            free()
            throw DeliveryError(message)
        }
    }

    deinit { free() }

    /// Writes all of `bytes`; throws ``SystemError`` (EAGAIN: the send timed out) or ``DeliveryError``.
    package func writeAll(_ bytes: UnsafeRawBufferPointer, context: @autoclosure () -> String) throws {
        guard let ssl, let base = bytes.baseAddress else { if bytes.isEmpty { return }; throw SystemError(call: "SSL_write", errno: EBADF, context: context()) }
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let result = SSL_write(ssl, base + offset, Int32(clamping: bytes.count - offset))
            if result > 0 { offset += Int(result); continue }
            broken = true
            let code = SSL_get_error(ssl, result)
            let number = cossl_errno()
            switch code {
            case COSSL_ERROR_WANT_WRITE, COSSL_ERROR_WANT_READ:
                ERR_clear_error()
                throw SystemError(call: "SSL_write", errno: EAGAIN, context: context())
            case COSSL_ERROR_SYSCALL where ERR_peek_error() == 0:
                throw SystemError(call: "SSL_write", errno: number == 0 ? EPIPE : number, context: context())
            default:
                throw DeliveryError(TLSClientContext.reasons("\(context()): TLS write failed"))
            }
        }
    }

    /// One read into `buffer`: 0 at the end of the stream; throws ``SystemError`` (EAGAIN: the read
    /// timed out) or ``DeliveryError``.
    package func read(into buffer: UnsafeMutableRawBufferPointer, context: @autoclosure () -> String) throws -> Int {
        guard let ssl else { return 0 }
        ERR_clear_error()
        let result = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        if result > 0 { return Int(result) }
        let code = SSL_get_error(ssl, result)
        let number = cossl_errno()
        switch code {
        case COSSL_ERROR_ZERO_RETURN:
            return 0
        case COSSL_ERROR_WANT_READ, COSSL_ERROR_WANT_WRITE:
            ERR_clear_error()
            throw SystemError(call: "SSL_read", errno: EAGAIN, context: context())
        case COSSL_ERROR_SYSCALL where ERR_peek_error() == 0:
            broken = true
            if number == 0 { return 0 }
            throw SystemError(call: "SSL_read", errno: number, context: context())
        default:
            broken = true
            throw DeliveryError(TLSClientContext.reasons("\(context()): TLS read failed"))
        }
    }

    /// Sends close_notify (when the connection is healthy) and frees the session.
    package func close() { free() }

    private func free() {
        guard let ssl else { return }
        if !broken {
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
        }
        ERR_clear_error()
        SSL_free(ssl)
        self.ssl = nil
    }
}
