#ifndef COPENSSL_PKI_H
#define COPENSSL_PKI_H
// X.509 parsing and creation for OPC UA application instance certificates (the OPCUA module's
// Security/Certificate.swift): wrappers for what Swift cannot call directly (macros, stacks,
// X509V3_CTX on the stack).
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

/// A new RSA key of `bits` bits (EVP_RSA_gen is a variadic macro). NULL on failure.
static inline EVP_PKEY *cossl_rsa_generate(int bits) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}

/// The bytes a memory BIO holds (BIO_get_mem_data is a macro).
static inline long cossl_bio_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }

/// Adds an X.509 v3 extension given in openssl's config syntax (e.g. "critical,CA:FALSE"), issued by
/// the certificate itself (self-signed). 1 on success.
static inline int cossl_x509_add_ext(X509 *cert, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) return 0;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1;
}

/// Adds an entry (e.g. "CN") to a name, UTF-8. 1 on success.
static inline int cossl_name_add(X509_NAME *name, const char *field, const char *value) {
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1, 0);
}

/// A random positive 64-bit serial number. 1 on success.
static inline int cossl_x509_random_serial(X509 *cert) {
    BIGNUM *bn = BN_new();
    if (bn == NULL) return 0;
    int ok = BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok;
}

/// Sets the validity to [now + from_seconds, now + to_seconds]. 1 on success.
static inline int cossl_x509_set_validity(X509 *cert, long from_seconds, long to_seconds) {
    return X509_gmtime_adj(X509_getm_notBefore(cert), from_seconds) != NULL &&
           X509_gmtime_adj(X509_getm_notAfter(cert), to_seconds) != NULL;
}

/// An ASN1_TIME as seconds since 1970 (UTC). 1 on success.
static inline int cossl_asn1_time_seconds(const ASN1_TIME *time, int64_t *seconds) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (ASN1_TIME_to_tm(time, &tm) != 1) return 0;
    *seconds = (int64_t)timegm(&tm);
    return 1;
}

/// The subjectAltName entries of a certificate (NULL when it has none); free with cossl_names_free.
static inline GENERAL_NAMES *cossl_x509_alt_names(X509 *cert) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
}
static inline int cossl_names_count(GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
static inline void cossl_names_free(GENERAL_NAMES *names) { GENERAL_NAMES_free(names); }

/// Entry `i` of `names`: its type (GEN_URI, GEN_DNS, GEN_IPADD, …; -1 if out of range) and its bytes.
static inline int cossl_name_at(GENERAL_NAMES *names, int i, const unsigned char **data, int *length) {
    GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
    if (name == NULL) return -1;
    *data = NULL;
    *length = 0;
    switch (name->type) {
    case GEN_URI: case GEN_DNS: case GEN_EMAIL:
        *data = ASN1_STRING_get0_data(name->d.ia5);
        *length = ASN1_STRING_length(name->d.ia5);
        break;
    case GEN_IPADD:
        *data = ASN1_STRING_get0_data(name->d.iPAddress);
        *length = ASN1_STRING_length(name->d.iPAddress);
        break;
    default: break;
    }
    return name->type;
}
static const int COSSL_GEN_URI = GEN_URI;
static const int COSSL_GEN_DNS = GEN_DNS;
static const int COSSL_GEN_IPADD = GEN_IPADD;

/// 1 when the certificate carries a keyUsage / extendedKeyUsage extension.
static inline int cossl_x509_has_key_usage(X509 *cert) { return (X509_get_extension_flags(cert) & EXFLAG_KUSAGE) != 0; }
static inline int cossl_x509_has_ext_key_usage(X509 *cert) { return (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) != 0; }
/// 1 when basicConstraints says cA.
static inline int cossl_x509_is_ca(X509 *cert) { return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0; }

#endif
