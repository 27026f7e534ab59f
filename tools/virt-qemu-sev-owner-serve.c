/*
 * virt-qemu-sev-owner-serve.c: the guest owner's service: the agent's
 * protocol over mutual TLS, with an audit record of every request
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * 'serve' runs on the guest owner's machine: the owner's key and the
 * transport key stay in its directory there. It answers the requests
 * that the thin agent on a host forwards (one per connection, one at a
 * time), only from clients whose certificate the owner's CA signed, and
 * appends one JSON line to the audit file for each request: a session,
 * a release, a refusal or an error. A record never holds a secret.
 */

#include <config.h>
#include "internal.h"

#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "virfile.h"
#include "virjson.h"
#include "virsecureerase.h"
#include "virstring.h"

#include "virt-qemu-sev-owner-agent.h"
#include "virt-qemu-sev-owner-cmd.h"
#include "virt-qemu-sev-owner-conf.h"
#include "virt-qemu-sev-owner-serve.h"
#include "virt-qemu-sev-owner-tls.h"
#include "virt-qemu-sev-owner-util.h"

#define VIR_FROM_THIS VIR_FROM_NONE

static const char *progname = SEV_OWNER_PROGNAME;

typedef struct {
    const char *ownerDir;
    const char *audit;
    gnutls_certificate_credentials_t creds;
    unsigned int timeout;
} sevOwnerService;


/* One JSON line appended to the audit file. */
static void
sevOwnerAudit(const sevOwnerService *svc,
              const char *peer,
              const char *client,
              const sevOwnerAgentResult *res,
              const char *verdict,
              const char *reason)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *when = g_date_time_format_iso8601(now);
    g_autoptr(virJSONValue) rec = NULL;
    g_autofree char *line = NULL;
    VIR_AUTOCLOSE fd = -1;
    size_t len;

    if (virJSONValueObjectAdd(&rec,
                              "s:time", when,
                              "s:peer", peer,
                              "S:client", client,
                              "S:operation", res->operation,
                              "S:domain", res->domain,
                              "S:chip", res->chip,
                              "S:measurement", res->measurement,
                              "S:key-id", res->keyId,
                              "s:verdict", verdict,
                              "S:reason", reason,
                              NULL) < 0 ||
        !(line = virJSONValueToString(rec, false))) {
        sevOwnerError(_("cannot format the audit record: %1$s"), virGetLastErrorMessage());
        return;
    }

    len = strlen(line);
    line = g_realloc(line, len + 2);
    line[len] = '\n';
    line[len + 1] = '\0';

    if ((fd = open(svc->audit, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
        safewrite(fd, line, len + 1) < 0 ||
        fsync(fd) < 0)
        sevOwnerError(_("cannot write the audit record to '%1$s': %2$s"),
                      svc->audit, g_strerror(errno));
}


/* The client's certificate verified against the owner's CA; its DN in
 * @dn. */
static int
sevOwnerServeVerifyClient(gnutls_session_t session,
                          char **dn,
                          char **reason)
{
    const gnutls_datum_t *certs;
    unsigned int ncerts = 0;
    unsigned int status = 0;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t name = { NULL, 0 };
    int rc;

    if (!(certs = gnutls_certificate_get_peers(session, &ncerts)) || ncerts == 0) {
        *reason = g_strdup(_("the client presented no certificate"));
        return -1;
    }

    if ((rc = gnutls_certificate_verify_peers2(session, &status)) < 0) {
        *reason = g_strdup_printf(_("the client's certificate: %1$s"), gnutls_strerror(rc));
        return -1;
    }

    if (gnutls_x509_crt_init(&crt) == 0 &&
        gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
        gnutls_x509_crt_get_dn2(crt, &name) == 0) {
        *dn = g_strndup((const char *)name.data, name.size);
        gnutls_free(name.data);
    }
    if (crt)
        gnutls_x509_crt_deinit(crt);

    if (status != 0) {
        gnutls_datum_t text = { NULL, 0 };

        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0);
        *reason = g_strdup_printf(_("the client's certificate does not verify: %1$s"),
                                  text.data ? (const char *)text.data : "?");
        gnutls_free(text.data);
        return -1;
    }

    return 0;
}


/* Sends {"error": MSG} to the client. */
static void
sevOwnerServeError(gnutls_session_t session,
                   int fd,
                   gint64 deadline,
                   const char *msg)
{
    g_autoptr(virJSONValue) reply = NULL;
    g_autofree char *str = NULL;
    g_autofree char *reason = NULL;

    if (virJSONValueObjectAdd(&reply, "s:error", msg, NULL) < 0 ||
        !(str = virJSONValueToString(reply, false)))
        return;
    str = g_realloc(str, strlen(str) + 2);
    strcat(str, "\n");
    ignore_value(sevOwnerTLSSend(session, fd, str, strlen(str), deadline, &reason));
}


static void
sevOwnerServeConn(const sevOwnerService *svc,
                  int fd,
                  const char *peer)
{
    g_auto(sevOwnerAgentResult) res = { 0 };
    gnutls_session_t session = NULL;
    gint64 deadline = g_get_monotonic_time() + svc->timeout * G_USEC_PER_SEC;
    g_autofree char *reason = NULL;
    g_autofree char *client = NULL;
    g_autofree char *input = NULL;
    g_autofree char *reply = NULL;
    uint8_t lenBE[4];
    bool handshaken = false;
    size_t len;
    int rc;

    if ((rc = gnutls_init(&session, GNUTLS_SERVER)) < 0 ||
        (rc = gnutls_set_default_priority(session)) < 0 ||
        (rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, svc->creds)) < 0) {
        sevOwnerError(_("cannot set up a TLS session: %1$s"), gnutls_strerror(rc));
        goto cleanup;
    }
    gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
    gnutls_transport_set_int(session, fd);

    if (sevOwnerTLSHandshake(session, fd, deadline, &reason) < 0 ||
        sevOwnerServeVerifyClient(session, &client, &reason) < 0) {
        sevOwnerAudit(svc, peer, client, &res, "refused", reason);
        sevOwnerError(_("connection from %1$s refused: %2$s"), peer, reason);
        goto cleanup;
    }
    handshaken = true;

    if ((rc = sevOwnerTLSRecv(session, fd, lenBE, sizeof(lenBE), false,
                              deadline, &reason)) < 0) {
        sevOwnerAudit(svc, peer, client, &res, "error", reason);
        sevOwnerError(_("connection from %1$s: %2$s"), peer, reason);
        goto cleanup;
    }

    len = ((size_t)lenBE[0] << 24) | (lenBE[1] << 16) | (lenBE[2] << 8) | lenBE[3];
    if (len > AGENT_REQUEST_MAX) {
        reason = g_strdup_printf(_("the request is larger than %1$d bytes"),
                                 AGENT_REQUEST_MAX);
        sevOwnerAudit(svc, peer, client, &res, "refused", reason);
        sevOwnerError(_("connection from %1$s: %2$s"), peer, reason);
        sevOwnerServeError(session, fd, deadline, reason);
        goto cleanup;
    }

    input = g_malloc0(len + 1);
    if (sevOwnerTLSRecv(session, fd, input, len, false, deadline, &reason) < 0) {
        sevOwnerAudit(svc, peer, client, &res, "error", reason);
        sevOwnerError(_("connection from %1$s: %2$s"), peer, reason);
        goto cleanup;
    }

    g_printerr(_("%1$s: request from %2$s (%3$s)\n"), progname, peer, client);

    g_free(sevOwnerTakeLastError());
    if (sevOwnerAgentHandle(svc->ownerDir, input, &res) < 0) {
        g_autofree char *err = sevOwnerTakeLastError();

        if (!err)
            err = g_strdup(_("the owner's service could not handle the request"));
        sevOwnerAudit(svc, peer, client, &res, "error", err);
        sevOwnerServeError(session, fd, deadline, err);
        goto cleanup;
    }

    sevOwnerAudit(svc, peer, client, &res, res.verdict, res.reason);

    reply = g_strdup_printf("%s\n", res.reply);
    if (sevOwnerTLSSend(session, fd, reply, strlen(reply), deadline, &reason) < 0) {
        sevOwnerError(_("connection from %1$s: %2$s"), peer, reason);
        goto cleanup;
    }


 cleanup:
    if (session && handshaken)
        gnutls_bye(session, GNUTLS_SHUT_WR);
    if (reply)
        virSecureErase(reply, strlen(reply));
    if (res.reply)
        virSecureErase(res.reply, strlen(res.reply));
    if (session)
        gnutls_deinit(session);
}


static int
sevOwnerServeListen(const char *addr)
{
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;
    struct addrinfo hints = { 0 };
    struct addrinfo *ai = NULL;
    struct addrinfo *cur;
    int one = 1;
    int fd = -1;
    int rc;

    if (sevOwnerSplitHostPort(addr, &host, &port) < 0)
        return -1;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
        sevOwnerError(_("cannot resolve '%1$s': %2$s"), addr, gai_strerror(rc));
        return -1;
    }

    for (cur = ai; cur; cur = cur->ai_next) {
        if ((fd = socket(cur->ai_family, cur->ai_socktype | SOCK_CLOEXEC,
                         cur->ai_protocol)) < 0)
            continue;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
            bind(fd, cur->ai_addr, cur->ai_addrlen) == 0 &&
            listen(fd, 16) == 0)
            break;
        VIR_FORCE_CLOSE(fd);
    }
    freeaddrinfo(ai);

    if (fd < 0)
        sevOwnerError(_("cannot listen on '%1$s': %2$s"), addr, g_strerror(errno));
    return fd;
}


int
cmdServe(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { "owner-dir", true, NULL },
        { "listen", true, NULL },
        { "tls-dir", true, NULL },
        { "audit", true, NULL },
        { "timeout", false, NULL },
        { NULL, false, NULL },
    };
    sevOwnerService svc = { 0 };
    g_auto(sevOwnerConf) conf = { 0 };
    VIR_AUTOCLOSE lfd = -1;
    const char *str;

    if (sevOwnerParseOpts("serve", argc, argv, opts) < 0)
        return -1;

    svc.ownerDir = sevOwnerOptGet(opts, "owner-dir");
    svc.audit = sevOwnerOptGet(opts, "audit");
    svc.timeout = SEV_OWNER_TLS_TIMEOUT;
    if ((str = sevOwnerOptGet(opts, "timeout")) &&
        (sevOwnerParseUInt("--timeout", str, 3600, &svc.timeout) < 0 ||
         svc.timeout == 0)) {
        sevOwnerError("%s", _("--timeout must be from 1 to 3600 seconds"));
        return -1;
    }

    /* a broken owner.conf fails now rather than at the first request;
     * each request reads it again */
    if (sevOwnerConfLoad(svc.ownerDir, true, &conf) < 0)
        return -1;

    if (sevOwnerTLSLoadCreds(sevOwnerOptGet(opts, "tls-dir"), true, &svc.creds) < 0)
        return -1;

    if ((lfd = sevOwnerServeListen(sevOwnerOptGet(opts, "listen"))) < 0) {
        gnutls_certificate_free_credentials(svc.creds);
        return -1;
    }

    signal(SIGPIPE, SIG_IGN);
    g_printerr(_("%1$s: serving on %2$s\n"), progname, sevOwnerOptGet(opts, "listen"));

    for (;;) {
        struct sockaddr_storage addr;
        socklen_t addrlen = sizeof(addr);
        char hostbuf[NI_MAXHOST] = "?";
        char portbuf[NI_MAXSERV] = "?";
        g_autofree char *peer = NULL;
        VIR_AUTOCLOSE fd = -1;

        if ((fd = accept4(lfd, (struct sockaddr *)&addr, &addrlen, SOCK_CLOEXEC)) < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            sevOwnerError(_("cannot accept a connection: %1$s"), g_strerror(errno));
            break;
        }

        getnameinfo((struct sockaddr *)&addr, addrlen, hostbuf, sizeof(hostbuf),
                    portbuf, sizeof(portbuf), NI_NUMERICHOST | NI_NUMERICSERV);
        peer = g_strdup_printf("%s:%s", hostbuf, portbuf);
        sevOwnerServeConn(&svc, fd, peer);
    }

    gnutls_certificate_free_credentials(svc.creds);
    return -1;
}
