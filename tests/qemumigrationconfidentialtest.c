/*
 * qemumigrationconfidentialtest.c: which migrations of which guests libvirt
 * allows with and without VIR_MIGRATE_CONFIDENTIAL, and what it says when it
 * refuses; what it refuses an SEV guest outside a confidential migration
 * (save, snapshots with memory, dumps, memory peeks, pausing a confidential
 * migration's source); the checks of the migration cookie on both hosts;
 * and the target's Prepare steps and the source's helper check against a
 * test monitor whose replies are validated against the
 * caps_10.0.0_x86_64+amdsev-mirror schema
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>

#include "testutils.h"
#include "testutilsqemu.h"
#include "testutilsqemuschema.h"
#include "qemumonitortestutils.h"
#include "qemu/qemu_domain.h"
#include "qemu/qemu_migration.h"
#include "qemu/qemu_migration_confidential.h"
#include "qemu/qemu_migration_params.h"
#include "qemu/qemu_mirror.h"

#define VIR_FROM_THIS VIR_FROM_NONE

static virQEMUDriver driver;
static GHashTable *schema;

typedef enum {
    GUEST_PLAIN,
    GUEST_SEV,
    GUEST_SEV_MIRROR,
    GUEST_SEV_SNP,
    GUEST_SEV_ES_MIRROR,     /* policy 0x5: SEV-ES */
    GUEST_SEV_NOSEND_MIRROR, /* policy 0x9: NOSEND */
} testGuest;

typedef enum {
    QEMU_MIRROR,    /* QEMU with the whole confidential migration interface */
    QEMU_PARTIAL,   /* QEMU that lacks start-migrate-incoming */
    QEMU_NO_GUEST_ASSISTED, /* QEMU without the guest-assisted capability */
    QEMU_NONE,      /* no capabilities known */
} testQemu;

struct testData {
    const char *name;
    testGuest guest;
    bool running;
    testQemu qemu;
    unsigned int flags;
    const char *error; /* NULL: allowed */
    bool tlsOptional;  /* qemu.conf: mirror_migration_tls = 0 */
};


static virDomainObj *
testDomain(const struct testData *data)
{
    g_autoptr(virDomainObj) vm = NULL;
    qemuDomainObjPrivate *priv;

    if (!(vm = virDomainObjNew(driver.xmlopt)) ||
        !(vm->def = virDomainDefNew(driver.xmlopt)))
        return NULL;

    vm->def->name = g_strdup("guest");
    vm->def->emulator = g_strdup("/usr/bin/qemu-system-x86_64");

    if (data->guest != GUEST_PLAIN) {
        vm->def->sec = g_new0(virDomainSecDef, 1);
        vm->def->sec->sectype = data->guest == GUEST_SEV_SNP ?
            VIR_DOMAIN_LAUNCH_SECURITY_SEV_SNP : VIR_DOMAIN_LAUNCH_SECURITY_SEV;
        if (data->guest != GUEST_SEV_SNP)
            vm->def->sec->data.sev.policy = 0x1;
    }
    if (data->guest == GUEST_SEV_ES_MIRROR)
        vm->def->sec->data.sev.policy = 0x5;
    if (data->guest == GUEST_SEV_NOSEND_MIRROR)
        vm->def->sec->data.sev.policy = 0x9;
    if (data->guest == GUEST_SEV_MIRROR ||
        data->guest == GUEST_SEV_ES_MIRROR ||
        data->guest == GUEST_SEV_NOSEND_MIRROR) {
        vm->def->mirror = g_new0(virDomainMirrorDef, 1);
        vm->def->mirror->vcpus = 1;
    }

    if (data->running) {
        vm->def->id = 1;
        virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_BOOTED);
    } else {
        vm->def->id = -1;
        virDomainObjSetState(vm, VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_SHUTDOWN);
    }

    priv = vm->privateData;
    if (data->qemu != QEMU_NONE) {
        priv->qemuCaps = virQEMUCapsNew();
        virQEMUCapsSet(priv->qemuCaps, QEMU_CAPS_SEV_GUEST);
        virQEMUCapsSet(priv->qemuCaps, QEMU_CAPS_SMP_MIRROR_VCPUS);
        virQEMUCapsSet(priv->qemuCaps, QEMU_CAPS_QUERY_MIRROR_VCPUS);
        virQEMUCapsSet(priv->qemuCaps, QEMU_CAPS_MIGRATION_HELPER);
        if (data->qemu != QEMU_PARTIAL)
            virQEMUCapsSet(priv->qemuCaps, QEMU_CAPS_START_MIGRATE_INCOMING);
        if (data->qemu != QEMU_NO_GUEST_ASSISTED)
            virQEMUCapsSet(priv->qemuCaps, QEMU_CAPS_MIGRATE_GUEST_ASSISTED);
    }

    return g_steal_pointer(&vm);
}


static int
testCheckResult(int rc,
                const char *error)
{
    if (!error) {
        if (rc < 0) {
            VIR_TEST_VERBOSE("refused: %s", virGetLastErrorMessage());
            return -1;
        }
        return 0;
    }

    if (rc == 0) {
        VIR_TEST_VERBOSE("allowed, expected '%s'", error);
        return -1;
    }

    if (STRNEQ(virGetLastErrorMessage(), error)) {
        VIR_TEST_VERBOSE("expected '%s'\n     got '%s'", error,
                         virGetLastErrorMessage());
        return -1;
    }
    virResetLastError();
    return 0;
}


#define SEV_REFUSED \
    "Requested operation is not valid: domain 'guest' is an SEV guest: its memory may only be migrated confidentially, with VIR_MIGRATE_CONFIDENTIAL (virsh migrate --confidential) and mirror vCPUs (<mirror/>)"
#define CONFLICT(flag, why) \
    "argument unsupported: VIR_MIGRATE_CONFIDENTIAL cannot be combined with " flag ": " why


static int
testSrcCheck(const void *opaque)
{
    const struct testData *data = opaque;
    g_autoptr(virDomainObj) vm = testDomain(data);
    int rc;

    if (!vm)
        return -1;

    driver.config->mirrorMigrationTLS = !data->tlsOptional;
    rc = qemuMigrationConfidentialSrcCheck(vm, data->flags);
    driver.config->mirrorMigrationTLS = true;

    return testCheckResult(rc, data->error);
}


/* The check runs inside qemuMigrationSrcIsAllowed(), which every migration
 * to another host calls, before QEMU is asked about migration blockers (the
 * test domain has no monitor: asking QEMU would fail differently). */
static int
testSrcIsAllowed(const void *opaque)
{
    const struct testData *data = opaque;
    g_autoptr(virDomainObj) vm = testDomain(data);
    bool allowed;

    if (!vm)
        return -1;

    driver.config->mirrorMigrationTLS = !data->tlsOptional;
    allowed = qemuMigrationSrcIsAllowed(vm, true, VIR_ASYNC_JOB_NONE,
                                        data->flags);
    driver.config->mirrorMigrationTLS = true;
    return testCheckResult(allowed ? 0 : -1, data->error);
}


/* What an SEV guest is refused outside a confidential migration. */
typedef enum {
    OP_SAVE,      /* qemuMigrationSrcIsAllowed() as save and managedsave call it */
    OP_SNAPSHOT,  /* ... as internal and external memory snapshots call it */
    OP_DUMP,      /* ... as a full dump calls it */
    OP_DUMP_MEMORY, /* qemuMigrationConfidentialCheckExport() as every dump calls it */
    OP_PEEK,      /* ... as virDomainMemoryPeek calls it */
} testOp;

struct testExportData {
    const char *name;
    testGuest guest;
    bool running;
    testOp op;
    const char *error; /* NULL: allowed */
};


static int
testExport(const void *opaque)
{
    const struct testExportData *data = opaque;
    struct testData domData = { "", data->guest, data->running, QEMU_MIRROR, 0, NULL, false };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    int rc = -1;

    if (!vm)
        return -1;

    switch (data->op) {
    case OP_SAVE:
        rc = qemuMigrationSrcIsAllowed(vm, false, VIR_ASYNC_JOB_SAVE, 0) ? 0 : -1;
        break;
    case OP_SNAPSHOT:
        rc = qemuMigrationSrcIsAllowed(vm, false, VIR_ASYNC_JOB_SNAPSHOT, 0) ? 0 : -1;
        break;
    case OP_DUMP:
        rc = qemuMigrationSrcIsAllowed(vm, false, VIR_ASYNC_JOB_DUMP, 0) ? 0 : -1;
        break;
    case OP_DUMP_MEMORY:
        rc = qemuMigrationConfidentialCheckExport(vm, QEMU_MIGRATION_CONFIDENTIAL_EXPORT_DUMP);
        break;
    case OP_PEEK:
        rc = qemuMigrationConfidentialCheckExport(vm, QEMU_MIGRATION_CONFIDENTIAL_EXPORT_PEEK);
        break;
    }

    return testCheckResult(rc, data->error);
}


#define EXPORT_SEV(op, why) \
    "Requested operation is not valid: cannot " op " domain 'guest': it is an SEV guest: " why "; its memory may leave it only in a confidential migration (virsh migrate --confidential)"
#define EXPORT_SNP(op, why) \
    "Requested operation is not valid: cannot " op " domain 'guest': it is an SEV-SNP guest: " why
#define WHY_SAVE "the saved image would hold the guest's memory outside the guest, and no restore path can load it into an SEV guest"
#define WHY_SNAPSHOT "the snapshot would hold the guest's memory outside the guest; a disk-only snapshot is allowed"
#define WHY_DUMP "on SEV hardware the host reads only ciphertext from the guest's memory, so a dump would be useless"
#define WHY_PEEK "on SEV hardware the host reads only ciphertext from the guest's memory"

static const struct testExportData exportTests[] = {
    { "save SEV", GUEST_SEV, true, OP_SAVE, EXPORT_SEV("save", WHY_SAVE) },
    { "save SEV with mirror", GUEST_SEV_MIRROR, true, OP_SAVE, EXPORT_SEV("save", WHY_SAVE) },
    { "save SEV-SNP", GUEST_SEV_SNP, true, OP_SAVE, EXPORT_SNP("save", WHY_SAVE) },
    { "save plain", GUEST_PLAIN, true, OP_SAVE, NULL },
    { "snapshot SEV", GUEST_SEV, true, OP_SNAPSHOT,
      EXPORT_SEV("take a snapshot with memory of", WHY_SNAPSHOT) },
    { "snapshot SEV with mirror", GUEST_SEV_MIRROR, true, OP_SNAPSHOT,
      EXPORT_SEV("take a snapshot with memory of", WHY_SNAPSHOT) },
    { "snapshot SEV-SNP", GUEST_SEV_SNP, true, OP_SNAPSHOT,
      EXPORT_SNP("take a snapshot with memory of", WHY_SNAPSHOT) },
    { "snapshot plain", GUEST_PLAIN, true, OP_SNAPSHOT, NULL },
    { "full dump SEV with mirror", GUEST_SEV_MIRROR, true, OP_DUMP,
      EXPORT_SEV("dump the memory of", WHY_DUMP) },
    { "full dump SEV-SNP", GUEST_SEV_SNP, true, OP_DUMP,
      EXPORT_SNP("dump the memory of", WHY_DUMP) },
    { "full dump plain", GUEST_PLAIN, true, OP_DUMP, NULL },
    { "memory-only dump SEV", GUEST_SEV, true, OP_DUMP_MEMORY,
      EXPORT_SEV("dump the memory of", WHY_DUMP) },
    { "memory-only dump SEV with mirror", GUEST_SEV_MIRROR, true, OP_DUMP_MEMORY,
      EXPORT_SEV("dump the memory of", WHY_DUMP) },
    { "memory-only dump plain", GUEST_PLAIN, true, OP_DUMP_MEMORY, NULL },
    { "memory peek SEV with mirror", GUEST_SEV_MIRROR, true, OP_PEEK,
      EXPORT_SEV("read the memory of", WHY_PEEK) },
    { "memory peek SEV-SNP", GUEST_SEV_SNP, true, OP_PEEK,
      EXPORT_SNP("read the memory of", WHY_PEEK) },
    { "memory peek plain", GUEST_PLAIN, true, OP_PEEK, NULL },
    /* a guest that does not run has no memory to write out */
    { "memory peek SEV not running", GUEST_SEV_MIRROR, false, OP_PEEK, NULL },
};


struct testSuspendData {
    const char *name;
    virDomainAsyncJob asyncJob;
    unsigned long long apiFlags;
    const char *error;
};


/* virDomainSuspend during a job of the domain */
static int
testSuspend(const void *opaque)
{
    const struct testSuspendData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL, false };
    g_autoptr(virDomainObj) vm = testDomain(&domData);

    if (!vm)
        return -1;

    vm->job->asyncJob = data->asyncJob;
    vm->job->apiFlags = data->apiFlags;

    return testCheckResult(qemuMigrationConfidentialCheckSuspend(vm),
                           data->error);
}


static const struct testSuspendData suspendTests[] = {
    { "no job", VIR_ASYNC_JOB_NONE, 0, NULL },
    { "plain migration", VIR_ASYNC_JOB_MIGRATION_OUT, VIR_MIGRATE_LIVE, NULL },
    { "confidential migration", VIR_ASYNC_JOB_MIGRATION_OUT,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_TLS | VIR_MIGRATE_CONFIDENTIAL,
      "Requested operation is not valid: domain 'guest' is the source of a confidential migration, which cannot be paused while it runs: that would make it a non-live migration (virsh migrate --timeout suspends by default)" },
    { "incoming confidential migration", VIR_ASYNC_JOB_MIGRATION_IN,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_TLS | VIR_MIGRATE_CONFIDENTIAL, NULL },
};


static int
testScheme(const void *opaque G_GNUC_UNUSED)
{
    unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_TLS | VIR_MIGRATE_CONFIDENTIAL;

    if (testCheckResult(qemuMigrationConfidentialCheckScheme("tcp", flags), NULL) < 0 ||
        testCheckResult(qemuMigrationConfidentialCheckScheme("unix", flags), NULL) < 0 ||
        testCheckResult(qemuMigrationConfidentialCheckScheme("rdma", VIR_MIGRATE_LIVE), NULL) < 0 ||
        testCheckResult(qemuMigrationConfidentialCheckScheme("rdma", flags),
                        "argument unsupported: VIR_MIGRATE_CONFIDENTIAL cannot be combined with an rdma:// migration URI: RDMA moves guest RAM outside the migration stream, where the migration helper cannot encrypt it") < 0)
        return -1;

    return 0;
}


struct testDstData {
    const char *name;
    testGuest guest;
    unsigned int defMirrorVcpus;
    testQemu qemu;
    bool cookie;               /* <confidential/> in the cookie */
    unsigned int cookieMirrorVcpus;
    bool remoteGuestAssisted;  /* the source's QEMU supports guest-assisted */
    unsigned int flags;
    const char *error;         /* NULL: accepted */
};


/* migration capabilities a QEMU reports, as the migration cookie carries them */
static virBitmap *
testRemoteCaps(bool guestAssisted)
{
    virBitmap *caps = virBitmapNew(QEMU_MIGRATION_CAP_LAST);

    ignore_value(virBitmapSetBit(caps, QEMU_MIGRATION_CAP_XBZRLE));
    if (guestAssisted)
        ignore_value(virBitmapSetBit(caps, QEMU_MIGRATION_CAP_GUEST_ASSISTED));
    return caps;
}


static int
testDstCheck(const void *opaque)
{
    const struct testDstData *data = opaque;
    struct testData domData = { "", data->guest, false, data->qemu, 0, NULL, false };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(virBitmap) remoteCaps = testRemoteCaps(data->remoteGuestAssisted);
    qemuDomainObjPrivate *priv;
    qemuMigrationCookieConfidential conf = { data->cookieMirrorVcpus };

    if (!vm)
        return -1;
    priv = vm->privateData;

    if (vm->def->mirror)
        vm->def->mirror->vcpus = data->defMirrorVcpus;

    return testCheckResult(qemuMigrationConfidentialDstCheck(driver.config,
                                                             vm->def,
                                                             data->cookie ? &conf : NULL,
                                                             remoteCaps,
                                                             priv->qemuCaps,
                                                             data->flags),
                           data->error);
}


#define CONF_FLAGS (VIR_MIGRATE_LIVE | VIR_MIGRATE_TLS | VIR_MIGRATE_CONFIDENTIAL)
#define NO_INTERFACE_HERE \
    "Operation not supported: the QEMU binary '/usr/bin/qemu-system-x86_64' on this host lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)"
#define SEV_ES_REFUSED \
    "Operation not supported: domain 'guest' is an SEV-ES guest (policy bit 0x4): confidential migration supports plain SEV guests only, because an SEV-ES guest's register state is in its encrypted VMSA, which neither the migration helper nor QEMU migrates"
#define NOSEND_REFUSED \
    "Requested operation is not valid: the guest owner's policy for domain 'guest' forbids sending it to another platform (NOSEND, policy bit 0x8)"
#define LIVE_REQUIRED \
    "argument unsupported: VIR_MIGRATE_CONFIDENTIAL requires VIR_MIGRATE_LIVE (--live): the migration helper exports the guest's pages while the guest runs, and what a stopped guest does to mirror vCPUs is not defined"
#define TLS_REQUIRED \
    "argument unsupported: VIR_MIGRATE_CONFIDENTIAL requires VIR_MIGRATE_TLS (--tls): the guest's device and register state and its shared pages travel outside the transport key's protection (set mirror_migration_tls = 0 in qemu.conf on both hosts if the link is protected otherwise)"

static const struct testDstData dstTests[] = {
    { "plain migration", GUEST_PLAIN, 0, QEMU_NONE, false, 0, false, VIR_MIGRATE_LIVE, NULL },
    { "confidential", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS, NULL },
    { "cookie without the flag", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true, VIR_MIGRATE_LIVE,
      "Requested operation is not valid: the migration cookie of domain 'guest' asks for a confidential migration, but VIR_MIGRATE_CONFIDENTIAL is not set" },
    { "flag without the cookie", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, false, 0, true, CONF_FLAGS,
      "Requested operation is not valid: the source sent no confidential migration data (<confidential/> in the migration cookie) for domain 'guest'" },
    { "tunnelled", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true,
      CONF_FLAGS | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TUNNELLED,
      CONFLICT("VIR_MIGRATE_TUNNELLED (--tunnelled)", "the target listens through start-migrate-incoming, which takes a network URI rather than the stream a tunnelled migration uses") },
    { "rdma pin all", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true,
      CONF_FLAGS | VIR_MIGRATE_RDMA_PIN_ALL,
      CONFLICT("VIR_MIGRATE_RDMA_PIN_ALL (--rdma-pin-all)", "RDMA moves guest RAM outside the migration stream, where the migration helper cannot encrypt it") },
    { "not live", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true,
      VIR_MIGRATE_TLS | VIR_MIGRATE_CONFIDENTIAL, LIVE_REQUIRED },
    { "no TLS", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL, TLS_REQUIRED },
    { "source QEMU without guest-assisted", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, false, CONF_FLAGS,
      "Operation not supported: the source's QEMU for domain 'guest' does not support the migration capability 'guest-assisted'" },
    { "not SEV", GUEST_PLAIN, 0, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Requested operation is not valid: the incoming definition of domain 'guest' is not an SEV guest" },
    { "SEV-SNP", GUEST_SEV_SNP, 0, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Requested operation is not valid: the incoming definition of domain 'guest' is not an SEV guest" },
    { "SEV-ES", GUEST_SEV_ES_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS, SEV_ES_REFUSED },
    { "NOSEND", GUEST_SEV_NOSEND_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS, NOSEND_REFUSED },
    { "no mirror", GUEST_SEV, 0, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Requested operation is not valid: the source runs domain 'guest' with 1 mirror vCPUs, but the incoming definition has 0" },
    { "other mirror vCPUs", GUEST_SEV_MIRROR, 2, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Requested operation is not valid: the source runs domain 'guest' with 1 mirror vCPUs, but the incoming definition has 2" },
    { "partial QEMU", GUEST_SEV_MIRROR, 1, QEMU_PARTIAL, true, 1, true, CONF_FLAGS, NO_INTERFACE_HERE },
    { "QEMU without guest-assisted", GUEST_SEV_MIRROR, 1, QEMU_NO_GUEST_ASSISTED, true, 1, true,
      CONF_FLAGS, NO_INTERFACE_HERE },
    { "no QEMU", GUEST_SEV_MIRROR, 1, QEMU_NONE, true, 1, true, CONF_FLAGS, NO_INTERFACE_HERE },
};


struct testSrcCookieData {
    const char *name;
    bool cookie;               /* the target sent <confidential/> */
    unsigned int mirrorVcpus;
    bool remoteGuestAssisted;  /* the target's QEMU supports guest-assisted */
    unsigned int flags;
    const char *error;
};


static int
testSrcCheckCookie(const void *opaque)
{
    const struct testSrcCookieData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL, false };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(virBitmap) remoteCaps = testRemoteCaps(data->remoteGuestAssisted);
    qemuMigrationCookieConfidential conf = { data->mirrorVcpus };

    if (!vm)
        return -1;

    return testCheckResult(qemuMigrationConfidentialSrcCheckCookie(vm,
                                                                   data->cookie ? &conf : NULL,
                                                                   remoteCaps,
                                                                   data->flags),
                           data->error);
}


static const struct testSrcCookieData srcCookieTests[] = {
    { "plain", false, 0, false, VIR_MIGRATE_LIVE, NULL },
    { "confirmed", true, 1, true, CONF_FLAGS, NULL },
    { "not confirmed", false, 0, true, CONF_FLAGS,
      "operation failed: the target did not confirm the confidential migration of domain 'guest'" },
    { "other mirror vCPUs", true, 3, true, CONF_FLAGS,
      "operation failed: the target prepared domain 'guest' with 3 mirror vCPUs, but the source has 1" },
    { "target QEMU without guest-assisted", true, 1, false, CONF_FLAGS,
      "operation failed: the target's QEMU for domain 'guest' does not support the migration capability 'guest-assisted'" },
};


/* A test monitor for @vm that expects exactly @items, in order: pairs of
 * command name and reply, NULL-terminated. Any other command, or a reply
 * left unused, fails the test. */
static qemuMonitorTest *
testMonitorAttach(virDomainObj *vm,
                  const char *const *items)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    g_autoptr(qemuMonitorTest) test = NULL;
    size_t i;

    if (!(test = qemuMonitorTestNew(driver.xmlopt, vm, NULL, schema)))
        return NULL;

    for (i = 0; items[i]; i += 2) {
        if (qemuMonitorTestAddItem(test, items[i], items[i + 1]) < 0)
            return NULL;
    }

    priv->mon = qemuMonitorTestGetMonitor(test);
    virObjectUnlock(priv->mon);
    return g_steal_pointer(&test);
}


static void
testMonitorDetach(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = vm->privateData;

    virObjectLock(priv->mon);
    priv->mon = NULL;
}


struct testFlowData {
    const char *name;
    const char *items[9];
    const char *error;
    virTristateBool exitOnError;
    bool shuttingDown; /* the daemon began to shut down */
};


/* the target's Prepare steps 4 to 7 against QEMU's replies */
static int
testDstRun(const void *opaque)
{
    const struct testFlowData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL, false };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(qemuMonitorTest) test = NULL;
    int reason;
    int rc;

    if (!vm)
        return -1;

    if (!(test = testMonitorAttach(vm, data->items)))
        return -1;

    g_atomic_int_set(&driver.shuttingDown, data->shuttingDown);
    rc = qemuMigrationConfidentialDstRun(vm, "tcp:0.0.0.0:49152",
                                         data->exitOnError, VIR_ASYNC_JOB_NONE);
    g_atomic_int_set(&driver.shuttingDown, 0);
    testMonitorDetach(vm);

    if (testCheckResult(rc, data->error) < 0)
        return -1;

    /* the guest never looks as if it ran, whatever happened */
    if (virDomainObjGetState(vm, &reason) != VIR_DOMAIN_PAUSED ||
        reason != VIR_DOMAIN_PAUSED_MIGRATION) {
        VIR_TEST_VERBOSE("state %d reason %d",
                         virDomainObjGetState(vm, NULL), reason);
        return -1;
    }
    return 0;
}


struct testHelperOnlyData {
    const char *name;
    virDomainAsyncJob asyncJob;
    int phase;
    unsigned long long apiFlags;
    bool helperOnly;
};


/* which domains run only the migration helper: derived from the job, which
 * the status XML keeps */
static int
testHelperOnly(const void *opaque)
{
    const struct testHelperOnlyData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL, false };
    g_autoptr(virDomainObj) vm = testDomain(&domData);

    if (!vm)
        return -1;

    vm->job->asyncJob = data->asyncJob;
    vm->job->phase = data->phase;
    vm->job->apiFlags = data->apiFlags;

    if (qemuMirrorIsHelperOnlyTarget(vm, vm->job) != data->helperOnly) {
        VIR_TEST_VERBOSE("helper-only target: %d, expected %d",
                         !data->helperOnly, data->helperOnly);
        return -1;
    }
    return 0;
}


static const struct testHelperOnlyData helperOnlyTests[] = {
    { "no job", VIR_ASYNC_JOB_NONE, 0, 0, false },
    { "confidential target, Prepare", VIR_ASYNC_JOB_MIGRATION_IN,
      QEMU_MIGRATION_PHASE_PREPARE, CONF_FLAGS, true },
    { "confidential target, Finish", VIR_ASYNC_JOB_MIGRATION_IN,
      QEMU_MIGRATION_PHASE_FINISH3, CONF_FLAGS, false },
    { "plain target, Prepare", VIR_ASYNC_JOB_MIGRATION_IN,
      QEMU_MIGRATION_PHASE_PREPARE, VIR_MIGRATE_LIVE, false },
    { "confidential source", VIR_ASYNC_JOB_MIGRATION_OUT,
      QEMU_MIGRATION_PHASE_PERFORM3, CONF_FLAGS, false },
};


/* the source's helper check, before the target is asked for anything */
static int
testSrcCheckHelper(const void *opaque)
{
    const struct testFlowData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL, false };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(qemuMonitorTest) test = NULL;
    int rc;

    if (!vm)
        return -1;

    if (!(test = testMonitorAttach(vm, data->items)))
        return -1;

    rc = qemuMigrationConfidentialSrcCheckHelper(vm, VIR_ASYNC_JOB_NONE, CONF_FLAGS);
    testMonitorDetach(vm);

    return testCheckResult(rc, data->error);
}


/* the whole of qemuMigrationSrcIsAllowed() for a confidential migration,
 * the allowed path included: the helper is asked, and nothing else of
 * QEMU */
static int
testSrcIsAllowedHelper(const void *opaque)
{
    const struct testFlowData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL, false };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(qemuMonitorTest) test = NULL;
    bool allowed;

    if (!vm)
        return -1;

    if (!(test = testMonitorAttach(vm, data->items)))
        return -1;

    allowed = qemuMigrationSrcIsAllowed(vm, true, VIR_ASYNC_JOB_NONE, CONF_FLAGS);
    testMonitorDetach(vm);

    return testCheckResult(allowed ? 0 : -1, data->error);
}


#define HELPER "query-migration-helper"
#define READY_KEY "{\"return\": {\"status\": \"ready\", \"transport-key\": true}}"
#define READY_NO_KEY "{\"return\": {\"status\": \"ready\"}}"
#define OK "{\"return\": {}}"

#define ABSENT VIR_TRISTATE_BOOL_ABSENT

static const struct testFlowData dstRunTests[] = {
    { "ready", { "cont", OK, HELPER, READY_KEY, "start-migrate-incoming", OK, NULL },
      NULL, ABSENT, false },
    /* start-migrate-incoming takes migrate-incoming's arguments; the test
     * monitor validates them against the schema */
    { "ready, exit-on-error as for migrate-incoming",
      { "cont", OK, HELPER, READY_KEY, "start-migrate-incoming", OK, NULL },
      NULL, VIR_TRISTATE_BOOL_NO, false },
    { "cont fails", { "cont", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}", NULL },
      "internal error: unable to execute QEMU command 'cont': no", ABSENT, false },
    { "helper failed", { "cont", OK, HELPER,
                         "{\"return\": {\"status\": \"failed\", \"error\": \"no helper in firmware\"}}",
                         NULL },
      "operation failed: migration helper of domain 'guest' failed: no helper in firmware", ABSENT, false },
    { "no transport key", { "cont", OK, HELPER, READY_NO_KEY, NULL },
      "Operation not supported: the migration helper of domain 'guest' on this host holds no transport key, and provisioning one (attestation of this host by the guest owner) is not supported yet",
      ABSENT, false },
    { "start-migrate-incoming fails",
      { "cont", OK, HELPER, READY_KEY, "start-migrate-incoming",
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"helper not ready\"}}", NULL },
      "internal error: unable to execute QEMU command 'start-migrate-incoming': helper not ready",
      ABSENT, false },
    /* the helper is never asked and nothing listens */
    { "daemon shutting down", { "cont", OK, NULL },
      "operation aborted: the confidential migration of domain 'guest' was aborted: libvirt is shutting down",
      ABSENT, true },
};

static const struct testFlowData srcHelperTests[] = {
    { "ready", { HELPER, READY_KEY, NULL }, NULL, ABSENT, false },
    { "booting", { HELPER, "{\"return\": {\"status\": \"booting\"}}", NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' is not ready (status 'booting')",
      ABSENT, false },
    { "failed", { HELPER, "{\"return\": {\"status\": \"failed\", \"error\": \"mailbox timeout\"}}", NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' is not ready (status 'failed': mailbox timeout)",
      ABSENT, false },
    { "no transport key", { HELPER, READY_NO_KEY, NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' holds no transport key: guest pages would leave the guest unprotected",
      ABSENT, false },
};



static int
testCookieParse(const char *xml,
                const char *error)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctxt = NULL;
    g_autofree qemuMigrationCookieConfidential *conf = NULL;

    if (!(doc = virXMLParseStringCtxt(xml, "(cookie)", &ctxt)))
        return -1;

    conf = qemuMigrationCookieConfidentialParse(ctxt);
    return testCheckResult(conf ? 0 : -1, error);
}


static int
testCookie(const void *opaque G_GNUC_UNUSED)
{
    struct testData plainData = { "", GUEST_SEV, true, QEMU_MIRROR, 0, NULL, false };
    struct testData mirrorData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL, false };
    g_autoptr(virDomainObj) plain = testDomain(&plainData);
    g_autoptr(virDomainObj) mirror = testDomain(&mirrorData);
    g_autofree qemuMigrationCookieConfidential *conf = NULL;
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;

    if (!plain || !mirror)
        return -1;

    /* nothing to say for a guest without mirror vCPUs */
    if (qemuMigrationCookieConfidentialNew(plain->def))
        return -1;

    if (!(conf = qemuMigrationCookieConfidentialNew(mirror->def)))
        return -1;
    qemuMigrationCookieConfidentialFormat(&buf, conf);
    if (STRNEQ(virBufferCurrentContent(&buf),
               "<confidential mirrorVcpus='1'/>\n")) {
        VIR_TEST_VERBOSE("formatted '%s'", virBufferCurrentContent(&buf));
        return -1;
    }

    if (testCookieParse("<qemu-migration><confidential mirrorVcpus='3'/></qemu-migration>",
                        NULL) < 0 ||
        testCookieParse("<qemu-migration/>",
                        "internal error: missing <confidential> in migration cookie") < 0 ||
        testCookieParse("<qemu-migration><confidential/></qemu-migration>",
                        "XML error: Missing required attribute 'mirrorVcpus' in element 'confidential'") < 0 ||
        testCookieParse("<qemu-migration><confidential mirrorVcpus='0'/></qemu-migration>",
                        "XML error: Invalid value for attribute 'mirrorVcpus' in element 'confidential': Zero is not permitted") < 0)
        return -1;

    return 0;
}


#define NO_INTERFACE_SRC \
    "Operation not supported: the QEMU binary '/usr/bin/qemu-system-x86_64' of domain 'guest' lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)"

static const struct testData tests[] = {
    /* without VIR_MIGRATE_CONFIDENTIAL */
    { "plain guest", GUEST_PLAIN, true, QEMU_NONE, VIR_MIGRATE_LIVE, NULL, false },
    { "SEV guest refused", GUEST_SEV, true, QEMU_MIRROR, VIR_MIGRATE_LIVE,
      SEV_REFUSED, false },
    { "SEV guest with mirror refused", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TLS, SEV_REFUSED, false },
    { "SEV guest non-live refused", GUEST_SEV, true, QEMU_NONE, 0, SEV_REFUSED, false },
    { "SEV-ES guest refused", GUEST_SEV_ES_MIRROR, true, QEMU_MIRROR, VIR_MIGRATE_LIVE,
      SEV_REFUSED, false },
    { "SEV-SNP guest refused", GUEST_SEV_SNP, true, QEMU_NONE, VIR_MIGRATE_LIVE,
      "Requested operation is not valid: domain 'guest' is an SEV-SNP guest: libvirt cannot migrate its memory (confidential migration supports SEV guests only)", false },
    { "SEV guest offline", GUEST_SEV, false, QEMU_NONE,
      VIR_MIGRATE_OFFLINE | VIR_MIGRATE_PERSIST_DEST, NULL, false },

    /* with VIR_MIGRATE_CONFIDENTIAL */
    { "confidential", GUEST_SEV_MIRROR, true, QEMU_MIRROR, CONF_FLAGS, NULL, false },
    { "confidential p2p tls paused", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PAUSED |
      VIR_MIGRATE_PERSIST_DEST, NULL, false },
    { "confidential without TLS", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL, TLS_REQUIRED, false },
    { "confidential without TLS, TLS optional in qemu.conf", GUEST_SEV_MIRROR, true,
      QEMU_MIRROR, VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL, NULL, true },
    { "confidential not live", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_TLS | VIR_MIGRATE_CONFIDENTIAL, LIVE_REQUIRED, false },
    { "confidential offline", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_OFFLINE | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_OFFLINE (--offline)", "an offline migration moves no guest memory; migrate the definition without VIR_MIGRATE_CONFIDENTIAL"), false },
    { "confidential postcopy", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_POSTCOPY,
      CONFLICT("VIR_MIGRATE_POSTCOPY (--postcopy)", "in post-copy the target fetches pages on demand, but the migration helper only sends the pages the source pushes"), false },
    { "confidential postcopy resume", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_POSTCOPY_RESUME | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_POSTCOPY_RESUME (--postcopy-resume)", "in post-copy the target fetches pages on demand, but the migration helper only sends the pages the source pushes"), false },
    { "confidential tunnelled", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TUNNELLED,
      CONFLICT("VIR_MIGRATE_TUNNELLED (--tunnelled)", "the target listens through start-migrate-incoming, which takes a network URI rather than the stream a tunnelled migration uses"), false },
    { "confidential copy storage all", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_NON_SHARED_DISK,
      CONFLICT("VIR_MIGRATE_NON_SHARED_DISK (--copy-storage-all)", "storage migration is not part of confidential migration yet; use shared storage"), false },
    { "confidential copy storage inc", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_NON_SHARED_INC,
      CONFLICT("VIR_MIGRATE_NON_SHARED_INC (--copy-storage-inc)", "storage migration is not part of confidential migration yet; use shared storage"), false },
    { "confidential compressed", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_COMPRESSED,
      CONFLICT("VIR_MIGRATE_COMPRESSED (--compressed)", "pages encrypted with the transport key cannot be compressed"), false },
    { "confidential parallel", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_PARALLEL,
      CONFLICT("VIR_MIGRATE_PARALLEL (--parallel)", "the migration helper's pages travel in the main migration stream only"), false },
    { "confidential zerocopy", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_ZEROCOPY,
      CONFLICT("VIR_MIGRATE_ZEROCOPY (--zerocopy)", "zero-copy needs parallel connections, which confidential migration does not use"), false },
    { "confidential rdma pin all", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_RDMA_PIN_ALL,
      CONFLICT("VIR_MIGRATE_RDMA_PIN_ALL (--rdma-pin-all)", "RDMA moves guest RAM outside the migration stream, where the migration helper cannot encrypt it"), false },
    { "confidential auto-converge", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_AUTO_CONVERGE,
      CONFLICT("VIR_MIGRATE_AUTO_CONVERGE (--auto-converge)", "CPU throttling is not defined for mirror vCPUs, which export the guest's pages"), false },
    { "confidential not running", GUEST_SEV_MIRROR, false, QEMU_MIRROR, CONF_FLAGS,
      "Requested operation is not valid: domain 'guest' is not running: confidential migration moves a running guest", false },
    { "confidential plain guest", GUEST_PLAIN, true, QEMU_MIRROR, CONF_FLAGS,
      "Requested operation is not valid: domain 'guest' is not an SEV guest (<launchSecurity type='sev'>): confidential migration is for SEV guests only", false },
    { "confidential SEV-SNP guest", GUEST_SEV_SNP, true, QEMU_MIRROR, CONF_FLAGS,
      "Requested operation is not valid: domain 'guest' is not an SEV guest (<launchSecurity type='sev'>): confidential migration is for SEV guests only", false },
    { "confidential SEV-ES guest", GUEST_SEV_ES_MIRROR, true, QEMU_MIRROR, CONF_FLAGS,
      SEV_ES_REFUSED, false },
    { "confidential NOSEND guest", GUEST_SEV_NOSEND_MIRROR, true, QEMU_MIRROR, CONF_FLAGS,
      NOSEND_REFUSED, false },
    { "confidential without mirror", GUEST_SEV, true, QEMU_MIRROR, CONF_FLAGS,
      "Requested operation is not valid: domain 'guest' has no mirror vCPUs: confidential migration needs <mirror/> in its definition (it takes effect when the domain next starts)", false },
    { "confidential partial QEMU", GUEST_SEV_MIRROR, true, QEMU_PARTIAL, CONF_FLAGS,
      NO_INTERFACE_SRC, false },
    { "confidential QEMU without guest-assisted", GUEST_SEV_MIRROR, true,
      QEMU_NO_GUEST_ASSISTED, CONF_FLAGS, NO_INTERFACE_SRC, false },
    { "confidential unknown QEMU", GUEST_SEV_MIRROR, true, QEMU_NONE, CONF_FLAGS,
      NO_INTERFACE_SRC, false },
};


static int
mymain(void)
{
    g_autofree char *replies = NULL;
    int ret = 0;
    size_t i;

    if (qemuTestDriverInit(&driver) < 0)
        return EXIT_FAILURE;

    replies = g_strdup_printf("%s/qemucapabilitiesdata/caps_10.0.0_x86_64+amdsev-mirror.replies",
                              abs_srcdir);
    if (!(schema = testQEMUSchemaLoad(replies))) {
        qemuTestDriverFree(&driver);
        return EXIT_FAILURE;
    }

    virEventRegisterDefaultImpl();

    for (i = 0; i < G_N_ELEMENTS(tests); i++) {
        g_autofree char *name = g_strdup_printf("source check: %s", tests[i].name);

        if (virTestRun(name, testSrcCheck, &tests[i]) < 0)
            ret = -1;

        /* every refusal also comes out of the migration entry point */
        if (tests[i].error) {
            g_autofree char *entry = g_strdup_printf("qemuMigrationSrcIsAllowed: %s",
                                                     tests[i].name);

            if (virTestRun(entry, testSrcIsAllowed, &tests[i]) < 0)
                ret = -1;
        }
    }

    for (i = 0; i < G_N_ELEMENTS(dstTests); i++) {
        g_autofree char *name = g_strdup_printf("target check: %s", dstTests[i].name);

        if (virTestRun(name, testDstCheck, &dstTests[i]) < 0)
            ret = -1;
    }

    for (i = 0; i < G_N_ELEMENTS(srcCookieTests); i++) {
        g_autofree char *name = g_strdup_printf("source cookie check: %s",
                                                srcCookieTests[i].name);

        if (virTestRun(name, testSrcCheckCookie, &srcCookieTests[i]) < 0)
            ret = -1;
    }

    for (i = 0; i < G_N_ELEMENTS(dstRunTests); i++) {
        g_autofree char *name = g_strdup_printf("target flow: %s", dstRunTests[i].name);

        if (virTestRun(name, testDstRun, &dstRunTests[i]) < 0)
            ret = -1;
    }

    for (i = 0; i < G_N_ELEMENTS(srcHelperTests); i++) {
        g_autofree char *name = g_strdup_printf("source helper check: %s",
                                                srcHelperTests[i].name);
        g_autofree char *entry = g_strdup_printf("qemuMigrationSrcIsAllowed: helper %s",
                                                 srcHelperTests[i].name);

        if (virTestRun(name, testSrcCheckHelper, &srcHelperTests[i]) < 0)
            ret = -1;
        if (virTestRun(entry, testSrcIsAllowedHelper, &srcHelperTests[i]) < 0)
            ret = -1;
    }

    for (i = 0; i < G_N_ELEMENTS(exportTests); i++) {
        g_autofree char *name = g_strdup_printf("memory out of the guest: %s",
                                                exportTests[i].name);

        if (virTestRun(name, testExport, &exportTests[i]) < 0)
            ret = -1;
    }

    for (i = 0; i < G_N_ELEMENTS(suspendTests); i++) {
        g_autofree char *name = g_strdup_printf("suspend: %s", suspendTests[i].name);

        if (virTestRun(name, testSuspend, &suspendTests[i]) < 0)
            ret = -1;
    }

    if (virTestRun("migration URI scheme", testScheme, NULL) < 0)
        ret = -1;

    for (i = 0; i < G_N_ELEMENTS(helperOnlyTests); i++) {
        g_autofree char *name = g_strdup_printf("helper-only target: %s",
                                                helperOnlyTests[i].name);

        if (virTestRun(name, testHelperOnly, &helperOnlyTests[i]) < 0)
            ret = -1;
    }

    if (virTestRun("cookie element", testCookie, NULL) < 0)
        ret = -1;

    g_clear_pointer(&schema, g_hash_table_unref);
    qemuTestDriverFree(&driver);
    return ret == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

VIR_TEST_MAIN(mymain)
