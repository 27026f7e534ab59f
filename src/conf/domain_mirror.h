/*
 * domain_mirror.h: mirror vCPUs of a confidential guest (<mirror/>)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "virbitmap.h"
#include "virbuffer.h"
#include "virconftypes.h"
#include "virxml.h"

/* Mirror vCPUs only run the guest's migration helper: a handful is plenty,
 * and the bound catches a mistyped count before it costs host threads. */
#define VIR_DOMAIN_MIRROR_VCPUS_MAX 16

/* Guest vCPUs plus mirror vCPUs: the largest vCPU count QEMU accepts for
 * any x86 machine type. The QEMU driver also checks the machine's own. */
#define VIR_DOMAIN_MIRROR_TOTAL_VCPUS_MAX 4096

/* The bit of the guest owner's SEV policy (<launchSecurity type='sev'>
 * <policy>) that forbids migrating the guest confidentially: never sent to
 * another platform (AMD SEV API specification, guest policy). SEV-ES is
 * VIR_DOMAIN_SEV_POLICY_ES. */
#define VIR_DOMAIN_SEV_POLICY_NOSEND (1 << 3)

/* <cputune><mirrorpin vcpu='N' cpuset='LIST'/></cputune> */
typedef struct _virDomainMirrorPinDef virDomainMirrorPinDef;
struct _virDomainMirrorPinDef {
    unsigned int vcpu;  /* mirror vCPU index, 0 .. vcpus - 1 */
    virBitmap *cpumask; /* host CPUs its thread may run on */
};

typedef struct _virDomainMirrorDef virDomainMirrorDef;
struct _virDomainMirrorDef {
    unsigned int vcpus; /* mirror vCPUs, on top of the guest's own */
    virBitmap *cpuset;  /* host CPUs their threads may run on, or NULL */
    virDomainMirrorPinDef **pins; /* per mirror vCPU, overriding cpuset */
    size_t npins;
};

void
virDomainMirrorDefFree(virDomainMirrorDef *def);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomainMirrorDef, virDomainMirrorDefFree);

int
virDomainMirrorDefParseXML(xmlXPathContextPtr ctxt,
                           virDomainMirrorDef **def);

void
virDomainMirrorDefFormat(virBuffer *buf,
                         const virDomainMirrorDef *def);

void
virDomainMirrorDefFormatCputune(virBuffer *buf,
                                const virDomainMirrorDef *def);

virBitmap *
virDomainMirrorDefGetCpumask(const virDomainMirrorDef *def,
                             unsigned int vcpu);

int
virDomainMirrorDefSetPin(virDomainMirrorDef *def,
                         unsigned int vcpu,
                         virBitmap *cpumask);

int
virDomainMirrorDefValidate(const virDomainDef *def);

bool
virDomainMirrorDefCheckABIStability(const virDomainMirrorDef *src,
                                    const virDomainMirrorDef *dst);
