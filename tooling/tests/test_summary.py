#!/usr/bin/python3
# Tests of tooling/summary.py: counts, baseline handling, exit status.

import json
import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.realpath(__file__))
SUMMARY = os.path.join(os.path.dirname(HERE), "summary.py")


def entry(name, result, duration=0.1):
    # the shape of meson's testlog.json lines (meson 1.0: no suite field;
    # the name is "<project>:<suite> / <test>")
    return {"name": name, "result": result, "returncode": 0, "duration": duration}


class SummaryTest(unittest.TestCase):

    def summarize(self, entries, baseline=None):
        d = tempfile.mkdtemp()
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        log = os.path.join(d, "testlog.json")
        with open(log, "w") as f:
            for e in entries:
                f.write(json.dumps(e) + "\n")
        env = dict(os.environ)
        if baseline is not None:
            path = os.path.join(d, "baseline.txt")
            with open(path, "w") as f:
                f.write(baseline)
            env["MIRROR_SYNTAX_CHECK_BASELINE"] = path
        return subprocess.run(["/usr/bin/python3", SUMMARY, log],
                              capture_output=True, text=True, env=env)

    def test_counts(self):
        res = self.summarize([
            entry("libvirt:bin / qemuxmlconftest", "OK"),
            entry("libvirt:bin / libvirtd fail with missing config", "EXPECTEDFAIL"),
            entry("libvirt:bin / vshtabletest", "SKIP"),
            entry("libvirt:bin / bad", "TIMEOUT"),
        ], baseline="")
        self.assertEqual(res.returncode, 1)
        self.assertEqual(res.stdout.splitlines()[-1], "2 passed, 1 failed, 1 skipped")
        self.assertIn("FAILED: libvirt:bin / bad (TIMEOUT)", res.stdout)

    def test_suite_times(self):
        """Each suite's summed time and slowest test, largest first, and the
        slowest tests, before the closing line (which stays last)."""
        res = self.summarize([
            entry("libvirt-mirror:e2e / attestation", "OK", 98.5),
            entry("libvirt-mirror:e2e / demo", "OK", 40.0),
            entry("libvirt:bin / qemuxmlconftest", "OK", 20.25),
        ], baseline="")
        lines = res.stdout.splitlines()
        self.assertEqual(lines[-1], "3 passed, 0 failed")
        times = [ln for ln in lines if ln.startswith("time: ")]
        self.assertRegex(times[0], r"^time: libvirt-mirror:e2e +138\.5 s in 2 test\(s\), "
                                   r"the slowest 98\.5 s$")
        self.assertRegex(times[1], r"^time: libvirt:bin +20\.2 s in 1 test\(s\)")
        self.assertIn("time: slowest test    98.5 s  libvirt-mirror:e2e / attestation",
                      times)

    def test_baseline_rule_not_counted_only_in_syntax_check(self):
        res = self.summarize([
            entry("libvirt:syntax-check / po_check", "FAIL"),
            entry("libvirt:other / po_check", "FAIL"),
            entry("libvirt:syntax-check / flake8", "FAIL"),
            entry("libvirt:syntax-check / black", "OK"),
        ], baseline="# comment\npo_check\n")
        self.assertEqual(res.returncode, 1)
        self.assertIn("baseline: po_check", res.stdout)
        self.assertIn("FAILED: libvirt:other / po_check (FAIL)", res.stdout)
        self.assertIn("FAILED: libvirt:syntax-check / flake8 (FAIL)", res.stdout)
        self.assertEqual(res.stdout.splitlines()[-1], "1 passed, 2 failed")

    def test_all_green(self):
        res = self.summarize([entry("libvirt:bin / a", "OK"), entry("libvirt:bin / b", "OK")],
                             baseline="")
        self.assertEqual(res.returncode, 0)
        self.assertEqual(res.stdout.splitlines()[-1], "2 passed, 0 failed")

    def test_no_tests_is_a_failure(self):
        res = self.summarize([], baseline="")
        self.assertEqual(res.returncode, 1)


if __name__ == "__main__":
    unittest.main()
