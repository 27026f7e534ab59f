/*
 * qemu_migration_confidential.c: confidential migration of SEV guests
 *
 * The QEMU interface and the flow are described in
 * docs/kbase/confidential-migration.rst. This file holds the checks libvirt
 * makes on both hosts before any such migration, the rule that a running
 * SEV guest is never migrated without it (QEMU's own migration blocker for
 * SEV is not the only guard), and the target's Prepare steps: attestation
 * of the target by the guest owner, provisioning of the transport key, the
 * migration helper.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>

#include "qemu_migration_confidential.h"
#include "qemu_domain.h"
#include "qemu_migration_params.h"
#include "qemu_mirror.h"
#include "qemu_mirror_attest.h"
#include "virerror.h"
#include "virlog.h"
#include "virtime.h"
#include "virutil.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_migration_confidential");

/**
 * qemuMigrationConfidentialJobMark:
 * @jobData: the statistics of a migration job (current, or completed)
 * @flags: virDomainMigrateFlags
 *
 * The job statistics of a confidential migration say so, on both hosts.
 */
void
qemuMigrationConfidentialJobMark(virDomainJobData *jobData,
                                 unsigned int flags)
{
    qemuDomainJobDataPrivate *priv = jobData->privateData;

    priv->confidential = !!(flags & VIR_MIGRATE_CONFIDENTIAL);
}


/**
 * qemuMigrationConfidentialJobAttestation:
 * @completed: the statistics of the completed migration on the target
 *             (which come from the source)
 * @current: this host's statistics of the job
 *
 * The target's attestation times go with the completed migration's
 * statistics.
 */
void
qemuMigrationConfidentialJobAttestation(virDomainJobData *completed,
                                        virDomainJobData *current)
{
    qemuDomainJobDataPrivate *dst;
    qemuDomainJobDataPrivate *src;

    if (!completed || !current)
        return;

    dst = completed->privateData;
    src = current->privateData;
    dst->confidentialAttested = src->confidentialAttested;
    dst->confidentialAttestationTime = src->confidentialAttestationTime;
    dst->confidentialAgentTime = src->confidentialAgentTime;
}


/* target, Prepare phase: the step it is in, for the job statistics */
static void
qemuMigrationConfidentialSetPhase(virDomainObj *vm,
                                  virDomainJobConfidentialPhase phase)
{
    qemuDomainJobDataPrivate *priv;

    if (!vm->job->current)
        return;

    priv = vm->job->current->privateData;
    priv->confidentialPhaseSet = true;
    priv->confidentialPhase = phase;
    if (virTimeMillisNow(&priv->confidentialPhaseStart) < 0)
        priv->confidentialPhaseStart = 0;
}


/**
 * qemuMigrationConfidentialJobParams:
 *
 * VIR_DOMAIN_JOB_CONFIDENTIAL and, on a target, the step of its Prepare
 * phase with how long it has lasted.
 */
int
qemuMigrationConfidentialJobParams(qemuDomainJobDataPrivate *priv,
                                   virTypedParameterPtr *par,
                                   int *npar,
                                   int *maxpar)
{
    unsigned long long now;

    if (!priv->confidential)
        return 0;

    if (virTypedParamsAddBoolean(par, npar, maxpar,
                                 VIR_DOMAIN_JOB_CONFIDENTIAL, true) < 0)
        return -1;

    if (priv->confidentialAttested &&
        (virTypedParamsAddULLong(par, npar, maxpar,
                                 VIR_DOMAIN_JOB_CONFIDENTIAL_ATTESTATION_TIME,
                                 priv->confidentialAttestationTime) < 0 ||
         virTypedParamsAddULLong(par, npar, maxpar,
                                 VIR_DOMAIN_JOB_CONFIDENTIAL_AGENT_TIME,
                                 priv->confidentialAgentTime) < 0))
        return -1;

    if (!priv->confidentialPhaseSet)
        return 0;

    if (virTimeMillisNow(&now) < 0)
        return -1;

    if (virTypedParamsAddInt(par, npar, maxpar,
                             VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE,
                             priv->confidentialPhase) < 0 ||
        virTypedParamsAddULLong(par, npar, maxpar,
                                VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_ELAPSED,
                                now > priv->confidentialPhaseStart ?
                                now - priv->confidentialPhaseStart : 0) < 0)
        return -1;

    return 0;
}

/* What VIR_MIGRATE_CONFIDENTIAL cannot be combined with, and why. */
static const struct {
    unsigned int flag;
    const char *error;
} qemuMigrationConfidentialConflicts[] = {
    { VIR_MIGRATE_OFFLINE,
      N_("VIR_MIGRATE_CONFIDENTIAL cannot be combined with VIR_MIGRATE_OFFLINE (--offline): an offline migration moves no guest memory") },
    { VIR_MIGRATE_POSTCOPY,
      N_("VIR_MIGRATE_CONFIDENTIAL cannot be combined with VIR_MIGRATE_POSTCOPY (--postcopy): the migration helper does not serve post-copy page requests") },
    { VIR_MIGRATE_POSTCOPY_RESUME,
      N_("VIR_MIGRATE_CONFIDENTIAL cannot be combined with VIR_MIGRATE_POSTCOPY_RESUME (--postcopy-resume): the migration helper does not serve post-copy page requests") },
    { VIR_MIGRATE_TUNNELLED,
      N_("VIR_MIGRATE_CONFIDENTIAL cannot be combined with VIR_MIGRATE_TUNNELLED (--tunnelled): start-migrate-incoming takes a network URI, not a tunnel") },
    { VIR_MIGRATE_NON_SHARED_DISK,
      N_("VIR_MIGRATE_CONFIDENTIAL cannot be combined with VIR_MIGRATE_NON_SHARED_DISK (--copy-storage-all): confidential migration does not migrate storage") },
    { VIR_MIGRATE_NON_SHARED_INC,
      N_("VIR_MIGRATE_CONFIDENTIAL cannot be combined with VIR_MIGRATE_NON_SHARED_INC (--copy-storage-inc): confidential migration does not migrate storage") },
    { VIR_MIGRATE_COMPRESSED,
      N_("VIR_MIGRATE_CONFIDENTIAL cannot be combined with VIR_MIGRATE_COMPRESSED (--compressed): pages encrypted with the transport key cannot be compressed") },
    { VIR_MIGRATE_ZEROCOPY,
      N_("VIR_MIGRATE_CONFIDENTIAL cannot be combined with VIR_MIGRATE_ZEROCOPY (--zerocopy): zero-copy sends pages straight from guest memory, not the copies the migration helper encrypts") },
    { VIR_MIGRATE_RDMA_PIN_ALL,
      N_("VIR_MIGRATE_CONFIDENTIAL cannot be combined with VIR_MIGRATE_RDMA_PIN_ALL (--rdma-pin-all): RDMA moves guest RAM outside the migration stream, where the migration helper cannot encrypt it") },
};


static virDomainLaunchSecurity
qemuMigrationConfidentialSecType(const virDomainDef *def)
{
    return def->sec ? def->sec->sectype : VIR_DOMAIN_LAUNCH_SECURITY_NONE;
}


/* Whether @def opted in to confidential migration: an SEV guest with
 * mirror vCPUs. Only such a guest is ever refused more than upstream
 * libvirt refuses it. */
static bool
qemuMigrationConfidentialOptedIn(const virDomainDef *def)
{
    return qemuMigrationConfidentialSecType(def) == VIR_DOMAIN_LAUNCH_SECURITY_SEV &&
        def->mirror && def->mirror->vcpus > 0;
}


/**
 * qemuMigrationConfidentialCheckExport:
 * @vm: a running domain
 * @what: the operation that would make QEMU save the guest's state through
 *        its migration code
 *
 * The fail-closed rule for everything but a migration to another host: a
 * running SEV guest with mirror vCPUs never has its state saved through
 * migration; only a confidential migration moves it. Once its migration
 * helper holds a transport key, QEMU lifts its SEV migration blocker (the
 * contract), so that blocker no longer stops these operations. Reading
 * guest memory (memory-only dumps, memory peeks) is not refused: the host
 * reads ciphertext, as for any SEV guest. Every other guest is
 * left to QEMU, whose SEV migration blocker refuses these operations for
 * SEV, SEV-ES and SEV-SNP guests (docs/kbase/confidential-migration.rst,
 * "What libvirt refuses").
 *
 * Returns 0 if @what may go on, -1 with an error reported.
 */
int
qemuMigrationConfidentialCheckExport(virDomainObj *vm,
                                     qemuMigrationConfidentialExport what)
{
    if (!virDomainObjIsActive(vm) ||
        !qemuMigrationConfidentialOptedIn(vm->def))
        return 0;

    switch (what) {
    case QEMU_MIGRATION_CONFIDENTIAL_EXPORT_SAVE:
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot save domain '%1$s': it is an SEV guest with mirror vCPUs, whose state may leave it only in a confidential migration"),
                       vm->def->name);
        break;
    case QEMU_MIGRATION_CONFIDENTIAL_EXPORT_SNAPSHOT:
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot take a snapshot with memory of domain '%1$s': it is an SEV guest with mirror vCPUs, whose state may leave it only in a confidential migration (a disk-only snapshot is allowed)"),
                       vm->def->name);
        break;
    case QEMU_MIGRATION_CONFIDENTIAL_EXPORT_DUMP:
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot dump the memory of domain '%1$s' in full: it is an SEV guest with mirror vCPUs, whose state may leave it only in a confidential migration (a memory-only dump is allowed)"),
                       vm->def->name);
        break;
    case QEMU_MIGRATION_CONFIDENTIAL_EXPORT_OTHER:
    case QEMU_MIGRATION_CONFIDENTIAL_EXPORT_LAST:
    default:
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot write out the state of domain '%1$s': it is an SEV guest with mirror vCPUs, whose state may leave it only in a confidential migration"),
                       vm->def->name);
        break;
    }
    return -1;
}


/**
 * qemuMigrationConfidentialSrcCheckLocal:
 * @vm: a running domain
 * @asyncJob: the job of the operation that calls qemuMigrationSrcIsAllowed()
 *            for a migration that stays on this host (save, managed save,
 *            memory snapshots, full dumps)
 *
 * qemuMigrationConfidentialCheckExport() for the operation @asyncJob runs.
 */
int
qemuMigrationConfidentialSrcCheckLocal(virDomainObj *vm,
                                       virDomainAsyncJob asyncJob)
{
    qemuMigrationConfidentialExport what;

    switch (asyncJob) {
    case VIR_ASYNC_JOB_SAVE:
        what = QEMU_MIGRATION_CONFIDENTIAL_EXPORT_SAVE;
        break;
    case VIR_ASYNC_JOB_SNAPSHOT:
        what = QEMU_MIGRATION_CONFIDENTIAL_EXPORT_SNAPSHOT;
        break;
    case VIR_ASYNC_JOB_DUMP:
        what = QEMU_MIGRATION_CONFIDENTIAL_EXPORT_DUMP;
        break;
    case VIR_ASYNC_JOB_NONE:
    case VIR_ASYNC_JOB_MIGRATION_OUT:
    case VIR_ASYNC_JOB_MIGRATION_IN:
    case VIR_ASYNC_JOB_START:
    case VIR_ASYNC_JOB_BACKUP:
    case VIR_ASYNC_JOB_LAST:
    default:
        what = QEMU_MIGRATION_CONFIDENTIAL_EXPORT_OTHER;
        break;
    }

    return qemuMigrationConfidentialCheckExport(vm, what);
}


/**
 * qemuMigrationConfidentialCheckFlags:
 * @flags: virDomainMigrateFlags
 *
 * With VIR_MIGRATE_CONFIDENTIAL, refuse the flags it cannot be combined
 * with, and require those it needs: VIR_MIGRATE_LIVE and VIR_MIGRATE_TLS.
 * TLS cannot be waived: the migration helper protects only the guest's
 * private pages, its device and register state and its shared pages travel
 * as ordinary migration data. Both the source and the target check.
 *
 * Returns 0 if the flags may go together, -1 with an error reported.
 */
int
qemuMigrationConfidentialCheckFlags(unsigned int flags)
{
    size_t i;

    if (!(flags & VIR_MIGRATE_CONFIDENTIAL))
        return 0;

    for (i = 0; i < G_N_ELEMENTS(qemuMigrationConfidentialConflicts); i++) {
        if (flags & qemuMigrationConfidentialConflicts[i].flag) {
            virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED, "%s",
                           _(qemuMigrationConfidentialConflicts[i].error));
            return -1;
        }
    }

    if (!(flags & VIR_MIGRATE_LIVE)) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED, "%s",
                       _("VIR_MIGRATE_CONFIDENTIAL requires VIR_MIGRATE_LIVE (--live): a confidential migration starts with the guest running"));
        return -1;
    }

    if (!(flags & VIR_MIGRATE_TLS)) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED, "%s",
                       _("VIR_MIGRATE_CONFIDENTIAL requires VIR_MIGRATE_TLS (--tls): the guest's device and register state and its shared pages travel outside the transport key's protection"));
        return -1;
    }

    return 0;
}


/**
 * qemuMigrationConfidentialCheckScheme:
 * @scheme: the scheme of the migration URI
 * @flags: virDomainMigrateFlags
 *
 * Confidential migrations refuse RDMA: it moves guest RAM outside the
 * migration stream, where the migration helper does not see it.
 */
int
qemuMigrationConfidentialCheckScheme(const char *scheme,
                                     unsigned int flags)
{
    if (!(flags & VIR_MIGRATE_CONFIDENTIAL) || STRNEQ_NULLABLE(scheme, "rdma"))
        return 0;

    virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED, "%s",
                   _("VIR_MIGRATE_CONFIDENTIAL cannot be combined with an rdma:// migration URI: RDMA moves guest RAM outside the migration stream, where the migration helper cannot encrypt it"));
    return -1;
}


/* The guest owner's SEV policy: SEV-ES guests cannot be migrated by the
 * helper (their register state is in the encrypted VMSA), and NOSEND
 * forbids sending the guest to another platform by any means. */
static int
qemuMigrationConfidentialCheckPolicy(const virDomainDef *def)
{
    unsigned int policy = def->sec->data.sev.policy;

    if (policy & VIR_DOMAIN_SEV_POLICY_ES) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("domain '%1$s' is an SEV-ES guest, whose encrypted register state confidential migration cannot migrate"),
                       def->name);
        return -1;
    }

    if (policy & VIR_DOMAIN_SEV_POLICY_NOSEND) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the guest owner's policy for domain '%1$s' forbids sending it to another platform (NOSEND, policy bit 0x8)"),
                       def->name);
        return -1;
    }

    return 0;
}


/* A QEMU with the confidential migration interface of contract version 2
 * only: it would derive the stream key from the transport key and the
 * source's salt alone, so that a recorded stream could be replayed into
 * any later target. Refused with its own error. */
static int
qemuMigrationConfidentialCheckContract(virQEMUCaps *qemuCaps,
                                       const char *emulator)
{
    if (!qemuCaps ||
        !virQEMUCapsGet(qemuCaps, QEMU_CAPS_MIGRATE_GUEST_ASSISTED) ||
        virQEMUCapsGet(qemuCaps, QEMU_CAPS_MIGRATION_HELPER_NONCE))
        return 0;

    virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                   _("the QEMU binary '%1$s' supports confidential migration contract version 2 only, but libvirt needs version %2$u"),
                   NULLSTR(emulator), QEMU_MIRROR_CONTRACT);
    return -1;
}


/**
 * qemuMigrationConfidentialSrcCheck:
 * @vm: the domain to migrate
 * @flags: virDomainMigrateFlags
 *
 * Called before anything else on every migration of @vm to another host.
 * Without VIR_MIGRATE_CONFIDENTIAL a running SEV guest with mirror vCPUs is
 * refused (fail closed: its migration helper lifts QEMU's SEV migration
 * blocker); any other guest is left to QEMU, whose blocker refuses SEV,
 * SEV-ES and SEV-SNP guests as upstream. With the flag, everything
 * confidential migration needs must be there.
 *
 * Returns 0 if the migration may go on, -1 with an error reported.
 */
int
qemuMigrationConfidentialSrcCheck(virDomainObj *vm,
                                  unsigned int flags)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    const virDomainDef *def = vm->def;
    virDomainLaunchSecurity sectype = qemuMigrationConfidentialSecType(def);

    if (!(flags & VIR_MIGRATE_CONFIDENTIAL)) {
        if (flags & VIR_MIGRATE_OFFLINE)
            return 0;

        if (qemuMigrationConfidentialOptedIn(def)) {
            virReportError(VIR_ERR_OPERATION_INVALID,
                           _("domain '%1$s' is an SEV guest with mirror vCPUs: its memory may only be migrated confidentially, with VIR_MIGRATE_CONFIDENTIAL (virsh migrate --confidential)"),
                           def->name);
            return -1;
        }

        return 0;
    }

    if (qemuMigrationConfidentialCheckFlags(flags) < 0)
        return -1;

    if (!virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain '%1$s' is not running: confidential migration moves a running guest"),
                       def->name);
        return -1;
    }

    if (sectype != VIR_DOMAIN_LAUNCH_SECURITY_SEV) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain '%1$s' is not an SEV guest (<launchSecurity type='sev'>): confidential migration is for SEV guests only"),
                       def->name);
        return -1;
    }

    if (qemuMigrationConfidentialCheckPolicy(def) < 0)
        return -1;

    if (!def->mirror) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain '%1$s' has no mirror vCPUs: confidential migration needs <mirror/> in its definition (it takes effect when the domain next starts)"),
                       def->name);
        return -1;
    }

    if (qemuMigrationConfidentialCheckContract(priv->qemuCaps, def->emulator) < 0)
        return -1;

    if (!priv->qemuCaps || !qemuMirrorSupported(priv->qemuCaps)) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("the QEMU binary '%1$s' of domain '%2$s' lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)"),
                       NULLSTR(def->emulator), def->name);
        return -1;
    }

    return 0;
}


/* QEMU's default multifd-channels, when VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS
 * is not given */
#define QEMU_MIGRATION_CONFIDENTIAL_DEFAULT_CHANNELS 2

/**
 * qemuMigrationConfidentialCheckParallel:
 * @def: the domain's definition (the source's, or the incoming one)
 * @qemuCaps: capabilities of the QEMU binary that runs the guest here
 * @migParams: the migration parameters (multifd-channels), or NULL
 * @flags: virDomainMigrateFlags
 *
 * A confidential migration with VIR_MIGRATE_PARALLEL: each parallel
 * channel is encrypted by one mirror vCPU of the migration helper, so the
 * QEMU here must serve channels from its mirror vCPUs (contract version 3,
 * "channels" in query-migration-helper) and the number of connections may
 * not exceed <mirror vcpus='N'/>. Both hosts check, before anything
 * starts.
 *
 * Returns 0 if the migration may go on, -1 with an error reported.
 */
int
qemuMigrationConfidentialCheckParallel(const virDomainDef *def,
                                       virQEMUCaps *qemuCaps,
                                       qemuMigrationParams *migParams,
                                       unsigned int flags)
{
    int channels = QEMU_MIGRATION_CONFIDENTIAL_DEFAULT_CHANNELS;
    unsigned int mirrorVcpus = def->mirror ? def->mirror->vcpus : 0;

    if (!(flags & VIR_MIGRATE_CONFIDENTIAL) || !(flags & VIR_MIGRATE_PARALLEL))
        return 0;

    if (!qemuCaps || !virQEMUCapsGet(qemuCaps, QEMU_CAPS_MIGRATION_HELPER_CHANNELS)) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("VIR_MIGRATE_PARALLEL (--parallel) of domain '%1$s' needs parallel channels served by mirror vCPUs, which the QEMU binary '%2$s' does not support"),
                       def->name, NULLSTR(def->emulator));
        return -1;
    }

    if (migParams &&
        qemuMigrationParamsGetInt(migParams, QEMU_MIGRATION_PARAM_MULTIFD_CHANNELS,
                                  &channels) < 0)
        return -1;

    if (channels < 1 || (unsigned int) channels > mirrorVcpus) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED,
                       _("VIR_MIGRATE_PARALLEL (--parallel) of domain '%1$s' with %2$d connections needs as many mirror vCPUs, but the domain has %3$u (<mirror vcpus='N'/>): each parallel channel is encrypted by one mirror vCPU"),
                       def->name, channels, mirrorVcpus);
        return -1;
    }

    return 0;
}


/* Refuse unless the helper on this host is ready and holds a transport
 * key with an identifier: without one, nothing may leave or enter the
 * guest. With @keyId, the key must be that one. */
int
qemuMigrationConfidentialCheckHelper(virDomainObj *vm,
                                     const qemuMonitorMigrationHelperInfo *info,
                                     const char *keyId)
{
    if (info->status != QEMU_MONITOR_MIGRATION_HELPER_READY) {
        const char *status = qemuMonitorMigrationHelperStatusTypeToString(info->status);

        if (info->error)
            virReportError(VIR_ERR_OPERATION_INVALID,
                           _("the migration helper of domain '%1$s' is not ready (status '%2$s': %3$s)"),
                           vm->def->name, status, info->error);
        else
            virReportError(VIR_ERR_OPERATION_INVALID,
                           _("the migration helper of domain '%1$s' is not ready (status '%2$s')"),
                           vm->def->name, status);
        return -1;
    }

    if (!info->transportKey) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the migration helper of domain '%1$s' holds no transport key: guest pages would leave the guest unprotected"),
                       vm->def->name);
        return -1;
    }

    if (!qemuMirrorAttestKeyIdValid(info->keyId)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the migration helper of domain '%1$s' holds a transport key without a valid identifier"),
                       vm->def->name);
        return -1;
    }

    if (keyId && STRNEQ(keyId, info->keyId)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the migration helper of domain '%1$s' holds the transport key '%2$s', but the migration uses the key '%3$s'"),
                       vm->def->name, info->keyId, keyId);
        return -1;
    }

    return 0;
}


/* the identifier of the migration's transport key, kept with the job (and
 * in the status XML with it) */
const char *
qemuMigrationConfidentialJobKeyId(virDomainObj *vm)
{
    qemuDomainJobPrivate *jobPriv = vm->job->privateData;

    return jobPriv ? jobPriv->mirrorKeyId : NULL;
}


static void
qemuMigrationConfidentialSetJobKeyId(virDomainObj *vm,
                                     const char *keyId)
{
    qemuDomainJobPrivate *jobPriv = vm->job->privateData;

    if (!jobPriv)
        return;
    g_free(jobPriv->mirrorKeyId);
    jobPriv->mirrorKeyId = g_strdup(keyId);
}


/**
 * qemuMigrationConfidentialSrcCheckHelper:
 * @vm: the domain to migrate (locked, in @asyncJob)
 * @asyncJob: the migration job
 * @flags: virDomainMigrateFlags
 *
 * Source, before the target is asked to prepare anything, and again right
 * before 'migrate': the migration helper of @vm must be ready and hold a
 * transport key. The first check records the key's identifier with the
 * job (the cookie tells the target which key it must get from the guest
 * owner); the second one insists on the same key.
 *
 * Returns 0 if the migration may go on, -1 with an error reported.
 */
int
qemuMigrationConfidentialSrcCheckHelper(virDomainObj *vm,
                                        virDomainAsyncJob asyncJob,
                                        unsigned int flags)
{
    g_auto(qemuMonitorMigrationHelperInfo) info = { 0 };
    const char *keyId;

    if (!(flags & VIR_MIGRATE_CONFIDENTIAL))
        return 0;

    if (qemuMirrorQueryHelper(vm, asyncJob, &info) < 0)
        return -1;

    keyId = qemuMigrationConfidentialJobKeyId(vm);
    if (qemuMigrationConfidentialCheckHelper(vm, &info, keyId) < 0)
        return -1;

    if (!keyId)
        qemuMigrationConfidentialSetJobKeyId(vm, info.keyId);
    return 0;
}


/**
 * qemuMigrationConfidentialSrcCheckCookie:
 * @vm: the domain being migrated
 * @conf: <confidential/> from the target's Prepare cookie, or NULL
 * @remoteCaps: migration capabilities the target's QEMU supports (from the
 *              cookie's capability negotiation), or NULL
 * @flags: virDomainMigrateFlags
 *
 * Source, Perform phase, before 'migrate': the target must have confirmed
 * that it prepared a confidential migration with the same mirror vCPUs and
 * that its migration helper holds the same transport key, and its QEMU must
 * support the guest-assisted migration capability.
 */
int
qemuMigrationConfidentialSrcCheckCookie(virDomainObj *vm,
                                        const qemuMigrationCookieConfidential *conf,
                                        virBitmap *remoteCaps,
                                        unsigned int flags)
{
    if (!(flags & VIR_MIGRATE_CONFIDENTIAL))
        return 0;

    if (!conf) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("the target did not confirm the confidential migration of domain '%1$s'"),
                       vm->def->name);
        return -1;
    }

    if (!vm->def->mirror || conf->mirrorVcpus != vm->def->mirror->vcpus) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("the target prepared domain '%1$s' with %2$u mirror vCPUs, but the source has %3$u"),
                       vm->def->name, conf->mirrorVcpus,
                       vm->def->mirror ? vm->def->mirror->vcpus : 0);
        return -1;
    }

    if (conf->contract < QEMU_MIRROR_CONTRACT || !conf->nonce || !conf->keyConfirmation) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("the target of domain '%1$s' does not support confidential migration contract version %2$u"),
                       vm->def->name, QEMU_MIRROR_CONTRACT);
        return -1;
    }

    if (STRNEQ_NULLABLE(conf->keyId, qemuMigrationConfidentialJobKeyId(vm))) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("the migration helper of domain '%1$s' on the target holds the transport key '%2$s', but the source's holds '%3$s'"),
                       vm->def->name, NULLSTR(conf->keyId),
                       NULLSTR(qemuMigrationConfidentialJobKeyId(vm)));
        return -1;
    }

    if (!remoteCaps ||
        !virBitmapIsBitSet(remoteCaps, QEMU_MIGRATION_CAP_GUEST_ASSISTED)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("the target's QEMU for domain '%1$s' does not support the migration capability '%2$s'"),
                       vm->def->name,
                       qemuMigrationCapabilityTypeToString(QEMU_MIGRATION_CAP_GUEST_ASSISTED));
        return -1;
    }

    return 0;
}


/**
 * qemuMigrationConfidentialSrcSetPeer:
 * @vm: the domain being migrated (locked, in @asyncJob)
 * @conf: <confidential/> from the target's Prepare cookie, checked by
 *        qemuMigrationConfidentialSrcCheckCookie
 * @asyncJob: the migration job
 * @flags: virDomainMigrateFlags
 *
 * Source, right before 'migrate' (contract version 3): the source's helper
 * gets the target's nonce and key confirmation (migration parameters
 * helper-peer-nonce and helper-peer-confirmation). It checks the
 * confirmation before it sends anything, and derives the stream key from
 * both helpers' nonces.
 */
int
qemuMigrationConfidentialSrcSetPeer(virDomainObj *vm,
                                    const qemuMigrationCookieConfidential *conf,
                                    virDomainAsyncJob asyncJob,
                                    unsigned int flags)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    g_autoptr(virJSONValue) params = NULL;
    int rc;

    if (!(flags & VIR_MIGRATE_CONFIDENTIAL))
        return 0;

    if (!conf || !conf->nonce || !conf->keyConfirmation) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("no helper nonce from the target for domain '%1$s'"),
                       vm->def->name);
        return -1;
    }

    if (virJSONValueObjectAdd(&params,
                              "s:helper-peer-nonce", conf->nonce,
                              "s:helper-peer-confirmation", conf->keyConfirmation,
                              NULL) < 0)
        return -1;

    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return -1;
    rc = qemuMonitorSetMigrationParams(priv->mon, &params);
    qemuDomainObjExitMonitor(vm);
    return rc;
}


/**
 * qemuMigrationConfidentialDstCheck:
 * @cfg: the driver's configuration
 * @def: the incoming definition
 * @conf: <confidential/> from the source's Begin cookie, or NULL
 * @remoteCaps: migration capabilities the source's QEMU supports (from the
 *              cookie's capability negotiation), or NULL
 * @qemuCaps: capabilities of the QEMU binary that would run the guest here
 * @flags: virDomainMigrateFlags
 *
 * Target, Prepare phase, step 1: before anything is started, the source's
 * cookie and this host must agree on the mirror vCPUs, both QEMUs must
 * support guest-assisted migration, and the QEMU binary here must have the
 * whole interface.
 *
 * Returns 0 if the migration may go on, -1 with an error reported.
 */
int
qemuMigrationConfidentialDstCheck(virQEMUDriverConfig *cfg,
                                  const virDomainDef *def,
                                  const qemuMigrationCookieConfidential *conf,
                                  virBitmap *remoteCaps,
                                  virQEMUCaps *qemuCaps,
                                  unsigned int flags)
{
    if (!(flags & VIR_MIGRATE_CONFIDENTIAL)) {
        if (conf) {
            virReportError(VIR_ERR_OPERATION_INVALID,
                           _("the migration cookie of domain '%1$s' asks for a confidential migration, but VIR_MIGRATE_CONFIDENTIAL is not set"),
                           def->name);
            return -1;
        }
        return 0;
    }

    if (qemuMigrationConfidentialCheckFlags(flags) < 0)
        return -1;

    if (!conf) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the source sent no confidential migration data (<confidential/> in the migration cookie) for domain '%1$s'"),
                       def->name);
        return -1;
    }

    if (!qemuMirrorAttestKeyIdValid(conf->keyId)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the source did not say which transport key the migration helper of domain '%1$s' holds"),
                       def->name);
        return -1;
    }

    if (conf->contract < QEMU_MIRROR_CONTRACT) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("the source of domain '%1$s' does not support confidential migration contract version %2$u"),
                       def->name, QEMU_MIRROR_CONTRACT);
        return -1;
    }

    if (!remoteCaps ||
        !virBitmapIsBitSet(remoteCaps, QEMU_MIGRATION_CAP_GUEST_ASSISTED)) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("the source's QEMU for domain '%1$s' does not support the migration capability '%2$s'"),
                       def->name,
                       qemuMigrationCapabilityTypeToString(QEMU_MIGRATION_CAP_GUEST_ASSISTED));
        return -1;
    }

    if (!def->sec || def->sec->sectype != VIR_DOMAIN_LAUNCH_SECURITY_SEV) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the incoming definition of domain '%1$s' is not an SEV guest"),
                       def->name);
        return -1;
    }

    if (qemuMigrationConfidentialCheckPolicy(def) < 0)
        return -1;

    if (!def->mirror || def->mirror->vcpus != conf->mirrorVcpus) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the source runs domain '%1$s' with %2$u mirror vCPUs, but the incoming definition has %3$u"),
                       def->name, conf->mirrorVcpus,
                       def->mirror ? def->mirror->vcpus : 0);
        return -1;
    }

    if (qemuMigrationConfidentialCheckContract(qemuCaps, def->emulator) < 0)
        return -1;

    if (!qemuCaps || !qemuMirrorSupported(qemuCaps)) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("the QEMU binary '%1$s' on this host lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)"),
                       NULLSTR(def->emulator));
        return -1;
    }

    if (qemuMirrorAttestCheckAgent(cfg, def->name) < 0)
        return -1;

    return 0;
}


/**
 * qemuMigrationConfidentialDstSession:
 * @driver: the QEMU driver
 * @def: the incoming definition
 * @qemuCaps: capabilities of the QEMU binary that will run the guest here
 * @flags: virDomainMigrateFlags
 *
 * Target, Prepare phase, before QEMU starts: the launch session for this
 * host's SEV platform, from the incoming definition or, without one, from
 * the guest owner through the attestation agent (qemuMirrorAttestSession).
 */
int
qemuMigrationConfidentialDstSession(virQEMUDriver *driver,
                                    virDomainDef *def,
                                    virQEMUCaps *qemuCaps,
                                    unsigned int flags)
{
    g_autoptr(virQEMUDriverConfig) cfg = virQEMUDriverGetConfig(driver);

    if (!(flags & VIR_MIGRATE_CONFIDENTIAL))
        return 0;

    return qemuMirrorAttestSession(cfg, def,
                                   qemuCaps ? virQEMUCapsGetSEVCapabilities(qemuCaps) : NULL);
}


/**
 * qemuMigrationConfidentialDstStart:
 * @vm: the incoming domain, in its migration job
 * @conf: <confidential/> from the source's cookie
 *
 * The transport key the source's migration helper holds is the one the
 * target's must get: keep its identifier with the job.
 */
void
qemuMigrationConfidentialDstStart(virDomainObj *vm,
                                  const qemuMigrationCookieConfidential *conf)
{
    if (conf)
        qemuMigrationConfidentialSetJobKeyId(vm, conf->keyId);
}


/* the launch measurement of this QEMU and the platform data around it, as
 * the attest request carries them */
static virJSONValue *
qemuMigrationConfidentialDstMeasure(virDomainObj *vm,
                                    virDomainAsyncJob asyncJob)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    g_autoptr(virJSONValue) launch = virJSONValueNewObject();
    g_autofree char *measurement = NULL;
    virDomainSEVDef *sev = &vm->def->sec->data.sev;
    qemuMonitorSEVInfo info = { 0 };
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return NULL;
    measurement = qemuMonitorGetSEVMeasurement(priv->mon);
    rc = measurement ? qemuMonitorGetSEVInfo(priv->mon, &info) : -1;
    qemuDomainObjExitMonitor(vm);
    if (rc < 0)
        return NULL;

    if (virJSONValueObjectAppendString(launch, "dh-cert", NULLSTR_EMPTY(sev->dh_cert)) < 0 ||
        virJSONValueObjectAppendString(launch, "session", NULLSTR_EMPTY(sev->session)) < 0 ||
        virJSONValueObjectAppendString(launch, "measurement", measurement) < 0 ||
        virJSONValueObjectAppendNumberUint(launch, "api-major", info.apiMajor) < 0 ||
        virJSONValueObjectAppendNumberUint(launch, "api-minor", info.apiMinor) < 0 ||
        virJSONValueObjectAppendNumberUint(launch, "build-id", info.buildID) < 0 ||
        virJSONValueObjectAppendNumberUint(launch, "policy", info.data.sev.policy) < 0)
        return NULL;

    return g_steal_pointer(&launch);
}


/**
 * qemuMigrationConfidentialDstAttest:
 * @vm: the incoming domain: QEMU was launched, its vCPUs never ran
 * @asyncJob: the incoming migration job
 *
 * Target, Prepare phase, steps "attestation" and "provisioning": the
 * launch measurement goes to the guest owner through the attestation agent,
 * which returns a launch secret carrying the transport key (or refuses);
 * the key must be the one the source's helper holds; the secret is
 * injected. All of it before the first 'cont': the SEV firmware accepts a
 * launch secret only between LAUNCH_MEASURE and LAUNCH_FINISH.
 *
 * The domain is unlocked while the agent runs, so that it can be
 * destroyed meanwhile. A destroy (or QEMU's end) then runs
 * qemuProcessStop, which frees vm->def when the domain has a persistent
 * definition (migrating back to a host that has one): nothing of vm->def,
 * priv or the job is used while unlocked, only copies made before.
 */
static int
qemuMigrationConfidentialDstAttest(virDomainObj *vm,
                                   virDomainAsyncJob asyncJob)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    g_autoptr(virQEMUDriverConfig) cfg = virQEMUDriverGetConfig(priv->driver);
    g_autoptr(virJSONValue) request = NULL;
    g_autoptr(virJSONValue) launch = NULL;
    g_autoptr(virJSONValue) reply = NULL;
    g_autoptr(qemuMirrorAttestSecret) secret = NULL;
    g_autofree char *hostname = virGetHostname();
    g_autofree char *keyId = g_strdup(qemuMigrationConfidentialJobKeyId(vm));
    g_autofree char *domname = g_strdup(vm->def->name);
    qemuDomainJobDataPrivate *jobData = NULL;
    unsigned long long start;
    unsigned long long end;
    unsigned long long agentMs = 0;
    int rc;

    if (virTimeMillisNow(&start) < 0)
        return -1;

    qemuMigrationConfidentialSetPhase(vm, VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_ATTESTATION);

    if (!(launch = qemuMigrationConfidentialDstMeasure(vm, asyncJob)))
        return -1;

    if (!(request = qemuMirrorAttestRequestNew("attest", vm->def, hostname,
                                               virQEMUCapsGetSEVCapabilities(priv->qemuCaps))) ||
        virJSONValueObjectAppend(request, "launch", &launch) < 0 ||
        virJSONValueObjectAppendString(request, "source-key-id", NULLSTR_EMPTY(keyId)) < 0)
        return -1;

    virObjectUnlock(vm);
    rc = qemuMirrorAttestRun(cfg->mirrorAttestationAgent,
                             cfg->mirrorAttestationTimeout, domname,
                             QEMU_MIRROR_ATTEST_STEP_ATTEST, request, &reply,
                             &agentMs);
    virObjectLock(vm);
    if (rc < 0)
        return -1;

    if (!virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("QEMU of domain '%1$s' went away during its attestation"),
                       vm->def->name);
        return -1;
    }

    if (!(secret = qemuMirrorAttestParseSecret(reply, vm->def->name)))
        return -1;

    if (STRNEQ_NULLABLE(secret->keyId, keyId)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("the guest owner provisions transport key '%1$s' for domain '%2$s', but the source's migration helper holds '%3$s'"),
                       secret->keyId, vm->def->name, NULLSTR(keyId));
        return -1;
    }

    qemuMigrationConfidentialSetPhase(vm, VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_PROVISIONING);
    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return -1;
    rc = qemuMonitorSetLaunchSecurityState(priv->mon, secret->header,
                                           secret->secret, 0, false);
    qemuDomainObjExitMonitor(vm);
    if (rc < 0) {
        g_autofree char *cause = g_strdup(virGetLastErrorMessage());

        virResetLastError();
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("the SEV platform rejected the launch secret for domain '%1$s': %2$s"),
                       vm->def->name, cause);
        return -1;
    }

    if (virTimeMillisNow(&end) < 0)
        return -1;

    if (vm->job->current)
        jobData = vm->job->current->privateData;
    if (jobData) {
        jobData->confidentialAttested = true;
        jobData->confidentialAttestationTime = end - start;
        jobData->confidentialAgentTime = agentMs;
    }

    VIR_DEBUG("domain %s attested in %llu ms (agent %llu ms), transport key '%s'",
              vm->def->name, end - start, agentMs, secret->keyId);
    return 0;
}


/**
 * qemuMigrationConfidentialDstRun:
 * @vm: the incoming domain: QEMU runs with the migration-target command
 *      line, without -incoming, its vCPUs stopped since its launch
 * @uri: where to listen, as for migrate-incoming
 * @exitOnError: as for migrate-incoming
 * @asyncJob: the incoming migration job
 *
 * Target, Prepare phase, after QEMU's launch, in the order of
 * docs/kbase/confidential-migration.rst: attestation and provisioning of
 * the transport key (before the first 'cont'), then 'cont' lets the
 * migration helper boot, wait until it is ready with the source's
 * transport key, and listen with start-migrate-incoming. The domain stays
 * paused for migration all along: the guest's OS does not run.
 *
 * On failure the caller stops QEMU, as for any failed Prepare.
 */
int
qemuMigrationConfidentialDstRun(virDomainObj *vm,
                                const char *uri,
                                virTristateBool exitOnError,
                                virDomainAsyncJob asyncJob)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    g_autoptr(virQEMUDriverConfig) cfg = virQEMUDriverGetConfig(priv->driver);
    g_auto(qemuMonitorMigrationHelperInfo) info = { 0 };
    int rc;

    VIR_DEBUG("confidential incoming migration of %s on %s", vm->def->name, uri);

    virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION);
    qemuDomainSaveStatus(vm);

    /* attestation and provisioning: never after the first 'cont' */
    if (qemuMigrationConfidentialDstAttest(vm, asyncJob) < 0)
        return -1;

    if (qemuMirrorCheckShutdown(vm) < 0)
        return -1;

    /* QEMU's RESUME event for this 'cont' is not the guest resuming
     * (qemuMirrorIsHelperOnlyTarget) */
    qemuMigrationConfidentialSetPhase(vm, VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_WAITING_FOR_HELPER);
    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return -1;
    rc = qemuMonitorStartCPUs(priv->mon);
    qemuDomainObjExitMonitor(vm);
    if (rc < 0)
        return -1;

    if (qemuMirrorWaitForHelper(vm, asyncJob,
                                cfg->mirrorHelperTimeout * 1000ULL,
                                &info) < 0)
        return -1;

    qemuMigrationConfidentialSetPhase(vm, VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_TRANSPORT_KEY);
    if (qemuMigrationConfidentialCheckHelper(vm, &info,
                                             qemuMigrationConfidentialJobKeyId(vm)) < 0)
        return -1;

    /* never once the daemon shuts down */
    if (qemuMirrorCheckShutdown(vm) < 0)
        return -1;

    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return -1;
    rc = qemuMonitorSetDBusVMStateIdList(priv->mon, priv->dbusVMStateIds);
    if (rc == 0)
        rc = qemuMonitorStartMigrateIncoming(priv->mon, uri, exitOnError);
    qemuDomainObjExitMonitor(vm);
    if (rc < 0)
        return -1;

    qemuMigrationConfidentialSetPhase(vm, VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_LISTENING);
    return 0;
}


/**
 * qemuMigrationConfidentialSrcStripSession:
 * @vm: the source domain
 * @def: the definition the target will get (a copy of the source's, or
 *       the one the management application supplied)
 *
 * A launch session is made for one SEV platform: the source's is useless
 * on the target. It is left out of the definition the target gets unless
 * the management application put another one in (the target's), which the
 * target then uses instead of asking the guest owner for one.
 */
void
qemuMigrationConfidentialSrcStripSession(virDomainObj *vm,
                                         virDomainDef *def)
{
    virDomainSEVDef *src;
    virDomainSEVDef *dst;

    if (!vm->def->sec || vm->def->sec->sectype != VIR_DOMAIN_LAUNCH_SECURITY_SEV ||
        !def->sec || def->sec->sectype != VIR_DOMAIN_LAUNCH_SECURITY_SEV)
        return;

    src = &vm->def->sec->data.sev;
    dst = &def->sec->data.sev;

    if (STREQ_NULLABLE(src->dh_cert, dst->dh_cert) ||
        STREQ_NULLABLE(src->session, dst->session)) {
        g_clear_pointer(&dst->dh_cert, g_free);
        g_clear_pointer(&dst->session, g_free);
    }
}


/**
 * qemuMigrationConfidentialDstPersistSession:
 * @vm: the incoming domain, its migration done
 * @persistent: the persistent definition the target keeps
 *
 * The persistent definition comes from the source without the source's
 * launch session (qemuMigrationConfidentialSrcStripSession). Unless the
 * management application gave it one, it gets the session this host
 * launched the guest with, made for this host's platform, so that the
 * guest's next launch here can be attested by its owner as this one was.
 */
void
qemuMigrationConfidentialDstPersistSession(virDomainObj *vm,
                                           virDomainDef *persistent)
{
    virDomainSEVDef *live;
    virDomainSEVDef *dst;

    if (!vm->def->sec || vm->def->sec->sectype != VIR_DOMAIN_LAUNCH_SECURITY_SEV ||
        !persistent->sec || persistent->sec->sectype != VIR_DOMAIN_LAUNCH_SECURITY_SEV)
        return;

    live = &vm->def->sec->data.sev;
    dst = &persistent->sec->data.sev;

    if (dst->dh_cert || dst->session)
        return;

    dst->dh_cert = g_strdup(live->dh_cert);
    dst->session = g_strdup(live->session);
}
