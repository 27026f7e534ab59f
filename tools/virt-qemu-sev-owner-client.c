/*
 * virt-qemu-sev-owner-client.c: the attestation agent that libvirt runs:
 * a thin client of the guest owner's service
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * 'agent --service ADDR:PORT --tls-dir DIR' reads libvirt's request on
 * stdin, forwards it to the guest owner's service over mutual TLS and
 * writes the service's reply on stdout. It holds no secret of the owner:
 * only the host's TLS client certificate and key, and the owner's CA
 * certificate, against which it verifies the service (and the service's
 * name or address). It dies with the daemon that started it.
 */

#include <config.h>
#include "internal.h"

#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "virfile.h"
#include "virjson.h"
#include "virstring.h"

#include "virt-qemu-sev-owner-agent.h"
#include "virt-qemu-sev-owner-client.h"
#include "virt-qemu-sev-owner-cmd.h"
#include "virt-qemu-sev-owner-tls.h"
#include "virt-qemu-sev-owner-util.h"

#define VIR_FROM_THIS VIR_FROM_NONE


static int
sevOwnerClientConnect(const char *service,
                      const char *host,
                      const char *port,
                      gint64 deadline)
{
    struct addrinfo hints = { 0 };
    struct addrinfo *ai = NULL;
    struct addrinfo *cur;
    int err = 0;
    int fd = -1;
    int rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
        sevOwnerError(_("cannot reach the guest owner's service at %1$s: %2$s"),
                      service, gai_strerror(rc));
        return -1;
    }

    for (cur = ai; cur; cur = cur->ai_next) {
        gint64 left = deadline - g_get_monotonic_time();
        struct timeval tv;

        if (left <= 0) {
            err = ETIMEDOUT;
            break;
        }
        tv.tv_sec = left / G_USEC_PER_SEC;
        tv.tv_usec = left % G_USEC_PER_SEC;

        if ((fd = socket(cur->ai_family, cur->ai_socktype | SOCK_CLOEXEC,
                         cur->ai_protocol)) < 0) {
            err = errno;
            continue;
        }
        /* on Linux, SO_SNDTIMEO bounds connect() too */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
            connect(fd, cur->ai_addr, cur->ai_addrlen) == 0)
            break;
        err = errno == EINPROGRESS ? ETIMEDOUT : errno;
        VIR_FORCE_CLOSE(fd);
    }
    freeaddrinfo(ai);

    if (fd < 0)
        sevOwnerError(_("cannot reach the guest owner's service at %1$s: %2$s"),
                      service, g_strerror(err));
    return fd;
}


static int
sevOwnerClientExchange(const char *service,
                       const char *tlsDir,
                       unsigned int timeout,
                       const char *request,
                       char **reply)
{
    gint64 deadline = g_get_monotonic_time() + timeout * G_USEC_PER_SEC;
    gnutls_certificate_credentials_t creds = NULL;
    gnutls_session_t session = NULL;
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;
    g_autofree char *reason = NULL;
    size_t len = strlen(request);
    uint8_t lenBE[4];
    VIR_AUTOCLOSE fd = -1;
    int ret = -1;
    int rc;

    if (len > AGENT_REQUEST_MAX) {
        sevOwnerError(_("the request is larger than %1$d bytes"), AGENT_REQUEST_MAX);
        return -1;
    }

    if (sevOwnerSplitHostPort(service, &host, &port) < 0 ||
        sevOwnerTLSLoadCreds(tlsDir, false, &creds) < 0)
        return -1;

    if ((fd = sevOwnerClientConnect(service, host, port, deadline)) < 0)
        goto cleanup;

    if ((rc = gnutls_init(&session, GNUTLS_CLIENT)) < 0 ||
        (rc = gnutls_set_default_priority(session)) < 0 ||
        (rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds)) < 0) {
        sevOwnerError(_("cannot set up a TLS session: %1$s"), gnutls_strerror(rc));
        goto cleanup;
    }
    if (!g_hostname_is_ip_address(host))
        gnutls_server_name_set(session, GNUTLS_NAME_DNS, host, strlen(host));
    /* the service's certificate must chain to the owner's CA and name
     * @host (its DNS name, or its IP address in subjectAltName) */
    gnutls_session_set_verify_cert(session, host, 0);
    gnutls_transport_set_int(session, fd);

    if (sevOwnerTLSHandshake(session, fd, deadline, &reason) < 0) {
        unsigned int status = gnutls_session_get_verify_cert_status(session);

        if (status != 0) {
            gnutls_datum_t text = { NULL, 0 };

            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0);
            sevOwnerError(_("the guest owner's service at %1$s presented a certificate that does not verify: %2$s"),
                          service, text.data ? (const char *)text.data : "?");
            gnutls_free(text.data);
        } else {
            sevOwnerError(_("cannot talk to the guest owner's service at %1$s: %2$s"),
                          service, reason);
        }
        goto cleanup;
    }

    lenBE[0] = len >> 24;
    lenBE[1] = len >> 16;
    lenBE[2] = len >> 8;
    lenBE[3] = len;
    if (sevOwnerTLSSend(session, fd, lenBE, sizeof(lenBE), deadline, &reason) < 0 ||
        sevOwnerTLSSend(session, fd, request, len, deadline, &reason) < 0 ||
        sevOwnerTLSRecvAll(session, fd, SEV_OWNER_REPLY_MAX, deadline, reply, &reason) < 0) {
        sevOwnerError(_("the guest owner's service at %1$s: %2$s"), service, reason);
        goto cleanup;
    }

    ret = 0;

 cleanup:
    if (session)
        gnutls_deinit(session);
    if (creds)
        gnutls_certificate_free_credentials(creds);
    return ret;
}


int
cmdAgent(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { "owner-dir", false, NULL },
        { "service", false, NULL },
        { "tls-dir", false, NULL },
        { "timeout", false, NULL },
        { NULL, false, NULL },
    };
    g_autoptr(virJSONValue) obj = NULL;
    g_autofree char *input = NULL;
    g_autofree char *reply = NULL;
    const char *service;
    const char *tlsDir;
    const char *str;
    unsigned int timeout = SEV_OWNER_TLS_TIMEOUT;
    pid_t parent;

    if (sevOwnerParseOpts("agent", argc, argv, opts) < 0)
        return -1;

    service = sevOwnerOptGet(opts, "service");
    tlsDir = sevOwnerOptGet(opts, "tls-dir");

    if (sevOwnerOptGet(opts, "owner-dir")) {
        if (service || tlsDir) {
            sevOwnerError("%s", _("agent: --owner-dir and --service exclude each other"));
            return -1;
        }
        /* test-only: the owner's secrets on this host */
        return sevOwnerAgentLocal(sevOwnerOptGet(opts, "owner-dir"));
    }

    if (!service || !tlsDir) {
        sevOwnerError("%s", _("agent: --service and --tls-dir are required"));
        return -1;
    }
    if ((str = sevOwnerOptGet(opts, "timeout")) &&
        (sevOwnerParseUInt("--timeout", str, 3600, &timeout) < 0 || timeout == 0)) {
        sevOwnerError("%s", _("--timeout must be from 1 to 3600 seconds"));
        return -1;
    }

    /* never complete an exchange for a daemon that is gone: die with the
     * parent, and stop if it died already */
    parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
        sevOwnerError(_("cannot set the parent-death signal: %1$s"), g_strerror(errno));
        return -1;
    }
    if (parent == 1 || getppid() != parent) {
        sevOwnerError("%s", _("the process that started the agent is gone"));
        return -1;
    }

    if (!(input = sevOwnerAgentReadRequest(STDIN_FILENO)))
        return -1;

    if (sevOwnerClientExchange(service, tlsDir, timeout, input, &reply) < 0)
        return -1;

    /* the service's error, if it could not handle the request */
    if ((obj = virJSONValueFromString(reply)) &&
        virJSONValueIsObject(obj) &&
        (str = virJSONValueObjectGetString(obj, "error"))) {
        sevOwnerError(_("the guest owner's service: %1$s"), str);
        return -1;
    }
    if (!*reply) {
        sevOwnerError(_("the guest owner's service at %1$s closed the connection without a reply"),
                      service);
        return -1;
    }

    fputs(reply, stdout);
    if (fflush(stdout) != 0) {
        sevOwnerError(_("cannot write the reply: %1$s"), g_strerror(errno));
        return -1;
    }
    return 0;
}
