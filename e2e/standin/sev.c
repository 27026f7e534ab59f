/*
 * SEV as QEMU shows it: query-sev-capabilities, query-sev,
 * query-sev-launch-measure and sev-inject-launch-secret, answered with the
 * simulated secure processor of psp.c (only cpu0-id is fixed, fake bytes);
 * and QEMU's SEV migration blocker.
 */

#include <string.h>

#include "standin.h"


/* QEMU's blocker "SEV: Migration is not implemented" (query-migrate's
 * blocked-reasons) stays, for an SEV guest, until the helper is ready and
 * holds a transport key (contract version 2) */
bool
sevBlocked(Standin *st)
{
    return st->cl.sev && !helperHasKey(st);
}


/* 'migrate' of an SEV guest: refused while the blocker stands, and, like
 * any migrate whose capabilities do not fit, without the migration
 * capability guest-assisted (contract version 2) */
const char *
sevMigrateRefusal(Standin *st)
{
    if (sevBlocked(st))
        return SEV_BLOCKER;
    if (st->cl.sev && !st->guestAssisted)
        return SEV_NEEDS_GUEST_ASSISTED;
    return NULL;
}


bool
sevAmendQueryMigrate(Standin *st, json_object *info)
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


/* the platform's certificates (psp.c), in capability probes too: what
 * virsh nodesevinfo shows */
void
sevQueryCapabilities(Standin *st, const char *name, json_object *id)
{
    json_object *ret;
    g_autofree char *pdh = NULL;
    g_autofree char *chain = NULL;
    g_autofree char *cpu0 = fakeBase64("FAKE-CPU0-ID ", 64);
    g_autoptr(GError) err = NULL;

    if (!pspPlatformCerts(&st->conf, &pdh, &chain, &err)) {
        standinLog("SEV: %s", err->message);
        replyError(st, name, id, "SEV: %s", err->message);
        return;
    }
    ret = json_object_new_object();
    json_object_object_add(ret, "pdh", json_object_new_string(pdh));
    json_object_object_add(ret, "cert-chain", json_object_new_string(chain));
    json_object_object_add(ret, "cpu0-id", json_object_new_string(cpu0));
    json_object_object_add(ret, "cbitpos", json_object_new_int(47));
    json_object_object_add(ret, "reduced-phys-bits", json_object_new_int(1));
    replyReturn(st, name, id, ret);
}


void
sevQuery(Standin *st, const char *name, json_object *id)
{
    json_object *ret;

    if (!st->cl.sev) {
        replyError(st, name, id, "SEV feature is not available");
        return;
    }
    ret = json_object_new_object();
    json_object_object_add(ret, "enabled", json_object_new_boolean(1));
    json_object_object_add(ret, "api-major", json_object_new_int(st->conf.sevApiMajor));
    json_object_object_add(ret, "api-minor", json_object_new_int(st->conf.sevApiMinor));
    json_object_object_add(ret, "build-id", json_object_new_int(st->conf.sevBuildId));
    json_object_object_add(ret, "policy", json_object_new_int64(st->cl.sevPolicy));
    json_object_object_add(ret, "state",
                           json_object_new_string(st->psp.finished ? "running" : "launch-secret"));
    json_object_object_add(ret, "handle", json_object_new_int(1));
    json_object_object_add(ret, "sev-type", json_object_new_string(st->cl.sevType));
    replyReturn(st, name, id, ret);
}


/* this launch's measurement || mnonce (psp.c) */
void
sevQueryLaunchMeasure(Standin *st, const char *name, json_object *id)
{
    json_object *ret = json_object_new_object();
    g_autofree char *data = pspLaunchMeasure(st);

    json_object_object_add(ret, "data", json_object_new_string(data));
    replyReturn(st, name, id, ret);
}


/* sev-inject-launch-secret, as QEMU's (its arguments, its errors), with
 * LAUNCH_SECRET done by psp.c. Only between LAUNCH_MEASURE and
 * LAUNCH_FINISH, i.e. before the first cont. */
void
sevInjectLaunchSecret(Standin *st, const char *name, json_object *id,
                      json_object *cmd)
{
    static const char *const spec[] = {
        "packet-header:str", "secret:str", "*gpa:int", NULL
    };
    json_object *args = NULL;
    g_autofree guint8 *hdr = NULL;
    g_autofree guint8 *data = NULL;
    gsize hdrLen = 0, len = 0;
    g_autoptr(GError) err = NULL;

    if (!qmpArgsCheck(st, name, id, cmd, spec))
        return;
    json_object_object_get_ex(cmd, "arguments", &args);
    if (!st->cl.sev) {
        replyError(st, name, id, "SEV not enabled for guest");
        return;
    }
    if (st->psp.finished || !st->psp.started) {
        standinLog("QMP %s: refused, the launch has finished", name);
        replyError(st, name, id, "SEV: Not in correct state");
        return;
    }
    hdr = g_base64_decode(jsonGetString(args, "packet-header"), &hdrLen);
    if (!hdr || !hdrLen) {
        replyError(st, name, id, "SEV: Failed to decode sequence header");
        return;
    }
    data = g_base64_decode(jsonGetString(args, "secret"), &len);
    if (!data || !len) {
        replyError(st, name, id, "SEV: Failed to decode data");
        return;
    }
    if (!pspLaunchSecret(st, hdr, hdrLen, data, len, &st->injected, &err)) {
        memset(data, 0, len);
        standinLog("QMP %s: %s", name, err->message);
        replyError(st, name, id, "%s", err->message);
        return;
    }
    memset(data, 0, len);
    if (st->injected.valid)
        standinLog("SEV: launch secret injected: a transport key, key id '%s'",
                   st->injected.keyId);
    replyReturn(st, name, id, NULL);
}


/* the VM's vCPUs run for the first time: LAUNCH_FINISH */
void
sevLaunchFinish(Standin *st)
{
    if (!st->cl.sev || st->psp.finished)
        return;
    st->psp.finished = true;
    standinLog("SEV: LAUNCH_FINISH%s", st->injected.valid ? " (with a transport key)" : "");
}
