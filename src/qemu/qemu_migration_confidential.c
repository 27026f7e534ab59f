/*
 * qemu_migration_confidential.c: confidential migration of SEV guests
 *
 * The QEMU interface is described in docs/kbase/confidential-migration.rst.
 * This file holds the checks libvirt makes before any such migration, and
 * the rule that a running SEV guest is never migrated without it: QEMU's
 * own migration blocker for SEV is not the only guard.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>

#include "qemu_migration_confidential.h"
#include "qemu_domain.h"
#include "qemu_mirror.h"
#include "virerror.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

/* What VIR_MIGRATE_CONFIDENTIAL cannot be combined with, and why. */
static const struct {
    unsigned int flag;
    const char *name;
    const char *reason;
} qemuMigrationConfidentialConflicts[] = {
    { VIR_MIGRATE_OFFLINE, "VIR_MIGRATE_OFFLINE (--offline)",
      N_("an offline migration moves no guest memory; migrate the definition without VIR_MIGRATE_CONFIDENTIAL") },
    { VIR_MIGRATE_POSTCOPY, "VIR_MIGRATE_POSTCOPY (--postcopy)",
      N_("in post-copy the target fetches pages on demand, but the migration helper only sends the pages the source pushes") },
    { VIR_MIGRATE_POSTCOPY_RESUME, "VIR_MIGRATE_POSTCOPY_RESUME (--postcopy-resume)",
      N_("in post-copy the target fetches pages on demand, but the migration helper only sends the pages the source pushes") },
    { VIR_MIGRATE_TUNNELLED, "VIR_MIGRATE_TUNNELLED (--tunnelled)",
      N_("the target listens through start-migrate-incoming, which takes a network URI rather than the stream a tunnelled migration uses") },
    { VIR_MIGRATE_NON_SHARED_DISK, "VIR_MIGRATE_NON_SHARED_DISK (--copy-storage-all)",
      N_("storage migration is not part of confidential migration yet; use shared storage") },
    { VIR_MIGRATE_NON_SHARED_INC, "VIR_MIGRATE_NON_SHARED_INC (--copy-storage-inc)",
      N_("storage migration is not part of confidential migration yet; use shared storage") },
    { VIR_MIGRATE_COMPRESSED, "VIR_MIGRATE_COMPRESSED (--compressed)",
      N_("pages encrypted with the transport key cannot be compressed") },
    { VIR_MIGRATE_PARALLEL, "VIR_MIGRATE_PARALLEL (--parallel)",
      N_("the migration helper's pages travel in the main migration stream only") },
    { VIR_MIGRATE_ZEROCOPY, "VIR_MIGRATE_ZEROCOPY (--zerocopy)",
      N_("zero-copy needs parallel connections, which confidential migration does not use") },
};


/**
 * qemuMigrationConfidentialSrcCheck:
 * @vm: the domain to migrate
 * @flags: virDomainMigrateFlags
 *
 * Called before anything else on every migration of @vm to another host.
 * Without VIR_MIGRATE_CONFIDENTIAL a running SEV or SEV-SNP guest is
 * refused (fail closed); with it, everything confidential migration needs
 * must be there.
 *
 * Returns 0 if the migration may go on, -1 with an error reported.
 */
int
qemuMigrationConfidentialSrcCheck(virDomainObj *vm,
                                  unsigned int flags)
{
    qemuDomainObjPrivate *priv = vm->privateData;
    const virDomainDef *def = vm->def;
    virDomainLaunchSecurity sectype = def->sec ? def->sec->sectype :
                                                 VIR_DOMAIN_LAUNCH_SECURITY_NONE;
    size_t i;

    if (!(flags & VIR_MIGRATE_CONFIDENTIAL)) {
        if (flags & VIR_MIGRATE_OFFLINE)
            return 0;

        if (sectype == VIR_DOMAIN_LAUNCH_SECURITY_SEV) {
            virReportError(VIR_ERR_OPERATION_INVALID,
                           _("domain '%1$s' is an SEV guest: its memory may only be migrated confidentially, with VIR_MIGRATE_CONFIDENTIAL (virsh migrate --confidential) and mirror vCPUs (<mirror/>)"),
                           def->name);
            return -1;
        }

        if (sectype == VIR_DOMAIN_LAUNCH_SECURITY_SEV_SNP) {
            virReportError(VIR_ERR_OPERATION_INVALID,
                           _("domain '%1$s' is an SEV-SNP guest: libvirt cannot migrate its memory (confidential migration supports SEV guests only)"),
                           def->name);
            return -1;
        }

        return 0;
    }

    for (i = 0; i < G_N_ELEMENTS(qemuMigrationConfidentialConflicts); i++) {
        if (flags & qemuMigrationConfidentialConflicts[i].flag) {
            virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED,
                           _("VIR_MIGRATE_CONFIDENTIAL cannot be combined with %1$s: %2$s"),
                           qemuMigrationConfidentialConflicts[i].name,
                           _(qemuMigrationConfidentialConflicts[i].reason));
            return -1;
        }
    }

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

    if (!def->mirror) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain '%1$s' has no mirror vCPUs: confidential migration needs <mirror/> in its definition (it takes effect when the domain next starts)"),
                       def->name);
        return -1;
    }

    if (!priv->qemuCaps || !qemuMirrorSupported(priv->qemuCaps)) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("the QEMU binary '%1$s' of domain '%2$s' lacks the confidential migration interface (virsh domcapabilities reports <mirror supported='no'/>)"),
                       NULLSTR(def->emulator), def->name);
        return -1;
    }

    return 0;
}


/**
 * qemuMigrationConfidentialDstCheck:
 *
 * Prepare phase on the target. Receiving a confidential migration needs the
 * target flow (start without -incoming, wait for the migration helper,
 * provision the transport key, start-migrate-incoming) that this libvirt
 * does not have yet: refuse before anything is started, so that the source
 * guest keeps running untouched and nothing is left on this host.
 */
int
qemuMigrationConfidentialDstCheck(const virDomainDef *def,
                                  unsigned int flags)
{
    if (!(flags & VIR_MIGRATE_CONFIDENTIAL))
        return 0;

    virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                   _("this host cannot receive a confidential migration of domain '%1$s' yet: the target side of the flow is not implemented"),
                   def ? def->name : "");
    return -1;
}


/**
 * qemuMigrationCookieConfidentialNew:
 *
 * The cookie element the source sends for a guest with mirror vCPUs, or
 * NULL for one without (which qemuMigrationConfidentialSrcCheck refuses).
 */
qemuMigrationCookieConfidential *
qemuMigrationCookieConfidentialNew(const virDomainDef *def)
{
    qemuMigrationCookieConfidential *conf;

    if (!def->mirror)
        return NULL;

    conf = g_new0(qemuMigrationCookieConfidential, 1);
    conf->contract = QEMU_MIGRATION_CONFIDENTIAL_CONTRACT;
    conf->mirrorVcpus = def->mirror->vcpus;
    return conf;
}


void
qemuMigrationCookieConfidentialFormat(virBuffer *buf,
                                      const qemuMigrationCookieConfidential *conf)
{
    if (!conf)
        return;

    virBufferAsprintf(buf, "<confidential contract='%u' mirrorVcpus='%u'/>\n",
                      conf->contract, conf->mirrorVcpus);
}


qemuMigrationCookieConfidential *
qemuMigrationCookieConfidentialParse(xmlXPathContextPtr ctxt)
{
    g_autofree qemuMigrationCookieConfidential *conf = NULL;
    xmlNodePtr node;

    if (!(node = virXPathNode("./confidential", ctxt))) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("missing <confidential> in migration cookie"));
        return NULL;
    }

    conf = g_new0(qemuMigrationCookieConfidential, 1);

    if (virXMLPropUInt(node, "contract", 10,
                       VIR_XML_PROP_REQUIRED | VIR_XML_PROP_NONZERO,
                       &conf->contract) < 0 ||
        virXMLPropUInt(node, "mirrorVcpus", 10,
                       VIR_XML_PROP_REQUIRED | VIR_XML_PROP_NONZERO,
                       &conf->mirrorVcpus) < 0)
        return NULL;

    return g_steal_pointer(&conf);
}
