/*
 * virt-qemu-sev-owner-util.h: helpers of the guest owner's tool (error
 * messages, little-endian integers, files, base64, numbers)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#define SEV_OWNER_PROGNAME "virt-qemu-sev-owner"

/* the largest key, certificate or configuration file read */
#define SMALL_FILE_MAX (64 * 1024)

/* A heap buffer that may hold secret material: erased when freed. */
typedef struct {
    uint8_t *data;
    size_t len;
} sevOwnerBuf;

void
sevOwnerBufClear(sevOwnerBuf *buf);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sevOwnerBuf, sevOwnerBufClear);

void
sevOwnerError(const char *fmt, ...)
    G_GNUC_PRINTF(1, 2);

char *
sevOwnerTakeLastError(void);

void
sevOwnerPutLE32(uint8_t *p, uint32_t v);

uint32_t
sevOwnerGetLE32(const uint8_t *p);

void
sevOwnerReverse(uint8_t *dst, const uint8_t *src, size_t len);

int
sevOwnerParseHex(const char *what,
                 const char *str,
                 uint8_t *out,
                 size_t len);

int
sevOwnerDecodeBase64(const char *what,
                     const char *text,
                     size_t expect,
                     sevOwnerBuf *out);

int
sevOwnerReadFile(const char *path,
                 size_t maxlen,
                 sevOwnerBuf *out);

int
sevOwnerReadRawKey(const char *path,
                   uint8_t *out,
                   size_t len);

int
sevOwnerReadBase64File(const char *path,
                       size_t expect,
                       sevOwnerBuf *out);

int
sevOwnerReadBlobFile(const char *path,
                     sevOwnerBuf *out);

int
sevOwnerWriteFile(const char *path,
                  const void *data,
                  size_t len,
                  bool secret,
                  bool exclusive);

int
sevOwnerWriteBase64File(const char *path,
                        const uint8_t *data,
                        size_t len);

int
sevOwnerParseUInt(const char *what,
                  const char *str,
                  unsigned int max,
                  unsigned int *out);
