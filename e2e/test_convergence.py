#!/usr/bin/python3
#
# End-to-end: a confidential migration of a busy SEV guest that does not
# converge on its own converges with libvirt's usual tools (issue 22):
# auto-converge (QEMU throttles the guest's vCPUs; the stand-in's mirror
# vCPU threads, which carry the encrypted stream, are never throttled) and
# pausing the guest (virsh migrate --timeout N --timeout-suspend; the
# contract's 'stop' halts only the guest's vCPUs, the helper keeps
# exporting). domjobabort after such a pause resumes the source. Parallel
# channels: more --parallel-connections than mirror vCPUs are refused
# before anything starts; a guest with <mirror vcpus='2'/> moves over the
# main stream and two parallel channels, each with its own key and records.
#
# The test guest (e2e/guest/) rewrites 8 MiB of its memory without pause.
# At --bandwidth 20 (MiB/s) every pass leaves more dirty memory (the whole
# 8 MiB) than the link drains within the default downtime limit (300 ms:
# 6 MiB), so the migration keeps iterating: the first test shows that (still migrating after
# UNHELPED_S seconds, with several iterations done), then aborts it.
# Auto-converge is shown with a guest of its own (dirty=N on its command
# line: its dirtying is paced by its timer, so throttling its vCPUs slows
# it), since no throttle slows the default guest's millisecond passes.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_convergence.py GUEST_ELF

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import hosts  # noqa: E402
import sevguest  # noqa: E402
import wirecapture  # noqa: E402

GUEST = None
DOMAIN = "e2e-busy"
# MiB/s: below the guest's dirty rate (8 MiB rewritten many times a second
# under TCG), above what makes the first pass slow (20 MiB of non-zero pages)
BANDWIDTH = "20"
# how long a migration without help must keep iterating
UNHELPED_S = 10
# MiB/s the auto-converge test's guest dirties (dirty=N, timer-paced)
PACED_DIRTY = 60


class ConvergenceTest(sevguest.SevGuestLabTest):

    DOMAIN = DOMAIN

    def setUp(self):
        self.b.standin_config()
        # each test starts with the guest on host a
        if DOMAIN not in self.a.virsh("list", "--name").stdout.split():
            self.migrate_back()

    def migrate_back(self):
        sevguest.wait_helper_ready(self.b, DOMAIN)
        res = self.b.virsh("migrate", "--live", "--p2p", "--confidential", "--tls",
                           DOMAIN, "qemu+tls://%s/system" % self.a.addr,
                           check=False, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)
        sevguest.wait_helper_ready(self.a, DOMAIN)

    def start_migration(self, *extra, name=DOMAIN):
        proc = sevguest.migrate_async(self.a, "--live", "--p2p", "--confidential",
                                      "--tls", "--bandwidth", BANDWIDTH, *extra,
                                      name, self.target)
        self.addCleanup(sevguest.reap, proc)
        return proc

    def wait_for(self, what, cond, timeout=60):
        deadline = time.monotonic() + timeout
        while not cond():
            self.assertLess(time.monotonic(), deadline, "timed out waiting for " + what)
            time.sleep(0.1)

    def iterations(self):
        info = sevguest.job_info(self.a, DOMAIN, completed=False)
        return int(info.get("Iteration", "0"))

    def assertMovedIntact(self, proc, started, how):
        out, err = proc.communicate(timeout=120)
        elapsed = time.monotonic() - started
        self.assertEqual(proc.returncode, 0, err + self.a.log_tail() + self.b.log_tail())
        self.assertEqual(sevguest.state(self.b, DOMAIN), "running")
        self.assertEqual(self.a.emulator_pids(), [])
        self.assertEqual(sevguest.pattern_errors(self.b, self.lab, DOMAIN), [])
        info = sevguest.job_info(self.b, DOMAIN)
        print("\n    %s: converged in %.1f s (virsh migrate wall clock), downtime %s, "
              "%s processed" % (how, elapsed, info.get("Total downtime"),
                                info.get("Memory processed")), flush=True)
        return info

    # ------------------------------------------------------- scenarios

    def test_01_busy_guest_does_not_converge_unhelped_then_suspend(self):
        proc = self.start_migration()
        sevguest.wait_transfer(self.a, DOMAIN, proc)
        started = time.monotonic()
        first = self.iterations()
        # still migrating UNHELPED_S seconds later, and iterating: each
        # pass leaves too much dirty memory for the downtime limit
        while time.monotonic() - started < UNHELPED_S:
            if proc.poll() is not None:
                self.fail("the migration ended without help: " + proc.stderr.read())
            time.sleep(0.5)
        info = sevguest.job_info(self.a, DOMAIN, completed=False)
        last = int(info.get("Iteration", "0"))
        print("\n    without help: still migrating after %d s, iterations %d -> %d, "
              "dirty rate %s, %s processed" % (UNHELPED_S, first, last,
                                               info.get("Dirty rate"),
                                               info.get("Memory processed")), flush=True)
        self.assertGreaterEqual(last - first, 3, "not iterating: %r" % info)
        # then the help: a pause of the source (virDomainSuspend, what Nova's
        # live_migration_force_complete calls) lets the same migration end
        paused = time.monotonic()
        self.a.virsh("suspend", DOMAIN)
        self.assertMovedIntact(proc, paused, "virsh suspend during the job")

    def test_02_auto_converge(self):
        # Auto-converge can only help a guest whose dirtying needs its vCPUs'
        # time. The default guest re-dirties its whole 8 MiB in about a
        # millisecond, so even at 99 % throttle (10 ms a second of run time)
        # every pass finds all of it dirty again. This test uses a guest
        # of its own instead: 64 MiB, dirtying PACED_DIRTY MiB/s (paced by
        # its timer, e2e/guest/guest.s), three times what the link drains.
        # Throttled, its vCPU misses most of its timer ticks and dirties
        # that much less, so the migration converges; not by chance.
        name = "e2e-paced"
        xml = sevguest.domain_xml(self.lab, name, self.GUEST, sev=True,
                                  memory=64, dirty=PACED_DIRTY)
        self.addCleanup(self.remove, name)
        sevguest.define_and_start(self.a, self.lab, name, xml)
        sevguest.wait_helper_ready(self.a, name)
        started = time.monotonic()
        proc = self.start_migration("--auto-converge", "--auto-converge-initial", "99",
                                    name=name)
        # the throttle QEMU puts on the guest's vCPUs, as the source reports it
        throttle = 0
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            info = sevguest.job_info(self.a, name, completed=False)
            throttle = max(throttle, int(info.get("Auto converge throttle", "0")))
            time.sleep(0.2)
        out, err = proc.communicate(timeout=120)
        elapsed = time.monotonic() - started
        self.assertEqual(proc.returncode, 0, err + self.a.log_tail() + self.b.log_tail())
        self.assertEqual(sevguest.state(self.b, name), "running")
        self.assertEqual(sevguest.pattern_sample_errors(self.b, self.lab, name), [])
        info = sevguest.job_info(self.b, name)
        print("\n    --auto-converge --auto-converge-initial 99 (guest dirtying %s MiB/s, "
              "throttle seen: %d %%): converged in %.1f s, downtime %s, %s processed"
              % (PACED_DIRTY, throttle, elapsed, info.get("Total downtime"),
                 info.get("Memory processed")), flush=True)
        self.assertGreater(throttle, 0, "the guest's vCPUs were never throttled")

    def remove(self, name):
        for h in (self.a, self.b):
            h.virsh("destroy", name, check=False)
            h.virsh("undefine", name, check=False)

    def test_03_timeout_suspend(self):
        started = time.monotonic()
        proc = self.start_migration("--timeout", "5", "--timeout-suspend")
        self.assertMovedIntact(proc, started, "--timeout 5 --timeout-suspend")

    def test_04_domjobabort_after_pause_resumes_the_source(self):
        # at 1 MiB/s, the pass after the pause takes seconds (8 MiB dirty):
        # the abort, one virsh command, reaches host a long before it ends
        proc = self.start_migration()
        sevguest.wait_transfer(self.a, DOMAIN, proc)
        self.a.virsh("migrate-setspeed", DOMAIN, "1")
        self.a.virsh("suspend", DOMAIN)
        self.assertEqual(sevguest.state(self.a, DOMAIN), "paused")
        self.a.virsh("domjobabort", DOMAIN)
        proc.communicate(timeout=120)
        self.assertNotEqual(proc.returncode, 0, "the migration completed")
        # running again, intact, no job left, host b clean
        sevguest.source_untouched(self.a, self.b, self.lab, DOMAIN)

    def test_05_more_parallel_channels_than_mirror_vcpus_refused(self):
        # the guest has <mirror vcpus='1'/>: each parallel channel needs a
        # mirror vCPU of its own to encrypt it
        since = len(self.b.domain_log(DOMAIN))
        res = self.a.virsh("migrate", "--live", "--p2p", "--confidential", "--tls",
                           "--parallel", "--parallel-connections", "2",
                           DOMAIN, self.target, check=False, timeout=120)
        self.assertNotEqual(res.returncode, 0, "migration succeeded")
        self.assertIn("VIR_MIGRATE_PARALLEL (--parallel) of domain '%s' with 2 "
                      "connections needs as many mirror vCPUs, but the domain has 1"
                      % DOMAIN, res.stderr)
        # before anything started: host b never started a QEMU for it
        self.assertEqual(self.b.domain_log(DOMAIN)[since:], "")
        sevguest.source_untouched(self.a, self.b, self.lab, DOMAIN)

    def test_06_parallel_channels_served_by_mirror_vcpus(self):
        # a second SEV guest with two mirror vCPUs: two parallel channels,
        # each encrypted by one mirror vCPU (the stand-in's log says so)
        a, b, lab = self.a, self.b, self.lab
        name = "e2e-par"
        xml = sevguest.domain_xml(lab, name, self.GUEST, sev=True)
        self.assertIn("<mirror vcpus='1'/>", xml)
        xml = xml.replace("<mirror vcpus='1'/>", "<mirror vcpus='2'/>")
        # it stays for test_07 (the lab's teardown removes it)
        sevguest.define_and_start(a, lab, name, xml)
        sevguest.wait_helper_ready(a, name)
        started = time.monotonic()
        res = a.virsh("migrate", "--live", "--p2p", "--confidential", "--tls",
                      "--parallel", "--parallel-connections", "2", name, self.target,
                      check=False, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr + a.log_tail() + b.log_tail())
        elapsed = time.monotonic() - started
        self.assertEqual(sevguest.state(b, name), "running")
        self.assertEqual(sevguest.pattern_errors(b, lab, name), [])
        log = b.domain_log(name)
        self.assertIn("migration stream: 3 channels (the main stream and 2 parallel)", log)
        for channel in (0, 1, 2):
            self.assertRegex(log, r"migration channel %d \(incoming\): [1-9][0-9]* records "
                             r"accepted" % channel)
            self.assertIn("migration channel %d (incoming) ended" % channel, log)
        print("\n    --parallel --parallel-connections 2, <mirror vcpus='2'/>: %.1f s"
              % elapsed, flush=True)

    def test_07_parallel_channels_wire_capture(self):
        """The guest of test_06, back from host b to host a over two
        parallel channels, with the --tls a confidential migration always
        requires, recorded whole by the recording relay: none of the
        guest's pattern on the wire; three connections, channels 0, 1 and
        2, each with a source nonce and key of its own, every record
        authenticating under its channel's key up to the end record, and
        what each channel's records carry is QEMU's TLS session (a TLS
        handshake first), not QEMU's stream in clear."""
        a, b, lab = self.a, self.b, self.lab
        name = "e2e-par"
        self.assertEqual(sevguest.state(b, name), "running", "test_06 did not run first")
        self.addCleanup(lambda: [(h.virsh("destroy", name, check=False),
                                  h.virsh("undefine", name, check=False)) for h in (a, b)])
        sevguest.wait_helper_ready(b, name)
        port = 40000 + os.getpid() % 5000
        path = os.path.join(lab.dir, "wire-parallel")
        with wirecapture.Relay(("127.0.0.1", port), (a.addr, port), path, netns=b.netns):
            res = b.virsh("migrate", "--live", "--p2p", "--confidential", "--tls",
                          "--tls-destination", a.addr, "--parallel",
                          "--parallel-connections", "2", name,
                          "qemu+tls://%s/system" % a.addr,
                          "--migrateuri", "tcp://127.0.0.1:%d" % port,
                          check=False, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr + a.log_tail() + b.log_tail())
        rec = wirecapture.Recording(path)
        self.assertEqual(sevguest.pattern_errors(a, lab, name), [])
        hits = rec.count(wirecapture.guest_pattern_windows())
        self.assertEqual(len(rec.connections), 3, [len(c["there"]) for c in rec.connections])
        channels = {}
        for conn in rec.connections:
            hdr = wirecapture.parse_header(conn["there"])
            key_id, there, back = wirecapture.decode_stream(conn["there"], conn["back"],
                                                            lab.owner.key())
            self.assertEqual(key_id, lab.owner.key_id)
            channels[hdr["channel"]] = (hdr["source-nonce"], there)
        self.assertEqual(sorted(channels), [0, 1, 2])
        nonces = [n for n, _ in channels.values()]
        self.assertEqual(len(set(nonces)), 3, "a source nonce used on two channels")
        for c in (0, 1, 2):
            self.assertEqual(channels[c][1][:2], b"\x16\x03",
                             "channel %d does not carry a TLS session" % c)
            self.assertNotIn(b"QEVM", channels[c][1])
        print("\n    parallel, --tls: %.1f MiB recorded over %d connections, %d hit(s) "
              "of the pattern on the wire; each channel's records carry a TLS session"
              % (rec.total() / 2 ** 20, len(rec.connections), hits), flush=True)
        self.assertGreater(rec.total(), 4 << 20, "the recording missed the migration")
        self.assertEqual(hits, 0)


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    ConvergenceTest.GUEST = GUEST
    return hosts.run_tests(ConvergenceTest)


if __name__ == "__main__":
    sys.exit(main())
