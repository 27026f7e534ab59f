#!/usr/bin/python3
"""Check that every patch of the series stands on its own.

Applies the series to the pristine libvirt release one patch at a time, in a
scratch clone, and after each patch builds libvirt (incrementally, with the
options this project builds it with) and runs the test programs the patch
touches. Prints one line per patch; with --full, runs libvirt's whole test
suite after the last patch. Exit status 0 when every patch applied, built
and passed its tests.

Which tests a patch touches: a test program whose source it changes
(tests/NAMEtest.c), or whose data directory it changes (tests/NAMEdata/...
for the program NAMEtest), among the tests meson lists; a patch that touches
none is only built.

The series is the patches alone: every file the project adds to libvirt is
in the patch that introduces it.

Usage: tooling/series-check [--patches DIR] [--dir SCRATCH] [--full]
                            [--from N] [--to N] [--keep]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import tree as treelib  # noqa: E402


def meson_options(meson_build):
    """libvirt's build options as the top-level meson.build gives them to
    the subproject ('name=value' strings of its default_options)."""
    with open(meson_build) as f:
        text = f.read()
    m = re.search(r"subproject\('libvirt',\s*default_options:\s*\[(.*?)\]", text, re.S)
    if not m:
        raise treelib.Failure("no default_options for the libvirt subproject in %s"
                              % meson_build)
    return re.findall(r"'([a-z_]+=[^']*)'", m.group(1))


def run(cmd, cwd, log):
    """Runs @cmd in @cwd, appending its output to @log; the CompletedProcess."""
    with open(log, "ab") as f:
        f.write(("\n$ %s\n" % " ".join(cmd)).encode())
        f.flush()
        return subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)


def touched_files(tree, rev):
    res = treelib.git(tree, "diff-tree", "--no-commit-id", "--name-only", "-r", rev)
    return [p for p in res.stdout.splitlines() if p]


def tests_for(files, known):
    """The test programs among @known that @files touch."""
    out = []
    for path in files:
        parts = path.split("/")
        if parts[0] != "tests" or len(parts) < 2:
            continue
        name = None
        if len(parts) == 2 and parts[1].endswith("test.c"):
            name = parts[1][:-2]
        elif len(parts) > 2 and parts[1].endswith("data"):
            name = parts[1][:-len("data")] + "test"
        if name in known and name not in out:
            out.append(name)
    return out


def meson_tests(build):
    res = subprocess.run(["meson", "test", "-C", build, "--list", "--no-rebuild"],
                         capture_output=True, text=True)
    names = set()
    for line in res.stdout.splitlines():
        # "libvirt:bin / qemuxmlconftest" or "bin / qemuxmlconftest"
        if " / " in line:
            names.add(line.rsplit(" / ", 1)[1].strip())
    return names


def setup_tree(scratch):
    """A clone of the pristine release in @scratch (its keycodemapdb in
    place, as tooling/tree assembles it)."""
    repo = treelib.pristine_repo()
    tree = os.path.join(scratch, "libvirt")
    treelib.git(scratch, "clone", "-q", "--no-checkout", repo, tree)
    treelib.git(tree, "checkout", "-q", "-B", "series-check", treelib.PRISTINE_TAG)
    treelib.write_exclude(tree)
    kc = os.path.join(tree, "subprojects", "keycodemapdb")
    os.makedirs(kc)
    archive = subprocess.run(["git", "-C", tree, "archive", "keycodemapdb"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", kc], input=archive, check=True)
    return tree


def main():
    ap = argparse.ArgumentParser(prog="tooling/series-check",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--patches", default=treelib.patches_dir(),
                    help="the series (default: this repo's patches/)")
    ap.add_argument("--dir", help="scratch directory (default: a new one in /var/tmp)")
    ap.add_argument("--full", action="store_true",
                    help="run libvirt's whole test suite after the last patch")
    ap.add_argument("--from", dest="first", type=int, default=1,
                    help="check from the Nth patch on (the earlier ones are "
                         "applied and built without their tests)")
    ap.add_argument("--to", dest="last", type=int, default=0,
                    help="stop after the Nth patch")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()

    patches = sorted(p for p in os.listdir(args.patches) if p.endswith(".patch"))
    if args.last:
        patches = patches[:args.last]
    if not patches:
        print("series-check: no patches in %s" % args.patches)
        return 1
    scratch = args.dir or tempfile.mkdtemp(prefix="series-check-", dir="/var/tmp")
    os.makedirs(scratch, exist_ok=True)
    log = os.path.join(scratch, "series-check.log")
    failed = 0
    try:
        tree = setup_tree(scratch)
        build = os.path.join(scratch, "build")
        opts = meson_options(os.path.join(treelib.TOP, "meson.build"))
        res = run(["meson", "setup", build] + ["-D" + o for o in opts], tree, log)
        if res.returncode != 0:
            print("pristine: meson setup FAILED (see %s)" % log)
            return 1
        print("pristine libvirt %s: configured; log %s" % (treelib.VERSION, log),
              flush=True)
        for n, name in enumerate(patches, 1):
            start = time.monotonic()
            res = run(["git", "am", "-q", "--keep-cr", os.path.join(args.patches, name)],
                      tree, log)
            if res.returncode != 0:
                run(["git", "am", "--abort"], tree, log)
                print("%3d %-60.60s apply FAILED" % (n, name), flush=True)
                failed += 1
                break
            res = run(["ninja", "-C", build], tree, log)
            if res.returncode != 0:
                print("%3d %-60.60s build FAILED (%.0f s)"
                      % (n, name, time.monotonic() - start), flush=True)
                failed += 1
                continue
            if n < args.first:
                print("%3d %-60.60s built (%.0f s)" % (n, name, time.monotonic() - start),
                      flush=True)
                continue
            tests = tests_for(touched_files(tree, "HEAD"), meson_tests(build))
            verdicts = []
            for t in tests:
                res = run(["meson", "test", "-C", build, "--no-rebuild",
                           "--print-errorlogs", t], tree, log)
                verdicts.append("%s %s" % (t, "ok" if res.returncode == 0 else "FAILED"))
                if res.returncode != 0:
                    failed += 1
            print("%3d %-60.60s built, %s (%.0f s)"
                  % (n, name, ", ".join(verdicts) if verdicts else "no test touched",
                     time.monotonic() - start), flush=True)
        if args.full and not failed:
            start = time.monotonic()
            res = run(["meson", "test", "-C", build, "--no-rebuild", "--print-errorlogs"],
                      tree, log)
            summary = ""
            with open(log, errors="replace") as f:
                for line in f.read().splitlines()[-20:]:
                    if re.match(r"^(Ok|Fail|Expected Fail|Skipped|Timeout):", line):
                        summary += " " + " ".join(line.split())
            print("full suite after patch %d:%s (%.0f s) %s"
                  % (len(patches), summary, time.monotonic() - start,
                     "ok" if res.returncode == 0 else "FAILED"), flush=True)
            if res.returncode != 0:
                failed += 1
    except treelib.Failure as e:
        print("series-check: %s" % e)
        return 1
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(scratch, ignore_errors=True)
    print("series-check: %s" % ("every patch applied, built and passed its tests"
                                if not failed else "%d failure(s)" % failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
