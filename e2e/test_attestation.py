#!/usr/bin/python3
#
# End-to-end: the attestation of a confidential migration's target, with the
# guest owner's reference tool (virt-qemu-sev-owner) and the QEMU stand-in's
# simulated secure processor, on the two test hosts of e2e/hosts.py.
#
# First, the platforms' certificates: each host's (virsh nodesevinfo: the PDH
# and the cert-chain the lab signed down from its "AMD" root) verify with
# virt-qemu-sev-owner verify-chain and the guest owner's owner.conf (the lab's
# root only), not with AMD's real roots, and a PDH of the host's own making
# is refused. The agent requires the chain: a target that presents its own
# key as PDH (the attack of issue 20) is refused at 'session'; so is a
# target whose chip the owner does not allow (owner.conf allow-chips); a
# target with firmware below the owner's min-build is refused at 'attest'.
# Each of these ends with the key scan: the owner's secrets in no file of
# either host and in no readable mapping of either libvirtd's memory
# (/proc/PID/mem), while the same scan of the source's QEMU stand-in (which
# plays the guest's encrypted memory) finds the transport key.
#
# The SEV guest is launched on host a by its owner (sevguest.start_sev_guest:
# its helper holds the owner's transport key). Host b's attestation agent
# (qemu.conf mirror_attestation_agent) then fails in each way of issue 12's
# list, end to end:
#
#   the agent is missing (not configured; configured but not there), exits
#   non-zero (at the session step, at the attest step), times out
#   (mirror_attestation_timeout, 10 s here), gives malformed output (not
#   JSON; a secret header of the wrong size), refuses a measurement that does
#   not match (the owner expects another firmware), the platform rejects the
#   secret (sealed with another TEK/TIK; a secret replayed from an earlier
#   migration with its session), the key identifiers do not match (the
#   owner's directory on host b has another key-id), and last a target that
#   gets the same key id but another transport key: the stream fails.
#
# Then two cases of libvirt's own conduct while the agent runs: host b's
# libvirtd killed by SIGKILL while its agent, a wrapper that does not exec,
# waits for a child that sleeps and would then complete the exchange (both
# are gone at once, the exchange never completes: the agent's process group
# has a watchdog); and the incoming domain destroyed on a host that has its
# persistent definition (the guest goes a -> b, then back to a) while the
# agent runs there (libvirt names the domain from its own copy of the name:
# with E2E_VALGRIND=1 host a's libvirtd runs under valgrind, and no invalid
# access is reported in the attestation code).
#
# After each: virsh's error names the step and the cause and carries no
# secret (the transport key, any TEK or TIK the test knows, the plain secret
# table: secretscan.py, every form); the guest still runs on host a with its
# pattern intact and its counter growing; host b keeps neither the domain nor
# a QEMU (sevguest.source_untouched), nor an agent process. Then a migration
# with the reference agent succeeds, and host b's completed job reports the
# attestation's time (virsh domjobinfo --completed).
#
# The secret scan, last: both daemons at log_level 1 with their logs in
# files, a confidential migration b -> a, then every file of both hosts'
# directories (their logs, the stand-in's domain logs, the agent's standard
# error, status XML, ...), the lab's directory, what changed in /tmp,
# /var/tmp and /dev/shm, and the machine's libvirt directories is searched
# for the transport key, the TEKs and TIKs of the source's launch and of the
# target's (recovered from the target's session with its platform key,
# virt-qemu-sev-owner unwrap) and the plain secret table (e2e/sevsecret.py),
# each raw, hex and base64: 0 hits; so are virsh's output, job stats and the
# XML. The failures before are covered as well: their logs are scanned too. A needle planted once in host b's log directory is found,
# which proves the search works. The guest owner's directories are left out:
# they stand for the guest owner's machine, where these secrets belong.
#
# The wire, last: a confidential migration (with the --tls it always
# requires) is recorded by a recording TCP relay (e2e/wirecapture.py) in the
# source's namespace, through which the migration stream goes to the target
# (--migrateuri, --tls-destination): the guest's memory pattern is not in the
# recording (0 hits), and the recording is the whole stream: every record
# decrypts with the guest owner's transport key and authenticates up to the
# end record, and the records carry QEMU's TLS session (the stand-in puts the
# helper's stream outside it). The same recording of a plain migration of a
# plain guest (no TLS) finds the pattern.
#
# Exit status 77 (meson: skipped) when this machine cannot make the test
# hosts, with the reason printed.
#
# Usage: test_attestation.py GUEST_ELF

import base64
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

from cryptography.hazmat.primitives import serialization

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import guestcheck  # noqa: E402
import hosts  # noqa: E402
import secretscan  # noqa: E402
import sevguest  # noqa: E402
import sevsecret  # noqa: E402
import sevspec  # noqa: E402  (checks/, on the path through hosts)
import wirecapture  # noqa: E402

GUEST = None
DOMAIN = "e2e-att"
# host b's mirror_attestation_timeout in these tests (seconds). The agent
# that times out (test_05) is waited for this long; every legitimate agent
# run, in that test too (its session step), must end within it: the
# reference agent takes milliseconds, e2e/testagent.py (Python) well under a
# second also on a loaded machine, so 10 s leaves a margin of 10 and more.
TIMEOUT = 10
# the attest runs of a misbehaving agent that hangs carry this name (argv[0])
HANG_NAME = "e2e-attestation-agent-hangs"
# how long the child of test_05b's agent sleeps before it would complete
# the exchange (seconds)
CHILD_SLEEP = 5


def refused(op, reason):
    """The error when the guest owner refuses the agent's request @op."""
    return "the guest owner refused the '%s' request for domain '%s': %s" % (op, DOMAIN, reason)


def agent_failed(agent, op, how):
    """The error when the agent fails request @op; @how: its exit status."""
    return "attestation agent '%s' failed the '%s' request for domain '%s' (%s)" % (
        agent, op, DOMAIN, how)


# what each error of the target's attestation has, one of them
ATTESTATION_ERRORS = ("attestation agent", "request for domain", "provisions transport key",
                      "rejected the launch secret")


def owner_secrets(lab, needles):
    """Every secret of the guest owner's directories into @needles: the
    transport keys, the TEK and TIK of every launch session the owner (or a
    test agent for it) made, the plain secret tables."""
    for conf in glob.glob(os.path.join(lab.dir, "owner*", "owner.conf")):
        d = os.path.dirname(conf)
        with open(os.path.join(d, "transport-key"), "rb") as f:
            key = f.read()
        name = os.path.basename(d)
        needles.add("%s transport key" % name, key)
        keyid = dict(line.split("=", 1) for line in open(conf).read().splitlines()
                     if "=" in line and not line.startswith("#"))["key-id"]
        needles.add("%s secret table" % name, sevsecret.secret_table(key, keyid))
    for path in glob.glob(os.path.join(lab.dir, "owner*", "**", "t[ei]k"), recursive=True):
        with open(path, "rb") as f:
            needles.add(os.path.relpath(path, lab.dir), f.read())


def process_gone(pid):
    """Whether process @pid is gone (or dead, a zombie not reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def valgrind_errors(report):
    """The errors in valgrind's @report (memcheck), each as its text (the
    message and its stack)."""
    errors, cur = [], None
    for line in report.splitlines():
        m = re.match(r"==\d+== ?(.*)$", line)
        if not m:
            continue
        text = m.group(1)
        if re.match(r"(Invalid (read|write|free)|Conditional jump|Use of uninitialised|"
                    r"Syscall param|Source and destination overlap|Mismatched free)", text):
            cur = [text]
            errors.append(cur)
        elif cur is not None and text.strip():
            cur.append(text)
        else:
            cur = None
    return ["\n".join(e) for e in errors]


def agent_processes():
    """PIDs of the hanging agents still running."""
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if f.read().startswith(HANG_NAME.encode()):
                        pids.append(int(pid))
            except OSError:
                pass
    return pids


class AttestationTest(sevguest.SevGuestLabTest):

    DOMAIN = DOMAIN

    @classmethod
    def set_up_lab(cls):
        # since when the machine's temporary directories are scanned (the
        # lab's set-up included)
        cls.start = time.time() - 300
        cls.b.qemu_conf(attestation_timeout=TIMEOUT)
        cls.b.restart()
        cls.target_sessions = 0

    def setUp(self):
        self.b.standin_config()
        self.b.write_agent()

    # ---------------------------------------------------------- helpers

    def migrate(self, check_fail=True):
        res = self.a.virsh("migrate", "--live", "--p2p", "--confidential", "--tls",
                           DOMAIN, self.target, check=False, timeout=120)
        if check_fail:
            self.assertNotEqual(res.returncode, 0, "migration succeeded")
            print("\n    virsh: %s" % (res.stderr.strip().splitlines() or ["(nothing)"])[-1],
                  flush=True)
        return res

    def hook_agent(self, attest=None, session=None, host=None):
        """Host b's (@host's) agent: the reference agent, but the shell
        commands @attest (@session) first for the attest (session)
        requests."""
        (host or self.b).write_agent(
            "#!/bin/bash\n"
            "req=$(cat)\n"
            "case \"$req\" in\n"
            "*'\"operation\":\"attest\"'*) %s ;;\n"
            "*'\"operation\":\"session\"'*) %s ;;\n"
            "esac\n"
            "printf '%%s' \"$req\" | exec %s agent --service %s --tls-dir %s\n"
            % (attest or ":", session or ":", hosts.SEV_OWNER,
               self.lab.owner.service_addr(), self.b.owner_tls))

    def unwrap_recorded(self, state):
        """The TEK and TIK of the session host b's recording agent got,
        recovered with host b's platform key (virt-qemu-sev-owner unwrap)."""
        with open(os.path.join(state, "session-reply.json")) as f:
            reply = json.load(f)
        self.__class__.target_sessions += 1
        into = os.path.join(self.lab.owner.dir, "unwrapped-%d" % self.target_sessions)
        os.makedirs(into, mode=0o700)
        return hosts.unwrap_session(self.b.pdh_key, reply["dh-cert"], reply["session"],
                                    into=into)

    def assertNoSecrets(self, text):
        needles = secretscan.Needles()
        owner_secrets(self.lab, needles)
        self.assertEqual(needles.find(text), [], "secret material in: %s" % text)

    def assertFailedCleanly(self, res, *expected):
        """virsh's error has each of @expected and no secret; the source
        guest runs untouched, host b keeps nothing, no agent is left."""
        for text in expected:
            self.assertIn(text, res.stderr)
        self.assertNoSecrets(res.stderr + res.stdout)
        sevguest.source_untouched(self.a, self.b, self.lab, DOMAIN)
        self.assertEqual(agent_processes(), [])

    # ---------------------------------------------------------- failures

    def test_00_platform_chains(self):
        """Each host's platform certificates (virsh nodesevinfo) verify to
        the lab's "AMD" root with the guest owner's owner.conf, and not to
        AMD's real roots; a PDH of the host's own making is refused."""
        owner = self.lab.owner
        into = os.path.join(owner.dir, "platform-chains")
        os.makedirs(into, exist_ok=True)
        for host in (self.a, self.b):
            info = sevguest.platform_info(host)
            files = {}
            for field in ("pdh", "cert-chain"):
                files[field] = os.path.join(into, "%s-%s.b64" % (host.name, field))
                with open(files[field], "w") as f:
                    f.write(info[field])
            args = ["verify-chain", "--pdh", files["pdh"],
                    "--cert-chain", files["cert-chain"]]
            res = owner.tool(*(args + ["--owner-dir", owner.dir]), check=False)
            self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
            self.assertIn("verified: the PDH of chip %s, API version 1.55, root %s"
                          % (host.chip, self.lab.amd_ark), res.stdout)
            res = owner.tool(*(args + ["--roots", "all"]), check=False)
            self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
            self.assertIn("refused: CEK: signature by the ASK does not verify",
                          res.stderr)
            # the attack of issue 20: a P-384 key of the host's own as the PDH
            rogue = os.path.join(into, "%s-rogue-pdh.b64" % host.name)
            with open(rogue, "w") as f:
                f.write(base64.b64encode(sevspec.pack_cert(
                    sevspec.generate_key().public_key(), api_major=1,
                    api_minor=55)).decode())
            res = owner.tool("verify-chain", "--owner-dir", owner.dir, "--pdh", rogue,
                             "--cert-chain", files["cert-chain"], check=False)
            self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
            self.assertIn("refused: PDH: not signed by the PEK", res.stderr)

    def rogue_platform(self, host, pdh):
        """@host's platform presents the PDH certificate @pdh (bytes) from
        its next libvirtd start (the stand-in reads it at every probe; the
        QEMU capabilities cache, where nodesevinfo comes from, is
        emptied); None restores the host's own."""
        if not hasattr(host, "genuine_pdh_cert"):
            with open(host.pdh_cert) as f:
                host.genuine_pdh_cert = f.read()
        with open(host.pdh_cert, "w") as f:
            f.write(base64.b64encode(pdh).decode() if pdh else host.genuine_pdh_cert)
        caps = os.path.join(host.bound("/var/local/cache/libvirt"), "qemu", "capabilities")
        for path in glob.glob(os.path.join(caps, "*.xml")):
            os.unlink(path)
        host.restart()

    def test_00b_rogue_platform_refused(self):
        """The attack of issue 20, end to end: host b presents its own
        P-384 key as its PDH, unsigned (the platform's key here, so that a
        session made for it would launch). The guest owner's agent refuses
        at 'session', naming the broken link; nothing starts on host b and
        the source runs on untouched."""
        b = self.b
        with open(b.pdh_key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        rogue = sevspec.pack_cert(key.public_key(), api_major=1, api_minor=55)
        self.rogue_platform(b, rogue)
        try:
            self.assertEqual(sevguest.platform_pdh(b), base64.b64encode(rogue).decode())
            res = self.migrate()
        finally:
            self.rogue_platform(b, None)
        self.assertFailedCleanly(res, refused("session", "PDH: not signed by the PEK (no "
                                              "signature of usage PEK)"))
        self.assertKeyNowhere()

    def assertKeyNowhere(self):
        """The guest owner's transport key (and its other secrets) in no
        file of either host (self.scan) and in no readable mapping of
        either libvirtd (/proc/PID/mem); the same memory scan of the
        source's QEMU stand-in, which plays the guest's encrypted memory
        and so holds the key, finds it: the scan works."""
        lab = self.lab
        needles = secretscan.Needles()
        owner_secrets(lab, needles)
        nfiles, nbytes, hits = self.scan(needles)
        self.assertEqual(hits, [], "secrets in files")
        for h in (self.a, self.b):
            nmaps, mbytes, _, hits = secretscan.scan_process(needles, h.daemon_pid())
            self.assertGreater(nmaps, 10)
            self.assertEqual(hits, [], "secrets in the memory of host %s's libvirtd" % h.name)
        key = secretscan.Needles()
        key.add("owner transport key", lab.owner.key())
        # (the stand-in and the QEMU it runs the guest's vCPUs in)
        pids = self.a.emulator_pids()
        self.assertTrue(pids)
        found = {n for pid in pids for _, n, _ in secretscan.scan_process(key, pid)[3]}
        self.assertEqual(found, {"owner transport key"},
                         "the memory scan does not find the key where it is")
        print("\n    key scan: %d files, %.1f MiB; libvirtd memory of both hosts: 0 hits"
              % (nfiles, nbytes / 2 ** 20), flush=True)

    def test_00c_chip_not_allowed(self):
        """Host b's chain is valid, but the guest owner allows only host
        a's chip: refused at 'session' with the chip named, and the key is
        nowhere on the hosts."""
        owner = self.lab.owner
        owner.write_conf(allow_chips=self.a.chip)
        try:
            res = self.migrate()
        finally:
            owner.write_conf(allow_chips=None)
        self.assertFailedCleanly(res, refused("session", "CEK: chip %s is not an allowed chip"
                                              % self.b.chip))
        self.assertKeyNowhere()

    def test_00d_old_firmware(self):
        """Host b's platform runs firmware build 20 (its chain is valid),
        and the guest owner requires build 24 at least: the session is
        made, QEMU launches, and the measurement (which covers the build)
        is refused at 'attest'; the key is nowhere on the hosts."""
        owner = self.lab.owner
        self.b.standin_config(sev_build_id=20)
        owner.write_conf(min_build=24)
        try:
            res = self.migrate()
        finally:
            owner.write_conf(min_build=None)
            self.b.standin_config()
        self.assertFailedCleanly(res, refused("attest", "firmware build: 20 is below the "
                                              "minimum 24"))
        self.assertKeyNowhere()

    def test_01_agent_not_configured(self):
        b = self.b
        b.qemu_conf(agent=None, attestation_timeout=TIMEOUT)
        b.restart()
        try:
            res = self.migrate()
        finally:
            b.qemu_conf(attestation_timeout=TIMEOUT)
            b.restart()
        self.assertFailedCleanly(
            res, "no attestation agent is configured to attest this host for domain '%s' "
            "(mirror_attestation_agent in qemu.conf)" % DOMAIN)

    def test_02_agent_not_there(self):
        os.unlink(self.b.agent)
        res = self.migrate()
        self.assertFailedCleanly(
            res, "attestation agent '%s' (mirror_attestation_agent in qemu.conf) is not an "
            "executable file" % self.b.agent)

    def test_03_agent_fails_at_session(self):
        self.hook_agent(session="echo 'agent: the service of the guest owner is unreachable' >&2;"
                                " exit 3")
        res = self.migrate()
        self.assertFailedCleanly(
            res, agent_failed(self.b.agent, "session", "exit status 3"),
            "the service of the guest owner is unreachable")

    def test_04_agent_fails_at_attest(self):
        self.hook_agent(attest="echo 'agent: lost the guest owner' >&2; exit 5")
        res = self.migrate()
        self.assertFailedCleanly(
            res, agent_failed(self.b.agent, "attest", "exit status 5"), "lost the guest owner")

    def test_04b_owner_service_unreachable(self):
        """Host b's agent asks for the guest owner's service at an address
        where nothing listens: refused at the session, with the agent's
        reason."""
        self.b.write_agent(service="%s:%d" % (hosts.OWNER_ADDR, hosts.OWNER_PORT + 99))
        before = len(self.lab.owner.audit())
        res = self.migrate()
        self.assertFailedCleanly(
            res, agent_failed(self.b.agent, "session", "exit status 1"),
            "cannot reach the guest owner's service at %s:%d"
            % (hosts.OWNER_ADDR, hosts.OWNER_PORT + 99))
        self.assertEqual(len(self.lab.owner.audit()), before)

    def test_04c_owner_service_certificate_wrong(self):
        """Host b's agent trusts another CA than the one that signed the
        service's certificate (a service that is not the owner's): the
        agent refuses it, the migration is refused at the session with
        the reason, and the owner's service made no session."""
        tls = os.path.join(self.lab.dir, "b-tls-other-ca")
        if not os.path.exists(tls):
            other = hosts.ownerpki.CA(os.path.join(self.lab.dir, "other-ca"), "not the owner")
            self.lab.owner_ca.issue(tls, "client", "host b (%s)" % self.b.addr, trust=other)
        self.b.write_agent(tls=tls)
        before = len(self.lab.owner.audit())
        res = self.migrate()
        self.assertFailedCleanly(
            res, agent_failed(self.b.agent, "session", "exit status 1"),
            "presented a certificate that does not verify")
        self.assertNotIn("session", [r["verdict"] for r in self.lab.owner.audit()[before:]])

    def test_05_agent_times_out(self):
        self.hook_agent(attest="exec -a %s sleep 60" % HANG_NAME)
        start = time.monotonic()
        res = self.migrate()
        took = time.monotonic() - start
        self.assertGreaterEqual(took, TIMEOUT)
        self.assertFailedCleanly(
            res, "attestation agent '%s' did not answer the 'attest' request for domain '%s' "
            "within %d seconds (mirror_attestation_timeout)" % (self.b.agent, DOMAIN, TIMEOUT))

    def test_05b_daemon_killed_while_agent_runs(self):
        """Host b's libvirtd is killed (SIGKILL) while its agent runs at
        'attest': a wrapper that does not exec and waits for its child, a
        shell that sleeps CHILD_SLEEP s and would then complete the
        exchange (it writes a marker; then the wrapper would run the
        reference agent). The wrapper and its child are gone moments
        after the kill (the agent's process group has a watchdog that kills
        it when the daemon dies), the marker is never written, and after
        libvirtd's restart host b keeps nothing; the source runs on."""
        b = self.b
        state = os.path.join(self.lab.dir, "agent-daemon-killed")
        os.makedirs(state)
        self.hook_agent(attest=(
            "sh -c 'echo $$ > %(s)s/child.pid.new && mv %(s)s/child.pid.new %(s)s/child.pid;"
            " sleep %(d)d; touch %(s)s/completed' & echo $$ > %(s)s/wrapper.pid; wait"
            % {"s": state, "d": CHILD_SLEEP}))
        proc = sevguest.migrate_async(self.a, "--live", "--p2p", "--confidential", "--tls",
                                      DOMAIN, self.target)
        try:
            child_pid = os.path.join(state, "child.pid")
            deadline = time.monotonic() + 120
            while not os.path.exists(child_pid):
                self.assertIsNone(proc.poll(), "the migration ended early")
                self.assertLess(time.monotonic(), deadline, "the agent did not start")
                time.sleep(0.05)
            started = time.monotonic()
            pids = {name: int(open(os.path.join(state, name + ".pid")).read())
                    for name in ("wrapper", "child")}
            killed = time.monotonic()
            took = b.kill_daemon(signal.SIGKILL)
            gone = {}
            while len(gone) < len(pids):
                for name, pid in pids.items():
                    if name not in gone and process_gone(pid):
                        gone[name] = time.monotonic() - killed
                self.assertLess(time.monotonic() - killed, 60,
                                "still running 60 s after the kill: %s"
                                % sorted(set(pids) - set(gone)))
                time.sleep(0.01)
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
            b.start()
        self.assertNotEqual(proc.returncode, 0, "migration succeeded")
        # the child would have completed CHILD_SLEEP s after it started
        time.sleep(max(0, started + CHILD_SLEEP + 2 - time.monotonic()))
        self.assertFalse(os.path.exists(os.path.join(state, "completed")),
                         "the agent's child completed the exchange")
        print("\n    virsh: %s\n    SIGKILL to libvirtd: it was reaped after %.0f ms, the "
              "agent's wrapper gone after %.0f ms, its child after %.0f ms; no exchange "
              "completed %d s after the child began"
              % ((err.strip().splitlines() or ["(nothing)"])[-1], took * 1000,
                 gone["wrapper"] * 1000, gone["child"] * 1000, CHILD_SLEEP + 2), flush=True)
        sevguest.source_untouched(self.a, b, self.lab, DOMAIN)

    def test_05c_destroy_while_agent_runs(self):
        """Back to a host that has the domain's persistent definition (the
        guest goes a -> b first, then b -> a): while host a's agent runs at
        'attest' (it waits for the test), the incoming domain is destroyed
        on host a (virsh destroy: qemuProcessStop frees the live
        definition, the persistent one takes its place), then the agent
        refuses. The error names the domain (libvirt's copy of its name:
        the freed definition is not read), the guest runs on host b
        untouched, host a keeps its persistent definition and no QEMU.
        With E2E_VALGRIND=1 (or a file name: a copy of valgrind's report
        goes there) host a's libvirtd runs under valgrind meanwhile: no
        invalid access in the attestation code."""
        a, b, lab = self.a, self.b, self.lab
        back = "qemu+tls://%s/system" % a.addr
        res = a.virsh("migrate", "--live", "--p2p", "--confidential", "--tls", DOMAIN,
                      self.target, check=False, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr + a.log_tail() + b.log_tail())
        self.assertIn("shut off", a.virsh("domstate", DOMAIN).stdout)
        state = os.path.join(lab.dir, "agent-destroyed")
        os.makedirs(state)
        report = os.path.join(lab.dir, "valgrind-a.log") if os.environ.get("E2E_VALGRIND") \
            else None
        self.hook_agent(host=a, attest=(
            "touch %(s)s/started; i=0; while [ ! -e %(s)s/release ] && [ $i -lt 3000 ];"
            " do sleep 0.1; i=$((i+1)); done;"
            " echo '{\"refused\": \"released after the destroy\"}'; exit 0" % {"s": state}))
        try:
            a.valgrind = report
            a.qemu_conf(attestation_timeout=300)
            a.restart()
            proc = sevguest.migrate_async(b, "--live", "--p2p", "--confidential", "--tls",
                                          DOMAIN, back)
            deadline = time.monotonic() + 300
            while not os.path.exists(os.path.join(state, "started")):
                self.assertIsNone(proc.poll(), "the migration ended early: %s"
                                  % (proc.poll() is not None and proc.stderr.read()))
                self.assertLess(time.monotonic(), deadline, "the agent did not start")
                time.sleep(0.1)
            destroyed = a.virsh("destroy", DOMAIN, check=False, timeout=300)
            open(os.path.join(state, "release"), "w").close()
            out, err = proc.communicate(timeout=600)
            vg_errors = None
            if report:
                a.valgrind = None
                a.restart()
                with open(report) as f:
                    text = f.read()
                self.assertIn("Memcheck", text, "libvirtd did not run under valgrind")
                vg_errors = valgrind_errors(text)
                if os.environ["E2E_VALGRIND"] != "1":
                    # a copy of the report, where E2E_VALGRIND names
                    with open(os.environ["E2E_VALGRIND"], "w") as f:
                        f.write(text)
        finally:
            a.valgrind = None
            a.qemu_conf()
            a.write_agent()
            if a.daemon.poll() is not None or report:
                a.restart()
        self.assertEqual(destroyed.returncode, 0, destroyed.stderr)
        self.assertNotEqual(proc.returncode, 0, "migration succeeded")
        print("\n    virsh destroy on host a while its agent ran: exit status %d"
              "\n    virsh migrate: %s" % (destroyed.returncode,
                                          (err.strip().splitlines() or ["(nothing)"])[-1]),
              flush=True)
        self.assertIn(refused("attest", "released after the destroy"), err)
        self.assertEqual(sevguest.state(b, DOMAIN), "running")
        self.assertEqual(sevguest.pattern_errors(b, lab, DOMAIN), [])
        self.assertEqual(a.emulator_pids(), [])
        self.assertIn("shut off", a.virsh("domstate", DOMAIN).stdout)
        if report is not None:
            ours = [e for e in vg_errors
                    if "qemu_mirror_attest" in e or "qemu_migration_confidential" in e]
            print("    valgrind (host a's libvirtd): %d error(s), %d in the attestation code%s"
                  % (len(vg_errors), len(ours), "".join("\n" + e for e in ours[:3])),
                  flush=True)
            self.assertEqual(ours, [])
        # back to host a, for the tests that follow
        res = b.virsh("migrate", "--live", "--p2p", "--confidential", "--tls", DOMAIN, back,
                      check=False, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr + a.log_tail() + b.log_tail())
        sevguest.wait_helper_ready(a, DOMAIN)

    def test_06_agent_output_malformed(self):
        cases = [
            ("echo 'this is not {JSON'; exit 0",
             "attestation agent '%s' did not answer the 'attest' request for domain '%s' "
             "with a JSON object" % (self.b.agent, DOMAIN)),
            ("echo '{\"secret-header\": \"AAAA\", \"secret\": \"%s\", \"key-id\": \"%s\"}';"
             " exit 0" % ("A" * 64, hosts.OWNER_KEY_ID),
             "attestation agent's reply to the 'attest' request for domain '%s' has no valid "
             "'secret-header' (base64 of 52 bytes)" % DOMAIN),
        ]
        for script, expected in cases:
            with self.subTest(expected=expected):
                self.hook_agent(attest=script)
                res = self.migrate()
                self.assertFailedCleanly(res, expected)

    def test_07_measurement_refused(self):
        other = os.path.join(self.lab.dir, "OVMF-other.fd")
        with open(other, "w") as f:
            f.write("a firmware the guest owner does not expect\n")
        owner = self.lab.owner.variant("owner-other-firmware", firmware=other)
        self.b.write_agent(owner=owner)
        res = self.migrate()
        self.assertFailedCleanly(res, refused("attest", ""))
        reason = res.stderr.split(refused("attest", ""), 1)[-1]
        print("    (refusal: %s)" % reason.strip(), flush=True)
        self.assertIn("measurement", reason)

    def test_08_platform_rejects_foreign_secret(self):
        """A secret sealed with a TEK and TIK of no session (the session
        is the owner's, made by e2e/testagent.py)."""
        state = self.b.write_test_agent("owner-table")
        with open(os.path.join(state, "table.json"), "w") as f:
            json.dump({"key-id": hosts.OWNER_KEY_ID, "foreign-tik": True}, f)
        res = self.migrate()
        self.assertFailedCleanly(res, "the SEV platform rejected the launch secret for "
                                 "domain '%s': " % DOMAIN)

    def test_09_platform_rejects_replayed_secret(self):
        """The session and the secret the reference agent gave for an
        earlier migration (which failed after the injection, its helper
        failing), given again: the same TEK and TIK, but the secret's MAC
        covers the earlier launch's measurement (another mnonce)."""
        b = self.b
        state = b.write_test_agent("record", state=os.path.join(self.lab.owner.dir, "recorded"))
        b.standin_config(helper="failed")
        res = self.migrate()
        self.assertFailedCleanly(res, "migration helper of domain '%s' failed" % DOMAIN)
        tek, tik = self.unwrap_recorded(state)
        self.assertEqual(len(tek + tik), 32)
        b.standin_config()
        b.write_test_agent("replay", state=state)
        res = self.migrate()
        self.assertFailedCleanly(res, "the SEV platform rejected the launch secret for "
                                 "domain '%s': " % DOMAIN)

    def test_10_key_ids_differ(self):
        owner = self.lab.owner.variant("owner-other-key-id", key_id="e2e-another-key")
        self.b.write_agent(owner=owner)
        res = self.migrate()
        self.assertFailedCleanly(
            res, "the guest owner provisions transport key 'e2e-another-key' for domain '%s', "
            "but the source's migration helper holds '%s'" % (DOMAIN, hosts.OWNER_KEY_ID))

    def test_11_other_key_same_id_fails_in_stream(self):
        """Host b's owner directory has the same key id but another
        transport key: attestation passes, the key check too (the ids
        match), and the source's helper refuses host b's key confirmation
        (contract version 3) before it sends anything: the migration
        fails, fail closed."""
        a, b = self.a, self.b
        owner = self.lab.owner.variant("owner-other-key", new_transport_key=True)
        self.assertNotEqual(owner.key(), self.lab.owner.key())
        b.write_agent(owner=owner)
        since = len(b.domain_log(DOMAIN))
        res = self.migrate(check_fail=False)
        if res.returncode == 0:
            # back to host a for the tests that follow (host a's agent has
            # the owner's key), then fail
            a.virsh("migrate", "--live", "--confidential", "--tls", DOMAIN,
                    "qemu+tls://%s/system" % a.addr, uri="qemu+tls://%s/system" % b.addr,
                    check=False, timeout=120)
            self.fail("the migration succeeded although host b's helper got another "
                      "transport key")
        print("\n    virsh: %s" % res.stderr.strip().splitlines()[-1], flush=True)
        for marker in ATTESTATION_ERRORS:
            self.assertNotIn(marker, res.stderr)
        self.assertFailedCleanly(res)
        # why: host b's helper does not prove the source's key; the source's
        # helper said so before its first record: host b accepted none (libvirt
        # had connected the socket, which closed with nothing on it)
        self.assertIn("key confirmation failed: the target's helper does not prove the "
                      "transport key '%s'" % hosts.OWNER_KEY_ID, res.stderr)
        log = b.domain_log(DOMAIN)[since:]
        self.assertIn("migration stream (incoming): 0 records accepted", log)
        self.assertNotIn("does not authenticate", log)

    def test_12_attested_migration(self):
        """With the reference agent: the migration succeeds, and host b's
        completed job reports the attestation's time and the agent's."""
        a, b, lab = self.a, self.b, self.lab
        before = sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        res = self.migrate(check_fail=False)
        self.assertEqual(res.returncode, 0, res.stderr + a.log_tail() + b.log_tail())
        self.assertEqual(sevguest.state(b, DOMAIN), "running")
        self.assertEqual(sevguest.pattern_errors(b, lab, DOMAIN), [])
        self.assertGreater(sevguest.guest_word(b, lab, DOMAIN, guestcheck.COUNTER_ADDR),
                           before)
        self.assertEqual(sevguest.qmp(b, DOMAIN, "query-migration-helper"),
                         {"status": "ready", "transport-key": True,
                          "transport-key-id": hosts.OWNER_KEY_ID})
        out = b.virsh("domjobinfo", "--completed", DOMAIN).stdout
        print("\n    " + "\n    ".join(line for line in out.splitlines()
                                      if "ttestation" in line or "onfidential" in line),
              flush=True)
        # (fails with libvirt as of this commit: the completed job's
        # attestation times are copied now, but qemuMigrationConfidentialJobParams
        # returns before adding them when confidentialPhase is NONE, which
        # it is in the statistics that came from the source; see this
        # line's commit message)
        self.assertRegex(out, r"Attestation:\s+\d+ ms \(attestation agent: \d+ ms\)")
        self.assertNoSecrets(out)

    # ------------------------------------------------------- secret scan

    def scan(self, needles):
        """(files, bytes, hits) of the secret scan: every file of both
        hosts' directories and of the lab's, of the machine's libvirt
        directories, and what changed in /tmp, /var/tmp and /dev/shm since
        the lab began; not the guest owner's directories (its machine)."""
        lab = self.lab
        owners = glob.glob(os.path.join(lab.dir, "owner*"))
        roots = [h.dir for h in lab.hosts.values()] + [lab.dir] + hosts.BOUND_DIRS + \
            ["/var/log/libvirt", "/etc/libvirt", "/var/lib/libvirt", "/var/cache/libvirt"]
        found = secretscan.scan_files(needles, roots, skip=owners)
        tmp = secretscan.scan_files(needles, ["/tmp", "/var/tmp", "/dev/shm"],
                                    skip=owners + [lab.dir], since=self.start)
        return found[0] + tmp[0], found[1] + tmp[1], found[2] + tmp[2]

    def core_agent(self, host, cores, *args, path=None, at=None):
        """@host's agent: virt-qemu-sev-owner with @args (default: the thin
        agent asking the lab owner's service) run under gdb, which writes
        a core of the tool into @cores when it first writes to its standard
        output (the reply then complete in its memory), before the write;
        each request is kept there too (request.N.json, core.N). @at: a
        function of the tool to take the core at instead. The program goes
        to @path if given, else to @host's agent path."""
        owner = self.lab.owner
        args = args or ("agent", "--service", owner.service_addr(),
                        "--tls-dir", host.owner_tls)
        os.makedirs(cores, mode=0o700, exist_ok=True)
        program = (
            "#!/bin/bash\n"
            "# host %(host)s's agent under gdb: a core at its reply\n"
            "d=%(cores)s\n"
            "n=$(date +%%s%%N)\n"
            "cat > $d/request.$n.json\n"
            "cat > $d/gdb.$n <<EOF\n"
            "set pagination off\n"
            "set confirm off\n"
            "set auto-solib-add off\n"
            "file %(tool)s\n"
            "%(stop)s\n"
            "run %(args)s < $d/request.$n.json >&3 2>&4\n"
            "if \\$_isvoid(\\$_exitcode)\n"
            "gcore $d/core.$n\n"
            "delete\n"
            "continue\n"
            "end\n"
            "quit \\$_exitcode\n"
            "EOF\n"
            "exec 3>&1 4>&2\n"
            "exec gdb -q -nx -batch -x $d/gdb.$n >>$d/gdb.log 2>&1\n"
            % dict(host=host.name, cores=cores, tool=hosts.SEV_OWNER,
                   args=" ".join(args),
                   stop=("break " + at if at else
                         "catch syscall write\ncondition 1 \\$rdi == 1")))
        if path is None:
            host.write_agent(program)
            return
        with open(path, "w") as f:
            f.write(program)
        os.chmod(path, 0o700)

    def cores(self, cores):
        """The cores in @cores, each checked to be a core of a process."""
        found = sorted(glob.glob(os.path.join(cores, "core.*")))
        for path in found:
            with open(path, "rb") as f:
                head = f.read(18)
            self.assertEqual(head[:4], b"\x7fELF", path)
            self.assertEqual(int.from_bytes(head[16:18], "little"), 4, "not a core: " + path)
        return found

    def test_13_secret_scan(self):
        """Both daemons at log_level 1, a confidential migration (back to
        host a), then every file is searched for every secret: the owner's
        (transport key, plain secret table, TEK and TIK of each launch it
        or a test agent made), those of the target's session (recovered
        from its live definition with its platform key), of the recorded
        sessions too: 0 hits. Then a planted needle is found."""
        lab = self.lab
        # back to host a after test_12 (either way when run alone)
        src, dst = ((self.b, self.a) if sevguest.state(self.b, DOMAIN) == "running"
                    else (self.a, self.b))
        # the target's agent runs under gdb: a slow start on a busy machine
        # must not reach the attestation timeout (host b's is TIMEOUT)
        dst.qemu_conf(attestation_timeout=120)
        for h in (src, dst):
            h.libvirtd_conf(debug_all=True)
            h.restart()
        self.addCleanup(lambda: [h.libvirtd_conf() for h in (src, dst)])
        self.addCleanup(dst.qemu_conf, attestation_timeout=TIMEOUT if dst is self.b
                        else hosts.ATTESTATION_TIMEOUT)
        # the target's agent dumps its memory at each reply into the
        # target's directory, which the scan reads
        cores = os.path.join(dst.dir, "agent-cores")
        self.core_agent(dst, cores)
        self.addCleanup(dst.write_agent)
        sevguest.wait_helper_ready(src, DOMAIN)
        res = src.virsh("migrate", "--live", "--p2p", "--confidential", "--tls",
                        "--persistent", DOMAIN,
                        "qemu+tls://%s/system" % dst.addr, check=False, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr + src.log_tail() + dst.log_tail())
        self.assertEqual(sevguest.state(dst, DOMAIN), "running")
        # one core for the session, one for the attestation
        self.assertEqual(len(self.cores(cores)), 2, open(os.path.join(cores, "gdb.log")).read())

        xml = dst.virsh("dumpxml", "--security-info", DOMAIN).stdout
        dh_cert = xml.split("<dhCert>")[1].split("</dhCert>")[0]
        session = xml.split("<session>")[1].split("</session>")[0]
        self.assertNotEqual(session, self.launch.text("session"),
                            "the target launched with the session of the guest's first launch")
        # --persistent: the target keeps the session it launched with (made
        # for its platform), not the source's
        inactive = dst.virsh("dumpxml", "--inactive", "--security-info", DOMAIN).stdout
        self.assertEqual(inactive.split("<session>")[1].split("</session>")[0], session)
        self.assertEqual(inactive.split("<dhCert>")[1].split("</dhCert>")[0], dh_cert)
        into = os.path.join(lab.owner.dir, "unwrapped-scan")
        os.makedirs(into, mode=0o700)
        hosts.unwrap_session(dst.pdh_key, dh_cert, session, into=into)
        needles = secretscan.Needles()
        owner_secrets(lab, needles)

        # what libvirt shows: virsh's output, job stats, the XML
        shown = "".join(h.virsh(*args, check=False).stdout
                        for h in (src, dst) for args in (
                            ("domjobinfo", "--completed", DOMAIN),
                            ("dumpxml", "--security-info", DOMAIN),
                            ("domlaunchsecinfo", DOMAIN), ("mirror-info", DOMAIN)))
        self.assertEqual(needles.find(shown + res.stderr + res.stdout), [])
        # the daemons logged at debug level, the injection included
        for h in (src, dst):
            with open(os.path.join(h.bound("/var/local/log/libvirt"), "libvirtd.log")) as f:
                log = f.read()
            self.assertIn(": debug : ", log)
        self.assertIn("sev-inject-launch-secret", log)

        nfiles, nbytes, hits = self.scan(needles)
        print("\n    %d secrets, %d forms each: %d files, %.1f MiB scanned, %d hit(s)"
              "\n    secrets: %s"
              % (len(needles.names()), len(needles.forms) // len(needles.names()), nfiles,
                 nbytes / 2 ** 20, len(hits), ", ".join(needles.names())), flush=True)
        self.assertEqual(hits, [])

        # the same memory dump of the test-only on-host agent (agent
        # --owner-dir), given the target's attest request and taken while
        # it seals the secret, finds the key: the dumps hold the agent's
        # memory (at its reply, this agent has erased the key already)
        attest = [p for p in glob.glob(os.path.join(cores, "request.*.json"))
                  if json.load(open(p))["operation"] == "attest"]
        self.assertEqual(len(attest), 1)
        control = os.path.join(lab.owner.dir, "agent-core-control")
        program = os.path.join(lab.owner.dir, "agent-core-control.sh")
        self.core_agent(dst, control, "agent", "--owner-dir", lab.owner.dir, path=program,
                        at="sevOwnerSecretPacket")
        with open(attest[0], "rb") as f:
            ran = subprocess.run([program], stdin=f, capture_output=True, timeout=120)
        self.assertEqual(ran.returncode, 0, ran.stderr)
        self.assertIn(b'"secret"', ran.stdout)
        key = secretscan.Needles()
        key.add("owner transport key", lab.owner.key())
        control_cores = self.cores(control)
        self.assertEqual(len(control_cores), 1)
        hits = secretscan.scan_files(key, [control])[2]
        self.assertEqual({(p, n) for p, n, _ in hits},
                         {(control_cores[0], "owner transport key")})
        print("    the target's agent at its 2 replies: %s bytes of memory, 0 hits; "
              "the on-host agent's, sealing the secret: the key found"
              % "+".join(str(os.path.getsize(c)) for c in self.cores(cores)), flush=True)

        # the scan finds what is there: the transport key, in base64 inside
        # a longer text, in host b's log directory
        planted = os.path.join(self.b.bound("/var/local/log/libvirt"), "planted.log")
        with open(planted, "wb") as f:
            f.write(b"debug: " + base64.b64encode(b"xy" + lab.owner.key() + b"z") + b"\n")
        try:
            _, _, hits = self.scan(needles)
        finally:
            os.unlink(planted)
        # (the owner's other directories hold the same key under other names)
        self.assertEqual({p for p, _, _ in hits}, {planted})
        self.assertIn("owner transport key", {n for _, n, _ in hits})


    # ------------------------------------------------------- wire capture

    def capture_migration(self, src, dst, name, *flags):
        """Migrates @name from @src to @dst through the recording relay:
        the relay listens on 127.0.0.1 in @src's network namespace, where
        --migrateuri sends the source's stream, and forwards it to @dst's
        address, where the target listens on the same port. With --tls in
        @flags, QEMU checks the target's certificate against @dst's address
        (--tls-destination). The Recording (whole, or Inconclusive)."""
        if "--tls" in flags:
            flags += ("--tls-destination", dst.addr)
        # a port in neither libvirt's migration range nor the ephemeral one
        port = 40000 + os.getpid() % 5000
        path = os.path.join(self.lab.dir, "wire-%s" % name)
        with wirecapture.Relay(("127.0.0.1", port), (dst.addr, port), path,
                               netns=src.netns):
            res = src.virsh("migrate", "--live", "--p2p", *flags, name,
                            "qemu+tls://%s/system" % dst.addr,
                            "--migrateuri", "tcp://127.0.0.1:%d" % port,
                            check=False, timeout=600)
        self.assertEqual(res.returncode, 0, res.stderr + src.log_tail() + dst.log_tail())
        return wirecapture.Recording(path)

    def test_14_wire_capture(self):
        """The migration stream of a confidential migration of the SEV
        guest, with the --tls it always requires, is recorded whole (the
        recording relay): the guest's memory pattern is not in it; every
        record of the helper's stream decrypts with the guest owner's key
        and authenticates, up to the end record, and what the records carry
        is QEMU's TLS session, both ways. The same recording of a plain
        migration of a plain guest (no TLS) finds the pattern, which proves
        the search works."""
        lab = self.lab
        src, dst = ((self.b, self.a) if sevguest.state(self.b, DOMAIN) == "running"
                    else (self.a, self.b))
        sevguest.wait_helper_ready(src, DOMAIN)

        rec = self.capture_migration(src, dst, DOMAIN, "--confidential", "--tls")
        hits = rec.count(wirecapture.guest_pattern_windows())
        print("\n    confidential, --tls: %.1f MiB recorded, %d hit(s) of the guest's "
              "pattern" % (rec.total() / 2 ** 20, hits), flush=True)
        self.assertEqual(sevguest.state(dst, DOMAIN), "running")
        self.assertEqual(sevguest.pattern_errors(dst, lab, DOMAIN), [])
        self.assertGreater(rec.total(), 4 << 20, "the recording missed the migration")
        self.assertEqual(hits, 0)
        # the recording is the whole stream: every record decrypts with the
        # owner's key and authenticates, in order, up to the end record; the
        # records carry QEMU's TLS session (a TLS handshake record first,
        # each way), not QEMU's stream in clear
        key_id, there, back = wirecapture.decode_stream(*rec.only(), lab.owner.key())
        self.assertEqual(key_id, lab.owner.key_id)
        self.assertEqual(there[:2], b"\x16\x03")
        self.assertEqual(back[:2], b"\x16\x03")
        self.assertGreater(len(there), 4 << 20)
        self.assertNotIn(b"QEVM", there)

        plain = "e2e-wire-plain"
        sevguest.define_and_start(src, lab, plain, sevguest.domain_xml(lab, plain, GUEST))
        self.addCleanup(lambda: [h.virsh("destroy", plain, check=False) for h in (src, dst)])
        rec = self.capture_migration(src, dst, plain)
        hits = rec.count(wirecapture.guest_pattern_windows())
        print("    plain guest, plain migration: %.1f MiB recorded, %d hit(s)"
              % (rec.total() / 2 ** 20, hits), flush=True)
        self.assertGreater(hits, 0)

    def test_15_replayed_stream_refused(self):
        """Contract version 3: the recorded stream of a completed
        confidential migration, replayed into a fresh target that holds the
        same transport key, is refused at key confirmation. The fresh
        target is prepared by libvirt the normal way (attested, provisioned
        by the guest owner, listening): a confidential migration back
        whose stream the relay replaces with the recording (a raw TCP
        sender of its 'there' direction, the live stream dropped). The
        target's helper refuses the header, no record is accepted, libvirt
        cleans the target up, the source guest runs on."""
        lab = self.lab
        src, dst = ((self.b, self.a) if sevguest.state(self.b, DOMAIN) == "running"
                    else (self.a, self.b))
        sevguest.wait_helper_ready(src, DOMAIN)
        rec = self.capture_migration(src, dst, DOMAIN, "--confidential", "--tls")
        there, _ = rec.only()
        self.assertEqual(wirecapture.decode_stream(*rec.only(), lab.owner.key())[0],
                         lab.owner.key_id)
        recording = os.path.join(lab.dir, "replay-there")
        with open(recording, "wb") as f:
            f.write(there)

        # the guest runs on dst now; src becomes the fresh target
        src, dst = dst, src
        sevguest.wait_helper_ready(src, DOMAIN)
        since = len(dst.domain_log(DOMAIN))
        # the fresh target may keep the guest's persistent definition from
        # before (it migrated away from there without --undefinesource)
        defined = dst.virsh("list", "--all", "--name").stdout.split()

        port = 40000 + os.getpid() % 5000
        with wirecapture.Relay(("127.0.0.1", port), (dst.addr, port),
                               os.path.join(lab.dir, "wire-replay"), netns=src.netns,
                               replay=recording):
            res = src.virsh("migrate", "--live", "--p2p", "--confidential", "--tls",
                            "--tls-destination", dst.addr, DOMAIN,
                            "qemu+tls://%s/system" % dst.addr,
                            "--migrateuri", "tcp://127.0.0.1:%d" % port,
                            check=False, timeout=600)
        self.assertNotEqual(res.returncode, 0, "the replayed migration succeeded")
        print("\n    virsh: %s" % (res.stderr.strip().splitlines() or ["(nothing)"])[-1],
              flush=True)
        log = dst.domain_log(DOMAIN)[since:]
        refusal = [line for line in log.splitlines() if "key confirmation failed" in line]
        self.assertEqual(len(refusal), 1, log)
        self.assertIn("migration stream (incoming) failed: key confirmation failed: the "
                      "stream was made for another target's nonce", refusal[0])
        print("    (host %s: %s)" % (dst.name, refusal[0].strip()), flush=True)
        self.assertIn("migration stream (incoming): 0 records accepted", log)
        self.assertNoSecrets(res.stderr + res.stdout)
        try:
            sevguest.source_untouched(src, dst, lab, DOMAIN)
        except AssertionError as e:
            # the source's checks passed; the target keeps only the inactive
            # definition it had before, no QEMU
            if DOMAIN not in defined or str(e) != "host %s keeps the domain" % dst.name:
                raise
            self.assertEqual(dst.emulator_pids(), [])
            self.assertEqual(sevguest.state(dst, DOMAIN), "shut off")
        self.assertEqual(agent_processes(), [])


def main():
    global GUEST
    GUEST = os.path.realpath(sys.argv[1])
    AttestationTest.GUEST = GUEST
    return hosts.run_tests(AttestationTest)


if __name__ == "__main__":
    sys.exit(main())
