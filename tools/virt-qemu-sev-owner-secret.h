/*
 * virt-qemu-sev-owner-secret.h: the LAUNCH_SECRET packet and OVMF's secret
 * table
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include "virt-qemu-sev-owner-crypto.h"
#include "virt-qemu-sev-owner-measure.h"

void
sevOwnerSecretTable(const uint8_t key[TRANSPORT_KEY_SIZE],
                    const char *keyId,
                    sevOwnerBuf *out);

void
sevOwnerSecretPacket(const sevOwnerTK *tk,
                     const uint8_t measurement[SEV_MEASURE_SIZE],
                     const uint8_t iv[SEV_IV_SIZE],
                     const sevOwnerBuf *table,
                     uint8_t header[SEV_SECRET_HEADER_SIZE],
                     uint8_t **data);
