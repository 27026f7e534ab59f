#!/usr/bin/python3
#
# checks/sevspec.py against itself and, where they overlap, against libvirt's
# own tools/virt-qemu-sev-validate (Python, python3-cryptography): the
# kernel hashes table, the launch measurement, the secret table and the
# LAUNCH_SECRET packet.  The session wrapping has no independent reference
# in libvirt; it is checked here for internal consistency (wrap/unwrap, the
# MAC checks bite) and against the tools in test_sev_owner_session.py and
# test_standin_psp.py.
#
# Usage: test_sevspec.py SOURCE_ROOT [unittest arguments]

import base64
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import sevspec  # noqa: E402

VALIDATE = None


def load_validate(path):
    """libvirt's virt-qemu-sev-validate as a module; the libvirt and lxml
    modules it imports are not used by the classes used here."""
    for name in ("libvirt", "lxml", "lxml.etree"):
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                sys.modules[name] = types.ModuleType(name)
    if not hasattr(sys.modules["lxml"], "etree"):
        sys.modules["lxml"].etree = sys.modules["lxml.etree"]
    loader = importlib.machinery.SourceFileLoader("virt_qemu_sev_validate", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class SevSpecTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lvm-sevspec-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def file(self, name, data):
        p = os.path.join(self.dir, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def test_cert_roundtrip(self):
        key = sevspec.generate_key()
        cert = sevspec.pack_cert(key.public_key())
        self.assertEqual(len(cert), 0x824)
        c = sevspec.parse_cert(cert)
        self.assertEqual(c["pubkey"].public_numbers(), key.public_key().public_numbers())
        self.assertEqual((c["usage"], c["algo"], c["sig1_usage"], c["sig2_usage"]),
                         (0x1003, 0x3, 0x1000, 0x1000))
        # little-endian coordinates at 0x14 and 0x5C
        x = key.public_key().public_numbers().x
        self.assertEqual(cert[0x14:0x14 + 48], x.to_bytes(48, "little"))
        self.assertEqual(cert[0x14 + 48:0x5C], bytes(24))

    def test_session_roundtrip(self):
        pdh, odh = sevspec.generate_key(), sevspec.generate_key()
        tek, tik = os.urandom(16), os.urandom(16)
        cert, ses = sevspec.make_session(pdh.public_key(), odh, 5, os.urandom(16),
                                         tek, tik, os.urandom(16))
        self.assertEqual(sevspec.unwrap_session(pdh, cert, ses, 5), (tek, tik))
        # Z is symmetric
        self.assertEqual(sevspec.ecdh_z(pdh, odh.public_key()),
                         sevspec.ecdh_z(odh, pdh.public_key()))
        with self.assertRaises(sevspec.SevError):
            sevspec.unwrap_session(sevspec.generate_key(), cert, ses, 5)
        with self.assertRaises(sevspec.SevError):
            sevspec.unwrap_session(pdh, cert, ses, 1)
        bad = bytearray(ses)
        bad[20] ^= 1
        with self.assertRaises(sevspec.SevError):
            sevspec.unwrap_session(pdh, cert, bytes(bad), 5)

    def test_measurement_as_validate(self):
        """The measurement with and without kernel hashes, as
        virt-qemu-sev-validate computes it."""
        fw = os.urandom(65536 + 3)
        kernel, initrd = os.urandom(5000), os.urandom(700)
        tik = os.urandom(16)
        for with_kernel in (False, True):
            with self.subTest(kernel=with_kernel):
                mnonce = os.urandom(16)
                digest = sevspec.launch_digest(fw, kernel if with_kernel else None,
                                               initrd, "console=ttyS0")
                blob = sevspec.measure_blob(tik, 1, 55, 24, 0x1, digest, mnonce)
                cvm = VALIDATE.OfflineConfidentialVM(measurement=base64.b64encode(blob),
                                              api_major=1, api_minor=55,
                                              build_id=24, policy=1)
                cvm.firmware = fw
                cvm.tik = tik
                if with_kernel:
                    cvm.kernel_table.load_kernel(self.file("k", kernel))
                    cvm.kernel_table.load_initrd(self.file("i", initrd))
                    cvm.kernel_table.load_cmdline("console=ttyS0")
                reported, computed = cvm.get_measurements()
                self.assertEqual(reported, computed)
                self.assertTrue(sevspec.verify_measurement(tik, 1, 55, 24, 1, digest,
                                                           blob))
                self.assertFalse(sevspec.verify_measurement(tik, 1, 55, 24, 3, digest,
                                                            blob))

    def test_secret_as_validate(self):
        """A secret packet built by virt-qemu-sev-validate opens with
        sevspec to sevspec's own secret table."""
        tek, tik, key = os.urandom(16), os.urandom(16), os.urandom(32)
        fw = os.urandom(4096)
        blob = sevspec.measure_blob(tik, 1, 55, 24, 1, sevspec.launch_digest(fw),
                                    os.urandom(16))
        cvm = VALIDATE.OfflineConfidentialVM(measurement=base64.b64encode(blob),
                                      api_major=1, api_minor=55, build_id=24, policy=1)
        cvm.firmware, cvm.tik, cvm.tek = fw, tik, tek
        cvm.secrets_table.load_secret(str(sevspec.TRANSPORT_KEY_GUID),
                                      self.file("tk", key))
        cvm.secrets_table.load_secret(str(sevspec.KEY_ID_GUID),
                                      self.file("id", b"key.1"))
        header64, secret64 = cvm.build_secrets()
        table = sevspec.open_secret(tek, tik, blob, base64.b64decode(header64),
                                    base64.b64decode(secret64))
        self.assertEqual(table, sevspec.project_secret_table(key, "key.1"))
        self.assertEqual(sevspec.project_secret_entries(table), (key, "key.1"))
        with self.assertRaises(sevspec.SevError):
            sevspec.open_secret(tek, os.urandom(16), blob, base64.b64decode(header64),
                                base64.b64decode(secret64))

    def test_secret_table_parse(self):
        t = sevspec.project_secret_table(bytes(32), "a")
        self.assertEqual(len(t) % 16, 0)
        bad_entry_len = t[:36] + (19).to_bytes(4, "little") + t[40:]
        for bad in (t[:-17], b"\x01" + t[1:], t[:16] + b"\xff" * 4 + t[20:],
                    bad_entry_len, t[:-1] + b"\x01"):
            with self.assertRaises(sevspec.SevError):
                sevspec.parse_secret_table(bad)
        with self.assertRaises(sevspec.SevError):
            sevspec.project_secret_table(bytes(32), "bad id")


def main():
    global VALIDATE
    src = os.path.realpath(sys.argv[1])
    VALIDATE = load_validate(os.path.join(src, "subprojects", "libvirt", "tools",
                                          "virt-qemu-sev-validate"))
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2, exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
