/*
 * What the host reads of an SEV guest's memory: ciphertext.
 *
 * On SEV hardware the guest's private pages are encrypted with the guest's
 * memory encryption key (VEK), which only the secure processor holds; QEMU
 * reads them through the host's mapping, so memsave, pmemsave and
 * dump-guest-memory of an SEV guest succeed and yield ciphertext (with the
 * ELF headers and notes of a dump in clear). Here the guest runs
 * unencrypted, so the stand-in encrypts what QEMU wrote before the client
 * sees it:
 *
 *  - memsave / pmemsave (SEV guest): once QEMU has written the file, the
 *    stand-in encrypts it in place;
 *  - dump-guest-memory (SEV guest, ELF format): with "file:PATH", once the
 *    dump is complete (the reply, or DUMP_COMPLETED with detach) the
 *    stand-in encrypts the contents of each PT_LOAD segment in place before
 *    the reply or event goes on. With "fd:NAME" (libvirt's way; the fd may
 *    be a pipe to libvirt's I/O helper) the stand-in keeps a duplicate of
 *    the fd getfd NAME passed, closes QEMU's, has QEMU dump into a private
 *    file (0600, in $TMPDIR), encrypts it there, copies it into the fd and
 *    removes it, all before the reply or event goes on. The compressed
 *    kdump and win-dmp formats are refused for an SEV guest (a limit of
 *    the simulation, not QEMU's behaviour).
 *
 * The cipher stands in for the memory controller's: AES-128 in XEX mode
 * per 16-byte block, tweaked by the block's guest physical address (for
 * memsave, the virtual address), under a key made at random for each
 * stand-in process (each launch), never written anywhere. The same bytes
 * at another address, or in another launch, encrypt differently.
 *
 * x-pmemsave (test mode only) is pmemsave without encryption: the guest's
 * own view of its memory, which on hardware only the guest has; the
 * end-to-end tests check the guest's memory through it.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/aes.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "standin.h"

#define MEMCRYPT_BLOCK 16
#define MEMCRYPT_CHUNK (1 << 20)


static bool
memcryptKey(Standin *st)
{
    guint8 key[16];

    if (st->memKeyValid)
        return true;
    if (gnutls_rnd(GNUTLS_RND_KEY, key, sizeof(key)) < 0)
        return false;
    aes128_set_encrypt_key(&st->memKey, key);
    memset(key, 0, sizeof(key));
    st->memKeyValid = true;
    return true;
}


/* XEX: T = E(addr), C = E(P ^ T) ^ T; a partial last block is XORed with
 * E(T) (no ciphertext stealing: only the bytes are needed, not decryption) */
static void
memcryptBuf(Standin *st, guint8 *buf, gsize len, guint64 addr)
{
    gsize off;

    for (off = 0; off < len; off += MEMCRYPT_BLOCK) {
        guint8 tweak[MEMCRYPT_BLOCK] = { 0 };
        guint8 block[MEMCRYPT_BLOCK];
        guint64 a = GUINT64_TO_LE(addr + off);
        gsize n = MIN(MEMCRYPT_BLOCK, len - off);
        gsize i;

        memcpy(tweak, &a, sizeof(a));
        aes128_encrypt(&st->memKey, MEMCRYPT_BLOCK, tweak, tweak);
        if (n < MEMCRYPT_BLOCK) {
            aes128_encrypt(&st->memKey, MEMCRYPT_BLOCK, block, tweak);
            for (i = 0; i < n; i++)
                buf[off + i] ^= block[i];
            continue;
        }
        for (i = 0; i < MEMCRYPT_BLOCK; i++)
            block[i] = buf[off + i] ^ tweak[i];
        aes128_encrypt(&st->memKey, MEMCRYPT_BLOCK, block, block);
        for (i = 0; i < MEMCRYPT_BLOCK; i++)
            buf[off + i] = block[i] ^ tweak[i];
    }
}


/* encrypt @len bytes of @fd at @offset in place, as guest memory at @addr */
static bool
memcryptRange(Standin *st, int fd, guint64 offset, guint64 len, guint64 addr)
{
    g_autofree guint8 *buf = g_malloc(MEMCRYPT_CHUNK);
    guint64 done = 0;

    while (done < len) {
        gsize n = MIN((guint64) MEMCRYPT_CHUNK, len - done);
        ssize_t r = pread(fd, buf, n, offset + done);

        if (r <= 0) {
            standinLog("SEV memory: cannot read the dump at %llu: %s",
                       (unsigned long long) (offset + done),
                       r < 0 ? g_strerror(errno) : "end of file");
            return false;
        }
        memcryptBuf(st, buf, r, addr + done);
        if (pwrite(fd, buf, r, offset + done) != r) {
            standinLog("SEV memory: cannot rewrite the dump: %s", g_strerror(errno));
            return false;
        }
        done += r;
    }
    return true;
}


static guint64
le(const guint8 *p, gsize n)
{
    guint64 v = 0;

    while (n--)
        v = (v << 8) | p[n];
    return v;
}


/* the PT_LOAD segments of the ELF dump in @fd (ELF32 or ELF64, little
 * endian, as QEMU writes for x86), encrypted in place */
static bool
memcryptElf(Standin *st, int fd)
{
    guint8 eh[64];
    bool is64;
    guint64 phoff;
    guint64 phnum;
    gsize phentsize;
    guint64 i;

    if (pread(fd, eh, sizeof(eh), 0) != sizeof(eh) ||
        memcmp(eh, "\177ELF", 4) != 0 || eh[5] != 1 /* ELFDATA2LSB */) {
        standinLog("SEV memory: the dump is not a little-endian ELF file");
        return false;
    }
    is64 = eh[4] == 2;
    phoff = is64 ? le(eh + 32, 8) : le(eh + 28, 4);
    phentsize = is64 ? le(eh + 54, 2) : le(eh + 42, 2);
    phnum = is64 ? le(eh + 56, 2) : le(eh + 44, 2);
    if (phnum == 0xffff) {
        /* PN_XNUM: the count is section header 0's sh_info */
        guint64 shoff = is64 ? le(eh + 40, 8) : le(eh + 32, 4);
        guint8 info[4];

        if (pread(fd, info, 4, shoff + (is64 ? 44 : 28)) != 4)
            return false;
        phnum = le(info, 4);
    }

    for (i = 0; i < phnum; i++) {
        guint8 ph[56];
        guint64 offset, paddr, filesz;

        if (pread(fd, ph, phentsize, phoff + i * phentsize) != (ssize_t) phentsize)
            return false;
        if (le(ph, 4) != 1 /* PT_LOAD */)
            continue;
        offset = is64 ? le(ph + 8, 8) : le(ph + 4, 4);
        paddr = is64 ? le(ph + 24, 8) : le(ph + 12, 4);
        filesz = is64 ? le(ph + 32, 8) : le(ph + 16, 4);
        if (!memcryptRange(st, fd, offset, filesz, paddr))
            return false;
    }
    return true;
}


static void
memcryptDropDump(Standin *st)
{
    if (st->memDumpFd >= 0)
        close(st->memDumpFd);
    st->memDumpFd = -1;
    st->memDumpDetach = false;
    if (st->memDumpPath && st->memDumpPrivate)
        unlink(st->memDumpPath);
    g_clear_pointer(&st->memDumpPath, g_free);
    st->memDumpPrivate = false;
}


/* the whole of @from into @to, which may be a non-blocking pipe */
static bool
memcryptCopy(int from, int to)
{
    g_autofree char *buf = g_malloc(MEMCRYPT_CHUNK);
    ssize_t n;

    if (lseek(from, 0, SEEK_SET) < 0)
        return false;
    while ((n = read(from, buf, MEMCRYPT_CHUNK)) > 0) {
        ssize_t off = 0;

        while (off < n) {
            ssize_t w = write(to, buf + off, n - off);

            if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                struct pollfd pfd = { .fd = to, .events = POLLOUT };

                poll(&pfd, 1, 1000);
                continue;
            }
            if (w <= 0)
                return false;
            off += w;
        }
    }
    return n == 0;
}


static void
memcryptDropFd(gpointer fd)
{
    close(GPOINTER_TO_INT(fd));
}


static GHashTable *
memcryptFds(Standin *st)
{
    if (!st->memFds)
        st->memFds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                           memcryptDropFd);
    return st->memFds;
}


/* getfd NAME of an SEV guest (other than the migration socket): QEMU gets
 * the fd; the stand-in keeps a duplicate, for a dump-guest-memory "fd:NAME" */
void
memcryptGetfd(Standin *st, const char *name, json_object *id, json_object *cmd,
              const char *line, gsize len)
{
    json_object *args = NULL;
    const char *fdname;
    int dup;

    json_object_object_get_ex(cmd, "arguments", &args);
    fdname = jsonGetString(args, "fdname");
    if (fdname && st->client && st->client->fds->len > 0 &&
        (dup = fcntl(g_array_index(st->client->fds, int, 0), F_DUPFD_CLOEXEC, 0)) >= 0)
        g_hash_table_insert(memcryptFds(st), g_strdup(fdname), GINT_TO_POINTER(dup));
    forward(st, ACT_FORWARD, name, id, line, len);
}


void
memcryptClosefd(Standin *st, const char *name, json_object *id, json_object *cmd,
                const char *line, gsize len)
{
    json_object *args = NULL;
    const char *fdname;

    json_object_object_get_ex(cmd, "arguments", &args);
    if ((fdname = jsonGetString(args, "fdname")))
        g_hash_table_remove(memcryptFds(st), fdname);
    forward(st, ACT_FORWARD, name, id, line, len);
}


/* dump-guest-memory of an SEV guest */
void
memcryptDump(Standin *st, const char *name, json_object *id, json_object *cmd,
             const char *line, gsize len)
{
    json_object *args = NULL;
    json_object *tmp;
    const char *protocol;
    const char *format;

    json_object_object_get_ex(cmd, "arguments", &args);
    protocol = jsonGetString(args, "protocol");
    format = jsonGetString(args, "format");

    if (format && !g_str_equal(format, "elf")) {
        replyError(st, name, id,
                   "qemu-mirror-standin: a dump of an SEV guest in format '%s' is "
                   "not simulated (only ELF dumps are encrypted)", format);
        return;
    }
    if (!memcryptKey(st)) {
        replyError(st, name, id, "qemu-mirror-standin: no random key");
        return;
    }
    if (protocol && g_str_has_prefix(protocol, "fd:")) {
        gpointer kept = NULL;
        g_autoptr(GError) err = NULL;
        g_autofree char *path = NULL;
        g_autofree char *closefd = NULL;
        g_autofree char *rewritten = NULL;
        int tmpfd;

        if (!g_hash_table_steal_extended(memcryptFds(st), protocol + 3, NULL, &kept)) {
            /* QEMU refuses an unknown fd name itself */
            forward(st, ACT_FORWARD, name, id, line, len);
            return;
        }
        if ((tmpfd = g_file_open_tmp("qemu-mirror-standin-dump-XXXXXX", &path, &err)) < 0) {
            close(GPOINTER_TO_INT(kept));
            replyError(st, name, id, "qemu-mirror-standin: %s", err->message);
            return;
        }
        close(tmpfd);
        memcryptDropDump(st);
        st->memDumpFd = GPOINTER_TO_INT(kept);
        st->memDumpPath = g_strdup(path);
        st->memDumpPrivate = true;

        /* QEMU's copy of the fd is not used: closed (the reply is the
         * stand-in's, replies.c), so that the reader sees the end */
        closefd = g_strdup_printf("{\"execute\": \"closefd\", \"arguments\": "
                                  "{\"fdname\": \"%s\"}, \"id\": \"" MEMCRYPT_CLOSEFD_ID "\"}\r\n",
                                  protocol + 3);
        chanWrite(st->qemu, closefd, strlen(closefd));

        rewritten = g_strdup_printf("file:%s", path);
        json_object_object_add(args, "protocol", json_object_new_string(rewritten));
        g_free(rewritten);
        rewritten = g_strdup_printf("%s\r\n", json_object_to_json_string_ext(
                                        cmd, JSON_C_TO_STRING_PLAIN));
        st->memDumpDetach = json_object_object_get_ex(args, "detach", &tmp) &&
            json_object_get_boolean(tmp);
        standinLog("QMP %s: QEMU dumps into a private file, encrypted before it "
                   "goes to the client's fd", name);
        forward(st, ACT_DUMP, name, id, rewritten, strlen(rewritten));
        return;
    }
    if (!protocol || !g_str_has_prefix(protocol, "file:")) {
        forward(st, ACT_FORWARD, name, id, line, len);
        return;
    }
    memcryptDropDump(st);
    st->memDumpPath = g_strdup(protocol + 5);
    st->memDumpDetach = json_object_object_get_ex(args, "detach", &tmp) &&
        json_object_get_boolean(tmp);
    forward(st, ACT_DUMP, name, id, line, len);
}


/* the dump QEMU was asked for is complete (@ok) or failed */
void
memcryptDumpDone(Standin *st, bool ok)
{
    int fd;

    if (!st->memDumpPath)
        return;
    if (!ok) {
        memcryptDropDump(st);
        return;
    }
    if ((fd = open(st->memDumpPath, O_RDWR | O_CLOEXEC)) < 0) {
        standinLog("SEV memory: cannot open %s: %s", st->memDumpPath,
                   g_strerror(errno));
        memcryptDropDump(st);
        return;
    }
    if (!memcryptElf(st, fd)) {
        /* never leave the plaintext: what is left is not a dump */
        standinLog("SEV memory: the dump could not be encrypted; truncated");
        if (ftruncate(fd, 0) < 0)
            standinLog("SEV memory: %s", g_strerror(errno));
    } else if (st->memDumpFd >= 0 && !memcryptCopy(fd, st->memDumpFd)) {
        standinLog("SEV memory: cannot copy the dump to the client's fd: %s",
                   g_strerror(errno));
    } else {
        standinLog("SEV memory: the dump holds ciphertext");
    }
    close(fd);
    memcryptDropDump(st);
}


/* memsave / pmemsave of an SEV guest: the file is encrypted once QEMU has
 * written it (memcryptSaved) */
void
memcryptMemsave(Standin *st, const char *name, json_object *id, json_object *cmd,
                const char *line, gsize len)
{
    json_object *args = NULL;
    json_object *val;
    Pending *p;

    json_object_object_get_ex(cmd, "arguments", &args);
    if (!memcryptKey(st)) {
        replyError(st, name, id, "qemu-mirror-standin: no random key");
        return;
    }
    p = forward(st, ACT_MEMSAVE, name, id, line, len);
    p->path = g_strdup(jsonGetString(args, "filename"));
    if (json_object_object_get_ex(args, "val", &val))
        p->addr = json_object_get_int64(val);
}


void
memcryptSaved(Standin *st, Pending *p)
{
    struct stat sb;
    int fd;

    if (!p->path || (fd = open(p->path, O_RDWR | O_CLOEXEC)) < 0) {
        standinLog("SEV memory: cannot open %s: %s", p->path ? p->path : "(none)",
                   g_strerror(errno));
        return;
    }
    if (fstat(fd, &sb) < 0 || !memcryptRange(st, fd, 0, sb.st_size, p->addr)) {
        if (ftruncate(fd, 0) < 0)
            standinLog("SEV memory: %s", g_strerror(errno));
    }
    close(fd);
}


/* x-pmemsave (test mode): pmemsave as QEMU does it, the plaintext the
 * guest itself sees; the tests' view of the guest's memory */
void
memcryptPlainPmemsave(Standin *st, const char *name, json_object *id,
                      json_object *cmd, const char *line G_GNUC_UNUSED,
                      gsize len G_GNUC_UNUSED)
{
    g_autoptr(json_object) out = json_object_new_object();
    json_object *args = NULL;
    g_autofree char *text = NULL;

    if (st->replyTo) {
        replyError(st, name, id, "x-pmemsave is for the monitor only");
        return;
    }
    json_object_object_get_ex(cmd, "arguments", &args);
    json_object_object_add(out, "execute", json_object_new_string("pmemsave"));
    if (args)
        json_object_object_add(out, "arguments", json_object_get(args));
    if (id)
        json_object_object_add(out, "id", json_object_get(id));
    text = g_strdup_printf("%s\r\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
    forward(st, ACT_FORWARD, name, id, text, strlen(text));
}
