/*
 * qemu_mirror.c: mirror vCPUs in the QEMU driver
 *
 * A domain with <mirror vcpus='M'/> runs M mirror vCPUs next to its own N
 * vCPUs. QEMU's side is the interface written down in
 * docs/kbase/confidential-migration.rst: '-smp' with 'mirrorvcpus=M' and
 * fw_cfg switches for the migration helper in OVMF (both from the RFCs),
 * query-mirror-vcpus and query-migration-helper (this project's proposal).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>

#include "qemu_mirror.h"
#include "qemu_command.h"
#include "qemu_domain.h"
#include "qemu_migration.h"
#include "qemu_monitor.h"
#include "qemu_process.h"
#include "domain_event.h"
#include "domain_cgroup.h"
#include "virerror.h"
#include "virhostcpu.h"
#include "virlog.h"
#include "virprocess.h"
#include "virtime.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_mirror");

/* fw_cfg files OVMF reads (from the guest-assisted migration RFC) */
#define QEMU_MIRROR_FW_CFG_HELPER "opt/ovmf/PcdSevIsMigrationHelper"
#define QEMU_MIRROR_FW_CFG_TARGET "opt/ovmf/PcdSevIsMigrationTarget"

/* how often the helper's status is asked for again while no MIGRATION_HELPER
 * event arrives: the event is the fast path, this the safety net */
#define QEMU_MIRROR_HELPER_POLL_MS 500


/**
 * qemuMirrorSupported:
 *
 * Whether this QEMU can run mirror vCPUs and migrate their guest
 * confidentially: everything the contract needs, so that a management
 * application that sees <mirror supported='yes'/> can rely on all of it.
 */
bool
qemuMirrorSupported(virQEMUCaps *qemuCaps)
{
    return virQEMUCapsGet(qemuCaps, QEMU_CAPS_SEV_GUEST) &&
        virQEMUCapsGet(qemuCaps, QEMU_CAPS_SMP_MIRROR_VCPUS) &&
        virQEMUCapsGet(qemuCaps, QEMU_CAPS_QUERY_MIRROR_VCPUS) &&
        virQEMUCapsGet(qemuCaps, QEMU_CAPS_START_MIGRATE_INCOMING) &&
        virQEMUCapsGet(qemuCaps, QEMU_CAPS_MIGRATION_HELPER) &&
        virQEMUCapsGet(qemuCaps, QEMU_CAPS_MIGRATE_GUEST_ASSISTED) &&
        virQEMUCapsGet(qemuCaps, QEMU_CAPS_MIGRATION_HELPER_NONCE);
}


/**
 * qemuMirrorFillDomainCaps:
 *
 * <mirror supported='yes'/> with the largest mirror vCPU count when SEV and
 * the whole mirror interface are available, 'no' on an SEV host whose QEMU
 * lacks it, nothing without SEV. The version of the QEMU interface is not
 * reported: 'yes' means the one this driver implements, and two hosts agree
 * on it through the migration cookie.
 */
void
qemuMirrorFillDomainCaps(virQEMUCaps *qemuCaps,
                         virDomainCaps *domCaps)
{
    if (!domCaps->sev)
        return;

    domCaps->features[VIR_DOMAIN_CAPS_FEATURE_MIRROR] =
        qemuMirrorSupported(qemuCaps) ? VIR_TRISTATE_BOOL_YES : VIR_TRISTATE_BOOL_NO;
    domCaps->mirrorMaxVcpus = VIR_DOMAIN_MIRROR_VCPUS_MAX;
}


/* vCPUs per socket of the topology the guest's vCPUs use: 1 without one
 * (QEMU then gets one socket per vCPU) */
static unsigned int
qemuMirrorVcpusPerSocket(const virDomainDef *def)
{
    if (!def->cpu || !def->cpu->sockets)
        return 1;

    return def->cpu->dies * def->cpu->clusters * def->cpu->cores *
        def->cpu->threads;
}


/**
 * qemuMirrorSmpExtraSockets:
 *
 * Mirror vCPUs get sockets of their own, appended after the guest's: the
 * guest's vCPUs fill exactly the topology it declares, and the mirror vCPUs
 * take the first slots of the extra sockets (QEMU counts them inside
 * maxcpus and the socket topology). Returns the number of extra sockets.
 */
unsigned int
qemuMirrorSmpExtraSockets(const virDomainDef *def)
{
    unsigned int perSocket;

    if (!def->mirror)
        return 0;

    perSocket = qemuMirrorVcpusPerSocket(def);
    return (def->mirror->vcpus + perSocket - 1) / perSocket;
}


/**
 * qemuMirrorSmpSlots:
 *
 * The vCPU slots QEMU gets (-smp maxcpus): the guest's own plus those of the
 * sockets appended for the mirror vCPUs (qemuMirrorSmpExtraSockets).
 */
unsigned int
qemuMirrorSmpSlots(const virDomainDef *def)
{
    return virDomainDefGetVcpusMax(def) +
        qemuMirrorSmpExtraSockets(def) * qemuMirrorVcpusPerSocket(def);
}


/* UEFI firmware: autoselected (<os firmware='efi'>), where the firmware's
 * descriptor must then declare the 'amd-sev-migration-helper' feature
 * (qemuFirmwareMatchDomain), or a <loader> chosen by the user, which
 * libvirt cannot inspect, as for SEV itself. */
static bool
qemuMirrorHasUEFI(const virDomainDef *def)
{
    if (def->os.firmware == VIR_DOMAIN_OS_DEF_FIRMWARE_EFI)
        return true;

    return def->os.firmware == VIR_DOMAIN_OS_DEF_FIRMWARE_NONE &&
        def->os.loader && def->os.loader->path;
}


/**
 * qemuMirrorValidateDef:
 *
 * QEMU-specific checks of <mirror/>; domain_mirror.c has the generic ones
 * (SEV, counts).
 */
int
qemuMirrorValidateDef(const virDomainDef *def,
                      virQEMUCaps *qemuCaps)
{
    unsigned int maxvcpus = virDomainDefGetVcpusMax(def);
    unsigned int slots;
    unsigned int machineMax;
    size_t i;

    if (!def->mirror)
        return 0;

    if (!virQEMUCapsGet(qemuCaps, QEMU_CAPS_SMP_MIRROR_VCPUS)) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("mirror vCPUs are not supported by this QEMU binary: it does not accept -smp mirrorvcpus="));
        return -1;
    }

    if (!virQEMUCapsGet(qemuCaps, QEMU_CAPS_QUERY_MIRROR_VCPUS)) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("mirror vCPUs are not supported by this QEMU binary: it does not report their threads (query-mirror-vcpus)"));
        return -1;
    }

    if (!ARCH_IS_X86(def->os.arch) ||
        !(qemuDomainIsQ35(def) || qemuDomainIsI440FX(def))) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("mirror vCPUs require an x86 'q35' or 'pc' machine type, not '%1$s'"),
                       def->os.machine);
        return -1;
    }

    if (!qemuMirrorHasUEFI(def)) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("mirror vCPUs require UEFI firmware: the migration helper is part of OVMF (use <os firmware='efi'> or a <loader>)"));
        return -1;
    }

    if (virDomainDefGetVcpus(def) != maxvcpus) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("mirror vCPUs require all guest vCPUs to be online at start: current vCPUs (%1$u) must equal the maximum (%2$u)"),
                       virDomainDefGetVcpus(def), maxvcpus);
        return -1;
    }

    for (i = 0; i < maxvcpus; i++) {
        if (def->vcpus[i]->hotpluggable == VIR_TRISTATE_BOOL_YES) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("vCPU %1$zu is hotpluggable: vCPU hotplug is not supported together with mirror vCPUs"),
                           i);
            return -1;
        }
    }

    slots = qemuMirrorSmpSlots(def);
    machineMax = virQEMUCapsGetMachineMaxCpus(qemuCaps, def->virtType,
                                              def->os.machine);
    if (machineMax && slots > machineMax) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("guest and mirror vCPUs need %1$u vCPU slots, more than machine type '%2$s' allows (%3$u)"),
                       slots, def->os.machine, machineMax);
        return -1;
    }

    return 0;
}


/**
 * qemuMirrorIsHelperOnlyTarget:
 * @vm: a domain
 * @job: its job: vm->job, or on reconnect the job the status XML kept
 *       (qemuProcessReconnect takes it out of vm->job before it looks at
 *       the domain's state)
 *
 * Whether @vm is the target of a confidential migration that is still in
 * its Prepare phase: QEMU runs, but its vCPUs run only the migration helper
 * and the guest's OS does not run, so the domain is paused for migration
 * whatever QEMU's run state says. Derived from the migration job, which the
 * status XML keeps, so that it holds across a libvirtd restart.
 */
bool
qemuMirrorIsHelperOnlyTarget(virDomainObj *vm,
                             virDomainJobObj *job)
{
    return vm->def->mirror &&
        job->asyncJob == VIR_ASYNC_JOB_MIGRATION_IN &&
        job->phase == QEMU_MIGRATION_PHASE_PREPARE &&
        (job->apiFlags & VIR_MIGRATE_CONFIDENTIAL);
}


/**
 * qemuMirrorBuildCommandLine:
 * @mirrorTarget: QEMU is the target of a confidential migration
 *                (qemuProcessIncomingDef.mirrorTarget)
 *
 * The fw_cfg switches that make OVMF start the migration helper on the
 * mirror vCPUs; on a confidential migration target OVMF also loads only the
 * helper, which waits for the incoming guest.
 */
void
qemuMirrorBuildCommandLine(virCommand *cmd,
                           const virDomainDef *def,
                           bool mirrorTarget)
{
    if (!def->mirror)
        return;

    qemuBuildFWCfgCommandLine(cmd, QEMU_MIRROR_FW_CFG_HELPER, "0", NULL);

    if (mirrorTarget)
        qemuBuildFWCfgCommandLine(cmd, QEMU_MIRROR_FW_CFG_TARGET, "1", NULL);
}


/**
 * qemuMirrorCheckVcpuChange:
 *
 * The mirror vCPUs sit in the vCPU slots after the guest's, so the guest's
 * vCPU count cannot change while they exist: setvcpus and setvcpu are
 * refused (edit the definition instead, where validation applies).
 */
int
qemuMirrorCheckVcpuChange(const virDomainDef *def)
{
    if (!def || !def->mirror)
        return 0;

    virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                   _("changing the vCPUs of a domain with mirror vCPUs (element 'mirror') is not supported"));
    return -1;
}


/**
 * qemuMirrorFormatStatus:
 *
 * The mirror vCPU threads in the status XML:
 * <mirrorvcpus><vcpu id='0' pid='1234'/></mirrorvcpus>
 */
void
qemuMirrorFormatStatus(virBuffer *buf,
                       virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    g_auto(virBuffer) childBuf = VIR_BUFFER_INIT_CHILD(buf);
    size_t i;

    for (i = 0; i < priv->nmirrorVcpuPids; i++)
        virBufferAsprintf(&childBuf, "<vcpu id='%zu' pid='%lld'/>\n", i,
                          (long long)priv->mirrorVcpuPids[i]);

    virXMLFormatElement(buf, "mirrorvcpus", NULL, &childBuf);
}


int
qemuMirrorParseStatus(xmlXPathContextPtr ctxt,
                      virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    g_autofree xmlNodePtr *nodes = NULL;
    g_autofree pid_t *pids = NULL;
    size_t i;
    int n;

    if ((n = virXPathNodeSet("./mirrorvcpus/vcpu", ctxt, &nodes)) < 0)
        return -1;

    if (n == 0)
        return 0;

    pids = g_new0(pid_t, n);
    for (i = 0; i < n; i++) {
        unsigned int id;
        long long tid;

        if (virXMLPropUInt(nodes[i], "id", 10, VIR_XML_PROP_REQUIRED, &id) < 0 ||
            virXMLPropLongLong(nodes[i], "pid", 10, VIR_XML_PROP_REQUIRED, &tid, 0) < 0)
            return -1;

        if (id != i || tid <= 0) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("invalid mirror vCPU %1$u (pid %2$lld) in the status XML"),
                           id, tid);
            return -1;
        }
        pids[i] = tid;
    }

    g_free(priv->mirrorVcpuPids);
    priv->mirrorVcpuPids = g_steal_pointer(&pids);
    priv->nmirrorVcpuPids = n;
    return 0;
}


/**
 * qemuMirrorReconnect:
 *
 * After a libvirtd restart: the mirror vCPU threads are asked for again
 * and set up again (cgroup, pinning), as at start. A thread that differs
 * from the one the status XML recorded is logged.
 */
int
qemuMirrorReconnect(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    g_autofree pid_t *recorded = NULL;
    size_t nrecorded = priv->nmirrorVcpuPids;
    size_t i;

    if (!vm->def->mirror)
        return 0;

    recorded = g_steal_pointer(&priv->mirrorVcpuPids);
    priv->nmirrorVcpuPids = 0;

    if (qemuMirrorSetupVcpus(vm, VIR_ASYNC_JOB_NONE) < 0)
        return -1;

    for (i = 0; i < nrecorded && i < priv->nmirrorVcpuPids; i++) {
        if (recorded[i] != priv->mirrorVcpuPids[i])
            VIR_WARN("mirror vCPU %zu of domain %s runs on thread %lld, not %lld as recorded",
                     i, vm->def->name, (long long)priv->mirrorVcpuPids[i],
                     (long long)recorded[i]);
    }

    return 0;
}


/**
 * qemuMirrorCheckPin:
 * @def: the definition to change (live or persistent)
 * @vcpu: index of a mirror vCPU
 * @cpumask: the host CPUs asked for
 *
 * virDomainPinMirrorVcpu's checks, made before anything changes: the
 * domain has that mirror vCPU, and @cpumask names host CPUs, at least one.
 */
int
qemuMirrorCheckPin(const virDomainDef *def,
                   unsigned int vcpu,
                   virBitmap *cpumask)
{
    int hostcpus;
    ssize_t last;

    if (!def->mirror) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain '%1$s' has no mirror vCPUs (element 'mirror')"),
                       def->name);
        return -1;
    }

    if (vcpu >= def->mirror->vcpus) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("mirror vCPU %1$u does not exist: domain '%2$s' has %3$u mirror vCPUs"),
                       vcpu, def->name, def->mirror->vcpus);
        return -1;
    }

    if (virBitmapIsAllClear(cpumask)) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("Empty mirror vCPU cpumap list for pinning"));
        return -1;
    }

    if ((hostcpus = virHostCPUGetCount()) < 0)
        return -1;

    if ((last = virBitmapLastSetBit(cpumask)) >= hostcpus) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("CPU %1$zd is not a host CPU: the host has %2$d CPUs"),
                       last, hostcpus);
        return -1;
    }

    return 0;
}


/**
 * qemuMirrorPinVcpuLive:
 * @vm: a running domain (locked, in a job) that passed qemuMirrorCheckPin
 * @vcpu: index of a mirror vCPU
 * @cpumask: host CPUs for its thread
 *
 * Pins the thread of a running mirror vCPU (its cgroup and affinity, as at
 * start) and records the pin in the live definition and the status XML.
 * On failure the live definition keeps its previous pin.
 */
int
qemuMirrorPinVcpuLive(virDomainObj *vm,
                      unsigned int vcpu,
                      virBitmap *cpumask)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    virDomainMirrorDef *mirror = vm->def->mirror;
    g_autoptr(virBitmap) previous = NULL;
    virBitmap *current;

    if (vcpu >= priv->nmirrorVcpuPids) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the thread of mirror vCPU %1$u of domain '%2$s' is not known"),
                       vcpu, vm->def->name);
        return -1;
    }

    /* the previous pin, if this vCPU had one of its own */
    current = virDomainMirrorDefGetCpumask(mirror, vcpu);
    if (current && current != mirror->cpuset)
        previous = virBitmapNewCopy(current);

    if (virDomainMirrorDefSetPin(mirror, vcpu, cpumask) < 0)
        return -1;

    if (qemuProcessSetupMirrorVcpu(vm, vcpu, priv->mirrorVcpuPids[vcpu]) < 0) {
        ignore_value(virDomainMirrorDefSetPin(mirror, vcpu, previous));
        return -1;
    }

    qemuDomainSaveStatus(vm);
    return 0;
}


/**
 * qemuMirrorSetVcpusBWLive:
 * @vm: domain object
 * @cgroup: the domain's cgroup
 * @period: the new vCPU period, or 0 to keep it
 * @quota: the new vCPU quota, or 0 to keep it
 *
 * A change of the vCPU bandwidth of a running domain (vcpu_period,
 * vcpu_quota) applies to its mirror vCPUs too, as at start-up
 * (qemuProcessSetupMirrorVcpu).
 */
int
qemuMirrorSetVcpusBWLive(virDomainObj *vm,
                         virCgroup *cgroup,
                         unsigned long long period,
                         long long quota)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    size_t i;

    for (i = 0; i < priv->nmirrorVcpuPids; i++) {
        g_autoptr(virCgroup) cgroup_mirror = NULL;

        if (virCgroupNewThread(cgroup, VIR_CGROUP_THREAD_MIRROR, i,
                               false, &cgroup_mirror) < 0)
            return -1;

        if (virDomainCgroupSetupVcpuBW(cgroup_mirror, period, quota) < 0)
            return -1;
    }

    return 0;
}


/**
 * qemuMirrorGetVcpuInfoLive:
 * @vm: a running domain (locked)
 * @info: filled with one entry per mirror vCPU
 *
 * virDomainGetMirrorVcpuInfo of a running domain: each mirror vCPU with
 * the host CPUs the kernel lets its thread run on.
 *
 * Returns the number of mirror vCPUs (0 without <mirror/>), or -1 with an
 * error reported.
 */
int
qemuMirrorGetVcpuInfoLive(virDomainObj *vm,
                          virDomainMirrorVcpuInfoPtr **info)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    virDomainMirrorVcpuInfoPtr *info_ret = NULL;
    size_t n = priv->nmirrorVcpuPids;
    size_t i;
    int ret = -1;

    if (!vm->def->mirror || n == 0)
        return 0;

    info_ret = g_new0(virDomainMirrorVcpuInfoPtr, n);

    for (i = 0; i < n; i++) {
        g_autoptr(virBitmap) map = NULL;

        info_ret[i] = g_new0(virDomainMirrorVcpuInfo, 1);
        info_ret[i]->vcpu = i;

        if (!(map = virProcessGetAffinity(priv->mirrorVcpuPids[i])))
            goto cleanup;

        virBitmapToData(map, &info_ret[i]->cpumap, &info_ret[i]->cpumaplen);
    }

    *info = g_steal_pointer(&info_ret);
    ret = n;

 cleanup:
    if (info_ret) {
        for (i = 0; i < n; i++)
            virDomainMirrorVcpuInfoFree(info_ret[i]);
        g_free(info_ret);
    }
    return ret;
}


/**
 * qemuMirrorSetupVcpus:
 *
 * Right after QEMU starts, before the guest runs: QEMU must report exactly
 * the mirror vCPUs the definition asks for, numbered after the guest's;
 * their threads are recorded (status XML) and set up as a thread class of
 * their own (qemuProcessSetupMirrorVcpu).
 */
int
qemuMirrorSetupVcpus(virDomainObj *vm,
                     virDomainAsyncJob asyncJob)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    const virDomainMirrorDef *mirror = vm->def->mirror;
    g_autofree qemuMonitorMirrorVcpuInfo *vcpus = NULL;
    g_autofree pid_t *pids = NULL;
    size_t nvcpus = 0;
    unsigned int first = virDomainDefGetVcpusMax(vm->def);
    size_t i;
    int rc;

    if (!mirror)
        return 0;

    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return -1;
    rc = qemuMonitorGetMirrorVcpus(priv->mon, &vcpus, &nvcpus);
    qemuDomainObjExitMonitor(vm);
    if (rc < 0)
        return -1;

    if (nvcpus != mirror->vcpus) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("QEMU reports %1$zu mirror vCPUs, but the domain has %2$u"),
                       nvcpus, mirror->vcpus);
        return -1;
    }

    pids = g_new0(pid_t, nvcpus);
    for (i = 0; i < nvcpus; i++) {
        if (vcpus[i].cpu_index != first + i) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("QEMU reports mirror vCPU %1$zu at index %2$u instead of %3$zu"),
                           i, vcpus[i].cpu_index, first + i);
            return -1;
        }

        VIR_DEBUG("mirror vCPU %u: thread %d", vcpus[i].cpu_index,
                  vcpus[i].thread_id);
        pids[i] = vcpus[i].thread_id;

        if (qemuProcessSetupMirrorVcpu(vm, i, pids[i]) < 0)
            return -1;
    }

    g_free(priv->mirrorVcpuPids);
    priv->mirrorVcpuPids = g_steal_pointer(&pids);
    priv->nmirrorVcpuPids = nvcpus;
    return 0;
}


/**
 * qemuMirrorHandleMigrationHelper:
 *
 * MIGRATION_HELPER event: wake up whoever waits for the helper, and tell
 * management (VIR_DOMAIN_EVENT_ID_MIGRATION_HELPER). A helper that fails
 * is also logged as a warning: the guest can no longer be migrated
 * confidentially.
 */
void
qemuMirrorHandleMigrationHelper(qemuMonitor *mon G_GNUC_UNUSED,
                                virDomainObj *vm,
                                const qemuMonitorMigrationHelperInfo *info)
{
    int status = info->status;
    qemuDomainObjPrivate *priv;
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int maxparams = 0;
    virObjectEvent *event = NULL;

    virObjectLock(vm);
    priv = vm->privateData;
    VIR_DEBUG("migration helper of domain %s: %s", vm->def->name,
              NULLSTR(qemuMonitorMigrationHelperStatusTypeToString(status)));

    if (status == QEMU_MONITOR_MIGRATION_HELPER_FAILED)
        VIR_WARN("migration helper of domain %s failed: %s; the domain cannot be migrated confidentially any more",
                 vm->def->name, NULLSTR_MINUS(info->error));

    if (virTypedParamsAddString(&params, &nparams, &maxparams,
                                VIR_DOMAIN_MIGRATION_HELPER_STATUS,
                                qemuMonitorMigrationHelperStatusTypeToString(status)) < 0 ||
        virTypedParamsAddBoolean(&params, &nparams, &maxparams,
                                 VIR_DOMAIN_MIGRATION_HELPER_TRANSPORT_KEY,
                                 info->transportKey) < 0 ||
        (info->keyId &&
         virTypedParamsAddString(&params, &nparams, &maxparams,
                                 VIR_DOMAIN_MIGRATION_HELPER_TRANSPORT_KEY_ID,
                                 info->keyId) < 0) ||
        (info->error &&
         virTypedParamsAddString(&params, &nparams, &maxparams,
                                 VIR_DOMAIN_MIGRATION_HELPER_ERROR, info->error) < 0)) {
        virTypedParamsFree(params, nparams);
        params = NULL;
    } else {
        event = virDomainEventMigrationHelperNewFromObj(vm, &params, nparams);
    }

    virDomainObjBroadcast(vm);
    virObjectUnlock(vm);
    virObjectEventStateQueue(priv->driver->domainEventState, event);
}


/**
 * qemuMirrorQueryHelper:
 * @vm: a running domain (locked, in @asyncJob)
 *
 * query-migration-helper: the helper's status, whether it holds a
 * transport key and that key's identifier, and why it failed (if it did).
 */
int
qemuMirrorQueryHelper(virDomainObj *vm,
                      virDomainAsyncJob asyncJob,
                      qemuMonitorMigrationHelperInfo *info)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return -1;
    rc = qemuMonitorGetMigrationHelper(priv->mon, info);
    qemuDomainObjExitMonitor(vm);
    return rc;
}


/* The names of the migration helper's typed parameters: those of the
 * migration-helper event, also returned by virDomainGetLaunchSecurityInfo,
 * and those of the VIR_DOMAIN_STATS_MIRROR group, which start with the
 * group's prefix */
struct _qemuMirrorHelperParamNames {
    const char *status;
    const char *transportKey;
    const char *transportKeyId;
    const char *error;
};

const qemuMirrorHelperParamNames qemuMirrorHelperParamsLaunchSecurity = {
    .status = VIR_DOMAIN_MIGRATION_HELPER_STATUS,
    .transportKey = VIR_DOMAIN_MIGRATION_HELPER_TRANSPORT_KEY,
    .transportKeyId = VIR_DOMAIN_MIGRATION_HELPER_TRANSPORT_KEY_ID,
    .error = VIR_DOMAIN_MIGRATION_HELPER_ERROR,
};

const qemuMirrorHelperParamNames qemuMirrorHelperParamsStats = {
    .status = VIR_DOMAIN_STATS_MIRROR_HELPER_STATUS,
    .transportKey = VIR_DOMAIN_STATS_MIRROR_HELPER_TRANSPORT_KEY,
    .transportKeyId = VIR_DOMAIN_STATS_MIRROR_HELPER_TRANSPORT_KEY_ID,
    .error = VIR_DOMAIN_STATS_MIRROR_HELPER_ERROR,
};


/**
 * qemuMirrorGetHelperParams:
 * @vm: a running domain (locked, in a job)
 * @asyncJob: the job
 * @list: where to add the parameters
 * @names: their names (qemuMirrorHelperParamsLaunchSecurity or
 *         qemuMirrorHelperParamsStats)
 *
 * The migration helper's state as typed parameters, for a domain with
 * mirror vCPUs; nothing for one without. Best effort: when QEMU cannot be
 * asked, nothing is added and no error is left set, so that the caller
 * returns what else it has.
 */
void
qemuMirrorGetHelperParams(virDomainObj *vm,
                          virDomainAsyncJob asyncJob,
                          virTypedParamList *list,
                          const qemuMirrorHelperParamNames *names)
{
    g_auto(qemuMonitorMigrationHelperInfo) info = { 0 };

    if (!vm->def->mirror)
        return;

    if (qemuMirrorQueryHelper(vm, asyncJob, &info) < 0) {
        VIR_DEBUG("migration helper of domain %s not reported: %s",
                  vm->def->name, virGetLastErrorMessage());
        virResetLastError();
        return;
    }

    virTypedParamListAddString(list, qemuMonitorMigrationHelperStatusTypeToString(info.status),
                               "%s", names->status);
    virTypedParamListAddBoolean(list, info.transportKey, "%s", names->transportKey);
    if (info.keyId)
        virTypedParamListAddString(list, info.keyId, "%s", names->transportKeyId);
    if (info.error)
        virTypedParamListAddString(list, info.error, "%s", names->error);
}


/**
 * qemuMirrorGetStats:
 * @vm: a running domain
 * @params: where to add the statistics
 * @haveJob: whether the caller holds a job, so that QEMU can be asked for
 *           the migration helper's state
 *
 * The VIR_DOMAIN_STATS_MIRROR group: each mirror vCPU's thread, the host
 * CPUs the kernel lets it run on and the CPU time it used, and the
 * migration helper's state. What cannot be read is left out.
 */
void
qemuMirrorGetStats(virDomainObj *vm,
                   virTypedParamList *params,
                   bool haveJob)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    size_t i;

    if (!vm->def->mirror)
        return;

    virTypedParamListAddUInt(params, priv->nmirrorVcpuPids,
                             VIR_DOMAIN_STATS_MIRROR_COUNT);

    for (i = 0; i < priv->nmirrorVcpuPids; i++) {
        pid_t tid = priv->mirrorVcpuPids[i];
        g_autoptr(virBitmap) affinity = NULL;
        unsigned long long cpuTime;

        virTypedParamListAddULLong(params, tid,
                                   VIR_DOMAIN_STATS_MIRROR_PREFIX "%zu"
                                   VIR_DOMAIN_STATS_MIRROR_SUFFIX_THREAD, i);

        if ((affinity = virProcessGetAffinity(tid))) {
            g_autofree char *str = virBitmapFormat(affinity);

            virTypedParamListAddString(params, str,
                                       VIR_DOMAIN_STATS_MIRROR_PREFIX "%zu"
                                       VIR_DOMAIN_STATS_MIRROR_SUFFIX_AFFINITY, i);
        }

        if (virProcessGetStatInfo(&cpuTime, NULL, NULL, NULL, NULL,
                                  vm->pid, tid) == 0)
            virTypedParamListAddULLong(params, cpuTime,
                                       VIR_DOMAIN_STATS_MIRROR_PREFIX "%zu"
                                       VIR_DOMAIN_STATS_MIRROR_SUFFIX_TIME, i);
    }

    if (haveJob)
        qemuMirrorGetHelperParams(vm, VIR_ASYNC_JOB_NONE, params,
                                  &qemuMirrorHelperParamsStats);

    /* statistics are best effort: what failed is left out, not reported */
    virResetLastError();
}


/**
 * qemuMirrorCheckShutdown:
 *
 * A confidential migration target gives up as soon as the daemon begins
 * to shut down: it neither keeps waiting for its migration helper nor
 * starts listening for the incoming migration.
 */
int
qemuMirrorCheckShutdown(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = vm->privateData;

    if (!g_atomic_int_get(&priv->driver->shuttingDown))
        return 0;

    virReportError(VIR_ERR_OPERATION_ABORTED,
                   _("the confidential migration of domain '%1$s' was aborted: libvirt is shutting down"),
                   vm->def->name);
    return -1;
}


/**
 * qemuMirrorWaitForHelper:
 * @vm: domain whose QEMU runs the migration helper (locked, in a job)
 * @asyncJob: the job
 * @timeoutMs: how long the helper may take to become ready
 * @info: filled with what the ready helper reports (its transport key)
 *
 * Waits until query-migration-helper reports 'ready'. The status is asked
 * for again on every MIGRATION_HELPER event and at least every
 * QEMU_MIRROR_HELPER_POLL_MS. Returns 0 when ready, -1 with an error when
 * the helper failed, did not become ready in time, or QEMU went away.
 */
int
qemuMirrorWaitForHelper(virDomainObj *vm,
                        virDomainAsyncJob asyncJob,
                        unsigned long long timeoutMs,
                        qemuMonitorMigrationHelperInfo *info)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    unsigned long long now;
    unsigned long long deadline;

    if (virTimeMillisNow(&now) < 0)
        return -1;
    deadline = now + timeoutMs;

    while (true) {
        int rc;

        if (!virDomainObjIsActive(vm))
            goto gone;

        if (qemuMirrorCheckShutdown(vm) < 0)
            return -1;

        if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0) {
            /* QEMU died while we waited: the domain may be on its way out
             * of the list already, and the error then names a missing
             * domain; say what happened instead */
            if (!virDomainObjIsActive(vm) || vm->removing)
                goto gone;
            return -1;
        }
        rc = qemuMonitorGetMigrationHelper(priv->mon, info);
        qemuDomainObjExitMonitor(vm);
        if (rc < 0) {
            if (!virDomainObjIsActive(vm) || vm->removing)
                goto gone;
            return -1;
        }

        if (info->status == QEMU_MONITOR_MIGRATION_HELPER_READY)
            return 0;

        if (info->status == QEMU_MONITOR_MIGRATION_HELPER_FAILED) {
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("migration helper of domain '%1$s' failed: %2$s"),
                           vm->def->name, NULLSTR_MINUS(info->error));
            return -1;
        }

        if (virTimeMillisNow(&now) < 0)
            return -1;

        if (now >= deadline) {
            virReportError(VIR_ERR_OPERATION_TIMEOUT,
                           _("migration helper of domain '%1$s' is not ready after %2$llu ms (status '%3$s')"),
                           vm->def->name, timeoutMs,
                           qemuMonitorMigrationHelperStatusTypeToString(info->status));
            return -1;
        }

        /* woken by an event, the poll interval or the deadline */
        if (virDomainObjWaitUntil(vm, MIN(deadline, now + QEMU_MIRROR_HELPER_POLL_MS)) < 0)
            return -1;
    }

 gone:
    virResetLastError();
    virReportError(VIR_ERR_OPERATION_FAILED,
                   _("QEMU of domain '%1$s' went away while waiting for its migration helper"),
                   vm->def->name);
    return -1;
}
