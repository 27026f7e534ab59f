#!/usr/bin/python3
#
# End-to-end: a plain live migration of the test guest between the two test
# hosts of e2e/hosts.py, with real libvirt daemons from the build, real virsh
# and real QEMU (TCG), peer-to-peer over qemu+tls://. First, --confidential
# for this (non-SEV) guest must reach the source's QEMU driver through the
# remote protocol and be refused there, leaving the guest running on the
# source and nothing on the target. Then checks on the target:
# the domain runs there and no longer on the source, every word of the
# guest's 4 MiB pattern arrived intact, and the guest kept running (its pass
# counter continues from where the source left it, and keeps growing). Then
# the guest goes back to the first host with VIR_MIGRATE_TLS (the migration
# data itself over TLS) and is checked there again.
#
# The guest is not an SEV guest and runs under Debian's QEMU directly;
# e2e/test_confidential.py migrates an SEV guest under the QEMU stand-in.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_migration.py GUEST_ELF

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import guestcheck  # noqa: E402
import hosts  # noqa: E402
import sevguest  # noqa: E402

GUEST = None
DOMAIN = "e2e-guest"


class PlainMigrationTest(unittest.TestCase):

    def test_live_migration_over_tls(self):
        with hosts.Lab() as lab:
            a, b = lab.hosts["a"], lab.hosts["b"]
            sevguest.define_and_start(a, lab, DOMAIN,
                                      sevguest.domain_xml(lab, DOMAIN, GUEST))
            # VIR_MIGRATE_CONFIDENTIAL crosses the remote protocol: virsh on
            # host b drives the migration through host a's daemon over TLS,
            # and host a's QEMU driver refuses it with its own reason (this
            # guest is not an SEV guest). The guest stays on host a, running.
            res = b.virsh("migrate", "--live", "--tls", "--confidential", DOMAIN,
                          "qemu+tls://%s/system" % b.addr,
                          uri="qemu+tls://%s/system" % a.addr, check=False)
            self.assertNotEqual(res.returncode, 0)
            self.assertIn("domain '%s' is not an SEV guest" % DOMAIN, res.stderr)
            self.assertEqual(sevguest.state(a, DOMAIN), "running")
            self.assertNotIn(DOMAIN, b.virsh("list", "--all", "--name").stdout)

            before = sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR)

            start = time.monotonic()
            res = a.virsh("migrate", "--live", "--p2p", DOMAIN,
                          "qemu+tls://%s/system" % b.addr, check=False,
                          timeout=300)
            elapsed = time.monotonic() - start
            self.assertEqual(res.returncode, 0, res.stderr + a.log_tail())

            self.assertEqual(sevguest.state(b, DOMAIN), "running")
            self.assertEqual(sevguest.state(a, DOMAIN), "shut off")

            self.assertEqual(sevguest.pattern_errors(b, lab, DOMAIN), [])
            after = sevguest.guest_word(b, lab, DOMAIN, guestcheck.COUNTER_ADDR)
            self.assertGreater(after, before, "guest restarted instead of moving")
            sevguest.counter_after(b, lab, DOMAIN, after)

            info = sevguest.job_info(b, DOMAIN)
            print("\nplain migration: %.1f s wall clock, %s downtime, %s processed"
                  % (elapsed, info.get("Total downtime"), info.get("Data processed")))

            # and back, with the migration data itself over TLS
            # (VIR_MIGRATE_TLS: QEMU's certificates in pki/qemu)
            before = sevguest.guest_word(b, lab, DOMAIN, guestcheck.COUNTER_ADDR)
            res = b.virsh("migrate", "--live", "--p2p", "--tls", DOMAIN,
                          "qemu+tls://%s/system" % a.addr, check=False,
                          timeout=300)
            self.assertEqual(res.returncode, 0, res.stderr + b.log_tail())
            self.assertEqual(sevguest.state(a, DOMAIN), "running")
            self.assertNotEqual(sevguest.state(b, DOMAIN), "running")
            self.assertEqual(sevguest.pattern_errors(a, lab, DOMAIN), [])
            self.assertGreater(sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR), before)
            info = sevguest.job_info(a, DOMAIN)
            print("migration back with --tls: %s downtime, %s processed"
                  % (info.get("Total downtime"), info.get("Data processed")))


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    return hosts.run_tests(PlainMigrationTest)


if __name__ == "__main__":
    sys.exit(main())
