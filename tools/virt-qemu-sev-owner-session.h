/*
 * virt-qemu-sev-owner-session.h: the LAUNCH_START session: made by the
 * guest owner, unwrapped as the firmware does
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include "virt-qemu-sev-owner-crypto.h"

typedef enum {
    SEV_OWNER_UNWRAP_OK = 0,
    SEV_OWNER_UNWRAP_BAD_WRAP_MAC,
    SEV_OWNER_UNWRAP_BAD_POLICY_MAC,
} sevOwnerUnwrapResult;


int
sevOwnerMakeSession(const sevOwnerECKey *odh,
                    const sevOwnerPubKey *pdh,
                    uint32_t policy,
                    const sevOwnerTK *tk,
                    const uint8_t nonce[SEV_NONCE_SIZE],
                    const uint8_t iv[SEV_IV_SIZE],
                    uint8_t session[SEV_SESSION_SIZE]);

int
sevOwnerUnwrapSession(const sevOwnerECKey *key,
                      const sevOwnerPubKey *peer,
                      const uint8_t session[SEV_SESSION_SIZE],
                      uint32_t policy,
                      sevOwnerTK *tk);
