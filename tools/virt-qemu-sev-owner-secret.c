/*
 * virt-qemu-sev-owner-secret.c: the LAUNCH_SECRET packet and OVMF's secret
 * table
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

#include "virt-qemu-sev-owner-secret.h"

#define VIR_FROM_THIS VIR_FROM_NONE

/* OVMF's launch secret table and this project's entries */
static const char *secretTableGUID = "1e74f542-71dd-4d66-963e-ef4287ff173b";
static const char *transportKeyGUID = "68777468-ccbb-4873-a893-0b2880592c67";
static const char *keyIdGUID = "20995426-ca45-47c7-8b08-dc1c7127134d";


/* ------------------------------------------------------------------ */
/* LAUNCH_SECRET                                                        */
/* ------------------------------------------------------------------ */

/* OVMF's secret table with the transport key and its identifier. */
void
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
void
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
