/*
 * domain_mirror.c: mirror vCPUs of a confidential guest (<mirror/>)
 *
 * A mirror VM shares an SEV guest's memory and encryption context; the
 * guest's migration helper runs on its vCPUs. <mirror vcpus='N'
 * cpuset='...'/> asks for N such vCPUs on top of the guest's own.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>

#include "domain_mirror.h"
#include "domain_conf.h"
#include "viralloc.h"
#include "virerror.h"

#define VIR_FROM_THIS VIR_FROM_DOMAIN


static void
virDomainMirrorPinDefFree(virDomainMirrorPinDef *pin)
{
    if (!pin)
        return;

    virBitmapFree(pin->cpumask);
    g_free(pin);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomainMirrorPinDef, virDomainMirrorPinDefFree);


void
virDomainMirrorDefFree(virDomainMirrorDef *def)
{
    size_t i;

    if (!def)
        return;

    for (i = 0; i < def->npins; i++)
        virDomainMirrorPinDefFree(def->pins[i]);
    g_free(def->pins);
    virBitmapFree(def->cpuset);
    g_free(def);
}


static virDomainMirrorPinDef *
virDomainMirrorDefFindPin(const virDomainMirrorDef *def,
                          unsigned int vcpu)
{
    size_t i;

    for (i = 0; i < def->npins; i++) {
        if (def->pins[i]->vcpu == vcpu)
            return def->pins[i];
    }

    return NULL;
}


/* a host CPU list: valid, and selecting at least one CPU */
static int
virDomainMirrorParseCpuset(const char *value,
                           const char *where,
                           virBitmap **cpumask)
{
    if (virBitmapParse(value, cpumask, VIR_DOMAIN_CPUMASK_LEN) < 0) {
        virReportError(VIR_ERR_XML_ERROR,
                       _("Invalid value for attribute 'cpuset' in element '%1$s': '%2$s'"),
                       where, value);
        return -1;
    }

    if (virBitmapIsAllClear(*cpumask)) {
        virReportError(VIR_ERR_XML_ERROR,
                       _("Invalid value for attribute 'cpuset' in element '%1$s': '%2$s' selects no host CPU"),
                       where, value);
        return -1;
    }

    return 0;
}


/* <cputune><mirrorpin vcpu='N' cpuset='LIST'/></cputune>, like vcpupin
 * and iothreadpin */
static int
virDomainMirrorPinDefParseXML(xmlXPathContextPtr ctxt,
                              virDomainMirrorDef *mirror)
{
    g_autofree xmlNodePtr *nodes = NULL;
    size_t i;
    int n;

    if ((n = virXPathNodeSet("./cputune/mirrorpin", ctxt, &nodes)) < 0)
        return -1;

    if (n > 0 && !mirror) {
        virReportError(VIR_ERR_XML_ERROR, "%s",
                       _("element 'mirrorpin' requires mirror vCPUs (element 'mirror')"));
        return -1;
    }

    for (i = 0; i < n; i++) {
        g_autoptr(virDomainMirrorPinDef) pin = g_new0(virDomainMirrorPinDef, 1);
        g_autofree char *cpuset = NULL;

        if (virXMLPropUInt(nodes[i], "vcpu", 10, VIR_XML_PROP_REQUIRED,
                           &pin->vcpu) < 0)
            return -1;

        if (!(cpuset = virXMLPropStringRequired(nodes[i], "cpuset")))
            return -1;

        if (virDomainMirrorParseCpuset(cpuset, "mirrorpin", &pin->cpumask) < 0)
            return -1;

        if (virDomainMirrorDefFindPin(mirror, pin->vcpu)) {
            virReportError(VIR_ERR_XML_ERROR,
                           _("duplicate mirrorpin for mirror vCPU '%1$u'"),
                           pin->vcpu);
            return -1;
        }

        VIR_APPEND_ELEMENT(mirror->pins, mirror->npins, pin);
    }

    return 0;
}


/**
 * virDomainMirrorDefParseXML:
 * @ctxt: XPath context positioned at the <domain> element
 * @def: filled with the parsed definition, or NULL without <mirror>
 *
 * Returns 0 on success (including no <mirror>), -1 on error with an error
 * reported and @def left NULL.
 */
int
virDomainMirrorDefParseXML(xmlXPathContextPtr ctxt,
                           virDomainMirrorDef **def)
{
    g_autofree xmlNodePtr *nodes = NULL;
    g_autoptr(virDomainMirrorDef) mirror = NULL;
    g_autofree char *cpuset = NULL;
    xmlNodePtr node;
    int n;

    *def = NULL;

    if ((n = virXPathNodeSet("./mirror", ctxt, &nodes)) < 0)
        return -1;

    if (n == 0)
        return virDomainMirrorPinDefParseXML(ctxt, NULL);

    if (n > 1) {
        virReportError(VIR_ERR_XML_ERROR, "%s",
                       _("only one element 'mirror' is allowed"));
        return -1;
    }

    node = nodes[0];
    mirror = g_new0(virDomainMirrorDef, 1);

    if (virXMLPropUIntDefault(node, "vcpus", 10, VIR_XML_PROP_NONZERO,
                              &mirror->vcpus, 1) < 0)
        return -1;

    if ((cpuset = virXMLPropString(node, "cpuset")) &&
        virDomainMirrorParseCpuset(cpuset, "mirror", &mirror->cpuset) < 0)
        return -1;

    if (virDomainMirrorPinDefParseXML(ctxt, mirror) < 0)
        return -1;

    *def = g_steal_pointer(&mirror);
    return 0;
}


void
virDomainMirrorDefFormat(virBuffer *buf,
                         const virDomainMirrorDef *def)
{
    g_auto(virBuffer) attrBuf = VIR_BUFFER_INITIALIZER;

    if (!def)
        return;

    virBufferAsprintf(&attrBuf, " vcpus='%u'", def->vcpus);

    if (def->cpuset) {
        g_autofree char *cpuset = virBitmapFormat(def->cpuset);

        virBufferAsprintf(&attrBuf, " cpuset='%s'", cpuset);
    }

    virXMLFormatElement(buf, "mirror", &attrBuf, NULL);
}


/**
 * virDomainMirrorDefFormatCputune:
 *
 * The <mirrorpin/> elements, inside <cputune>.
 */
void
virDomainMirrorDefFormatCputune(virBuffer *buf,
                                const virDomainMirrorDef *def)
{
    size_t i;

    if (!def)
        return;

    for (i = 0; i < def->npins; i++) {
        g_autofree char *cpumask = virBitmapFormat(def->pins[i]->cpumask);

        virBufferAsprintf(buf, "<mirrorpin vcpu='%u' cpuset='%s'/>\n",
                          def->pins[i]->vcpu, cpumask);
    }
}


/**
 * virDomainMirrorDefGetCpumask:
 *
 * The host CPUs the thread of mirror vCPU @vcpu may run on: its
 * <mirrorpin>, else <mirror cpuset>, else NULL (wherever the guest's
 * vCPUs may run).
 */
virBitmap *
virDomainMirrorDefGetCpumask(const virDomainMirrorDef *def,
                             unsigned int vcpu)
{
    virDomainMirrorPinDef *pin;

    if (!def)
        return NULL;

    if ((pin = virDomainMirrorDefFindPin(def, vcpu)))
        return pin->cpumask;

    return def->cpuset;
}


/**
 * virDomainMirrorDefSetPin:
 * @def: mirror vCPUs
 * @vcpu: index of a mirror vCPU
 * @cpumask: host CPUs for its thread (copied), or NULL to drop its
 *           <mirrorpin>
 *
 * Returns 0 on success, -1 with an error reported for an index that does
 * not exist.
 */
int
virDomainMirrorDefSetPin(virDomainMirrorDef *def,
                         unsigned int vcpu,
                         virBitmap *cpumask)
{
    virDomainMirrorPinDef *pin;
    size_t i;

    if (vcpu >= def->vcpus) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("mirror vCPU %1$u does not exist: the domain has %2$u mirror vCPUs"),
                       vcpu, def->vcpus);
        return -1;
    }

    if (!cpumask) {
        for (i = 0; i < def->npins; i++) {
            if (def->pins[i]->vcpu == vcpu) {
                virDomainMirrorPinDefFree(def->pins[i]);
                VIR_DELETE_ELEMENT(def->pins, i, def->npins);
                break;
            }
        }
        return 0;
    }

    if ((pin = virDomainMirrorDefFindPin(def, vcpu))) {
        virBitmapFree(pin->cpumask);
        pin->cpumask = virBitmapNewCopy(cpumask);
        return 0;
    }

    pin = g_new0(virDomainMirrorPinDef, 1);
    pin->vcpu = vcpu;
    pin->cpumask = virBitmapNewCopy(cpumask);
    VIR_APPEND_ELEMENT(def->pins, def->npins, pin);
    return 0;
}


/**
 * virDomainMirrorDefValidate:
 *
 * Checks that hold for every hypervisor driver: the guest is a plain SEV
 * guest (the only confidential-computing technology with a mirror VM
 * interface today; not SEV-ES), and the counts are in range. Whether the
 * driver supports mirror vCPUs is for its own validation (the QEMU driver:
 * qemuMirrorValidateDef), unknown attributes are the schema's.
 */
int
virDomainMirrorDefValidate(const virDomainDef *def)
{
    const virDomainMirrorDef *mirror = def->mirror;
    unsigned long long total;
    size_t i;

    if (!mirror)
        return 0;

    if (!def->sec) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("element 'mirror' requires <launchSecurity type='sev'>"));
        return -1;
    }

    if (def->sec->sectype != VIR_DOMAIN_LAUNCH_SECURITY_SEV) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("element 'mirror' requires launchSecurity type 'sev', not '%1$s'"),
                       virDomainLaunchSecurityTypeToString(def->sec->sectype));
        return -1;
    }

    if (def->sec->data.sev.policy & VIR_DOMAIN_SEV_POLICY_ES) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("element 'mirror' is not supported for SEV-ES guests (SEV policy bit 0x4): their register state is in the encrypted VMSA, which the migration helper cannot migrate"));
        return -1;
    }

    if (mirror->vcpus < 1 || mirror->vcpus > VIR_DOMAIN_MIRROR_VCPUS_MAX) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("attribute 'vcpus' of element 'mirror' must be between 1 and %1$u, not %2$u"),
                       VIR_DOMAIN_MIRROR_VCPUS_MAX, mirror->vcpus);
        return -1;
    }

    for (i = 0; i < mirror->npins; i++) {
        if (mirror->pins[i]->vcpu >= mirror->vcpus) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("mirrorpin for mirror vCPU %1$u, but the domain has %2$u mirror vCPUs"),
                           mirror->pins[i]->vcpu, mirror->vcpus);
            return -1;
        }
    }

    total = (unsigned long long)virDomainDefGetVcpusMax(def) + mirror->vcpus;
    if (total > VIR_DOMAIN_MIRROR_TOTAL_VCPUS_MAX) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("guest vCPUs (%1$u) plus mirror vCPUs (attribute 'vcpus' of element 'mirror': %2$u) exceed the limit of %3$u"),
                       virDomainDefGetVcpusMax(def), mirror->vcpus,
                       VIR_DOMAIN_MIRROR_TOTAL_VCPUS_MAX);
        return -1;
    }

    return 0;
}


/**
 * virDomainMirrorDefCheckABIStability:
 *
 * Mirror vCPUs are part of the VM QEMU creates (they count in -smp), so
 * their presence and number must match; the host CPUs their threads run on
 * (cpuset) are a host-side choice and may differ.
 */
bool
virDomainMirrorDefCheckABIStability(const virDomainMirrorDef *src,
                                    const virDomainMirrorDef *dst)
{
    if (!src && !dst)
        return true;

    if (!src || !dst) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("Target domain mirror vCPUs (element 'mirror') do not match source"));
        return false;
    }

    if (src->vcpus != dst->vcpus) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("Target domain mirror vCPU count %1$u does not match source %2$u"),
                       dst->vcpus, src->vcpus);
        return false;
    }

    return true;
}
