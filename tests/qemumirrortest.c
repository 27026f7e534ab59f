/*
 * qemumirrortest.c: the QEMU driver's handling of mirror vCPUs at start-up
 *
 * qemuMirrorSetupVcpus() runs against a test monitor that answers
 * query-mirror-vcpus as the contract in docs/kbase/confidential-migration.rst
 * says (validated against the caps_10.0.0_x86_64+amdsev-mirror schema): it
 * must accept exactly the mirror vCPUs the domain asks for, refuse any other
 * answer, and pin the threads to <mirror cpuset>. The threads get the
 * domain's vCPU bandwidth (checked with the cgroup mock).
 *
 * Also: the migration helper's state as typed parameters (statistics,
 * launch security info), best effort when QEMU cannot report it, and the
 * mirror vCPU pinning of a definition (virDomainGetMirrorVcpuInfo).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>

#include "testutils.h"
#include "testutilsqemu.h"
#include "testutilsqemuschema.h"
#include "qemumonitortestutils.h"
#include "qemu/qemu_domain.h"
#include "qemu/qemu_mirror.h"
#include "qemu/qemu_process.h"
#include "datatypes.h"
#include "domain_event.h"
#include "vircgroup.h"
#include "virfile.h"
#include "domain_driver.h"
#include "virprocess.h"
#include "virthread.h"

#define VIR_FROM_THIS VIR_FROM_NONE

static virQEMUDriver driver;
static GHashTable *schema;


static virDomainObj *
testMirrorDomain(unsigned int guestVcpus,
                 unsigned int mirrorVcpus,
                 virBitmap *cpuset)
{
    g_autoptr(virDomainObj) vm = NULL;

    if (!(vm = virDomainObjNew(driver.xmlopt)) ||
        !(vm->def = virDomainDefNew(driver.xmlopt)))
        return NULL;

    vm->def->name = g_strdup("guest");

    if (virDomainDefSetVcpusMax(vm->def, guestVcpus, driver.xmlopt) < 0 ||
        virDomainDefSetVcpus(vm->def, guestVcpus) < 0)
        return NULL;

    if (mirrorVcpus) {
        vm->def->mirror = g_new0(virDomainMirrorDef, 1);
        vm->def->mirror->vcpus = mirrorVcpus;
        if (cpuset)
            vm->def->mirror->cpuset = virBitmapNewCopy(cpuset);
    }

    return g_steal_pointer(&vm);
}


/* Attach a test monitor to @vm that answers @command with @replies, in
 * order; it fails on any other command and on replies left unused. */
static qemuMonitorTest *
testMirrorMonitorAttach(virDomainObj *vm,
                        const char *command,
                        const char *const *replies,
                        size_t nreplies)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    g_autoptr(qemuMonitorTest) test = NULL;
    size_t i;

    if (!(test = qemuMonitorTestNew(driver.xmlopt, vm, NULL, schema)))
        return NULL;

    for (i = 0; i < nreplies; i++) {
        if (qemuMonitorTestAddItem(test, command, replies[i]) < 0)
            return NULL;
    }

    priv->mon = qemuMonitorTestGetMonitor(test);
    virObjectUnlock(priv->mon);
    return g_steal_pointer(&test);
}


static void
testMirrorMonitorDetach(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = vm->privateData;

    virObjectLock(priv->mon);
    priv->mon = NULL;
}


/* Compare the result @rc of the code under test with @error: NULL when it
 * must succeed, else the exact message of the expected failure. */
static int
testMirrorCheckResult(int rc,
                      const char *error)
{
    if (!error) {
        if (rc < 0) {
            VIR_TEST_VERBOSE("failed: %s", virGetLastErrorMessage());
            return -1;
        }
        return 0;
    }

    if (rc == 0) {
        VIR_TEST_VERBOSE("succeeded, expected '%s'", error);
        return -1;
    }

    if (STRNEQ(virGetLastErrorMessage(), error)) {
        VIR_TEST_VERBOSE("expected '%s', got '%s'", error,
                         virGetLastErrorMessage());
        return -1;
    }
    virResetLastError();
    return 0;
}


/* Run qemuMirrorSetupVcpus() on @vm with @reply as the answer to
 * query-mirror-vcpus (NULL: QEMU must not be asked at all). */
static int
testMirrorRunSetup(virDomainObj *vm,
                   const char *reply,
                   const char *error)
{
    g_autoptr(qemuMonitorTest) test = NULL;
    int rc;

    if (!(test = testMirrorMonitorAttach(vm, "query-mirror-vcpus",
                                         &reply, reply ? 1 : 0)))
        return -1;

    rc = qemuMirrorSetupVcpus(vm, VIR_ASYNC_JOB_NONE);
    testMirrorMonitorDetach(vm);

    return testMirrorCheckResult(rc, error);
}


struct testRefuseData {
    unsigned int guestVcpus;
    unsigned int mirrorVcpus;
    const char *reply;
    const char *error;
};


static int
testMirrorSetupRefused(const void *opaque)
{
    const struct testRefuseData *data = opaque;
    g_autoptr(virDomainObj) vm = NULL;

    if (!(vm = testMirrorDomain(data->guestVcpus, data->mirrorVcpus, NULL)))
        return -1;

    return testMirrorRunSetup(vm, data->reply, data->error);
}


static int
testMirrorSetupNoMirror(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virDomainObj) vm = testMirrorDomain(2, 0, NULL);

    /* the test monitor fails on any command it was not given */
    if (!vm)
        return -1;
    return testMirrorRunSetup(vm, NULL, NULL);
}


static int
testMirrorSetupNoCpuset(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virDomainObj) vm = testMirrorDomain(2, 2, NULL);

    if (!vm)
        return -1;
    return testMirrorRunSetup(vm, "{\"return\": ["
                                  " {\"cpu-index\": 2, \"thread-id\": 4242},"
                                  " {\"cpu-index\": 3, \"thread-id\": 4243}]}",
                              NULL);
}


/* A real thread (this one) stands in for the mirror vCPU thread, so that
 * the pinning is checked with the kernel. */
static int
testMirrorSetupPins(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virBitmap) before = NULL;
    g_autoptr(virBitmap) want = NULL;
    g_autoptr(virBitmap) after = NULL;
    g_autoptr(virDomainObj) vm = NULL;
    g_autofree char *reply = NULL;
    pid_t self = virThreadSelfID();
    ssize_t cpu;
    int ret = -1;

    if (!(before = virProcessGetAffinity(self)))
        return -1;

    /* pin to one CPU of those this thread may use now */
    if ((cpu = virBitmapNextSetBit(before, -1)) < 0)
        return -1;
    want = virBitmapNew(virBitmapSize(before));
    ignore_value(virBitmapSetBit(want, cpu));

    if (!(vm = testMirrorDomain(3, 1, want)))
        return -1;

    reply = g_strdup_printf("{\"return\": [{\"cpu-index\": 3, \"thread-id\": %d}]}",
                            (int)self);

    if (testMirrorRunSetup(vm, reply, NULL) < 0)
        goto cleanup;

    if (!(after = virProcessGetAffinity(self)))
        goto cleanup;

    if (virBitmapCountBits(after) != 1 || !virBitmapIsBitSet(after, cpu)) {
        g_autofree char *str = virBitmapFormat(after);

        VIR_TEST_VERBOSE("thread affinity is '%s', expected CPU %zd", str, cpu);
        goto cleanup;
    }

    ret = 0;

 cleanup:
    if (virProcessSetAffinity(self, before, false) < 0)
        ret = -1;
    return ret;
}


/* <mirrorpin> of a mirror vCPU wins over <mirror cpuset>, and the thread
 * is recorded for the status XML */
static int
testMirrorSetupPinOverrides(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virBitmap) before = NULL;
    g_autoptr(virBitmap) pinned = NULL;
    g_autoptr(virBitmap) other = NULL;
    g_autoptr(virBitmap) after = NULL;
    g_autoptr(virDomainObj) vm = NULL;
    g_autofree char *reply = NULL;
    virDomainMirrorPinDef *pin;
    qemuDomainObjPrivate *priv;
    pid_t self = virThreadSelfID();
    ssize_t first;
    ssize_t second;
    int ret = -1;

    if (!(before = virProcessGetAffinity(self)))
        return -1;

    /* two CPUs this thread may use now: <mirror cpuset> names one, the
     * mirrorpin the other */
    if ((first = virBitmapNextSetBit(before, -1)) < 0 ||
        (second = virBitmapNextSetBit(before, first)) < 0) {
        VIR_TEST_VERBOSE("needs two CPUs");
        return EXIT_AM_SKIP;
    }
    other = virBitmapNew(virBitmapSize(before));
    ignore_value(virBitmapSetBit(other, first));
    pinned = virBitmapNew(virBitmapSize(before));
    ignore_value(virBitmapSetBit(pinned, second));

    if (!(vm = testMirrorDomain(2, 1, other)))
        return -1;
    pin = g_new0(virDomainMirrorPinDef, 1);
    pin->vcpu = 0;
    pin->cpumask = virBitmapNewCopy(pinned);
    VIR_APPEND_ELEMENT(vm->def->mirror->pins, vm->def->mirror->npins, pin);
    priv = vm->privateData;

    reply = g_strdup_printf("{\"return\": [{\"cpu-index\": 2, \"thread-id\": %d}]}",
                            (int)self);

    if (testMirrorRunSetup(vm, reply, NULL) < 0)
        goto cleanup;

    if (!(after = virProcessGetAffinity(self)))
        goto cleanup;

    if (!virBitmapEqual(after, pinned)) {
        g_autofree char *str = virBitmapFormat(after);

        VIR_TEST_VERBOSE("thread affinity is '%s', expected CPU %zd", str, second);
        goto cleanup;
    }

    if (priv->nmirrorVcpuPids != 1 || priv->mirrorVcpuPids[0] != self) {
        VIR_TEST_VERBOSE("recorded %zu threads", priv->nmirrorVcpuPids);
        goto cleanup;
    }

    ret = 0;

 cleanup:
    if (virProcessSetAffinity(self, before, false) < 0)
        ret = -1;
    return ret;
}


/* the mirror vCPU threads in the status XML, and back */
static int
testMirrorStatusXML(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virDomainObj) vm = testMirrorDomain(2, 2, NULL);
    g_autoptr(virDomainObj) back = testMirrorDomain(2, 2, NULL);
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctxt = NULL;
    g_autofree char *xml = NULL;
    qemuDomainObjPrivate *priv;
    qemuDomainObjPrivate *backPriv;
    const char *expect =
        "<domstatus>\n"
        "  <mirrorvcpus>\n"
        "    <vcpu id='0' pid='4242'/>\n"
        "    <vcpu id='1' pid='4243'/>\n"
        "  </mirrorvcpus>\n"
        "</domstatus>\n";

    if (!vm || !back)
        return -1;
    priv = vm->privateData;
    backPriv = back->privateData;

    priv->mirrorVcpuPids = g_new0(pid_t, 2);
    priv->mirrorVcpuPids[0] = 4242;
    priv->mirrorVcpuPids[1] = 4243;
    priv->nmirrorVcpuPids = 2;

    virBufferAddLit(&buf, "<domstatus>\n");
    virBufferAdjustIndent(&buf, 2);
    qemuMirrorFormatStatus(&buf, vm);
    virBufferAdjustIndent(&buf, -2);
    virBufferAddLit(&buf, "</domstatus>\n");
    xml = virBufferContentAndReset(&buf);

    if (STRNEQ(xml, expect)) {
        VIR_TEST_VERBOSE("formatted:\n%s", xml);
        return -1;
    }

    if (!(doc = virXMLParseStringCtxt(xml, "(status)", &ctxt)) ||
        qemuMirrorParseStatus(ctxt, back) < 0)
        return -1;

    if (backPriv->nmirrorVcpuPids != 2 || backPriv->mirrorVcpuPids[0] != 4242 ||
        backPriv->mirrorVcpuPids[1] != 4243) {
        VIR_TEST_VERBOSE("parsed %zu threads", backPriv->nmirrorVcpuPids);
        return -1;
    }
    g_clear_pointer(&doc, xmlFreeDoc);
    g_clear_pointer(&ctxt, xmlXPathFreeContext);

    /* an entry out of order is refused rather than pinned */
    if (!(doc = virXMLParseStringCtxt("<domstatus><mirrorvcpus>"
                                      "<vcpu id='1' pid='4243'/>"
                                      "</mirrorvcpus></domstatus>",
                                      "(status)", &ctxt)))
        return -1;
    return testMirrorCheckResult(qemuMirrorParseStatus(ctxt, back),
                                 "internal error: invalid mirror vCPU 1 (pid 4243) in the status XML");
}


struct testWaitData {
    const char *replies[3];
    unsigned long long timeoutMs;
    bool active;
    bool key; /* the transport key the ready helper must be found with */
    const char *error; /* NULL: the helper must be found ready */
};


static int
testMirrorWaitForHelper(const void *opaque)
{
    const struct testWaitData *data = opaque;
    g_autoptr(virDomainObj) vm = testMirrorDomain(2, 1, NULL);
    g_autoptr(qemuMonitorTest) test = NULL;
    size_t nreplies = 0;
    g_auto(qemuMonitorMigrationHelperInfo) info = { 0 };
    int rc;

    if (!vm)
        return -1;

    info.transportKey = !data->key;

    while (nreplies < G_N_ELEMENTS(data->replies) && data->replies[nreplies])
        nreplies++;

    if (!(test = testMirrorMonitorAttach(vm, "query-migration-helper",
                                         data->replies, nreplies)))
        return -1;

    /* QEMU went away (the monitor attaches only to a running domain) */
    if (!data->active)
        vm->def->id = -1;

    rc = qemuMirrorWaitForHelper(vm, VIR_ASYNC_JOB_NONE, data->timeoutMs, &info);
    testMirrorMonitorDetach(vm);

    if (testMirrorCheckResult(rc, data->error) < 0)
        return -1;

    if (rc == 0 && info.transportKey != data->key) {
        VIR_TEST_VERBOSE("transport key reported as %d, expected %d",
                         info.transportKey, data->key);
        return -1;
    }
    return 0;
}


/* The cpu.max of mirror vCPU @vcpu's cgroup (below @parent) must hold
 * @period and @quota. */
static int
testMirrorCheckBandwidth(virCgroup *parent,
                         unsigned int vcpu,
                         unsigned long long period,
                         long long quota)
{
    g_autoptr(virCgroup) cgroup = NULL;
    unsigned long long gotPeriod;
    long long gotQuota;

    if (virCgroupNewThread(parent, VIR_CGROUP_THREAD_MIRROR, vcpu, false,
                           &cgroup) < 0 ||
        virCgroupGetCpuCfsPeriod(cgroup, &gotPeriod) < 0 ||
        virCgroupGetCpuCfsQuota(cgroup, &gotQuota) < 0)
        return -1;

    if (gotPeriod != period || gotQuota != quota) {
        VIR_TEST_VERBOSE("mirror%u: period %llu quota %lld, expected %llu %lld",
                         vcpu, gotPeriod, gotQuota, period, quota);
        return -1;
    }
    return 0;
}


/* The cgroup mock makes neither the cgroup the test's placement names
 * (cpu,cpuacct:/system) nor the "tasks" files: the thread cgroup of
 * mirror vCPU 0 with them, in each controller it uses. */
static int
testMirrorFakeCgroup(void)
{
    const char *const dirs[] = {
        "/not/really/sys/fs/cgroup/cpu,cpuacct/system",
        "/not/really/sys/fs/cgroup/cpu,cpuacct/system/mirror0",
        "/not/really/sys/fs/cgroup/cpuset/mirror0",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(dirs); i++) {
        g_autofree char *tasks = g_strdup_printf("%s/tasks", dirs[i]);

        if (g_mkdir(dirs[i], 0755) < 0 ||
            virFileWriteStr(tasks, "", 0600) < 0) {
            VIR_TEST_VERBOSE("cannot make %s: %s", dirs[i], g_strerror(errno));
            return -1;
        }
    }
    return 0;
}


/* The domain's vCPU bandwidth (<cputune><period>/<quota>) applies to its
 * mirror vCPUs: at start-up, when one is pinned again, and when the vCPU
 * bandwidth of the running domain changes. The cgroup mock (cgroup v1, whose
 * period and quota are files of their own) stands in for the host's
 * cgroups, this thread for the mirror vCPU. */
static int
testMirrorBandwidth(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virDomainObj) vm = testMirrorDomain(2, 1, NULL);
    g_autoptr(virBitmap) affinity = NULL;
    g_autoptr(virBitmap) pin = NULL;
    g_autofree char *fakerootdir = NULL;
    qemuDomainObjPrivate *priv;
    pid_t self = virThreadSelfID();
    int ret = -1;

    if (!vm || !(affinity = virProcessGetAffinity(self)))
        return -1;
    priv = vm->privateData;

    if (!(fakerootdir = virTestFakeRootDirInit()))
        return -1;
    g_setenv("VIR_CGROUP_MOCK_MODE", "legacy", TRUE);
    g_setenv("VIR_CGROUP_MOCK_FILENAME", "systemd", TRUE);

    if (virCgroupNewSelf(&priv->cgroup) < 0 ||
        testMirrorFakeCgroup() < 0)
        goto cleanup;

    vm->def->cputune.period = 100000;
    vm->def->cputune.quota = 50000;
    priv->mirrorVcpuPids = g_new0(pid_t, 1);
    priv->mirrorVcpuPids[0] = self;
    priv->nmirrorVcpuPids = 1;

    if (qemuProcessSetupMirrorVcpu(vm, 0, self) < 0 ||
        testMirrorCheckBandwidth(priv->cgroup, 0, 100000, 50000) < 0)
        goto cleanup;

    /* pinned again: the bandwidth is set again, not lost */
    if (virFileWriteStr("/not/really/sys/fs/cgroup/cpu,cpuacct/system/mirror0/cpu.cfs_quota_us",
                        "-1\n", 0) < 0)
        goto cleanup;
    pin = virBitmapNewCopy(affinity);
    if (qemuMirrorPinVcpuLive(vm, 0, pin) < 0 ||
        testMirrorCheckBandwidth(priv->cgroup, 0, 100000, 50000) < 0)
        goto cleanup;

    /* virDomainSetSchedulerParameters: vcpu_period, then vcpu_quota */
    if (qemuMirrorSetVcpusBWLive(vm, priv->cgroup, 200000, 0) < 0 ||
        qemuMirrorSetVcpusBWLive(vm, priv->cgroup, 0, 20000) < 0 ||
        testMirrorCheckBandwidth(priv->cgroup, 0, 200000, 20000) < 0)
        goto cleanup;

    ret = 0;

 cleanup:
    if (virProcessSetAffinity(self, affinity, false) < 0)
        ret = -1;
    g_clear_pointer(&priv->cgroup, virCgroupFree);
    g_unsetenv("VIR_CGROUP_MOCK_MODE");
    g_unsetenv("VIR_CGROUP_MOCK_FILENAME");
    virTestFakeRootDirCleanup(fakerootdir);
    return ret;
}


/* A daemon that begins to shut down ends the wait at once, without asking
 * QEMU (the test monitor fails on any command it was not given). */
static int
testMirrorWaitShutdown(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virDomainObj) vm = testMirrorDomain(2, 1, NULL);
    g_autoptr(qemuMonitorTest) test = NULL;
    g_auto(qemuMonitorMigrationHelperInfo) info = { 0 };
    int rc;

    if (!vm ||
        !(test = testMirrorMonitorAttach(vm, "query-migration-helper", NULL, 0)))
        return -1;

    g_atomic_int_set(&driver.shuttingDown, 1);
    rc = qemuMirrorWaitForHelper(vm, VIR_ASYNC_JOB_NONE, 5000, &info);
    g_atomic_int_set(&driver.shuttingDown, 0);
    testMirrorMonitorDetach(vm);

    return testMirrorCheckResult(rc,
                                 "operation aborted: the confidential migration of domain 'guest' was aborted: libvirt is shutting down");
}


static void
testMirrorTick(int timer G_GNUC_UNUSED,
               void *opaque G_GNUC_UNUSED)
{
}


static void
testMirrorHelperEventCallback(virConnectPtr conn G_GNUC_UNUSED,
                              virDomainPtr dom G_GNUC_UNUSED,
                              virTypedParameterPtr params,
                              int nparams,
                              void *opaque)
{
    char **status = opaque;
    const char *value = NULL;

    if (virTypedParamsGetString(params, nparams,
                                VIR_DOMAIN_MIGRATION_HELPER_STATUS, &value) == 1)
        *status = g_strdup(value);
    else
        *status = g_strdup("(no status)");
}


/* A MIGRATION_HELPER event from QEMU reaches the clients registered for
 * VIR_DOMAIN_EVENT_ID_MIGRATION_HELPER through the driver's event state. */
static int
testMirrorHelperEvent(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virDomainObj) vm = testMirrorDomain(2, 1, NULL);
    g_autoptr(virConnect) conn = virGetConnect();
    g_autofree char *status = NULL;
    qemuMonitorMigrationHelperInfo info = {
        .status = QEMU_MONITOR_MIGRATION_HELPER_READY,
        .transportKey = true,
    };
    int callbackID = -1;
    int tick = -1;
    size_t i;
    int ret = -1;

    if (!vm || !conn)
        return -1;
    vm->def->id = 1;

    if (virDomainEventStateRegisterID(conn, driver.domainEventState, NULL,
                                      VIR_DOMAIN_EVENT_ID_MIGRATION_HELPER,
                                      VIR_DOMAIN_EVENT_CALLBACK(testMirrorHelperEventCallback),
                                      &status, NULL, &callbackID) < 0)
        return -1;

    /* the monitor calls the handler with the domain unlocked */
    virObjectUnlock(vm);
    qemuMirrorHandleMigrationHelper(NULL, vm, &info);
    virObjectLock(vm);

    /* the queue is flushed from the event loop; the tick only bounds the
     * wait when no event comes (100 ticks of 50 ms) */
    if ((tick = virEventAddTimeout(50, testMirrorTick, NULL, NULL)) < 0)
        goto cleanup;
    for (i = 0; i < 100 && !status; i++) {
        if (virEventRunDefaultImpl() < 0)
            goto cleanup;
    }

    if (STRNEQ_NULLABLE(status, "ready")) {
        VIR_TEST_VERBOSE("the event gave status '%s', expected 'ready'", NULLSTR(status));
        goto cleanup;
    }

    ret = 0;

 cleanup:
    if (tick >= 0)
        virEventRemoveTimeout(tick);
    virObjectEventStateDeregisterID(conn, driver.domainEventState, callbackID, true);
    return ret;
}


static int
testMirrorCheckVcpuChange(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virDomainObj) plain = testMirrorDomain(2, 0, NULL);
    g_autoptr(virDomainObj) mirror = testMirrorDomain(2, 1, NULL);

    if (!plain || !mirror)
        return -1;

    if (qemuMirrorCheckVcpuChange(NULL) < 0 ||
        qemuMirrorCheckVcpuChange(plain->def) < 0)
        return -1;

    if (qemuMirrorCheckVcpuChange(mirror->def) == 0) {
        VIR_TEST_VERBOSE("vCPU change of a mirror domain was allowed");
        return -1;
    }

    if (STRNEQ(virGetLastErrorMessage(),
               "Operation not supported: changing the vCPUs of a domain with mirror vCPUs (element 'mirror') is not supported"))
        return -1;
    virResetLastError();
    return 0;
}


struct testHelperParamsData {
    const char *reply; /* to query-migration-helper */
    const qemuMirrorHelperParamNames *names;
    const char *expected; /* the parameters, one "name=value" line each */
};


/* The migration helper's state as typed parameters, under the names of the
 * caller (launch security info, statistics); a failed query adds nothing
 * and leaves no error, so that the caller returns what else it has. */
static int
testMirrorHelperParams(const void *opaque)
{
    const struct testHelperParamsData *data = opaque;
    g_autoptr(virDomainObj) vm = testMirrorDomain(2, 1, NULL);
    g_autoptr(qemuMonitorTest) test = NULL;
    g_autoptr(virTypedParamList) list = virTypedParamListNew();
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    g_autofree char *actual = NULL;
    virTypedParameterPtr par = NULL;
    size_t npar = 0;
    size_t i;

    if (!vm)
        return -1;

    if (!(test = testMirrorMonitorAttach(vm, "query-migration-helper",
                                         &data->reply, 1)))
        return -1;

    qemuMirrorGetHelperParams(vm, VIR_ASYNC_JOB_NONE, list, data->names);
    testMirrorMonitorDetach(vm);

    if (virGetLastError()) {
        VIR_TEST_VERBOSE("error left set: %s", virGetLastErrorMessage());
        return -1;
    }

    if (virTypedParamListFetch(list, &par, &npar) < 0)
        return -1;

    for (i = 0; i < npar; i++) {
        g_autofree char *value = virTypedParameterToString(&par[i]);

        virBufferAsprintf(&buf, "%s=%s\n", par[i].field, value);
    }
    actual = virBufferContentAndReset(&buf);

    if (STRNEQ(NULLSTR_EMPTY(actual), data->expected)) {
        VIR_TEST_VERBOSE("expected:\n%s\ngot:\n%s", data->expected,
                         NULLSTR_EMPTY(actual));
        return -1;
    }
    return 0;
}


struct testVcpusConfigData {
    unsigned int mirrorVcpus; /* 0: no <mirror/> */
    const char *cpuset; /* <mirror cpuset>, or NULL */
    const char *pin1; /* <mirrorpin vcpu='1'>, or NULL */
    const char *cpumask; /* <vcpu cpuset>, or NULL */
    const char *expected; /* "vcpu:cpus" of each, space separated */
};


/* virDomainGetMirrorVcpuInfo of a persistent definition: each mirror
 * vCPU's <mirrorpin>, else <mirror cpuset>, else where the domain's vCPUs
 * run (<vcpu cpuset>, else every host CPU: 8 here) */
static int
testMirrorVcpusConfig(const void *opaque)
{
    const struct testVcpusConfigData *data = opaque;
    g_autoptr(virBitmap) cpuset = NULL;
    g_autoptr(virDomainObj) vm = NULL;
    g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *actual = NULL;
    virDomainMirrorVcpuInfoPtr *info = NULL;
    int n;
    size_t i;
    int ret = -1;

    if (data->cpuset && !(cpuset = virBitmapParseUnlimited(data->cpuset)))
        return -1;

    if (!(vm = testMirrorDomain(2, data->mirrorVcpus, cpuset)))
        return -1;

    if (data->pin1) {
        g_autoptr(virBitmap) pin = virBitmapParseUnlimited(data->pin1);

        if (!pin || virDomainMirrorDefSetPin(vm->def->mirror, 1, pin) < 0)
            return -1;
    }

    if (data->cpumask &&
        !(vm->def->cpumask = virBitmapParseUnlimited(data->cpumask)))
        return -1;

    if ((n = virDomainDriverGetMirrorVcpusConfig(vm->def, &info, 8)) < 0)
        return -1;

    for (i = 0; i < n; i++) {
        g_autofree char *cpus = virBitmapDataFormat(info[i]->cpumap,
                                                    info[i]->cpumaplen);

        g_ptr_array_add(got, g_strdup_printf("%u:%s", info[i]->vcpu, cpus));
    }
    g_ptr_array_add(got, NULL);
    actual = g_strjoinv(" ", (char **)got->pdata);

    if (STRNEQ(actual, data->expected)) {
        VIR_TEST_VERBOSE("expected '%s', got '%s'", data->expected, actual);
        goto cleanup;
    }

    if (n == 0 && info) {
        VIR_TEST_VERBOSE("info returned without mirror vCPUs");
        goto cleanup;
    }
    ret = 0;

 cleanup:
    for (i = 0; i < n; i++)
        virDomainMirrorVcpuInfoFree(info[i]);
    g_free(info);
    return ret;
}


static int
mymain(void)
{
    g_autofree char *replies = NULL;
    int ret = 0;

    if (qemuTestDriverInit(&driver) < 0)
        return EXIT_FAILURE;

    replies = g_strdup_printf("%s/qemucapabilitiesdata/caps_10.0.0_x86_64+amdsev-mirror.replies",
                              abs_srcdir);
    if (!(schema = testQEMUSchemaLoad(replies))) {
        ret = -1;
        goto cleanup;
    }

    virEventRegisterDefaultImpl();

#define DO_TEST_REFUSED(name, guest, mirror, reply, error) \
    do { \
        const struct testRefuseData data = { guest, mirror, reply, error }; \
        if (virTestRun("mirror setup refuses " name, \
                       testMirrorSetupRefused, &data) < 0) \
            ret = -1; \
    } while (0)

    if (virTestRun("mirror setup without mirror", testMirrorSetupNoMirror, NULL) < 0)
        ret = -1;
    if (virTestRun("mirror setup without cpuset", testMirrorSetupNoCpuset, NULL) < 0)
        ret = -1;
    if (virTestRun("mirror setup pins threads", testMirrorSetupPins, NULL) < 0)
        ret = -1;
    if (virTestRun("mirror setup: mirrorpin wins over cpuset",
                   testMirrorSetupPinOverrides, NULL) < 0)
        ret = -1;
    if (virTestRun("mirror vCPU threads in the status XML", testMirrorStatusXML, NULL) < 0)
        ret = -1;

    DO_TEST_REFUSED("too few", 2, 2,
                    "{\"return\": [{\"cpu-index\": 2, \"thread-id\": 4242}]}",
                    "internal error: QEMU reports 1 mirror vCPUs, but the domain has 2");
    DO_TEST_REFUSED("too many", 2, 1,
                    "{\"return\": [{\"cpu-index\": 2, \"thread-id\": 4242},"
                    " {\"cpu-index\": 3, \"thread-id\": 4243}]}",
                    "internal error: QEMU reports 2 mirror vCPUs, but the domain has 1");
    DO_TEST_REFUSED("none", 2, 1, "{\"return\": []}",
                    "internal error: QEMU reports 0 mirror vCPUs, but the domain has 1");
    DO_TEST_REFUSED("a guest vCPU index", 2, 1,
                    "{\"return\": [{\"cpu-index\": 1, \"thread-id\": 4242}]}",
                    "internal error: QEMU reports mirror vCPU 0 at index 1 instead of 2");
    DO_TEST_REFUSED("an error", 2, 1,
                    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no mirror VM\"}}",
                    "internal error: unable to execute QEMU command 'query-mirror-vcpus': no mirror VM");

    if (virTestRun("mirror vCPU change refused", testMirrorCheckVcpuChange, NULL) < 0)
        ret = -1;
    if (virTestRun("mirror vCPUs get the vCPU bandwidth", testMirrorBandwidth, NULL) < 0)
        ret = -1;

#define BOOTING "{\"return\": {\"status\": \"booting\"}}"
#define READY "{\"return\": {\"status\": \"ready\"}}"
#define READY_KEY "{\"return\": {\"status\": \"ready\", \"transport-key\": true}}"
#define DO_TEST_WAIT(name, timeout, active, key, error, ...) \
    do { \
        const struct testWaitData data = { { __VA_ARGS__ }, timeout, active, key, error }; \
        if (virTestRun("wait for helper: " name, testMirrorWaitForHelper, &data) < 0) \
            ret = -1; \
    } while (0)

    DO_TEST_WAIT("ready", 5000, true, false, NULL, READY);
    DO_TEST_WAIT("ready with a key", 5000, true, true, NULL, READY_KEY);
    /* no event arrives in this test: the poll finds the helper ready */
    DO_TEST_WAIT("ready after a poll", 5000, true, true, NULL, BOOTING, BOOTING, READY_KEY);
    DO_TEST_WAIT("failed", 5000, true, false,
                 "operation failed: migration helper of domain 'guest' failed: no helper in firmware",
                 "{\"return\": {\"status\": \"failed\", \"error\": \"no helper in firmware\"}}");
    /* asked at the start and once more at the deadline */
    DO_TEST_WAIT("timeout", 200, true, false,
                 "Timed out during operation: migration helper of domain 'guest' is not ready after 200 ms (status 'booting')",
                 BOOTING, BOOTING);
    DO_TEST_WAIT("QEMU gone", 5000, false, false,
                 "operation failed: QEMU of domain 'guest' went away while waiting for its migration helper",
                 NULL);
    if (virTestRun("wait for helper: libvirt shutting down", testMirrorWaitShutdown, NULL) < 0)
        ret = -1;
    if (virTestRun("migration helper event reaches clients", testMirrorHelperEvent, NULL) < 0)
        ret = -1;

#define HELPER_KEY_ID "{\"return\": {\"status\": \"ready\", \"transport-key\": true, " \
    "\"transport-key-id\": \"owner-key-1\"}}"
#define HELPER_FAILED "{\"return\": {\"status\": \"failed\", \"error\": \"no helper\"}}"
#define HELPER_QMP_ERROR "{\"error\": {\"class\": \"GenericError\", \"desc\": \"helper gone\"}}"
#define DO_TEST_HELPER_PARAMS(name, reply, names, expected) \
    do { \
        const struct testHelperParamsData data = { reply, &names, expected }; \
        if (virTestRun("helper params: " name, testMirrorHelperParams, &data) < 0) \
            ret = -1; \
    } while (0)

    DO_TEST_HELPER_PARAMS("statistics", HELPER_KEY_ID, qemuMirrorHelperParamsStats,
                          "mirror.helper.status=ready\n"
                          "mirror.helper.transport_key=1\n"
                          "mirror.helper.transport_key_id=owner-key-1\n");
    DO_TEST_HELPER_PARAMS("statistics, failed", HELPER_FAILED, qemuMirrorHelperParamsStats,
                          "mirror.helper.status=failed\n"
                          "mirror.helper.transport_key=0\n"
                          "mirror.helper.error=no helper\n");
    DO_TEST_HELPER_PARAMS("launch security", HELPER_KEY_ID,
                          qemuMirrorHelperParamsLaunchSecurity,
                          "migration_helper.status=ready\n"
                          "migration_helper.transport_key=1\n"
                          "migration_helper.transport_key_id=owner-key-1\n");
    DO_TEST_HELPER_PARAMS("query fails", HELPER_QMP_ERROR,
                          qemuMirrorHelperParamsLaunchSecurity, "");
    DO_TEST_HELPER_PARAMS("statistics, query fails", HELPER_QMP_ERROR,
                          qemuMirrorHelperParamsStats, "");

#define DO_TEST_VCPUS_CONFIG(name, vcpus, cpuset, pin1, cpumask, expected) \
    do { \
        const struct testVcpusConfigData data = { vcpus, cpuset, pin1, cpumask, expected }; \
        if (virTestRun("mirror vCPU info of the definition: " name, \
                       testMirrorVcpusConfig, &data) < 0) \
            ret = -1; \
    } while (0)

    DO_TEST_VCPUS_CONFIG("no mirror", 0, NULL, NULL, "1", "");
    DO_TEST_VCPUS_CONFIG("every host CPU", 2, NULL, NULL, NULL, "0:0-7 1:0-7");
    DO_TEST_VCPUS_CONFIG("domain cpuset", 2, NULL, NULL, "1,4", "0:1,4 1:1,4");
    DO_TEST_VCPUS_CONFIG("mirror cpuset", 2, "2-3", NULL, "1,4", "0:2-3 1:2-3");
    DO_TEST_VCPUS_CONFIG("mirrorpin", 3, "2-3", "5", "1,4", "0:2-3 1:5 2:2-3");
    DO_TEST_VCPUS_CONFIG("mirrorpin without cpuset", 2, NULL, "6", NULL, "0:0-7 1:6");

 cleanup:
    g_clear_pointer(&schema, g_hash_table_unref);
    qemuTestDriverFree(&driver);
    return ret == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

VIR_TEST_MAIN_PRELOAD(mymain, VIR_TEST_MOCK("vircgroup"))
