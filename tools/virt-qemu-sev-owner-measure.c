/*
 * virt-qemu-sev-owner-measure.c: the launch measurement (LAUNCH_MEASURE)
 * and OVMF's table of kernel hashes
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

#include "virt-qemu-sev-owner-measure.h"

#define VIR_FROM_THIS VIR_FROM_NONE

/* OVMF's table of kernel hashes (QEMU's kernel-hashes=on) */
static const char *kernelTableGUID = "9438d606-4f22-4cc9-b479-a793d411fd21";
static const char *kernelGUID = "4de79437-abd2-427f-b835-d5b172d2045b";
static const char *initrdGUID = "44baf731-3a2f-4bd7-9af1-41e29169781d";
static const char *cmdlineGUID = "97d02dd8-bd20-4c94-aa78-e7714d36ab2a";


/* ------------------------------------------------------------------ */
/* Launch measurement                                                   */
/* ------------------------------------------------------------------ */



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


void
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
void
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
int
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
