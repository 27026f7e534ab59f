/*
 * The command-line rewriting: pure functions from libvirt's QEMU command
 * line to the real QEMU's, and what the stand-in must know about it
 * (CmdLine). No I/O, no global state: test-cmdline.c tests them without
 * QEMU.
 */

#include <string.h>

#include "standin.h"


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


/* -object: whether it is an SEV guest object; its id, policy, and what
 * LAUNCH_START takes from it (dh-cert-file, session-file, kernel-hashes) */
static bool
parseSevObject(CmdLine *cl, const char *val, GError **err)
{
    g_autofree char *type = NULL;
    g_autofree char *id = NULL;
    g_autofree char *dhCert = NULL;
    g_autofree char *session = NULL;
    bool kernelHashes = false;
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
        if (json_object_object_get_ex(obj, "dh-cert-file", &tmp))
            dhCert = g_strdup(json_object_get_string(tmp));
        if (json_object_object_get_ex(obj, "session-file", &tmp))
            session = g_strdup(json_object_get_string(tmp));
        if (json_object_object_get_ex(obj, "kernel-hashes", &tmp))
            kernelHashes = json_object_get_boolean(tmp);
    } else {
        g_autoptr(GPtrArray) parts = optsSplit(val);
        g_autofree char *pol = optsGet(val, "policy");
        g_autofree char *hashes = optsGet(val, "kernel-hashes");

        if (!(type = optsGet(val, "qom-type")) && parts->len > 0 &&
            !strchr(g_ptr_array_index(parts, 0), '='))
            type = g_strdup(g_ptr_array_index(parts, 0));
        id = optsGet(val, "id");
        dhCert = optsGet(val, "dh-cert-file");
        session = optsGet(val, "session-file");
        kernelHashes = hashes && optsIsOn(hashes);
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

    if (cl->sev) {
        g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "more than one SEV guest object");
        return false;
    }
    if (!id) {
        g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "the %s object has no id", type);
        return false;
    }
    cl->sev = true;
    cl->sevId = g_steal_pointer(&id);
    cl->sevType = g_strdup(g_str_equal(type, "sev-guest") ? "sev" : "sev-snp");
    cl->sevPolicy = policy;
    cl->sevDhCertFile = g_steal_pointer(&dhCert);
    cl->sevSessionFile = g_steal_pointer(&session);
    cl->sevKernelHashes = kernelHashes;
    return true;
}


/* -smp: take the mirror vCPUs out. Returns the new value, or NULL when
 * there is no mirrorvcpus (then @val stays as it is). */
char *
cmdlineRewriteSmp(CmdLine *cl, const char *val, GError **err)
{
    g_autoptr(GPtrArray) parts = optsSplit(val);
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
    guint cpus = 0, maxcpus = 0, mirror = 0, total;
    bool hasCpus = false, hasMax = false, hasMirror = false;
    bool hasSockets = false, hasCores = false, hasThreads = false;
    guint i;

    cl->sockets = cl->dies = cl->clusters = cl->cores = cl->threads = 1;

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
            cl->sockets = n;
        } else if (g_str_equal(key, "dies")) {
            cl->dies = n;
        } else if (g_str_equal(key, "clusters")) {
            cl->clusters = n;
        } else if (g_str_equal(key, "cores")) {
            hasCores = true;
            cl->cores = n;
        } else if (g_str_equal(key, "threads")) {
            hasThreads = true;
            cl->threads = n;
        }
    }
    cl->topoKnown = hasSockets && hasCores && hasThreads;

    if (!hasMirror)
        return NULL;

    if (hasCpus)
        total = cpus;
    else if (hasMax)
        total = maxcpus;
    else
        total = cl->sockets * cl->dies * cl->clusters * cl->cores * cl->threads;

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
    cl->mirrorVcpus = mirror;
    cl->guestVcpus = total - mirror;

    for (i = 0; i < parts->len; i++) {
        const char *part = g_ptr_array_index(parts, i);

        if (i == 0 && !strchr(part, '='))
            g_ptr_array_add(out, g_strdup_printf("%u", cl->guestVcpus));
        else if (optsValue(part, "cpus"))
            g_ptr_array_add(out, g_strdup_printf("cpus=%u", cl->guestVcpus));
        else if (!optsValue(part, "mirrorvcpus"))
            g_ptr_array_add(out, g_strdup(part));
    }
    if (!hasCpus)
        g_ptr_array_add(out, g_strdup_printf("cpus=%u", cl->guestVcpus));
    if (!hasMax)
        g_ptr_array_add(out, g_strdup_printf("maxcpus=%u", total));

    return optsJoin(out);
}


/* -machine: without the SEV object's confidential-guest-support */
char *
cmdlineRewriteMachine(const CmdLine *cl, const char *val)
{
    g_autoptr(GPtrArray) parts = optsSplit(val);
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
    guint i;

    for (i = 0; i < parts->len; i++) {
        const char *part = g_ptr_array_index(parts, i);
        const char *ref = optsValue(part, "confidential-guest-support");

        if (!ref)
            ref = optsValue(part, "memory-encryption");
        if (ref && cl->sev && g_str_equal(ref, cl->sevId))
            continue;
        g_ptr_array_add(out, g_strdup(part));
    }
    return optsJoin(out);
}


/* -blockdev: its node name, and the file name or the node it sits on */
static void
parseBlockdev(const char *val, char **node, char **filename, char **file)
{
    if (val[0] == '{') {
        g_autoptr(json_object) obj = json_tokener_parse(val);
        json_object *tmp;

        if (!obj || !json_object_is_type(obj, json_type_object))
            return;
        if (json_object_object_get_ex(obj, "node-name", &tmp))
            *node = g_strdup(json_object_get_string(tmp));
        if (json_object_object_get_ex(obj, "filename", &tmp))
            *filename = g_strdup(json_object_get_string(tmp));
        if (json_object_object_get_ex(obj, "file", &tmp)) {
            json_object *fn;

            if (json_object_is_type(tmp, json_type_string))
                *file = g_strdup(json_object_get_string(tmp));
            else if (json_object_object_get_ex(tmp, "filename", &fn) && !*filename)
                *filename = g_strdup(json_object_get_string(fn));
        }
    } else {
        *node = optsGet(val, "node-name");
        *filename = optsGet(val, "filename");
        *file = optsGet(val, "file");
        if (!*filename)
            *filename = optsGet(val, "file.filename");
    }
}


/* The firmware in pflash unit 0, what LAUNCH_UPDATE_DATA measures when
 * there is no -bios: -machine pflash0=NODE with its -blockdev chain (as
 * libvirt gives it), or -drive if=pflash,unit=0,file=F. NULL if none. */
static char *
pflashFirmware(int argc, char **argv)
{
    g_autoptr(GHashTable) filenames = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                            g_free, g_free);
    g_autoptr(GHashTable) files = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                        g_free, g_free);
    g_autofree char *node = NULL;
    g_autofree char *drive = NULL;
    const char *cur;
    int i, depth;

    for (i = 1; i + 1 < argc; i++) {
        const char *opt = optName(argv[i]);

        if (!opt)
            continue;
        if (g_str_equal(opt, "-machine") || g_str_equal(opt, "-M")) {
            g_autofree char *n = optsGet(argv[++i], "pflash0");
            if (n) {
                g_free(node);
                node = g_steal_pointer(&n);
            }
        } else if (g_str_equal(opt, "-blockdev")) {
            char *name = NULL, *filename = NULL, *file = NULL;

            parseBlockdev(argv[++i], &name, &filename, &file);
            if (name && filename)
                g_hash_table_insert(filenames, g_strdup(name), g_steal_pointer(&filename));
            if (name && file)
                g_hash_table_insert(files, g_strdup(name), g_steal_pointer(&file));
            g_free(name);
            g_free(filename);
            g_free(file);
        } else if (g_str_equal(opt, "-drive")) {
            g_autofree char *ifType = optsGet(argv[++i], "if");
            g_autofree char *unit = optsGet(argv[i], "unit");

            if (!drive && ifType && g_str_equal(ifType, "pflash") &&
                (!unit || g_str_equal(unit, "0")))
                drive = optsGet(argv[i], "file");
        }
    }

    for (cur = node, depth = 0; cur && depth < 8; depth++) {
        const char *fn = g_hash_table_lookup(filenames, cur);

        if (fn)
            return g_strdup(fn);
        cur = g_hash_table_lookup(files, cur);
    }
    return g_steal_pointer(&drive);
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


bool
cmdlineParse(CmdLine *cl, const char *qemu, int argc, char **argv,
             GError **err)
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
            if (parseSevObject(cl, argv[++i], err))
                continue;
            if (err && *err)
                return false;
        } else if (g_str_equal(opt, "-mon")) {
            g_autofree char *mode = optsGet(argv[++i], "mode");
            if (mode && g_str_equal(mode, "control") && !cl->monChardevId)
                cl->monChardevId = optsGet(argv[i], "chardev");
        } else if (g_str_equal(opt, "-incoming")) {
            hasIncoming = true;
        }
    }

    /* pass 2: the rewritten command line */
    cl->qemuArgv = out = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(out, g_strdup(qemu));

    for (i = 1; i < argc; i++) {
        const char *opt = optName(argv[i]);
        const char *val;

        if (!opt) {
            g_ptr_array_add(out, g_strdup(argv[i]));
            continue;
        }

        if (g_str_equal(opt, "-daemonize")) {
            cl->daemonize = true;
            continue;
        }
        if (g_str_equal(opt, "-S")) {
            cl->startPaused = true;
            g_ptr_array_add(out, g_strdup(argv[i]));
            continue;
        }

        if (g_str_equal(opt, "-pidfile")) {
            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            g_free(cl->pidfile);
            cl->pidfile = g_strdup(val);
            continue;
        }

        if (g_str_equal(opt, "-smp")) {
            g_autofree char *smp = NULL;
            g_autoptr(GError) lerr = NULL;

            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            if (!(smp = cmdlineRewriteSmp(cl, val, &lerr)) && lerr) {
                g_propagate_error(err, g_steal_pointer(&lerr));
                return false;
            }
            g_ptr_array_add(out, g_strdup(argv[i - 1]));
            g_ptr_array_add(out, smp ? g_steal_pointer(&smp) : g_strdup(val));
            continue;
        }

        if (g_str_equal(opt, "-object")) {
            g_autoptr(GError) lerr = NULL;
            CmdLine tmp = { .sev = false };

            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            /* the SEV object found in pass 1 */
            if (parseSevObject(&tmp, val, &lerr)) {
                cmdlineClear(&tmp);
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
            g_ptr_array_add(out, cmdlineRewriteMachine(cl, val));
            continue;
        }

        if (g_str_equal(opt, "-bios")) {
            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            g_free(cl->sevFirmware);
            cl->sevFirmware = g_strdup(val);
            if (cl->sev)
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
                    cl->target = true;
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
            if (cl->monKind == MON_NONE && g_str_has_prefix(val, "unix:") &&
                optsIsServer(val)) {
                g_autoptr(GPtrArray) parts = optsSplit(val + strlen("unix:"));
                g_auto(GStrv) pieces = g_strsplit(g_ptr_array_index(parts, 0),
                                                  ",,", -1);
                cl->monKind = MON_PATH;
                cl->monArg = MON_ARG_QMP;
                cl->monPath = g_strjoinv(",", pieces);
                cl->monArgIndex = out->len;
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
            if (cl->monKind == MON_NONE && cl->monChardevId && id &&
                g_str_equal(id, cl->monChardevId) &&
                g_str_has_prefix(val, "socket,") && optsIsServer(val)) {
                guint n;

                if (fd && parseUint(fd, &n) && n <= G_MAXINT) {
                    cl->monKind = MON_FD;
                    cl->monFd = n;
                } else if (path) {
                    cl->monKind = MON_PATH;
                    cl->monPath = g_steal_pointer(&path);
                }
                if (cl->monKind != MON_NONE) {
                    cl->monArg = MON_ARG_CHARDEV;
                    cl->monArgIndex = out->len;
                }
            }
            g_ptr_array_add(out, g_strdup(val));
            continue;
        }

        if (g_str_equal(opt, "-kernel") || g_str_equal(opt, "-initrd") ||
            g_str_equal(opt, "-append")) {
            char **dest = g_str_equal(opt, "-kernel") ? &cl->kernel :
                          g_str_equal(opt, "-initrd") ? &cl->initrd : &cl->append;

            if (!(val = nextArg(argc, argv, &i, opt, err)))
                return false;
            g_free(*dest);
            *dest = g_strdup(val);
            g_ptr_array_add(out, g_strdup(argv[i - 1]));
            g_ptr_array_add(out, g_strdup(val));
            continue;
        }

        g_ptr_array_add(out, g_strdup(argv[i]));
    }

    if (!cl->sevFirmware)
        cl->sevFirmware = pflashFirmware(argc, argv);
    if (!cl->sev)
        g_clear_pointer(&cl->sevFirmware, g_free);

    if (cl->target) {
        if (hasIncoming) {
            g_set_error(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "-fw_cfg %s,string=1 with -incoming: the target of a "
                        "confidential migration starts without -incoming",
                        FW_CFG_TARGET);
            return false;
        }
        g_ptr_array_add(out, g_strdup("-incoming"));
        g_ptr_array_add(out, g_strdup("defer"));
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


char *
cmdlineToString(GPtrArray *argv)
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


void
cmdlineClear(CmdLine *cl)
{
    if (cl->qemuArgv)
        g_ptr_array_unref(cl->qemuArgv);
    g_free(cl->pidfile);
    g_free(cl->monChardevId);
    g_free(cl->monPath);
    g_free(cl->sevId);
    g_free(cl->sevType);
    g_free(cl->sevDhCertFile);
    g_free(cl->sevSessionFile);
    g_free(cl->sevFirmware);
    g_free(cl->kernel);
    g_free(cl->initrd);
    g_free(cl->append);
    memset(cl, 0, sizeof(*cl));
    cl->monFd = -1;
}
