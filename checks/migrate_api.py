#!/usr/bin/python3
#
# VIR_MIGRATE_CONFIDENTIAL where its users meet it, in the build:
#  - the generated API XML (libvirt-python generates its constants from it)
#    lists the flag with the value of bit 21;
#  - 'virsh migrate --help' offers --confidential.
#
# Usage: migrate_api.py BUILD_DIR

import os
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET

BUILD = None


class MigrateApiTest(unittest.TestCase):

    def test_api_xml(self):
        api = os.path.join(BUILD, "subprojects", "libvirt", "docs",
                           "libvirt-api.xml")
        root = ET.parse(api).getroot()
        flags = {e.get("name"): e for e in root.iter("enum")
                 if e.get("type") == "virDomainMigrateFlags"}
        self.assertIn("VIR_MIGRATE_CONFIDENTIAL", flags)
        flag = flags["VIR_MIGRATE_CONFIDENTIAL"]
        self.assertEqual(flag.get("value"), str(1 << 21))
        # no other migration flag uses that bit
        others = [n for n, e in flags.items()
                  if n != "VIR_MIGRATE_CONFIDENTIAL" and
                  int(e.get("value")) & (1 << 21)]
        self.assertEqual(others, [])
        self.assertIn("SEV", flag.get("info"))

    def test_virsh_help(self):
        virsh = os.path.join(BUILD, "subprojects", "libvirt", "tools", "virsh")
        res = subprocess.run([virsh, "migrate", "--help"], capture_output=True,
                             text=True, env=dict(os.environ, LC_ALL="C"))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("[--confidential]", res.stdout)
        self.assertRegex(res.stdout, r"--confidential\s+migrate an SEV guest")


def main():
    global BUILD
    BUILD = os.path.realpath(sys.argv[1])
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(MigrateApiTest)
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
