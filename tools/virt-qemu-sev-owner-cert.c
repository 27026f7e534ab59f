/*
 * virt-qemu-sev-owner-cert.c: SEV certificates and the platform's
 * certificate chain
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
#include "virt-qemu-sev-owner-roots.h"
#include "virt-qemu-sev-owner-util.h"

#define VIR_FROM_THIS VIR_FROM_NONE

/* The AMD root key certificate (appendix B): version, key id, certifying
 * id, key usage, reserved, the sizes in bits of the public exponent and
 * of the modulus, the exponent, the modulus and the signature (as long as
 * the modulus), all little-endian. */
#define AMD_CERT_OFF_VERSION 0x0
#define AMD_CERT_OFF_KEY_ID 0x4
#define AMD_CERT_OFF_CERTIFYING_ID 0x14
#define AMD_CERT_OFF_KEY_USAGE 0x24
#define AMD_CERT_OFF_PUBEXP_SIZE 0x38
#define AMD_CERT_OFF_MODULUS_SIZE 0x3C
#define AMD_CERT_OFF_PUBEXP 0x40
#define AMD_CERT_ID_SIZE 16


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
static int G_GNUC_PRINTF(2, 3)
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


static char *
sevOwnerHex(const uint8_t *data,
            size_t len)
{
    GString *str = g_string_sized_new(len * 2 + 1);
    size_t i;

    for (i = 0; i < len; i++)
        g_string_append_printf(str, "%02x", data[i]);

    return g_string_free(str, FALSE);
}


static void G_GNUC_PRINTF(2, 3)
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

typedef struct {
    const char *name;           /* "ARK", "ASK" */
    const char *root;           /* the root's name */
    uint8_t keyId[AMD_CERT_ID_SIZE];
    uint8_t certifyingId[AMD_CERT_ID_SIZE];
    const uint8_t *exp;         /* little-endian */
    size_t expSize;             /* bytes */
    const uint8_t *mod;         /* little-endian */
    size_t modSize;             /* bytes */
    const uint8_t *data;        /* the signed part: up to the signature */
    size_t signedLen;
    const uint8_t *sig;         /* little-endian, modSize bytes */
} sevOwnerAMDCert;


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


static const char *
sevOwnerPSSName(const sevOwnerAMDCert *cert)
{
    return cert->modSize == 256 ? "RSA-2048, RSASSA-PSS SHA-256" :
        "RSA-4096, RSASSA-PSS SHA-384";
}


/* The ARK (self-signed) and the ASK (signed by the ARK) of a root. */
static int
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

typedef struct {
    const char *name;           /* "PEK" */
    const uint8_t *data;        /* SEV_CERT_SIZE bytes */
    uint32_t usage;
    uint32_t algo;
    sevOwnerPubKey key;
} sevOwnerSEVCert;


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


static int
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
static const uint8_t *
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
static int
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
static bool
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


/* ------------------------------------------------------------------ */
/* The chain                                                            */
/* ------------------------------------------------------------------ */

/* QEMU's cert-chain (query-sev-capabilities, virsh nodesevinfo): what
 * PDH_CERT_EXPORT returns as the certificate chain, the PEK, the OCA and
 * the CEK. */
int
sevOwnerSplitCertChain(const uint8_t *blob,
                       size_t len,
                       sevOwnerChain *chain,
                       char **reason)
{
    if (len != 3 * SEV_CERT_SIZE)
        return sevOwnerRefusal(reason,
                               _("cert-chain: %1$zu bytes, not the %2$d of a PEK, an OCA and a CEK"),
                               len, 3 * SEV_CERT_SIZE);

    chain->pek = blob;
    chain->pekLen = SEV_CERT_SIZE;
    chain->oca = blob + SEV_CERT_SIZE;
    chain->ocaLen = SEV_CERT_SIZE;
    chain->cek = blob + 2 * SEV_CERT_SIZE;
    chain->cekLen = SEV_CERT_SIZE;
    return 0;
}


static void
sevOwnerChipId(const sevOwnerSEVCert *cek,
               uint8_t chip[SEV_CHIP_ID_SIZE])
{
    struct sha256_ctx ctx;
    uint8_t point = 0x04;

    /* the uncompressed point of SEC 1: 0x04 || x || y, big-endian */
    sha256_init(&ctx);
    sha256_update(&ctx, 1, &point);
    sha256_update(&ctx, P384_SIZE, cek->key.x);
    sha256_update(&ctx, P384_SIZE, cek->key.y);
    sha256_digest(&ctx, SEV_CHIP_ID_SIZE, chip);
}


static bool
sevOwnerAPIBelow(unsigned int major,
                 unsigned int minor,
                 const sevOwnerChainPolicy *policy)
{
    return major < policy->minAPIMajor ||
        (major == policy->minAPIMajor && minor < policy->minAPIMinor);
}


/*
 * Verifies @chain against @policy. Returns 0 when the chain verifies
 * and the policy accepts it (@res filled), 1 when it is refused (*reason
 * names what failed). @log, if not NULL, receives a line for each check
 * that passed, in order.
 */
int
sevOwnerVerifyChain(const sevOwnerChain *chain,
                    const sevOwnerChainPolicy *policy,
                    GString *log,
                    sevOwnerChainResult *res,
                    char **reason)
{
    sevOwnerSEVCert pdh;
    sevOwnerSEVCert pek;
    sevOwnerSEVCert oca;
    sevOwnerSEVCert cek;
    const sevOwnerRoot *signer = NULL;
    g_autofree char *chip = NULL;
    uint32_t algo = 0;
    size_t i;

    memset(res, 0, sizeof(*res));

    if (policy->nroots == 0)
        return sevOwnerRefusal(reason, "%s", _("no root of trust is allowed"));

    if (sevOwnerSEVCertParse("PDH", chain->pdh, chain->pdhLen, SEV_USAGE_PDH, &pdh, reason) ||
        sevOwnerSEVCertParse("PEK", chain->pek, chain->pekLen, SEV_USAGE_PEK, &pek, reason) ||
        sevOwnerSEVCertParse("OCA", chain->oca, chain->ocaLen, SEV_USAGE_OCA, &oca, reason) ||
        sevOwnerSEVCertParse("CEK", chain->cek, chain->cekLen, SEV_USAGE_CEK, &cek, reason))
        return 1;

    /* CEK <- ASK <- ARK: the CEK must be signed by the ASK of a root the
     * owner allows; each root tried must itself verify */
    if (!sevOwnerSigSlot(&cek, SEV_USAGE_ASK, &algo))
        return sevOwnerRefusal(reason, "%s",
                               _("CEK: not signed by the ASK (no signature of usage ASK)"));
    if (algo != SEV_ALGO_RSA_SHA256 && algo != SEV_ALGO_RSA_SHA384)
        return sevOwnerRefusal(reason,
                               _("CEK: the signature of usage ASK has algorithm 0x%1$x, not RSA (0x1 or 0x101)"),
                               algo);

    for (i = 0; i < policy->nroots && !signer; i++) {
        sevOwnerAMDCert ark;
        sevOwnerAMDCert ask;
        g_autoptr(GString) rootLog = g_string_new(NULL);

        if (sevOwnerRootVerify(&policy->roots[i], &ark, &ask, rootLog, reason) != 0)
            return 1;

        if (sevOwnerCEKSignedByASK(&cek, &ask)) {
            signer = &policy->roots[i];
            if (log)
                g_string_append(log, rootLog->str);
            sevOwnerLog(log, _("CEK: signed by the ASK (%1$s): verified (%2$s)"),
                        signer->name, sevOwnerPSSName(&ask));
        }
    }

    if (!signer) {
        g_autoptr(GString) names = g_string_new(NULL);

        for (i = 0; i < policy->nroots; i++)
            g_string_append_printf(names, "%s%s", i ? ", " : "",
                                   policy->roots[i].name);
        return sevOwnerRefusal(reason,
                               _("CEK: signature by the ASK does not verify (allowed roots: %1$s)"),
                               names->str);
    }

    sevOwnerChipId(&cek, res->chip);
    chip = sevOwnerHex(res->chip, SEV_CHIP_ID_SIZE);
    sevOwnerLog(log, _("CEK: chip %1$s (SHA-256 of the CEK's public key)"), chip);

    /* OCA (self-signed) and CEK -> PEK -> PDH */
    if (sevOwnerCheckSignedBy(&oca, &oca, log, reason) ||
        sevOwnerCheckSignedBy(&pek, &cek, log, reason) ||
        sevOwnerCheckSignedBy(&pek, &oca, log, reason) ||
        sevOwnerCheckSignedBy(&pdh, &pek, log, reason))
        return 1;

    sevOwnerLog(log, _("PEK: API version %1$u.%2$u"),
                pek.key.apiMajor, pek.key.apiMinor);
    sevOwnerLog(log, _("PDH: API version %1$u.%2$u"),
                pdh.key.apiMajor, pdh.key.apiMinor);

    /* the owner's policy */
    if (policy->nchips > 0) {
        bool found = false;

        for (i = 0; i < policy->nchips && !found; i++)
            found = memcmp(policy->chips + i * SEV_CHIP_ID_SIZE, res->chip,
                           SEV_CHIP_ID_SIZE) == 0;
        if (!found)
            return sevOwnerRefusal(reason, _("CEK: chip %1$s is not an allowed chip"),
                                   chip);
        sevOwnerLog(log, "%s", _("policy: the chip is allowed"));
    }

    if (policy->minAPISet) {
        if (sevOwnerAPIBelow(pek.key.apiMajor, pek.key.apiMinor, policy))
            return sevOwnerRefusal(reason,
                                   _("PEK: API version %1$u.%2$u is below the minimum %3$u.%4$u"),
                                   pek.key.apiMajor, pek.key.apiMinor,
                                   policy->minAPIMajor, policy->minAPIMinor);
        if (sevOwnerAPIBelow(pdh.key.apiMajor, pdh.key.apiMinor, policy))
            return sevOwnerRefusal(reason,
                                   _("PDH: API version %1$u.%2$u is below the minimum %3$u.%4$u"),
                                   pdh.key.apiMajor, pdh.key.apiMinor,
                                   policy->minAPIMajor, policy->minAPIMinor);
        sevOwnerLog(log, _("policy: API version at least %1$u.%2$u"),
                    policy->minAPIMajor, policy->minAPIMinor);
    }

    if (policy->minBuildSet) {
        if (!chain->buildSet)
            return sevOwnerRefusal(reason,
                                   _("firmware build: not given, and the minimum is %1$u"),
                                   policy->minBuild);
        if (chain->build < policy->minBuild)
            return sevOwnerRefusal(reason,
                                   _("firmware build: %1$u is below the minimum %2$u"),
                                   chain->build, policy->minBuild);
        sevOwnerLog(log, _("policy: firmware build %1$u, at least %2$u"),
                    chain->build, policy->minBuild);
    }

    res->root = signer->name;
    res->pdh = pdh.key;
    res->pekAPIMajor = pek.key.apiMajor;
    res->pekAPIMinor = pek.key.apiMinor;
    return 0;
}


/* ------------------------------------------------------------------ */
/* The owner's policy                                                   */
/* ------------------------------------------------------------------ */

void
sevOwnerChainPolicyClear(sevOwnerChainPolicy *policy)
{
    size_t i;

    for (i = 0; i < policy->nroots; i++) {
        g_free(policy->roots[i].name);
        g_free(policy->roots[i].ark);
        g_free(policy->roots[i].ask);
    }
    g_free(policy->roots);
    g_free(policy->chips);
    memset(policy, 0, sizeof(*policy));
}


static bool
sevOwnerPolicyHasRoot(const sevOwnerChainPolicy *policy,
                      const char *name)
{
    size_t i;

    for (i = 0; i < policy->nroots; i++) {
        if (STREQ(policy->roots[i].name, name))
            return true;
    }
    return false;
}


static void
sevOwnerPolicyAddRoot(sevOwnerChainPolicy *policy,
                      const char *name,
                      uint8_t *ark,
                      size_t arkLen,
                      uint8_t *ask,
                      size_t askLen)
{
    sevOwnerRoot *root;

    policy->roots = g_renew(sevOwnerRoot, policy->roots, policy->nroots + 1);
    root = &policy->roots[policy->nroots++];
    root->name = g_strdup(name);
    root->ark = ark;
    root->arkLen = arkLen;
    root->ask = ask;
    root->askLen = askLen;
}


/* AMD's roots this tool carries: a comma-separated list of generations,
 * or "all". */
int
sevOwnerChainPolicyAddBuiltin(sevOwnerChainPolicy *policy,
                              const char *names)
{
    g_auto(GStrv) list = g_strsplit(names, ",", -1);
    size_t nbuiltin = 0;
    const sevOwnerBuiltinRoot *builtin = sevOwnerBuiltinRoots(&nbuiltin);
    size_t i;
    size_t j;

    for (i = 0; list[i]; i++) {
        const char *name = g_strstrip(list[i]);
        bool all = STREQ(name, "all");
        bool found = false;

        for (j = 0; j < nbuiltin; j++) {
            sevOwnerBuf ark = { 0 };
            sevOwnerBuf ask = { 0 };

            if (!all && STRNEQ(name, builtin[j].name))
                continue;
            found = true;
            if (sevOwnerPolicyHasRoot(policy, builtin[j].name))
                continue;
            if (sevOwnerBuiltinRootLoad(&builtin[j], &ark, &ask) < 0)
                return -1;
            sevOwnerPolicyAddRoot(policy, builtin[j].name,
                                  ark.data, ark.len, ask.data, ask.len);
        }

        if (!found) {
            g_autoptr(GString) known = g_string_new("all");

            for (j = 0; j < nbuiltin; j++)
                g_string_append_printf(known, ", %s", builtin[j].name);
            sevOwnerError(_("unknown SEV generation '%1$s' (known: %2$s)"),
                          name, known->str);
            return -1;
        }
    }

    return 0;
}


/* An ARK and an ASK in files (base64 or raw), the owner's own root. */
int
sevOwnerChainPolicyAddRootFiles(sevOwnerChainPolicy *policy,
                                const char *ark,
                                const char *ask)
{
    sevOwnerBuf arkData = { 0 };
    sevOwnerBuf askData = { 0 };

    if (sevOwnerReadBlobFile(ark, &arkData) < 0)
        return -1;
    if (sevOwnerReadBlobFile(ask, &askData) < 0) {
        sevOwnerBufClear(&arkData);
        return -1;
    }

    sevOwnerPolicyAddRoot(policy, ark, arkData.data, arkData.len,
                          askData.data, askData.len);
    return 0;
}


/* Chip identities: a comma-separated list of SHA-256 digests of CEK
 * public keys, 64 hex digits each. */
int
sevOwnerChainPolicyAddChips(sevOwnerChainPolicy *policy,
                            const char *list)
{
    g_auto(GStrv) items = g_strsplit(list, ",", -1);
    size_t i;

    for (i = 0; items[i]; i++) {
        const char *item = g_strstrip(items[i]);
        uint8_t chip[SEV_CHIP_ID_SIZE];

        if (!*item)
            continue;
        if (sevOwnerParseHex(_("a chip identity"), item, chip, sizeof(chip)) < 0)
            return -1;

        policy->chips = g_renew(uint8_t, policy->chips,
                                (policy->nchips + 1) * SEV_CHIP_ID_SIZE);
        memcpy(policy->chips + policy->nchips * SEV_CHIP_ID_SIZE, chip,
               SEV_CHIP_ID_SIZE);
        policy->nchips++;
    }

    return 0;
}


/* MAJOR.MINOR */
int
sevOwnerChainPolicySetMinAPI(sevOwnerChainPolicy *policy,
                             const char *str)
{
    g_auto(GStrv) parts = g_strsplit(str, ".", -1);

    if (g_strv_length(parts) != 2 ||
        sevOwnerParseUInt(_("minimum API major version"), parts[0], 255,
                          &policy->minAPIMajor) < 0 ||
        sevOwnerParseUInt(_("minimum API minor version"), parts[1], 255,
                          &policy->minAPIMinor) < 0) {
        sevOwnerError(_("invalid minimum API version '%1$s' (expected MAJOR.MINOR)"),
                      str);
        return -1;
    }

    policy->minAPISet = true;
    return 0;
}


int
sevOwnerChainPolicySetMinBuild(sevOwnerChainPolicy *policy,
                               const char *str)
{
    if (sevOwnerParseUInt(_("minimum firmware build"), str, 255,
                          &policy->minBuild) < 0)
        return -1;

    policy->minBuildSet = true;
    return 0;
}
