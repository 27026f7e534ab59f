#!/usr/bin/python3
#
# virt-qemu-sev-owner verify-chain (tools/virt-qemu-sev-owner-cert.c): the
# platform's SEV certificate chain verified to AMD's root.
#
#  - RealChainTest: the chains of real machines and AMD's published roots
#    (tests/sevchaindata, provenance in its README.rst) verify, with the
#    tool and with checks/sevcerts.py (an independent model); the roots the
#    tool carries are those files; and for each signature of the chain (ARK
#    self-signature, ASK by ARK, CEK by ASK, OCA self-signature, PEK by CEK,
#    PEK by OCA, PDH by PEK) one byte of the signature, and one byte of what
#    it signs, changed: refused, naming that signature.
#  - LabChainTest: chains made by checks/sevcerts.py under a root of our
#    own, for what real data cannot show: wrong key usages and versions,
#    certificates missing a signature or signed by the wrong key (a rogue
#    PDH), the allowlist of chips, the minimum API version and build, the
#    owner.conf keys.
#
# Usage: test_sev_owner_chain.py BUILD_DIR [unittest names...]

import base64
import hashlib
import os
import re
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sevcerts  # noqa: E402
import sevspec  # noqa: E402

BUILD = None
TOOL = None
SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(SRC, "subprojects", "libvirt", "tests", "sevchaindata")

# the real chains and the generation of each
CHAINS = {"naples": "naples", "rome": "rome", "milan": "milan",
          "rome-sevctl": "rome"}

# the offsets of the signatures in AMD's root key certificate: the
# signature follows pub_exp and modulus (both as long as the modulus)
AMD_BODY_BYTE = 0x40 + 8          # a byte of the public exponent field
SEV_BODY_BYTE = 0x5               # the API minor version


def read_b64(path):
    with open(path) as f:
        return base64.b64decode(f.read())


def real(name, what):
    return read_b64(os.path.join(DATA, name, what + ".b64"))


def root_file(gen, what):
    return read_b64(os.path.join(DATA, "roots", gen, what + ".b64"))


def sig_offset(cert, usage):
    return sevcerts.slot(cert, usage)[2]


class ChainTestBase(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, data, b64=True):
        path = os.path.join(self.dir, name)
        if b64:
            data = base64.b64encode(data)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run_tool(self, *args):
        return subprocess.run([TOOL, "verify-chain"] + list(args),
                              capture_output=True, text=True, timeout=60)

    def chain_args(self, pdh, pek, oca, cek, cert_chain=True):
        if cert_chain:
            return ["--pdh", self.write("pdh", pdh),
                    "--cert-chain", self.write("chain", pek + oca + cek)]
        return ["--pdh", self.write("pdh", pdh, b64=False),
                "--pek", self.write("pek", pek, b64=False),
                "--oca", self.write("oca", oca, b64=False),
                "--cek", self.write("cek", cek, b64=False)]

    def root_args(self, ark, ask):
        return ["--ark", self.write("ark", ark), "--ask", self.write("ask", ask)]

    def assertVerified(self, res, root=None):
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("verified: the PDH of chip", res.stdout)
        if root:
            self.assertRegex(res.stdout, r"root %s\n" % re.escape(root))

    def assertRefused(self, res, reason):
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("refused: " + reason, res.stderr)
        self.assertNotIn("verified: the PDH", res.stdout)


class RealChainTest(ChainTestBase):

    def test_builtin_roots_are_the_data(self):
        """The roots the tool carries are AMD's files in tests/sevchaindata,
        and the README's digests are theirs."""
        res = subprocess.run([TOOL, "roots"], capture_output=True, text=True,
                             check=True)
        lines = res.stdout.split("\n")
        with open(os.path.join(DATA, "README.rst")) as f:
            readme = f.read()
        for gen in sevcerts.GENERATIONS:
            for what in ("ark", "ask"):
                data = root_file(gen, what)
                digest = hashlib.sha256(data).hexdigest()
                self.assertIn("%s %s %d %s" % (gen, what.upper(), len(data),
                                                digest), lines)
                self.assertIn("%s  roots/%s/%s.b64" % (digest, gen, what),
                              readme)
                parsed = sevcerts.parse_amd_cert(data)
                self.assertEqual(parsed["usage"], 0x0 if what == "ark" else 0x13)
                self.assertEqual(parsed["bits"], 2048 if gen == "naples" else 4096)
            # the model: each ARK self-signed, each ASK signed by its ARK
            ark = root_file(gen, "ark")
            self.assertTrue(sevcerts.verify_amd_cert(ark, ark), gen)
            self.assertTrue(sevcerts.verify_amd_cert(root_file(gen, "ask"), ark),
                            gen)

    def test_real_chains_verify(self):
        for name, gen in CHAINS.items():
            with self.subTest(chain=name):
                c = {w: real(name, w) for w in ("pdh", "pek", "oca", "cek")}
                # the independent model agrees
                self.assertEqual(sevcerts.verify_chain(
                    root_file(gen, "ark"), root_file(gen, "ask"),
                    c["cek"], c["oca"], c["pek"], c["pdh"]), [])
                chip = sevcerts.chip_id(c["cek"])
                for cert_chain in (True, False):
                    # all of AMD's roots (the default), then its generation
                    res = self.run_tool(*self.chain_args(
                        c["pdh"], c["pek"], c["oca"], c["cek"], cert_chain))
                    self.assertVerified(res, gen)
                    self.assertIn("chip %s" % chip, res.stdout)
                    for line in ("ARK (%s): key id" % gen,
                                 "ASK (%s): key id" % gen,
                                 "CEK: signed by the ASK (%s): verified" % gen,
                                 "OCA: self-signed: verified",
                                 "PEK: signed by the CEK: verified",
                                 "PEK: signed by the OCA: verified",
                                 "PDH: signed by the PEK: verified"):
                        self.assertIn(line, res.stdout)
                    res = self.run_tool("--roots", gen, *self.chain_args(
                        c["pdh"], c["pek"], c["oca"], c["cek"], cert_chain))
                    self.assertVerified(res, gen)
                # the allowlist of chips holds this chip
                res = self.run_tool("--allow-chips", "%s,%s" % ("00" * 32, chip),
                                    *self.chain_args(c["pdh"], c["pek"],
                                                     c["oca"], c["cek"]))
                self.assertVerified(res, gen)
                self.assertIn("policy: the chip is allowed", res.stdout)
                # AMD's root files given as the owner's own root
                res = self.run_tool(*(self.chain_args(c["pdh"], c["pek"],
                                                      c["oca"], c["cek"]) +
                                      self.root_args(root_file(gen, "ark"),
                                                     root_file(gen, "ask"))))
                self.assertVerified(res)

    def test_other_generation_refused(self):
        c = {w: real("milan", w) for w in ("pdh", "pek", "oca", "cek")}
        res = self.run_tool("--roots", "rome,genoa,turin", *self.chain_args(
            c["pdh"], c["pek"], c["oca"], c["cek"]))
        self.assertRefused(res, "CEK: signature by the ASK does not verify "
                                "(allowed roots: rome, genoa, turin)")

    def broken_cases(self, gen, c, ark, ask):
        """(what, the certificates with one byte changed, the refusal)."""
        ark_sig = sevcerts.parse_amd_cert(ark)["sig_offset"]
        ask_sig = sevcerts.parse_amd_cert(ask)["sig_offset"]
        cek_sig = sig_offset(c["cek"], sevspec.USAGE_ASK)
        oca_sig = sig_offset(c["oca"], sevspec.USAGE_OCA)
        pek_cek_sig = sig_offset(c["pek"], sevspec.USAGE_CEK)
        pek_oca_sig = sig_offset(c["pek"], sevspec.USAGE_OCA)
        pdh_sig = sig_offset(c["pdh"], sevspec.USAGE_PEK)
        flip = sevcerts.flip
        cases = [
            ("ARK self-signature", {"ark": flip(ark, ark_sig)},
             "ARK (%s): self-signature does not verify"),
            ("ARK signed body", {"ark": flip(ark, AMD_BODY_BYTE)},
             "ARK (%s): self-signature does not verify"),
            ("ASK signature by the ARK", {"ask": flip(ask, ask_sig + 7)},
             "ASK (%s): signature by the ARK does not verify"),
            ("ASK signed body", {"ask": flip(ask, AMD_BODY_BYTE)},
             "ASK (%s): signature by the ARK does not verify"),
            ("CEK signature by the ASK", {"cek": flip(c["cek"], cek_sig)},
             "CEK: signature by the ASK does not verify"),
            ("CEK signed body", {"cek": flip(c["cek"], SEV_BODY_BYTE)},
             "CEK: signature by the ASK does not verify"),
            ("OCA self-signature", {"oca": flip(c["oca"], oca_sig)},
             "OCA: self-signature does not verify"),
            ("OCA signed body", {"oca": flip(c["oca"], SEV_BODY_BYTE)},
             "OCA: self-signature does not verify"),
            ("PEK signature by the CEK", {"pek": flip(c["pek"], pek_cek_sig)},
             "PEK: signature by the CEK does not verify"),
            ("PEK signature by the OCA", {"pek": flip(c["pek"], pek_oca_sig + 80)},
             "PEK: signature by the OCA does not verify"),
            ("PEK signed body", {"pek": flip(c["pek"], SEV_BODY_BYTE)},
             "PEK: signature by the CEK does not verify"),
            ("PDH signature by the PEK", {"pdh": flip(c["pdh"], pdh_sig)},
             "PDH: signature by the PEK does not verify"),
            ("PDH signed body", {"pdh": flip(c["pdh"], SEV_BODY_BYTE)},
             "PDH: signature by the PEK does not verify"),
        ]
        return [(what, changed, reason % gen if "%s" in reason else reason)
                for what, changed, reason in cases]

    def check_broken(self, gen, c, ark, ask):
        for what, changed, reason in self.broken_cases(gen, c, ark, ask):
            with self.subTest(chain=gen, broken=what):
                certs = dict(c, ark=ark, ask=ask)
                certs.update(changed)
                # the model sees the change too
                self.assertNotEqual(sevcerts.verify_chain(
                    certs["ark"], certs["ask"], certs["cek"], certs["oca"],
                    certs["pek"], certs["pdh"]), [])
                res = self.run_tool(*(self.chain_args(
                    certs["pdh"], certs["pek"], certs["oca"], certs["cek"]) +
                    self.root_args(certs["ark"], certs["ask"])))
                self.assertRefused(res, reason.replace(
                    "(%s)" % gen, "(%s)" % os.path.join(self.dir, "ark")))

    def test_real_chains_one_byte_changed(self):
        for name, gen in CHAINS.items():
            c = {w: real(name, w) for w in ("pdh", "pek", "oca", "cek")}
            self.check_broken(gen, c, root_file(gen, "ark"),
                              root_file(gen, "ask"))

    def test_real_chain_builtin_root_one_byte_changed(self):
        """The same with the built-in roots: the platform's certificates
        changed, AMD's root as the tool carries it."""
        c = {w: real("milan", w) for w in ("pdh", "pek", "oca", "cek")}
        for what, changed, reason in self.broken_cases(
                "milan", c, root_file("milan", "ark"), root_file("milan", "ask")):
            if "ark" in changed or "ask" in changed:
                continue
            with self.subTest(broken=what):
                certs = dict(c)
                certs.update(changed)
                res = self.run_tool("--roots", "milan", *self.chain_args(
                    certs["pdh"], certs["pek"], certs["oca"], certs["cek"]))
                self.assertRefused(res, reason.replace(
                    "does not verify", "does not verify (allowed roots: milan)")
                    if reason.startswith("CEK") else reason)

    def test_kds_cek_must_be_the_platform_key(self):
        """--cek (the CEK from AMD's key distribution service) replaces the
        cert-chain's CEK only if it is the same key."""
        c = {w: real("rome", w) for w in ("pdh", "pek", "oca", "cek")}
        other = real("milan", "cek")
        args = self.chain_args(c["pdh"], c["pek"], c["oca"], c["cek"])
        res = self.run_tool(*(args + ["--cek", self.write("kds", c["cek"])]))
        self.assertVerified(res, "rome")
        args = self.chain_args(c["pdh"], c["pek"], c["oca"], other)
        res = self.run_tool(*(args + ["--cek", self.write("kds", c["cek"])]))
        self.assertRefused(res, "CEK: the CEK given with --cek is not the key "
                                "of the cert-chain's CEK")


class LabChainTest(ChainTestBase):

    @classmethod
    def setUpClass(cls):
        cls.root = sevcerts.Root()
        cls.platform = sevcerts.Platform(cls.root)
        cls.other = sevcerts.Platform(cls.root)

    def verify(self, p=None, pdh=None, pek=None, oca=None, cek=None,
               ark=None, ask=None, extra=()):
        p = p or self.platform
        args = self.chain_args(pdh or p.pdh, pek or p.pek, oca or p.oca,
                               cek or p.cek)
        args += self.root_args(ark or self.root.ark, ask or self.root.ask)
        return self.run_tool(*(args + list(extra)))

    def test_lab_chain(self):
        self.assertEqual(sevcerts.verify_chain(
            self.root.ark, self.root.ask, self.platform.cek, self.platform.oca,
            self.platform.pek, self.platform.pdh), [])
        self.assertVerified(self.verify(), os.path.join(self.dir, "ark"))
        # not under AMD's roots
        p = self.platform
        res = self.run_tool(*self.chain_args(p.pdh, p.pek, p.oca, p.cek))
        self.assertRefused(res, "CEK: signature by the ASK does not verify "
                                "(allowed roots: naples, rome, milan, genoa, "
                                "turin)")

    def test_lab_chain_2048(self):
        """A root of 2048-bit keys, as Naples': RSASSA-PSS with SHA-256."""
        root = sevcerts.Root(bits=2048)
        p = sevcerts.Platform(root)
        self.assertEqual(struct.unpack_from("<I", p.cek, 0x418)[0],
                         sevcerts.ALGO_RSA_SHA256)
        res = self.verify(p, ark=root.ark, ask=root.ask)
        self.assertVerified(res)
        self.assertIn("RSA-2048, RSASSA-PSS SHA-256", res.stdout)
        # the signature algorithm of the CEK's slot must match the ASK's key
        cek = bytearray(p.cek)
        struct.pack_into("<I", cek, 0x418, sevcerts.ALGO_RSA_SHA384)
        res = self.verify(p, cek=bytes(cek), ark=root.ark, ask=root.ask)
        self.assertRefused(res, "CEK: signature by the ASK does not verify")

    def test_wrong_usage(self):
        for name, usage, reason in (
                ("pdh", 0x1002, "PDH: key usage 0x1002 is not PDH (0x1003)"),
                ("pek", 0x1001, "PEK: key usage 0x1001 is not PEK (0x1002)"),
                ("oca", 0x1002, "OCA: key usage 0x1002 is not OCA (0x1001)"),
                ("cek", 0x1002, "CEK: key usage 0x1002 is not CEK (0x1004)")):
            with self.subTest(cert=name):
                p = sevcerts.Platform(self.root, usages={name: usage})
                self.assertRefused(self.verify(p), reason)
        # a PEK given as the PDH, the CEK as the OCA
        p = self.platform
        self.assertRefused(self.verify(pdh=p.pek),
                           "PDH: key usage 0x1002 is not PDH (0x1003)")
        self.assertRefused(self.verify(oca=p.cek),
                           "OCA: key usage 0x1004 is not OCA (0x1001)")
        # the ARK and the ASK: usages 0x0 and 0x13, swapped
        ark = self.root.ark
        self.assertRefused(self.verify(ark=self.root.ask, ask=ark),
                           "ARK (%s): key usage 0x13 is not ARK (0x0)"
                           % os.path.join(self.dir, "ark"))
        ask = sevcerts.pack_amd_cert(
            self.root.ask_key.public_key(), 0x0, b"\x01" * 16,
            sevcerts.parse_amd_cert(ark)["key_id"], self.root.ark_key)
        self.assertRefused(self.verify(ask=ask),
                           "ASK (%s): key usage 0x0 is not ASK (0x13)"
                           % os.path.join(self.dir, "ark"))

    def test_wrong_version_and_format(self):
        p = self.platform
        pdh = bytearray(p.pdh)
        struct.pack_into("<I", pdh, 0, 2)
        self.assertRefused(self.verify(pdh=bytes(pdh)),
                           "PDH: version 2 is not 1")
        self.assertRefused(self.verify(pek=p.pek[:-1]),
                           "cert-chain: 6251 bytes, not the 6252 of a PEK, "
                           "an OCA and a CEK")
        oca = bytearray(p.oca)
        struct.pack_into("<I", oca, 0x10, 1)     # P-256
        self.assertRefused(self.verify(oca=bytes(oca)),
                           "OCA: curve 1 is not P-384 (2)")
        pek = bytearray(p.pek)
        struct.pack_into("<I", pek, 0xC, sevspec.ALGO_ECDH_SHA256)
        self.assertRefused(self.verify(pek=bytes(pek)),
                           "PEK: algorithm 0x3 is not ECDSA (0x2 or 0x102)")
        ark = bytearray(self.root.ark)
        struct.pack_into("<I", ark, 0, 2)
        self.assertRefused(self.verify(ark=bytes(ark)),
                           "ARK (%s): version 2 is not 1"
                           % os.path.join(self.dir, "ark"))
        self.assertRefused(self.verify(ask=self.root.ask[:-1]),
                           "ASK (%s): 1599 bytes, its key sizes give 1600"
                           % os.path.join(self.dir, "ark"))

    def test_key_ids(self):
        """The ARK's certifying id is its key id; the ASK's is the ARK's."""
        ark_id = sevcerts.parse_amd_cert(self.root.ark)["key_id"]
        ark = sevcerts.pack_amd_cert(self.root.ark_key.public_key(), 0x0,
                                     ark_id, b"\x02" * 16, self.root.ark_key)
        self.assertRefused(self.verify(ark=ark),
                           "ARK (%s): not self-signed (its certifying id is "
                           "not its key id %s)"
                           % (os.path.join(self.dir, "ark"), ark_id.hex()))
        ask = sevcerts.pack_amd_cert(self.root.ask_key.public_key(), 0x13,
                                     b"\x01" * 16, b"\x02" * 16,
                                     self.root.ark_key)
        self.assertRefused(self.verify(ask=ask),
                           "ASK (%s): not signed by the ARK (its certifying "
                           "id is not the ARK's key id %s)"
                           % (os.path.join(self.dir, "ark"), ark_id.hex()))

    def test_missing_or_wrong_signer(self):
        p = self.platform
        # the attack of issue 20: the host's own P-384 key as the PDH
        rogue = sevspec.generate_key()
        pdh = sevspec.pack_cert(rogue.public_key(), api_major=1, api_minor=55)
        self.assertRefused(self.verify(pdh=pdh),
                           "PDH: not signed by the PEK (no signature of "
                           "usage PEK)")
        pdh = sevcerts.sign_ecdsa(pdh, 0, sevspec.USAGE_PEK, rogue)
        self.assertRefused(self.verify(pdh=pdh),
                           "PDH: signature by the PEK does not verify")
        # another platform's PDH (signed by its PEK), this platform's PEK
        self.assertRefused(self.verify(pdh=self.other.pdh),
                           "PDH: signature by the PEK does not verify")
        # another platform's PEK and PDH with this platform's genuine CEK
        self.assertRefused(self.verify(pdh=self.other.pdh, pek=self.other.pek,
                                       oca=self.other.oca),
                           "PEK: signature by the CEK does not verify")
        self.assertRefused(self.verify(oca=self.other.oca),
                           "PEK: signature by the OCA does not verify")
        # a PEK that only the OCA signed
        pek = bytearray(p.pek)
        struct.pack_into("<II", pek, 0x61C, sevcerts.USAGE_INVALID,
                         sevcerts.ALGO_INVALID)
        self.assertRefused(self.verify(pek=bytes(pek)),
                           "PEK: not signed by the CEK (no signature of "
                           "usage CEK)")
        # a PEK that only the CEK signed
        pek = bytearray(p.pek)
        struct.pack_into("<II", pek, 0x414, sevcerts.USAGE_INVALID,
                         sevcerts.ALGO_INVALID)
        self.assertRefused(self.verify(pek=bytes(pek)),
                           "PEK: not signed by the OCA (no signature of "
                           "usage OCA)")
        # a CEK without the ASK's signature (as the firmware exports it)
        cek = bytearray(p.cek)
        struct.pack_into("<II", cek, 0x414, sevcerts.USAGE_INVALID,
                         sevcerts.ALGO_INVALID)
        self.assertRefused(self.verify(cek=bytes(cek)),
                           "CEK: not signed by the ASK (no signature of "
                           "usage ASK)")
        # the PEK's signature by the CEK claiming SHA-384
        pek = bytearray(p.pek)
        struct.pack_into("<I", pek, 0x620, sevcerts.ALGO_ECDSA_SHA384)
        self.assertRefused(self.verify(pek=bytes(pek)),
                           "PEK: the signature of usage CEK has algorithm "
                           "0x102, not the CEK's 0x2")

    def test_chip_allowlist(self):
        chip = self.platform.chip_id()
        other = self.other.chip_id()
        res = self.verify(extra=["--allow-chips", chip])
        self.assertVerified(res)
        self.assertIn("chip %s" % chip, res.stdout)
        res = self.verify(extra=["--allow-chips", other])
        self.assertRefused(res, "CEK: chip %s is not an allowed chip" % chip)
        res = self.verify(extra=["--allow-chips", "xyz"])
        self.assertEqual(res.returncode, 2, res.stderr)

    def test_min_api(self):
        self.assertVerified(self.verify(extra=["--min-api", "1.55"]))
        self.assertVerified(self.verify(extra=["--min-api", "0.99"]))
        self.assertRefused(self.verify(extra=["--min-api", "1.56"]),
                           "PEK: API version 1.55 is below the minimum 1.56")
        self.assertRefused(self.verify(extra=["--min-api", "2.0"]),
                           "PEK: API version 1.55 is below the minimum 2.0")
        # a PDH older than its PEK
        p = self.platform
        pdh = sevspec.pack_cert(p.pdh_key.public_key(), api_major=1,
                                api_minor=40)
        pdh = sevcerts.sign_ecdsa(pdh, 0, sevspec.USAGE_PEK, p.pek_key)
        self.assertVerified(self.verify(pdh=pdh, extra=["--min-api", "1.30"]))
        self.assertRefused(self.verify(pdh=pdh, extra=["--min-api", "1.50"]),
                           "PDH: API version 1.40 is below the minimum 1.50")
        res = self.verify(extra=["--min-api", "1"])
        self.assertEqual(res.returncode, 2, res.stderr)

    def test_min_build(self):
        self.assertVerified(self.verify(extra=["--min-build", "10",
                                               "--build-id", "10"]))
        self.assertRefused(self.verify(extra=["--min-build", "10",
                                              "--build-id", "9"]),
                           "firmware build: 9 is below the minimum 10")
        self.assertRefused(self.verify(extra=["--min-build", "10"]),
                           "firmware build: not given, and the minimum is 10")

    def test_owner_conf(self):
        """The policy from owner.conf; its agent keys are not needed here."""
        p = self.platform
        conf_dir = os.path.join(self.dir, "owner")
        os.mkdir(conf_dir)
        with open(os.path.join(conf_dir, "ark"), "wb") as f:
            f.write(self.root.ark)
        with open(os.path.join(conf_dir, "ask"), "wb") as f:
            f.write(base64.b64encode(self.root.ask))

        def conf(text):
            with open(os.path.join(conf_dir, "owner.conf"), "w") as f:
                f.write(text)
            return self.run_tool("--owner-dir", conf_dir, "--build-id", "7",
                                 *self.chain_args(p.pdh, p.pek, p.oca, p.cek))

        good = ("roots=milan\nark=ark\nask=ask\nallow-chips=%s\n"
                "min-api=1.55\nmin-build=7\n" % p.chip_id())
        res = conf(good)
        self.assertVerified(res, os.path.join(conf_dir, "ark"))
        self.assertIn("policy: the chip is allowed", res.stdout)
        self.assertIn("policy: API version at least 1.55", res.stdout)
        self.assertIn("policy: firmware build 7, at least 7", res.stdout)
        self.assertRefused(conf(good.replace("min-build=7", "min-build=8")),
                           "firmware build: 7 is below the minimum 8")
        self.assertRefused(conf(good.replace("min-api=1.55", "min-api=1.60")),
                           "PEK: API version 1.55 is below the minimum 1.60")
        self.assertRefused(conf(good.replace(p.chip_id(),
                                             self.other.chip_id())),
                           "CEK: chip %s is not an allowed chip" % p.chip_id())
        self.assertRefused(conf("roots=milan,genoa\n"),
                           "CEK: signature by the ASK does not verify "
                           "(allowed roots: milan, genoa)")
        # errors: exit status 2
        for bad in ("roots=zen9\n", "ark=ark\n", "min-api=x\n",
                    "allow-chips=12\n", "roots=milan\nroots=rome\n"):
            with self.subTest(conf=bad):
                res = conf(bad)
                self.assertEqual(res.returncode, 2, res.stdout + res.stderr)
        # the policy is owner.conf's: no policy options beside it
        with open(os.path.join(conf_dir, "owner.conf"), "w") as f:
            f.write(good)
        res = self.run_tool("--owner-dir", conf_dir, "--min-api", "1.0",
                            *self.chain_args(p.pdh, p.pek, p.oca, p.cek))
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("do not give --min-api with --owner-dir", res.stderr)

    def test_usage_errors(self):
        p = self.platform
        for args in (["--pdh", self.write("pdh", p.pdh)],
                     ["--pdh", self.write("pdh", p.pdh), "--pek",
                      self.write("pek", p.pek)],
                     ["--pdh", "/nonexistent", "--cert-chain", "/nonexistent"],
                     ["--pdh", self.write("pdh", p.pdh), "--roots", "zen9",
                      "--cert-chain", self.write("c", p.cert_chain())]):
            with self.subTest(args=args):
                res = self.run_tool(*args)
                self.assertEqual(res.returncode, 2, res.stdout + res.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: %s BUILD_DIR [tests...]" % sys.argv[0])
    BUILD = sys.argv[1]
    TOOL = os.path.join(BUILD, "subprojects", "libvirt", "tools",
                        "virt-qemu-sev-owner")
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)
