/*
 * qemu_mirror.h: mirror vCPUs in the QEMU driver
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "qemu_capabilities.h"
#include "domain_capabilities.h"
#include "vircommand.h"
#include "virdomainjob.h"
#include "qemu_monitor.h"

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

void
qemuMirrorBuildCommandLine(virCommand *cmd,
                           const virDomainDef *def,
                           bool migrationTarget);

int
qemuMirrorCheckVcpuChange(const virDomainDef *def);

int
qemuMirrorSetupVcpus(virDomainObj *vm,
                     virDomainAsyncJob asyncJob);

void
qemuMirrorHandleMigrationHelper(qemuMonitor *mon,
                                virDomainObj *vm,
                                int status);

int
qemuMirrorWaitForHelper(virDomainObj *vm,
                        virDomainAsyncJob asyncJob,
                        unsigned long long timeoutMs,
                        bool *transportKey);
