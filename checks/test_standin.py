#!/usr/bin/python3
#
# Tests of the QEMU stand-in (e2e/standin/qemu-mirror-standin.c), run
# directly, without libvirt: its command-line rewriting, the QMP interface of
# docs/kbase/confidential-migration.rst that it simulates on top of Debian's
# real QEMU, its process handling (libvirt's probing with -daemonize, an
# inherited listening monitor socket, inherited fds, signals), and a
# migration between two stand-ins (source, and target started with
# PcdSevIsMigrationTarget) of the e2e test guest, whose memory pattern is
# checked on the target with e2e/guestcheck.py.
#
# The simulated secure processor (e2e/standin/psp.c) is checked against
# independent code: the guest owner's side of LAUNCH_START (the session)
# comes from checks/sevspec.py (written from the AMD SEV API specification
# with python3-cryptography), and measurements and launch secrets from
# libvirt's own tools/virt-qemu-sev-validate, imported as a module.
#
# Each stand-in gets its own configuration file through
# $QEMU_MIRROR_STANDIN_CONF. Every wait is bounded, and every process is
# killed at the end of its test, also on failure.
#
# Timing: the suite must pass on a machine several times slower than a
# developer's (2 cores shared with a build). A wait for something that
# happens is a bounded wait on that event or state, with a ceiling
# (WAIT) that only limits a hung test and costs nothing otherwise. A check
# that something does NOT happen within a time, or that a command reaches
# the stand-in before a timer ends, says next to it why its margin holds.
#
# Usage: test_standin.py BUILD_ROOT [unittest arguments]

import base64
import ctypes
import hashlib
import importlib.machinery
import importlib.util
import errno
import hmac
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import re
import tempfile
import time
import types
import unittest
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, os.path.join(TOP, "e2e"))
import guestcheck  # noqa: E402
import wirecapture  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import sevspec  # noqa: E402

STANDIN = None
GUEST = None
FIRMWARE = None         # the -bios file of sev_argv (what the launch measures)
SEV_VALIDATE = None     # libvirt's tools/virt-qemu-sev-validate, as a module

KEY_ID = "owner-key:1"
READY = {"status": "ready", "transport-key": True, "transport-key-id": KEY_ID}
NO_STATE = "SEV: Not in correct state"
BLOCKER = "SEV: Migration is not implemented"
NEEDS_GUEST_ASSISTED = ("SEV: migration of an SEV guest needs the migration capability "
                        "guest-assisted")
HELPER_FW_CFG = "name=opt/ovmf/PcdSevIsMigrationHelper,string=0"
TARGET_FW_CFG = "name=opt/ovmf/PcdSevIsMigrationTarget,string=1"
FIXTURE = os.path.join(TOP, "subprojects", "libvirt", "tests", "qemucapabilitiesdata",
                       "caps_10.0.0_x86_64+amdsev-mirror.replies")
ADDITIONS = os.path.join(TOP, "e2e", "standin", "qapi-additions.json")
# what the fixture is derived from (captured on an SEV host), and libvirt's
# tool for .replies files
BASE_FIXTURE = os.path.join(TOP, "subprojects", "libvirt", "tests",
                            "qemucapabilitiesdata", "caps_10.0.0_x86_64+amdsev.replies")
REPLIES_TOOL = os.path.join(TOP, "subprojects", "libvirt", "scripts",
                            "qemu-replies-tool.py")
NEW_SCHEMA_NAMES = {"start-migrate-incoming", "query-mirror-vcpus",
                    "query-migration-helper", "MIGRATION_HELPER"}
# the ceiling of a wait for a QMP reply, an event or a process that comes
# within a second or so even on a loaded machine (seconds)
WAIT = 60


class QMPError(Exception):
    pass


class QMP:
    """A QMP client that keeps the events it reads, with a bounded timeout
    on every read."""

    def __init__(self, path=None, sock=None, timeout=WAIT, negotiate=True):
        self.timeout = timeout
        self.buf = b""
        self.events = []
        if sock is None:
            deadline = time.monotonic() + timeout
            while True:
                sock = socket.socket(socket.AF_UNIX)
                try:
                    sock.connect(path)
                    break
                except OSError:
                    sock.close()
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        self.sock = sock
        self.greeting = self._read_msg(time.monotonic() + timeout)
        if "QMP" not in self.greeting:
            raise QMPError("no greeting: %s" % self.greeting)
        if negotiate:
            self.cmd("qmp_capabilities")

    def close(self):
        self.sock.close()

    def _read_msg(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no QMP message in time")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no QMP message in time") from None
            if not data:
                raise ConnectionError("QMP connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, name, fds=(), **args):
        """The whole reply to @name, sent with @fds (SCM_RIGHTS)."""
        msg = {"execute": name, "id": "test-%s" % name}
        if args:
            msg["arguments"] = args
        data = json.dumps(msg).encode() + b"\r\n"
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_msg(deadline)
            if "event" in reply:
                self.events.append(reply)
                continue
            if reply.get("id") != msg["id"]:
                raise QMPError("reply with id %r to %s" % (reply.get("id"), name))
            return reply

    def cmd(self, name, fds=(), **args):
        reply = self.execute(name, fds, **args)
        if "error" in reply:
            raise QMPError("%s: %s" % (name, reply["error"]["desc"]))
        return reply["return"]

    def error(self, name, fds=(), **args):
        """The description of the error @name must fail with."""
        reply = self.execute(name, fds, **args)
        if "error" not in reply:
            raise AssertionError("%s did not fail: %s" % (name, reply))
        return reply["error"]["desc"]

    def error_of(self, name, **args):
        """The whole error (class, desc) @name must fail with."""
        reply = self.execute(name, **args)
        if "error" not in reply:
            raise AssertionError("%s did not fail: %s" % (name, reply))
        return reply["error"]["class"], reply["error"]["desc"]

    def wait_helper(self, status, timeout=WAIT):
        """The data of the next MIGRATION_HELPER event; it must say @status."""
        data = self.wait_event("MIGRATION_HELPER", timeout)["data"]
        if data["status"] != status:
            raise AssertionError("helper %s, not %s" % (data, status))
        return data

    def wait_event(self, name, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            msg = self._read_msg(deadline)
            if "event" not in msg:
                raise QMPError("unexpected message %s" % msg)
            self.events.append(msg)

    def events_within(self, name, wait):
        """The events @name that arrive within @wait seconds: for checks
        that an event does not come, whose callers say why @wait is long
        enough."""
        deadline = time.monotonic() + wait
        try:
            while True:
                msg = self._read_msg(deadline)
                if "event" not in msg:
                    raise QMPError("unexpected message %s" % msg)
                self.events.append(msg)
        except TimeoutError:
            pass
        found = [ev for ev in self.events if ev["event"] == name]
        self.events = [ev for ev in self.events if ev["event"] != name]
        return found

    def pmemsave(self, **args):
        """The guest's memory as the guest sees it: x-pmemsave in test mode
        (an SEV guest's pmemsave gives ciphertext), else pmemsave."""
        reply = self.execute("x-pmemsave", **args)
        if "error" in reply and reply["error"]["class"] == "CommandNotFound":
            return self.cmd("pmemsave", **args)
        if "error" in reply:
            raise QMPError("x-pmemsave: %s" % reply["error"]["desc"])
        return reply["return"]

    def read_word(self, addr, workdir):
        path = os.path.join(workdir, "word")
        self.pmemsave(val=addr, size=4, filename=path)
        with open(path, "rb") as f:
            return int.from_bytes(f.read(), "little")

    def wait_guest_ready(self, workdir, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while self.read_word(guestcheck.READY_ADDR, workdir) != guestcheck.READY_MAGIC:
            if time.monotonic() > deadline:
                raise TimeoutError("guest not ready after %d s" % timeout)
            time.sleep(0.1)


# pids that subprocess waits for; the others (a daemon, a QEMU whose
# stand-in was killed) become children of this process, a subreaper, when
# their parent goes, and are reaped here
POPEN_PIDS = set()
PR_SET_CHILD_SUBREAPER = 36


def alive(pid):
    """Whether @pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] != "Z":
        return True
    if pid not in POPEN_PIDS:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    return False


def children(pid):
    pids = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return pids
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return pids


def wait_gone(pids, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_all(pids, sig=signal.SIGKILL):
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, sig)
            except OSError:
                pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fd_targets(pid):
    """What the fds of @pid point to (readlink of /proc/PID/fd/*)."""
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def sev_argv(monitor, smp="2,sockets=2,cores=1,threads=1,mirrorvcpus=1",
             target=False, policy=3, launch=None, kernel_hashes=False):
    """A command line modeled on what libvirt gives an SEV guest with
    <mirror vcpus='1'/> (tests/qemuxmlconfdata/launch-security-sev-mirror*),
    booting the e2e test guest with -kernel; with @launch (a Launch), the
    guest owner's dhCert and session files."""
    sev = {"qom-type": "sev-guest", "id": "lsec0", "cbitpos": 47,
           "reduced-phys-bits": 1, "policy": policy}
    if launch:
        sev.update({"dh-cert-file": launch.dh_cert_file,
                    "session-file": launch.session_file})
    if kernel_hashes:
        sev["kernel-hashes"] = True
    args = ["-name", "guest=standin-test,debug-threads=on",
            "-S",
            "-machine", "pc,usb=off,dump-guest-core=off,"
                        "confidential-guest-support=lsec0,acpi=off",
            "-accel", "tcg",
            "-cpu", "qemu64",
            "-bios", FIRMWARE,
            "-m", "64",
            "-overcommit", "mem-lock=off",
            "-smp", smp,
            "-display", "none",
            "-no-user-config",
            "-nodefaults"]
    args += monitor
    args += ["-rtc", "base=utc",
             "-no-shutdown",
             "-boot", "strict=on",
             "-kernel", GUEST,
             "-object", json.dumps(sev, separators=(",", ":")),
             "-fw_cfg", HELPER_FW_CFG]
    if target:
        args += ["-fw_cfg", TARGET_FW_CFG]
    args += ["-msg", "timestamp=on"]
    return args


# ------------------------------------------------------------------
# the guest owner's side of SEV, independent of the stand-in's C code

CERT_SIZE = 0x824
USAGE_PDH, USAGE_PEK, USAGE_OCA, USAGE_CEK = 0x1003, 0x1002, 0x1001, 0x1004
TRANSPORT_KEY_GUID = "68777468-ccbb-4873-a893-0b2880592c67"
KEY_ID_GUID = "20995426-ca45-47c7-8b08-dc1c7127134d"


def le32(v):
    return v.to_bytes(4, "little")


def cert_of(public_key, usage=USAGE_PDH, algo=0x3):
    """A sev_cert (AMD SEV API, appendix C.1) of a P-384 public key,
    unsigned (both signature slots usage 0x1000, algo 0)."""
    nums = public_key.public_numbers()
    body = le32(1) + bytes([1, 55, 0, 0]) + le32(usage) + le32(algo)
    pubkey = le32(2) + nums.x.to_bytes(72, "little") + nums.y.to_bytes(72, "little")
    pubkey += bytes(1028 - len(pubkey))
    sig = le32(0x1000) + le32(0) + bytes(512)
    cert = body + pubkey + sig + sig
    assert len(cert) == CERT_SIZE
    return cert


def cert_public(cert):
    """The fields of a sev_cert and its P-384 public key."""
    fields = {"version": int.from_bytes(cert[0:4], "little"),
              "usage": int.from_bytes(cert[8:12], "little"),
              "algo": int.from_bytes(cert[12:16], "little"),
              "curve": int.from_bytes(cert[16:20], "little"),
              "sig1_usage": int.from_bytes(cert[0x414:0x418], "little"),
              "sig2_usage": int.from_bytes(cert[0x61C:0x620], "little")}
    x = int.from_bytes(cert[20:92], "little")
    y = int.from_bytes(cert[92:164], "little")
    return fields, ec.EllipticCurvePublicNumbers(x, y, ec.SECP384R1()).public_key()


def make_session(pdh_cert, policy, tek, tik, odh=None, nonce=None, iv=None):
    """The guest owner's LAUNCH_START data for the platform of @pdh_cert:
    (dhCert, session) as bytes, by sevspec (fresh ODH key, nonce and IV
    unless given)."""
    return sevspec.make_session(pdh_cert, odh or ec.generate_private_key(ec.SECP384R1()),
                                policy, nonce or os.urandom(16), tek, tik,
                                iv or os.urandom(16))


def load_sev_validate(libvirt_src):
    """libvirt's tools/virt-qemu-sev-validate as a module; its offline mode
    needs neither the libvirt bindings nor lxml, so they are stubbed."""
    for name in ("libvirt", "lxml"):
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                mod = types.ModuleType(name)
                mod.etree = None
                sys.modules[name] = mod
    path = os.path.join(libvirt_src, "tools", "virt-qemu-sev-validate")
    loader = importlib.machinery.SourceFileLoader("virt_qemu_sev_validate", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class Launch:
    """One launch's guest owner data: the files for the sev-guest object,
    TEK and TIK."""

    def __init__(self, workdir, name, pdh_cert, policy, **kwargs):
        self.policy = policy
        self.tek = kwargs.pop("tek", None) or os.urandom(16)
        self.tik = kwargs.pop("tik", None) or os.urandom(16)
        self.dh_cert, self.session = make_session(pdh_cert, policy, self.tek,
                                                  self.tik, **kwargs)
        self.dh_cert_file = os.path.join(workdir, name + ".dh_cert.base64")
        self.session_file = os.path.join(workdir, name + ".session.base64")
        self.write(self.dh_cert, self.session)

    def write(self, dh_cert, session):
        for path, data in ((self.dh_cert_file, dh_cert), (self.session_file, session)):
            with open(path, "w") as f:
                f.write(base64.b64encode(data).decode())

    def validator(self, measurement, firmware=None, kernel=None, tik=None, tek=None,
                  api=(1, 55, 24)):
        """virt-qemu-sev-validate's view of this launch."""
        vm = SEV_VALIDATE.OfflineConfidentialVM(
            measurement=measurement, api_major=api[0], api_minor=api[1],
            build_id=api[2], policy=self.policy)
        vm.load_firmware(firmware or FIRMWARE)
        if kernel:
            vm.kernel_table.load_kernel(kernel)
        vm.tik = tik or self.tik
        vm.tek = tek or self.tek
        return vm

    def secret(self, measurement, key, key_id=KEY_ID, tik=None, tek=None, entries=None):
        """(packet-header, secret) for sev-inject-launch-secret, built by
        virt-qemu-sev-validate over @measurement (base64, as
        query-sev-launch-measure gives it)."""
        vm = self.validator(measurement, tik=tik, tek=tek)
        if entries is None:
            entries = {TRANSPORT_KEY_GUID: key, KEY_ID_GUID: key_id.encode()}
        for guid, value in entries.items():
            vm.secrets_table.secrets[uuid.UUID(guid)] = value
        return vm.build_secrets()


def load_replies(path):
    """The commands and replies of a .replies file of libvirt's tests."""
    with open(path) as f:
        text = f.read()
    return [json.loads(c) for c in re.split(r"\n\n(?=\{)", text.strip())]


def reply_of(objs, command):
    for i in range(0, len(objs), 2):
        if objs[i].get("execute") == command:
            return objs[i + 1]["return"]
    raise AssertionError("no %s in the replies" % command)


def canon(by_name, ref, depth=0):
    """Schema entry @ref with the (masked, numbered) type names it refers
    to replaced by what they are, so that two schemas that number their
    types differently compare equal."""
    entry = by_name.get(ref)
    if entry is None or depth > 8:
        return ref
    out = {}
    for key, val in entry.items():
        if key == "name":
            if not (val.isdigit() or val.startswith("[")):
                out[key] = val
        elif key in ("arg-type", "ret-type", "element-type"):
            out[key] = canon(by_name, val, depth + 1)
        elif key == "members":
            out[key] = [{k: canon(by_name, v, depth + 1) if k == "type" else v
                         for k, v in m.items()} for m in val]
        else:
            out[key] = val
    return out


def set_guest_assisted(qmp, state, *others):
    """migrate-set-capabilities with guest-assisted (and @others, names of
    QEMU's capabilities set to @state as well); it must succeed."""
    caps = [{"capability": c, "state": state} for c in ("guest-assisted",) + others]
    return qmp.cmd("migrate-set-capabilities", capabilities=caps)


def capabilities(qmp):
    return {c["capability"]: c["state"] for c in qmp.cmd("query-migrate-capabilities")}


def enum_with(schema, value):
    enums = [e for e in schema if e["meta-type"] == "enum" and value in e["values"]]
    if len(enums) != 1:
        raise AssertionError("%d enums with %s" % (len(enums), value))
    return enums[0]


class FixtureTest(unittest.TestCase):
    """caps_10.0.0_x86_64+amdsev-mirror.replies is libvirt's +amdsev replies
    plus exactly qapi-additions.json (added by hand, formatted and numbered
    by libvirt's scripts/qemu-replies-tool.py --regenerate; test_7 compares
    the additions with the stand-in's)."""

    def tool(self, *args):
        return subprocess.run([sys.executable, REPLIES_TOOL] + list(args),
                              capture_output=True, text=True, check=True).stdout

    def test_fixture_is_amdsev_plus_additions(self):
        # the tool's own validation: formatting, ids, schema coverage
        self.tool(FIXTURE)
        with open(ADDITIONS) as f:
            adds = json.load(f)

        # the schema, compared as the tool's query strings (type numbers
        # do not matter): nothing removed, and only the additions added
        base = set(self.tool("--dump-qmp-query-strings", BASE_FIXTURE).splitlines())
        mirror = set(self.tool("--dump-qmp-query-strings", FIXTURE).splitlines())
        self.assertEqual(base - mirror, set())
        values = [v for add in adds["enum-values"] for v in add["values"]]
        members = [(add["of"], m["name"].lstrip("*"))
                   for add in adds["arg-members"] for m in add["members"]]

        def added(line):
            path = line.split(" ", 1)[1].split("/")
            return (path[0] in NEW_SCHEMA_NAMES or path[-1].lstrip("^") in values or
                    any(path[:2] == [of, "arg-type"] and path[2].lstrip("*") == m
                        for of, m in members))
        self.assertEqual(sorted(line for line in mirror - base if not added(line)), [])
        self.assertEqual({line.split(" ", 1)[1].split("/")[0] for line in mirror - base}
                         & NEW_SCHEMA_NAMES, NEW_SCHEMA_NAMES)

        # every other reply the same, once the additions are taken out
        base_objs, objs = load_replies(BASE_FIXTURE), load_replies(FIXTURE)
        self.assertEqual(len(base_objs), len(objs))
        params = [a["parameter"] for a in adds["smp-opts"]]
        caps = [a["capability"] for a in adds["migrate-capabilities"]]
        for i in range(0, len(objs), 2):
            cmd, reply = objs[i], objs[i + 1]
            self.assertEqual(cmd, base_objs[i])
            if cmd["execute"] == "query-qmp-schema":
                continue
            if cmd["execute"] == "query-command-line-options":
                for opt in reply["return"]:
                    if opt["option"] == "smp-opts":
                        self.assertEqual([p for p in params if p in opt["parameters"]], params)
                        opt["parameters"] = [p for p in opt["parameters"] if p not in params]
            if cmd["execute"] == "query-migrate-capabilities":
                self.assertEqual([c for c in reply["return"] if c["capability"] in caps],
                                 [{"state": False, "capability": c} for c in caps])
                reply["return"] = [c for c in reply["return"] if c["capability"] not in caps]
            self.assertEqual(reply, base_objs[i + 1], cmd["execute"])


class StandinBase(unittest.TestCase):
    """Stand-ins of a test: started, logged, and all killed at the end."""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="lvm-standin-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.pids = []
        self.addCleanup(self._kill_everything)
        # the test host's platform key (sev-pdh-key=), made here so that
        # the test knows the PDH the stand-in must report
        self.pdh_path = os.path.join(self.workdir, "pdh.pem")
        pdh = ec.generate_private_key(ec.SECP384R1())
        with open(os.open(self.pdh_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                  "wb") as f:
            f.write(pdh.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        self.pdh_cert = cert_of(pdh.public_key())
        # the guest owner's transport key
        self.transport_key = os.urandom(32)

    def _kill_everything(self):
        """The last cleanup: whatever is left of this test's processes,
        including those adopted by this process (a subreaper)."""
        pids = set(self.pids)
        for pid in list(pids):
            pids.update(children(pid))
        pids.update(p for p in children(os.getpid()) if p not in POPEN_PIDS)
        # SIGTERM first, so that stand-ins stop their QEMU and remove their
        # pidfiles and sockets, then SIGKILL for whatever is left
        kill_all(pids, signal.SIGTERM)
        if not wait_gone(pids, 5):
            kill_all(pids)
            wait_gone(pids, 5)

    def conf(self, helper="ready", boot_ms=200, test_mode=True, control_dir="",
             pdh_key=None, extra=""):
        """A configuration file: what holds from the stand-in's start. What
        changes at run time is injected with the x- commands (test mode)."""
        pdh_key = pdh_key or self.pdh_path
        path = os.path.join(self.workdir, "standin-%s-%d-%s-%s-%s-%s.conf"
                            % (helper, boot_ms, test_mode, bool(control_dir),
                               os.path.basename(pdh_key), hashlib.sha256(extra.encode())
                               .hexdigest()[:8]))
        with open(path, "w") as f:
            f.write("[standin]\nqemu=/usr/bin/qemu-system-x86_64\n"
                    "helper-boot-ms=%d\nhelper=%s\n"
                    "test-mode=%s\ncontrol-dir=%s\nsev-pdh-key=%s\n%s"
                    % (boot_ms, helper, "true" if test_mode else "false", control_dir,
                       pdh_key, extra))
        return path

    def env(self, conf):
        env = dict(os.environ)
        env["QEMU_MIRROR_STANDIN_CONF"] = conf
        return env

    def start(self, name, args, conf=None, pass_fds=()):
        """Start a stand-in that logs to WORKDIR/NAME.log."""
        log = open(os.path.join(self.workdir, name + ".log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([STANDIN] + args, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, pass_fds=pass_fds,
                                env=self.env(conf or self.conf()))
        self.pids.append(proc.pid)
        POPEN_PIDS.add(proc.pid)
        self.addCleanup(self._stop, proc, name)
        return proc

    def _stop(self, proc, name):
        """Stop a stand-in as libvirt does: SIGTERM, SIGKILL if it stays."""
        self.pids += children(proc.pid)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def log(self, name):
        with open(os.path.join(self.workdir, name + ".log")) as f:
            return f.read()

    def exec_argv(self, name, required=True):
        for line in self.log(name).splitlines():
            if line.startswith("qemu-mirror-standin: exec: "):
                return shlex.split(line[len("qemu-mirror-standin: exec: "):])
        if required:
            self.fail("no exec line in the log of %s" % name)
        return []

    def qemu_of(self, proc):
        """The real QEMU, child of the stand-in."""
        kids = children(proc.pid)
        self.assertEqual(len(kids), 1, "children of the stand-in: %s" % kids)
        with open("/proc/%d/cmdline" % kids[0], "rb") as f:
            self.assertIn(b"qemu-system-x86_64", f.read().split(b"\0")[0])
        self.pids += kids
        return kids[0]

    def listening_socket(self, name):
        """A listening unix socket, as libvirt passes the monitor."""
        path = os.path.join(self.workdir, name + ".sock")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.listen(1)
        return sock, path

    def start_fd_monitor(self, name, args_of_monitor, conf=None, extra_fds=()):
        """Start a stand-in with an inherited listening monitor socket; the
        stand-in's QMP client and the socket's inode."""
        lsock, path = self.listening_socket(name)
        fd = lsock.fileno()
        monitor = ["-chardev", "socket,id=charmonitor,fd=%d,server=on,wait=off" % fd,
                   "-mon", "chardev=charmonitor,id=monitor,mode=control"]
        proc = self.start(name, args_of_monitor(monitor), conf=conf,
                          pass_fds=(fd,) + tuple(extra_fds))
        inode = os.fstat(fd).st_ino
        lsock.close()  # libvirt keeps no copy either
        qmp = QMP(path)
        self.addCleanup(qmp.close)
        return proc, qmp, inode

    def start_chardev_monitor(self, name, args_of_monitor, conf=None):
        path = os.path.join(self.workdir, name + ".qmp")
        proc = self.start(name, args_of_monitor(
            ["-chardev", "socket,id=charmonitor,path=%s,server=on,wait=off" % path,
             "-mon", "chardev=charmonitor,id=monitor,mode=control"]), conf=conf)
        qmp = QMP(path)
        self.addCleanup(qmp.close)
        return proc, qmp

    def start_qmp_monitor(self, name, args_of_monitor, conf=None):
        path = os.path.join(self.workdir, name + ".qmp")
        proc = self.start(name, args_of_monitor(
            ["-qmp", "unix:%s,server=on,wait=off" % path]), conf=conf)
        qmp = QMP(path)
        self.addCleanup(qmp.close)
        return proc, qmp

    def launch_data(self, name, policy=3, pdh_cert=None, **kwargs):
        """The guest owner's session for a launch on this test's platform."""
        return Launch(self.workdir, name, pdh_cert or self.pdh_cert, policy, **kwargs)

    def inject(self, qmp, launch, key=None, key_id=KEY_ID, **kwargs):
        """The guest owner's secret (the transport key) for this launch's
        measurement, injected; sev-inject-launch-secret's reply."""
        measurement = qmp.cmd("query-sev-launch-measure")["data"]
        header, secret = launch.secret(measurement, key or self.transport_key, key_id,
                                       **kwargs)
        return qmp.execute("sev-inject-launch-secret",
                           **{"packet-header": header, "secret": secret})

    def start_provisioned(self, name, conf=None, target=False, **kwargs):
        """An SEV stand-in launched with the guest owner's session and its
        secret (the transport key) injected, still paused; (proc, qmp,
        launch)."""
        launch = self.launch_data(name)
        proc, qmp = self.start_qmp_monitor(
            name, lambda mon: sev_argv(mon, target=target, launch=launch, **kwargs),
            conf=conf)
        self.assertEqual(self.inject(qmp, launch), {"id": "test-sev-inject-launch-secret",
                                                    "return": {}})
        return proc, qmp, launch


class StandinTest(StandinBase):

    def test_1_probing(self):
        """libvirt's capability probing: -daemonize, -pidfile, -qmp."""
        sock = os.path.join(self.workdir, "qmp.monitor")
        pidfile = os.path.join(self.workdir, "qmp.pid")
        argv = [STANDIN, "-S", "-no-user-config", "-nodefaults", "-nographic",
                "-machine", "none,accel=kvm:tcg",
                "-qmp", "unix:%s,server=on,wait=off" % sock,
                "-pidfile", pidfile, "-daemonize"]
        # like virCommandRun with an error buffer: stderr is read to EOF, so
        # this hangs if a daemon keeps it open (the timeout fails the test)
        res = subprocess.run(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=self.env(self.conf()), timeout=WAIT)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.assertEqual(res.stderr, b"")

        with open(pidfile) as f:
            pid = int(f.read().strip())
        self.pids.append(pid)
        self.assertTrue(alive(pid))
        qemu = children(pid)
        self.assertEqual(len(qemu), 1, "children of the daemon: %s" % qemu)
        self.pids += qemu
        with open("/proc/%d/cmdline" % qemu[0], "rb") as f:
            qemu_argv = f.read().split(b"\0")
        self.assertIn(b"qemu-system-x86_64", qemu_argv[0])
        self.assertNotIn(b"-daemonize", qemu_argv)
        self.assertNotIn(b"-pidfile", qemu_argv)

        qmp = QMP(sock)
        self.addCleanup(qmp.close)
        names = {e["name"] for e in qmp.cmd("query-qmp-schema")}
        self.assertLessEqual(NEW_SCHEMA_NAMES, names)
        # QEMU's own (since 6.0); the stand-in answers it for QEMU
        self.assertIn("sev-inject-launch-secret", names)

        for args in ({}, {"option": "smp-opts"}):
            opts = qmp.cmd("query-command-line-options", **args)
            smp = [o for o in opts if o["option"] == "smp-opts"]
            self.assertEqual(len(smp), 1)
            self.assertIn({"name": "mirrorvcpus", "type": "number"},
                          smp[0]["parameters"])
        opts = qmp.cmd("query-command-line-options", option="machine")
        self.assertEqual([o["option"] for o in opts], ["machine"])

        caps = qmp.cmd("query-sev-capabilities")
        # this host's PDH (sev-pdh-key=), for virsh nodesevinfo
        self.assertEqual(base64.b64decode(caps["pdh"]), self.pdh_cert)
        self.assertEqual(caps["cbitpos"], 47)
        self.assertEqual(caps["reduced-phys-bits"], 1)
        for key in ("pdh", "cert-chain", "cpu0-id"):
            self.assertTrue(base64.b64decode(caps[key]))
        self.assertEqual(qmp.cmd("query-mirror-vcpus"), [])

        # libvirt kills the pid in the pidfile
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(wait_gone([pid] + qemu), "stand-in or QEMU survived SIGTERM")
        self.assertFalse(os.path.exists(pidfile))

    def test_1_probing_failure(self):
        """A QEMU that cannot start: the first process says why, exits 1."""
        sock = os.path.join(self.workdir, "qmp.monitor")
        pidfile = os.path.join(self.workdir, "qmp.pid")
        res = subprocess.run([STANDIN, "-S", "-nodefaults", "-machine", "no-such-machine",
                              "-qmp", "unix:%s,server=on,wait=off" % sock,
                              "-pidfile", pidfile, "-daemonize"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=self.env(self.conf()),
                             timeout=WAIT)
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"no-such-machine", res.stderr)
        self.assertIn(b"before its monitor was up", res.stderr)

    def test_2_sev_source(self):
        """An SEV guest with a mirror vCPU, monitor on an inherited fd."""
        rfd, wfd = os.pipe()
        self.addCleanup(os.close, rfd)
        self.addCleanup(os.close, wfd)
        pipe_inode = os.fstat(rfd).st_ino

        launch = self.launch_data("src")

        def argv(monitor):
            return sev_argv(monitor, launch=launch) + ["-add-fd", "fd=%d,set=7" % rfd]

        proc, qmp, mon_inode = self.start_fd_monitor("src", argv, extra_fds=(rfd,))
        qemu = self.qemu_of(proc)

        # the command line QEMU got
        args = self.exec_argv("src")
        self.assertIn("-smp", args)
        self.assertEqual(args[args.index("-smp") + 1],
                         "1,sockets=2,cores=1,threads=1,maxcpus=2")
        self.assertEqual(args[args.index("-machine") + 1],
                         "pc,usb=off,dump-guest-core=off,acpi=off")
        self.assertNotIn("-bios", args)
        self.assertFalse([a for a in args if "sev-guest" in a or "PcdSev" in a])
        self.assertNotIn("-incoming", args)
        self.assertIn("-kernel", args)

        # fds: the inherited one reaches QEMU, the monitor socket does not
        targets = fd_targets(qemu)
        self.assertIn("pipe:[%d]" % pipe_inode, targets)
        self.assertNotIn("socket:[%d]" % mon_inode, targets)
        self.assertIn("socket:[%d]" % mon_inode, fd_targets(proc.pid))

        # vCPUs: one for the guest, one mirror vCPU as a thread of the stand-in
        self.assertEqual(len(qmp.cmd("query-cpus-fast")), 1)
        self.assertEqual(len(qmp.cmd("query-hotpluggable-cpus")), 1)
        mirror = qmp.cmd("query-mirror-vcpus")
        self.assertEqual(len(mirror), 1)
        self.assertEqual(mirror[0]["cpu-index"], 1)
        tid = mirror[0]["thread-id"]
        self.assertNotEqual(tid, proc.pid)
        self.assertTrue(os.path.isdir("/proc/%d/task/%d" % (proc.pid, tid)))

        # SEV, simulated
        sev = qmp.cmd("query-sev")
        self.assertTrue(sev["enabled"])
        self.assertEqual(sev["policy"], 3)
        self.assertEqual(sev["sev-type"], "sev")
        self.assertEqual(sev["state"], "launch-secret")
        self.assertEqual((sev["api-major"], sev["api-minor"], sev["build-id"]), (1, 55, 24))
        measure = qmp.cmd("query-sev-launch-measure")
        self.assertEqual(len(base64.b64decode(measure["data"])), 48)
        self.assertEqual(self.inject(qmp, launch)["return"], {})

        # before the vCPUs run: helper inactive, SEV blocks migration
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "inactive"})
        self.assertIn(BLOCKER, qmp.cmd("query-migrate").get("blocked-reasons", []))
        self.assertEqual(qmp.error("migrate", uri="tcp:127.0.0.1:%d" % free_port()),
                         BLOCKER)
        self.assertNotIn("status", qmp.cmd("query-migrate"))
        self.assertIn("not started as the target",
                      qmp.error("start-migrate-incoming", uri="tcp:127.0.0.1:1"))
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.3), [])

        qmp.cmd("cont")
        qmp.wait_event("RESUME")
        self.assertEqual(qmp.cmd("query-sev")["state"], "running")
        self.assertEqual(qmp.wait_event("MIGRATION_HELPER")["data"],
                         {"status": "booting"})
        self.assertEqual(qmp.wait_event("MIGRATION_HELPER")["data"],
                         READY)
        self.assertEqual(qmp.cmd("query-migration-helper"), READY)
        # contract version 2: a helper ready with a key lifts the blocker,
        # but 'migrate' is still refused until guest-assisted is on
        self.assertNotIn(BLOCKER, qmp.cmd("query-migrate").get("blocked-reasons", []))
        self.assertEqual(qmp.error("migrate", uri="tcp:127.0.0.1:%d" % free_port()),
                         NEEDS_GUEST_ASSISTED)
        set_guest_assisted(qmp, True)
        self.assertNotIn(BLOCKER, qmp.cmd("query-migrate").get("blocked-reasons", []))
        self.assertEqual(qmp.cmd("query-status")["status"], "running")
        qmp.wait_guest_ready(self.workdir)

        log = self.log("src")
        self.assertIn("qemu-mirror-standin: QMP query-mirror-vcpus (intercepted)", log)
        self.assertIn("qemu-mirror-standin: migration helper: ready", log)
        # names only, never arguments
        self.assertNotIn("tcp:127.0.0.1", log.split("exec:")[-1])

    def test_3_helper_failed(self):
        proc, qmp = self.start_chardev_monitor(
            "failed", sev_argv, conf=self.conf(helper="failed", boot_ms=100))
        self.assertRegex(" ".join(self.exec_argv("failed")),
                         r"socket,id=charmonitor,path=qemu-mirror-standin-\d+-[0-9a-f]{8},"
                         r"abstract=on,server=on,wait=off")
        qmp.cmd("cont")
        self.assertEqual(qmp.wait_event("MIGRATION_HELPER")["data"],
                         {"status": "booting"})
        self.assertEqual(qmp.wait_event("MIGRATION_HELPER")["data"],
                         {"status": "failed",
                          "error": "migration helper did not start (simulated)"})
        self.assertEqual(qmp.cmd("query-migration-helper"),
                         {"status": "failed",
                          "error": "migration helper did not start (simulated)"})
        self.assertEqual(qmp.error("migrate", uri="tcp:127.0.0.1:1"), BLOCKER)
        self.assertIn(BLOCKER, qmp.cmd("query-migrate")["blocked-reasons"])

    def test_3_helper_without_key(self):
        """No launch secret injected: the helper holds no key."""
        launch = self.launch_data("nokey")
        proc, qmp = self.start_qmp_monitor(
            "nokey", lambda mon: sev_argv(mon, launch=launch), conf=self.conf(boot_ms=100))
        qmp.cmd("cont")
        self.assertEqual(qmp.wait_event("MIGRATION_HELPER")["data"],
                         {"status": "booting"})
        self.assertEqual(qmp.wait_event("MIGRATION_HELPER")["data"],
                         {"status": "ready"})
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "ready"})

    def test_3_helper_hang(self):
        proc, qmp = self.start_qmp_monitor(
            "hang", sev_argv, conf=self.conf(helper="hang", boot_ms=100))
        qemu = self.qemu_of(proc)
        qmp.cmd("cont")
        self.assertEqual(qmp.wait_event("MIGRATION_HELPER")["data"],
                         {"status": "booting"})
        # nothing may end this boot, so no wait is too long here; 6 times
        # the configured boot time lets a stand-in that ignored helper=hang
        # show itself on an idle machine
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.6), [])
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "booting"})
        self.assertIn(BLOCKER, qmp.cmd("query-migrate")["blocked-reasons"])

        # QEMU dies with the stand-in, even with SIGKILL
        os.kill(proc.pid, signal.SIGKILL)
        self.assertTrue(wait_gone([qemu]), "QEMU survived its stand-in")

    def test_4_migration(self):
        """Target mode, then a migration from a source stand-in."""
        port = free_port()
        uri = "tcp:127.0.0.1:%d" % port

        tproc, target, _ = self.start_provisioned("target", target=True)
        args = self.exec_argv("target")
        self.assertEqual(args[-2:], ["-incoming", "defer"])
        self.assertFalse([a for a in args if "PcdSev" in a])

        self.assertEqual(target.cmd("query-status")["status"], "prelaunch")
        # refused without guest-assisted, and nothing changes
        self.assertIn("the migration capability guest-assisted is not set",
                      target.error("start-migrate-incoming", uri=uri))
        self.assertEqual(target.cmd("x-query-standin")["lifecycle"], "waiting")
        set_guest_assisted(target, True)
        # refused while the helper is inactive, and nothing changes
        desc = target.error("start-migrate-incoming", uri=uri)
        self.assertIn("not ready (status 'inactive')", desc)
        self.assertEqual(target.cmd("query-status")["status"], "prelaunch")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        self.assertIn("-incoming", target.error("migrate-incoming", uri=uri))
        self.assertEqual(target.events_within("MIGRATION_HELPER", 0.3), [])

        # OVMF boots the helper
        self.assertEqual(target.cmd("cont"), {})
        target.wait_event("RESUME")
        status = target.cmd("query-status")
        self.assertEqual((status["status"], status["running"]), ("running", True))
        self.assertEqual(target.wait_event("MIGRATION_HELPER")["data"],
                         {"status": "booting"})
        ready = target.wait_event("MIGRATION_HELPER")["data"]
        # contract version 3: a target's helper adds its nonce and its key
        # confirmation (hex, 32 bytes each)
        self.assertEqual(len(bytes.fromhex(ready.pop("nonce"))), 32)
        self.assertEqual(len(bytes.fromhex(ready.pop("key-confirmation"))), 32)
        self.assertEqual(ready, READY)

        # migrate-incoming's arguments, checked as QEMU checks them;
        # exit-on-error is dropped (QEMU 7.2 does not have it)
        self.assertEqual(target.error_of("start-migrate-incoming", uri=uri,
                                         **{"exit-on-error": "no"}),
                         ("GenericError",
                          "Invalid parameter type for 'exit-on-error', expected: boolean"))
        self.assertEqual(target.error("start-migrate-incoming", url=uri),
                         "Parameter 'uri' is missing")
        self.assertEqual(target.cmd("x-query-standin")["lifecycle"], "firmware")
        self.assertEqual(target.cmd("start-migrate-incoming", uri=uri,
                                    **{"exit-on-error": False}), {})
        target.wait_event("STOP")
        self.assertIn("started already", target.error("start-migrate-incoming", uri=uri))

        sproc, source, _ = self.start_provisioned("source")
        source.cmd("cont")
        source.wait_guest_ready(self.workdir)
        while source.cmd("query-migration-helper")["status"] != "ready":
            source.wait_event("MIGRATION_HELPER")
        source.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
        set_guest_assisted(source, True)
        give_peer(source, target)
        source.cmd("migrate", uri=uri)
        deadline = time.monotonic() + WAIT
        while True:
            info = source.cmd("query-migrate")
            if info.get("status") == "completed":
                break
            self.assertNotIn(info.get("status"), ("failed", "cancelled"), info)
            self.assertLess(time.monotonic(), deadline, "migration not completed: %s" % info)
            time.sleep(0.1)

        deadline = time.monotonic() + WAIT
        while target.cmd("query-migrate").get("status") != "completed":
            self.assertLess(time.monotonic(), deadline, "target not done")
            time.sleep(0.1)
        self.assertFalse(target.cmd("query-status")["running"])

        data = target.pmemsave(val=guestcheck.PATTERN_ADDR,
                          size=guestcheck.PATTERN_WORDS * 4,
                          filename=os.path.join(self.workdir, "pattern"))
        self.assertEqual(data, {})
        with open(os.path.join(self.workdir, "pattern"), "rb") as f:
            self.assertEqual(guestcheck.pattern_errors(f.read()), [])
        self.assertEqual(target.read_word(guestcheck.READY_ADDR, self.workdir),
                         guestcheck.READY_MAGIC)

        before = target.read_word(guestcheck.COUNTER_ADDR, self.workdir)
        target.cmd("cont")
        target.wait_event("RESUME")
        deadline = time.monotonic() + WAIT
        while target.read_word(guestcheck.COUNTER_ADDR, self.workdir) <= before:
            self.assertLess(time.monotonic(), deadline, "guest counter stuck")
            time.sleep(0.1)

        # target mode has ended: the helper stays (a source helper now), a
        # reset goes to QEMU and boots the guest, not the helper firmware
        self.assertEqual(target.cmd("x-query-standin")["lifecycle"], "guest")
        self.assertIn("target mode has ended",
                      target.error("start-migrate-incoming", uri=uri))
        self.assertEqual(target.cmd("query-migration-helper"), READY)
        target.cmd("system_reset")
        target.wait_event("RESET")
        self.assertEqual(target.wait_helper("booting"), {"status": "booting"})
        self.assertEqual(target.wait_helper("ready"), {"status": "ready"})
        log = self.log("target")
        self.assertIn("target mode ended", log)
        self.assertNotIn("system_reset (intercepted)", log)
        self.assertEqual(target.cmd("query-status")["status"], "running")
        target.wait_guest_ready(self.workdir)

        # quit: the stand-in leaves with QEMU, with its status
        target.execute("quit")
        self.assertEqual(tproc.wait(WAIT), 0)

    def test_5_plain_guest(self):
        """No SEV, no mirror vCPUs: QEMU's command line unchanged, but for
        the monitor."""
        sock = os.path.join(self.workdir, "plain.qmp")
        given = ["-machine", "pc,accel=tcg", "-m", "64", "-smp", "1",
                 "-kernel", GUEST, "-display", "none", "-nodefaults", "-S",
                 "-qmp", "unix:%s,server=on,wait=off" % sock,
                 "-name", "guest=plain test,debug-threads=on"]
        proc = self.start("plain", given)
        qmp = QMP(sock)
        self.addCleanup(qmp.close)

        args = self.exec_argv("plain")
        self.assertEqual(args[0], "/usr/bin/qemu-system-x86_64")
        qmp_at = given.index("-qmp") + 1
        self.assertEqual(args[1:qmp_at + 1], given[:qmp_at])
        self.assertEqual(args[qmp_at + 2:], given[qmp_at + 1:])
        self.assertRegex(args[qmp_at + 1],
                         r"^unix:qemu-mirror-standin-\d+-[0-9a-f]{8},abstract=on,"
                         r"server=on,wait=off$")
        self.assertNotEqual(args[qmp_at + 1], given[qmp_at])
        self.assertIn("simulating: no SEV, no mirror vCPUs", self.log("plain"))

        self.assertEqual(qmp.error("query-sev"), "SEV feature is not available")
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "inactive"})
        self.assertEqual(qmp.cmd("query-mirror-vcpus"), [])
        self.assertNotIn("blocked-reasons", qmp.cmd("query-migrate"))

        # a file descriptor passed with a command (libvirt's getfd for an
        # outgoing migration's socket) reaches QEMU with that command
        self.assertIn("No file descriptor supplied via SCM_RIGHTS",
                      qmp.error("getfd", fdname="nofd"))
        r, w = os.pipe()
        try:
            qmp.cmd("getfd", fds=[w], fdname="passed")
        finally:
            os.close(r)
            os.close(w)
        qmp.cmd("closefd", fdname="passed")
        self.assertIn("passed 1 file descriptor(s) to QEMU", self.log("plain"))
        # one sent with a command the stand-in answers goes nowhere: it is
        # not handed to QEMU with the next command
        r, w = os.pipe()
        try:
            self.assertEqual(qmp.cmd("query-mirror-vcpus", fds=[w]), [])
        finally:
            os.close(r)
            os.close(w)
        self.assertIn("No file descriptor supplied via SCM_RIGHTS",
                      qmp.error("getfd", fdname="stale"))
        qmp.cmd("cont")
        qmp.wait_event("RESUME")
        # (no mirror vCPUs: nothing could start a helper, at any time)
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.5), [])
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "inactive"})

        # replies in the order of the commands, answered by QEMU or not
        qmp.sock.sendall(b'{"execute":"query-status","id":"a"}\r\n'
                         b'{"execute":"query-mirror-vcpus","id":"b"}\r\n'
                         b'{"execute":"query-name"}\r\n')
        deadline = time.monotonic() + WAIT
        replies = []
        while len(replies) < 3:
            msg = qmp._read_msg(deadline)
            if "event" not in msg:
                replies.append(msg)
        self.assertEqual([r.get("id") for r in replies], ["a", "b", None])
        self.assertEqual(replies[1]["return"], [])
        self.assertEqual(replies[2]["return"], {"name": "plain test"})

        # a second client after the first one went: a new QMP session
        qmp.close()
        again = QMP(sock)
        self.addCleanup(again.close)
        self.assertEqual(again.cmd("query-status")["status"], "running")

        # SIGTERM: QEMU goes, the stand-in follows with QEMU's status
        qemu = self.qemu_of(proc)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(WAIT), 0)
        self.assertTrue(wait_gone([qemu]))
        self.assertFalse(os.path.exists(sock))

    def test_6_running_at_start(self):
        """Without -S the helper boots at once; no event reaches a client
        before it negotiated capabilities."""
        sock = os.path.join(self.workdir, "running.qmp")
        args = [a for a in sev_argv(["-qmp", "unix:%s,server=on,wait=off" % sock])
                if a != "-S"]
        self.start("running", args, conf=self.conf(boot_ms=700))
        qmp = QMP(sock, negotiate=False)
        self.addCleanup(qmp.close)
        # 'ready' comes while the client has not negotiated
        deadline = time.monotonic() + WAIT
        while "migration helper: ready" not in self.log("running"):
            self.assertLess(time.monotonic(), deadline, "helper not ready")
            time.sleep(0.05)
        # no wait needed here: the stand-in logs that line and emits the
        # event in one callback of its single main loop (helper.c,
        # helperSet), so qmp_capabilities, read by that loop, comes after
        qmp.cmd("qmp_capabilities")
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.3), [])
        # the vCPUs ran before any secret could be injected: no key
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "ready"})
        self.assertEqual(qmp.cmd("query-status")["status"], "running")
        self.assertEqual(qmp.cmd("query-sev")["state"], "running")

    def sev_source(self, name, conf=None):
        """A running SEV source stand-in, provisioned with the transport key,
        its helper ready; its QMP client."""
        proc, qmp, _ = self.start_provisioned(name, conf=conf)
        qmp.cmd("cont")
        qmp.wait_helper("booting")
        qmp.wait_helper("ready")
        return proc, qmp

    def test_7_schema_matches_fixture(self):
        """The stand-in and the capabilities fixture add the same schema,
        both from qapi-additions.json."""
        with open(ADDITIONS) as f:
            adds = json.load(f)
        objs = load_replies(FIXTURE)
        fixture = reply_of(objs, "query-qmp-schema")
        proc, qmp = self.start_qmp_monitor("schema", sev_argv)
        standin = qmp.cmd("query-qmp-schema")

        fixture_by = {e["name"]: e for e in fixture}
        standin_by = {e["name"]: e for e in standin}
        names = [a["entry"]["name"] for a in adds["schema"]
                 if not a["entry"]["name"].startswith(("$", "[$"))]
        self.assertEqual(set(names), NEW_SCHEMA_NAMES)
        for name in names:
            self.assertIn(name, fixture_by)
            self.assertEqual(canon(standin_by, name), canon(fixture_by, name), name)
        # (each type of the file is reached from one of these names, so
        # every type was compared)

        for add in adds["enum-values"]:
            for value in add["values"]:
                self.assertIn(value, enum_with(fixture, add["of"])["values"])
                self.assertIn(value, enum_with(standin, add["of"])["values"])
                self.assertIn({"name": value}, enum_with(standin, add["of"])["members"])

        for add in adds["smp-opts"]:
            for opts in (reply_of(objs, "query-command-line-options"),
                         qmp.cmd("query-command-line-options")):
                smp = [o for o in opts if o["option"] == "smp-opts"][0]
                self.assertIn(add["parameter"], smp["parameters"])

        fixture_caps = {c["capability"]: c["state"]
                        for c in reply_of(objs, "query-migrate-capabilities")}
        standin_caps = {c["capability"]: c["state"]
                        for c in qmp.cmd("query-migrate-capabilities")}
        for add in adds["migrate-capabilities"]:
            self.assertIs(fixture_caps.get(add["capability"]), False)
            self.assertIs(standin_caps.get(add["capability"]), False)

    def test_8_faults_need_test_mode(self):
        """Without test mode the x- commands do not exist, as in QEMU."""
        proc, qmp = self.sev_source("prod", conf=self.conf(boot_ms=50, test_mode=False))
        for name, args in (("x-helper-fail", {"reason": "r"}),
                           ("x-transport-key", {"present": False}),
                           ("x-helper-hang", {}), ("x-query-standin", {}),
                           ("x-delay-reply", {"command": "query-status", "ms": 1})):
            self.assertEqual(qmp.error_of(name, **args),
                             ("CommandNotFound", "The command %s has not been found" % name))
        self.assertEqual(qmp.cmd("query-migration-helper"), READY)
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.2), [])

    def test_8_faults_bad_input(self):
        """An unknown x- command and malformed arguments: QMP's usual errors."""
        proc, qmp = self.sev_source("bad", conf=self.conf(boot_ms=50))
        self.assertEqual(qmp.error_of("x-no-such-fault"),
                         ("CommandNotFound", "The command x-no-such-fault has not been found"))
        generic = [
            ("x-helper-fail", {}, "Parameter 'reason' is missing"),
            ("x-helper-fail", {"reason": 1},
             "Invalid parameter type for 'reason', expected: string"),
            ("x-helper-fail", {"reason": "r", "now": True}, "Parameter 'now' is unexpected"),
            ("x-transport-key", {"present": "no"},
             "Invalid parameter type for 'present', expected: boolean"),
            ("x-delay-reply", {"command": "stop"}, "Parameter 'ms' is missing"),
            ("x-delay-reply", {"command": "stop", "ms": "1"},
             "Invalid parameter type for 'ms', expected: integer"),
            ("x-delay-reply", {"command": "stop", "ms": -1},
             "Parameter 'ms' expects a value from 0 to 60000"),
            ("x-helper-hang", {"x": 1}, "Parameter 'x' is unexpected"),
        ]
        for name, args, desc in generic:
            self.assertEqual(qmp.error_of(name, **args), ("GenericError", desc))
        # nothing happened
        self.assertEqual(qmp.cmd("query-migration-helper"), READY)
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.2), [])
        self.assertEqual(qmp.cmd("x-query-standin")["helper"], "ready")

    def test_8_helper_fails_at_run_time(self):
        """ready -> failed at run time, with its event; final until a reset."""
        proc, qmp = self.sev_source("runfail", conf=self.conf(boot_ms=50))
        self.assertEqual(qmp.cmd("x-helper-fail", reason="mailbox timeout"), {})
        failed = {"status": "failed", "error": "mailbox timeout"}
        self.assertEqual(qmp.wait_helper("failed"), failed)
        self.assertEqual(qmp.cmd("query-migration-helper"), failed)
        self.assertEqual(qmp.error("migrate", uri="tcp:127.0.0.1:1"), BLOCKER)
        self.assertIn(BLOCKER, qmp.cmd("query-migrate")["blocked-reasons"])
        self.assertIn("the migration helper is failed",
                      qmp.error("x-helper-fail", reason="again"))
        self.assertIn("not ready", qmp.error("x-transport-key", present=True))
        # a reset boots it again, without the key of the first boot
        qmp.cmd("system_reset")
        qmp.wait_event("RESET")
        self.assertEqual(qmp.wait_helper("booting"), {"status": "booting"})
        self.assertEqual(qmp.wait_helper("ready"), {"status": "ready"})

    def test_8_helper_hangs_and_key(self):
        """x-helper-hang during a boot; x-transport-key takes and gives the key."""
        # x-helper-hang must reach the stand-in while this boot runs: one
        # QMP command sent as soon as 'booting' is read (milliseconds, also
        # on a loaded machine) against a boot of 2 s; the stand-in's log
        # tells which it was. Then longer than that boot would have taken:
        # no event.
        boot_ms = 2000
        proc, qmp = self.start_qmp_monitor("hangrt", sev_argv,
                                           conf=self.conf(boot_ms=boot_ms))
        qmp.cmd("cont")
        qmp.wait_helper("booting")
        qmp.cmd("x-helper-hang")
        self.assertIn("migration helper: hangs in its boot", self.log("hangrt"))
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", boot_ms / 1000 + 1), [])
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "booting"})
        self.assertIn("not ready", qmp.error("x-transport-key", present=False))

        proc, qmp = self.sev_source("key", conf=self.conf(boot_ms=50))
        qmp.cmd("x-transport-key", present=False)
        self.assertEqual(qmp.wait_helper("ready"), {"status": "ready"})
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "ready"})
        qmp.cmd("x-transport-key", present=False)      # no change, no event
        # (an event would be sent before the command's reply, which is read)
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.2), [])
        qmp.cmd("x-transport-key", present=True)
        self.assertEqual(qmp.wait_helper("ready"), READY)
        self.assertEqual(qmp.cmd("query-migration-helper"), READY)
        # the next boot hangs
        qmp.cmd("x-helper-hang")
        qmp.cmd("system_reset")
        qmp.wait_helper("booting")
        # armed before the reset: nothing races here; 10 times the boot time
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.5), [])

    def test_8_control_socket(self):
        """Test mode's control socket: x- commands while another client
        holds the monitor; nothing else; none without test mode."""
        ctl_dir = os.path.join(self.workdir, "control")
        os.mkdir(ctl_dir)
        proc, qmp = self.sev_source("ctl", conf=self.conf(boot_ms=50, control_dir=ctl_dir))
        path = os.path.join(ctl_dir, "standin-%d.qmp" % proc.pid)
        ctl = QMP(path)
        self.addCleanup(ctl.close)
        self.assertEqual(ctl.cmd("query-migration-helper"), READY)
        self.assertEqual(ctl.error_of("query-status"),
                         ("CommandNotFound", "The command query-status has not been found"))
        self.assertEqual(ctl.error_of("start-migrate-incoming", uri="tcp:127.0.0.1:1")[0],
                         "CommandNotFound")
        self.assertEqual(ctl.error_of("x-helper-fail")[1], "Parameter 'reason' is missing")
        self.assertEqual(ctl.cmd("x-helper-fail", reason="from the side"), {})
        # the event goes to the monitor client, not to the control client
        self.assertEqual(qmp.wait_helper("failed")["error"], "from the side")
        self.assertEqual(ctl.events_within("MIGRATION_HELPER", 0.2), [])
        ctl.close()
        # one client after the other
        again = QMP(path)
        self.addCleanup(again.close)
        self.assertEqual(again.cmd("x-query-standin")["helper"], "failed")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(WAIT), 0)
        self.assertFalse(os.path.exists(path))

        # without test mode: no control socket, though a directory is set
        conf = self.conf(boot_ms=50, test_mode=False, control_dir=ctl_dir)
        proc, qmp = self.sev_source("noctl", conf=conf)
        self.assertEqual(os.listdir(ctl_dir), [])

    def test_8_delay_reply(self):
        """x-delay-reply: that reply comes later, later replies wait behind it."""
        # the delay is far longer than a query-status round trip
        # (milliseconds, also on a loaded machine), so that "not delayed
        # again" can be told by the time a reply takes
        delay = 2.0
        proc, qmp = self.start_qmp_monitor("delay", sev_argv)
        qmp.cmd("x-delay-reply", command="query-status", ms=int(delay * 1000))
        start = time.monotonic()
        qmp.sock.sendall(b'{"execute":"query-status","id":"a"}\r\n'
                         b'{"execute":"query-migration-helper","id":"b"}\r\n'
                         b'{"execute":"query-name","id":"c"}\r\n')
        deadline = time.monotonic() + WAIT
        replies = []
        while len(replies) < 3:
            msg = qmp._read_msg(deadline)
            if "event" not in msg:
                replies.append((msg.get("id"), time.monotonic() - start))
        self.assertEqual([r[0] for r in replies], ["a", "b", "c"])
        # the stand-in holds it from its arrival, after @start
        self.assertGreaterEqual(replies[0][1], delay)
        # once only: delayed again, this reply would take @delay too
        start = time.monotonic()
        qmp.cmd("query-status")
        self.assertLess(time.monotonic() - start, delay)

    def test_9_stop_cont_reset(self):
        """stop and cont leave the mirror vCPUs and the helper alone; a reset
        reboots the helper and loses the key."""
        proc, qmp = self.sev_source("reset", conf=self.conf(boot_ms=100))
        tid = qmp.cmd("query-mirror-vcpus")[0]["thread-id"]
        qmp.cmd("stop")
        qmp.wait_event("STOP")
        self.assertEqual(qmp.cmd("query-status")["status"], "paused")
        self.assertEqual(qmp.cmd("query-migration-helper"), READY)
        qmp.cmd("cont")
        qmp.wait_event("RESUME")
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.3), [])
        self.assertEqual(qmp.cmd("query-migration-helper"), READY)

        qmp.cmd("system_reset")
        self.assertEqual(qmp.wait_event("RESET")["data"]["reason"], "host-qmp-system-reset")
        self.assertEqual(qmp.wait_helper("booting"), {"status": "booting"})
        self.assertEqual(qmp.wait_helper("ready"), {"status": "ready"})
        self.assertEqual(qmp.cmd("query-mirror-vcpus")[0]["thread-id"], tid)
        self.assertTrue(os.path.isdir("/proc/%d/task/%d" % (proc.pid, tid)))
        self.assertEqual(qmp.cmd("x-query-standin")["lifecycle"], "guest")

        # a VM that never ran: a reset does not start the helper
        proc, qmp = self.start_qmp_monitor("neverran", sev_argv)
        qmp.cmd("system_reset")
        qmp.wait_event("RESET")
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.3), [])
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "inactive"})

    def test_9_target_firmware(self):
        """Target mode before start-migrate-incoming: stop, cont and reset
        act on the helper-only firmware; target mode stays."""
        proc, qmp = self.start_qmp_monitor("tfw", lambda mon: sev_argv(mon, target=True),
                                           conf=self.conf(boot_ms=100))
        self.assertEqual(qmp.cmd("x-query-standin")["lifecycle"], "waiting")
        qmp.cmd("stop")                 # nothing runs: no event
        qmp.cmd("cont")
        qmp.wait_event("RESUME")
        qmp.wait_helper("booting")
        qmp.wait_helper("ready")
        self.assertEqual(qmp.cmd("x-query-standin")["lifecycle"], "firmware")
        qmp.cmd("system_reset")
        qmp.wait_event("RESET")
        self.assertEqual(qmp.wait_helper("booting"), {"status": "booting"})
        self.assertEqual(qmp.wait_helper("ready"), {"status": "ready"})
        self.assertEqual(qmp.cmd("x-query-standin")["lifecycle"], "firmware")
        self.assertEqual(qmp.cmd("query-status")["status"], "running")
        qmp.cmd("stop")
        qmp.wait_event("STOP")
        self.assertEqual(qmp.cmd("query-status")["status"], "prelaunch")
        self.assertEqual(qmp.cmd("x-query-standin")["lifecycle"], "waiting")
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "ready"})
        self.assertIn("system_reset (intercepted)", self.log("tfw"))

    def test_10_guest_assisted(self):
        """The migration capability guest-assisted (contract version 2)."""
        # an SEV guest with mirror vCPUs: true and false, alone or with
        # QEMU's own capabilities (which QEMU applies)
        proc, qmp = self.sev_source("ga", conf=self.conf(boot_ms=50))
        self.assertIs(capabilities(qmp)["guest-assisted"], False)
        self.assertEqual(qmp.error("migrate", uri="tcp:127.0.0.1:1"), NEEDS_GUEST_ASSISTED)
        set_guest_assisted(qmp, True, "events")
        caps = capabilities(qmp)
        self.assertIs(caps["guest-assisted"], True)
        self.assertIs(caps["events"], True)
        self.assertIs(qmp.cmd("x-query-standin")["guest-assisted"], True)
        self.assertNotIn(BLOCKER, qmp.cmd("query-migrate").get("blocked-reasons", []))
        # QEMU refuses the rest: guest-assisted does not change either
        self.assertIn("xbzrle", capabilities(qmp))
        self.assertEqual(qmp.error("migrate-set-capabilities", capabilities=[
            {"capability": "guest-assisted", "state": False},
            {"capability": "no-such-capability", "state": True}])[:9], "Parameter")
        self.assertIs(capabilities(qmp)["guest-assisted"], True)
        # the key lost: the blocker is back
        qmp.cmd("x-transport-key", present=False)
        self.assertIn(BLOCKER, qmp.cmd("query-migrate")["blocked-reasons"])
        self.assertEqual(qmp.error("migrate", uri="tcp:127.0.0.1:1"), BLOCKER)
        qmp.cmd("x-transport-key", present=True)
        self.assertNotIn(BLOCKER, qmp.cmd("query-migrate").get("blocked-reasons", []))
        set_guest_assisted(qmp, False, "events")
        caps = capabilities(qmp)
        self.assertIs(caps["guest-assisted"], False)
        self.assertIs(caps["events"], False)
        # the helper is ready with its key, but QEMU refuses 'migrate'
        self.assertNotIn(BLOCKER, qmp.cmd("query-migrate").get("blocked-reasons", []))
        self.assertEqual(qmp.error("migrate", uri="tcp:127.0.0.1:1"), NEEDS_GUEST_ASSISTED)
        self.assertIn("migrate-set-capabilities: guest-assisted=false (intercepted)",
                      self.log("ga"))

        # an SEV guest without mirror vCPUs, and a plain guest: true is
        # refused and nothing of that command applies; false always works
        nomirror = self.start_qmp_monitor(
            "ga-nomirror", lambda mon: sev_argv(mon, smp="1,sockets=1,cores=1,threads=1"))[1]
        sock = os.path.join(self.workdir, "ga-plain.qmp")
        self.start("ga-plain", ["-machine", "pc,accel=tcg", "-m", "64", "-smp", "1",
                                "-display", "none", "-nodefaults", "-S",
                                "-qmp", "unix:%s,server=on,wait=off" % sock])
        plain = QMP(sock)
        self.addCleanup(plain.close)
        for vm in (nomirror, plain):
            self.assertEqual(vm.error_of("migrate-set-capabilities", capabilities=[
                {"capability": "events", "state": True},
                {"capability": "guest-assisted", "state": True}]),
                ("GenericError",
                 "guest-assisted migration needs an SEV guest with mirror vCPUs"))
            caps = capabilities(vm)
            self.assertIs(caps["guest-assisted"], False)
            self.assertIs(caps["events"], False)
            self.assertEqual(set_guest_assisted(vm, False), {})
            set_guest_assisted(vm, False, "events")
            self.assertIs(capabilities(vm)["guest-assisted"], False)
        self.assertEqual(plain.cmd("query-status")["status"], "prelaunch")


    # ------------------------------------------------------------------
    # the simulated secure processor (psp.c)

    def launch_fails(self, name, launch, policy=3):
        """A launch that LAUNCH_START refuses: the stand-in (as QEMU) exits
        1 before its monitor is up; its log."""
        sock = os.path.join(self.workdir, name + ".qmp")
        proc = self.start(name, sev_argv(["-qmp", "unix:%s,server=on,wait=off" % sock],
                                         launch=launch, policy=policy))
        self.assertEqual(proc.wait(WAIT), 1)
        self.assertFalse(os.path.exists(sock))
        return self.log(name)

    def test_11_platform(self):
        """query-sev-capabilities: this host's PDH as a sev_cert, an
        unsigned PEK, OCA and CEK; a missing key file is generated (0600)
        and kept."""
        proc, qmp = self.start_qmp_monitor("caps", sev_argv)
        caps = qmp.cmd("query-sev-capabilities")
        pdh = base64.b64decode(caps["pdh"])
        self.assertEqual(pdh, self.pdh_cert)
        fields, _ = cert_public(pdh)
        self.assertEqual(fields, {"version": 1, "usage": USAGE_PDH, "algo": 3, "curve": 2,
                                  "sig1_usage": 0x1000, "sig2_usage": 0x1000})
        chain = base64.b64decode(caps["cert-chain"])
        self.assertEqual(len(chain), 3 * CERT_SIZE)
        usages = []
        for i in range(3):
            fields, key = cert_public(chain[i * CERT_SIZE:(i + 1) * CERT_SIZE])
            usages.append(fields["usage"])
            self.assertEqual((fields["sig1_usage"], fields["sig2_usage"]), (0x1000, 0x1000))
            self.assertNotEqual(key.public_numbers().x, cert_public(pdh)[1].public_numbers().x)
        self.assertEqual(usages, [USAGE_PEK, USAGE_OCA, USAGE_CEK])
        # the private key is nowhere in the log
        with open(self.pdh_path) as f:
            pem_body = "".join(f.read().splitlines()[1:-1])
        self.assertNotIn(pem_body[:40], self.log("caps"))

        # no key yet: generated, mode 0600, and the next stand-in uses it
        new_key = os.path.join(self.workdir, "new-pdh.pem")
        conf = self.conf(pdh_key=new_key)
        first = self.start_qmp_monitor("gen1", sev_argv, conf=conf)[1]
        pdh1 = first.cmd("query-sev-capabilities")["pdh"]
        self.assertEqual(os.stat(new_key).st_mode & 0o777, 0o600)
        self.assertEqual([f for f in os.listdir(self.workdir) if f.endswith(".tmp")], [])
        self.assertNotEqual(base64.b64decode(pdh1), self.pdh_cert)
        second = self.start_qmp_monitor("gen2", sev_argv, conf=conf)[1]
        self.assertEqual(second.cmd("query-sev-capabilities")["pdh"], pdh1)
        self.assertIn("generated the platform's PDH key", self.log("gen1"))
        self.assertNotIn("generated", self.log("gen2"))
        with open(new_key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        self.assertEqual(base64.b64decode(pdh1), cert_of(key.public_key()))

    def test_11_launch_measurement(self):
        """A good session: LAUNCH_START takes the guest owner's TEK and TIK;
        the measurement is the one virt-qemu-sev-validate expects, with and
        without kernel hashes, and differs per launch (mnonce)."""
        conf = self.conf(extra="sev-api-major=1\nsev-api-minor=51\nsev-build-id=3\n")
        launch = self.launch_data("good", policy=3)
        proc, qmp = self.start_qmp_monitor(
            "good", lambda mon: sev_argv(mon, launch=launch), conf=conf)
        sev = qmp.cmd("query-sev")
        self.assertEqual((sev["api-major"], sev["api-minor"], sev["build-id"]), (1, 51, 3))
        self.assertEqual(sev["state"], "launch-secret")
        measurement = qmp.cmd("query-sev-launch-measure")["data"]
        launch.validator(measurement, api=(1, 51, 3)).attest()
        # the check can fail: another firmware, another TIK, another version
        other_fw = os.path.join(self.workdir, "other.fd")
        with open(other_fw, "wb") as f:
            f.write(b"not the firmware that was launched")
        for vm in (launch.validator(measurement, firmware=other_fw, api=(1, 51, 3)),
                   launch.validator(measurement, tik=os.urandom(16), api=(1, 51, 3)),
                   launch.validator(measurement)):
            with self.assertRaises(SEV_VALIDATE.AttestationFailedException):
                vm.attest()
        log = self.log("good")
        self.assertIn("LAUNCH_START with the guest owner's session", log)
        for secret in (launch.tek, launch.tik):
            for text in (secret.hex(), base64.b64encode(secret).decode()):
                self.assertNotIn(text, log)

        # the same session again (a second launch): another mnonce, another
        # measurement, both verified
        again = self.start_qmp_monitor(
            "again", lambda mon: sev_argv(mon, launch=launch), conf=conf)[1]
        measurement2 = again.cmd("query-sev-launch-measure")["data"]
        self.assertNotEqual(base64.b64decode(measurement)[32:],
                            base64.b64decode(measurement2)[32:])
        launch.validator(measurement2, api=(1, 51, 3)).attest()

        # kernel-hashes=on: the kernel hashes table is measured too
        hashed = self.launch_data("hashes", policy=3)
        qmp = self.start_qmp_monitor(
            "hashes", lambda mon: sev_argv(mon, launch=hashed, kernel_hashes=True))[1]
        measurement = qmp.cmd("query-sev-launch-measure")["data"]
        hashed.validator(measurement, kernel=GUEST).attest()
        with self.assertRaises(SEV_VALIDATE.AttestationFailedException):
            hashed.validator(measurement).attest()

    def test_11_launch_start_refused(self):
        """A bad session: LAUNCH_START fails and the launch with it, as QEMU
        exits; nothing of the keys in the log."""
        # wrong MAC
        launch = self.launch_data("badmac")
        session = bytearray(launch.session)
        session[64] ^= 1
        launch.write(launch.dh_cert, bytes(session))
        log = self.launch_fails("badmac", launch)
        self.assertIn("sev_launch_start: LAUNCH_START ret=-1 fw_error=11 'Bad measurement'", log)
        self.assertIn("wrap_mac does not verify", log)
        self.assertNotIn("exec:", log)          # QEMU never started
        # made for another platform's PDH
        other = cert_of(ec.generate_private_key(ec.SECP384R1()).public_key())
        log = self.launch_fails("otherpdh", self.launch_data("otherpdh", pdh_cert=other))
        self.assertIn("wrap_mac does not verify", log)
        # made for another policy
        log = self.launch_fails("policy", self.launch_data("policy", policy=1), policy=3)
        self.assertIn("fw_error=7", log)
        self.assertIn("policy_mac does not verify for policy 0x3", log)
        # not a PDH certificate
        launch = self.launch_data("notpdh")
        cert = bytearray(launch.dh_cert)
        cert[8:12] = le32(USAGE_PEK)
        launch.write(bytes(cert), launch.session)
        self.assertIn("fw_error=6 'Invalid certificate'", self.launch_fails("notpdh", launch))
        for name in ("badmac", "otherpdh", "policy", "notpdh"):
            log = self.log(name)
            self.assertNotIn(self.transport_key.hex(), log)

    def test_11_inject_refused(self):
        """sev-inject-launch-secret: a wrong TIK, the measurement of another
        launch (a replayed secret) and an injection after cont are refused;
        the helper then holds no key."""
        launch = self.launch_data("inj")
        proc, qmp = self.start_qmp_monitor("inj", lambda mon: sev_argv(mon, launch=launch))
        measurement = qmp.cmd("query-sev-launch-measure")["data"]
        refused = "SEV: LAUNCH_SECRET ret=-1 fw_error=11 'Bad measurement'"

        # a secret built with a wrong TIK
        desc = self.inject(qmp, launch, tik=os.urandom(16))["error"]["desc"]
        self.assertTrue(desc.startswith(refused), desc)
        self.assertIn("MAC does not verify", desc)
        # a secret built for another launch's measurement: the same session,
        # so the same TEK and TIK, but another mnonce
        earlier = self.start_qmp_monitor(
            "earlier", lambda mon: sev_argv(mon, launch=launch))[1]
        earlier_m = earlier.cmd("query-sev-launch-measure")["data"]
        self.assertNotEqual(earlier_m, measurement)
        header, secret = launch.secret(earlier_m, self.transport_key)
        self.assertEqual(earlier.cmd("sev-inject-launch-secret",
                                     **{"packet-header": header, "secret": secret}), {})
        desc = qmp.error("sev-inject-launch-secret", **{"packet-header": header,
                                                        "secret": secret})
        self.assertTrue(desc.startswith(refused), desc)
        # a measurement of this launch with one bit changed
        changed = bytearray(base64.b64decode(measurement))
        changed[0] ^= 1
        header, secret = launch.secret(base64.b64encode(bytes(changed)).decode(),
                                       self.transport_key)
        self.assertTrue(qmp.error("sev-inject-launch-secret", **{
            "packet-header": header, "secret": secret}).startswith(refused))
        # QEMU's argument checks and decoding errors
        self.assertEqual(qmp.error("sev-inject-launch-secret", secret="AAAA"),
                         "Parameter 'packet-header' is missing")
        self.assertEqual(qmp.error("sev-inject-launch-secret",
                                   **{"packet-header": "", "secret": secret}),
                         "SEV: Failed to decode sequence header")
        # no error names key material
        for text in (self.transport_key.hex(), launch.tik.hex(), launch.tek.hex()):
            self.assertNotIn(text, self.log("inj"))

        qmp.cmd("cont")
        self.assertEqual(qmp.cmd("query-sev")["state"], "running")
        qmp.wait_helper("booting")
        self.assertEqual(qmp.wait_helper("ready"), {"status": "ready"})
        # after cont (LAUNCH_FINISH): even a good secret is refused
        self.assertEqual(self.inject(qmp, launch)["error"]["desc"], NO_STATE)
        self.assertEqual(qmp.cmd("query-migration-helper"), {"status": "ready"})
        self.assertIn("x-transport-key: no launch secret with a transport key was injected",
                      qmp.error("x-transport-key", present=True))
        self.assertEqual(qmp.events_within("MIGRATION_HELPER", 0.3), [])

    def test_11_key_id(self):
        """After a good injection the helper reports the guest owner's key
        id with its key, in the reply and the event; a table without a
        transport key gives none; the last injection counts."""
        proc, qmp, launch = self.start_provisioned("kid", conf=self.conf(boot_ms=50))
        # a second, good secret with another key id replaces the first
        self.assertEqual(self.inject(qmp, launch, key_id="owner-key:2")["return"], {})
        qmp.cmd("cont")
        qmp.wait_helper("booting")
        want = dict(READY, **{"transport-key-id": "owner-key:2"})
        self.assertEqual(qmp.wait_helper("ready"), want)
        self.assertEqual(qmp.cmd("query-migration-helper"), want)
        self.assertIn("launch secret injected: a transport key, key id 'owner-key:2'",
                      self.log("kid"))
        self.assertNotIn(self.transport_key.hex(), self.log("kid"))
        # dropped and restored: the injected key
        qmp.cmd("x-transport-key", present=False)
        self.assertEqual(qmp.wait_helper("ready"), {"status": "ready"})
        qmp.cmd("x-transport-key", present=True)
        self.assertEqual(qmp.wait_helper("ready"), want)
        # a reset loses it
        qmp.cmd("system_reset")
        qmp.wait_helper("booting")
        self.assertEqual(qmp.wait_helper("ready"), {"status": "ready"})

        # a secret table without a transport key entry, or with a bad key
        # id: accepted by the secure processor, but the helper has no key
        for name, entries in (
                ("nokey", {KEY_ID_GUID: b"owner-key:1"}),
                ("noid", {TRANSPORT_KEY_GUID: self.transport_key}),
                ("badid", {TRANSPORT_KEY_GUID: self.transport_key,
                           KEY_ID_GUID: b"no spaces allowed"}),
                ("shortkey", {TRANSPORT_KEY_GUID: self.transport_key[:16],
                              KEY_ID_GUID: b"owner-key:1"})):
            launch = self.launch_data(name)
            qmp = self.start_qmp_monitor(name, lambda mon: sev_argv(mon, launch=launch),
                                         conf=self.conf(boot_ms=50))[1]
            self.assertEqual(self.inject(qmp, launch, entries=entries)["return"], {})
            qmp.cmd("cont")
            qmp.wait_helper("booting")
            self.assertEqual(qmp.wait_helper("ready"), {"status": "ready"}, name)
            self.assertIn("the guest finds no transport key", self.log(name))


KEY_A = "a1" * 32
KEY_B = "b2" * 32


def two_free_ports():
    """Two distinct free ports on 127.0.0.1."""
    while True:
        a, b = free_port(), free_port()
        if a != b:
            return a, b


def stream_header(key, target_nonce, key_id, source_nonce=None):
    """A contract version 3 stream header made here from the format, under
    transport key @key."""
    source_nonce = source_nonce or os.urandom(32)
    channel = (0).to_bytes(4, "big")
    skey = hmac.new(key, b"lvmirror v3 stream key\0" + source_nonce + target_nonce
                    + channel, hashlib.sha256).digest()
    header = (b"LVMIRROR-STREAM3" + channel + source_nonce + target_nonce
              + bytes([len(key_id)]) + key_id)
    return header + hmac.new(skey, b"lvmirror v3 source confirmation\0" + header,
                             hashlib.sha256).digest()


def send_raw(port, data):
    """A raw TCP sender: @data to 127.0.0.1:@port, then close; the peer may
    close first."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(1 << 16):
                pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        except OSError as e:
            if e.errno != errno.ENOTCONN:
                raise


def give_peer(source, target):
    """Contract version 3: the target's nonce and key confirmation, from its
    query-migration-helper, to the source's helper (as libvirt hands them
    over, through the Prepare cookie)."""
    info = target.cmd("query-migration-helper")
    return source.cmd("migrate-set-parameters",
                      **{"helper-peer-nonce": info["nonce"],
                         "helper-peer-confirmation": info["key-confirmation"]})


class StreamTest(StandinBase):
    """The encrypted migration stream (e2e/standin/stream.c): two stand-ins
    with an SEV guest, each helper holding a transport key set with
    x-transport-key (key, key-id)."""

    def env(self, conf):
        """The stand-ins' private runtime directories go to WORKDIR/tmp."""
        env = super().env(conf)
        env["TMPDIR"] = os.path.join(self.workdir, "tmp")
        os.makedirs(env["TMPDIR"], exist_ok=True)
        return env

    def stream_target(self, uri, key=KEY_A, key_id="owner-key-1", tls=None, name="target"):
        """A target stand-in, helper ready with its key, listening on @uri."""
        tproc, target = self.start_qmp_monitor(
            name, lambda mon: sev_argv(mon, target=True) + (tls or []))
        set_guest_assisted(target, True)
        target.cmd("cont")
        target.wait_helper("booting")
        target.wait_helper("ready")
        target.cmd("x-transport-key", present=True, key=key, **{"key-id": key_id})
        return tproc, target

    def stream_source(self, key=KEY_A, key_id="owner-key-1", bandwidth=1 << 30, tls=None):
        """A running source stand-in, helper ready with its key."""
        sproc, source = self.start_qmp_monitor(
            "source", lambda mon: sev_argv(mon) + (tls or []))
        source.cmd("cont")
        source.wait_guest_ready(self.workdir)
        while source.cmd("query-migration-helper")["status"] != "ready":
            source.wait_event("MIGRATION_HELPER")
        source.cmd("x-transport-key", present=True, key=key, **{"key-id": key_id})
        source.cmd("migrate-set-parameters", **{"max-bandwidth": bandwidth})
        set_guest_assisted(source, True)
        return sproc, source

    def wait_source(self, source, want, timeout=WAIT):
        """The source's migration ends: its final query-migrate."""
        deadline = time.monotonic() + timeout
        while True:
            info = source.cmd("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                self.assertEqual(info["status"], want, info)
                return info
            self.assertLess(time.monotonic(), deadline, "migration not over: %s" % info)
            time.sleep(0.1)

    def assert_target_done(self, target):
        deadline = time.monotonic() + WAIT
        while target.cmd("query-migrate").get("status") != "completed":
            self.assertLess(time.monotonic(), deadline, "target not done")
            time.sleep(0.1)
        target.pmemsave(val=guestcheck.PATTERN_ADDR,
                   size=guestcheck.PATTERN_WORDS * 4,
                   filename=os.path.join(self.workdir, "pattern"))
        with open(os.path.join(self.workdir, "pattern"), "rb") as f:
            self.assertEqual(guestcheck.pattern_errors(f.read()), [])

    def assert_source_untouched(self, source):
        """The source guest runs on, its memory intact."""
        self.assertEqual(source.cmd("query-status")["status"], "running")
        before = source.read_word(guestcheck.COUNTER_ADDR, self.workdir)
        deadline = time.monotonic() + WAIT
        while source.read_word(guestcheck.COUNTER_ADDR, self.workdir) <= before:
            self.assertLess(time.monotonic(), deadline, "source guest counter stuck")
            time.sleep(0.1)
        source.pmemsave(val=guestcheck.PATTERN_ADDR,
                   size=guestcheck.PATTERN_WORDS * 4,
                   filename=os.path.join(self.workdir, "src-pattern"))
        with open(os.path.join(self.workdir, "src-pattern"), "rb") as f:
            self.assertEqual(guestcheck.pattern_errors(f.read()), [])

    def assert_target_failed(self, tproc, cause, name="target"):
        """The target's QEMU ended its failed incoming migration (QEMU 7.2
        exits), and its stand-in with it; the log names @cause."""
        self.assertNotEqual(tproc.wait(WAIT), 0)
        self.assertIn("migration stream (incoming) failed: " + cause, self.log(name))

    def test_1_same_key(self):
        """Both helpers hold the same key: the guest arrives, the stream
        was encrypted (and the key never reaches the log)."""
        uri = "tcp:127.0.0.1:%d" % free_port()
        tproc, target = self.stream_target(uri)
        self.assertEqual(target.cmd("start-migrate-incoming", uri=uri), {})
        target.wait_event("STOP")
        # QEMU listens on the stand-in's unix socket, the stand-in on @uri
        sproc, source = self.stream_source()
        give_peer(source, target)
        source.cmd("migrate", uri=uri)
        self.wait_source(source, "completed")
        self.assert_target_done(target)
        self.assertIn("migration stream (incoming) ended", self.log("target"))
        deadline = time.monotonic() + WAIT
        while "migration stream (outgoing) ended" not in self.log("source"):
            self.assertLess(time.monotonic(), deadline, self.log("source"))
            time.sleep(0.1)
        for name in ("source", "target"):
            log = self.log(name)
            self.assertIn("encrypted stream", log)
            self.assertNotIn(KEY_A, log.lower())
        self.assertNotIn("failed", self.log("target"))
        # the private runtime directories: 0700, and gone with the stand-ins
        rundirs = [os.path.join(self.workdir, "tmp", d)
                   for d in os.listdir(os.path.join(self.workdir, "tmp"))]
        self.assertEqual(len(rundirs), 2)
        self.assertEqual({os.stat(d).st_mode & 0o777 for d in rundirs}, {0o700})
        target.execute("quit")
        source.execute("quit")
        self.assertEqual((tproc.wait(WAIT), sproc.wait(WAIT)), (0, 0))
        self.assertEqual(os.listdir(os.path.join(self.workdir, "tmp")), [])

    def test_2_other_key_same_id(self):
        """The target holds another key under the same id: its key
        confirmation does not verify under the source's key, and the
        source's 'migrate' fails before anything is sent; the source guest
        runs on."""
        uri = "tcp:127.0.0.1:%d" % free_port()
        tproc, target = self.stream_target(uri, key=KEY_B)
        target.cmd("start-migrate-incoming", uri=uri)
        sproc, source = self.stream_source(key=KEY_A)
        give_peer(source, target)
        self.assertEqual(source.error("migrate", uri=uri),
                         "key confirmation failed: the target's helper does not "
                         "prove the transport key 'owner-key-1'")
        self.assertIn("key confirmation failed", self.log("source"))
        # the peer parameters served that one attempt: not set, refused
        self.assertIn("were not set", source.error("migrate", uri=uri))
        self.assertNotIn("migration stream", self.log("target"))
        self.assert_source_untouched(source)

    def test_3_other_key_id(self):
        """Another key id: the target's confirmation covers its key id, the
        source refuses it; a header with another key id is refused by the
        target before any record."""
        uri = "tcp:127.0.0.1:%d" % free_port()
        tproc, target = self.stream_target(uri, key_id="owner-key-2")
        target.cmd("start-migrate-incoming", uri=uri)
        sproc, source = self.stream_source(key_id="owner-key-1")
        give_peer(source, target)
        self.assertIn("key confirmation failed", source.error("migrate", uri=uri))
        self.assert_source_untouched(source)
        info = target.cmd("query-migration-helper")
        header = stream_header(bytes.fromhex(KEY_A), bytes.fromhex(info["nonce"]),
                               b"owner-key-1")
        send_raw(int(uri.rsplit(":", 1)[1]), header)
        self.assert_target_failed(
            tproc, "handshake: the source's key id 'owner-key-1' is not this "
                   "helper's 'owner-key-2'")

    def test_4_truncated(self):
        """The source dies mid-stream: the target sees the stream cut
        before its end record, and fails."""
        uri = "tcp:127.0.0.1:%d" % free_port()
        tproc, target = self.stream_target(uri)
        target.cmd("start-migrate-incoming", uri=uri)
        sproc, source = self.stream_source(bandwidth=1 << 20)
        give_peer(source, target)
        source.cmd("migrate", uri=uri)
        deadline = time.monotonic() + WAIT
        while source.cmd("query-migrate").get("ram", {}).get("transferred", 0) < 1 << 20:
            self.assertLess(time.monotonic(), deadline, "no progress")
            time.sleep(0.1)
        sproc.kill()
        self.assert_target_failed(tproc, "truncated: the source closed the stream "
                                         "before its end")

    def test_7_replay(self):
        """Contract version 3: the recorded stream of a completed migration,
        replayed by a raw TCP sender into a fresh target that holds the same
        transport key, is refused at key confirmation: the error names it,
        no record is accepted, the fresh target's QEMU ends."""
        def pair(uri):
            tproc, target = self.stream_target(uri)
            target.cmd("start-migrate-incoming", uri=uri)
            sproc, source = self.stream_source()
            return source, target

        rec = self.capture_migration("replayed", pair)
        there, _ = rec.only()
        # the recording is whole and genuine: it decodes under the key
        self.assertEqual(wirecapture.decode_stream(*rec.only(), bytes.fromhex(KEY_A))[0],
                         "owner-key-1")
        port = free_port()
        uri = "tcp:127.0.0.1:%d" % port
        tproc, fresh = self.stream_target(uri, name="fresh")
        fresh.cmd("start-migrate-incoming", uri=uri)
        send_raw(port, there)
        self.assert_target_failed(tproc, "key confirmation failed: the stream was made "
                                         "for another target's nonce", name="fresh")
        self.assertIn("migration stream (incoming): 0 records accepted", self.log("fresh"))

    def test_7_forged_proof(self):
        """A header for the target's own nonce, but made without the
        transport key: the source's proof fails, before any record."""
        port = free_port()
        uri = "tcp:127.0.0.1:%d" % port
        tproc, target = self.stream_target(uri)
        target.cmd("start-migrate-incoming", uri=uri)
        info = target.cmd("query-migration-helper")
        # the target's proof is the documented HMAC of its nonce and key id
        self.assertEqual(bytes.fromhex(info["key-confirmation"]),
                         wirecapture.target_confirmation(bytes.fromhex(KEY_A), "owner-key-1",
                                                         bytes.fromhex(info["nonce"])))
        send_raw(port, stream_header(bytes.fromhex(KEY_B), bytes.fromhex(info["nonce"]),
                                     b"owner-key-1") + b"\0" * 64)
        self.assert_target_failed(tproc, "key confirmation failed: the source does not "
                                         "prove the stream key")
        self.assertIn("migration stream (incoming): 0 records accepted", self.log("target"))

    def test_8_fd_from_libvirt(self):
        """libvirt connects to the destination itself and passes the socket
        (getfd "migrate", then migrate "fd:migrate"): the stand-in keeps
        it, QEMU migrates to the stand-in, the records go on that socket."""
        port = free_port()
        uri = "tcp:127.0.0.1:%d" % port
        tproc, target = self.stream_target(uri)
        target.cmd("start-migrate-incoming", uri=uri)
        sproc, source = self.stream_source()
        give_peer(source, target)
        # a closefd of it before migrate: the stand-in's to close
        with socket.create_connection(("127.0.0.1", port)) as sock:
            self.assertEqual(source.cmd("getfd", fds=[sock.fileno()], fdname="migrate"), {})
        self.assertEqual(source.cmd("closefd", fdname="migrate"), {})
        self.assertIn("has not been found", source.error("migrate", uri="fd:migrate"))
        # the target took that first connection and failed: a new target
        self.assert_target_failed(tproc, "the source closed the connection")
        port = free_port()
        uri = "tcp:127.0.0.1:%d" % port
        tproc, target = self.stream_target(uri, name="target2")
        target.cmd("start-migrate-incoming", uri=uri)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            self.assertEqual(source.cmd("getfd", fds=[sock.fileno()], fdname="migrate"), {})
        give_peer(source, target)
        source.cmd("migrate", uri="fd:migrate")
        self.wait_source(source, "completed")
        self.assert_target_done(target)
        self.assertIn("the stand-in keeps the migration socket", self.log("source"))
        self.assertNotIn("passed 1 file descriptor(s) to QEMU", self.log("source"))

    def test_5_bind_failure_and_refusals(self):
        """start-migrate-incoming: a port in use is the command's error;
        a non-tcp URI is refused; x-transport-key's new members."""
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        uri = "tcp:127.0.0.1:%d" % busy.getsockname()[1]
        tproc, target = self.stream_target(uri)
        self.assertEqual(target.error("start-migrate-incoming", uri=uri),
                         "Failed to bind socket: Address already in use")
        self.assertEqual(target.cmd("x-query-standin")["lifecycle"], "firmware")
        self.assertIn("tcp: URIs only",
                      target.error("start-migrate-incoming", uri="unix:/tmp/x"))
        self.assertEqual(target.error("x-transport-key", present=True, key="ab",
                                      **{"key-id": "k"}),
                         "Parameter 'key' expects 64 hexadecimal digits")
        self.assertIn("'key-id' expects",
                      target.error("x-transport-key", present=True, key=KEY_A,
                                   **{"key-id": "a b"}))
        for args in ({"present": True, "key": KEY_A}, {"present": True, "key-id": "k"},
                     {"present": False, "key": KEY_A, "key-id": "k"}):
            self.assertIn("'key' and 'key-id' go together",
                          target.error("x-transport-key", **args))
        # without a key nothing is bound
        target.cmd("x-transport-key", present=False)
        port = free_port()
        self.assertIn("holds no transport key",
                      target.error("start-migrate-incoming", uri="tcp:127.0.0.1:%d" % port))
        # and then a good one
        target.cmd("x-transport-key", present=True)
        self.assertEqual(target.cmd("start-migrate-incoming",
                                    uri="tcp:[::ffff:127.0.0.1]:%d" % port), {})
        socket.create_connection(("127.0.0.1", port), timeout=2).close()

    def capture_migration(self, name, start_pair, confidential=True):
        """Record one migration through the recording relay
        (e2e/wirecapture.py): the source migrates to the relay, the relay
        to the target. The Recording (whole, or Inconclusive)."""
        port, relay_port = two_free_ports()
        path = os.path.join(self.workdir, name + ".rec")
        source, target = start_pair("tcp:127.0.0.1:%d" % port)
        with wirecapture.Relay(("127.0.0.1", relay_port), ("127.0.0.1", port), path):
            if confidential:
                give_peer(source, target)
            source.cmd("migrate", uri="tcp:127.0.0.1:%d" % relay_port)
            self.wait_source(source, "completed")
            self.assert_target_done(target)
        rec = wirecapture.Recording(path)
        # the recording holds the whole stream: the guest's 4 MiB pattern and more
        self.assertGreater(rec.total(), 4 << 20)
        return rec

    def pattern_hits(self, rec):
        return rec.count(wirecapture.guest_pattern_windows())

    def test_6_capture(self):
        """The guest's memory pattern is on the wire of a plain migration,
        and never on the wire of a confidential one."""
        def plain_pair(uri):
            def argv(mon, incoming=None):
                args = ["-machine", "pc,accel=tcg", "-m", "64", "-smp", "1",
                        "-kernel", GUEST, "-display", "none", "-nodefaults"]
                return args + mon + (["-incoming", incoming] if incoming else [])
            tproc, target = self.start_qmp_monitor(
                "plain-target", lambda mon: argv(mon, uri))
            sproc, source = self.start_qmp_monitor("plain-source", argv)
            source.wait_guest_ready(self.workdir)
            source.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
            return source, target

        def confidential_pair(uri):
            tproc, target = self.stream_target(uri)
            target.cmd("start-migrate-incoming", uri=uri)
            sproc, source = self.stream_source()
            return source, target

        plain = self.capture_migration("plain", plain_pair, confidential=False)
        self.assertGreater(self.pattern_hits(plain), 0)
        # a plain migration passes through the stand-ins untouched
        self.assertEqual(plain.count(b"LVMIRROR-STREAM3"), 0)
        self.assertEqual(plain.only()[0][:4], b"QEVM")
        confidential = self.capture_migration("confidential", confidential_pair)
        self.assertEqual(self.pattern_hits(confidential), 0)
        # the records decrypt (python3-cryptography, from the format), and
        # the plaintext is QEMU's migration stream with the pattern in it:
        # what the stand-in hid is what the plain recording showed; every
        # record authenticates up to the end record, so the recording that
        # found no pattern is the whole stream
        key_id, there, back = wirecapture.decode_stream(*confidential.only(),
                                                        bytes.fromhex(KEY_A))
        self.assertEqual(key_id, "owner-key-1")
        self.assertEqual(there[:4], b"QEVM")
        self.assertGreater(sum(there.count(w) for w in wirecapture.guest_pattern_windows()), 0)
        self.assertEqual(back, b"")

    def test_7_qemu_tls_inside(self):
        """QEMU's own TLS (tls-creds, tls-hostname, as libvirt sets them
        with --tls) runs end to end between the QEMUs, inside the records."""
        pki = os.path.join(self.workdir, "pki")
        os.makedirs(pki)

        def certtool(*args):
            subprocess.run(["certtool"] + list(args), check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        with open(os.path.join(pki, "ca.info"), "w") as f:
            f.write('cn = "standin test CA"\nca\ncert_signing_key\nexpiration_days = 2\n')
        certtool("--generate-privkey", "--outfile", os.path.join(pki, "ca-key.pem"))
        certtool("--generate-self-signed", "--load-privkey", os.path.join(pki, "ca-key.pem"),
                 "--template", os.path.join(pki, "ca.info"),
                 "--outfile", os.path.join(pki, "ca-cert.pem"))
        for kind, extra in (("server", 'tls_www_server\nip_address = "127.0.0.1"\n'),
                            ("client", "tls_www_client\n")):
            tmpl = os.path.join(pki, kind + ".info")
            with open(tmpl, "w") as f:
                f.write('cn = "127.0.0.1"\n%sencryption_key\nsigning_key\n'
                        'expiration_days = 2\n' % extra)
            key = os.path.join(pki, kind + "-key.pem")
            certtool("--generate-privkey", "--outfile", key)
            certtool("--generate-certificate", "--load-privkey", key,
                     "--load-ca-certificate", os.path.join(pki, "ca-cert.pem"),
                     "--load-ca-privkey", os.path.join(pki, "ca-key.pem"),
                     "--template", tmpl, "--outfile",
                     os.path.join(pki, kind + "-cert.pem"))

        def creds(endpoint):
            return ["-object", "tls-creds-x509,id=objlibvirt_migrate_tls0,dir=%s,"
                    "endpoint=%s,verify-peer=on" % (pki, endpoint)]

        port, relay_port = two_free_ports()
        uri = "tcp:127.0.0.1:%d" % port
        path = os.path.join(self.workdir, "tls.rec")
        tproc, target = self.stream_target(uri, tls=creds("server"))
        target.cmd("migrate-set-parameters", **{"tls-creds": "objlibvirt_migrate_tls0"})
        target.cmd("start-migrate-incoming", uri=uri)
        sproc, source = self.stream_source(tls=creds("client"))
        source.cmd("migrate-set-parameters", **{"tls-creds": "objlibvirt_migrate_tls0",
                                                "tls-hostname": "127.0.0.1"})
        with wirecapture.Relay(("127.0.0.1", relay_port), ("127.0.0.1", port), path):
            give_peer(source, target)
            source.cmd("migrate", uri="tcp:127.0.0.1:%d" % relay_port)
            self.wait_source(source, "completed")
            self.assert_target_done(target)
        rec = wirecapture.Recording(path)
        self.assertEqual(self.pattern_hits(rec), 0)
        # inside the records, both ways: TLS (handshake records: 0x16 0x03),
        # not QEMU's stream ("QEVM") nor the guest's memory
        _, plain_there, plain_back = wirecapture.decode_stream(*rec.only(),
                                                               bytes.fromhex(KEY_A))
        self.assertEqual((plain_there[:2], plain_back[:2]), (b"\x16\x03", b"\x16\x03"))
        self.assertNotIn(b"QEVM", plain_there)
        self.assertEqual(sum(plain_there.count(w)
                             for w in wirecapture.guest_pattern_windows()), 0)


def main():
    global STANDIN, GUEST, FIRMWARE, SEV_VALIDATE
    build = os.path.realpath(sys.argv[1])
    STANDIN = os.path.join(build, "qemu-mirror-standin")
    GUEST = os.path.join(build, "guest.elf")
    if not os.path.exists("/usr/bin/qemu-system-x86_64"):
        print("/usr/bin/qemu-system-x86_64 is not installed", file=sys.stderr)
        return 77
    for path in (STANDIN, GUEST):
        if not os.path.exists(path):
            print("%s is not built" % path, file=sys.stderr)
            return 1
    SEV_VALIDATE = load_sev_validate(os.path.join(TOP, "subprojects", "libvirt"))
    # the "firmware" the launches measure (the stand-in does not run it)
    fwdir = tempfile.mkdtemp(prefix="lvm-standin-fw-")
    FIRMWARE = os.path.join(fwdir, "OVMF.amdsev.fd")
    with open(FIRMWARE, "wb") as f:
        f.write(hashlib.shake_256(b"qemu-mirror-standin test firmware").digest(65536))
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2, exit=False)
    finally:
        shutil.rmtree(fwdir, True)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
