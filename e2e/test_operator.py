#!/usr/bin/python3
#
# End-to-end: what an operator sees and controls of a mirror VM, through
# virsh over the remote protocol (virsh runs on host b and talks to host a's
# libvirtd over qemu+tls://), on a running SEV guest with <mirror vcpus='1'/>
# under the QEMU stand-in:
#
#  - mirror-info and domstats --mirror report the mirror vCPU's real thread
#    (the one QEMU reports with query-mirror-vcpus, a task of the QEMU
#    process in /proc), the affinity the kernel reports and its CPU time,
#    and the migration helper's state; domlaunchsecinfo reports the helper;
#  - mirror-pin --live changes the affinity the kernel reports, and
#    mirror-pin --config the persistent definition (<mirrorpin>);
#  - bad input is refused with a clear error and changes nothing.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_operator.py GUEST_ELF

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import hosts  # noqa: E402
import sevguest  # noqa: E402

GUEST = None
DOMAIN = "e2e-op"
PLAIN = "e2e-op-plain"


def kernel_affinity(tid):
    """Cpus_allowed_list of a thread, as the kernel reports it."""
    with open("/proc/%d/status" % tid) as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    raise AssertionError("no Cpus_allowed_list for thread %d" % tid)


class OperatorTest(sevguest.SevGuestLabTest):

    DOMAIN = DOMAIN

    @classmethod
    def set_up_lab(cls):
        cls.uri = "qemu+tls://%s/system" % cls.a.addr
        # a plain guest, defined only: it has no <mirror/>
        path = os.path.join(cls.lab.dir, "%s.xml" % PLAIN)
        with open(path, "w") as f:
            f.write(sevguest.domain_xml(cls.lab, PLAIN, GUEST))
        cls.a.virsh("define", path)

    def remote(self, *args, check=True):
        """virsh on host b, connected to host a's libvirtd over TLS."""
        return self.b.virsh(*args, uri=self.uri, check=check)

    def refused(self, expected, *args):
        res = self.remote(*args, check=False)
        self.assertNotEqual(res.returncode, 0, "virsh %s succeeded" % " ".join(args))
        self.assertIn(expected, res.stderr)
        return res

    def mirror_thread(self):
        """The mirror vCPU thread QEMU reports, and the QEMU process."""
        vcpus = sevguest.qmp(self.a, DOMAIN, "query-mirror-vcpus")
        self.assertEqual(len(vcpus), 1)
        tid = vcpus[0]["thread-id"]
        # a task of the QEMU process libvirt started (the stand-in; its
        # child, the real QEMU, runs the guest's vCPUs)
        owners = [pid for pid in self.a.emulator_pids()
                  if os.path.isdir("/proc/%d/task/%d" % (pid, tid))]
        self.assertEqual(len(owners), 1, "thread %d is not a task of QEMU" % tid)
        return tid

    def stats(self):
        out = self.remote("domstats", "--mirror", DOMAIN).stdout
        return dict(line.strip().split("=", 1) for line in out.splitlines()
                    if "=" in line)

    def test_mirror_info(self):
        tid = self.mirror_thread()
        out = self.remote("mirror-info", DOMAIN).stdout
        rows = [line.split() for line in out.splitlines()
                if line.strip().startswith("0 ")]
        self.assertEqual(len(rows), 1, out)
        index, thread, affinity, cputime = rows[0]
        self.assertEqual(int(thread), tid)
        self.assertEqual(affinity, kernel_affinity(tid))
        self.assertRegex(cputime, r"^\d+\.\d{3}s$")
        self.assertRegex(out, r"Migration helper:\s+ready")
        self.assertRegex(out, r"Transport key:\s+yes")
        self.assertRegex(out, r"Transport key ID:\s+%s" % hosts.OWNER_KEY_ID)
        self.assertRegex(out, r"Confidential migration:\s+supported by this host and QEMU "
                              r"\(up to 16 mirror vCPUs\)")

    def test_domstats(self):
        tid = self.mirror_thread()
        stats = self.stats()
        self.assertEqual(stats["mirror.count"], "1")
        self.assertEqual(int(stats["mirror.0.thread"]), tid)
        self.assertEqual(stats["mirror.0.affinity"], kernel_affinity(tid))
        self.assertGreaterEqual(int(stats["mirror.0.time"]), 0)
        self.assertEqual(stats["mirror.helper.status"], "ready")
        self.assertEqual(stats["mirror.helper.transport_key"], "yes")
        self.assertEqual(stats["mirror.helper.transport_key_id"], hosts.OWNER_KEY_ID)
        # every key of the group has its prefix
        self.assertEqual([k for k in stats if not k.startswith("mirror.")], [])

    def test_launchsecinfo(self):
        out = self.remote("domlaunchsecinfo", DOMAIN).stdout
        self.assertRegex(out, r"migration_helper\.status\s*:\s*ready")
        self.assertRegex(out, r"migration_helper\.transport_key\s*:\s*yes")

    def test_pin_live(self):
        if os.cpu_count() < 2:
            self.skipTest("needs two host CPUs")
        tid = self.mirror_thread()
        before = kernel_affinity(tid)
        self.addCleanup(self.remote, "mirror-pin", DOMAIN, "--vcpu", "0", "--cpulist", before,
                        "--live")
        watch = sevguest.EventWatch(self.a, "--domain", DOMAIN, "--event", "tunable")
        self.addCleanup(watch.stop)
        for cpus in ("1", "0"):
            seen = len(watch.lines)
            self.remote("mirror-pin", DOMAIN, "--vcpu", "0", "--cpulist", cpus, "--live")
            self.assertEqual(kernel_affinity(tid), cpus)
            shown = self.remote("mirror-pin", DOMAIN).stdout
            self.assertRegex(shown, r"(?m)^\s*0\s+%s\s*$" % cpus)
            self.assertRegex(self.remote("mirror-pin", DOMAIN, "--live", "--vcpu", "0").stdout,
                             r"(?m)^\s*0\s+%s\s*$" % cpus)
            self.assertEqual(self.stats()["mirror.0.affinity"], cpus)
            if cpus == "1":
                # virsh event subscribes in the background: pin again until
                # an event shows that it listens
                deadline = time.monotonic() + 60
                while not any("cputune.mirrorpin0: 1" in line for line in watch.lines[seen:]):
                    self.assertLess(time.monotonic(), deadline, "no tunable event: " + watch.text())
                    time.sleep(0.2)
                    seen = len(watch.lines)
                    self.remote("mirror-pin", DOMAIN, "--vcpu", "0", "--cpulist", "1", "--live")
            else:
                self.wait_for_event(watch, seen, "cputune.mirrorpin0: 0")
        # the live definition keeps it, in the status XML too
        self.assertIn("<mirrorpin vcpu='0' cpuset='0'/>",
                      self.remote("dumpxml", DOMAIN).stdout)

    def wait_for_event(self, watch, seen, expected):
        deadline = time.monotonic() + 60
        while not any(expected in line for line in watch.lines[seen:]):
            self.assertLess(time.monotonic(), deadline,
                            "no '%s' event: %s" % (expected, watch.text()))
            time.sleep(0.1)
        return watch.lines[seen:]

    def test_pin_config(self):
        before = os.path.join(self.lab.dir, "%s-inactive.xml" % DOMAIN)
        with open(before, "w") as f:
            f.write(self.remote("dumpxml", "--inactive", DOMAIN).stdout)
        self.addCleanup(self.a.virsh, "define", before)
        tid = self.mirror_thread()
        affinity = kernel_affinity(tid)
        # the persistent definition has no pin: where the domain's vCPUs run
        # (this host's CPUs)
        shown = self.remote("mirror-pin", DOMAIN, "--config").stdout
        self.assertRegex(shown, r"(?m)^\s*0\s+0-%d\s*$" % (os.cpu_count() - 1)
                         if os.cpu_count() > 1 else r"(?m)^\s*0\s+0\s*$")
        self.remote("mirror-pin", DOMAIN, "--vcpu", "0", "--cpulist", "0", "--config")
        self.assertIn("<mirrorpin vcpu='0' cpuset='0'/>",
                      self.remote("dumpxml", "--inactive", DOMAIN).stdout)
        shown = self.remote("mirror-pin", DOMAIN, "--config").stdout
        self.assertRegex(shown, r"(?m)^\s*0\s+0\s*$")
        # the running domain is not changed
        self.assertEqual(kernel_affinity(tid), affinity)
        self.assertNotIn("<mirrorpin", self.remote("dumpxml", DOMAIN).stdout)
        if os.cpu_count() < 2:
            return
        # only a change of the running domain emits the tunable event (as
        # for vcpupin and iothreadpin): after a config pin to CPU 1 and a
        # live pin to CPU 0, the watcher sees the live one only. It listens
        # once it reports a live pin to the current affinity (repeated
        # until then; those events all carry that affinity).
        watch = sevguest.EventWatch(self.a, "--domain", DOMAIN, "--event", "tunable")
        self.addCleanup(watch.stop)
        self.addCleanup(self.remote, "mirror-pin", DOMAIN, "--vcpu", "0", "--cpulist", affinity,
                        "--live")
        deadline = time.monotonic() + 60
        while not watch.lines:
            self.assertLess(time.monotonic(), deadline, "no tunable event")
            self.remote("mirror-pin", DOMAIN, "--vcpu", "0", "--cpulist", affinity, "--live")
            time.sleep(0.2)
        seen = len(watch.lines)
        self.remote("mirror-pin", DOMAIN, "--vcpu", "0", "--cpulist", "1", "--config")
        self.remote("mirror-pin", DOMAIN, "--vcpu", "0", "--cpulist", "0", "--live")
        lines = self.wait_for_event(watch, seen, "cputune.mirrorpin0: 0")
        pins = [line.strip() for line in lines if "cputune." in line]
        self.assertEqual([pin for pin in pins if pin != "cputune.mirrorpin0: %s" % affinity],
                         ["cputune.mirrorpin0: 0"], watch.text())

    def test_bad_input(self):
        tid = self.mirror_thread()
        affinity = kernel_affinity(tid)
        live = self.remote("dumpxml", DOMAIN).stdout
        config = self.remote("dumpxml", "--inactive", DOMAIN).stdout
        self.refused("failed to get domain 'no-such-domain'",
                     "mirror-pin", "no-such-domain", "--vcpu", "0", "--cpulist", "0")
        self.refused("failed to get domain 'no-such-domain'", "mirror-info", "no-such-domain")
        self.refused("mirror vCPU 3 does not exist: domain '%s' has 1 mirror vCPUs" % DOMAIN,
                     "mirror-pin", DOMAIN, "--vcpu", "3", "--cpulist", "0", "--live")
        self.refused("mirror vCPU 3 does not exist", "mirror-pin", DOMAIN, "--vcpu", "3")
        self.refused("Invalid cpulist", "mirror-pin", DOMAIN, "--vcpu", "0", "--cpulist", "^0")
        self.refused("exceed the maxcpu", "mirror-pin", DOMAIN, "--vcpu", "0", "--cpulist", "64")
        self.refused("domain '%s' has no mirror vCPUs (element 'mirror')" % PLAIN,
                     "mirror-pin", PLAIN, "--vcpu", "0", "--cpulist", "0", "--config")
        self.refused("has no mirror vCPUs", "mirror-info", PLAIN)
        self.refused("are mutually exclusive", "mirror-pin", DOMAIN, "--vcpu", "0",
                     "--cpulist", "0", "--live", "--current")
        self.refused("Missing mirror vCPU number", "mirror-pin", DOMAIN, "--cpulist", "0")
        # nothing changed
        self.assertEqual(kernel_affinity(tid), affinity)
        self.assertEqual(self.remote("dumpxml", DOMAIN).stdout, live)
        self.assertEqual(self.remote("dumpxml", "--inactive", DOMAIN).stdout, config)

    def test_zz_confidential_job_phases(self):
        """domjobinfo on both hosts says the migration is confidential; on
        the target, during Prepare, it gives the step and its time. Last:
        the guest ends up on host b."""
        # the phase lasts the helper's boot: 6 s, in which the loop below
        # (one virsh call a round, well under a second also on a loaded
        # machine) looks several times; the boot ends far within host b's
        # mirror_helper_timeout (hosts.HELPER_TIMEOUT)
        self.b.standin_config(boot_ms=6000)
        self.addCleanup(self.b.standin_config)
        proc = sevguest.migrate_async(self.a, "--live", "--p2p", "--tls", "--confidential",
                                      DOMAIN, "qemu+tls://%s/system" % self.b.addr)
        seen = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            info = sevguest.job_info(self.b, DOMAIN, completed=False)
            if info.get("Confidential phase", "").startswith("Waiting for helper"):
                seen = info
                break
            time.sleep(0.1)
        self.assertIsNotNone(seen, "no Prepare phase in host b's domjobinfo")
        self.assertEqual(seen.get("Confidential"), "yes")
        self.assertEqual(seen.get("Operation"), "Incoming migration")
        self.assertRegex(seen["Confidential phase"], r"^Waiting for helper \(\d+ ms\)$")
        source = sevguest.job_info(self.a, DOMAIN, completed=False)
        self.assertEqual(source.get("Confidential"), "yes")
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, err)
        done = sevguest.job_info(self.b, DOMAIN, completed=True)
        self.assertEqual(done.get("Confidential"), "yes")
        self.assertEqual(sevguest.state(self.b, DOMAIN), "running")


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    OperatorTest.GUEST = GUEST
    return hosts.run_tests(OperatorTest)


if __name__ == "__main__":
    sys.exit(main())
