/*
 * main: the order of things at start-up and shutdown, and the log. What
 * the stand-in is and does: standin.h.
 */

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "standin.h"

#ifndef STANDIN_SCHEMA
# error "STANDIN_SCHEMA must be defined"
#endif

/* until a daemon has started: the pipe to the first process */
int daemonPipe = -1;


void
writeAll(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= n;
    }
}


void
standinLog(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;
    g_autofree char *line = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    line = g_strdup_printf(PREFIX "%s\n", msg);

    writeAll(STDERR_FILENO, line, strlen(line));
    /* until a daemon has started, the first process shows its log on
     * failure */
    if (daemonPipe >= 0)
        writeAll(daemonPipe, line, strlen(line));
}


static void
describe(Standin *st)
{
    g_autoptr(GString) str = g_string_new(NULL);
    CmdLine *cl = &st->cl;

    if (cl->sev)
        g_string_append_printf(str, "%s guest '%s' (policy 0x%" G_GINT64_MODIFIER "x), ",
                               cl->sevType, cl->sevId, cl->sevPolicy);
    else
        g_string_append(str, "no SEV, ");
    if (cl->mirrorVcpus)
        g_string_append_printf(str, "%u guest + %u mirror vCPUs, ",
                               cl->guestVcpus, cl->mirrorVcpus);
    else
        g_string_append(str, "no mirror vCPUs, ");
    g_string_append(str, cl->target ? "migration target" : "not a migration target");
    if (cl->mirrorVcpus)
        g_string_append_printf(str, "; helper: %s after %u ms",
                               confModeName(st->conf.mode), st->conf.bootMs);
    if (st->conf.testMode)
        g_string_append(str, "; test mode (x- commands)");
    standinLog("simulating: %s", str->str);
}


/* nothing to proxy (-version, -help, ...): be QEMU */
static int
execQemu(Standin *st)
{
    GPtrArray *argv = st->cl.qemuArgv;

    if (st->cl.daemonize)
        g_ptr_array_add(argv, g_strdup("-daemonize"));
    if (st->cl.pidfile) {
        g_ptr_array_add(argv, g_strdup("-pidfile"));
        g_ptr_array_add(argv, g_strdup(st->cl.pidfile));
    }
    g_ptr_array_add(argv, NULL);
    execv(st->conf.qemu, (char **) argv->pdata);
    standinLog("cannot execute %s: %s", st->conf.qemu, g_strerror(errno));
    return 1;
}


int
main(int argc, char **argv)
{
    Standin *st = g_new0(Standin, 1);
    g_autoptr(GError) err = NULL;

    st->cl.monFd = -1;
    st->listenFd = -1;
    st->relayFd = -1;
    st->spareQemuFd = -1;
    st->controlFd = -1;
    st->streamMigrateFd = -1;
    st->memDumpFd = -1;
    g_queue_init(&st->pending);
    g_mutex_init(&st->mirrorLock);
    g_cond_init(&st->mirrorCond);

    if (!confLoad(&st->conf, &err) ||
        !cmdlineParse(&st->cl, st->conf.qemu, argc, argv, &err)) {
        standinLog("%s", err->message);
        return 1;
    }

    if (st->cl.monKind == MON_NONE)
        return execQemu(st);

    if (!(st->schema = schemaLoad(STANDIN_SCHEMA, &err))) {
        standinLog("%s", err->message);
        return 1;
    }
    st->lifecycle = st->cl.target ? LC_WAITING : LC_GUEST;

    /* the inherited monitor socket must not reach QEMU */
    if (st->cl.monKind == MON_FD && !processAdoptListenFd(st, &err)) {
        standinLog("%s", err->message);
        return 1;
    }

    if (st->cl.daemonize && !processDaemonize(&err)) {
        standinLog("%s", err->message);
        return 1;
    }

    st->loop = g_main_loop_new(NULL, FALSE);
    processSignals(st);

    describe(st);
    if (st->cl.pidfile && !processWritePidfile(st->cl.pidfile, &err))
        processStartFailed(st, err);
    /* the secure processor launches the guest: a bad session ends it, as
     * QEMU exits when LAUNCH_START fails */
    if (st->cl.sev && !pspLaunchStart(st, &err)) {
        g_prefix_error(&err, "sev_launch_start: ");
        processStartFailed(st, err);
    }
    if (!processStartQemu(st, &err))
        processStartFailed(st, err);
    if (st->cl.mirrorVcpus)
        mirrorVcpusStart(st);
    if (st->cl.monKind == MON_PATH) {
        if ((st->listenFd = processListenUnix(st->cl.monPath, &err)) < 0)
            processStartFailed(st, err);
        standinLog("monitor: listening on %s", st->cl.monPath);
    } else {
        standinLog("monitor: listening on inherited fd %d", st->cl.monFd);
    }

    if (!processControlListen(st, &err))
        processStartFailed(st, err);
    processWatch(st);

    /* started without -S: the vCPUs run at once */
    if (!st->cl.startPaused) {
        if (st->lifecycle == LC_WAITING)
            lifecycleSet(st, LC_FIRMWARE, "started without -S");
        sevLaunchFinish(st);
        helperFirstRun(st);
    }

    if (st->cl.daemonize)
        processDaemonDone();

    g_main_loop_run(st->loop);

    if (st->qemuPid > 0) {
        kill(st->qemuPid, SIGKILL);
        waitpid(st->qemuPid, NULL, 0);
    }
    processCleanup(st);
    return st->exitCode;
}
