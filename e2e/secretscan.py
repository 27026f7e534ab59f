#!/usr/bin/python3
#
# Looking for secrets (the transport key, TEKs, TIKs, plain secret tables)
# in text and files, as the e2e tests do after attestation failures and in
# the secret scan (e2e/test_attestation.py). A secret is looked for in each
# form it could be written in: its raw bytes, hex (lower and upper case),
# and base64, at each of the three alignments it can have inside a longer
# base64 text.

import base64
import os
import stat


def forms(secret):
    """{form name: bytes} of @secret (bytes)."""
    out = {"raw": secret, "hex": secret.hex().encode(),
           "HEX": secret.hex().upper().encode()}
    for shift in range(3):
        # base64 of @secret after @shift other bytes: the characters that
        # depend on @secret alone (the first group mixes in the bytes before
        # it, the last one those after it)
        text = base64.b64encode(bytes(shift) + secret + bytes(3)).rstrip(b"=")
        start = 0 if shift == 0 else 4
        end = (shift + len(secret)) // 3 * 4
        out["base64+%d" % shift] = text[start:end]
    return out


class Needles:
    """Named secrets and every form of each."""

    def __init__(self):
        self.forms = []     # (name, form, bytes)

    def add(self, name, secret):
        if not secret or len(secret) < 16:
            raise ValueError("secret %s: %r is too short to look for" % (name, secret))
        for form, data in forms(secret).items():
            self.forms.append((name, form, data))

    def names(self):
        return sorted({n for n, _, _ in self.forms})

    def find(self, data):
        """[(name, form)] of the needles in @data (bytes or str)."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        return [(n, f) for n, f, d in self.forms if d in data]


def scan_files(needles, roots, skip=(), since=None, max_size=512 << 20):
    """Every regular file below @roots (paths, missing ones ignored), not
    below one of @skip, modified at or after @since (a time.time(), or any
    time), looked at for @needles. Returns (number of files, bytes read,
    [(path, name, form)])."""
    skip = [os.path.realpath(s) for s in skip]
    hits = []
    nfiles = nbytes = 0
    seen = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            real = os.path.realpath(dirpath)
            if any(real == s or real.startswith(s + os.sep) for s in skip):
                dirnames[:] = []
                continue
            for name in filenames:
                path = os.path.join(real, name)
                if path in seen:
                    continue
                seen.add(path)
                try:
                    st = os.lstat(path)
                    if not stat.S_ISREG(st.st_mode) or st.st_size > max_size:
                        continue
                    if since is not None and max(st.st_mtime, st.st_ctime) < since:
                        continue
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                nfiles += 1
                nbytes += len(data)
                hits += [(path, n, f) for n, f in needles.find(data)]
    return nfiles, nbytes, hits


def scan_process(needles, pid, chunk=64 << 20):
    """Every readable mapping of process @pid (/proc/PID/maps and
    /proc/PID/mem: heap, stacks, anonymous and file mappings, libraries
    included), looked at for @needles. Mappings that cannot be read
    ([vvar], guard pages) are counted as skipped. A needle that spans two
    chunks of a mapping is found: the chunks overlap by the longest
    needle's length. Returns (mappings read, bytes read, mappings skipped,
    [(mapping, name, form)]); raises OSError when the process is gone."""
    longest = max((len(d) for _, _, d in needles.forms), default=0)
    hits = []
    nmaps = nbytes = skipped = 0
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    try:
        for line in maps:
            fields = line.split(None, 5)
            if "r" not in fields[1]:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            where = "%s %s" % (fields[0], fields[5] if len(fields) > 5 else "[anon]")
            found = set()
            try:
                pos = start
                while pos < end:
                    data = os.pread(fd, min(chunk + longest, end - pos), pos)
                    if not data:
                        break
                    nbytes += min(len(data), chunk)
                    found.update(needles.find(data))
                    pos += chunk
            except OSError:
                skipped += 1
                continue
            nmaps += 1
            hits += [(where, n, f) for n, f in sorted(found)]
    finally:
        os.close(fd)
    return nmaps, nbytes, skipped, hits
