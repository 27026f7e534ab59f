/*
 * virt-qemu-sev-owner-cmd.c: the command line and the commands keygen,
 * session, unwrap, measure, verify and secret
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

#include "virt-qemu-sev-owner-cmd.h"

#define VIR_FROM_THIS VIR_FROM_NONE


/* ------------------------------------------------------------------ */
/* Command line                                                         */
/* ------------------------------------------------------------------ */



const char *
sevOwnerOptGet(sevOwnerOpt *opts,
               const char *name)
{
    for (; opts->name; opts++) {
        if (STREQ(opts->name, name))
            return opts->value;
    }
    return NULL;
}


/* --name VALUE or --name=VALUE, each option at most once. */
int
sevOwnerParseOpts(const char *cmd,
                  int argc,
                  char **argv,
                  sevOwnerOpt *opts)
{
    size_t i;
    sevOwnerOpt *opt;

    for (i = 0; i < (size_t)argc; i++) {
        const char *arg = argv[i];
        g_autofree char *name = NULL;
        const char *value = NULL;
        const char *eq;

        if (!STRPREFIX(arg, "--") || !arg[2]) {
            sevOwnerError(_("%1$s: unexpected argument '%2$s'"), cmd, arg);
            return -1;
        }

        if ((eq = strchr(arg, '='))) {
            name = g_strndup(arg + 2, eq - arg - 2);
            value = eq + 1;
        } else {
            name = g_strdup(arg + 2);
        }

        for (opt = opts; opt->name; opt++) {
            if (STREQ(opt->name, name))
                break;
        }
        if (!opt->name) {
            sevOwnerError(_("%1$s: unknown option '--%2$s'"), cmd, name);
            return -1;
        }
        if (opt->value) {
            sevOwnerError(_("%1$s: option '--%2$s' given twice"), cmd, name);
            return -1;
        }

        if (!value) {
            if (i + 1 >= (size_t)argc) {
                sevOwnerError(_("%1$s: option '--%2$s' needs a value"), cmd, name);
                return -1;
            }
            value = argv[++i];
        }
        opt->value = value;
    }

    for (opt = opts; opt->name; opt++) {
        if (opt->required && !opt->value) {
            sevOwnerError(_("%1$s: option '--%2$s' is required"), cmd, opt->name);
            return -1;
        }
    }

    return 0;
}


/* ------------------------------------------------------------------ */
/* keygen                                                               */
/* ------------------------------------------------------------------ */

/* The key in SEC1 form (RFC 5915, "EC PRIVATE KEY"), DER: version 1, the
 * private value as an OCTET STRING of exactly 48 bytes, the curve
 * secp384r1, the public point uncompressed. gnutls 3.7 would write the
 * private value with a leading zero byte whenever its top bit is set,
 * which RFC 5915 does not allow and strict readers refuse. */
static void
sevOwnerKeyToSEC1(const sevOwnerECKey *key,
                  uint8_t *der,
                  size_t *len)
{
    static const uint8_t secp384r1[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
    size_t off = 0;

    der[off++] = 0x30;                       /* SEQUENCE of 164 bytes */
    der[off++] = 0x81;
    der[off++] = 0xa4;
    der[off++] = 0x02;                       /* version 1 */
    der[off++] = 0x01;
    der[off++] = 0x01;
    der[off++] = 0x04;                       /* privateKey */
    der[off++] = P384_SIZE;
    memcpy(der + off, key->d, P384_SIZE);
    off += P384_SIZE;
    der[off++] = 0xa0;                       /* [0] parameters */
    der[off++] = sizeof(secp384r1);
    memcpy(der + off, secp384r1, sizeof(secp384r1));
    off += sizeof(secp384r1);
    der[off++] = 0xa1;                       /* [1] publicKey */
    der[off++] = 4 + 2 * P384_SIZE;
    der[off++] = 0x03;                       /* BIT STRING */
    der[off++] = 2 + 2 * P384_SIZE;
    der[off++] = 0x00;                       /* no unused bits */
    der[off++] = 0x04;                       /* uncompressed point */
    memcpy(der + off, key->x, P384_SIZE);
    off += P384_SIZE;
    memcpy(der + off, key->y, P384_SIZE);
    off += P384_SIZE;
    *len = off;
}


int
cmdKeygen(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { "out", true, NULL },
        { NULL, false, NULL },
    };
    gnutls_x509_privkey_t pkey = NULL;
    sevOwnerECKey key = { 0 };
    uint8_t der[3 + 164];
    size_t derlen = 0;
    g_autofree char *b64 = NULL;
    g_autoptr(GString) pem = NULL;
    size_t i;
    int ret = -1;
    int rc;

    if (sevOwnerParseOpts("keygen", argc, argv, opts) < 0)
        return -1;

    if ((rc = gnutls_x509_privkey_init(&pkey)) < 0 ||
        (rc = gnutls_x509_privkey_generate2(pkey, GNUTLS_PK_ECDSA,
                                            GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1),
                                            0, NULL, 0)) < 0) {
        sevOwnerError(_("cannot generate a P-384 key: %1$s"), gnutls_strerror(rc));
        goto cleanup;
    }

    if (sevOwnerKeyFromGnutls(pkey, sevOwnerOptGet(opts, "out"), &key) < 0)
        goto cleanup;

    sevOwnerKeyToSEC1(&key, der, &derlen);
    b64 = g_base64_encode(der, derlen);
    pem = g_string_new("-----BEGIN EC PRIVATE KEY-----\n");
    for (i = 0; i < strlen(b64); i += 64)
        g_string_append_printf(pem, "%.64s\n", b64 + i);
    g_string_append(pem, "-----END EC PRIVATE KEY-----\n");

    /* never replace an existing key of the owner */
    if (sevOwnerWriteFile(sevOwnerOptGet(opts, "out"), (const uint8_t *) pem->str,
                          pem->len, true, true) < 0)
        goto cleanup;

    ret = 0;

 cleanup:
    virSecureErase(&key, sizeof(key));
    virSecureErase(der, sizeof(der));
    if (b64)
        virSecureErase(b64, strlen(b64));
    if (pem)
        virSecureErase(pem->str, pem->len);
    if (pkey)
        gnutls_x509_privkey_deinit(pkey);
    return ret;
}


/* ------------------------------------------------------------------ */
/* session / unwrap                                                     */
/* ------------------------------------------------------------------ */

static int
sevOwnerLoadPDH(const char *path,
                sevOwnerPubKey *pdh)
{
    g_auto(sevOwnerBuf) cert = { 0 };
    g_autofree char *what = g_strdup_printf(_("the PDH in '%1$s'"), path);

    if (sevOwnerReadBase64File(path, 0, &cert) < 0 ||
        sevOwnerParseCert(what, cert.data, cert.len, pdh) < 0)
        return -1;

    return 0;
}


int
cmdSession(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { "pdh", true, NULL },
        { "policy", true, NULL },
        { "odh-key", true, NULL },
        { "dh-cert-out", true, NULL },
        { "session-out", true, NULL },
        { "tek-out", false, NULL },
        { "tik-out", false, NULL },
        /* fixed inputs, for known-answer tests only */
        { "nonce", false, NULL },
        { "tek", false, NULL },
        { "tik", false, NULL },
        { "wrap-iv", false, NULL },
        { NULL, false, NULL },
    };
    sevOwnerPubKey pdh;
    sevOwnerPubKey odhPub;
    g_auto(sevOwnerECKey) odh = { { 0 }, { 0 }, { 0 } };
    g_auto(sevOwnerTK) tk = { { 0 }, { 0 } };
    uint8_t nonce[SEV_NONCE_SIZE];
    uint8_t iv[SEV_IV_SIZE];
    g_autofree uint8_t *cert = g_new0(uint8_t, SEV_CERT_SIZE);
    uint8_t session[SEV_SESSION_SIZE];
    unsigned int policy;
    const char *val;

    if (sevOwnerParseOpts("session", argc, argv, opts) < 0)
        return -1;

    if (sevOwnerParseUInt(_("policy"), sevOwnerOptGet(opts, "policy"),
                          UINT32_MAX, &policy) < 0 ||
        sevOwnerLoadPDH(sevOwnerOptGet(opts, "pdh"), &pdh) < 0 ||
        sevOwnerLoadKey(sevOwnerOptGet(opts, "odh-key"), &odh) < 0)
        return -1;

    if ((val = sevOwnerOptGet(opts, "nonce"))) {
        if (sevOwnerParseHex("--nonce", val, nonce, sizeof(nonce)) < 0)
            return -1;
    } else if (sevOwnerRandom(GNUTLS_RND_NONCE, nonce, sizeof(nonce)) < 0) {
        return -1;
    }

    if ((val = sevOwnerOptGet(opts, "wrap-iv"))) {
        if (sevOwnerParseHex("--wrap-iv", val, iv, sizeof(iv)) < 0)
            return -1;
    } else if (sevOwnerRandom(GNUTLS_RND_NONCE, iv, sizeof(iv)) < 0) {
        return -1;
    }

    if ((val = sevOwnerOptGet(opts, "tek"))) {
        if (sevOwnerParseHex("--tek", val, tk.tek, sizeof(tk.tek)) < 0)
            return -1;
    } else if (sevOwnerRandom(GNUTLS_RND_KEY, tk.tek, sizeof(tk.tek)) < 0) {
        return -1;
    }

    if ((val = sevOwnerOptGet(opts, "tik"))) {
        if (sevOwnerParseHex("--tik", val, tk.tik, sizeof(tk.tik)) < 0)
            return -1;
    } else if (sevOwnerRandom(GNUTLS_RND_KEY, tk.tik, sizeof(tk.tik)) < 0) {
        return -1;
    }

    if (sevOwnerMakeSession(&odh, &pdh, policy, &tk, nonce, iv, session) < 0)
        return -1;

    /* the owner's certificate carries the platform's API version */
    odhPub.apiMajor = pdh.apiMajor;
    odhPub.apiMinor = pdh.apiMinor;
    memcpy(odhPub.x, odh.x, P384_SIZE);
    memcpy(odhPub.y, odh.y, P384_SIZE);
    sevOwnerBuildCert(&odhPub, cert);

    if ((val = sevOwnerOptGet(opts, "tek-out")) &&
        sevOwnerWriteFile(val, tk.tek, sizeof(tk.tek), true, false) < 0)
        return -1;
    if ((val = sevOwnerOptGet(opts, "tik-out")) &&
        sevOwnerWriteFile(val, tk.tik, sizeof(tk.tik), true, false) < 0)
        return -1;

    if (sevOwnerWriteBase64File(sevOwnerOptGet(opts, "dh-cert-out"),
                                cert, SEV_CERT_SIZE) < 0 ||
        sevOwnerWriteBase64File(sevOwnerOptGet(opts, "session-out"),
                                session, sizeof(session)) < 0)
        return -1;

    return 0;
}


int
cmdUnwrap(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { "pdh-key", true, NULL },
        { "dh-cert", true, NULL },
        { "session", true, NULL },
        { "policy", true, NULL },
        { "tek-out", false, NULL },
        { "tik-out", false, NULL },
        { NULL, false, NULL },
    };
    g_auto(sevOwnerECKey) pdhKey = { { 0 }, { 0 }, { 0 } };
    g_auto(sevOwnerTK) tk = { { 0 }, { 0 } };
    g_auto(sevOwnerBuf) certBuf = { 0 };
    g_auto(sevOwnerBuf) session = { 0 };
    g_autofree char *what = NULL;
    sevOwnerPubKey odh;
    unsigned int policy;
    const char *val;
    int rc;

    if (sevOwnerParseOpts("unwrap", argc, argv, opts) < 0)
        return -1;

    what = g_strdup_printf(_("the certificate in '%1$s'"),
                           sevOwnerOptGet(opts, "dh-cert"));

    if (sevOwnerParseUInt(_("policy"), sevOwnerOptGet(opts, "policy"),
                          UINT32_MAX, &policy) < 0 ||
        sevOwnerLoadKey(sevOwnerOptGet(opts, "pdh-key"), &pdhKey) < 0 ||
        sevOwnerReadBase64File(sevOwnerOptGet(opts, "dh-cert"), 0, &certBuf) < 0 ||
        sevOwnerParseCert(what, certBuf.data, certBuf.len, &odh) < 0 ||
        sevOwnerReadBase64File(sevOwnerOptGet(opts, "session"),
                               SEV_SESSION_SIZE, &session) < 0)
        return -1;

    if ((rc = sevOwnerUnwrapSession(&pdhKey, &odh, session.data, policy, &tk)) < 0)
        return -1;

    switch ((sevOwnerUnwrapResult) rc) {
    case SEV_OWNER_UNWRAP_BAD_WRAP_MAC:
        sevOwnerError("%s", _("the session does not verify: wrap MAC mismatch (other key pair or nonce)"));
        return -1;
    case SEV_OWNER_UNWRAP_BAD_POLICY_MAC:
        sevOwnerError("%s", _("the session does not verify: policy MAC mismatch"));
        return -1;
    case SEV_OWNER_UNWRAP_OK:
        break;
    }

    if ((val = sevOwnerOptGet(opts, "tek-out")) &&
        sevOwnerWriteFile(val, tk.tek, sizeof(tk.tek), true, false) < 0)
        return -1;
    if ((val = sevOwnerOptGet(opts, "tik-out")) &&
        sevOwnerWriteFile(val, tk.tik, sizeof(tk.tik), true, false) < 0)
        return -1;

    printf("ok\n");
    return 0;
}


/* ------------------------------------------------------------------ */
/* measure / verify                                                     */
/* ------------------------------------------------------------------ */

static int
sevOwnerLaunchFromOpts(sevOwnerOpt *opts,
                       sevOwnerLaunch *launch)
{
    memset(launch, 0, sizeof(*launch));
    launch->firmware = sevOwnerOptGet(opts, "firmware");
    launch->kernel = sevOwnerOptGet(opts, "kernel");
    launch->initrd = sevOwnerOptGet(opts, "initrd");
    launch->cmdline = sevOwnerOptGet(opts, "cmdline");

    if (!launch->kernel && (launch->initrd || launch->cmdline)) {
        sevOwnerError("%s", _("--initrd and --cmdline are measured only with --kernel (kernel hashes)"));
        return -1;
    }

    if (sevOwnerParseUInt("--api-major", sevOwnerOptGet(opts, "api-major"),
                          UINT8_MAX, &launch->apiMajor) < 0 ||
        sevOwnerParseUInt("--api-minor", sevOwnerOptGet(opts, "api-minor"),
                          UINT8_MAX, &launch->apiMinor) < 0 ||
        sevOwnerParseUInt("--build-id", sevOwnerOptGet(opts, "build-id"),
                          UINT8_MAX, &launch->buildId) < 0 ||
        sevOwnerParseUInt("--policy", sevOwnerOptGet(opts, "policy"),
                          UINT32_MAX, &launch->policy) < 0)
        return -1;

    return 0;
}


#define SEV_OWNER_LAUNCH_OPTS \
    { "firmware", true, NULL }, \
    { "kernel", false, NULL }, \
    { "initrd", false, NULL }, \
    { "cmdline", false, NULL }, \
    { "api-major", true, NULL }, \
    { "api-minor", true, NULL }, \
    { "build-id", true, NULL }, \
    { "policy", true, NULL }, \
    { "tik", true, NULL }


int
cmdMeasure(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        SEV_OWNER_LAUNCH_OPTS,
        { "mnonce", true, NULL },
        { NULL, false, NULL },
    };
    sevOwnerLaunch launch;
    g_auto(sevOwnerTK) tk = { { 0 }, { 0 } };
    g_auto(sevOwnerBuf) mnonce = { 0 };
    g_autofree char *b64 = NULL;
    uint8_t measurement[SEV_MEASURE_SIZE];

    if (sevOwnerParseOpts("measure", argc, argv, opts) < 0 ||
        sevOwnerLaunchFromOpts(opts, &launch) < 0 ||
        sevOwnerReadRawKey(sevOwnerOptGet(opts, "tik"), tk.tik, sizeof(tk.tik)) < 0 ||
        sevOwnerDecodeBase64("--mnonce", sevOwnerOptGet(opts, "mnonce"),
                             SEV_NONCE_SIZE, &mnonce) < 0)
        return -1;

    if (sevOwnerMeasure(&launch, tk.tik, mnonce.data, measurement) < 0)
        return -1;

    b64 = g_base64_encode(measurement, sizeof(measurement));
    printf("%s\n", b64);
    return 0;
}


/* Returns 1 on a match, 0 on a mismatch, -1 on error. */
int
cmdVerify(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        SEV_OWNER_LAUNCH_OPTS,
        { "mnonce", false, NULL },
        { "measurement", true, NULL },
        { NULL, false, NULL },
    };
    sevOwnerLaunch launch;
    g_auto(sevOwnerTK) tk = { { 0 }, { 0 } };
    g_auto(sevOwnerBuf) reported = { 0 };
    g_auto(sevOwnerBuf) mnonce = { 0 };
    uint8_t expected[SEV_MEASURE_SIZE];

    if (sevOwnerParseOpts("verify", argc, argv, opts) < 0 ||
        sevOwnerLaunchFromOpts(opts, &launch) < 0 ||
        sevOwnerReadRawKey(sevOwnerOptGet(opts, "tik"), tk.tik, sizeof(tk.tik)) < 0 ||
        sevOwnerDecodeBase64("--measurement", sevOwnerOptGet(opts, "measurement"),
                             SEV_MEASURE_SIZE, &reported) < 0)
        return -1;

    if (sevOwnerOptGet(opts, "mnonce")) {
        if (sevOwnerDecodeBase64("--mnonce", sevOwnerOptGet(opts, "mnonce"),
                                 SEV_NONCE_SIZE, &mnonce) < 0)
            return -1;
        if (memcmp(mnonce.data, reported.data + SEV_MAC_SIZE, SEV_NONCE_SIZE) != 0) {
            g_printerr("%s\n", _("mismatch: the measurement's nonce is not --mnonce"));
            return 0;
        }
    }

    if (sevOwnerMeasure(&launch, tk.tik, reported.data + SEV_MAC_SIZE,
                        expected) < 0)
        return -1;

    if (!memeql_sec(expected, reported.data, SEV_MEASURE_SIZE)) {
        g_printerr("%s\n", _("mismatch: the launch measurement is not the expected one"));
        return 0;
    }

    printf("match\n");
    return 1;
}


/* ------------------------------------------------------------------ */
/* secret                                                               */
/* ------------------------------------------------------------------ */

int
cmdSecret(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { "measurement", true, NULL },
        { "tek", true, NULL },
        { "tik", true, NULL },
        { "transport-key", true, NULL },
        { "key-id", true, NULL },
        { "header-out", true, NULL },
        { "secret-out", true, NULL },
        { "iv", false, NULL },
        { NULL, false, NULL },
    };
    g_auto(sevOwnerTK) tk = { { 0 }, { 0 } };
    g_auto(sevOwnerBuf) measurement = { 0 };
    g_auto(sevOwnerBuf) table = { 0 };
    g_autofree uint8_t *data = NULL;
    uint8_t key[TRANSPORT_KEY_SIZE];
    uint8_t iv[SEV_IV_SIZE];
    uint8_t header[SEV_SECRET_HEADER_SIZE];
    const char *keyId;
    const char *val;
    int ret = -1;

    if (sevOwnerParseOpts("secret", argc, argv, opts) < 0)
        return -1;

    keyId = sevOwnerOptGet(opts, "key-id");
    if (!sevOwnerKeyIdValid(keyId)) {
        sevOwnerError("%s", _("--key-id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -"));
        return -1;
    }

    if (sevOwnerDecodeBase64("--measurement", sevOwnerOptGet(opts, "measurement"),
                             SEV_MEASURE_SIZE, &measurement) < 0 ||
        sevOwnerReadRawKey(sevOwnerOptGet(opts, "tek"), tk.tek, sizeof(tk.tek)) < 0 ||
        sevOwnerReadRawKey(sevOwnerOptGet(opts, "tik"), tk.tik, sizeof(tk.tik)) < 0 ||
        sevOwnerReadRawKey(sevOwnerOptGet(opts, "transport-key"),
                           key, sizeof(key)) < 0)
        goto cleanup;

    if ((val = sevOwnerOptGet(opts, "iv"))) {
        if (sevOwnerParseHex("--iv", val, iv, sizeof(iv)) < 0)
            goto cleanup;
    } else if (sevOwnerRandom(GNUTLS_RND_NONCE, iv, sizeof(iv)) < 0) {
        goto cleanup;
    }

    sevOwnerSecretTable(key, keyId, &table);
    sevOwnerSecretPacket(&tk, measurement.data, iv, &table, header, &data);

    if (sevOwnerWriteBase64File(sevOwnerOptGet(opts, "header-out"),
                                header, sizeof(header)) < 0 ||
        sevOwnerWriteBase64File(sevOwnerOptGet(opts, "secret-out"),
                                data, table.len) < 0)
        goto cleanup;

    ret = 0;

 cleanup:
    virSecureErase(key, sizeof(key));
    return ret;
}
