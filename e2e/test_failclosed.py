#!/usr/bin/python3
#
# End-to-end: what libvirt refuses an SEV guest outside a confidential
# migration, and what it leaves to QEMU (the table "What libvirt refuses" of
# docs/kbase/confidential-migration.rst). On host a of e2e/hosts.py:
#
# - FailClosedTest: an SEV guest with <mirror vcpus='1'/> (opted in) whose
#   migration helper is ready and holds its transport key, so the QEMU
#   stand-in has lifted its SEV migration blocker (the contract). libvirt
#   refuses save, managedsave, snapshots with memory (external, live or
#   not, and internal: the guest gets a qcow2 disk for that) and full dumps
#   (live or not) with its own error, before QEMU sees a 'migrate'; nothing
#   is written and the guest runs on with its 4 MiB pattern intact. A
#   memory-only dump and a memory peek (virDomainMemoryPeek, through
#   Debian's python3-libvirt) reach QEMU and yield what SEV hardware gives
#   the host: ciphertext (the stand-in encrypts them, e2e/standin/memcrypt.c).
#   Then the flag rules of a confidential migration, and QEMU's own guard:
#   with guest-assisted unset, the stand-in refuses a 'migrate' sent behind
#   libvirt's back although the helper is ready.
# - NotOptedInTest: SEV guests without <mirror/> (policy 0x1, and SEV-ES,
#   policy 0x5) behave as with upstream libvirt: save, managedsave,
#   snapshots with memory, full dumps and a plain migration reach libvirt's
#   upstream check of QEMU's migration blockers, and QEMU's SEV blocker
#   ("SEV: Migration is not implemented") refuses them; memory-only dumps and
#   memory peeks succeed with ciphertext.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_failclosed.py GUEST_ELF

import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import guestcheck  # noqa: E402
import hosts  # noqa: E402
import sevguest  # noqa: E402

GUEST = None
DOMAIN = "e2e-fc"
TAIL = "whose state may leave it only in a confidential migration"
# QEMU's SEV migration blocker, through libvirt's upstream check of
# query-migrate's blocked-reasons
QEMU_BLOCKER = "cannot migrate domain: SEV: Migration is not implemented"
PEEK = """
import libvirt, sys
dom = libvirt.open("qemu:///system").lookupByName(sys.argv[1])
sys.stdout.buffer.write(dom.memoryPeek(int(sys.argv[2]), int(sys.argv[3]),
                                       libvirt.VIR_MEMORY_PHYSICAL))
"""
PEEK_WORDS = 1024


def pattern_bytes(first, count):
    return struct.pack("<%dI" % count, *(guestcheck.pattern_word(i)
                                         for i in range(first, first + count)))


class MemoryOut:
    """Checks shared by both classes; self.name is the guest under test."""

    def path(self, name):
        return os.path.join(self.lab.dir, "%s.%s" % (self.name, name))

    def refused(self, expected, *args):
        """virsh @args on host a fails with @expected in its error, and the
        guest is untouched."""
        res = self.a.virsh(*args, check=False, timeout=60)
        self.assertNotEqual(res.returncode, 0, "virsh %s succeeded" % " ".join(args))
        self.assertIn(expected, res.stderr)
        print("\n    %s: virsh %s: %s" % (self.name, args[0],
                                         res.stderr.strip().splitlines()[-1]),
              flush=True)
        self.assertGuestUntouched()
        return res

    def assertGuestUntouched(self):
        a, lab = self.a, self.lab
        self.assertEqual(sevguest.state(a, self.name), "running")
        self.assertEqual(sevguest.job_info(a, self.name, completed=False).get("Job type"),
                         "None")
        self.assertEqual(sevguest.pattern_errors(a, lab, self.name), [])
        before = sevguest.guest_word(a, lab, self.name, guestcheck.COUNTER_ADDR)
        sevguest.counter_after(a, lab, self.name, before)

    def assertNoFile(self, path):
        self.assertFalse(os.path.exists(path), "%s was written" % path)

    def assertCiphertext(self, data, what):
        """@data holds none of the guest's pattern in clear (4 KiB probes at
        ten places of its 4 MiB), yet is not empty."""
        self.assertGreater(len(data), 0, what)
        for k in range(10):
            probe = pattern_bytes(k * (guestcheck.PATTERN_WORDS // 10), 1024)
            self.assertFalse(probe in data, "%s holds the guest's pattern in clear" % what)

    def check_memory_only_dump(self):
        """virsh dump --memory-only reaches QEMU and succeeds; the file is an
        ELF core whose memory is ciphertext."""
        for extra in ([], ["--live"]):
            with self.subTest(live=bool(extra)):
                core = self.path("core-memory%s" % "".join(extra))
                res = self.a.virsh("dump", self.name, core, "--memory-only", *extra,
                                   check=False, timeout=120)
                self.assertEqual(res.returncode, 0, res.stderr)
                with open(core, "rb") as f:
                    data = f.read()
                os.unlink(core)
                self.assertEqual(data[:4], b"\x7fELF")
                # the guest's 64 MiB are in it
                self.assertGreater(len(data), 60 << 20)
                self.assertCiphertext(data, "the memory-only dump")
                print("\n    %s: virsh dump --memory-only%s: %d bytes, no pattern in clear"
                      % (self.name, " --live" if extra else "", len(data)), flush=True)
                self.assertGuestUntouched()

    def check_memory_peek(self):
        """virDomainMemoryPeek (python3-libvirt on the built library) reaches
        QEMU (pmemsave) and gives ciphertext; the guest itself sees its
        pattern there (x-pmemsave, the positive control)."""
        addr = guestcheck.PATTERN_ADDR
        res = subprocess.run(
            self.a.enter() + ["/usr/bin/python3", "-c", PEEK, self.name, str(addr),
                              str(PEEK_WORDS * 4)],
            env=hosts.libvirt_env(), capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
        plain = pattern_bytes(0, PEEK_WORDS)
        self.assertEqual(len(res.stdout), len(plain))
        self.assertFalse(plain[:64] in res.stdout, "memory peek gave the plaintext")
        self.assertTrue(sevguest.guest_memory(self.a, self.lab, self.name, addr,
                                              len(plain)) == plain,
                        "the guest does not see its pattern")
        print("\n    %s: virDomainMemoryPeek: %d bytes of ciphertext"
              % (self.name, len(res.stdout)), flush=True)
        self.assertGuestUntouched()


class FailClosedTest(MemoryOut, sevguest.SevGuestLabTest):

    DOMAIN = DOMAIN
    name = DOMAIN

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

    # ------------------------------------------------ refused by libvirt

    def test_save(self):
        image = self.path("save")
        self.refused("cannot save domain '%s': it is an SEV guest with mirror vCPUs, %s"
                     % (DOMAIN, TAIL), "save", DOMAIN, image)
        self.assertNoFile(image)

    def test_managedsave(self):
        self.refused("cannot save domain '%s': it is an SEV guest with mirror vCPUs"
                     % DOMAIN, "managedsave", DOMAIN)
        info = self.a.virsh("dominfo", DOMAIN).stdout
        self.assertRegex(info, r"Managed save:\s+no")

    def test_snapshot_external(self):
        for live in ([], ["--live"]):
            with self.subTest(live=bool(live)):
                memory = self.path("snap%s" % ("-live" if live else ""))
                overlay = self.path("overlay")
                self.refused("cannot take a snapshot with memory of domain '%s': it is "
                             "an SEV guest with mirror vCPUs, %s (a disk-only snapshot "
                             "is allowed)" % (DOMAIN, TAIL),
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
                     "an SEV guest with mirror vCPUs" % DOMAIN,
                     "snapshot-create-as", DOMAIN, "internal")
        self.assertEqual(self.a.virsh("snapshot-list", DOMAIN, "--name").stdout.strip(), "")
        # no vmstate went into the image
        self.assertEqual(os.path.getsize(self.disk), before)

    def test_dump_full(self):
        for extra in ([], ["--live"]):
            with self.subTest(options=" ".join(extra)):
                core = self.path("core%s" % "".join(extra))
                self.refused("cannot dump the memory of domain '%s' in full: it is an "
                             "SEV guest with mirror vCPUs, %s (a memory-only dump is "
                             "allowed)" % (DOMAIN, TAIL),
                             "dump", DOMAIN, core, *extra)
                self.assertNoFile(core)

    # ------------------------------------------------ left to QEMU

    def test_dump_memory_only(self):
        self.check_memory_only_dump()

    def test_memory_peek(self):
        self.check_memory_peek()

    # ------------------------------------------ confidential migration rules

    def test_migrate_rules(self):
        target = "qemu+tls://%s/system" % self.b.addr
        cases = [
            ([], "is an SEV guest with mirror vCPUs: its memory may only be migrated "
             "confidentially, with VIR_MIGRATE_CONFIDENTIAL (virsh migrate --confidential)"),
            (["--confidential", "--live"], "requires VIR_MIGRATE_TLS (--tls)"),
            (["--confidential", "--tls"], "requires VIR_MIGRATE_LIVE (--live)"),
            (["--confidential", "--live", "--tls", "--postcopy"],
             "cannot be combined with VIR_MIGRATE_POSTCOPY (--postcopy)"),
            (["--confidential", "--live", "--tls", "--compressed"],
             "cannot be combined with VIR_MIGRATE_COMPRESSED (--compressed)"),
            # --unsafe: the guest's qcow2 disk is not on shared storage
            (["--confidential", "--live", "--tls", "--unsafe", "--migrateuri",
              "rdma://%s" % self.b.addr],
             "cannot be combined with an rdma:// migration URI"),
        ]
        for extra, expected in cases:
            with self.subTest(options=" ".join(extra)):
                self.refused(expected, "migrate", "--p2p", *extra, DOMAIN, target)
                self.assertNotIn(DOMAIN, self.b.virsh("list", "--all", "--name").stdout)

    # ------------------------------------------------------- QEMU's guard

    def test_zz_qemu_blocker_without_guest_assisted(self):
        """Behind libvirt's back, QEMU itself refuses: the helper is ready
        and holds a key, but libvirt did not set guest-assisted."""
        helper = sevguest.qmp(self.a, DOMAIN, "query-migration-helper")
        self.assertEqual(helper["status"], "ready")
        self.assertTrue(helper.get("transport-key"))
        # the blocker is lifted: only libvirt and guest-assisted stand between
        # the guest and a save
        self.assertNotIn("blocked-reasons", sevguest.qmp(self.a, DOMAIN, "query-migrate"))
        caps = {c["capability"]: c["state"]
                for c in sevguest.qmp(self.a, DOMAIN, "query-migrate-capabilities")}
        self.assertIs(caps.get("guest-assisted"), False)
        out = self.path("stream")
        cmd = {"execute": "migrate", "arguments": {"uri": "exec:cat > %s" % out}}
        res = self.a.virsh("qemu-monitor-command", DOMAIN, json.dumps(cmd), check=False)
        self.assertIn("SEV: migration of an SEV guest needs the migration capability "
                      "guest-assisted", res.stdout + res.stderr)
        self.assertGuestUntouched()
        self.assertNoFile(out)


class NotOptedInTest(MemoryOut, sevguest.SevGuestLabTest):
    """SEV guests without mirror vCPUs: upstream behaviour. The class's own
    guest (DOMAIN) has mirror vCPUs and is not used; each test runs on a
    guest without, SEV (policy 0x1) and SEV-ES (policy 0x5)."""

    DOMAIN = "e2e-fc-unused"
    KINDS = (("e2e-fc-sev", "0x0001"), ("e2e-fc-sev-es", "0x0005"))

    @classmethod
    def set_up_lab(cls):
        cls.disks = {}
        for name, policy in cls.KINDS:
            disk = os.path.join(cls.lab.dir, "%s.qcow2" % name)
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "16M"],
                           check=True)
            cls.disks[name] = disk
            xml = sevguest.domain_xml(cls.lab, name, cls.GUEST, sev=True, mirror=False)
            xml = xml.replace("<policy>0x0001</policy>", "<policy>%s</policy>" % policy)
            xml = xml.replace("  <devices>\n", "  <devices>\n    <disk type='file' "
                              "device='disk'>\n      <driver name='qemu' type='qcow2'/>\n"
                              "      <source file='%s'/>\n      <target dev='vda' "
                              "bus='virtio'/>\n    </disk>\n" % disk, 1)
            assert policy in xml and disk in xml
            if int(policy, 16) & 0x4:
                # the guest owner's tool does not compute SEV-ES measurements:
                # started without a launch session (random TEK and TIK) and
                # without a secret, which this guest does not need
                path = os.path.join(cls.lab.dir, "%s.xml" % name)
                with open(path, "w") as f:
                    f.write(xml)
                cls.a.virsh("define", path)
                cls.a.virsh("start", name)
                sevguest.wait_guest_ready(cls.a, cls.lab, name)
            else:
                sevguest.define_and_start(cls.a, cls.lab, name, xml)
        # the guest with mirror vCPUs is not needed here
        cls.a.virsh("destroy", cls.DOMAIN, check=False)

    def each_kind(self):
        for name, policy in self.KINDS:
            with self.subTest(guest=name, policy=policy):
                self.name = name
                yield name

    def test_blocked_reasons(self):
        for name in self.each_kind():
            info = sevguest.qmp(self.a, name, "query-migrate")
            self.assertIn("SEV: Migration is not implemented",
                          info.get("blocked-reasons", []))

    def test_save(self):
        for name in self.each_kind():
            image = self.path("save")
            self.refused(QEMU_BLOCKER, "save", name, image)
            self.assertNoFile(image)

    def test_managedsave(self):
        for name in self.each_kind():
            self.refused(QEMU_BLOCKER, "managedsave", name)
            self.assertRegex(self.a.virsh("dominfo", name).stdout, r"Managed save:\s+no")

    def test_snapshots(self):
        for name in self.each_kind():
            memory = self.path("snap")
            overlay = self.path("overlay")
            self.refused(QEMU_BLOCKER, "snapshot-create-as", name, "snap",
                         "--memspec", "file=%s,snapshot=external" % memory,
                         "--diskspec", "vda,snapshot=external,file=%s" % overlay)
            self.assertNoFile(memory)
            before = os.path.getsize(self.disks[name])
            self.refused(QEMU_BLOCKER, "snapshot-create-as", name, "internal")
            self.assertEqual(os.path.getsize(self.disks[name]), before)
            self.assertEqual(self.a.virsh("snapshot-list", name, "--name").stdout.strip(),
                             "")

    def test_dump_full(self):
        for name in self.each_kind():
            for extra in ([], ["--live"]):
                core = self.path("core%s" % "".join(extra))
                self.refused(QEMU_BLOCKER, "dump", name, core, *extra)
                self.assertNoFile(core)

    def test_dump_memory_only(self):
        for name in self.each_kind():
            self.check_memory_only_dump()

    def test_memory_peek(self):
        for name in self.each_kind():
            self.check_memory_peek()

    def test_migrate(self):
        for name in self.each_kind():
            self.refused(QEMU_BLOCKER, "migrate", "--live", "--p2p", "--tls", name,
                         self.target)
            self.assertNotIn(name, self.b.virsh("list", "--all", "--name").stdout)


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    FailClosedTest.GUEST = GUEST
    NotOptedInTest.GUEST = GUEST
    return hosts.run_tests(FailClosedTest, NotOptedInTest)


if __name__ == "__main__":
    sys.exit(main())
