/*
 * The replies and events of QEMU, on their way to the client (qemuLine):
 * amended as their pending entry says, in command order; and what an
 * outgoing migration's status means when the migration helper failed
 * during it (the stand-in cancels the migration and shows it failed).
 */

#include <string.h>

#include "standin.h"


/* ------------------------------------------------------------------ */
/* a helper that fails during an outgoing migration fails it          */

#define CANCEL_ID OWN_ID_PREFIX "migrate-cancel"

/* helper.c: the helper failed (@reason). An outgoing migration cannot go
 * on without it: QEMU cancels it, and the stand-in shows the cancellation
 * as the failure it is (below: MIGRATION events and query-migrate). */
void
commandsHelperFailed(Standin *st, const char *reason)
{
    g_autofree char *out = NULL;

    if (!st->outgoing || !st->qemu)
        return;
    g_free(st->outgoingError);
    st->outgoingError = g_strdup_printf("migration helper failed: %s", reason);
    standinLog("the outgoing migration fails: its migration helper failed");
    out = g_strdup("{\"execute\": \"migrate_cancel\", \"id\": \"" CANCEL_ID "\"}\r\n");
    chanWrite(st->qemu, out, strlen(out));
}


static bool
isStatus(const char *status, const char *what)
{
    return status && g_str_equal(status, what);
}


/* a MIGRATION status of an outgoing migration (event or query-migrate) in
 * @data: the migration ends, or, if its helper failed, 'cancelling' is
 * still 'active' and 'cancelled' is 'failed' with the helper's error.
 * Returns whether @data changed. */
static bool
noteOutgoingStatus(Standin *st, json_object *data, bool query)
{
    const char *status = jsonGetString(data, "status");

    if (isStatus(status, "completed") || isStatus(status, "failed") ||
        isStatus(status, "cancelled"))
        st->outgoing = false;
    if (!st->outgoingError)
        return false;
    if (isStatus(status, "cancelling")) {
        json_object_object_add(data, "status", json_object_new_string("active"));
        return true;
    }
    if (isStatus(status, "cancelled")) {
        json_object_object_add(data, "status", json_object_new_string("failed"));
        if (query)
            json_object_object_add(data, "error-desc",
                                   json_object_new_string(st->outgoingError));
        return true;
    }
    return false;
}


/* ------------------------------------------------------------------ */
/* replies from QEMU                                                  */

/* a MIGRATION event or a query-migrate reply: the target's incoming
 * migration completed, target mode ends */
static void
noteMigrationStatus(Standin *st, const char *status)
{
    if (st->lifecycle == LC_LOADING && status && g_str_equal(status, "completed"))
        lifecycleSet(st, LC_GUEST, NULL);
}


static bool
qemuReply(Standin *st, Pending *p, json_object *msg)
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
            changed = schemaAmend(st, ret);
        break;
    case ACT_CMDLINE:
        if (ok && json_object_is_type(ret, json_type_array))
            changed = schemaAmendCmdline(st, ret);
        break;
    case ACT_QUERY_MIGRATE:
        if (ok && json_object_is_type(ret, json_type_object)) {
            noteMigrationStatus(st, jsonGetString(ret, "status"));
            changed = noteOutgoingStatus(st, ret, true);
            changed = sevAmendQueryMigrate(st, ret) || changed;
        }
        break;
    case ACT_HOTPLUGGABLE:
        if (ok && json_object_is_type(ret, json_type_array))
            changed = mirrorAmendHotpluggable(st, ret);
        break;
    case ACT_MIGRATE_CAPS:
        if (ok && json_object_is_type(ret, json_type_array))
            changed = schemaAmendMigrateCaps(st, ret);
        break;
    case ACT_SET_CAPS:
        if (ok)
            st->guestAssisted = p->value;
        break;
    case ACT_CONT:
        if (ok) {
            sevLaunchFinish(st);
            helperFirstRun(st);
        }
        break;
    case ACT_RESET:
        if (ok)
            helperReset(st);
        break;
    case ACT_INCOMING:
        if (ok) {
            lifecycleSet(st, LC_LOADING, NULL);
        } else {
            lifecycleSet(st, p->value, NULL);
            streamCancel(st);
        }
        break;
    case ACT_MIGRATE:
        if (ok) {
            st->outgoing = true;
            g_clear_pointer(&st->outgoingError, g_free);
        } else {
            streamCancel(st);
        }
        break;
    case ACT_DUMP:
        if (!ok || !st->memDumpDetach)
            memcryptDumpDone(st, ok);
        break;
    case ACT_MEMSAVE:
        if (ok)
            memcryptSaved(st, p);
        break;
    case ACT_FORWARD:
    case ACT_LOCAL:
        break;
    }
    return changed;
}


void
qemuLine(Standin *st, const char *line, gsize len)
{
    g_autofree char *text = g_strndup(line, len);
    g_autoptr(json_object) msg = json_tokener_parse(text);
    json_object *id = NULL;
    const char *event;
    bool loading;
    Pending *p;

    if (!msg || !json_object_is_type(msg, json_type_object) ||
        (!json_object_object_get_ex(msg, "return", NULL) &&
         !json_object_object_get_ex(msg, "error", NULL))) {
        /* greeting, events, anything else */
        if (msg && (event = jsonGetString(msg, "event")) &&
            g_str_equal(event, "DUMP_COMPLETED")) {
            json_object *data = json_object_object_get(msg, "data");

            /* the dump is encrypted before the client learns it is done */
            memcryptDumpDone(st, !json_object_object_get_ex(data, "error", NULL));
        } else if (msg && event && g_str_equal(event, "MIGRATION")) {
            json_object *data = json_object_object_get(msg, "data");

            noteMigrationStatus(st, jsonGetString(data, "status"));
            if (st->outgoingError && isStatus(jsonGetString(data, "status"), "cancelling"))
                return;     /* a failing migration is not cancelled */
            if (data && noteOutgoingStatus(st, data, false)) {
                g_autofree char *amended = jsonLine(msg);

                chanWrite(st->client, amended, strlen(amended));
                return;
            }
        }
        chanWrite(st->client, line, len);
        return;
    }

    json_object_object_get_ex(msg, "id", &id);
    if (id && json_object_is_type(id, json_type_string) &&
        g_str_has_prefix(json_object_get_string(id), OWN_ID_PREFIX)) {
        standinLog("QMP %s (the stand-in's): %s", json_object_get_string(id),
                   json_object_object_get_ex(msg, "return", NULL) ? "done" : "refused");
        return;
    }
    if (id && json_object_is_type(id, json_type_string) &&
        g_str_equal(json_object_get_string(id), MEMCRYPT_CLOSEFD_ID)) {
        standinLog("QMP closefd (the stand-in's): %s",
                   json_object_object_get_ex(msg, "return", NULL) ? "done" : "refused");
        return;
    }
    if (!(p = pendingFind(st, id))) {
        chanWrite(st->client, line, len);
        return;
    }
    loading = p->action == ACT_INCOMING;
    if (qemuReply(st, p, msg)) {
        standinLog("QMP %s: reply amended", p->name);
        pendingSettle(st, p, jsonLine(msg));
    } else {
        pendingSettle(st, p, g_strndup(line, len));
    }
    pendingFlush(st);

    if (loading && st->lifecycle == LC_LOADING) {
        standinLog("incoming migration started; guest vCPUs stopped");
        emitEvent(st, "STOP", NULL);
    }
}
