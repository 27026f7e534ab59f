#!/usr/bin/python3
#
# VIR_MIGRATE_CONFIDENTIAL and the API of mirror VMs where their users meet
# them, in the build:
#  - the generated API XML (libvirt-python generates its constants from it)
#    lists the flag with the value of bit 21, virDomainPinMirrorVcpu, the
#    migration-helper event, the mirror statistics group and the typed
#    parameter names, each with its "Since" version;
#  - 'virsh migrate --help' offers --confidential, 'virsh help mirror' the
#    mirror VM commands.
#
# Usage: migrate_api.py BUILD_DIR

import os
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET

BUILD = None
# the release the series targets: the next one after its base, 11.3.0
# (README.md, "The base")
NEXT = "11.4.0"


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

    def test_api_xml_mirror(self):
        """The public API of mirror VMs, with its docs and "Since" tags, in
        the API XML that language bindings are generated from."""
        api = os.path.join(BUILD, "subprojects", "libvirt", "docs",
                           "libvirt-api.xml")
        root = ET.parse(api).getroot()
        functions = {e.get("name"): e for e in root.iter("function")}
        pin = functions.get("virDomainPinMirrorVcpu")
        self.assertIsNotNone(pin)
        self.assertEqual(pin.get("version"), NEXT)
        self.assertEqual([a.get("name") for a in pin.iter("arg")],
                         ["domain", "vcpu", "cpumap", "maplen", "flags"])
        enums = {e.get("name"): e for e in root.iter("enum")}
        self.assertEqual(enums["VIR_DOMAIN_EVENT_ID_MIGRATION_HELPER"].get("value"), "28")
        self.assertEqual(enums["VIR_DOMAIN_STATS_MIRROR"].get("value"), str(1 << 11))
        macros = {e.get("name"): e for e in root.iter("macro")}
        for name in ("VIR_DOMAIN_MIGRATION_HELPER_STATUS",
                     "VIR_DOMAIN_MIGRATION_HELPER_TRANSPORT_KEY",
                     "VIR_DOMAIN_MIGRATION_HELPER_ERROR",
                     "VIR_DOMAIN_STATS_MIRROR_COUNT",
                     "VIR_DOMAIN_MIGRATION_HELPER_TRANSPORT_KEY_ID",
                     "VIR_DOMAIN_JOB_CONFIDENTIAL",
                     "VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE",
                     "VIR_DOMAIN_JOB_CONFIDENTIAL_ATTESTATION_TIME",
                     "VIR_DOMAIN_JOB_CONFIDENTIAL_AGENT_TIME"):
            self.assertIn(name, macros)
            self.assertEqual(macros[name].get("version"), NEXT, name)
        callbacks = {e.get("name"): e for e in root.iter("functype")}
        callback = callbacks.get("virConnectDomainEventMigrationHelperCallback")
        self.assertIsNotNone(callback)
        self.assertEqual(callback.get("version"), NEXT)

    def test_api_xml_mirror_getter(self):
        """virDomainGetMirrorVcpuInfo, the tunable event's parameter, the
        helper's keys of the statistics group (each under the group's
        prefix) and the job's phases as an enum, each since 11.4.0."""
        api = os.path.join(BUILD, "subprojects", "libvirt", "docs",
                           "libvirt-api.xml")
        root = ET.parse(api).getroot()
        functions = {e.get("name"): e for e in root.iter("function")}
        getter = functions.get("virDomainGetMirrorVcpuInfo")
        self.assertIsNotNone(getter)
        self.assertEqual([a.get("name") for a in getter.iter("arg")],
                         ["domain", "info", "flags"])
        for name in ("virDomainGetMirrorVcpuInfo", "virDomainMirrorVcpuInfoFree"):
            self.assertEqual(functions[name].get("version"), "11.4.0", name)
        structs = {e.get("name"): e for e in root.iter("struct")}
        self.assertEqual([f.get("name") for f in
                          structs["virDomainMirrorVcpuInfo"].iter("field")],
                         ["vcpu", "cpumap", "cpumaplen"])
        macros = {e.get("name"): e for e in root.iter("macro")}
        self.assertEqual(macros["VIR_DOMAIN_TUNABLE_CPU_MIRRORPIN"].get("string"),
                         "cputune.mirrorpin%u")
        helper = [n for n in macros if n.startswith("VIR_DOMAIN_STATS_MIRROR_HELPER_")]
        self.assertEqual(sorted(helper),
                         ["VIR_DOMAIN_STATS_MIRROR_HELPER_ERROR",
                          "VIR_DOMAIN_STATS_MIRROR_HELPER_STATUS",
                          "VIR_DOMAIN_STATS_MIRROR_HELPER_TRANSPORT_KEY",
                          "VIR_DOMAIN_STATS_MIRROR_HELPER_TRANSPORT_KEY_ID"])
        for name in helper + ["VIR_DOMAIN_TUNABLE_CPU_MIRRORPIN"]:
            self.assertEqual(macros[name].get("version"), "11.4.0", name)
        # every full key of the group starts with its prefix
        for name in [n for n in macros if n.startswith("VIR_DOMAIN_STATS_MIRROR_")
                     and "_SUFFIX_" not in n]:
            self.assertTrue(macros[name].get("string").startswith("mirror."), name)
        phases = {e.get("name"): e for e in root.iter("enum")
                  if e.get("type") == "virDomainJobConfidentialPhase"}
        self.assertEqual(sorted(phases, key=lambda n: int(phases[n].get("value"))),
                         ["VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_ATTESTATION",
                          "VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_PROVISIONING",
                          "VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_WAITING_FOR_HELPER",
                          "VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_TRANSPORT_KEY",
                          "VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_LISTENING",
                          "VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE_LAST"])
        for name, enum in phases.items():
            self.assertEqual(enum.get("version"), "11.4.0", name)

    def test_virsh_mirror_commands(self):
        virsh = os.path.join(BUILD, "subprojects", "libvirt", "tools", "virsh")
        res = subprocess.run([virsh, "help", "mirror"], capture_output=True,
                             text=True, env=dict(os.environ, LC_ALL="C"))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("mirror-info", res.stdout)
        self.assertIn("mirror-pin", res.stdout)

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
