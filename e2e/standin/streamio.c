/*
 * The confidential migration stream on the first mirror vCPU's thread: the
 * connections, the handshake and the records (the format: stream.c). With
 * parallel channels (multifd), a coordinator thread takes the 1 + K
 * connections, makes each channel's handshake and hands channel c >= 1 to
 * mirror vCPU c-1's thread, the main stream (channel 0) to a thread of its
 * own.
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
/* the mirror vCPU thread                                             */

static bool G_GNUC_PRINTF(2, 3)
fail(Stream *s, const char *fmt, ...)
{
    va_list ap;

    if (!s->error) {
        va_start(ap, fmt);
        s->error = g_strdup_vprintf(fmt, ap);
        va_end(ap);
    }
    return false;
}


/* wait until @fd is ready for @events, or the stream is cancelled */
static bool
waitFd(Stream *s, int fd, short events)
{
    struct pollfd pfd[2] = {
        { .fd = fd, .events = events },
        { .fd = s->cancel[0], .events = POLLIN },
    };

    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return fail(s, "poll: %s", g_strerror(errno));
        }
        if (pfd[1].revents)
            return fail(s, "cancelled");
        if (pfd[0].revents)
            return true;
    }
}


static int
acceptOne(Stream *s, const char *what, bool last)
{
    int fd;

    for (;;) {
        if (!waitFd(s, s->listenFd, POLLIN))
            return -1;
        if ((fd = accept4(s->listenFd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
            break;
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
            fail(s, "accept (%s): %s", what, g_strerror(errno));
            return -1;
        }
    }
    /* as many connections as channels, as QEMU takes them */
    if (last) {
        close(s->listenFd);
        s->listenFd = -1;
    }
    return fd;
}


static int
connectTcp(Stream *s)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    struct addrinfo *ai;
    int err = ECONNREFUSED;
    int rc;

    if ((rc = getaddrinfo(s->host, s->port, &hints, &res)) != 0) {
        fail(s, "cannot resolve %s: %s", s->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        ai->ai_protocol);
        socklen_t len = sizeof(err);

        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        if (errno == EINPROGRESS) {
            if (!waitFd(s, fd, POLLOUT)) {
                close(fd);
                freeaddrinfo(res);
                return -1;
            }
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
                freeaddrinfo(res);
                return fd;
            }
        } else {
            err = errno;
        }
        close(fd);
    }
    freeaddrinfo(res);
    fail(s, "cannot connect to %s port %s: %s", s->host, s->port, g_strerror(err));
    return -1;
}


/* the target: QEMU's incoming socket, once QEMU listens on it */
static int
connectQemu(Stream *s)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    gint64 deadline = g_get_monotonic_time() + STREAM_QEMU_CONNECT_US;
    int fd;

    g_strlcpy(addr.sun_path, s->sockPath, sizeof(addr.sun_path));
    for (;;) {
        struct pollfd cancelled = { .fd = s->cancel[0], .events = POLLIN };

        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
            fail(s, "socket: %s", g_strerror(errno));
            return -1;
        }
        if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0) {
            g_unix_set_fd_nonblocking(fd, TRUE, NULL);
            return fd;
        }
        close(fd);
        if (g_get_monotonic_time() > deadline) {
            fail(s, "QEMU does not listen on its incoming socket");
            return -1;
        }
        /* polled, not read: every channel of the migration sees it */
        if (poll(&cancelled, 1, 0) > 0) {
            fail(s, "cancelled");
            return -1;
        }
        g_usleep(20 * 1000);
    }
}


static bool
writeFull(Stream *s, int fd, const guint8 *buf, size_t len, const char *what)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!waitFd(s, fd, POLLOUT))
                    return false;
                continue;
            }
            return fail(s, "write to %s: %s", what, g_strerror(errno));
        }
        buf += n;
        len -= n;
    }
    return true;
}


static bool
readFull(Stream *s, int fd, guint8 *buf, size_t len, const char *what)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!waitFd(s, fd, POLLIN))
                    return false;
                continue;
            }
            return fail(s, "read from %s: %s", what, g_strerror(errno));
        }
        if (n == 0)
            return fail(s, "%s closed the connection", what);
        buf += n;
        len -= n;
    }
    return true;
}


static void
putBe32(guint8 *p, guint32 v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}


static guint32
getBe32(const guint8 *p)
{
    return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) |
           ((guint32) p[2] << 8) | p[3];
}


static void
putBe64(guint8 *p, guint64 v)
{
    putBe32(p, v >> 32);
    putBe32(p + 4, (guint32) v);
}


/* the header up to the source's proof: magic, channel, nonces, key id */
#define HDR_FIXED (STREAM_MAGIC_LEN + 4 + 2 * STREAM_NONCE_LEN + 1)


static bool
sourceHandshake(Stream *s, int remote, guint32 channel, guint8 *streamKey)
{
    guint8 hs[HDR_FIXED + 255 + STREAM_KEY_LEN];
    guint8 *sourceNonce = hs + STREAM_MAGIC_LEN + 4;
    size_t idLen = strlen(s->keyId);
    size_t len;

    if (idLen > 255)
        return fail(s, "key id too long");
    memcpy(hs, STREAM_MAGIC, STREAM_MAGIC_LEN);
    putBe32(hs + STREAM_MAGIC_LEN, channel);
    if (gnutls_rnd(GNUTLS_RND_NONCE, sourceNonce, STREAM_NONCE_LEN) < 0)
        return fail(s, "no random nonce");
    memcpy(sourceNonce + STREAM_NONCE_LEN, s->targetNonce, STREAM_NONCE_LEN);
    hs[HDR_FIXED - 1] = idLen;
    memcpy(hs + HDR_FIXED, s->keyId, idLen);
    len = HDR_FIXED + idLen;
    if (!streamKeyDerive(s->key, sourceNonce, s->targetNonce, channel, streamKey) ||
        !streamKeySourceProof(streamKey, hs, len, hs + len))
        return fail(s, "HMAC-SHA256 failed");
    return writeFull(s, remote, hs, len + STREAM_KEY_LEN, "the destination");
}


/* @seen: the channels accepted so far (NULL: one channel, 0) */
static bool
targetHandshake(Stream *s, int remote, guint32 *channel, bool *seen,
                guint8 *streamKey)
{
    guint8 hs[HDR_FIXED + 255 + STREAM_KEY_LEN];
    guint8 proof[STREAM_KEY_LEN];
    const guint8 *sourceNonce = hs + STREAM_MAGIC_LEN + 4;
    char id[256];
    size_t idLen;
    bool ok;

    if (!readFull(s, remote, hs, HDR_FIXED, "the source"))
        return false;
    if (memcmp(hs, STREAM_MAGIC, STREAM_MAGIC_LEN) != 0)
        return fail(s, "handshake: not an encrypted migration stream of "
                    "contract version 3 (bad magic)");
    *channel = getBe32(hs + STREAM_MAGIC_LEN);
    if (*channel >= s->nchannels)
        return fail(s, "handshake: channel %u, this migration has %u",
                    *channel, s->nchannels);
    if (seen && seen[*channel])
        return fail(s, "handshake: channel %u a second time", *channel);
    idLen = hs[HDR_FIXED - 1];
    if (!readFull(s, remote, hs + HDR_FIXED, idLen + STREAM_KEY_LEN, "the source"))
        return false;
    memcpy(id, hs + HDR_FIXED, idLen);
    id[idLen] = '\0';
    if (idLen != strlen(s->keyId) || memcmp(id, s->keyId, idLen) != 0) {
        g_autofree char *shown = g_strescape(id, NULL);
        return fail(s, "handshake: the source's key id '%s' is not this helper's '%s'",
                    shown, s->keyId);
    }
    /* key confirmation, before any record: the stream is for this
     * helper's nonce, and the source proves the key derived from it */
    if (!streamKeyEqual(sourceNonce + STREAM_NONCE_LEN, s->targetNonce, STREAM_NONCE_LEN))
        return fail(s, "key confirmation failed: the stream was made for another "
                    "target's nonce (a replayed or misdirected stream)");
    if (!streamKeyDerive(s->key, sourceNonce, s->targetNonce, *channel, streamKey) ||
        !streamKeySourceProof(streamKey, hs, HDR_FIXED + idLen, proof))
        return fail(s, "HMAC-SHA256 failed");
    ok = streamKeyEqual(proof, hs + HDR_FIXED + idLen, STREAM_KEY_LEN);
    gnutls_memset(proof, 0, sizeof(proof));
    if (!ok)
        return fail(s, "key confirmation failed: the source does not prove the "
                    "stream key");
    if (seen)
        seen[*channel] = true;
    return true;
}


/* the nonce and the additional data of record @seq of direction @dir */
static void
recordParams(guint32 dir, guint64 seq, guint32 len, guint8 *nonce, guint8 *aad)
{
    putBe32(nonce, dir);
    putBe64(nonce + 4, seq);
    putBe32(aad, len);
    putBe64(aad + 4, seq);
}


/* One direction's state: bytes to write to its fd. */
typedef struct {
    guint8 *buf;
    size_t len;
    size_t off;
} OutBuf;


static bool
outPending(OutBuf *o)
{
    return o->off < o->len;
}


/* write what @fd takes now */
static bool
outFlush(Stream *s, int fd, OutBuf *o, const char *what)
{
    while (outPending(o)) {
        ssize_t n = write(fd, o->buf + o->off, o->len - o->off);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true;
            return fail(s, "write to %s: %s", what, g_strerror(errno));
        }
        o->off += n;
    }
    return true;
}


/* Relay between QEMU (@local, plaintext) and the peer (@remote, records)
 * until both directions have ended, or fail. */
static bool
relay(Stream *s, int local, int remote, const guint8 *streamKey)
{
    gnutls_datum_t keyDatum = { (unsigned char *) streamKey, 32 };
    gnutls_aead_cipher_hd_t aead = NULL;
    guint32 sendDir = s->role == STREAM_SOURCE ? 0 : 1;
    guint32 recvDir = 1 - sendDir;
    guint64 sendSeq = 0;
    guint64 recvSeq = 0;
    g_autofree guint8 *plain = g_malloc(STREAM_RECORD_MAX);
    g_autofree guint8 *rec = g_malloc(STREAM_HDR_LEN + STREAM_RECORD_MAX + STREAM_TAG_LEN);
    g_autofree guint8 *toRemote = g_malloc(STREAM_HDR_LEN + STREAM_RECORD_MAX + STREAM_TAG_LEN);
    g_autofree guint8 *toLocal = g_malloc(STREAM_RECORD_MAX);
    OutBuf outRemote = { toRemote, 0, 0 };
    OutBuf outLocal = { toLocal, 0, 0 };
    size_t recHave = 0;
    bool localEof = false;
    bool endSent = false;
    bool endReceived = false;
    const char *peer = s->role == STREAM_SOURCE ? "the destination" : "the source";
    bool ok = false;

    if (gnutls_aead_cipher_init(&aead, GNUTLS_CIPHER_AES_256_GCM, &keyDatum) < 0)
        return fail(s, "AES-256-GCM is not available");

    while (!(endSent && endReceived && !outPending(&outRemote) && !outPending(&outLocal))) {
        struct pollfd pfd[3] = {
            { .fd = -1 }, { .fd = -1 }, { .fd = s->cancel[0], .events = POLLIN },
        };
        short localEv = 0;
        short remoteEv = 0;

        if (!endSent && !outPending(&outRemote))
            localEv |= POLLIN;
        if (outPending(&outLocal))
            localEv |= POLLOUT;
        if (!endReceived && !outPending(&outLocal))
            remoteEv |= POLLIN;
        if (outPending(&outRemote))
            remoteEv |= POLLOUT;
        if (localEv) {
            pfd[0].fd = local;
            pfd[0].events = localEv;
        }
        if (remoteEv) {
            pfd[1].fd = remote;
            pfd[1].events = remoteEv;
        }
        if (poll(pfd, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            fail(s, "poll: %s", g_strerror(errno));
            goto out;
        }
        if (pfd[2].revents) {
            fail(s, "cancelled");
            goto out;
        }

        /* QEMU -> peer */
        if (pfd[0].revents && (localEv & POLLIN)) {
            ssize_t n = read(local, plain, STREAM_RECORD_MAX);
            guint8 nonce[12];
            guint8 aad[12];
            size_t clen = STREAM_RECORD_MAX + STREAM_TAG_LEN;

            if (n < 0 && errno != EINTR && errno != EAGAIN) {
                fail(s, "read from QEMU: %s", g_strerror(errno));
                goto out;
            }
            if (n == 0)
                localEof = true;
            if (n >= 0) {
                /* n == 0: the end record of this direction */
                recordParams(sendDir, sendSeq, n, nonce, aad);
                putBe32(toRemote, n);
                if (gnutls_aead_cipher_encrypt(aead, nonce, sizeof(nonce), aad, sizeof(aad),
                                               STREAM_TAG_LEN, plain, n,
                                               toRemote + STREAM_HDR_LEN, &clen) < 0) {
                    fail(s, "encryption failed");
                    goto out;
                }
                sendSeq++;
                outRemote.len = STREAM_HDR_LEN + clen;
                outRemote.off = 0;
                if (localEof)
                    endSent = true;
            }
        }
        if (!outFlush(s, remote, &outRemote, peer))
            goto out;

        /* peer -> QEMU */
        if (pfd[1].revents && (remoteEv & POLLIN)) {
            size_t want = STREAM_HDR_LEN;
            ssize_t n;

            if (recHave >= STREAM_HDR_LEN)
                want = STREAM_HDR_LEN + getBe32(rec) + STREAM_TAG_LEN;
            n = read(remote, rec + recHave, want - recHave);
            if (n < 0 && errno != EINTR && errno != EAGAIN) {
                fail(s, "read from %s: %s", peer, g_strerror(errno));
                goto out;
            }
            if (n == 0) {
                fail(s, "truncated: %s closed the stream before its end", peer);
                goto out;
            }
            if (n > 0)
                recHave += n;
            if (recHave == STREAM_HDR_LEN && getBe32(rec) > STREAM_RECORD_MAX) {
                fail(s, "record %" G_GUINT64_FORMAT " is too long (%u bytes)",
                     recvSeq, getBe32(rec));
                goto out;
            }
            if (recHave > STREAM_HDR_LEN &&
                recHave == STREAM_HDR_LEN + getBe32(rec) + STREAM_TAG_LEN) {
                guint32 len = getBe32(rec);
                guint8 nonce[12];
                guint8 aad[12];
                size_t plen = STREAM_RECORD_MAX;

                recordParams(recvDir, recvSeq, len, nonce, aad);
                if (gnutls_aead_cipher_decrypt(aead, nonce, sizeof(nonce), aad, sizeof(aad),
                                               STREAM_TAG_LEN, rec + STREAM_HDR_LEN,
                                               len + STREAM_TAG_LEN, toLocal, &plen) < 0 ||
                    plen != len) {
                    fail(s, "record %" G_GUINT64_FORMAT " does not authenticate "
                         "(another transport key, or altered)", recvSeq);
                    goto out;
                }
                recvSeq++;
                s->accepted = recvSeq;
                recHave = 0;
                if (len == 0) {
                    endReceived = true;
                    shutdown(local, SHUT_WR);
                } else {
                    outLocal.len = len;
                    outLocal.off = 0;
                }
            }
        }
        if (!outFlush(s, local, &outLocal, "QEMU"))
            goto out;
    }
    ok = true;

 out:
    gnutls_aead_cipher_deinit(aead);
    gnutls_memset(plain, 0, STREAM_RECORD_MAX);
    gnutls_memset(toLocal, 0, STREAM_RECORD_MAX);
    return ok;
}


static void
streamLogEnd(Stream *s, const char *what)
{
    const char *dir = s->role == STREAM_SOURCE ? "outgoing" : "incoming";

    if (s->role == STREAM_TARGET)
        standinLog("migration %s (incoming): %" G_GUINT64_FORMAT " records accepted",
                   what, s->accepted);
    if (s->error)
        standinLog("migration %s (%s) failed: %s", what, dir, s->error);
    else
        standinLog("migration %s (%s) ended", what, dir);
}


static void
streamRun(Stream *s)
{
    guint8 streamKey[32];
    guint32 channel = 0;
    int local = -1;
    int remote = -1;
    int one = 1;

    if (s->role == STREAM_SOURCE) {
        if ((local = acceptOne(s, "QEMU", true)) < 0)
            goto done;
        g_unlink(s->sockPath);
        if (s->remoteFd >= 0) {
            remote = s->remoteFd;
            s->remoteFd = -1;
            g_unix_set_fd_nonblocking(remote, TRUE, NULL);
        } else if ((remote = connectTcp(s)) < 0) {
            goto done;
        }
        setsockopt(remote, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!sourceHandshake(s, remote, 0, streamKey))
            goto done;
    } else {
        if ((remote = acceptOne(s, "the source", true)) < 0)
            goto done;
        /* QEMU first: whatever happens next, closing this fails QEMU's
         * incoming migration */
        if ((local = connectQemu(s)) < 0)
            goto done;
        if (!targetHandshake(s, remote, &channel, NULL, streamKey))
            goto done;
    }
    relay(s, local, remote, streamKey);

 done:
    gnutls_memset(streamKey, 0, sizeof(streamKey));
    gnutls_memset(s->key, 0, sizeof(s->key));
    /* logged here, before QEMU learns of it: a target's QEMU exits at
     * once, and the stand-in with it */
    streamLogEnd(s, "stream");
    /* a failure closes both sides: both QEMUs see the migration fail */
    if (local >= 0)
        close(local);
    if (remote >= 0)
        close(remote);
    g_idle_add(streamFinished, s);
}


/* ------------------------------------------------------------------ */
/* parallel channels                                                  */

/* a channel's relay, on its thread: mirror vCPU c-1's, or the main
 * stream's own */
static void
streamChannelRun(Stream *c)
{
    Stream *parent = c->parent;
    g_autofree char *what = g_strdup_printf("channel %u", c->channel);
    char x = 'x';

    relay(c, c->localFd, c->peerFd, c->streamKey);
    gnutls_memset(c->streamKey, 0, sizeof(c->streamKey));
    streamLogEnd(c, what);
    /* a failed channel fails the whole migration: the others stop too */
    if (c->error && write(parent->cancel[1], &x, 1) < 0)
        standinLog("migration %s: cannot cancel the others", what);
    close(c->localFd);
    close(c->peerFd);
    c->localFd = c->peerFd = -1;
    c->cancel[0] = -1;              /* the parent's */
    g_mutex_lock(&parent->st->mirrorLock);
    parent->running--;
    g_cond_broadcast(&parent->st->mirrorCond);
    g_mutex_unlock(&parent->st->mirrorLock);
    g_idle_add(streamFinished, c);
}


static gpointer
streamMainChannelThread(gpointer opaque)
{
    streamChannelRun(opaque);
    return NULL;
}


static Stream *
streamChannelNew(Stream *s, guint32 channel, int local, int peer,
                 const guint8 *streamKey)
{
    Stream *c = g_new0(Stream, 1);

    c->st = s->st;
    c->role = s->role;
    c->parent = s;
    c->channel = channel;
    c->nchannels = s->nchannels;
    c->listenFd = c->remoteFd = -1;
    c->cancel[0] = s->cancel[0];    /* polled, never read */
    c->cancel[1] = -1;
    c->localFd = local;
    c->peerFd = peer;
    memcpy(c->streamKey, streamKey, sizeof(c->streamKey));
    return c;
}


/* channel 0 on a thread of its own, channel c on mirror vCPU c-1 */
static void
streamChannelStart(Stream *s, Stream *c)
{
    Standin *st = s->st;

    g_mutex_lock(&st->mirrorLock);
    s->running++;
    if (c->channel > 0) {
        st->mirror[c->channel - 1].channelJob = c;
        g_cond_broadcast(&st->mirrorCond);
    }
    g_mutex_unlock(&st->mirrorLock);
    if (c->channel == 0)
        g_thread_unref(g_thread_new("mirror-stream-main", streamMainChannelThread, c));
}


/* the target: QEMU's connection for a channel, channel 0 (QEMU's main
 * stream) before any other */
static bool
streamTargetConnect(Stream *s, Stream **held, guint32 channel, int remote,
                    const guint8 *streamKey, bool *mainUp)
{
    int local;

    if (channel > 0 && !*mainUp) {
        held[channel] = streamChannelNew(s, channel, -1, remote, streamKey);
        return true;
    }
    if ((local = connectQemu(s)) < 0)
        return false;
    streamChannelStart(s, streamChannelNew(s, channel, local, remote, streamKey));
    if (channel == 0) {
        guint32 i;

        *mainUp = true;
        for (i = 1; i < s->nchannels; i++) {
            if (!held[i])
                continue;
            if ((held[i]->localFd = connectQemu(s)) < 0)
                return false;
            streamChannelStart(s, g_steal_pointer(&held[i]));
        }
    }
    return true;
}


/* the coordinator of a migration with parallel channels: QEMU's 1 + K
 * connections (the first one is its main stream) on the source, the
 * source's on the target; each channel's handshake, then its relay */
static gpointer
streamCoordinate(gpointer opaque)
{
    Stream *s = opaque;
    Standin *st = s->st;
    g_autofree bool *seen = g_new0(bool, s->nchannels);
    g_autofree Stream **held = g_new0(Stream *, s->nchannels);
    guint8 streamKey[32];
    bool mainUp = false;
    guint32 i;
    char x = 'x';

    standinLog("migration stream: %u channels (the main stream and %u parallel)",
               s->nchannels, s->nchannels - 1);
    for (i = 0; i < s->nchannels; i++) {
        bool last = i == s->nchannels - 1;
        int one = 1;

        if (s->role == STREAM_SOURCE) {
            int local;
            int remote;

            if ((local = acceptOne(s, "QEMU", last)) < 0)
                break;
            if ((remote = connectTcp(s)) < 0) {
                close(local);
                break;
            }
            setsockopt(remote, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            if (!sourceHandshake(s, remote, i, streamKey)) {
                close(local);
                close(remote);
                break;
            }
            streamChannelStart(s, streamChannelNew(s, i, local, remote, streamKey));
        } else {
            guint32 channel;
            int remote;

            if ((remote = acceptOne(s, "the source", last)) < 0)
                break;
            if (!targetHandshake(s, remote, &channel, seen, streamKey)) {
                close(remote);
                break;
            }
            if (!streamTargetConnect(s, held, channel, remote, streamKey, &mainUp))
                break;
        }
    }
    gnutls_memset(streamKey, 0, sizeof(streamKey));
    gnutls_memset(s->key, 0, sizeof(s->key));
    if (s->role == STREAM_SOURCE)
        g_unlink(s->sockPath);
    for (i = 0; i < s->nchannels; i++)
        streamFree(held[i]);
    if (s->error) {
        streamLogEnd(s, "stream");
        if (write(s->cancel[1], &x, 1) < 0)
            standinLog("migration stream: cannot cancel the channels");
    }
    /* the migration's Stream outlives its channels */
    g_mutex_lock(&st->mirrorLock);
    while (s->running > 0)
        g_cond_wait(&st->mirrorCond, &st->mirrorLock);
    g_mutex_unlock(&st->mirrorLock);
    g_idle_add(streamFinished, s);
    return NULL;
}


/* a mirror vCPU's loop body (helper.c), with st->mirrorLock held: the
 * first one runs a migration's stream handed to it (or, with parallel
 * channels, starts its coordinator); each runs a parallel channel handed
 * to it */
bool
streamVcpuWork(Standin *st, MirrorVcpu *vcpu)
{
    Stream *s = NULL;

    if (vcpu->channelJob) {
        s = vcpu->channelJob;
        vcpu->channelJob = NULL;
        g_mutex_unlock(&st->mirrorLock);
        streamChannelRun(s);
        g_mutex_lock(&st->mirrorLock);
        return true;
    }
    if (vcpu != &st->mirror[0] || !(s = st->streamJob))
        return false;
    st->streamJob = NULL;
    g_mutex_unlock(&st->mirrorLock);
    if (s->nchannels > 1)
        g_thread_unref(g_thread_new("mirror-stream", streamCoordinate, s));
    else
        streamRun(s);
    g_mutex_lock(&st->mirrorLock);
    return true;
}
