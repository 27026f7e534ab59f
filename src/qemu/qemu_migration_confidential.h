/*
 * qemu_migration_confidential.h: confidential migration of SEV guests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "domain_conf.h"
#include "virbuffer.h"
#include "virxml.h"

/* version of the QEMU interface in docs/kbase/confidential-migration.rst */
#define QEMU_MIGRATION_CONFIDENTIAL_CONTRACT 1

/* <confidential/> in the migration cookie: what a target must check before
 * it starts anything for a confidential migration */
typedef struct _qemuMigrationCookieConfidential qemuMigrationCookieConfidential;
struct _qemuMigrationCookieConfidential {
    unsigned int contract;    /* contract version the source relies on */
    unsigned int mirrorVcpus; /* mirror vCPUs of the migrating guest */
};

qemuMigrationCookieConfidential *
qemuMigrationCookieConfidentialNew(const virDomainDef *def);

void
qemuMigrationCookieConfidentialFormat(virBuffer *buf,
                                      const qemuMigrationCookieConfidential *conf);

qemuMigrationCookieConfidential *
qemuMigrationCookieConfidentialParse(xmlXPathContextPtr ctxt);

int
qemuMigrationConfidentialSrcCheck(virDomainObj *vm,
                                  unsigned int flags);

int
qemuMigrationConfidentialDstCheck(const virDomainDef *def,
                                  unsigned int flags);
