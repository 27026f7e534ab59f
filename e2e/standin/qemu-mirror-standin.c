/*
 * qemu-mirror-standin: a stand-in for a QEMU that implements the contract of
 * docs/kbase/confidential-migration.rst (version 1), for machines without
 * AMD SEV and for a QEMU without the (unmerged, RFC) mirror VM and migration
 * helper patches.
 *
 * It is used as a domain's <emulator>: libvirt runs it with an ordinary QEMU
 * command line. It rewrites that command line, runs Debian's real QEMU
 * (qemu-system-x86_64, 7.2) as its child, and sits between libvirt and QEMU
 * on the QMP monitor.
 *
 * What it SIMULATES (none of this exists in the real QEMU it runs):
 *
 *  - SEV. The sev-guest / sev-snp-guest object, the confidential-guest-support
 *    (memory-encryption) machine property and -bios (the "OVMF with migration
 *    helper" does not exist; the guest is booted by QEMU's default firmware,
 *    e.g. with -kernel) are removed from the command line: the guest runs
 *    unencrypted. query-sev-capabilities, query-sev and
 *    query-sev-launch-measure are answered by the stand-in with FAKE data
 *    (fixed bytes, not from any secure processor). QEMU's SEV migration
 *    blocker ("SEV: Migration is not implemented") is simulated: it is added
 *    to query-migrate's blocked-reasons and makes 'migrate' fail while the
 *    migration helper is not ready.
 *  - Mirror vCPUs (-smp ...,mirrorvcpus=M). Of the T vCPUs of -smp, the real
 *    QEMU gets only the N = T - M guest vCPUs (maxcpus keeps T, so that the
 *    topology stays valid). Each mirror vCPU is a real thread of this process
 *    that blocks for ever; query-mirror-vcpus reports their Linux thread IDs,
 *    so that libvirt pins real threads. The empty slots that the real QEMU
 *    has where the mirror vCPUs would be are hidden from
 *    query-hotpluggable-cpus (the contract: mirror vCPUs are not listed).
 *    '-smp mirrorvcpus' is added to query-command-line-options (smp-opts).
 *  - The migration helper (-fw_cfg opt/ovmf/PcdSevIsMigrationHelper, removed
 *    from the command line): query-migration-helper, the MIGRATION_HELPER
 *    event and the state machine inactive -> booting -> ready | failed,
 *    driven by the first 'cont' and a timer (see the configuration below).
 *  - The transport key: a ready helper reports "transport-key": true (unless
 *    configured not to), as if the guest owner had provisioned one. There is
 *    no key.
 *  - Target mode (-fw_cfg opt/ovmf/PcdSevIsMigrationTarget,string=1, removed
 *    from the command line). The real QEMU is started with '-incoming defer'
 *    (the contract's target has no -incoming). Until start-migrate-incoming
 *    succeeds, 'cont' and 'stop' are answered by the stand-in (with RESUME
 *    and STOP events), since a 'cont' would only set QEMU's autostart flag;
 *    query-status reports 'prelaunch' or, after the fake 'cont', 'running';
 *    migrate-incoming is refused as by a QEMU started without -incoming.
 *    start-migrate-incoming becomes QEMU's migrate-incoming; on success the
 *    stand-in emits STOP (the guest's vCPUs are stopped for loading).
 *  - The encrypted transport. There is none: the guest's pages travel in
 *    QEMU's ordinary, PLAINTEXT migration stream; nothing is re-encrypted
 *    and no mailbox exists.
 *  - The schema: the entries tooling/derive-mirror-caps.py adds to
 *    query-qmp-schema (start-migrate-incoming, query-mirror-vcpus,
 *    query-migration-helper, MIGRATION_HELPER and their types; the type
 *    names are numbers above the largest one of the real reply).
 *
 * What it PASSES THROUGH unchanged: every other argument, every other QMP
 * command and reply, and all of QEMU's events (in both directions, line by
 * line, never splitting a line). 'cont' on a source, 'migrate' with a ready
 * helper (or without SEV), and everything after start-migrate-incoming on a
 * target go to the real QEMU. A guest without SEV and without mirror vCPUs
 * sees the real QEMU with only the monitor argument replaced (and
 * query-sev answered with an error, as by a QEMU without SEV).
 *
 * Process model:
 *  - The monitor: '-chardev socket,id=ID,fd=N,server=on,...' (an inherited,
 *    listening socket, as libvirt passes it) or '...,path=PATH,server=on,...'
 *    referred to by '-mon chardev=ID,mode=control', or
 *    '-qmp unix:PATH,server=on,...'. The stand-in accepts on it (one client
 *    at a time, like QEMU) and the real QEMU gets a private monitor socket in
 *    the abstract namespace instead (no file is left behind, even when the
 *    stand-in is killed; unlike a file, it is open to any process of the
 *    network namespace, which is acceptable for a test harness only). Each client connection gets a fresh
 *    connection to QEMU's monitor, so that QEMU's greeting and capability
 *    negotiation go through. Without a QMP monitor to proxy (e.g. -version),
 *    the stand-in executes the real QEMU in its place.
 *  - -daemonize and -pidfile are handled here, not by QEMU: the pid in the
 *    pidfile is the stand-in's. With -daemonize the first process exits 0
 *    once the monitor socket listens (errors: on its stderr, exit 1).
 *  - QEMU dies with the stand-in (PR_SET_PDEATHSIG); the stand-in exits when
 *    QEMU exits, with its status (128+signal if QEMU was killed); SIGTERM,
 *    SIGINT and SIGHUP are passed to QEMU (SIGKILL after 5 s).
 *  - Inherited file descriptors stay open for QEMU (libvirt's tap and
 *    -add-fd fds); the stand-in's own are close-on-exec. File descriptors
 *    the client passes on the monitor (SCM_RIGHTS, e.g. with getfd for the
 *    socket of an outgoing migration) go to QEMU with the command that
 *    came with them.
 *  - Log lines on stderr (the domain log), prefixed "qemu-mirror-standin: ":
 *    the rewritten command line, the NAME of each command the stand-in
 *    answers or changes (never arguments), helper state changes.
 *
 * Configuration: a key file, STANDIN_CONF (compiled in), or the file named
 * by $QEMU_MIRROR_STANDIN_CONF when set (for tests; libvirt clears QEMU's
 * environment, so under libvirt the compiled-in path applies). A missing
 * file means the defaults:
 *
 *   [standin]
 *   qemu=/usr/bin/qemu-system-x86_64
 *   # ms from the first 'cont' until the helper leaves 'booting'
 *   helper-boot-ms=200
 *   # what the helper does after booting: ready | failed | hang
 *   helper=ready
 *   # whether the ready helper reports a transport key (query-migration-helper
 *   # "transport-key"); no key exists, the report is what is simulated
 *   transport-key=true
 *
 * JSON: json-c, not json-glib. It is the library libvirt itself parses QMP
 * with, and it keeps what a rewritten reply must not lose: integers above
 * INT64_MAX (json-glib has gint64 only) and the original text of floating
 * point numbers (json-glib re-prints them with %.17g). It is also installed
 * already for libvirt's build.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <json.h>

#ifndef STANDIN_CONF
# error "STANDIN_CONF must be defined"
#endif

#define PREFIX "qemu-mirror-standin: "
/* file descriptors passed along with one command (SCM_RIGHTS) */
#define STANDIN_MAX_FDS 16
#define SEV_BLOCKER "SEV: Migration is not implemented"
#define FW_CFG_HELPER "opt/ovmf/PcdSevIsMigrationHelper"
#define FW_CFG_TARGET "opt/ovmf/PcdSevIsMigrationTarget"
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* how long QEMU may take to open its monitor socket */
#define QEMU_START_TIMEOUT_US (60 * G_USEC_PER_SEC)
/* how long QEMU may take to exit after SIGTERM before it gets SIGKILL */
#define QEMU_TERM_TIMEOUT_MS 5000

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)


typedef enum {
    HELPER_INACTIVE = 0,
    HELPER_BOOTING,
    HELPER_READY,
    HELPER_FAILED,
} HelperStatus;

static const char *helperStatusNames[] = {
    "inactive", "booting", "ready", "failed",
};

typedef enum {
    HELPER_MODE_READY = 0,
    HELPER_MODE_FAILED,
    HELPER_MODE_HANG,
} HelperMode;

typedef struct {
    char *qemu;
    guint bootMs;
    HelperMode mode;
    bool transportKey;
} StandinConf;

typedef enum {
    MON_NONE = 0,
    MON_PATH,           /* the stand-in creates and listens on monPath */
    MON_FD,             /* an inherited, listening socket */
} MonKind;

typedef enum {
    MON_ARG_QMP,        /* -qmp unix:... */
    MON_ARG_CHARDEV,    /* -chardev socket,id=... */
} MonArg;

typedef enum {
    ACT_FORWARD = 0,    /* QEMU's reply goes to the client unchanged */
    ACT_LOCAL,          /* answered by the stand-in: @reply */
    ACT_CAPS,           /* qmp_capabilities */
    ACT_SCHEMA,         /* query-qmp-schema */
    ACT_CMDLINE,        /* query-command-line-options */
    ACT_QUERY_MIGRATE,  /* query-migrate */
    ACT_HOTPLUGGABLE,   /* query-hotpluggable-cpus */
    ACT_CONT,           /* cont (the vCPUs may run for the first time) */
    ACT_INCOMING,       /* migrate-incoming sent for start-migrate-incoming */
} PendingAction;

typedef struct {
    PendingAction action;
    char *name;         /* the command's name, for the log */
    json_object *id;    /* the command's id, or NULL */
    char *reply;        /* ACT_LOCAL: the complete reply line */
} Pending;

typedef struct _Standin Standin;
typedef struct _Chan Chan;
typedef void (*ChanLineFunc)(Standin *st, const char *line, gsize len);

struct _Chan {
    Standin *st;
    const char *name;
    int fd;
    GString *in;
    GString *out;
    guint inWatch;
    guint outWatch;
    ChanLineFunc lineFunc;
    GArray *fds;        /* received with SCM_RIGHTS, not passed on yet */
};

typedef struct {
    Standin *st;
    guint index;
    pid_t tid;
} MirrorVcpu;

struct _Standin {
    StandinConf conf;

    /* from the command line */
    GPtrArray *qemuArgv;        /* rewritten; NULL-terminated before exec */
    bool daemonize;
    char *pidfile;
    MonKind monKind;
    MonArg monArg;
    guint monArgIndex;          /* in qemuArgv: the value to replace */
    char *monChardevId;
    char *monPath;
    int monFd;
    bool sev;
    char *sevId;
    char *sevType;
    gint64 sevPolicy;
    guint mirrorVcpus;
    guint guestVcpus;
    bool topoKnown;
    guint sockets, dies, clusters, cores, threads;
    bool target;
    bool startPaused;

    /* run time */
    GMainLoop *loop;
    char *qemuMonPath;
    pid_t qemuPid;
    int exitCode;
    bool terminating;
    guint killTimer;
    int daemonPipe;             /* to the first process, until start-up ends */
    int relayFd;                /* QEMU's stderr, daemon mode */
    guint relayWatch;
    int listenFd;
    guint listenWatch;
    int spareQemuFd;            /* monitor connection made at start-up */
    Chan *client;
    Chan *qemu;
    GQueue pending;
    bool negotiated;

    GMutex mirrorLock;
    GCond mirrorCond;
    MirrorVcpu *mirror;

    HelperStatus helper;
    char *helperError;
    guint helperTimer;

    bool preIncoming;           /* target: before start-migrate-incoming */
    bool fakeRunning;           /* target, pre-incoming: after a fake cont */
    bool incomingRequested;
};


/* ------------------------------------------------------------------ */
/* logging                                                            */

static int daemonPipe = -1;

static void
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


static void standinLog(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void
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


/* ------------------------------------------------------------------ */
/* configuration                                                      */

static bool
confLoad(StandinConf *conf, GError **err)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) lerr = NULL;
    const char *path = g_getenv("QEMU_MIRROR_STANDIN_CONF");
    g_autofree char *qemu = NULL;
    g_autofree char *mode = NULL;

    if (!path || !*path)
        path = STANDIN_CONF;

    conf->qemu = g_strdup("/usr/bin/qemu-system-x86_64");
    conf->bootMs = 200;
    conf->mode = HELPER_MODE_READY;
    conf->transportKey = true;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &lerr)) {
        if (g_error_matches(lerr, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return true;
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "cannot read %s: %s", path, lerr->message);
        return false;
    }

    if ((qemu = g_key_file_get_string(kf, "standin", "qemu", NULL))) {
        g_free(conf->qemu);
        conf->qemu = g_steal_pointer(&qemu);
    }

    if (g_key_file_has_key(kf, "standin", "helper-boot-ms", NULL)) {
        gint64 ms = g_key_file_get_int64(kf, "standin", "helper-boot-ms", &lerr);
        if (lerr || ms < 0 || ms > G_MAXUINT) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "%s: helper-boot-ms must be a number of milliseconds",
                        path);
            return false;
        }
        conf->bootMs = ms;
    }

    if ((mode = g_key_file_get_string(kf, "standin", "helper", NULL))) {
        if (g_str_equal(mode, "ready")) {
            conf->mode = HELPER_MODE_READY;
        } else if (g_str_equal(mode, "failed")) {
            conf->mode = HELPER_MODE_FAILED;
        } else if (g_str_equal(mode, "hang")) {
            conf->mode = HELPER_MODE_HANG;
        } else {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "%s: helper must be ready, failed or hang, not '%s'",
                        path, mode);
            return false;
        }
    }

    if (g_key_file_has_key(kf, "standin", "transport-key", NULL)) {
        conf->transportKey = g_key_file_get_boolean(kf, "standin",
                                                    "transport-key", &lerr);
        if (lerr) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "%s: transport-key must be true or false", path);
            return false;
        }
    }

    return true;
}


/* ------------------------------------------------------------------ */
/* command line                                                       */

/* Split a QemuOpts string at the commas that are not doubled. The parts
 * keep their ",," escapes, so that joining them with "," restores the
 * string. */
static GPtrArray *
optsSplit(const char *str)
{
    GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
    const char *start = str;
    const char *p = str;

    while (*p) {
        if (*p == ',') {
            if (p[1] == ',') {
                p += 2;
                continue;
            }
            g_ptr_array_add(parts, g_strndup(start, p - start));
            start = p + 1;
        }
        p++;
    }
    g_ptr_array_add(parts, g_strdup(start));
    return parts;
}


static char *
optsJoin(GPtrArray *parts)
{
    GString *str = g_string_new(NULL);
    guint i;

    for (i = 0; i < parts->len; i++) {
        if (i > 0)
            g_string_append_c(str, ',');
        g_string_append(str, g_ptr_array_index(parts, i));
    }
    return g_string_free(str, FALSE);
}


/* the value of @part if it is "@key=value", else NULL */
static const char *
optsValue(const char *part, const char *key)
{
    size_t len = strlen(key);

    if (strncmp(part, key, len) == 0 && part[len] == '=')
        return part + len + 1;
    return NULL;
}


/* the value of @key in a QemuOpts string, with ",," unescaped */
static char *
optsGet(const char *str, const char *key)
{
    g_autoptr(GPtrArray) parts = optsSplit(str);
    guint i;

    for (i = 0; i < parts->len; i++) {
        const char *val = optsValue(g_ptr_array_index(parts, i), key);
        if (val) {
            g_auto(GStrv) pieces = g_strsplit(val, ",,", -1);
            return g_strjoinv(",", pieces);
        }
    }
    return NULL;
}


static bool
optsIsOn(const char *val)
{
    return g_str_equal(val, "on") || g_str_equal(val, "yes") ||
           g_str_equal(val, "true");
}


/* whether a chardev/-qmp option string says server mode */
static bool
optsIsServer(const char *str)
{
    g_autoptr(GPtrArray) parts = optsSplit(str);
    guint i;

    for (i = 0; i < parts->len; i++) {
        const char *part = g_ptr_array_index(parts, i);
        const char *val;

        if (g_str_equal(part, "server"))
            return true;
        if ((val = optsValue(part, "server")))
            return optsIsOn(val);
    }
    return false;
}


static bool
parseUint(const char *str, guint *out)
{
    guint64 val;

    if (!g_ascii_string_to_unsigned(str, 10, 0, G_MAXUINT, &val, NULL))
        return false;
    *out = val;
    return true;
}


/* The option name without a doubled dash, or NULL if @arg is no option. */
static const char *
optName(const char *arg)
{
    if (arg[0] != '-')
        return NULL;
    if (arg[1] == '-')
        return arg + 1;
    return arg;
}


/* -object: whether it is an SEV guest object; its id and policy */
static bool
parseSevObject(Standin *st, const char *val, GError **err)
{
    g_autofree char *type = NULL;
    g_autofree char *id = NULL;
    gint64 policy = 1;  /* QEMU's default */

    if (val[0] == '{') {
        g_autoptr(json_object) obj = json_tokener_parse(val);
        json_object *tmp;

        if (!obj || !json_object_is_type(obj, json_type_object))
            return false;  /* QEMU will complain */
        if (json_object_object_get_ex(obj, "qom-type", &tmp))
            type = g_strdup(json_object_get_string(tmp));
        if (json_object_object_get_ex(obj, "id", &tmp))
            id = g_strdup(json_object_get_string(tmp));
        if (json_object_object_get_ex(obj, "policy", &tmp))
            policy = json_object_get_int64(tmp);
    } else {
        g_autoptr(GPtrArray) parts = optsSplit(val);
        g_autofree char *pol = optsGet(val, "policy");

        if (!(type = optsGet(val, "qom-type")) && parts->len > 0 &&
            !strchr(g_ptr_array_index(parts, 0), '='))
            type = g_strdup(g_ptr_array_index(parts, 0));
        id = optsGet(val, "id");
        if (pol) {
            gchar *end = NULL;
            policy = g_ascii_strtoll(pol, &end, 0);
            if (!end || *end) {
                g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "invalid SEV policy '%s'", pol);
                return false;
            }
        }
    }

    if (!type || (!g_str_equal(type, "sev-guest") &&
                  !g_str_equal(type, "sev-snp-guest")))
        return false;

    if (st->sev) {
        g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "more than one SEV guest object");
        return false;
    }
    if (!id) {
        g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "the %s object has no id", type);
        return false;
    }
    st->sev = true;
    st->sevId = g_steal_pointer(&id);
    st->sevType = g_strdup(g_str_equal(type, "sev-guest") ? "sev" : "sev-snp");
    st->sevPolicy = policy;
    return true;
}


/* -smp: take the mirror vCPUs out. Returns the new value, or NULL when
 * there is no mirrorvcpus (then @val stays as it is). */
static char *
rewriteSmp(Standin *st, const char *val, GError **err)
{
    g_autoptr(GPtrArray) parts = optsSplit(val);
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
    guint cpus = 0, maxcpus = 0, mirror = 0, total;
    bool hasCpus = false, hasMax = false, hasMirror = false;
    bool hasSockets = false, hasCores = false, hasThreads = false;
    guint i;

    st->sockets = st->dies = st->clusters = st->cores = st->threads = 1;

    for (i = 0; i < parts->len; i++) {
        const char *part = g_ptr_array_index(parts, i);
        const char *eq = strchr(part, '=');
        g_autofree char *key = NULL;
        const char *num;
        guint n;

        if (!eq) {
            if (i != 0) {
                g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "-smp: invalid parameter '%s'", part);
                return NULL;
            }
            key = g_strdup("cpus");
            num = part;
        } else {
            key = g_strndup(part, eq - part);
            num = eq + 1;
        }

        if (!parseUint(num, &n))
            continue;  /* not ours to judge: QEMU will */

        if (g_str_equal(key, "cpus")) {
            hasCpus = true;
            cpus = n;
        } else if (g_str_equal(key, "maxcpus")) {
            hasMax = true;
            maxcpus = n;
        } else if (g_str_equal(key, "mirrorvcpus")) {
            hasMirror = true;
            mirror = n;
        } else if (g_str_equal(key, "sockets")) {
            hasSockets = true;
            st->sockets = n;
        } else if (g_str_equal(key, "dies")) {
            st->dies = n;
        } else if (g_str_equal(key, "clusters")) {
            st->clusters = n;
        } else if (g_str_equal(key, "cores")) {
            hasCores = true;
            st->cores = n;
        } else if (g_str_equal(key, "threads")) {
            hasThreads = true;
            st->threads = n;
        }
    }
    st->topoKnown = hasSockets && hasCores && hasThreads;

    if (!hasMirror)
        return NULL;

    if (hasCpus)
        total = cpus;
    else if (hasMax)
        total = maxcpus;
    else
        total = st->sockets * st->dies * st->clusters * st->cores * st->threads;

    if (mirror >= total) {
        g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "-smp: mirrorvcpus=%u leaves no guest vCPU of %u",
                    mirror, total);
        return NULL;
    }
    if (hasMax && mirror > maxcpus) {
        g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "-smp: mirrorvcpus=%u is larger than maxcpus=%u",
                    mirror, maxcpus);
        return NULL;
    }
    st->mirrorVcpus = mirror;
    st->guestVcpus = total - mirror;

    for (i = 0; i < parts->len; i++) {
        const char *part = g_ptr_array_index(parts, i);

        if (i == 0 && !strchr(part, '='))
            g_ptr_array_add(out, g_strdup_printf("%u", st->guestVcpus));
        else if (optsValue(part, "cpus"))
            g_ptr_array_add(out, g_strdup_printf("cpus=%u", st->guestVcpus));
        else if (!optsValue(part, "mirrorvcpus"))
            g_ptr_array_add(out, g_strdup(part));
    }
    if (!hasCpus)
        g_ptr_array_add(out, g_strdup_printf("cpus=%u", st->guestVcpus));
    if (!hasMax)
        g_ptr_array_add(out, g_strdup_printf("maxcpus=%u", total));

    return optsJoin(out);
}


/* -machine: without the SEV object's confidential-guest-support */
static char *
rewriteMachine(Standin *st, const char *val)
{
    g_autoptr(GPtrArray) parts = optsSplit(val);
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
    guint i;

    for (i = 0; i < parts->len; i++) {
        const char *part = g_ptr_array_index(parts, i);
        const char *ref = optsValue(part, "confidential-guest-support");

        if (!ref)
            ref = optsValue(part, "memory-encryption");
        if (ref && st->sev && g_str_equal(ref, st->sevId))
            continue;
        g_ptr_array_add(out, g_strdup(part));
    }
    return optsJoin(out);
}


static const char *
nextArg(int argc, char **argv, int *i, const char *opt, GError **err)
{
    if (*i + 1 >= argc) {
        g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "%s requires an argument", opt);
        return NULL;
    }
    return argv[++*i];
}


static bool
cmdParse(Standin *st, int argc, char **argv, GError **err)
{
    GPtrArray *out;
    bool hasIncoming = false;
    int i;

    /* pass 1: what the rewriting depends on, wherever it is */
    for (i = 1; i < argc; i++) {
        const char *opt = optName(argv[i]);

        if (!opt || i + 1 >= argc)
            continue;
        if (g_str_equal(opt, "-object")) {
            if (parseSevObject(st, argv[++i], err))
                continue;
            if (err && *err)
                return false;
        } else if (g_str_equal(opt, "-mon")) {
            g_autofree char *mode = optsGet(argv[++i], "mode");
            if (mode && g_str_equal(mode, "control") && !st->monChardevId)
                st->monChardevId = optsGet(argv[i], "chardev");
        } else if (g_str_equal(opt, "-incoming")) {
            hasIncoming = true;
        }
    }

    /* pass 2: the rewritten command line */
    st->qemuArgv = out = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(out, g_strdup(st->conf.qemu));

    for (i = 1; i < argc; i++) {
        const char *opt = optName(argv[i]);
        const char *val;

        if (!opt) {
            g_ptr_array_add(out, g_strdup(argv[i]));
            continue;
        }

        if (g_str_equal(opt, "-daemonize")) {
            st->daemonize = true;
            continue;
        }
        if (g_str_equal(opt, "-S")) {
            st->startPaused = true;
            g_ptr_array_add(out, g_strdup(argv[i]));
            continue;
        }

        if (g_str_equal(opt, "-pidfile")) {
            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            g_free(st->pidfile);
            st->pidfile = g_strdup(val);
            continue;
        }

        if (g_str_equal(opt, "-smp")) {
            g_autofree char *smp = NULL;
            g_autoptr(GError) lerr = NULL;

            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            if (!(smp = rewriteSmp(st, val, &lerr)) && lerr) {
                g_propagate_error(err, g_steal_pointer(&lerr));
                return false;
            }
            g_ptr_array_add(out, g_strdup(argv[i - 1]));
            g_ptr_array_add(out, smp ? g_steal_pointer(&smp) : g_strdup(val));
            continue;
        }

        if (g_str_equal(opt, "-object")) {
            g_autoptr(GError) lerr = NULL;
            Standin tmp = { .sev = false };

            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            /* the SEV object found in pass 1 */
            if (parseSevObject(&tmp, val, &lerr)) {
                g_free(tmp.sevId);
                g_free(tmp.sevType);
                continue;
            }
            g_ptr_array_add(out, g_strdup(argv[i - 1]));
            g_ptr_array_add(out, g_strdup(val));
            continue;
        }

        if (g_str_equal(opt, "-machine") || g_str_equal(opt, "-M")) {
            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            g_ptr_array_add(out, g_strdup(argv[i - 1]));
            g_ptr_array_add(out, rewriteMachine(st, val));
            continue;
        }

        if (g_str_equal(opt, "-bios")) {
            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            if (st->sev)
                continue;
            g_ptr_array_add(out, g_strdup(argv[i - 1]));
            g_ptr_array_add(out, g_strdup(val));
            continue;
        }

        if (g_str_equal(opt, "-fw_cfg")) {
            g_autofree char *name = NULL;

            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            name = optsGet(val, "name");
            if (name && g_str_equal(name, FW_CFG_HELPER))
                continue;
            if (name && g_str_equal(name, FW_CFG_TARGET)) {
                g_autofree char *str = optsGet(val, "string");
                if (str && g_str_equal(str, "1"))
                    st->target = true;
                continue;
            }
            g_ptr_array_add(out, g_strdup(argv[i - 1]));
            g_ptr_array_add(out, g_strdup(val));
            continue;
        }

        if (g_str_equal(opt, "-qmp")) {
            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            g_ptr_array_add(out, g_strdup(argv[i - 1]));
            if (st->monKind == MON_NONE && g_str_has_prefix(val, "unix:") &&
                optsIsServer(val)) {
                g_autoptr(GPtrArray) parts = optsSplit(val + strlen("unix:"));
                g_auto(GStrv) pieces = g_strsplit(g_ptr_array_index(parts, 0),
                                                  ",,", -1);
                st->monKind = MON_PATH;
                st->monArg = MON_ARG_QMP;
                st->monPath = g_strjoinv(",", pieces);
                st->monArgIndex = out->len;
            }
            g_ptr_array_add(out, g_strdup(val));
            continue;
        }

        if (g_str_equal(opt, "-chardev")) {
            g_autofree char *id = NULL;
            g_autofree char *fd = NULL;
            g_autofree char *path = NULL;

            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            g_ptr_array_add(out, g_strdup(argv[i - 1]));
            id = optsGet(val, "id");
            fd = optsGet(val, "fd");
            path = optsGet(val, "path");
            if (st->monKind == MON_NONE && st->monChardevId && id &&
                g_str_equal(id, st->monChardevId) &&
                g_str_has_prefix(val, "socket,") && optsIsServer(val)) {
                guint n;

                if (fd && parseUint(fd, &n) && n <= G_MAXINT) {
                    st->monKind = MON_FD;
                    st->monFd = n;
                } else if (path) {
                    st->monKind = MON_PATH;
                    st->monPath = g_steal_pointer(&path);
                }
                if (st->monKind != MON_NONE) {
                    st->monArg = MON_ARG_CHARDEV;
                    st->monArgIndex = out->len;
                }
            }
            g_ptr_array_add(out, g_strdup(val));
            continue;
        }

        g_ptr_array_add(out, g_strdup(argv[i]));
    }

    if (st->target) {
        if (hasIncoming) {
            g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "-fw_cfg %s,string=1 with -incoming: the target of a "
                        "confidential migration starts without -incoming",
                        FW_CFG_TARGET);
            return false;
        }
        g_ptr_array_add(out, g_strdup("-incoming"));
        g_ptr_array_add(out, g_strdup("defer"));
        st->preIncoming = true;
    }

    return true;
}


static bool
argIsPlain(const char *arg)
{
    const char *p;

    if (!*arg)
        return false;
    for (p = arg; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("_@%+=:,./-", *p))
            return false;
    }
    return true;
}


static char *
argvToString(GPtrArray *argv)
{
    GString *str = g_string_new(NULL);
    guint i;

    for (i = 0; i < argv->len; i++) {
        const char *arg = g_ptr_array_index(argv, i);

        if (!arg)
            break;
        if (i > 0)
            g_string_append_c(str, ' ');
        if (argIsPlain(arg)) {
            g_string_append(str, arg);
        } else {
            g_autofree char *quoted = g_shell_quote(arg);
            g_string_append(str, quoted);
        }
    }
    return g_string_free(str, FALSE);
}


/* ------------------------------------------------------------------ */
/* JSON helpers                                                       */

static const char *
jsonGetString(json_object *obj, const char *key)
{
    json_object *val;

    if (!obj || !json_object_object_get_ex(obj, key, &val) ||
        !json_object_is_type(val, json_type_string))
        return NULL;
    return json_object_get_string(val);
}


static json_object *
jsonMember(const char *name, const char *type)
{
    json_object *obj = json_object_new_object();

    json_object_object_add(obj, "name", json_object_new_string(name));
    if (type)
        json_object_object_add(obj, "type", json_object_new_string(type));
    return obj;
}


static char *
jsonLine(json_object *obj)
{
    return g_strdup_printf("%s\r\n", json_object_to_json_string_ext(obj, JSON_FLAGS));
}


static char *
fakeBase64(const char *what, gsize len)
{
    g_autofree guchar *buf = g_new0(guchar, len);
    gsize i;

    /* fixed bytes, recognisably fake */
    for (i = 0; i < len; i++)
        buf[i] = what[i % strlen(what)];
    return g_base64_encode(buf, len);
}


/* ------------------------------------------------------------------ */
/* channels: a socket, a line-buffered input and an output buffer      */

static gboolean chanOnIn(int fd, GIOCondition cond, gpointer opaque);
static void sessionEnd(Standin *st);


static void
chanCloseFds(Chan *chan)
{
    guint i;

    for (i = 0; i < chan->fds->len; i++)
        close(g_array_index(chan->fds, int, i));
    g_array_set_size(chan->fds, 0);
}


static Chan *
chanNew(Standin *st, const char *name, int fd, ChanLineFunc lineFunc)
{
    Chan *chan = g_new0(Chan, 1);

    chan->st = st;
    chan->name = name;
    chan->fd = fd;
    chan->in = g_string_new(NULL);
    chan->out = g_string_new(NULL);
    chan->lineFunc = lineFunc;
    chan->fds = g_array_new(FALSE, FALSE, sizeof(int));
    chan->inWatch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                  chanOnIn, chan);
    return chan;
}


static void
chanFree(Chan *chan)
{
    if (!chan)
        return;
    if (chan->inWatch)
        g_source_remove(chan->inWatch);
    if (chan->outWatch)
        g_source_remove(chan->outWatch);
    close(chan->fd);
    chanCloseFds(chan);
    g_array_free(chan->fds, TRUE);
    g_string_free(chan->in, TRUE);
    g_string_free(chan->out, TRUE);
    g_free(chan);
}


/* write what can be written now; false on a broken connection */
static bool
chanFlushNow(Chan *chan)
{
    while (chan->out->len > 0) {
        ssize_t n = send(chan->fd, chan->out->str, chan->out->len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            /* the input side sees the hang-up and ends the session */
            g_string_truncate(chan->out, 0);
            return false;
        }
        g_string_erase(chan->out, 0, n);
    }
    return true;
}


static gboolean
chanOnOut(int fd G_GNUC_UNUSED,
          GIOCondition cond G_GNUC_UNUSED,
          gpointer opaque)
{
    Chan *chan = opaque;

    chanFlushNow(chan);
    if (chan->out->len == 0) {
        chan->outWatch = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}


static void
chanWrite(Chan *chan, const char *data, gsize len)
{
    if (!chan)
        return;
    g_string_append_len(chan->out, data, len);
    chanFlushNow(chan);
    if (chan->out->len > 0 && !chan->outWatch)
        chan->outWatch = g_unix_fd_add(chan->fd, G_IO_OUT, chanOnOut, chan);
}


/* Write @data with the file descriptors @from received (libvirt passes
 * fds with SCM_RIGHTS along with the command that uses them, e.g. getfd or
 * add-fd): they go to QEMU with the first byte of @data. */
static void
chanWriteWithFds(Chan *chan, const char *data, gsize len, Chan *from)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * STANDIN_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = (void *) data, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cmsg;
    gsize nfds;
    ssize_t n;

    if (!chan || !from || from->fds->len == 0) {
        chanWrite(chan, data, len);
        if (from)
            chanCloseFds(from);
        return;
    }

    /* what is queued goes first: wait for it (a local socket, a few lines) */
    while (chan->out->len > 0) {
        struct pollfd pfd = { .fd = chan->fd, .events = POLLOUT };

        if (!chanFlushNow(chan) || poll(&pfd, 1, 1000) < 0)
            break;
    }

    nfds = MIN(from->fds->len, STANDIN_MAX_FDS);
    memset(&control, 0, sizeof(control));
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), from->fds->data, sizeof(int) * nfds);

    do {
        n = sendmsg(chan->fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);

    standinLog("passed %zu file descriptor(s) to QEMU", nfds);
    chanCloseFds(from);

    if (n < 0)
        return;     /* the input side sees the hang-up */
    if ((gsize) n < len)
        chanWrite(chan, data + n, len - n);
}


static void
chanProcessLines(Chan *chan)
{
    gsize start = 0;
    const char *nl;

    while ((nl = memchr(chan->in->str + start, '\n', chan->in->len - start))) {
        gsize len = nl - (chan->in->str + start) + 1;

        chan->lineFunc(chan->st, chan->in->str + start, len);
        /* file descriptors came with this line; a command that did not
         * pass them on (answered here) must not hand them to the next */
        chanCloseFds(chan);
        start += len;
    }
    g_string_erase(chan->in, 0, start);
}


static gboolean
chanOnIn(int fd, GIOCondition cond G_GNUC_UNUSED, gpointer opaque)
{
    Chan *chan = opaque;
    Standin *st = chan->st;
    char buf[65536];
    union {
        char buf[CMSG_SPACE(sizeof(int) * STANDIN_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = control.buf,
                          .msg_controllen = sizeof(control.buf) };
    struct cmsghdr *cmsg;
    ssize_t n;

    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return G_SOURCE_CONTINUE;
    for (cmsg = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cmsg;
         cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
            gsize nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            g_array_append_vals(chan->fds, CMSG_DATA(cmsg), nfds);
        }
    }
    if (n <= 0) {
        standinLog("%s closed the monitor connection", chan->name);
        chan->inWatch = 0;
        sessionEnd(st);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(chan->in, buf, n);
    chanProcessLines(chan);
    return G_SOURCE_CONTINUE;
}


/* ------------------------------------------------------------------ */
/* QMP: replies, events, pending commands                             */

static void
pendingFree(Pending *p)
{
    if (!p)
        return;
    g_free(p->name);
    json_object_put(p->id);
    g_free(p->reply);
    g_free(p);
}


static Pending *
pendingPush(Standin *st, PendingAction action, const char *name,
            json_object *id)
{
    Pending *p = g_new0(Pending, 1);

    p->action = action;
    p->name = g_strdup(name);
    p->id = id ? json_object_get(id) : NULL;
    g_queue_push_tail(&st->pending, p);
    return p;
}


/* The command a reply from QEMU answers: the first one with the same id,
 * else the first one still waiting for QEMU. */
static Pending *
pendingPop(Standin *st, json_object *id)
{
    GList *l;

    if (id) {
        for (l = st->pending.head; l; l = l->next) {
            Pending *p = l->data;
            if (p->action != ACT_LOCAL && p->id &&
                json_object_equal(p->id, id)) {
                g_queue_delete_link(&st->pending, l);
                return p;
            }
        }
    }
    for (l = st->pending.head; l; l = l->next) {
        Pending *p = l->data;
        if (p->action != ACT_LOCAL) {
            g_queue_delete_link(&st->pending, l);
            return p;
        }
    }
    return NULL;
}


/* local replies wait for the replies to the commands sent before them */
static void
pendingFlushLocal(Standin *st)
{
    Pending *p;

    while ((p = g_queue_peek_head(&st->pending)) && p->action == ACT_LOCAL) {
        g_queue_pop_head(&st->pending);
        chanWrite(st->client, p->reply, strlen(p->reply));
        pendingFree(p);
    }
}


static void
sendLine(Standin *st, const char *name, json_object *id, json_object *reply)
{
    g_autofree char *line = NULL;

    if (id)
        json_object_object_add(reply, "id", json_object_get(id));
    line = jsonLine(reply);

    if (g_queue_is_empty(&st->pending)) {
        chanWrite(st->client, line, strlen(line));
    } else {
        Pending *p = pendingPush(st, ACT_LOCAL, name, NULL);
        p->reply = g_steal_pointer(&line);
    }
}


/* reply with @ret (owned; NULL for {}) */
static void
replyReturn(Standin *st, const char *name, json_object *id, json_object *ret)
{
    g_autoptr(json_object) reply = json_object_new_object();

    json_object_object_add(reply, "return", ret ? ret : json_object_new_object());
    sendLine(st, name, id, reply);
}


static void replyError(Standin *st, const char *name, json_object *id,
                       const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static void
replyError(Standin *st, const char *name, json_object *id,
           const char *fmt, ...)
{
    g_autoptr(json_object) reply = json_object_new_object();
    json_object *error = json_object_new_object();
    g_autofree char *desc = NULL;
    va_list ap;

    va_start(ap, fmt);
    desc = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    json_object_object_add(error, "class", json_object_new_string("GenericError"));
    json_object_object_add(error, "desc", json_object_new_string(desc));
    json_object_object_add(reply, "error", error);
    sendLine(st, name, id, reply);
}


/* an event of the stand-in's; @data is owned (NULL: no data) */
static void
emitEvent(Standin *st, const char *name, json_object *data)
{
    g_autoptr(json_object) ev = json_object_new_object();
    json_object *ts = json_object_new_object();
    gint64 now = g_get_real_time();
    g_autofree char *line = NULL;

    json_object_object_add(ts, "seconds", json_object_new_int64(now / G_USEC_PER_SEC));
    json_object_object_add(ts, "microseconds", json_object_new_int64(now % G_USEC_PER_SEC));
    json_object_object_add(ev, "timestamp", ts);
    json_object_object_add(ev, "event", json_object_new_string(name));
    if (data)
        json_object_object_add(ev, "data", data);

    /* QMP: no events before capability negotiation, and none without a
     * client (QEMU drops them too) */
    if (!st->client || !st->negotiated)
        return;
    line = jsonLine(ev);
    chanWrite(st->client, line, strlen(line));
}


/* ------------------------------------------------------------------ */
/* the migration helper                                               */

/* the simulated transport key: "provisioned" once the helper is ready,
 * unless the configuration says transport-key=false */
static bool
helperHasKey(Standin *st)
{
    return st->helper == HELPER_READY && st->conf.transportKey;
}


static void
helperSet(Standin *st, HelperStatus status, const char *error)
{
    json_object *data = json_object_new_object();

    st->helper = status;
    g_free(st->helperError);
    st->helperError = g_strdup(error);
    standinLog("migration helper: %s%s%s", helperStatusNames[status],
               error ? ": " : "", error ? error : "");

    json_object_object_add(data, "status",
                           json_object_new_string(helperStatusNames[status]));
    if (helperHasKey(st))
        json_object_object_add(data, "transport-key", json_object_new_boolean(true));
    if (error)
        json_object_object_add(data, "error", json_object_new_string(error));
    emitEvent(st, "MIGRATION_HELPER", data);
}


static gboolean
helperBooted(gpointer opaque)
{
    Standin *st = opaque;

    st->helperTimer = 0;
    if (st->conf.mode == HELPER_MODE_READY)
        helperSet(st, HELPER_READY, NULL);
    else
        helperSet(st, HELPER_FAILED, "migration helper did not start (simulated)");
    return G_SOURCE_REMOVE;
}


/* the VM's vCPUs run for the first time: OVMF starts the helper on the
 * mirror vCPUs */
static void
helperStart(Standin *st)
{
    if (st->mirrorVcpus == 0 || st->helper != HELPER_INACTIVE)
        return;
    helperSet(st, HELPER_BOOTING, NULL);
    if (st->conf.mode != HELPER_MODE_HANG)
        st->helperTimer = g_timeout_add(st->conf.bootMs, helperBooted, st);
}


static bool
sevBlocked(Standin *st)
{
    return st->sev && st->helper != HELPER_READY;
}


/* ------------------------------------------------------------------ */
/* replies from QEMU that the stand-in changes                         */

static bool
augmentSchema(json_object *schema)
{
    gint64 max = 0;
    size_t i, n = json_object_array_length(schema);
    char tUri[32], tVcpu[32], tVcpuList[40], tStatus[32], tInfo[32];
    json_object *obj;
    json_object *members;
    json_object *values;
    json_object *error;
    const char *statuses[] = { "inactive", "booting", "ready", "failed" };

    for (i = 0; i < n; i++) {
        const char *name = jsonGetString(json_object_array_get_idx(schema, i), "name");
        guint64 num;

        if (!name)
            continue;
        if (g_str_equal(name, "start-migrate-incoming"))
            return false;  /* a QEMU that has it */
        if (g_ascii_string_to_unsigned(name, 10, 0, G_MAXINT, &num, NULL) &&
            (gint64) num > max)
            max = num;
    }

    g_snprintf(tUri, sizeof(tUri), "%" G_GINT64_FORMAT, max + 1);
    g_snprintf(tVcpu, sizeof(tVcpu), "%" G_GINT64_FORMAT, max + 2);
    g_snprintf(tVcpuList, sizeof(tVcpuList), "[%s]", tVcpu);
    g_snprintf(tStatus, sizeof(tStatus), "%" G_GINT64_FORMAT, max + 3);
    g_snprintf(tInfo, sizeof(tInfo), "%" G_GINT64_FORMAT, max + 4);

    /* RFC: start-migrate-incoming */
    obj = json_object_new_object();
    json_object_object_add(obj, "name", json_object_new_string("start-migrate-incoming"));
    json_object_object_add(obj, "ret-type", json_object_new_string("0"));
    json_object_object_add(obj, "meta-type", json_object_new_string("command"));
    json_object_object_add(obj, "arg-type", json_object_new_string(tUri));
    json_object_array_add(schema, obj);

    /* proposal: query-mirror-vcpus, query-migration-helper */
    obj = json_object_new_object();
    json_object_object_add(obj, "name", json_object_new_string("query-mirror-vcpus"));
    json_object_object_add(obj, "ret-type", json_object_new_string(tVcpuList));
    json_object_object_add(obj, "meta-type", json_object_new_string("command"));
    json_object_object_add(obj, "arg-type", json_object_new_string("0"));
    json_object_array_add(schema, obj);

    obj = json_object_new_object();
    json_object_object_add(obj, "name", json_object_new_string("query-migration-helper"));
    json_object_object_add(obj, "ret-type", json_object_new_string(tInfo));
    json_object_object_add(obj, "meta-type", json_object_new_string("command"));
    json_object_object_add(obj, "arg-type", json_object_new_string("0"));
    json_object_array_add(schema, obj);

    obj = json_object_new_object();
    json_object_object_add(obj, "name", json_object_new_string("MIGRATION_HELPER"));
    json_object_object_add(obj, "meta-type", json_object_new_string("event"));
    json_object_object_add(obj, "arg-type", json_object_new_string(tInfo));
    json_object_array_add(schema, obj);

    /* the types */
    obj = json_object_new_object();
    members = json_object_new_array();
    json_object_array_add(members, jsonMember("uri", "str"));
    json_object_object_add(obj, "name", json_object_new_string(tUri));
    json_object_object_add(obj, "members", members);
    json_object_object_add(obj, "meta-type", json_object_new_string("object"));
    json_object_array_add(schema, obj);

    obj = json_object_new_object();
    members = json_object_new_array();
    json_object_array_add(members, jsonMember("cpu-index", "int"));
    json_object_array_add(members, jsonMember("thread-id", "int"));
    json_object_object_add(obj, "name", json_object_new_string(tVcpu));
    json_object_object_add(obj, "members", members);
    json_object_object_add(obj, "meta-type", json_object_new_string("object"));
    json_object_array_add(schema, obj);

    obj = json_object_new_object();
    json_object_object_add(obj, "name", json_object_new_string(tVcpuList));
    json_object_object_add(obj, "element-type", json_object_new_string(tVcpu));
    json_object_object_add(obj, "meta-type", json_object_new_string("array"));
    json_object_array_add(schema, obj);

    obj = json_object_new_object();
    members = json_object_new_array();
    values = json_object_new_array();
    for (i = 0; i < G_N_ELEMENTS(statuses); i++) {
        json_object_array_add(members, jsonMember(statuses[i], NULL));
        json_object_array_add(values, json_object_new_string(statuses[i]));
    }
    json_object_object_add(obj, "name", json_object_new_string(tStatus));
    json_object_object_add(obj, "members", members);
    json_object_object_add(obj, "meta-type", json_object_new_string("enum"));
    json_object_object_add(obj, "values", values);
    json_object_array_add(schema, obj);

    obj = json_object_new_object();
    members = json_object_new_array();
    json_object_array_add(members, jsonMember("status", tStatus));
    error = jsonMember("transport-key", NULL);
    json_object_object_add(error, "default", NULL);
    json_object_object_add(error, "type", json_object_new_string("bool"));
    json_object_array_add(members, error);
    error = jsonMember("error", NULL);
    json_object_object_add(error, "default", NULL);
    json_object_object_add(error, "type", json_object_new_string("str"));
    json_object_array_add(members, error);
    json_object_object_add(obj, "name", json_object_new_string(tInfo));
    json_object_object_add(obj, "members", members);
    json_object_object_add(obj, "meta-type", json_object_new_string("object"));
    json_object_array_add(schema, obj);

    return true;
}


static bool
augmentCmdline(json_object *options)
{
    size_t i, j;
    bool changed = false;

    for (i = 0; i < json_object_array_length(options); i++) {
        json_object *opt = json_object_array_get_idx(options, i);
        const char *name = jsonGetString(opt, "option");
        json_object *params;
        bool has = false;

        if (!name || !g_str_equal(name, "smp-opts") ||
            !json_object_object_get_ex(opt, "parameters", &params) ||
            !json_object_is_type(params, json_type_array))
            continue;
        for (j = 0; j < json_object_array_length(params); j++) {
            const char *p = jsonGetString(json_object_array_get_idx(params, j), "name");
            if (p && g_str_equal(p, "mirrorvcpus"))
                has = true;
        }
        if (!has) {
            json_object_array_add(params, jsonMember("mirrorvcpus", "number"));
            changed = true;
        }
    }
    return changed;
}


static bool
augmentQueryMigrate(Standin *st, json_object *info)
{
    json_object *reasons;
    size_t i;

    if (!sevBlocked(st) || !json_object_is_type(info, json_type_object))
        return false;
    if (!json_object_object_get_ex(info, "blocked-reasons", &reasons) ||
        !json_object_is_type(reasons, json_type_array)) {
        reasons = json_object_new_array();
        json_object_object_add(info, "blocked-reasons", reasons);
    }
    for (i = 0; i < json_object_array_length(reasons); i++) {
        const char *r = json_object_get_string(json_object_array_get_idx(reasons, i));
        if (r && g_str_equal(r, SEV_BLOCKER))
            return true;
    }
    json_object_array_add(reasons, json_object_new_string(SEV_BLOCKER));
    return true;
}


static gint64
jsonPropInt(json_object *props, const char *key)
{
    json_object *val;

    if (!json_object_object_get_ex(props, key, &val))
        return 0;
    return json_object_get_int64(val);
}


/* hide the (empty) slots where the mirror vCPUs would be */
static bool
augmentHotpluggable(Standin *st, json_object *cpus)
{
    g_autoptr(json_object) kept = json_object_new_array();
    size_t i, n = json_object_array_length(cpus);
    bool changed = false;

    if (st->mirrorVcpus == 0 || !st->topoKnown)
        return false;

    for (i = 0; i < n; i++) {
        json_object *cpu = json_object_array_get_idx(cpus, i);
        json_object *props;
        gint64 idx;

        if (!json_object_object_get_ex(cpu, "qom-path", NULL) &&
            json_object_object_get_ex(cpu, "props", &props)) {
            idx = ((jsonPropInt(props, "socket-id") * st->dies +
                    jsonPropInt(props, "die-id")) * st->clusters +
                   jsonPropInt(props, "cluster-id")) * st->cores +
                  jsonPropInt(props, "core-id");
            idx = idx * st->threads + jsonPropInt(props, "thread-id");
            if (idx >= st->guestVcpus && idx < st->guestVcpus + st->mirrorVcpus) {
                changed = true;
                continue;
            }
        }
        json_object_array_add(kept, json_object_get(cpu));
    }
    if (!changed)
        return false;

    /* replace the array's content */
    json_object_array_del_idx(cpus, 0, n);
    for (i = 0; i < json_object_array_length(kept); i++)
        json_object_array_add(cpus, json_object_get(json_object_array_get_idx(kept, i)));
    return true;
}


static void
qemuReply(Standin *st, Pending *p, json_object *msg,
          const char *line, gsize len)
{
    json_object *ret = NULL;
    bool ok = json_object_object_get_ex(msg, "return", &ret);
    bool changed = false;

    switch (p->action) {
    case ACT_CAPS:
        if (ok)
            st->negotiated = true;
        break;
    case ACT_SCHEMA:
        if (ok && json_object_is_type(ret, json_type_array))
            changed = augmentSchema(ret);
        break;
    case ACT_CMDLINE:
        if (ok && json_object_is_type(ret, json_type_array))
            changed = augmentCmdline(ret);
        break;
    case ACT_QUERY_MIGRATE:
        if (ok)
            changed = augmentQueryMigrate(st, ret);
        break;
    case ACT_HOTPLUGGABLE:
        if (ok && json_object_is_type(ret, json_type_array))
            changed = augmentHotpluggable(st, ret);
        break;
    case ACT_CONT:
        if (ok)
            helperStart(st);
        break;
    case ACT_INCOMING:
        break;
    case ACT_FORWARD:
    case ACT_LOCAL:
        break;
    }

    if (changed) {
        g_autofree char *out = jsonLine(msg);
        standinLog("QMP %s: reply amended", p->name);
        chanWrite(st->client, out, strlen(out));
    } else {
        chanWrite(st->client, line, len);
    }

    if (p->action == ACT_INCOMING) {
        if (ok) {
            standinLog("incoming migration started; guest vCPUs stopped");
            st->preIncoming = false;
            st->fakeRunning = false;
            emitEvent(st, "STOP", NULL);
        } else {
            st->incomingRequested = false;
        }
    }
}


static void
qemuLine(Standin *st, const char *line, gsize len)
{
    g_autofree char *text = g_strndup(line, len);
    g_autoptr(json_object) msg = json_tokener_parse(text);
    json_object *id = NULL;
    Pending *p;

    if (!msg || !json_object_is_type(msg, json_type_object) ||
        (!json_object_object_get_ex(msg, "return", NULL) &&
         !json_object_object_get_ex(msg, "error", NULL))) {
        /* greeting, events, anything else */
        chanWrite(st->client, line, len);
        return;
    }

    json_object_object_get_ex(msg, "id", &id);
    if (!(p = pendingPop(st, id))) {
        chanWrite(st->client, line, len);
        return;
    }
    qemuReply(st, p, msg, line, len);
    pendingFree(p);
    pendingFlushLocal(st);
}


/* ------------------------------------------------------------------ */
/* commands from the client                                           */

static void
forward(Standin *st, PendingAction action, const char *name, json_object *id,
        const char *line, gsize len)
{
    pendingPush(st, action, name, id);
    chanWriteWithFds(st->qemu, line, len, st->client);
}


static void
cmdQueryMirrorVcpus(Standin *st, const char *name, json_object *id)
{
    json_object *list = json_object_new_array();
    guint i;

    for (i = 0; i < st->mirrorVcpus; i++) {
        json_object *vcpu = json_object_new_object();
        json_object_object_add(vcpu, "cpu-index",
                               json_object_new_int64(st->guestVcpus + i));
        json_object_object_add(vcpu, "thread-id",
                               json_object_new_int64(st->mirror[i].tid));
        json_object_array_add(list, vcpu);
    }
    replyReturn(st, name, id, list);
}


static void
cmdQueryMigrationHelper(Standin *st, const char *name, json_object *id)
{
    json_object *ret = json_object_new_object();

    json_object_object_add(ret, "status",
                           json_object_new_string(helperStatusNames[st->helper]));
    if (helperHasKey(st))
        json_object_object_add(ret, "transport-key", json_object_new_boolean(true));
    if (st->helperError)
        json_object_object_add(ret, "error", json_object_new_string(st->helperError));
    replyReturn(st, name, id, ret);
}


static void
cmdQuerySevCapabilities(Standin *st, const char *name, json_object *id)
{
    json_object *ret = json_object_new_object();
    g_autofree char *pdh = fakeBase64("FAKE-PDH-qemu-mirror-standin ", 256);
    g_autofree char *chain = fakeBase64("FAKE-CERT-CHAIN-qemu-mirror-standin ", 1024);
    g_autofree char *cpu0 = fakeBase64("FAKE-CPU0-ID ", 64);

    json_object_object_add(ret, "pdh", json_object_new_string(pdh));
    json_object_object_add(ret, "cert-chain", json_object_new_string(chain));
    json_object_object_add(ret, "cpu0-id", json_object_new_string(cpu0));
    json_object_object_add(ret, "cbitpos", json_object_new_int(47));
    json_object_object_add(ret, "reduced-phys-bits", json_object_new_int(1));
    replyReturn(st, name, id, ret);
}


static void
cmdQuerySev(Standin *st, const char *name, json_object *id)
{
    json_object *ret;

    if (!st->sev) {
        replyError(st, name, id, "SEV feature is not available");
        return;
    }
    ret = json_object_new_object();
    json_object_object_add(ret, "enabled", json_object_new_boolean(1));
    json_object_object_add(ret, "api-major", json_object_new_int(1));
    json_object_object_add(ret, "api-minor", json_object_new_int(55));
    json_object_object_add(ret, "build-id", json_object_new_int(24));
    json_object_object_add(ret, "policy", json_object_new_int64(st->sevPolicy));
    json_object_object_add(ret, "state", json_object_new_string("running"));
    json_object_object_add(ret, "handle", json_object_new_int(1));
    json_object_object_add(ret, "sev-type", json_object_new_string(st->sevType));
    replyReturn(st, name, id, ret);
}


static void
cmdQuerySevLaunchMeasure(Standin *st, const char *name, json_object *id)
{
    json_object *ret = json_object_new_object();
    g_autofree char *data = fakeBase64("FAKE-MEASUREMENT ", 48);

    json_object_object_add(ret, "data", json_object_new_string(data));
    replyReturn(st, name, id, ret);
}


static void
cmdQueryStatus(Standin *st, const char *name, json_object *id)
{
    json_object *ret = json_object_new_object();

    json_object_object_add(ret, "status",
                           json_object_new_string(st->fakeRunning ? "running" : "prelaunch"));
    json_object_object_add(ret, "singlestep", json_object_new_boolean(0));
    json_object_object_add(ret, "running", json_object_new_boolean(st->fakeRunning));
    replyReturn(st, name, id, ret);
}


static void
cmdStartMigrateIncoming(Standin *st, const char *name, json_object *id,
                        json_object *cmd)
{
    json_object *args = NULL;
    const char *uri;
    g_autoptr(json_object) mig = NULL;
    json_object *migArgs;
    g_autofree char *line = NULL;

    json_object_object_get_ex(cmd, "arguments", &args);
    if (!(uri = jsonGetString(args, "uri"))) {
        replyError(st, name, id, "Parameter 'uri' is missing");
        return;
    }
    if (!st->target) {
        replyError(st, name, id,
                   "start-migrate-incoming: QEMU was not started as the target "
                   "of a confidential migration (" FW_CFG_TARGET ")");
        return;
    }
    if (st->incomingRequested) {
        replyError(st, name, id,
                   "start-migrate-incoming: the incoming migration has started already");
        return;
    }
    if (st->helper != HELPER_READY) {
        replyError(st, name, id,
                   "start-migrate-incoming: the migration helper is not ready (status '%s')",
                   helperStatusNames[st->helper]);
        return;
    }

    mig = json_object_new_object();
    migArgs = json_object_new_object();
    json_object_object_add(migArgs, "uri", json_object_new_string(uri));
    json_object_object_add(mig, "execute", json_object_new_string("migrate-incoming"));
    json_object_object_add(mig, "arguments", migArgs);
    if (id)
        json_object_object_add(mig, "id", json_object_get(id));
    line = jsonLine(mig);

    st->incomingRequested = true;
    forward(st, ACT_INCOMING, name, id, line, strlen(line));
}


static void
clientLine(Standin *st, const char *line, gsize len)
{
    /* commands QEMU answers, with the reply amended */
    static const struct {
        const char *name;
        PendingAction action;
    } amended[] = {
        { "query-qmp-schema", ACT_SCHEMA },
        { "query-command-line-options", ACT_CMDLINE },
        { "query-migrate", ACT_QUERY_MIGRATE },
        { "query-hotpluggable-cpus", ACT_HOTPLUGGABLE },
    };
    g_autofree char *text = g_strndup(line, len);
    g_autoptr(json_object) cmd = NULL;
    json_object *id = NULL;
    const char *name;
    size_t i;

    if (!st->qemu)
        return;

    g_strstrip(text);
    if (!*text) {
        chanWrite(st->qemu, line, len);
        return;
    }

    cmd = json_tokener_parse(text);
    if (!cmd || !json_object_is_type(cmd, json_type_object)) {
        /* QEMU answers with an error */
        forward(st, ACT_FORWARD, "(invalid)", NULL, line, len);
        return;
    }
    json_object_object_get_ex(cmd, "id", &id);

    if (!(name = jsonGetString(cmd, "execute"))) {
        forward(st, ACT_FORWARD, jsonGetString(cmd, "exec-oob"), id, line, len);
        return;
    }

    if (!st->negotiated) {
        /* QEMU refuses everything else until then */
        forward(st, g_str_equal(name, "qmp_capabilities") ? ACT_CAPS : ACT_FORWARD,
                name, id, line, len);
        return;
    }

    /* amended replies */
    for (i = 0; i < G_N_ELEMENTS(amended); i++) {
        if (g_str_equal(name, amended[i].name)) {
            forward(st, amended[i].action, name, id, line, len);
            return;
        }
    }

    /* answered by the stand-in */
    if (g_str_equal(name, "query-mirror-vcpus")) {
        standinLog("QMP %s (intercepted)", name);
        cmdQueryMirrorVcpus(st, name, id);
        return;
    }
    if (g_str_equal(name, "query-migration-helper")) {
        standinLog("QMP %s (intercepted)", name);
        cmdQueryMigrationHelper(st, name, id);
        return;
    }
    if (g_str_equal(name, "query-sev-capabilities")) {
        standinLog("QMP %s (intercepted)", name);
        cmdQuerySevCapabilities(st, name, id);
        return;
    }
    if (g_str_equal(name, "query-sev")) {
        standinLog("QMP %s (intercepted)", name);
        cmdQuerySev(st, name, id);
        return;
    }
    if (g_str_equal(name, "query-sev-launch-measure") && st->sev) {
        standinLog("QMP %s (intercepted)", name);
        cmdQuerySevLaunchMeasure(st, name, id);
        return;
    }
    if (g_str_equal(name, "start-migrate-incoming")) {
        standinLog("QMP %s (intercepted)", name);
        cmdStartMigrateIncoming(st, name, id, cmd);
        return;
    }
    if (g_str_equal(name, "migrate") && sevBlocked(st)) {
        standinLog("QMP %s (intercepted): refused, migration helper %s",
                   name, helperStatusNames[st->helper]);
        replyError(st, name, id, SEV_BLOCKER);
        return;
    }

    /* the target before start-migrate-incoming: QEMU waits in
     * '-incoming defer', the simulated VM runs OVMF's helper */
    if (st->preIncoming) {
        if (g_str_equal(name, "cont")) {
            standinLog("QMP %s (intercepted)", name);
            if (!st->fakeRunning) {
                st->fakeRunning = true;
                emitEvent(st, "RESUME", NULL);
            }
            replyReturn(st, name, id, NULL);
            helperStart(st);
            return;
        }
        if (g_str_equal(name, "stop")) {
            standinLog("QMP %s (intercepted)", name);
            if (st->fakeRunning) {
                st->fakeRunning = false;
                emitEvent(st, "STOP", NULL);
            }
            replyReturn(st, name, id, NULL);
            return;
        }
        if (g_str_equal(name, "query-status")) {
            standinLog("QMP %s (intercepted)", name);
            cmdQueryStatus(st, name, id);
            return;
        }
        if (g_str_equal(name, "migrate-incoming")) {
            standinLog("QMP %s (intercepted): refused", name);
            replyError(st, name, id,
                       "'-incoming' was not specified on the command line");
            return;
        }
    }

    if (g_str_equal(name, "cont")) {
        forward(st, ACT_CONT, name, id, line, len);
        return;
    }

    forward(st, ACT_FORWARD, name, id, line, len);
}


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

static void
listenWatchStart(Standin *st)
{
    if (st->listenFd >= 0 && !st->listenWatch && !st->terminating)
        st->listenWatch = g_unix_fd_add(st->listenFd, G_IO_IN, onListen, st);
}


static void
sessionEnd(Standin *st)
{
    Pending *p;

    chanFree(st->client);
    chanFree(st->qemu);
    st->client = NULL;
    st->qemu = NULL;
    while ((p = g_queue_pop_head(&st->pending)))
        pendingFree(p);
    st->negotiated = false;
    listenWatchStart(st);
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
        deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
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
    char **argv = (char **) st->qemuArgv->pdata;

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
    gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

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
/* mirror vCPUs                                                       */

static gpointer
mirrorVcpuThread(gpointer opaque)
{
    MirrorVcpu *vcpu = opaque;
    Standin *st = vcpu->st;
    sigset_t set;

    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    g_mutex_lock(&st->mirrorLock);
    vcpu->tid = syscall(SYS_gettid);
    g_cond_broadcast(&st->mirrorCond);
    /* the simulated mirror vCPU: runs the helper's loop for ever */
    for (;;)
        g_cond_wait(&st->mirrorCond, &st->mirrorLock);
    return NULL;
}


static void
mirrorVcpusStart(Standin *st)
{
    guint i;

    st->mirror = g_new0(MirrorVcpu, st->mirrorVcpus);
    for (i = 0; i < st->mirrorVcpus; i++) {
        g_autofree char *name = g_strdup_printf("CPU %u/MIRROR", st->guestVcpus + i);

        st->mirror[i].st = st;
        st->mirror[i].index = st->guestVcpus + i;
        g_thread_unref(g_thread_new(name, mirrorVcpuThread, &st->mirror[i]));
    }

    g_mutex_lock(&st->mirrorLock);
    for (i = 0; i < st->mirrorVcpus; i++) {
        while (st->mirror[i].tid == 0)
            g_cond_wait(&st->mirrorCond, &st->mirrorLock);
    }
    g_mutex_unlock(&st->mirrorLock);
}


/* ------------------------------------------------------------------ */
/* start-up and shutdown                                              */

static void
cleanup(Standin *st)
{
    if (st->monKind == MON_PATH && st->listenFd >= 0)
        g_unlink(st->monPath);
    if (st->pidfile)
        g_unlink(st->pidfile);
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


static bool
daemonize(GError **err)
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


static void
daemonDone(void)
{
    char nul = '\0';

    writeAll(daemonPipe, &nul, 1);
    close(daemonPipe);
    daemonPipe = -1;
}


static bool
writePidfile(const char *path, GError **err)
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


static int
listenUnix(const char *path, GError **err)
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


static bool
adoptListenFd(Standin *st, GError **err)
{
    struct stat sb;
    int flags;

    if (fstat(st->monFd, &sb) < 0 || !S_ISSOCK(sb.st_mode) ||
        (flags = fcntl(st->monFd, F_GETFD)) < 0) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_BADF,
                    "monitor fd %d is not a socket", st->monFd);
        return false;
    }
    /* the stand-in's, not QEMU's */
    if (fcntl(st->monFd, F_SETFD, flags | FD_CLOEXEC) < 0 ||
        !g_unix_set_fd_nonblocking(st->monFd, TRUE, NULL)) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "monitor fd %d: %s", st->monFd, g_strerror(errno));
        return false;
    }
    st->listenFd = st->monFd;
    return true;
}


/* start QEMU and wait for its monitor socket */
static bool
startQemu(Standin *st, GError **err)
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
    if (st->monArg == MON_ARG_QMP)
        monArg = g_strdup_printf("unix:%s,abstract=on,server=on,wait=off",
                                 st->qemuMonPath);
    else
        monArg = g_strdup_printf("socket,id=%s,path=%s,abstract=on,server=on,wait=off",
                                 st->monChardevId, st->qemuMonPath);
    g_free(g_ptr_array_index(st->qemuArgv, st->monArgIndex));
    g_ptr_array_index(st->qemuArgv, st->monArgIndex) = monArg;

    cmdline = argvToString(st->qemuArgv);
    standinLog("exec: %s", cmdline);
    g_ptr_array_add(st->qemuArgv, NULL);

    if (st->daemonize && !g_unix_open_pipe(relay, FD_CLOEXEC, err))
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


static void G_GNUC_NORETURN
startFailed(Standin *st, GError *err)
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
    cleanup(st);
    exit(st->exitCode ? st->exitCode : 1);
}


static void
describe(Standin *st)
{
    g_autoptr(GString) str = g_string_new(NULL);

    if (st->sev)
        g_string_append_printf(str, "%s guest '%s' (policy 0x%" G_GINT64_MODIFIER "x), ",
                               st->sevType, st->sevId, st->sevPolicy);
    else
        g_string_append(str, "no SEV, ");
    if (st->mirrorVcpus)
        g_string_append_printf(str, "%u guest + %u mirror vCPUs, ",
                               st->guestVcpus, st->mirrorVcpus);
    else
        g_string_append(str, "no mirror vCPUs, ");
    g_string_append(str, st->target ? "migration target" : "not a migration target");
    if (st->mirrorVcpus)
        g_string_append_printf(str, "; helper: %s after %u ms",
                               st->conf.mode == HELPER_MODE_READY ? "ready" :
                               st->conf.mode == HELPER_MODE_FAILED ? "failed" :
                               "hang", st->conf.bootMs);
    standinLog("simulating: %s", str->str);
}


int
main(int argc, char **argv)
{
    Standin *st = g_new0(Standin, 1);
    g_autoptr(GError) err = NULL;

    st->monFd = -1;
    st->listenFd = -1;
    st->relayFd = -1;
    st->spareQemuFd = -1;
    g_queue_init(&st->pending);
    g_mutex_init(&st->mirrorLock);
    g_cond_init(&st->mirrorCond);

    if (!confLoad(&st->conf, &err) || !cmdParse(st, argc, argv, &err)) {
        standinLog("%s", err->message);
        return 1;
    }

    if (st->monKind == MON_NONE) {
        /* nothing to proxy (-version, -help, ...): be QEMU */
        if (st->daemonize)
            g_ptr_array_add(st->qemuArgv, g_strdup("-daemonize"));
        if (st->pidfile) {
            g_ptr_array_add(st->qemuArgv, g_strdup("-pidfile"));
            g_ptr_array_add(st->qemuArgv, g_strdup(st->pidfile));
        }
        g_ptr_array_add(st->qemuArgv, NULL);
        execv(st->conf.qemu, (char **) st->qemuArgv->pdata);
        standinLog("cannot execute %s: %s", st->conf.qemu, g_strerror(errno));
        return 1;
    }

    /* the inherited monitor socket must not reach QEMU */
    if (st->monKind == MON_FD && !adoptListenFd(st, &err)) {
        standinLog("%s", err->message);
        return 1;
    }

    if (st->daemonize && !daemonize(&err)) {
        standinLog("%s", err->message);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    st->loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGTERM, onTermSignal, st);
    g_unix_signal_add(SIGINT, onTermSignal, st);
    g_unix_signal_add(SIGHUP, onTermSignal, st);

    describe(st);
    if (st->pidfile && !writePidfile(st->pidfile, &err))
        startFailed(st, err);
    if (!startQemu(st, &err))
        startFailed(st, err);
    if (st->mirrorVcpus)
        mirrorVcpusStart(st);
    if (st->monKind == MON_PATH) {
        if ((st->listenFd = listenUnix(st->monPath, &err)) < 0)
            startFailed(st, err);
        standinLog("monitor: listening on %s", st->monPath);
    } else {
        standinLog("monitor: listening on inherited fd %d", st->monFd);
    }

    g_child_watch_add(st->qemuPid, onQemuExit, st);
    if (st->relayFd >= 0)
        st->relayWatch = g_unix_fd_add(st->relayFd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                       onRelay, st);
    listenWatchStart(st);

    /* started without -S: the vCPUs run at once */
    if (!st->startPaused) {
        st->fakeRunning = st->preIncoming;
        helperStart(st);
    }

    if (st->daemonize)
        daemonDone();

    g_main_loop_run(st->loop);

    if (st->qemuPid > 0) {
        kill(st->qemuPid, SIGKILL);
        waitpid(st->qemuPid, NULL, 0);
    }
    cleanup(st);
    return st->exitCode;
}
