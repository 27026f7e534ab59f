/*
 * Process supervision: the real QEMU as a child (spawn, exit, signals,
 * its stderr in daemon mode), -daemonize and -pidfile, the monitor sockets
 * (listening, QEMU's private one in the abstract namespace) and the
 * sessions: one client connection and its connection to QEMU's monitor.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "standin.h"

/* how long QEMU may take to open its monitor socket */
#define QEMU_START_TIMEOUT_US (60 * G_USEC_PER_SEC)
/* how long QEMU may take to exit after SIGTERM before it gets SIGKILL */
#define QEMU_TERM_TIMEOUT_MS 5000
/* Ceilings that only bound a hung QEMU: each wait ends as soon as what it
 * waits for happens, so on a slow or loaded machine they cost nothing. */
/* QEMU's monitor accepts a new client once its main loop saw the previous
 * one go */
#define QEMU_MON_RECONNECT_US (30 * G_USEC_PER_SEC)
/* what QEMU wrote before it exited is read up to its end of file */
#define QEMU_DRAIN_US (10 * G_USEC_PER_SEC)


/* ------------------------------------------------------------------ */
/* sessions: one client connection and its connection to QEMU          */

/* @abstract: @path is a name in the abstract namespace (Linux), not a file */
static int
connectUnix(const char *path, bool abstract)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    socklen_t len = sizeof(addr);
    int fd;

    if (strlen(path) + (abstract ? 1 : 0) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (abstract) {
        memcpy(addr.sun_path + 1, path, strlen(path));
        len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path);
    } else {
        g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    if (connect(fd, (struct sockaddr *) &addr, len) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}


static gboolean onListen(int fd, GIOCondition cond, gpointer opaque);

void
processListen(Standin *st)
{
    if (st->listenFd >= 0 && !st->listenWatch && !st->terminating)
        st->listenWatch = g_unix_fd_add(st->listenFd, G_IO_IN, onListen, st);
}


void
sessionEnd(Standin *st)
{
    Pending *p;

    chanFree(st->client);
    chanFree(st->qemu);
    st->client = NULL;
    st->qemu = NULL;
    while ((p = g_queue_pop_head(&st->pending)))
        pendingFree(p);
    if (st->pendingTimer)
        g_source_remove(st->pendingTimer);
    st->pendingTimer = 0;
    st->negotiated = false;
    processListen(st);
}


static gboolean
onListen(int fd, GIOCondition cond G_GNUC_UNUSED, gpointer opaque)
{
    Standin *st = opaque;
    int cfd;
    int qfd = -1;
    gint64 deadline;

    if ((cfd = accept(fd, NULL, NULL)) < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            standinLog("accept on the monitor socket failed: %s", g_strerror(errno));
        return G_SOURCE_CONTINUE;
    }
    /* no thread of the stand-in forks, so setting these now is safe */
    if (fcntl(cfd, F_SETFD, FD_CLOEXEC) < 0 ||
        !g_unix_set_fd_nonblocking(cfd, TRUE, NULL)) {
        standinLog("monitor connection: %s", g_strerror(errno));
        close(cfd);
        return G_SOURCE_CONTINUE;
    }

    /* QEMU's monitor takes a new connection once it saw the previous one
     * go */
    if (st->spareQemuFd >= 0) {
        qfd = st->spareQemuFd;
        st->spareQemuFd = -1;
    } else {
        deadline = g_get_monotonic_time() + QEMU_MON_RECONNECT_US;
        while ((qfd = connectUnix(st->qemuMonPath, true)) < 0 &&
               g_get_monotonic_time() < deadline)
            g_usleep(10 * 1000);
    }
    if (qfd < 0) {
        standinLog("cannot connect to QEMU's monitor: %s", g_strerror(errno));
        close(cfd);
        return G_SOURCE_CONTINUE;
    }
    g_unix_set_fd_nonblocking(qfd, TRUE, NULL);

    standinLog("monitor client connected");
    st->client = chanNew(st, "the monitor client", cfd, clientLine);
    st->qemu = chanNew(st, "QEMU", qfd, qemuLine);
    st->listenWatch = 0;
    return G_SOURCE_REMOVE;
}


/* ------------------------------------------------------------------ */
/* QEMU, the process                                                  */

static pid_t
spawnQemu(Standin *st, int stderrFd)
{
    pid_t parent = getpid();
    pid_t pid;
    char **argv = (char **) st->cl.qemuArgv->pdata;

    if ((pid = fork()) != 0)
        return pid;

    /* child: only async-signal-safe calls from here */
    {
        sigset_t set;
        static const char msg[] = PREFIX "cannot execute QEMU\n";

        sigemptyset(&set);
        sigprocmask(SIG_SETMASK, &set, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(127);
        if (stderrFd >= 0 && dup2(stderrFd, STDERR_FILENO) < 0)
            _exit(127);
        execv(argv[0], argv);
        writeAll(STDERR_FILENO, msg, sizeof(msg) - 1);
        _exit(127);
    }
}


static int
exitCodeOf(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}


static char *
statusToString(int status)
{
    if (WIFEXITED(status))
        return g_strdup_printf("exited with status %d", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return g_strdup_printf("was killed by signal %d", WTERMSIG(status));
    return g_strdup_printf("ended with wait status 0x%x", status);
}


/* QEMU is gone: pass on what it said last, then stop */
static void
drainAndQuit(Standin *st)
{
    gint64 deadline = g_get_monotonic_time() + QEMU_DRAIN_US;

    if (st->qemu) {
        Chan *q = st->qemu;
        char buf[65536];

        while (st->qemu == q && g_get_monotonic_time() < deadline) {
            struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
            ssize_t n;

            if (poll(&pfd, 1, 200) <= 0)
                break;
            if ((n = read(q->fd, buf, sizeof(buf))) <= 0)
                break;
            g_string_append_len(q->in, buf, n);
            chanProcessLines(q);
        }
    }
    while (st->client && st->client->out->len > 0 &&
           g_get_monotonic_time() < deadline) {
        struct pollfd pfd = { .fd = st->client->fd, .events = POLLOUT };

        if (poll(&pfd, 1, 200) < 0 || !chanFlushNow(st->client))
            break;
    }
    g_main_loop_quit(st->loop);
}


static void
onQemuExit(GPid pid G_GNUC_UNUSED, gint status, gpointer opaque)
{
    Standin *st = opaque;
    g_autofree char *what = statusToString(status);

    standinLog("QEMU %s", what);
    st->qemuPid = 0;
    st->exitCode = exitCodeOf(status);
    drainAndQuit(st);
}


static gboolean
onKillTimer(gpointer opaque)
{
    Standin *st = opaque;

    st->killTimer = 0;
    if (st->qemuPid > 0) {
        standinLog("QEMU did not exit after SIGTERM, sending SIGKILL");
        kill(st->qemuPid, SIGKILL);
    }
    return G_SOURCE_REMOVE;
}


static gboolean
onTermSignal(gpointer opaque)
{
    Standin *st = opaque;

    if (st->terminating)
        return G_SOURCE_CONTINUE;
    st->terminating = true;
    standinLog("terminating on signal, stopping QEMU");
    if (st->qemuPid > 0) {
        kill(st->qemuPid, SIGTERM);
        st->killTimer = g_timeout_add(QEMU_TERM_TIMEOUT_MS, onKillTimer, st);
    } else {
        g_main_loop_quit(st->loop);
    }
    return G_SOURCE_CONTINUE;
}


static gboolean
onRelay(int fd, GIOCondition cond G_GNUC_UNUSED, gpointer opaque)
{
    Standin *st = opaque;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return G_SOURCE_CONTINUE;
    if (n <= 0) {
        st->relayWatch = 0;
        return G_SOURCE_REMOVE;
    }
    writeAll(STDERR_FILENO, buf, n);
    return G_SOURCE_CONTINUE;
}



/* ------------------------------------------------------------------ */
/* start-up and shutdown                                              */

void
processCleanup(Standin *st)
{
    if (st->cl.monKind == MON_PATH && st->listenFd >= 0)
        g_unlink(st->cl.monPath);
    if (st->controlFd >= 0)
        g_unlink(st->controlPath);
    if (st->cl.pidfile)
        g_unlink(st->cl.pidfile);
    streamCleanup(st);
}


/* The first process of -daemonize: wait for the daemon's verdict. A
 * success ends with a NUL byte; anything else is the daemon's log. */
static void G_GNUC_NORETURN
daemonParent(int fd)
{
    g_autoptr(GString) msg = g_string_new(NULL);
    char buf[4096];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        g_string_append_len(msg, buf, n);
    }
    if (msg->len > 0 && msg->str[msg->len - 1] == '\0')
        _exit(0);
    if (msg->len == 0)
        g_string_append(msg, PREFIX "the daemon exited during start-up\n");
    writeAll(STDERR_FILENO, msg->str, msg->len);
    _exit(1);
}


bool
processDaemonize(GError **err)
{
    int pfd[2];
    int nullfd;
    pid_t pid;

    if (!g_unix_open_pipe(pfd, FD_CLOEXEC, err))
        return false;
    if ((pid = fork()) < 0) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "fork: %s", g_strerror(errno));
        return false;
    }
    if (pid > 0) {
        close(pfd[1]);
        daemonParent(pfd[0]);
    }

    close(pfd[0]);
    daemonPipe = pfd[1];
    setsid();
    if ((nullfd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 ||
        dup2(nullfd, STDIN_FILENO) < 0 || dup2(nullfd, STDOUT_FILENO) < 0 ||
        dup2(nullfd, STDERR_FILENO) < 0) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "/dev/null: %s", g_strerror(errno));
        return false;
    }
    close(nullfd);
    return true;
}


void
processDaemonDone(void)
{
    char nul = '\0';

    writeAll(daemonPipe, &nul, 1);
    close(daemonPipe);
    daemonPipe = -1;
}


bool
processWritePidfile(const char *path, GError **err)
{
    g_autofree char *pid = g_strdup_printf("%d\n", (int) getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot create pidfile %s: %s", path, g_strerror(errno));
        return false;
    }
    writeAll(fd, pid, strlen(pid));
    close(fd);
    return true;
}


int
processListenUnix(const char *path, GError **err)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG,
                    "monitor socket path too long: %s", path);
        return -1;
    }
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        goto error;
    unlink(path);
    if (bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 ||
        listen(fd, 1) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        goto error;
    }
    return fd;

 error:
    g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
                "cannot listen on %s: %s", path, g_strerror(errno));
    return -1;
}


bool
processAdoptListenFd(Standin *st, GError **err)
{
    struct stat sb;
    int flags;

    if (fstat(st->cl.monFd, &sb) < 0 || !S_ISSOCK(sb.st_mode) ||
        (flags = fcntl(st->cl.monFd, F_GETFD)) < 0) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_BADF,
                    "monitor fd %d is not a socket", st->cl.monFd);
        return false;
    }
    /* the stand-in's, not QEMU's */
    if (fcntl(st->cl.monFd, F_SETFD, flags | FD_CLOEXEC) < 0 ||
        !g_unix_set_fd_nonblocking(st->cl.monFd, TRUE, NULL)) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "monitor fd %d: %s", st->cl.monFd, g_strerror(errno));
        return false;
    }
    st->listenFd = st->cl.monFd;
    return true;
}


/* start QEMU and wait for its monitor socket */
bool
processStartQemu(Standin *st, GError **err)
{
    int relay[2] = { -1, -1 };
    gint64 deadline;
    g_autofree char *cmdline = NULL;
    char *monArg;
    int fd;

    /* QEMU's own monitor: a socket in the abstract namespace, so that
     * nothing is left in the file system even when the stand-in is killed */
    st->qemuMonPath = g_strdup_printf("qemu-mirror-standin-%d-%08x",
                                      (int) getpid(), g_random_int());
    if (st->cl.monArg == MON_ARG_QMP)
        monArg = g_strdup_printf("unix:%s,abstract=on,server=on,wait=off",
                                 st->qemuMonPath);
    else
        monArg = g_strdup_printf("socket,id=%s,path=%s,abstract=on,server=on,wait=off",
                                 st->cl.monChardevId, st->qemuMonPath);
    g_free(g_ptr_array_index(st->cl.qemuArgv, st->cl.monArgIndex));
    g_ptr_array_index(st->cl.qemuArgv, st->cl.monArgIndex) = monArg;

    cmdline = cmdlineToString(st->cl.qemuArgv);
    standinLog("exec: %s", cmdline);
    g_ptr_array_add(st->cl.qemuArgv, NULL);

    if (st->cl.daemonize && !g_unix_open_pipe(relay, FD_CLOEXEC, err))
        return false;

    st->qemuPid = spawnQemu(st, relay[1]);
    if (relay[1] >= 0)
        close(relay[1]);
    st->relayFd = relay[0];
    if (st->qemuPid < 0) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "fork: %s", g_strerror(errno));
        st->qemuPid = 0;
        return false;
    }
    standinLog("QEMU started, pid %d", (int) st->qemuPid);

    deadline = g_get_monotonic_time() + QEMU_START_TIMEOUT_US;
    while ((fd = connectUnix(st->qemuMonPath, true)) < 0) {
        int status;

        if (waitpid(st->qemuPid, &status, WNOHANG) == st->qemuPid) {
            g_autofree char *what = statusToString(status);
            st->qemuPid = 0;
            st->exitCode = exitCodeOf(status);
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "QEMU %s before its monitor was up", what);
            return false;
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "QEMU's monitor is not up after %d s",
                        (int) (QEMU_START_TIMEOUT_US / G_USEC_PER_SEC));
            return false;
        }
        g_usleep(10 * 1000);
    }
    st->spareQemuFd = fd;
    return true;
}


void
processStartFailed(Standin *st, GError *err)
{
    int status;

    standinLog("%s", err->message);
    if (st->qemuPid > 0) {
        kill(st->qemuPid, SIGKILL);
        waitpid(st->qemuPid, &status, 0);
    }
    /* what QEMU said (daemon mode) */
    if (st->relayFd >= 0) {
        char buf[4096];
        ssize_t n;

        while ((n = read(st->relayFd, buf, sizeof(buf))) > 0) {
            writeAll(STDERR_FILENO, buf, n);
            if (daemonPipe >= 0)
                writeAll(daemonPipe, buf, n);
        }
    }
    processCleanup(st);
    exit(st->exitCode ? st->exitCode : 1);
}


void
processSignals(Standin *st)
{
    signal(SIGPIPE, SIG_IGN);
    g_unix_signal_add(SIGTERM, onTermSignal, st);
    g_unix_signal_add(SIGINT, onTermSignal, st);
    g_unix_signal_add(SIGHUP, onTermSignal, st);
}


/* QEMU's exit, its stderr (daemon mode), the monitor socket */
void
processWatch(Standin *st)
{
    g_child_watch_add(st->qemuPid, onQemuExit, st);
    if (st->relayFd >= 0)
        st->relayWatch = g_unix_fd_add(st->relayFd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                       onRelay, st);
    processListen(st);
}
