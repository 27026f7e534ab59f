/*
 * qemu-mirror-standin: a stand-in for a QEMU that implements the contract of
 * docs/kbase/confidential-migration.rst, for machines without AMD SEV and
 * for a QEMU without the (unmerged, RFC) mirror VM and migration helper
 * patches.
 *
 * It is used as a domain's <emulator>: libvirt runs it with an ordinary QEMU
 * command line. It rewrites that command line, runs Debian's real QEMU
 * (qemu-system-x86_64, 7.2) as its child, and sits between libvirt and QEMU
 * on the QMP monitor.
 *
 * The files, one concern each (read them in this order):
 *
 *   standin.h      this header: the shared types, and who owns what
 *   cmdline.c      the command-line rewriting: pure functions from argv to
 *                  a CmdLine, no I/O (unit tests: test-cmdline.c)
 *   conf.c         the configuration file
 *   chan.c         the QMP channel: line-buffered sockets, fds passed with
 *                  SCM_RIGHTS, the pending-reply queue (replies in command
 *                  order, delayed replies), replies, errors and events
 *   commands.c     the contract's commands: one dispatch table
 *                  {command, guard, handler}
 *   replies.c      the replies and events of QEMU: amended as their pending
 *                  entry says; an outgoing migration failed by its helper
 *   lifecycle.c    the VM's lifecycle (target mode and how it ends): one
 *                  enum, its allowed transitions in one table
 *   helper.c       the migration helper's state machine and the mirror vCPUs
 *                  (threads, hidden from query-hotpluggable-cpus); stop,
 *                  cont and reset as they affect them
 *   sev.c          QEMU's SEV commands and its SEV migration blocker
 *   psp.c          the simulated AMD secure processor: LAUNCH_START, the
 *                  measurement, LAUNCH_SECRET (psp.h: its private parts)
 *   pspkey.c       the platform's PDH key (generated or loaded)
 *   platcerts.c    the platform's certificates (PDH, PEK, OCA, CEK), as the
 *                  test lab signed them, or unsigned
 *   stream.c       the encrypted migration stream: the transport key
 *                  protects it; its set-up from QMP (stream.h: its
 *                  private parts)
 *   streamio.c     the stream on the first mirror vCPU thread: the
 *                  connections, the handshake, the records
 *   streamkey.c    contract version 3's stream key: the nonces, the KDF,
 *                  the key confirmations
 *   memcrypt.c     what the host reads of an SEV guest's memory: memsave,
 *                  pmemsave and dump-guest-memory yield ciphertext
 *   schema.c       the QAPI schema additions, read from qapi-additions.json
 *                  (the capabilities fixture has the same additions)
 *   faults.c       fault injection: the x- commands, test mode only
 *   control.c      the control socket, test mode only: x- commands while
 *                  libvirt holds the monitor
 *   process.c      process supervision: spawning QEMU, -daemonize, the
 *                  pidfile, signals, the monitor sockets and sessions
 *   main.c         main
 *
 * What it SIMULATES (none of this exists in the real QEMU it runs):
 *
 *  - SEV. The sev-guest / sev-snp-guest object, the confidential-guest-support
 *    (memory-encryption) machine property and -bios (no OVMF with a migration
 *    helper exists; QEMU's default firmware boots the guest, e.g. with
 *    -kernel) are removed from the command line: the guest runs
 *    UNENCRYPTED, and its memory is not what is measured.
 *  - The AMD secure processor (psp.c), with the real SEV formulas and
 *    formats: the platform's PDH (a P-384 key per test host, the file
 *    sev-pdh-key=) and its certificates, which the test lab signs down
 *    from an "AMD" root of its own (sev-pdh-cert=, sev-cert-chain=);
 *    LAUNCH_START from the object's dh-cert-file and
 *    session-file (ECDH, the SEV KDF, TEK and TIK unwrapped, wrap_mac and
 *    policy_mac checked; a bad session ends the launch as QEMU exits;
 *    without one, TEK and TIK are random); the launch measurement over the
 *    bytes of the -bios file or pflash unit 0 (and the kernel hashes table with
 *    kernel-hashes=on), with a fresh mnonce per launch, as
 *    virt-qemu-sev-validate computes it; sev-inject-launch-secret until
 *    the first cont (LAUNCH_FINISH), its MAC checked under the TIK over
 *    this launch's measurement, decrypted with the TEK, OVMF's secret
 *    table parsed for the transport key and key id entries.
 *    SIMULATED there: the PEK, OCA and CEK are unsigned certificates of
 *    keys derived from the PDH (no chain to AMD's ARK/ASK), cpu0-id is
 *    fixed fake bytes, SEV-ES (VMSAs) are not measured, and the measured
 *    firmware is not the one that runs.
 *    query-sev reports state "launch-secret" until the first cont, then
 *    "running". QEMU's SEV
 *    migration blocker ("SEV: Migration is not implemented") is simulated:
 *    it is in query-migrate's blocked-reasons and makes 'migrate' fail
 *    until the helper is ready AND holds a transport key; even then
 *    'migrate' fails unless the migration capability guest-assisted is on
 *    (contract version 2).
 *  - SEV memory encryption as the host sees it (memcrypt.c): memsave,
 *    pmemsave and ELF dump-guest-memory of an SEV guest yield ciphertext
 *    (AES-128 XEX per 16-byte block, tweaked by the guest address, under a
 *    random key of this process); kdump and win-dmp dumps of an SEV guest
 *    are refused. x-pmemsave (test mode) is the guest's own, plain view.
 *  - Mirror vCPUs (-smp ...,mirrorvcpus=M). The real QEMU gets only the
 *    N = T - M guest vCPUs (maxcpus keeps T). Each mirror vCPU is a real
 *    thread of this process; query-mirror-vcpus reports their thread IDs,
 *    so that libvirt pins real threads. The empty slots are hidden from
 *    query-hotpluggable-cpus. 'stop' and 'cont' do not touch them; a
 *    'system_reset' makes them re-enter the helper's entry point.
 *  - The migration helper (-fw_cfg opt/ovmf/PcdSevIsMigrationHelper, removed
 *    from the command line): query-migration-helper, the MIGRATION_HELPER
 *    event, the state machine of the contract page (helper.c). A helper
 *    that fails while an outgoing migration runs fails that migration
 *    (commands.c): the stand-in sends QEMU migrate_cancel (its reply goes
 *    to no client), and shows the cancellation as a failure, as a QEMU
 *    whose helper stops exporting pages would: the MIGRATION events
 *    'cancelling' are dropped, 'cancelled' becomes 'failed', and
 *    query-migrate says 'failed' with error-desc "migration helper
 *    failed: REASON". QEMU resumes the source's vCPUs if they were
 *    stopped.
 *  - The transport key: a helper that becomes ready at its first boot holds
 *    the transport key of the launch secret injected before the first cont
 *    (32 bytes, with the guest owner's key id: "transport-key": true,
 *    "transport-key-id"), if a valid one was injected; helperTransportKey()
 *    gives it. A reset loses it.
 *  - The migration capability guest-assisted (contract version 2): it is
 *    added to query-migrate-capabilities and to the schema, and taken out of
 *    migrate-set-capabilities before the rest goes to QEMU. Setting it true
 *    is refused without SEV and mirror vCPUs.
 *  - Target mode (-fw_cfg opt/ovmf/PcdSevIsMigrationTarget,string=1, removed
 *    from the command line; lifecycle.c). The real QEMU is started with
 *    '-incoming defer'. Until start-migrate-incoming succeeds, 'cont',
 *    'stop', 'system_reset' and 'query-status' are answered by the stand-in
 *    (the helper-only firmware "runs"), and migrate-incoming is refused.
 *    start-migrate-incoming (only with guest-assisted on) becomes QEMU's
 *    migrate-incoming. Once the incoming migration completes, target mode
 *    ends: everything goes to QEMU, and a reset boots the guest.
 *  - start-migrate-incoming's exit-on-error (migrate-incoming's argument in
 *    QEMU 9.1 and later): accepted and dropped, since QEMU 7.2 has no such
 *    argument; a failed incoming migration always ends QEMU.
 *  - The encrypted transport (stream.c). A real helper would encrypt the
 *    guest's pages itself; here QEMU still produces its ordinary migration
 *    stream of the (unencrypted) guest, and the stand-in encrypts that
 *    whole stream before it leaves the host. A confidential 'migrate'
 *    (SEV, guest-assisted on) makes QEMU migrate to a unix socket in the
 *    stand-in's private runtime directory (a fresh 0700 directory in
 *    $TMPDIR, removed at exit); the first mirror vCPU thread (the one
 *    libvirt pins) accepts it, connects to the real destination (tcp:
 *    URI), or takes the socket libvirt connected (getfd "migrate" of an
 *    SEV guest is kept by the stand-in, never reaches QEMU, and 'migrate'
 *    "fd:migrate" uses it; closefd "migrate" closes it), and sends a
 *    header (magic, channel, both helpers' nonces, key id, the source's
 *    key confirmation) and AES-256-GCM records under a key derived from
 *    the transport key and both nonces (contract version 3; the format:
 *    stream.c, the key schedule: streamkey.c). Before it, 'migrate' checks
 *    the target's key confirmation, given with migrate-set-parameters
 *    (helper-peer-nonce, helper-peer-confirmation, intercepted): without
 *    it, or if it does not verify, 'migrate' fails ("key confirmation
 *    failed") and nothing is sent. A target-mode helper holding a key
 *    reports a fresh nonce and its key confirmation in
 *    query-migration-helper, for one incoming stream. On the
 *    target, start-migrate-incoming with a tcp: URI binds that address in
 *    the stand-in (a bind failure is the command's error: "Failed to bind
 *    socket: ..."), QEMU gets migrate-incoming on a unix socket, and the
 *    first mirror vCPU thread accepts, checks the key id, the target
 *    nonce and the source's key confirmation before any record, then
 *    decrypts and authenticates every record. Records flow both ways (QEMU's own TLS,
 *    with tls-creds, runs end to end inside them). Any failure (a key
 *    confirmation that fails, a record that does not authenticate,
 *    another key id, a stream cut before its end record, a peer that goes
 *    away) closes both sockets: both QEMUs see their migration fail; the
 *    source's guest keeps running. Other
 *    URIs (unix:, other fd: names, exec:) of a confidential migration are
 *    refused; the helper must hold a key; one migration at a time. With
 *    the multifd capability (parallel channels, contract version 3), QEMU
 *    connects 1 + K times (K = multifd-channels, at most the mirror vCPU
 *    count, else 'migrate' and start-migrate-incoming are refused): each
 *    connection is a channel of its own (0: the main stream, 1..K), with
 *    its own header, source nonce, stream key and records; channel c >= 1
 *    is relayed by mirror vCPU c-1's thread, the main stream by a thread
 *    of the stand-in (it carries device state, which the real design
 *    leaves to TLS). Auto-converge is QEMU's own: it throttles the guest's
 *    vCPUs only; the mirror vCPU threads are the stand-in's and never
 *    throttled. Plain migrations are untouched.
 *    The wire carries no guest page in clear; the hosts' memory does (the
 *    guest is not encrypted, see SEV above).
 *
 * Fault injection (faults.c). Only with 'test-mode=true' in the
 * configuration; otherwise the x- commands below do not exist (QEMU answers
 * CommandNotFound, as it does for any unknown command). They are never in
 * query-qmp-schema. Malformed arguments
 * get QMP's usual GenericError ("Parameter 'X' is missing", "Invalid
 * parameter type for 'X', expected: T", "Parameter 'X' is unexpected").
 *
 *   x-helper-fail {"reason": str}
 *       The helper fails now (booting or ready -> failed), with MIGRATION_HELPER
 *       {"status": "failed", "error": reason}. Refused while inactive or
 *       already failed.
 *   x-helper-hang {}
 *       The helper's current boot never ends (a booting helper stays
 *       booting); if it is not booting, its next boot (after system_reset)
 *       hangs.
 *   x-transport-key {"present": bool, "*key": str, "*key-id": str}
 *       A ready helper loses its transport key, or takes again the one of
 *       the injected launch secret (an error if none was injected).
 *       MIGRATION_HELPER is emitted if it changes. With present true,
 *       "key" (64 hexadecimal digits: 32 bytes) and "key-id" (1..64 of
 *       [A-Za-z0-9._:-]), both or neither, replace the injected secret's
 *       transport key and key id first, as if the guest owner had injected
 *       them (tests of the stream: two keys without two launches). The key
 *       is never logged.
 *   x-delay-reply {"command": str, "ms": int}
 *       The reply to the next @command comes @ms (0..60000) later; the
 *       replies to later commands wait behind it, events do not.
 *   x-query-standin {}
 *       {"lifecycle": waiting|firmware|incoming|loading|guest,
 *        "guest-assisted": bool, "helper": status, "transport-key": bool}
 *
 * The control socket (test mode, 'control-dir=DIR' in the configuration):
 * DIR/standin-PID.qmp, a second QMP socket of the stand-in (PID is the
 * stand-in's), for a test to inject faults while libvirt holds the monitor
 * (libvirt hides an incoming domain until it is running, so a test cannot
 * reach the target's monitor through it). It takes qmp_capabilities, the
 * x- commands and query-migration-helper, answers at once and sends no
 * events; everything else is refused (CommandNotFound). Events caused
 * there go to the monitor client, as always.
 *
 * What it PASSES THROUGH unchanged: every other argument, every other QMP
 * command and reply, and all of QEMU's events. A guest without SEV and
 * without mirror vCPUs sees the real QEMU with only the monitor argument
 * replaced (and query-sev answered with an error, as by a QEMU without SEV).
 *
 * Process model (process.c): the monitor is an inherited listening socket
 * (-chardev socket,fd=N,server=on referred to by -mon mode=control), a path
 * (-chardev socket,path=... or -qmp unix:...); the stand-in accepts on it,
 * one client at a time, and the real QEMU gets a private monitor socket in
 * the abstract namespace. -daemonize and -pidfile are the stand-in's. QEMU
 * dies with the stand-in (PR_SET_PDEATHSIG); the stand-in exits with QEMU's
 * status; SIGTERM, SIGINT, SIGHUP go to QEMU (SIGKILL after 5 s). Inherited
 * fds stay open for QEMU; fds passed on the monitor go to QEMU with the
 * command that came with them. Without a monitor (-version), the stand-in
 * executes the real QEMU. Log lines on stderr, prefixed
 * "qemu-mirror-standin: ": the rewritten command line, the NAME of each
 * command the stand-in answers or changes (never arguments, but for the
 * guest-assisted state), state changes (helper, lifecycle).
 *
 * Configuration (conf.c): a key file, STANDIN_CONF (compiled in), or the file
 * named by $QEMU_MIRROR_STANDIN_CONF. A missing file means the defaults:
 *
 *   [standin]
 *   qemu=/usr/bin/qemu-system-x86_64
 *   # ms from the start of a helper boot until it ends
 *   helper-boot-ms=200
 *   # how the helper's boots end: ready | failed | hang
 *   helper=ready
 *   # the platform's PDH: a P-384 private key (PEM), generated (0600) if
 *   # missing; unset: a key for this process only
 *   sev-pdh-key=
 *   # its certificates as the test lab signed them, base64 files: the
 *   # PDH's and the cert-chain (PEK, OCA, CEK); unset: unsigned
 *   sev-pdh-cert=
 *   sev-cert-chain=
 *   # the SEV firmware's version (query-sev, the measurement)
 *   sev-api-major=1
 *   sev-api-minor=55
 *   sev-build-id=24
 *   # whether the x- commands exist
 *   test-mode=false
 *   # test mode: where the control socket goes (none if unset)
 *   control-dir=
 *
 * The schema additions: qapi-additions.json (STANDIN_SCHEMA, compiled in),
 * read at start-up (schema.c).
 *
 * JSON: json-c, as libvirt: it keeps integers above INT64_MAX and the text of
 * floating point numbers in a rewritten reply.
 */

#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <glib.h>
#include <json.h>
#include <nettle/aes.h>

/* SEV's little-endian 32-bit fields (psp.c, platcerts.c) */
static inline void
putLe32(guint8 *p, guint32 v)
{
    p[0] = v;
    p[1] = v >> 8;
    p[2] = v >> 16;
    p[3] = v >> 24;
}

static inline guint32
getLe32(const guint8 *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (guint32) p[3] << 24;
}

#define PREFIX "qemu-mirror-standin: "
#define STANDIN_MAX_FDS 16
#define SEV_BLOCKER "SEV: Migration is not implemented"
#define SEV_NEEDS_GUEST_ASSISTED \
    "SEV: migration of an SEV guest needs the migration capability guest-assisted"
#define FW_CFG_HELPER "opt/ovmf/PcdSevIsMigrationHelper"
#define FW_CFG_TARGET "opt/ovmf/PcdSevIsMigrationTarget"
#define CAP_GUEST_ASSISTED "guest-assisted"
/* the ids of the stand-in's own commands to QEMU: their replies go to no
 * client */
#define OWN_ID_PREFIX "qemu-mirror-standin-"
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

/* ---- conf.c ---- */

typedef enum {
    HELPER_MODE_READY = 0,
    HELPER_MODE_FAILED,
    HELPER_MODE_HANG,
} HelperMode;

typedef struct {
    char *qemu;
    guint bootMs;
    HelperMode mode;
    bool testMode;
    char *controlDir;
    char *sevPdhKey;            /* the platform's PDH key (PEM), or NULL */
    char *sevPdhCert;           /* its certificates, signed (base64 files), */
    char *sevCertChain;         /* or NULL: unsigned (platcerts.c) */
    guint sevApiMajor, sevApiMinor, sevBuildId;
} StandinConf;

bool confLoad(StandinConf *conf, GError **err);
const char *confModeName(HelperMode mode);

/* ---- cmdline.c: pure ---- */

typedef enum {
    MON_NONE = 0,
    MON_PATH,           /* the stand-in creates and listens on monPath */
    MON_FD,             /* an inherited, listening socket */
} MonKind;

typedef enum {
    MON_ARG_QMP,        /* -qmp unix:... */
    MON_ARG_CHARDEV,    /* -chardev socket,id=... */
} MonArg;

typedef struct {
    GPtrArray *qemuArgv;        /* rewritten, without NULL terminator */
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
    char *sevType;              /* "sev" or "sev-snp" */
    gint64 sevPolicy;
    char *sevDhCertFile;        /* the sev-guest object's, for LAUNCH_START */
    char *sevSessionFile;
    bool sevKernelHashes;
    char *sevFirmware;          /* -bios, or pflash unit 0: what
                                 * LAUNCH_UPDATE_DATA measures */
    char *kernel;               /* -kernel, -initrd, -append: the kernel */
    char *initrd;               /* hashes table (kernel-hashes=on) */
    char *append;
    guint mirrorVcpus;
    guint guestVcpus;
    bool topoKnown;
    guint sockets, dies, clusters, cores, threads;
    bool target;
    bool startPaused;
} CmdLine;

bool cmdlineParse(CmdLine *cl, const char *qemu, int argc, char **argv,
                  GError **err);
void cmdlineClear(CmdLine *cl);
char *cmdlineToString(GPtrArray *argv);
char *cmdlineRewriteSmp(CmdLine *cl, const char *val, GError **err);
char *cmdlineRewriteMachine(const CmdLine *cl, const char *val);

/* ---- psp.c ---- */

#define PSP_TRANSPORT_KEY_LEN 32
/* streamkey.c: contract version 3's nonces and derived keys */
#define STREAM_NONCE_LEN 32
#define STREAM_KEY_LEN 32
#define PSP_KEY_ID_MAX 64

/* this launch, as the secure processor knows it */
typedef struct {
    bool started;               /* LAUNCH_START and LAUNCH_MEASURE done */
    bool owned;                 /* TEK and TIK from the guest owner's session */
    bool finished;              /* LAUNCH_FINISH: the first cont */
    guint8 tek[16];
    guint8 tik[16];
    guint32 policy;
    guint8 measurement[32];
    guint8 mnonce[16];
} PspLaunch;

/* what the guest (the helper) finds in an injected secret table */
typedef struct {
    bool valid;                 /* a transport key and a key id */
    guint8 key[PSP_TRANSPORT_KEY_LEN];
    char *keyId;
} PspSecret;

/* ---- lifecycle.c ---- */

typedef enum {
    LC_WAITING = 0,     /* target: the VM's vCPUs have not run */
    LC_FIRMWARE,        /* target: the helper-only firmware runs */
    LC_INCOMING,        /* target: migrate-incoming sent to QEMU */
    LC_LOADING,         /* target: QEMU receives the guest */
    LC_GUEST,           /* no (more) target mode: everything is QEMU's */
    LC_LAST
} Lifecycle;

/* ---- helper.c ---- */

typedef enum {
    HELPER_INACTIVE = 0,
    HELPER_BOOTING,
    HELPER_READY,
    HELPER_FAILED,
} HelperStatus;

/* ---- chan.c ---- */

typedef enum {
    ACT_FORWARD = 0,    /* QEMU's reply goes to the client unchanged */
    ACT_LOCAL,          /* answered: @reply, sent once at the head */
    ACT_CAPS,           /* qmp_capabilities */
    ACT_SCHEMA,         /* query-qmp-schema */
    ACT_CMDLINE,        /* query-command-line-options */
    ACT_QUERY_MIGRATE,  /* query-migrate */
    ACT_HOTPLUGGABLE,   /* query-hotpluggable-cpus */
    ACT_MIGRATE_CAPS,   /* query-migrate-capabilities */
    ACT_SET_CAPS,       /* migrate-set-capabilities; @value: guest-assisted */
    ACT_CONT,           /* cont (the vCPUs may run for the first time) */
    ACT_RESET,          /* system_reset */
    ACT_INCOMING,       /* migrate-incoming sent for start-migrate-incoming */
    ACT_MIGRATE,        /* migrate (outgoing): it runs once QEMU accepts it */
    ACT_DUMP,           /* dump-guest-memory of an SEV guest (memcrypt.c) */
    ACT_MEMSAVE,        /* memsave, pmemsave of an SEV guest (memcrypt.c) */
} PendingAction;

typedef struct {
    PendingAction action;
    char *name;         /* the command's name, for the log */
    json_object *id;    /* the command's id, or NULL */
    char *reply;        /* ACT_LOCAL: the complete reply line */
    int value;          /* ACT_SET_CAPS: -1 unchanged, 0/1; ACT_INCOMING:
                         * the lifecycle to return to on failure */
    gint64 notBefore;   /* monotonic us: not sent before (x-delay-reply) */
    char *path;         /* ACT_MEMSAVE: the file QEMU writes */
    guint64 addr;       /* ACT_MEMSAVE: the address it starts at */
} Pending;

typedef struct _Standin Standin;
typedef struct _Chan Chan;
typedef struct _Stream Stream;
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
    Stream *channelJob;         /* a parallel channel handed to this vCPU
                                 * (streamio.c), under mirrorLock */
} MirrorVcpu;

struct _Standin {
    StandinConf conf;
    CmdLine cl;
    json_object *schema;        /* qapi-additions.json */

    /* process.c */
    GMainLoop *loop;
    char *qemuMonPath;
    pid_t qemuPid;
    int exitCode;
    bool terminating;
    guint killTimer;
    int relayFd;                /* QEMU's stderr, daemon mode */
    guint relayWatch;
    int listenFd;
    guint listenWatch;
    int spareQemuFd;            /* monitor connection made at start-up */

    /* process.c: the control socket (test mode) */
    int controlFd;
    guint controlWatch;
    char *controlPath;
    Chan *control;

    /* chan.c */
    Chan *replyTo;              /* answer here, not to the client */
    Chan *client;
    Chan *qemu;
    GQueue pending;
    guint pendingTimer;
    gint64 replyNotBefore;      /* for the command being dispatched */
    bool negotiated;

    /* helper.c */
    GMutex mirrorLock;
    GCond mirrorCond;
    MirrorVcpu *mirror;
    HelperStatus helper;
    char *helperError;
    bool helperKey;
    bool helperBootedOnce;
    bool helperHang;            /* x-helper-hang: the boot never ends */
    guint helperTimer;

    /* lifecycle.c */
    Lifecycle lifecycle;

    /* stream.c: the encrypted migration stream; streamJob is handed to
     * the first mirror vCPU thread under mirrorLock */
    Stream *stream;
    Stream *streamJob;
    char *streamRunDir;
    int streamMigrateFd;        /* getfd "migrate" of an SEV guest */

    /* memcrypt.c: what the host reads of an SEV guest's memory */
    struct aes128_ctx memKey;   /* this launch's simulated memory key */
    bool memKeyValid;
    GHashTable *memFds;         /* getfd name -> a duplicate of its fd */
    int memDumpFd;              /* the client's fd for the dump, or -1 */
    char *memDumpPath;          /* the file QEMU dumps into */
    bool memDumpPrivate;        /* memDumpPath is the stand-in's own */
    bool memDumpDetach;

    /* psp.c, sev.c: the launch, and the secret injected before LAUNCH_FINISH */
    PspLaunch psp;
    PspSecret injected;

    /* helper.c: the transport key the helper holds (helperKey), from the
     * injected secret */
    guint8 helperKeyBytes[PSP_TRANSPORT_KEY_LEN];
    char *helperKeyId;
    /* contract version 3 (streamkey.c): a target-mode helper's nonce, made
     * with its key and used by one incoming stream; a source's peer (the
     * target's nonce and proof, from migrate-set-parameters), used by the
     * next 'migrate' */
    guint8 helperNonce[STREAM_NONCE_LEN];
    bool helperNonceSet;
    guint8 peerNonce[STREAM_NONCE_LEN];
    guint8 peerProof[STREAM_KEY_LEN];
    bool peerSet;

    /* commands.c */
    bool guestAssisted;
    /* the migration capability multifd and the parameter
     * multifd-channels (0: QEMU's default, 2), as last set: a confidential
     * migration's parallel channels, one per mirror vCPU (streamio.c) */
    bool multifd;
    int multifdChannels;
    bool tlsHostname;           /* tls-hostname set, not empty */
    bool outgoing;              /* an outgoing migration runs */
    char *outgoingError;        /* the helper failed it: QEMU's error */

    /* faults.c: x-delay-reply */
    char *delayCommand;
    guint delayMs;
};

/* ---- main.c ---- */
void standinLog(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void writeAll(int fd, const char *buf, size_t len);
extern int daemonPipe;

/* ---- chan.c ---- */
Chan *chanNew(Standin *st, const char *name, int fd, ChanLineFunc lineFunc);
void chanFree(Chan *chan);
bool chanFlushNow(Chan *chan);
void chanWrite(Chan *chan, const char *data, gsize len);
void chanProcessLines(Chan *chan);
Pending *pendingPush(Standin *st, PendingAction action, const char *name,
                     json_object *id);
Pending *pendingFind(Standin *st, json_object *id);
void pendingSettle(Standin *st, Pending *p, char *line);
void pendingFree(Pending *p);
void pendingFlush(Standin *st);
Pending *forward(Standin *st, PendingAction action, const char *name,
                 json_object *id, const char *line, gsize len);
void replyReturn(Standin *st, const char *name, json_object *id,
                 json_object *ret);
void replyError(Standin *st, const char *name, json_object *id,
                const char *fmt, ...) G_GNUC_PRINTF(4, 5);
void emitEvent(Standin *st, const char *name, json_object *data);
char *jsonLine(json_object *obj);
bool qmpArgsCheck(Standin *st, const char *name, json_object *id,
                  json_object *cmd, const char *const *spec);
const char *jsonGetString(json_object *obj, const char *key);

/* ---- commands.c ---- */
void clientLine(Standin *st, const char *line, gsize len);
bool commandsRun(Standin *st, const char *name, json_object *id,
                 json_object *cmd, const char *line, gsize len, bool control);

/* ---- replies.c ---- */
void commandsHelperFailed(Standin *st, const char *reason);
void qemuLine(Standin *st, const char *line, gsize len);

/* ---- control.c ---- */
void controlLine(Standin *st, const char *line, gsize len);
bool processControlListen(Standin *st, GError **err);
void controlEnd(Standin *st);

/* ---- lifecycle.c ---- */
const char *lifecycleName(Lifecycle lc);
bool lifecycleSet(Standin *st, Lifecycle to, const char *why);
bool lifecycleTargetFirmware(Standin *st);

/* ---- helper.c ---- */
extern const char *helperStatusNames[];
void helperFirstRun(Standin *st);
void helperReset(Standin *st);
bool helperFail(Standin *st, const char *reason);
void helperHang(Standin *st);
bool helperSetKey(Standin *st, bool present, const char **why);
bool helperHasKey(Standin *st);
const guint8 *helperTransportKey(Standin *st, const char **keyId);
json_object *helperInfo(Standin *st);
void helperSetInjectedKey(Standin *st, const guint8 *key, const char *keyId);
void mirrorVcpusStart(Standin *st);
bool mirrorAmendHotpluggable(Standin *st, json_object *cpus);

/* ---- sev.c ---- */
bool sevBlocked(Standin *st);
const char *sevMigrateRefusal(Standin *st);
bool sevAmendQueryMigrate(Standin *st, json_object *info);
void sevQueryCapabilities(Standin *st, const char *name, json_object *id);
void sevQuery(Standin *st, const char *name, json_object *id);
void sevQueryLaunchMeasure(Standin *st, const char *name, json_object *id);
void sevInjectLaunchSecret(Standin *st, const char *name, json_object *id,
                           json_object *cmd);
void sevLaunchFinish(Standin *st);

/* ---- psp.c ---- */
bool pspPlatformKey(const StandinConf *conf, guint8 *qx, guint8 *qy,
                    GError **err);
bool pspLaunchStart(Standin *st, GError **err);
char *pspLaunchMeasure(Standin *st);
bool pspLaunchSecret(Standin *st, const guint8 *hdr, size_t hdrLen,
                     const guint8 *data, size_t len, PspSecret *out,
                     GError **err);
void pspSecretClear(PspSecret *s);

/* ---- platcerts.c ---- */
bool pspPlatformCerts(const StandinConf *conf, char **pdh, char **chain,
                      GError **err);

/* ---- stream.c ---- */
void streamMigrate(Standin *st, const char *name, json_object *id,
                   json_object *cmd);
char *streamIncoming(Standin *st, const char *uri, GError **err);
void streamGetfd(Standin *st, const char *name, json_object *id,
                 json_object *cmd, const char *line, gsize len);
void streamClosefd(Standin *st, const char *name, json_object *id,
                   json_object *cmd, const char *line, gsize len);
void streamCancel(Standin *st);
bool streamVcpuWork(Standin *st, MirrorVcpu *vcpu);
void streamCleanup(Standin *st);

/* ---- memcrypt.c ---- */
#define MEMCRYPT_CLOSEFD_ID "qemu-mirror-standin-closefd"
void memcryptGetfd(Standin *st, const char *name, json_object *id,
                   json_object *cmd, const char *line, gsize len);
void memcryptClosefd(Standin *st, const char *name, json_object *id,
                     json_object *cmd, const char *line, gsize len);
void memcryptDump(Standin *st, const char *name, json_object *id,
                  json_object *cmd, const char *line, gsize len);
void memcryptDumpDone(Standin *st, bool ok);
void memcryptMemsave(Standin *st, const char *name, json_object *id,
                     json_object *cmd, const char *line, gsize len);
void memcryptSaved(Standin *st, Pending *p);
void memcryptPlainPmemsave(Standin *st, const char *name, json_object *id,
                           json_object *cmd, const char *line, gsize len);
void streamSetParameters(Standin *st, const char *name, json_object *id,
                         json_object *cmd, const char *line, gsize len);

/* ---- streamkey.c ---- */
bool streamKeyDerive(const guint8 *transportKey,
                     const guint8 sourceNonce[STREAM_NONCE_LEN],
                     const guint8 targetNonce[STREAM_NONCE_LEN],
                     guint32 channel, guint8 out[STREAM_KEY_LEN]);
bool streamKeyTargetProof(const guint8 *transportKey, const char *keyId,
                          const guint8 targetNonce[STREAM_NONCE_LEN],
                          guint8 out[STREAM_KEY_LEN]);
bool streamKeySourceProof(const guint8 streamKey[STREAM_KEY_LEN],
                          const guint8 *header, size_t headerLen,
                          guint8 out[STREAM_KEY_LEN]);
bool streamKeyEqual(const guint8 *a, const guint8 *b, size_t len);
char *streamKeyHex(const guint8 *buf, size_t len);
bool streamKeyUnhex(const char *hex, guint8 *out, size_t len);

/* ---- schema.c ---- */
json_object *schemaLoad(const char *path, GError **err);
bool schemaAmend(Standin *st, json_object *schema);
bool schemaAmendCmdline(Standin *st, json_object *options);
bool schemaAmendMigrateCaps(Standin *st, json_object *caps);
bool schemaHasCapability(Standin *st, const char *name);

/* ---- faults.c ---- */
void faultHelperFail(Standin *st, const char *name, json_object *id,
                     json_object *cmd);
void faultHelperHang(Standin *st, const char *name, json_object *id,
                     json_object *cmd);
void faultTransportKey(Standin *st, const char *name, json_object *id,
                       json_object *cmd);
void faultDelayReply(Standin *st, const char *name, json_object *id,
                     json_object *cmd);
void faultQueryStandin(Standin *st, const char *name, json_object *id,
                       json_object *cmd);
gint64 faultTakeDelay(Standin *st, const char *name);

/* ---- process.c ---- */
bool processStartQemu(Standin *st, GError **err);
void processListen(Standin *st);
void sessionEnd(Standin *st);
bool processDaemonize(GError **err);
void processDaemonDone(void);
bool processWritePidfile(const char *path, GError **err);
int processListenUnix(const char *path, GError **err);
bool processAdoptListenFd(Standin *st, GError **err);
G_GNUC_NORETURN void processStartFailed(Standin *st, GError *err);
void processCleanup(Standin *st);
void processWatch(Standin *st);
void processSignals(Standin *st);
