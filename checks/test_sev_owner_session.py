#!/usr/bin/python3
#
# The guest owner's tool (tools/virt-qemu-sev-owner) against checks/sevspec.py,
# a model of the AMD SEV launch formats written separately from the tool:
#
#  - 'session' with fixed nonce/TEK/TIK/wrap IV and a fixed guest-owner key
#    (known answer): the dh-cert and the session byte for byte;
#  - 'session' in its normal (random) mode: the platform's side (sevspec with
#    the PDH private key) unwraps TEK/TIK and checks both MACs; a wrong PDH
#    key and a wrong policy must fail that unwrap;
#  - 'measure' and 'secret' against sevspec;
#  - 'agent': the session exchange, then an attestation whose secret packet
#    sevspec verifies and decrypts to a secret table holding the transport
#    key and the key id; and the refusals.
#
# Key material of the tests is made up here; nothing secret is printed.
#
# Usage: test_sev_owner_session.py BUILD_ROOT [unittest arguments]

import base64
import hashlib
import hmac
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import sevspec  # noqa: E402
import sevcerts  # noqa: E402

TOOL = None

# fixed inputs of the known-answer tests (made up for this test)
ODH_SCALAR = int("6b1e2f0a9c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddee"
                 "ff00112233445566778899aabbccdd", 16)
PDH_SCALAR = int("3c0ffee15bad5eed0123456789abcdeffedcba98765432100f1e2d3c4b5a6978"
                 "8796a5b4c3d2e1f00102030405060708", 16)
NONCE = bytes.fromhex("00112233445566778899aabbccddeeff")
TEK = bytes.fromhex("101112131415161718191a1b1c1d1e1f")
TIK = bytes.fromhex("202122232425262728292a2b2c2d2e2f")
WRAP_IV = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")


def b64(data):
    return base64.b64encode(data).decode()


def draft_session(pdh_pub, odh_priv, policy, nonce, tek, tik, wrap_iv):
    """The session as the first draft of the interfaces file described it
    (Z little-endian, 256-bit KDF outputs, KIK of 32 bytes), which AMD's
    firmware does NOT do: only used to explain a mismatch."""
    z = odh_priv.exchange(sevspec.ec.ECDH(), pdh_pub)[::-1]

    def kdf(key, label, ctx=b""):
        return hmac.new(key, (1).to_bytes(4, "little") + label + b"\0" + ctx +
                        (256).to_bytes(4, "little"), hashlib.sha256).digest()
    master = kdf(z, b"sev-master-secret", nonce)
    kek, kik = kdf(master, b"sev-kek")[:16], kdf(master, b"sev-kik")
    wrap_tk = sevspec.aes128_ctr(kek, wrap_iv, tek + tik)
    return sevspec.pack_session(nonce, wrap_tk, wrap_iv,
                                hmac.new(kik, wrap_tk, hashlib.sha256).digest(),
                                sevspec.policy_mac(tik, policy))


def der(buf, pos=0):
    """(tag, start, end) of the DER element at @pos."""
    tag, n = buf[pos], buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n


def der_children(buf, start, end):
    out = []
    while start < end:
        tag, s, e = der(buf, start)
        out.append((tag, s, e))
        start = e
    return out


def ec_private_value(pem):
    """The privateKey octets of an EC key in PEM, PKCS#8 or SEC1."""
    lines = pem.decode().strip().splitlines()
    data = base64.b64decode("".join(lines[1:-1]))
    _, s, e = der(data)
    kids = der_children(data, s, e)
    if lines[0] == "-----BEGIN PRIVATE KEY-----":      # PKCS#8: the 3rd element
        _, s, e = kids[2]
        data = data[s:e]
        _, s, e = der(data)
        kids = der_children(data, s, e)
    tag, s, e = kids[1]                                 # ECPrivateKey.privateKey
    assert tag == 0x04, "no OCTET STRING privateKey"
    return data[s:e]


class OwnerToolTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lvm-sevowner-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data, mode=0o600):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.chmod(p, mode)
        return p

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def read_b64(self, name):
        return base64.b64decode(self.read(name).strip(), validate=True)

    def run_tool(self, args, stdin=None, check=True):
        res = subprocess.run([TOOL] + args, input=stdin, capture_output=True,
                             timeout=60)
        if check and res.returncode != 0:
            self.fail("virt-qemu-sev-owner %s: exit %d: %s" %
                      (args[0], res.returncode, res.stderr.decode(errors="replace")))
        return res

    def assert_no_leak(self, res, *secrets):
        """None of @secrets (raw) appears in the output, raw, hex or base64."""
        out = res.stdout + res.stderr
        for s in secrets:
            for form in (s, s.hex().encode(), s.hex().upper().encode(),
                         base64.b64encode(s)):
                self.assertNotIn(form, out, "secret material in the tool's output")

    def pdh(self, scalar=None):
        key = sevspec.key_from_scalar(scalar) if scalar else sevspec.generate_key()
        cert = sevspec.pack_cert(key.public_key(), sevspec.USAGE_PDH,
                                 sevspec.ALGO_ECDH_SHA256)
        return key, self.write("pdh-%s.b64" % uuid.uuid4().hex[:8], b64(cert))

    def session_args(self, pdh_file, key_file, policy, extra=()):
        return ["session", "--pdh", pdh_file, "--policy", str(policy),
                "--odh-key", key_file,
                "--dh-cert-out", self.path("dh.b64"),
                "--session-out", self.path("session.b64")] + list(extra)

    def explain(self, got, want, draft):
        """Which fields of the session differ, and whether the tool matches
        the draft formulas that real SEV firmware does not use."""
        names = ("nonce", "wrap_tk", "wrap_iv", "wrap_mac", "policy_mac")
        g, w = sevspec.parse_session(got), sevspec.parse_session(want)
        diff = [n for n in names if g[n] != w[n]]
        hint = ""
        if got == draft:
            hint = (" -- the tool matches the draft formulas (Z little-endian, "
                    "L=256, 32-byte KIK), not AMD's firmware (Z big-endian, "
                    "16-byte master secret/KEK/KIK, L=128)")
        return "session fields differing from sevspec: %s%s" % (diff, hint)

    # ------------------------------------------------------------------

    def test_1_session_known_answer(self):
        """Fixed inputs: dh-cert and session byte for byte as sevspec."""
        odh = sevspec.key_from_scalar(ODH_SCALAR)
        pdh_key, pdh_file = self.pdh(PDH_SCALAR)
        want_cert, _ = sevspec.make_session(pdh_key.public_key(), odh, 1,
                                            NONCE, TEK, TIK, WRAP_IV)
        fixed = ["--nonce", NONCE.hex(), "--tek", TEK.hex(), "--tik", TIK.hex(),
                 "--wrap-iv", WRAP_IV.hex()]
        for fmt in ("pkcs8", "sec1"):
            key_file = self.write("odh-%s.pem" % fmt, sevspec.key_to_pem(odh, fmt))
            for policy in (0x1, 0x5, 0x0):
                with self.subTest(key=fmt, policy=policy):
                    for out in ("dh.b64", "session.b64"):
                        if os.path.exists(self.path(out)):
                            os.unlink(self.path(out))
                    res = self.run_tool(self.session_args(pdh_file, key_file,
                                                          policy, fixed))
                    self.assert_no_leak(res, TEK, TIK)
                    _, want = sevspec.make_session(pdh_key.public_key(), odh, policy,
                                                   NONCE, TEK, TIK, WRAP_IV)
                    got = self.read_b64("session.b64")
                    self.assertEqual(len(got), sevspec.SESSION_SIZE)
                    draft = draft_session(pdh_key.public_key(), odh, policy,
                                          NONCE, TEK, TIK, WRAP_IV)
                    self.assertTrue(got == want, self.explain(got, want, draft))
                    got_cert = self.read_b64("dh.b64")
                    c = sevspec.parse_cert(got_cert)
                    self.assertEqual((c["usage"], c["algo"], c["curve"]),
                                     (sevspec.USAGE_PDH, sevspec.ALGO_ECDH_SHA256,
                                      sevspec.CURVE_P384))
                    self.assertEqual(c["pubkey"].public_numbers(),
                                     odh.public_key().public_numbers())
                    self.assertEqual(got_cert, want_cert)

    def test_1_keygen(self):
        """keygen: a P-384 private key (PEM, mode 0600) that python3-cryptography
        reads, and whose sessions carry its public key.  RFC 5915 has the
        private value in exactly 48 bytes; a key whose top bit is set must
        not get a 49th (sign) byte, so several keys are made."""
        for i in range(16):
            name = "owner-%d.pem" % i
            res = self.run_tool(["keygen", "--out", self.path(name)])
            self.assertEqual(res.stdout, b"")
            self.assertEqual(stat.S_IMODE(os.stat(self.path(name)).st_mode), 0o600)
            pem = self.read(name)
            self.assertEqual(len(ec_private_value(pem)), 48,
                             "keygen's key #%d: the private value is not 48 bytes "
                             "(RFC 5915); strict readers refuse it" % i)
            key = sevspec.key_from_pem(pem)
        os.rename(self.path(name), self.path("owner.pem"))
        pdh_key, pdh_file = self.pdh()
        self.run_tool(self.session_args(pdh_file, self.path("owner.pem"), 1))
        self.assertEqual(sevspec.parse_cert(self.read_b64("dh.b64"))["pubkey"].public_numbers(),
                         key.public_key().public_numbers())

    def test_1_session_pdh_not_a_pdh(self):
        """A --pdh that is no P-384 PDH sev_cert is refused."""
        odh = sevspec.generate_key()
        key_file = self.write("odh.pem", sevspec.key_to_pem(odh))
        good = sevspec.pack_cert(sevspec.generate_key().public_key())
        bad_point = bytearray(good)
        bad_point[sevspec.OFF_PUBKEY + 4] ^= 1          # not on the curve
        for name, blob in (("short", good[:-4]), ("point", bytes(bad_point)),
                           ("garbage", b"not a cert")):
            with self.subTest(name):
                f = self.write("pdh-%s.b64" % name, b64(blob))
                res = self.run_tool(self.session_args(f, key_file, 1), check=False)
                self.assertNotEqual(res.returncode, 0)

    def test_2_session_random_unwraps(self):
        """Normal mode: the platform (sevspec, PDH private key) unwraps the
        session, both MACs verify, TEK/TIK are those of --tek-out/--tik-out;
        a wrong PDH key or policy fails."""
        odh = sevspec.generate_key()
        key_file = self.write("odh.pem", sevspec.key_to_pem(odh))
        pdh_key, pdh_file = self.pdh()
        policy = 0x1
        res = self.run_tool(self.session_args(
            pdh_file, key_file, policy,
            ["--tek-out", self.path("tek"), "--tik-out", self.path("tik")]))
        for name in ("tek", "tik"):
            self.assertEqual(stat.S_IMODE(os.stat(self.path(name)).st_mode), 0o600)
        tek, tik = self.read("tek"), self.read("tik")
        self.assertEqual((len(tek), len(tik)), (16, 16))
        self.assert_no_leak(res, tek, tik)
        dh_cert, session = self.read_b64("dh.b64"), self.read_b64("session.b64")

        self.assertEqual(sevspec.unwrap_session(pdh_key, dh_cert, session, policy),
                         (tek, tik))
        # the check bites: another platform's key, another policy
        with self.assertRaisesRegex(sevspec.SevError, "wrap_mac"):
            sevspec.unwrap_session(sevspec.generate_key(), dh_cert, session, policy)
        with self.assertRaisesRegex(sevspec.SevError, "policy_mac"):
            sevspec.unwrap_session(pdh_key, dh_cert, session, policy | 0x4)

        # fresh nonce, IV, TEK and TIK every time
        self.run_tool(self.session_args(
            pdh_file, key_file, policy,
            ["--tek-out", self.path("tek2"), "--tik-out", self.path("tik2")]))
        s1, s2 = sevspec.parse_session(session), \
            sevspec.parse_session(self.read_b64("session.b64"))
        for field in ("nonce", "wrap_iv", "wrap_tk"):
            self.assertNotEqual(s1[field], s2[field])
        self.assertNotEqual(self.read("tek2"), tek)
        self.assertNotEqual(self.read("tik2"), tik)

    def test_2_unwrap_command(self):
        """The tool's optional 'unwrap' (the platform's side) accepts a
        sevspec session and refuses one with another policy."""
        pdh_key, _ = self.pdh()
        probe = self.run_tool(["--help"], check=False)
        if b" unwrap " not in probe.stdout + probe.stderr:
            self.skipTest("the tool has no 'unwrap' command")
        odh = sevspec.generate_key()
        tek, tik = os.urandom(16), os.urandom(16)
        cert, session = sevspec.make_session(pdh_key.public_key(), odh, 1,
                                             os.urandom(16), tek, tik,
                                             os.urandom(16))
        key = self.write("pdh.pem", sevspec.key_to_pem(pdh_key))
        dh = self.write("dh-in.b64", b64(cert))
        ses = self.write("session-in.b64", b64(session))
        other = self.write("other.pem", sevspec.key_to_pem(sevspec.generate_key()))

        def unwrap_args(pdh_file=key):
            return ["unwrap", "--pdh-key", pdh_file, "--dh-cert", dh, "--session", ses]
        args = unwrap_args()
        res = self.run_tool(args + ["--policy", "1"])
        self.assertEqual(res.stdout.strip(), b"ok")
        self.assert_no_leak(res, tek, tik)
        if b"unwrap --pdh-key FILE --dh-cert FILE --session FILE --policy N\n" \
           b"          [--tek-out" in probe.stdout:
            self.run_tool(args + ["--policy", "1", "--tek-out", self.path("tek"),
                                  "--tik-out", self.path("tik")])
            self.assertEqual((self.read("tek"), self.read("tik")), (tek, tik))
        for bad in (args + ["--policy", "3"],               # policy_mac
                    unwrap_args(other) + ["--policy", "1"]):  # wrap_mac
            res = self.run_tool(bad, check=False)
            self.assertNotEqual(res.returncode, 0)
            self.assertNotIn(b"ok", res.stdout)

    def test_3_measure_and_secret(self):
        """'measure', 'verify' and 'secret' against sevspec."""
        fw = self.write("fw.bin", os.urandom(4096 + 17))
        tik, tek = os.urandom(16), os.urandom(16)
        tik_f, tek_f = self.write("tik", tik), self.write("tek", tek)
        mnonce = os.urandom(16)
        with open(fw, "rb") as f:
            digest = sevspec.launch_digest(f.read())
        want = sevspec.measure_blob(tik, 1, 55, 24, 1, digest, mnonce)
        common = ["--firmware", fw, "--api-major", "1", "--api-minor", "55",
                  "--build-id", "24", "--policy", "1", "--tik", tik_f]
        res = self.run_tool(["measure"] + common + ["--mnonce", b64(mnonce)])
        self.assertEqual(base64.b64decode(res.stdout.strip()), want)
        self.assert_no_leak(res, tik)
        self.assertEqual(self.run_tool(["verify"] + common + ["--measurement", b64(want)],
                                       check=False).returncode, 0)
        # with the kernel hashes table
        kernel, initrd = os.urandom(3000), os.urandom(1000)
        kfiles = ["--kernel", self.write("vmlinuz", kernel),
                  "--initrd", self.write("initrd", initrd), "--cmdline", "console=ttyS0"]
        with open(fw, "rb") as f:
            kdigest = sevspec.launch_digest(f.read(), kernel, initrd, "console=ttyS0")
        res = self.run_tool(["measure"] + common + kfiles + ["--mnonce", b64(mnonce)])
        self.assertEqual(base64.b64decode(res.stdout.strip()),
                         sevspec.measure_blob(tik, 1, 55, 24, 1, kdigest, mnonce))
        bad = bytes([want[0] ^ 1]) + want[1:]
        self.assertEqual(self.run_tool(["verify"] + common + ["--measurement", b64(bad)],
                                       check=False).returncode, 1)

        tkey = os.urandom(32)
        tk_f = self.write("transport.key", tkey)
        # "k-16": a table of 96 bytes, which gets 16 bytes of padding
        for key_id in ("owner:key-7", "k-16"):
            iv = os.urandom(16)
            res = self.run_tool(["secret", "--measurement", b64(want), "--tek", tek_f,
                                 "--tik", tik_f, "--transport-key", tk_f,
                                 "--key-id", key_id, "--iv", iv.hex(),
                                 "--header-out", self.path("hdr.b64"),
                                 "--secret-out", self.path("sec.b64")])
            self.assert_no_leak(res, tek, tik, tkey)
            hdr, data = self.read_b64("hdr.b64"), self.read_b64("sec.b64")
            self.assertEqual(hdr[4:20], iv)
            table = sevspec.open_secret(tek, tik, want, hdr, data)
            self.assertEqual(table, sevspec.project_secret_table(tkey, key_id))
        # the MAC binds the measurement: another launch's does not verify
        other = sevspec.measure_blob(tik, 1, 55, 24, 1, digest, os.urandom(16))
        with self.assertRaises(sevspec.SevError):
            sevspec.open_secret(tek, tik, other, hdr, data)

    # --- the agent ------------------------------------------------------

    def owner_dir(self, policy="0x1"):
        d = os.path.join(self.dir, "owner")
        os.mkdir(d)
        self.odh = sevspec.generate_key()
        self.transport_key = os.urandom(32)
        self.firmware = os.urandom(8192)
        for name, data in (("owner.pem", sevspec.key_to_pem(self.odh)),
                           ("transport.key", self.transport_key),
                           ("OVMF.fd", self.firmware)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(d, name), 0o600)
        # the owner trusts a root of the test's own ("AMD"'s format), which
        # signed the platform's chain (the agent verifies it)
        self.root = sevcerts.Root(bits=2048)
        for name, data in (("ark.cert", self.root.ark), ("ask.cert", self.root.ask)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        with open(os.path.join(d, "owner.conf"), "w") as f:
            f.write("odh-key=owner.pem\ntransport-key=transport.key\n"
                    "key-id=owner:key-1\nfirmware=OVMF.fd\npolicy=%s\n"
                    "ark=ark.cert\nask=ask.cert\n" % policy)
        return d

    def platform(self):
        """A platform signed down from the owner's root (owner_dir first)."""
        plat = sevcerts.Platform(self.root)
        self.pdh_key = plat.pdh_key
        return {"pdh": b64(plat.pdh), "cert-chain": b64(plat.cert_chain()),
                "cpu0-id": b64(os.urandom(64))}

    def agent(self, owner, request):
        res = self.run_tool(["agent", "--owner-dir", owner],
                            stdin=json.dumps(request).encode())
        return res, json.loads(res.stdout)

    def request(self, op, platform, **more):
        req = {"version": 1, "operation": op,
               "domain": {"name": "guest1", "uuid": str(uuid.uuid4())},
               "host": "target.example", "policy": 1, "platform": platform}
        req.update(more)
        return req

    def launch(self, dh_cert, session, tik, firmware=None, policy=1, mnonce=None):
        digest = sevspec.launch_digest(self.firmware if firmware is None else firmware)
        meas = sevspec.measure_blob(tik, 1, 55, 24, policy, digest,
                                    mnonce or os.urandom(16))
        return {"dh-cert": b64(dh_cert), "session": b64(session),
                "measurement": b64(meas), "api-major": 1, "api-minor": 55,
                "build-id": 24, "policy": policy}

    def test_4_agent_session_then_attest(self):
        """The agent's session for a PDH unwraps on the platform side with
        the owner's key; its attestation secret verifies and decrypts
        (sevspec) to the transport key and key id."""
        owner, plat = self.owner_dir(), self.platform()
        res, reply = self.agent(owner, self.request("session", plat))
        self.assertEqual(set(reply), {"dh-cert", "session"})
        dh_cert = base64.b64decode(reply["dh-cert"])
        session = base64.b64decode(reply["session"])
        self.assertEqual(sevspec.parse_cert(dh_cert)["pubkey"].public_numbers(),
                         self.odh.public_key().public_numbers())
        tek, tik = sevspec.unwrap_session(self.pdh_key, dh_cert, session, 1)
        self.assert_no_leak(res, tek, tik, self.transport_key)

        launch = self.launch(dh_cert, session, tik)
        res, reply = self.agent(owner, self.request("attest", plat, launch=launch,
                                                    **{"source-key-id": "owner:key-1"}))
        self.assertEqual(set(reply), {"secret-header", "secret", "key-id"}, reply)
        self.assertEqual(reply["key-id"], "owner:key-1")
        self.assert_no_leak(res, tek, tik, self.transport_key)
        hdr = base64.b64decode(reply["secret-header"])
        data = base64.b64decode(reply["secret"])
        table = sevspec.open_secret(tek, tik, base64.b64decode(launch["measurement"]),
                                    hdr, data)
        self.assertEqual(sevspec.project_secret_entries(table),
                         (self.transport_key, "owner:key-1"))
        self.assertEqual(table, sevspec.project_secret_table(self.transport_key,
                                                             "owner:key-1"))

        # stateless: a session made elsewhere with the owner's key (sevspec)
        # attests as well
        tek2, tik2 = os.urandom(16), os.urandom(16)
        cert2, ses2 = sevspec.make_session(self.pdh_key.public_key(), self.odh, 1,
                                           os.urandom(16), tek2, tik2, os.urandom(16))
        launch2 = self.launch(cert2, ses2, tik2)
        _, reply = self.agent(owner, self.request("attest", plat, launch=launch2))
        self.assertIn("secret", reply, reply)
        table = sevspec.open_secret(tek2, tik2, base64.b64decode(launch2["measurement"]),
                                    base64.b64decode(reply["secret-header"]),
                                    base64.b64decode(reply["secret"]))
        self.assertEqual(sevspec.project_secret_entries(table)[0], self.transport_key)

    def test_5_agent_refusals(self):
        """Refused (exit 0, {"refused": ...}, no secret): a measurement of
        other firmware, another policy, a dh-cert that is not the owner's, a
        session for another platform, a forged measurement."""
        owner, plat = self.owner_dir(), self.platform()
        tek, tik = os.urandom(16), os.urandom(16)
        cert, ses = sevspec.make_session(self.pdh_key.public_key(), self.odh, 1,
                                         os.urandom(16), tek, tik, os.urandom(16))
        stranger = sevspec.generate_key()
        cert_x, ses_x = sevspec.make_session(self.pdh_key.public_key(), stranger, 1,
                                             os.urandom(16), tek, tik, os.urandom(16))
        cert_o, ses_o = sevspec.make_session(sevspec.generate_key().public_key(),
                                             self.odh, 1, os.urandom(16), tek, tik,
                                             os.urandom(16))
        forged = self.launch(cert, ses, os.urandom(16))   # MAC'd with another TIK
        cases = {
            "other firmware": self.launch(cert, ses, tik, firmware=os.urandom(8192)),
            "other policy": self.launch(cert, ses, tik, policy=3),
            "not the owner's dh-cert": self.launch(cert_x, ses_x, tik),
            "session for another PDH": self.launch(cert_o, ses_o, tik),
            "forged measurement": forged,
        }
        for name, launch in cases.items():
            with self.subTest(name):
                req = self.request("attest", plat, launch=launch)
                if name == "other policy":
                    req["policy"] = 3
                res, reply = self.agent(owner, req)
                self.assertEqual(list(reply), ["refused"], reply)
                self.assertIsInstance(reply["refused"], str)
                self.assert_no_leak(res, tek, tik, self.transport_key)
        # and the good one goes through, so the refusals above are not noise
        _, reply = self.agent(owner, self.request("attest", plat,
                                                  launch=self.launch(cert, ses, tik)))
        self.assertIn("secret", reply, reply)


def main():
    global TOOL
    build = os.path.realpath(sys.argv[1])
    TOOL = os.path.join(build, "subprojects", "libvirt", "tools", "virt-qemu-sev-owner")
    if not os.path.exists(TOOL):
        print("%s is not built (tools/virt-qemu-sev-owner absent): skipped" % TOOL,
              file=sys.stderr)
        return 77
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2, exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
