#!/usr/bin/python3
#
# End-to-end: confidential migration holds up under restarts, repetition
# and concurrency (issue 13), on the two test hosts of e2e/hosts.py with the
# QEMU stand-in (e2e/standin) as the SEV guest's QEMU.
#
# Two parts, each a meson test of its own (the e2e suite's time budget):
#
#   restarts   libvirtd SIGKILL and SIGTERM on the target during its
#              helper's boot, and on the source mid-transfer; a restart of
#              each host's libvirtd after a completed migration; mirror vCPU
#              pinning (<cputune><mirrorpin>) restored by a restart; a reset
#              of the migrated guest boots the guest, not the helper-only
#              firmware.
#   repetition the helper fails at run time: the migration-helper event,
#              the warning in libvirtd's log, the next migration refused;
#              the helper fails mid-transfer: the migration fails; 10 round
#              trips a->b->a with libvirtd's fds and threads counted before
#              and after; two confidential migrations at once.
#
# After every failure the source guest runs, with its 1,048,576 pattern
# words intact and its counter growing, and the target has neither the
# domain nor a QEMU process (sevguest.source_untouched); then a new
# confidential migration succeeds. Each restart case prints a line
# "OUTCOME <case>: ..." with what the source and the target ended as.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_reliability.py GUEST_ELF restarts|repetition

import collections
import os
import re
import signal
import sys
import time
import unittest
from xml.etree import ElementTree

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import guestcheck  # noqa: E402
import hosts  # noqa: E402
import sevguest  # noqa: E402

GUEST = None
DOMAIN = "e2e-rel"
# long enough to act on the target while its helper boots (a daemon's
# kill or restart takes seconds, even on a loaded machine); the target's
# mirror_helper_timeout is raised above it in the restart tests, so that
# only the signal ends the wait
LONG_BOOT_MS = 60000
LONG_HELPER_TIMEOUT = 120
VIR_MIGRATE_CONFIDENTIAL = 0x200000


def uri(host):
    return "qemu+tls://%s/system" % host.addr


def cpu_list(text):
    """'0-1,3' -> {0, 1, 3}"""
    cpus = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def thread_affinity(pid, tid):
    """The kernel's Cpus_allowed_list of thread @tid of process @pid."""
    with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    raise AssertionError("no Cpus_allowed_list for thread %d" % tid)


# libvirtd's RPC worker threads, and how many it may start (libvirtd.conf's
# max_workers, default)
RPC_WORKER = "rpc-libvirtd"
MAX_WORKERS = 20


def daemon_threads(host):
    """libvirtd's threads, by name: {comm: count}."""
    names = collections.Counter()
    task = "/proc/%d/task" % host.daemon_pid()
    for tid in os.listdir(task):
        try:
            with open(os.path.join(task, tid, "comm")) as f:
                names[f.read().strip()] += 1
        except OSError:
            pass
    return names


class Base(unittest.TestCase):
    """One SEV guest, DOMAIN (on_reboot restart), started on host a; with
    @transient, its definition is removed once it runs, so that neither
    host keeps it when the guest runs on the other (migrations without
    --persistent)."""

    transient = False

    @classmethod
    def setUpClass(cls):
        cls.lab = hosts.Lab()
        cls.lab.__enter__()
        try:
            cls.a, cls.b = cls.lab.hosts["a"], cls.lab.hosts["b"]
            cls.prepare_hosts()
            cls.start_guest(cls.a, DOMAIN)
            if cls.transient:
                cls.a.virsh("undefine", DOMAIN)
        except BaseException:
            cls.lab.__exit__(None, None, None)
            raise

    @classmethod
    def prepare_hosts(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(None, None, None)

    @classmethod
    def start_guest(cls, host, name, extra=""):
        sevguest.define_and_start(host, cls.lab, name,
                                  sevguest.domain_xml(cls.lab, name, GUEST, sev=True,
                                                      on_reboot="restart", extra=extra))
        sevguest.wait_helper_ready(host, name)

    def setUp(self):
        for h in (self.a, self.b):
            h.standin_config()
            # a test that failed with a daemon down must not take the
            # next ones with it
            if h.daemon.poll() is not None:
                h.start()

    # ---------------------------------------------------------- helpers

    def counter(self, host, name=DOMAIN):
        return sevguest.guest_word(host, self.lab, name, guestcheck.COUNTER_ADDR)

    def wait_for(self, what, cond, timeout=60):
        deadline = time.monotonic() + timeout
        while not cond():
            self.assertLess(time.monotonic(), deadline, "timed out waiting for " + what)
            time.sleep(0.1)

    def assertCounterGrows(self, host, name=DOMAIN, timeout=60):
        before = self.counter(host, name)
        self.wait_for("the counter of %s to grow on host %s" % (name, host.name),
                      lambda: self.counter(host, name) > before, timeout)

    def migrate(self, src, dst, *extra, name=DOMAIN):
        return src.virsh("migrate", "--live", "--p2p", "--confidential", "--tls",
                         *extra, name, uri(dst), check=False, timeout=120)

    def start_migration(self, src, dst, *extra, name=DOMAIN):
        proc = sevguest.migrate_async(src, "--live", "--p2p", "--confidential", "--tls",
                                      *extra, name, uri(dst))
        self.addCleanup(sevguest.reap, proc)
        return proc

    def finish_failed(self, proc, timeout=120):
        _, err = proc.communicate(timeout=timeout)
        self.assertNotEqual(proc.returncode, 0, "migration succeeded")
        print("\n    virsh: %s" % (err.strip().splitlines() or ["(nothing)"])[-1], flush=True)
        return err

    def assertMigrated(self, src, dst, name=DOMAIN, before=None):
        """@name runs on @dst, intact and running on; @src keeps no QEMU."""
        self.assertEqual(sevguest.state(dst, name), "running")
        self.assertNotEqual(sevguest.state(src, name), "running")
        self.assertNotIn(name, src.virsh("list", "--name").stdout.split())
        self.assertEqual(sevguest.pattern_errors(dst, self.lab, name), [])
        if before is not None:
            self.assertGreater(self.counter(dst, name), before,
                               "guest restarted instead of moving")
        self.assertCounterGrows(dst, name)

    def migrate_ok(self, src, dst, name=DOMAIN):
        """A confidential migration @src -> @dst that succeeds; checked."""
        sevguest.wait_helper_ready(src, name)
        before = self.counter(src, name)
        start = time.monotonic()
        res = self.migrate(src, dst, name=name)
        self.assertEqual(res.returncode, 0, res.stderr + src.log_tail() + dst.log_tail())
        if os.environ.get("E2E_TIMES"):
            took = time.monotonic() - start
            print("    migration %s -> %s: %.2f s" % (src.name, dst.name, took), flush=True)
        self.assertMigrated(src, dst, name, before)

    def round_trip(self, name=DOMAIN):
        self.migrate_ok(self.a, self.b, name)
        self.migrate_ok(self.b, self.a, name)

    def source_untouched(self, source, target, name=DOMAIN):
        return sevguest.source_untouched(source, target, self.lab, name)

    def wait_log(self, host, text, since, name=DOMAIN, timeout=30):
        self.wait_for("'%s' in the domain log of host %s" % (text, host.name),
                      lambda: text in host.domain_log(name)[since:], timeout)

    def daemon_log(self, host):
        try:
            with open(os.path.join(host.bound("/var/local/log/libvirt"),
                                   "libvirtd.log")) as f:
                return f.read()
        except OSError:
            return ""

    def describe(self, host, name=DOMAIN):
        """What @host holds: its daemon, the domain's state, QEMU processes."""
        if host.daemon.poll() is not None:
            return "host %s: libvirtd not running, QEMU %s" % (host.name,
                                                               host.emulator_pids())
        names = host.virsh("list", "--all", "--name", check=False).stdout.split()
        dom = ("%s %s" % (name, sevguest.state(host, name))) if name in names else "no domain"
        pids = host.emulator_pids()
        return "host %s: %s, %s" % (host.name, dom,
                                    "QEMU %s" % pids if pids else "no QEMU")

    def outcome(self, case, *lines):
        print("\nOUTCOME %s: %s" % (case, "; ".join(lines)), flush=True)

    def reconnected(self, host, name=DOMAIN):
        """Until libvirtd, restarted, has reconnected to @name: its
        reconnection holds the domain's job, which a monitor command waits
        for (virsh answers before every domain is reconnected)."""
        sevguest.qmp(host, name, "query-status")

    def check_reported(self, host, name=DOMAIN, repinned_to=None):
        """@name is reported correctly by @host's libvirtd: running, the
        mirror vCPU threads of the status XML are the QEMU's (stand-in's)
        real ones, each alive (and, with @repinned_to, pinned there), and
        its helper ready with a key."""
        self.assertEqual(sevguest.state(host, name), "running")
        tids = sevguest.status_mirror_tids(host, name)
        qemu = [v["thread-id"] for v in sevguest.qmp(host, name, "query-mirror-vcpus")]
        self.assertEqual(len(tids), 1)
        self.assertEqual(tids, qemu, "status XML and QEMU disagree on the mirror vCPU threads")
        pid = sevguest.emulator_pid(host, name)
        for tid in tids:
            self.assertTrue(os.path.exists("/proc/%d/task/%d" % (pid, tid)),
                            "mirror vCPU thread %d is not a thread of QEMU %d" % (tid, pid))
            if repinned_to is not None:
                self.assertEqual(cpu_list(thread_affinity(pid, tid)), repinned_to)
        self.assertEqual(sevguest.qmp(host, name, "query-migration-helper"),
                         {"status": "ready", "transport-key": True,
                          "transport-key-id": hosts.OWNER_KEY_ID})
        self.assertEqual(sevguest.pattern_errors(host, self.lab, name), [])
        self.assertCounterGrows(host, name)


class RestartTest(Base):
    """The first four cases alternate directions, so that each host is
    source and target, and the migration that must succeed after a case
    takes the guest to where the next case starts: a -> b (b's libvirtd
    killed), b -> a (a's stopped), a -> b (a's killed), b -> a (b's
    stopped). Host a keeps no definition of the guest (@transient), so
    that either host can be the target that must keep nothing."""

    transient = True

    @classmethod
    def prepare_hosts(cls):
        # a target waits for its helper longer than any case here takes:
        # only the signal may end that wait
        for h in (cls.a, cls.b):
            h.qemu_conf(helper_timeout=LONG_HELPER_TIMEOUT)
            h.restart()

    def tearDown(self):
        for h in (self.a, self.b):
            h.libvirtd_conf()

    def target_helper_booting(self, src, dst):
        """A confidential migration @src -> @dst, until @dst's helper boots
        (for LONG_BOOT_MS); returns virsh migrate's process and the offset
        of @dst's domain log where the migration began."""
        dst.standin_config(boot_ms=LONG_BOOT_MS)
        since = len(dst.domain_log(DOMAIN))
        proc = self.start_migration(src, dst)
        self.wait_log(dst, "migration helper: booting", since)
        # this target read its boot time at its start; the migrations that
        # follow in the test need no long boot
        dst.standin_config()
        return proc, since

    def persisted_state(self, host, name=DOMAIN):
        """The state and the job of @name in @host's status XML."""
        root = ElementTree.fromstring(sevguest.status_xml(host, name))
        job = root.find("./job")
        return {"state": root.get("state"), "reason": root.get("reason"),
                "job": None if job is None else {k: job.get(k) for k in
                                                 ("type", "async", "phase", "flags")}}

    def test_01_target_sigkill_during_helper_boot(self):
        src, dst = self.a, self.b
        proc, since = self.target_helper_booting(src, dst)
        pids = dst.emulator_pids()
        persisted = self.persisted_state(dst)
        print("\n    host %s's status XML before the kill: %s" % (dst.name, persisted),
              flush=True)
        self.assertEqual(persisted["job"]["async"], "migration in")
        self.assertEqual(persisted["job"]["phase"], "prepare")
        self.assertTrue(int(persisted["job"]["flags"], 16) & VIR_MIGRATE_CONFIDENTIAL)
        dst.kill_daemon(signal.SIGKILL)
        self.finish_failed(proc)
        # QEMU outlives a killed libvirtd; the restarted one recovers it
        self.assertEqual(dst.emulator_pids(), pids)
        dead = self.describe(dst)
        dst.libvirtd_conf(debug="qemu.qemu_process")
        dst.start()
        self.source_untouched(src, dst)
        log = self.daemon_log(dst)
        self.assertIn("Killing unfinished incoming migration for domain %s" % DOMAIN, log)
        self.assertNotIn("start-migrate-incoming", dst.domain_log(DOMAIN)[since:])
        self.outcome("target libvirtd SIGKILL during helper boot",
                     "while down: " + dead, "after restart: " + self.describe(dst),
                     self.describe(src))
        self.migrate_ok(src, dst)
        # last, so that a failure here does not hide the rest: the
        # restarted libvirtd never took the helper-only target for a
        # running guest (reconnect: paused for migration, until recovery
        # kills it)
        self.assertIsNone(re.search(r"Domain %s .* changing state to running" % DOMAIN, log),
                          "host %s's restarted libvirtd reported the domain running:\n"
                          % dst.name +
                          "\n".join(line for line in log.splitlines()
                                    if "changing state" in line or "Killing" in line or
                                    "migration in phase" in line))

    def test_02_target_sigterm_during_helper_boot(self):
        src, dst = self.b, self.a
        proc, since = self.target_helper_booting(src, dst)
        took = dst.kill_daemon(signal.SIGTERM)
        print("\n    host %s's libvirtd exited %.2f s after SIGTERM" % (dst.name, took),
              flush=True)
        # a shutdown that waited for the helper would last the rest of its
        # 60 s boot; one that ends the wait at once takes a second or so, a
        # few on a loaded machine
        self.assertLess(took, 20, "libvirtd held its shutdown for its helper wait")
        err = self.finish_failed(proc)
        self.assertTrue("the confidential migration of domain '%s' was aborted: libvirt is "
                        "shutting down" % DOMAIN in err or "End of file" in err or
                        "client socket is closed" in err, err)
        # the target gave up before it listened
        self.assertNotIn("start-migrate-incoming", dst.domain_log(DOMAIN)[since:])
        dead = self.describe(dst)
        dst.start()
        self.source_untouched(src, dst)
        self.outcome("target libvirtd SIGTERM during helper boot",
                     "exited in %.2f s" % took, "while down: " + dead,
                     "after restart: " + self.describe(dst), self.describe(src))
        self.migrate_ok(src, dst)

    def source_signal_mid_transfer(self, src, dst, sig, case):
        qemu = src.emulator_pids()
        proc = self.start_migration(src, dst, "--bandwidth", "1")
        sevguest.wait_transfer(src, DOMAIN, proc)
        before = self.counter(src)
        took = src.kill_daemon(sig)
        print("\n    host %s's libvirtd exited %.2f s after signal %d" % (src.name, took, sig),
              flush=True)
        self.finish_failed(proc)
        dead = self.describe(src)
        # the target cleans up when its client (the source's libvirtd)
        # goes away
        self.wait_for("host %s to drop the incoming domain and its QEMU" % dst.name,
                      lambda: not dst.emulator_pids() and
                      DOMAIN not in dst.virsh("list", "--all", "--name").stdout.split(), 30)
        src.start()
        self.source_untouched(src, dst)
        self.assertEqual(src.emulator_pids(), qemu, "the source guest's QEMU was replaced")
        self.assertGreater(self.counter(src), before)
        self.outcome(case, "host %s's libvirtd exited in %.2f s" % (src.name, took),
                     "while down: " + dead, "after restart: " + self.describe(src),
                     self.describe(dst))
        self.migrate_ok(src, dst)

    def test_03_source_sigkill_mid_transfer(self):
        self.source_signal_mid_transfer(self.a, self.b, signal.SIGKILL,
                                        "source libvirtd SIGKILL mid-transfer")

    def test_04_source_sigterm_mid_transfer(self):
        # libvirtd holds its shutdown for its forced-shutdown window (30 s)
        # while a migration job runs: libvirt's own behaviour, the same for
        # a plain migration
        self.source_signal_mid_transfer(self.b, self.a, signal.SIGTERM,
                                        "source libvirtd SIGTERM mid-transfer")

    def test_05_restart_after_migration(self):
        """After a completed migration, each host's libvirtd restarts: the
        guest is reported as before, and its mirror vCPU thread, moved
        behind libvirt's back, is set up (pinned) again."""
        a, b = self.a, self.b
        every_cpu = os.sched_getaffinity(0)
        self.migrate_ok(a, b)
        for host, other in ((b, a), (a, b)):
            self.check_reported(host)
            pid = sevguest.emulator_pid(host, DOMAIN)
            tids = sevguest.status_mirror_tids(host, DOMAIN)
            if len(every_cpu) > 1:
                for tid in tids:
                    os.sched_setaffinity(tid, {min(every_cpu)})
            took = host.restart()
            self.reconnected(host)
            self.assertEqual(sevguest.emulator_pid(host, DOMAIN), pid)
            # no <mirror cpuset>, no <mirrorpin>: where the guest's vCPUs
            # run, i.e. every CPU
            self.check_reported(host, repinned_to=every_cpu)
            self.outcome("host %s's libvirtd restarted after a migration" % host.name,
                         "shutdown %.2f s" % took, self.describe(host),
                         "mirror vCPU threads %s" % tids, self.describe(other))
            self.migrate_ok(host, other)
        self.migrate_ok(b, a)

    def test_06_mirror_pin_across_restart(self):
        """<cputune><mirrorpin vcpu='0' cpuset='1'/>: the kernel's affinity
        of the mirror vCPU thread, changed behind libvirt's back, is
        restored when libvirtd reconnects."""
        if len(os.sched_getaffinity(0)) < 2 or 1 not in os.sched_getaffinity(0):
            self.skipTest("needs host CPUs 0 and 1")
        a, name = self.a, "e2e-rel-pin"
        self.start_guest(a, name, extra="  <cputune>\n    <mirrorpin vcpu='0' cpuset='1'/>\n"
                                        "  </cputune>\n")
        try:
            pid = sevguest.emulator_pid(a, name)
            tid, = sevguest.status_mirror_tids(a, name)
            self.assertEqual(thread_affinity(pid, tid), "1")
            os.sched_setaffinity(tid, {0})
            self.assertEqual(thread_affinity(pid, tid), "0")
            a.restart()
            self.reconnected(a, name)
            self.assertEqual(sevguest.status_mirror_tids(a, name), [tid])
            self.assertEqual(thread_affinity(pid, tid), "1", "not pinned again on reconnect")
            self.check_reported(a, name)
        finally:
            a.virsh("destroy", name, check=False)
            a.virsh("undefine", name, check=False)

    def test_07_reset_after_migration(self):
        """The migrated guest is reset on host b: it boots again (its
        counter starts over and grows, its pattern is written again),
        not into the helper-only firmware of target mode."""
        a, b, lab = self.a, self.b, self.lab
        self.migrate_ok(a, b)
        self.assertEqual(sevguest.qmp(b, DOMAIN, "x-query-standin")["lifecycle"], "guest")
        before = self.counter(b)
        since = len(b.domain_log(DOMAIN))
        b.virsh("reset", DOMAIN)
        self.wait_for("the guest's counter to start over",
                      lambda: self.counter(b) < before, 30)
        self.assertEqual(sevguest.state(b, DOMAIN), "running")
        sevguest.wait_guest_ready(b, lab, DOMAIN)
        self.assertEqual(sevguest.pattern_errors(b, lab, DOMAIN), [])
        self.assertCounterGrows(b)
        self.assertIn("reset: mirror vCPUs re-enter the helper entry point",
                      b.domain_log(DOMAIN)[since:])
        # the helper boots again, as a source helper, without its key
        # (a reset clears the launch secret) until the guest owner gives it
        sevguest.wait_helper_ready(b, DOMAIN)
        self.assertEqual(sevguest.qmp(b, DOMAIN, "query-migration-helper"),
                         {"status": "ready"})
        sevguest.qmp(b, DOMAIN, "x-transport-key", present=True)
        self.migrate_ok(b, a)


def settled_usage(host, stable=1.0, ceiling=60):
    """host.daemon_usage() once its fd count has stayed the same for
    @stable seconds (or after @ceiling seconds)."""
    deadline = time.monotonic() + ceiling
    usage = host.daemon_usage()
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = host.daemon_usage()
        if now[0] != usage[0]:
            usage, since = now, time.monotonic()
        elif time.monotonic() - since >= stable:
            break
    return usage


class RepetitionTest(Base):

    def restore_helper(self, host):
        """After a failed helper: a reset boots it again (and the guest);
        the guest owner provisions the key again (x-transport-key)."""
        host.virsh("reset", DOMAIN)
        sevguest.wait_guest_ready(host, self.lab, DOMAIN)
        sevguest.wait_helper_ready(host, DOMAIN)
        sevguest.qmp(host, DOMAIN, "x-transport-key", present=True)
        self.assertEqual(sevguest.qmp(host, DOMAIN, "query-migration-helper"),
                         {"status": "ready", "transport-key": True,
                          "transport-key-id": hosts.OWNER_KEY_ID})

    def test_01_helper_failure_reported(self):
        a, b = self.a, self.b
        reason = "mailbox stopped answering (reliability test)"
        watch = sevguest.EventWatch(a, "--domain", DOMAIN, "--event", "migration-helper")
        self.addCleanup(watch.stop)
        # virsh has subscribed once a key change shows up
        deadline = time.monotonic() + 60
        while "migration_helper.transport_key" not in watch.text():
            self.assertLess(time.monotonic(), deadline, "no event: " + watch.text())
            sevguest.qmp(a, DOMAIN, "x-transport-key", present=False)
            sevguest.qmp(a, DOMAIN, "x-transport-key", present=True)
            time.sleep(0.2)
        seen = len(watch.lines)
        sevguest.qmp(a, DOMAIN, "x-helper-fail", reason=reason)
        self.wait_for("the migration-helper event 'failed'",
                      lambda: "migration_helper.error: %s" % reason
                      in "\n".join(watch.lines[seen:]), 60)
        event = "\n".join(watch.lines[seen:])
        print("\n    " + event.replace("\n", "\n    "), flush=True)
        self.assertIn("event 'migration-helper' for domain '%s'" % DOMAIN, event)
        self.assertIn("migration_helper.status: failed", event)
        self.assertIn("migration helper of domain %s failed: %s" % (DOMAIN, reason),
                      self.daemon_log(a))
        res = self.migrate(a, b)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("the migration helper of domain '%s' is not ready (status 'failed': %s)"
                      % (DOMAIN, reason), res.stderr)
        self.source_untouched(a, b)
        self.restore_helper(a)
        self.round_trip()

    def test_02_helper_fails_mid_transfer(self):
        a, b = self.a, self.b
        reason = "helper stopped exporting pages (reliability test)"
        proc = self.start_migration(a, b, "--bandwidth", "1")
        sevguest.wait_transfer(a, DOMAIN, proc)
        self.assertEqual(a.standin_control("x-helper-fail", reason=reason), {"return": {}})
        err = self.finish_failed(proc)
        self.assertIn("migration helper failed: %s" % reason, err)
        self.source_untouched(a, b)
        self.outcome("source helper fails mid-transfer", self.describe(a), self.describe(b))
        self.restore_helper(a)
        self.round_trip()

    def test_03_round_trips_no_leaks(self):
        """10 round trips a -> b -> a, the guest intact after each; neither
        libvirtd keeps more file descriptors or threads afterwards (RPC
        workers, which libvirtd starts on demand and keeps, may grow up to
        max_workers). One round trip first, so that what libvirtd sets up
        once (workers, the QEMU capabilities cache) is there before the
        first count."""
        a, b = self.a, self.b
        self.round_trip()
        # the count to compare with: once the warm-up's last connection has
        # closed in libvirtd (the same count over 1 s; 60 s ceiling), so a
        # descriptor on its way out is not counted as libvirtd's own
        before = {h.name: settled_usage(h) for h in (a, b)}
        threads_before = {h.name: daemon_threads(h) for h in (a, b)}
        start = time.monotonic()
        for i in range(10):
            self.round_trip()
        took = time.monotonic() - start
        # a connection of the last virsh may still be closing in libvirtd:
        # its fds go within moments; leaked ones never do (60 s ceiling)
        deadline = time.monotonic() + 60
        while any(h.daemon_usage()[0] > before[h.name][0] for h in (a, b)) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        after = {h.name: h.daemon_usage() for h in (a, b)}
        threads_after = {h.name: daemon_threads(h) for h in (a, b)}
        print("\n    10 round trips in %.1f s; libvirtd (fds, threads) before %s, after %s"
              "\n    threads by name after: %s"
              % (took, before, after, {n: dict(c) for n, c in threads_after.items()}),
              flush=True)
        for h in (a, b):
            self.assertEqual(after[h.name][0], before[h.name][0],
                             "host %s: libvirtd's open fds" % h.name)
            # the one tolerance: libvirtd's RPC worker pool starts workers
            # on demand (when every worker is busy), up to max_workers, and
            # keeps them; every other thread must be the same
            pool_before = threads_before[h.name].pop(RPC_WORKER, 0)
            pool_after = threads_after[h.name].pop(RPC_WORKER, 0)
            self.assertLessEqual(pool_after, max(pool_before, MAX_WORKERS),
                                 "host %s: RPC workers" % h.name)
            self.assertEqual(threads_after[h.name], threads_before[h.name],
                             "host %s: libvirtd's threads" % h.name)

    def test_04_two_at_once(self):
        a, b, lab = self.a, self.b, self.lab
        other = "e2e-rel-2"
        self.start_guest(a, other)
        try:
            before = {n: self.counter(a, n) for n in (DOMAIN, other)}
            procs = {n: self.start_migration(a, b, name=n) for n in (DOMAIN, other)}
            for n, proc in procs.items():
                _, err = proc.communicate(timeout=120)
                self.assertEqual(proc.returncode, 0, "%s: %s" % (n, err))
            for n in (DOMAIN, other):
                self.assertMigrated(a, b, n, before[n])
            self.assertEqual(a.emulator_pids(), [])
            # each stand-in and its real QEMU
            pids = b.emulator_pids()
            self.assertEqual(len(pids), 4, pids)
            for n in (DOMAIN, other):
                self.assertIn(sevguest.emulator_pid(b, n), pids)
            self.migrate_ok(b, a)
        finally:
            for h in (a, b):
                h.virsh("destroy", other, check=False)
                h.virsh("undefine", other, check=False)
        self.assertEqual(sevguest.pattern_errors(a, lab, DOMAIN), [])


PARTS = {"restarts": RestartTest, "repetition": RepetitionTest}


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    return hosts.run_tests(PARTS[sys.argv[2]])


if __name__ == "__main__":
    sys.exit(main())
