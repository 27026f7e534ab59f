/*
 * The confidential migration stream's private parts, shared by stream.c
 * (its set-up from QMP, in the main thread) and streamio.c (the mirror
 * vCPU thread that carries it).
 */

#pragma once

#include "standin.h"

#define STREAM_MAGIC "LVMIRROR-STREAM1"
#define STREAM_MAGIC_LEN 16
#define STREAM_SALT_LEN 32
#define STREAM_KEY_LABEL "lvmirror stream key"
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
    char *error;            /* set by the thread: why it failed */
};


/* stream.c */
gboolean streamFinished(gpointer opaque);
