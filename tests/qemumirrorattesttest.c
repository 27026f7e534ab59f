/*
 * qemumirrorattesttest.c: how libvirt runs the attestation agent of a
 * confidential migration target (qemuMirrorAttestRun), with fake agents in
 * qemumirrorattestdata/: the agent's environment is minimal; what of its
 * text reaches an error is sanitised (printable ASCII, length-capped); its
 * reply does not reach the debug log (virCommand's included); its whole
 * process group is killed on a timeout, when it writes more than libvirt
 * reads, and after it exits, and when the process that runs it is
 * killed by SIGKILL (a wrapper that does not exec and its sleeping child
 * included)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutils.h"
#include "vircommand.h"
#include "virfile.h"
#include "virlog.h"
#include "qemu/qemu_mirror_attest.h"

#define VIR_FROM_THIS VIR_FROM_NONE

#define AGENT_DIR abs_srcdir "/qemumirrorattestdata/"

/* how long a killed process may take to be gone, on a loaded machine */
#define GONE_TIMEOUT_MS 20000


static int
testCheckError(const char *expected)
{
    if (STRNEQ(virGetLastErrorMessage(), expected)) {
        VIR_TEST_VERBOSE("expected '%s'\n     got '%s'", expected,
                         virGetLastErrorMessage());
        return -1;
    }
    virResetLastError();
    return 0;
}


/* one run of @agent (in qemumirrorattestdata/) with @timeout, its request
 * naming the directory @dir (for agents that write their process IDs) */
static int
testRun(const char *agent,
        unsigned int timeout,
        const char *dir,
        virJSONValue **reply)
{
    g_autofree char *path = g_strdup_printf("%s%s", AGENT_DIR, agent);
    g_autoptr(virJSONValue) request = virJSONValueNewObject();

    if (virJSONValueObjectAppendString(request, "operation", "attest") < 0 ||
        virJSONValueObjectAppendString(request, "dir", NULLSTR_EMPTY(dir)) < 0)
        return -2;

    return qemuMirrorAttestRun(path, timeout, "guest", "attest", request, reply,
                               NULL);
}


/* the names of the environment virCommandAddEnvPassCommon passes on */
static const char *passed[] = {
    "DYLD_FORCE_FLAT_NAMESPACE", "DYLD_INSERT_LIBRARIES", "HOME",
    "LD_LIBRARY_PATH", "LD_PRELOAD", "LOGNAME", "PATH", "TMPDIR", "USER",
};

static int
testEnvironment(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virJSONValue) reply = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    g_autoptr(GString) expected = g_string_new(NULL);
    size_t i;

    /* the daemon's environment has more: none of it reaches the agent */
    g_setenv("MIRROR_ATTEST_TEST_DAEMON_ONLY", "not for the agent", TRUE);

    g_ptr_array_add(names, (char *) "LC_ALL");
    for (i = 0; i < G_N_ELEMENTS(passed); i++) {
        if (getenv(passed[i]))
            g_ptr_array_add(names, (char *) passed[i]);
    }
    g_ptr_array_sort(names, (GCompareFunc) virStringSortCompare);

    g_string_append(expected, "operation failed: the guest owner refused the 'attest' request for domain 'guest': ");
    for (i = 0; i < names->len; i++)
        g_string_append_printf(expected, "%s ", (char *) g_ptr_array_index(names, i));
    g_string_append(expected, "LC_ALL=C");

    if (testRun("env.sh", 10, NULL, &reply) != -1)
        return -1;
    return testCheckError(expected->str);
}


static int
testSanitize(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *cut = qemuMirrorAttestSanitize("abcdef", 3);
    g_autofree char *exact = qemuMirrorAttestSanitize("abc", 3);
    g_autofree char *control = qemuMirrorAttestSanitize("a\x1b[1m\r\n\t\x7f\xc3\xa9z", 200);

    if (STRNEQ(cut, "abc...") || STRNEQ(exact, "abc") ||
        STRNEQ(control, "a?[1m??????z")) {
        VIR_TEST_VERBOSE("'%s' '%s' '%s'", cut, exact, control);
        return -1;
    }
    return 0;
}


static int
testRefusalSanitized(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virJSONValue) reply = NULL;
    const char *prefix = "red ?[31mALERT?[0m??forged line?and? more ?? ";
    g_autofree char *xs = g_strnfill(QEMU_MIRROR_ATTEST_TEXT_MAX - strlen(prefix), 'x');
    g_autofree char *expected =
        g_strdup_printf("operation failed: the guest owner refused the 'attest' request for domain 'guest': %s%s...",
                        prefix, xs);

    if (testRun("refuse-control.sh", 10, NULL, &reply) != -1)
        return -1;
    return testCheckError(expected);
}


static int
testStderrSanitized(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virJSONValue) reply = NULL;
    const char *prefix = "?[2Jcleared the screen ";
    g_autofree char *ys = g_strnfill(QEMU_MIRROR_ATTEST_TEXT_MAX - strlen(prefix), 'y');
    g_autofree char *expected =
        g_strdup_printf("operation failed: attestation agent '%sfail-control.sh' failed the 'attest' request for domain 'guest' (exit status 4): %s%s...",
                        AGENT_DIR, prefix, ys);

    if (testRun("fail-control.sh", 10, NULL, &reply) != -1)
        return -1;
    return testCheckError(expected);
}


/* the agent's exit status reaches libvirt through the watchdog: a signal
 * stays a signal */
static int
testSignal(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virJSONValue) reply = NULL;
    g_autofree char *expected =
        g_strdup_printf("operation failed: attestation agent '%ssignal.sh' failed the 'attest' request for domain 'guest' (fatal signal %d): about to die",
                        AGENT_DIR, SIGUSR1);

    if (testRun("signal.sh", 10, NULL, &reply) != -1)
        return -1;
    return testCheckError(expected);
}


/* an agent that writes more than libvirt reads is killed at once, not at
 * its timeout (30 s, which only ends a run the limit failed to stop) */
static int
testOutputMax(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virJSONValue) reply = NULL;
    const char *msg;

    if (testRun("flood.sh", 30, NULL, &reply) != -1)
        return -1;
    msg = virGetLastErrorMessage();
    if (virGetLastErrorCode() != VIR_ERR_OPERATION_FAILED ||
        !strstr(msg, "flood.sh) wrote more than 1048576 bytes to its standard output and was killed")) {
        VIR_TEST_VERBOSE("unexpected error: %s", msg);
        return -1;
    }
    virResetLastError();
    return 0;
}


/* the debug log has the reply's size and the agent's standard error
 * (sanitised), not the reply */
static int
testLog(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virJSONValue) reply = NULL;
    g_autofree char *log = NULL;
    int rc;

    /* the JSON parser's debug messages too, and virCommand's */
    if (virLogSetFilters("1:qemu.qemu_mirror_attest 1:util.json 1:util.command") < 0)
        return -1;
    g_free(virTestLogContentAndReset());
    rc = testRun("log.sh", 10, NULL, &reply);
    log = virTestLogContentAndReset();
    virLogSetFilters(NULL);

    if (rc < 0 || !virJSONValueObjectHasKey(reply, "reply-marker")) {
        VIR_TEST_VERBOSE("run failed: %s", virGetLastErrorMessage());
        return -1;
    }
    if (strstr(log, "reply-marker") || strstr(log, "not for the log") ||
        strchr(log, '\x1b') ||
        !strstr(log, "step attest: a reply of 36 bytes") ||
        !strstr(log, "step attest, standard error: stderr-marker ?[1mbold")) {
        VIR_TEST_VERBOSE("debug log:\n%s", log);
        return -1;
    }
    return 0;
}


/* whether process @pid is gone (or a zombie: dead, not reaped yet) */
static bool
testGone(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%lld/stat", (long long) pid);
    g_autofree char *stat = NULL;
    const char *p;

    if (virFileReadAllQuiet(path, 1024, &stat) < 0)
        return true;
    if (!(p = strrchr(stat, ')')))
        return false;
    return p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}


/* whether a process of group @pgid still lives */
static bool
testGroupAlive(pid_t pgid)
{
    g_autoptr(DIR) dir = NULL;
    struct dirent *ent;

    if (virDirOpen(&dir, "/proc") < 0)
        return false;
    while (virDirRead(dir, &ent, "/proc") > 0) {
        g_autofree char *path = NULL;
        g_autofree char *stat = NULL;
        const char *p;
        char state;
        long long ppid;
        long long pgrp;

        if (!g_ascii_isdigit(ent->d_name[0]))
            continue;
        path = g_strdup_printf("/proc/%s/stat", ent->d_name);
        if (virFileReadAllQuiet(path, 1024, &stat) < 0 ||
            !(p = strrchr(stat, ')')) ||
            sscanf(p + 1, " %c %lld %lld", &state, &ppid, &pgrp) != 3)
            continue;
        if (pgrp == pgid && state != 'Z' && state != 'X')
            return true;
    }
    return false;
}


static pid_t
testReadPid(const char *dir,
            const char *name)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *text = NULL;
    long long val;

    if (virFileReadAllQuiet(path, 64, &text) < 0 ||
        virStrToLong_ll(g_strstrip(text), NULL, 10, &val) < 0 || val <= 1)
        return -1;
    return val;
}


/* waits until the wrapper, its child and its process group (the IDs the
 * agent wrote in @dir) are gone; -1 if they are not in GONE_TIMEOUT_MS */
static int
testWaitAllGone(const char *dir,
                const char *what)
{
    pid_t wrapper = testReadPid(dir, "wrapper.pid");
    pid_t child = testReadPid(dir, "child.pid");
    pid_t pgid = testReadPid(dir, "pgid");
    g_autofree char *completed = g_build_filename(dir, "completed", NULL);
    size_t i;

    if (child < 0 || pgid < 0) {
        VIR_TEST_VERBOSE("%s: the agent did not write its process IDs", what);
        return -1;
    }
    for (i = 0; i < GONE_TIMEOUT_MS / 50; i++) {
        if ((wrapper < 0 || testGone(wrapper)) && testGone(child) &&
            !testGroupAlive(pgid))
            break;
        g_usleep(50 * 1000);
    }
    if (i == GONE_TIMEOUT_MS / 50) {
        VIR_TEST_VERBOSE("%s: still running %d s later: wrapper %lld (%s), child %lld (%s), its group %lld (%s)",
                         what, GONE_TIMEOUT_MS / 1000,
                         (long long) wrapper, wrapper < 0 || testGone(wrapper) ? "gone" : "alive",
                         (long long) child, testGone(child) ? "gone" : "alive",
                         (long long) pgid, testGroupAlive(pgid) ? "alive" : "gone");
        /* not left behind for the next tests (unless the agent did not
         * get a group of its own: then it is the test's) */
        if (pgid != getpgrp())
            kill(-pgid, SIGKILL);
        else if (child > 0)
            kill(child, SIGKILL);
        return -1;
    }
    if (virFileExists(completed)) {
        VIR_TEST_VERBOSE("%s: the agent's child completed", what);
        return -1;
    }
    return 0;
}


/* a wrapper that does not exec, its child sleeping: on the timeout, both
 * are killed (the whole process group) */
static int
testTimeoutWrapper(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virJSONValue) reply = NULL;
    g_autofree char *dir = g_dir_make_tmp("qemumirrorattesttest-XXXXXX", NULL);
    int ret = -1;

    if (!dir)
        return -1;
    if (testRun("wrapper-child.sh", 5, dir, &reply) != -1 ||
        testCheckError("Timed out during operation: attestation agent '" AGENT_DIR "wrapper-child.sh' did not answer the 'attest' request for domain 'guest' within 5 seconds (mirror_attestation_timeout)") < 0)
        goto cleanup;

    ret = testWaitAllGone(dir, "timeout");

 cleanup:
    virFileDeleteTree(dir);
    return ret;
}


/* an agent that answers and leaves a child running (holding none of its
 * pipes): the child is killed when the agent has exited */
static int
testLeftChild(const void *opaque G_GNUC_UNUSED)
{
    g_autoptr(virJSONValue) reply = NULL;
    g_autofree char *dir = g_dir_make_tmp("qemumirrorattesttest-XXXXXX", NULL);
    int ret = -1;

    if (!dir)
        return -1;
    if (testRun("leave-child.sh", 30, dir, &reply) < 0) {
        VIR_TEST_VERBOSE("run failed: %s", virGetLastErrorMessage());
        goto cleanup;
    }

    ret = testWaitAllGone(dir, "left child");

 cleanup:
    virFileDeleteTree(dir);
    return ret;
}


/* the process that runs the agent (the daemon) is killed by SIGKILL while
 * a wrapper that does not exec and its sleeping child run: both are gone
 * soon after, and the child never completes */
static int
testDaemonKilled(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *dir = g_dir_make_tmp("qemumirrorattesttest-XXXXXX", NULL);
    g_autofree char *started = NULL;
    pid_t daemonPid;
    int status;
    size_t i;
    int ret = -1;

    if (!dir)
        return -1;
    started = g_build_filename(dir, "wrapper.pid", NULL);

    if ((daemonPid = virFork()) < 0)
        goto cleanup;
    if (daemonPid == 0) {
        g_autoptr(virJSONValue) reply = NULL;

        testRun("wrapper-child.sh", 60, dir, &reply);
        _exit(EXIT_FAILURE);
    }

    for (i = 0; i < GONE_TIMEOUT_MS / 50 && !virFileExists(started); i++)
        g_usleep(50 * 1000);
    /* the child too */
    for (; i < GONE_TIMEOUT_MS / 50 && testReadPid(dir, "child.pid") < 0; i++)
        g_usleep(50 * 1000);

    kill(daemonPid, SIGKILL);
    while (waitpid(daemonPid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFSIGNALED(status)) {
        VIR_TEST_VERBOSE("the daemon was not killed: it ended with status %d", status);
        goto cleanup;
    }

    ret = testWaitAllGone(dir, "daemon killed");

 cleanup:
    virFileDeleteTree(dir);
    return ret;
}


static int
mymain(void)
{
    int ret = 0;

    if (virTestRun("environment", testEnvironment, NULL) < 0)
        ret = -1;
    if (virTestRun("sanitise", testSanitize, NULL) < 0)
        ret = -1;
    if (virTestRun("refusal sanitised", testRefusalSanitized, NULL) < 0)
        ret = -1;
    if (virTestRun("standard error sanitised", testStderrSanitized, NULL) < 0)
        ret = -1;
    if (virTestRun("killed by a signal", testSignal, NULL) < 0)
        ret = -1;
    if (virTestRun("debug log", testLog, NULL) < 0)
        ret = -1;
    if (virTestRun("output limit", testOutputMax, NULL) < 0)
        ret = -1;
    if (virTestRun("timeout: the wrapper and its child", testTimeoutWrapper, NULL) < 0)
        ret = -1;
    if (virTestRun("a child left running", testLeftChild, NULL) < 0)
        ret = -1;
    if (virTestRun("daemon killed: the wrapper and its child", testDaemonKilled, NULL) < 0)
        ret = -1;

    return ret == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

VIR_TEST_MAIN(mymain)
