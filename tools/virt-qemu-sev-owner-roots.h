/*
 * virt-qemu-sev-owner-roots.h: AMD's published SEV root keys (ARK and
 * ASK) for each generation of EPYC, carried as data
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include "virt-qemu-sev-owner-util.h"

typedef struct {
    const char *name;       /* the generation: "naples", "rome", ... */
    const char *ark;        /* base64 */
    const char *ask;
    const char *arkSHA256;  /* hex */
    const char *askSHA256;
} sevOwnerBuiltinRoot;

const sevOwnerBuiltinRoot *
sevOwnerBuiltinRoots(size_t *n);

int
sevOwnerBuiltinRootLoad(const sevOwnerBuiltinRoot *root,
                        sevOwnerBuf *ark,
                        sevOwnerBuf *ask);
