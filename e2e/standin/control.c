/*
 * The control socket (test mode only): a second QMP socket for tests, to
 * inject faults (the x- commands) while libvirt holds the monitor. One
 * client at a time; answers at once; no events. See standin.h.
 */

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "standin.h"


/* a command on the control socket (test mode): the x- commands and
 * query-migration-helper, through the same table, answered at once */
void
controlLine(Standin *st, const char *line, gsize len)
{
    g_autofree char *text = g_strndup(line, len);
    g_autoptr(json_object) cmd = json_tokener_parse(g_strstrip(text));
    json_object *id = NULL;
    const char *name;

    if (!cmd || !json_object_is_type(cmd, json_type_object) ||
        !(name = jsonGetString(cmd, "execute")))
        return;
    json_object_object_get_ex(cmd, "id", &id);
    st->replyTo = st->control;
    if (g_str_equal(name, "qmp_capabilities")) {
        replyReturn(st, name, id, NULL);
        st->replyTo = NULL;
        return;
    }
    if (commandsRun(st, name, id, cmd, line, len, true)) {
        st->replyTo = NULL;
        return;
    }
    {
        g_autoptr(json_object) reply = json_object_new_object();
        json_object *error = json_object_new_object();
        g_autofree char *desc = g_strdup_printf("The command %s has not been found", name);
        g_autofree char *out = NULL;

        json_object_object_add(error, "class", json_object_new_string("CommandNotFound"));
        json_object_object_add(error, "desc", json_object_new_string(desc));
        json_object_object_add(reply, "error", error);
        if (id)
            json_object_object_add(reply, "id", json_object_get(id));
        out = jsonLine(reply);
        chanWrite(st->control, out, strlen(out));
    }
    st->replyTo = NULL;
}


static gboolean onControl(int fd, GIOCondition cond, gpointer opaque);

void
controlEnd(Standin *st)
{
    chanFree(st->control);
    st->control = NULL;
    if (st->controlFd >= 0 && !st->terminating)
        st->controlWatch = g_unix_fd_add(st->controlFd, G_IO_IN, onControl, st);
}


static gboolean
onControl(int fd, GIOCondition cond G_GNUC_UNUSED, gpointer opaque)
{
    Standin *st = opaque;
    static const char greeting[] =
        "{\"QMP\": {\"version\": {\"qemu-mirror-standin\": \"control\"}, "
        "\"capabilities\": []}}\r\n";
    int cfd;

    if ((cfd = accept(fd, NULL, NULL)) < 0)
        return G_SOURCE_CONTINUE;
    if (fcntl(cfd, F_SETFD, FD_CLOEXEC) < 0 ||
        !g_unix_set_fd_nonblocking(cfd, TRUE, NULL)) {
        close(cfd);
        return G_SOURCE_CONTINUE;
    }
    standinLog("control socket: client connected");
    st->control = chanNew(st, "the control client", cfd, controlLine);
    chanWrite(st->control, greeting, strlen(greeting));
    st->controlWatch = 0;
    return G_SOURCE_REMOVE;
}


bool
processControlListen(Standin *st, GError **err)
{
    if (!st->conf.testMode || !st->conf.controlDir || !*st->conf.controlDir)
        return true;
    st->controlPath = g_strdup_printf("%s/standin-%d.qmp", st->conf.controlDir,
                                      (int) getpid());
    if ((st->controlFd = processListenUnix(st->controlPath, err)) < 0)
        return false;
    standinLog("control socket: listening on %s", st->controlPath);
    st->controlWatch = g_unix_fd_add(st->controlFd, G_IO_IN, onControl, st);
    return true;
}
