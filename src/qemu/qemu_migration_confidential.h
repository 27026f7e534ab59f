/*
 * qemu_migration_confidential.h: confidential migration of SEV guests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "domain_conf.h"

int
qemuMigrationConfidentialSrcCheck(virDomainObj *vm,
                                  unsigned int flags);

int
qemuMigrationConfidentialDstCheck(const virDomainDef *def,
                                  unsigned int flags);
