#ifndef CLIBPQ_SHIM_H
#define CLIBPQ_SHIM_H
// libpq, PostgreSQL's client library (Debian: libpq-dev; headers in /usr/include/postgresql,
// found through pkg-config "libpq").
#include <libpq-fe.h>

/// A notice processor that drops server notices (e.g. "relation already exists, skipping"): libpq's
/// default prints them on stderr.
static void clibpq_quiet_notice(void *arg, const char *message) { (void)arg; (void)message; }
static inline void clibpq_silence_notices(PGconn *conn) { PQsetNoticeProcessor(conn, clibpq_quiet_notice, 0); }

#endif
