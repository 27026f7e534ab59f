/*
 * virt-qemu-sev-owner-tls.h: mutual TLS between the attestation agent
 * and the guest owner's service (gnutls): credentials, deadlines and the
 * framing of one request and one reply
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <gnutls/gnutls.h>

/* the largest reply the agent reads from the service */
#define SEV_OWNER_REPLY_MAX (1024 * 1024)

/* the I/O timeout of one connection, in seconds, unless --timeout */
#define SEV_OWNER_TLS_TIMEOUT 10

int
sevOwnerTLSLoadCreds(const char *dir,
                     bool server,
                     gnutls_certificate_credentials_t *creds);

int
sevOwnerSplitHostPort(const char *str,
                      char **host,
                      char **port);

int
sevOwnerTLSHandshake(gnutls_session_t session,
                     int fd,
                     gint64 deadline,
                     char **reason);

int
sevOwnerTLSSend(gnutls_session_t session,
                int fd,
                const void *data,
                size_t len,
                gint64 deadline,
                char **reason);

int
sevOwnerTLSRecv(gnutls_session_t session,
                int fd,
                void *buf,
                size_t len,
                bool eofOK,
                gint64 deadline,
                char **reason);

int
sevOwnerTLSRecvAll(gnutls_session_t session,
                   int fd,
                   size_t max,
                   gint64 deadline,
                   char **out,
                   char **reason);
