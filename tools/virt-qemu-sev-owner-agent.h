/*
 * virt-qemu-sev-owner-agent.h: the attestation agent's protocol: the
 * session and attest operations
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include "virt-qemu-sev-owner-cmd.h"
#include "virt-qemu-sev-owner-conf.h"

int
cmdAgent(int argc, char **argv);
