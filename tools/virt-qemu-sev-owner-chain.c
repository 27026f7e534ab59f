/*
 * virt-qemu-sev-owner-chain.c: the platform's certificate chain verified
 * under the guest owner's policy (roots, allowed chips, minimum API
 * version and firmware build)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>
#include "internal.h"

#include <gmp.h>
#include <nettle/bignum.h>
#include <nettle/ecc.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecdsa.h>
#include <nettle/rsa.h>
#include <nettle/sha2.h>

#include "virt-qemu-sev-owner-cert.h"
#define LIBVIRT_VIRT_QEMU_SEV_OWNER_CERTPRIV_H_ALLOW
#include "virt-qemu-sev-owner-certpriv.h"
#include "virt-qemu-sev-owner-roots.h"
#include "virt-qemu-sev-owner-util.h"

#define VIR_FROM_THIS VIR_FROM_NONE


/* ------------------------------------------------------------------ */
/* The chain                                                            */
/* ------------------------------------------------------------------ */

/* QEMU's cert-chain (query-sev-capabilities, virsh nodesevinfo): what
 * PDH_CERT_EXPORT returns as the certificate chain, the PEK, the OCA and
 * the CEK. */
int
sevOwnerSplitCertChain(const uint8_t *blob,
                       size_t len,
                       sevOwnerChain *chain,
                       char **reason)
{
    if (len != 3 * SEV_CERT_SIZE)
        return sevOwnerRefusal(reason,
                               _("cert-chain: %1$zu bytes, not the %2$d of a PEK, an OCA and a CEK"),
                               len, 3 * SEV_CERT_SIZE);

    chain->pek = blob;
    chain->pekLen = SEV_CERT_SIZE;
    chain->oca = blob + SEV_CERT_SIZE;
    chain->ocaLen = SEV_CERT_SIZE;
    chain->cek = blob + 2 * SEV_CERT_SIZE;
    chain->cekLen = SEV_CERT_SIZE;
    return 0;
}


static void
sevOwnerChipId(const sevOwnerSEVCert *cek,
               uint8_t chip[SEV_CHIP_ID_SIZE])
{
    struct sha256_ctx ctx;
    uint8_t point = 0x04;

    /* the uncompressed point of SEC 1: 0x04 || x || y, big-endian */
    sha256_init(&ctx);
    sha256_update(&ctx, 1, &point);
    sha256_update(&ctx, P384_SIZE, cek->key.x);
    sha256_update(&ctx, P384_SIZE, cek->key.y);
    sha256_digest(&ctx, SEV_CHIP_ID_SIZE, chip);
}


/* The chip identity (SHA-256 of the CEK's public point) of the CEK @cek,
 * or -1 if it is no valid CEK. */
int
sevOwnerChainChipId(const uint8_t *cek,
                    size_t len,
                    uint8_t chip[SEV_CHIP_ID_SIZE])
{
    g_autofree char *reason = NULL;
    sevOwnerSEVCert cert;

    if (sevOwnerSEVCertParse("CEK", cek, len, SEV_USAGE_CEK, &cert, &reason) != 0)
        return -1;

    sevOwnerChipId(&cert, chip);
    return 0;
}


static bool
sevOwnerAPIBelow(unsigned int major,
                 unsigned int minor,
                 const sevOwnerChainPolicy *policy)
{
    return major < policy->minAPIMajor ||
        (major == policy->minAPIMajor && minor < policy->minAPIMinor);
}


/*
 * Verifies @chain against @policy. Returns 0 when the chain verifies
 * and the policy accepts it (@res filled), 1 when it is refused (*reason
 * names what failed). @log, if not NULL, receives a line for each check
 * that passed, in order.
 */
int
sevOwnerVerifyChain(const sevOwnerChain *chain,
                    const sevOwnerChainPolicy *policy,
                    GString *log,
                    sevOwnerChainResult *res,
                    char **reason)
{
    sevOwnerSEVCert pdh;
    sevOwnerSEVCert pek;
    sevOwnerSEVCert oca;
    sevOwnerSEVCert cek;
    const sevOwnerRoot *signer = NULL;
    g_autofree char *chip = NULL;
    uint32_t algo = 0;
    size_t i;

    memset(res, 0, sizeof(*res));

    if (policy->nroots == 0)
        return sevOwnerRefusal(reason, "%s", _("no root of trust is allowed"));

    if (sevOwnerSEVCertParse("PDH", chain->pdh, chain->pdhLen, SEV_USAGE_PDH, &pdh, reason) ||
        sevOwnerSEVCertParse("PEK", chain->pek, chain->pekLen, SEV_USAGE_PEK, &pek, reason) ||
        sevOwnerSEVCertParse("OCA", chain->oca, chain->ocaLen, SEV_USAGE_OCA, &oca, reason) ||
        sevOwnerSEVCertParse("CEK", chain->cek, chain->cekLen, SEV_USAGE_CEK, &cek, reason))
        return 1;

    /* CEK <- ASK <- ARK: the CEK must be signed by the ASK of a root the
     * owner allows; each root tried must itself verify */
    if (!sevOwnerSigSlot(&cek, SEV_USAGE_ASK, &algo))
        return sevOwnerRefusal(reason, "%s",
                               _("CEK: not signed by the ASK (no signature of usage ASK)"));
    if (algo != SEV_ALGO_RSA_SHA256 && algo != SEV_ALGO_RSA_SHA384)
        return sevOwnerRefusal(reason,
                               _("CEK: the signature of usage ASK has algorithm 0x%1$x, not RSA (0x1 or 0x101)"),
                               algo);

    for (i = 0; i < policy->nroots && !signer; i++) {
        sevOwnerAMDCert ark;
        sevOwnerAMDCert ask;
        g_autoptr(GString) rootLog = g_string_new(NULL);

        if (sevOwnerRootVerify(&policy->roots[i], &ark, &ask, rootLog, reason) != 0)
            return 1;

        if (sevOwnerCEKSignedByASK(&cek, &ask)) {
            signer = &policy->roots[i];
            if (log)
                g_string_append(log, rootLog->str);
            sevOwnerLog(log, _("CEK: signed by the ASK (%1$s): verified (%2$s)"),
                        signer->name, sevOwnerPSSName(&ask));
        }
    }

    if (!signer) {
        g_autoptr(GString) names = g_string_new(NULL);

        for (i = 0; i < policy->nroots; i++)
            g_string_append_printf(names, "%s%s", i ? ", " : "",
                                   policy->roots[i].name);
        return sevOwnerRefusal(reason,
                               _("CEK: signature by the ASK does not verify (allowed roots: %1$s)"),
                               names->str);
    }

    sevOwnerChipId(&cek, res->chip);
    chip = sevOwnerHex(res->chip, SEV_CHIP_ID_SIZE);
    sevOwnerLog(log, _("CEK: chip %1$s (SHA-256 of the CEK's public key)"), chip);

    /* OCA (self-signed) and CEK -> PEK -> PDH */
    if (sevOwnerCheckSignedBy(&oca, &oca, log, reason) ||
        sevOwnerCheckSignedBy(&pek, &cek, log, reason) ||
        sevOwnerCheckSignedBy(&pek, &oca, log, reason) ||
        sevOwnerCheckSignedBy(&pdh, &pek, log, reason))
        return 1;

    sevOwnerLog(log, _("PEK: API version %1$u.%2$u"),
                pek.key.apiMajor, pek.key.apiMinor);
    sevOwnerLog(log, _("PDH: API version %1$u.%2$u"),
                pdh.key.apiMajor, pdh.key.apiMinor);

    /* the owner's policy */
    if (policy->nchips > 0) {
        bool found = false;

        for (i = 0; i < policy->nchips && !found; i++)
            found = memcmp(policy->chips + i * SEV_CHIP_ID_SIZE, res->chip,
                           SEV_CHIP_ID_SIZE) == 0;
        if (!found)
            return sevOwnerRefusal(reason, _("CEK: chip %1$s is not an allowed chip"),
                                   chip);
        sevOwnerLog(log, "%s", _("policy: the chip is allowed"));
    }

    if (policy->minAPISet) {
        if (sevOwnerAPIBelow(pek.key.apiMajor, pek.key.apiMinor, policy))
            return sevOwnerRefusal(reason,
                                   _("PEK: API version %1$u.%2$u is below the minimum %3$u.%4$u"),
                                   pek.key.apiMajor, pek.key.apiMinor,
                                   policy->minAPIMajor, policy->minAPIMinor);
        if (sevOwnerAPIBelow(pdh.key.apiMajor, pdh.key.apiMinor, policy))
            return sevOwnerRefusal(reason,
                                   _("PDH: API version %1$u.%2$u is below the minimum %3$u.%4$u"),
                                   pdh.key.apiMajor, pdh.key.apiMinor,
                                   policy->minAPIMajor, policy->minAPIMinor);
        sevOwnerLog(log, _("policy: API version at least %1$u.%2$u"),
                    policy->minAPIMajor, policy->minAPIMinor);
    }

    if (policy->minBuildSet) {
        if (!chain->buildSet)
            return sevOwnerRefusal(reason,
                                   _("firmware build: not given, and the minimum is %1$u"),
                                   policy->minBuild);
        if (chain->build < policy->minBuild)
            return sevOwnerRefusal(reason,
                                   _("firmware build: %1$u is below the minimum %2$u"),
                                   chain->build, policy->minBuild);
        sevOwnerLog(log, _("policy: firmware build %1$u, at least %2$u"),
                    chain->build, policy->minBuild);
    }

    res->root = signer->name;
    res->pdh = pdh.key;
    res->pekAPIMajor = pek.key.apiMajor;
    res->pekAPIMinor = pek.key.apiMinor;
    return 0;
}


/* ------------------------------------------------------------------ */
/* The owner's policy                                                   */
/* ------------------------------------------------------------------ */

void
sevOwnerChainPolicyClear(sevOwnerChainPolicy *policy)
{
    size_t i;

    for (i = 0; i < policy->nroots; i++) {
        g_free(policy->roots[i].name);
        g_free(policy->roots[i].ark);
        g_free(policy->roots[i].ask);
    }
    g_free(policy->roots);
    g_free(policy->chips);
    memset(policy, 0, sizeof(*policy));
}


static bool
sevOwnerPolicyHasRoot(const sevOwnerChainPolicy *policy,
                      const char *name)
{
    size_t i;

    for (i = 0; i < policy->nroots; i++) {
        if (STREQ(policy->roots[i].name, name))
            return true;
    }
    return false;
}


static void
sevOwnerPolicyAddRoot(sevOwnerChainPolicy *policy,
                      const char *name,
                      uint8_t *ark,
                      size_t arkLen,
                      uint8_t *ask,
                      size_t askLen)
{
    sevOwnerRoot *root;

    policy->roots = g_renew(sevOwnerRoot, policy->roots, policy->nroots + 1);
    root = &policy->roots[policy->nroots++];
    root->name = g_strdup(name);
    root->ark = ark;
    root->arkLen = arkLen;
    root->ask = ask;
    root->askLen = askLen;
}


/* AMD's roots this tool carries: a comma-separated list of generations,
 * or "all". */
int
sevOwnerChainPolicyAddBuiltin(sevOwnerChainPolicy *policy,
                              const char *names)
{
    g_auto(GStrv) list = g_strsplit(names, ",", -1);
    size_t nbuiltin = 0;
    const sevOwnerBuiltinRoot *builtin = sevOwnerBuiltinRoots(&nbuiltin);
    size_t i;
    size_t j;

    for (i = 0; list[i]; i++) {
        const char *name = g_strstrip(list[i]);
        bool all = STREQ(name, "all");
        bool found = false;

        for (j = 0; j < nbuiltin; j++) {
            sevOwnerBuf ark = { 0 };
            sevOwnerBuf ask = { 0 };

            if (!all && STRNEQ(name, builtin[j].name))
                continue;
            found = true;
            if (sevOwnerPolicyHasRoot(policy, builtin[j].name))
                continue;
            if (sevOwnerBuiltinRootLoad(&builtin[j], &ark, &ask) < 0)
                return -1;
            sevOwnerPolicyAddRoot(policy, builtin[j].name,
                                  ark.data, ark.len, ask.data, ask.len);
        }

        if (!found) {
            g_autoptr(GString) known = g_string_new("all");

            for (j = 0; j < nbuiltin; j++)
                g_string_append_printf(known, ", %s", builtin[j].name);
            sevOwnerError(_("unknown SEV generation '%1$s' (known: %2$s)"),
                          name, known->str);
            return -1;
        }
    }

    return 0;
}


/* An ARK and an ASK in files (base64 or raw), the owner's own root. */
int
sevOwnerChainPolicyAddRootFiles(sevOwnerChainPolicy *policy,
                                const char *ark,
                                const char *ask)
{
    sevOwnerBuf arkData = { 0 };
    sevOwnerBuf askData = { 0 };

    if (sevOwnerReadBlobFile(ark, &arkData) < 0)
        return -1;
    if (sevOwnerReadBlobFile(ask, &askData) < 0) {
        sevOwnerBufClear(&arkData);
        return -1;
    }

    sevOwnerPolicyAddRoot(policy, ark, arkData.data, arkData.len,
                          askData.data, askData.len);
    return 0;
}


/* Chip identities: a comma-separated list of SHA-256 digests of CEK
 * public keys, 64 hex digits each. */
int
sevOwnerChainPolicyAddChips(sevOwnerChainPolicy *policy,
                            const char *list)
{
    g_auto(GStrv) items = g_strsplit(list, ",", -1);
    size_t i;

    for (i = 0; items[i]; i++) {
        const char *item = g_strstrip(items[i]);
        uint8_t chip[SEV_CHIP_ID_SIZE];

        if (!*item)
            continue;
        if (sevOwnerParseHex(_("a chip identity"), item, chip, sizeof(chip)) < 0)
            return -1;

        policy->chips = g_renew(uint8_t, policy->chips,
                                (policy->nchips + 1) * SEV_CHIP_ID_SIZE);
        memcpy(policy->chips + policy->nchips * SEV_CHIP_ID_SIZE, chip,
               SEV_CHIP_ID_SIZE);
        policy->nchips++;
    }

    return 0;
}


/* MAJOR.MINOR */
int
sevOwnerChainPolicySetMinAPI(sevOwnerChainPolicy *policy,
                             const char *str)
{
    g_auto(GStrv) parts = g_strsplit(str, ".", -1);

    if (g_strv_length(parts) != 2 ||
        sevOwnerParseUInt(_("minimum API major version"), parts[0], 255,
                          &policy->minAPIMajor) < 0 ||
        sevOwnerParseUInt(_("minimum API minor version"), parts[1], 255,
                          &policy->minAPIMinor) < 0) {
        sevOwnerError(_("invalid minimum API version '%1$s' (expected MAJOR.MINOR)"),
                      str);
        return -1;
    }

    policy->minAPISet = true;
    return 0;
}


int
sevOwnerChainPolicySetMinBuild(sevOwnerChainPolicy *policy,
                               const char *str)
{
    if (sevOwnerParseUInt(_("minimum firmware build"), str, 255,
                          &policy->minBuild) < 0)
        return -1;

    policy->minBuildSet = true;
    return 0;
}
