/*
 * virt-qemu-sev-owner-util.c: helpers of the guest owner's tool (error
 * messages, little-endian integers, files, base64, numbers)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <config.h>
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virfile.h"
#include "virsecureerase.h"
#include "virstring.h"

#include "virt-qemu-sev-owner-util.h"

#define VIR_FROM_THIS VIR_FROM_NONE


void
sevOwnerBufClear(sevOwnerBuf *buf)
{
    if (buf->data) {
        virSecureErase(buf->data, buf->len);
        g_free(buf->data);
    }
    buf->data = NULL;
    buf->len = 0;
}


/* the last error reported, for the owner's service to send back */
static char *sevOwnerLastErrorMsg;

void
sevOwnerError(const char *fmt, ...)
{
    va_list args;
    g_autofree char *msg = NULL;

    va_start(args, fmt);
    msg = g_strdup_vprintf(fmt, args);
    va_end(args);

    g_printerr("%s: %s\n", SEV_OWNER_PROGNAME, msg);
    g_free(sevOwnerLastErrorMsg);
    sevOwnerLastErrorMsg = g_steal_pointer(&msg);
}


/* The last error reported (NULL: none), taken: the next call returns NULL. */
char *
sevOwnerTakeLastError(void)
{
    return g_steal_pointer(&sevOwnerLastErrorMsg);
}


void
sevOwnerPutLE32(uint8_t *p, uint32_t v)
{
    p[0] = v & 0xff;
    p[1] = (v >> 8) & 0xff;
    p[2] = (v >> 16) & 0xff;
    p[3] = (v >> 24) & 0xff;
}


uint32_t
sevOwnerGetLE32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
        ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}


void
sevOwnerReverse(uint8_t *dst, const uint8_t *src, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        dst[i] = src[len - 1 - i];
}


/* Exactly @len bytes from @len*2 hex digits. */
int
sevOwnerParseHex(const char *what,
                 const char *str,
                 uint8_t *out,
                 size_t len)
{
    size_t i;

    if (strlen(str) != len * 2) {
        sevOwnerError(_("%1$s must be %2$zu hex digits"), what, len * 2);
        return -1;
    }

    for (i = 0; i < len; i++) {
        int hi = g_ascii_xdigit_value(str[2 * i]);
        int lo = g_ascii_xdigit_value(str[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            sevOwnerError(_("%1$s must be %2$zu hex digits"), what, len * 2);
            return -1;
        }
        out[i] = (hi << 4) | lo;
    }

    return 0;
}


/* Strict base64: surrounding whitespace is ignored (a file's trailing
 * newline), anything else that is not base64 is an error. */
int
sevOwnerDecodeBase64(const char *what,
                     const char *text,
                     size_t expect,
                     sevOwnerBuf *out)
{
    g_autofree char *copy = g_strstrip(g_strdup(text));
    size_t len = strlen(copy);
    size_t i;
    gsize outlen = 0;

    if (len == 0 || len % 4 != 0) {
        sevOwnerError(_("%1$s is not valid base64"), what);
        return -1;
    }
    for (i = 0; i < len; i++) {
        char c = copy[i];
        if (!(g_ascii_isalnum(c) || c == '+' || c == '/' ||
              (c == '=' && (i == len - 1 ||
                            (i == len - 2 && copy[len - 1] == '='))))) {
            sevOwnerError(_("%1$s is not valid base64"), what);
            return -1;
        }
    }

    out->data = g_base64_decode(copy, &outlen);
    out->len = outlen;

    if (expect && out->len != expect) {
        sevOwnerError(_("%1$s must be %2$zu bytes, not %3$zu"),
                      what, expect, out->len);
        sevOwnerBufClear(out);
        return -1;
    }

    return 0;
}


int
sevOwnerReadFile(const char *path,
                 size_t maxlen,
                 sevOwnerBuf *out)
{
    g_autoptr(GError) err = NULL;
    gchar *data = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &data, &len, &err)) {
        sevOwnerError("%s", err->message);
        return -1;
    }

    out->data = (uint8_t *)data;
    out->len = len;

    if (maxlen && len > maxlen) {
        sevOwnerError(_("file '%1$s' is too large"), path);
        sevOwnerBufClear(out);
        return -1;
    }

    return 0;
}


/* A file holding exactly @len raw bytes (a TEK, TIK or transport key). */
int
sevOwnerReadRawKey(const char *path,
                   uint8_t *out,
                   size_t len)
{
    g_auto(sevOwnerBuf) buf = { 0 };

    if (sevOwnerReadFile(path, SMALL_FILE_MAX, &buf) < 0)
        return -1;

    if (buf.len != len) {
        sevOwnerError(_("'%1$s' must hold %2$zu raw bytes, not %3$zu"),
                      path, len, buf.len);
        return -1;
    }

    memcpy(out, buf.data, len);
    return 0;
}


/* A file holding base64 text (what libvirt's XML and QEMU carry). */
int
sevOwnerReadBase64File(const char *path,
                       size_t expect,
                       sevOwnerBuf *out)
{
    g_auto(sevOwnerBuf) text = { 0 };
    g_autofree char *what = g_strdup_printf(_("the content of '%1$s'"), path);

    if (sevOwnerReadFile(path, SMALL_FILE_MAX, &text) < 0)
        return -1;

    if (memchr(text.data, '\0', text.len)) {
        sevOwnerError(_("%1$s is not valid base64"), what);
        return -1;
    }

    text.data = g_realloc(text.data, text.len + 1);
    text.data[text.len] = '\0';

    return sevOwnerDecodeBase64(what, (const char *)text.data, expect, out);
}


/* A file of certificates: base64 text, as virsh nodesevinfo prints
 * them, or their raw bytes, as sevctl and AMD's sev-tool write them. A
 * certificate's first bytes (its version, 1, little-endian) are never
 * base64 text, so the two cannot be confused. */
int
sevOwnerReadBlobFile(const char *path,
                     sevOwnerBuf *out)
{
    g_auto(sevOwnerBuf) data = { 0 };
    size_t i;

    if (sevOwnerReadFile(path, SMALL_FILE_MAX, &data) < 0)
        return -1;

    for (i = 0; i < data.len; i++) {
        uint8_t c = data.data[i];

        if (!g_ascii_isalnum(c) && !g_ascii_isspace(c) &&
            c != '+' && c != '/' && c != '=')
            break;
    }

    if (data.len == 0 || i < data.len) {
        *out = data;
        data.data = NULL;
        data.len = 0;
        return 0;
    }

    return sevOwnerReadBase64File(path, 0, out);
}


/* Writes @len bytes to @path. With @secret, the file is made mode 0600
 * whatever it was before; otherwise it is created with mode 0644 (less
 * the umask). */
int
sevOwnerWriteFile(const char *path,
                  const void *data,
                  size_t len,
                  bool secret,
                  bool exclusive)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    VIR_AUTOCLOSE fd = -1;

    flags |= exclusive ? O_EXCL : O_TRUNC;

    if ((fd = open(path, flags, secret ? 0600 : 0644)) < 0) {
        sevOwnerError(_("cannot create '%1$s': %2$s"), path, g_strerror(errno));
        return -1;
    }

    if (secret && fchmod(fd, 0600) < 0) {
        sevOwnerError(_("cannot set the mode of '%1$s': %2$s"),
                      path, g_strerror(errno));
        return -1;
    }

    if (safewrite(fd, data, len) < 0) {
        sevOwnerError(_("cannot write '%1$s': %2$s"), path, g_strerror(errno));
        return -1;
    }

    if (VIR_CLOSE(fd) < 0) {
        sevOwnerError(_("cannot write '%1$s': %2$s"), path, g_strerror(errno));
        return -1;
    }

    return 0;
}


/* Writes base64 text of @data (not secret) without a trailing newline,
 * as virt-qemu-sev-validate writes its secret header and payload. */
int
sevOwnerWriteBase64File(const char *path,
                        const uint8_t *data,
                        size_t len)
{
    g_autofree char *b64 = g_base64_encode(data, len);

    return sevOwnerWriteFile(path, b64, strlen(b64), false, false);
}


/* A number in decimal or, with 0x, hexadecimal. */
int
sevOwnerParseUInt(const char *what,
                  const char *str,
                  unsigned int max,
                  unsigned int *out)
{
    int rc;

    if (STRPREFIX(str, "0x") || STRPREFIX(str, "0X"))
        rc = virStrToLong_uip(str + 2, NULL, 16, out);
    else
        rc = virStrToLong_uip(str, NULL, 10, out);

    if (rc < 0 || *out > max || !*str || g_ascii_isspace(*str)) {
        sevOwnerError(_("invalid %1$s '%2$s'"), what, str);
        return -1;
    }

    return 0;
}
