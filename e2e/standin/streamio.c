/*
 * The confidential migration stream on the first mirror vCPU's thread: the
 * connections, the handshake and the records (the format: stream.c).
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
acceptOne(Stream *s, const char *what)
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
    /* one connection, as QEMU takes one */
    close(s->listenFd);
    s->listenFd = -1;
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
        char c;

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
        if (read(s->cancel[0], &c, 1) == 1) {
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
sourceHandshake(Stream *s, int remote, guint8 *streamKey)
{
    guint8 hs[HDR_FIXED + 255 + STREAM_KEY_LEN];
    guint8 *sourceNonce = hs + STREAM_MAGIC_LEN + 4;
    size_t idLen = strlen(s->keyId);
    size_t len;

    if (idLen > 255)
        return fail(s, "key id too long");
    memcpy(hs, STREAM_MAGIC, STREAM_MAGIC_LEN);
    putBe32(hs + STREAM_MAGIC_LEN, s->channel);
    if (gnutls_rnd(GNUTLS_RND_NONCE, sourceNonce, STREAM_NONCE_LEN) < 0)
        return fail(s, "no random nonce");
    memcpy(sourceNonce + STREAM_NONCE_LEN, s->targetNonce, STREAM_NONCE_LEN);
    hs[HDR_FIXED - 1] = idLen;
    memcpy(hs + HDR_FIXED, s->keyId, idLen);
    len = HDR_FIXED + idLen;
    if (!streamKeyDerive(s->key, sourceNonce, s->targetNonce, s->channel, streamKey) ||
        !streamKeySourceProof(streamKey, hs, len, hs + len))
        return fail(s, "HMAC-SHA256 failed");
    return writeFull(s, remote, hs, len + STREAM_KEY_LEN, "the destination");
}


static bool
targetHandshake(Stream *s, int remote, guint8 *streamKey)
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
    if (getBe32(hs + STREAM_MAGIC_LEN) != s->channel)
        return fail(s, "handshake: channel %u, this stream is channel %u",
                    getBe32(hs + STREAM_MAGIC_LEN), s->channel);
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
    if (!streamKeyDerive(s->key, sourceNonce, s->targetNonce, s->channel, streamKey) ||
        !streamKeySourceProof(streamKey, hs, HDR_FIXED + idLen, proof))
        return fail(s, "HMAC-SHA256 failed");
    ok = streamKeyEqual(proof, hs + HDR_FIXED + idLen, STREAM_KEY_LEN);
    gnutls_memset(proof, 0, sizeof(proof));
    if (!ok)
        return fail(s, "key confirmation failed: the source does not prove the "
                    "stream key");
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
streamRun(Stream *s)
{
    guint8 streamKey[32];
    int local = -1;
    int remote = -1;
    int one = 1;

    if (s->role == STREAM_SOURCE) {
        if ((local = acceptOne(s, "QEMU")) < 0)
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
        if (!sourceHandshake(s, remote, streamKey))
            goto done;
    } else {
        if ((remote = acceptOne(s, "the source")) < 0)
            goto done;
        /* QEMU first: whatever happens next, closing this fails QEMU's
         * incoming migration */
        if ((local = connectQemu(s)) < 0)
            goto done;
        if (!targetHandshake(s, remote, streamKey))
            goto done;
    }
    relay(s, local, remote, streamKey);

 done:
    gnutls_memset(streamKey, 0, sizeof(streamKey));
    gnutls_memset(s->key, 0, sizeof(s->key));
    /* logged here, before QEMU learns of it: a target's QEMU exits at
     * once, and the stand-in with it */
    if (s->role == STREAM_TARGET)
        standinLog("migration stream (incoming): %" G_GUINT64_FORMAT " records accepted",
                   s->accepted);
    if (s->error)
        standinLog("migration stream (%s) failed: %s",
                   s->role == STREAM_SOURCE ? "outgoing" : "incoming", s->error);
    else
        standinLog("migration stream (%s) ended",
                   s->role == STREAM_SOURCE ? "outgoing" : "incoming");
    /* a failure closes both sides: both QEMUs see the migration fail */
    if (local >= 0)
        close(local);
    if (remote >= 0)
        close(remote);
    g_idle_add(streamFinished, s);
}


/* the first mirror vCPU's loop body (helper.c), with st->mirrorLock held:
 * run a stream handed to it, if any */
bool
streamVcpuWork(Standin *st)
{
    Stream *s = st->streamJob;

    if (!s)
        return false;
    st->streamJob = NULL;
    g_mutex_unlock(&st->mirrorLock);
    streamRun(s);
    g_mutex_lock(&st->mirrorLock);
    return true;
}
