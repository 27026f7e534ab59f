#!/usr/bin/python3
#
# End-to-end: libvirt's example client examples/c/domain/confidential-migrate
# (built with the tree) migrates the SEV guest of e2e/sevguest.py from test
# host a to test host b through the public API only, as a program of its
# own run inside host a's namespaces, like virsh.
#
# First a failure: host b's migration helper fails to boot, so the target's
# Prepare fails; the example must exit non-zero with libvirt's error, and
# the source guest must be untouched. Then the migration: the example exits
# 0, it printed progress lines with data processed, and the guest runs on
# host b with its memory pattern intact.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_example_client.py GUEST_ELF

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import guestcheck  # noqa: E402
import hosts  # noqa: E402
import sevguest  # noqa: E402

GUEST = None
DOMAIN = "e2e-sev"
EXAMPLE = os.path.join(hosts.LIBVIRT_BUILD, "examples", "c", "domain",
                       "confidential-migrate")
PROGRESS = re.compile(r"^progress: (\d+) ms elapsed, data processed (\d+) KiB, "
                      r"remaining (\d+) KiB, total (\d+) KiB", re.M)


class ExampleClientTest(sevguest.SevGuestLabTest):

    DOMAIN = DOMAIN

    @classmethod
    def setUpClass(cls):
        if not os.access(EXAMPLE, os.X_OK):
            raise AssertionError("%s is not built (ninja -C build)" % EXAMPLE)
        super().setUpClass()

    def run_example(self, *args):
        """The example run on host a, connected to its libvirtd."""
        res = subprocess.run(
            self.a.enter() + [EXAMPLE, "-c", "qemu:///system"] + list(args),
            env=hosts.libvirt_env(), capture_output=True, text=True, timeout=120)
        print("\n    exit status %d\n    stdout: %s\n    stderr: %s"
              % (res.returncode, res.stdout.strip().replace("\n", "\n            "),
                 res.stderr.strip()), flush=True)
        return res

    def test_01_usage_errors(self):
        for args in ([], [DOMAIN], ["-i", "0", DOMAIN, self.target],
                     ["-b", "x", DOMAIN, self.target], ["--bogus", DOMAIN, self.target]):
            res = self.run_example(*args)
            self.assertEqual(res.returncode, 1, args)
            self.assertTrue(res.stderr.startswith("error: "), args)
        res = self.run_example("nosuchdomain", self.target)
        self.assertEqual(res.returncode, 1)
        self.assertIn("error: Domain not found", res.stderr)
        res = self.run_example("--help")
        self.assertEqual(res.returncode, 0)
        self.assertIn("DOMAIN DEST-URI", res.stdout)

    def test_02_target_helper_failed(self):
        """Host b's helper fails to boot: exit status 1 with libvirt's error;
        the guest still runs on host a, intact, and host b keeps nothing."""
        self.b.standin_config(helper="failed")
        try:
            res = self.run_example("-i", "100", DOMAIN, self.target)
        finally:
            self.b.standin_config()
        self.assertEqual(res.returncode, 1)
        self.assertIn("error: migration of %s failed: " % DOMAIN, res.stderr)
        self.assertIn("migration helper of domain '%s' failed" % DOMAIN, res.stderr)
        self.assertNotIn("completed", res.stdout)
        sevguest.source_untouched(self.a, self.b, self.lab, DOMAIN)

    def test_03_confidential_migration(self):
        a, b, lab = self.a, self.b, self.lab
        before = sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        # 50 MiB/s (the guest's dirtying needs more than 20): its ~20 MiB
        # take long enough for progress reports every 100 ms while data flows
        res = self.run_example("-i", "100", "-b", "50", DOMAIN, self.target)
        self.assertEqual(res.returncode, 0, res.stderr + a.log_tail() + b.log_tail())
        self.assertIn("migration of %s to %s completed" % (DOMAIN, self.target),
                      res.stdout)
        progress = [tuple(int(v) for v in m) for m in PROGRESS.findall(res.stdout)]
        self.assertTrue(progress, "no progress lines")
        self.assertTrue(any(processed > 0 for _, processed, _, _ in progress),
                        "no progress line with data processed")
        # what was processed only grows
        processed = [p for _, p, _, _ in progress]
        self.assertEqual(processed, sorted(processed))

        self.assertEqual(sevguest.state(b, DOMAIN), "running")
        self.assertNotEqual(sevguest.state(a, DOMAIN), "running")
        self.assertEqual(a.emulator_pids(), [])
        self.assertEqual(sevguest.pattern_errors(b, lab, DOMAIN), [])
        after = sevguest.guest_word(b, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        self.assertGreater(after, before, "guest restarted instead of moving")


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    ExampleClientTest.GUEST = GUEST
    return hosts.run_tests(ExampleClientTest)


if __name__ == "__main__":
    sys.exit(main())
