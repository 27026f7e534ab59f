/*
 * The VM's lifecycle as far as the stand-in has to track it: target mode
 * (PcdSevIsMigrationTarget) and how it ends, as written down in
 * docs/kbase/confidential-migration.rst, "How target mode ends". One
 * state, and every allowed transition in the table below; any other is a
 * bug of the stand-in, logged and refused.
 *
 * The real QEMU of a target waits in '-incoming defer' all along target
 * mode, so the stand-in answers for the helper-only firmware until QEMU
 * receives the guest. A QEMU that is no target starts in LC_GUEST, where
 * everything is QEMU's.
 */

#include "standin.h"


static const char *lifecycleNames[LC_LAST] = {
    [LC_WAITING] = "waiting",
    [LC_FIRMWARE] = "firmware",
    [LC_INCOMING] = "incoming",
    [LC_LOADING] = "loading",
    [LC_GUEST] = "guest",
};


/* the allowed transitions, with what causes each */
static const struct {
    Lifecycle from;
    Lifecycle to;
    const char *cause;
} transitions[] = {
    { LC_WAITING, LC_FIRMWARE, "cont (or start without -S)" },
    { LC_FIRMWARE, LC_WAITING, "stop" },
    { LC_WAITING, LC_INCOMING, "start-migrate-incoming" },
    { LC_FIRMWARE, LC_INCOMING, "start-migrate-incoming" },
    { LC_INCOMING, LC_WAITING, "QEMU refused migrate-incoming" },
    { LC_INCOMING, LC_FIRMWARE, "QEMU refused migrate-incoming" },
    { LC_INCOMING, LC_LOADING, "QEMU listens" },
    { LC_LOADING, LC_GUEST, "the incoming migration completed" },
};


const char *
lifecycleName(Lifecycle lc)
{
    if (lc >= LC_LAST)
        return "?";
    return lifecycleNames[lc];
}


bool
lifecycleSet(Standin *st, Lifecycle to, const char *why)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(transitions); i++) {
        if (transitions[i].from == st->lifecycle && transitions[i].to == to) {
            standinLog("lifecycle: %s -> %s (%s)", lifecycleName(st->lifecycle),
                       lifecycleName(to), why ? why : transitions[i].cause);
            st->lifecycle = to;
            if (to == LC_GUEST)
                standinLog("target mode ended: a reset now boots the guest");
            return true;
        }
    }
    standinLog("lifecycle: %s -> %s refused (%s)", lifecycleName(st->lifecycle),
               lifecycleName(to), why ? why : "no such transition");
    return false;
}


/* whether the stand-in answers for the helper-only firmware of a target
 * (QEMU waits in '-incoming defer') */
bool
lifecycleTargetFirmware(Standin *st)
{
    return st->lifecycle == LC_WAITING || st->lifecycle == LC_FIRMWARE;
}
