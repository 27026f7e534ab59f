/*
 * virt-qemu-sev-owner-crypto.c: the SEV structures and the cryptography of
 * the guest owner's tool (random, KDF, HMAC, AES, ECDH, P-384 keys)
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

#include "virt-qemu-sev-owner-crypto.h"

#define VIR_FROM_THIS VIR_FROM_NONE


/* ------------------------------------------------------------------ */
/* Secret buffers                                                       */
/* ------------------------------------------------------------------ */

/* The transport keys of a launch: TEK and TIK. */

void
sevOwnerTKClear(sevOwnerTK *tk)
{
    virSecureErase(tk, sizeof(*tk));
}

/* The guest owner's (or, for 'unwrap', the platform's) P-384 key. */

void
sevOwnerECKeyClear(sevOwnerECKey *key)
{
    virSecureErase(key, sizeof(*key));
}


/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */


/* A GUID in its textual form into its bytes as OVMF stores them (the
 * first three fields little-endian, as Python's UUID.bytes_le). */
void
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


bool
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


int
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
void
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


void
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
void
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
int
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


int
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
int
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
