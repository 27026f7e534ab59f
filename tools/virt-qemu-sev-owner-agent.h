/*
 * virt-qemu-sev-owner-agent.h: the attestation agent's protocol: the
 * session and attest operations
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include "virt-qemu-sev-owner-cmd.h"
#include "virt-qemu-sev-owner-conf.h"

/* the largest JSON request the agent reads */
#define AGENT_REQUEST_MAX (1024 * 1024)

/* What one request did: the reply, and what its audit record names. */
typedef struct {
    char *operation;        /* "session", "attest" */
    char *domain;
    char *chip;             /* SHA-256 of the CEK's key, hex */
    char *measurement;      /* launch measurement || mnonce, base64 */
    char *keyId;
    const char *verdict;    /* "session", "released", "refused" */
    char *reason;           /* the refusal */
    char *reply;            /* the JSON reply, one line */
} sevOwnerAgentResult;

void
sevOwnerAgentResultClear(sevOwnerAgentResult *res);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sevOwnerAgentResult, sevOwnerAgentResultClear);

int
sevOwnerAgentHandle(const char *ownerDir,
                    const char *input,
                    sevOwnerAgentResult *out);

char *
sevOwnerAgentReadRequest(int fd);

int
sevOwnerAgentLocal(const char *ownerDir);
