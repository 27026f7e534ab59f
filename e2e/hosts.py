#!/usr/bin/python3
#
# Two test hosts on this machine, for the end-to-end tests and the demo.
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
#              mirror_helper_timeout 5 (default 60): the "helper never
#              ready" test waits this long.
#   qemu-mirror-standin.conf  the QEMU stand-in's settings on this host
#              (e2e/standin): how long the simulated migration helper
#              boots and how it ends; rewritten by tests between runs.
#   libvirt.conf remote_mode legacy: clients use the monolithic libvirtd;
#   libvirtd   auth_tls none (the TLS client certificate is the credential),
#              a host_uuid of its own (both run on one machine, and libvirt
#              refuses to migrate to the same host).
# A test may rewrite libvirtd.conf (libvirtd_conf: debug messages of some
# modules) and qemu.conf (qemu_conf: the helper timeout) for the daemon's
# next start, and stop, kill or restart libvirtd alone (kill_daemon,
# restart; the domains' QEMU processes keep running).
# Every wait is bounded; teardown kills what it started and removes the
# namespaces and the state directory.
# With E2E_LAB_TAG=x in the environment, the namespaces are lvm-e2e-xa and
# lvm-e2e-xb, so that labs of several work trees can run side by side.
# With E2E_DEBUG=1 in the environment, each libvirtd also logs the QEMU
# driver's debug messages (in the host's log directory, removed at teardown
# like the rest: copy what you need from a test before it ends).

import os
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
BUILD = os.environ.get("MIRROR_BUILD_DIR", os.path.join(TOP, "build"))
LIBVIRT_BUILD = os.path.join(BUILD, "subprojects", "libvirt")

HOSTS = {"a": "10.250.0.1", "b": "10.250.0.2"}
LAB_TAG = os.environ.get("E2E_LAB_TAG", "")
HELPER_TIMEOUT = 5
STANDIN = os.path.join(BUILD, "qemu-mirror-standin")
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


def run_tests(case):
    """Run the unittest TestCase @case on the test hosts: exit status 0 or
    1, or 77 (meson: skipped) with the reason when this machine cannot make
    them."""
    ok, why = can_create_namespaces()
    if not ok:
        print("SKIP: %s" % why)
        return 77
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
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
        self.host_uuid = str(uuid.uuid4())

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
        self.qemu_conf()
        self.standin_config()
        self.lab.make_certs(self)

    def libvirtd_conf(self, debug=None):
        """libvirtd.conf, for the daemon's next start. @debug: log filters
        whose debug messages the log gets too (e.g. "qemu.qemu_process");
        E2E_DEBUG=1 in the environment: the QEMU driver's."""
        if os.environ.get("E2E_DEBUG"):
            debug = "qemu"
        with open(os.path.join(self.bound("/usr/local/etc/libvirt"), "libvirtd.conf"),
                  "w") as f:
            f.write('listen_tls = 1\nlisten_tcp = 0\nlisten_addr = "%s"\n'
                    'auth_tls = "none"\nauth_unix_rw = "none"\n'
                    'host_uuid = "%s"\n'
                    'log_outputs = "%d:file:/var/local/log/libvirt/libvirtd.log"\n'
                    'log_filters = "%s"\n'
                    % (self.addr, self.host_uuid, 1 if debug else 3,
                       "1:%s 3:*" % debug if debug else ""))

    def qemu_conf(self, helper_timeout=HELPER_TIMEOUT):
        """qemu.conf, for the daemon's next start."""
        with open(os.path.join(self.bound("/usr/local/etc/libvirt"), "qemu.conf"), "w") as f:
            f.write('user = "root"\ngroup = "root"\ndynamic_ownership = 0\n'
                    'remember_owner = 0\nsecurity_driver = "none"\n'
                    'cgroup_controllers = [ ]\nnamespaces = [ ]\n'
                    'stdio_handler = "file"\nmigration_host = "%s"\n'
                    'mirror_helper_timeout = %d\n'
                    % (self.addr, helper_timeout))

    def standin_config(self, helper="ready", boot_ms=200, transport_key=True,
                       test_mode=True):
        """Settings of the QEMU stand-in for the QEMU processes this host
        starts from now on: what must hold from the process's start. With
        @test_mode, those processes take the stand-in's x- fault injection
        commands (e2e/standin/standin.h) at run time, on their monitor and
        on their control socket (standin_control)."""
        path = os.path.join(self.bound("/usr/local/etc/libvirt"),
                            "qemu-mirror-standin.conf")
        os.makedirs(os.path.join(self.bound("/var/local/lib/libvirt"), "standin-control"),
                    exist_ok=True)
        with open(path, "w") as f:
            f.write("[standin]\nhelper=%s\nhelper-boot-ms=%d\n"
                    "transport-key=%s\ntest-mode=%s\n"
                    "control-dir=/var/local/lib/libvirt/standin-control\n"
                    % (helper, boot_ms, "true" if transport_key else "false",
                       "true" if test_mode else "false"))

    def standin_control(self, command, timeout=10, **arguments):
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

    def start(self, timeout=60):
        mounts = " && ".join("mount --bind %s %s" % (self.bound(d), d)
                             for d in BOUND_DIRS)
        libvirtd = os.path.join(LIBVIRT_BUILD, "src", "libvirtd")
        script = "%s && exec %s --listen --pid-file %s" % (
            mounts, libvirtd, os.path.join(self.dir, "libvirtd.pid"))
        self.daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount",
             "--propagation", "private", "sh", "-c", script],
            env=libvirt_env(), stdout=subprocess.DEVNULL,
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

    def kill_daemon(self, sig=signal.SIGTERM, timeout=60):
        """Send @sig to libvirtd only (its domains' QEMU processes are not
        in its process group: they daemonize); returns the seconds until
        it exited."""
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
        for h in self.hosts.values():
            run(["ip", "netns", "del", h.netns], check=False)
            run(["ip", "netns", "add", h.netns])
            run(["ip", "-n", h.netns, "link", "set", "lo", "up"])
        a, b = self.hosts["a"], self.hosts["b"]
        run(["ip", "link", "add", "lvm-e2e-va", "netns", a.netns, "type",
             "veth", "peer", "name", "lvm-e2e-vb", "netns", b.netns])
        for h, dev in ((a, "lvm-e2e-va"), (b, "lvm-e2e-vb")):
            run(["ip", "-n", h.netns, "addr", "add",
                 "%s/%d" % (h.addr, PREFIX_LEN), "dev", dev])
            run(["ip", "-n", h.netns, "link", "set", dev, "up"])
        self.make_ca()
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
        for h in self.hosts.values():
            run(["ip", "netns", "del", h.netns], check=False)
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
