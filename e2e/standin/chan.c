/*
 * The QMP channel: a socket with a line-buffered input and an output buffer
 * (chan*), file descriptors received with SCM_RIGHTS and passed on with the
 * command they came with, the pending-reply queue (pending*), and the
 * stand-in's own replies and events.
 */

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "standin.h"


const char *
jsonGetString(json_object *obj, const char *key)
{
    json_object *val;

    if (!obj || !json_object_object_get_ex(obj, key, &val) ||
        !json_object_is_type(val, json_type_string))
        return NULL;
    return json_object_get_string(val);
}


char *
jsonLine(json_object *obj)
{
    return g_strdup_printf("%s\r\n", json_object_to_json_string_ext(obj, JSON_FLAGS));
}



/* ------------------------------------------------------------------ */
/* channels: a socket, a line-buffered input and an output buffer      */

static gboolean chanOnIn(int fd, GIOCondition cond, gpointer opaque);


static void
chanCloseFds(Chan *chan)
{
    guint i;

    for (i = 0; i < chan->fds->len; i++)
        close(g_array_index(chan->fds, int, i));
    g_array_set_size(chan->fds, 0);
}


Chan *
chanNew(Standin *st, const char *name, int fd, ChanLineFunc lineFunc)
{
    Chan *chan = g_new0(Chan, 1);

    chan->st = st;
    chan->name = name;
    chan->fd = fd;
    chan->in = g_string_new(NULL);
    chan->out = g_string_new(NULL);
    chan->lineFunc = lineFunc;
    chan->fds = g_array_new(FALSE, FALSE, sizeof(int));
    chan->inWatch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                  chanOnIn, chan);
    return chan;
}


void
chanFree(Chan *chan)
{
    if (!chan)
        return;
    if (chan->inWatch)
        g_source_remove(chan->inWatch);
    if (chan->outWatch)
        g_source_remove(chan->outWatch);
    close(chan->fd);
    chanCloseFds(chan);
    g_array_free(chan->fds, TRUE);
    g_string_free(chan->in, TRUE);
    g_string_free(chan->out, TRUE);
    g_free(chan);
}


/* write what can be written now; false on a broken connection */
bool
chanFlushNow(Chan *chan)
{
    while (chan->out->len > 0) {
        ssize_t n = send(chan->fd, chan->out->str, chan->out->len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            /* the input side sees the hang-up and ends the session */
            g_string_truncate(chan->out, 0);
            return false;
        }
        g_string_erase(chan->out, 0, n);
    }
    return true;
}


static gboolean
chanOnOut(int fd G_GNUC_UNUSED,
          GIOCondition cond G_GNUC_UNUSED,
          gpointer opaque)
{
    Chan *chan = opaque;

    chanFlushNow(chan);
    if (chan->out->len == 0) {
        chan->outWatch = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}


void
chanWrite(Chan *chan, const char *data, gsize len)
{
    if (!chan)
        return;
    g_string_append_len(chan->out, data, len);
    chanFlushNow(chan);
    if (chan->out->len > 0 && !chan->outWatch)
        chan->outWatch = g_unix_fd_add(chan->fd, G_IO_OUT, chanOnOut, chan);
}


/* Write @data with the file descriptors @from received (libvirt passes
 * fds with SCM_RIGHTS along with the command that uses them, e.g. getfd or
 * add-fd): they go to QEMU with the first byte of @data. */
static void
chanWriteWithFds(Chan *chan, const char *data, gsize len, Chan *from)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * STANDIN_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = (void *) data, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cmsg;
    gsize nfds;
    ssize_t n;

    if (!chan || !from || from->fds->len == 0) {
        chanWrite(chan, data, len);
        if (from)
            chanCloseFds(from);
        return;
    }

    /* what is queued goes first: wait for it (a local socket, a few lines) */
    while (chan->out->len > 0) {
        struct pollfd pfd = { .fd = chan->fd, .events = POLLOUT };

        if (!chanFlushNow(chan) || poll(&pfd, 1, 1000) < 0)
            break;
    }

    nfds = MIN(from->fds->len, STANDIN_MAX_FDS);
    memset(&control, 0, sizeof(control));
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), from->fds->data, sizeof(int) * nfds);

    do {
        n = sendmsg(chan->fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);

    standinLog("passed %zu file descriptor(s) to QEMU", nfds);
    chanCloseFds(from);

    if (n < 0)
        return;     /* the input side sees the hang-up */
    if ((gsize) n < len)
        chanWrite(chan, data + n, len - n);
}


void
chanProcessLines(Chan *chan)
{
    gsize start = 0;
    const char *nl;

    while ((nl = memchr(chan->in->str + start, '\n', chan->in->len - start))) {
        gsize len = nl - (chan->in->str + start) + 1;

        chan->lineFunc(chan->st, chan->in->str + start, len);
        /* file descriptors came with this line; a command that did not
         * pass them on (answered here) must not hand them to the next */
        chanCloseFds(chan);
        start += len;
    }
    g_string_erase(chan->in, 0, start);
}


static gboolean
chanOnIn(int fd, GIOCondition cond G_GNUC_UNUSED, gpointer opaque)
{
    Chan *chan = opaque;
    Standin *st = chan->st;
    char buf[65536];
    union {
        char buf[CMSG_SPACE(sizeof(int) * STANDIN_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = control.buf,
                          .msg_controllen = sizeof(control.buf) };
    struct cmsghdr *cmsg;
    ssize_t n;

    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return G_SOURCE_CONTINUE;
    for (cmsg = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cmsg;
         cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
            gsize nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            g_array_append_vals(chan->fds, CMSG_DATA(cmsg), nfds);
        }
    }
    if (n <= 0) {
        standinLog("%s closed the monitor connection", chan->name);
        chan->inWatch = 0;
        if (chan == st->control)
            controlEnd(st);
        else
            sessionEnd(st);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(chan->in, buf, n);
    chanProcessLines(chan);
    return G_SOURCE_CONTINUE;
}


/* ------------------------------------------------------------------ */
/* the pending-reply queue: one entry per command not answered yet, in
 * the order the client sent them. A reply leaves only from the head, so
 * replies keep the order of the commands, whoever answers them (QEMU or
 * the stand-in) and however long one is held (x-delay-reply). */

void
pendingFree(Pending *p)
{
    if (!p)
        return;
    g_free(p->name);
    json_object_put(p->id);
    g_free(p->reply);
    g_free(p->path);
    g_free(p);
}


Pending *
pendingPush(Standin *st, PendingAction action, const char *name,
            json_object *id)
{
    Pending *p = g_new0(Pending, 1);

    p->action = action;
    p->name = g_strdup(name);
    p->id = id ? json_object_get(id) : NULL;
    p->value = -1;
    p->notBefore = st->replyNotBefore;
    g_queue_push_tail(&st->pending, p);
    return p;
}


/* The command a reply from QEMU answers: the first one waiting for QEMU
 * with the same id, else the first one waiting for QEMU. It stays in the
 * queue until pendingSettle() and pendingFlush(). */
Pending *
pendingFind(Standin *st, json_object *id)
{
    GList *l;

    if (id) {
        for (l = st->pending.head; l; l = l->next) {
            Pending *p = l->data;
            if (!p->reply && p->id && json_object_equal(p->id, id))
                return p;
        }
    }
    for (l = st->pending.head; l; l = l->next) {
        Pending *p = l->data;
        if (!p->reply)
            return p;
    }
    return NULL;
}


/* @p is answered with @line (owned) */
void
pendingSettle(Standin *st G_GNUC_UNUSED, Pending *p, char *line)
{
    p->action = ACT_LOCAL;
    p->reply = line;
}


static gboolean
pendingOnTimer(gpointer opaque)
{
    Standin *st = opaque;

    st->pendingTimer = 0;
    pendingFlush(st);
    return G_SOURCE_REMOVE;
}


/* send the answered replies at the head of the queue, each when its time
 * has come */
void
pendingFlush(Standin *st)
{
    Pending *p;

    while ((p = g_queue_peek_head(&st->pending)) && p->reply) {
        gint64 now = g_get_monotonic_time();

        if (p->notBefore > now) {
            if (!st->pendingTimer)
                st->pendingTimer = g_timeout_add((p->notBefore - now) / 1000 + 1,
                                                 pendingOnTimer, st);
            return;
        }
        g_queue_pop_head(&st->pending);
        if (p->notBefore)
            standinLog("QMP %s: reply sent (delayed)", p->name);
        chanWrite(st->client, p->reply, strlen(p->reply));
        pendingFree(p);
    }
}


Pending *
forward(Standin *st, PendingAction action, const char *name, json_object *id,
        const char *line, gsize len)
{
    Pending *p = pendingPush(st, action, name, id);

    chanWriteWithFds(st->qemu, line, len, st->client);
    return p;
}


static void
sendLine(Standin *st, const char *name, json_object *id, json_object *reply)
{
    Pending *p;

    if (id)
        json_object_object_add(reply, "id", json_object_get(id));
    if (st->replyTo) {
        /* a command of the control socket: answered there, at once */
        g_autofree char *line = jsonLine(reply);
        chanWrite(st->replyTo, line, strlen(line));
        return;
    }
    p = pendingPush(st, ACT_LOCAL, name, NULL);
    p->reply = jsonLine(reply);
    pendingFlush(st);
}


/* reply with @ret (owned; NULL for {}) */
void
replyReturn(Standin *st, const char *name, json_object *id, json_object *ret)
{
    g_autoptr(json_object) reply = json_object_new_object();

    json_object_object_add(reply, "return", ret ? ret : json_object_new_object());
    sendLine(st, name, id, reply);
}


void
replyError(Standin *st, const char *name, json_object *id,
           const char *fmt, ...)
{
    g_autoptr(json_object) reply = json_object_new_object();
    json_object *error = json_object_new_object();
    g_autofree char *desc = NULL;
    va_list ap;

    va_start(ap, fmt);
    desc = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    json_object_object_add(error, "class", json_object_new_string("GenericError"));
    json_object_object_add(error, "desc", json_object_new_string(desc));
    json_object_object_add(reply, "error", error);
    sendLine(st, name, id, reply);
}


/* an event of the stand-in's; @data is owned (NULL: no data) */
void
emitEvent(Standin *st, const char *name, json_object *data)
{
    g_autoptr(json_object) ev = json_object_new_object();
    json_object *ts = json_object_new_object();
    gint64 now = g_get_real_time();
    g_autofree char *line = NULL;

    json_object_object_add(ts, "seconds", json_object_new_int64(now / G_USEC_PER_SEC));
    json_object_object_add(ts, "microseconds", json_object_new_int64(now % G_USEC_PER_SEC));
    json_object_object_add(ev, "timestamp", ts);
    json_object_object_add(ev, "event", json_object_new_string(name));
    if (data)
        json_object_object_add(ev, "data", data);

    /* QMP: no events before capability negotiation, and none without a
     * client (QEMU drops them too) */
    if (!st->client || !st->negotiated)
        return;
    line = jsonLine(ev);
    chanWrite(st->client, line, strlen(line));
}


/* @spec: "name:type" (type str, int or bool), "*name:type" if optional,
 * NULL-terminated. Replies with QMP's error and returns false when the
 * arguments of @cmd do not match. */
bool
qmpArgsCheck(Standin *st, const char *name, json_object *id,
             json_object *cmd, const char *const *spec)
{
    json_object *args = NULL;
    size_t i;

    if (json_object_object_get_ex(cmd, "arguments", &args) &&
        !json_object_is_type(args, json_type_object)) {
        replyError(st, name, id, "QMP input member 'arguments' must be an object");
        return false;
    }

    for (i = 0; spec[i]; i++) {
        bool optional = spec[i][0] == '*';
        g_auto(GStrv) parts = g_strsplit(spec[i] + (optional ? 1 : 0), ":", 2);
        json_object *val;
        json_type want = json_type_string;
        const char *wantName = "string";

        if (g_str_equal(parts[1], "int")) {
            want = json_type_int;
            wantName = "integer";
        } else if (g_str_equal(parts[1], "bool")) {
            want = json_type_boolean;
            wantName = "boolean";
        }
        if (!args || !json_object_object_get_ex(args, parts[0], &val)) {
            if (optional)
                continue;
            replyError(st, name, id, "Parameter '%s' is missing", parts[0]);
            return false;
        }
        if (!json_object_is_type(val, want)) {
            replyError(st, name, id,
                       "Invalid parameter type for '%s', expected: %s",
                       parts[0], wantName);
            return false;
        }
    }

    if (args) {
        json_object_object_foreach(args, key, val) {
            bool known = false;

            (void) val;
            for (i = 0; spec[i] && !known; i++) {
                const char *s = spec[i] + (spec[i][0] == '*' ? 1 : 0);
                size_t n = strcspn(s, ":");

                known = strlen(key) == n && strncmp(s, key, n) == 0;
            }
            if (!known) {
                replyError(st, name, id, "Parameter '%s' is unexpected", key);
                return false;
            }
        }
    }
    return true;
}
