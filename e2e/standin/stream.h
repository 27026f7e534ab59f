/*
 * The confidential migration stream's private parts, shared by stream.c
 * (its set-up from QMP, in the main thread) and streamio.c (the mirror
 * vCPU thread that carries it).
 */

#pragma once

#include "standin.h"

#define STREAM_MAGIC "LVMIRROR-STREAM3"
#define STREAM_MAGIC_LEN 16
/* the migration parameters that give a source's helper the target's
 * nonce and key confirmation (contract version 3) */
#define PARAM_PEER_NONCE "helper-peer-nonce"
#define PARAM_PEER_PROOF "helper-peer-confirmation"
#define STREAM_RECORD_MAX 65536
#define STREAM_TAG_LEN 16
#define STREAM_HDR_LEN 4
/* the name libvirt gives the migration socket it passes (getfd) */
#define STREAM_FDNAME "migrate"
/* how long the target waits for QEMU's incoming socket to appear */
#define STREAM_QEMU_CONNECT_US (10 * G_USEC_PER_SEC)

typedef enum {
    STREAM_SOURCE = 0,
    STREAM_TARGET = 1,
} StreamRole;

struct _Stream {
    Standin *st;
    StreamRole role;
    int listenFd;           /* source: unix, QEMU connects; target: tcp */
    char *sockPath;         /* source: ours; target: QEMU's */
    int remoteFd;           /* source: the socket libvirt connected (fd:) */
    char *host;             /* source: the destination */
    char *port;
    int cancel[2];          /* a byte on cancel[1] stops the thread */
    guint8 key[32];         /* the transport key, copied at the start */
    char *keyId;
    guint8 targetNonce[STREAM_NONCE_LEN];   /* contract version 3 */
    guint32 channel;        /* 0: the main stream, 1..K: parallel */
    guint32 nchannels;      /* 1 + K (multifd-channels), or 1 */
    guint64 accepted;       /* records authenticated from the peer */
    /* a parallel channel's relay (streamio.c): its sockets and key; its
     * parent (the migration's Stream) outlives it */
    Stream *parent;
    guint running;          /* a parent: channels still relaying (mirrorLock) */
    int localFd;
    int peerFd;
    guint8 streamKey[32];
    char *error;            /* set by the thread: why it failed */
};


/* stream.c */
gboolean streamFinished(gpointer opaque);
void streamFree(Stream *s);
/* the QMP error of a confidential migration whose multifd-channels exceed
 * the mirror vCPUs, or NULL */
char *streamChannelsError(Standin *st);
