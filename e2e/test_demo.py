#!/usr/bin/python3
#
# End-to-end: ./run-demo as an operator runs it, on the two test hosts.
#
# --keep: a warm run (meson has just built everything) prints one line
# before the demo; afterwards both hosts run, the per-host wrapper
# build/demo/virsh-b lists the migrated guest running on host b, virsh-a
# lists it shut off on host a. A second --keep refuses and leaves the hosts
# alone. --teardown then leaves no namespace, no daemon, no QEMU, no lab
# directory, no wrapper.
#
# --failure target-killed: virsh's error is shown, the source guest survives
# intact, host b keeps nothing, and the migration that follows succeeds;
# nothing is left afterwards.
#
# The demo's state and wrappers go to a directory of the test's own
# (MIRROR_DEMO_STATE), not to build/demo.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_demo.py BUILD_DIR

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import demo  # noqa: E402
import hosts  # noqa: E402

BUILD = None


class DemoTest(unittest.TestCase):

    def setUp(self):
        self.state_dir = tempfile.mkdtemp(prefix="demo-e2e-")
        self.addCleanup(shutil.rmtree, self.state_dir, ignore_errors=True)
        # whatever happens, no lab outlives the test
        self.addCleanup(self.run_demo, "--teardown")

    def run_demo(self, *args, timeout=300):
        env = dict(os.environ, MIRROR_BUILD=BUILD, MIRROR_DEMO_STATE=self.state_dir)
        res = subprocess.run([os.path.join(hosts.TOP, "run-demo")] + list(args),
                             env=env, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
        print("\n$ ./run-demo %s\n%s%s" % (" ".join(args), res.stdout, res.stderr),
              flush=True)
        return res

    def wrapper(self, host, *args):
        return subprocess.run([os.path.join(self.state_dir, "virsh-" + host)] + list(args),
                              capture_output=True, text=True, timeout=60)

    def lab_state(self):
        with open(os.path.join(self.state_dir, "lab.json")) as f:
            return json.load(f)

    def assertNothingLeft(self, state):
        netns = hosts.run(["ip", "netns", "list"]).stdout.split()
        for name, h in state["hosts"].items():
            self.assertNotIn(h["netns"], netns, "namespace of host %s left" % name)
            self.assertFalse(demo.proc_alive(h["pid"]), "libvirtd of host %s left" % name)
            self.assertEqual(demo.netns_pids(h["netns_inode"]), [],
                             "processes left in host %s's namespace" % name)
        self.assertNotIn("lvm-e2e-%so" % hosts.LAB_TAG, netns,
                         "the guest owner's namespace left")
        services = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"serve" in argv and state["dir"].encode() + b"/owner" in argv:
                services.append(int(pid))
        self.assertEqual(services, [], "the guest owner's service left")
        qemus = []
        for pid in os.listdir("/proc"):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if b"guest=demo-sev" in f.read() and demo.proc_alive(int(pid)):
                        qemus.append(pid)
            except (OSError, ValueError):
                pass
        self.assertEqual(qemus, [], "QEMU of the demo's guest left")
        self.assertFalse(os.path.exists(state["dir"]), "lab directory left")
        self.assertEqual(sorted(os.listdir(self.state_dir)), ["logs"],
                         "wrappers or state left")

    def test_keep_then_teardown(self):
        res = self.run_demo("--keep")
        self.assertEqual(res.returncode, 0)
        lines = res.stdout.splitlines()
        self.assertTrue(lines[0].startswith("ready: packages, libvirt tree and build up to "
                                            "date ("), "a warm run says more than one line")
        self.assertTrue(lines[1].startswith("libvirt-mirror demo:"))
        self.assertIn("summary: OK", lines)
        self.assertIn("the hosts are kept running", res.stdout)
        state = self.lab_state()
        self.assertTrue(state["kept"])

        res = self.wrapper("b", "list", "--all")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertRegex(res.stdout, r"\n\s*\d+\s+demo-sev\s+running\n")
        res = self.wrapper("a", "list", "--all")
        self.assertRegex(res.stdout, r"\n\s*-\s+demo-sev\s+shut off\n")

        res = self.run_demo("--keep")
        self.assertEqual(res.returncode, 1)
        self.assertIn("the demo's hosts are up", res.stdout)
        self.assertNotIn("libvirt-mirror demo:", res.stdout)
        self.assertEqual(self.lab_state(), state, "the second --keep changed the lab")
        res = self.wrapper("b", "list", "--name")
        self.assertEqual(res.stdout.split(), ["demo-sev"], "host b lost the guest")

        res = self.run_demo("--teardown")
        self.assertEqual(res.returncode, 0)
        self.assertIn("removed: host a (libvirtd %d" % state["hosts"]["a"]["pid"], res.stdout)
        self.assertNothingLeft(state)

    def test_failure_target_killed(self):
        res = self.run_demo("--failure", "target-killed")
        self.assertEqual(res.returncode, 0)
        out = res.stdout
        self.assertRegex(out, r"\n      virsh: error: .*\n      host a: demo-sev running, "
                              r"no migration job left, pattern intact \(1048576 words\), "
                              r"pass counter \d+ then \d+\n      host b: no domain, no QEMU "
                              r"process\n")
        self.assertIn("killed host b's QEMU processes", out)
        self.assertIn("\nsummary: OK\n", out)
        self.assertIn("  survived:   target-killed, before switchover\n", out)
        self.assertEqual(sorted(os.listdir(self.state_dir)), ["logs"])


def main():
    global BUILD
    BUILD = os.path.realpath(sys.argv[1])
    return hosts.run_tests(DemoTest)


if __name__ == "__main__":
    sys.exit(main())
