#!/usr/bin/python3
#
# Two test hosts on this machine, and the guest owner's machine, for the
# end-to-end tests and the demo.
#
# Each host is a network namespace (lvm-e2e-a, lvm-e2e-b; joined by a veth
# pair, 10.250.0.1 and 10.250.0.2, traffic never leaves them) plus a private
# mount namespace in which the host's own directories are bound over the
# paths the built libvirtd uses (prefix /usr/local): /run/libvirt,
# /var/local/{run,lib,log,cache}/libvirt, /usr/local/etc/{libvirt,pki}. Each runs
# libvirtd from the build tree, listening for TLS with certificates made by
# certtool at setup. Test-host settings, and why:
#   qemu.conf  user/group root, dynamic_ownership 0, security_driver none,
#              cgroup_controllers [] and namespaces []: no SELinux/AppArmor,
#              no cgroup delegation in this sandbox;
#              stdio_handler file: no virtlogd needed;
#              migration_host: the host's own address on the veth link;
#              mirror_helper_timeout 60 (libvirt's default): far above
#              any helper boot the tests configure (a few seconds at
#              most), so that a loaded machine never ends a legitimate
#              wait; the "helper never ready" cases (helper=hang: nothing
#              legitimate competes) restart host b with
#              HANG_HELPER_TIMEOUT, 5, for their duration.
#              mirror_attestation_agent: the host's attestation agent
#              (attestation-agent in the host's directory: a wrapper that
#              runs the thin agent, virt-qemu-sev-owner agent --service,
#              with the host's client certificate for the guest owner's
#              service), mirror_attestation_timeout 30
#              (an agent run takes well under a second, also loaded);
#   qemu-mirror-standin.conf  the QEMU stand-in's settings on this host
#              (e2e/standin): how long the simulated migration helper
#              boots and how it ends, and the host's SEV platform key
#              (sev-pdh-key: the PDH, a P-384 key made by certtool at
#              setup, in the host's configuration directory) and its
#              certificates (sev-pdh-cert, sev-cert-chain: base64 files);
#              rewritten by tests between runs.
# The lab plays AMD: at set-up it makes an "AMD" root of its own (an ARK
# and an ASK, RSA-4096 with RSASSA-PSS SHA-384, in AMD's format, by
# checks/sevcerts.py) and, per host, a CEK signed by that ASK, an OCA, a
# PEK signed by both and the PDH's certificate signed by the PEK: virsh
# nodesevinfo shows them (pdh, cert-chain). The guest owner's owner.conf
# trusts the lab's root only (ark=, ask=).
# The guest owner (GuestOwner) is a third host: its directory (owner.conf,
# its P-384 key, the transport key and its identifier) lies outside both
# hosts' directories, and its service (virt-qemu-sev-owner serve) runs in
# a network namespace of its own (lvm-e2e-o, 10.250.3.3, joined to each
# host by a veth pair: host a is 10.250.3.1 and host b 10.250.3.2 on it).
# The owner launches the SEV guest on host a (a launch session for host
# a's PDH, the measurement checked, the launch secret with the transport
# key injected before the first cont: sevguest.start_sev_guest); on a
# migration target, libvirtd asks the owner through the host's agent, the
# thin client (virt-qemu-sev-owner agent --service), which holds only the
# host's TLS client certificate for the owner's service. The owner's TLS
# CA is its own, not the lab's libvirt CA: the hosts' CA is the hosts'
# operator's, whom the owner does not trust; a certificate that CA issued
# must not open the owner's service, and the agent must not take a
# service certificate from it. Each owner directory (a variant too) runs
# its own service, on its own port; owner.conf is read again for every
# request, so a test changes the owner's policy with write_conf(). The
# service's audit file (GuestOwner.audit()) records every request.
#   PATH       of libvirtd: the lab's bin directory first, where
#              qemu-system-x86_64 is the stand-in, so that the host's
#              default QEMU (virsh nodesevinfo: the platform's PDH, which
#              the guest owner makes the launch session for) is the one
#              with SEV, as on a host with SEV;
#   libvirt.conf remote_mode legacy: clients use the monolithic libvirtd;
#   libvirtd   auth_tls none (the TLS client certificate is the credential),
#              a host_uuid of its own (both run on one machine, and libvirt
#              refuses to migrate to the same host).
# A test may rewrite libvirtd.conf (libvirtd_conf: debug messages of some
# modules) and qemu.conf (qemu_conf: the helper timeout) for the daemon's
# next start, and stop, kill or restart libvirtd alone (kill_daemon,
# restart; the domains' QEMU processes keep running). With a host's
# valgrind set to a file name, its libvirtd runs under valgrind (memcheck,
# its report in that file) from its next start (test_attestation's
# destroy-while-attesting case, with E2E_VALGRIND=1).
# Every wait is bounded; teardown kills what it started and removes the
# namespaces and the state directory.
# With E2E_LAB_TAG=x in the environment, the namespaces are lvm-e2e-xa and
# lvm-e2e-xb, so that labs of several work trees can run side by side.
# With E2E_DEBUG=1 in the environment, each libvirtd also logs the QEMU
# driver's debug messages (in the host's log directory, removed at teardown
# like the rest: copy what you need from a test before it ends).

import base64
import glob
import os
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import sys
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, os.path.join(TOP, "checks"))
import ownerpki  # noqa: E402
import sevcerts  # noqa: E402
BUILD = os.environ.get("MIRROR_BUILD_DIR", os.path.join(TOP, "build"))
LIBVIRT_BUILD = os.path.join(BUILD, "subprojects", "libvirt")

HOSTS = {"a": "10.250.0.1", "b": "10.250.0.2"}
# the guest owner's machine (a network namespace of its own), and the
# hosts' addresses on their links to it
OWNER_ADDR = "10.250.3.3"
OWNER_LINK = {"a": "10.250.3.1", "b": "10.250.3.2"}
OWNER_PORT = 16600
LAB_TAG = os.environ.get("E2E_LAB_TAG", "")
# mirror_helper_timeout and mirror_attestation_timeout (seconds): see above
HELPER_TIMEOUT = 60
HANG_HELPER_TIMEOUT = 5
ATTESTATION_TIMEOUT = 30
STANDIN = os.path.join(BUILD, "qemu-mirror-standin")
# the guest owner's reference tool (tools/virt-qemu-sev-owner.c)
SEV_OWNER = os.path.join(LIBVIRT_BUILD, "tools", "virt-qemu-sev-owner")
# the identifier of the guest owner's transport key
OWNER_KEY_ID = "e2e-owner-transport-key-1"
# <launchSecurity><policy> of the test guest (sevguest.SEV)
SEV_POLICY = 0x1
PREFIX_LEN = 24

# paths of the built libvirtd (configmake.h of the build), bound per host
BOUND_DIRS = ["/run/libvirt", "/var/local/run/libvirt", "/var/local/lib/libvirt",
              "/var/local/log/libvirt", "/var/local/cache/libvirt",
              "/usr/local/etc/libvirt", "/usr/local/etc/pki"]


class SetupError(Exception):
    pass


def run(cmd, check=True, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and res.returncode != 0:
        raise SetupError("%s failed (%d): %s" % (" ".join(cmd), res.returncode,
                                                 (res.stderr or res.stdout).strip()))
    return res


def can_create_namespaces():
    """(True, '') or (False, why)."""
    if os.geteuid() != 0:
        return False, "the end-to-end tests need root"
    name = "lvm-e2e-probe-%d" % os.getpid()
    res = run(["ip", "netns", "add", name], check=False)
    if res.returncode != 0:
        return False, "cannot create a network namespace: " + res.stderr.strip()
    run(["ip", "netns", "del", name], check=False)
    return True, ""


def run_tests(*cases):
    """Run the unittest TestCases @cases on the test hosts: exit status 0 or
    1, or 77 (meson: skipped) with the reason when this machine cannot make
    them."""
    ok, why = can_create_namespaces()
    if not ok:
        print("SKIP: %s" % why)
        return 77
    suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromTestCase(case)
                               for case in cases)
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if res.wasSuccessful() else 1


def libvirt_env():
    env = dict(os.environ)
    src = os.path.join(LIBVIRT_BUILD, "src")
    env["LD_LIBRARY_PATH"] = src + (":" + env["LD_LIBRARY_PATH"]
                                    if env.get("LD_LIBRARY_PATH") else "")
    env["PATH"] = os.path.join(LIBVIRT_BUILD, "tools") + ":" + src + ":" + env["PATH"]
    env["LIBVIRT_DIR_OVERRIDE"] = "1"
    env["abs_builddir"] = LIBVIRT_BUILD
    env["abs_top_builddir"] = LIBVIRT_BUILD
    env["LC_ALL"] = "C"
    return env


class Host:
    def __init__(self, lab, name, addr):
        self.lab = lab
        self.name = name
        self.addr = addr
        self.netns = "lvm-e2e-%s%s" % (LAB_TAG, name)
        self.dir = os.path.join(lab.dir, name)
        self.daemon = None
        # a file name: libvirtd runs under valgrind, its report there
        self.valgrind = None
        self.host_uuid = str(uuid.uuid4())
        # the platform's PDH private key (the stand-in's sev-pdh-key) and
        # its certificates, signed down from the lab's "AMD" root
        # (sev-pdh-cert, sev-cert-chain)
        self.pdh_key = os.path.join(self.bound("/usr/local/etc/libvirt"), "sev-pdh-key.pem")
        self.pdh_cert = os.path.join(self.bound("/usr/local/etc/libvirt"), "sev-pdh-cert.b64")
        self.cert_chain = os.path.join(self.bound("/usr/local/etc/libvirt"),
                                       "sev-cert-chain.b64")
        self.chip = None
        # qemu.conf's mirror_attestation_agent (write_agent)
        self.agent = os.path.join(self.dir, "attestation-agent")
        # the host's TLS client credentials for the guest owner's service
        # (the owner's CA issued them; the agent's --tls-dir)
        self.owner_tls = os.path.join(self.dir, "owner-client-tls")
        # what the agent wrote on its standard error (the wrapper's copy;
        # libvirtd logs it at debug level too)
        self.agent_log = os.path.join(self.bound("/var/local/log/libvirt"),
                                      "attestation-agent.log")

    def bound(self, path):
        # a /usr/local build's libvirtd makes its sockets in /run/libvirt,
        # while its client library looks in /var/local/run/libvirt: one
        # directory serves both
        if path == "/var/local/run/libvirt":
            path = "/run/libvirt"
        return os.path.join(self.dir, path.strip("/").replace("/", "_"))

    def prepare(self):
        for d in BOUND_DIRS:
            os.makedirs(d, exist_ok=True)          # mount points
            os.makedirs(self.bound(d), exist_ok=True)
        etc = self.bound("/usr/local/etc/libvirt")
        self.libvirtd_conf()
        # clients (virsh, and libvirtd's own peer-to-peer connections) talk
        # to the monolithic libvirtd, not to modular daemons
        with open(os.path.join(etc, "libvirt.conf"), "w") as f:
            f.write('remote_mode = "legacy"\n')
        # the platform's key: a real SEV platform makes its PDH itself.
        # Made here, not with certtool: this machine's certtool writes about
        # half of its P-384 keys with a private value shorter than 48 bytes,
        # which python3-cryptography refuses to load
        key = ec.generate_private_key(ec.SECP384R1())
        fd = os.open(self.pdh_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
        os.chmod(self.pdh_key, 0o600)
        self.make_platform_certs()
        self.write_agent()
        self.qemu_conf()
        self.standin_config()
        self.lab.make_certs(self)

    def make_platform_certs(self):
        """The platform's certificates under the lab's "AMD" root: the CEK
        (its chip identity in self.chip), OCA, PEK and the PDH's."""
        with open(self.pdh_key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        platform = sevcerts.Platform(self.lab.amd, pdh_key=key)
        for path, data in ((self.pdh_cert, platform.pdh),
                           (self.cert_chain, platform.cert_chain())):
            with open(path, "w") as f:
                f.write(base64.b64encode(data).decode())
        self.chip = platform.chip_id()

    def libvirtd_conf(self, debug=None, debug_all=False):
        """libvirtd.conf, for the daemon's next start. @debug: log filters
        whose debug messages the log gets too (e.g. "qemu.qemu_process");
        E2E_DEBUG=1 in the environment: the QEMU driver's. @debug_all:
        log_level 1, every module's debug messages."""
        if os.environ.get("E2E_DEBUG"):
            debug = "qemu"
        with open(os.path.join(self.bound("/usr/local/etc/libvirt"), "libvirtd.conf"),
                  "w") as f:
            f.write('listen_tls = 1\nlisten_tcp = 0\nlisten_addr = "%s"\n'
                    'auth_tls = "none"\nauth_unix_rw = "none"\n'
                    'host_uuid = "%s"\n'
                    'log_outputs = "%d:file:/var/local/log/libvirt/libvirtd.log"\n'
                    'log_filters = "%s"\n'
                    % (self.addr, self.host_uuid, 1 if debug or debug_all else 3,
                       "1:%s 3:*" % debug if debug and not debug_all else ""))
            if debug_all:
                f.write("log_level = 1\n")

    def qemu_conf(self, helper_timeout=HELPER_TIMEOUT, agent=True,
                  attestation_timeout=ATTESTATION_TIMEOUT):
        """qemu.conf, for the daemon's next start. @agent: True for the
        host's attestation agent (write_agent), a path, or None for none."""
        if agent is True:
            agent = self.agent
        with open(os.path.join(self.bound("/usr/local/etc/libvirt"), "qemu.conf"), "w") as f:
            f.write('user = "root"\ngroup = "root"\ndynamic_ownership = 0\n'
                    'remember_owner = 0\nsecurity_driver = "none"\n'
                    'cgroup_controllers = [ ]\nnamespaces = [ ]\n'
                    'stdio_handler = "file"\nmigration_host = "%s"\n'
                    'mirror_helper_timeout = %d\n'
                    'mirror_attestation_timeout = %d\n'
                    % (self.addr, helper_timeout, attestation_timeout))
            if agent:
                f.write('mirror_attestation_agent = "%s"\n' % agent)

    def write_agent(self, program=None, owner=None, service=None, tls=None):
        """The program at this host's agent path (qemu.conf's
        mirror_attestation_agent, read by libvirtd at each run): @program's
        text, or the thin agent (virt-qemu-sev-owner agent --service) that
        asks @owner's service (default: the lab's guest owner; started if
        it is not running) with this host's client credentials. @service
        (ADDR:PORT) and @tls (a TLS directory) replace the service's
        address and the credentials. Its standard error also goes to
        agent_log."""
        if program is None:
            owner = owner or self.lab.owner
            if service is None:
                owner.start_service()
                service = owner.service_addr()
            program = ("#!/bin/bash\n"
                       "# host %s's attestation agent: a client of the guest owner's service\n"
                       "exec 2> >(exec tee -a %s >&2)\n"
                       "exec %s agent --service %s --tls-dir %s\n"
                       % (self.name, self.agent_log, SEV_OWNER, service,
                          tls or self.owner_tls))
        tmp = self.agent + ".new"
        with open(tmp, "w") as f:
            f.write(program)
        os.chmod(tmp, 0o755)
        os.rename(tmp, self.agent)

    def write_test_agent(self, mode, owner=None, state=None, **conf):
        """A misbehaving agent at this host's agent path: e2e/testagent.py
        in @mode, with @owner's directory (default: the lab's guest owner)
        and the owner's state directory @state (made if missing); @conf:
        more of its configuration. Returns @state."""
        owner = owner or self.lab.owner
        state = state or os.path.join(owner.dir, "agent-state-%s" % self.name)
        os.makedirs(state, mode=0o700, exist_ok=True)
        path = os.path.join(state, "agent.json")
        with open(path, "w") as f:
            json.dump(dict(conf, tool=SEV_OWNER, owner_dir=owner.dir, state=state,
                           mode=mode), f)
        self.write_agent("#!/bin/sh\nexec /usr/bin/python3 %s %s\n"
                         % (os.path.join(TOP, "e2e", "testagent.py"), path))
        return state

    def standin_config(self, helper="ready", boot_ms=200, test_mode=True, **platform):
        """Settings of the QEMU stand-in for the QEMU processes this host
        starts from now on: what must hold from the process's start. With
        @test_mode, those processes take the stand-in's x- fault injection
        commands (e2e/standin/standin.h) at run time, on their monitor and
        on their control socket (standin_control). The platform's PDH key
        is the host's own (pdh_key). The helper holds a transport key only
        when the guest owner injected one at launch. @platform: more
        settings of the stand-in's platform (sev_build_id=N:
        sev-build-id=N, the firmware build it reports and measures)."""
        path = os.path.join(self.bound("/usr/local/etc/libvirt"),
                            "qemu-mirror-standin.conf")
        os.makedirs(os.path.join(self.bound("/var/local/lib/libvirt"), "standin-control"),
                    exist_ok=True)
        with open(path, "w") as f:
            f.write("[standin]\nhelper=%s\nhelper-boot-ms=%d\n"
                    "sev-pdh-key=%s\nsev-pdh-cert=%s\nsev-cert-chain=%s\n"
                    "test-mode=%s\n"
                    "control-dir=/var/local/lib/libvirt/standin-control\n"
                    % (helper, boot_ms, self.pdh_key, self.pdh_cert,
                       self.cert_chain, "true" if test_mode else "false"))
            for key, value in sorted(platform.items()):
                f.write("%s=%s\n" % (key.replace("_", "-"), value))

    def standin_control(self, command, timeout=60, **arguments):
        """The reply to @command on the control socket of this host's
        stand-in (test mode): fault injection while libvirt holds the
        monitor, also while it hides an incoming domain."""
        ctl = os.path.join(self.bound("/var/local/lib/libvirt"), "standin-control")
        paths = [os.path.join(ctl, "standin-%d.qmp" % pid) for pid in self.emulator_pids()]
        paths = [p for p in paths if os.path.exists(p)]
        if len(paths) != 1:
            raise SetupError("host %s: stand-in control sockets %s" % (self.name, paths))
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(timeout)
            sock.connect(paths[0])
            f = sock.makefile("rwb")
            json.loads(f.readline())                    # greeting
            for line in ({"execute": "qmp_capabilities"}, msg):
                f.write(json.dumps(line).encode() + b"\r\n")
                f.flush()
                reply = json.loads(f.readline())
            return reply

    def domain_log(self, name):
        """The domain's log (QEMU's stderr: the stand-in's log lines)."""
        try:
            with open(os.path.join(self.bound("/var/local/log/libvirt"), "qemu",
                                   name + ".log")) as f:
                return f.read()
        except OSError:
            return ""

    def emulator_pids(self):
        """PIDs of the QEMU processes (real or stand-in) of this host's
        domains: those in its network namespace, started with -name (which
        leaves out libvirt's short-lived capability probes). Also while
        libvirtd is down."""
        mine = os.stat("/run/netns/%s" % self.netns).st_ino
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/comm" % pid) as f:
                    comm = f.read().strip()
                if not comm.startswith(("qemu-system", "qemu-mirror")):
                    continue
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if b"\0-name\0" not in f.read():
                        continue
                if os.stat("/proc/%s/ns/net" % pid).st_ino == mine:
                    pids.append(int(pid))
            except OSError:
                pass
        return pids

    def start(self, timeout=120):
        mounts = " && ".join("mount --bind %s %s" % (self.bound(d), d)
                             for d in BOUND_DIRS)
        libvirtd = os.path.join(LIBVIRT_BUILD, "src", "libvirtd")
        if self.valgrind:
            libvirtd = ("valgrind --log-file=%s --error-limit=no --num-callers=40 %s"
                        % (self.valgrind, libvirtd))
            timeout = max(timeout, 600)
        script = "%s && exec %s --listen --pid-file %s" % (
            mounts, libvirtd, os.path.join(self.dir, "libvirtd.pid"))
        env = libvirt_env()
        # the host's default QEMU (virsh nodesevinfo, domcapabilities) is
        # the stand-in, as a host with SEV has a QEMU with SEV
        env["PATH"] = self.lab.bin + ":" + env["PATH"]
        self.daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount",
             "--propagation", "private", "sh", "-c", script],
            env=env, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "libvirtd.stderr"), "w"),
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.daemon.poll() is not None:
                raise SetupError("libvirtd on host %s exited: %s" % (
                    self.name, self.log_tail()))
            res = self.virsh("uri", check=False)
            if res.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise SetupError("libvirtd on host %s did not answer in %d s: %s"
                                 % (self.name, timeout, res.stderr.strip()))
            time.sleep(0.2)

    def daemon_pid(self):
        """PID of libvirtd itself (the sh that exec'd it, inside netns)."""
        return self.daemon.pid

    def enter(self):
        """Command prefix that runs a program in this host's namespaces."""
        return ["nsenter", "--target", str(self.daemon_pid()), "--mount",
                "--net"]

    def virsh(self, *args, check=True, timeout=120, uri="qemu:///system"):
        """virsh run on this host, connected to @uri."""
        virsh = os.path.join(LIBVIRT_BUILD, "tools", "virsh")
        return run(self.enter() + [virsh, "-q", "-c", uri] +
                   list(args), check=check, env=libvirt_env(), timeout=timeout)

    def log_tail(self, n=20):
        out = []
        for path in (os.path.join(self.dir, "libvirtd.stderr"),
                     os.path.join(self.bound("/var/local/log/libvirt"),
                                  "libvirtd.log")):
            try:
                with open(path) as f:
                    out += f.read().splitlines()[-n:]
            except OSError:
                pass
        return "\n".join(out)

    def kill_daemon(self, sig=signal.SIGTERM, timeout=120):
        """Send @sig to libvirtd only (its domains' QEMU processes are not
        in its process group: they daemonize); returns the seconds until
        it exited. (With a migration job running, libvirtd holds a SIGTERM
        for its 30 s forced-shutdown window: the ceiling is well above.)"""
        start = time.monotonic()
        os.kill(self.daemon.pid, sig)
        try:
            self.daemon.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SetupError("libvirtd on host %s did not exit %d s after signal %d"
                             % (self.name, timeout, sig))
        return time.monotonic() - start

    def restart(self):
        """libvirtd stops (SIGTERM, its domains keep running) and starts
        again; returns the seconds its shutdown took."""
        took = self.kill_daemon(signal.SIGTERM)
        self.start()
        return took

    def daemon_usage(self):
        """(open file descriptors, threads) of libvirtd."""
        pid = self.daemon_pid()
        return (len(os.listdir("/proc/%d/fd" % pid)),
                len(os.listdir("/proc/%d/task" % pid)))

    def stop(self):
        if self.daemon and self.daemon.poll() is None:
            # domains first: their QEMU processes are children of libvirtd
            res = self.virsh("list", "--name", check=False, timeout=30)
            for dom in res.stdout.split():
                self.virsh("destroy", dom, check=False, timeout=30)
            os.killpg(self.daemon.pid, signal.SIGTERM)
            try:
                self.daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait(timeout=10)


class Lab:
    """Both hosts. Use as a context manager: teardown always runs."""

    def __init__(self, dir=None):
        # @dir: the state directory of a lab set up earlier (the demo's
        # --teardown finds a kept lab's hosts again)
        self.dir = dir or tempfile.mkdtemp(prefix="lvm-e2e-")
        self.hosts = {n: Host(self, n, a) for n, a in HOSTS.items()}
        # what the guest's <loader> names and its owner expects to be
        # measured: a placeholder (the stand-in does not load firmware, it
        # only measures the file)
        self.firmware = os.path.join(self.dir, "OVMF-with-migration-helper.fd")
        # first in libvirtd's PATH: qemu-system-x86_64, the stand-in
        self.bin = os.path.join(self.dir, "bin")
        # the lab's "AMD" root (ARK, ASK), made at set-up
        self.amd = None
        self.amd_ark = os.path.join(self.dir, "amd-ark.cert")
        self.amd_ask = os.path.join(self.dir, "amd-ask.cert")
        self.owner = GuestOwner(self, "owner")
        self.owners = [self.owner]
        self.owner_netns = "lvm-e2e-%so" % LAB_TAG
        # the guest owner's TLS CA (its own: see above)
        self.owner_ca = None

    def __enter__(self):
        try:
            self.setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()
        return False

    def setup(self):
        for ns in [h.netns for h in self.hosts.values()] + [self.owner_netns]:
            run(["ip", "netns", "del", ns], check=False)
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        a, b = self.hosts["a"], self.hosts["b"]
        run(["ip", "link", "add", "lvm-e2e-va", "netns", a.netns, "type",
             "veth", "peer", "name", "lvm-e2e-vb", "netns", b.netns])
        for h, dev in ((a, "lvm-e2e-va"), (b, "lvm-e2e-vb")):
            run(["ip", "-n", h.netns, "addr", "add",
                 "%s/%d" % (h.addr, PREFIX_LEN), "dev", dev])
            run(["ip", "-n", h.netns, "link", "set", dev, "up"])
        # each host's point-to-point link to the guest owner's machine
        for h in (a, b):
            hdev, odev = "lvm-e2e-o%s" % h.name, "lvm-e2e-%so" % h.name
            run(["ip", "link", "add", hdev, "netns", h.netns, "type", "veth",
                 "peer", "name", odev, "netns", self.owner_netns])
            run(["ip", "-n", h.netns, "addr", "add", OWNER_LINK[h.name],
                 "peer", OWNER_ADDR, "dev", hdev])
            run(["ip", "-n", self.owner_netns, "addr", "add", OWNER_ADDR,
                 "peer", OWNER_LINK[h.name], "dev", odev])
            run(["ip", "-n", h.netns, "link", "set", hdev, "up"])
            run(["ip", "-n", self.owner_netns, "link", "set", odev, "up"])
        self.make_ca()
        self.owner_ca = ownerpki.CA(os.path.join(self.dir, "owner-ca"),
                                    "libvirt-mirror e2e guest owner CA")
        os.makedirs(self.bin, exist_ok=True)
        os.symlink(STANDIN, os.path.join(self.bin, "qemu-system-x86_64"))
        with open(self.firmware, "w") as f:
            f.write("placeholder: the QEMU stand-in does not load firmware\n")
        self.amd = sevcerts.Root()
        for path, data in ((self.amd_ark, self.amd.ark), (self.amd_ask, self.amd.ask)):
            with open(path, "wb") as f:
                f.write(data)
        self.owner.setup()
        for h in self.hosts.values():
            self.owner_ca.issue(h.owner_tls, "client", "host %s (%s)" % (h.name, h.addr))
        for h in self.hosts.values():
            h.prepare()
        for h in self.hosts.values():
            h.start()

    def teardown(self):
        for h in self.hosts.values():
            try:
                h.stop()
            except Exception:
                pass
        # QEMU processes a crashed or killed libvirtd left behind
        for h in self.hosts.values():
            try:
                for pid in h.emulator_pids():
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for o in self.owners:
            try:
                o.stop_service()
            except Exception:
                pass
        # the services of a lab that another process set up (the demo's
        # --teardown of a kept lab)
        for pidfile in glob.glob(os.path.join(self.dir, "*", "service.pid")):
            stop_service_by_pidfile(pidfile, os.path.dirname(pidfile))
        for ns in [h.netns for h in self.hosts.values()] + [self.owner_netns]:
            run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------ TLS

    def certtool(self, *args):
        run(["certtool"] + list(args))

    def make_ca(self):
        self.ca = os.path.join(self.dir, "ca")
        os.makedirs(self.ca)
        key = os.path.join(self.ca, "cakey.pem")
        tmpl = os.path.join(self.ca, "ca.info")
        with open(tmpl, "w") as f:
            f.write('cn = "libvirt-mirror e2e CA"\nca\ncert_signing_key\n'
                    'expiration_days = 2\n')
        self.certtool("--generate-privkey", "--outfile", key)
        self.certtool("--generate-self-signed", "--load-privkey", key,
                      "--template", tmpl, "--outfile",
                      os.path.join(self.ca, "cacert.pem"))

    def make_certs(self, host):
        """libvirt's certificates (pki/CA, pki/libvirt) and QEMU's for
        VIR_MIGRATE_TLS (pki/qemu, the default migrate_tls_x509_cert_dir),
        all signed by the lab's CA."""
        pki = host.bound("/usr/local/etc/pki")
        os.makedirs(os.path.join(pki, "CA"), exist_ok=True)
        os.makedirs(os.path.join(pki, "libvirt", "private"), exist_ok=True)
        os.makedirs(os.path.join(pki, "qemu"), exist_ok=True)
        shutil.copy(os.path.join(self.ca, "cacert.pem"),
                    os.path.join(pki, "CA", "cacert.pem"))
        shutil.copy(os.path.join(self.ca, "cacert.pem"),
                    os.path.join(pki, "qemu", "ca-cert.pem"))
        for kind, extra in (("server", 'tls_www_server\nip_address = "%s"\n'
                             % host.addr),
                            ("client", "tls_www_client\n")):
            key = os.path.join(pki, "libvirt", "private", "%skey.pem" % kind)
            tmpl = os.path.join(host.dir, "%s.info" % kind)
            with open(tmpl, "w") as f:
                f.write('organization = "libvirt-mirror e2e"\ncn = "%s"\n%s'
                        'encryption_key\nsigning_key\nexpiration_days = 2\n'
                        % (host.addr, extra))
            self.certtool("--generate-privkey", "--outfile", key)
            self.certtool("--generate-certificate", "--load-privkey", key,
                          "--load-ca-certificate",
                          os.path.join(self.ca, "cacert.pem"),
                          "--load-ca-privkey",
                          os.path.join(self.ca, "cakey.pem"),
                          "--template", tmpl, "--outfile",
                          os.path.join(pki, "libvirt", "%scert.pem" % kind))
            shutil.copy(key, os.path.join(pki, "qemu", "%s-key.pem" % kind))
            shutil.copy(os.path.join(pki, "libvirt", "%scert.pem" % kind),
                        os.path.join(pki, "qemu", "%s-cert.pem" % kind))


# ------------------------------------------------------------ the guest owner

class Launch:
    """One launch of an SEV guest as its owner prepared it: the files of
    the session made for one platform's PDH (base64 dhCert and session;
    TEK and TIK, raw, the owner's secrets), in the owner's directory."""

    def __init__(self, dir):
        self.dir = dir
        for name in ("pdh", "dh_cert", "session", "tek", "tik", "header", "secret"):
            setattr(self, name, os.path.join(dir, name.replace("_", "-")))

    def read(self, name):
        with open(getattr(self, name), "rb") as f:
            return f.read()

    def text(self, name):
        return self.read(name).decode().strip()


class GuestOwner:
    """The guest owner of the test guest, with the reference tool
    virt-qemu-sev-owner. Its directory stands for the guest owner's own
    machine: it is outside both hosts' directories, and its secrets (the
    transport key, the TEK and TIK of the launches it made) are expected
    there and nowhere else. owner.conf is the reference agent's
    configuration (virt-qemu-sev-owner(1))."""

    def __init__(self, lab, name, key_id=OWNER_KEY_ID):
        self.lab = lab
        self.name = name
        self.dir = os.path.join(lab.dir, name)
        self.key_id = key_id
        self.conf = os.path.join(self.dir, "owner.conf")
        self.odh_key = os.path.join(self.dir, "odh-key.pem")
        self.transport_key = os.path.join(self.dir, "transport-key")
        self.firmware = lab.firmware
        self.policy = SEV_POLICY
        self.launches = 0
        # owner.conf lines that write_conf(**extra) added
        self.extra = {}
        # the service (serve): its TLS directory, audit file, log, port
        self.service = None
        self.service_tls = os.path.join(self.dir, "service-tls")
        self.audit_file = os.path.join(self.dir, "audit.log")
        self.service_log = os.path.join(self.dir, "service.log")
        self.service_pidfile = os.path.join(self.dir, "service.pid")
        self.port = None

    def tool(self, *args, check=True):
        if not os.access(SEV_OWNER, os.X_OK):
            raise SetupError("%s is not built (ninja -C build)" % SEV_OWNER)
        return run([SEV_OWNER] + [str(a) for a in args], check=check, env=libvirt_env())

    def setup(self, odh_key=None, transport_key=None):
        """The owner's key (@odh_key's copy, or a new one) and transport
        key (@transport_key's bytes, or 32 random ones)."""
        os.makedirs(self.dir, mode=0o700)
        if odh_key:
            shutil.copyfile(odh_key, self.odh_key)
            os.chmod(self.odh_key, 0o600)
        else:
            self.tool("keygen", "--out", self.odh_key)
        fd = os.open(self.transport_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(transport_key if transport_key is not None else os.urandom(32))
        self.write_conf()
        return self

    def write_conf(self, **extra):
        """owner.conf; @extra: more keys (allow_chips="...", min_build=N:
        "allow-chips=...", "min-build=N"), kept for later rewrites; a value
        None drops a key. The service applies it to its next request."""
        for k, v in extra.items():
            if v is None:
                self.extra.pop(k, None)
            else:
                self.extra[k] = v
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write("# the guest owner's requirements (virt-qemu-sev-owner serve)\n"
                    "odh-key=%s\ntransport-key=%s\nkey-id=%s\nfirmware=%s\npolicy=0x%x\n"
                    "# the platforms' root: the lab's \"AMD\" only (verify-chain)\n"
                    "ark=%s\nask=%s\n"
                    % (os.path.basename(self.odh_key), os.path.basename(self.transport_key),
                       self.key_id, self.firmware, self.policy,
                       self.lab.amd_ark, self.lab.amd_ask))
            for k, v in self.extra.items():
                f.write("%s=%s\n" % (k.replace("_", "-"), v))
        os.rename(tmp, self.conf)

    def service_addr(self):
        return "%s:%d" % (OWNER_ADDR, self.port)

    def start_service(self, timeout=120):
        """The owner's service in the owner's network namespace, on a port
        of its own, with a certificate for OWNER_ADDR from the owner's CA
        (made at the first start). Returns at once if it runs."""
        if self.service and self.service.poll() is None:
            return
        if self not in self.lab.owners:
            self.lab.owners.append(self)
        if self.port is None:
            self.port = OWNER_PORT + self.lab.owners.index(self)
        if not os.path.exists(os.path.join(self.service_tls, "servercert.pem")):
            self.lab.owner_ca.issue(self.service_tls, "server", "guest owner service",
                                    ips=[OWNER_ADDR])
        start = os.path.getsize(self.service_log) if os.path.exists(self.service_log) else 0
        log = open(self.service_log, "ab")
        self.service = subprocess.Popen(
            ["ip", "netns", "exec", self.lab.owner_netns, SEV_OWNER, "serve",
             "--owner-dir", self.dir, "--listen", self.service_addr(),
             "--tls-dir", self.service_tls, "--audit", self.audit_file],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            env=libvirt_env(), start_new_session=True)
        log.close()
        # its process group (ip netns exec may leave the service as its
        # child); a kept lab (the demo's --keep) is torn down by another
        # process, which finds the service by this file
        with open(self.service_pidfile, "w") as f:
            f.write("%d\n" % self.service.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.service_log, "rb") as f:
                f.seek(start)
                if b"serving on" in f.read():
                    return
            if self.service.poll() is not None:
                raise SetupError("the guest owner's service exited: %s"
                                 % open(self.service_log).read()[-2000:])
            time.sleep(0.05)
        raise SetupError("the guest owner's service did not start")

    def stop_service(self):
        stop_service_by_pidfile(self.service_pidfile, self.dir)
        if self.service:
            try:
                self.service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()
        self.service = None
        if os.path.exists(self.service_pidfile):
            os.unlink(self.service_pidfile)

    def audit(self):
        """The service's audit records (one dict per request), in order."""
        if not os.path.exists(self.audit_file):
            return []
        with open(self.audit_file) as f:
            return [json.loads(line) for line in f if line.strip()]

    def variant(self, name, key_id=None, firmware=None, new_transport_key=False):
        """Another directory of the same owner's key with some settings
        changed: @key_id, @firmware (the one expected), a new transport key
        (else the same one)."""
        other = GuestOwner(self.lab, name, key_id or self.key_id)
        if firmware:
            other.firmware = firmware
        other.setup(odh_key=self.odh_key,
                    transport_key=None if new_transport_key else self.key())
        return other

    def key(self):
        """The transport key's 32 bytes (for the tests' secret scans)."""
        with open(self.transport_key, "rb") as f:
            return f.read()

    def session(self, pdh, tag):
        """A launch session for the platform whose PDH (base64, as virsh
        nodesevinfo prints it) is @pdh; a Launch."""
        self.launches += 1
        launch = Launch(os.path.join(self.dir, "launch-%d-%s" % (self.launches, tag)))
        os.makedirs(launch.dir, mode=0o700)
        with open(launch.pdh, "w") as f:
            f.write(pdh)
        self.tool("session", "--pdh", launch.pdh, "--policy", self.policy,
                  "--odh-key", self.odh_key, "--dh-cert-out", launch.dh_cert,
                  "--session-out", launch.session, "--tek-out", launch.tek,
                  "--tik-out", launch.tik)
        return launch

    def secret(self, launch, info):
        """Checks the launch measurement that the platform reported (@info:
        virsh domlaunchsecinfo's sev-* values) against what the owner
        expects, and builds the launch secret (launch.header, launch.secret)
        with the transport key for that measurement. Raises SetupError when
        the measurement does not match."""
        measured = ["--firmware", self.firmware, "--api-major", info["sev-api-major"],
                    "--api-minor", info["sev-api-minor"],
                    "--build-id", info["sev-build-id"], "--policy", self.policy,
                    "--tik", launch.tik]
        res = self.tool("verify", *measured, "--measurement", info["sev-measurement"],
                        check=False)
        if res.returncode != 0:
            raise SetupError("the guest owner refuses the launch: the measurement %s "
                             "is not the expected one (%s)"
                             % (info["sev-measurement"], (res.stderr + res.stdout).strip()))
        self.tool("secret", "--measurement", info["sev-measurement"], "--tek", launch.tek,
                  "--tik", launch.tik, "--transport-key", self.transport_key,
                  "--key-id", self.key_id, "--header-out", launch.header,
                  "--secret-out", launch.secret)


def stop_service_by_pidfile(pidfile, owner_dir, timeout=30):
    """Ends the guest owner's service of @owner_dir: SIGTERM to each
    process of the process group that @pidfile names which runs that
    service, then SIGKILL to what is left after @timeout seconds."""
    try:
        with open(pidfile) as f:
            pgid = int(f.read().strip())
    except (OSError, ValueError):
        return

    def pids():
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X") and \
               b"serve" in argv and owner_dir.encode() in argv:
                found.append(int(pid))
        return found

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids():
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while pids() and time.monotonic() < deadline:
            time.sleep(0.05)


def unwrap_session(pdh_key, dh_cert, session, policy=SEV_POLICY, into=None):
    """The TEK and TIK (16 bytes each) of a launch session (base64 texts
    @dh_cert, @session), recovered as the platform does with its private
    key @pdh_key (virt-qemu-sev-owner unwrap): for the tests' secret
    scans only. The files go to @into (a private directory)."""
    files = {}
    for name, text in (("dh-cert", dh_cert), ("session", session)):
        files[name] = os.path.join(into, name)
        with open(files[name], "w") as f:
            f.write(text)
    tek, tik = os.path.join(into, "tek"), os.path.join(into, "tik")
    run([SEV_OWNER, "unwrap", "--pdh-key", pdh_key, "--dh-cert", files["dh-cert"],
         "--session", files["session"], "--policy", str(policy), "--tek-out", tek,
         "--tik-out", tik], env=libvirt_env())
    with open(tek, "rb") as f1, open(tik, "rb") as f2:
        return f1.read(), f2.read()
