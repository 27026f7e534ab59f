/*
 * Fault injection: the x- commands (documented in standin.h). They exist
 * only with test-mode=true in the configuration: the dispatch table guards
 * them, so that otherwise QEMU answers them as it answers any unknown
 * command. Their arguments are checked as QEMU checks arguments, with its
 * GenericError messages (qmpArgsCheck).
 */

#include <string.h>

#include "standin.h"

#define DELAY_MAX_MS 60000


static json_object *
argOf(json_object *cmd, const char *key)
{
    json_object *args = NULL;
    json_object *val = NULL;

    if (json_object_object_get_ex(cmd, "arguments", &args))
        json_object_object_get_ex(args, key, &val);
    return val;
}


void
faultHelperFail(Standin *st, const char *name, json_object *id,
                json_object *cmd)
{
    static const char *const spec[] = { "reason:str", NULL };
    const char *reason;

    if (!qmpArgsCheck(st, name, id, cmd, spec))
        return;
    reason = json_object_get_string(argOf(cmd, "reason"));
    if (!helperFail(st, reason)) {
        replyError(st, name, id, "%s: the migration helper is %s", name,
                   helperStatusNames[st->helper]);
        return;
    }
    replyReturn(st, name, id, NULL);
}


void
faultHelperHang(Standin *st, const char *name, json_object *id,
                json_object *cmd)
{
    static const char *const spec[] = { NULL };

    if (!qmpArgsCheck(st, name, id, cmd, spec))
        return;
    helperHang(st);
    replyReturn(st, name, id, NULL);
}


/* x-transport-key's key: 64 hexadecimal digits */
static bool
parseKeyHex(const char *hex, guint8 *key)
{
    size_t i;

    if (strlen(hex) != 2 * PSP_TRANSPORT_KEY_LEN)
        return false;
    for (i = 0; i < PSP_TRANSPORT_KEY_LEN; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return false;
        key[i] = hi << 4 | lo;
    }
    return true;
}


/* a key identifier: 1..64 of [A-Za-z0-9._:-] */
static bool
keyIdValid(const char *id)
{
    size_t len = strlen(id);

    return len >= 1 && len <= PSP_KEY_ID_MAX &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789._:-") == len;
}


/* x-transport-key {"present": bool, "*key": str, "*key-id": str}: the key
 * is dropped, or the injected one taken again; with present true, key (64
 * hex digits) and key-id (both or neither) first replace the injected
 * secret's transport key and key id (helperSetInjectedKey), for tests of
 * the stream. The key is checked before anything changes, wiped from the
 * stack, and never logged. */
void
faultTransportKey(Standin *st, const char *name, json_object *id,
                  json_object *cmd)
{
    static const char *const spec[] = {
        "present:bool", "*key:str", "*key-id:str", NULL
    };
    json_object *keyArg;
    json_object *keyIdArg;
    const char *keyId = NULL;
    const char *why = NULL;
    guint8 key[PSP_TRANSPORT_KEY_LEN];
    bool present;

    if (!qmpArgsCheck(st, name, id, cmd, spec))
        return;
    present = json_object_get_boolean(argOf(cmd, "present"));
    keyArg = argOf(cmd, "key");
    keyIdArg = argOf(cmd, "key-id");
    if ((keyArg || keyIdArg) && !(keyArg && keyIdArg && present)) {
        replyError(st, name, id, "%s: 'key' and 'key-id' go together, with 'present': true",
                   name);
        return;
    }
    if (keyArg && !parseKeyHex(json_object_get_string(keyArg), key)) {
        replyError(st, name, id, "Parameter 'key' expects 64 hexadecimal digits");
        return;
    }
    if (keyIdArg && !keyIdValid(keyId = json_object_get_string(keyIdArg))) {
        replyError(st, name, id,
                   "Parameter 'key-id' expects 1 to 64 characters of [A-Za-z0-9._:-]");
        return;
    }
    if (keyArg && st->helper == HELPER_READY)
        helperSetInjectedKey(st, key, keyId);
    memset(key, 0, sizeof(key));
    if (!helperSetKey(st, present, &why)) {
        if (st->helper != HELPER_READY)
            replyError(st, name, id, "%s: the migration helper is %s, not ready",
                       name, helperStatusNames[st->helper]);
        else
            replyError(st, name, id, "%s: %s", name, why);
        return;
    }
    replyReturn(st, name, id, NULL);
}


void
faultDelayReply(Standin *st, const char *name, json_object *id,
                json_object *cmd)
{
    static const char *const spec[] = { "command:str", "ms:int", NULL };
    gint64 ms;

    if (!qmpArgsCheck(st, name, id, cmd, spec))
        return;
    ms = json_object_get_int64(argOf(cmd, "ms"));
    if (ms < 0 || ms > DELAY_MAX_MS) {
        replyError(st, name, id, "Parameter 'ms' expects a value from 0 to %d",
                   DELAY_MAX_MS);
        return;
    }
    g_free(st->delayCommand);
    st->delayCommand = g_strdup(json_object_get_string(argOf(cmd, "command")));
    st->delayMs = ms;
    replyReturn(st, name, id, NULL);
}


void
faultQueryStandin(Standin *st, const char *name, json_object *id,
                  json_object *cmd)
{
    static const char *const spec[] = { NULL };
    json_object *ret;

    if (!qmpArgsCheck(st, name, id, cmd, spec))
        return;
    ret = json_object_new_object();
    json_object_object_add(ret, "lifecycle",
                           json_object_new_string(lifecycleName(st->lifecycle)));
    json_object_object_add(ret, "guest-assisted",
                           json_object_new_boolean(st->guestAssisted));
    json_object_object_add(ret, "helper",
                           json_object_new_string(helperStatusNames[st->helper]));
    json_object_object_add(ret, "transport-key",
                           json_object_new_boolean(helperHasKey(st)));
    replyReturn(st, name, id, ret);
}


/* the time before which the reply to @name may not leave (monotonic us),
 * or 0; an armed x-delay-reply applies once */
gint64
faultTakeDelay(Standin *st, const char *name)
{
    gint64 when;

    if (!st->delayCommand || !g_str_equal(st->delayCommand, name))
        return 0;
    when = g_get_monotonic_time() + (gint64) st->delayMs * 1000;
    standinLog("QMP %s: reply delayed by %u ms", name, st->delayMs);
    g_clear_pointer(&st->delayCommand, g_free);
    return when;
}
