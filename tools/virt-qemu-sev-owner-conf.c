/*
 * virt-qemu-sev-owner-conf.c: the guest owner's directory and its
 * owner.conf
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include <gmp.h>
#include <nettle/aes.h>
#include <nettle/bignum.h>
#include <nettle/ctr.h>
#include <nettle/ecc.h>
#include <nettle/ecc-curve.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#include "virerror.h"
#include "virfile.h"
#include "virgettext.h"
#include "virjson.h"
#include "virsecureerase.h"
#include "virstring.h"

#include "virt-qemu-sev-owner-cert.h"
#include "virt-qemu-sev-owner-roots.h"
#include "virt-qemu-sev-owner-util.h"

#include "virt-qemu-sev-owner-conf.h"

#define VIR_FROM_THIS VIR_FROM_NONE


/* ------------------------------------------------------------------ */
/* agent                                                                */
/* ------------------------------------------------------------------ */


void
sevOwnerConfClear(sevOwnerConf *conf)
{
    g_free(conf->dir);
    g_free(conf->odhKey);
    g_free(conf->transportKey);
    g_free(conf->keyId);
    g_free(conf->firmware);
    g_free(conf->kernel);
    g_free(conf->initrd);
    g_free(conf->cmdline);
    g_free(conf->roots);
    g_free(conf->ark);
    g_free(conf->ask);
    g_free(conf->allowChips);
    g_free(conf->minAPI);
    g_free(conf->minBuild);
    g_free(conf->cekDir);
    sevOwnerChainPolicyClear(&conf->chain);
    memset(conf, 0, sizeof(*conf));
}


static char *
sevOwnerConfPath(const char *dir,
                 const char *value)
{
    if (g_path_is_absolute(value))
        return g_strdup(value);
    return g_build_filename(dir, value, NULL);
}


/* The policy for the platform's certificate chain, from the command line
 * or owner.conf: the roots (AMD's, by generation, or an ARK and ASK in
 * files; all of AMD's when none is named), the allowed chips and the
 * minimum API version and firmware build. */
int
sevOwnerChainPolicyBuild(const char *roots,
                         const char *ark,
                         const char *ask,
                         const char *allowChips,
                         const char *minAPI,
                         const char *minBuild,
                         sevOwnerChainPolicy *policy)
{
    if (!ark != !ask) {
        sevOwnerError("%s", _("an ARK needs its ASK, and an ASK its ARK"));
        return -1;
    }

    if (roots && sevOwnerChainPolicyAddBuiltin(policy, roots) < 0)
        return -1;
    if (ark && sevOwnerChainPolicyAddRootFiles(policy, ark, ask) < 0)
        return -1;
    if (!roots && !ark && sevOwnerChainPolicyAddBuiltin(policy, "all") < 0)
        return -1;

    if (allowChips && sevOwnerChainPolicyAddChips(policy, allowChips) < 0)
        return -1;
    if (minAPI && sevOwnerChainPolicySetMinAPI(policy, minAPI) < 0)
        return -1;
    if (minBuild && sevOwnerChainPolicySetMinBuild(policy, minBuild) < 0)
        return -1;

    return 0;
}


/* DIR/owner.conf: key=value lines, '#' comments. Without @agent, only
 * the keys of the chain's policy are used and the agent's keys are not
 * required. */
int
sevOwnerConfLoad(const char *dir,
                 bool agent,
                 sevOwnerConf *conf)
{
    g_autofree char *path = g_build_filename(dir, "owner.conf", NULL);
    g_auto(sevOwnerBuf) buf = { 0 };
    g_auto(GStrv) lines = NULL;
    g_autofree char *policy = NULL;
    size_t i;

    if (sevOwnerReadFile(path, SMALL_FILE_MAX, &buf) < 0)
        return -1;

    buf.data = g_realloc(buf.data, buf.len + 1);
    buf.data[buf.len] = '\0';
    if (strlen((char *)buf.data) != buf.len) {
        sevOwnerError(_("'%1$s' is not a text file"), path);
        return -1;
    }

    conf->dir = g_strdup(dir);
    lines = g_strsplit((char *)buf.data, "\n", -1);

    for (i = 0; lines[i]; i++) {
        char *line = g_strstrip(lines[i]);
        char *eq;
        char **field = NULL;
        bool isPath = true;

        if (!*line || *line == '#')
            continue;

        if (!(eq = strchr(line, '='))) {
            sevOwnerError(_("%1$s:%2$zu: expected key=value"), path, i + 1);
            return -1;
        }
        *eq = '\0';
        g_strchomp(line);
        eq = g_strchug(eq + 1);

        if (STREQ(line, "odh-key")) {
            field = &conf->odhKey;
        } else if (STREQ(line, "transport-key")) {
            field = &conf->transportKey;
        } else if (STREQ(line, "key-id")) {
            field = &conf->keyId;
            isPath = false;
        } else if (STREQ(line, "firmware")) {
            field = &conf->firmware;
        } else if (STREQ(line, "kernel")) {
            field = &conf->kernel;
        } else if (STREQ(line, "initrd")) {
            field = &conf->initrd;
        } else if (STREQ(line, "cmdline")) {
            field = &conf->cmdline;
            isPath = false;
        } else if (STREQ(line, "policy")) {
            field = &policy;
            isPath = false;
        } else if (STREQ(line, "roots")) {
            field = &conf->roots;
            isPath = false;
        } else if (STREQ(line, "ark")) {
            field = &conf->ark;
        } else if (STREQ(line, "ask")) {
            field = &conf->ask;
        } else if (STREQ(line, "allow-chips")) {
            field = &conf->allowChips;
            isPath = false;
        } else if (STREQ(line, "min-api")) {
            field = &conf->minAPI;
            isPath = false;
        } else if (STREQ(line, "min-build")) {
            field = &conf->minBuild;
            isPath = false;
        } else if (STREQ(line, "cek-dir")) {
            field = &conf->cekDir;
        } else {
            sevOwnerError(_("%1$s:%2$zu: unknown key '%3$s'"), path, i + 1, line);
            return -1;
        }

        if (*field) {
            sevOwnerError(_("%1$s:%2$zu: '%3$s' given twice"), path, i + 1, line);
            return -1;
        }
        if (isPath && !*eq) {
            sevOwnerError(_("%1$s:%2$zu: '%3$s' needs a path"), path, i + 1, line);
            return -1;
        }
        *field = isPath ? sevOwnerConfPath(dir, eq) : g_strdup(eq);
    }

    if (sevOwnerChainPolicyBuild(conf->roots, conf->ark, conf->ask,
                                 conf->allowChips, conf->minAPI,
                                 conf->minBuild, &conf->chain) < 0) {
        sevOwnerError(_("'%1$s': invalid policy for the platform's certificate chain"),
                      path);
        return -1;
    }

    if (!agent)
        return 0;

    if (!conf->odhKey || !conf->transportKey || !conf->keyId ||
        !conf->firmware || !policy) {
        sevOwnerError(_("'%1$s' must set odh-key, transport-key, key-id, firmware and policy"),
                      path);
        return -1;
    }

    if (!sevOwnerKeyIdValid(conf->keyId)) {
        sevOwnerError(_("'%1$s': key-id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -"),
                      path);
        return -1;
    }

    if (!conf->kernel && (conf->initrd || conf->cmdline)) {
        sevOwnerError(_("'%1$s': initrd and cmdline need kernel (kernel hashes)"),
                      path);
        return -1;
    }

    if (sevOwnerParseUInt("policy", policy, UINT32_MAX, &conf->policy) < 0)
        return -1;

    if (conf->policy & SEV_POLICY_ES) {
        sevOwnerError(_("'%1$s': SEV-ES policies (bit 2) are not supported"), path);
        return -1;
    }

    return 0;
}
