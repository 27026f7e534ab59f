#!/usr/bin/python3
#
# End-to-end: the SEV guest of e2e/sevguest.py migrated from test host a to
# test host b exactly the way OpenStack Nova's libvirt driver calls
# migrateToURI3, through Debian's python3-libvirt 9.0.0 against the built
# libvirt (e2e/nova_client.py, run with /usr/bin/python3 inside host a's
# namespaces): Nova's default live-migration flags (LIVE, PEER2PEER,
# UNDEFINE_SOURCE, PERSIST_DEST) with native TLS, a destination_xml, and
# VIR_MIGRATE_CONFIDENTIAL through the 0x200000 fallback, as
# docs/kbase/confidential-migration-nova.rst describes.
#
#   - without the confidential flag (what Nova does today), libvirt refuses
#     with its SEV message, and the guest stays on host a untouched;
#   - with it, the guest runs on host b with its memory intact, defined
#     there with the destination XML, and undefined on host a; while the
#     target's helper boots (1.5 s here), the source's job statistics show
#     an unbounded job with nothing processed, which is what Nova's
#     migration monitor sees during the target's Prepare phase;
#   - back on host a, at live_migration_bandwidth 20 MiB/s (which this busy
#     guest outpaces), Nova's live_migration_force_complete pauses the
#     guest (dom.suspend()) while the confidential migration iterates, and
#     the migration completes with the guest intact and running on host b.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_nova_migrate.py GUEST_ELF

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import guestcheck  # noqa: E402
import hosts  # noqa: E402
import sevguest  # noqa: E402

GUEST = None
DOMAIN = "e2e-sev"
CLIENT = os.path.join(os.path.dirname(os.path.realpath(__file__)), "nova_client.py")
# libvirt's VIR_DOMAIN_JOB_NONE, VIR_DOMAIN_JOB_UNBOUNDED and
# VIR_ERR_OPERATION_INVALID
JOB_NONE = 0
JOB_UNBOUNDED = 2
ERR_OPERATION_INVALID = 55
NOVA_FLAGS = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 4)   # LIVE PEER2PEER PERSIST UNDEFINE
TLS = 1 << 16
CONFIDENTIAL = 1 << 21
BOOT_MS = 1500


def have_binding():
    return subprocess.run(["/usr/bin/python3", "-c", "import libvirt"],
                          capture_output=True).returncode == 0


class NovaMigrationTest(sevguest.SevGuestLabTest):

    DOMAIN = DOMAIN

    @classmethod
    def setUpClass(cls):
        if not have_binding():
            raise AssertionError("Debian's python3-libvirt is not installed "
                                 "(tooling/install-deps)")
        super().setUpClass()

    def nova_migrate(self, *args):
        """e2e/nova_client.py on host a: its JSON result."""
        res = subprocess.run(
            self.a.enter() + ["/usr/bin/python3", CLIENT, DOMAIN, self.target] +
            list(args), env=hosts.libvirt_env(), capture_output=True, text=True,
            timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)
        result = json.loads(res.stdout)
        shown = dict(result, samples="%d sample(s)" % len(result["samples"]))
        print("\n    %s" % json.dumps(shown), flush=True)
        # Debian's binding, running on the built library; the flag comes
        # from the fallback when the binding lacks the constant
        self.assertEqual(result["library_version"], 11003000)
        self.assertTrue(result["xml_has_mirror"], "<mirror/> not in the migratable XML")
        return result

    def test_01_without_confidential_refused(self):
        """What Nova does today, once its API lets the request through."""
        result = self.nova_migrate("--no-confidential")
        self.assertEqual(result["flags"], NOVA_FLAGS | TLS)
        self.assertFalse(result["ok"])
        self.assertEqual(result["code"], ERR_OPERATION_INVALID)
        self.assertIn("domain '%s' is an SEV guest with mirror vCPUs: its memory may "
                      "only be migrated confidentially, with VIR_MIGRATE_CONFIDENTIAL"
                      % DOMAIN,
                      result["error"])
        sevguest.source_untouched(self.a, self.b, self.lab, DOMAIN)
        self.assertIn(DOMAIN, self.a.virsh("list", "--all", "--name").stdout.split())

    def test_02_nova_confidential_migration(self):
        a, b, lab = self.a, self.b, self.lab
        b.standin_config(boot_ms=BOOT_MS)
        before = sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        result = self.nova_migrate("--description", "nova destination xml")
        self.assertEqual(result["flags"], NOVA_FLAGS | TLS | CONFIDENTIAL)
        self.assertTrue(result["ok"], result.get("error", "") + a.log_tail() + b.log_tail())

        # the monitor's view of the target's Prepare: no job yet (Nova:
        # "Migration not running yet"), then an unbounded job with nothing
        # processed, for at least the helper's boot time
        samples = [s for s in result["samples"] if "type" in s]
        moving = [s for s in samples if s.get("memory_processed", 0) > 0]
        self.assertTrue(moving, "no sample with memory processed")
        waiting = [s for s in samples if s["t"] < moving[0]["t"]]
        self.assertTrue(all(s["type"] in (JOB_NONE, JOB_UNBOUNDED) and
                            s.get("memory_processed", 0) == 0 for s in waiting), waiting)
        self.assertTrue(any(s["type"] == JOB_UNBOUNDED for s in waiting), waiting)
        self.assertGreaterEqual(moving[0]["time_elapsed"], BOOT_MS)

        # the guest on host b, intact, still running the same instance
        self.assertEqual(sevguest.state(b, DOMAIN), "running")
        self.assertEqual(sevguest.pattern_errors(b, lab, DOMAIN), [])
        after = sevguest.guest_word(b, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        self.assertGreater(after, before, "guest restarted instead of moving")
        # VIR_MIGRATE_UNDEFINE_SOURCE: gone from host a
        self.assertNotIn(DOMAIN, a.virsh("list", "--all", "--name").stdout.split())
        self.assertEqual(a.emulator_pids(), [])
        # VIR_MIGRATE_PERSIST_DEST with the destination XML as persistent XML
        self.assertIn("Persistent:     yes", b.virsh("dominfo", DOMAIN).stdout)
        for flags in ([], ["--inactive"]):
            xml = b.virsh("dumpxml", DOMAIN, *flags).stdout
            self.assertIn("<description>nova destination xml</description>", xml)
            self.assertIn("<mirror vcpus='1'/>", xml)

    def test_03_nova_force_complete(self):
        a, b, lab = self.a, self.b, self.lab
        # back to host a first (test_02 moved it), the way an operator would
        sevguest.wait_helper_ready(b, DOMAIN)
        res = b.virsh("migrate", "--live", "--p2p", "--confidential", "--tls",
                      "--persistent", "--undefinesource", DOMAIN,
                      "qemu+tls://%s/system" % a.addr, check=False, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)
        sevguest.wait_helper_ready(a, DOMAIN)
        # 20 MiB/s: the guest's 8 MiB rewritten many times a second do not
        # fit in the 300 ms downtime limit; force-complete once 40 MiB have
        # moved (the first pass is about 20 MiB: the migration iterates)
        result = self.nova_migrate("--bandwidth", "20", "--force-complete-after", "40")
        self.assertTrue(result["ok"], result.get("error", "") + a.log_tail() + b.log_tail())
        self.assertIsNotNone(result["force_completed_at"], "never force-completed")
        self.assertEqual(sevguest.state(b, DOMAIN), "running")
        self.assertEqual(sevguest.pattern_errors(b, lab, DOMAIN), [])
        self.assertNotIn(DOMAIN, a.virsh("list", "--all", "--name").stdout.split())


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    NovaMigrationTest.GUEST = GUEST
    return hosts.run_tests(NovaMigrationTest)


if __name__ == "__main__":
    sys.exit(main())
