/*
 * qemu_mirror_attest.c: the attestation agent of a confidential migration
 * target, through which libvirt reaches the guest owner
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The agent is a program the operator names in qemu.conf
 * (mirror_attestation_agent). libvirt runs it once per exchange, without
 * arguments, writes one JSON request to its standard input, closes it, and
 * reads one JSON reply from its standard output. The protocol is documented
 * in docs/kbase/confidential-migration.rst. Nothing libvirt sends the agent
 * is secret, and what it returns is either public (a launch session: the
 * guest owner's public key and the wrapped TEK/TIK) or encrypted for the
 * SEV firmware of this host (the launch secret). What must never leave the
 * firmware and the guest owner (the TEK, the TIK, the transport key) never
 * passes through libvirt.
 *
 * The agent is not trusted with libvirt's logs and errors: its reply is
 * not logged (only its size), the last lines of its standard error are
 * logged at debug level, and what of its text reaches an error (a refusal's
 * reason, the last line of its standard error) is cut to printable ASCII
 * and QEMU_MIRROR_ATTEST_TEXT_MAX characters. It runs with a minimal
 * environment (virCommandAddEnvPassCommon), in a process group of its own
 * that is killed whole when it times out, when libvirt gives up on it, and
 * after it exits; on Linux a watchdog process, the group's leader, also
 * kills the group when the thread of the daemon that started it dies
 * (PR_SET_PDEATHSIG), libvirtd killed by SIGKILL included.
 */

#include <config.h>

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
# include <sys/prctl.h>
#endif

#include "qemu_mirror_attest.h"
#include "vircommand.h"
#include "virerror.h"
#include "virfile.h"
#include "virlog.h"
#include "virprocess.h"
#include "virtime.h"
#include "virutil.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_mirror_attest");

/* what libvirt reads of the agent's output at most */
#define QEMU_MIRROR_ATTEST_OUTPUT_MAX (1024 * 1024)

#define QEMU_MIRROR_ATTEST_PROTOCOL_VERSION 1

/* of the agent's standard error, the debug log gets the last lines, each
 * cut at this many characters */
#define QEMU_MIRROR_ATTEST_STDERR_LOG_LINES 64
#define QEMU_MIRROR_ATTEST_STDERR_LOG_LINE_MAX 1000


void
qemuMirrorAttestSecretFree(qemuMirrorAttestSecret *secret)
{
    if (!secret)
        return;

    g_free(secret->header);
    g_free(secret->secret);
    g_free(secret->keyId);
    g_free(secret);
}


/**
 * qemuMirrorAttestCheckAgent:
 * @cfg: the driver's configuration
 * @domname: the domain, for the error
 *
 * The target of a confidential migration needs an attestation agent: check
 * that one is configured and can be run, before anything is started.
 */
int
qemuMirrorAttestCheckAgent(virQEMUDriverConfig *cfg,
                           const char *domname)
{
    if (!cfg->mirrorAttestationAgent) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("attestation of this host for domain '%1$s' failed at step '%2$s': this host has no attestation agent (mirror_attestation_agent in qemu.conf), so the guest owner cannot provision the transport key here"),
                       domname, QEMU_MIRROR_ATTEST_STEP_AGENT);
        return -1;
    }

    if (!virFileIsExecutable(cfg->mirrorAttestationAgent)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation of this host for domain '%1$s' failed at step '%2$s': the attestation agent '%3$s' (mirror_attestation_agent in qemu.conf) is not an executable file"),
                       domname, QEMU_MIRROR_ATTEST_STEP_AGENT, cfg->mirrorAttestationAgent);
        return -1;
    }

    return 0;
}


/**
 * qemuMirrorAttestRequestNew:
 * @operation: "session" or "attest"
 * @def: the incoming definition
 * @hostname: this host's name
 * @platform: this host's SEV platform data, as virsh nodesevinfo shows it
 *
 * The members every request has. The caller adds the operation's own.
 */
virJSONValue *
qemuMirrorAttestRequestNew(const char *operation,
                           const virDomainDef *def,
                           const char *hostname,
                           const virSEVCapability *platform)
{
    g_autoptr(virJSONValue) req = virJSONValueNewObject();
    g_autoptr(virJSONValue) domain = virJSONValueNewObject();
    g_autoptr(virJSONValue) plat = virJSONValueNewObject();
    char uuid[VIR_UUID_STRING_BUFLEN];
    unsigned int policy = 0;

    if (def->sec && def->sec->sectype == VIR_DOMAIN_LAUNCH_SECURITY_SEV)
        policy = def->sec->data.sev.policy;

    virUUIDFormat(def->uuid, uuid);

    if (virJSONValueObjectAppendString(domain, "name", def->name) < 0 ||
        virJSONValueObjectAppendString(domain, "uuid", uuid) < 0)
        return NULL;

    if (platform &&
        (virJSONValueObjectAppendString(plat, "pdh", NULLSTR_EMPTY(platform->pdh)) < 0 ||
         virJSONValueObjectAppendString(plat, "cert-chain",
                                        NULLSTR_EMPTY(platform->cert_chain)) < 0 ||
         virJSONValueObjectAppendString(plat, "cpu0-id",
                                        NULLSTR_EMPTY(platform->cpu0_id)) < 0))
        return NULL;

    if (virJSONValueObjectAppendNumberInt(req, "version",
                                          QEMU_MIRROR_ATTEST_PROTOCOL_VERSION) < 0 ||
        virJSONValueObjectAppendString(req, "operation", operation) < 0 ||
        virJSONValueObjectAppend(req, "domain", &domain) < 0 ||
        virJSONValueObjectAppendString(req, "host", NULLSTR_EMPTY(hostname)) < 0 ||
        virJSONValueObjectAppendNumberUint(req, "policy", policy) < 0 ||
        virJSONValueObjectAppend(req, "platform", &plat) < 0)
        return NULL;

    return g_steal_pointer(&req);
}


/* Read what is available on @fd into @buf; *@open is cleared at EOF. */
static int
qemuMirrorAttestReadFD(int fd,
                       GString *buf,
                       bool *open)
{
    char data[1024];
    ssize_t got = read(fd, data, sizeof(data));

    if (got < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        return -1;
    }
    if (got == 0) {
        *open = false;
        return 0;
    }
    if (buf->len + got > QEMU_MIRROR_ATTEST_OUTPUT_MAX)
        return -2;
    g_string_append_len(buf, data, got);
    return 0;
}


/* Whether the agent @pid has exited, by @deadline; it is left for
 * virCommandWait to reap. An agent may close its output and go on running:
 * the timeout holds for that too. */
static bool
qemuMirrorAttestExited(pid_t pid,
                       unsigned long long deadline)
{
    unsigned long long now;

    while (true) {
        siginfo_t info = { 0 };

        if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
            if (errno == EINTR)
                continue;
            return true; /* virCommandWait reports it */
        }
        if (info.si_pid == pid)
            return true;
        if (virTimeMillisNow(&now) < 0 || now >= deadline)
            return false;
        g_usleep(10 * 1000);
    }
}


/**
 * qemuMirrorAttestSanitize:
 * @text: text of the agent's
 * @max: how many characters are kept at most
 *
 * What of @text may reach an error or the log: each byte that is not
 * printable ASCII (control characters, escape sequences, line breaks,
 * anything not ASCII) becomes '?', and the text is cut after @max
 * characters ("..." marks the cut).
 */
char *
qemuMirrorAttestSanitize(const char *text,
                         size_t max)
{
    GString *out = g_string_new(NULL);
    const char *p;

    for (p = text; *p; p++) {
        if (out->len >= max) {
            g_string_append(out, "...");
            break;
        }
        g_string_append_c(out, g_ascii_isprint(*p) ? *p : '?');
    }
    return g_string_free(out, FALSE);
}


/* the last non-empty line of the agent's standard error, sanitised, for
 * the error */
static char *
qemuMirrorAttestLastLine(const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", 0);
    size_t i;

    for (i = g_strv_length(lines); i > 0; i--) {
        g_strstrip(lines[i - 1]);
        if (*lines[i - 1])
            return qemuMirrorAttestSanitize(lines[i - 1], QEMU_MIRROR_ATTEST_TEXT_MAX);
    }
    return NULL;
}


/* the agent's standard error into the debug log: its last lines, each
 * sanitised (a line break of the agent's cannot make a log line of its
 * own) */
static void
qemuMirrorAttestLogStderr(const char *agent,
                          const char *step,
                          const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", 0);
    size_t n = g_strv_length(lines);
    size_t i;

    if (n > 0 && !*lines[n - 1])
        n--;
    for (i = n > QEMU_MIRROR_ATTEST_STDERR_LOG_LINES ?
             n - QEMU_MIRROR_ATTEST_STDERR_LOG_LINES : 0; i < n; i++) {
        g_autofree char *line = qemuMirrorAttestSanitize(lines[i],
                                                         QEMU_MIRROR_ATTEST_STDERR_LOG_LINE_MAX);

        VIR_DEBUG("attestation agent %s, step %s, standard error: %s",
                  agent, step, line);
    }
}


#ifdef __linux__
/* In the child libvirt forked for the agent, before the agent is executed:
 * a process group of its own; this process stays as the group's leader
 * and watchdog, the agent runs in a child of it. When the daemon's thread
 * that started it dies (PR_SET_PDEATHSIG: SIGTERM), the watchdog kills the
 * whole group, itself with it: the agent, and what it started in its
 * group, never outlive the daemon, also when a wrapper does not exec (the
 * agent's own PR_SET_PDEATHSIG reaches it only). Otherwise the watchdog
 * exits with the agent's status. This is a fork of a threaded daemon:
 * little more than async-signal-safe calls, and virFork, as virExec
 * uses it. */
static int
qemuMirrorAttestChildHook(void *opaque)
{
    pid_t daemonPid = *(pid_t *) opaque;
    sigset_t waitset;
    sigset_t none;
    pid_t watchdog;
    pid_t agent;
    int status = 0;
    int fd;

    if (setpgid(0, 0) < 0)
        return -1;

    sigemptyset(&none);
    sigemptyset(&waitset);
    sigaddset(&waitset, SIGCHLD);
    sigaddset(&waitset, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &waitset, NULL) < 0 ||
        prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        return -1;
    if (getppid() != daemonPid)
        _exit(EXIT_CANCELED); /* the daemon died before prctl */

    watchdog = getpid();
    if ((agent = virFork()) < 0)
        return -1;

    if (agent == 0) {
        /* the agent: dies with the watchdog */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
            getppid() != watchdog ||
            sigprocmask(SIG_SETMASK, &none, NULL) < 0)
            _exit(EXIT_CANCELED);
        return 0;
    }

    /* the daemon reads the agent's output to its end: the watchdog holds
     * no end of the agent's pipes */
    for (fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
        int tmpfd = fd;

        VIR_FORCE_CLOSE(tmpfd);
    }

    while (true) {
        siginfo_t info;

        if (sigwaitinfo(&waitset, &info) < 0)
            continue;
        if (info.si_signo == SIGTERM) {
            /* the daemon died, or was asked to stop the agent */
            kill(0, SIGKILL);
            _exit(EXIT_CANCELED);
        }
        if (waitpid(agent, &status, WNOHANG) == agent)
            break;
    }

    if (WIFSIGNALED(status)) {
        /* ended by a signal: so does the watchdog, without a core dump
         * (it is a copy of the daemon) */
        struct rlimit nocore = { 0, 0 };
        struct sigaction dfl = { .sa_handler = SIG_DFL };

        setrlimit(RLIMIT_CORE, &nocore);
        sigaction(WTERMSIG(status), &dfl, NULL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        raise(WTERMSIG(status));
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_CANCELED);
}
#else /* !__linux__ */
static int
qemuMirrorAttestChildHook(void *opaque G_GNUC_UNUSED)
{
    return setpgid(0, 0);
}
#endif /* !__linux__ */


/* SIGKILL to the agent's process group @pgid: the agent, the watchdog and
 * whatever the agent started in the group */
static void
qemuMirrorAttestKillGroup(pid_t pgid)
{
    if (kill(-pgid, SIGKILL) < 0 && errno != ESRCH)
        VIR_WARN("cannot kill the attestation agent's process group %lld: %s",
                 (long long) pgid, g_strerror(errno));
}


/**
 * qemuMirrorAttestRun:
 * @agent: the program (mirror_attestation_agent)
 * @timeout: seconds the run may take (mirror_attestation_timeout)
 * @domname: the domain, for errors
 * @step: QEMU_MIRROR_ATTEST_STEP_*, for errors
 * @request: the request
 * @reply: filled with the agent's reply, a JSON object that is not a
 *         refusal
 * @elapsedMs: if not NULL, set to how long the run took
 *
 * Runs the agent once. Every failure is reported with the step and the
 * cause: the agent cannot be run, it exits with a non-zero status (the
 * last line it wrote to standard error is quoted), it takes longer than
 * @timeout (its process group is killed), its output is not a JSON object,
 * or it refuses (its reason is quoted). What is quoted of the agent is
 * sanitised (qemuMirrorAttestSanitize). Its process group is killed in
 * every case before this returns.
 *
 * The caller may hold no lock the agent's run should not block: in
 * particular @domname must be the caller's own copy, not a domain
 * definition's, when the domain is unlocked meanwhile.
 */
int
qemuMirrorAttestRun(const char *agent,
                    unsigned int timeout,
                    const char *domname,
                    const char *step,
                    virJSONValue *request,
                    virJSONValue **reply,
                    unsigned long long *elapsedMs)
{
    g_autoptr(virCommand) cmd = NULL;
    g_autofree char *input = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(GString) err = g_string_new(NULL);
    g_autoptr(virJSONValue) json = NULL;
    g_autofree char *lastLine = NULL;
    g_autofree char *reason = NULL;
    pid_t daemonPid = getpid();
    VIR_AUTOCLOSE inWrite = -1;
    VIR_AUTOCLOSE outfd = -1;
    VIR_AUTOCLOSE errfd = -1;
    int infds[2] = { -1, -1 };
    bool outOpen = true;
    bool errOpen = true;
    unsigned long long start;
    unsigned long long now;
    unsigned long long deadline;
    int exitstatus = 0;
    const char *refused;
    size_t len;
    pid_t pid;

    *reply = NULL;

    if (virTimeMillisNow(&start) < 0)
        return -1;
    deadline = start + timeout * 1000ULL;

    if (!virFileIsExecutable(agent)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation of this host for domain '%1$s' failed at step '%2$s': the attestation agent '%3$s' is not an executable file"),
                       domname, step, agent);
        return -1;
    }

    if (!(input = virJSONValueToString(request, false)))
        return -1;
    len = strlen(input);

    if (virPipe(infds) < 0)
        return -1;
    inWrite = infds[1];

    cmd = virCommandNew(agent);
    virCommandAddEnvPassCommon(cmd);
    virCommandSetInputFD(cmd, infds[0]);
    virCommandSetOutputFD(cmd, &outfd);
    virCommandSetErrorFD(cmd, &errfd);
    virCommandNonblockingFDs(cmd);
    virCommandRawStatus(cmd);
    virCommandSetPreExecHook(cmd, qemuMirrorAttestChildHook, &daemonPid);

    VIR_DEBUG("running attestation agent %s for domain %s, step %s",
              agent, domname, step);

    if (virCommandRunAsync(cmd, &pid) < 0) {
        VIR_FORCE_CLOSE(infds[0]);
        return -1;
    }
    VIR_FORCE_CLOSE(infds[0]);

    /* the child does it too: the group exists before anything kills it */
    if (setpgid(pid, pid) < 0)
        VIR_DEBUG("setpgid of the attestation agent %lld: %s",
                  (long long) pid, g_strerror(errno));

    /* the request is small; a pipe holds it, unless the agent already quit,
     * which its exit status then tells */
    if (safewrite(inWrite, input, len) < 0)
        VIR_DEBUG("attestation agent did not read its request: %s",
                  g_strerror(errno));
    VIR_FORCE_CLOSE(inWrite);

    while (outOpen || errOpen) {
        struct pollfd fds[2];
        nfds_t nfds = 0;
        int rc;

        if (virTimeMillisNow(&now) < 0)
            goto abort;
        if (now >= deadline) {
            goto timeout;
        }

        if (outOpen) {
            fds[nfds].fd = outfd;
            fds[nfds++].events = POLLIN;
        }
        if (errOpen) {
            fds[nfds].fd = errfd;
            fds[nfds++].events = POLLIN;
        }

        rc = poll(fds, nfds, MIN(deadline - now, 1000));
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            virReportSystemError(errno, "%s",
                                 _("cannot wait for the attestation agent"));
            goto abort;
        }

        if (outOpen && (rc = qemuMirrorAttestReadFD(outfd, out, &outOpen)) < 0) {
            if (rc == -2)
                virReportError(VIR_ERR_OPERATION_FAILED,
                               _("attestation of this host for domain '%1$s' failed at step '%2$s': the attestation agent '%3$s' wrote more than %4$d bytes"),
                               domname, step, agent, QEMU_MIRROR_ATTEST_OUTPUT_MAX);
            else
                virReportSystemError(errno, "%s",
                                     _("cannot read the attestation agent's output"));
            goto abort;
        }
        if (errOpen && (rc = qemuMirrorAttestReadFD(errfd, err, &errOpen)) < 0) {
            /* too much on stderr: stop reading it, keep what we have */
            errOpen = false;
        }
    }

    if (!qemuMirrorAttestExited(pid, deadline))
        goto timeout;

    /* what the agent left running in its group; the leader is not reaped
     * yet, so its process group ID cannot have been reused */
    qemuMirrorAttestKillGroup(pid);

    if (virCommandWait(cmd, &exitstatus) < 0)
        return -1;

    if (virTimeMillisNow(&now) < 0)
        return -1;
    if (elapsedMs)
        *elapsedMs = now - start;

    qemuMirrorAttestLogStderr(agent, step, err->str);
    lastLine = qemuMirrorAttestLastLine(err->str);

    if (!WIFEXITED(exitstatus) || WEXITSTATUS(exitstatus) != 0) {
        g_autofree char *how = virProcessTranslateStatus(exitstatus);

        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation of this host for domain '%1$s' failed at step '%2$s': the attestation agent '%3$s' failed (%4$s)%5$s%6$s"),
                       domname, step, agent, how,
                       lastLine ? ": " : "", NULLSTR_EMPTY(lastLine));
        return -1;
    }

    /* the reply is not logged: the agent is not trusted with the log */
    VIR_DEBUG("attestation agent %s, step %s: a reply of %zu bytes",
              agent, step, out->len);
    if (!(json = virJSONValueFromStringNoLog(out->str)) ||
        !virJSONValueIsObject(json)) {
        virResetLastError();
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation of this host for domain '%1$s' failed at step '%2$s': the attestation agent '%3$s' did not reply with a JSON object"),
                       domname, step, agent);
        return -1;
    }

    if (virJSONValueObjectHasKey(json, "refused")) {
        if ((refused = virJSONValueObjectGetString(json, "refused")))
            reason = qemuMirrorAttestSanitize(refused, QEMU_MIRROR_ATTEST_TEXT_MAX);
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation of this host for domain '%1$s' failed at step '%2$s': the guest owner refused: %3$s"),
                       domname, step,
                       reason ? reason : _("(no reason given)"));
        return -1;
    }

    *reply = g_steal_pointer(&json);
    return 0;

 timeout:
    qemuMirrorAttestKillGroup(pid);
    virCommandAbort(cmd);
    virReportError(VIR_ERR_OPERATION_TIMEOUT,
                   _("attestation of this host for domain '%1$s' failed at step '%2$s': the attestation agent '%3$s' did not answer within %4$u seconds (mirror_attestation_timeout) and was killed"),
                   domname, step, agent, timeout);
    return -1;

 abort:
    qemuMirrorAttestKillGroup(pid);
    virCommandAbort(cmd);
    return -1;
}


/* A member of the agent's reply that must be base64 of @size bytes (or, with
 * @size 0, of a non-empty multiple of 16 bytes). */
static const char *
qemuMirrorAttestGetBase64(virJSONValue *reply,
                          const char *member,
                          size_t size,
                          const char *domname,
                          const char *step)
{
    const char *str = virJSONValueObjectGetString(reply, member);
    g_autofree guchar *bytes = NULL;
    gsize len = 0;
    const char *p;

    if (!str || !*str)
        goto bad;

    for (p = str; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '+' && *p != '/' && *p != '=')
            goto bad;
    }
    if (strlen(str) % 4 != 0)
        goto bad;

    bytes = g_base64_decode(str, &len);
    if (size ? len != size : (len == 0 || len % 16 != 0))
        goto bad;

    return str;

 bad:
    if (size)
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation of this host for domain '%1$s' failed at step '%2$s': the attestation agent's reply has no valid '%3$s' (base64 of %4$zu bytes)"),
                       domname, step, member, size);
    else
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation of this host for domain '%1$s' failed at step '%2$s': the attestation agent's reply has no valid '%3$s' (base64 of a multiple of 16 bytes)"),
                       domname, step, member);
    return NULL;
}


/**
 * qemuMirrorAttestParseSession:
 *
 * The agent's reply to "session": the guest owner's DH certificate and the
 * launch session for this host's platform, as <launchSecurity> holds them.
 */
int
qemuMirrorAttestParseSession(virJSONValue *reply,
                             const char *domname,
                             char **dhCert,
                             char **session)
{
    const char *cert;
    const char *sess;

    if (!(cert = qemuMirrorAttestGetBase64(reply, "dh-cert",
                                           QEMU_MIRROR_ATTEST_DH_CERT_SIZE,
                                           domname, QEMU_MIRROR_ATTEST_STEP_SESSION)) ||
        !(sess = qemuMirrorAttestGetBase64(reply, "session",
                                           QEMU_MIRROR_ATTEST_SESSION_SIZE,
                                           domname, QEMU_MIRROR_ATTEST_STEP_SESSION)))
        return -1;

    *dhCert = g_strdup(cert);
    *session = g_strdup(sess);
    return 0;
}


/**
 * qemuMirrorAttestKeyIdValid:
 *
 * A transport key identifier: 1 to 64 characters of [A-Za-z0-9._:-].
 */
bool
qemuMirrorAttestKeyIdValid(const char *keyId)
{
    const char *p;

    if (!keyId || !*keyId || strlen(keyId) > QEMU_MIRROR_ATTEST_KEY_ID_MAX)
        return false;

    for (p = keyId; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("._:-", *p))
            return false;
    }
    return true;
}


/**
 * qemuMirrorAttestParseSecret:
 *
 * The agent's reply to "attest": the launch secret (packet header and
 * encrypted secret table) and the identifier of the transport key in it.
 */
qemuMirrorAttestSecret *
qemuMirrorAttestParseSecret(virJSONValue *reply,
                            const char *domname)
{
    g_autoptr(qemuMirrorAttestSecret) secret = g_new0(qemuMirrorAttestSecret, 1);
    const char *header;
    const char *data;
    const char *keyId;

    if (!(header = qemuMirrorAttestGetBase64(reply, "secret-header",
                                             QEMU_MIRROR_ATTEST_SECRET_HEADER_SIZE,
                                             domname, QEMU_MIRROR_ATTEST_STEP_ATTEST)) ||
        !(data = qemuMirrorAttestGetBase64(reply, "secret", 0,
                                           domname, QEMU_MIRROR_ATTEST_STEP_ATTEST)))
        return NULL;

    keyId = virJSONValueObjectGetString(reply, "key-id");
    if (!qemuMirrorAttestKeyIdValid(keyId)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation of this host for domain '%1$s' failed at step '%2$s': the attestation agent's reply has no valid 'key-id' (1 to %3$d characters of A-Z, a-z, 0-9, '.', '_', ':', '-')"),
                       domname, QEMU_MIRROR_ATTEST_STEP_ATTEST,
                       QEMU_MIRROR_ATTEST_KEY_ID_MAX);
        return NULL;
    }

    secret->header = g_strdup(header);
    secret->secret = g_strdup(data);
    secret->keyId = g_strdup(keyId);
    return g_steal_pointer(&secret);
}


/**
 * qemuMirrorAttestSession:
 * @cfg: the driver's configuration
 * @def: the incoming definition of an SEV guest
 * @platform: this host's SEV platform data
 *
 * Target, Prepare phase, before QEMU starts: the launch session. When the
 * management application put one in the incoming definition (<dhCert> and
 * <session> of <launchSecurity>), that is it. Otherwise the agent asks the
 * guest owner for one made for this host's PDH, and it goes in @def, from
 * where QEMU gets it as for any SEV launch.
 */
int
qemuMirrorAttestSession(virQEMUDriverConfig *cfg,
                        virDomainDef *def,
                        const virSEVCapability *platform)
{
    virDomainSEVDef *sev;
    g_autoptr(virJSONValue) request = NULL;
    g_autoptr(virJSONValue) reply = NULL;
    g_autofree char *hostname = NULL;
    g_autofree char *dhCert = NULL;
    g_autofree char *session = NULL;

    if (!def->sec || def->sec->sectype != VIR_DOMAIN_LAUNCH_SECURITY_SEV)
        return 0;
    sev = &def->sec->data.sev;

    if (sev->dh_cert && sev->session) {
        VIR_DEBUG("launch session of %s from the incoming definition", def->name);
        return 0;
    }

    if (!platform || !platform->pdh) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("attestation of this host for domain '%1$s' failed at step '%2$s': this host's SEV platform data (its PDH) is unknown"),
                       def->name, QEMU_MIRROR_ATTEST_STEP_SESSION);
        return -1;
    }

    hostname = virGetHostname();
    if (!(request = qemuMirrorAttestRequestNew("session", def, hostname, platform)))
        return -1;

    if (qemuMirrorAttestRun(cfg->mirrorAttestationAgent,
                            cfg->mirrorAttestationTimeout, def->name,
                            QEMU_MIRROR_ATTEST_STEP_SESSION,
                            request, &reply, NULL) < 0)
        return -1;

    if (qemuMirrorAttestParseSession(reply, def->name, &dhCert, &session) < 0)
        return -1;

    g_free(sev->dh_cert);
    g_free(sev->session);
    sev->dh_cert = g_steal_pointer(&dhCert);
    sev->session = g_steal_pointer(&session);
    return 0;
}
