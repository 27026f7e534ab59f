#!/usr/bin/python3
#
# The platform side of the QEMU stand-in (e2e/standin: the simulated AMD
# secure processor) against checks/sevspec.py, a model of the AMD SEV launch
# formats written separately from it, without the guest owner's tool:
#
#  - query-sev-capabilities: the PDH is the sev_cert of the configured key
#    (sev-pdh-key=), the chain holds a PEK, an OCA and a CEK; with the
#    certificates the test lab signs (sev-pdh-cert=, sev-cert-chain=, made
#    with checks/sevcerts.py under a root of its own), exactly those, and
#    they verify (sevcerts and virt-qemu-sev-owner verify-chain); a PDH
#    certificate of another key is refused;
#  - LAUNCH_START from a session that sevspec made for that PDH;
#  - query-sev-launch-measure verified with sevspec (the TIK, the firmware
#    file of -bios, the kernel hashes table with kernel-hashes=on, the
#    configured API version and build);
#  - a LAUNCH_SECRET built with sevspec, injected before cont: the helper
#    then holds the transport key and reports its key id;
#  - the refusals: a bad session (another platform's, another policy, not a
#    PDH cert) fails the launch; a secret under a wrong TIK, bound to another
#    measurement, replayed from another launch, or injected after cont is
#    refused; a secret under a wrong TEK is accepted but gives no key.
#
# Usage: test_standin_psp.py BUILD_ROOT [unittest arguments]

import base64
import ctypes
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import sevcerts  # noqa: E402
import sevspec  # noqa: E402
import test_standin as ts  # noqa: E402

TOOL = None
API = (1, 56, 31)        # not the stand-in's defaults, to see they are used
KEY_ID = "psp:key-1"


def b64(data):
    return base64.b64encode(data).decode()


class PspTest(ts.StandinTest):
    """Uses the stand-in harness of test_standin.py; only the tests defined
    here run (see main())."""

    def setUp(self):
        super().setUp()
        self.pdh = sevspec.generate_key()
        self.pdh_file = os.path.join(self.workdir, "pdh.pem")
        with open(self.pdh_file, "wb") as f:
            f.write(sevspec.key_to_pem(self.pdh))
        os.chmod(self.pdh_file, 0o600)
        self.firmware = os.urandom(64 * 1024 + 5)
        self.fw_file = self.write("OVMF.amdsev.fd", self.firmware)
        self.odh = sevspec.generate_key()

    def write(self, name, data):
        path = os.path.join(self.workdir, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def psp_conf(self):
        path = os.path.join(self.workdir, "psp.conf")
        with open(path, "w") as f:
            f.write("[standin]\nqemu=/usr/bin/qemu-system-x86_64\n"
                    "helper-boot-ms=100\nhelper=ready\ntest-mode=true\n"
                    "sev-pdh-key=%s\nsev-api-major=%d\nsev-api-minor=%d\n"
                    "sev-build-id=%d\n%s" % ((self.pdh_file,) + API +
                                             (getattr(self, "conf_extra", ""),)))
        return path

    def session(self, policy=1, pdh=None, odh=None):
        """A fresh session (sevspec) for the platform's PDH: (files, tek, tik)."""
        tek, tik = os.urandom(16), os.urandom(16)
        cert, ses = sevspec.make_session((pdh or self.pdh).public_key(),
                                         odh or self.odh, policy, os.urandom(16),
                                         tek, tik, os.urandom(16))
        tag = os.urandom(4).hex()
        return (self.write("dh-%s.b64" % tag, b64(cert)),
                self.write("session-%s.b64" % tag, b64(ses))), tek, tik

    def argv(self, files, policy=1, kernel_hashes=False, append=None, pflash=False):
        def build(monitor):
            args = ts.sev_argv(monitor, policy=policy)
            if pflash:
                # as libvirt gives a read-only pflash loader: -blockdev chain
                # and -machine pflash0=
                i = args.index("-bios")
                args[i:i + 2] = [
                    "-blockdev", json.dumps({"driver": "file", "filename": self.fw_file,
                                             "node-name": "libvirt-pflash0-storage",
                                             "auto-read-only": True, "discard": "unmap"}),
                    "-blockdev", json.dumps({"node-name": "libvirt-pflash0-format",
                                             "read-only": True, "driver": "raw",
                                             "file": "libvirt-pflash0-storage"})]
                m = args.index("-machine") + 1
                args[m] += ",pflash0=libvirt-pflash0-format"
            else:
                args[args.index("-bios") + 1] = self.fw_file
            i = next(n for n, a in enumerate(args) if '"sev-guest"' in a)
            obj = json.loads(args[i])
            if files:
                obj["dh-cert-file"], obj["session-file"] = files
            if kernel_hashes:
                obj["kernel-hashes"] = True
            args[i] = json.dumps(obj, separators=(",", ":"))
            if append is not None:
                args[args.index("-kernel"):args.index("-kernel")] = ["-append", append]
            return args
        return build

    def launch(self, name, files, **kw):
        """A stand-in launching an SEV guest; it must come up (its QMP)."""
        path = os.path.join(self.workdir, name + ".qmp")
        proc = self.start(name, self.argv(files, **kw)(
            ["-qmp", "unix:%s,server=on,wait=off" % path]), conf=self.psp_conf())
        deadline = time.monotonic() + ts.WAIT
        while not os.path.exists(path):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.fail("the stand-in did not start: %s" % self.log(name).strip())
            time.sleep(0.05)
        qmp = ts.QMP(path)
        self.addCleanup(qmp.close)
        return proc, qmp

    def measure(self, qmp):
        return base64.b64decode(qmp.cmd("query-sev-launch-measure")["data"])

    def verify(self, tik, blob, policy=1, digest=None):
        return sevspec.verify_measurement(tik, *API, policy,
                                          digest or sevspec.launch_digest(self.firmware),
                                          blob)

    def secret(self, tek, tik, meas, key=None, key_id=KEY_ID):
        self.transport_key = key or os.urandom(32)
        table = sevspec.project_secret_table(self.transport_key, key_id)
        hdr, data = sevspec.build_secret(tek, tik, meas, table, os.urandom(16))
        return {"packet-header": b64(hdr), "secret": b64(data)}

    def cont_helper(self, qmp):
        """cont; the helper's ready report (MIGRATION_HELPER event data)."""
        qmp.cmd("cont")
        qmp.wait_event("RESUME")
        self.assertEqual(qmp.wait_event("MIGRATION_HELPER")["data"], {"status": "booting"})
        data = qmp.wait_event("MIGRATION_HELPER")["data"]
        self.assertEqual(data, qmp.cmd("query-migration-helper"))
        return data

    def assert_log_clean(self, name, *secrets):
        with open(os.path.join(self.workdir, name + ".log"), "rb") as f:
            log = f.read()
        for s in secrets:
            for form in (s, s.hex().encode(), s.hex().upper().encode(),
                         base64.b64encode(s)):
                self.assertNotIn(form, log, "secret material in the stand-in's log")

    # ------------------------------------------------------------------

    def test_1_platform_certs(self):
        """query-sev-capabilities: the configured PDH as a sev_cert."""
        _, qmp = self.launch("caps", None)
        caps = qmp.cmd("query-sev-capabilities")
        pdh = base64.b64decode(caps["pdh"])
        c = sevspec.parse_cert(pdh)
        self.assertEqual((c["usage"], c["algo"], c["curve"]),
                         (sevspec.USAGE_PDH, sevspec.ALGO_ECDH_SHA256, sevspec.CURVE_P384))
        self.assertEqual(c["pubkey"].public_numbers(), self.pdh.public_key().public_numbers())
        # all other bytes as the spec's layout has them (unused signatures)
        self.assertEqual(pdh, sevspec.pack_cert(self.pdh.public_key(),
                                                api_major=pdh[4], api_minor=pdh[5]))
        chain = base64.b64decode(caps["cert-chain"])
        self.assertEqual(len(chain), 3 * sevspec.CERT_SIZE)
        usages = [sevspec.parse_cert(chain[i:i + sevspec.CERT_SIZE])["usage"]
                  for i in range(0, len(chain), sevspec.CERT_SIZE)]
        self.assertEqual(usages, [sevspec.USAGE_PEK, sevspec.USAGE_OCA, sevspec.USAGE_CEK])

    def test_1_signed_platform_certs(self):
        """The lab's certificates, signed down from its "AMD" root."""
        root = sevcerts.Root()
        platform = sevcerts.Platform(root, api=API[:2], pdh_key=self.pdh)
        self.conf_extra = "sev-pdh-cert=%s\nsev-cert-chain=%s\n" % (
            self.write("pdh.cert.b64", b64(platform.pdh)),
            self.write("chain.b64", b64(platform.cert_chain())))
        _, qmp = self.launch("signed", None)
        caps = qmp.cmd("query-sev-capabilities")
        pdh = base64.b64decode(caps["pdh"])
        chain = base64.b64decode(caps["cert-chain"])
        self.assertEqual(pdh, platform.pdh)
        self.assertEqual(chain, platform.pek + platform.oca + platform.cek)
        self.assertEqual(sevcerts.verify_chain(root.ark, root.ask, platform.cek,
                                               platform.oca, platform.pek, pdh), [])
        res = subprocess.run([TOOL, "verify-chain",
                              "--pdh", self.write("caps-pdh", caps["pdh"]),
                              "--cert-chain", self.write("caps-chain", caps["cert-chain"]),
                              "--ark", self.write("ark", root.ark),
                              "--ask", self.write("ask", root.ask)],
                             capture_output=True, text=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("chip %s" % platform.chip_id(), res.stdout)
        # the certificate of another PDH key than the platform's
        other = sevcerts.Platform(root, api=API[:2])
        self.conf_extra = "sev-pdh-cert=%s\nsev-cert-chain=%s\n" % (
            self.write("other.cert.b64", b64(other.pdh)),
            self.write("other-chain.b64", b64(other.cert_chain())))
        _, qmp = self.launch("other", None)
        self.assertIn("is not the certificate of the platform's PDH key",
                      qmp.error("query-sev-capabilities"))

    def test_2_launch_measure_inject(self):
        """The owner's session, the measurement, the secret, the key."""
        files, tek, tik = self.session()
        _, qmp = self.launch("good", files)
        sev = qmp.cmd("query-sev")
        self.assertEqual((sev["api-major"], sev["api-minor"], sev["build-id"],
                          sev["policy"], sev["state"]), API + (1, "launch-secret"))
        blob = self.measure(qmp)
        self.assertEqual(len(blob), 48)
        self.assertTrue(self.verify(tik, blob), "the measurement does not verify (sevspec)")
        self.assertFalse(self.verify(os.urandom(16), blob))         # the check bites
        self.assertFalse(self.verify(tik, blob, policy=3))
        self.assertFalse(self.verify(tik, blob, digest=sevspec.launch_digest(b"other")))
        self.assertEqual(self.measure(qmp), blob)                   # stable in a launch

        self.assertEqual(qmp.cmd("sev-inject-launch-secret", **self.secret(tek, tik, blob)), {})
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "inactive"})
        data = self.cont_helper(qmp)
        self.assertEqual(data, {"status": "ready", "transport-key": True,
                                "transport-key-id": KEY_ID})
        self.assertEqual(qmp.cmd("query-sev")["state"], "running")
        # after cont: refused, and the key stays
        self.assertEqual(qmp.error("sev-inject-launch-secret",
                                   **self.secret(tek, tik, blob, key_id="psp:key-2")),
                         "SEV: Not in correct state")
        self.assertEqual(qmp.cmd("query-migration-helper")["transport-key-id"], KEY_ID)
        self.assert_log_clean("good", tek, tik, self.transport_key)

    def test_2_kernel_hashes(self):
        """kernel-hashes=on: the kernel hashes table is in the launch digest."""
        files, tek, tik = self.session()
        with open(ts.GUEST, "rb") as f:
            kernel = f.read()
        _, qmp = self.launch("hashes", files, kernel_hashes=True, append="mirror test")
        blob = self.measure(qmp)
        digest = sevspec.launch_digest(self.firmware, kernel, b"", "mirror test")
        self.assertTrue(self.verify(tik, blob, digest=digest))
        self.assertFalse(self.verify(tik, blob))                    # without the table
        self.assertFalse(self.verify(tik, blob, digest=sevspec.launch_digest(
            self.firmware, kernel, b"", "")))                       # another cmdline
        self.assertEqual(qmp.cmd("sev-inject-launch-secret", **self.secret(tek, tik, blob)), {})

    def test_2_pflash_firmware(self):
        """Without -bios, the firmware measured is pflash unit 0 (QEMU gets
        it: a size that a flash device takes)."""
        self.firmware = os.urandom(128 * 1024)
        self.fw_file = self.write("OVMF.pflash.fd", self.firmware)
        files, tek, tik = self.session()
        _, qmp = self.launch("pflash", files, pflash=True)
        self.assertTrue(self.verify(tik, self.measure(qmp)))

    def test_3_secret_refusals(self):
        """Wrong TIK, another measurement, a replay from another launch: the
        platform refuses; then no key after cont. A wrong TEK: accepted, but
        no key."""
        files, tek, tik = self.session()
        _, qmp_b = self.launch("earlier", files)
        blob_b = self.measure(qmp_b)
        replayed = self.secret(tek, tik, blob_b)
        self.assertEqual(qmp_b.cmd("sev-inject-launch-secret", **replayed), {})

        _, qmp = self.launch("now", files)          # the same session again
        blob = self.measure(qmp)
        self.assertNotEqual(blob[32:], blob_b[32:], "the mnonce must be fresh per launch")
        self.assertTrue(self.verify(tik, blob))
        other_fw = sevspec.measure_blob(tik, *API, 1, sevspec.launch_digest(b"x" * 4096),
                                        blob[32:])
        cases = {
            "wrong TIK": self.secret(tek, os.urandom(16), blob),
            "another measurement": self.secret(tek, tik, other_fw),
            "replay from an earlier launch": replayed,
        }
        for name, args in cases.items():
            with self.subTest(name):
                desc = qmp.error("sev-inject-launch-secret", **args)
                self.assertIn("LAUNCH_SECRET", desc)
        self.assertEqual(self.cont_helper(qmp), {"status": "ready"})
        self.assertEqual(qmp.error("sev-inject-launch-secret", **self.secret(tek, tik, blob)),
                         "SEV: Not in correct state")
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "ready"})

        # a wrong TEK: the MAC verifies, the guest decrypts garbage
        _, qmp_t = self.launch("wrongtek", files)
        self.assertEqual(qmp_t.cmd("sev-inject-launch-secret",
                                   **self.secret(os.urandom(16), tik, self.measure(qmp_t))),
                         {})
        self.assertEqual(self.cont_helper(qmp_t), {"status": "ready"})

    def test_4_bad_sessions(self):
        """A session the platform cannot open ends the launch, as QEMU
        exits when LAUNCH_START fails."""
        stranger = sevspec.generate_key()
        other_policy, _, _ = self.session(policy=3)
        other_pdh, _, _ = self.session(pdh=stranger)
        not_pdh = (self.write("garbage.b64", b64(b"\x01" * sevspec.CERT_SIZE)),
                   self.session()[0][1])
        cases = {"policy_mac": other_policy, "wrap_mac": other_pdh,
                 "dhCert": not_pdh}
        for what, files in cases.items():
            with self.subTest(what):
                name = "bad-" + what
                proc = self.start(name, self.argv(files)(
                    ["-qmp", "unix:%s,server=on,wait=off"
                     % os.path.join(self.workdir, name + ".qmp")]),
                    conf=self.psp_conf())
                try:
                    # a refused launch exits at once; one that was not
                    # refused never does: the ceiling only ends that case
                    self.assertNotEqual(proc.wait(ts.WAIT), 0)
                except subprocess.TimeoutExpired:
                    self.fail("the stand-in launched with a bad session (%s)" % what)
                log = self.log(name)
                self.assertIn("LAUNCH_START", log)
                if what != "dhCert":
                    self.assertIn(what, log)

    def test_5_tool_interop(self):
        """The guest owner's tool and the stand-in together, no libvirt:
        the tool's session for the stand-in's PDH launches, the tool
        verifies the stand-in's measurement, the tool's secret gives the
        helper its key."""
        if not os.path.exists(TOOL):
            self.skipTest("virt-qemu-sev-owner is not built")

        def tool(*args):
            res = subprocess.run([TOOL] + list(args), capture_output=True, timeout=60)
            self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
            return res.stdout

        _, qmp = self.launch("caps", None)
        pdh_b64 = qmp.cmd("query-sev-capabilities")["pdh"]
        owner = self.write("owner.pem", sevspec.key_to_pem(self.odh))
        tek_f, tik_f = (os.path.join(self.workdir, n) for n in ("tek", "tik"))
        dh_f, ses_f = (os.path.join(self.workdir, n) for n in ("dh.b64", "ses.b64"))
        tool("session", "--pdh", self.write("pdh.b64", pdh_b64), "--policy", "1",
             "--odh-key", owner, "--dh-cert-out", dh_f, "--session-out", ses_f,
             "--tek-out", tek_f, "--tik-out", tik_f)
        _, qmp = self.launch("tool", (dh_f, ses_f))
        blob = self.measure(qmp)
        common = ["--firmware", self.fw_file, "--api-major", str(API[0]),
                  "--api-minor", str(API[1]), "--build-id", str(API[2]),
                  "--policy", "1", "--tik", tik_f]
        tool("verify", *common, "--measurement", b64(blob))
        key_f = self.write("transport.key", os.urandom(32))
        hdr_f, sec_f = (os.path.join(self.workdir, n) for n in ("hdr.b64", "sec.b64"))
        tool("secret", "--measurement", b64(blob), "--tek", tek_f, "--tik", tik_f,
             "--transport-key", key_f, "--key-id", "tool:key-1",
             "--header-out", hdr_f, "--secret-out", sec_f)
        with open(hdr_f) as h, open(sec_f) as d:
            args = {"packet-header": h.read().strip(), "secret": d.read().strip()}
        self.assertEqual(qmp.cmd("sev-inject-launch-secret", **args), {})
        self.assertEqual(self.cont_helper(qmp), {"status": "ready", "transport-key": True,
                                                 "transport-key-id": "tool:key-1"})


def main():
    global TOOL
    build = os.path.realpath(sys.argv[1])
    TOOL = os.path.join(build, "subprojects", "libvirt", "tools", "virt-qemu-sev-owner")
    ts.STANDIN = os.path.join(build, "qemu-mirror-standin")
    ts.GUEST = os.path.join(build, "guest.elf")
    if not os.path.exists("/usr/bin/qemu-system-x86_64"):
        print("/usr/bin/qemu-system-x86_64 is not installed", file=sys.stderr)
        return 77
    for path in (ts.STANDIN, ts.GUEST):
        if not os.path.exists(path):
            print("%s is not built" % path, file=sys.stderr)
            return 1
    with open(ts.STANDIN, "rb") as f:
        if b"sev-pdh-key" not in f.read():
            print("this stand-in simulates no secure processor (no sev-pdh-key): "
                  "skipped", file=sys.stderr)
            return 77
    ctypes.CDLL(None, use_errno=True).prctl(ts.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    names = sorted(n for n in PspTest.__dict__ if n.startswith("test_"))
    pick = sys.argv[2:]
    if pick:
        names = [n for n in names if any(p in n for p in pick)]
    suite = unittest.TestSuite(PspTest(n) for n in names)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
