/*
 * qemumigrationconfidentialtest.c: which migrations of which guests libvirt
 * allows with and without VIR_MIGRATE_CONFIDENTIAL, and what it says when it
 * refuses; the checks of the migration cookie on both hosts; and the
 * target's Prepare steps and the source's helper check against a test
 * monitor whose replies are validated against the
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

#define VIR_FROM_THIS VIR_FROM_NONE

static virQEMUDriver driver;
static GHashTable *schema;

typedef enum {
    GUEST_PLAIN,
    GUEST_SEV,
    GUEST_SEV_MIRROR,
    GUEST_SEV_SNP,
} testGuest;

typedef enum {
    QEMU_MIRROR,    /* QEMU with the whole confidential migration interface */
    QEMU_PARTIAL,   /* QEMU that lacks start-migrate-incoming */
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
    }
    if (data->guest == GUEST_SEV_MIRROR) {
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
        if (data->qemu == QEMU_MIRROR)
            virQEMUCapsSet(priv->qemuCaps, QEMU_CAPS_START_MIGRATE_INCOMING);
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

    if (!vm)
        return -1;

    return testCheckResult(qemuMigrationConfidentialSrcCheck(vm, data->flags),
                           data->error);
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


struct testDstData {
    const char *name;
    testGuest guest;
    unsigned int defMirrorVcpus;
    testQemu qemu;
    unsigned int contract;     /* 0: no <confidential/> in the cookie */
    unsigned int cookieMirrorVcpus;
    unsigned int flags;
    const char *error;         /* NULL: accepted */
};


static int
testDstCheck(const void *opaque)
{
    const struct testDstData *data = opaque;
    struct testData domData = { "", data->guest, false, data->qemu, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    qemuDomainObjPrivate *priv;
    qemuMigrationCookieConfidential conf = { data->contract,
                                             data->cookieMirrorVcpus };

    if (!vm)
        return -1;
    priv = vm->privateData;

    if (vm->def->mirror)
        vm->def->mirror->vcpus = data->defMirrorVcpus;

    return testCheckResult(qemuMigrationConfidentialDstCheck(vm->def,
                                                             data->contract ? &conf : NULL,
                                                             priv->qemuCaps,
                                                             data->flags),
                           data->error);
}


#define CONF_FLAGS (VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL)

static const struct testDstData dstTests[] = {
    { "plain migration", GUEST_PLAIN, 0, QEMU_NONE, 0, 0, VIR_MIGRATE_LIVE, NULL },
    { "confidential", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, 1, 1, CONF_FLAGS, NULL },
    { "cookie without the flag", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, 1, 1, VIR_MIGRATE_LIVE,
      "Requested operation is not valid: the migration cookie of domain 'guest' asks for a confidential migration, but VIR_MIGRATE_CONFIDENTIAL is not set" },
    { "flag without the cookie", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, 0, 0, CONF_FLAGS,
      "Requested operation is not valid: the source sent no confidential migration data (<confidential/> in the migration cookie) for domain 'guest'" },
    { "tunnelled", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, 1, 1,
      CONF_FLAGS | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TUNNELLED,
      CONFLICT("VIR_MIGRATE_TUNNELLED (--tunnelled)", "the target listens through start-migrate-incoming, which takes a network URI rather than the stream a tunnelled migration uses") },
    { "newer contract", GUEST_SEV_MIRROR, 1, QEMU_MIRROR, 2, 1, CONF_FLAGS,
      "Operation not supported: the source relies on version 2 of the confidential migration contract, this host implements version 1" },
    { "not SEV", GUEST_PLAIN, 0, QEMU_MIRROR, 1, 1, CONF_FLAGS,
      "Requested operation is not valid: the incoming definition of domain 'guest' is not an SEV guest" },
    { "SEV-SNP", GUEST_SEV_SNP, 0, QEMU_MIRROR, 1, 1, CONF_FLAGS,
      "Requested operation is not valid: the incoming definition of domain 'guest' is not an SEV guest" },
    { "no mirror", GUEST_SEV, 0, QEMU_MIRROR, 1, 1, CONF_FLAGS,
      "Requested operation is not valid: the source runs domain 'guest' with 1 mirror vCPUs, but the incoming definition has 0" },
    { "other mirror vCPUs", GUEST_SEV_MIRROR, 2, QEMU_MIRROR, 1, 1, CONF_FLAGS,
      "Requested operation is not valid: the source runs domain 'guest' with 1 mirror vCPUs, but the incoming definition has 2" },
    { "partial QEMU", GUEST_SEV_MIRROR, 1, QEMU_PARTIAL, 1, 1, CONF_FLAGS,
      "Operation not supported: the QEMU binary '/usr/bin/qemu-system-x86_64' on this host lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)" },
    { "no QEMU", GUEST_SEV_MIRROR, 1, QEMU_NONE, 1, 1, CONF_FLAGS,
      "Operation not supported: the QEMU binary '/usr/bin/qemu-system-x86_64' on this host lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)" },
};


struct testSrcCookieData {
    const char *name;
    unsigned int contract;     /* 0: the target sent no <confidential/> */
    unsigned int mirrorVcpus;
    unsigned int flags;
    const char *error;
};


static int
testSrcCheckCookie(const void *opaque)
{
    const struct testSrcCookieData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    qemuMigrationCookieConfidential conf = { data->contract, data->mirrorVcpus };

    if (!vm)
        return -1;

    return testCheckResult(qemuMigrationConfidentialSrcCheckCookie(vm,
                                                                   data->contract ? &conf : NULL,
                                                                   data->flags),
                           data->error);
}


static const struct testSrcCookieData srcCookieTests[] = {
    { "plain", 0, 0, VIR_MIGRATE_LIVE, NULL },
    { "confirmed", 1, 1, CONF_FLAGS, NULL },
    { "not confirmed", 0, 0, CONF_FLAGS,
      "operation failed: the target did not confirm the confidential migration of domain 'guest'" },
    { "other contract", 2, 1, CONF_FLAGS,
      "operation failed: the target prepared domain 'guest' with contract 2 and 1 mirror vCPUs, but the source has contract 1 and 1" },
    { "other mirror vCPUs", 1, 3, CONF_FLAGS,
      "operation failed: the target prepared domain 'guest' with contract 1 and 3 mirror vCPUs, but the source has contract 1 and 1" },
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
};


/* the target's Prepare steps 4 to 7 against QEMU's replies */
static int
testDstRun(const void *opaque)
{
    const struct testFlowData *data = opaque;
    struct testData domData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
    g_autoptr(virDomainObj) vm = testDomain(&domData);
    g_autoptr(qemuMonitorTest) test = NULL;
    qemuDomainObjPrivate *priv;
    int reason;
    int rc;

    if (!vm)
        return -1;
    priv = vm->privateData;

    if (!(test = testMonitorAttach(vm, data->items)))
        return -1;

    rc = qemuMigrationConfidentialDstRun(vm, "tcp:0.0.0.0:49152", VIR_ASYNC_JOB_NONE);
    testMonitorDetach(vm);

    if (testCheckResult(rc, data->error) < 0)
        return -1;

    /* the guest never looks as if it ran, whatever happened */
    if (virDomainObjGetState(vm, &reason) != VIR_DOMAIN_PAUSED ||
        reason != VIR_DOMAIN_PAUSED_MIGRATION || priv->mirrorHelperOnly) {
        VIR_TEST_VERBOSE("state %d reason %d helperOnly %d",
                         virDomainObjGetState(vm, NULL), reason,
                         priv->mirrorHelperOnly);
        return -1;
    }
    return 0;
}


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

    rc = qemuMigrationConfidentialSrcCheckHelper(vm, VIR_ASYNC_JOB_NONE, CONF_FLAGS);
    testMonitorDetach(vm);

    return testCheckResult(rc, data->error);
}


#define HELPER "query-migration-helper"
#define READY_KEY "{\"return\": {\"status\": \"ready\", \"transport-key\": true}}"
#define READY_NO_KEY "{\"return\": {\"status\": \"ready\"}}"
#define OK "{\"return\": {}}"

static const struct testFlowData dstRunTests[] = {
    { "ready", { "cont", OK, HELPER, READY_KEY, "start-migrate-incoming", OK, NULL },
      NULL },
    { "cont fails", { "cont", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}", NULL },
      "internal error: unable to execute QEMU command 'cont': no" },
    { "helper failed", { "cont", OK, HELPER,
                         "{\"return\": {\"status\": \"failed\", \"error\": \"no helper in firmware\"}}",
                         NULL },
      "operation failed: migration helper of domain 'guest' failed: no helper in firmware" },
    { "no transport key", { "cont", OK, HELPER, READY_NO_KEY, NULL },
      "Operation not supported: the migration helper of domain 'guest' on this host holds no transport key, and provisioning one (attestation of this host by the guest owner) is not supported yet" },
    { "start-migrate-incoming fails",
      { "cont", OK, HELPER, READY_KEY, "start-migrate-incoming",
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"helper not ready\"}}", NULL },
      "internal error: unable to execute QEMU command 'start-migrate-incoming': helper not ready" },
};

static const struct testFlowData srcHelperTests[] = {
    { "ready", { HELPER, READY_KEY, NULL }, NULL },
    { "booting", { HELPER, "{\"return\": {\"status\": \"booting\"}}", NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' is not ready (status 'booting')" },
    { "failed", { HELPER, "{\"return\": {\"status\": \"failed\", \"error\": \"mailbox timeout\"}}", NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' is not ready (status 'failed': mailbox timeout)" },
    { "no transport key", { HELPER, READY_NO_KEY, NULL },
      "Requested operation is not valid: the migration helper of domain 'guest' holds no transport key: guest pages would leave the guest unprotected" },
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
    struct testData plainData = { "", GUEST_SEV, true, QEMU_MIRROR, 0, NULL };
    struct testData mirrorData = { "", GUEST_SEV_MIRROR, true, QEMU_MIRROR, 0, NULL };
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
               "<confidential contract='1' mirrorVcpus='1'/>\n")) {
        VIR_TEST_VERBOSE("formatted '%s'", virBufferCurrentContent(&buf));
        return -1;
    }

    if (testCookieParse("<qemu-migration><confidential contract='1' mirrorVcpus='3'/></qemu-migration>",
                        NULL) < 0 ||
        testCookieParse("<qemu-migration/>",
                        "internal error: missing <confidential> in migration cookie") < 0 ||
        testCookieParse("<qemu-migration><confidential mirrorVcpus='3'/></qemu-migration>",
                        "XML error: Missing required attribute 'contract' in element 'confidential'") < 0 ||
        testCookieParse("<qemu-migration><confidential contract='1' mirrorVcpus='0'/></qemu-migration>",
                        "XML error: Invalid value for attribute 'mirrorVcpus' in element 'confidential': Zero is not permitted") < 0)
        return -1;

    return 0;
}


static const struct testData tests[] = {
    /* without VIR_MIGRATE_CONFIDENTIAL */
    { "plain guest", GUEST_PLAIN, true, QEMU_NONE, VIR_MIGRATE_LIVE, NULL },
    { "SEV guest refused", GUEST_SEV, true, QEMU_MIRROR, VIR_MIGRATE_LIVE,
      SEV_REFUSED },
    { "SEV guest with mirror refused", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TLS, SEV_REFUSED },
    { "SEV guest non-live refused", GUEST_SEV, true, QEMU_NONE, 0, SEV_REFUSED },
    { "SEV-SNP guest refused", GUEST_SEV_SNP, true, QEMU_NONE, VIR_MIGRATE_LIVE,
      "Requested operation is not valid: domain 'guest' is an SEV-SNP guest: libvirt cannot migrate its memory (confidential migration supports SEV guests only)" },
    { "SEV guest offline", GUEST_SEV, false, QEMU_NONE,
      VIR_MIGRATE_OFFLINE | VIR_MIGRATE_PERSIST_DEST, NULL },

    /* with VIR_MIGRATE_CONFIDENTIAL */
    { "confidential", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL, NULL },
    { "confidential p2p tls paused", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TLS |
      VIR_MIGRATE_PAUSED | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_CONFIDENTIAL, NULL },
    { "confidential offline", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_OFFLINE | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_OFFLINE (--offline)", "an offline migration moves no guest memory; migrate the definition without VIR_MIGRATE_CONFIDENTIAL") },
    { "confidential postcopy", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_POSTCOPY | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_POSTCOPY (--postcopy)", "in post-copy the target fetches pages on demand, but the migration helper only sends the pages the source pushes") },
    { "confidential postcopy resume", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_POSTCOPY_RESUME | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_POSTCOPY_RESUME (--postcopy-resume)", "in post-copy the target fetches pages on demand, but the migration helper only sends the pages the source pushes") },
    { "confidential tunnelled", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TUNNELLED | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_TUNNELLED (--tunnelled)", "the target listens through start-migrate-incoming, which takes a network URI rather than the stream a tunnelled migration uses") },
    { "confidential copy storage all", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_NON_SHARED_DISK | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_NON_SHARED_DISK (--copy-storage-all)", "storage migration is not part of confidential migration yet; use shared storage") },
    { "confidential copy storage inc", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_NON_SHARED_INC | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_NON_SHARED_INC (--copy-storage-inc)", "storage migration is not part of confidential migration yet; use shared storage") },
    { "confidential compressed", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_COMPRESSED | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_COMPRESSED (--compressed)", "pages encrypted with the transport key cannot be compressed") },
    { "confidential parallel", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_PARALLEL | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_PARALLEL (--parallel)", "the migration helper's pages travel in the main migration stream only") },
    { "confidential zerocopy", GUEST_SEV_MIRROR, true, QEMU_MIRROR,
      VIR_MIGRATE_ZEROCOPY | VIR_MIGRATE_CONFIDENTIAL,
      CONFLICT("VIR_MIGRATE_ZEROCOPY (--zerocopy)", "zero-copy needs parallel connections, which confidential migration does not use") },
    { "confidential not running", GUEST_SEV_MIRROR, false, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL,
      "Requested operation is not valid: domain 'guest' is not running: confidential migration moves a running guest" },
    { "confidential plain guest", GUEST_PLAIN, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL,
      "Requested operation is not valid: domain 'guest' is not an SEV guest (<launchSecurity type='sev'>): confidential migration is for SEV guests only" },
    { "confidential SEV-SNP guest", GUEST_SEV_SNP, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL,
      "Requested operation is not valid: domain 'guest' is not an SEV guest (<launchSecurity type='sev'>): confidential migration is for SEV guests only" },
    { "confidential without mirror", GUEST_SEV, true, QEMU_MIRROR,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL,
      "Requested operation is not valid: domain 'guest' has no mirror vCPUs: confidential migration needs <mirror/> in its definition (it takes effect when the domain next starts)" },
    { "confidential partial QEMU", GUEST_SEV_MIRROR, true, QEMU_PARTIAL,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL,
      "Operation not supported: the QEMU binary '/usr/bin/qemu-system-x86_64' of domain 'guest' lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)" },
    { "confidential unknown QEMU", GUEST_SEV_MIRROR, true, QEMU_NONE,
      VIR_MIGRATE_LIVE | VIR_MIGRATE_CONFIDENTIAL,
      "Operation not supported: the QEMU binary '/usr/bin/qemu-system-x86_64' of domain 'guest' lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)" },
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

        if (virTestRun(name, testSrcCheckHelper, &srcHelperTests[i]) < 0)
            ret = -1;
    }

    if (virTestRun("cookie element", testCookie, NULL) < 0)
        ret = -1;

    g_clear_pointer(&schema, g_hash_table_unref);
    qemuTestDriverFree(&driver);
    return ret == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

VIR_TEST_MAIN(mymain)
