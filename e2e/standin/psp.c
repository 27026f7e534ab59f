/*
 * The AMD secure processor (PSP) as an SEV guest's launch sees it, with the
 * formulas of the AMD SEV API specification (the formats:
 * docs/kbase/confidential-migration.rst and libvirt's
 * tools/virt-qemu-sev-validate):
 *
 *  - the platform: its Diffie-Hellman key (PDH, P-384; pspkey.c, its
 *    certificates: platcerts.c);
 *  - LAUNCH_START: ECDH(PDH, the guest owner's dhCert) and the SEV KDF give
 *    KEK and KIK; the session's wrap_mac is checked, TEK and TIK are
 *    unwrapped, the policy_mac is checked (without a session: random TEK
 *    and TIK that nobody knows);
 *  - LAUNCH_UPDATE_DATA and LAUNCH_MEASURE: the launch digest over the
 *    firmware file (and the kernel hashes table with kernel-hashes=on), a
 *    fresh mnonce, the measurement under the TIK;
 *  - LAUNCH_SECRET: the packet's MAC under the TIK over this launch's
 *    measurement, then the data decrypted with the TEK and OVMF's secret
 *    table parsed for the transport key and key id entries.
 *
 * Secrets (the PDH's private key, TEK, TIK, the secret table, the transport
 * key) never go to the log or to a reply.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <gmp.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <nettle/aes.h>
#include <nettle/bignum.h>
#include <nettle/ctr.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#include "psp.h"



#define SESSION_SIZE 128
#define HEADER_SIZE 52
#define SECRET_MAX 4096

/* the firmware's status codes (linux/psp-sev.h) */
#define FW_INVALID_CERTIFICATE 6
#define FW_POLICY_FAILURE 7
#define FW_BAD_MEASUREMENT 11
#define FW_INVALID_LEN 4
#define FW_INVALID_PARAM 22

static const guint8 secretTableGuid[16] = {     /* 1e74f542-71dd-4d66-963e-ef4287ff173b */
    0x42, 0xf5, 0x74, 0x1e, 0xdd, 0x71, 0x66, 0x4d,
    0x96, 0x3e, 0xef, 0x42, 0x87, 0xff, 0x17, 0x3b,
};
static const guint8 transportKeyGuid[16] = {    /* 68777468-ccbb-4873-a893-0b2880592c67 */
    0x68, 0x74, 0x77, 0x68, 0xbb, 0xcc, 0x73, 0x48,
    0xa8, 0x93, 0x0b, 0x28, 0x80, 0x59, 0x2c, 0x67,
};
static const guint8 keyIdGuid[16] = {           /* 20995426-ca45-47c7-8b08-dc1c7127134d */
    0x26, 0x54, 0x99, 0x20, 0x45, 0xca, 0xc7, 0x47,
    0x8b, 0x08, 0xdc, 0x1c, 0x71, 0x27, 0x13, 0x4d,
};
static const guint8 kernelTableGuid[16] = {     /* 9438d606-4f22-4cc9-b479-a793d411fd21 */
    0x06, 0xd6, 0x38, 0x94, 0x22, 0x4f, 0xc9, 0x4c,
    0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21,
};
static const guint8 kernelGuid[16] = {          /* 4de79437-abd2-427f-b835-d5b172d2045b */
    0x37, 0x94, 0xe7, 0x4d, 0xd2, 0xab, 0x7f, 0x42,
    0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b,
};
static const guint8 initrdGuid[16] = {          /* 44baf731-3a2f-4bd7-9af1-41e29169781d */
    0x31, 0xf7, 0xba, 0x44, 0x2f, 0x3a, 0xd7, 0x4b,
    0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d,
};
static const guint8 cmdlineGuid[16] = {         /* 97d02dd8-bd20-4c94-aa78-e7714d36ab2a */
    0xd8, 0x2d, 0xd0, 0x97, 0x20, 0xbd, 0x94, 0x4c,
    0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a,
};


/* ------------------------------------------------------------------ */
/* little helpers                                                     */

static void
randomBytes(guint8 *buf, size_t len)
{
    if (gnutls_rnd(GNUTLS_RND_KEY, buf, len) < 0)
        g_error("no random bytes");
}


static void
hmacSha256(const guint8 *key, size_t keyLen, const guint8 *msg, size_t msgLen,
           guint8 out[32])
{
    struct hmac_sha256_ctx ctx;

    hmac_sha256_set_key(&ctx, keyLen, key);
    hmac_sha256_update(&ctx, msgLen, msg);
    hmac_sha256_digest(&ctx, 32, out);
    memset(&ctx, 0, sizeof(ctx));
}


static void
aes128Ctr(const guint8 key[16], const guint8 iv[16], const guint8 *in,
          size_t len, guint8 *out)
{
    struct aes128_ctx ctx;
    guint8 ctr[16];

    memcpy(ctr, iv, 16);
    aes128_set_encrypt_key(&ctx, key);
    ctr_crypt(&ctx, (nettle_cipher_func *) aes128_encrypt, AES_BLOCK_SIZE,
              ctr, len, out, in);
    memset(&ctx, 0, sizeof(ctx));
}


/* NIST SP 800-108 KDF in counter mode, PRF HMAC-SHA256, as the SEV
 * firmware derives its keys: one block, L = 128 bits, 16 bytes out */
static void
sevKdf(const guint8 *key, size_t keyLen, const char *label,
       const guint8 *context, size_t contextLen, guint8 out[16])
{
    struct hmac_sha256_ctx ctx;
    guint8 counter[4], bits[4], zero = 0;
    guint8 digest[32];

    putLe32(counter, 1);
    putLe32(bits, 16 * 8);
    hmac_sha256_set_key(&ctx, keyLen, key);
    hmac_sha256_update(&ctx, 4, counter);
    hmac_sha256_update(&ctx, strlen(label), (const guint8 *) label);
    hmac_sha256_update(&ctx, 1, &zero);
    if (contextLen)
        hmac_sha256_update(&ctx, contextLen, context);
    hmac_sha256_update(&ctx, 4, bits);
    hmac_sha256_digest(&ctx, 32, digest);
    memcpy(out, digest, 16);
    memset(digest, 0, sizeof(digest));
    memset(&ctx, 0, sizeof(ctx));
}




static void
mpzFromLe(mpz_t v, const guint8 *in, size_t len)
{
    guint8 be[COORD_SIZE];
    size_t i;

    for (i = 0; i < len; i++)
        be[i] = in[len - 1 - i];
    nettle_mpz_set_str_256_u(v, len, be);
}


/* ------------------------------------------------------------------ */
/* LAUNCH_START                                                       */

static const char *
fwErrorName(int code)
{
    switch (code) {
    case FW_INVALID_LEN:
        return "Invalid length";
    case FW_INVALID_CERTIFICATE:
        return "Invalid certificate";
    case FW_POLICY_FAILURE:
        return "Policy is not allowed";
    case FW_BAD_MEASUREMENT:
        return "Bad measurement";
    case FW_INVALID_PARAM:
        return "Invalid parameter";
    }
    return "unknown error";
}


static void G_GNUC_PRINTF(4, 5)
launchError(GError **err, const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *why = NULL;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                "%s ret=-1 fw_error=%d '%s' (%s)", cmd, code,
                fwErrorName(code), why);
}


/* a file holding base64, as QEMU reads dh-cert-file and session-file */
static guint8 *
readBase64File(const char *path, gsize *len, GError **err)
{
    g_autofree char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, err))
        return NULL;
    g_strstrip(text);
    return g_base64_decode(text, len);
}


static bool
ecdhZ(const guint8 *cert, guint8 z[P384_BYTES], GError **err)
{
    const struct ecc_curve *p384 = nettle_get_secp_384r1();
    struct ecc_point q, r;
    mpz_t x, y;
    bool ok = false;

    if (getLe32(cert) != 1 || getLe32(cert + 0x8) != USAGE_PDH ||
        getLe32(cert + 0xC) != ALGO_ECDH_SHA256 ||
        getLe32(cert + CERT_PUBKEY) != CURVE_P384) {
        launchError(err, "LAUNCH_START", FW_INVALID_CERTIFICATE,
                    "the guest owner's dhCert is no ECDH P-384 PDH certificate");
        return false;
    }
    mpz_inits(x, y, NULL);
    mpzFromLe(x, cert + CERT_PUBKEY + 4, COORD_SIZE);
    mpzFromLe(y, cert + CERT_PUBKEY + 4 + COORD_SIZE, COORD_SIZE);
    ecc_point_init(&q, p384);
    ecc_point_init(&r, p384);
    if (!ecc_point_set(&q, x, y)) {
        launchError(err, "LAUNCH_START", FW_INVALID_CERTIFICATE,
                    "the guest owner's dhCert key is not on the P-384 curve");
        goto cleanup;
    }
    ecc_point_mul(&r, pdhPrivate(), &q);
    ecc_point_get(&r, x, NULL);
    /* big-endian: the firmware reverses its (little-endian) x before the
     * KDF, so Z is what OpenSSL's ECDH derive gives the guest owner */
    nettle_mpz_get_str_256(P384_BYTES, z, x);
    ok = true;

 cleanup:
    ecc_point_clear(&q);
    ecc_point_clear(&r);
    mpz_clears(x, y, NULL);
    return ok;
}


/* the launch digest: SHA-256 of the firmware file and, with kernel hashes,
 * OVMF's kernel hashes table, as virt-qemu-sev-validate computes it */
static bool
launchDigest(const CmdLine *cl, guint8 ld[32], GError **err)
{
    struct sha256_ctx sha;

    sha256_init(&sha);
    if (cl->sevFirmware) {
        g_autofree char *fw = NULL;
        gsize len;

        if (!g_file_get_contents(cl->sevFirmware, &fw, &len, err))
            return false;
        sha256_update(&sha, len, (const guint8 *) fw);
    }
    if (cl->sevKernelHashes && cl->kernel) {
        g_autoptr(GByteArray) table = g_byte_array_new();
        const guint8 *guids[] = { cmdlineGuid, initrdGuid, kernelGuid };
        guint8 hashes[3][32];
        guint8 len2[2];
        size_t i, pad;

        {
            const char *cmdline = cl->append ? cl->append : "";
            struct sha256_ctx h;

            /* the command line with its NUL */
            sha256_init(&h);
            sha256_update(&h, strlen(cmdline) + 1, (const guint8 *) cmdline);
            sha256_digest(&h, 32, hashes[0]);
        }
        for (i = 1; i < 3; i++) {
            const char *path = i == 1 ? cl->initrd : cl->kernel;
            g_autofree char *data = NULL;
            gsize len = 0;
            struct sha256_ctx h;

            if (path && !g_file_get_contents(path, &data, &len, err))
                return false;
            sha256_init(&h);
            sha256_update(&h, len, (const guint8 *) (data ? data : ""));
            sha256_digest(&h, 32, hashes[i]);
        }

        g_byte_array_append(table, kernelTableGuid, 16);
        g_byte_array_append(table, (const guint8 *) "\0\0", 2);
        for (i = 0; i < 3; i++) {
            g_byte_array_append(table, guids[i], 16);
            len2[0] = 16 + 2 + 32;
            len2[1] = 0;
            g_byte_array_append(table, len2, 2);
            g_byte_array_append(table, hashes[i], 32);
        }
        table->data[16] = table->len & 0xff;
        table->data[17] = table->len >> 8;
        pad = 16 - table->len % 16;
        for (i = 0; i < pad; i++)
            g_byte_array_append(table, (const guint8 *) "", 1);
        sha256_update(&sha, table->len, table->data);
    }
    sha256_digest(&sha, 32, ld);
    return true;
}


/* LAUNCH_START, LAUNCH_UPDATE_DATA and LAUNCH_MEASURE of this launch */
bool
pspLaunchStart(Standin *st, GError **err)
{
    PspLaunch *l = &st->psp;
    const CmdLine *cl = &st->cl;
    guint8 ld[32];
    guint8 msg[1 + 3 + 4 + 32 + 16];

    memset(l, 0, sizeof(*l));
    l->policy = cl->sevPolicy;

    if (cl->sevDhCertFile || cl->sevSessionFile) {
        g_autofree guint8 *cert = NULL;
        g_autofree guint8 *session = NULL;
        gsize certLen = 0, sessionLen = 0;
        guint8 z[P384_BYTES], master[16], kek[16], kik[16], mac[32], tk[32];
        guint8 pol[4];
        bool ok = false;

        if (!cl->sevDhCertFile || !cl->sevSessionFile) {
            launchError(err, "LAUNCH_START", FW_INVALID_PARAM,
                        "dh-cert-file and session-file go together");
            return false;
        }
        if (!pdhLoad(&st->conf, err))
            return false;
        if (!(cert = readBase64File(cl->sevDhCertFile, &certLen, err)) ||
            !(session = readBase64File(cl->sevSessionFile, &sessionLen, err)))
            return false;
        if (certLen != CERT_SIZE) {
            launchError(err, "LAUNCH_START", FW_INVALID_CERTIFICATE,
                        "the dhCert has %zu bytes, not %d", certLen, CERT_SIZE);
            return false;
        }
        if (sessionLen != SESSION_SIZE) {
            launchError(err, "LAUNCH_START", FW_INVALID_LEN,
                        "the session has %zu bytes, not %d", sessionLen, SESSION_SIZE);
            return false;
        }
        if (!ecdhZ(cert, z, err))
            return false;

        /* session: nonce[16] wrap_tk[32] wrap_iv[16] wrap_mac[32] policy_mac[32] */
        sevKdf(z, P384_BYTES, "sev-master-secret", session, 16, master);
        sevKdf(master, 16, "sev-kek", NULL, 0, kek);
        sevKdf(master, 16, "sev-kik", NULL, 0, kik);
        hmacSha256(kik, 16, session + 16, 32, mac);
        if (!memeql_sec(mac, session + 64, 32)) {
            launchError(err, "LAUNCH_START", FW_BAD_MEASUREMENT,
                        "the session's wrap_mac does not verify: it was not made "
                        "for this platform's PDH, or it is corrupt");
            goto cleanup;
        }
        aes128Ctr(kek, session + 48, session + 16, 32, tk);
        putLe32(pol, l->policy);
        hmacSha256(tk + 16, 16, pol, 4, mac);
        if (!memeql_sec(mac, session + 96, 32)) {
            launchError(err, "LAUNCH_START", FW_POLICY_FAILURE,
                        "the session's policy_mac does not verify for policy 0x%x",
                        l->policy);
            goto cleanup;
        }
        memcpy(l->tek, tk, 16);
        memcpy(l->tik, tk + 16, 16);
        l->owned = true;
        ok = true;

     cleanup:
        memset(z, 0, sizeof(z));
        memset(master, 0, sizeof(master));
        memset(kek, 0, sizeof(kek));
        memset(kik, 0, sizeof(kik));
        memset(tk, 0, sizeof(tk));
        if (!ok)
            return false;
    } else {
        randomBytes(l->tek, 16);
        randomBytes(l->tik, 16);
    }

    if (!launchDigest(cl, ld, err))
        return false;
    randomBytes(l->mnonce, 16);
    msg[0] = 0x04;
    msg[1] = st->conf.sevApiMajor;
    msg[2] = st->conf.sevApiMinor;
    msg[3] = st->conf.sevBuildId;
    putLe32(msg + 4, l->policy);
    memcpy(msg + 8, ld, 32);
    memcpy(msg + 40, l->mnonce, 16);
    hmacSha256(l->tik, 16, msg, sizeof(msg), l->measurement);
    l->started = true;
    standinLog("SEV: LAUNCH_START with %s, launch measured",
               l->owned ? "the guest owner's session" : "no session (random TEK and TIK)");
    return true;
}


/* query-sev-launch-measure's data: measurement || mnonce, base64 */
char *
pspLaunchMeasure(Standin *st)
{
    guint8 data[48];

    memcpy(data, st->psp.measurement, 32);
    memcpy(data + 32, st->psp.mnonce, 16);
    return g_base64_encode(data, sizeof(data));
}


/* ------------------------------------------------------------------ */
/* LAUNCH_SECRET                                                      */

static bool
keyIdValid(const guint8 *id, size_t len)
{
    size_t i;

    if (len < 1 || len > PSP_KEY_ID_MAX)
        return false;
    for (i = 0; i < len; i++) {
        if (!g_ascii_isalnum(id[i]) && !strchr("._:-", id[i]))
            return false;
        if (id[i] == 0)
            return false;
    }
    return true;
}


/* OVMF's secret table: the transport key and key id entries; false (and
 * why, in @why) if it holds no valid pair */
static bool
secretTableParse(const guint8 *t, size_t len, PspSecret *out, const char **why)
{
    size_t total, off;
    bool haveKey = false;

    if (len < 20 || memcmp(t, secretTableGuid, 16) != 0) {
        *why = "the secret is not an OVMF secret table";
        return false;
    }
    total = getLe32(t + 16);
    if (total < 20 || total > len) {
        *why = "the secret table's length is invalid";
        return false;
    }
    for (off = 20; off < total;) {
        size_t elen;

        if (total - off < 20) {
            *why = "a secret table entry is truncated";
            return false;
        }
        elen = getLe32(t + off + 16);
        if (elen < 20 || elen > total - off) {
            *why = "a secret table entry's length is invalid";
            return false;
        }
        if (memcmp(t + off, transportKeyGuid, 16) == 0) {
            if (elen != 20 + PSP_TRANSPORT_KEY_LEN) {
                *why = "the transport key entry does not hold 32 bytes";
                return false;
            }
            memcpy(out->key, t + off + 20, PSP_TRANSPORT_KEY_LEN);
            haveKey = true;
        } else if (memcmp(t + off, keyIdGuid, 16) == 0) {
            if (!keyIdValid(t + off + 20, elen - 20)) {
                *why = "the key id entry is not 1 to 64 characters of [A-Za-z0-9._:-]";
                return false;
            }
            g_free(out->keyId);
            out->keyId = g_strndup((const char *) t + off + 20, elen - 20);
        }
        off += elen;
    }
    if (!haveKey) {
        *why = "the secret table has no transport key entry";
        return false;
    }
    if (!out->keyId) {
        *why = "the secret table has no key id entry";
        return false;
    }
    return true;
}


void
pspSecretClear(PspSecret *s)
{
    memset(s->key, 0, sizeof(s->key));
    g_clear_pointer(&s->keyId, g_free);
    s->valid = false;
}


/* LAUNCH_SECRET: @hdr (52 bytes) and @data. False with the firmware's
 * error if the packet does not verify; true if it was accepted, and then
 * @out->valid says whether the table held a transport key and key id */
bool
pspLaunchSecret(Standin *st, const guint8 *hdr, size_t hdrLen,
                const guint8 *data, size_t len, PspSecret *out, GError **err)
{
    PspLaunch *l = &st->psp;
    g_autofree guint8 *msg = NULL;
    g_autofree guint8 *plain = NULL;
    guint8 mac[32];
    size_t n = 0;
    const char *why = NULL;

    if (hdrLen != HEADER_SIZE) {
        launchError(err, "SEV: LAUNCH_SECRET", FW_INVALID_LEN,
                    "the packet header has %zu bytes, not %d", hdrLen, HEADER_SIZE);
        return false;
    }
    if (len == 0 || len > SECRET_MAX || len % 16) {
        launchError(err, "SEV: LAUNCH_SECRET", FW_INVALID_LEN,
                    "the secret has %zu bytes: 16 to %d, a multiple of 16",
                    len, SECRET_MAX);
        return false;
    }
    if (getLe32(hdr) != 0) {
        launchError(err, "SEV: LAUNCH_SECRET", FW_INVALID_PARAM,
                    "flags 0x%x are not supported", getLe32(hdr));
        return false;
    }

    /* 0x01 || flags || iv || guest_len || trans_len || data || measurement */
    msg = g_new(guint8, 1 + 4 + 16 + 4 + 4 + len + 32);
    msg[n++] = 0x01;
    memcpy(msg + n, hdr, 4 + 16);
    n += 20;
    putLe32(msg + n, len);
    n += 4;
    putLe32(msg + n, len);
    n += 4;
    memcpy(msg + n, data, len);
    n += len;
    memcpy(msg + n, l->measurement, 32);
    n += 32;
    hmacSha256(l->tik, 16, msg, n, mac);
    if (!memeql_sec(mac, hdr + 20, 32)) {
        launchError(err, "SEV: LAUNCH_SECRET", FW_BAD_MEASUREMENT,
                    "the packet's MAC does not verify under this launch's TIK "
                    "and measurement");
        return false;
    }

    plain = g_new(guint8, len);
    aes128Ctr(l->tek, hdr + 4, data, len, plain);
    pspSecretClear(out);
    out->valid = secretTableParse(plain, len, out, &why);
    if (!out->valid) {
        pspSecretClear(out);
        standinLog("SEV: LAUNCH_SECRET accepted, but the guest finds no transport key: %s",
                   why);
    }
    memset(plain, 0, len);
    return true;
}
