/*
 * domainmirrorxml2xmltest.c: the <mirror/> element of domain XML
 *
 * Input documents are in domainmirrorxml2xmlin/. A valid one must format
 * back byte for byte: to itself, or to domainmirrorxml2xmlout/NAME.xml where
 * formatting normalizes it. An invalid one must be refused with the error
 * message in domainmirrorxml2xmlout/NAME.err. Documents named *-invalid.xml
 * are also refused by the RNG schema (virschematest checks that).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>

#include "testutils.h"
#include "domain_conf.h"

#define VIR_FROM_THIS VIR_FROM_NONE

static virDomainXMLOption *xmlopt;

typedef enum {
    TEST_ROUNDTRIP,     /* output identical to the input */
    TEST_NORMALIZED,    /* output as in domainmirrorxml2xmlout/NAME.xml */
    TEST_FAIL,          /* refused, message in domainmirrorxml2xmlout/NAME.err */
} testMode;

struct testInfo {
    const char *name;
    testMode mode;
};


static int
testMirrorXML(const void *opaque)
{
    const struct testInfo *info = opaque;
    g_autofree char *infile = NULL;
    g_autofree char *outfile = NULL;
    g_autofree char *actual = NULL;
    g_autoptr(virDomainDef) def = NULL;
    bool fail = info->mode == TEST_FAIL;

    infile = g_strdup_printf("%s/domainmirrorxml2xmlin/%s.xml",
                             abs_srcdir, info->name);
    if (info->mode == TEST_ROUNDTRIP)
        outfile = g_strdup(infile);
    else
        outfile = g_strdup_printf("%s/domainmirrorxml2xmlout/%s.%s",
                                  abs_srcdir, info->name, fail ? "err" : "xml");

    def = virDomainDefParseFile(infile, xmlopt, NULL,
                                VIR_DOMAIN_DEF_PARSE_INACTIVE);

    if (fail) {
        if (def) {
            VIR_TEST_VERBOSE("'%s' was accepted, but must be refused", infile);
            return -1;
        }
        actual = g_strdup_printf("%s\n", virGetLastErrorMessage());
        virResetLastError();
        return virTestCompareToFile(actual, outfile);
    }

    if (!def)
        return -1;

    if (!(actual = virDomainDefFormat(def, xmlopt,
                                      VIR_DOMAIN_DEF_FORMAT_INACTIVE |
                                      VIR_DOMAIN_DEF_FORMAT_SECURE)))
        return -1;

    return virTestCompareToFile(actual, outfile);
}


struct testABIInfo {
    const char *src;
    const char *dst;
    const char *error; /* NULL: the definitions must be ABI compatible */
};


static int
testMirrorABI(const void *opaque)
{
    const struct testABIInfo *info = opaque;
    g_autofree char *srcfile = NULL;
    g_autofree char *dstfile = NULL;
    g_autoptr(virDomainDef) src = NULL;
    g_autoptr(virDomainDef) dst = NULL;
    bool stable;

    srcfile = g_strdup_printf("%s/domainmirrorxml2xmlin/%s.xml",
                              abs_srcdir, info->src);
    dstfile = g_strdup_printf("%s/domainmirrorxml2xmlin/%s.xml",
                              abs_srcdir, info->dst);

    if (!(src = virDomainDefParseFile(srcfile, xmlopt, NULL,
                                      VIR_DOMAIN_DEF_PARSE_INACTIVE)) ||
        !(dst = virDomainDefParseFile(dstfile, xmlopt, NULL,
                                      VIR_DOMAIN_DEF_PARSE_INACTIVE)))
        return -1;

    stable = virDomainDefCheckABIStability(src, dst, xmlopt);

    if (!info->error) {
        if (!stable) {
            VIR_TEST_VERBOSE("unexpected ABI mismatch: %s",
                             virGetLastErrorMessage());
            return -1;
        }
        return 0;
    }

    if (stable) {
        VIR_TEST_VERBOSE("%s and %s were found ABI compatible", info->src,
                         info->dst);
        return -1;
    }

    if (STRNEQ(virGetLastErrorMessage(), info->error)) {
        VIR_TEST_VERBOSE("expected error '%s', got '%s'", info->error,
                         virGetLastErrorMessage());
        return -1;
    }
    virResetLastError();
    return 0;
}


/* virDomainMirrorDefSetPin, as virDomainPinMirrorVcpu uses it: add a pin,
 * replace it, drop it; an index out of range changes nothing */
static int
testMirrorSetPin(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *infile = g_strdup_printf("%s/domainmirrorxml2xmlin/mirror-vcpus-2.xml",
                                              abs_srcdir);
    g_autoptr(virDomainDef) def = NULL;
    g_autoptr(virBitmap) one = NULL;
    g_autoptr(virBitmap) two = NULL;
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;

    if (!(def = virDomainDefParseFile(infile, xmlopt, NULL,
                                      VIR_DOMAIN_DEF_PARSE_INACTIVE)) ||
        virBitmapParse("1", &one, 16) < 0 ||
        virBitmapParse("2-3", &two, 16) < 0)
        return -1;

    if (virDomainMirrorDefSetPin(def->mirror, 1, one) < 0 ||
        virDomainMirrorDefSetPin(def->mirror, 0, two) < 0 ||
        virDomainMirrorDefSetPin(def->mirror, 1, two) < 0)
        return -1;
    virDomainMirrorDefFormatCputune(&buf, def->mirror);
    if (STRNEQ(virBufferCurrentContent(&buf),
               "<mirrorpin vcpu='1' cpuset='2-3'/>\n<mirrorpin vcpu='0' cpuset='2-3'/>\n")) {
        VIR_TEST_VERBOSE("formatted '%s'", virBufferCurrentContent(&buf));
        return -1;
    }

    if (virDomainMirrorDefSetPin(def->mirror, 1, NULL) < 0)
        return -1;
    virBufferFreeAndReset(&buf);
    virDomainMirrorDefFormatCputune(&buf, def->mirror);
    if (STRNEQ(virBufferCurrentContent(&buf), "<mirrorpin vcpu='0' cpuset='2-3'/>\n")) {
        VIR_TEST_VERBOSE("formatted '%s'", virBufferCurrentContent(&buf));
        return -1;
    }

    if (virDomainMirrorDefSetPin(def->mirror, 2, one) == 0 ||
        def->mirror->npins != 1) {
        VIR_TEST_VERBOSE("mirror vCPU 2 of 2 was pinned");
        return -1;
    }
    virResetLastError();
    return 0;
}


static int
mymain(void)
{
    int ret = 0;
    virDomainDefParserConfig config = { 0 };

    if (!(xmlopt = virDomainXMLOptionNew(&config, NULL, NULL, NULL,
                                         NULL, NULL)))
        return EXIT_FAILURE;

#define DO_TEST_MODE(name, mode) \
    do { \
        const struct testInfo info = { name, mode }; \
        if (virTestRun("mirror XML " name, testMirrorXML, &info) < 0) \
            ret = -1; \
    } while (0)

#define DO_TEST(name) DO_TEST_MODE(name, TEST_ROUNDTRIP)
#define DO_TEST_NORMALIZED(name) DO_TEST_MODE(name, TEST_NORMALIZED)
#define DO_TEST_FAIL(name) DO_TEST_MODE(name, TEST_FAIL)

    DO_TEST("mirror-vcpus-1");
    DO_TEST("mirror-vcpus-2");
    DO_TEST("mirror-vcpus-max");
    DO_TEST("mirror-cpuset");
    DO_TEST("mirror-topology");
    DO_TEST("mirror-vcpus-total-max");
    /* NOSEND only refuses confidential migrations, not mirror vCPUs */
    DO_TEST("mirror-sev-nosend");
    DO_TEST("mirror-pin");
    DO_TEST("mirror-none");
    DO_TEST_NORMALIZED("mirror-default");
    DO_TEST_NORMALIZED("mirror-cpuset-normalized");

    /* refused by the schema too */
    DO_TEST_FAIL("mirror-vcpus-zero-invalid");
    DO_TEST_FAIL("mirror-vcpus-negative-invalid");
    DO_TEST_FAIL("mirror-vcpus-junk-invalid");
    DO_TEST_FAIL("mirror-vcpus-empty-invalid");
    DO_TEST_FAIL("mirror-vcpus-overflow-invalid");
    DO_TEST_FAIL("mirror-vcpus-too-many-invalid");
    DO_TEST_FAIL("mirror-cpuset-junk-invalid");
    DO_TEST_FAIL("mirror-cpuset-junk-range-invalid");
    DO_TEST_FAIL("mirror-duplicate-invalid");

    /* valid for the schema, refused by validation */
    DO_TEST_FAIL("mirror-cpuset-empty");
    DO_TEST_FAIL("mirror-cpuset-out-of-range");
    DO_TEST_FAIL("mirror-no-launch-security");
    DO_TEST_FAIL("mirror-sev-snp");
    DO_TEST_FAIL("mirror-sev-es");
    DO_TEST_FAIL("mirror-pin-no-mirror");
    DO_TEST_FAIL("mirror-pin-out-of-range");
    DO_TEST_FAIL("mirror-pin-duplicate");
    DO_TEST_FAIL("mirror-s390-pv");
    DO_TEST_FAIL("mirror-vcpus-total-too-many");

    if (virTestRun("mirror vCPU pinning", testMirrorSetPin, NULL) < 0)
        ret = -1;

#define DO_TEST_ABI(src, dst, error) \
    do { \
        const struct testABIInfo info = { src, dst, error }; \
        if (virTestRun("mirror ABI " src " -> " dst, testMirrorABI, &info) < 0) \
            ret = -1; \
    } while (0)

    DO_TEST_ABI("mirror-vcpus-2", "mirror-vcpus-2", NULL);
    DO_TEST_ABI("mirror-vcpus-1", "mirror-cpuset", NULL);
    DO_TEST_ABI("mirror-vcpus-2", "mirror-vcpus-1",
                "unsupported configuration: Target domain mirror vCPU count 1 does not match source 2");
    DO_TEST_ABI("mirror-vcpus-1", "mirror-none",
                "unsupported configuration: Target domain mirror vCPUs (element 'mirror') do not match source");
    DO_TEST_ABI("mirror-none", "mirror-vcpus-1",
                "unsupported configuration: Target domain mirror vCPUs (element 'mirror') do not match source");

    virObjectUnref(xmlopt);

    return ret == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

VIR_TEST_MAIN(mymain)
