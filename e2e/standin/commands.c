/*
 * The contract's commands: what the stand-in answers, refuses, changes or
 * passes to QEMU, as ONE dispatch table {command, guard, handler}. The
 * first entry whose name matches and whose guard holds takes the command;
 * a command no entry takes goes to QEMU unchanged. An entry without a
 * handler forwards the command and amends QEMU's reply (its action; see
 * replies.c).
 */

#include <string.h>

#include "standin.h"

typedef bool (*CmdGuard)(Standin *st);
typedef void (*CmdHandler)(Standin *st, const char *name, json_object *id,
                           json_object *cmd, const char *line, gsize len);

typedef struct {
    const char *name;
    CmdGuard guard;         /* NULL: always */
    CmdHandler handler;     /* NULL: forward, amend the reply (action) */
    PendingAction action;
} Command;


/* ------------------------------------------------------------------ */
/* guards                                                             */

static bool
guardTarget(Standin *st)
{
    return lifecycleTargetFirmware(st);
}


static bool
guardSev(Standin *st)
{
    return st->cl.sev;
}


static bool
guardSevMigrateRefused(Standin *st)
{
    return sevMigrateRefusal(st) != NULL;
}


/* an SEV guest with mirror vCPUs: the migration socket libvirt passes
 * (getfd "migrate") is the stand-in's (stream.c) */
static bool
guardMirrorSev(Standin *st)
{
    return st->cl.sev && st->cl.mirrorVcpus > 0;
}


/* a confidential migration: its stream is encrypted (stream.c) */
static bool
guardConfidential(Standin *st)
{
    return st->cl.sev && st->guestAssisted;
}


static bool
guardTestMode(Standin *st)
{
    return st->conf.testMode;
}


/* ------------------------------------------------------------------ */
/* handlers                                                           */

static void
cmdQueryMirrorVcpus(Standin *st, const char *name, json_object *id,
                    json_object *cmd G_GNUC_UNUSED,
                    const char *line G_GNUC_UNUSED, gsize len G_GNUC_UNUSED)
{
    json_object *list = json_object_new_array();
    guint i;

    for (i = 0; i < st->cl.mirrorVcpus; i++) {
        json_object *vcpu = json_object_new_object();
        json_object_object_add(vcpu, "cpu-index",
                               json_object_new_int64(st->cl.guestVcpus + i));
        json_object_object_add(vcpu, "thread-id",
                               json_object_new_int64(st->mirror[i].tid));
        json_object_array_add(list, vcpu);
    }
    replyReturn(st, name, id, list);
}


static void
cmdQueryMigrationHelper(Standin *st, const char *name, json_object *id,
                        json_object *cmd G_GNUC_UNUSED,
                        const char *line G_GNUC_UNUSED, gsize len G_GNUC_UNUSED)
{
    replyReturn(st, name, id, helperInfo(st));
}


#define SIMPLE(fn, call) \
    static void \
    fn(Standin *st, const char *name, json_object *id, \
       json_object *cmd G_GNUC_UNUSED, const char *line G_GNUC_UNUSED, \
       gsize len G_GNUC_UNUSED) \
    { \
        call(st, name, id); \
    }

SIMPLE(cmdQuerySevCapabilities, sevQueryCapabilities)
SIMPLE(cmdQuerySev, sevQuery)
SIMPLE(cmdQuerySevLaunchMeasure, sevQueryLaunchMeasure)


#define FAULT(fn, call) \
    static void \
    fn(Standin *st, const char *name, json_object *id, json_object *cmd, \
       const char *line G_GNUC_UNUSED, gsize len G_GNUC_UNUSED) \
    { \
        call(st, name, id, cmd); \
    }

/* (not a fault: the same signature) */
FAULT(cmdSevInjectLaunchSecret, sevInjectLaunchSecret)
FAULT(cmdXHelperFail, faultHelperFail)
FAULT(cmdXHelperHang, faultHelperHang)
FAULT(cmdXTransportKey, faultTransportKey)
FAULT(cmdXDelayReply, faultDelayReply)
FAULT(cmdXQueryStandin, faultQueryStandin)
FAULT(cmdMigrateConfidential, streamMigrate)


static void
cmdMigrateRefused(Standin *st, const char *name, json_object *id,
                  json_object *cmd G_GNUC_UNUSED,
                  const char *line G_GNUC_UNUSED, gsize len G_GNUC_UNUSED)
{
    standinLog("QMP %s: refused, migration helper %s%s, guest-assisted %s",
               name, helperStatusNames[st->helper],
               helperHasKey(st) ? " with key" : "",
               st->guestAssisted ? "on" : "off");
    replyError(st, name, id, sevMigrateRefusal(st));
}


/* target, helper-only firmware: the VM's vCPUs run OVMF's helper */
static void
cmdTargetCont(Standin *st, const char *name, json_object *id,
              json_object *cmd G_GNUC_UNUSED,
              const char *line G_GNUC_UNUSED, gsize len G_GNUC_UNUSED)
{
    if (st->lifecycle == LC_WAITING) {
        lifecycleSet(st, LC_FIRMWARE, name);
        emitEvent(st, "RESUME", NULL);
    }
    replyReturn(st, name, id, NULL);
    sevLaunchFinish(st);
    helperFirstRun(st);
}


static void
cmdTargetStop(Standin *st, const char *name, json_object *id,
              json_object *cmd G_GNUC_UNUSED,
              const char *line G_GNUC_UNUSED, gsize len G_GNUC_UNUSED)
{
    if (st->lifecycle == LC_FIRMWARE) {
        lifecycleSet(st, LC_WAITING, name);
        emitEvent(st, "STOP", NULL);
    }
    replyReturn(st, name, id, NULL);
}


/* the helper-only firmware reboots; target mode stays */
static void
cmdTargetReset(Standin *st, const char *name, json_object *id,
               json_object *cmd G_GNUC_UNUSED,
               const char *line G_GNUC_UNUSED, gsize len G_GNUC_UNUSED)
{
    json_object *data = json_object_new_object();

    replyReturn(st, name, id, NULL);
    json_object_object_add(data, "guest", json_object_new_boolean(false));
    json_object_object_add(data, "reason", json_object_new_string("host-qmp-system-reset"));
    emitEvent(st, "RESET", data);
    helperReset(st);
}


static void
cmdTargetQueryStatus(Standin *st, const char *name, json_object *id,
                     json_object *cmd G_GNUC_UNUSED,
                     const char *line G_GNUC_UNUSED, gsize len G_GNUC_UNUSED)
{
    json_object *ret = json_object_new_object();
    bool running = st->lifecycle == LC_FIRMWARE;

    json_object_object_add(ret, "status",
                           json_object_new_string(running ? "running" : "prelaunch"));
    json_object_object_add(ret, "singlestep", json_object_new_boolean(0));
    json_object_object_add(ret, "running", json_object_new_boolean(running));
    replyReturn(st, name, id, ret);
}


static void
cmdTargetMigrateIncoming(Standin *st, const char *name, json_object *id,
                         json_object *cmd G_GNUC_UNUSED,
                         const char *line G_GNUC_UNUSED, gsize len G_GNUC_UNUSED)
{
    standinLog("QMP %s: refused", name);
    replyError(st, name, id, "'-incoming' was not specified on the command line");
}


static void
cmdStartMigrateIncoming(Standin *st, const char *name, json_object *id,
                        json_object *cmd, const char *line G_GNUC_UNUSED,
                        gsize len G_GNUC_UNUSED)
{
    static const char *const spec[] = { "uri:str", "*exit-on-error:bool", NULL };
    json_object *args = NULL;
    const char *uri;
    g_autofree char *qemuUri = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) mig = NULL;
    json_object *migArgs;
    g_autofree char *out = NULL;
    Pending *p;
    Lifecycle from = st->lifecycle;

    if (!qmpArgsCheck(st, name, id, cmd, spec))
        return;
    json_object_object_get_ex(cmd, "arguments", &args);
    uri = jsonGetString(args, "uri");
    if (!st->cl.target) {
        replyError(st, name, id,
                   "start-migrate-incoming: QEMU was not started as the target "
                   "of a confidential migration (" FW_CFG_TARGET ")");
        return;
    }
    if (st->lifecycle == LC_GUEST) {
        replyError(st, name, id,
                   "start-migrate-incoming: target mode has ended (the incoming "
                   "migration completed)");
        return;
    }
    if (!lifecycleTargetFirmware(st)) {
        replyError(st, name, id,
                   "start-migrate-incoming: the incoming migration has started already");
        return;
    }
    if (!st->guestAssisted) {
        replyError(st, name, id,
                   "start-migrate-incoming: the migration capability "
                   CAP_GUEST_ASSISTED " is not set");
        return;
    }
    if (st->helper != HELPER_READY) {
        replyError(st, name, id,
                   "start-migrate-incoming: the migration helper is not ready (status '%s')",
                   helperStatusNames[st->helper]);
        return;
    }
    /* the stand-in binds @uri and decrypts; QEMU gets a unix socket */
    if (!(qemuUri = streamIncoming(st, uri, &err))) {
        replyError(st, name, id, "%s", err->message);
        return;
    }
    uri = qemuUri;

    mig = json_object_new_object();
    migArgs = json_object_new_object();
    json_object_object_add(migArgs, "uri", json_object_new_string(uri));
    json_object_object_add(mig, "execute", json_object_new_string("migrate-incoming"));
    json_object_object_add(mig, "arguments", migArgs);
    if (id)
        json_object_object_add(mig, "id", json_object_get(id));
    out = jsonLine(mig);

    lifecycleSet(st, LC_INCOMING, name);
    p = pendingPush(st, ACT_INCOMING, name, id);
    p->value = from;
    chanWrite(st->qemu, out, strlen(out));
}


/* migrate-set-capabilities: guest-assisted is the stand-in's; the rest
 * goes to QEMU, which does not know it */
static void
cmdMigrateSetCaps(Standin *st, const char *name, json_object *id,
                  json_object *cmd, const char *line, gsize len)
{
    json_object *args = NULL;
    json_object *caps = NULL;
    g_autoptr(json_object) rest = json_object_new_array();
    g_autoptr(json_object) fwd = NULL;
    g_autofree char *out = NULL;
    int value = -1;
    size_t i;
    Pending *p;

    if (!json_object_object_get_ex(cmd, "arguments", &args) ||
        !json_object_object_get_ex(args, "capabilities", &caps) ||
        !json_object_is_type(caps, json_type_array)) {
        forward(st, ACT_FORWARD, name, id, line, len);  /* QEMU's error */
        return;
    }
    for (i = 0; i < json_object_array_length(caps); i++) {
        json_object *cap = json_object_array_get_idx(caps, i);
        const char *capName = jsonGetString(cap, "capability");
        json_object *state;

        if (capName && g_str_equal(capName, "multifd") &&
            json_object_object_get_ex(cap, "state", &state) &&
            json_object_is_type(state, json_type_boolean))
            st->multifd = json_object_get_boolean(state);
        if (capName && g_str_equal(capName, CAP_GUEST_ASSISTED) &&
            json_object_object_get_ex(cap, "state", &state) &&
            json_object_is_type(state, json_type_boolean))
            value = json_object_get_boolean(state);
        else
            json_object_array_add(rest, json_object_get(cap));
    }
    if (value < 0) {
        forward(st, ACT_FORWARD, name, id, line, len);
        return;
    }
    standinLog("QMP %s: %s=%s (intercepted)", name, CAP_GUEST_ASSISTED,
               value ? "true" : "false");
    if (value && !(st->cl.sev && st->cl.mirrorVcpus > 0)) {
        replyError(st, name, id,
                   "guest-assisted migration needs an SEV guest with mirror vCPUs");
        return;
    }
    if (json_object_array_length(rest) == 0) {
        st->guestAssisted = value;
        replyReturn(st, name, id, NULL);
        return;
    }

    /* the rest to QEMU; guest-assisted changes if QEMU accepts it */
    fwd = json_object_new_object();
    json_object_object_add(fwd, "execute", json_object_new_string(name));
    json_object_object_add(args = json_object_new_object(), "capabilities",
                           json_object_get(rest));
    json_object_object_add(fwd, "arguments", args);
    if (id)
        json_object_object_add(fwd, "id", json_object_get(id));
    out = jsonLine(fwd);
    p = pendingPush(st, ACT_SET_CAPS, name, id);
    p->value = value;
    chanWrite(st->qemu, out, strlen(out));
}


/* ------------------------------------------------------------------ */
/* the table                                                          */

static const Command commands[] = {
    /* QEMU answers, the stand-in amends the reply */
    { "query-qmp-schema", NULL, NULL, ACT_SCHEMA },
    { "query-command-line-options", NULL, NULL, ACT_CMDLINE },
    { "query-migrate", NULL, NULL, ACT_QUERY_MIGRATE },
    { "query-hotpluggable-cpus", NULL, NULL, ACT_HOTPLUGGABLE },
    { "query-migrate-capabilities", NULL, NULL, ACT_MIGRATE_CAPS },
    { "migrate-set-capabilities", NULL, cmdMigrateSetCaps, 0 },
    { "migrate-set-parameters", NULL, streamSetParameters, 0 },

    /* the contract's own */
    { "query-mirror-vcpus", NULL, cmdQueryMirrorVcpus, 0 },
    { "query-migration-helper", NULL, cmdQueryMigrationHelper, 0 },
    { "start-migrate-incoming", NULL, cmdStartMigrateIncoming, 0 },

    /* SEV */
    { "query-sev-capabilities", NULL, cmdQuerySevCapabilities, 0 },
    { "query-sev", NULL, cmdQuerySev, 0 },
    { "query-sev-launch-measure", guardSev, cmdQuerySevLaunchMeasure, 0 },
    { "sev-inject-launch-secret", NULL, cmdSevInjectLaunchSecret, 0 },
    { "migrate", guardSevMigrateRefused, cmdMigrateRefused, 0 },
    { "migrate", guardConfidential, cmdMigrateConfidential, 0 },
    { "getfd", guardMirrorSev, streamGetfd, 0 },
    { "closefd", guardMirrorSev, streamClosefd, 0 },
    { "getfd", guardSev, memcryptGetfd, 0 },
    { "closefd", guardSev, memcryptClosefd, 0 },
    { "dump-guest-memory", guardSev, memcryptDump, 0 },
    { "memsave", guardSev, memcryptMemsave, 0 },
    { "pmemsave", guardSev, memcryptMemsave, 0 },
    { "migrate", NULL, NULL, ACT_MIGRATE },

    /* a target's helper-only firmware, while QEMU waits in -incoming defer */
    { "cont", guardTarget, cmdTargetCont, 0 },
    { "stop", guardTarget, cmdTargetStop, 0 },
    { "system_reset", guardTarget, cmdTargetReset, 0 },
    { "query-status", guardTarget, cmdTargetQueryStatus, 0 },
    { "migrate-incoming", guardTarget, cmdTargetMigrateIncoming, 0 },

    /* otherwise QEMU's, with what they do to the helper */
    { "cont", NULL, NULL, ACT_CONT },
    { "system_reset", NULL, NULL, ACT_RESET },

    /* fault injection: test mode only, else QEMU's CommandNotFound */
    { "x-helper-fail", guardTestMode, cmdXHelperFail, 0 },
    { "x-helper-hang", guardTestMode, cmdXHelperHang, 0 },
    { "x-transport-key", guardTestMode, cmdXTransportKey, 0 },
    { "x-delay-reply", guardTestMode, cmdXDelayReply, 0 },
    { "x-query-standin", guardTestMode, cmdXQueryStandin, 0 },
    { "x-pmemsave", guardTestMode, memcryptPlainPmemsave, 0 },
};


/* Run @name as the first entry of the table that takes it; false if none
 * does. @control: the control socket, where only the stand-in's own
 * answers to the x- commands and query-migration-helper are allowed. */
bool
commandsRun(Standin *st, const char *name, json_object *id, json_object *cmd,
            const char *line, gsize len, bool control)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(commands); i++) {
        const Command *c = &commands[i];

        if (!g_str_equal(name, c->name) || (c->guard && !c->guard(st)))
            continue;
        if (control && (!c->handler ||
                        !(g_str_has_prefix(name, "x-") ||
                          g_str_equal(name, "query-migration-helper"))))
            return false;
        if (c->handler) {
            standinLog("QMP %s (%s)", name, control ? "control socket" : "intercepted");
            c->handler(st, name, id, cmd, line, len);
        } else {
            forward(st, c->action, name, id, line, len);
        }
        return true;
    }
    return false;
}


void
clientLine(Standin *st, const char *line, gsize len)
{
    g_autofree char *text = g_strndup(line, len);
    g_autoptr(json_object) cmd = NULL;
    json_object *id = NULL;
    const char *name;

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

    st->replyNotBefore = faultTakeDelay(st, name);
    if (!commandsRun(st, name, id, cmd, line, len, false))
        forward(st, ACT_FORWARD, name, id, line, len);
    st->replyNotBefore = 0;
}
