/*
 * virt-qemu-sev-owner-measure.h: the launch measurement (LAUNCH_MEASURE)
 * and OVMF's table of kernel hashes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include "virt-qemu-sev-owner-crypto.h"

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


void
sevOwnerTableEntry(GByteArray *table,
                   const char *guid,
                   const uint8_t *data,
                   size_t len,
                   size_t lenlen);

void
sevOwnerTableFinish(GByteArray *table,
                    const char *guid,
                    const uint8_t *entries,
                    size_t len,
                    size_t lenlen);

int
sevOwnerMeasure(const sevOwnerLaunch *launch,
                const uint8_t tik[SEV_KEY_SIZE],
                const uint8_t mnonce[SEV_NONCE_SIZE],
                uint8_t out[SEV_MEASURE_SIZE]);
