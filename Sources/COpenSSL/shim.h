#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/bio.h>
// OPC UA security (Sources/OPCUA/Security): keys, certificates, RSA padding modes, HMAC.
#include <openssl/x509.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

/// errno of the calling thread (Swift cannot read the macro directly).
static inline int cossl_errno(void) { return errno; }

/// The macros and casts Swift cannot import, as plain constants.
static const int COSSL_ERROR_NONE = SSL_ERROR_NONE;
static const int COSSL_ERROR_SSL = SSL_ERROR_SSL;
static const int COSSL_ERROR_WANT_READ = SSL_ERROR_WANT_READ;
static const int COSSL_ERROR_WANT_WRITE = SSL_ERROR_WANT_WRITE;
static const int COSSL_ERROR_SYSCALL = SSL_ERROR_SYSCALL;
static const int COSSL_ERROR_ZERO_RETURN = SSL_ERROR_ZERO_RETURN;
static const int COSSL_FILETYPE_PEM = SSL_FILETYPE_PEM;

/// The calling thread's OpenSSL error queue as "reason; reason" (oldest first) into `out`, which
/// holds `capacity` bytes and is always terminated; the queue is left empty. Returns how many
/// errors the queue held (0: `out` is empty). The one reader of the queue for every module.
static inline int cossl_drain_errors(char *out, size_t capacity) {
    int count = 0;
    size_t used = 0;
    unsigned long code;
    if (capacity > 0) out[0] = 0;
    while ((code = ERR_get_error()) != 0) {
        char reason[256];
        ERR_error_string_n(code, reason, sizeof reason);
        if (capacity > used + 1) {
            int n = snprintf(out + used, capacity - used, "%s%s", count ? "; " : "", reason);
            if (n > 0) used += (size_t)n < capacity - used ? (size_t)n : capacity - used - 1;
        }
        count++;
    }
    return count;
}

/// The reason of an OpenSSL error code (ERR_GET_REASON is a macro).
static inline int cossl_error_reason(unsigned long code) { return ERR_GET_REASON(code); }
/// True when the error says a plain HTTP request came to a TLS port.
static inline int cossl_is_http_request(unsigned long code) {
    return ERR_GET_LIB(code) == ERR_LIB_SSL &&
        (ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST || ERR_GET_REASON(code) == SSL_R_HTTPS_PROXY_REQUEST);
}

/// A server context: TLS 1.2 at least, no renegotiation, no compression, a client closing without
/// close_notify read as a plain end of stream, partial writes (a write returns what went out),
/// buffers released while a connection is idle, read-ahead. NULL on failure (see the error queue).
static inline SSL_CTX *cossl_server_context_new(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) { SSL_CTX_free(ctx); return NULL; }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                             SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    // Read what the socket has in one recv (not a record header, then its body): the reader must
    // then drain SSL_has_pending before waiting for the socket again.
    SSL_CTX_set_read_ahead(ctx, 1);
    return ctx;
}

/// A client context (tests and benchmarks): TLS 1.2 at least; verifies the peer only when `ca_file` is given.
static inline SSL_CTX *cossl_client_context_new(const char *ca_file) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) { SSL_CTX_free(ctx); return NULL; }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

/// Sets the host name a client sends (SNI) and checks in the server's certificate (a macro).
static inline int cossl_set_host(SSL *ssl, const char *name) {
    if (SSL_set_tlsext_host_name(ssl, name) != 1) return 0;
    return SSL_set1_host(ssl, name);
}

// A socket BIO of our own: send with MSG_NOSIGNAL (a peer gone away is EPIPE, never SIGPIPE) and
// EINTR retried; EAGAIN marks the BIO "retry", which SSL_* report as WANT_READ / WANT_WRITE.
static inline int cossl_bio_write(BIO *bio, const char *data, size_t length, size_t *written) {
    int fd = (int)(intptr_t)BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    for (;;) {
        ssize_t n = send(fd, data, length, MSG_NOSIGNAL);
        if (n >= 0) { *written = (size_t)n; return 1; }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(bio);
        return 0;
    }
}

static inline int cossl_bio_read(BIO *bio, char *data, size_t length, size_t *read) {
    int fd = (int)(intptr_t)BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    for (;;) {
        ssize_t n = recv(fd, data, length, 0);
        if (n > 0) { *read = (size_t)n; return 1; }
        if (n == 0) { *read = 0; return 0; }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(bio);
        return 0;
    }
}

static inline long cossl_bio_ctrl(BIO *bio, int cmd, long num, void *ptr) {
    (void)bio; (void)num; (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

/// The method of that BIO; free it with BIO_meth_free after every BIO made from it is gone.
static inline BIO_METHOD *cossl_socket_method_new(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mes socket");
    if (method == NULL) return NULL;
    BIO_meth_set_write_ex(method, cossl_bio_write);
    BIO_meth_set_read_ex(method, cossl_bio_read);
    BIO_meth_set_ctrl(method, cossl_bio_ctrl);
    return method;
}

/// Attaches a socket to a new SSL through that BIO (the SSL owns the BIO, not the socket). 0 on failure.
static inline int cossl_attach_socket(SSL *ssl, BIO_METHOD *method, int fd) {
    BIO *bio = BIO_new(method);
    if (bio == NULL) return 0;
    BIO_set_data(bio, (void *)(intptr_t)fd);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio);
    return 1;
}

/// SHA-256 of `length` bytes into `out` (32 bytes). 1 on success.
static inline int cossl_sha256(const void *data, size_t length, unsigned char *out) {
    unsigned int size = 0;
    return EVP_Digest(data, length, out, &size, EVP_sha256(), NULL) == 1 && size == 32;
}

#endif
