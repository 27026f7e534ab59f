#!/usr/bin/python3
#
# Boot the e2e test guest (e2e/guest/guest.s) under Debian's real QEMU (TCG)
# and check it through QMP: the ready marker, every word of the 4 MiB
# pattern (dumped with pmemsave), and that the pass counter keeps growing;
# with its command line dirty=N / dirty=max (a guest as big as its RAM,
# dirtying it at N MiB/s or as fast as it can): spans of the pattern spread
# over all of it, the rate it paces, and that dirty=0 dirties nothing.
# The functions here are what the migration tests use on the target host.
#
# Usage: guestcheck.py GUEST_ELF

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

READY_ADDR = 0x00FFF000
READY_MAGIC = 0xC0FFEE01
COUNTER_ADDR = 0x00FFF004
PATTERN_ADDR = 0x01000000
PATTERN_WORDS = 0x100000
# with dirty=...: where the pattern ends, the rate (MiB/s, or one of the
# two values below) and the count of pages dirtied, as the guest wrote them
TOP_ADDR = 0x00FFF008
RATE_ADDR = 0x00FFF00C
DIRTIED_ADDR = 0x00FFF010
RATE_DEFAULT = 0xFFFFFFFF
RATE_MAX = 0xFFFFFFFE

GUEST = None


def pattern_word(i):
    return ((i * 0x9E3779B1) & 0xFFFFFFFF) ^ 0x5A5AA5A5


def pattern_errors(data, limit=5):
    """Indexes of the words of @data (the pattern region, little endian)
    that differ from the pattern; at most @limit of them."""
    if len(data) != PATTERN_WORDS * 4:
        return ["size %d bytes" % len(data)]
    return span_errors(data, 0, limit)


def span_errors(data, first, limit=5):
    """Indexes of the words of @data (the pattern from its word @first on,
    little endian) that differ from the pattern; at most @limit of them."""
    bad = []
    words = struct.unpack("<%dI" % (len(data) // 4), data)
    for i, w in enumerate(words, first):
        if w != pattern_word(i):
            bad.append(i)
            if len(bad) >= limit:
                break
    return bad


def sample_spans(top, count=16, words=4096):
    """(first word, words) of @count spans of @words words of the pattern
    that ends at address @top (TOP_ADDR's value), spread evenly over it:
    the first at its start, the last at its end."""
    total = (top - PATTERN_ADDR) // 4
    words = min(words, total)
    if count == 1:
        return [(0, words)]
    step = (total - words) // (count - 1)
    return [(k * step, words) for k in range(count)]


class QMP:
    """A minimal QMP client with a bounded timeout on every read (a
    ceiling for a QEMU that hangs: a reply takes milliseconds, also on a
    loaded machine)."""

    def __init__(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rw")
        self.read()  # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        reply = self.read()
        if "error" in reply:
            raise RuntimeError("%s: %s" % (name, reply["error"]["desc"]))
        return reply["return"]

    def read_word(self, addr, workdir):
        path = os.path.join(workdir, "word")
        self.cmd("pmemsave", val=addr, size=4, filename=path)
        with open(path, "rb") as f:
            return struct.unpack("<I", f.read())[0]

    def read_pattern(self, workdir):
        path = os.path.join(workdir, "pattern")
        self.cmd("pmemsave", val=PATTERN_ADDR, size=PATTERN_WORDS * 4,
                 filename=path)
        with open(path, "rb") as f:
            return f.read()

    def read_span(self, workdir, first, words):
        path = os.path.join(workdir, "span")
        self.cmd("pmemsave", val=PATTERN_ADDR + 4 * first, size=4 * words,
                 filename=path)
        with open(path, "rb") as f:
            return f.read()

    def wait_ready(self, workdir, timeout=60):
        deadline = time.monotonic() + timeout
        while self.read_word(READY_ADDR, workdir) != READY_MAGIC:
            if time.monotonic() > deadline:
                raise TimeoutError("guest not ready after %d s" % timeout)
            time.sleep(0.1)

    def counter_grows(self, workdir, timeout=60):
        """The pass counter, then a larger value of it: polled until it
        grows (a busy machine may give the guest's vCPU no time for a
        while), at most @timeout seconds; then its last value."""
        first = last = self.read_word(COUNTER_ADDR, workdir)
        deadline = time.monotonic() + timeout
        while last <= first and time.monotonic() < deadline:
            time.sleep(0.1)
            last = self.read_word(COUNTER_ADDR, workdir)
        return first, last


class PatternCheckTest(unittest.TestCase):
    """The checker itself: it must find a single wrong word."""

    def test_detects_a_flipped_word(self):
        good = struct.pack("<%dI" % PATTERN_WORDS,
                           *(pattern_word(i) for i in range(PATTERN_WORDS)))
        self.assertEqual(pattern_errors(good), [])
        bad = bytearray(good)
        bad[4 * 777777] ^= 0x01
        self.assertEqual(pattern_errors(bytes(bad)), [777777])
        self.assertEqual(pattern_errors(good[:-4]), ["size %d bytes" % (len(good) - 4)])


    def test_detects_a_flipped_word_in_a_span(self):
        spans = sample_spans(PATTERN_ADDR + (256 << 20), count=4, words=1024)
        self.assertEqual(spans[0], (0, 1024))
        self.assertEqual(sum(spans[-1]), 64 << 20)   # the last word of 256 MiB
        first, words = spans[2]
        good = struct.pack("<%dI" % words,
                           *(pattern_word(first + i) for i in range(words)))
        self.assertEqual(span_errors(good, first), [])
        self.assertEqual(span_errors(good, first + 1), [first + 1, first + 2, first + 3,
                                                        first + 4, first + 5])
        bad = bytearray(good)
        bad[4 * 1000 + 3] ^= 0x80
        self.assertEqual(span_errors(bytes(bad), first), [first + 1000])


class GuestBootTest(unittest.TestCase):
    """The guest under real QEMU: pattern written, memory still changing."""

    def boot(self, memory="64", cmdline=None):
        workdir = tempfile.mkdtemp(prefix="lvm-guest-")
        self.addCleanup(shutil.rmtree, workdir, True)
        sock = os.path.join(workdir, "qmp.sock")
        qemu = subprocess.Popen(
            ["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", memory,
             "-kernel", GUEST, "-display", "none", "-nodefaults",
             "-qmp", "unix:%s,server=on,wait=off" % sock] +
            (["-append", cmdline] if cmdline is not None else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop():
            qemu.kill()
            qemu.wait(timeout=10)
        self.addCleanup(stop)

        qmp = QMP(sock)
        qmp.wait_ready(workdir)
        return qmp, workdir

    def test_boot_and_check(self):
        qmp, workdir = self.boot()
        self.assertEqual(pattern_errors(qmp.read_pattern(workdir)), [])
        self.assertEqual(qmp.read_word(TOP_ADDR, workdir), PATTERN_ADDR + PATTERN_WORDS * 4)
        self.assertEqual(qmp.read_word(RATE_ADDR, workdir), RATE_DEFAULT)
        first, second = qmp.counter_grows(workdir)
        self.assertGreater(second, first)

    def dirty_rate(self, qmp, workdir, seconds=3):
        """MiB/s the guest dirtied over @seconds, as it counts them."""
        before = qmp.read_word(DIRTIED_ADDR, workdir)
        start = time.monotonic()
        time.sleep(seconds)
        pages = (qmp.read_word(DIRTIED_ADDR, workdir) - before) & 0xFFFFFFFF
        return pages / 256 / (time.monotonic() - start)

    def check_big(self, qmp, workdir, rate):
        """The pattern over all 128 MiB (QEMU's multiboot info leaves the
        top 128 KiB out), spans of it intact; the rate as given."""
        top = qmp.read_word(TOP_ADDR, workdir)
        self.assertGreater(top, (128 - 1) << 20)
        self.assertLessEqual(top, 128 << 20)
        self.assertEqual(qmp.read_word(RATE_ADDR, workdir), rate)
        for first, words in sample_spans(top):
            self.assertEqual(span_errors(qmp.read_span(workdir, first, words), first), [])

    def test_dirty_paced(self):
        # 32 MiB/s as the guest paces it with the PIT: never above (the
        # budget is capped), below only if this loaded machine starves it
        qmp, workdir = self.boot("128", "console=none dirty=32")
        self.check_big(qmp, workdir, 32)
        rate = self.dirty_rate(qmp, workdir)
        self.assertLess(rate, 32 * 1.1)
        self.assertGreater(rate, 32 * 0.5)
        first, second = qmp.counter_grows(workdir)
        self.assertGreater(second, first)

    def test_dirty_idle_and_max(self):
        qmp, workdir = self.boot("128", "dirty=0")
        self.check_big(qmp, workdir, 0)
        self.assertEqual(qmp.read_word(DIRTIED_ADDR, workdir), 0)
        first, second = qmp.counter_grows(workdir)   # PIT periods
        self.assertGreater(second, first)
        self.assertEqual(qmp.read_word(DIRTIED_ADDR, workdir), 0)
        qmp, workdir = self.boot("128", "dirty=max")
        self.check_big(qmp, workdir, RATE_MAX)
        self.assertGreater(self.dirty_rate(qmp, workdir, 1), 256)


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    if not shutil.which("qemu-system-x86_64"):
        print("qemu-system-x86_64 is not installed", file=sys.stderr)
        return 1
    suite = unittest.TestSuite()
    for case in (PatternCheckTest, GuestBootTest):
        suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(case))
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
