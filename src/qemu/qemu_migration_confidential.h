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
#include "qemu_migration_params.h"
#include "virenum.h"
#include "virbitmap.h"
#include "virbuffer.h"
#include "virdomainjob.h"
#include "virxml.h"

/* <confidential/> in the migration cookie: what a target must check before
 * it starts anything for a confidential migration, beyond what the
 * cookie's migration capability negotiation carries (guest-assisted) */
typedef struct _qemuMigrationCookieConfidential qemuMigrationCookieConfidential;
struct _qemuMigrationCookieConfidential {
    unsigned int mirrorVcpus; /* mirror vCPUs of the migrating guest */
    char *keyId;              /* the transport key both helpers must hold */
    unsigned int contract;    /* the contract version of the sender's QEMU */
    /* contract 3, the target's Prepare cookie: its helper's nonce and its
     * proof of the transport key over it (hex), for the source's helper */
    char *nonce;
    char *keyConfirmation;
};

void
qemuMigrationCookieConfidentialFree(qemuMigrationCookieConfidential *conf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(qemuMigrationCookieConfidential,
                              qemuMigrationCookieConfidentialFree);

/* the steps of a confidential migration target's Prepare phase, as job
 * statistics report them (VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE) */
typedef enum {
    QEMU_MIGRATION_CONFIDENTIAL_PHASE_NONE = 0,
    QEMU_MIGRATION_CONFIDENTIAL_PHASE_ATTESTATION,
    QEMU_MIGRATION_CONFIDENTIAL_PHASE_PROVISIONING,
    QEMU_MIGRATION_CONFIDENTIAL_PHASE_WAITING_FOR_HELPER,
    QEMU_MIGRATION_CONFIDENTIAL_PHASE_TRANSPORT_KEY,
    QEMU_MIGRATION_CONFIDENTIAL_PHASE_LISTENING,

    QEMU_MIGRATION_CONFIDENTIAL_PHASE_LAST
} qemuMigrationConfidentialPhase;
VIR_ENUM_DECL(qemuMigrationConfidentialPhase);

/* operations that would make QEMU write a guest's memory out, other than
 * a migration to another host */
typedef enum {
    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_SAVE,     /* save, managed save */
    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_SNAPSHOT, /* snapshot with memory */
    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_DUMP,     /* core dump, any kind */
    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_PEEK,     /* virDomainMemoryPeek */
    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_OTHER,

    QEMU_MIGRATION_CONFIDENTIAL_EXPORT_LAST
} qemuMigrationConfidentialExport;

qemuMigrationCookieConfidential *
qemuMigrationCookieConfidentialNew(virDomainObj *vm);

void
qemuMigrationCookieConfidentialFormat(virBuffer *buf,
                                      const qemuMigrationCookieConfidential *conf);

qemuMigrationCookieConfidential *
qemuMigrationCookieConfidentialParse(xmlXPathContextPtr ctxt);

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
qemuMigrationConfidentialCheckFlags(virQEMUDriverConfig *cfg,
                                    unsigned int flags);

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
