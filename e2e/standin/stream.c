/*
 * The confidential migration stream: the transport key protects it
 * (docs/kbase/confidential-migration.rst; the stream format is below).
 *
 * Source: 'migrate' of an SEV guest with guest-assisted on, with a tcp:
 * URI or "fd:migrate" (libvirt connects to the destination itself and
 * passes the socket with getfd "migrate": the stand-in keeps it). QEMU
 * migrates to a unix socket of the stand-in (in its private runtime
 * directory); the first mirror vCPU thread accepts QEMU's connection,
 * connects to the real destination (or takes libvirt's socket) and sends
 * the handshake and the records.
 *
 * Target: 'start-migrate-incoming' with a tcp: URI. The stand-in binds
 * that address itself (a bind failure is the command's error) and QEMU
 * gets migrate-incoming on a unix socket; the first mirror vCPU thread
 * accepts the source's connection, connects to QEMU, checks the handshake,
 * decrypts and authenticates each record and writes the plaintext to QEMU.
 *
 * The wire (contract version 3; the key schedule: streamkey.c):
 *
 *   before 'migrate', the source's helper gets the target's nonce and its
 *   key confirmation (migration parameters helper-peer-nonce and
 *   helper-peer-confirmation, hex) and checks the confirmation under its
 *   own transport key: 'migrate' fails ("key confirmation failed") before
 *   anything is sent if it does not match, or was not given.
 *   header (source -> target, clear):
 *       "LVMIRROR-STREAM3" (16 bytes), channel_be32 (0: one channel today),
 *       source nonce[32] (random), target nonce[32], key-id length u8,
 *       key-id, source proof[32]
 *   stream key = HMAC-SHA256(transport key, "lvmirror v3 stream key" ||
 *       0x00 || source nonce || target nonce || channel_be32)
 *   source proof = HMAC-SHA256(stream key, "lvmirror v3 source
 *       confirmation" || 0x00 || the header before the proof); the target
 *       checks the magic, the key id, that the target nonce is its own
 *       (used once) and the proof before it accepts any record
 *       ("key confirmation failed" otherwise)
 *   record: len_be32 (plaintext bytes, <= 65536; 0 = end of this
 *       direction) || AES-256-GCM(plaintext) || tag[16],
 *       nonce = dir_be32 || seq_be64, AAD = len_be32 || seq_be64, seq from
 *       0 in each direction; dir 0 is source -> target, 1 target -> source
 *       (QEMU's own TLS handshake needs the way back). Every stream (and
 *       every channel) has a key of its own, so a record nonce is never
 *       used twice under one key.
 *
 * Any failure (a key confirmation that fails, a record that does not
 * authenticate, a key-id mismatch, a stream cut before its end record, a
 * peer or QEMU that goes away) closes both sockets: QEMU sees its
 * migration socket close, on both hosts. The stream key lives on the vCPU
 * thread's stack and is wiped after use; no key byte is logged.
 */

#define _GNU_SOURCE /* accept4 */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "stream.h"

/* ------------------------------------------------------------------ */
/* set-up, in the main thread                                         */

static const char *
streamRunDir(Standin *st, GError **err)
{
    if (!st->streamRunDir &&
        !(st->streamRunDir = g_dir_make_tmp("qemu-mirror-standin-XXXXXX", err)))
        return NULL;
    return st->streamRunDir;
}


/* "tcp:HOST:PORT[,options]", HOST possibly in brackets; false if @uri is
 * no tcp: URI */
static bool
streamParseTcp(const char *uri, char **host, char **port)
{
    g_autofree char *rest = NULL;
    char *colon;
    char *comma;

    if (!g_str_has_prefix(uri, "tcp:"))
        return false;
    rest = g_strdup(uri + 4);
    if ((comma = strchr(rest, ',')))
        *comma = '\0';
    if (!(colon = strrchr(rest, ':')) || !colon[1])
        return false;
    *colon = '\0';
    if (rest[0] == '[' && colon > rest && colon[-1] == ']') {
        colon[-1] = '\0';
        *host = g_strdup(rest + 1);
    } else {
        *host = g_strdup(rest);
    }
    *port = g_strdup(colon + 1);
    return true;
}


void
streamFree(Stream *s)
{
    if (!s)
        return;
    if (s->localFd >= 0)
        close(s->localFd);
    if (s->peerFd >= 0)
        close(s->peerFd);
    gnutls_memset(s->streamKey, 0, sizeof(s->streamKey));
    if (s->listenFd >= 0)
        close(s->listenFd);
    if (s->remoteFd >= 0)
        close(s->remoteFd);
    if (s->role == STREAM_SOURCE && s->sockPath)
        g_unlink(s->sockPath);
    if (s->cancel[0] >= 0)
        close(s->cancel[0]);
    if (s->cancel[1] >= 0)
        close(s->cancel[1]);
    gnutls_memset(s->key, 0, sizeof(s->key));
    g_free(s->sockPath);
    g_free(s->host);
    g_free(s->port);
    g_free(s->keyId);
    g_free(s->error);
    g_free(s);
}


static Stream *
streamNew(Standin *st, StreamRole role, GError **err)
{
    g_autoptr(GError) local = NULL;
    Stream *s = g_new0(Stream, 1);
    const guint8 *key;
    const char *keyId = NULL;

    s->st = st;
    s->role = role;
    s->listenFd = -1;
    s->remoteFd = -1;
    s->localFd = -1;
    s->peerFd = -1;
    s->cancel[0] = s->cancel[1] = -1;
    s->nchannels = 1;
    if (st->multifd)
        s->nchannels += st->multifdChannels > 0 ? st->multifdChannels : 2;
    if (!(key = helperTransportKey(st, &keyId))) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "the migration helper holds no transport key");
        streamFree(s);
        return NULL;
    }
    memcpy(s->key, key, sizeof(s->key));
    s->keyId = g_strdup(keyId);
    if (role == STREAM_TARGET) {
        /* contract version 3: the nonce this helper reported, once */
        if (!st->helperNonceSet) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "the migration helper has no unused nonce (its key "
                        "was taken for another incoming stream)");
            streamFree(s);
            return NULL;
        }
        memcpy(s->targetNonce, st->helperNonce, STREAM_NONCE_LEN);
    } else {
        guint8 proof[STREAM_KEY_LEN];
        bool ok;

        /* contract version 3: the target proves the transport key and its
         * nonce before anything leaves this host */
        if (!st->peerSet) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "key confirmation failed: the target's nonce and key "
                        "confirmation were not set (migration parameters "
                        "helper-peer-nonce, helper-peer-confirmation)");
            streamFree(s);
            return NULL;
        }
        st->peerSet = false;
        ok = streamKeyTargetProof(s->key, s->keyId, st->peerNonce, proof) &&
            streamKeyEqual(proof, st->peerProof, sizeof(proof));
        gnutls_memset(proof, 0, sizeof(proof));
        if (!ok) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "key confirmation failed: the target's helper does not "
                        "prove the transport key '%s'", s->keyId);
            streamFree(s);
            return NULL;
        }
        memcpy(s->targetNonce, st->peerNonce, STREAM_NONCE_LEN);
    }
    if (!g_unix_open_pipe(s->cancel, FD_CLOEXEC, err) ||
        !g_unix_set_fd_nonblocking(s->cancel[0], TRUE, err)) {
        streamFree(s);
        return NULL;
    }
    return s;
}


/* hand @s to the first mirror vCPU thread */
static bool
streamStart(Standin *st, Stream *s, GError **err)
{
    if (st->cl.mirrorVcpus == 0 || !st->mirror) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "no mirror vCPU to run the migration stream");
        return false;
    }
    g_mutex_lock(&st->mirrorLock);
    st->streamJob = s;
    g_cond_broadcast(&st->mirrorCond);
    g_mutex_unlock(&st->mirrorLock);
    st->stream = s;
    return true;
}


/* the thread finished @s (idle callback, main thread) */
gboolean
streamFinished(gpointer opaque)
{
    Stream *s = opaque;
    Standin *st = s->st;

    if (st->stream == s)
        st->stream = NULL;
    /* contract version 3: a target's nonce serves one incoming stream; a
     * second one needs a new key, and a new nonce with it */
    if (s->role == STREAM_TARGET)
        st->helperNonceSet = false;
    streamFree(s);
    return G_SOURCE_REMOVE;
}


/* QEMU refused the migration: the thread stops */
void
streamCancel(Standin *st)
{
    char c = 'x';

    if (!st->stream)
        return;
    standinLog("migration stream: cancelled");
    if (write(st->stream->cancel[1], &c, 1) < 0)
        standinLog("migration stream: cannot cancel: %s", g_strerror(errno));
}


/* 'migrate' of an SEV guest with guest-assisted on */
void
streamMigrate(Standin *st, const char *name, json_object *id, json_object *cmd)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) fwd = NULL;
    g_autofree char *out = NULL;
    g_autofree char *qemuUri = NULL;
    json_object *args = NULL;
    json_object *newArgs;
    const char *uri;
    const char *dir;
    g_autofree char *chanErr = NULL;
    Stream *s = NULL;

    json_object_object_get_ex(cmd, "arguments", &args);
    if (!(uri = jsonGetString(args, "uri"))) {
        replyError(st, name, id, "Parameter 'uri' is missing");
        return;
    }
    if (st->stream) {
        replyError(st, name, id, "a migration stream is active already");
        return;
    }
    if ((chanErr = streamChannelsError(st))) {
        replyError(st, name, id, "%s", chanErr);
        return;
    }
    if (!(s = streamNew(st, STREAM_SOURCE, &err)))
        goto error;
    if (s->nchannels > 1 && !g_str_has_prefix(uri, "tcp:")) {
        g_set_error(&err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "parallel channels need a tcp: URI");
        goto error;
    }
    if (g_str_equal(uri, "fd:" STREAM_FDNAME)) {
        /* libvirt connected to the destination and passed the socket */
        if (st->streamMigrateFd < 0) {
            g_set_error(&err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "File descriptor named '%s' has not been found", STREAM_FDNAME);
            goto error;
        }
        s->remoteFd = st->streamMigrateFd;
        st->streamMigrateFd = -1;
        s->host = g_strdup("the socket libvirt passed");
        s->port = g_strdup("(fd:" STREAM_FDNAME ")");
    } else if (!streamParseTcp(uri, &s->host, &s->port)) {
        g_set_error(&err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "the encrypted migration stream supports tcp: and fd:%s "
                    "URIs only", STREAM_FDNAME);
        goto error;
    }
    if (!(dir = streamRunDir(st, &err)))
        goto error;
    s->sockPath = g_strdup_printf("%s/migrate-out-%08x.sock", dir, g_random_int());
    if ((s->listenFd = processListenUnix(s->sockPath, &err)) < 0)
        goto error;
    if (!streamStart(st, s, &err))
        goto error;

    /* QEMU's migrate, to the stand-in's socket */
    fwd = json_object_new_object();
    newArgs = json_object_new_object();
    json_object_object_foreach(args, key, val) {
        if (!g_str_equal(key, "uri"))
            json_object_object_add(newArgs, key, json_object_get(val));
    }
    qemuUri = g_strdup_printf("unix:%s", s->sockPath);
    json_object_object_add(newArgs, "uri", json_object_new_string(qemuUri));
    json_object_object_add(fwd, "execute", json_object_new_string(name));
    json_object_object_add(fwd, "arguments", newArgs);
    if (id)
        json_object_object_add(fwd, "id", json_object_get(id));
    out = jsonLine(fwd);
    if (s->remoteFd < 0 && !st->tlsHostname) {
        /* QEMU takes the TLS hostname from a tcp: URI; it migrates to the
         * stand-in's unix socket instead, so it gets it as a parameter */
        g_autoptr(json_object) set = json_object_new_object();
        g_autofree char *setOut = NULL;
        json_object *setArgs = json_object_new_object();

        json_object_object_add(setArgs, "tls-hostname", json_object_new_string(s->host));
        json_object_object_add(set, "execute", json_object_new_string("migrate-set-parameters"));
        json_object_object_add(set, "arguments", setArgs);
        json_object_object_add(set, "id", json_object_new_string(OWN_ID_PREFIX "tls-hostname"));
        setOut = jsonLine(set);
        chanWrite(st->qemu, setOut, strlen(setOut));
    }
    standinLog("QMP %s: encrypted stream to %s port %s (key id '%s'), QEMU "
               "migrates to the stand-in", name, s->host, s->port, s->keyId);
    pendingPush(st, ACT_MIGRATE, name, id);
    chanWrite(st->qemu, out, strlen(out));
    return;

 error:
    standinLog("QMP %s: refused: %s", name, err->message);
    replyError(st, name, id, "%s", err->message);
    streamFree(s);
}


static int
streamBind(const char *host, const char *port, GError **err)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE,
    };
    struct addrinfo *res = NULL;
    struct addrinfo *ai;
    int saved = 0;
    int rc;

    if ((rc = getaddrinfo(*host ? host : NULL, port, &hints, &res)) != 0) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "address resolution failed for %s:%s: %s", host, port,
                    gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int on = 1;
        int off = 0;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

        if (fd < 0) {
            saved = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        saved = errno;
        close(fd);
    }
    freeaddrinfo(res);
    /* QEMU's words */
    g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                "Failed to bind socket: %s", g_strerror(saved));
    return -1;
}


/* getfd {"fdname": "migrate"} of an SEV guest: libvirt passes the socket
 * it connected to the destination (qemuMigrationSrcConnect) for 'migrate'
 * "fd:migrate"; the stand-in keeps it, QEMU never sees it. Other names go
 * to QEMU (memcrypt.c keeps a duplicate). */
void
streamGetfd(Standin *st, const char *name, json_object *id, json_object *cmd,
            const char *line, gsize len)
{
    json_object *args = NULL;
    const char *fdname;
    int fd;

    json_object_object_get_ex(cmd, "arguments", &args);
    fdname = jsonGetString(args, "fdname");
    if (!fdname || !g_str_equal(fdname, STREAM_FDNAME)) {
        memcryptGetfd(st, name, id, cmd, line, len);
        return;
    }
    if (!st->client || st->client->fds->len == 0) {
        replyError(st, name, id, "No file descriptor supplied via SCM_RIGHTS");
        return;
    }
    fd = g_array_index(st->client->fds, int, 0);
    g_array_remove_index(st->client->fds, 0);
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        standinLog("QMP %s: %s", name, g_strerror(errno));
    if (st->streamMigrateFd >= 0)
        close(st->streamMigrateFd);
    st->streamMigrateFd = fd;
    standinLog("QMP %s: the stand-in keeps the migration socket", name);
    replyReturn(st, name, id, NULL);
}


/* closefd {"fdname": "migrate"}: the one getfd kept, else QEMU's */
void
streamClosefd(Standin *st, const char *name, json_object *id, json_object *cmd,
              const char *line, gsize len)
{
    json_object *args = NULL;
    const char *fdname;

    json_object_object_get_ex(cmd, "arguments", &args);
    fdname = jsonGetString(args, "fdname");
    if (!fdname || !g_str_equal(fdname, STREAM_FDNAME) || st->streamMigrateFd < 0) {
        memcryptClosefd(st, name, id, cmd, line, len);
        return;
    }
    close(st->streamMigrateFd);
    st->streamMigrateFd = -1;
    replyReturn(st, name, id, NULL);
}


/* start-migrate-incoming of a target: bind @uri's address and return the
 * URI that QEMU listens on instead; NULL and @err on failure */
char *
streamIncoming(Standin *st, const char *uri, GError **err)
{
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;
    const char *dir;
    Stream *s = NULL;

    if (st->stream) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "a migration stream is active already");
        return NULL;
    }
    if (!streamParseTcp(uri, &host, &port)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "the encrypted migration stream supports tcp: URIs only");
        return NULL;
    }
    {
        g_autofree char *chanErr = streamChannelsError(st);

        if (chanErr) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s", chanErr);
            return NULL;
        }
    }
    if (!(s = streamNew(st, STREAM_TARGET, err)))
        return NULL;
    if (!(dir = streamRunDir(st, err)) ||
        (s->listenFd = streamBind(host, port, err)) < 0) {
        streamFree(s);
        return NULL;
    }
    s->sockPath = g_strdup_printf("%s/migrate-in-%08x.sock", dir, g_random_int());
    if (!streamStart(st, s, err)) {
        streamFree(s);
        return NULL;
    }
    standinLog("start-migrate-incoming: encrypted stream on %s port %s (key id '%s'), "
               "QEMU listens on the stand-in's socket", host, port, s->keyId);
    return g_strdup_printf("unix:%s", s->sockPath);
}


/* migrate-set-parameters: helper-peer-nonce and helper-peer-confirmation
 * (contract version 3) are the helper's, for the next 'migrate'; the rest
 * goes to QEMU, which does not know them */
void
streamSetParameters(Standin *st, const char *name, json_object *id,
                    json_object *cmd, const char *line, gsize len)
{
    json_object *args = NULL;
    json_object *rest;
    g_autoptr(json_object) fwd = NULL;
    g_autofree char *out = NULL;
    const char *nonce;
    const char *proof;
    bool other = false;

    json_object_object_get_ex(cmd, "arguments", &args);
    if (args && json_object_object_get_ex(args, "multifd-channels", &rest) &&
        json_object_is_type(rest, json_type_int))
        st->multifdChannels = json_object_get_int(rest);
    if (args && json_object_object_get_ex(args, "tls-hostname", &rest))
        st->tlsHostname = json_object_is_type(rest, json_type_string) &&
            *json_object_get_string(rest);
    nonce = jsonGetString(args, PARAM_PEER_NONCE);
    proof = jsonGetString(args, PARAM_PEER_PROOF);
    if (!args || (!json_object_object_get_ex(args, PARAM_PEER_NONCE, NULL) &&
                  !json_object_object_get_ex(args, PARAM_PEER_PROOF, NULL))) {
        forward(st, ACT_FORWARD, name, id, line, len);
        return;
    }
    if (!streamKeyUnhex(nonce, st->peerNonce, STREAM_NONCE_LEN) ||
        !streamKeyUnhex(proof, st->peerProof, STREAM_KEY_LEN)) {
        st->peerSet = false;
        replyError(st, name, id, "Parameters '%s' and '%s' expect %d hex digits each",
                   PARAM_PEER_NONCE, PARAM_PEER_PROOF, STREAM_NONCE_LEN * 2);
        return;
    }
    st->peerSet = true;
    standinLog("QMP %s: the target's nonce and key confirmation (intercepted)", name);

    rest = json_object_new_object();
    json_object_object_foreach(args, key, val) {
        if (!g_str_equal(key, PARAM_PEER_NONCE) && !g_str_equal(key, PARAM_PEER_PROOF)) {
            json_object_object_add(rest, key, json_object_get(val));
            other = true;
        }
    }
    if (!other) {
        json_object_put(rest);
        replyReturn(st, name, id, NULL);
        return;
    }
    fwd = json_object_new_object();
    json_object_object_add(fwd, "execute", json_object_new_string(name));
    json_object_object_add(fwd, "arguments", rest);
    if (id)
        json_object_object_add(fwd, "id", json_object_get(id));
    out = jsonLine(fwd);
    pendingPush(st, ACT_FORWARD, name, id);
    chanWrite(st->qemu, out, strlen(out));
}


char *
streamChannelsError(Standin *st)
{
    int k = st->multifdChannels > 0 ? st->multifdChannels : 2;

    if (!st->multifd || (guint) k <= st->cl.mirrorVcpus)
        return NULL;
    return g_strdup_printf("multifd-channels %d exceeds the %u mirror vCPU(s): each "
                           "parallel channel is encrypted by one mirror vCPU",
                           k, st->cl.mirrorVcpus);
}


void
streamCleanup(Standin *st)
{
    if (st->streamRunDir) {
        g_autoptr(GDir) dir = g_dir_open(st->streamRunDir, 0, NULL);
        const char *name;

        while (dir && (name = g_dir_read_name(dir))) {
            g_autofree char *path = g_build_filename(st->streamRunDir, name, NULL);
            g_unlink(path);
        }
        g_rmdir(st->streamRunDir);
    }
}


