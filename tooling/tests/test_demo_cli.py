#!/usr/bin/python3
#
# Tests of ./run-demo's command line, none of which sets up test hosts or
# builds anything: an unknown option or failure name is refused before
# anything happens; so is a user who is not root, and a root without
# CAP_SYS_ADMIN (no network namespaces), each with an explanation; --help
# lists the failures that e2e/demo.py plays; --teardown with nothing
# running says so; a --keep while kept hosts are up refuses at once and
# leaves them alone (the hosts are faked here: a state file naming a process
# called libvirtd in a network namespace of its own; e2e/test_demo.py does
# it with real hosts); --teardown of a lab whose processes are gone cleans
# up, and leaves alone a libvirtd that merely has a recorded PID.
#
# Each test points run-demo at a state directory of its own
# (MIRROR_DEMO_STATE) and, as its build directory (MIRROR_BUILD), at a
# regular file: should run-demo wrongly go on, its meson setup fails at
# once instead of starting a build.

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
sys.path.insert(0, os.path.join(TOP, "e2e"))
import demo  # noqa: E402


class DemoCliTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="demo-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.build = os.path.join(self.tmp, "not-a-build-dir")
        self.state = os.path.join(self.tmp, "state")
        with open(self.build, "w") as f:
            f.write("untouched\n")

    def run_demo(self, *args, timeout=120, prefix=()):
        env = dict(os.environ, MIRROR_BUILD=self.build, MIRROR_DEMO_STATE=self.state)
        start = time.monotonic()
        res = subprocess.run(list(prefix) + [os.path.join(TOP, "run-demo")] + list(args),
                             env=env,
                             capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
        res.elapsed = time.monotonic() - start
        return res

    def assertNothingDone(self, res):
        with open(self.build) as f:
            self.assertEqual(f.read(), "untouched\n", "run-demo went on")
        self.assertFalse(os.path.exists(self.state), "run-demo created its state directory")
        self.assertNotIn("packages:", res.stdout + res.stderr)

    def test_unknown_option(self):
        res = self.run_demo("--kep")
        self.assertEqual(res.returncode, 2, res.stdout + res.stderr)
        self.assertIn("run-demo: unknown option '--kep'", res.stderr)
        self.assertIn("usage: ./run-demo", res.stderr)
        self.assertNothingDone(res)

    def test_unknown_failure(self):
        for args in (["--failure", "target-kiled"], ["--failure=nope"], ["--failure"]):
            res = self.run_demo(*args)
            self.assertEqual(res.returncode, 2, args)
            for name in demo.FAILURES:
                self.assertIn(name, res.stderr, args)
            self.assertNothingDone(res)

    def test_help_lists_the_failures_demo_plays(self):
        res = self.run_demo("--help")
        self.assertEqual(res.returncode, 0)
        for opt in ("--keep", "--teardown", "--failure NAME"):
            self.assertIn(opt, res.stdout)
        listed = [ln.split()[0] for ln in res.stdout.splitlines()
                  if ln.startswith(" " * 20) and ln.split()]
        self.assertEqual(sorted(listed), sorted(demo.FAILURES))
        self.assertNothingDone(res)

    def test_teardown_with_nothing_running(self):
        res = self.run_demo("--teardown")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("nothing to tear down", res.stdout)
        self.assertNothingDone(res)

    def test_not_root_explained_first(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to become another user")
        res = self.run_demo(prefix=["setpriv", "--reuid=65534", "--regid=65534",
                                    "--clear-groups"])
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("run-demo: this needs root.", res.stderr)
        self.assertIn("sudo ./run-demo", res.stderr)
        self.assertNothingDone(res)

    def test_no_network_namespaces_explained_first(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        # root without CAP_SYS_ADMIN, as in a container: unshare(2) is refused
        res = self.run_demo(prefix=["setpriv", "--inh-caps=-sys_admin",
                                    "--bounding-set=-sys_admin"])
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("run-demo: this machine cannot create network namespaces", res.stderr)
        self.assertIn("--privileged", res.stderr)
        self.assertNothingDone(res)

    def fake_lab(self, daemon_pid, lab_dir, inode=None):
        os.makedirs(self.state)
        state = {"dir": lab_dir, "owner": 1 << 22, "kept": True, "domain": "demo-sev",
                 "started": "earlier", "hosts": {
                     n: {"addr": "10.250.0.%d" % i, "netns": "lvm-e2e-cli-test-%s" % n,
                         "netns_inode": inode, "pid": daemon_pid}
                     for i, n in ((1, "a"), (2, "b"))}}
        path = os.path.join(self.state, "lab.json")
        with open(path, "w") as f:
            json.dump(state, f)
        for n in ("a", "b"):
            with open(os.path.join(self.state, "virsh-" + n), "w") as f:
                f.write("#!/bin/sh\n")
        return path

    def test_keep_while_hosts_are_up(self):
        # a process named libvirtd in a network namespace of its own stands
        # for the kept hosts' daemons
        if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode:
            self.skipTest("cannot create a network namespace here")
        fake = os.path.join(self.tmp, "libvirtd")
        shutil.copy(shutil.which("sleep"), fake)
        daemon = subprocess.Popen(["unshare", "--net", fake, "60"])
        self.addCleanup(daemon.wait)
        self.addCleanup(daemon.kill)
        deadline = time.monotonic() + 60
        while not demo.proc_alive(daemon.pid, "libvirtd"):
            self.assertLess(time.monotonic(), deadline, "the fake libvirtd did not start")
            time.sleep(0.05)
        inode = os.stat("/proc/%d/ns/net" % daemon.pid).st_ino
        path = self.fake_lab(daemon.pid, os.path.join(self.tmp, "lab"), inode)
        with open(path) as f:
            before = f.read()
        res = self.run_demo("--keep")
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("the demo's hosts are up, kept by './run-demo --keep'", res.stdout)
        self.assertIn("'./run-demo --teardown' first", res.stdout)
        self.assertNotIn("packages:", res.stdout)
        # refused at once: a run-demo that waited for the kept daemon would
        # take its 60 s; 30 s leaves a slow machine room to start the script
        self.assertLess(res.elapsed, 30)
        self.assertIsNone(daemon.poll(), "the kept hosts' daemon was stopped")
        with open(path) as f:
            self.assertEqual(f.read(), before, "the kept lab's state was changed")
        with open(self.build) as f:
            self.assertEqual(f.read(), "untouched\n", "run-demo went on")

    def test_teardown_leaves_a_reused_pid_alone(self):
        # the recorded libvirtd's PID now names another libvirtd, outside
        # the lab's namespace: not the lab's, not to be stopped
        fake = os.path.join(self.tmp, "libvirtd")
        shutil.copy(shutil.which("sleep"), fake)
        other = subprocess.Popen([fake, "60"])
        self.addCleanup(other.wait)
        self.addCleanup(other.kill)
        lab = tempfile.mkdtemp(prefix="lvm-e2e-")
        self.addCleanup(shutil.rmtree, lab, ignore_errors=True)
        self.fake_lab(other.pid, lab, inode=1)
        res = self.run_demo("--teardown")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertNotIn("libvirtd", res.stdout)
        time.sleep(0.2)
        self.assertIsNone(other.poll(), "teardown stopped a process that is not the lab's")
        self.assertFalse(os.path.exists(lab))

    def test_teardown_of_a_lab_that_is_gone(self):
        lab = tempfile.mkdtemp(prefix="lvm-e2e-")
        self.addCleanup(shutil.rmtree, lab, ignore_errors=True)
        open(os.path.join(lab, "something"), "w").close()
        dead = subprocess.Popen(["true"])
        dead.wait()
        self.fake_lab(dead.pid, lab)
        res = self.run_demo("--teardown")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("removed:", res.stdout)
        self.assertFalse(os.path.exists(lab), "the lab directory is left")
        self.assertEqual(os.listdir(self.state), [], "wrappers or state left")
        res = self.run_demo("--teardown")
        self.assertIn("nothing to tear down", res.stdout)


if __name__ == "__main__":
    unittest.main()
