/*
 * virt-qemu-sev-owner-cmd.h: the command line and the commands keygen,
 * session, unwrap, measure, verify and secret
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include "virt-qemu-sev-owner-crypto.h"
#include "virt-qemu-sev-owner-session.h"
#include "virt-qemu-sev-owner-measure.h"
#include "virt-qemu-sev-owner-secret.h"

typedef struct {
    const char *name;
    bool required;
    const char *value;
} sevOwnerOpt;


const char *
sevOwnerOptGet(sevOwnerOpt *opts,
               const char *name);

int
sevOwnerParseOpts(const char *cmd,
                  int argc,
                  char **argv,
                  sevOwnerOpt *opts);

int
cmdKeygen(int argc, char **argv);

int
cmdSession(int argc, char **argv);

int
cmdUnwrap(int argc, char **argv);

int
cmdMeasure(int argc, char **argv);

int
cmdVerify(int argc, char **argv);

int
cmdSecret(int argc, char **argv);
