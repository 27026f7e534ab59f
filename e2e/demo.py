#!/usr/bin/python3
#
# The libvirt-mirror demo: two test hosts on this machine (e2e/hosts.py), an
# SEV guest with <mirror vcpus='1'/> started on host a, moved to host b with
# virsh migrate --live --confidential over TLS (real libvirt daemons from the
# build, real virsh, real QEMU under TCG), then checked on host b.
#
# There is no SEV hardware here and QEMU's mirror VM support is an unmerged
# proposal: the guest's QEMU is the stand-in of e2e/standin, which runs
# Debian's QEMU and simulates SEV (its secure processor with the real launch
# formulas, the guest unencrypted), the mirror vCPU and the migration helper,
# which encrypts the stream with the transport key. The guest owner's keys
# are real: the owner (virt-qemu-sev-owner) launches the guest on host a and
# host b's attestation agent provisions the target. The demo says so.
#
# --failure NAME first plays one failure before switchover (FAILURES), shows
# virsh's error, checks that the guest still runs on host a, intact, and that
# host b kept nothing, then migrates for real.
#
# Everything it starts is torn down at the end, on failure, and on Ctrl-C or
# SIGTERM; with --keep, after a successful run, the hosts and the guest stay
# up and --teardown removes them later. The lab's state (its directory, the
# daemons' PIDs, the namespaces) is in STATE, written as soon as the lab
# exists, so that --teardown from another process finds everything, also
# after a demo that was killed.
#
# Usage: demo.py [--keep] [--failure NAME] GUEST_ELF
#        demo.py --teardown
#        demo.py --check-free   (exit 1, saying why, when a lab is in the way)

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import guestcheck  # noqa: E402
import hosts  # noqa: E402
import sevguest  # noqa: E402

DOMAIN = "demo-sev"
STATE_DIR = os.environ.get("MIRROR_DEMO_STATE") or os.path.join(hosts.BUILD, "demo")
STATE = os.path.join(STATE_DIR, "lab.json")
# where the user ran ./run-demo from: paths are shown relative to it
CWD = os.environ.get("DEMO_CWD") or os.getcwd()

# failures before switchover that --failure can play (run-demo lists them too)
FAILURES = {
    "target-killed": "host b's QEMU is killed mid-transfer (the migration runs at "
                     "1 MiB/s; SIGKILL once 1 MiB has moved)",
    "helper-timeout": "host b's migration helper never becomes ready (host b's "
                      "libvirtd, restarted with mirror_helper_timeout = %d s, waits that "
                      "long)" % hosts.HANG_HELPER_TIMEOUT,
    "helper-failed": "host b's migration helper reports that it failed",
}

SIMULATED = ("SEV (the guest runs unencrypted; the secure processor's launch commands "
             "with the real formulas, a PDH per host), the mirror vCPU and the migration "
             "helper, which encrypts the stream with the transport key (AES-256-GCM "
             "records), by the QEMU stand-in (e2e/standin). Real: libvirtd, virsh, the "
             "remote protocol, the guest owner's tool and keys, the attestation, QEMU "
             "(TCG), the guest and its memory.")


def say(msg=""):
    try:
        print(msg, flush=True)
    except BrokenPipeError:
        # the reader went away (./run-demo | head): stop, and tear down
        # quietly, as on Ctrl-C
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise KeyboardInterrupt()


def shown(path):
    """@path relative to where the user is, when below it."""
    rel = os.path.relpath(path, CWD)
    return path if rel.startswith("..") else rel


def on_sigterm(signum, frame):
    raise KeyboardInterrupt()


# ------------------------------------------------------------ lab state

def proc_alive(pid, comm=None):
    """Whether @pid runs (not a zombie), and is named @comm if given."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (OSError, TypeError):
        return False
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    if stat[stat.rindex(")") + 2] in "ZX":
        return False
    return comm is None or name == comm


def netns_inode(name):
    try:
        return os.stat("/run/netns/" + name).st_ino
    except OSError:
        return None


def netns_pids(inode):
    """PIDs of the processes in the network namespace @inode (never the
    machine's own namespace, whatever STATE says)."""
    pids = []
    own = set()
    for pid in ("1", "self"):
        try:
            own.add(os.stat("/proc/%s/ns/net" % pid).st_ino)
        except OSError:
            pass
    if inode is None or inode in own:
        return pids
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                if os.stat("/proc/%s/ns/net" % pid).st_ino == inode:
                    pids.append(int(pid))
            except OSError:
                pass
    return pids


def lab_daemon(rec):
    """The PID of the libvirtd that STATE records for a host, if it still
    runs in that host's network namespace (not a PID used again since)."""
    pid = rec.get("pid")
    if not proc_alive(pid, "libvirtd"):
        return None
    try:
        inode = os.stat("/proc/%d/ns/net" % pid).st_ino
    except OSError:
        return None
    return pid if inode == rec.get("netns_inode") else None


def save_state(lab, kept=False):
    os.makedirs(STATE_DIR, exist_ok=True)
    state = {"dir": lab.dir, "owner": os.getpid(), "kept": kept, "domain": DOMAIN,
             "started": time.strftime("%Y-%m-%d %H:%M:%S"), "hosts": {}}
    for name, h in lab.hosts.items():
        state["hosts"][name] = {
            "addr": h.addr, "netns": h.netns,
            # before setup, the name may still be a leftover's
            "netns_inode": netns_inode(h.netns) if h.daemon else None,
            "pid": h.daemon.pid if h.daemon else None}
    tmp = STATE + ".new"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, STATE)


def load_state():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError:
        return {"dir": None, "owner": None, "kept": False, "hosts": {}}


def wrapper(name):
    return os.path.join(STATE_DIR, "virsh-" + name)


def in_the_way():
    """Why a new lab cannot be set up now (None: it can). A lab recorded in
    STATE that is gone (killed demo, reboot) is not in the way: it is
    cleaned up first."""
    state = load_state()
    if state:
        daemons = [h["pid"] for h in state["hosts"].values() if lab_daemon(h)]
        if state.get("kept") and daemons:
            return ("the demo's hosts are up, kept by './run-demo --keep' at %s "
                    "(libvirtd %s); use them with %s and %s, or remove them with "
                    "'./run-demo --teardown' first"
                    % (state.get("started", "?"), ", ".join(map(str, daemons)),
                       shown(wrapper("a")), shown(wrapper("b"))))
        if not state.get("kept") and proc_alive(state.get("owner")):
            return "a demo is running (pid %d)" % state["owner"]
        say("cleaning up after an earlier demo that did not finish (%s)" % shown(STATE))
        teardown_state(state, quiet=True)
    for name in hosts.HOSTS:
        netns = "lvm-e2e-%s%s" % (hosts.LAB_TAG, name)
        busy = netns_pids(netns_inode(netns))
        if busy:
            return ("network namespace %s is in use by %d process(es) that this demo did "
                    "not start (the e2e tests, or a demo kept in another work tree?); "
                    "E2E_LAB_TAG=x gives this one other names" % (netns, len(busy)))
    return None


class Attached:
    """A libvirtd started by an earlier demo process: what Host uses of
    the subprocess.Popen it keeps for a daemon it started itself."""

    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        return None if proc_alive(self.pid) else 0

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout or 60)
        while proc_alive(self.pid):
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("libvirtd", timeout)
            time.sleep(0.1)
        return 0


def teardown(lab, inodes, quiet=False):
    """Stop everything of @lab: its domains, daemons, any process left in
    its network namespaces (@inodes: host name -> namespace inode), the
    namespaces, its directory; the wrappers and STATE. Returns what was
    removed, as text."""
    gone = []
    for name, h in lab.hosts.items():
        alive = h.daemon is not None and h.daemon.poll() is None
        qemus = len(h.emulator_pids()) if alive else 0
        try:
            h.stop()
        except Exception:
            pass
        left = netns_pids(inodes.get(name))
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while netns_pids(inodes.get(name)) and time.monotonic() < deadline:
            time.sleep(0.1)
        what = []
        if alive:
            what.append("libvirtd %d" % h.daemon.pid)
        if qemus:
            what.append("%d QEMU process(es)" % qemus)
        if left:
            what.append("%d other process(es)" % len(left))
        # the name may since have been given to another lab's namespace
        if inodes.get(name) is not None and netns_inode(h.netns) == inodes.get(name):
            hosts.run(["ip", "netns", "del", h.netns], check=False)
            what.append("namespace %s" % h.netns)
        h.daemon = None
        if what:
            gone.append("host %s (%s)" % (name, ", ".join(what)))
    # the guest owner's services (their PID files are in the lab's
    # directory) and the owner's namespace
    if lab.dir and os.path.isdir(lab.dir):
        for pidfile in glob.glob(os.path.join(lab.dir, "*", "service.pid")):
            hosts.stop_service_by_pidfile(pidfile, os.path.dirname(pidfile))
            gone.append("the guest owner's service (%s)" % os.path.dirname(pidfile))
        if hosts.run(["ip", "netns", "pids", lab.owner_netns], check=False).returncode == 0:
            hosts.run(["ip", "netns", "del", lab.owner_netns], check=False)
            gone.append("namespace %s" % lab.owner_netns)
    # the directory only if it is a lab directory (STATE could be edited)
    if lab.dir and os.path.basename(lab.dir).startswith("lvm-e2e-") and \
            os.path.dirname(lab.dir) == tempfile.gettempdir():
        if os.path.isdir(lab.dir):
            shutil.rmtree(lab.dir, ignore_errors=True)
            gone.append(lab.dir)
    files = [p for p in (wrapper("a"), wrapper("b"), STATE) if os.path.exists(p)]
    for p in files:
        os.unlink(p)
    if files:
        gone.append(", ".join(shown(p) for p in files))
    if not quiet:
        say("removed: " + "; ".join(gone) if gone else "nothing was left")
    return gone


def teardown_state(state, quiet=False):
    """teardown() of the lab recorded in @state, from any process."""
    lab = hosts.Lab(dir=state.get("dir") or "/nonexistent")
    inodes = {}
    for name, h in lab.hosts.items():
        rec = state["hosts"].get(name, {})
        h.netns = rec.get("netns", h.netns)
        # none recorded: the demo was killed while it set the hosts up
        inodes[name] = rec.get("netns_inode") or netns_inode(h.netns)
        h.daemon = Attached(rec["pid"]) if lab_daemon(rec) else None
    if not state.get("dir"):
        lab.dir = None
    return teardown(lab, inodes, quiet)


def cmd_teardown():
    state = load_state()
    if state is None:
        say("nothing to tear down: no demo lab recorded in %s" % shown(STATE))
        return 0
    if not state.get("kept") and proc_alive(state.get("owner")):
        say("a demo is running (pid %d): Ctrl-C there tears it down; tearing down "
            "anyway" % state["owner"])
    teardown_state(state)
    return 0


def write_wrappers(lab):
    env = hosts.libvirt_env()
    virsh = os.path.join(hosts.LIBVIRT_BUILD, "tools", "virsh")
    for name, h in lab.hosts.items():
        path = wrapper(name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n"
                    "# virsh on the demo's host %s (%s): the built virsh in the namespaces\n"
                    "# of its libvirtd (pid %d, network namespace %s).\n"
                    "# Written by ./run-demo --keep; ./run-demo --teardown removes it.\n"
                    "LD_LIBRARY_PATH='%s' LIBVIRT_DIR_OVERRIDE=1 abs_builddir='%s' "
                    "abs_top_builddir='%s'\n"
                    "LIBVIRT_DEFAULT_URI=${LIBVIRT_DEFAULT_URI:-qemu:///system}\n"
                    "export LD_LIBRARY_PATH LIBVIRT_DIR_OVERRIDE abs_builddir "
                    "abs_top_builddir LIBVIRT_DEFAULT_URI\n"
                    "exec nsenter --target %d --mount --net '%s' \"$@\"\n"
                    % (name, h.addr, h.daemon.pid, h.netns, env["LD_LIBRARY_PATH"],
                       env["abs_builddir"], env["abs_top_builddir"], h.daemon.pid, virsh))
        os.chmod(path, 0o755)


def print_kept(lab):
    a, b = lab.hosts["a"], lab.hosts["b"]
    va, vb = shown(wrapper("a")), shown(wrapper("b"))
    say()
    say("the hosts are kept running, with %s on host b ('./run-demo --teardown' "
        "removes everything):" % DOMAIN)
    for h, v in ((a, va), (b, vb)):
        say("  host %s  %-10s  %s   (libvirtd %d, network namespace %s)"
            % (h.name, h.addr, v, h.daemon.pid, h.netns))
    say("some commands to try:")
    for cmd, why in (
            ("%s list --all" % vb, ""),
            ("%s dumpxml %s" % (vb, DOMAIN), "its <mirror/> and <launchSecurity/>"),
            ("%s domjobinfo %s --completed --keep-completed" % (vb, DOMAIN),
             "the migration's statistics"),
            ("%s qemu-monitor-command %s --pretty '{\"execute\":\"query-mirror-vcpus\"}'"
             % (vb, DOMAIN), "the mirror vCPU's thread"),
            ("%s vcpupin %s" % (vb, DOMAIN), ""),
            ("%s mirror-info %s" % (vb, DOMAIN), "mirror vCPUs, their threads and the helper"),
            ("%s mirror-pin %s" % (vb, DOMAIN), "the mirror vCPUs' pinning"),
            ("%s qemu-monitor-command %s --pretty '{\"execute\":\"query-migration-helper\"}'"
             % (vb, DOMAIN), "the (simulated) helper"),
            ("%s migrate --live --p2p --confidential --tls --verbose %s qemu+tls://%s/system"
             % (vb, DOMAIN, a.addr), "back to host a"),
            ("%s list --all" % va, "")):
        say("  %s%s" % (cmd, "    # " + why if why else ""))


# ------------------------------------------------------------ the demo

def ms(text):
    """'4417 ms' (virsh domjobinfo) as 4417 ms or 4.42 s."""
    try:
        value = int(text.split()[0])
    except (AttributeError, IndexError, ValueError):
        return "?"
    return "%d ms" % value if value < 1000 else "%.2f s" % (value / 1000)


def mib(text):
    try:
        return "%.1f MiB" % (sevguest.size_bytes(text) / (1 << 20))
    except (AttributeError, ValueError):
        return "?"


def virsh_error(stderr):
    """virsh's error: its last line that starts with 'error:' (QEMU's log
    lines may follow it), else its last line."""
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["(no message)"])[-1]


def play_failure(name, lab, target):
    """One failure before switchover, then the checks; restores host b's
    stand-in settings. Raises AssertionError when a check fails."""
    a, b = lab.hosts["a"], lab.hosts["b"]
    args = ["--live", "--p2p", "--confidential", "--tls"]
    say("      %s" % FAILURES[name])
    try:
        if name == "target-killed":
            say("      virsh migrate %s --bandwidth 1 %s %s" % (" ".join(args), DOMAIN, target))
            proc = sevguest.migrate_async(a, *args, "--bandwidth", "1", DOMAIN, target)
            try:
                sent = sevguest.wait_transfer(a, DOMAIN, proc)
                pids = sevguest.kill_emulators(b)
                say("      %.1f MiB sent: killed host b's QEMU processes (pid %s)"
                    % (sent / (1 << 20), ", ".join(map(str, pids))))
                try:
                    _, err = proc.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    raise AssertionError("virsh migrate did not end within 60 s of "
                                         "host b's QEMU being killed")
                rc = proc.returncode
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        else:
            if name == "helper-timeout":
                # the test hosts' own timeout is long, so that a slow machine
                # never ends a legitimate wait; a helper that hangs has none
                b.qemu_conf(helper_timeout=hosts.HANG_HELPER_TIMEOUT)
                b.restart()
                save_state(lab)
            b.standin_config(helper="hang" if name == "helper-timeout" else "failed")
            say("      virsh migrate %s %s %s" % (" ".join(args), DOMAIN, target))
            start = time.monotonic()
            res = a.virsh("migrate", *args, DOMAIN, target, check=False, timeout=120)
            rc, err = res.returncode, res.stderr
            say("      (failed after %.1f s)" % (time.monotonic() - start))
        say("      virsh: %s" % virsh_error(err))
        if rc == 0:
            raise AssertionError("the migration succeeded although it should have failed")
        before, after = sevguest.source_untouched(a, b, lab, DOMAIN)
        say("      host a: %s running, no migration job left, pattern intact (%d words), "
            "pass counter %d then %d" % (DOMAIN, guestcheck.PATTERN_WORDS, before, after))
        say("      host b: no domain, no QEMU process")
    finally:
        b.standin_config()
        if name == "helper-timeout":
            b.qemu_conf()
            b.restart()
            save_state(lab)


def demo(guest, keep=False, failure=None):
    t0 = time.monotonic()
    why = in_the_way()
    if why:
        say("run-demo: not starting: " + why)
        return 1
    ok, why = hosts.can_create_namespaces()
    if not ok:
        say("cannot run the demo here: %s" % why)
        return 1
    say("libvirt-mirror demo: confidential live migration of an SEV guest")
    say("  NOTE: no SEV hardware here. The guest's QEMU is the stand-in of")
    say("  e2e/standin: real QEMU (TCG) underneath, with SEV's secure processor,")
    say("  the mirror vCPU and the migration helper simulated (the helper encrypts")
    say("  the stream with the transport key). The guest owner's keys and the")
    say("  attestation are real; libvirt does everything else for real.")
    steps = 6 if failure else 5
    step = iter(range(1, steps + 1))

    def stage(text):
        say("[%d/%d] %s" % (next(step), steps, text))

    lab = hosts.Lab()
    inodes = {}
    save_state(lab)
    kept = False
    try:
        stage("setting up host a (%s) and host b (%s): network namespaces, "
              "libvirtd from the build, TLS certificates"
              % (hosts.HOSTS["a"], hosts.HOSTS["b"]))
        lab.setup()
        inodes = {n: netns_inode(h.netns) for n, h in lab.hosts.items()}
        save_state(lab)
        a, b = lab.hosts["a"], lab.hosts["b"]
        target = "qemu+tls://%s/system" % b.addr

        stage("starting SEV guest '%s' with <mirror vcpus='1'/> on host a; "
              "it fills 4 MiB with a known pattern and keeps rewriting 8 MiB" % DOMAIN)
        sevguest.define_and_start(a, lab, DOMAIN,
                                  sevguest.domain_xml(lab, DOMAIN, guest, sev=True))
        sevguest.wait_helper_ready(a, DOMAIN)
        say("      the guest owner (virt-qemu-sev-owner) made the launch session for "
            "host a's PDH")
        say("      (virsh nodesevinfo), checked the measurement (virsh domlaunchsecinfo) "
            "and gave")
        say("      the transport key '%s' in the launch secret (virsh "
            "domsetlaunchsecstate)" % lab.owner.key_id)
        say("      before the first cont; host b's attestation agent gives it to the "
            "target")
        before = sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR)

        stage("virsh migrate --live --p2p %s %s (without --confidential): "
              "refused, as it must be" % (DOMAIN, target))
        res = a.virsh("migrate", "--live", "--p2p", DOMAIN, target, check=False)
        say("      virsh: " + virsh_error(res.stderr))
        if res.returncode == 0:
            say("a plain migration of an SEV guest was not refused")
            return 1

        if failure:
            stage("a failure before switchover: %s" % failure)
            try:
                play_failure(failure, lab, target)
            except AssertionError as e:
                say("      check FAILED: %s" % e)
                return 1
            say("      the source guest survived; %s: migrating for real"
                % ("host b's QEMU starts afresh" if failure == "target-killed"
                   else "host b's helper settings are restored"))

        stage("virsh migrate --live --p2p --confidential --tls --verbose %s %s"
              % (DOMAIN, target))
        virsh = os.path.join(hosts.LIBVIRT_BUILD, "tools", "virsh")
        start = time.monotonic()
        rc = subprocess.call(a.enter() + [virsh, "-c", "qemu:///system",
                                          "migrate", "--live", "--p2p",
                                          "--confidential", "--tls",
                                          "--verbose", DOMAIN, target],
                             env=hosts.libvirt_env(), timeout=300)
        wall = time.monotonic() - start
        if rc != 0:
            say("migration failed (virsh exit status %d)" % rc)
            return 1

        stage("checking the guest on host b")
        errors = sevguest.pattern_errors(b, lab, DOMAIN)
        after = sevguest.guest_word(b, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        try:
            later = sevguest.counter_after(b, lab, DOMAIN, after)
        except AssertionError:
            later = after
        state_a, state_b = sevguest.state(a, DOMAIN), sevguest.state(b, DOMAIN)
        info = sevguest.job_info(b, DOMAIN, keep=True)
        good = (not errors and after > before and later > after and
                state_b == "running" and state_a == "shut off")
        say("      host a: %s, host b: %s" % (state_a, state_b))
        helper = sevguest.qmp(b, DOMAIN, "query-migration-helper")
        say("      host b's migration helper: %s, transport key '%s' (attested: %s)"
            % (helper.get("status"), helper.get("transport-key-id", "none"),
               info.get("Attestation", "?")))
        say("      pattern: %s" % ("all %d words intact" % guestcheck.PATTERN_WORDS
                                   if not errors else "WRONG at word(s) %s" % errors))
        say("      guest kept running: pass counter %d on host a before, %d "
            "then %d on host b" % (before, after, later))
        say()
        say("summary: %s" % ("OK" if good else "FAILED"))
        say("  migration:  %s in QEMU, %.1f s for virsh migrate (helper boot on host b "
            "included)" % (ms(info.get("Time elapsed")), wall))
        say("  downtime:   %s" % ms(info.get("Total downtime")))
        say("  moved:      %s of the guest's %s (pages of zeros go as markers), in %s "
            "pass(es)" % (mib(info.get("Data processed")), mib(info.get("Memory total")),
                          info.get("Iteration", "?")))
        if failure:
            say("  survived:   %s, before switchover" % failure)
        say(textwrap.fill(SIMULATED, 78, initial_indent="  simulated:  ",
                          subsequent_indent=" " * 14))
        say("  demo total: %.1f s" % (time.monotonic() - t0))
        if keep and good:
            save_state(lab, kept=True)
            write_wrappers(lab)
            kept = True
            print_kept(lab)
        return 0 if good else 1
    finally:
        if not kept:
            # a second Ctrl-C does not cut the teardown short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                say("tearing down the test hosts")
            except KeyboardInterrupt:       # output gone: tear down all the same
                pass
            # a setup cut short: the namespaces made so far
            inodes = inodes or {n: netns_inode(h.netns) for n, h in lab.hosts.items()}
            teardown(lab, inodes, quiet=True)


def main():
    ap = argparse.ArgumentParser(
        prog="demo.py", description="the libvirt-mirror demo (see ./run-demo --help)")
    ap.add_argument("--keep", action="store_true",
                    help="leave the hosts and the migrated guest running")
    ap.add_argument("--failure", choices=sorted(FAILURES),
                    help="play this failure before switchover first")
    ap.add_argument("--teardown", action="store_true",
                    help="remove what --keep left running")
    ap.add_argument("--check-free", action="store_true",
                    help="exit 1, saying why, when a lab is in the way")
    ap.add_argument("guest", nargs="?", help="the test guest (build/guest.elf)")
    args = ap.parse_args()
    if args.teardown:
        return cmd_teardown()
    if args.check_free:
        why = in_the_way()
        if why:
            say("run-demo: not starting: " + why)
            return 1
        return 0
    if not args.guest:
        ap.error("GUEST_ELF is needed")
    # Ctrl-C and SIGTERM both end in the teardown, even when started from a
    # context that ignores SIGINT (a background job of a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return demo(os.path.realpath(args.guest), args.keep, args.failure)
    except KeyboardInterrupt:
        say("interrupted; everything was torn down")
        return 130
    except hosts.SetupError as e:
        say("setup failed: %s" % e)
        return 1
    except AssertionError as e:
        say("check failed: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
