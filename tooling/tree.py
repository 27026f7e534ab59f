#!/usr/bin/python3
#
# libvirt-mirror tree tooling: fetch the pinned libvirt release, assemble the
# libvirt source tree (pristine tarball + the series in patches/, which holds
# every change to libvirt, new files included), export edits made in that
# tree back into patches/, and report its state.
#
# Usage: tooling/tree {fetch|assemble|refresh|status} [options]
#
# Only the Python standard library is used.

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))

VERSION = "11.3.0"
TARBALL = "libvirt-%s.tar.xz" % VERSION
SHA256 = "6bcb0c42c4580436fea262ced56f68a6afe20f7390b1bea2116718cc034a0283"
UPSTREAM_URL = "https://download.libvirt.org/" + TARBALL
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY = "http://deb.debian.org/debian-security"
DEBIAN_SOURCE_VERSION = "11.3.0-3+deb13u3"
DEBIAN_ORIG = "libvirt_%s.orig.tar.xz" % VERSION
# git tree ids of the tarball's content (without subprojects/keycodemapdb)
# and of the bundled keycodemapdb, as committed by pristine_repo()
PRISTINE_TREE = "ea62ff0c5050b5e0b6e4d252b99455ccf5babd91"
KEYCODEMAPDB_TREE = "330f423cd55d2b00f4d5247579afb64196cb4bf9"

PRISTINE_TAG = "pristine"
IDENTITY = ["-c", "user.name=libvirt-mirror",
            "-c", "user.email=devel@libvirt-mirror.invalid",
            "-c", "commit.gpgsign=false",
            "-c", "core.autocrlf=false",
            "-c", "core.abbrev=12",
            "-c", "diff.noprefix=false",
            "-c", "diff.mnemonicPrefix=false",
            "-c", "diff.renames=true",
            "-c", "format.signature=",
            "-c", "init.defaultBranch=main"]


class Failure(Exception):
    pass


def env_or(name, default):
    value = os.environ.get(name)
    return value if value else default


def tree_dir():
    return env_or("MIRROR_TREE", os.path.join(TOP, "subprojects", "libvirt"))


def patches_dir():
    return env_or("MIRROR_PATCHES", os.path.join(TOP, "patches"))


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return env_or("MIRROR_CACHE", os.path.join(base, "libvirt-mirror"))


def info(msg):
    print("tree: " + msg, flush=True)


def git(cwd, *args, check=True, capture=True, env=None, input=None):
    cmd = ["git"] + IDENTITY + list(args)
    res = subprocess.run(cmd, cwd=cwd, capture_output=capture, text=True,
                         env=env, input=input)
    if check and res.returncode != 0:
        err = (res.stderr or "").strip()
        raise Failure("git %s failed in %s:\n%s" % (" ".join(args), cwd, err))
    return res


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- fetch

def fetch_from_cache(dest):
    if not os.path.exists(dest):
        return "not in cache (%s)" % dest
    return None


def fetch_from_upstream(dest):
    url = env_or("MIRROR_UPSTREAM_URL", UPSTREAM_URL)
    if not shutil.which("curl"):
        return "curl is not installed"
    part = dest + ".part"
    res = subprocess.run(["curl", "-fsSL", "--connect-timeout", "5",
                          "--max-time", "300", "-o", part, url],
                         capture_output=True, text=True)
    if res.returncode != 0:
        if os.path.exists(part):
            os.unlink(part)
        return "%s: curl exit %d: %s" % (url, res.returncode,
                                         res.stderr.strip() or "no message")
    os.replace(part, dest)
    return None


def fetch_from_debian(dest):
    """apt-get source --download-only with a private configuration: a
    deb-src list, package lists, cache and state in a directory of ours,
    never the machine's apt sources."""
    if not shutil.which("apt-get"):
        return "apt-get is not available"
    mirror = env_or("MIRROR_DEBIAN_URL", DEBIAN_MIRROR)
    security = env_or("MIRROR_DEBIAN_SECURITY_URL", DEBIAN_SECURITY)
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    apt = os.path.join(cache_dir(), "apt")
    for d in ("etc", "lists/partial", "cache/archives/partial", "work"):
        os.makedirs(os.path.join(apt, d), exist_ok=True)
    with open(os.path.join(apt, "etc", "sources.list"), "w") as f:
        f.write("deb-src [signed-by=%s] %s trixie main\n" % (keyring, mirror))
        f.write("deb-src [signed-by=%s] %s trixie-security main\n"
                % (keyring, security))
    status = os.path.join(apt, "status")
    open(status, "a").close()
    opts = ["-o", "Dir::Etc::SourceList=" + os.path.join(apt, "etc", "sources.list"),
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", "Dir::Etc::Preferences=/nonexistent",
            "-o", "Dir::Etc::PreferencesParts=/nonexistent",
            "-o", "Dir::State::Lists=" + os.path.join(apt, "lists"),
            "-o", "Dir::State::status=" + status,
            "-o", "Dir::Cache=" + os.path.join(apt, "cache"),
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Retries=0",
            "-o", "Acquire::http::Timeout=10",
            "-o", "Acquire::https::Timeout=10",
            "-o", "Acquire::Languages=none"]
    work = os.path.join(apt, "work")
    res = subprocess.run(["timeout", "120", "apt-get", "-q"] + opts + ["update"],
                         capture_output=True, text=True)
    errors = [ln for ln in (res.stdout + res.stderr).splitlines()
              if ln.startswith(("E:", "W:", "Err"))]
    if res.returncode != 0:
        return "apt-get update (private config) failed: %s" % (
            "; ".join(errors) or "exit %d" % res.returncode)
    # The .dsc or signature may be missing from a partial mirror, which makes
    # apt-get exit non-zero even though the orig tarball arrived: judge by
    # the file (its hash is checked by the caller).
    orig = os.path.join(work, DEBIAN_ORIG)
    if os.path.exists(orig):
        os.unlink(orig)
    res = subprocess.run(["timeout", "300", "apt-get", "-q"] + opts +
                         ["source", "--download-only",
                          "libvirt=" + DEBIAN_SOURCE_VERSION],
                         cwd=work, capture_output=True, text=True)
    if not os.path.exists(orig):
        errors = [ln for ln in (res.stdout + res.stderr).splitlines()
                  if ln.startswith(("E:", "Err"))]
        return "apt-get source libvirt=%s: %s" % (
            DEBIAN_SOURCE_VERSION, "; ".join(errors) or "exit %d" % res.returncode)
    os.replace(orig, dest)
    return None


SOURCES = {
    "cache": fetch_from_cache,
    "upstream": fetch_from_upstream,
    "debian": fetch_from_debian,
}


def fetch(report=None):
    """Return the path of a verified tarball in the cache, or raise.
    @report, if given, is called as report(event, source, detail) while
    the sources are tried: ("try", name, None), ("failed", name, why) and
    ("ok", name, path): run-demo shows its progress with it."""
    os.makedirs(cache_dir(), exist_ok=True)
    dest = os.path.join(cache_dir(), TARBALL)
    expected = env_or("MIRROR_SHA256", SHA256)
    tried = []
    for name in env_or("MIRROR_SOURCES", "cache,upstream,debian").split(","):
        name = name.strip()
        if name not in SOURCES:
            raise Failure("unknown source '%s' in MIRROR_SOURCES" % name)
        if report:
            report("try", name, None)
        why = SOURCES[name](dest)
        if why is None:
            got = sha256_of(dest)
            if got == expected:
                if report:
                    report("ok", name, dest)
                elif name != "cache":
                    info("fetched %s from %s" % (TARBALL, name))
                return dest
            bad = dest + ".rejected"
            os.replace(dest, bad)
            why = "sha256 mismatch: got %s, expected %s (kept as %s)" % (
                got, expected, bad)
        if report:
            report("failed", name, why)
        tried.append("  %s: %s" % (name, why))
    raise Failure("could not obtain %s with sha256 %s; sources tried:\n%s"
                  % (TARBALL, expected, "\n".join(tried)))


# ---------------------------------------------------------------- series

def series_commits(tree):
    """Commits after the pristine tag, oldest first."""
    res = git(tree, "log", "--reverse", "--format=%H", PRISTINE_TAG + "..HEAD")
    return res.stdout.split()


def export_series(tree, outdir):
    """Write the tree's series as format-patch files into outdir."""
    os.makedirs(outdir, exist_ok=True)
    for n, sha in enumerate(series_commits(tree), start=1):
        git(tree, "format-patch", "--zero-commit", "--no-signature",
            "--no-color", "--full-index", "--abbrev=12",
            "--start-number", str(n), "-o", outdir, "-1", sha)


def read_series(d):
    if not os.path.isdir(d):
        return {}
    out = {}
    for name in sorted(os.listdir(d)):
        if name.endswith(".patch"):
            with open(os.path.join(d, name), "rb") as f:
                out[name] = f.read()
    return out


def stamp_dir(tree):
    return os.path.join(tree, ".git", "libvirt-mirror", "assembled-patches")


def tree_edits(tree):
    """What in the assembled tree is not exported to this repo, as a list of
    human-readable lines (empty: nothing would be lost)."""
    edits = []
    if not os.path.isdir(os.path.join(tree, ".git")):
        if os.path.exists(tree) and os.listdir(tree):
            edits.append("%s exists but is not an assembled tree (no .git)"
                         % tree)
        return edits
    gd = os.path.join(tree, ".git")
    # a tree assembled before the exclude file named build artifacts
    write_exclude(tree)
    for state in ("rebase-merge", "rebase-apply", "MERGE_HEAD"):
        if os.path.exists(os.path.join(gd, state)):
            edits.append("a git %s is in progress" % state)
    if git(tree, "rev-parse", "-q", "--verify", "refs/tags/" + PRISTINE_TAG,
           check=False).returncode != 0:
        edits.append("no '%s' tag: not an assembled tree" % PRISTINE_TAG)
        return edits
    st = git(tree, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    entries = [e for e in st.stdout.split("\0") if e]
    skip = False
    for e in entries:
        if skip:
            skip = False
            continue
        code, path = e[:2], e[3:]
        if code[0] in "RC":
            skip = True
        if code == "??":
            edits.append("new file in no patch: " + path)
        else:
            edits.append("uncommitted edit: " + path)
    with tempfile.TemporaryDirectory() as tmp:
        export_series(tree, tmp)
        now = read_series(tmp)
    repo = read_series(patches_dir())
    if now != read_series(stamp_dir(tree)) and now != repo:
        changed = sorted(k for k in set(now) | set(repo)
                         if now.get(k) != repo.get(k))
        edits.append("commits not exported to patches/: " + ", ".join(changed))
    return edits


# ---------------------------------------------------------------- assemble

def apply_series(tree):
    """Apply patches/ on top of the pristine tag."""
    patches = sorted(p for p in os.listdir(patches_dir())
                     if p.endswith(".patch")) if os.path.isdir(patches_dir()) else []
    for p in patches:
        res = git(tree, "am", "-q", "--keep-cr", "--committer-date-is-author-date",
                  os.path.join(patches_dir(), p), check=False)
        if res.returncode != 0:
            git(tree, "am", "--abort", check=False)
            git(tree, "reset", "-q", "--hard", PRISTINE_TAG, check=False)
            shutil.rmtree(stamp_dir(tree), ignore_errors=True)
            raise Failure("patch %s does not apply to libvirt %s:\n%s\n"
                          "The tree was reset to pristine; nothing in this repo "
                          "was changed. Rebase the patch, then assemble again."
                          % (p, VERSION, (res.stdout + res.stderr).strip()))
    shutil.rmtree(stamp_dir(tree), ignore_errors=True)
    os.makedirs(os.path.dirname(stamp_dir(tree)), exist_ok=True)
    export_series(tree, stamp_dir(tree))
    return len(patches)


def wanted_state():
    h = hashlib.sha256()
    h.update(SHA256.encode() + PRISTINE_TREE.encode())
    for name, data in read_series(patches_dir()).items():
        h.update(name.encode() + b"\0" + data)
    return h.hexdigest()


def state_file(tree):
    return os.path.join(tree, ".git", "libvirt-mirror", "state")


def pristine_repo_path():
    return os.path.join(cache_dir(), "libvirt-%s.git" % VERSION)


def pristine_verified(repo):
    """Whether the bare repo @repo holds the pinned release trees."""
    if not os.path.isdir(repo):
        return False
    for tag, want in ((PRISTINE_TAG, PRISTINE_TREE),
                      ("keycodemapdb", KEYCODEMAPDB_TREE)):
        res = git(repo, "rev-parse", "-q", "--verify", tag + "^{tree}",
                  check=False)
        if res.returncode != 0 or res.stdout.strip() != want:
            return False
    return True


def up_to_date():
    """Whether the assembled tree exists and matches patches/ (what
    'assemble' would leave alone; it still checks for edits)."""
    try:
        with open(state_file(tree_dir())) as f:
            return f.read().strip() == wanted_state()
    except FileNotFoundError:
        return False


def pristine_repo():
    """A bare git repo in the cache holding the verified release: tag
    'pristine' (the tarball without the bundled keycodemapdb, which upstream
    keeps as a git submodule so that syntax-check does not scan it) and tag
    'keycodemapdb' (that subproject's files). Built once from the checked
    tarball; reused only while both tree ids match the pinned ones."""
    repo = pristine_repo_path()

    def verified():
        return pristine_verified(repo)

    if os.path.isdir(repo) and verified():
        return repo
    tarball = fetch()
    info("creating the pristine git repo from %s" % TARBALL)
    os.makedirs(cache_dir(), exist_ok=True)
    staging = tempfile.mkdtemp(prefix="pristine-", dir=cache_dir())
    try:
        subprocess.run(["tar", "-xJf", tarball, "-C", staging,
                        "--no-same-owner", "--no-same-permissions"], check=True)
        src = os.path.join(staging, "libvirt-" + VERSION)
        kc = os.path.join(staging, "keycodemapdb")
        os.rename(os.path.join(src, "subprojects", "keycodemapdb"), kc)
        for d, msg in ((kc, "keycodemapdb as bundled in %s" % TARBALL),
                       (src, "libvirt %s release tarball (sha256 %s)"
                        % (VERSION, SHA256))):
            git(d, "init", "-q")
            git(d, "add", "-A", "-f", ".")
            git(d, "commit", "-q", "--no-verify", "-m", msg,
                "--date=1970-01-01T00:00:00Z")
        git(src, "fetch", "-q", kc, "HEAD")
        git(src, "tag", "keycodemapdb", "FETCH_HEAD")
        git(src, "tag", PRISTINE_TAG, "HEAD")
        tmp = repo + ".new"
        shutil.rmtree(tmp, ignore_errors=True)
        git(staging, "clone", "-q", "--bare", src, tmp)
        shutil.rmtree(repo, ignore_errors=True)
        os.rename(tmp, repo)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not verified():
        raise Failure("the git trees made from %s do not match the pinned "
                      "tree ids (%s, %s): the tooling and the tarball disagree"
                      % (TARBALL, PRISTINE_TREE, KEYCODEMAPDB_TREE))
    return repo


def write_exclude(tree):
    os.makedirs(os.path.join(tree, ".git", "info"), exist_ok=True)
    with open(os.path.join(tree, ".git", "info", "exclude"), "w") as f:
        f.write("# bundled in the tarball; a git submodule upstream\n"
                "/subprojects/keycodemapdb/\n"
                "# written by Python when libvirt's tests run its scripts\n"
                "# (upstream's .gitignore, not in the tarball, ignores them)\n"
                "__pycache__/\n"
                "*.pyc\n")


def assemble(force=False):
    """Assemble the tree; True if it changed it, False if up to date."""
    tree = tree_dir()
    state = wanted_state()
    if os.path.exists(tree):
        edits = tree_edits(tree)
        if edits:
            raise Failure("the assembled tree %s has edits that are not "
                          "exported to this repo; assembling would destroy "
                          "them. Run 'tooling/tree refresh' first (or move "
                          "them away). Unexported:\n  %s"
                          % (tree, "\n  ".join(edits)))
        try:
            with open(state_file(tree)) as f:
                if f.read().strip() == state and not force:
                    info("assembled tree is up to date")
                    return False
        except FileNotFoundError:
            pass
    repo = pristine_repo()
    if os.path.isdir(os.path.join(tree, ".git")):
        # Update in place: files that do not change keep their mtime, so an
        # existing build stays incremental.
        info("updating %s" % tree)
        git(tree, "fetch", "-q", "--force", repo, "refs/tags/*:refs/tags/*")
        write_exclude(tree)
        git(tree, "reset", "-q", "--hard", PRISTINE_TAG)
        git(tree, "clean", "-q", "-ffd")
    else:
        info("creating %s" % tree)
        if os.path.exists(tree):
            shutil.rmtree(tree)
        git(os.path.dirname(repo), "clone", "-q", "--no-checkout", repo, tree)
        git(tree, "checkout", "-q", "-B", "main", PRISTINE_TAG)
        git(tree, "remote", "remove", "origin")
    write_exclude(tree)
    kc = os.path.join(tree, "subprojects", "keycodemapdb")
    if not os.path.isdir(kc):
        os.makedirs(kc)
        archive = subprocess.run(["git", "-C", tree, "archive", "keycodemapdb"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", kc], input=archive, check=True)
    npatches = apply_series(tree)
    with open(state_file(tree), "w") as f:
        f.write(state + "\n")
    info("assembled libvirt %s + %d patch(es) in %s" % (VERSION, npatches, tree))
    return True


# ---------------------------------------------------------------- refresh

def refresh(new_subject=None):
    tree = tree_dir()
    if not os.path.isdir(os.path.join(tree, ".git")):
        raise Failure("no assembled tree at %s: run 'tooling/tree assemble'"
                      % tree)
    for state in ("rebase-merge", "rebase-apply"):
        if os.path.exists(os.path.join(tree, ".git", state)):
            raise Failure("a git rebase/am is in progress in %s: finish or "
                          "abort it first" % tree)
    # Uncommitted edits: with --new they all make one new patch; without,
    # each folds into the last patch that touches its file (the patch that
    # added it, for a new file), and a file no patch touches yet, or a file
    # not yet in any patch, needs --new.
    dirty = [ln[3:] for ln in git(tree, "status", "--porcelain=v1",
                                  "--untracked-files=all").stdout.splitlines()]
    commits = series_commits(tree)
    orphans = []
    fixups = []
    for path in dirty:
        owner = None
        if commits and not new_subject:
            res = git(tree, "log", "-1", "--format=%H", PRISTINE_TAG + "..HEAD",
                      "--", path)
            sha = res.stdout.strip()
            if sha in commits:
                owner = sha
        if owner:
            fixups.append((owner, path))
        else:
            orphans.append(path)
    if orphans and not new_subject:
        raise Failure("these edits touch files no patch changes or adds yet; "
                      "name the new patch with --new 'subsystem: what it "
                      "does':\n  "
                      + "\n  ".join(orphans))
    for owner, path in fixups:
        git(tree, "add", "-A", "--", path)
        git(tree, "commit", "-q", "--no-verify", "--fixup=" + owner, "--", path)
    if orphans:
        git(tree, "add", "-A", "--", *orphans)
        git(tree, "commit", "-q", "--no-verify", "-m", new_subject,
            "--", *orphans)
    if fixups:
        env = dict(os.environ, GIT_SEQUENCE_EDITOR="true", GIT_EDITOR="true")
        res = git(tree, "rebase", "-q", "-i", "--autosquash",
                  "--committer-date-is-author-date", PRISTINE_TAG,
                  check=False, env=env)
        if res.returncode != 0:
            git(tree, "rebase", "--abort", check=False)
            raise Failure("folding the edits into their patches conflicts; "
                          "the edits are kept as fixup! commits in %s:\n%s"
                          % (tree, res.stderr.strip()))
    # Export the series.
    with tempfile.TemporaryDirectory() as tmp:
        export_series(tree, tmp)
        new = read_series(tmp)
        old = read_series(patches_dir())
        os.makedirs(patches_dir(), exist_ok=True)
        for name in old:
            if name not in new:
                os.unlink(os.path.join(patches_dir(), name))
        for name, data in new.items():
            if old.get(name) != data:
                with open(os.path.join(patches_dir(), name), "wb") as f:
                    f.write(data)
        changed = sorted(set(old) ^ set(new) |
                         set(k for k in new if old.get(k) != new.get(k)))
    shutil.rmtree(stamp_dir(tree), ignore_errors=True)
    os.makedirs(os.path.dirname(stamp_dir(tree)), exist_ok=True)
    export_series(tree, stamp_dir(tree))
    with open(state_file(tree), "w") as f:
        f.write(wanted_state() + "\n")
    for p in changed:
        info("patch %s: patches/%s" % ("written" if p in new else "removed", p))
    if not changed:
        info("nothing to export")


def status():
    tree = tree_dir()
    if not os.path.exists(tree):
        print("no assembled tree at %s" % tree)
        return 0
    edits = tree_edits(tree)
    for e in edits:
        print(e)
    if not edits:
        print("assembled tree has nothing unexported")
    return 1 if edits else 0


def main():
    ap = argparse.ArgumentParser(prog="tooling/tree")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="obtain and verify the libvirt tarball")
    a = sub.add_parser("assemble", help="build subprojects/libvirt")
    a.add_argument("--force", action="store_true",
                   help="reassemble even if up to date (never discards "
                        "unexported edits)")
    r = sub.add_parser("refresh", help="export tree edits into this repo")
    r.add_argument("--new", metavar="SUBJECT",
                   help="put all uncommitted edits of libvirt's files into "
                        "a new patch with this subject")
    sub.add_parser("status", help="list unexported edits (exit 1 if any)")
    args = ap.parse_args()
    try:
        if args.cmd == "fetch":
            print(fetch())
        elif args.cmd == "assemble":
            assemble(args.force)
        elif args.cmd == "refresh":
            refresh(args.new)
        elif args.cmd == "status":
            return status()
    except Failure as e:
        print("tree: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
