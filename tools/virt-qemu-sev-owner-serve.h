/*
 * virt-qemu-sev-owner-serve.h: the guest owner's service: the agent's
 * protocol over mutual TLS, with an audit record of every request
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

int
cmdServe(int argc, char **argv);
