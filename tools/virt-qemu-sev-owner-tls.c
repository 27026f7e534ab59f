/*
 * virt-qemu-sev-owner-tls.c: mutual TLS between the attestation agent
 * and the guest owner's service (gnutls): credentials, deadlines and the
 * framing of one request and one reply
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One request per connection: the agent sends the request's length (4
 * bytes, big-endian) and the request, the service sends its reply (one
 * JSON line) and closes. Every read and write of a connection shares one
 * deadline, so a client that stays silent, or trickles, cannot hold the
 * service beyond it.
 */

#include <config.h>
#include "internal.h"

#include <sys/socket.h>
#include <sys/time.h>

#include "virt-qemu-sev-owner-tls.h"
#include "virt-qemu-sev-owner-util.h"

#define VIR_FROM_THIS VIR_FROM_NONE


/* @dir/cacert.pem (the CA that signs the peer's certificate) and
 * @dir/servercert.pem and serverkey.pem, or clientcert.pem and
 * clientkey.pem: the names of libvirt's own TLS set-up. */
int
sevOwnerTLSLoadCreds(const char *dir,
                     bool server,
                     gnutls_certificate_credentials_t *creds)
{
    g_autofree char *ca = g_build_filename(dir, "cacert.pem", NULL);
    g_autofree char *cert = g_build_filename(dir, server ? "servercert.pem" : "clientcert.pem", NULL);
    g_autofree char *key = g_build_filename(dir, server ? "serverkey.pem" : "clientkey.pem", NULL);
    int rc;

    if ((rc = gnutls_certificate_allocate_credentials(creds)) < 0) {
        sevOwnerError(_("cannot allocate TLS credentials: %1$s"), gnutls_strerror(rc));
        return -1;
    }

    if ((rc = gnutls_certificate_set_x509_trust_file(*creds, ca, GNUTLS_X509_FMT_PEM)) <= 0) {
        sevOwnerError(_("cannot load the CA certificate '%1$s': %2$s"),
                      ca, rc < 0 ? gnutls_strerror(rc) : _("no certificate"));
        goto error;
    }

    if ((rc = gnutls_certificate_set_x509_key_file(*creds, cert, key, GNUTLS_X509_FMT_PEM)) < 0) {
        sevOwnerError(_("cannot load the certificate '%1$s' and its key '%2$s': %3$s"),
                      cert, key, gnutls_strerror(rc));
        goto error;
    }

    return 0;

 error:
    gnutls_certificate_free_credentials(*creds);
    *creds = NULL;
    return -1;
}


/* HOST:PORT or [HOST]:PORT */
int
sevOwnerSplitHostPort(const char *str,
                      char **host,
                      char **port)
{
    const char *colon;

    if (str[0] == '[') {
        const char *end = strchr(str, ']');

        if (!end || end[1] != ':' || !end[2])
            goto error;
        *host = g_strndup(str + 1, end - str - 1);
        *port = g_strdup(end + 2);
        return 0;
    }

    if (!(colon = strrchr(str, ':')) || colon == str || !colon[1])
        goto error;
    *host = g_strndup(str, colon - str);
    *port = g_strdup(colon + 1);
    return 0;

 error:
    sevOwnerError(_("'%1$s' is not ADDRESS:PORT"), str);
    return -1;
}


/* The socket's timeouts set to what is left until @deadline (monotonic
 * microseconds); -1 when nothing is left. */
static int
sevOwnerTLSArm(int fd,
               gint64 deadline)
{
    gint64 left = deadline - g_get_monotonic_time();
    struct timeval tv;

    if (left <= 0)
        return -1;

    tv.tv_sec = left / G_USEC_PER_SEC;
    tv.tv_usec = left % G_USEC_PER_SEC;
    if (tv.tv_sec == 0 && tv.tv_usec == 0)
        tv.tv_usec = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        return -1;
    return 0;
}


int
sevOwnerTLSHandshake(gnutls_session_t session,
                     int fd,
                     gint64 deadline,
                     char **reason)
{
    int rc;

    do {
        if (sevOwnerTLSArm(fd, deadline) < 0) {
            *reason = g_strdup(_("TLS handshake: timed out"));
            return -1;
        }
        rc = gnutls_handshake(session);
    } while (rc < 0 && !gnutls_error_is_fatal(rc));

    if (rc < 0) {
        *reason = g_strdup_printf(_("TLS handshake: %1$s"), gnutls_strerror(rc));
        return -1;
    }
    return 0;
}


int
sevOwnerTLSSend(gnutls_session_t session,
                int fd,
                const void *data,
                size_t len,
                gint64 deadline,
                char **reason)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n;

        if (sevOwnerTLSArm(fd, deadline) < 0) {
            *reason = g_strdup(_("TLS write: timed out"));
            return -1;
        }
        n = gnutls_record_send(session, p, len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n < 0) {
            *reason = g_strdup_printf(_("TLS write: %1$s"), gnutls_strerror(n));
            return -1;
        }
        p += n;
        len -= n;
    }
    return 0;
}


/* Exactly @len bytes; returns 1 on a clean end of the stream before the
 * first byte if @eofOK. */
int
sevOwnerTLSRecv(gnutls_session_t session,
                int fd,
                void *buf,
                size_t len,
                bool eofOK,
                gint64 deadline,
                char **reason)
{
    char *p = buf;
    size_t got = 0;

    while (got < len) {
        ssize_t n;

        if (sevOwnerTLSArm(fd, deadline) < 0) {
            *reason = g_strdup(_("TLS read: timed out"));
            return -1;
        }
        n = gnutls_record_recv(session, p + got, len - got);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n == 0) {
            if (got == 0 && eofOK)
                return 1;
            *reason = g_strdup(_("TLS read: the peer closed the connection"));
            return -1;
        }
        if (n < 0) {
            *reason = g_strdup_printf(_("TLS read: %1$s"), gnutls_strerror(n));
            return -1;
        }
        got += n;
    }
    return 0;
}


/* Everything up to the end of the stream, at most @max bytes, as a
 * string. */
int
sevOwnerTLSRecvAll(gnutls_session_t session,
                   int fd,
                   size_t max,
                   gint64 deadline,
                   char **out,
                   char **reason)
{
    g_autoptr(GByteArray) data = g_byte_array_new();
    g_autofree char *buf = g_new0(char, 4096);

    for (;;) {
        ssize_t n;

        if (sevOwnerTLSArm(fd, deadline) < 0) {
            *reason = g_strdup(_("TLS read: timed out"));
            return -1;
        }
        n = gnutls_record_recv(session, buf, 4096);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n == 0)
            break;
        if (n < 0) {
            *reason = g_strdup_printf(_("TLS read: %1$s"), gnutls_strerror(n));
            return -1;
        }
        if (data->len + n > max) {
            *reason = g_strdup_printf(_("the reply is larger than %1$zu bytes"), max);
            return -1;
        }
        g_byte_array_append(data, (const guint8 *)buf, n);
    }

    g_byte_array_append(data, (const guint8 *)"", 1);
    *out = (char *)g_byte_array_free(g_steal_pointer(&data), FALSE);
    return 0;
}
