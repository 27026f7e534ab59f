/*
 * virt-qemu-sev-owner.c: the guest owner's side of AMD SEV launch
 * attestation and of confidential migration
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The formats are those of the AMD SEV API specification (publication
 * 55766), so that what this tool makes is accepted by SEV firmware:
 *
 *  - the guest owner's Diffie-Hellman certificate (sev_cert, 2084 bytes)
 *    and the LAUNCH_START session buffer (128 bytes), derived from the
 *    platform's PDH certificate with ECDH on P-384 and the SEV key
 *    derivation (NIST SP 800-108 counter mode, HMAC-SHA256);
 *  - the launch measurement (LAUNCH_MEASURE);
 *  - the LAUNCH_SECRET packet header and its encrypted payload, OVMF's
 *    secret table.
 *
 * The TEK, the TIK, the transport key and the plain secret table are
 * never printed and never written except to output files named on the
 * command line (mode 0600).
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


#include "virt-qemu-sev-owner-client.h"
#include "virt-qemu-sev-owner-cert.h"
#include "virt-qemu-sev-owner-cmd.h"
#include "virt-qemu-sev-owner-conf.h"
#include "virt-qemu-sev-owner-roots.h"
#include "virt-qemu-sev-owner-serve.h"
#include "virt-qemu-sev-owner-util.h"

#define VIR_FROM_THIS VIR_FROM_NONE

static const char *progname = SEV_OWNER_PROGNAME;


/* ------------------------------------------------------------------ */
/* verify-chain, roots                                                  */
/* ------------------------------------------------------------------ */

/*
 * Returns 0 when the chain verifies and the policy accepts it, 1 when it
 * is refused, -1 on error (options, files, configuration).
 */
static int
cmdVerifyChain(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { "pdh", true, NULL },
        { "cert-chain", false, NULL },
        { "pek", false, NULL },
        { "oca", false, NULL },
        { "cek", false, NULL },
        { "build-id", false, NULL },
        { "owner-dir", false, NULL },
        /* the policy, when there is no owner.conf */
        { "roots", false, NULL },
        { "ark", false, NULL },
        { "ask", false, NULL },
        { "allow-chips", false, NULL },
        { "min-api", false, NULL },
        { "min-build", false, NULL },
        { NULL, false, NULL },
    };
    const char *policyOpts[] = {
        "roots", "ark", "ask", "allow-chips", "min-api", "min-build",
    };
    g_auto(sevOwnerConf) conf = { 0 };
    g_auto(sevOwnerChainPolicy) cliPolicy = { 0 };
    const sevOwnerChainPolicy *policy = &cliPolicy;
    g_auto(sevOwnerBuf) pdh = { 0 };
    g_auto(sevOwnerBuf) certChain = { 0 };
    g_auto(sevOwnerBuf) pek = { 0 };
    g_auto(sevOwnerBuf) oca = { 0 };
    g_auto(sevOwnerBuf) cek = { 0 };
    g_autoptr(GString) log = g_string_new(NULL);
    g_autofree char *reason = NULL;
    g_autofree char *chip = NULL;
    sevOwnerChain chain = { 0 };
    sevOwnerChainResult res;
    const char *ownerDir;
    const char *val;
    size_t i;

    if (sevOwnerParseOpts("verify-chain", argc, argv, opts) < 0)
        return -1;

    if (sevOwnerOptGet(opts, "cert-chain")) {
        if (sevOwnerOptGet(opts, "pek") || sevOwnerOptGet(opts, "oca")) {
            sevOwnerError("%s", _("verify-chain: --cert-chain holds the PEK and the OCA: do not give --pek or --oca"));
            return -1;
        }
    } else if (!sevOwnerOptGet(opts, "pek") || !sevOwnerOptGet(opts, "oca") ||
               !sevOwnerOptGet(opts, "cek")) {
        sevOwnerError("%s", _("verify-chain: give --cert-chain, or --pek, --oca and --cek"));
        return -1;
    }

    if ((ownerDir = sevOwnerOptGet(opts, "owner-dir"))) {
        for (i = 0; i < G_N_ELEMENTS(policyOpts); i++) {
            if (sevOwnerOptGet(opts, policyOpts[i])) {
                sevOwnerError(_("verify-chain: the policy is owner.conf's: do not give --%1$s with --owner-dir"),
                              policyOpts[i]);
                return -1;
            }
        }
        if (sevOwnerConfLoad(ownerDir, false, &conf) < 0)
            return -1;
        policy = &conf.chain;
    } else if (sevOwnerChainPolicyBuild(sevOwnerOptGet(opts, "roots"),
                                        sevOwnerOptGet(opts, "ark"),
                                        sevOwnerOptGet(opts, "ask"),
                                        sevOwnerOptGet(opts, "allow-chips"),
                                        sevOwnerOptGet(opts, "min-api"),
                                        sevOwnerOptGet(opts, "min-build"),
                                        &cliPolicy) < 0) {
        return -1;
    }

    if ((val = sevOwnerOptGet(opts, "build-id"))) {
        if (sevOwnerParseUInt("--build-id", val, 255, &chain.build) < 0)
            return -1;
        chain.buildSet = true;
    }

    if (sevOwnerReadBlobFile(sevOwnerOptGet(opts, "pdh"), &pdh) < 0)
        return -1;
    chain.pdh = pdh.data;
    chain.pdhLen = pdh.len;

    if ((val = sevOwnerOptGet(opts, "cert-chain"))) {
        if (sevOwnerReadBlobFile(val, &certChain) < 0)
            return -1;
        if (sevOwnerSplitCertChain(certChain.data, certChain.len, &chain, &reason) != 0)
            goto refused;
    } else {
        if (sevOwnerReadBlobFile(sevOwnerOptGet(opts, "pek"), &pek) < 0 ||
            sevOwnerReadBlobFile(sevOwnerOptGet(opts, "oca"), &oca) < 0)
            return -1;
        chain.pek = pek.data;
        chain.pekLen = pek.len;
        chain.oca = oca.data;
        chain.ocaLen = oca.len;
    }

    /* The CEK that AMD signed, as its key distribution service gives it
     * for the chip's ID, replaces the platform's own copy; both must be
     * the same key. */
    if ((val = sevOwnerOptGet(opts, "cek"))) {
        if (sevOwnerReadBlobFile(val, &cek) < 0)
            return -1;
        if (chain.cek &&
            (cek.len != SEV_CERT_SIZE ||
             memcmp(chain.cek + SEV_CERT_OFF_PUBKEY,
                    cek.data + SEV_CERT_OFF_PUBKEY,
                    SEV_CERT_BODY_SIZE - SEV_CERT_OFF_PUBKEY) != 0)) {
            reason = g_strdup(_("CEK: the CEK given with --cek is not the key of the cert-chain's CEK"));
            goto refused;
        }
        chain.cek = cek.data;
        chain.cekLen = cek.len;
    }

    if (sevOwnerVerifyChain(&chain, policy, log, &res, &reason) != 0)
        goto refused;

    chip = g_malloc0(SEV_CHIP_ID_SIZE * 2 + 1);
    for (i = 0; i < SEV_CHIP_ID_SIZE; i++)
        g_snprintf(chip + 2 * i, 3, "%02x", res.chip[i]);

    printf("%s", log->str);
    printf(_("verified: the PDH of chip %1$s, API version %2$u.%3$u, root %4$s\n"),
           chip, res.pdh.apiMajor, res.pdh.apiMinor, res.root);
    return 0;

 refused:
    printf("%s", log->str);
    g_printerr(_("%1$s: refused: %2$s\n"), progname, reason);
    return 1;
}


/* AMD's roots this tool carries. */
static int
cmdRoots(int argc, char **argv)
{
    sevOwnerOpt opts[] = {
        { NULL, false, NULL },
    };
    const sevOwnerBuiltinRoot *roots;
    size_t nroots = 0;
    size_t i;

    if (sevOwnerParseOpts("roots", argc, argv, opts) < 0)
        return -1;

    roots = sevOwnerBuiltinRoots(&nroots);
    for (i = 0; i < nroots; i++) {
        g_auto(sevOwnerBuf) ark = { 0 };
        g_auto(sevOwnerBuf) ask = { 0 };

        if (sevOwnerBuiltinRootLoad(&roots[i], &ark, &ask) < 0)
            return -1;
        printf("%s ARK %zu %s\n", roots[i].name, ark.len, roots[i].arkSHA256);
        printf("%s ASK %zu %s\n", roots[i].name, ask.len, roots[i].askSHA256);
    }

    return 0;
}


/* ------------------------------------------------------------------ */
/* main                                                                 */
/* ------------------------------------------------------------------ */

static void
sevOwnerUsage(FILE *out)
{
    fprintf(out,
            _("Usage:\n"
              "  %1$s keygen --out FILE\n"
              "  %1$s session --pdh FILE --policy N --odh-key FILE\n"
              "          --dh-cert-out FILE --session-out FILE\n"
              "          [--tek-out FILE --tik-out FILE]\n"
              "          [--nonce HEX --tek HEX --tik HEX --wrap-iv HEX]\n"
              "  %1$s unwrap --pdh-key FILE --dh-cert FILE --session FILE --policy N\n"
              "          [--tek-out FILE --tik-out FILE]\n"
              "  %1$s measure --firmware FILE [--kernel FILE [--initrd FILE]\n"
              "          [--cmdline STR]] --api-major N --api-minor N --build-id N\n"
              "          --policy N --tik FILE --mnonce B64\n"
              "  %1$s verify (the options of measure) --measurement B64\n"
              "  %1$s secret --measurement B64 --tek FILE --tik FILE\n"
              "          --transport-key FILE --key-id ID\n"
              "          --header-out FILE --secret-out FILE [--iv HEX]\n"
              "  %1$s serve --owner-dir DIR --listen ADDR:PORT --tls-dir DIR\n"
              "          --audit FILE [--timeout SECONDS]\n"
              "  %1$s agent --service ADDR:PORT --tls-dir DIR [--timeout SECONDS]\n"
              "  %1$s agent --owner-dir DIR   (tests only)\n"
              "  %1$s verify-chain --pdh FILE\n"
              "          (--cert-chain FILE [--cek FILE] | --pek FILE --oca FILE --cek FILE)\n"
              "          [--build-id N] [--owner-dir DIR |\n"
              "          [--roots LIST] [--ark FILE --ask FILE] [--allow-chips LIST]\n"
              "          [--min-api MAJOR.MINOR] [--min-build N]]\n"
              "  %1$s roots\n"
              "  %1$s { -h | --help | -V | --version }\n"
              "\n"
              "The guest owner's side of AMD SEV launch attestation and of\n"
              "confidential migration. See virt-qemu-sev-owner(1).\n"),
            progname);
}


int
main(int argc, char **argv)
{
    const char *cmd;
    int rc;

    if (virGettextInitialize() < 0 ||
        virErrorInitialize() < 0)
        return EXIT_FAILURE;

    if (argc < 2) {
        sevOwnerUsage(stderr);
        return EXIT_FAILURE;
    }

    cmd = argv[1];
    if (STREQ(cmd, "-h") || STREQ(cmd, "--help") || STREQ(cmd, "help")) {
        sevOwnerUsage(stdout);
        return EXIT_SUCCESS;
    }
    if (STREQ(cmd, "-V") || STREQ(cmd, "--version")) {
        printf("%s %s\n", progname, PACKAGE_VERSION);
        return EXIT_SUCCESS;
    }

    if (gnutls_global_init() < 0) {
        sevOwnerError("%s", _("cannot initialize gnutls"));
        return EXIT_FAILURE;
    }

    if (STREQ(cmd, "verify")) {
        /* 0: match, 1: mismatch, 2: error */
        rc = cmdVerify(argc - 2, argv + 2);
        gnutls_global_deinit();
        return rc < 0 ? 2 : rc == 1 ? 0 : 1;
    }

    if (STREQ(cmd, "verify-chain")) {
        /* 0: verified, 1: refused, 2: error */
        rc = cmdVerifyChain(argc - 2, argv + 2);
        gnutls_global_deinit();
        return rc < 0 ? 2 : rc;
    }

    if (STREQ(cmd, "keygen")) {
        rc = cmdKeygen(argc - 2, argv + 2);
    } else if (STREQ(cmd, "session")) {
        rc = cmdSession(argc - 2, argv + 2);
    } else if (STREQ(cmd, "unwrap")) {
        rc = cmdUnwrap(argc - 2, argv + 2);
    } else if (STREQ(cmd, "measure")) {
        rc = cmdMeasure(argc - 2, argv + 2);
    } else if (STREQ(cmd, "secret")) {
        rc = cmdSecret(argc - 2, argv + 2);
    } else if (STREQ(cmd, "serve")) {
        rc = cmdServe(argc - 2, argv + 2);
    } else if (STREQ(cmd, "agent")) {
        rc = cmdAgent(argc - 2, argv + 2);
    } else if (STREQ(cmd, "roots")) {
        rc = cmdRoots(argc - 2, argv + 2);
    } else {
        sevOwnerError(_("unknown command '%1$s'"), cmd);
        sevOwnerUsage(stderr);
        rc = -1;
    }

    gnutls_global_deinit();
    return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
