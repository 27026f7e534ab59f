#!/usr/bin/python3
#
# Tests of tooling/prepare.py's build progress and failure reports, with a
# fake ninja: on a terminal, [n/N] on one updating line; into a pipe or file,
# a line every 10 %; a failing stage shows the tail of its log and the log's
# path, and the full output is in that log.

import io
import os
import shutil
import sys
import tempfile
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tooling"))
import prepare  # noqa: E402

FAKE_NINJA = """import sys
total = int(sys.argv[1])
print("ninja: Entering directory `build'")
for n in range(1, total + 1):
    print("[%d/%d] Compiling C object step%d.o" % (n, total, n))
    if n == int(sys.argv[2]):
        print("FAILED: step%d.o" % n)
        for i in range(40):
            print("step%d.c:%d: error: oops %d" % (n, i, i))
        print("ninja: build stopped: subcommand failed.")
        sys.exit(1)
"""


class BuildProgressTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="prepare-test-")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.ninja = os.path.join(self.tmp, "ninja.py")
        with open(self.ninja, "w") as f:
            f.write(FAKE_NINJA)
        self.log = os.path.join(self.tmp, "build.log")

    def build(self, tty, total=200, fail_at=0):
        stream = io.StringIO()
        out = prepare.Out(stream, tty=tty)
        cmd = [sys.executable, self.ninja, str(total), str(fail_at)]
        try:
            steps = prepare.build(out, cmd, self.log)
        except prepare.StageFailed:
            steps = None
        return steps, stream.getvalue()

    def test_pipe_a_line_every_ten_percent(self):
        steps, text = self.build(tty=False)
        self.assertEqual(steps, 200)
        self.assertNotIn("\r", text)
        lines = text.splitlines()
        self.assertEqual(lines, ["  build:     [%d/200] %d %%" % (20 * i, 10 * i)
                                 for i in range(1, 10)])
        with open(self.log) as f:
            self.assertEqual(len(f.read().splitlines()), 202, "the log misses lines")

    def test_terminal_one_updating_line(self):
        steps, text = self.build(tty=True)
        self.assertEqual(steps, 200)
        self.assertNotIn("\n", text, "the progress took more than one line")
        self.assertEqual(text.count("\r  build:"), 200)
        self.assertIn("[ 57/200]  28 %", text)
        self.assertTrue(text.endswith("\r\033[K"), "the progress line is not cleared")

    def test_failure_shows_log_tail_and_path(self):
        steps, text = self.build(tty=False, total=100, fail_at=55)
        self.assertIsNone(steps)
        # from ninja's FAILED line on: the command, its first errors, the end
        self.assertIn("build:     FAILED; from its log:\n    | FAILED: step55.o\n"
                      "    | step55.c:0: error: oops 0\n", text)
        self.assertIn("    | ...\n", text)
        self.assertIn("    | step55.c:39: error: oops 39\n"
                      "    | ninja: build stopped: subcommand failed.\n", text)
        self.assertNotIn("[55/100]", text, "more than the failure")
        self.assertLessEqual(text.count("    | "), prepare.TAIL)
        self.assertTrue(text.rstrip("\n").endswith("full log: %s" % self.log))
        with open(self.log) as f:
            self.assertIn("step55.c:0: error: oops 0", f.read())

    def test_failure_without_ninja_status_shows_tail(self):
        with open(self.ninja, "w") as f:
            f.write("for i in range(100):\n    print('line', i)\nraise SystemExit(3)\n")
        steps, text = self.build(tty=True)
        self.assertIsNone(steps)
        self.assertIn("FAILED; the last %d lines of its log:" % prepare.TAIL, text)
        self.assertIn("    | line 99\n", text)
        self.assertIn("    | line %d\n" % (100 - prepare.TAIL + 1), text)
        self.assertNotIn("    | line %d\n" % (100 - prepare.TAIL - 1), text)

    def test_durations(self):
        self.assertEqual(prepare.duration(0.25), "250 ms")
        self.assertEqual(prepare.duration(12.34), "12.3 s")
        self.assertEqual(prepare.duration(185), "3 min 05 s")


if __name__ == "__main__":
    unittest.main()
