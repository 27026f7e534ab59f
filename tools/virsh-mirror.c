/*
 * virsh-mirror.c: commands for mirror VMs
 *
 * A domain with <mirror/> has mirror vCPUs that run the migration helper of
 * its firmware, which moves an AMD SEV guest's memory in a confidential
 * migration (virsh migrate --confidential). These commands show and change
 * what the operator controls of them. They use public API only: the
 * VIR_DOMAIN_STATS_MIRROR statistics group, virDomainGetMirrorVcpuInfo(),
 * virDomainPinMirrorVcpu(), the domain XML and domain capabilities.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>

#include "virsh-mirror.h"
#include "virsh-completer-domain.h"
#include "virsh-domain.h"
#include "virsh-util.h"
#include "internal.h"
#include "viralloc.h"
#include "virbitmap.h"
#include "virxml.h"
#include "vsh-table.h"

/* The statistics of the VIR_DOMAIN_STATS_MIRROR group of @dom, or NULL
 * with an error reported. */
static virDomainStatsRecordPtr *
virshMirrorGetStats(virDomainPtr dom)
{
    virDomainPtr doms[] = { dom, NULL };
    virDomainStatsRecordPtr *records = NULL;

    if (virDomainListGetStats(doms, VIR_DOMAIN_STATS_MIRROR, &records,
                              VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS) < 0)
        return NULL;

    return records;
}


static const char *
virshMirrorStatString(virDomainStatsRecordPtr record,
                      unsigned int vcpu,
                      const char *suffix)
{
    char name[VIR_TYPED_PARAM_FIELD_LENGTH];
    const char *value = NULL;

    g_snprintf(name, sizeof(name), VIR_DOMAIN_STATS_MIRROR_PREFIX "%u%s",
               vcpu, suffix);
    ignore_value(virTypedParamsGetString(record->params, record->nparams,
                                         name, &value));
    return value;
}


static bool
virshMirrorStatULLong(virDomainStatsRecordPtr record,
                      unsigned int vcpu,
                      const char *suffix,
                      unsigned long long *value)
{
    char name[VIR_TYPED_PARAM_FIELD_LENGTH];

    g_snprintf(name, sizeof(name), VIR_DOMAIN_STATS_MIRROR_PREFIX "%u%s",
               vcpu, suffix);
    return virTypedParamsGetULLong(record->params, record->nparams,
                                   name, value) == 1;
}


/*
 * "mirror-info" command
 */
static const vshCmdInfo info_mirror_info = {
    .help = N_("show the mirror vCPUs and the migration helper of a domain"),
    .desc = N_("Show the mirror vCPUs of a running domain (thread, CPU affinity, "
               "CPU time), the state of its migration helper, and whether the "
               "host and QEMU support confidential migration."),
};

static const vshCmdOptDef opts_mirror_info[] = {
    VIRSH_COMMON_OPT_DOMAIN_FULL(VIR_CONNECT_LIST_DOMAINS_ACTIVE),
    {.name = NULL}
};

static bool
cmdMirrorInfo(vshControl *ctl, const vshCmd *cmd)
{
    g_autoptr(virshDomain) dom = NULL;
    g_autoptr(xmlDoc) xml = NULL;
    g_autoptr(xmlXPathContext) ctxt = NULL;
    g_autoptr(xmlDoc) capsXml = NULL;
    g_autoptr(xmlXPathContext) capsCtxt = NULL;
    g_autoptr(vshTable) table = NULL;
    virDomainStatsRecordPtr *records = NULL;
    virshControl *priv = ctl->privData;
    g_autofree char *emulator = NULL;
    g_autofree char *arch = NULL;
    g_autofree char *machine = NULL;
    g_autofree char *virttype = NULL;
    g_autofree char *caps = NULL;
    g_autofree char *supported = NULL;
    g_autofree char *maxVcpus = NULL;
    const char *status = NULL;
    const char *error = NULL;
    int transportKey = 0;
    const char *keyId = NULL;
    unsigned int count = 0;
    size_t i;
    bool ret = false;

    if (!(dom = virshCommandOptDomain(ctl, cmd, NULL)))
        return false;

    if (virshDomainGetXMLFromDom(ctl, dom, 0, &xml, &ctxt) < 0)
        return false;

    if (virXPathBoolean("count(./mirror) = 0", ctxt) == 1) {
        vshError(ctl, _("domain '%1$s' has no mirror vCPUs (element 'mirror')"),
                 virDomainGetName(dom));
        return false;
    }

    if (!(records = virshMirrorGetStats(dom)))
        goto cleanup;

    ignore_value(virTypedParamsGetUInt(records[0]->params, records[0]->nparams,
                                       VIR_DOMAIN_STATS_MIRROR_COUNT, &count));
    ignore_value(virTypedParamsGetString(records[0]->params, records[0]->nparams,
                                         VIR_DOMAIN_STATS_MIRROR_HELPER_STATUS, &status));
    ignore_value(virTypedParamsGetBoolean(records[0]->params, records[0]->nparams,
                                          VIR_DOMAIN_STATS_MIRROR_HELPER_TRANSPORT_KEY,
                                          &transportKey));
    ignore_value(virTypedParamsGetString(records[0]->params, records[0]->nparams,
                                         VIR_DOMAIN_STATS_MIRROR_HELPER_TRANSPORT_KEY_ID,
                                         &keyId));
    ignore_value(virTypedParamsGetString(records[0]->params, records[0]->nparams,
                                         VIR_DOMAIN_STATS_MIRROR_HELPER_ERROR, &error));

    if (!virDomainIsActive(dom)) {
        vshError(ctl, _("domain '%1$s' is not running"), virDomainGetName(dom));
        goto cleanup;
    }

    table = vshTableNew(_("Mirror vCPU"), _("Thread"), _("CPU Affinity"),
                        _("CPU time"), NULL);
    if (!table)
        goto cleanup;

    for (i = 0; i < count; i++) {
        g_autofree char *index = g_strdup_printf("%zu", i);
        g_autofree char *thread = NULL;
        g_autofree char *time = NULL;
        const char *affinity = virshMirrorStatString(records[0], i,
                                                     VIR_DOMAIN_STATS_MIRROR_SUFFIX_AFFINITY);
        unsigned long long value;

        if (virshMirrorStatULLong(records[0], i, VIR_DOMAIN_STATS_MIRROR_SUFFIX_THREAD,
                                  &value))
            thread = g_strdup_printf("%llu", value);
        if (virshMirrorStatULLong(records[0], i, VIR_DOMAIN_STATS_MIRROR_SUFFIX_TIME,
                                  &value))
            time = g_strdup_printf("%.3fs", value / 1e9);

        if (vshTableRowAppend(table, index, NULLSTR_MINUS(thread),
                              NULLSTR_MINUS(affinity), NULLSTR_MINUS(time),
                              NULL) < 0)
            goto cleanup;
    }
    vshTablePrintToStdout(table, ctl);

    vshPrint(ctl, "%-22s %s\n", _("Migration helper:"), NULLSTR_MINUS(status));
    if (error)
        vshPrint(ctl, "%-22s %s\n", _("Helper error:"), error);
    vshPrint(ctl, "%-22s %s\n", _("Transport key:"),
             transportKey ? _("yes") : _("no"));
    if (transportKey && keyId)
        vshPrint(ctl, "%-22s %s\n", _("Transport key ID:"), keyId);

    /* what this host's QEMU for the domain offers */
    emulator = virXPathString("string(./devices/emulator)", ctxt);
    arch = virXPathString("string(./os/type/@arch)", ctxt);
    machine = virXPathString("string(./os/type/@machine)", ctxt);
    virttype = virXPathString("string(./@type)", ctxt);
    if (!(caps = virConnectGetDomainCapabilities(priv->conn, emulator, arch,
                                                 machine, virttype, 0)))
        goto cleanup;
    if (!(capsXml = virXMLParseStringCtxt(caps, _("(domain_capabilities)"),
                                          &capsCtxt)))
        goto cleanup;
    supported = virXPathString("string(./features/mirror/@supported)", capsCtxt);
    maxVcpus = virXPathString("string(./features/mirror/maxVcpus)", capsCtxt);
    if (STREQ_NULLABLE(supported, "yes"))
        vshPrint(ctl, _("%1$-22s supported by this host and QEMU (up to %2$s mirror vCPUs)\n"),
                 _("Confidential migration:"), NULLSTR_MINUS(maxVcpus));
    else
        vshPrint(ctl, "%-22s %s\n", _("Confidential migration:"),
                 _("not supported by this host and QEMU"));

    ret = true;

 cleanup:
    virDomainStatsRecordListFree(records);
    return ret;
}


/*
 * "mirror-pin" command
 */
static const vshCmdInfo info_mirror_pin = {
    .help = N_("show or set the host CPUs of mirror vCPUs"),
    .desc = N_("Show the host CPUs the threads of a domain's mirror vCPUs may run "
               "on, or pin one mirror vCPU to a list of host CPUs."),
};

static const vshCmdOptDef opts_mirror_pin[] = {
    VIRSH_COMMON_OPT_DOMAIN_FULL(0),
    {.name = "vcpu",
     .type = VSH_OT_INT,
     .unwanted_positional = true,
     .help = N_("mirror vCPU number, from 0")
    },
    {.name = "cpulist",
     .type = VSH_OT_STRING,
     .unwanted_positional = true,
     .completer = virshDomainCpulistCompleter,
     .help = N_("host cpu number(s) to set, or omit option to query")
    },
    VIRSH_COMMON_OPT_CONFIG(N_("affect next boot")),
    VIRSH_COMMON_OPT_LIVE(N_("affect running domain")),
    VIRSH_COMMON_OPT_CURRENT(N_("affect current domain")),
    {.name = NULL}
};


static bool
virshMirrorPinShow(vshControl *ctl,
                   virDomainPtr dom,
                   unsigned int flags,
                   int vcpu)
{
    g_autoptr(vshTable) table = NULL;
    virDomainMirrorVcpuInfoPtr *info = NULL;
    int count;
    size_t i;
    bool ret = false;

    if ((count = virDomainGetMirrorVcpuInfo(dom, &info, flags)) < 0)
        return false;

    if (count == 0) {
        vshError(ctl, _("domain '%1$s' has no mirror vCPUs (element 'mirror')"),
                 virDomainGetName(dom));
        goto cleanup;
    }

    if (vcpu >= count) {
        vshError(ctl, _("mirror vCPU %1$d does not exist: domain '%2$s' has %3$d mirror vCPUs"),
                 vcpu, virDomainGetName(dom), count);
        goto cleanup;
    }

    if (!(table = vshTableNew(_("Mirror vCPU"), _("CPU Affinity"), NULL)))
        goto cleanup;

    for (i = 0; i < count; i++) {
        g_autofree char *index = NULL;
        g_autofree char *affinity = NULL;

        if (vcpu >= 0 && info[i]->vcpu != (unsigned int)vcpu)
            continue;

        index = g_strdup_printf("%u", info[i]->vcpu);
        affinity = virBitmapDataFormat(info[i]->cpumap, info[i]->cpumaplen);

        if (vshTableRowAppend(table, index, NULLSTR_MINUS(affinity), NULL) < 0)
            goto cleanup;
    }
    vshTablePrintToStdout(table, ctl);
    ret = true;

 cleanup:
    for (i = 0; i < count; i++)
        virDomainMirrorVcpuInfoFree(info[i]);
    g_free(info);
    return ret;
}


static bool
cmdMirrorPin(vshControl *ctl, const vshCmd *cmd)
{
    g_autoptr(virshDomain) dom = NULL;
    const char *cpulist = NULL;
    g_autofree unsigned char *cpumap = NULL;
    bool config = vshCommandOptBool(cmd, "config");
    bool live = vshCommandOptBool(cmd, "live");
    bool current = vshCommandOptBool(cmd, "current");
    unsigned int flags = VIR_DOMAIN_AFFECT_CURRENT;
    virshControl *priv = ctl->privData;
    unsigned int vcpu = 0;
    int gotVcpu;
    int cpumaplen;
    int maxcpu;

    VSH_EXCLUSIVE_OPTIONS_VAR(current, live);
    VSH_EXCLUSIVE_OPTIONS_VAR(current, config);

    if (config)
        flags |= VIR_DOMAIN_AFFECT_CONFIG;
    if (live)
        flags |= VIR_DOMAIN_AFFECT_LIVE;

    if (!(dom = virshCommandOptDomain(ctl, cmd, NULL)))
        return false;

    if ((gotVcpu = vshCommandOptUInt(ctl, cmd, "vcpu", &vcpu)) < 0)
        return false;

    if (vshCommandOptString(ctl, cmd, "cpulist", &cpulist) < 0)
        return false;

    if (!cpulist)
        return virshMirrorPinShow(ctl, dom, flags,
                                  gotVcpu > 0 ? (int)vcpu : -1);

    if (gotVcpu == 0) {
        vshError(ctl, "%s", _("mirror-pin: Missing mirror vCPU number (--vcpu) in pin mode."));
        return false;
    }

    if ((maxcpu = virshNodeGetCPUCount(priv->conn)) < 0)
        return false;

    if (!(cpumap = virshParseCPUList(ctl, &cpumaplen, cpulist, maxcpu)))
        return false;

    if (virDomainPinMirrorVcpu(dom, vcpu, cpumap, cpumaplen, flags) < 0)
        return false;

    return true;
}


const vshCmdDef mirrorCmds[] = {
    {.name = "mirror-info",
     .handler = cmdMirrorInfo,
     .opts = opts_mirror_info,
     .info = &info_mirror_info,
     .flags = 0
    },
    {.name = "mirror-pin",
     .handler = cmdMirrorPin,
     .opts = opts_mirror_pin,
     .info = &info_mirror_pin,
     .flags = 0
    },
    {.name = NULL}
};
