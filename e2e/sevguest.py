#!/usr/bin/python3
#
# The e2e test guest as libvirt sees it on the test hosts, and the checks
# made on it through libvirt (virsh qemu-monitor-command): used by the
# end-to-end tests, the demo and the benchmark.
#
# The SEV guest runs under the QEMU stand-in (e2e/standin), which stands in
# for what needs SEV hardware and QEMU's unmerged mirror VM patches. The
# <loader> is a placeholder file: the stand-in measures it (the launch
# measurement) and drops -bios, because an OVMF with a migration helper does
# not exist; QEMU's default firmware boots the guest's multiboot kernel
# instead.
#
# An SEV guest starts the way its owner launches it (start_sev_guest): a
# launch session made by the guest owner (hosts.GuestOwner, the reference
# tool virt-qemu-sev-owner) for the host's PDH (virsh nodesevinfo) goes into
# <launchSecurity><dhCert>/<session>; virsh start --paused; the owner checks
# the measurement (virsh domlaunchsecinfo) and builds the launch secret with
# the transport key; virsh domsetlaunchsecstate injects it; virsh resume
# (the first cont). Its migration helper then holds the owner's key.

import json
import os
import signal
import struct
import subprocess
import threading
import time
import unittest
from xml.etree import ElementTree

import guestcheck
import hosts

DOMAIN_XML = """<domain type='qemu'>
  <name>%(name)s</name>
  <memory unit='MiB'>%(memory)d</memory>
  <vcpu placement='static' current='1'>%(slots)d</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
%(loader)s    <kernel>%(kernel)s</kernel>
%(cmdline)s  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>%(on_reboot)s</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>%(emulator)s</emulator>
    <memballoon model='none'/>
  </devices>
%(sev)s%(extra)s</domain>
"""

SEV = """  <launchSecurity type='sev'>
    <cbitpos>47</cbitpos>
    <reducedPhysBits>1</reducedPhysBits>
    <policy>0x0001</policy>
  </launchSecurity>
"""


def domain_xml(lab, name, kernel, sev=False, mirror=True, emulator=None,
               slots=1, on_reboot="destroy", extra="", memory=64, dirty=None,
               mirror_vcpus=1):
    """The test guest; with @sev, an SEV guest (with <mirror
    vcpus='@mirror_vcpus'/> unless not @mirror) under the QEMU stand-in.
    @slots: vCPU slots of a plain guest (1 vCPU runs); 2 gives QEMU the
    topology the stand-in gives an SEV guest with one mirror vCPU.
    @on_reboot: the action after a reset (with 'destroy', QEMU runs with
    -no-reboot and even virsh reset ends it); @extra: more elements of
    <domain>, e.g. <cputune>. @memory: MiB of RAM; @dirty: None for the
    default guest, else its dirty rate, MiB/s or "max", as its <cmdline>
    (the pattern then covers its RAM below 4 GiB: e2e/guest/guest.s)."""
    values = {"name": name, "kernel": kernel, "slots": slots, "loader": "",
              "sev": "", "emulator": emulator or "/usr/bin/qemu-system-x86_64",
              "on_reboot": on_reboot, "extra": extra, "memory": memory,
              "cmdline": "" if dirty is None else
              "    <cmdline>dirty=%s</cmdline>\n" % dirty}
    if sev:
        loader = lab.firmware
        if not os.path.exists(loader):
            with open(loader, "w") as f:
                f.write("placeholder: the QEMU stand-in does not load firmware\n")
        values.update(
            slots=1, emulator=emulator or hosts.STANDIN,
            loader="    <loader readonly='yes' type='rom'>%s</loader>\n" % loader,
            sev=SEV + ("  <mirror vcpus='%d'/>\n" % mirror_vcpus if mirror else ""))
    return DOMAIN_XML % values


def define_and_start(host, lab, name, xml, timeout=60, owner=None):
    """Defines the guest and starts it; an SEV guest (<launchSecurity
    type='sev'>) as its owner launches it (start_sev_guest). Returns the
    SEV guest's hosts.Launch, else None."""
    path = os.path.join(lab.dir, "%s.xml" % name)
    with open(path, "w") as f:
        f.write(xml)
    host.virsh("define", path)
    launch = None
    if "<launchSecurity type='sev'>" in xml:
        launch = start_sev_guest(host, lab, name, owner=owner)
    else:
        host.virsh("start", name)
    wait_guest_ready(host, lab, name, timeout)
    return launch


def virsh_fields(text):
    """'name : value' lines (virsh nodesevinfo, domlaunchsecinfo) as a dict."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def platform_pdh(host):
    """The base64 PDH certificate of @host's SEV platform (virsh nodesevinfo)."""
    return platform_info(host)["pdh"]


def platform_info(host):
    """@host's virsh nodesevinfo as a dict (pdh, cert-chain, cpu0-id, ...).
    Tried again, once a second, for up to 30 s: in a demo run, right after
    libvirtd's start, nodesevinfo once failed with "An error occurred, but
    the cause is unknown" (libvirt's QEMU capabilities lookup returned no
    capabilities and set no error; not understood yet). Each failure is
    printed, so that the tests' logs keep showing it."""
    deadline = time.monotonic() + 30
    attempt = 0
    while True:
        attempt += 1
        res = host.virsh("nodesevinfo", check=False)
        if res.returncode == 0:
            return virsh_fields(res.stdout)
        print("note: virsh nodesevinfo on host %s failed (attempt %d): %s"
              % (host.name, attempt, res.stderr.strip().replace("\n", " / ")),
              flush=True)
        if time.monotonic() > deadline:
            raise hosts.SetupError("virsh nodesevinfo on host %s: %s\n%s"
                                   % (host.name, res.stderr.strip(), host.log_tail()))
        time.sleep(1)


def set_launch_session(host, lab, name, launch):
    """<launchSecurity><dhCert>/<session> of @name's persistent definition
    on @host: @launch's (a hosts.Launch)."""
    xml = host.virsh("dumpxml", "--inactive", name).stdout
    root = ElementTree.fromstring(xml)
    sev = root.find("./launchSecurity")
    for tag in ("dhCert", "session"):
        for old in sev.findall(tag):
            sev.remove(old)
    for tag, what in (("dhCert", "dh_cert"), ("session", "session")):
        ElementTree.SubElement(sev, tag).text = launch.text(what)
    path = os.path.join(lab.dir, "%s-%s-launch.xml" % (name, host.name))
    ElementTree.ElementTree(root).write(path)
    host.virsh("define", path)
    os.unlink(path)


def start_sev_guest(host, lab, name, owner=None, wait_ready=False):
    """Starts the defined SEV guest @name on @host as its owner (@owner,
    default the lab's) launches it: a fresh launch session for @host's PDH,
    start paused, the measurement checked, the launch secret with the
    transport key injected before the first cont, resume. Returns the
    hosts.Launch."""
    owner = owner or lab.owner
    launch = owner.session(platform_pdh(host), "%s-%s" % (host.name, name))
    set_launch_session(host, lab, name, launch)
    host.virsh("start", "--paused", name)
    try:
        info = virsh_fields(host.virsh("domlaunchsecinfo", name).stdout)
        owner.secret(launch, info)
        host.virsh("domsetlaunchsecstate", name, "--secrethdr", launch.header,
                   "--secret", launch.secret)
    except BaseException:
        host.virsh("destroy", name, check=False)
        raise
    host.virsh("resume", name)
    if wait_ready:
        wait_guest_ready(host, lab, name)
    return launch


def wait_guest_ready(host, lab, name, timeout=60):
    """Until the guest has written its pattern (its ready marker)."""
    deadline = time.monotonic() + timeout
    while guest_word(host, lab, name, guestcheck.READY_ADDR) != guestcheck.READY_MAGIC:
        if time.monotonic() > deadline:
            raise AssertionError("guest %s not ready on host %s" % (name, host.name))
        time.sleep(0.1)


def qmp(host, name, command, **arguments):
    cmd = {"execute": command}
    if arguments:
        cmd["arguments"] = arguments
    out = host.virsh("qemu-monitor-command", name, json.dumps(cmd)).stdout
    return json.loads(out)["return"]


def guest_memory(host, lab, name, addr, size):
    """Guest memory as the guest sees it, read through libvirt: x-pmemsave
    of the QEMU stand-in in test mode (its pmemsave of an SEV guest gives
    ciphertext, as SEV hardware would), else QMP pmemsave."""
    path = os.path.join(lab.dir, "dump-%s-%s" % (host.name, name))
    args = {"val": addr, "size": size, "filename": path}
    reply = json.loads(host.virsh("qemu-monitor-command", name, json.dumps(
        {"execute": "x-pmemsave", "arguments": args})).stdout)
    if reply.get("error", {}).get("class") == "CommandNotFound":
        qmp(host, name, "pmemsave", **args)
    elif "return" not in reply:
        raise AssertionError("x-pmemsave on host %s: %s" % (host.name, reply))
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def guest_word(host, lab, name, addr):
    return struct.unpack("<I", guest_memory(host, lab, name, addr, 4))[0]


def counter_after(host, lab, name, before, timeout=60):
    """The guest's pass counter once it is above @before: polled, since a
    loaded machine may give the guest's vCPU no time for a while; raises
    AssertionError after @timeout seconds (a guest that does not run)."""
    deadline = time.monotonic() + timeout
    while True:
        now = guest_word(host, lab, name, guestcheck.COUNTER_ADDR)
        if now > before:
            return now
        if time.monotonic() > deadline:
            raise AssertionError("the guest does not run on host %s: pass counter %d, "
                                 "then %d after %d s" % (host.name, before, now, timeout))
        time.sleep(0.1)


def pattern_errors(host, lab, name):
    return guestcheck.pattern_errors(guest_memory(
        host, lab, name, guestcheck.PATTERN_ADDR, guestcheck.PATTERN_WORDS * 4))


def pattern_sample_errors(host, lab, name, count=16):
    """A guest started with dirty=...: @count spans of its pattern spread
    over all of it (guestcheck.sample_spans, up to the end the guest
    wrote at TOP_ADDR), checked word by word; the wrong words' indexes
    (at most 5 a span)."""
    top = guest_word(host, lab, name, guestcheck.TOP_ADDR)
    bad = []
    for first, words in guestcheck.sample_spans(top, count):
        data = guest_memory(host, lab, name, guestcheck.PATTERN_ADDR + 4 * first, 4 * words)
        bad += guestcheck.span_errors(data, first)
    return bad


def status_xml(host, name):
    """The domain's status XML as libvirtd keeps it (its state directory,
    /run/libvirt/qemu/NAME.xml in the host's mount namespace)."""
    with open(os.path.join(host.bound("/run/libvirt"), "qemu", name + ".xml")) as f:
        return f.read()


def status_mirror_tids(host, name):
    """The mirror vCPU thread IDs of the status XML
    (<mirrorvcpus><vcpu id='N' pid='TID'/></mirrorvcpus>), in id order."""
    root = ElementTree.fromstring(status_xml(host, name))
    vcpus = root.findall("./mirrorvcpus/vcpu")
    return [int(v.get("pid")) for v in sorted(vcpus, key=lambda v: int(v.get("id")))]


def emulator_pid(host, name):
    """The PID of the domain's QEMU (the stand-in), from libvirt's pid file."""
    with open(os.path.join(host.bound("/run/libvirt"), "qemu", name + ".pid")) as f:
        return int(f.read().strip())


def state(host, name):
    return host.virsh("domstate", name, check=False).stdout.strip()


def wait_helper_ready(host, name, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        status = qmp(host, name, "query-migration-helper")["status"]
        if status == "ready":
            return
        if time.monotonic() > deadline:
            raise AssertionError("helper of %s on %s: %s" % (name, host.name, status))
        time.sleep(0.1)


def job_info(host, name, completed=True, keep=False):
    """virsh domjobinfo as a dict of the lines' names to their values;
    with @keep, the completed job's statistics stay for the next reader."""
    args = ["domjobinfo", name] + (["--completed"] if completed else []) + \
        (["--keep-completed"] if keep else [])
    info = {}
    for line in host.virsh(*args, check=False).stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def migrate_async(host, *args, uri=None):
    """virsh migrate on @host in the background: a Popen."""
    virsh = os.path.join(hosts.LIBVIRT_BUILD, "tools", "virsh")
    return subprocess.Popen(
        host.enter() + [virsh, "-q", "-c", uri or "qemu:///system",
                        "migrate"] + list(args),
        env=hosts.libvirt_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def reap(proc):
    """Kills the background virsh @proc if it still runs and waits for it:
    a test's cleanup, so that no migration outlives its test."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


# ---------------------------------------------- after a failed migration
# Shared by e2e/test_confidential.py and the demo's --failure: each raises
# AssertionError with what it found.

SIZE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def size_bytes(text):
    """'1.500 MiB' (virsh domjobinfo) -> 1572864."""
    value = text.split()
    if len(value) != 2 or value[1] not in SIZE_UNITS:
        raise ValueError("not a size: %r" % text)
    return int(float(value[0]) * SIZE_UNITS[value[1]])


def wait_transfer(host, name, proc, nbytes=1 << 20, timeout=120):
    """Until the source @host has sent @nbytes of the guest's memory in the
    migration that the virsh migrate @proc (migrate_async) drives; returns
    the amount sent."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError("migration ended early: %s" % proc.stderr.read().strip())
        info = job_info(host, name, completed=False)
        sent = size_bytes(info.get("Memory processed", "0 B"))
        if sent >= nbytes:
            return sent
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the transfer: %d bytes sent" % sent)
        time.sleep(0.1)


def kill_emulators(host):
    """SIGKILL the QEMU processes of @host's domains; returns their PIDs."""
    pids = host.emulator_pids()
    if not pids:
        raise AssertionError("no QEMU on host %s" % host.name)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


def source_untouched(source, target, lab, name, settle=60):
    """The guest @name runs on @source, intact (every word of its pattern),
    its pass counter growing, with no migration job left; @target has
    neither the domain nor a QEMU process (within @settle seconds: a
    ceiling, the cleanup takes a second or so). Returns the pass
    counter's two readings."""
    st = state(source, name)
    if st != "running":
        raise AssertionError("the guest is %r on host %s" % (st, source.name))
    job = job_info(source, name, completed=False).get("Job type")
    if job != "None":
        raise AssertionError("host %s still has a %r job" % (source.name, job))
    errors = pattern_errors(source, lab, name)
    if errors:
        raise AssertionError("the guest's pattern is wrong at word(s) %s" % errors)
    before = after = guest_word(source, lab, name, guestcheck.COUNTER_ADDR)
    deadline = time.monotonic() + 60
    while after <= before:
        if time.monotonic() > deadline:
            raise AssertionError("the guest does not run on the source: pass counter "
                                 "%d, then %d" % (before, after))
        time.sleep(0.05)
        after = guest_word(source, lab, name, guestcheck.COUNTER_ADDR)
    deadline = time.monotonic() + settle
    while True:
        pids = target.emulator_pids()
        kept = name in target.virsh("list", "--all", "--name").stdout.split()
        if not pids and not kept:
            return before, after
        if time.monotonic() > deadline:
            raise AssertionError("host %s keeps%s%s" % (
                target.name, " QEMU %s" % pids if pids else "",
                " the domain" if kept else ""))
        time.sleep(0.2)


# ---------------------------------------------- test cases on the hosts

class SevGuestLabTest(unittest.TestCase):
    """Test cases on the two test hosts, with an SEV guest (<mirror
    vcpus='1'/>) named DOMAIN started on host a from the kernel GUEST by
    its owner (launch: the hosts.Launch) and its migration helper ready. Subclasses set DOMAIN, and GUEST before the
    tests run; they may override guest_xml() and set_up_lab()."""

    DOMAIN = None
    GUEST = None

    @classmethod
    def guest_xml(cls):
        return domain_xml(cls.lab, cls.DOMAIN, cls.GUEST, sev=True)

    @classmethod
    def set_up_lab(cls):
        """More set-up once the guest runs; the lab is torn down if it fails."""

    @classmethod
    def setUpClass(cls):
        cls.lab = hosts.Lab()
        cls.lab.__enter__()
        try:
            cls.a, cls.b = cls.lab.hosts["a"], cls.lab.hosts["b"]
            cls.target = "qemu+tls://%s/system" % cls.b.addr
            cls.launch = define_and_start(cls.a, cls.lab, cls.DOMAIN, cls.guest_xml())
            wait_helper_ready(cls.a, cls.DOMAIN)
            cls.set_up_lab()
        except BaseException:
            cls.lab.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(None, None, None)


class EventWatch:
    """virsh event --loop on a host, in the background; its output lines
    are collected as they come (line-buffered with stdbuf)."""

    def __init__(self, host, *args):
        virsh = os.path.join(hosts.LIBVIRT_BUILD, "tools", "virsh")
        self.proc = subprocess.Popen(
            host.enter() + ["stdbuf", "-oL", virsh, "-q", "-c", "qemu:///system",
                            "event", "--loop"] + list(args),
            env=hosts.libvirt_env(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self):
        return "\n".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
