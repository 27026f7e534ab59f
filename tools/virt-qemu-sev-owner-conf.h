/*
 * virt-qemu-sev-owner-conf.h: the guest owner's directory and its
 * owner.conf
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include "virt-qemu-sev-owner-cert.h"

#include "virt-qemu-sev-owner-crypto.h"

typedef struct {
    char *dir;
    char *odhKey;
    char *transportKey;
    char *keyId;
    char *firmware;
    char *kernel;
    char *initrd;
    char *cmdline;
    unsigned int policy;
    /* the platform's certificate chain */
    char *roots;
    char *ark;
    char *ask;
    char *allowChips;
    char *minAPI;
    char *minBuild;
    char *cekDir;
    sevOwnerChainPolicy chain;
} sevOwnerConf;

void
sevOwnerConfClear(sevOwnerConf *conf);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sevOwnerConf, sevOwnerConfClear);


int
sevOwnerChainPolicyBuild(const char *roots,
                         const char *ark,
                         const char *ask,
                         const char *allowChips,
                         const char *minAPI,
                         const char *minBuild,
                         sevOwnerChainPolicy *policy);

int
sevOwnerConfLoad(const char *dir,
                 bool agent,
                 sevOwnerConf *conf);
