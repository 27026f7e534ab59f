/*
 * qemu_migration_confidential.h: confidential migration of SEV guests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "domain_conf.h"
#include "qemu_capabilities.h"
#include "qemu_conf.h"
#include "qemu_domainjob.h"
#include "qemu_migration_cookie.h"
#include "qemu_monitor.h"
#include "qemu_migration_params.h"
#include "virenum.h"
#include "virbitmap.h"
#include "virbuffer.h"
#include "virdomainjob.h"
#include "virxml.h"

/* operations that save a guest's state through QEMU's migration code,
 * other than a migration to another host */
typedef enum {
    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_SAVE,     /* save, managed save */
    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_SNAPSHOT, /* snapshot with memory */
    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_DUMP,     /* full (not memory-only) core dump */
    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_OTHER,

    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_LAST
} qemuMigrationConfidentialExport;

int
qemuMigrationConfidentialCheckHelper(virDomainObj *vm,
                                     const qemuMonitorMigrationHelperInfo *info,
                                     const char *keyId);

const char *
qemuMigrationConfidentialJobKeyId(virDomainObj *vm);

void
qemuMigrationConfidentialJobMark(virDomainJobData *jobData,
                                 unsigned int flags);

void
qemuMigrationConfidentialJobAttestation(virDomainJobData *completed,
                                        virDomainJobData *current);

int
qemuMigrationConfidentialJobParams(qemuDomainJobDataPrivate *priv,
                                   virTypedParameterPtr *par,
                                   int *npar,
                                   int *maxpar);

int
qemuMigrationConfidentialCheckFlags(unsigned int flags);

int
qemuMigrationConfidentialCheckScheme(const char *scheme,
                                     unsigned int flags);

int
qemuMigrationConfidentialCheckExport(virDomainObj *vm,
                                     qemuMigrationConfidentialExport what);

int
qemuMigrationConfidentialSrcCheckLocal(virDomainObj *vm,
                                       virDomainAsyncJob asyncJob);

int
qemuMigrationConfidentialCheckParallel(const virDomainDef *def,
                                       virQEMUCaps *qemuCaps,
                                       qemuMigrationParams *migParams,
                                       unsigned int flags);

int
qemuMigrationConfidentialSrcCheck(virDomainObj *vm,
                                  unsigned int flags);

int
qemuMigrationConfidentialSrcCheckHelper(virDomainObj *vm,
                                        virDomainAsyncJob asyncJob,
                                        unsigned int flags);

int
qemuMigrationConfidentialSrcSetPeer(virDomainObj *vm,
                                    const qemuMigrationCookieConfidential *conf,
                                    virDomainAsyncJob asyncJob,
                                    unsigned int flags);

int
qemuMigrationConfidentialSrcCheckCookie(virDomainObj *vm,
                                        const qemuMigrationCookieConfidential *conf,
                                        virBitmap *remoteCaps,
                                        unsigned int flags);

int
qemuMigrationConfidentialDstCheck(virQEMUDriverConfig *cfg,
                                  const virDomainDef *def,
                                  const qemuMigrationCookieConfidential *conf,
                                  virBitmap *remoteCaps,
                                  virQEMUCaps *qemuCaps,
                                  unsigned int flags);

int
qemuMigrationConfidentialDstSession(virQEMUDriver *driver,
                                    virDomainDef *def,
                                    virQEMUCaps *qemuCaps,
                                    unsigned int flags);

void
qemuMigrationConfidentialDstStart(virDomainObj *vm,
                                  const qemuMigrationCookieConfidential *conf);

void
qemuMigrationConfidentialSrcStripSession(virDomainObj *vm,
                                         virDomainDef *def);

void
qemuMigrationConfidentialDstPersistSession(virDomainObj *vm,
                                           virDomainDef *persistent);

int
qemuMigrationConfidentialDstRun(virDomainObj *vm,
                                const char *uri,
                                virTristateBool exitOnError,
                                virDomainAsyncJob asyncJob);
