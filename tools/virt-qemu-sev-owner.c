/*
 * virt-qemu-sev-owner.c: the guest owner's side of AMD SEV launch
 * attestation and of confidential migration
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The formats are those of the AMD SEV API specification (publication
 * 55766), so that what this tool makes is accepted by SEV firmware:
 *
 *  - the guest owner's Diffie-Hellman certificate (sev_cert, 2084 bytes)
 *    and the LAUNCH_START session buffer (128 bytes), derived from the
 *    platform's PDH certificate with ECDH on P-384 and the SEV key
 *    derivation (NIST SP 800-108 counter mode, HMAC-SHA256);
 *  - the launch measurement (LAUNCH_MEASURE);
 *  - the LAUNCH_SECRET packet header and its encrypted payload, OVMF's
 *    secret table.
 *
 * The TEK, the TIK, the transport key and the plain secret table are
 * never printed and never written except to output files named on the
 * command line (mode 0600).
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

#define VIR_FROM_THIS VIR_FROM_NONE

static const char *progname = SEV_OWNER_PROGNAME;

/* ------------------------------------------------------------------ */
/* SEV structures (AMD SEV API, all integers little-endian)            */
/* ------------------------------------------------------------------ */

#define SEV_NONCE_SIZE 16
#define SEV_IV_SIZE 16
#define SEV_KEY_SIZE 16
#define SEV_MAC_SIZE 32

/* LAUNCH_START session buffer */
#define SEV_SESSION_SIZE 128
#define SEV_SESSION_OFF_NONCE 0
#define SEV_SESSION_OFF_WRAP_TK 16
#define SEV_SESSION_OFF_WRAP_IV 48
#define SEV_SESSION_OFF_WRAP_MAC 64
#define SEV_SESSION_OFF_POLICY_MAC 96

/* LAUNCH_MEASURE: measurement[32] || mnonce[16] */
#define SEV_MEASURE_SIZE 48
#define SEV_MEASURE_CTX 0x04

/* LAUNCH_SECRET packet header: flags u32, iv[16], mac[32] */
#define SEV_SECRET_HEADER_SIZE 52
#define SEV_SECRET_CTX 0x01

#define SEV_POLICY_ES (1U << 2)

#define TRANSPORT_KEY_SIZE 32
#define KEY_ID_MAX 64

/* OVMF's launch secret table and this project's entries */
static const char *secretTableGUID = "1e74f542-71dd-4d66-963e-ef4287ff173b";
static const char *transportKeyGUID = "68777468-ccbb-4873-a893-0b2880592c67";
static const char *keyIdGUID = "20995426-ca45-47c7-8b08-dc1c7127134d";

/* OVMF's table of kernel hashes (QEMU's kernel-hashes=on) */
static const char *kernelTableGUID = "9438d606-4f22-4cc9-b479-a793d411fd21";
static const char *kernelGUID = "4de79437-abd2-427f-b835-d5b172d2045b";
static const char *initrdGUID = "44baf731-3a2f-4bd7-9af1-41e29169781d";
static const char *cmdlineGUID = "97d02dd8-bd20-4c94-aa78-e7714d36ab2a";

/* the largest JSON request the agent reads */
#define AGENT_REQUEST_MAX (1024 * 1024)


/* ------------------------------------------------------------------ */
/* Secret buffers                                                       */
/* ------------------------------------------------------------------ */

/* The transport keys of a launch: TEK and TIK. */
typedef struct {
    uint8_t tek[SEV_KEY_SIZE];
    uint8_t tik[SEV_KEY_SIZE];
} sevOwnerTK;

static void
sevOwnerTKClear(sevOwnerTK *tk)
{
    virSecureErase(tk, sizeof(*tk));
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sevOwnerTK, sevOwnerTKClear);

/* The guest owner's (or, for 'unwrap', the platform's) P-384 key. */
typedef struct {
    uint8_t d[P384_SIZE];   /* private scalar, big-endian */
    uint8_t x[P384_SIZE];   /* public point, big-endian */
    uint8_t y[P384_SIZE];
} sevOwnerECKey;

static void
sevOwnerECKeyClear(sevOwnerECKey *key)
{
    virSecureErase(key, sizeof(*key));
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sevOwnerECKey, sevOwnerECKeyClear);


/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */


/* A GUID in its textual form into its bytes as OVMF stores them (the
 * first three fields little-endian, as Python's UUID.bytes_le). */
static void
sevOwnerGUIDBytes(const char *str, uint8_t out[16])
{
    uint8_t be[16];
    size_t n = 0;
    const char *p;

    for (p = str; *p && n < 16; p++) {
        if (*p == '-')
            continue;
        be[n++] = (g_ascii_xdigit_value(p[0]) << 4) | g_ascii_xdigit_value(p[1]);
        p++;
    }

    sevOwnerReverse(out, be, 4);
    sevOwnerReverse(out + 4, be + 4, 2);
    sevOwnerReverse(out + 6, be + 6, 2);
    memcpy(out + 8, be + 8, 8);
}


static bool
sevOwnerKeyIdValid(const char *id)
{
    size_t len = strlen(id);
    size_t i;

    if (len == 0 || len > KEY_ID_MAX)
        return false;

    for (i = 0; i < len; i++) {
        if (!g_ascii_isalnum(id[i]) && !strchr("._:-", id[i]))
            return false;
    }

    return true;
}


static int
sevOwnerRandom(gnutls_rnd_level_t level,
               uint8_t *out,
               size_t len)
{
    int rc;

    if ((rc = gnutls_rnd(level, out, len)) < 0) {
        sevOwnerError(_("cannot generate random bytes: %1$s"),
                      gnutls_strerror(rc));
        return -1;
    }

    return 0;
}


/* ------------------------------------------------------------------ */
/* Cryptography                                                         */
/* ------------------------------------------------------------------ */

/*
 * The SEV key derivation: NIST SP 800-108 KDF in counter mode with
 * HMAC-SHA256, a 32-bit little-endian counter (i = 1) and a 32-bit
 * little-endian output length in bits. Every key SEV derives (the
 * master secret, KEK and KIK) is 128 bits: one PRF block, truncated.
 */
static void
sevOwnerKDF(const uint8_t *key,
            size_t keylen,
            const char *label,
            const uint8_t *context,
            size_t contextlen,
            uint8_t out[SEV_KEY_SIZE])
{
    struct hmac_sha256_ctx ctx;
    uint8_t counter[4];
    uint8_t bits[4];
    uint8_t zero = 0;
    uint8_t digest[SHA256_DIGEST_SIZE];

    sevOwnerPutLE32(counter, 1);
    sevOwnerPutLE32(bits, SEV_KEY_SIZE * 8);

    hmac_sha256_set_key(&ctx, keylen, key);
    hmac_sha256_update(&ctx, sizeof(counter), counter);
    hmac_sha256_update(&ctx, strlen(label), (const uint8_t *)label);
    hmac_sha256_update(&ctx, 1, &zero);
    if (contextlen)
        hmac_sha256_update(&ctx, contextlen, context);
    hmac_sha256_update(&ctx, sizeof(bits), bits);
    hmac_sha256_digest(&ctx, sizeof(digest), digest);

    memcpy(out, digest, SEV_KEY_SIZE);

    virSecureErase(digest, sizeof(digest));
    virSecureErase(&ctx, sizeof(ctx));
}


static void
sevOwnerHMAC(const uint8_t *key,
             size_t keylen,
             const uint8_t *data,
             size_t len,
             uint8_t out[SEV_MAC_SIZE])
{
    struct hmac_sha256_ctx ctx;

    hmac_sha256_set_key(&ctx, keylen, key);
    hmac_sha256_update(&ctx, len, data);
    hmac_sha256_digest(&ctx, SEV_MAC_SIZE, out);
    virSecureErase(&ctx, sizeof(ctx));
}


static void
sevOwnerAESBlock(const void *ctx,
                 size_t len,
                 uint8_t *dst,
                 const uint8_t *src)
{
    aes128_encrypt(ctx, len, dst, src);
}


/* AES-128-CTR with a 128-bit big-endian counter block starting at @iv
 * (as SEV firmware, OpenSSL and python-cryptography use it). */
static void
sevOwnerAESCTR(const uint8_t key[SEV_KEY_SIZE],
               const uint8_t iv[SEV_IV_SIZE],
               const uint8_t *src,
               size_t len,
               uint8_t *dst)
{
    struct aes128_ctx ctx;
    uint8_t ctr[AES_BLOCK_SIZE];

    memcpy(ctr, iv, AES_BLOCK_SIZE);
    aes128_set_encrypt_key(&ctx, key);
    ctr_crypt(&ctx, sevOwnerAESBlock, AES_BLOCK_SIZE, ctr, len, dst, src);
    virSecureErase(&ctx, sizeof(ctx));
}


static void
sevOwnerMpzErase(mpz_t z)
{
    size_t n = mpz_size(z);

    if (n > 0) {
        mp_limb_t *limbs = mpz_limbs_modify(z, n);
        virSecureErase(limbs, n * sizeof(*limbs));
    }
    mpz_clear(z);
}


/*
 * ECDH on P-384: the shared secret Z is the x coordinate of d * Q as 48
 * big-endian bytes, the standard ECDH output (SP 800-56A), which is what
 * SEV firmware feeds to its KDF: AMD's sev-tool and virtee's sev crate
 * pass OpenSSL's ECDH output unchanged.
 */
static int
sevOwnerECDH(const sevOwnerECKey *key,
             const uint8_t qx[P384_SIZE],
             const uint8_t qy[P384_SIZE],
             uint8_t z[P384_SIZE])
{
    const struct ecc_curve *curve = nettle_get_secp_384r1();
    struct ecc_point q;
    struct ecc_point r;
    struct ecc_scalar s;
    mpz_t x;
    mpz_t y;
    mpz_t d;
    int ret = -1;

    mpz_init(x);
    mpz_init(y);
    mpz_init(d);
    ecc_point_init(&q, curve);
    ecc_point_init(&r, curve);
    ecc_scalar_init(&s, curve);

    nettle_mpz_set_str_256_u(x, P384_SIZE, qx);
    nettle_mpz_set_str_256_u(y, P384_SIZE, qy);
    if (!ecc_point_set(&q, x, y)) {
        sevOwnerError("%s", _("the peer's public key is not a point on P-384"));
        goto cleanup;
    }

    nettle_mpz_set_str_256_u(d, P384_SIZE, key->d);
    if (!ecc_scalar_set(&s, d)) {
        sevOwnerError("%s", _("the private key is not a valid P-384 scalar"));
        goto cleanup;
    }

    ecc_point_mul(&r, &s, &q);
    ecc_point_get(&r, x, NULL);
    nettle_mpz_get_str_256(P384_SIZE, z, x);
    ret = 0;

 cleanup:
    ecc_scalar_clear(&s);
    ecc_point_clear(&r);
    ecc_point_clear(&q);
    sevOwnerMpzErase(d);
    sevOwnerMpzErase(x);
    mpz_clear(y);
    return ret;
}


/* ------------------------------------------------------------------ */
/* Keys and certificates                                                */
/* ------------------------------------------------------------------ */

static void
sevOwnerDatumErase(gnutls_datum_t *datum)
{
    if (datum->data) {
        virSecureErase(datum->data, datum->size);
        gnutls_free(datum->data);
    }
    datum->data = NULL;
    datum->size = 0;
}


/* An unsigned big-endian integer of gnutls (maybe with a leading zero)
 * into exactly @len bytes. */
static int
sevOwnerDatumToFixed(const gnutls_datum_t *datum,
                     uint8_t *out,
                     size_t len)
{
    size_t skip = 0;

    while (skip < datum->size && datum->data[skip] == 0)
        skip++;
    if (datum->size - skip > len)
        return -1;

    memset(out, 0, len);
    memcpy(out + len - (datum->size - skip), datum->data + skip,
           datum->size - skip);
    return 0;
}


static int
sevOwnerKeyFromGnutls(gnutls_x509_privkey_t pkey,
                      const char *path,
                      sevOwnerECKey *key)
{
    gnutls_ecc_curve_t curve;
    gnutls_datum_t x = { 0 };
    gnutls_datum_t y = { 0 };
    gnutls_datum_t k = { 0 };
    int ret = -1;

    if (gnutls_x509_privkey_get_pk_algorithm(pkey) != GNUTLS_PK_ECDSA ||
        gnutls_x509_privkey_export_ecc_raw(pkey, &curve, &x, &y, &k) < 0 ||
        curve != GNUTLS_ECC_CURVE_SECP384R1) {
        sevOwnerError(_("'%1$s' is not a P-384 private key"), path);
        goto cleanup;
    }

    if (sevOwnerDatumToFixed(&x, key->x, P384_SIZE) < 0 ||
        sevOwnerDatumToFixed(&y, key->y, P384_SIZE) < 0 ||
        sevOwnerDatumToFixed(&k, key->d, P384_SIZE) < 0) {
        sevOwnerError(_("'%1$s' is not a P-384 private key"), path);
        goto cleanup;
    }

    ret = 0;

 cleanup:
    sevOwnerDatumErase(&k);
    gnutls_free(x.data);
    gnutls_free(y.data);
    return ret;
}


/* A P-384 private key in PEM (PKCS#8 or SEC1) or DER. */
static int
sevOwnerLoadKey(const char *path,
                sevOwnerECKey *key)
{
    g_auto(sevOwnerBuf) buf = { 0 };
    gnutls_x509_privkey_t pkey = NULL;
    gnutls_datum_t datum;
    int ret = -1;

    if (sevOwnerReadFile(path, SMALL_FILE_MAX, &buf) < 0)
        return -1;

    if (gnutls_x509_privkey_init(&pkey) < 0) {
        sevOwnerError("%s", _("cannot initialize a private key"));
        return -1;
    }

    datum.data = buf.data;
    datum.size = buf.len;
    if (gnutls_x509_privkey_import2(pkey, &datum, GNUTLS_X509_FMT_PEM,
                                    NULL, 0) < 0 &&
        gnutls_x509_privkey_import2(pkey, &datum, GNUTLS_X509_FMT_DER,
                                    NULL, 0) < 0) {
        sevOwnerError(_("cannot read a private key from '%1$s'"), path);
        goto cleanup;
    }

    ret = sevOwnerKeyFromGnutls(pkey, path, key);

 cleanup:
    gnutls_x509_privkey_deinit(pkey);
    return ret;
}


static int
sevOwnerDeriveKEKKIK(const sevOwnerECKey *key,
                     const sevOwnerPubKey *peer,
                     const uint8_t nonce[SEV_NONCE_SIZE],
                     uint8_t kek[SEV_KEY_SIZE],
                     uint8_t kik[SEV_KEY_SIZE])
{
    uint8_t z[P384_SIZE];
    uint8_t master[SEV_KEY_SIZE];

    if (sevOwnerECDH(key, peer->x, peer->y, z) < 0)
        return -1;

    sevOwnerKDF(z, sizeof(z), "sev-master-secret", nonce, SEV_NONCE_SIZE, master);
    sevOwnerKDF(master, sizeof(master), "sev-kek", NULL, 0, kek);
    sevOwnerKDF(master, sizeof(master), "sev-kik", NULL, 0, kik);

    virSecureErase(z, sizeof(z));
    virSecureErase(master, sizeof(master));
    return 0;
}


/* The 128-byte LAUNCH_START session buffer for the platform key @pdh. */
static int
sevOwnerMakeSession(const sevOwnerECKey *odh,
                    const sevOwnerPubKey *pdh,
                    uint32_t policy,
                    const sevOwnerTK *tk,
                    const uint8_t nonce[SEV_NONCE_SIZE],
                    const uint8_t iv[SEV_IV_SIZE],
                    uint8_t session[SEV_SESSION_SIZE])
{
    uint8_t kek[SEV_KEY_SIZE];
    uint8_t kik[SEV_KEY_SIZE];
    uint8_t policyLE[4];

    if (sevOwnerDeriveKEKKIK(odh, pdh, nonce, kek, kik) < 0)
        return -1;

    memset(session, 0, SEV_SESSION_SIZE);
    memcpy(session + SEV_SESSION_OFF_NONCE, nonce, SEV_NONCE_SIZE);
    memcpy(session + SEV_SESSION_OFF_WRAP_IV, iv, SEV_IV_SIZE);

    /* wrap_tk = AES-128-CTR(KEK, wrap_iv, TEK || TIK) */
    sevOwnerAESCTR(kek, iv, (const uint8_t *)tk, sizeof(*tk),
                   session + SEV_SESSION_OFF_WRAP_TK);
    /* wrap_mac = HMAC-SHA256(KIK, wrap_tk) */
    sevOwnerHMAC(kik, sizeof(kik), session + SEV_SESSION_OFF_WRAP_TK,
                 sizeof(*tk), session + SEV_SESSION_OFF_WRAP_MAC);
    /* policy_mac = HMAC-SHA256(TIK, policy) */
    sevOwnerPutLE32(policyLE, policy);
    sevOwnerHMAC(tk->tik, sizeof(tk->tik), policyLE, sizeof(policyLE),
                 session + SEV_SESSION_OFF_POLICY_MAC);

    virSecureErase(kek, sizeof(kek));
    virSecureErase(kik, sizeof(kik));
    return 0;
}


typedef enum {
    SEV_OWNER_UNWRAP_OK = 0,
    SEV_OWNER_UNWRAP_BAD_WRAP_MAC,
    SEV_OWNER_UNWRAP_BAD_POLICY_MAC,
} sevOwnerUnwrapResult;

/* What SEV firmware does at LAUNCH_START, from either side of the key
 * exchange: @key is the owner's key and @peer the PDH, or @key the PDH
 * and @peer the owner's certificate. Returns -1 on error, otherwise a
 * sevOwnerUnwrapResult; @tk is filled only when it is OK. */
static int
sevOwnerUnwrapSession(const sevOwnerECKey *key,
                      const sevOwnerPubKey *peer,
                      const uint8_t session[SEV_SESSION_SIZE],
                      uint32_t policy,
                      sevOwnerTK *tk)
{
    uint8_t kek[SEV_KEY_SIZE];
    uint8_t kik[SEV_KEY_SIZE];
    uint8_t mac[SEV_MAC_SIZE];
    uint8_t policyLE[4];
    g_auto(sevOwnerTK) tmp = { { 0 }, { 0 } };
    int ret = -1;

    if (sevOwnerDeriveKEKKIK(key, peer, session + SEV_SESSION_OFF_NONCE,
                             kek, kik) < 0)
        return -1;

    sevOwnerHMAC(kik, sizeof(kik), session + SEV_SESSION_OFF_WRAP_TK,
                 sizeof(tmp), mac);
    if (!memeql_sec(mac, session + SEV_SESSION_OFF_WRAP_MAC, SEV_MAC_SIZE)) {
        ret = SEV_OWNER_UNWRAP_BAD_WRAP_MAC;
        goto cleanup;
    }

    sevOwnerAESCTR(kek, session + SEV_SESSION_OFF_WRAP_IV,
                   session + SEV_SESSION_OFF_WRAP_TK, sizeof(tmp),
                   (uint8_t *)&tmp);

    sevOwnerPutLE32(policyLE, policy);
    sevOwnerHMAC(tmp.tik, sizeof(tmp.tik), policyLE, sizeof(policyLE), mac);
    if (!memeql_sec(mac, session + SEV_SESSION_OFF_POLICY_MAC, SEV_MAC_SIZE)) {
        ret = SEV_OWNER_UNWRAP_BAD_POLICY_MAC;
        goto cleanup;
    }

    memcpy(tk, &tmp, sizeof(tmp));
    ret = SEV_OWNER_UNWRAP_OK;

 cleanup:
    virSecureErase(kek, sizeof(kek));
    virSecureErase(kik, sizeof(kik));
    return ret;
}


/* ------------------------------------------------------------------ */
/* Launch measurement                                                   */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *firmware;
    const char *kernel;     /* NULL: no kernel hashes */
    const char *initrd;
    const char *cmdline;
    unsigned int apiMajor;
    unsigned int apiMinor;
    unsigned int buildId;
    unsigned int policy;
} sevOwnerLaunch;


static int
sevOwnerHashFile(const char *path,
                 struct sha256_ctx *ctx)
{
    VIR_AUTOCLOSE fd = -1;
    size_t bufsize = 64 * 1024;
    g_autofree uint8_t *buf = g_new0(uint8_t, bufsize);
    ssize_t got;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        sevOwnerError(_("cannot open '%1$s': %2$s"), path, g_strerror(errno));
        return -1;
    }

    while ((got = saferead(fd, buf, bufsize)) > 0)
        sha256_update(ctx, got, buf);

    if (got < 0) {
        sevOwnerError(_("cannot read '%1$s': %2$s"), path, g_strerror(errno));
        return -1;
    }

    return 0;
}


static void
sevOwnerTableEntry(GByteArray *table,
                   const char *guid,
                   const uint8_t *data,
                   size_t len,
                   size_t lenlen)
{
    uint8_t guidLE[16];
    uint8_t lenLE[4];

    sevOwnerGUIDBytes(guid, guidLE);
    sevOwnerPutLE32(lenLE, 16 + lenlen + len);
    g_byte_array_append(table, guidLE, sizeof(guidLE));
    g_byte_array_append(table, lenLE, lenlen);
    g_byte_array_append(table, data, len);
}


/* An OVMF GUID table: GUID || total length || entries, then zeros up to
 * the next multiple of 16 (a full 16 when already aligned, as
 * virt-qemu-sev-validate pads it). */
static void
sevOwnerTableFinish(GByteArray *table,
                    const char *guid,
                    const uint8_t *entries,
                    size_t len,
                    size_t lenlen)
{
    static const uint8_t zeros[16] = { 0 };

    sevOwnerTableEntry(table, guid, entries, len, lenlen);
    g_byte_array_append(table, zeros, 16 - (table->len % 16));
}


/* LD = SHA-256(firmware || kernel hashes table), as QEMU measures it. */
static int
sevOwnerLaunchDigest(const sevOwnerLaunch *launch,
                     uint8_t digest[SHA256_DIGEST_SIZE])
{
    struct sha256_ctx ctx;

    sha256_init(&ctx);
    if (sevOwnerHashFile(launch->firmware, &ctx) < 0)
        return -1;

    if (launch->kernel) {
        g_autoptr(GByteArray) entries = g_byte_array_new();
        g_autoptr(GByteArray) table = g_byte_array_new();
        struct sha256_ctx h;
        uint8_t kernel[SHA256_DIGEST_SIZE];
        uint8_t initrd[SHA256_DIGEST_SIZE];
        uint8_t cmdline[SHA256_DIGEST_SIZE];

        sha256_init(&h);
        if (sevOwnerHashFile(launch->kernel, &h) < 0)
            return -1;
        sha256_digest(&h, sizeof(kernel), kernel);

        sha256_init(&h);
        if (launch->initrd && sevOwnerHashFile(launch->initrd, &h) < 0)
            return -1;
        sha256_digest(&h, sizeof(initrd), initrd);

        /* the command line with its terminating NUL; none = "" */
        sha256_init(&h);
        if (launch->cmdline)
            sha256_update(&h, strlen(launch->cmdline),
                          (const uint8_t *)launch->cmdline);
        sha256_update(&h, 1, (const uint8_t *)"");
        sha256_digest(&h, sizeof(cmdline), cmdline);

        sevOwnerTableEntry(entries, cmdlineGUID, cmdline, sizeof(cmdline), 2);
        sevOwnerTableEntry(entries, initrdGUID, initrd, sizeof(initrd), 2);
        sevOwnerTableEntry(entries, kernelGUID, kernel, sizeof(kernel), 2);
        sevOwnerTableFinish(table, kernelTableGUID,
                            entries->data, entries->len, 2);

        sha256_update(&ctx, table->len, table->data);
    }

    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    return 0;
}


/* measurement = HMAC-SHA256(TIK, 0x04 || API_MAJOR || API_MINOR ||
 *                           BUILD || POLICY || LD || MNONCE) */
static int
sevOwnerMeasure(const sevOwnerLaunch *launch,
                const uint8_t tik[SEV_KEY_SIZE],
                const uint8_t mnonce[SEV_NONCE_SIZE],
                uint8_t out[SEV_MEASURE_SIZE])
{
    uint8_t msg[1 + 3 + 4 + SHA256_DIGEST_SIZE + SEV_NONCE_SIZE];

    if (launch->policy & SEV_POLICY_ES) {
        sevOwnerError("%s", _("SEV-ES measurements (policy bit 2) are not supported"));
        return -1;
    }

    msg[0] = SEV_MEASURE_CTX;
    msg[1] = launch->apiMajor;
    msg[2] = launch->apiMinor;
    msg[3] = launch->buildId;
    sevOwnerPutLE32(msg + 4, launch->policy);
    if (sevOwnerLaunchDigest(launch, msg + 8) < 0)
        return -1;
    memcpy(msg + 8 + SHA256_DIGEST_SIZE, mnonce, SEV_NONCE_SIZE);

    sevOwnerHMAC(tik, SEV_KEY_SIZE, msg, sizeof(msg), out);
    memcpy(out + SEV_MAC_SIZE, mnonce, SEV_NONCE_SIZE);
    return 0;
}


/* ------------------------------------------------------------------ */
/* LAUNCH_SECRET                                                        */
/* ------------------------------------------------------------------ */

/* OVMF's secret table with the transport key and its identifier. */
static void
sevOwnerSecretTable(const uint8_t key[TRANSPORT_KEY_SIZE],
                    const char *keyId,
                    sevOwnerBuf *out)
{
    /* sized for the largest table: no reallocation leaves a copy */
    GByteArray *entries = g_byte_array_sized_new(256);
    GByteArray *table = g_byte_array_sized_new(256);

    sevOwnerTableEntry(entries, transportKeyGUID, key, TRANSPORT_KEY_SIZE, 4);
    sevOwnerTableEntry(entries, keyIdGUID, (const uint8_t *)keyId,
                       strlen(keyId), 4);
    sevOwnerTableFinish(table, secretTableGUID, entries->data, entries->len, 4);

    virSecureErase(entries->data, entries->len);
    g_byte_array_unref(entries);

    out->len = table->len;
    out->data = g_byte_array_free(table, FALSE);
}


/*
 * The LAUNCH_SECRET packet for the launch whose measurement is
 * @measurement: data = AES-128-CTR(TEK, IV, table);
 * header = FLAGS || IV || MAC with
 * MAC = HMAC-SHA256(TIK, 0x01 || FLAGS || IV || GUEST_LENGTH ||
 *                   TRANS_LENGTH || data || MEASURE).
 */
static void
sevOwnerSecretPacket(const sevOwnerTK *tk,
                     const uint8_t measurement[SEV_MEASURE_SIZE],
                     const uint8_t iv[SEV_IV_SIZE],
                     const sevOwnerBuf *table,
                     uint8_t header[SEV_SECRET_HEADER_SIZE],
                     uint8_t **data)
{
    struct hmac_sha256_ctx ctx;
    uint8_t ctxByte = SEV_SECRET_CTX;
    uint8_t flags[4];
    uint8_t lenLE[4];

    *data = g_new0(uint8_t, table->len);
    sevOwnerAESCTR(tk->tek, iv, table->data, table->len, *data);

    sevOwnerPutLE32(flags, 0);
    sevOwnerPutLE32(lenLE, table->len);

    hmac_sha256_set_key(&ctx, sizeof(tk->tik), tk->tik);
    hmac_sha256_update(&ctx, 1, &ctxByte);
    hmac_sha256_update(&ctx, sizeof(flags), flags);
    hmac_sha256_update(&ctx, SEV_IV_SIZE, iv);
    hmac_sha256_update(&ctx, sizeof(lenLE), lenLE);    /* guest length */
    hmac_sha256_update(&ctx, sizeof(lenLE), lenLE);    /* transport length */
    hmac_sha256_update(&ctx, table->len, *data);
    hmac_sha256_update(&ctx, SEV_MAC_SIZE, measurement);

    memcpy(header, flags, sizeof(flags));
    memcpy(header + 4, iv, SEV_IV_SIZE);
    hmac_sha256_digest(&ctx, SEV_MAC_SIZE, header + 4 + SEV_IV_SIZE);
    virSecureErase(&ctx, sizeof(ctx));
}


/* ------------------------------------------------------------------ */
/* Command line                                                         */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    bool required;
    const char *value;
} sevOwnerOpt;


static const char *
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
static int
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


static int
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


static int
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


static int
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


static int
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
static int
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

static int
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


/* ------------------------------------------------------------------ */
/* agent                                                                */
/* ------------------------------------------------------------------ */

typedef struct {
    char *dir;
    char *odhKey;
    char *transportKey;
    char *keyId;
    char *firmware;
    char *kernel;
    char *initrd;
    char *cmdline;
    unsigned int policy;
    /* the platform's certificate chain */
    char *roots;
    char *ark;
    char *ask;
    char *allowChips;
    char *minAPI;
    char *minBuild;
    char *cekDir;
    sevOwnerChainPolicy chain;
} sevOwnerConf;

static void
sevOwnerConfClear(sevOwnerConf *conf)
{
    g_free(conf->dir);
    g_free(conf->odhKey);
    g_free(conf->transportKey);
    g_free(conf->keyId);
    g_free(conf->firmware);
    g_free(conf->kernel);
    g_free(conf->initrd);
    g_free(conf->cmdline);
    g_free(conf->roots);
    g_free(conf->ark);
    g_free(conf->ask);
    g_free(conf->allowChips);
    g_free(conf->minAPI);
    g_free(conf->minBuild);
    g_free(conf->cekDir);
    sevOwnerChainPolicyClear(&conf->chain);
    memset(conf, 0, sizeof(*conf));
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sevOwnerConf, sevOwnerConfClear);


static char *
sevOwnerConfPath(const char *dir,
                 const char *value)
{
    if (g_path_is_absolute(value))
        return g_strdup(value);
    return g_build_filename(dir, value, NULL);
}


/* The policy for the platform's certificate chain, from the command line
 * or owner.conf: the roots (AMD's, by generation, or an ARK and ASK in
 * files; all of AMD's when none is named), the allowed chips and the
 * minimum API version and firmware build. */
static int
sevOwnerChainPolicyBuild(const char *roots,
                         const char *ark,
                         const char *ask,
                         const char *allowChips,
                         const char *minAPI,
                         const char *minBuild,
                         sevOwnerChainPolicy *policy)
{
    if (!ark != !ask) {
        sevOwnerError("%s", _("an ARK needs its ASK, and an ASK its ARK"));
        return -1;
    }

    if (roots && sevOwnerChainPolicyAddBuiltin(policy, roots) < 0)
        return -1;
    if (ark && sevOwnerChainPolicyAddRootFiles(policy, ark, ask) < 0)
        return -1;
    if (!roots && !ark && sevOwnerChainPolicyAddBuiltin(policy, "all") < 0)
        return -1;

    if (allowChips && sevOwnerChainPolicyAddChips(policy, allowChips) < 0)
        return -1;
    if (minAPI && sevOwnerChainPolicySetMinAPI(policy, minAPI) < 0)
        return -1;
    if (minBuild && sevOwnerChainPolicySetMinBuild(policy, minBuild) < 0)
        return -1;

    return 0;
}


/* DIR/owner.conf: key=value lines, '#' comments. Without @agent, only
 * the keys of the chain's policy are used and the agent's keys are not
 * required. */
static int
sevOwnerConfLoad(const char *dir,
                 bool agent,
                 sevOwnerConf *conf)
{
    g_autofree char *path = g_build_filename(dir, "owner.conf", NULL);
    g_auto(sevOwnerBuf) buf = { 0 };
    g_auto(GStrv) lines = NULL;
    g_autofree char *policy = NULL;
    size_t i;

    if (sevOwnerReadFile(path, SMALL_FILE_MAX, &buf) < 0)
        return -1;

    buf.data = g_realloc(buf.data, buf.len + 1);
    buf.data[buf.len] = '\0';
    if (strlen((char *)buf.data) != buf.len) {
        sevOwnerError(_("'%1$s' is not a text file"), path);
        return -1;
    }

    conf->dir = g_strdup(dir);
    lines = g_strsplit((char *)buf.data, "\n", -1);

    for (i = 0; lines[i]; i++) {
        char *line = g_strstrip(lines[i]);
        char *eq;
        char **field = NULL;
        bool isPath = true;

        if (!*line || *line == '#')
            continue;

        if (!(eq = strchr(line, '='))) {
            sevOwnerError(_("%1$s:%2$zu: expected key=value"), path, i + 1);
            return -1;
        }
        *eq = '\0';
        g_strchomp(line);
        eq = g_strchug(eq + 1);

        if (STREQ(line, "odh-key")) {
            field = &conf->odhKey;
        } else if (STREQ(line, "transport-key")) {
            field = &conf->transportKey;
        } else if (STREQ(line, "key-id")) {
            field = &conf->keyId;
            isPath = false;
        } else if (STREQ(line, "firmware")) {
            field = &conf->firmware;
        } else if (STREQ(line, "kernel")) {
            field = &conf->kernel;
        } else if (STREQ(line, "initrd")) {
            field = &conf->initrd;
        } else if (STREQ(line, "cmdline")) {
            field = &conf->cmdline;
            isPath = false;
        } else if (STREQ(line, "policy")) {
            field = &policy;
            isPath = false;
        } else if (STREQ(line, "roots")) {
            field = &conf->roots;
            isPath = false;
        } else if (STREQ(line, "ark")) {
            field = &conf->ark;
        } else if (STREQ(line, "ask")) {
            field = &conf->ask;
        } else if (STREQ(line, "allow-chips")) {
            field = &conf->allowChips;
            isPath = false;
        } else if (STREQ(line, "min-api")) {
            field = &conf->minAPI;
            isPath = false;
        } else if (STREQ(line, "min-build")) {
            field = &conf->minBuild;
            isPath = false;
        } else if (STREQ(line, "cek-dir")) {
            field = &conf->cekDir;
        } else {
            sevOwnerError(_("%1$s:%2$zu: unknown key '%3$s'"), path, i + 1, line);
            return -1;
        }

        if (*field) {
            sevOwnerError(_("%1$s:%2$zu: '%3$s' given twice"), path, i + 1, line);
            return -1;
        }
        if (isPath && !*eq) {
            sevOwnerError(_("%1$s:%2$zu: '%3$s' needs a path"), path, i + 1, line);
            return -1;
        }
        *field = isPath ? sevOwnerConfPath(dir, eq) : g_strdup(eq);
    }

    if (sevOwnerChainPolicyBuild(conf->roots, conf->ark, conf->ask,
                                 conf->allowChips, conf->minAPI,
                                 conf->minBuild, &conf->chain) < 0) {
        sevOwnerError(_("'%1$s': invalid policy for the platform's certificate chain"),
                      path);
        return -1;
    }

    if (!agent)
        return 0;

    if (!conf->odhKey || !conf->transportKey || !conf->keyId ||
        !conf->firmware || !policy) {
        sevOwnerError(_("'%1$s' must set odh-key, transport-key, key-id, firmware and policy"),
                      path);
        return -1;
    }

    if (!sevOwnerKeyIdValid(conf->keyId)) {
        sevOwnerError(_("'%1$s': key-id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -"),
                      path);
        return -1;
    }

    if (!conf->kernel && (conf->initrd || conf->cmdline)) {
        sevOwnerError(_("'%1$s': initrd and cmdline need kernel (kernel hashes)"),
                      path);
        return -1;
    }

    if (sevOwnerParseUInt("policy", policy, UINT32_MAX, &conf->policy) < 0)
        return -1;

    if (conf->policy & SEV_POLICY_ES) {
        sevOwnerError(_("'%1$s': SEV-ES policies (bit 2) are not supported"), path);
        return -1;
    }

    return 0;
}


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


static int
sevOwnerReply(virJSONValue *reply)
{
    g_autofree char *str = NULL;

    if (!(str = virJSONValueToString(reply, false))) {
        sevOwnerError(_("cannot format the reply: %1$s"), virGetLastErrorMessage());
        return -1;
    }

    printf("%s\n", str);
    if (fflush(stdout) != 0) {
        sevOwnerError(_("cannot write the reply: %1$s"), g_strerror(errno));
        return -1;
    }

    return 0;
}


static int
sevOwnerRefuse(const char *reason)
{
    g_autoptr(virJSONValue) reply = NULL;

    g_printerr(_("%1$s: refused: %2$s\n"), progname, reason);

    if (virJSONValueObjectAdd(&reply, "s:refused", reason, NULL) < 0) {
        sevOwnerError(_("cannot format the reply: %1$s"), virGetLastErrorMessage());
        return -1;
    }

    return sevOwnerReply(reply);
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
sevOwnerAgentSession(const sevOwnerConf *conf,
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

    if ((rc = sevOwnerAgentVerifyPlatform(conf, platform, pdhCert, -1, &reason)) != 0)
        return rc < 0 ? -1 : sevOwnerRefuse(reason);

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
    return sevOwnerReply(reply);
}


/* The "attest" operation: recover TEK and TIK from the launch session,
 * check policy and measurement, return the secret. */
static int
sevOwnerAgentAttest(const sevOwnerConf *conf,
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

    if (launch.policy != conf->policy) {
        reason = g_strdup_printf(_("the guest was launched with policy 0x%1$x, the owner requires 0x%2$x"),
                                 launch.policy, conf->policy);
        return sevOwnerRefuse(reason);
    }

    /* the session is unwrapped with the PDH the request names: it must be
     * a genuine platform's, and the build the measurement covers must be
     * one the owner accepts */
    if ((rc = sevOwnerAgentVerifyPlatform(conf, platform, pdhCert,
                                          launch.buildId, &reason)) != 0)
        return rc < 0 ? -1 : sevOwnerRefuse(reason);

    /* the session must have been made with this owner's key */
    if (memcmp(launchODH.x, odh->x, P384_SIZE) != 0 ||
        memcmp(launchODH.y, odh->y, P384_SIZE) != 0)
        return sevOwnerRefuse(_("the launch's dh-cert is not this guest owner's key"));

    if ((rc = sevOwnerUnwrapSession(odh, pdh, session.data, launch.policy, &tk)) < 0)
        return -1;

    switch ((sevOwnerUnwrapResult) rc) {
    case SEV_OWNER_UNWRAP_BAD_WRAP_MAC:
        return sevOwnerRefuse(_("the launch session was not made for this platform's PDH by this owner (wrap MAC mismatch)"));
    case SEV_OWNER_UNWRAP_BAD_POLICY_MAC:
        return sevOwnerRefuse(_("the launch session does not match the launch policy (policy MAC mismatch)"));
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
        return sevOwnerRefuse(_("the launch measurement does not match the owner's firmware and policy"));

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
    ret = sevOwnerReply(reply);

 cleanup:
    virSecureErase(key, sizeof(key));
    return ret;
}


static int
cmdAgent(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { "owner-dir", true, NULL },
        { NULL, false, NULL },
    };
    g_auto(sevOwnerConf) conf = { 0 };
    g_auto(sevOwnerECKey) odh = { { 0 }, { 0 }, { 0 } };
    g_autoptr(virJSONValue) request = NULL;
    g_autofree char *input = NULL;
    g_auto(sevOwnerBuf) pdhCert = { 0 };
    virJSONValue *platform;
    const char *operation;
    const char *domainName = NULL;
    sevOwnerPubKey pdh;
    unsigned int version;
    unsigned int policy;
    int len;

    if (sevOwnerParseOpts("agent", argc, argv, opts) < 0)
        return -1;

    if ((len = virFileReadLimFD(STDIN_FILENO, AGENT_REQUEST_MAX, &input)) < 0) {
        sevOwnerError(_("cannot read the request: %1$s"), virGetLastErrorMessage());
        return -1;
    }

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

    if (virJSONValueObjectHasKey(request, "domain")) {
        virJSONValue *domain = virJSONValueObjectGet(request, "domain");

        if (!virJSONValueIsObject(domain)) {
            sevOwnerError("%s", _("malformed request: 'domain' must be an object"));
            return -1;
        }
        if (virJSONValueObjectHasKey(domain, "name") &&
            !(domainName = sevOwnerJSONString(domain, "domain", "name", true)))
            return -1;
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

    if (sevOwnerConfLoad(sevOwnerOptGet(opts, "owner-dir"), true, &conf) < 0 ||
        sevOwnerLoadKey(conf.odhKey, &odh) < 0)
        return -1;

    g_printerr(_("%1$s: %2$s request for domain '%3$s'\n"),
               progname, operation, NULLSTR(domainName));

    if (policy != conf.policy) {
        g_autofree char *reason = NULL;

        reason = g_strdup_printf(_("the domain's policy 0x%1$x is not the owner's required policy 0x%2$x"),
                                 policy, conf.policy);
        return sevOwnerRefuse(reason);
    }

    if (STREQ(operation, "session"))
        return sevOwnerAgentSession(&conf, &odh, &pdh, platform, &pdhCert);

    return sevOwnerAgentAttest(&conf, &odh, &pdh, platform, &pdhCert, request);
}


/* ------------------------------------------------------------------ */
/* verify-chain, roots                                                  */
/* ------------------------------------------------------------------ */

/*
 * Returns 0 when the chain verifies and the policy accepts it, 1 when it
 * is refused, -1 on error (options, files, configuration).
 */
static int
cmdVerifyChain(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { "pdh", true, NULL },
        { "cert-chain", false, NULL },
        { "pek", false, NULL },
        { "oca", false, NULL },
        { "cek", false, NULL },
        { "build-id", false, NULL },
        { "owner-dir", false, NULL },
        /* the policy, when there is no owner.conf */
        { "roots", false, NULL },
        { "ark", false, NULL },
        { "ask", false, NULL },
        { "allow-chips", false, NULL },
        { "min-api", false, NULL },
        { "min-build", false, NULL },
        { NULL, false, NULL },
    };
    const char *policyOpts[] = {
        "roots", "ark", "ask", "allow-chips", "min-api", "min-build",
    };
    g_auto(sevOwnerConf) conf = { 0 };
    g_auto(sevOwnerChainPolicy) cliPolicy = { 0 };
    const sevOwnerChainPolicy *policy = &cliPolicy;
    g_auto(sevOwnerBuf) pdh = { 0 };
    g_auto(sevOwnerBuf) certChain = { 0 };
    g_auto(sevOwnerBuf) pek = { 0 };
    g_auto(sevOwnerBuf) oca = { 0 };
    g_auto(sevOwnerBuf) cek = { 0 };
    g_autoptr(GString) log = g_string_new(NULL);
    g_autofree char *reason = NULL;
    g_autofree char *chip = NULL;
    sevOwnerChain chain = { 0 };
    sevOwnerChainResult res;
    const char *ownerDir;
    const char *val;
    size_t i;

    if (sevOwnerParseOpts("verify-chain", argc, argv, opts) < 0)
        return -1;

    if (sevOwnerOptGet(opts, "cert-chain")) {
        if (sevOwnerOptGet(opts, "pek") || sevOwnerOptGet(opts, "oca")) {
            sevOwnerError("%s", _("verify-chain: --cert-chain holds the PEK and the OCA: do not give --pek or --oca"));
            return -1;
        }
    } else if (!sevOwnerOptGet(opts, "pek") || !sevOwnerOptGet(opts, "oca") ||
               !sevOwnerOptGet(opts, "cek")) {
        sevOwnerError("%s", _("verify-chain: give --cert-chain, or --pek, --oca and --cek"));
        return -1;
    }

    if ((ownerDir = sevOwnerOptGet(opts, "owner-dir"))) {
        for (i = 0; i < G_N_ELEMENTS(policyOpts); i++) {
            if (sevOwnerOptGet(opts, policyOpts[i])) {
                sevOwnerError(_("verify-chain: the policy is owner.conf's: do not give --%1$s with --owner-dir"),
                              policyOpts[i]);
                return -1;
            }
        }
        if (sevOwnerConfLoad(ownerDir, false, &conf) < 0)
            return -1;
        policy = &conf.chain;
    } else if (sevOwnerChainPolicyBuild(sevOwnerOptGet(opts, "roots"),
                                        sevOwnerOptGet(opts, "ark"),
                                        sevOwnerOptGet(opts, "ask"),
                                        sevOwnerOptGet(opts, "allow-chips"),
                                        sevOwnerOptGet(opts, "min-api"),
                                        sevOwnerOptGet(opts, "min-build"),
                                        &cliPolicy) < 0) {
        return -1;
    }

    if ((val = sevOwnerOptGet(opts, "build-id"))) {
        if (sevOwnerParseUInt("--build-id", val, 255, &chain.build) < 0)
            return -1;
        chain.buildSet = true;
    }

    if (sevOwnerReadBlobFile(sevOwnerOptGet(opts, "pdh"), &pdh) < 0)
        return -1;
    chain.pdh = pdh.data;
    chain.pdhLen = pdh.len;

    if ((val = sevOwnerOptGet(opts, "cert-chain"))) {
        if (sevOwnerReadBlobFile(val, &certChain) < 0)
            return -1;
        if (sevOwnerSplitCertChain(certChain.data, certChain.len, &chain, &reason) != 0)
            goto refused;
    } else {
        if (sevOwnerReadBlobFile(sevOwnerOptGet(opts, "pek"), &pek) < 0 ||
            sevOwnerReadBlobFile(sevOwnerOptGet(opts, "oca"), &oca) < 0)
            return -1;
        chain.pek = pek.data;
        chain.pekLen = pek.len;
        chain.oca = oca.data;
        chain.ocaLen = oca.len;
    }

    /* The CEK that AMD signed, as its key distribution service gives it
     * for the chip's ID, replaces the platform's own copy; both must be
     * the same key. */
    if ((val = sevOwnerOptGet(opts, "cek"))) {
        if (sevOwnerReadBlobFile(val, &cek) < 0)
            return -1;
        if (chain.cek &&
            (cek.len != SEV_CERT_SIZE ||
             memcmp(chain.cek + SEV_CERT_OFF_PUBKEY,
                    cek.data + SEV_CERT_OFF_PUBKEY,
                    SEV_CERT_BODY_SIZE - SEV_CERT_OFF_PUBKEY) != 0)) {
            reason = g_strdup(_("CEK: the CEK given with --cek is not the key of the cert-chain's CEK"));
            goto refused;
        }
        chain.cek = cek.data;
        chain.cekLen = cek.len;
    }

    if (sevOwnerVerifyChain(&chain, policy, log, &res, &reason) != 0)
        goto refused;

    chip = g_malloc0(SEV_CHIP_ID_SIZE * 2 + 1);
    for (i = 0; i < SEV_CHIP_ID_SIZE; i++)
        g_snprintf(chip + 2 * i, 3, "%02x", res.chip[i]);

    printf("%s", log->str);
    printf(_("verified: the PDH of chip %1$s, API version %2$u.%3$u, root %4$s\n"),
           chip, res.pdh.apiMajor, res.pdh.apiMinor, res.root);
    return 0;

 refused:
    printf("%s", log->str);
    g_printerr(_("%1$s: refused: %2$s\n"), progname, reason);
    return 1;
}


/* AMD's roots this tool carries. */
static int
cmdRoots(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { NULL, false, NULL },
    };
    const sevOwnerBuiltinRoot *roots;
    size_t nroots = 0;
    size_t i;

    if (sevOwnerParseOpts("roots", argc, argv, opts) < 0)
        return -1;

    roots = sevOwnerBuiltinRoots(&nroots);
    for (i = 0; i < nroots; i++) {
        g_auto(sevOwnerBuf) ark = { 0 };
        g_auto(sevOwnerBuf) ask = { 0 };

        if (sevOwnerBuiltinRootLoad(&roots[i], &ark, &ask) < 0)
            return -1;
        printf("%s ARK %zu %s\n", roots[i].name, ark.len, roots[i].arkSHA256);
        printf("%s ASK %zu %s\n", roots[i].name, ask.len, roots[i].askSHA256);
    }

    return 0;
}


/* ------------------------------------------------------------------ */
/* main                                                                 */
/* ------------------------------------------------------------------ */

static void
sevOwnerUsage(FILE *out)
{
    fprintf(out,
            _("Usage:\n"
              "  %1$s keygen --out FILE\n"
              "  %1$s session --pdh FILE --policy N --odh-key FILE\n"
              "          --dh-cert-out FILE --session-out FILE\n"
              "          [--tek-out FILE --tik-out FILE]\n"
              "          [--nonce HEX --tek HEX --tik HEX --wrap-iv HEX]\n"
              "  %1$s unwrap --pdh-key FILE --dh-cert FILE --session FILE --policy N\n"
              "          [--tek-out FILE --tik-out FILE]\n"
              "  %1$s measure --firmware FILE [--kernel FILE [--initrd FILE]\n"
              "          [--cmdline STR]] --api-major N --api-minor N --build-id N\n"
              "          --policy N --tik FILE --mnonce B64\n"
              "  %1$s verify (the options of measure) --measurement B64\n"
              "  %1$s secret --measurement B64 --tek FILE --tik FILE\n"
              "          --transport-key FILE --key-id ID\n"
              "          --header-out FILE --secret-out FILE [--iv HEX]\n"
              "  %1$s agent --owner-dir DIR\n"
              "  %1$s verify-chain --pdh FILE\n"
              "          (--cert-chain FILE [--cek FILE] | --pek FILE --oca FILE --cek FILE)\n"
              "          [--build-id N] [--owner-dir DIR |\n"
              "          [--roots LIST] [--ark FILE --ask FILE] [--allow-chips LIST]\n"
              "          [--min-api MAJOR.MINOR] [--min-build N]]\n"
              "  %1$s roots\n"
              "  %1$s { -h | --help | -V | --version }\n"
              "\n"
              "The guest owner's side of AMD SEV launch attestation and of\n"
              "confidential migration. See virt-qemu-sev-owner(1).\n"),
            progname);
}


int
main(int argc, char **argv)
{
    const char *cmd;
    int rc;

    if (virGettextInitialize() < 0 ||
        virErrorInitialize() < 0)
        return EXIT_FAILURE;

    if (argc < 2) {
        sevOwnerUsage(stderr);
        return EXIT_FAILURE;
    }

    cmd = argv[1];
    if (STREQ(cmd, "-h") || STREQ(cmd, "--help") || STREQ(cmd, "help")) {
        sevOwnerUsage(stdout);
        return EXIT_SUCCESS;
    }
    if (STREQ(cmd, "-V") || STREQ(cmd, "--version")) {
        printf("%s %s\n", progname, PACKAGE_VERSION);
        return EXIT_SUCCESS;
    }

    if (gnutls_global_init() < 0) {
        sevOwnerError("%s", _("cannot initialize gnutls"));
        return EXIT_FAILURE;
    }

    if (STREQ(cmd, "verify")) {
        /* 0: match, 1: mismatch, 2: error */
        rc = cmdVerify(argc - 2, argv + 2);
        gnutls_global_deinit();
        return rc < 0 ? 2 : rc == 1 ? 0 : 1;
    }

    if (STREQ(cmd, "verify-chain")) {
        /* 0: verified, 1: refused, 2: error */
        rc = cmdVerifyChain(argc - 2, argv + 2);
        gnutls_global_deinit();
        return rc < 0 ? 2 : rc;
    }

    if (STREQ(cmd, "keygen")) {
        rc = cmdKeygen(argc - 2, argv + 2);
    } else if (STREQ(cmd, "session")) {
        rc = cmdSession(argc - 2, argv + 2);
    } else if (STREQ(cmd, "unwrap")) {
        rc = cmdUnwrap(argc - 2, argv + 2);
    } else if (STREQ(cmd, "measure")) {
        rc = cmdMeasure(argc - 2, argv + 2);
    } else if (STREQ(cmd, "secret")) {
        rc = cmdSecret(argc - 2, argv + 2);
    } else if (STREQ(cmd, "agent")) {
        rc = cmdAgent(argc - 2, argv + 2);
    } else if (STREQ(cmd, "roots")) {
        rc = cmdRoots(argc - 2, argv + 2);
    } else {
        sevOwnerError(_("unknown command '%1$s'"), cmd);
        sevOwnerUsage(stderr);
        rc = -1;
    }

    gnutls_global_deinit();
    return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
