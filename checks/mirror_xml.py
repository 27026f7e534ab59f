#!/usr/bin/python3
#
# The <mirror/> element through the programs a user runs, built from the
# assembled tree:
#
#  schema: virt-xml-validate (the installed program) accepts every valid
#          mirror-*.xml document of genericxml2xml{in,out}data/ and rejects
#          every *-invalid.xml one. The built script looks for schemas where
#          'meson install' would put them; the copy run here differs only in
#          pointing at the source tree's schemas.
#  virsh:  'virsh -c test:///default' defines each valid document and dumpxml
#          shows <mirror> back unchanged; define refuses each one that
#          genericxml2xmltest expects to fail, with the message in REFUSED
#          (genericxml2xmltest does not compare messages), and
#          'define --validate' the ones only the schema refuses.
#
# Usage: mirror_xml.py BUILD_DIR {schema|virsh}

import os
import re
import subprocess
import sys
import tempfile
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
SRC = os.path.join(TOP, "subprojects", "libvirt")
BUILD = None

IN_DIR = os.path.join(SRC, "tests", "genericxml2xmlindata")
OUT_DIR = os.path.join(SRC, "tests", "genericxml2xmloutdata")

# what 'virsh define' says for each document it must refuse
REFUSED = {
    "mirror-cpuset-empty": "XML error: Invalid value for attribute 'cpuset' in element 'mirror': '3,^3' selects no host CPU",
    "mirror-cpuset-junk-invalid": "XML error: Invalid value for attribute 'cpuset' in element 'mirror': 'six'",
    "mirror-cpuset-junk-range-invalid": "XML error: Invalid value for attribute 'cpuset' in element 'mirror': '6-'",
    "mirror-cpuset-out-of-range": "XML error: Invalid value for attribute 'cpuset' in element 'mirror': '16384'",
    "mirror-duplicate-invalid": "XML error: only one element 'mirror' is allowed",
    "mirror-no-launch-security": "unsupported configuration: element 'mirror' requires <launchSecurity type='sev'>",
    "mirror-pin-duplicate": "XML error: duplicate mirrorpin for mirror vCPU '0'",
    "mirror-pin-no-mirror": "XML error: element 'mirrorpin' requires mirror vCPUs (element 'mirror')",
    "mirror-pin-out-of-range": "unsupported configuration: mirrorpin for mirror vCPU 2, but the domain has 2 mirror vCPUs",
    "mirror-s390-pv": "unsupported configuration: element 'mirror' requires launchSecurity type 'sev', not 's390-pv'",
    "mirror-sev-es": "unsupported configuration: element 'mirror' is not supported for SEV-ES guests (SEV policy bit 0x4): their register state is in the encrypted VMSA, which the migration helper cannot migrate",
    "mirror-sev-snp": "unsupported configuration: element 'mirror' requires launchSecurity type 'sev', not 'sev-snp'",
    "mirror-vcpus-empty-invalid": "XML error: Invalid value for attribute 'vcpus' in element 'mirror': ''. Expected non-negative integer value",
    "mirror-vcpus-junk-invalid": "XML error: Invalid value for attribute 'vcpus' in element 'mirror': 'two'. Expected non-negative integer value",
    "mirror-vcpus-negative-invalid": "XML error: Invalid value for attribute 'vcpus' in element 'mirror': '-1'. Expected non-negative integer value",
    "mirror-vcpus-overflow-invalid": "XML error: Invalid value for attribute 'vcpus' in element 'mirror': '4294967297'. Expected non-negative integer value",
    "mirror-vcpus-too-many-invalid": "unsupported configuration: attribute 'vcpus' of element 'mirror' must be between 1 and 16, not 17",
    "mirror-vcpus-total-too-many": "unsupported configuration: guest vCPUs (4090) plus mirror vCPUs (attribute 'vcpus' of element 'mirror': 8) exceed the limit of 4096",
    "mirror-vcpus-zero-invalid": "XML error: Invalid value for attribute 'vcpus' in element 'mirror': Zero is not permitted",
}


def documents(directory):
    return sorted(os.path.join(directory, f) for f in os.listdir(directory)
                  if f.startswith("mirror-") and f.endswith(".xml"))


def mirror_line(text):
    found = re.findall(r"^\s*<mirror\b[^>]*/>\s*$", text, re.M)
    return [ln.strip() for ln in found]


class SchemaTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        built = os.path.join(BUILD, "subprojects", "libvirt", "tools",
                             "virt-xml-validate")
        with open(built) as f:
            script = f.read()
        installed = re.search(r'^SCHEMA="(.*)/\$\{TYPE\}\.rng"$', script, re.M)
        if not installed:
            raise AssertionError("cannot find the schema directory in %s" % built)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.validate = os.path.join(cls.tmp.name, "virt-xml-validate")
        with open(cls.validate, "w") as f:
            f.write(script.replace(installed.group(1),
                                   os.path.join(SRC, "src", "conf", "schemas")))
        os.chmod(cls.validate, 0o755)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_dir(self, directory):
        docs = documents(directory)
        self.assertTrue(docs, "no documents in %s" % directory)
        for doc in docs:
            with self.subTest(doc=os.path.basename(doc)):
                res = subprocess.run([self.validate, doc, "domain"],
                                     capture_output=True, text=True)
                if "-invalid." in os.path.basename(doc):
                    self.assertNotEqual(res.returncode, 0,
                                        "schema accepted %s" % doc)
                else:
                    self.assertEqual(res.returncode, 0, res.stderr)
                    self.assertIn("validates", res.stdout + res.stderr)

    def test_inputs(self):
        self.check_dir(IN_DIR)

    def test_outputs(self):
        self.check_dir(OUT_DIR)


class VirshTest(unittest.TestCase):

    def virsh(self, *commands):
        virsh = os.path.join(BUILD, "subprojects", "libvirt", "tools", "virsh")
        # one virsh session: test:///default keeps its state per connection
        return subprocess.run([virsh, "-q", "-c", "test:///default",
                               " ; ".join(commands)],
                              capture_output=True, text=True,
                              env=dict(os.environ, LC_ALL="C"))

    def test_define_dumpxml(self):
        valid = [d for d in documents(IN_DIR)
                 if "-invalid." not in os.path.basename(d) and
                 os.path.basename(d)[:-4] not in REFUSED]
        self.assertGreater(len(valid), 5)
        for doc in valid:
            with self.subTest(doc=os.path.basename(doc)):
                with open(doc) as f:
                    text = f.read()
                outfile = os.path.join(OUT_DIR, os.path.basename(doc))
                expected = outfile if os.path.exists(outfile) else doc
                with open(expected) as f:
                    want = mirror_line(f.read())
                res = self.virsh("define " + doc, "dumpxml sev-guest")
                self.assertEqual(res.returncode, 0, res.stderr)
                self.assertEqual(mirror_line(res.stdout), want)
                if mirror_line(text):
                    self.assertEqual(len(want), 1)

    def test_define_refused(self):
        self.assertGreater(len(REFUSED), 10)
        for name, message in sorted(REFUSED.items()):
            with self.subTest(doc=name):
                res = self.virsh("define " + os.path.join(IN_DIR, name + ".xml"),
                                 "list --all --name")
                self.assertIn(message, res.stderr)
                # nothing half-defined is left behind
                self.assertNotIn("sev-guest", res.stdout)

    def test_define_validate_refused(self):
        # documents only the schema refuses (unknown attributes, child
        # elements): 'define --validate' checks them against it
        schema_only = [d for d in documents(IN_DIR)
                       if "-invalid." in os.path.basename(d) and
                       os.path.basename(d)[:-4] not in REFUSED]
        self.assertGreaterEqual(len(schema_only), 2)
        for doc in schema_only:
            with self.subTest(doc=os.path.basename(doc)):
                res = self.virsh("define --validate " + doc, "list --all --name")
                self.assertIn("failed to validate against schema", res.stderr)
                self.assertNotIn("sev-guest", res.stdout)


def main():
    global BUILD
    BUILD = os.path.realpath(sys.argv[1])
    which = {"schema": SchemaTest, "virsh": VirshTest}[sys.argv[2]]
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(which)
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
