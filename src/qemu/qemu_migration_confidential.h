/*
 * qemu_migration_confidential.h: confidential migration of SEV guests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "domain_conf.h"
#include "qemu_capabilities.h"
#include "virbuffer.h"
#include "virdomainjob.h"
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
qemuMigrationConfidentialCheckFlags(unsigned int flags);

int
qemuMigrationConfidentialSrcCheck(virDomainObj *vm,
                                  unsigned int flags);

int
qemuMigrationConfidentialSrcCheckHelper(virDomainObj *vm,
                                        virDomainAsyncJob asyncJob,
                                        unsigned int flags);

int
qemuMigrationConfidentialSrcCheckCookie(virDomainObj *vm,
                                        const qemuMigrationCookieConfidential *conf,
                                        unsigned int flags);

int
qemuMigrationConfidentialDstCheck(const virDomainDef *def,
                                  const qemuMigrationCookieConfidential *conf,
                                  virQEMUCaps *qemuCaps,
                                  unsigned int flags);

int
qemuMigrationConfidentialDstRun(virDomainObj *vm,
                                const char *uri,
                                virDomainAsyncJob asyncJob);
