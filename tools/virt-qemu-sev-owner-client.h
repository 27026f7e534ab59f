/*
 * virt-qemu-sev-owner-client.h: the attestation agent that libvirt runs:
 * a thin client of the guest owner's service
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

int
cmdAgent(int argc, char **argv);
