/*
 * virt-qemu-sev-owner-cert.c: SEV certificates: their formats and
 * signatures (the chain's verification is in virt-qemu-sev-owner-chain.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The formats are those of the AMD SEV API specification (publication
 * 55766): the AMD root key certificate of the ARK and the ASK (appendix
 * B) and the SEV certificate of the CEK, OCA, PEK and PDH (appendix C).
 * All their integers are little-endian, RSA moduli and signatures
 * included.
 *
 * The chain a guest owner verifies before it trusts a platform's PDH:
 *
 *   ARK   self-signed, RSASSA-PSS
 *   ASK   signed by the ARK, RSASSA-PSS; its certifying id is the ARK's
 *         key id
 *   CEK   signed by the ASK, RSASSA-PSS (signature slot of usage ASK)
 *   OCA   self-signed, ECDSA P-384
 *   PEK   signed by the CEK and by the OCA, ECDSA P-384
 *   PDH   signed by the PEK, ECDSA P-384
 *
 * RSASSA-PSS uses MGF1 with the same hash and a salt as long as the
 * hash: SHA-256 for AMD's 2048-bit keys (Naples), SHA-384 for its
 * 4096-bit keys (Rome and later). This is what AMD's published
 * certificates carry (checked on each of them by the tests).
 */

#include <config.h>
#include "internal.h"

#include <gmp.h>
#include <nettle/bignum.h>
#include <nettle/ecc.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecdsa.h>
#include <nettle/rsa.h>
#include <nettle/sha2.h>

#include "virt-qemu-sev-owner-cert.h"
#define LIBVIRT_VIRT_QEMU_SEV_OWNER_CERTPRIV_H_ALLOW
#include "virt-qemu-sev-owner-certpriv.h"
#include "virt-qemu-sev-owner-roots.h"
#include "virt-qemu-sev-owner-util.h"

#define VIR_FROM_THIS VIR_FROM_NONE



/* The sev_cert of an ECDH P-384 public key with usage PDH, unsigned
 * (both signature slots unused): what the guest owner gives LAUNCH_START
 * as its Diffie-Hellman certificate. SEV firmware checks only the body
 * of this certificate (version, usage, algorithm, key). */
void
sevOwnerBuildCert(const sevOwnerPubKey *pub,
                  uint8_t cert[SEV_CERT_SIZE])
{
    uint8_t *key = cert + SEV_CERT_OFF_PUBKEY;

    memset(cert, 0, SEV_CERT_SIZE);
    sevOwnerPutLE32(cert + SEV_CERT_OFF_VERSION, 1);
    cert[SEV_CERT_OFF_API_MAJOR] = pub->apiMajor;
    cert[SEV_CERT_OFF_API_MINOR] = pub->apiMinor;
    sevOwnerPutLE32(cert + SEV_CERT_OFF_PUBKEY_USAGE, SEV_USAGE_PDH);
    sevOwnerPutLE32(cert + SEV_CERT_OFF_PUBKEY_ALGO, SEV_ALGO_ECDH_SHA256);
    sevOwnerPutLE32(key, SEV_EC_P384);
    sevOwnerReverse(key + 4, pub->x, P384_SIZE);
    sevOwnerReverse(key + 4 + SEV_ECC_COORD_SIZE, pub->y, P384_SIZE);
    sevOwnerPutLE32(cert + SEV_CERT_OFF_SIG1_USAGE, SEV_USAGE_INVALID);
    sevOwnerPutLE32(cert + SEV_CERT_OFF_SIG1_ALGO, SEV_ALGO_INVALID);
    sevOwnerPutLE32(cert + SEV_CERT_OFF_SIG2_USAGE, SEV_USAGE_INVALID);
    sevOwnerPutLE32(cert + SEV_CERT_OFF_SIG2_ALGO, SEV_ALGO_INVALID);
}


/* The ECDH P-384 key of a PDH-usage sev_cert (the platform's PDH or a
 * guest owner's certificate). Signatures are not checked here:
 * sevOwnerVerifyChain() checks the platform's chain. */
int
sevOwnerParseCert(const char *what,
                  const uint8_t *cert,
                  size_t len,
                  sevOwnerPubKey *pub)
{
    const uint8_t *key = cert + SEV_CERT_OFF_PUBKEY;
    uint32_t algo;
    size_t i;

    if (len != SEV_CERT_SIZE) {
        sevOwnerError(_("%1$s is not a SEV certificate (%2$zu bytes, expected %3$d)"),
                      what, len, SEV_CERT_SIZE);
        return -1;
    }

    algo = sevOwnerGetLE32(cert + SEV_CERT_OFF_PUBKEY_ALGO);
    if (sevOwnerGetLE32(cert + SEV_CERT_OFF_VERSION) != 1 ||
        sevOwnerGetLE32(cert + SEV_CERT_OFF_PUBKEY_USAGE) != SEV_USAGE_PDH ||
        (algo != SEV_ALGO_ECDH_SHA256 && algo != SEV_ALGO_ECDH_SHA384) ||
        sevOwnerGetLE32(key) != SEV_EC_P384) {
        sevOwnerError(_("%1$s is not a SEV certificate of a P-384 Diffie-Hellman key (usage PDH)"),
                      what);
        return -1;
    }

    /* the coordinates are 72-byte little-endian fields: P-384 uses 48 */
    for (i = P384_SIZE; i < SEV_ECC_COORD_SIZE; i++) {
        if (key[4 + i] || key[4 + SEV_ECC_COORD_SIZE + i]) {
            sevOwnerError(_("%1$s holds an invalid P-384 point"), what);
            return -1;
        }
    }

    pub->apiMajor = cert[SEV_CERT_OFF_API_MAJOR];
    pub->apiMinor = cert[SEV_CERT_OFF_API_MINOR];
    sevOwnerReverse(pub->x, key + 4, P384_SIZE);
    sevOwnerReverse(pub->y, key + 4 + SEV_ECC_COORD_SIZE, P384_SIZE);

    return 0;
}


/* ------------------------------------------------------------------ */
/* Refusals                                                             */
/* ------------------------------------------------------------------ */

/* The first refusal is the one reported. */
int G_GNUC_PRINTF(2, 3)
sevOwnerRefusal(char **reason,
                const char *fmt, ...)
{
    va_list args;

    if (*reason)
        return 1;

    va_start(args, fmt);
    *reason = g_strdup_vprintf(fmt, args);
    va_end(args);

    return 1;
}


char *
sevOwnerHex(const uint8_t *data,
            size_t len)
{
    GString *str = g_string_sized_new(len * 2 + 1);
    size_t i;

    for (i = 0; i < len; i++)
        g_string_append_printf(str, "%02x", data[i]);

    return g_string_free(str, FALSE);
}


void G_GNUC_PRINTF(2, 3)
sevOwnerLog(GString *log,
            const char *fmt, ...)
{
    va_list args;

    if (!log)
        return;

    va_start(args, fmt);
    g_string_append_vprintf(log, fmt, args);
    va_end(args);
    g_string_append_c(log, '\n');
}


/* ------------------------------------------------------------------ */
/* AMD root key certificates: ARK and ASK                               */
/* ------------------------------------------------------------------ */



static int
sevOwnerAMDCertParse(const char *name,
                     const char *root,
                     const uint8_t *data,
                     size_t len,
                     uint32_t usage,
                     sevOwnerAMDCert *cert,
                     char **reason)
{
    uint32_t version;
    uint32_t certUsage;
    uint32_t expBits;
    uint32_t modBits;
    size_t expect;

    memset(cert, 0, sizeof(*cert));
    cert->name = name;
    cert->root = root;

    if (len < AMD_CERT_OFF_PUBEXP)
        return sevOwnerRefusal(reason,
                               _("%1$s (%2$s): not an AMD root key certificate (%3$zu bytes)"),
                               name, root, len);

    if ((version = sevOwnerGetLE32(data + AMD_CERT_OFF_VERSION)) != 1)
        return sevOwnerRefusal(reason, _("%1$s (%2$s): version %3$u is not 1"),
                               name, root, version);

    if ((certUsage = sevOwnerGetLE32(data + AMD_CERT_OFF_KEY_USAGE)) != usage)
        return sevOwnerRefusal(reason,
                               _("%1$s (%2$s): key usage 0x%3$x is not %4$s (0x%5$x)"),
                               name, root, certUsage, name, usage);

    expBits = sevOwnerGetLE32(data + AMD_CERT_OFF_PUBEXP_SIZE);
    modBits = sevOwnerGetLE32(data + AMD_CERT_OFF_MODULUS_SIZE);
    if (modBits != 2048 && modBits != 4096)
        return sevOwnerRefusal(reason,
                               _("%1$s (%2$s): a modulus of %3$u bits is neither 2048 nor 4096"),
                               name, root, modBits);
    if (expBits == 0 || expBits % 8 != 0 || expBits > modBits)
        return sevOwnerRefusal(reason,
                               _("%1$s (%2$s): invalid public exponent size of %3$u bits"),
                               name, root, expBits);

    cert->expSize = expBits / 8;
    cert->modSize = modBits / 8;
    expect = AMD_CERT_OFF_PUBEXP + cert->expSize + 2 * cert->modSize;
    if (len != expect)
        return sevOwnerRefusal(reason,
                               _("%1$s (%2$s): %3$zu bytes, its key sizes give %4$zu"),
                               name, root, len, expect);

    memcpy(cert->keyId, data + AMD_CERT_OFF_KEY_ID, AMD_CERT_ID_SIZE);
    memcpy(cert->certifyingId, data + AMD_CERT_OFF_CERTIFYING_ID, AMD_CERT_ID_SIZE);
    cert->exp = data + AMD_CERT_OFF_PUBEXP;
    cert->mod = cert->exp + cert->expSize;
    cert->data = data;
    cert->signedLen = AMD_CERT_OFF_PUBEXP + cert->expSize + cert->modSize;
    cert->sig = data + cert->signedLen;

    return 0;
}


static void
sevOwnerMpzFromLE(mpz_t z,
                  const uint8_t *le,
                  size_t len)
{
    g_autofree uint8_t *be = g_new0(uint8_t, len);

    sevOwnerReverse(be, le, len);
    nettle_mpz_set_str_256_u(z, len, be);
}


/* RSASSA-PSS (MGF1, salt as long as the hash) by @signer over @len bytes
 * of @msg: SHA-256 for a 2048-bit key, SHA-384 for a 4096-bit key. The
 * signature is little-endian and as long as the modulus. */
static bool
sevOwnerRSAPSSVerify(const sevOwnerAMDCert *signer,
                     const uint8_t *msg,
                     size_t len,
                     const uint8_t *sig)
{
    struct rsa_public_key pub;
    mpz_t s;
    bool ok = false;

    rsa_public_key_init(&pub);
    mpz_init(s);

    sevOwnerMpzFromLE(pub.n, signer->mod, signer->modSize);
    sevOwnerMpzFromLE(pub.e, signer->exp, signer->expSize);
    sevOwnerMpzFromLE(s, sig, signer->modSize);

    if (!rsa_public_key_prepare(&pub))
        goto cleanup;

    if (signer->modSize == 256) {
        struct sha256_ctx ctx;
        uint8_t digest[SHA256_DIGEST_SIZE];

        sha256_init(&ctx);
        sha256_update(&ctx, len, msg);
        sha256_digest(&ctx, sizeof(digest), digest);
        ok = rsa_pss_sha256_verify_digest(&pub, SHA256_DIGEST_SIZE, digest, s);
    } else {
        struct sha384_ctx ctx;
        uint8_t digest[SHA384_DIGEST_SIZE];

        sha384_init(&ctx);
        sha384_update(&ctx, len, msg);
        sha384_digest(&ctx, sizeof(digest), digest);
        ok = rsa_pss_sha384_verify_digest(&pub, SHA384_DIGEST_SIZE, digest, s);
    }

 cleanup:
    mpz_clear(s);
    rsa_public_key_clear(&pub);
    return ok;
}


const char *
sevOwnerPSSName(const sevOwnerAMDCert *cert)
{
    return cert->modSize == 256 ? "RSA-2048, RSASSA-PSS SHA-256" :
        "RSA-4096, RSASSA-PSS SHA-384";
}


/* The ARK (self-signed) and the ASK (signed by the ARK) of a root. */
int
sevOwnerRootVerify(const sevOwnerRoot *root,
                   sevOwnerAMDCert *ark,
                   sevOwnerAMDCert *ask,
                   GString *log,
                   char **reason)
{
    g_autofree char *arkId = NULL;
    g_autofree char *askId = NULL;

    if (sevOwnerAMDCertParse("ARK", root->name, root->ark, root->arkLen,
                             SEV_USAGE_ARK, ark, reason) != 0 ||
        sevOwnerAMDCertParse("ASK", root->name, root->ask, root->askLen,
                             SEV_USAGE_ASK, ask, reason) != 0)
        return 1;

    arkId = sevOwnerHex(ark->keyId, AMD_CERT_ID_SIZE);
    askId = sevOwnerHex(ask->keyId, AMD_CERT_ID_SIZE);

    if (memcmp(ark->certifyingId, ark->keyId, AMD_CERT_ID_SIZE) != 0)
        return sevOwnerRefusal(reason,
                               _("ARK (%1$s): not self-signed (its certifying id is not its key id %2$s)"),
                               root->name, arkId);

    if (!sevOwnerRSAPSSVerify(ark, ark->data, ark->signedLen, ark->sig))
        return sevOwnerRefusal(reason, _("ARK (%1$s): self-signature does not verify"),
                               root->name);

    sevOwnerLog(log, _("ARK (%1$s): key id %2$s, self-signature verified (%3$s)"),
                root->name, arkId, sevOwnerPSSName(ark));

    if (memcmp(ask->certifyingId, ark->keyId, AMD_CERT_ID_SIZE) != 0)
        return sevOwnerRefusal(reason,
                               _("ASK (%1$s): not signed by the ARK (its certifying id is not the ARK's key id %2$s)"),
                               root->name, arkId);

    if (!sevOwnerRSAPSSVerify(ark, ask->data, ask->signedLen, ask->sig))
        return sevOwnerRefusal(reason, _("ASK (%1$s): signature by the ARK does not verify"),
                               root->name);

    sevOwnerLog(log, _("ASK (%1$s): key id %2$s, signed by the ARK: verified"),
                root->name, askId);

    return 0;
}


/* ------------------------------------------------------------------ */
/* SEV certificates: CEK, OCA, PEK, PDH                                 */
/* ------------------------------------------------------------------ */



/* A P-384 coordinate: 48 bytes little-endian in a 72-byte field. */
static bool
sevOwnerCoordValid(const uint8_t *field)
{
    size_t i;

    for (i = P384_SIZE; i < SEV_ECC_COORD_SIZE; i++) {
        if (field[i])
            return false;
    }
    return true;
}


static bool
sevOwnerPointValid(const sevOwnerPubKey *key)
{
    struct ecc_point p;
    mpz_t x;
    mpz_t y;
    bool ok;

    mpz_init(x);
    mpz_init(y);
    ecc_point_init(&p, nettle_get_secp_384r1());

    nettle_mpz_set_str_256_u(x, P384_SIZE, key->x);
    nettle_mpz_set_str_256_u(y, P384_SIZE, key->y);
    ok = ecc_point_set(&p, x, y) != 0;

    ecc_point_clear(&p);
    mpz_clear(x);
    mpz_clear(y);
    return ok;
}


int
sevOwnerSEVCertParse(const char *name,
                     const uint8_t *data,
                     size_t len,
                     uint32_t usage,
                     sevOwnerSEVCert *cert,
                     char **reason)
{
    const uint8_t *key = data + SEV_CERT_OFF_PUBKEY;
    uint32_t version;
    uint32_t curve;
    bool ecdh = usage == SEV_USAGE_PDH;

    memset(cert, 0, sizeof(*cert));
    cert->name = name;
    cert->data = data;

    if (!data || len != SEV_CERT_SIZE)
        return sevOwnerRefusal(reason,
                               _("%1$s: %2$zu bytes, a SEV certificate has %3$d"),
                               name, data ? len : 0, SEV_CERT_SIZE);

    if ((version = sevOwnerGetLE32(data + SEV_CERT_OFF_VERSION)) != 1)
        return sevOwnerRefusal(reason, _("%1$s: version %2$u is not 1"),
                               name, version);

    cert->usage = sevOwnerGetLE32(data + SEV_CERT_OFF_PUBKEY_USAGE);
    if (cert->usage != usage)
        return sevOwnerRefusal(reason,
                               _("%1$s: key usage 0x%2$x is not %3$s (0x%4$x)"),
                               name, cert->usage, name, usage);

    cert->algo = sevOwnerGetLE32(data + SEV_CERT_OFF_PUBKEY_ALGO);
    if (ecdh && cert->algo != SEV_ALGO_ECDH_SHA256 &&
        cert->algo != SEV_ALGO_ECDH_SHA384)
        return sevOwnerRefusal(reason,
                               _("%1$s: algorithm 0x%2$x is not ECDH (0x3 or 0x103)"),
                               name, cert->algo);
    if (!ecdh && cert->algo != SEV_ALGO_ECDSA_SHA256 &&
        cert->algo != SEV_ALGO_ECDSA_SHA384)
        return sevOwnerRefusal(reason,
                               _("%1$s: algorithm 0x%2$x is not ECDSA (0x2 or 0x102)"),
                               name, cert->algo);

    if ((curve = sevOwnerGetLE32(key)) != SEV_EC_P384)
        return sevOwnerRefusal(reason, _("%1$s: curve %2$u is not P-384 (2)"),
                               name, curve);

    cert->key.apiMajor = data[SEV_CERT_OFF_API_MAJOR];
    cert->key.apiMinor = data[SEV_CERT_OFF_API_MINOR];
    sevOwnerReverse(cert->key.x, key + 4, P384_SIZE);
    sevOwnerReverse(cert->key.y, key + 4 + SEV_ECC_COORD_SIZE, P384_SIZE);

    if (!sevOwnerCoordValid(key + 4) ||
        !sevOwnerCoordValid(key + 4 + SEV_ECC_COORD_SIZE) ||
        !sevOwnerPointValid(&cert->key))
        return sevOwnerRefusal(reason, _("%1$s: the public key is not a point on P-384"),
                               name);

    return 0;
}


/* The signature slot of @cert whose usage is @usage, or NULL. */
const uint8_t *
sevOwnerSigSlot(const sevOwnerSEVCert *cert,
                uint32_t usage,
                uint32_t *algo)
{
    if (sevOwnerGetLE32(cert->data + SEV_CERT_OFF_SIG1_USAGE) == usage) {
        *algo = sevOwnerGetLE32(cert->data + SEV_CERT_OFF_SIG1_ALGO);
        return cert->data + SEV_CERT_OFF_SIG1;
    }
    if (sevOwnerGetLE32(cert->data + SEV_CERT_OFF_SIG2_USAGE) == usage) {
        *algo = sevOwnerGetLE32(cert->data + SEV_CERT_OFF_SIG2_ALGO);
        return cert->data + SEV_CERT_OFF_SIG2;
    }
    return NULL;
}


/* ECDSA on P-384 by @signer over the body of @cert; the signature is r
 * and s, each little-endian in a 72-byte field. */
static bool
sevOwnerECDSAVerify(const sevOwnerSEVCert *signer,
                    const sevOwnerSEVCert *cert,
                    uint32_t algo,
                    const uint8_t *sig)
{
    struct ecc_point pub;
    struct dsa_signature rs;
    uint8_t digest[SHA384_DIGEST_SIZE];
    size_t digestLen;
    mpz_t x;
    mpz_t y;
    bool ok = false;

    if (algo == SEV_ALGO_ECDSA_SHA256) {
        struct sha256_ctx ctx;

        sha256_init(&ctx);
        sha256_update(&ctx, SEV_CERT_BODY_SIZE, cert->data);
        sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
        digestLen = SHA256_DIGEST_SIZE;
    } else {
        struct sha384_ctx ctx;

        sha384_init(&ctx);
        sha384_update(&ctx, SEV_CERT_BODY_SIZE, cert->data);
        sha384_digest(&ctx, SHA384_DIGEST_SIZE, digest);
        digestLen = SHA384_DIGEST_SIZE;
    }

    if (!sevOwnerCoordValid(sig) ||
        !sevOwnerCoordValid(sig + SEV_ECC_COORD_SIZE))
        return false;

    mpz_init(x);
    mpz_init(y);
    ecc_point_init(&pub, nettle_get_secp_384r1());
    dsa_signature_init(&rs);

    nettle_mpz_set_str_256_u(x, P384_SIZE, signer->key.x);
    nettle_mpz_set_str_256_u(y, P384_SIZE, signer->key.y);
    if (!ecc_point_set(&pub, x, y))
        goto cleanup;

    sevOwnerMpzFromLE(rs.r, sig, P384_SIZE);
    sevOwnerMpzFromLE(rs.s, sig + SEV_ECC_COORD_SIZE, P384_SIZE);

    ok = ecdsa_verify(&pub, digestLen, digest, &rs) != 0;

 cleanup:
    dsa_signature_clear(&rs);
    ecc_point_clear(&pub);
    mpz_clear(x);
    mpz_clear(y);
    return ok;
}


/* @cert signed by @signer (ECDSA): the slot of the signer's usage, with
 * the signer's algorithm, verifies. */
int
sevOwnerCheckSignedBy(const sevOwnerSEVCert *cert,
                      const sevOwnerSEVCert *signer,
                      GString *log,
                      char **reason)
{
    const uint8_t *sig;
    uint32_t algo = 0;
    bool self = cert == signer;

    if (!(sig = sevOwnerSigSlot(cert, signer->usage, &algo))) {
        if (self)
            return sevOwnerRefusal(reason, _("%1$s: not self-signed (no signature of usage %2$s)"),
                                   cert->name, signer->name);
        return sevOwnerRefusal(reason, _("%1$s: not signed by the %2$s (no signature of usage %3$s)"),
                               cert->name, signer->name, signer->name);
    }

    if (algo != signer->algo)
        return sevOwnerRefusal(reason,
                               _("%1$s: the signature of usage %2$s has algorithm 0x%3$x, not the %4$s's 0x%5$x"),
                               cert->name, signer->name, algo, signer->name,
                               signer->algo);

    if (!sevOwnerECDSAVerify(signer, cert, algo, sig)) {
        if (self)
            return sevOwnerRefusal(reason, _("%1$s: self-signature does not verify"),
                                   cert->name);
        return sevOwnerRefusal(reason, _("%1$s: signature by the %2$s does not verify"),
                               cert->name, signer->name);
    }

    if (self)
        sevOwnerLog(log, _("%1$s: self-signed: verified (ECDSA P-384)"), cert->name);
    else
        sevOwnerLog(log, _("%1$s: signed by the %2$s: verified (ECDSA P-384)"),
                    cert->name, signer->name);
    return 0;
}


/* Whether @ask signed the CEK (RSASSA-PSS): the CEK's signature slot of
 * usage ASK has the algorithm of the ASK's key size and verifies. */
bool
sevOwnerCEKSignedByASK(const sevOwnerSEVCert *cek,
                       const sevOwnerAMDCert *ask)
{
    const uint8_t *sig;
    uint32_t algo = 0;
    uint32_t expect = ask->modSize == 256 ? SEV_ALGO_RSA_SHA256 : SEV_ALGO_RSA_SHA384;

    if (!(sig = sevOwnerSigSlot(cek, SEV_USAGE_ASK, &algo)) || algo != expect)
        return false;

    return sevOwnerRSAPSSVerify(ask, cek->data, SEV_CERT_BODY_SIZE, sig);
}
