#!/usr/bin/python3
#
# End-to-end: confidential migration of an SEV guest between the two test
# hosts of e2e/hosts.py, with the built libvirtd, real virsh, and the QEMU
# stand-in (e2e/standin) around Debian's real QEMU: what needs SEV hardware
# or QEMU's unmerged mirror VM patches is simulated by the stand-in, and
# nothing else (see its header comment and docs/kbase/confidential-migration.rst).
#
# One SEV guest with <mirror vcpus='1'/> runs on host a through all the
# failure scenarios; after each, the test checks that it still runs on
# host a with its 4 MiB pattern intact and its counter growing, that it has
# no migration job left, and that host b has neither a domain nor a QEMU
# process. Then it migrates confidentially to host b, and the target is
# checked the same way a plain migration's target is; and back to host a,
# driven by virsh rather than peer to peer, arriving paused.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_confidential.py GUEST_ELF

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import guestcheck  # noqa: E402
import hosts  # noqa: E402
import sevguest  # noqa: E402

GUEST = None
DOMAIN = "e2e-sev"


class ConfidentialMigrationTest(sevguest.SevGuestLabTest):

    DOMAIN = DOMAIN

    def setUp(self):
        self.b.standin_config()

    # ---------------------------------------------------------- checks

    def assertSourceUntouched(self):
        """The guest runs on host a, intact, with no job left; host b has
        no domain and no QEMU (sevguest.source_untouched)."""
        sevguest.source_untouched(self.a, self.b, self.lab, DOMAIN)

    def assertCounterGrows(self, host, timeout=60):
        """The guest runs on @host: its pass counter grows (bounded wait)."""
        lab = self.lab
        before = sevguest.guest_word(host, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        self.wait_for("the guest's counter to grow on host %s" % host.name,
                      lambda: sevguest.guest_word(host, lab, DOMAIN,
                                                  guestcheck.COUNTER_ADDR) > before,
                      timeout)

    def wait_log(self, host, text, since, timeout=30):
        """Until the domain log on @host has @text after offset @since."""
        self.wait_for("'%s' in the domain log of host %s" % (text, host.name),
                      lambda: text in host.domain_log(DOMAIN)[since:], timeout)

    def inject(self, host, command, **arguments):
        """Fault injection: an x- command of the QEMU stand-in (test mode)."""
        return sevguest.qmp(host, DOMAIN, command, **arguments)

    def migrate(self, *extra, check_fail=True):
        extra = ("--tls",) + tuple(e for e in extra if e != "--tls")
        res = self.a.virsh("migrate", "--live", "--p2p", "--confidential",
                           *extra, DOMAIN, self.target, check=False, timeout=120)
        if check_fail:
            self.assertNotEqual(res.returncode, 0, "migration succeeded")
            self.say(res.stderr)
        return res

    def start_migration(self, *extra):
        proc = sevguest.migrate_async(self.a, "--live", "--p2p", "--confidential",
                                      "--tls", *extra, DOMAIN, self.target)
        # whatever the test finds, the migration does not outlive it
        self.addCleanup(sevguest.reap, proc)
        return proc

    def finish(self, proc, timeout=120):
        out, err = proc.communicate(timeout=timeout)
        self.assertNotEqual(proc.returncode, 0, "migration succeeded")
        self.say(err)
        return err

    @staticmethod
    def say(stderr):
        """Show what virsh reported: the test log then tells each failure."""
        print("\n    virsh: %s" % (stderr.strip().splitlines() or ["(nothing)"])[-1],
              flush=True)

    def wait_for(self, what, cond, timeout=60):
        deadline = time.monotonic() + timeout
        while not cond():
            self.assertLess(time.monotonic(), deadline, "timed out waiting for " + what)
            time.sleep(0.1)

    def wait_transfer(self, proc, nbytes=1 << 20):
        """Until the source has sent @nbytes of guest memory."""
        sevguest.wait_transfer(self.a, DOMAIN, proc, nbytes)

    def kill_target_qemu(self):
        sevguest.kill_emulators(self.b)

    # ------------------------------------------------------- scenarios

    def test_01_plain_migration_of_sev_guest_refused(self):
        res = self.a.virsh("migrate", "--live", "--p2p", DOMAIN, self.target,
                           check=False)
        self.assertNotEqual(res.returncode, 0)
        self.say(res.stderr)
        self.assertIn("is an SEV guest with mirror vCPUs: its memory may only be "
                      "migrated confidentially, with VIR_MIGRATE_CONFIDENTIAL "
                      "(virsh migrate --confidential)", res.stderr)
        self.assertSourceUntouched()

    def test_02_confidential_without_mirror_refused(self):
        name = "e2e-sev-nomirror"
        sevguest.define_and_start(self.a, self.lab, name,
                                  sevguest.domain_xml(self.lab, name, GUEST,
                                                      sev=True, mirror=False))
        try:
            res = self.a.virsh("migrate", "--live", "--p2p", "--confidential", "--tls",
                               name, self.target, check=False)
            self.assertNotEqual(res.returncode, 0)
            self.say(res.stderr)
            self.assertIn("domain '%s' has no mirror vCPUs" % name, res.stderr)
            self.assertEqual(sevguest.state(self.a, name), "running")
        finally:
            self.a.virsh("destroy", name, check=False)
            self.a.virsh("undefine", name, check=False)
        self.assertSourceUntouched()

    def test_03_target_killed_during_helper_boot(self):
        # the boot time holds from the target QEMU's start: configuration
        self.b.standin_config(boot_ms=30000)
        since = len(self.b.domain_log(DOMAIN))
        proc = self.start_migration()
        self.wait_log(self.b, "migration helper: booting", since)
        self.kill_target_qemu()
        err = self.finish(proc)
        # host b's libvirtd learns of it either from its wait for the helper
        # (the domain is no longer active) or from the query it has under
        # way (the monitor closes under it), whichever comes first; on a
        # loaded machine either does (seen under tooling/stress)
        self.assertRegex(err, r"QEMU of domain '%s' went away while waiting for its "
                              r"migration helper|QEMU unexpectedly closed the monitor "
                              r"\(vm='%s'\)" % (DOMAIN, DOMAIN))
        self.assertSourceUntouched()

    def test_04_helper_never_ready(self):
        # the helper hangs, so nothing legitimate races the timeout: host b
        # waits the short HANG_HELPER_TIMEOUT here, not its usual one
        b = self.b
        b.qemu_conf(helper_timeout=hosts.HANG_HELPER_TIMEOUT)
        b.restart()
        self.addCleanup(b.restart)
        self.addCleanup(b.qemu_conf)
        b.standin_config(helper="hang")
        start = time.monotonic()
        res = self.migrate()
        self.assertIn("migration helper of domain '%s' is not ready after %d ms "
                      "(status 'booting')" % (DOMAIN, hosts.HANG_HELPER_TIMEOUT * 1000),
                      res.stderr)
        self.assertGreaterEqual(time.monotonic() - start, hosts.HANG_HELPER_TIMEOUT)
        self.assertSourceUntouched()

    def test_05_helper_failed(self):
        self.b.standin_config(helper="failed")
        res = self.migrate()
        self.assertIn("migration helper of domain '%s' failed" % DOMAIN, res.stderr)
        self.assertSourceUntouched()

    def test_05a_target_helper_fails_while_waited_for(self):
        """The target's helper fails at run time while libvirt waits for it
        (booting -> failed, injected through the stand-in's control socket
        on host b, since libvirt hides the incoming domain): the migration
        fails with the helper's reason."""
        # a boot long enough to inject into: configuration, from QEMU's start
        self.b.standin_config(boot_ms=30000)
        since = len(self.b.domain_log(DOMAIN))
        proc = self.start_migration()
        self.wait_log(self.b, "migration helper: booting", since)
        self.assertEqual(self.b.standin_control("x-helper-fail", reason="no launch secret"),
                         {"return": {}})
        err = self.finish(proc)
        self.assertIn("migration helper of domain '%s' failed: no launch secret" % DOMAIN,
                      err)
        self.assertSourceUntouched()

    def test_05b_source_helper_fails_at_run_time(self):
        """The source's helper fails while the guest runs (ready -> failed):
        refused before the target is contacted. A failed helper stays
        failed (a reset would boot it again, but this domain's on_reboot is
        destroy), so the guest is restarted for the tests that follow."""
        a, lab = self.a, self.lab
        self.inject(a, "x-helper-fail", reason="mailbox stopped answering")
        self.assertEqual(sevguest.qmp(a, DOMAIN, "query-migration-helper"),
                         {"status": "failed", "error": "mailbox stopped answering"})
        res = self.migrate()
        self.assertIn("the migration helper of domain '%s' is not ready (status 'failed': "
                      "mailbox stopped answering)" % DOMAIN, res.stderr)
        self.assertEqual(self.b.emulator_pids(), [])
        self.assertEqual(sevguest.state(a, DOMAIN), "running")
        a.virsh("destroy", DOMAIN)
        # the guest owner launches it again: a new session, a new secret
        sevguest.start_sev_guest(a, lab, DOMAIN)
        self.wait_for("the guest on host a",
                      lambda: sevguest.guest_word(a, lab, DOMAIN, guestcheck.READY_ADDR)
                      == guestcheck.READY_MAGIC)
        sevguest.wait_helper_ready(a, DOMAIN)
        self.assertSourceUntouched()

    def test_06_target_without_transport_key(self):
        """The launch secret host b's agent gives (e2e/testagent.py, its
        own session, the secret built by e2e/sevsecret.py) is valid for the
        launch, but its table has the key identifier and no transport key:
        the platform accepts it, the helper becomes ready without a key."""
        state = self.b.write_test_agent("owner-table")
        self.addCleanup(self.b.write_agent)
        with open(os.path.join(state, "table.json"), "w") as f:
            json.dump({"transport-key": False, "key-id": hosts.OWNER_KEY_ID}, f)
        res = self.migrate()
        self.assertIn("the migration helper of domain '%s' holds no transport key"
                      % DOMAIN, res.stderr)
        self.assertSourceUntouched()

    def test_06b_source_helper_loses_its_key(self):
        """The source's helper loses its transport key at run time: refused
        before the target is contacted; nothing else changes."""
        a = self.a
        self.inject(a, "x-transport-key", present=False)
        try:
            res = self.migrate()
        finally:
            self.inject(a, "x-transport-key", present=True)
        self.assertIn("the migration helper of domain '%s' holds no transport key"
                      % DOMAIN, res.stderr)
        self.assertEqual(self.b.emulator_pids(), [])
        self.assertSourceUntouched()

    def test_07_target_killed_during_transfer(self):
        proc = self.start_migration("--bandwidth", "1")
        self.wait_transfer(proc)
        self.kill_target_qemu()
        self.finish(proc)
        self.assertSourceUntouched()

    def test_08_domjobabort_mid_transfer(self):
        proc = self.start_migration("--bandwidth", "1")
        self.wait_transfer(proc)
        self.a.virsh("domjobabort", DOMAIN)
        err = self.finish(proc)
        self.assertIn("canceled by client", err)
        self.assertSourceUntouched()

    def test_08b_domjobabort_during_helper_boot(self):
        # the abort must reach host a while host b's helper boots (the
        # source acts on it once the target's Prepare is over): one virsh
        # command, well under a second even on a loaded machine, against a
        # boot of 8 s; and that boot ends far within host b's
        # mirror_helper_timeout (hosts.HELPER_TIMEOUT)
        self.b.standin_config(boot_ms=8000)
        since = len(self.b.domain_log(DOMAIN))
        proc = self.start_migration()
        self.wait_log(self.b, "migration helper: booting", since)
        self.a.virsh("domjobabort", DOMAIN)
        err = self.finish(proc)
        self.assertIn("canceled by client", err)
        self.assertSourceUntouched()

    def test_09_confidential_migration(self):
        a, b, lab = self.a, self.b, self.lab
        before = sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        start = time.monotonic()
        res = self.migrate("--tls", check_fail=False)
        elapsed = time.monotonic() - start
        self.assertEqual(res.returncode, 0, res.stderr + a.log_tail() + b.log_tail())

        self.assertEqual(sevguest.state(b, DOMAIN), "running")
        self.assertNotEqual(sevguest.state(a, DOMAIN), "running")
        self.assertEqual(a.emulator_pids(), [])
        self.assertEqual(sevguest.pattern_errors(b, lab, DOMAIN), [])
        after = sevguest.guest_word(b, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        self.assertGreater(after, before, "guest restarted instead of moving")
        self.assertCounterGrows(b)
        # the target's helper is still there for the next migration
        self.assertEqual(sevguest.qmp(b, DOMAIN, "query-migration-helper"),
                         {"status": "ready", "transport-key": True,
                          "transport-key-id": hosts.OWNER_KEY_ID})
        info = sevguest.job_info(b, DOMAIN)
        print("\nconfidential migration: %.2f s wall clock, %s downtime, %s processed"
              % (elapsed, info.get("Total downtime"), info.get("Data processed")))

    def test_10_back_client_driven_paused(self):
        """Back from host b to host a, driven by virsh (not peer to peer),
        with --suspend (VIR_MIGRATE_PAUSED): the guest arrives paused, then resumes."""
        a, b, lab = self.a, self.b, self.lab
        sevguest.wait_helper_ready(b, DOMAIN)
        before = sevguest.guest_word(b, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        res = a.virsh("migrate", "--live", "--confidential", "--tls", "--suspend", DOMAIN,
                      "qemu+tls://%s/system" % a.addr,
                      uri="qemu+tls://%s/system" % b.addr, check=False, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr + a.log_tail() + b.log_tail())
        self.assertEqual(sevguest.state(a, DOMAIN), "paused")
        self.assertNotIn(DOMAIN, b.virsh("list", "--name").stdout)
        self.assertEqual(sevguest.pattern_errors(a, lab, DOMAIN), [])
        paused = sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        self.assertGreater(paused, before)
        time.sleep(0.3)
        self.assertEqual(sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR),
                         paused, "the guest runs although it arrived paused")
        a.virsh("resume", DOMAIN)
        self.assertCounterGrows(a)


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    ConfidentialMigrationTest.GUEST = GUEST
    return hosts.run_tests(ConfidentialMigrationTest)


if __name__ == "__main__":
    sys.exit(main())
