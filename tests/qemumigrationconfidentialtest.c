/*
 * qemumigrationconfidentialtest.c: which migrations of which guests libvirt
 * allows with and without VIR_MIGRATE_CONFIDENTIAL, and what it says when it
 * refuses; what it refuses an SEV guest with mirror vCPUs outside a
 * confidential migration (save, snapshots with memory, full dumps) and
 * that it refuses other guests nothing more than upstream; parallel
 * channels of a confidential migration (at most one per mirror vCPU); the
 * checks of the migration cookie on both hosts;
 * the attestation agent (fake agents in qemumirrorattestdata/); and the
 * target's Prepare steps and the source's helper check against a test
 * monitor that validates libvirt's commands against the
 * caps_10.0.0_x86_64+amdsev-mirror schema and insists on their order
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
#include "qemu/qemu_mirror_attest.h"

#define VIR_FROM_THIS VIR_FROM_NONE

static virQEMUDriver driver;
static GHashTable *schema;

typedef enum {
    GUEST_PLAIN,
    GUEST_SEV,
    GUEST_SEV_MIRROR,
    GUEST_SEV_SNP,
    GUEST_SEV_ES,            /* policy 0x5: SEV-ES */
    GUEST_SEV_ES_MIRROR,     /* policy 0x5: SEV-ES */
    GUEST_SEV_NOSEND_MIRROR, /* policy 0x9: NOSEND */
} testGuest;

typedef enum {
    QEMU_MIRROR,    /* QEMU with the whole confidential migration interface */
    QEMU_PARTIAL,   /* QEMU that lacks start-migrate-incoming */
    QEMU_NO_GUEST_ASSISTED, /* QEMU without the guest-assisted capability */
    QEMU_CONTRACT2, /* QEMU of contract version 2: no helper nonce */
    QEMU_NONE,      /* no capabilities known */
} testQemu;

struct testData {
    const char *name;
    testGuest guest;
    bool running;
    testQemu qemu;
    unsigned int flags;
    const char *error; /* NULL: allowed */
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
    if (data->guest == GUEST_SEV_ES || data->guest == GUEST_SEV_ES_MIRROR)
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
        if (data->qemu != QEMU_CONTRACT2)
            virQEMUCapsSet(priv->qemuCaps, QEMU_CAPS_MIGRATION_HELPER_NONCE);
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
    "Requested operation is not valid: domain 'guest' is an SEV guest with mirror vCPUs: its memory may only be migrated confidentially, with VIR_MIGRATE_CONFIDENTIAL (virsh migrate --confidential)"
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

    rc = qemuMigrationConfidentialSrcCheck(vm, data->flags);

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

    allowed = qemuMigrationSrcIsAllowed(vm, true, VIR_ASYNC_JOB_NONE,
                                        data->flags);
    return testCheckResult(allowed ? 0 : -1, data->error);
}


/* What an SEV guest is refused outside a confidential migration: only a
 * guest with mirror vCPUs, and only what goes through migration. Every
 * other guest is left to QEMU's SEV migration blocker, as upstream. */
typedef enum {
    OP_SAVE,      /* qemuMigrationSrcIsAllowed() as save and managedsave call it */
    OP_SNAPSHOT,  /* ... as internal and external memory snapshots call it */
    OP_DUMP,      /* ... as a full dump calls it */
    OP_SNAPSHOT_EARLY, /* qemuMigrationConfidentialCheckExport() before an
                        * external memory snapshot freezes the guest */
    OP_DUMP_EARLY,     /* ... before a full dump pauses the guest */
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
    struct testData domData = { "", data->guest, data->running, QEMU_MIRROR, 0, NULL };
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
    case OP_SNAPSHOT_EARLY:
        rc = qemuMigrationConfidentialCheckExport(vm, QEMU_MIGRATION_CONFIDENTIAL_EXPORT_SNAPSHOT);
        break;
    case OP_DUMP_EARLY:
        rc = qemuMigrationConfidentialCheckExport(vm, QEMU_MIGRATION_CONFIDENTIAL_EXPORT_DUMP);
        break;
    }

    return testCheckResult(rc, data->error);
}


#define EXPORT_MIRROR(msg) \
    "Requested operation is not valid: " msg
#define WHY_SAVE "cannot save domain 'guest': it is an SEV guest with mirror vCPUs, whose state may leave it only in a confidential migration"
#define WHY_SNAPSHOT "cannot take a snapshot with memory of domain 'guest': it is an SEV guest with mirror vCPUs, whose state may leave it only in a confidential migration (a disk-only snapshot is allowed)"
#define WHY_DUMP "cannot dump the memory of domain 'guest' in full: it is an SEV guest with mirror vCPUs, whose state may leave it only in a confidential migration (a memory-only dump is allowed)"

/* NULL: libvirt lets the operation reach QEMU, whose SEV migration blocker
 * decides (query-migrate's blocked-reasons, checked after these) */
static const struct testExportData exportTests[] = {
    { "save SEV", GUEST_SEV, true, OP_SAVE, NULL },
    { "save SEV with mirror", GUEST_SEV_MIRROR, true, OP_SAVE, EXPORT_MIRROR(WHY_SAVE) },
    { "save SEV-ES", GUEST_SEV_ES, true, OP_SAVE, NULL },
    { "save SEV-SNP", GUEST_SEV_SNP, true, OP_SAVE, NULL },
    { "save plain", GUEST_PLAIN, true, OP_SAVE, NULL },
    { "snapshot SEV", GUEST_SEV, true, OP_SNAPSHOT, NULL },
    { "snapshot SEV with mirror", GUEST_SEV_MIRROR, true, OP_SNAPSHOT,
      EXPORT_MIRROR(WHY_SNAPSHOT) },
    { "snapshot SEV-ES", GUEST_SEV_ES, true, OP_SNAPSHOT, NULL },
    { "snapshot SEV-SNP", GUEST_SEV_SNP, true, OP_SNAPSHOT, NULL },
    { "snapshot plain", GUEST_PLAIN, true, OP_SNAPSHOT, NULL },
    { "full dump SEV", GUEST_SEV, true, OP_DUMP, NULL },
    { "full dump SEV with mirror", GUEST_SEV_MIRROR, true, OP_DUMP,
      EXPORT_MIRROR(WHY_DUMP) },
    { "full dump SEV-ES", GUEST_SEV_ES, true, OP_DUMP, NULL },
    { "full dump SEV-SNP", GUEST_SEV_SNP, true, OP_DUMP, NULL },
    { "full dump plain", GUEST_PLAIN, true, OP_DUMP, NULL },
    { "early snapshot SEV", GUEST_SEV, true, OP_SNAPSHOT_EARLY, NULL },
    { "early snapshot SEV with mirror", GUEST_SEV_MIRROR, true, OP_SNAPSHOT_EARLY,
      EXPORT_MIRROR(WHY_SNAPSHOT) },
    { "early snapshot SEV-SNP", GUEST_SEV_SNP, true, OP_SNAPSHOT_EARLY, NULL },
    { "early full dump SEV", GUEST_SEV, true, OP_DUMP_EARLY, NULL },
    { "early full dump SEV with mirror", GUEST_SEV_MIRROR, true, OP_DUMP_EARLY,
      EXPORT_MIRROR(WHY_DUMP) },
    { "early full dump SEV-ES", GUEST_SEV_ES, true, OP_DUMP_EARLY, NULL },
    { "early full dump plain", GUEST_PLAIN, true, OP_DUMP_EARLY, NULL },
    /* a guest that does not run has no memory to write out */
    { "save SEV with mirror not running", GUEST_SEV_MIRROR, false, OP_DUMP_EARLY, NULL },
};


struct testParallelData {
    const char *name;
    unsigned int mirrorVcpus;
    bool helperChannels;     /* QEMU_CAPS_MIGRATION_HELPER_CHANNELS */
    int connections;         /* VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS, 0: not given */
    unsigned int flags;
    const char *error;
};


/* VIR_MIGRATE_PARALLEL of a confidential migration: channels served by
 * mirror vCPUs, at most one per mirror vCPU */
static int
testParallel(const void *opaque)
{
    const struct testParallelData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(qemuMigrationParams) migParams = NULL;
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int maxparams = 0;
    qemuDomainObjPrivate *priv;
    int rc;

    if (!vm)
        return -1;
    priv = vm->privateData;
    vm->def->mirror->vcpus = data->mirrorVcpus;
    if (data->helperChannels)
        virQEMUCapsSet(priv->qemuCaps, QEMU_CAPS_MIGRATION_HELPER_CHANNELS);

    if (data->connections &&
        virTypedParamsAddInt(&params, &nparams, &maxparams,
                             VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS,
                             data->connections) < 0)
        return -1;
    migParams = qemuMigrationParamsFromFlags(params, nparams, data->flags,
                                             QEMU_MIGRATION_SOURCE);
    virTypedParamsFree(params, nparams);
    if (!migParams)
        return -1;

    rc = qemuMigrationConfidentialCheckParallel(vm->def, priv->qemuCaps,
                                                migParams, data->flags);
    return testCheckResult(rc, data->error);
}


#define PARALLEL_FLAGS \
    (VIR_MIGRATE_LIVE | VIR_MIGRATE_TLS | VIR_MIGRATE_CONFIDENTIAL | VIR_MIGRATE_PARALLEL)
#define PARALLEL_TOO_MANY(k, m) \
    "argument unsupported: VIR_MIGRATE_PARALLEL (--parallel) of domain 'guest' with " #k " connections needs as many mirror vCPUs, but the domain has " #m " (<mirror vcpus='N'/>): each parallel channel is encrypted by one mirror vCPU"

static const struct testParallelData parallelTests[] = {
    { "2 connections, 2 mirror vCPUs", 2, true, 2, PARALLEL_FLAGS, NULL },
    { "1 connection, 2 mirror vCPUs", 2, true, 1, PARALLEL_FLAGS, NULL },
    { "4 connections, 4 mirror vCPUs", 4, true, 4, PARALLEL_FLAGS, NULL },
    { "3 connections, 2 mirror vCPUs", 2, true, 3, PARALLEL_FLAGS,
      PARALLEL_TOO_MANY(3, 2) },
    /* QEMU's default: 2 channels */
    { "default connections, 1 mirror vCPU", 1, true, 0, PARALLEL_FLAGS,
      PARALLEL_TOO_MANY(2, 1) },
    { "default connections, 2 mirror vCPUs", 2, true, 0, PARALLEL_FLAGS, NULL },
    { "QEMU without helper channels", 2, false, 2, PARALLEL_FLAGS,
      "Operation not supported: VIR_MIGRATE_PARALLEL (--parallel) of domain 'guest' needs parallel channels served by mirror vCPUs, which the QEMU binary '/usr/bin/qemu-system-x86_64' does not support" },
    /* not confidential, or not parallel: not this check's business */
    { "plain parallel, 3 connections", 1, false, 3,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_PARALLEL, NULL },
    { "confidential without parallel", 1, false, 0,
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
    const char *cookieKeyId;   /* the transport key the source's helper holds */
    const char *agent;         /* qemu.conf: mirror_attestation_agent */
    unsigned int contract;     /* the source's contract version; 0: this one */
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
    struct testData domData = { "", data->guest, false, data->qemu, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(virBitmap) remoteCaps = testRemoteCaps(data->remoteGuestAssisted);
    qemuDomainObjPrivate *priv;
    qemuMigrationCookieConfidential conf = { data->cookieMirrorVcpus,
                                             (char *) data->cookieKeyId,
                                             data->contract ? data->contract :
                                             QEMU_MIRROR_CONTRACT, NULL, NULL };
    int rc;

    if (!vm)
        return -1;
    priv = vm->privateData;

    if (vm->def->mirror)
        vm->def->mirror->vcpus = data->defMirrorVcpus;

    driver.config->mirrorAttestationAgent = (char *) data->agent;
    rc = qemuMigrationConfidentialDstCheck(driver.config, vm->def,
                                           data->cookie ? &conf : NULL,
                                           remoteCaps, priv->qemuCaps,
                                           data->flags);
    driver.config->mirrorAttestationAgent = NULL;

    return testCheckResult(rc, data->error);
}


#define CONF_FLAGS (VIR_MIGRATE_LIVE | VIR_MIGRATE_TLS | VIR_MIGRATE_CONFIDENTIAL)
#define NO_INTERFACE_HERE \
    "Operation not supported: the QEMU binary '/usr/bin/qemu-system-x86_64' on this host lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)"
#define SEV_ES_REFUSED \
    "Operation not supported: domain 'guest' is an SEV-ES guest, whose encrypted register state confidential migration cannot migrate"
#define NOSEND_REFUSED \
    "Requested operation is not valid: the guest owner's policy for domain 'guest' forbids sending it to another platform (NOSEND, policy bit 0x8)"
#define LIVE_REQUIRED \
    "argument unsupported: VIR_MIGRATE_CONFIDENTIAL requires VIR_MIGRATE_LIVE (--live): a confidential migration starts with the guest running"
#define TLS_REQUIRED \
    "argument unsupported: VIR_MIGRATE_CONFIDENTIAL requires VIR_MIGRATE_TLS (--tls): the guest's device and register state and its shared pages travel outside the transport key's protection"

#define KEY "owner-key-1"
#define NONCE "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define CONFIRMATION "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define CONTRACT2_HERE \
    "Operation not supported: the QEMU binary '/usr/bin/qemu-system-x86_64' supports confidential migration contract version 2 only, but libvirt needs version 3"
#define AGENT_DIR abs_srcdir "/qemumirrorattestdata/"
#define AGENT AGENT_DIR "ok.sh"

/* the attestation errors, for the fake agents in qemumirrorattestdata/ */
#define NOT_EXECUTABLE(agent) \
    "operation failed: attestation agent '" AGENT_DIR agent "' (mirror_attestation_agent in qemu.conf) is not an executable file"
#define AGENT_FAILED(agent, op, how) \
    "operation failed: attestation agent '" AGENT_DIR agent "' failed the '" op "' request for domain 'guest' " how
#define TIMED_OUT(agent, op) \
    "Timed out during operation: attestation agent '" AGENT_DIR agent "' did not answer the '" op "' request for domain 'guest' within 1 seconds (mirror_attestation_timeout)"
#define NOT_JSON(agent, op) \
    "operation failed: attestation agent '" AGENT_DIR agent "' did not answer the '" op "' request for domain 'guest' with a JSON object"
#define REFUSED(op, reason) \
    "operation failed: the guest owner refused the '" op "' request for domain 'guest': " reason
#define BAD_REPLY(op, member) \
    "operation failed: attestation agent's reply to the '" op "' request for domain 'guest' has no valid " member

static const struct testDstData dstTests[] = {
    { "plain migration", GUEST_PLAIN, 0, QEMU_NONE, false, 0, false, VIR_MIGRATE_LIVE, NULL, KEY, AGENT, 0 },
    { "confidential", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS, NULL, KEY, AGENT, 0 },
    { "cookie without the flag", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true, VIR_MIGRATE_LIVE,
      "Requested operation is not valid: the migration cookie of domain 'guest' asks for a confidential migration, but VIR_MIGRATE_CONFIDENTIAL is not set", KEY, AGENT, 0 },
    { "flag without the cookie", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, false, 0, true, CONF_FLAGS,
      "Requested operation is not valid: the source sent no confidential migration data (<confidential/> in the migration cookie) for domain 'guest'", KEY, AGENT, 0 },
    { "tunnelled", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true,
      CONF_FLAGS | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TUNNELLED,
      CONFLICT("VIR_MIGRATE_TUNNELLED (--tunnelled)", "start-migrate-incoming takes a network URI, not a tunnel"), KEY, AGENT, 0 },
    { "rdma pin all", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true,
      CONF_FLAGS | VIR_MIGRATE_RDMA_PIN_ALL,
      CONFLICT("VIR_MIGRATE_RDMA_PIN_ALL (--rdma-pin-all)", "RDMA moves guest RAM outside the migration stream, where the migration helper cannot encrypt it"), KEY, AGENT, 0 },
    { "not live", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true,
      VIR_MIGRATE_TLS | VIR_MIGRATE_CONFIDENTIAL, LIVE_REQUIRED, KEY, AGENT, 0 },
    { "no TLS", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL, TLS_REQUIRED, KEY, AGENT, 0 },
    { "source QEMU without guest-assisted", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, false, CONF_FLAGS,
      "Operation not supported: the source's QEMU for domain 'guest' does not support the migration capability 'guest-assisted'", KEY, AGENT, 0 },
    { "not SEV", GUEST_PLAIN, 0, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Requested operation is not valid: the incoming definition of domain 'guest' is not an SEV guest", KEY, AGENT, 0 },
    { "SEV-SNP", GUEST_SEV_SNP, 0, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Requested operation is not valid: the incoming definition of domain 'guest' is not an SEV guest", KEY, AGENT, 0 },
    { "SEV-ES", GUEST_SEV_ES_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS, SEV_ES_REFUSED, KEY, AGENT, 0 },
    { "NOSEND", GUEST_SEV_NOSEND_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS, NOSEND_REFUSED, KEY, AGENT, 0 },
    { "no mirror", GUEST_SEV, 0, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Requested operation is not valid: the source runs domain 'guest' with 1 mirror vCPUs, but the incoming definition has 0", KEY, AGENT, 0 },
    { "other mirror vCPUs", GUEST_SEV_MIRROR, 2, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Requested operation is not valid: the source runs domain 'guest' with 1 mirror vCPUs, but the incoming definition has 2", KEY, AGENT, 0 },
    { "partial QEMU", GUEST_SEV_MIRROR, 1, QEMU_PARTIAL, true, 1, true, CONF_FLAGS, NO_INTERFACE_HERE, KEY, AGENT, 0 },
    { "QEMU without guest-assisted", GUEST_SEV_MIRROR, 1, QEMU_NO_GUEST_ASSISTED, true, 1, true,
      CONF_FLAGS, NO_INTERFACE_HERE, KEY, AGENT, 0 },
    { "no QEMU", GUEST_SEV_MIRROR, 1, QEMU_NONE, true, 1, true, CONF_FLAGS, NO_INTERFACE_HERE, KEY, AGENT, 0 },
    { "no transport key in the cookie", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Requested operation is not valid: the source did not say which transport key the migration helper of domain 'guest' holds",
      NULL, AGENT, 0 },
    { "invalid transport key identifier", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Requested operation is not valid: the source did not say which transport key the migration helper of domain 'guest' holds",
      "key id with spaces", AGENT, 0 },
    { "no attestation agent", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Operation not supported: no attestation agent is configured to attest this host for domain 'guest' (mirror_attestation_agent in qemu.conf)",
      KEY, NULL, 0 },
    { "attestation agent missing", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      NOT_EXECUTABLE("missing.sh"),
      KEY, AGENT_DIR "missing.sh", 0 },
    { "no attestation agent, plain migration", GUEST_PLAIN, 0, QEMU_NONE, false, 0, false,
      VIR_MIGRATE_LIVE, NULL, NULL, NULL, 0 },
    { "source of contract version 2", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, true, 1, true, CONF_FLAGS,
      "Operation not supported: the source of domain 'guest' does not support confidential migration contract version 3",
      KEY, AGENT, 2 },
    { "QEMU of contract version 2 here", GUEST_SEV_MIRROR, 1, QEMU_CONTRACT2, true, 1, true, CONF_FLAGS,
      CONTRACT2_HERE, KEY, AGENT, 0 },
};


struct testSrcCookieData {
    const char *name;
    bool cookie;               /* the target sent <confidential/> */
    unsigned int mirrorVcpus;
    bool remoteGuestAssisted;  /* the target's QEMU supports guest-assisted */
    unsigned int flags;
    const char *error;
    const char *keyId;         /* the transport key the target's helper holds */
    bool noNonce;              /* the target sent no helper nonce (contract 2) */
};


static int
testSrcCheckCookie(const void *opaque)
{
    const struct testSrcCookieData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(virBitmap) remoteCaps = testRemoteCaps(data->remoteGuestAssisted);
    qemuMigrationCookieConfidential conf = { data->mirrorVcpus, (char *) data->keyId,
                                             QEMU_MIRROR_CONTRACT, (char *) NONCE,
                                             (char *) NONCE };
    qemuDomainJobPrivate *jobPriv;

    if (!vm)
        return -1;

    /* the source's helper holds the key KEY (qemuMigrationConfidentialSrcCheckHelper) */
    jobPriv = vm->job->privateData;
    jobPriv->mirrorKeyId = g_strdup(KEY);
    if (data->noNonce) {
        conf.contract = 2;
        conf.nonce = NULL;
        conf.keyConfirmation = NULL;
    }

    return testCheckResult(qemuMigrationConfidentialSrcCheckCookie(vm,
                                                                   data->cookie ? &conf : NULL,
                                                                   remoteCaps,
                                                                   data->flags),
                           data->error);
}


static const struct testSrcCookieData srcCookieTests[] = {
    { "plain", false, 0, false, VIR_MIGRATE_LIVE, NULL, NULL, false },
    { "confirmed", true, 1, true, CONF_FLAGS, NULL, KEY, false },
    { "not confirmed", false, 0, true, CONF_FLAGS,
      "operation failed: the target did not confirm the confidential migration of domain 'guest'", KEY, false },
    { "other mirror vCPUs", true, 3, true, CONF_FLAGS,
      "operation failed: the target prepared domain 'guest' with 3 mirror vCPUs, but the source has 1", KEY, false },
    { "target QEMU without guest-assisted", true, 1, false, CONF_FLAGS,
      "operation failed: the target's QEMU for domain 'guest' does not support the migration capability 'guest-assisted'", KEY, false },
    { "other transport key", true, 1, true, CONF_FLAGS,
      "operation failed: the migration helper of domain 'guest' on the target holds the transport key 'owner-key-2', but the source's holds 'owner-key-1'",
      "owner-key-2", false },
    { "no transport key confirmed", true, 1, true, CONF_FLAGS,
      "operation failed: the migration helper of domain 'guest' on the target holds the transport key '<null>', but the source's holds 'owner-key-1'",
      NULL, false },
    { "Prepare cookie without a nonce", true, 1, true, CONF_FLAGS,
      "operation failed: the target of domain 'guest' does not support confidential migration contract version 3",
      KEY, true },
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
    const char *items[15];
    const char *error;
    virTristateBool exitOnError;
    bool shuttingDown; /* the daemon began to shut down */
    const char *agent; /* the attestation agent; NULL: ok.sh */
    const char *jobKeyId; /* the migration's key, from the cookie; NULL: KEY */
};


static void
testSetJobKeyId(virDomainObj *vm,
                const char *keyId)
{
    qemuDomainJobPrivate *jobPriv = vm->job->privateData;

    g_free(jobPriv->mirrorKeyId);
    jobPriv->mirrorKeyId = g_strdup(keyId);
}


/* the target's Prepare steps after QEMU's launch against QEMU's replies, in
 * the order the monitor insists on: the launch secret is injected before
 * the first 'cont' */
static int
testDstRun(const void *opaque)
{
    const struct testFlowData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(qemuMonitorTest) test = NULL;
    int reason;
    int rc;

    if (!vm)
        return -1;

    if (!(test = testMonitorAttach(vm, data->items)))
        return -1;

    testSetJobKeyId(vm, data->jobKeyId ? data->jobKeyId : KEY);
    driver.config->mirrorAttestationAgent = (char *) (data->agent ? data->agent : AGENT);
    driver.config->mirrorAttestationTimeout = 1;

    g_atomic_int_set(&driver.shuttingDown, data->shuttingDown);
    rc = qemuMigrationConfidentialDstRun(vm, "tcp:0.0.0.0:49152",
                                         data->exitOnError, VIR_ASYNC_JOB_NONE);
    g_atomic_int_set(&driver.shuttingDown, 0);
    driver.config->mirrorAttestationAgent = NULL;
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
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
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
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(qemuMonitorTest) test = NULL;
    int rc;

    if (!vm)
        return -1;

    if (!(test = testMonitorAttach(vm, data->items)))
        return -1;

    /* the check right before 'migrate' finds the key of the first one */
    if (data->jobKeyId)
        testSetJobKeyId(vm, data->jobKeyId);

    rc = qemuMigrationConfidentialSrcCheckHelper(vm, VIR_ASYNC_JOB_NONE, CONF_FLAGS);
    testMonitorDetach(vm);

    if (testCheckResult(rc, data->error) < 0)
        return -1;

    /* the first check records the key for the cookie */
    if (rc == 0) {
        qemuDomainJobPrivate *jobPriv = vm->job->privateData;

        if (STRNEQ_NULLABLE(jobPriv->mirrorKeyId, KEY)) {
            VIR_TEST_VERBOSE("recorded key '%s'", NULLSTR(jobPriv->mirrorKeyId));
            return -1;
        }
    }
    return 0;
}


/* the whole of qemuMigrationSrcIsAllowed() for a confidential migration,
 * the allowed path included: the helper is asked, and nothing else of
 * QEMU */
static int
testSrcIsAllowedHelper(const void *opaque)
{
    const struct testFlowData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(qemuMonitorTest) test = NULL;
    bool allowed;

    if (!vm)
        return -1;

    if (!(test = testMonitorAttach(vm, data->items)))
        return -1;

    if (data->jobKeyId)
        testSetJobKeyId(vm, data->jobKeyId);

    allowed = qemuMigrationSrcIsAllowed(vm, true, VIR_ASYNC_JOB_NONE, CONF_FLAGS);
    testMonitorDetach(vm);

    return testCheckResult(allowed ? 0 : -1, data->error);
}


#define HELPER "query-migration-helper"
#define READY_KEY "{\"return\": {\"status\": \"ready\", \"transport-key\": true," \
                  " \"transport-key-id\": \"owner-key-1\"}}"
#define READY_OTHER_KEY "{\"return\": {\"status\": \"ready\", \"transport-key\": true," \
                        " \"transport-key-id\": \"owner-key-2\"}}"
#define READY_KEY_NO_ID "{\"return\": {\"status\": \"ready\", \"transport-key\": true}}"
#define READY_NO_KEY "{\"return\": {\"status\": \"ready\"}}"
#define READY_NONCE "{\"return\": {\"status\": \"ready\", \"transport-key\": true," \
                    " \"transport-key-id\": \"owner-key-1\", \"nonce\": \"" NONCE "\"," \
                    " \"key-confirmation\": \"" CONFIRMATION "\"}}"
#define READY_BAD_NONCE "{\"return\": {\"status\": \"ready\", \"transport-key\": true," \
                        " \"transport-key-id\": \"owner-key-1\", \"nonce\": \"00\"," \
                        " \"key-confirmation\": \"" CONFIRMATION "\"}}"
#define OK "{\"return\": {}}"
#define MEASURE "query-sev-launch-measure"
#define MEASUREMENT "{\"return\": {\"data\": \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\"}}"
#define SEV "query-sev"
#define SEV_INFO "{\"return\": {\"enabled\": true, \"api-major\": 1, \"api-minor\": 55," \
                 " \"build-id\": 24, \"policy\": 1, \"state\": \"launch-secret\"," \
                 " \"handle\": 1, \"sev-type\": \"sev\"}}"
#define INJECT "sev-inject-launch-secret"
#define ATTESTED MEASURE, MEASUREMENT, SEV, SEV_INFO, INJECT, OK

#define ABSENT VIR_TRISTATE_BOOL_ABSENT


static const struct testFlowData dstRunTests[] = {
    { "ready", { ATTESTED, "cont", OK, HELPER, READY_KEY, "start-migrate-incoming", OK, NULL },
      NULL, ABSENT, false, NULL, NULL },
    /* start-migrate-incoming takes migrate-incoming's arguments; the test
     * monitor validates them against the schema */
    { "ready, exit-on-error as for migrate-incoming",
      { ATTESTED, "cont", OK, HELPER, READY_KEY, "start-migrate-incoming", OK, NULL },
      NULL, VIR_TRISTATE_BOOL_NO, false, NULL, NULL },
    { "measurement unavailable",
      { MEASURE, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"SEV launch measurement is not available\"}}", NULL },
      "internal error: unable to execute QEMU command 'query-sev-launch-measure': SEV launch measurement is not available",
      ABSENT, false, NULL, NULL },
    /* nothing is injected, QEMU's vCPUs never run */
    { "guest owner refuses", { MEASURE, MEASUREMENT, SEV, SEV_INFO, NULL },
      REFUSED("attest", "the launch measurement does not match the expected firmware"),
      ABSENT, false, AGENT_DIR "refuse.sh", NULL },
    { "agent fails", { MEASURE, MEASUREMENT, SEV, SEV_INFO, NULL },
      AGENT_FAILED("fail.sh", "attest", "(exit status 3): cannot reach the guest owner's key broker"),
      ABSENT, false, AGENT_DIR "fail.sh", NULL },
    { "agent times out", { MEASURE, MEASUREMENT, SEV, SEV_INFO, NULL },
      TIMED_OUT("hang.sh", "attest"),
      ABSENT, false, AGENT_DIR "hang.sh", NULL },
    { "agent output malformed", { MEASURE, MEASUREMENT, SEV, SEV_INFO, NULL },
      NOT_JSON("garbage.sh", "attest"),
      ABSENT, false, AGENT_DIR "garbage.sh", NULL },
    { "agent missing", { MEASURE, MEASUREMENT, SEV, SEV_INFO, NULL },
      NOT_EXECUTABLE("missing.sh"),
      ABSENT, false, AGENT_DIR "missing.sh", NULL },
    { "guest owner provisions another key", { MEASURE, MEASUREMENT, SEV, SEV_INFO, NULL },
      "operation failed: the guest owner provisions transport key 'owner-key-2' for domain 'guest', but the source's migration helper holds 'owner-key-1'",
      ABSENT, false, AGENT_DIR "other-key.sh", NULL },
    { "platform rejects the secret",
      { MEASURE, MEASUREMENT, SEV, SEV_INFO, INJECT,
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"SEV: failed to inject secret ret=-1 fw_error=12 'Bad measurement'\"}}", NULL },
      "operation failed: the SEV platform rejected the launch secret for domain 'guest': internal error: unable to execute QEMU command 'sev-inject-launch-secret': SEV: failed to inject secret ret=-1 fw_error=12 'Bad measurement'",
      ABSENT, false, NULL, NULL },
    { "cont fails", { ATTESTED, "cont", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}", NULL },
      "internal error: unable to execute QEMU command 'cont': no", ABSENT, false, NULL, NULL },
    { "helper failed", { ATTESTED, "cont", OK, HELPER,
                         "{\"return\": {\"status\": \"failed\", \"error\": \"no helper in firmware\"}}",
                         NULL },
      "operation failed: migration helper of domain 'guest' failed: no helper in firmware",
      ABSENT, false, NULL, NULL },
    { "no transport key", { ATTESTED, "cont", OK, HELPER, READY_NO_KEY, NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' holds no transport key: guest pages would leave the guest unprotected",
      ABSENT, false, NULL, NULL },
    { "transport key without identifier", { ATTESTED, "cont", OK, HELPER, READY_KEY_NO_ID, NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' holds a transport key without a valid identifier",
      ABSENT, false, NULL, NULL },
    { "helper holds another key", { ATTESTED, "cont", OK, HELPER, READY_OTHER_KEY, NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' holds the transport key 'owner-key-2', but the migration uses the key 'owner-key-1'",
      ABSENT, false, NULL, NULL },
    { "start-migrate-incoming fails",
      { ATTESTED, "cont", OK, HELPER, READY_KEY, "start-migrate-incoming",
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"helper not ready\"}}", NULL },
      "internal error: unable to execute QEMU command 'start-migrate-incoming': helper not ready",
      ABSENT, false, NULL, NULL },
    /* QEMU's vCPUs never run: attestation is over, but nothing goes on */
    { "daemon shutting down", { ATTESTED, NULL },
      "operation aborted: the confidential migration of domain 'guest' was aborted: libvirt is shutting down",
      ABSENT, true, NULL, NULL },
};

/* the target's Prepare cookie (contract version 3): its helper's nonce and
 * key confirmation, asked of the helper when the cookie is made */
static int
testDstCookie(const void *opaque)
{
    const struct testFlowData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(qemuMonitorTest) test = NULL;
    g_autoptr(qemuMigrationCookieConfidential) conf = NULL;

    if (!vm)
        return -1;

    if (!(test = testMonitorAttach(vm, data->items)))
        return -1;

    testSetJobKeyId(vm, KEY);
    vm->job->asyncJob = VIR_ASYNC_JOB_MIGRATION_IN;
    conf = qemuMigrationCookieConfidentialNew(vm);
    vm->job->asyncJob = VIR_ASYNC_JOB_NONE;
    testMonitorDetach(vm);

    if (conf &&
        (conf->contract != QEMU_MIRROR_CONTRACT ||
         STRNEQ_NULLABLE(conf->nonce, NONCE) ||
         STRNEQ_NULLABLE(conf->keyConfirmation, CONFIRMATION))) {
        VIR_TEST_VERBOSE("contract %u nonce '%s' confirmation '%s'", conf->contract,
                         NULLSTR(conf->nonce), NULLSTR(conf->keyConfirmation));
        return -1;
    }
    return testCheckResult(conf ? 0 : -1, data->error);
}


#define NO_NONCE \
    "operation failed: the migration helper of domain 'guest' reports no valid nonce and key confirmation (contract version 3)"

static const struct testFlowData dstCookieTests[] = {
    { "nonce", { HELPER, READY_NONCE, NULL }, NULL, ABSENT, false, NULL, NULL },
    { "no nonce", { HELPER, READY_KEY, NULL }, NO_NONCE, ABSENT, false, NULL, NULL },
    { "invalid nonce", { HELPER, READY_BAD_NONCE, NULL }, NO_NONCE, ABSENT, false, NULL, NULL },
    { "key lost", { HELPER, READY_NO_KEY, NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' holds no transport key: guest pages would leave the guest unprotected",
      ABSENT, false, NULL, NULL },
};

/* the source hands the target's nonce and key confirmation to its helper:
 * migrate-set-parameters, its arguments checked against the schema of a
 * QEMU of contract version 3 */
static int
testSrcSetPeer(const void *opaque G_GNUC_UNUSED)
{
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(qemuMonitorTest) test = NULL;
    const char *items[] = { "migrate-set-parameters", OK, NULL };
    const char *none[] = { NULL };
    qemuMigrationCookieConfidential conf = { 1, (char *) KEY, QEMU_MIRROR_CONTRACT,
                                             (char *) NONCE, (char *) CONFIRMATION };
    qemuMigrationCookieConfidential old = { 1, (char *) KEY, 2, NULL, NULL };
    int rc;

    if (!vm)
        return -1;

    if (!(test = testMonitorAttach(vm, items)))
        return -1;
    rc = qemuMigrationConfidentialSrcSetPeer(vm, &conf, VIR_ASYNC_JOB_NONE, CONF_FLAGS);
    testMonitorDetach(vm);
    g_clear_pointer(&test, qemuMonitorTestFree);
    if (testCheckResult(rc, NULL) < 0)
        return -1;

    /* nothing for a plain migration, and never without a nonce */
    if (!(test = testMonitorAttach(vm, none)))
        return -1;
    rc = qemuMigrationConfidentialSrcSetPeer(vm, &conf, VIR_ASYNC_JOB_NONE, VIR_MIGRATE_LIVE);
    if (rc == 0)
        rc = qemuMigrationConfidentialSrcSetPeer(vm, &old, VIR_ASYNC_JOB_NONE, CONF_FLAGS) < 0 ? 0 : -2;
    testMonitorDetach(vm);
    return rc == 0 ? 0 : -1;
}


static const struct testFlowData srcHelperTests[] = {
    { "ready", { HELPER, READY_KEY, NULL }, NULL, ABSENT, false, NULL, NULL },
    { "booting", { HELPER, "{\"return\": {\"status\": \"booting\"}}", NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' is not ready (status 'booting')",
      ABSENT, false, NULL, NULL },
    { "failed", { HELPER, "{\"return\": {\"status\": \"failed\", \"error\": \"mailbox timeout\"}}", NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' is not ready (status 'failed': mailbox timeout)",
      ABSENT, false, NULL, NULL },
    { "no transport key", { HELPER, READY_NO_KEY, NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' holds no transport key: guest pages would leave the guest unprotected",
      ABSENT, false, NULL, NULL },
    { "transport key without identifier", { HELPER, READY_KEY_NO_ID, NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' holds a transport key without a valid identifier",
      ABSENT, false, NULL, NULL },
    { "same key again", { HELPER, READY_KEY, NULL }, NULL, ABSENT, false, NULL, KEY },
    { "key changed since the first check", { HELPER, READY_OTHER_KEY, NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' holds the transport key 'owner-key-2', but the migration uses the key 'owner-key-1'",
      ABSENT, false, NULL, KEY },
};



static int
testCookieParse(const char *xml,
                const char *error)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctxt = NULL;
    g_autoptr(qemuMigrationCookieConfidential) conf = NULL;

    if (!(doc = virXMLParseStringCtxt(xml, "(cookie)", &ctxt)))
        return -1;

    conf = qemuMigrationCookieConfidentialParse(ctxt);
    return testCheckResult(conf ? 0 : -1, error);
}


static int
testCookie(const void *opaque G_GNUC_UNUSED)
{
    struct testData plainData = { "", GUEST_SEV, true, QEMU_MIRROR, 0, NULL };
    struct testData mirrorData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) plain = testDomain(&plainData);
    g_autoptr(virDomainObj) mirror = testDomain(&mirrorData);
    g_autoptr(qemuMigrationCookieConfidential) conf = NULL;
    g_autoptr(qemuMigrationCookieConfidential) parsed = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctxt = NULL;
    g_autofree char *xml = NULL;
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;

    if (!plain || !mirror)
        return -1;

    /* nothing to say for a guest without mirror vCPUs */
    if (qemuMigrationCookieConfidentialNew(plain))
        return -1;

    /* the key of the migration, recorded with the job */
    testSetJobKeyId(mirror, KEY);
    if (!(conf = qemuMigrationCookieConfidentialNew(mirror)))
        return -1;
    qemuMigrationCookieConfidentialFormat(&buf, conf);
    if (STRNEQ(virBufferCurrentContent(&buf),
               "<confidential mirrorVcpus='1' keyId='owner-key-1' contract='3'/>\n")) {
        VIR_TEST_VERBOSE("formatted '%s'", virBufferCurrentContent(&buf));
        return -1;
    }

    /* and back */
    xml = g_strdup_printf("<qemu-migration>%s</qemu-migration>",
                          virBufferCurrentContent(&buf));
    if (!(doc = virXMLParseStringCtxt(xml, "(cookie)", &ctxt)) ||
        !(parsed = qemuMigrationCookieConfidentialParse(ctxt)) ||
        parsed->mirrorVcpus != 1 || STRNEQ_NULLABLE(parsed->keyId, KEY) ||
        parsed->contract != QEMU_MIRROR_CONTRACT || parsed->nonce)
        return -1;

    /* a target's Prepare cookie: its helper's nonce and key confirmation */
    conf->nonce = g_strdup(NONCE);
    conf->keyConfirmation = g_strdup(NONCE);
    virBufferFreeAndReset(&buf);
    qemuMigrationCookieConfidentialFormat(&buf, conf);
    if (STRNEQ(virBufferCurrentContent(&buf),
               "<confidential mirrorVcpus='1' keyId='owner-key-1' contract='3' nonce='" NONCE
               "' keyConfirmation='" NONCE "'/>\n")) {
        VIR_TEST_VERBOSE("formatted '%s'", virBufferCurrentContent(&buf));
        return -1;
    }
    g_clear_pointer(&xml, g_free);
    g_clear_pointer(&parsed, qemuMigrationCookieConfidentialFree);
    g_clear_pointer(&ctxt, xmlXPathFreeContext);
    g_clear_pointer(&doc, xmlFreeDoc);
    xml = g_strdup_printf("<qemu-migration>%s</qemu-migration>",
                          virBufferCurrentContent(&buf));
    if (!(doc = virXMLParseStringCtxt(xml, "(cookie)", &ctxt)) ||
        !(parsed = qemuMigrationCookieConfidentialParse(ctxt)) ||
        STRNEQ_NULLABLE(parsed->nonce, NONCE) ||
        STRNEQ_NULLABLE(parsed->keyConfirmation, NONCE))
        return -1;

    if (testCookieParse("<qemu-migration><confidential mirrorVcpus='3'/></qemu-migration>",
                        NULL) < 0 ||
        testCookieParse("<qemu-migration/>",
                        "internal error: missing <confidential> in migration cookie") < 0 ||
        testCookieParse("<qemu-migration><confidential/></qemu-migration>",
                        "XML error: Missing required attribute 'mirrorVcpus' in element 'confidential'") < 0 ||
        testCookieParse("<qemu-migration><confidential mirrorVcpus='0'/></qemu-migration>",
                        "XML error: Invalid value for attribute 'mirrorVcpus' in element 'confidential': Zero is not permitted") < 0 ||
        testCookieParse("<qemu-migration><confidential mirrorVcpus='1' nonce='00'/></qemu-migration>",
                        "internal error: invalid helper nonce or key confirmation in the migration cookie") < 0 ||
        testCookieParse("<qemu-migration><confidential mirrorVcpus='1' nonce='" NONCE
                        "' keyConfirmation='" NONCE "0'/></qemu-migration>",
                        "internal error: invalid helper nonce or key confirmation in the migration cookie") < 0 ||
        testCookieParse("<qemu-migration><confidential mirrorVcpus='1' contract='x'/></qemu-migration>",
                        "XML error: Invalid value for attribute 'contract' in element 'confidential': 'x'. Expected non-negative integer value") < 0)
        return -1;

    return 0;
}


struct testAgentData {
    const char *name;
    const char *agent;     /* in qemumirrorattestdata/ */
    const char *step;      /* QEMU_MIRROR_ATTEST_STEP_* */
    const char *error;     /* NULL: the reply is accepted */
};


/* one run of the attestation agent and the parsing of its reply */
static int
testAgent(const void *opaque)
{
    const struct testAgentData *data = opaque;
    g_autofree char *agent = g_strdup_printf("%s%s", AGENT_DIR, data->agent);
    g_autoptr(virJSONValue) request = virJSONValueNewObject();
    g_autoptr(virJSONValue) reply = NULL;
    g_autoptr(qemuMirrorAttestSecret) secret = NULL;
    g_autofree char *dhCert = NULL;
    g_autofree char *session = NULL;
    bool attest = STREQ(data->step, QEMU_MIRROR_ATTEST_STEP_ATTEST);
    unsigned long long elapsed = 0;
    int rc;

    if (virJSONValueObjectAppendString(request, "operation", data->step) < 0 ||
        virJSONValueObjectAppendString(request, "measurement", "") < 0 ||
        virJSONValueObjectAppendString(request, "source-key-id", KEY) < 0)
        return -1;

    rc = qemuMirrorAttestRun(agent, 1, "guest", data->step, request, &reply,
                             &elapsed);
    if (rc == 0) {
        if (attest)
            rc = (secret = qemuMirrorAttestParseSecret(reply, "guest")) ? 0 : -1;
        else
            rc = qemuMirrorAttestParseSession(reply, "guest", &dhCert, &session);
    }

    if (testCheckResult(rc, data->error) < 0)
        return -1;

    if (rc == 0 && attest &&
        (STRNEQ(secret->keyId, KEY) ||
         STRNEQ(secret->header, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMw=="))) {
        VIR_TEST_VERBOSE("secret for key '%s'", secret->keyId);
        return -1;
    }
    return 0;
}



static const struct testAgentData agentTests[] = {
    { "attest", "ok.sh", "attest", NULL },
    { "session", "ok.sh", "session", NULL },
    { "refused", "refuse.sh", "attest",
      REFUSED("attest", "the launch measurement does not match the expected firmware") },
    { "exit status", "fail.sh", "session",
      AGENT_FAILED("fail.sh", "session", "(exit status 3): cannot reach the guest owner's key broker") },
    { "timeout", "hang.sh", "attest",
      TIMED_OUT("hang.sh", "attest") },
    { "timeout, its output closed", "close-and-hang.sh", "attest",
      TIMED_OUT("close-and-hang.sh", "attest") },
    { "missing", "missing.sh", "attest",
      NOT_EXECUTABLE("missing.sh") },
    { "not JSON", "garbage.sh", "attest",
      NOT_JSON("garbage.sh", "attest") },
    { "not an object", "array.sh", "attest",
      NOT_JSON("array.sh", "attest") },
    { "header size", "short-header.sh", "attest",
      BAD_REPLY("attest", "'secret-header' (base64 of 52 bytes)") },
    { "secret not base64", "bad-base64.sh", "attest",
      BAD_REPLY("attest", "'secret' (base64 of a multiple of 16 bytes)") },
    { "key id invalid", "bad-key-id.sh", "attest",
      BAD_REPLY("attest", "'key-id' (1 to 64 characters of A-Z, a-z, 0-9, '.', '_', ':', '-')") },
    { "key id missing", "no-key-id.sh", "attest",
      BAD_REPLY("attest", "'key-id' (1 to 64 characters of A-Z, a-z, 0-9, '.', '_', ':', '-')") },
    { "session size", "short-session.sh", "session",
      BAD_REPLY("session", "'session' (base64 of 128 bytes)") },
};


/* what every request tells the agent */
static int
testAgentRequest(const void *opaque G_GNUC_UNUSED)
{
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    virSEVCapability platform = { .pdh = (char *) "UERI", .cert_chain = (char *) "Q0hBSU4=",
                                  .cpu0_id = (char *) "Q1BV" };
    g_autoptr(virJSONValue) request = NULL;
    g_autofree char *str = NULL;
    const char *expect =
        "{\"version\":1,\"operation\":\"session\","
        "\"domain\":{\"name\":\"guest\",\"uuid\":\"c7a5fdbd-edaf-9455-926a-d65c16db1809\"},"
        "\"host\":\"target.example.org\",\"policy\":1,"
        "\"platform\":{\"pdh\":\"UERI\",\"cert-chain\":\"Q0hBSU4=\",\"cpu0-id\":\"Q1BV\"}}";

    if (!vm)
        return -1;

    ignore_value(virUUIDParse("c7a5fdbd-edaf-9455-926a-d65c16db1809", vm->def->uuid));

    if (!(request = qemuMirrorAttestRequestNew("session", vm->def,
                                               "target.example.org", &platform)) ||
        !(str = virJSONValueToString(request, false)))
        return -1;

    if (STRNEQ(str, expect)) {
        VIR_TEST_VERBOSE("request '%s'", str);
        return -1;
    }
    return 0;
}


/* the launch session: from the incoming definition, or from the agent */
static int
testSession(const void *opaque G_GNUC_UNUSED)
{
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    virSEVCapability platform = { .pdh = (char *) "UERI" };
    virDomainSEVDef *sev;
    int rc;

    if (!vm)
        return -1;
    sev = &vm->def->sec->data.sev;
    driver.config->mirrorAttestationTimeout = 1;

    /* the management application's session is used: the agent (which
     * would fail) is not run */
    sev->dh_cert = g_strdup("TUFOQUdFRA==");
    sev->session = g_strdup("TUFOQUdFRA==");
    driver.config->mirrorAttestationAgent = (char *) AGENT_DIR "fail.sh";
    rc = qemuMirrorAttestSession(driver.config, vm->def, &platform);
    if (testCheckResult(rc, NULL) < 0 || STRNEQ(sev->session, "TUFOQUdFRA=="))
        goto error;

    /* without one, the guest owner's */
    g_clear_pointer(&sev->session, g_free);
    driver.config->mirrorAttestationAgent = (char *) AGENT;
    rc = qemuMirrorAttestSession(driver.config, vm->def, &platform);
    if (testCheckResult(rc, NULL) < 0 || !sev->session ||
        !STRPREFIX(sev->session, "AAECAwQF") || !STRPREFIX(sev->dh_cert, "AQAAAAAA"))
        goto error;

    /* no PDH, no session */
    g_clear_pointer(&sev->session, g_free);
    rc = qemuMirrorAttestSession(driver.config, vm->def, NULL);
    if (testCheckResult(rc, "Operation not supported: cannot request a launch session for domain 'guest': the SEV platform data (PDH) of this host is unknown") < 0)
        goto error;

    driver.config->mirrorAttestationAgent = NULL;
    return 0;

 error:
    driver.config->mirrorAttestationAgent = NULL;
    return -1;
}


/* the source's launch session never goes to the target; another one, put
 * in the definition for the target by the management application, does */
static int
testStripSession(const void *opaque G_GNUC_UNUSED)
{
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(virDomainObj) other = testDomain(&domData);
    virDomainSEVDef *src;
    virDomainSEVDef *dst;

    if (!vm || !other)
        return -1;
    src = &vm->def->sec->data.sev;
    dst = &other->def->sec->data.sev;

    src->dh_cert = g_strdup("U09VUkNF");
    src->session = g_strdup("U09VUkNF");

    /* a copy of the source's definition */
    dst->dh_cert = g_strdup(src->dh_cert);
    dst->session = g_strdup(src->session);
    qemuMigrationConfidentialSrcStripSession(vm, other->def);
    if (dst->dh_cert || dst->session)
        return -1;

    /* the target's own */
    dst->dh_cert = g_strdup("VEFSR0VU");
    dst->session = g_strdup("VEFSR0VU");
    qemuMigrationConfidentialSrcStripSession(vm, other->def);
    if (STRNEQ_NULLABLE(dst->session, "VEFSR0VU") ||
        STRNEQ_NULLABLE(dst->dh_cert, "VEFSR0VU"))
        return -1;

    return 0;
}


/* the target's persistent definition gets the session the target launched
 * with, unless the management application gave it one */
static int
testPersistSession(const void *opaque G_GNUC_UNUSED)
{
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(virDomainObj) other = testDomain(&domData);
    virDomainSEVDef *live;
    virDomainSEVDef *persistent;

    if (!vm || !other)
        return -1;
    live = &vm->def->sec->data.sev;
    persistent = &other->def->sec->data.sev;

    live->dh_cert = g_strdup("VEFSR0VULUNFUlQ=");
    live->session = g_strdup("VEFSR0VU");

    /* stripped by the source */
    qemuMigrationConfidentialDstPersistSession(vm, other->def);
    if (STRNEQ_NULLABLE(persistent->session, "VEFSR0VU") ||
        STRNEQ_NULLABLE(persistent->dh_cert, "VEFSR0VULUNFUlQ="))
        return -1;

    /* given by the management application */
    g_free(persistent->session);
    g_free(persistent->dh_cert);
    persistent->dh_cert = g_strdup("TUFOQUdFRA==");
    persistent->session = g_strdup("TUFOQUdFRA==");
    qemuMigrationConfidentialDstPersistSession(vm, other->def);
    if (STRNEQ_NULLABLE(persistent->session, "TUFOQUdFRA=="))
        return -1;

    return 0;
}


#define NO_INTERFACE_SRC \
    "Operation not supported: the QEMU binary '/usr/bin/qemu-system-x86_64' of domain 'guest' lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)"

static const struct testData tests[] = {
    /* without VIR_MIGRATE_CONFIDENTIAL */
    { "plain guest", GUEST_PLAIN, true, QEMU_NONE, VIR_MIGRATE_LIVE, NULL },
    /* a guest without mirror vCPUs is left to QEMU's SEV migration
     * blocker, as upstream */
    { "SEV guest left to QEMU", GUEST_SEV, true, QEMU_MIRROR, VIR_MIGRATE_LIVE,
      NULL },
    { "SEV guest non-live left to QEMU", GUEST_SEV, true, QEMU_NONE, 0, NULL },
    { "SEV-ES guest left to QEMU", GUEST_SEV_ES, true, QEMU_MIRROR, VIR_MIGRATE_LIVE,
      NULL },
    { "SEV-SNP guest left to QEMU", GUEST_SEV_SNP, true, QEMU_NONE, VIR_MIGRATE_LIVE,
      NULL },
    { "SEV guest with mirror refused", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TLS, SEV_REFUSED },
    { "SEV guest with mirror non-live refused", GUEST_SEV_MIRROR, true, QEMU_NONE, 0,
      SEV_REFUSED },
    { "SEV guest offline", GUEST_SEV, false, QEMU_NONE,
      VIR_MIGRATE_OFFLINE | VIR_MIGRATE_PERSIST_DEST, NULL },

    /* with VIR_MIGRATE_CONFIDENTIAL */
    { "confidential", GUEST_SEV_MIRROR, true, QEMU_MIRROR, CONF_FLAGS, NULL },
    { "confidential p2p tls paused", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PAUSED |
      VIR_MIGRATE_PERSIST_DEST, NULL },
    { "confidential without TLS", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL, TLS_REQUIRED },
    { "confidential not live", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_TLS | VIR_MIGRATE_CONFIDENTIAL, LIVE_REQUIRED },
    { "confidential offline", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_OFFLINE | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_OFFLINE (--offline)", "an offline migration moves no guest memory") },
    { "confidential postcopy", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_POSTCOPY,
      CONFLICT("VIR_MIGRATE_POSTCOPY (--postcopy)", "the migration helper does not serve post-copy page requests") },
    { "confidential postcopy resume", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_POSTCOPY_RESUME | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_POSTCOPY_RESUME (--postcopy-resume)", "the migration helper does not serve post-copy page requests") },
    { "confidential tunnelled", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TUNNELLED,
      CONFLICT("VIR_MIGRATE_TUNNELLED (--tunnelled)", "start-migrate-incoming takes a network URI, not a tunnel") },
    { "confidential copy storage all", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_NON_SHARED_DISK,
      CONFLICT("VIR_MIGRATE_NON_SHARED_DISK (--copy-storage-all)", "confidential migration does not migrate storage") },
    { "confidential copy storage inc", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_NON_SHARED_INC,
      CONFLICT("VIR_MIGRATE_NON_SHARED_INC (--copy-storage-inc)", "confidential migration does not migrate storage") },
    { "confidential compressed", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_COMPRESSED,
      CONFLICT("VIR_MIGRATE_COMPRESSED (--compressed)", "pages encrypted with the transport key cannot be compressed") },
    { "confidential parallel", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_PARALLEL, NULL },
    { "confidential zerocopy", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_ZEROCOPY,
      CONFLICT("VIR_MIGRATE_ZEROCOPY (--zerocopy)", "zero-copy sends pages straight from guest memory, not the copies the migration helper encrypts") },
    { "confidential rdma pin all", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_RDMA_PIN_ALL,
      CONFLICT("VIR_MIGRATE_RDMA_PIN_ALL (--rdma-pin-all)", "RDMA moves guest RAM outside the migration stream, where the migration helper cannot encrypt it") },
    { "confidential auto-converge", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      CONF_FLAGS | VIR_MIGRATE_AUTO_CONVERGE, NULL },
    { "confidential not running", GUEST_SEV_MIRROR, false, QEMU_MIRROR, CONF_FLAGS,
      "Requested operation is not valid: domain 'guest' is not running: confidential migration moves a running guest" },
    { "confidential plain guest", GUEST_PLAIN, true, QEMU_MIRROR, CONF_FLAGS,
      "Requested operation is not valid: domain 'guest' is not an SEV guest (<launchSecurity type='sev'>): confidential migration is for SEV guests only" },
    { "confidential SEV-SNP guest", GUEST_SEV_SNP, true, QEMU_MIRROR, CONF_FLAGS,
      "Requested operation is not valid: domain 'guest' is not an SEV guest (<launchSecurity type='sev'>): confidential migration is for SEV guests only" },
    { "confidential SEV-ES guest", GUEST_SEV_ES_MIRROR, true, QEMU_MIRROR, CONF_FLAGS,
      SEV_ES_REFUSED },
    { "confidential NOSEND guest", GUEST_SEV_NOSEND_MIRROR, true, QEMU_MIRROR, CONF_FLAGS,
      NOSEND_REFUSED },
    { "confidential without mirror", GUEST_SEV, true, QEMU_MIRROR, CONF_FLAGS,
      "Requested operation is not valid: domain 'guest' has no mirror vCPUs: confidential migration needs <mirror/> in its definition (it takes effect when the domain next starts)" },
    { "confidential partial QEMU", GUEST_SEV_MIRROR, true, QEMU_PARTIAL, CONF_FLAGS,
      NO_INTERFACE_SRC },
    { "confidential QEMU without guest-assisted", GUEST_SEV_MIRROR, true,
      QEMU_NO_GUEST_ASSISTED, CONF_FLAGS, NO_INTERFACE_SRC },
    { "confidential unknown QEMU", GUEST_SEV_MIRROR, true, QEMU_NONE, CONF_FLAGS,
      NO_INTERFACE_SRC },
    { "confidential QEMU of contract version 2", GUEST_SEV_MIRROR, true, QEMU_CONTRACT2,
      CONF_FLAGS, CONTRACT2_HERE },
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

    if (virTestRun("source hands the target's nonce to its helper", testSrcSetPeer, NULL) < 0)
        ret = -1;

    for (i = 0; i < G_N_ELEMENTS(dstCookieTests); i++) {
        g_autofree char *name = g_strdup_printf("target's Prepare cookie: %s",
                                                dstCookieTests[i].name);

        if (virTestRun(name, testDstCookie, &dstCookieTests[i]) < 0)
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

    for (i = 0; i < G_N_ELEMENTS(parallelTests); i++) {
        g_autofree char *name = g_strdup_printf("parallel: %s", parallelTests[i].name);

        if (virTestRun(name, testParallel, &parallelTests[i]) < 0)
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

    for (i = 0; i < G_N_ELEMENTS(agentTests); i++) {
        g_autofree char *name = g_strdup_printf("attestation agent: %s",
                                                agentTests[i].name);

        if (virTestRun(name, testAgent, &agentTests[i]) < 0)
            ret = -1;
    }

    if (virTestRun("attestation agent: request", testAgentRequest, NULL) < 0)
        ret = -1;
    if (virTestRun("launch session", testSession, NULL) < 0)
        ret = -1;
    if (virTestRun("source's launch session left out", testStripSession, NULL) < 0)
        ret = -1;
    if (virTestRun("target's session in its persistent definition",
                   testPersistSession, NULL) < 0)
        ret = -1;

    g_clear_pointer(&schema, g_hash_table_unref);
    qemuTestDriverFree(&driver);
    return ret == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

VIR_TEST_MAIN(mymain)
