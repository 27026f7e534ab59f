#!/usr/bin/python3
#
# What ./run-demo does before the demo itself, after the packages (which
# run-demo installs, since python3 may be one of them): obtain the libvirt
# release tarball, assemble subprojects/libvirt, configure the build with
# meson and build it, saying on a few lines what each stage does and how
# long it took. The build shows ninja's [n/N] on one updating line when
# stdout is a terminal, and a line every 10 % otherwise.
#
# A stage with nothing to do says nothing; when no stage had work, one line
# says that everything is ready. When a stage fails, the tail of its log is
# shown with the log's path, and the exit status is 1.
#
# Usage: prepare.py --build DIR --logs DIR [--t0 NS] [--first]
#   --t0    time.time_ns() at which run-demo started (the total includes
#           the packages stage)
#   --first this is a first run (run-demo has said so): show every stage

import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import tree  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
TAIL = 25
STATUS = re.compile(r"^\[(\d+)/(\d+)\] ")


class StageFailed(Exception):
    pass


def duration(sec):
    """1.2 s, 340 ms, 3 min 05 s."""
    if sec < 1:
        return "%d ms" % (sec * 1000)
    if sec < 60:
        return "%.1f s" % sec
    return "%d min %02d s" % (sec // 60, sec % 60)


def mib(nbytes):
    return "%.1f MiB" % (nbytes / (1 << 20))


def home(path):
    """@path with the user's home directory shown as ~."""
    h = os.path.expanduser("~")
    return "~" + path[len(h):] if h != "/" and path.startswith(h + "/") else path


class Out:
    """Stage lines on @stream; @tty: one updating line for progress."""

    def __init__(self, stream=None, tty=None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.partial = False

    def write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def line(self, name, text):
        self.clear()
        self.write("  %-10s %s\n" % (name + ":", text))

    def status(self, name, text):
        """A line that the next one replaces (terminal only)."""
        if self.tty:
            self.write("\r  %-10s %s\033[K" % (name + ":", text))
            self.partial = True

    def clear(self):
        if self.partial:
            self.write("\r\033[K")
            self.partial = False


def show_failure(out, name, log, text=None):
    """The tail of @log (or @text) and where the full log is."""
    out.clear()
    if text is None:
        try:
            with open(log, errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
    lines = text.rstrip("\n").splitlines()
    # ninja's: from the failed command on, its first errors kept
    failed = [i for i, ln in enumerate(lines) if ln.startswith("FAILED: ")]
    if failed:
        lines = lines[failed[-1]:]
        if len(lines) > TAIL:
            lines = lines[:TAIL - 5] + ["..."] + lines[-4:]
        out.write("  %-10s FAILED; from its log:\n" % (name + ":"))
    else:
        lines = lines[-TAIL:]
        out.write("  %-10s FAILED; the last %d lines of its log:\n" % (name + ":", len(lines)))
    for ln in lines:
        out.write("    | %s\n" % ln)
    out.write("  full log: %s\n" % log)


def run_logged(out, name, cmd, log):
    with open(log, "w") as f:
        f.write("$ %s\n" % " ".join(cmd))
        f.flush()
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if rc != 0:
        show_failure(out, name, log)
        raise StageFailed(name)


def build(out, cmd, log, name="build"):
    """Run @cmd (ninja), its output into @log, its progress on @out.
    Return the number of steps it ran (0: nothing to do)."""
    steps = total = 0
    shown = 0          # the last tenth reported (pipes and files)
    with open(log, "w") as f:
        f.write("$ %s\n" % " ".join(cmd))
        f.flush()
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, text=True, errors="replace") as proc:
            for ln in proc.stdout:
                f.write(ln)
                m = STATUS.match(ln)
                if not m:
                    continue
                steps, total = int(m.group(1)), int(m.group(2))
                pct = 100 * steps // total
                if out.tty:
                    out.status(name, "[%*d/%d] %3d %%" % (len(str(total)), steps, total, pct))
                elif pct // 10 > shown and steps < total:
                    shown = pct // 10
                    out.line(name, "[%d/%d] %d %%" % (steps, total, pct))
            rc = proc.wait()
    if rc != 0:
        show_failure(out, name, log)
        raise StageFailed(name)
    out.clear()
    return steps


class Prepare:
    def __init__(self, build_dir, logs, first=False, t0=None, out=None):
        self.build_dir = build_dir
        self.logs = logs
        self.first = first
        self.t0 = t0 if t0 is not None else time.time()
        self.out = out or Out()
        self.did = False

    def log(self, name):
        return os.path.join(self.logs, name + ".log")

    def done(self, name, text, start):
        self.did = True
        self.out.line(name, "%s (%s)" % (text, duration(time.monotonic() - start)))

    def tarball(self):
        """The release tarball, when the tree must be assembled and the
        pristine repo is not in the cache yet."""
        if tree.up_to_date():
            return
        if tree.pristine_verified(tree.pristine_repo_path()) and not os.path.exists(
                os.path.join(tree.cache_dir(), tree.TARBALL)):
            if self.first:
                self.out.line("libvirt", "release %s: its git repo is in the cache (%s), "
                              "tree ids verified" % (tree.VERSION,
                                                     home(tree.pristine_repo_path())))
            return
        start = time.monotonic()
        where = {"cache": "the cache (%s)" % home(tree.cache_dir()),
                 "upstream": tree.env_or("MIRROR_UPSTREAM_URL", tree.UPSTREAM_URL),
                 "debian": "Debian's source archive (libvirt %s)" % tree.DEBIAN_SOURCE_VERSION}

        def report(event, source, detail):
            if event == "try" and source != "cache":
                self.out.line("libvirt", "downloading %s from %s" % (tree.TARBALL, where[source]))
            elif event == "failed" and source != "cache":
                self.out.line("libvirt", "%s: %s" % (source, detail))
            elif event == "ok":
                self.done("libvirt", "%s from %s, %s, sha256 verified"
                          % (tree.TARBALL, where[source], mib(os.path.getsize(detail))), start)

        try:
            tree.fetch(report)
        except tree.Failure as e:
            show_failure(self.out, "libvirt", self.log("tarball"), str(e))
            with open(self.log("tarball"), "w") as f:
                f.write(str(e) + "\n")
            raise StageFailed("libvirt")

    def assembly(self):
        start = time.monotonic()
        said = []
        tree.info = said.append
        try:
            changed = tree.assemble()
        except (tree.Failure, subprocess.CalledProcessError, OSError) as e:
            said.append("error: %s" % e)
            with open(self.log("assembly"), "w") as f:
                f.write("\n".join(said) + "\n")
            show_failure(self.out, "assembly", self.log("assembly"))
            raise StageFailed("assembly")
        if not changed and self.first:
            self.out.line("assembly", "%s is up to date" % tree.tree_dir().replace(TOP + "/", ""))
        if changed:
            # tree: "assembled libvirt 11.3.0 + 19 patch(es) in DIR"
            text = said[-1].replace(TOP + "/", "")
            self.done("assembly", text[len("assembled "):] if text.startswith("assembled ")
                      else text, start)

    def configure(self):
        if os.path.exists(os.path.join(self.build_dir, "build.ninja")):
            return
        start = time.monotonic()
        cmd = ["meson", "setup", self.build_dir]
        if self.out.tty:
            self.out.status("configure", " ".join(cmd) + " ...")
        run_logged(self.out, "configure", cmd, self.log("configure"))
        self.done("configure", " ".join(cmd).replace(TOP + "/", ""), start)

    def compile(self):
        start = time.monotonic()
        steps = build(self.out, ["ninja", "-C", self.build_dir], self.log("build"))
        if steps:
            self.done("build", "%d step(s)" % steps, start)

    def run(self):
        os.makedirs(self.logs, exist_ok=True)
        try:
            self.tarball()
            self.assembly()
            self.configure()
            self.compile()
        except StageFailed:
            return 1
        total = duration(time.time() - self.t0)
        if self.did or self.first:
            self.out.write("ready (%s)\n" % total)
        else:
            self.out.write("ready: packages, libvirt tree and build up to date (%s)\n" % total)
        return 0


def main():
    ap = argparse.ArgumentParser(prog="prepare.py")
    ap.add_argument("--build", required=True)
    ap.add_argument("--logs", required=True)
    ap.add_argument("--t0", type=int, help="time.time_ns() at start")
    ap.add_argument("--first", action="store_true")
    args = ap.parse_args()
    t0 = args.t0 / 1e9 if args.t0 else None
    return Prepare(os.path.abspath(args.build), os.path.abspath(args.logs),
                   args.first, t0).run()


if __name__ == "__main__":
    sys.exit(main())
