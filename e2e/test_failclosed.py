#!/usr/bin/python3
#
# End-to-end: an SEV guest's memory leaves it only in a confidential
# migration. On host a of e2e/hosts.py, a running SEV guest with
# <mirror vcpus='1'/> whose migration helper is ready (the normal state after
# start) is put through every virsh command that would make QEMU write its
# memory out: save, managedsave, snapshots with memory (external, live or
# not, and internal: the guest gets a qcow2 disk for that), dump (full and
# memory-only, live or not). Each must be
# refused with the error that names the operation, leave no file behind, and
# leave the guest running with its 4 MiB pattern intact and its counter
# growing. Then the flag rules of a confidential migration that virsh and the
# source refuse before anything starts (no --tls, no --live, --timeout,
# --auto-converge, an rdma:// URI), and last, QEMU's own guard: with the
# guest-assisted migration capability unset, the QEMU stand-in refuses a
# 'migrate' sent behind libvirt's back (qemu-monitor-command), although the
# helper is ready.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_failclosed.py GUEST_ELF

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import guestcheck  # noqa: E402
import hosts  # noqa: E402
import sevguest  # noqa: E402

GUEST = None
DOMAIN = "e2e-fc"
TAIL = "its memory may leave it only in a confidential migration (virsh migrate --confidential)"


class FailClosedTest(sevguest.SevGuestLabTest):

    DOMAIN = DOMAIN

    @classmethod
    def guest_xml(cls):
        # a qcow2 disk, so that an internal snapshot gets as far as the
        # memory; the guest never touches it
        cls.disk = os.path.join(cls.lab.dir, "e2e-fc.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", cls.disk, "16M"],
                       check=True)
        xml = super().guest_xml()
        xml = xml.replace("  <devices>\n", "  <devices>\n    <disk type='file' "
                          "device='disk'>\n      <driver name='qemu' type='qcow2'/>\n"
                          "      <source file='%s'/>\n      <target dev='vda' "
                          "bus='virtio'/>\n    </disk>\n" % cls.disk, 1)
        assert cls.disk in xml
        return xml

    def path(self, name):
        return os.path.join(self.lab.dir, name)

    def refused(self, expected, *args):
        """virsh @args on host a fails with @expected in its error, and the
        guest is untouched."""
        res = self.a.virsh(*args, check=False, timeout=60)
        self.assertNotEqual(res.returncode, 0, "virsh %s succeeded" % " ".join(args))
        self.assertIn(expected, res.stderr)
        print("\n    virsh %s: %s" % (args[0], res.stderr.strip().splitlines()[-1]),
              flush=True)
        self.assertGuestUntouched()
        return res

    def assertGuestUntouched(self):
        a, lab = self.a, self.lab
        self.assertEqual(sevguest.state(a, DOMAIN), "running")
        self.assertEqual(sevguest.job_info(a, DOMAIN, completed=False).get("Job type"),
                         "None")
        self.assertEqual(sevguest.pattern_errors(a, lab, DOMAIN), [])
        before = sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        sevguest.counter_after(a, lab, DOMAIN, before)

    def assertNoFile(self, path):
        self.assertFalse(os.path.exists(path), "%s was written" % path)

    # ------------------------------------------------ memory out of the guest

    def test_save(self):
        image = self.path("e2e-fc.save")
        self.refused("cannot save domain '%s': it is an SEV guest: the saved image "
                     "would hold the guest's memory outside the guest" % DOMAIN,
                     "save", DOMAIN, image)
        self.assertNoFile(image)

    def test_managedsave(self):
        self.refused("cannot save domain '%s': it is an SEV guest" % DOMAIN,
                     "managedsave", DOMAIN)
        info = self.a.virsh("dominfo", DOMAIN).stdout
        self.assertRegex(info, r"Managed save:\s+no")

    def test_snapshot_external(self):
        for live in ([], ["--live"]):
            with self.subTest(live=bool(live)):
                memory = self.path("e2e-fc.snap%s" % ("-live" if live else ""))
                overlay = self.path("e2e-fc.overlay")
                self.refused("cannot take a snapshot with memory of domain '%s': it is "
                             "an SEV guest: the snapshot would hold the guest's memory "
                             "outside the guest; a disk-only snapshot is allowed; %s"
                             % (DOMAIN, TAIL),
                             "snapshot-create-as", DOMAIN, "snap", *live,
                             "--memspec", "file=%s,snapshot=external" % memory,
                             "--diskspec", "vda,snapshot=external,file=%s" % overlay)
                self.assertNoFile(memory)
                self.assertNoFile(overlay)
                self.assertEqual(self.a.virsh("snapshot-list", DOMAIN, "--name")
                                 .stdout.strip(), "")

    def test_snapshot_internal(self):
        before = os.path.getsize(self.disk)
        self.refused("cannot take a snapshot with memory of domain '%s': it is "
                     "an SEV guest" % DOMAIN,
                     "snapshot-create-as", DOMAIN, "internal")
        self.assertEqual(self.a.virsh("snapshot-list", DOMAIN, "--name").stdout.strip(), "")
        # no vmstate went into the image
        self.assertEqual(os.path.getsize(self.disk), before)

    def test_dump(self):
        for extra in ([], ["--live"], ["--memory-only"], ["--memory-only", "--live"]):
            with self.subTest(options=" ".join(extra)):
                core = self.path("e2e-fc.core%s" % "".join(extra))
                self.refused("cannot dump the memory of domain '%s': it is an SEV "
                             "guest: on SEV hardware the host reads only ciphertext "
                             "from the guest's memory, so a dump would be useless; %s"
                             % (DOMAIN, TAIL),
                             "dump", DOMAIN, core, *extra)
                self.assertNoFile(core)

    # ------------------------------------------ confidential migration rules

    def test_migrate_rules(self):
        target = "qemu+tls://%s/system" % self.b.addr
        cases = [
            (["--live"], "requires VIR_MIGRATE_TLS (--tls)"),
            (["--tls"], "requires VIR_MIGRATE_LIVE (--live)"),
            (["--live", "--tls", "--auto-converge"],
             "cannot be combined with VIR_MIGRATE_AUTO_CONVERGE (--auto-converge)"),
            (["--live", "--tls", "--timeout", "5"],
             "Options --confidential and --timeout are mutually exclusive"),
            # --unsafe: the guest's qcow2 disk is not on shared storage
            (["--live", "--tls", "--unsafe", "--migrateuri", "rdma://%s" % self.b.addr],
             "cannot be combined with an rdma:// migration URI"),
        ]
        for extra, expected in cases:
            with self.subTest(options=" ".join(extra)):
                self.refused(expected, "migrate", "--p2p", "--confidential", *extra,
                             DOMAIN, target)
                self.assertNotIn(DOMAIN, self.b.virsh("list", "--all", "--name").stdout)

    # ------------------------------------------------------- QEMU's guard

    def test_zz_qemu_blocker_without_guest_assisted(self):
        """Behind libvirt's back, QEMU itself refuses: the helper is ready
        and holds a key, but libvirt did not set guest-assisted."""
        helper = sevguest.qmp(self.a, DOMAIN, "query-migration-helper")
        self.assertEqual(helper["status"], "ready")
        self.assertTrue(helper.get("transport-key"))
        caps = {c["capability"]: c["state"]
                for c in sevguest.qmp(self.a, DOMAIN, "query-migrate-capabilities")}
        self.assertIs(caps.get("guest-assisted"), False)
        out = self.path("e2e-fc.stream")
        cmd = {"execute": "migrate", "arguments": {"uri": "exec:cat > %s" % out}}
        res = self.a.virsh("qemu-monitor-command", DOMAIN, json.dumps(cmd), check=False)
        self.assertIn("SEV: migration of an SEV guest needs the migration capability "
                      "guest-assisted", res.stdout + res.stderr)
        self.assertGuestUntouched()
        self.assertNoFile(out)


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    FailClosedTest.GUEST = GUEST
    return hosts.run_tests(FailClosedTest)


if __name__ == "__main__":
    sys.exit(main())
