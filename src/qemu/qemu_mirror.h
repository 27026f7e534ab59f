/*
 * qemu_mirror.h: mirror vCPUs in the QEMU driver
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "qemu_capabilities.h"
#include "domain_capabilities.h"
#include "vircgroup.h"
#include "vircommand.h"
#include "virdomainjob.h"
#include "qemu_monitor.h"
#include "virtypedparam.h"

/* The version of the QEMU interface in docs/kbase/confidential-migration.rst
 * that libvirt relies on; domain capabilities report it */
#define QEMU_MIRROR_CONTRACT 3

bool
qemuMirrorSupported(virQEMUCaps *qemuCaps);

void
qemuMirrorFillDomainCaps(virQEMUCaps *qemuCaps,
                         virDomainCaps *domCaps);

int
qemuMirrorValidateDef(const virDomainDef *def,
                      virQEMUCaps *qemuCaps);

unsigned int
qemuMirrorSmpExtraSockets(const virDomainDef *def);

unsigned int
qemuMirrorSmpSlots(const virDomainDef *def);

bool
qemuMirrorIsHelperOnlyTarget(virDomainObj *vm,
                             virDomainJobObj *job);

void
qemuMirrorBuildCommandLine(virCommand *cmd,
                           const virDomainDef *def,
                           bool mirrorTarget);

int
qemuMirrorCheckVcpuChange(const virDomainDef *def);

void
qemuMirrorFormatStatus(virBuffer *buf,
                       virDomainObj *vm);

int
qemuMirrorParseStatus(xmlXPathContextPtr ctxt,
                      virDomainObj *vm);

int
qemuMirrorReconnect(virDomainObj *vm);

int
qemuMirrorCheckPin(const virDomainDef *def,
                   unsigned int vcpu,
                   virBitmap *cpumask);

int
qemuMirrorPinVcpuLive(virDomainObj *vm,
                      unsigned int vcpu,
                      virBitmap *cpumask);

int
qemuMirrorSetVcpusBWLive(virDomainObj *vm,
                         virCgroup *cgroup,
                         unsigned long long period,
                         long long quota);

int
qemuMirrorGetVcpuInfoLive(virDomainObj *vm,
                          virDomainMirrorVcpuInfoPtr **info);

int
qemuMirrorSetupVcpus(virDomainObj *vm,
                     virDomainAsyncJob asyncJob);

void
qemuMirrorHandleMigrationHelper(qemuMonitor *mon,
                                virDomainObj *vm,
                                const qemuMonitorMigrationHelperInfo *info);

int
qemuMirrorCheckShutdown(virDomainObj *vm);

void
qemuMirrorGetStats(virDomainObj *vm,
                   virTypedParamList *params,
                   bool haveJob);

int
qemuMirrorQueryHelper(virDomainObj *vm,
                      virDomainAsyncJob asyncJob,
                      qemuMonitorMigrationHelperInfo *info);

typedef struct _qemuMirrorHelperParamNames qemuMirrorHelperParamNames;
extern const qemuMirrorHelperParamNames qemuMirrorHelperParamsLaunchSecurity;
extern const qemuMirrorHelperParamNames qemuMirrorHelperParamsStats;

void
qemuMirrorGetHelperParams(virDomainObj *vm,
                          virDomainAsyncJob asyncJob,
                          virTypedParamList *list,
                          const qemuMirrorHelperParamNames *names);

int
qemuMirrorWaitForHelper(virDomainObj *vm,
                        virDomainAsyncJob asyncJob,
                        unsigned long long timeoutMs,
                        qemuMonitorMigrationHelperInfo *info);
