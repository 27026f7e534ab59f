/*
 * The migration helper's state machine and the mirror vCPUs that run it,
 * as docs/kbase/confidential-migration.rst defines them
 * (MigrationHelperStatus; "Mirror vCPUs and the helper across stop, cont,
 * reset"):
 *
 *   inactive -> booting       the VM's vCPUs run for the first time
 *   booting  -> ready|failed  the boot ends (helper-boot-ms, helper=)
 *   ready    -> failed        at run time (x-helper-fail); an outgoing
 *                             migration then fails (commands.c)
 *   booting, ready, failed -> booting
 *                             system_reset: the mirror vCPUs re-enter the
 *                             helper's entry point; the key is lost
 *
 * stop and cont never change it. The transport key: the first boot that
 * ends ready brings the one of the launch secret injected before the first
 * cont (sev.c, psp.c: its secret table's transport key and key id entries),
 * if there was one; a reset loses it; x-transport-key drops it and brings
 * back the injected one. MIGRATION_HELPER goes out on every status change
 * and when the key changes while ready; "transport-key-id" is there
 * whenever "transport-key" is. A target-mode helper holding a key also
 * reports its nonce and key confirmation (contract version 3, streamkey.c)
 * until its incoming stream ends or target mode does.
 */

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "standin.h"

const char *helperStatusNames[] = {
    "inactive", "booting", "ready", "failed",
};


bool
helperHasKey(Standin *st)
{
    return st->helper == HELPER_READY && st->helperKey;
}


json_object *
helperInfo(Standin *st)
{
    json_object *data = json_object_new_object();

    json_object_object_add(data, "status",
                           json_object_new_string(helperStatusNames[st->helper]));
    if (helperHasKey(st)) {
        json_object_object_add(data, "transport-key", json_object_new_boolean(true));
        json_object_object_add(data, "transport-key-id",
                               json_object_new_string(st->helperKeyId));
    }
    if (helperHasKey(st) && st->helperNonceSet && st->lifecycle != LC_GUEST) {
        /* contract version 3: the target's nonce and its proof of the key */
        guint8 proof[STREAM_KEY_LEN];
        g_autofree char *nonce = streamKeyHex(st->helperNonce, STREAM_NONCE_LEN);
        g_autofree char *hex = NULL;

        if (streamKeyTargetProof(st->helperKeyBytes, st->helperKeyId,
                                 st->helperNonce, proof)) {
            hex = streamKeyHex(proof, sizeof(proof));
            json_object_object_add(data, "nonce", json_object_new_string(nonce));
            json_object_object_add(data, "key-confirmation", json_object_new_string(hex));
        }
        gnutls_memset(proof, 0, sizeof(proof));
    }
    if (st->helper == HELPER_FAILED && st->helperError)
        json_object_object_add(data, "error", json_object_new_string(st->helperError));
    return data;
}


/* the 32 bytes of the transport key the helper holds, and its id; NULL if
 * it holds none */
const guint8 *
helperTransportKey(Standin *st, const char **keyId)
{
    if (!helperHasKey(st))
        return NULL;
    *keyId = st->helperKeyId;
    return st->helperKeyBytes;
}


/* the helper takes the key of the injected launch secret (false: there
 * is none), or forgets its key */
static bool
helperTakeKey(Standin *st, bool take)
{
    memset(st->helperKeyBytes, 0, sizeof(st->helperKeyBytes));
    g_clear_pointer(&st->helperKeyId, g_free);
    st->helperKey = false;
    st->helperNonceSet = false;
    if (!take || !st->injected.valid)
        return false;
    memcpy(st->helperKeyBytes, st->injected.key, sizeof(st->helperKeyBytes));
    st->helperKeyId = g_strdup(st->injected.keyId);
    st->helperKey = true;
    /* a target-mode helper makes a fresh nonce with its key (contract
     * version 3), for one incoming stream */
    if (st->cl.target && st->lifecycle != LC_GUEST) {
        if (gnutls_rnd(GNUTLS_RND_NONCE, st->helperNonce, STREAM_NONCE_LEN) < 0)
            g_error("no random nonce");
        st->helperNonceSet = true;
    }
    return true;
}


static void
helperEvent(Standin *st)
{
    emitEvent(st, "MIGRATION_HELPER", helperInfo(st));
}


static void
helperSet(Standin *st, HelperStatus status, const char *error)
{
    st->helper = status;
    g_free(st->helperError);
    st->helperError = g_strdup(error);
    standinLog("migration helper: %s%s%s%s%s%s", helperStatusNames[status],
               helperHasKey(st) ? " (transport key " : "",
               helperHasKey(st) ? st->helperKeyId : "",
               helperHasKey(st) ? ")" : "",
               error ? ": " : "", error ? error : "");
    helperEvent(st);
}


static gboolean
helperBooted(gpointer opaque)
{
    Standin *st = opaque;

    st->helperTimer = 0;
    if (st->conf.mode == HELPER_MODE_READY) {
        /* the launch secret injected before the first boot holds the
         * key; a reset cleared it */
        helperTakeKey(st, !st->helperBootedOnce);
        st->helperBootedOnce = true;
        helperSet(st, HELPER_READY, NULL);
    } else {
        st->helperBootedOnce = true;
        helperSet(st, HELPER_FAILED, "migration helper did not start (simulated)");
    }
    return G_SOURCE_REMOVE;
}


/* the mirror vCPUs enter the helper's entry point */
static void
helperBoot(Standin *st)
{
    if (st->helperTimer)
        g_source_remove(st->helperTimer);
    st->helperTimer = 0;
    helperTakeKey(st, false);
    helperSet(st, HELPER_BOOTING, NULL);
    if (st->conf.mode != HELPER_MODE_HANG && !st->helperHang)
        st->helperTimer = g_timeout_add(st->conf.bootMs, helperBooted, st);
}


/* the VM's vCPUs run for the first time: OVMF starts the helper on the
 * mirror vCPUs */
void
helperFirstRun(Standin *st)
{
    if (st->cl.mirrorVcpus == 0 || st->helper != HELPER_INACTIVE)
        return;
    helperBoot(st);
}


/* system_reset: the mirror vCPUs re-enter the helper's entry point; a VM
 * that never ran stays as it is */
void
helperReset(Standin *st)
{
    if (st->cl.mirrorVcpus == 0 || st->helper == HELPER_INACTIVE)
        return;
    standinLog("reset: mirror vCPUs re-enter the helper entry point");
    helperBoot(st);
}


bool
helperFail(Standin *st, const char *reason)
{
    if (st->helper != HELPER_BOOTING && st->helper != HELPER_READY)
        return false;
    if (st->helperTimer)
        g_source_remove(st->helperTimer);
    st->helperTimer = 0;
    helperTakeKey(st, false);
    helperSet(st, HELPER_FAILED, reason);
    /* an outgoing migration cannot go on without its helper */
    commandsHelperFailed(st, reason);
    return true;
}


/* the current boot never ends; or, if none runs, the next one */
void
helperHang(Standin *st)
{
    st->helperHang = true;
    if (st->helperTimer)
        g_source_remove(st->helperTimer);
    st->helperTimer = 0;
    standinLog("migration helper: %s", st->helper == HELPER_BOOTING ?
               "hangs in its boot" : "its next boot will hang");
}


/* x-transport-key: the ready helper drops its key, or takes the injected
 * one again. False with the reason in @why. */
bool
helperSetKey(Standin *st, bool present, const char **why)
{
    g_autofree char *before = g_strdup(st->helperKey ? st->helperKeyId : NULL);

    if (st->helper != HELPER_READY) {
        *why = "not ready";
        return false;
    }
    if (present && !st->injected.valid) {
        *why = "no launch secret with a transport key was injected";
        return false;
    }
    helperTakeKey(st, present);
    if (g_strcmp0(before, st->helperKey ? st->helperKeyId : NULL) == 0)
        return true;
    standinLog("migration helper: transport key %s",
               present ? "provisioned" : "lost");
    helperEvent(st);
    return true;
}


/* x-transport-key with key and key-id (test mode): they replace the
 * injected secret's transport key and key id, as if the guest owner had
 * injected them; helperSetKey() then takes them */
void
helperSetInjectedKey(Standin *st, const guint8 *key, const char *keyId)
{
    memcpy(st->injected.key, key, sizeof(st->injected.key));
    g_free(st->injected.keyId);
    st->injected.keyId = g_strdup(keyId);
    st->injected.valid = true;
    /* a helper holding the injected key takes the new one */
    st->helperKey = false;
}


/* ------------------------------------------------------------------ */
/* mirror vCPUs: real threads, so that libvirt pins real threads        */

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
    /* the simulated mirror vCPU runs the helper's loop for ever: stop and
     * cont do not touch it, a reset only restarts the helper's state; the
     * first one carries the encrypted migration stream (stream.c) */
    for (;;) {
        if (streamVcpuWork(st, vcpu))
            continue;
        g_cond_wait(&st->mirrorCond, &st->mirrorLock);
    }
    return NULL;
}


void
mirrorVcpusStart(Standin *st)
{
    guint i;

    st->mirror = g_new0(MirrorVcpu, st->cl.mirrorVcpus);
    for (i = 0; i < st->cl.mirrorVcpus; i++) {
        g_autofree char *name = g_strdup_printf("CPU %u/MIRROR",
                                                st->cl.guestVcpus + i);

        st->mirror[i].st = st;
        st->mirror[i].index = st->cl.guestVcpus + i;
        g_thread_unref(g_thread_new(name, mirrorVcpuThread, &st->mirror[i]));
    }

    g_mutex_lock(&st->mirrorLock);
    for (i = 0; i < st->cl.mirrorVcpus; i++) {
        while (st->mirror[i].tid == 0)
            g_cond_wait(&st->mirrorCond, &st->mirrorLock);
    }
    g_mutex_unlock(&st->mirrorLock);
}


static gint64
jsonPropInt(json_object *props, const char *key)
{
    json_object *val;

    if (!json_object_object_get_ex(props, key, &val))
        return 0;
    return json_object_get_int64(val);
}


/* query-hotpluggable-cpus: hide the (empty) slots where the mirror vCPUs
 * would be (the contract: mirror vCPUs are not listed) */
bool
mirrorAmendHotpluggable(Standin *st, json_object *cpus)
{
    g_autoptr(json_object) kept = json_object_new_array();
    size_t i, n = json_object_array_length(cpus);
    bool changed = false;

    if (st->cl.mirrorVcpus == 0 || !st->cl.topoKnown)
        return false;

    for (i = 0; i < n; i++) {
        json_object *cpu = json_object_array_get_idx(cpus, i);
        json_object *props;
        gint64 idx;

        if (!json_object_object_get_ex(cpu, "qom-path", NULL) &&
            json_object_object_get_ex(cpu, "props", &props)) {
            idx = ((jsonPropInt(props, "socket-id") * st->cl.dies +
                    jsonPropInt(props, "die-id")) * st->cl.clusters +
                   jsonPropInt(props, "cluster-id")) * st->cl.cores +
                  jsonPropInt(props, "core-id");
            idx = idx * st->cl.threads + jsonPropInt(props, "thread-id");
            if (idx >= st->cl.guestVcpus && idx < st->cl.guestVcpus + st->cl.mirrorVcpus) {
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
