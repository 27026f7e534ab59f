/*
 * The configuration file: what must hold from the process's start (the
 * helper's boot time and how its boots end, the platform's SEV key and
 * firmware version, whether the x- commands exist). See standin.h for the
 * format. What may change at run time is fault injection (faults.c).
 */

#include "standin.h"

#ifndef STANDIN_CONF
# error "STANDIN_CONF must be defined"
#endif


const char *
confModeName(HelperMode mode)
{
    switch (mode) {
    case HELPER_MODE_READY:
        return "ready";
    case HELPER_MODE_FAILED:
        return "failed";
    case HELPER_MODE_HANG:
        return "hang";
    }
    return "?";
}


bool
confLoad(StandinConf *conf, GError **err)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) lerr = NULL;
    const char *path = g_getenv("QEMU_MIRROR_STANDIN_CONF");
    g_autofree char *qemu = NULL;
    g_autofree char *mode = NULL;
    g_autofree char *pdh = NULL;
    struct {
        const char *key;
        guint *val;
    } versions[] = {
        { "sev-api-major", &conf->sevApiMajor },
        { "sev-api-minor", &conf->sevApiMinor },
        { "sev-build-id", &conf->sevBuildId },
    };
    size_t i;

    if (!path || !*path)
        path = STANDIN_CONF;

    conf->qemu = g_strdup("/usr/bin/qemu-system-x86_64");
    conf->bootMs = 200;
    conf->mode = HELPER_MODE_READY;
    conf->testMode = false;
    conf->sevApiMajor = 1;
    conf->sevApiMinor = 55;
    conf->sevBuildId = 24;

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

    /* gone: the helper's key comes from the launch secret */
    if (g_key_file_has_key(kf, "standin", "transport-key", NULL))
        standinLog("%s: transport-key is ignored: the helper's key comes from "
                   "the launch secret (sev-inject-launch-secret)", path);

    for (i = 0; i < G_N_ELEMENTS(versions); i++) {
        gint64 v;

        if (!g_key_file_has_key(kf, "standin", versions[i].key, NULL))
            continue;
        v = g_key_file_get_int64(kf, "standin", versions[i].key, &lerr);
        if (lerr || v < 0 || v > 255) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "%s: %s must be a number from 0 to 255", path,
                        versions[i].key);
            return false;
        }
        *versions[i].val = v;
    }

    if ((pdh = g_key_file_get_string(kf, "standin", "sev-pdh-key", NULL)) && *pdh)
        conf->sevPdhKey = g_steal_pointer(&pdh);
    conf->sevPdhCert = g_key_file_get_string(kf, "standin", "sev-pdh-cert", NULL);
    conf->sevCertChain = g_key_file_get_string(kf, "standin", "sev-cert-chain", NULL);

    if (g_key_file_has_key(kf, "standin", "test-mode", NULL)) {
        conf->testMode = g_key_file_get_boolean(kf, "standin", "test-mode",
                                                &lerr);
        if (lerr) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "%s: test-mode must be true or false", path);
            return false;
        }
    }

    /* used in test mode only (control.c) */
    conf->controlDir = g_key_file_get_string(kf, "standin", "control-dir", NULL);

    return true;
}
