/*
 * The platform's certificates as query-sev-capabilities reports them: the
 * PDH's sev_cert and the cert-chain (PEK, OCA, CEK), from the files
 * sev-pdh-cert= and sev-cert-chain= of the configuration, which the test
 * lab signs down from its own "AMD" root (checks/sevcerts.py, as AMD's
 * formats have them): PDH by the PEK, PEK by the CEK and the OCA, CEK by
 * the lab's ASK. The PDH certificate must carry the platform's PDH key
 * (psp.c).
 *
 * Without those files, the certificates are unsigned: the PDH's sev_cert,
 * and a PEK, OCA and CEK of keys derived from the PDH's that nothing signs
 * with (stable per platform).
 */

#include <string.h>

#include <gmp.h>
#include <nettle/bignum.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/sha2.h>

#include "psp.h"

#define CERT_SIG1 0x414
#define CERT_SIG2 0x61C
#define USAGE_OCA 0x1001
#define USAGE_PEK 0x1002
#define USAGE_CEK 0x1004
#define USAGE_NONE 0x1000
#define ALGO_ECDSA_SHA256 0x2


static void
certEncode(guint8 *cert, const StandinConf *conf, guint32 usage, guint32 algo,
           const guint8 *qx, const guint8 *qy)
{
    memset(cert, 0, CERT_SIZE);
    putLe32(cert, 1);
    cert[4] = conf->sevApiMajor;
    cert[5] = conf->sevApiMinor;
    putLe32(cert + 0x8, usage);
    putLe32(cert + 0xC, algo);
    putLe32(cert + CERT_PUBKEY, CURVE_P384);
    memcpy(cert + CERT_PUBKEY + 4, qx, P384_BYTES);
    memcpy(cert + CERT_PUBKEY + 4 + COORD_SIZE, qy, P384_BYTES);
    /* unsigned: both signature slots unused */
    putLe32(cert + CERT_SIG1, USAGE_NONE);
    putLe32(cert + CERT_SIG2, USAGE_NONE);
}




/* a simulated certificate of the chain: a P-384 public key derived from
 * the PDH's and @usage (stable per platform; nothing signs with it) */
static void
certSimulated(guint8 *cert, const StandinConf *conf, guint32 usage,
              const guint8 *pdhQx)
{
    const struct ecc_curve *p384 = nettle_get_secp_384r1();
    struct sha256_ctx sha;
    guint8 seed[32], u[4], qx[P384_BYTES], qy[P384_BYTES];
    struct ecc_scalar k;
    struct ecc_point q;
    mpz_t mk, mx, my;

    putLe32(u, usage);
    sha256_init(&sha);
    sha256_update(&sha, sizeof("qemu-mirror-standin simulated certificate"),
                  (const guint8 *) "qemu-mirror-standin simulated certificate");
    sha256_update(&sha, 4, u);
    sha256_update(&sha, P384_BYTES, pdhQx);
    sha256_digest(&sha, 32, seed);
    seed[0] |= 1;               /* not zero */

    mpz_inits(mk, mx, my, NULL);
    nettle_mpz_set_str_256_u(mk, 32, seed);
    ecc_scalar_init(&k, p384);
    ecc_scalar_set(&k, mk);
    ecc_point_init(&q, p384);
    ecc_point_mul_g(&q, &k);
    ecc_point_get(&q, mx, my);
    mpzToLe(mx, qx, P384_BYTES);
    mpzToLe(my, qy, P384_BYTES);
    ecc_point_clear(&q);
    ecc_scalar_clear(&k);
    mpz_clears(mk, mx, my, NULL);

    certEncode(cert, conf, usage, ALGO_ECDSA_SHA256, qx, qy);
}


/* the certificates of a base64 file, exactly @len bytes */
static guint8 *
certsRead(const char *key, const char *path, gsize len, GError **err)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) lerr = NULL;
    g_autofree guint8 *data = NULL;
    gsize size = 0;

    if (!g_file_get_contents(path, &text, NULL, &lerr)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "%s=: %s", key, lerr->message);
        return NULL;
    }
    data = g_base64_decode(g_strstrip(text), &size);
    if (size != len) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "%s=%s: %zu bytes of base64, not %zu", key, path,
                    (size_t) size, (size_t) len);
        return NULL;
    }
    return g_steal_pointer(&data);
}


bool
pspPlatformCerts(const StandinConf *conf, char **pdh, char **chain,
                 GError **err)
{
    guint8 qx[P384_BYTES], qy[P384_BYTES];
    guint8 cert[CERT_SIZE];
    g_autofree guint8 *certs = NULL;
    g_autofree guint8 *pdhCert = NULL;

    if (!pspPlatformKey(conf, qx, qy, err))
        return false;

    if (conf->sevPdhCert || conf->sevCertChain) {
        if (!conf->sevPdhCert || !conf->sevCertChain) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "sev-pdh-cert= and sev-cert-chain= go together");
            return false;
        }
        if (!(pdhCert = certsRead("sev-pdh-cert", conf->sevPdhCert,
                                  CERT_SIZE, err)) ||
            !(certs = certsRead("sev-cert-chain", conf->sevCertChain,
                                3 * CERT_SIZE, err)))
            return false;
        /* the platform's own key, as the firmware's PDH certificate */
        if (memcmp(pdhCert + CERT_PUBKEY + 4, qx, P384_BYTES) != 0 ||
            memcmp(pdhCert + CERT_PUBKEY + 4 + COORD_SIZE, qy, P384_BYTES) != 0) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "sev-pdh-cert=%s is not the certificate of the "
                        "platform's PDH key", conf->sevPdhCert);
            return false;
        }
        *pdh = g_base64_encode(pdhCert, CERT_SIZE);
        *chain = g_base64_encode(certs, 3 * CERT_SIZE);
        return true;
    }

    certs = g_new0(guint8, 3 * CERT_SIZE);
    certEncode(cert, conf, USAGE_PDH, ALGO_ECDH_SHA256, qx, qy);
    *pdh = g_base64_encode(cert, CERT_SIZE);
    certSimulated(certs, conf, USAGE_PEK, qx);
    certSimulated(certs + CERT_SIZE, conf, USAGE_OCA, qx);
    certSimulated(certs + 2 * CERT_SIZE, conf, USAGE_CEK, qx);
    *chain = g_base64_encode(certs, 3 * CERT_SIZE);
    return true;
}
