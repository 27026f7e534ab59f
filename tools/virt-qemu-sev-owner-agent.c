/*
 * virt-qemu-sev-owner-agent.c: the attestation agent's protocol: the
 * session and attest operations
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include <gmp.h>
#include <nettle/aes.h>
#include <nettle/bignum.h>
#include <nettle/ctr.h>
#include <nettle/ecc.h>
#include <nettle/ecc-curve.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#include "virerror.h"
#include "virfile.h"
#include "virgettext.h"
#include "virjson.h"
#include "virsecureerase.h"
#include "virstring.h"

#include "virt-qemu-sev-owner-cert.h"
#include "virt-qemu-sev-owner-roots.h"
#include "virt-qemu-sev-owner-util.h"

#include "virt-qemu-sev-owner-agent.h"

#define VIR_FROM_THIS VIR_FROM_NONE

static const char *progname = SEV_OWNER_PROGNAME;


static const char *
sevOwnerJSONString(virJSONValue *obj,
                   const char *where,
                   const char *key,
                   bool required)
{
    virJSONValue *val = virJSONValueObjectGet(obj, key);

    if (!val) {
        if (required)
            sevOwnerError(_("malformed request: %1$s has no '%2$s'"), where, key);
        return NULL;
    }

    if (virJSONValueGetType(val) != VIR_JSON_TYPE_STRING) {
        sevOwnerError(_("malformed request: %1$s.%2$s must be a string"), where, key);
        return NULL;
    }

    return virJSONValueGetString(val);
}


static int
sevOwnerJSONUInt(virJSONValue *obj,
                 const char *where,
                 const char *key,
                 unsigned int max,
                 unsigned int *out)
{
    virJSONValue *val = virJSONValueObjectGet(obj, key);
    const char *str;

    if (!val) {
        sevOwnerError(_("malformed request: %1$s has no '%2$s'"), where, key);
        return -1;
    }

    if (virJSONValueGetType(val) != VIR_JSON_TYPE_NUMBER ||
        !(str = virJSONValueGetNumberString(val)) ||
        virStrToLong_uip(str, NULL, 10, out) < 0 ||
        *out > max) {
        sevOwnerError(_("malformed request: %1$s.%2$s must be an integer from 0 to %3$u"),
                      where, key, max);
        return -1;
    }

    return 0;
}


static int
sevOwnerJSONBase64(virJSONValue *obj,
                   const char *where,
                   const char *key,
                   size_t expect,
                   sevOwnerBuf *out)
{
    g_autofree char *what = g_strdup_printf(_("malformed request: %1$s.%2$s"),
                                            where, key);
    const char *str;

    if (!(str = sevOwnerJSONString(obj, where, key, true)))
        return -1;

    return sevOwnerDecodeBase64(what, str, expect, out);
}


void
sevOwnerAgentResultClear(sevOwnerAgentResult *res)
{
    g_free(res->operation);
    g_free(res->domain);
    g_free(res->chip);
    g_free(res->measurement);
    g_free(res->keyId);
    g_free(res->reason);
    g_free(res->reply);
    memset(res, 0, sizeof(*res));
}


/* The reply, kept in @out->reply: the agent prints it, the service sends
 * it. */
static int
sevOwnerReply(sevOwnerAgentResult *out,
              virJSONValue *reply)
{
    g_autofree char *str = NULL;

    if (!(str = virJSONValueToString(reply, false))) {
        sevOwnerError(_("cannot format the reply: %1$s"), virGetLastErrorMessage());
        return -1;
    }

    g_free(out->reply);
    out->reply = g_steal_pointer(&str);
    return 0;
}


static int
sevOwnerRefuse(sevOwnerAgentResult *out,
               const char *reason)
{
    g_autoptr(virJSONValue) reply = NULL;

    g_printerr(_("%1$s: refused: %2$s\n"), progname, reason);
    out->verdict = "refused";
    g_free(out->reason);
    out->reason = g_strdup(reason);

    if (virJSONValueObjectAdd(&reply, "s:refused", reason, NULL) < 0) {
        sevOwnerError(_("cannot format the reply: %1$s"), virGetLastErrorMessage());
        return -1;
    }

    return sevOwnerReply(out, reply);
}


/* The platform's certificate chain (the request's platform.pdh and
 * platform.cert-chain, as QEMU's query-sev-capabilities exports them),
 * verified under the owner's policy (owner.conf: roots, allowed chips,
 * minimum API version and build) before a session is made for its PDH
 * and again before a secret is released under such a session. A PDH that
 * does not chain to a root the owner accepts may be a key the host holds
 * itself: it could unwrap the session's TEK and TIK and read the secret.
 * At "session" the firmware build is not known yet; at "attest" @buildId
 * is the one the launch measurement covers, and min-build applies to it.
 * With cek-dir in owner.conf, the CEK is the one AMD's key distribution
 * service gave for the chip (cek-dir/CPU0ID.cert, CPU0ID the request's
 * platform.cpu0-id in hex), and must carry the key of the platform's CEK.
 *
 * Returns 0 if the chain verifies, 1 with @reason if it does not, -1 on
 * a malformed request. */
static int
sevOwnerAgentVerifyPlatform(const sevOwnerConf *conf,
                            virJSONValue *platform,
                            const sevOwnerBuf *pdhCert,
                            int buildId,
                            sevOwnerAgentResult *out,
                            char **reason)
{
    g_auto(sevOwnerBuf) certChain = { 0 };
    g_auto(sevOwnerBuf) cpu0 = { 0 };
    g_auto(sevOwnerBuf) cek = { 0 };
    sevOwnerChainPolicy policy = conf->chain;
    sevOwnerChain chain = { 0 };
    sevOwnerChainResult res;
    const char *str;
    int rc;

    if (!(str = sevOwnerJSONString(platform, "platform", "cert-chain", false)) ||
        !*str) {
        if (virJSONValueObjectHasKey(platform, "cert-chain") &&
            virJSONValueGetType(virJSONValueObjectGet(platform, "cert-chain")) !=
            VIR_JSON_TYPE_STRING)
            return -1;
        *reason = g_strdup(_("the platform presents no certificate chain (platform.cert-chain)"));
        return 1;
    }
    if (sevOwnerDecodeBase64(_("malformed request: platform.cert-chain"),
                             str, 0, &certChain) < 0)
        return -1;

    chain.pdh = pdhCert->data;
    chain.pdhLen = pdhCert->len;
    if ((rc = sevOwnerSplitCertChain(certChain.data, certChain.len,
                                     &chain, reason)) != 0)
        return rc < 0 ? -1 : 1;

    if (conf->cekDir) {
        g_autofree char *hex = NULL;
        g_autofree char *file = NULL;
        g_autofree char *path = NULL;
        size_t i;

        if (sevOwnerJSONBase64(platform, "platform", "cpu0-id", 0, &cpu0) < 0)
            return -1;
        if (cpu0.len == 0 || cpu0.len > 64) {
            *reason = g_strdup_printf(_("the platform presents no valid chip id (platform.cpu0-id: %1$zu bytes)"),
                                      cpu0.len);
            return 1;
        }
        hex = g_malloc0(cpu0.len * 2 + 1);
        for (i = 0; i < cpu0.len; i++)
            g_snprintf(hex + 2 * i, 3, "%02x", cpu0.data[i]);
        file = g_strdup_printf("%s.cert", hex);
        path = g_build_filename(conf->cekDir, file, NULL);
        if (!virFileExists(path)) {
            *reason = g_strdup_printf(_("CEK: cek-dir has no CEK from AMD's key distribution service for chip %1$s"),
                                      hex);
            return 1;
        }
        if (sevOwnerReadBlobFile(path, &cek) < 0)
            return -1;
        if (!chain.cek || cek.len != SEV_CERT_SIZE ||
            memcmp(chain.cek + SEV_CERT_OFF_PUBKEY,
                   cek.data + SEV_CERT_OFF_PUBKEY,
                   SEV_CERT_BODY_SIZE - SEV_CERT_OFF_PUBKEY) != 0) {
            *reason = g_strdup_printf(_("CEK: the platform's CEK is not the key of the CEK that AMD's key distribution service gave for chip %1$s"),
                                      hex);
            return 1;
        }
        chain.cek = cek.data;
        chain.cekLen = cek.len;
    }

    /* the chip's identity, for the audit record, even when the chain is
     * refused below */
    if (!out->chip && chain.cek) {
        uint8_t chip[SEV_CHIP_ID_SIZE];

        if (sevOwnerChainChipId(chain.cek, chain.cekLen, chip) == 0) {
            size_t i;

            out->chip = g_malloc0(2 * SEV_CHIP_ID_SIZE + 1);
            for (i = 0; i < SEV_CHIP_ID_SIZE; i++)
                g_snprintf(out->chip + 2 * i, 3, "%02x", chip[i]);
        }
    }

    if (buildId >= 0) {
        chain.buildSet = true;
        chain.build = buildId;
    } else {
        /* the policy is a shallow copy: nothing of it is freed here */
        policy.minBuildSet = false;
    }

    if ((rc = sevOwnerVerifyChain(&chain, &policy, NULL, &res, reason)) != 0)
        return rc < 0 ? -1 : 1;

    g_printerr(_("%1$s: the platform's certificate chain verified to root '%2$s'\n"),
               progname, res.root);
    return 0;
}


/* The "session" operation: a fresh launch session for the target's PDH,
 * with the owner's key and fresh TEK, TIK, nonce and IV. */
static int
sevOwnerAgentSession(sevOwnerAgentResult *out,
                     const sevOwnerConf *conf,
                     const sevOwnerECKey *odh,
                     const sevOwnerPubKey *pdh,
                     virJSONValue *platform,
                     const sevOwnerBuf *pdhCert)
{
    g_autoptr(virJSONValue) reply = NULL;
    g_autofree char *reason = NULL;
    g_autofree char *certB64 = NULL;
    g_autofree char *sessionB64 = NULL;
    g_auto(sevOwnerTK) tk = { { 0 }, { 0 } };
    sevOwnerPubKey odhPub;
    uint8_t nonce[SEV_NONCE_SIZE];
    uint8_t iv[SEV_IV_SIZE];
    g_autofree uint8_t *cert = g_new0(uint8_t, SEV_CERT_SIZE);
    uint8_t session[SEV_SESSION_SIZE];
    int rc;

    if ((rc = sevOwnerAgentVerifyPlatform(conf, platform, pdhCert, -1, out, &reason)) != 0)
        return rc < 0 ? -1 : sevOwnerRefuse(out, reason);

    if (sevOwnerRandom(GNUTLS_RND_NONCE, nonce, sizeof(nonce)) < 0 ||
        sevOwnerRandom(GNUTLS_RND_NONCE, iv, sizeof(iv)) < 0 ||
        sevOwnerRandom(GNUTLS_RND_KEY, (uint8_t *)&tk, sizeof(tk)) < 0)
        return -1;

    if (sevOwnerMakeSession(odh, pdh, conf->policy, &tk, nonce, iv, session) < 0)
        return -1;

    odhPub.apiMajor = pdh->apiMajor;
    odhPub.apiMinor = pdh->apiMinor;
    memcpy(odhPub.x, odh->x, P384_SIZE);
    memcpy(odhPub.y, odh->y, P384_SIZE);
    sevOwnerBuildCert(&odhPub, cert);

    certB64 = g_base64_encode(cert, SEV_CERT_SIZE);
    sessionB64 = g_base64_encode(session, sizeof(session));

    if (virJSONValueObjectAdd(&reply,
                              "s:dh-cert", certB64,
                              "s:session", sessionB64,
                              NULL) < 0) {
        sevOwnerError(_("cannot format the reply: %1$s"), virGetLastErrorMessage());
        return -1;
    }

    g_printerr(_("%1$s: session created for the platform's PDH\n"), progname);
    out->verdict = "session";
    return sevOwnerReply(out, reply);
}


/* The "attest" operation: recover TEK and TIK from the launch session,
 * check policy and measurement, return the secret. */
static int
sevOwnerAgentAttest(sevOwnerAgentResult *out,
                    const sevOwnerConf *conf,
                    const sevOwnerECKey *odh,
                    const sevOwnerPubKey *pdh,
                    virJSONValue *platform,
                    const sevOwnerBuf *pdhCert,
                    virJSONValue *request)
{
    g_autoptr(virJSONValue) reply = NULL;
    g_auto(sevOwnerBuf) dhCert = { 0 };
    g_auto(sevOwnerBuf) session = { 0 };
    g_auto(sevOwnerBuf) measurement = { 0 };
    g_auto(sevOwnerBuf) table = { 0 };
    g_auto(sevOwnerTK) tk = { { 0 }, { 0 } };
    g_autofree uint8_t *data = NULL;
    g_autofree char *headerB64 = NULL;
    g_autofree char *dataB64 = NULL;
    g_autofree char *reason = NULL;
    virJSONValue *launchObj;
    sevOwnerPubKey launchODH;
    sevOwnerLaunch launch = { 0 };
    uint8_t expected[SEV_MEASURE_SIZE];
    uint8_t key[TRANSPORT_KEY_SIZE];
    uint8_t iv[SEV_IV_SIZE];
    uint8_t header[SEV_SECRET_HEADER_SIZE];
    const char *sourceKeyId;
    int rc;
    int ret = -1;

    if (!(launchObj = virJSONValueObjectGet(request, "launch")) ||
        !virJSONValueIsObject(launchObj)) {
        sevOwnerError("%s", _("malformed request: an attest request needs a 'launch' object"));
        return -1;
    }

    if (sevOwnerJSONBase64(launchObj, "launch", "dh-cert", 0, &dhCert) < 0 ||
        sevOwnerParseCert(_("malformed request: launch.dh-cert"),
                          dhCert.data, dhCert.len, &launchODH) < 0 ||
        sevOwnerJSONBase64(launchObj, "launch", "session",
                           SEV_SESSION_SIZE, &session) < 0 ||
        sevOwnerJSONBase64(launchObj, "launch", "measurement",
                           SEV_MEASURE_SIZE, &measurement) < 0 ||
        sevOwnerJSONUInt(launchObj, "launch", "api-major", UINT8_MAX,
                         &launch.apiMajor) < 0 ||
        sevOwnerJSONUInt(launchObj, "launch", "api-minor", UINT8_MAX,
                         &launch.apiMinor) < 0 ||
        sevOwnerJSONUInt(launchObj, "launch", "build-id", UINT8_MAX,
                         &launch.buildId) < 0 ||
        sevOwnerJSONUInt(launchObj, "launch", "policy", UINT32_MAX,
                         &launch.policy) < 0)
        return -1;

    if (virJSONValueObjectHasKey(request, "source-key-id")) {
        if (!(sourceKeyId = sevOwnerJSONString(request, "request",
                                               "source-key-id", true)))
            return -1;
        /* libvirt compares the key identifiers itself (the migration
         * cookie); the agent only reports what the source holds */
        if (!sevOwnerKeyIdValid(sourceKeyId)) {
            sevOwnerError("%s", _("malformed request: source-key-id is not a key identifier"));
            return -1;
        }
    }

    /* the measurement and its nonce (not secret), for the audit record */
    out->measurement = g_base64_encode(measurement.data, measurement.len);
    out->keyId = g_strdup(conf->keyId);

    if (launch.policy != conf->policy) {
        reason = g_strdup_printf(_("the guest was launched with policy 0x%1$x, the owner requires 0x%2$x"),
                                 launch.policy, conf->policy);
        return sevOwnerRefuse(out, reason);
    }

    /* the session is unwrapped with the PDH the request names: it must be
     * a genuine platform's, and the build the measurement covers must be
     * one the owner accepts */
    if ((rc = sevOwnerAgentVerifyPlatform(conf, platform, pdhCert,
                                          launch.buildId, out, &reason)) != 0)
        return rc < 0 ? -1 : sevOwnerRefuse(out, reason);

    /* the session must have been made with this owner's key */
    if (memcmp(launchODH.x, odh->x, P384_SIZE) != 0 ||
        memcmp(launchODH.y, odh->y, P384_SIZE) != 0)
        return sevOwnerRefuse(out, _("the launch's dh-cert is not this guest owner's key"));

    if ((rc = sevOwnerUnwrapSession(odh, pdh, session.data, launch.policy, &tk)) < 0)
        return -1;

    switch ((sevOwnerUnwrapResult) rc) {
    case SEV_OWNER_UNWRAP_BAD_WRAP_MAC:
        return sevOwnerRefuse(out, _("the launch session was not made for this platform's PDH by this owner (wrap MAC mismatch)"));
    case SEV_OWNER_UNWRAP_BAD_POLICY_MAC:
        return sevOwnerRefuse(out, _("the launch session does not match the launch policy (policy MAC mismatch)"));
    case SEV_OWNER_UNWRAP_OK:
        break;
    }

    launch.firmware = conf->firmware;
    launch.kernel = conf->kernel;
    launch.initrd = conf->initrd;
    launch.cmdline = conf->cmdline;

    if (sevOwnerMeasure(&launch, tk.tik, measurement.data + SEV_MAC_SIZE,
                        expected) < 0)
        return -1;

    if (!memeql_sec(expected, measurement.data, SEV_MEASURE_SIZE))
        return sevOwnerRefuse(out, _("the launch measurement does not match the owner's firmware and policy"));

    if (sevOwnerReadRawKey(conf->transportKey, key, sizeof(key)) < 0 ||
        sevOwnerRandom(GNUTLS_RND_NONCE, iv, sizeof(iv)) < 0)
        goto cleanup;

    sevOwnerSecretTable(key, conf->keyId, &table);
    sevOwnerSecretPacket(&tk, measurement.data, iv, &table, header, &data);

    headerB64 = g_base64_encode(header, sizeof(header));
    dataB64 = g_base64_encode(data, table.len);

    if (virJSONValueObjectAdd(&reply,
                              "s:secret-header", headerB64,
                              "s:secret", dataB64,
                              "s:key-id", conf->keyId,
                              NULL) < 0) {
        sevOwnerError(_("cannot format the reply: %1$s"), virGetLastErrorMessage());
        goto cleanup;
    }

    g_printerr(_("%1$s: measurement verified, secret for key id '%2$s' released\n"),
               progname, conf->keyId);
    out->verdict = "released";
    ret = sevOwnerReply(out, reply);

 cleanup:
    virSecureErase(key, sizeof(key));
    return ret;
}


/*
 * Handles one request of the agent's protocol (@input, JSON) with the
 * guest owner's directory @ownerDir (owner.conf read anew). Returns 0
 * with the reply in @out->reply (a session, a secret or a refusal), -1 on
 * a malformed request or an error (reported on stderr). @out also
 * receives what the audit record names; never a secret.
 */
int
sevOwnerAgentHandle(const char *ownerDir,
                    const char *input,
                    sevOwnerAgentResult *out)
{
    g_auto(sevOwnerConf) conf = { 0 };
    g_auto(sevOwnerECKey) odh = { { 0 }, { 0 }, { 0 } };
    g_autoptr(virJSONValue) request = NULL;
    g_auto(sevOwnerBuf) pdhCert = { 0 };
    virJSONValue *platform;
    const char *operation;
    const char *domainName = NULL;
    sevOwnerPubKey pdh;
    unsigned int version;
    unsigned int policy;

    if (!(request = virJSONValueFromString(input)) ||
        !virJSONValueIsObject(request)) {
        sevOwnerError("%s", _("malformed request: not a JSON object"));
        return -1;
    }

    if (sevOwnerJSONUInt(request, "request", "version", UINT32_MAX, &version) < 0)
        return -1;
    if (version != 1) {
        sevOwnerError(_("malformed request: unsupported version %1$u"), version);
        return -1;
    }

    if (!(operation = sevOwnerJSONString(request, "request", "operation", true)))
        return -1;
    if (STRNEQ(operation, "session") && STRNEQ(operation, "attest")) {
        sevOwnerError(_("malformed request: unknown operation '%1$s'"), operation);
        return -1;
    }
    out->operation = g_strdup(operation);

    if (virJSONValueObjectHasKey(request, "domain")) {
        virJSONValue *domain = virJSONValueObjectGet(request, "domain");

        if (!virJSONValueIsObject(domain)) {
            sevOwnerError("%s", _("malformed request: 'domain' must be an object"));
            return -1;
        }
        if (virJSONValueObjectHasKey(domain, "name") &&
            !(domainName = sevOwnerJSONString(domain, "domain", "name", true)))
            return -1;
        out->domain = g_strdup(domainName);
    }

    if (sevOwnerJSONUInt(request, "request", "policy", UINT32_MAX, &policy) < 0)
        return -1;

    if (!(platform = virJSONValueObjectGet(request, "platform")) ||
        !virJSONValueIsObject(platform)) {
        sevOwnerError("%s", _("malformed request: no 'platform' object"));
        return -1;
    }

    if (sevOwnerJSONBase64(platform, "platform", "pdh", 0, &pdhCert) < 0 ||
        sevOwnerParseCert(_("malformed request: platform.pdh"),
                          pdhCert.data, pdhCert.len, &pdh) < 0)
        return -1;

    if (sevOwnerConfLoad(ownerDir, true, &conf) < 0 ||
        sevOwnerLoadKey(conf.odhKey, &odh) < 0)
        return -1;

    g_printerr(_("%1$s: %2$s request for domain '%3$s'\n"),
               progname, operation, NULLSTR(domainName));

    if (policy != conf.policy) {
        g_autofree char *reason = NULL;

        reason = g_strdup_printf(_("the domain's policy 0x%1$x is not the owner's required policy 0x%2$x"),
                                 policy, conf.policy);
        return sevOwnerRefuse(out, reason);
    }

    if (STREQ(operation, "session"))
        return sevOwnerAgentSession(out, &conf, &odh, &pdh, platform, &pdhCert);

    return sevOwnerAgentAttest(out, &conf, &odh, &pdh, platform, &pdhCert, request);
}


/* Reads at most AGENT_REQUEST_MAX bytes of request from @fd. */
char *
sevOwnerAgentReadRequest(int fd)
{
    g_autofree char *input = NULL;

    if (virFileReadLimFD(fd, AGENT_REQUEST_MAX, &input) < 0) {
        sevOwnerError(_("cannot read the request: %1$s"), virGetLastErrorMessage());
        return NULL;
    }
    return g_steal_pointer(&input);
}


/* 'agent --owner-dir DIR': the owner's directory on the host itself; for
 * tests only (see the man page). */
int
sevOwnerAgentLocal(const char *ownerDir)
{
    g_auto(sevOwnerAgentResult) out = { 0 };
    g_autofree char *input = NULL;

    if (!(input = sevOwnerAgentReadRequest(STDIN_FILENO)))
        return -1;

    if (sevOwnerAgentHandle(ownerDir, input, &out) < 0)
        return -1;

    printf("%s\n", out.reply);
    if (fflush(stdout) != 0) {
        sevOwnerError(_("cannot write the reply: %1$s"), g_strerror(errno));
        return -1;
    }
    return 0;
}
