/*
 * The stream key of contract version 3 (docs/kbase/confidential-migration.rst,
 * "The stream key and key confirmation"): a fresh key for every migration,
 * derived from the transport key and a nonce of each helper, and the two
 * key confirmations.
 *
 *   target nonce   32 random bytes of the target's helper, made when it
 *                  takes its transport key in target mode, reported by
 *                  query-migration-helper ("nonce", hex), used by one
 *                  incoming stream only
 *   target proof   HMAC-SHA256(transport key, "lvmirror v3 target
 *                  confirmation" || 0x00 || target nonce || key id),
 *                  query-migration-helper's "key-confirmation" (hex); the
 *                  source's helper checks it before it sends anything
 *   source nonce   32 random bytes of the source's helper, in the header
 *   stream key     HMAC-SHA256(transport key, "lvmirror v3 stream key" ||
 *                  0x00 || source nonce || target nonce || channel_be32)
 *   source proof   HMAC-SHA256(stream key, "lvmirror v3 source
 *                  confirmation" || 0x00 || the header up to the proof);
 *                  the target's helper checks it before it accepts a record
 *
 * Nothing here logs or returns key material but through its out buffers.
 */

#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "standin.h"

#define KEY_LABEL "lvmirror v3 stream key"
#define TARGET_LABEL "lvmirror v3 target confirmation"
#define SOURCE_LABEL "lvmirror v3 source confirmation"


/* HMAC-SHA256(@key, @label || 0x00 || @a || @b || @c) */
static bool
streamKeyPrf(const guint8 *key, size_t keyLen, const char *label,
             const guint8 *a, size_t aLen, const guint8 *b, size_t bLen,
             const guint8 *c, size_t cLen, guint8 out[STREAM_KEY_LEN])
{
    gnutls_hmac_hd_t h;
    guint8 zero = 0;
    bool ok;

    if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, key, keyLen) < 0)
        return false;
    ok = gnutls_hmac(h, label, strlen(label)) == 0 &&
        gnutls_hmac(h, &zero, 1) == 0 &&
        (aLen == 0 || gnutls_hmac(h, a, aLen) == 0) &&
        (bLen == 0 || gnutls_hmac(h, b, bLen) == 0) &&
        (cLen == 0 || gnutls_hmac(h, c, cLen) == 0);
    gnutls_hmac_deinit(h, out);
    if (!ok)
        gnutls_memset(out, 0, STREAM_KEY_LEN);
    return ok;
}


bool
streamKeyDerive(const guint8 *transportKey,
                const guint8 sourceNonce[STREAM_NONCE_LEN],
                const guint8 targetNonce[STREAM_NONCE_LEN],
                guint32 channel, guint8 out[STREAM_KEY_LEN])
{
    guint8 ch[4] = { channel >> 24, channel >> 16, channel >> 8, channel };

    return streamKeyPrf(transportKey, PSP_TRANSPORT_KEY_LEN, KEY_LABEL,
                        sourceNonce, STREAM_NONCE_LEN,
                        targetNonce, STREAM_NONCE_LEN, ch, sizeof(ch), out);
}


bool
streamKeyTargetProof(const guint8 *transportKey, const char *keyId,
                     const guint8 targetNonce[STREAM_NONCE_LEN],
                     guint8 out[STREAM_KEY_LEN])
{
    return streamKeyPrf(transportKey, PSP_TRANSPORT_KEY_LEN, TARGET_LABEL,
                        targetNonce, STREAM_NONCE_LEN,
                        (const guint8 *) keyId, strlen(keyId), NULL, 0, out);
}


bool
streamKeySourceProof(const guint8 streamKey[STREAM_KEY_LEN],
                     const guint8 *header, size_t headerLen,
                     guint8 out[STREAM_KEY_LEN])
{
    return streamKeyPrf(streamKey, STREAM_KEY_LEN, SOURCE_LABEL,
                        header, headerLen, NULL, 0, NULL, 0, out);
}


/* constant time */
bool
streamKeyEqual(const guint8 *a, const guint8 *b, size_t len)
{
    guint8 diff = 0;
    size_t i;

    for (i = 0; i < len; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}


char *
streamKeyHex(const guint8 *buf, size_t len)
{
    char *out = g_malloc(len * 2 + 1);
    size_t i;

    for (i = 0; i < len; i++)
        g_snprintf(out + 2 * i, 3, "%02x", buf[i]);
    return out;
}


/* exactly @len bytes of lowercase or uppercase hex */
bool
streamKeyUnhex(const char *hex, guint8 *out, size_t len)
{
    size_t i;

    if (!hex || strlen(hex) != len * 2)
        return false;
    for (i = 0; i < len; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return false;
        out[i] = hi << 4 | lo;
    }
    return true;
}
