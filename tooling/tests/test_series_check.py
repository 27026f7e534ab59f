#!/usr/bin/python3
# Tests of tooling/series_check.py's pure parts: the build options it takes
# from the top-level meson.build, and which test programs a patch touches.

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import series_check  # noqa: E402


class OptionsTest(unittest.TestCase):

    def test_options_of_this_repo(self):
        opts = series_check.meson_options(
            os.path.join(os.path.dirname(os.path.dirname(HERE)), "meson.build"))
        self.assertIn("driver_qemu=enabled", opts)
        self.assertIn("tests=enabled", opts)
        self.assertIn("werror=true", opts)
        self.assertNotIn("version", " ".join(opts))

    def test_no_subproject(self):
        with tempfile.NamedTemporaryFile("w", suffix=".build") as f:
            f.write("project('x', 'c')\n")
            f.flush()
            with self.assertRaises(series_check.treelib.Failure):
                series_check.meson_options(f.name)


class TestsForTest(unittest.TestCase):

    KNOWN = {"qemuxmlconftest", "domaincapstest", "commandtest", "virschematest"}

    def test_source_and_data(self):
        self.assertEqual(series_check.tests_for(
            ["src/qemu/qemu_command.c",
             "tests/qemuxmlconfdata/mirror.x86_64-latest.args",
             "tests/commandtest.c",
             "tests/domaincapsdata/qemu_10.0.0.x86_64.xml",
             "tests/qemuxmlconfdata/mirror.xml"], self.KNOWN),
            ["qemuxmlconftest", "commandtest", "domaincapstest"])

    def test_unknown_and_non_tests(self):
        self.assertEqual(series_check.tests_for(
            ["tests/meson.build", "tests/nosuchtest.c", "tests/sevchaindata/x.b64",
             "docs/kbase/x.rst", "tests/testutils.c"], self.KNOWN), [])


if __name__ == "__main__":
    unittest.main()
