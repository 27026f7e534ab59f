#!/usr/bin/python3
#
# Boot the e2e test guest (e2e/guest/guest.s) under Debian's real QEMU (TCG)
# and check it through QMP: the ready marker, every word of the 4 MiB
# pattern (dumped with pmemsave), and that the pass counter keeps growing.
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

GUEST = None


def pattern_word(i):
    return ((i * 0x9E3779B1) & 0xFFFFFFFF) ^ 0x5A5AA5A5


def pattern_errors(data, limit=5):
    """Indexes of the words of @data (the pattern region, little endian)
    that differ from the pattern; at most @limit of them."""
    bad = []
    words = struct.unpack("<%dI" % (len(data) // 4), data)
    if len(words) != PATTERN_WORDS:
        return ["size %d bytes" % len(data)]
    for i, w in enumerate(words):
        if w != pattern_word(i):
            bad.append(i)
            if len(bad) >= limit:
                break
    return bad


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


class GuestBootTest(unittest.TestCase):
    """The guest under real QEMU: pattern written, memory still changing."""

    def test_boot_and_check(self):
        workdir = tempfile.mkdtemp(prefix="lvm-guest-")
        self.addCleanup(shutil.rmtree, workdir, True)
        sock = os.path.join(workdir, "qmp.sock")
        qemu = subprocess.Popen(
            ["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "64",
             "-kernel", GUEST, "-display", "none", "-nodefaults",
             "-qmp", "unix:%s,server=on,wait=off" % sock],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop():
            qemu.kill()
            qemu.wait(timeout=10)
        self.addCleanup(stop)

        qmp = QMP(sock)
        qmp.wait_ready(workdir)
        self.assertEqual(pattern_errors(qmp.read_pattern(workdir)), [])
        first, second = qmp.counter_grows(workdir)
        self.assertGreater(second, first)


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
