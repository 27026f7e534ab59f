#!/usr/bin/python3
#
# Tests of tooling/tree: fetch refuses a wrong hash and names every source it
# tried, assembly refuses to clobber unexported edits, refresh round-trips an
# edit through patches/, a broken patch is reported and nothing is lost.
#
# Each test works on a scratch copy of the tooling in a temporary git repo,
# never on this checkout's own tree. The round-trip tests need the verified
# libvirt tarball in the cache (tooling/tree fetch puts it there).

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.realpath(__file__))
TOOLING = os.path.dirname(HERE)
REAL_TOP = os.path.dirname(TOOLING)

sys.path.insert(0, TOOLING)
import tree as tree_mod  # noqa: E402


def real_cache():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.environ.get("MIRROR_CACHE") or os.path.join(base, "libvirt-mirror")


def run(cmd, cwd, env=None, check=False):
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if check and res.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (
            cmd, res.returncode, res.stdout, res.stderr))
    return res


class ScratchRepo:
    """A temporary git repo holding a copy of the tooling, so that TOP and
    patches/ of the code under test are the scratch repo's."""

    def __init__(self, test):
        self.dir = tempfile.mkdtemp(prefix="lvm-tooling-test-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        os.makedirs(os.path.join(self.dir, "tooling"))
        shutil.copy(os.path.join(TOOLING, "tree.py"),
                    os.path.join(self.dir, "tooling", "tree.py"))
        self.git("init", "-q")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "scratch")
        self.tree = os.path.join(self.dir, "subprojects", "libvirt")
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("MIRROR_"):
                del self.env[k]
        self.env["MIRROR_CACHE"] = real_cache()
        self.env["MIRROR_SOURCES"] = "cache"

    def git(self, *args, cwd=None):
        return run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid",
                    "-c", "init.defaultBranch=main"] + list(args),
                   cwd or self.dir, check=True)

    def tool(self, *args, env=None):
        return run(["/usr/bin/python3", os.path.join(self.dir, "tooling", "tree.py")]
                   + list(args), self.dir, env=env or self.env)

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def tpath(self, *p):
        return os.path.join(self.tree, *p)


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


class FetchTest(unittest.TestCase):

    def setUp(self):
        self.cache = tempfile.mkdtemp(prefix="lvm-cache-test-")
        self.addCleanup(shutil.rmtree, self.cache, True)
        self.env = dict(os.environ, MIRROR_CACHE=self.cache)

    def fetch(self, **extra):
        env = dict(self.env, **extra)
        return run(["/usr/bin/python3", os.path.join(TOOLING, "tree.py"),
                    "fetch"], TOOLING, env=env)

    def test_hash_mismatch_refused(self):
        bogus = os.path.join(self.cache, tree_mod.TARBALL)
        with open(bogus, "wb") as f:
            f.write(b"not the libvirt release\n")
        res = self.fetch(MIRROR_SOURCES="cache")
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("sha256 mismatch", res.stderr)
        self.assertIn(tree_mod.SHA256, res.stderr)
        self.assertIn("cache:", res.stderr)
        # the wrong file is set aside, never left where it would be trusted
        self.assertFalse(os.path.exists(bogus))
        self.assertTrue(os.path.exists(bogus + ".rejected"))

    def test_no_reachable_source(self):
        start = time.monotonic()
        res = self.fetch(MIRROR_UPSTREAM_URL="http://127.0.0.1:9/libvirt.tar.xz",
                         MIRROR_DEBIAN_URL="http://127.0.0.1:9/debian",
                         MIRROR_DEBIAN_SECURITY_URL="http://127.0.0.1:9/debian-security")
        elapsed = time.monotonic() - start
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        for source in ("cache:", "upstream:", "debian:"):
            self.assertIn(source, res.stderr)
        self.assertIn("not in cache", res.stderr)
        self.assertIn("127.0.0.1:9", res.stderr)
        # fail over in seconds, not minutes (generous bound for a busy box)
        self.assertLess(elapsed, 60)
        self.assertEqual(os.listdir(self.cache), ["apt"])

    def test_cached_good_tarball_used(self):
        good = os.path.join(real_cache(), tree_mod.TARBALL)
        if not os.path.exists(good):
            self.skipTest("no verified tarball in %s" % real_cache())
        os.symlink(good, os.path.join(self.cache, tree_mod.TARBALL))
        res = self.fetch(MIRROR_SOURCES="cache")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.strip(),
                         os.path.join(self.cache, tree_mod.TARBALL))


class TreeTest(unittest.TestCase):

    def setUp(self):
        if not os.path.exists(os.path.join(real_cache(), tree_mod.TARBALL)):
            self.skipTest("no verified tarball in cache: run tooling/tree fetch")
        self.r = ScratchRepo(self)
        res = self.r.tool("assemble")
        self.assertEqual(res.returncode, 0, res.stderr)

    def test_refresh_round_trip(self):
        r = self.r
        virfile = r.tpath("src", "util", "virfile.c")
        append(virfile, "/* round-trip edit one */\n")
        # a new file created inside the assembled tree
        os.makedirs(r.tpath("src", "conf"), exist_ok=True)
        with open(r.tpath("src", "conf", "round_trip_new.c"), "w") as f:
            f.write("/* new */\n")

        # neither the edit nor the new file has a patch yet
        res = r.tool("refresh")
        self.assertEqual(res.returncode, 1)
        self.assertIn("--new", res.stderr)
        self.assertIn("src/util/virfile.c", res.stderr)
        self.assertIn("src/conf/round_trip_new.c", res.stderr)

        res = r.tool("refresh", "--new", "util: round trip test edit")
        self.assertEqual(res.returncode, 0, res.stderr)
        patches = sorted(os.listdir(r.path("patches")))
        self.assertEqual(patches, ["0001-util-round-trip-test-edit.patch"])
        text = read(r.path("patches", patches[0]))
        self.assertIn("+/* round-trip edit one */", text)
        # the new file is in the patch, and nowhere else in this repo
        self.assertIn("+++ b/src/conf/round_trip_new.c\n@@ -0,0 +1 @@\n"
                      "+/* new */\n", text)
        self.assertFalse(os.path.exists(r.path("src")))

        # a second edit of each file folds into the patch that has it
        append(virfile, "/* round-trip edit two */\n")
        append(r.tpath("src", "conf", "round_trip_new.c"), "/* two */\n")
        res = r.tool("refresh")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(sorted(os.listdir(r.path("patches"))), patches)
        text = read(r.path("patches", patches[0]))
        self.assertIn("+/* round-trip edit one */", text)
        self.assertIn("+/* round-trip edit two */", text)
        self.assertIn("+/* new */\n+/* two */\n", text)
        self.assertEqual(r.tool("status").returncode, 0)

        # with --new, every edit makes the new patch, even one of a file an
        # earlier patch owns
        append(virfile, "/* round-trip edit three */\n")
        res = r.tool("refresh", "--new", "util: a second topic")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(sorted(os.listdir(r.path("patches"))),
                         patches + ["0002-util-a-second-topic.patch"])
        self.assertIn("+/* round-trip edit three */",
                      read(r.path("patches", "0002-util-a-second-topic.patch")))
        self.assertNotIn("edit three", read(r.path("patches", patches[0])))

        # a file a patch added, deleted in the tree: the patch no longer adds it
        os.unlink(r.tpath("src", "conf", "round_trip_new.c"))
        res = r.tool("refresh")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNotIn("round_trip_new.c", read(r.path("patches", patches[0])))

        # assemble afresh from nothing: the edits are there
        shutil.rmtree(r.tree)
        res = r.tool("assemble")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertTrue(read(virfile).endswith(
            "/* round-trip edit one */\n/* round-trip edit two */\n"
            "/* round-trip edit three */\n"))
        self.assertFalse(os.path.exists(r.tpath("src", "conf", "round_trip_new.c")))
        diff = r.git("diff", "pristine", cwd=r.tree).stdout
        self.assertIn("+/* round-trip edit two */", diff)
        self.assertEqual(r.git("status", "--porcelain", cwd=r.tree).stdout, "")

    def test_refuses_to_clobber_unexported_edits(self):
        r = self.r
        virfile = r.tpath("src", "util", "virfile.c")
        append(virfile, "/* not exported */\n")
        with open(r.tpath("src", "util", "virnotexported.c"), "w") as f:
            f.write("/* new, not exported */\n")
        for args in (["assemble"], ["assemble", "--force"]):
            res = r.tool(*args)
            self.assertEqual(res.returncode, 1, res.stdout)
            self.assertIn("uncommitted edit: src/util/virfile.c", res.stderr)
            self.assertIn("new file in no patch: src/util/virnotexported.c",
                          res.stderr)
        self.assertTrue(read(virfile).endswith("/* not exported */\n"))
        self.assertTrue(os.path.exists(r.tpath("src", "util", "virnotexported.c")))
        self.assertEqual(r.tool("status").returncode, 1)

        # a commit made in the tree but not exported is protected too
        r.git("checkout", "-q", "--", "src/util/virfile.c", cwd=r.tree)
        os.unlink(r.tpath("src", "util", "virnotexported.c"))
        append(virfile, "/* committed, not exported */\n")
        r.git("commit", "-q", "-am", "util: committed only", cwd=r.tree)
        res = r.tool("assemble", "--force")
        self.assertEqual(res.returncode, 1)
        self.assertIn("commits not exported", res.stderr)
        self.assertTrue(read(virfile).endswith("/* committed, not exported */\n"))

    def test_up_to_date_keeps_tree(self):
        r = self.r
        virfile = r.tpath("src", "util", "virfile.c")
        before = os.stat(virfile).st_mtime_ns
        res = r.tool("assemble")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("up to date", res.stdout)
        self.assertEqual(os.stat(virfile).st_mtime_ns, before)

    def test_python_caches_are_not_edits(self):
        """libvirt's tests leave __pycache__ in the tree: not an edit that
        assemble must refuse to destroy, even in a tree assembled before the
        exclude file named them."""
        r = self.r
        exclude = os.path.join(r.tree, ".git", "info", "exclude")
        with open(exclude, "w") as f:
            f.write("/subprojects/keycodemapdb/\n")
        cache = r.tpath("scripts", "__pycache__")
        os.makedirs(cache, exist_ok=True)
        with open(os.path.join(cache, "x.cpython-311.pyc"), "wb") as f:
            f.write(b"\0")
        res = r.tool("status")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        res = r.tool("assemble", "--force")
        self.assertEqual(res.returncode, 0, res.stderr)

    def test_broken_patch_reported(self):
        r = self.r
        os.makedirs(r.path("patches"))
        patch = r.path("patches", "0001-broken.patch")
        with open(patch, "w") as f:
            f.write("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
                    "From: t <t@t.invalid>\n"
                    "Date: Thu, 1 Jan 1970 00:00:00 +0000\n"
                    "Subject: [PATCH] broken\n\n---\n"
                    "diff --git a/src/util/virfile.c b/src/util/virfile.c\n"
                    "--- a/src/util/virfile.c\n+++ b/src/util/virfile.c\n"
                    "@@ -1,3 +1,3 @@\n-this line is not in virfile.c\n+x\n"
                    " nor this\n nor this one\n")
        saved = read(patch)
        res = r.tool("assemble")
        self.assertEqual(res.returncode, 1)
        self.assertIn("0001-broken.patch does not apply", res.stderr)
        self.assertEqual(read(patch), saved)
        # the tree is back at pristine with nothing half-applied
        self.assertEqual(r.git("status", "--porcelain", cwd=r.tree).stdout, "")
        self.assertEqual(r.git("rev-parse", "HEAD", cwd=r.tree).stdout,
                         r.git("rev-parse", "pristine^{commit}", cwd=r.tree).stdout)


if __name__ == "__main__":
    unittest.main()
