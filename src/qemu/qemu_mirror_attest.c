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
 * (virCommandSetProcessGroup) that is killed whole when it times out
 * (virCommandSetTimeout), when it writes more than libvirt reads
 * (virCommandSetOutputMax), and after it exits; on Linux a watchdog
 * process, the group's leader, also kills the group when the thread of
 * the daemon that started it dies (PR_SET_PDEATHSIG), libvirtd killed by
 * SIGKILL included.
 */

#include <config.h>

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

/* what libvirt reads of the agent's standard output, and of its standard
 * error, at most */
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


static int
qemuMirrorAttestCheckExecutable(const char *agent)
{
    if (!virFileIsExecutable(agent)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation agent '%1$s' (mirror_attestation_agent in qemu.conf) is not an executable file"),
                       agent);
        return -1;
    }
    return 0;
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
                       _("no attestation agent is configured to attest this host for domain '%1$s' (mirror_attestation_agent in qemu.conf)"),
                       domname);
        return -1;
    }

    return qemuMirrorAttestCheckExecutable(cfg->mirrorAttestationAgent);
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
/* In the child libvirt forked for the agent, in a process group of its
 * own (virCommandSetProcessGroup), before the agent is executed: this
 * process stays as the group's leader and watchdog, the agent runs in a
 * child of it. When the daemon's thread
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
#endif /* __linux__ */


/**
 * qemuMirrorAttestRun:
 * @agent: the program (mirror_attestation_agent)
 * @timeout: seconds the run may take (mirror_attestation_timeout)
 * @domname: the domain, for errors
 * @step: the request's operation (QEMU_MIRROR_ATTEST_STEP_*), for errors
 * @request: the request
 * @reply: filled with the agent's reply, a JSON object that is not a
 *         refusal
 * @elapsedMs: if not NULL, set to how long the run took
 *
 * Runs the agent once. Every failure is reported with the cause: the
 * agent cannot be run, it exits with a non-zero status (the last line it
 * wrote to standard error is quoted), it takes longer than @timeout or
 * writes more than QEMU_MIRROR_ATTEST_OUTPUT_MAX bytes to either stream
 * (its process group is killed), its output is not a JSON object, or it
 * refuses (its reason is quoted). What is quoted of the agent is
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
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(virJSONValue) json = NULL;
    g_autofree char *lastLine = NULL;
    g_autofree char *reason = NULL;
#ifdef __linux__
    pid_t daemonPid = getpid();
#endif
    unsigned long long start;
    unsigned long long now;
    int exitstatus = 0;
    const char *refused;

    *reply = NULL;

    if (virTimeMillisNow(&start) < 0)
        return -1;

    if (qemuMirrorAttestCheckExecutable(agent) < 0)
        return -1;

    if (!(input = virJSONValueToString(request, false)))
        return -1;

    cmd = virCommandNew(agent);
    virCommandAddEnvPassCommon(cmd);
    virCommandSetInputBuffer(cmd, input);
    virCommandSetOutputBuffer(cmd, &out);
    virCommandSetErrorBuffer(cmd, &err);
    virCommandSetOutputMax(cmd, QEMU_MIRROR_ATTEST_OUTPUT_MAX);
    virCommandSetTimeout(cmd, MIN(timeout, UINT_MAX / 1000) * 1000);
    virCommandSetProcessGroup(cmd);
    virCommandRawStatus(cmd);
#ifdef __linux__
    virCommandSetPreExecHook(cmd, qemuMirrorAttestChildHook, &daemonPid);
#endif
    /* rather than virCommandRun, which logs what the command wrote: the
     * agent's reply is not logged, its standard error only sanitised */
    virCommandDoAsyncIO(cmd);

    VIR_DEBUG("running attestation agent %s for domain %s, step %s",
              agent, domname, step);

    if (virCommandRunAsync(cmd, NULL) < 0)
        return -1;

    if (virCommandWait(cmd, &exitstatus) < 0) {
        if (virGetLastErrorCode() == VIR_ERR_OPERATION_TIMEOUT)
            virReportError(VIR_ERR_OPERATION_TIMEOUT,
                           _("attestation agent '%1$s' did not answer the '%2$s' request for domain '%3$s' within %4$u seconds (mirror_attestation_timeout)"),
                           agent, step, domname, timeout);
        return -1;
    }

    if (virTimeMillisNow(&now) < 0)
        return -1;
    if (elapsedMs)
        *elapsedMs = now - start;

    qemuMirrorAttestLogStderr(agent, step, err);
    lastLine = qemuMirrorAttestLastLine(err);

    if (!WIFEXITED(exitstatus) || WEXITSTATUS(exitstatus) != 0) {
        g_autofree char *how = virProcessTranslateStatus(exitstatus);

        if (lastLine)
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("attestation agent '%1$s' failed the '%2$s' request for domain '%3$s' (%4$s): %5$s"),
                           agent, step, domname, how, lastLine);
        else
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("attestation agent '%1$s' failed the '%2$s' request for domain '%3$s' (%4$s)"),
                           agent, step, domname, how);
        return -1;
    }

    /* the reply is not logged: the agent is not trusted with the log */
    VIR_DEBUG("attestation agent %s, step %s: a reply of %zu bytes",
              agent, step, strlen(out));
    if (!(json = virJSONValueFromStringNoLog(out)) ||
        !virJSONValueIsObject(json)) {
        virResetLastError();
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation agent '%1$s' did not answer the '%2$s' request for domain '%3$s' with a JSON object"),
                       agent, step, domname);
        return -1;
    }

    if (virJSONValueObjectHasKey(json, "refused")) {
        if ((refused = virJSONValueObjectGetString(json, "refused")))
            reason = qemuMirrorAttestSanitize(refused, QEMU_MIRROR_ATTEST_TEXT_MAX);
        if (reason)
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("the guest owner refused the '%1$s' request for domain '%2$s': %3$s"),
                           step, domname, reason);
        else
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("the guest owner refused the '%1$s' request for domain '%2$s'"),
                           step, domname);
        return -1;
    }

    *reply = g_steal_pointer(&json);
    return 0;
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
                       _("attestation agent's reply to the '%1$s' request for domain '%2$s' has no valid '%3$s' (base64 of %4$zu bytes)"),
                       step, domname, member, size);
    else
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("attestation agent's reply to the '%1$s' request for domain '%2$s' has no valid '%3$s' (base64 of a multiple of 16 bytes)"),
                       step, domname, member);
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
                       _("attestation agent's reply to the '%1$s' request for domain '%2$s' has no valid 'key-id' (1 to %3$d characters of A-Z, a-z, 0-9, '.', '_', ':', '-')"),
                       QEMU_MIRROR_ATTEST_STEP_ATTEST, domname,
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
                       _("cannot request a launch session for domain '%1$s': the SEV platform data (PDH) of this host is unknown"),
                       def->name);
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
