/*
 * qemu_mirror_attest.h: the attestation agent of a confidential migration
 * target, through which libvirt reaches the guest owner
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "virjson.h"
#include "domain_conf.h"
#include "domain_capabilities.h"
#include "qemu_conf.h"

/* sizes of the SEV structures the agent returns, once base64 is decoded
 * (AMD SEV API specification) */
#define QEMU_MIRROR_ATTEST_DH_CERT_SIZE 2084
#define QEMU_MIRROR_ATTEST_SESSION_SIZE 128
#define QEMU_MIRROR_ATTEST_SECRET_HEADER_SIZE 52
#define QEMU_MIRROR_ATTEST_KEY_ID_MAX 64

/* what of the agent's own text (a refusal's reason, the last line of its
 * standard error) an error quotes at most, in characters */
#define QEMU_MIRROR_ATTEST_TEXT_MAX 200

/* the operations of the agent's protocol, the steps in which libvirt runs
 * it; errors name them as they name a QEMU command, in quotes */
#define QEMU_MIRROR_ATTEST_STEP_SESSION "session"
#define QEMU_MIRROR_ATTEST_STEP_ATTEST "attest"

typedef struct _qemuMirrorAttestSecret qemuMirrorAttestSecret;
struct _qemuMirrorAttestSecret {
    char *header;   /* base64, LAUNCH_SECRET packet header */
    char *secret;   /* base64, the encrypted secret table */
    char *keyId;    /* the transport key's identifier */
};

void
qemuMirrorAttestSecretFree(qemuMirrorAttestSecret *secret);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(qemuMirrorAttestSecret, qemuMirrorAttestSecretFree);

int
qemuMirrorAttestCheckAgent(virQEMUDriverConfig *cfg,
                           const char *domname);

virJSONValue *
qemuMirrorAttestRequestNew(const char *operation,
                           const virDomainDef *def,
                           const char *hostname,
                           const virSEVCapability *platform);

int
qemuMirrorAttestRun(const char *agent,
                    unsigned int timeout,
                    const char *domname,
                    const char *step,
                    virJSONValue *request,
                    virJSONValue **reply,
                    unsigned long long *elapsedMs);

int
qemuMirrorAttestParseSession(virJSONValue *reply,
                             const char *domname,
                             char **dhCert,
                             char **session);

qemuMirrorAttestSecret *
qemuMirrorAttestParseSecret(virJSONValue *reply,
                            const char *domname);

bool
qemuMirrorAttestKeyIdValid(const char *keyId);

char *
qemuMirrorAttestSanitize(const char *text,
                         size_t max);

int
qemuMirrorAttestSession(virQEMUDriverConfig *cfg,
                        virDomainDef *def,
                        const virSEVCapability *platform);
