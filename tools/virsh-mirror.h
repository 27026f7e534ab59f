/*
 * virsh-mirror.h: commands for mirror VMs (mirror vCPUs, migration helper)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "virsh.h"

extern const vshCmdDef mirrorCmds[];
