/*
 * The simulated AMD secure processor's platform key: the platform's
 * Diffie-Hellman key (PDH, P-384) from the file sev-pdh-key= of the
 * configuration, generated (mode 0600) if missing. Its certificates:
 * platcerts.c; its use at LAUNCH_START: psp.c. The private key never goes
 * to the log or to a reply.
 */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <gmp.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <nettle/bignum.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>

#include "psp.h"

static void
privkeyFree(gnutls_x509_privkey_t key)
{
    if (key)
        gnutls_x509_privkey_deinit(key);
}
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_privkey_t, privkeyFree, NULL)

/* an integer as @len (at most P384_BYTES) bytes little-endian; also used
 * by platcerts.c */
void
mpzToLe(mpz_t v, guint8 *out, size_t len)
{
    guint8 be[P384_BYTES];
    size_t i;

    nettle_mpz_get_str_256(len, be, v);
    for (i = 0; i < len; i++)
        out[i] = be[len - 1 - i];
    memset(be, 0, sizeof(be));
}

/* ------------------------------------------------------------------ */
/* the platform's PDH key                                             */

struct _PspPlatform {
    bool loaded;
    struct ecc_scalar d;
    guint8 qx[P384_BYTES];      /* little-endian */
    guint8 qy[P384_BYTES];
};

static PspPlatform platform;


static bool
pdhFromGnutls(gnutls_x509_privkey_t key, const char *path, GError **err)
{
    gnutls_ecc_curve_t curve;
    gnutls_datum_t x = { 0 }, y = { 0 }, k = { 0 };
    const struct ecc_curve *p384 = nettle_get_secp_384r1();
    struct ecc_point q;
    mpz_t mk, mx, my;
    bool ok = false;

    if (gnutls_x509_privkey_export_ecc_raw(key, &curve, &x, &y, &k) < 0 ||
        curve != GNUTLS_ECC_CURVE_SECP384R1) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "%s: not a P-384 private key", path);
        goto cleanup;
    }
    mpz_inits(mk, mx, my, NULL);
    nettle_mpz_set_str_256_u(mk, k.size, k.data);
    ecc_scalar_init(&platform.d, p384);
    if (!ecc_scalar_set(&platform.d, mk)) {
        ecc_scalar_clear(&platform.d);
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "%s: invalid P-384 private key", path);
        goto cleanup_mpz;
    }
    ecc_point_init(&q, p384);
    ecc_point_mul_g(&q, &platform.d);
    ecc_point_get(&q, mx, my);
    mpzToLe(mx, platform.qx, P384_BYTES);
    mpzToLe(my, platform.qy, P384_BYTES);
    ecc_point_clear(&q);
    platform.loaded = true;
    ok = true;

 cleanup_mpz:
    mpz_clear(mk);
    mpz_clears(mx, my, NULL);
 cleanup:
    gnutls_free(x.data);
    gnutls_free(y.data);
    if (k.data) {
        memset(k.data, 0, k.size);
        gnutls_free(k.data);
    }
    return ok;
}


/* @v (big-endian, maybe with leading zeros or shorter) as exactly @len
 * bytes big-endian */
static bool
fixedBe(const gnutls_datum_t *v, guint8 *out, size_t len)
{
    size_t skip = 0;

    while (skip < v->size && v->size - skip > len && v->data[skip] == 0)
        skip++;
    if (v->size - skip > len)
        return false;
    memset(out, 0, len);
    memcpy(out + len - (v->size - skip), v->data + skip, v->size - skip);
    return true;
}


/* SEC1 (RFC 5915) PEM of a P-384 key: the private value in exactly 48
 * bytes, as the RFC says (gnutls 3.7 writes 49 with a leading zero, which
 * stricter readers refuse) */
static char *
pdhPem(gnutls_x509_privkey_t key)
{
    static const guint8 head[] = { 0x30, 0x81, 0xa4, 0x02, 0x01, 0x01, 0x04, 0x30 };
    static const guint8 curve[] = {
        0xa0, 0x07, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
        0xa1, 0x64, 0x03, 0x62, 0x00, 0x04,
    };
    guint8 der[sizeof(head) + P384_BYTES + sizeof(curve) + 2 * P384_BYTES];
    gnutls_ecc_curve_t c;
    gnutls_datum_t x = { 0 }, y = { 0 }, k = { 0 };
    g_autofree char *b64 = NULL;
    GString *pem = NULL;
    size_t i, n;
    bool ok;

    if (gnutls_x509_privkey_export_ecc_raw(key, &c, &x, &y, &k) < 0)
        return NULL;
    memcpy(der, head, sizeof(head));
    n = sizeof(head);
    ok = fixedBe(&k, der + n, P384_BYTES);
    n += P384_BYTES;
    memcpy(der + n, curve, sizeof(curve));
    n += sizeof(curve);
    ok = ok && fixedBe(&x, der + n, P384_BYTES) &&
         fixedBe(&y, der + n + P384_BYTES, P384_BYTES);
    gnutls_free(x.data);
    gnutls_free(y.data);
    memset(k.data, 0, k.size);
    gnutls_free(k.data);
    if (ok) {
        b64 = g_base64_encode(der, sizeof(der));
        pem = g_string_new("-----BEGIN EC PRIVATE KEY-----\n");
        for (i = 0; b64[i]; i += 64)
            g_string_append_printf(pem, "%.64s\n", b64 + i);
        g_string_append(pem, "-----END EC PRIVATE KEY-----\n");
        memset(b64, 0, strlen(b64));
    }
    memset(der, 0, sizeof(der));
    return pem ? g_string_free(pem, FALSE) : NULL;
}


/* a new key in @path, mode 0600; another process may create it at the same
 * time: the first one linked wins, and both use that one */
static bool
pdhGenerate(const char *path, GError **err)
{
    g_auto(gnutls_x509_privkey_t) key = NULL;
    g_autofree char *pem = NULL;
    g_autofree char *tmp = g_strdup_printf("%s.%d.tmp", path, (int) getpid());
    int fd;
    bool ok = false;

    if (gnutls_x509_privkey_init(&key) < 0 ||
        gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1),
                                     0) < 0 ||
        !(pem = pdhPem(key))) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "cannot generate a P-384 key for %s", path);
        return false;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "cannot create %s: %s", tmp, g_strerror(errno));
        goto cleanup;
    }
    writeAll(fd, pem, strlen(pem));
    if (fsync(fd) < 0 || close(fd) < 0) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "cannot write %s: %s", tmp, g_strerror(errno));
        unlink(tmp);
        goto cleanup;
    }
    if (link(tmp, path) < 0 && errno != EEXIST) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "cannot create %s: %s", path, g_strerror(errno));
        unlink(tmp);
        goto cleanup;
    }
    unlink(tmp);
    ok = true;

 cleanup:
    memset(pem, 0, strlen(pem));
    return ok;
}


bool
pdhLoad(const StandinConf *conf, GError **err)
{
    g_auto(gnutls_x509_privkey_t) key = NULL;
    g_autofree char *text = NULL;
    gsize len;
    gnutls_datum_t datum;
    g_autoptr(GError) lerr = NULL;
    const char *path = conf->sevPdhKey;

    if (platform.loaded)
        return true;

    if (gnutls_x509_privkey_init(&key) < 0)
        return false;

    if (!path) {
        /* no platform key configured: one for this process only */
        if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                         GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1),
                                         0) < 0) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "cannot generate a P-384 key");
            return false;
        }
        standinLog("SEV: no sev-pdh-key in the configuration: a PDH for this process only");
        return pdhFromGnutls(key, "(generated)", err);
    }

    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        if (!pdhGenerate(path, err))
            return false;
        standinLog("SEV: generated the platform's PDH key %s", path);
    }
    if (!g_file_get_contents(path, &text, &len, &lerr)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "cannot read the PDH key: %s", lerr->message);
        return false;
    }
    datum.data = (unsigned char *) text;
    datum.size = len;
    if (gnutls_x509_privkey_import2(key, &datum, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
        memset(text, 0, len);
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "%s: not a PEM private key", path);
        return false;
    }
    memset(text, 0, len);
    return pdhFromGnutls(key, path, err);
}


/* the platform's PDH public key: x and y, 48 bytes little-endian each,
 * as a sev_cert holds them (platcerts.c) */
bool
pspPlatformKey(const StandinConf *conf, guint8 *qx, guint8 *qy, GError **err)
{
    if (!pdhLoad(conf, err))
        return false;
    memcpy(qx, platform.qx, P384_BYTES);
    memcpy(qy, platform.qy, P384_BYTES);
    return true;
}


/* the PDH's private scalar, for LAUNCH_START's ECDH; pdhLoad() first */
const struct ecc_scalar *
pdhPrivate(void)
{
    return &platform.d;
}
