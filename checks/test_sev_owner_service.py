#!/usr/bin/python3
#
# The guest owner's service (virt-qemu-sev-owner serve) and the thin agent
# (virt-qemu-sev-owner agent --service) over mutual TLS, on 127.0.0.1:
#
#  - an honest session and attestation through agent and service: the
#    secret decrypts (checks/sevspec.py) to the transport key;
#  - owner.conf read again for each request: a policy changed between two
#    requests refuses the second;
#  - a client without a certificate, a client certificate of another CA,
#    refused by the service (and audited);
#  - a service certificate of another CA, or for another address, refused
#    by the agent, with the reason; a service that is not there: a clear
#    error and a non-zero exit;
#  - a request larger than the cap refused; a silent client dropped after
#    the service's I/O timeout, the next client served;
#  - the audit file: one JSON line per request (a session, a release, a
#    refusal), with the client's DN, the chip, the measurement and the key
#    id, and never the transport key (raw, hex or base64).
#
# Usage: test_sev_owner_service.py BUILD_ROOT [unittest arguments]

import base64
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import ownerpki  # noqa: E402
import sevspec  # noqa: E402
import test_sev_owner_session as base  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceTest(base.OwnerToolTest):

    def setUp(self):
        super().setUp()
        self.owner = self.owner_dir()
        self.plat = self.platform()
        self.ca = ownerpki.CA(self.path("ca"), "guest owner CA")
        self.other_ca = ownerpki.CA(self.path("other-ca"), "someone else's CA")
        self.server_tls = self.ca.issue(self.path("server-tls"), "server", "owner",
                                        ips=["127.0.0.1"])
        self.client_tls = self.ca.issue(self.path("client-tls"), "client", "host-a")
        self.audit_file = self.path("audit.log")
        self.service = None

    def start_service(self, tls=None, timeout=None):
        self.port = free_port()
        args = [base.TOOL, "serve", "--owner-dir", self.owner,
                "--listen", "127.0.0.1:%d" % self.port,
                "--tls-dir", tls or self.server_tls, "--audit", self.audit_file]
        if timeout:
            args += ["--timeout", str(timeout)]
        self.service_log = open(self.path("service.log"), "wb")
        self.addCleanup(self.service_log.close)
        self.service = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=self.service_log)
        self.addCleanup(self.stop_service, self.service)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with open(self.path("service.log"), "rb") as f:
                if b"serving on" in f.read():
                    return
            self.assertIsNone(self.service.poll(), "the service exited")
            time.sleep(0.05)
        self.fail("the service did not start")

    def stop_service(self, service=None):
        service = service or self.service
        if service and service.poll() is None:
            if os.environ.get("SERVICE_LOG"):
                with open(self.path("service.log")) as f:
                    sys.stderr.write(f.read())
            service.kill()
            service.wait()

    def remote(self, request, tls=None, service=None, check=True):
        args = ["agent", "--service", service or "127.0.0.1:%d" % self.port,
                "--tls-dir", tls or self.client_tls]
        res = self.run_tool(args, stdin=json.dumps(request).encode(), check=check)
        return res, (json.loads(res.stdout) if res.returncode == 0 else None)

    def audit(self):
        if not os.path.exists(self.audit_file):
            return []
        with open(self.audit_file) as f:
            return [json.loads(line) for line in f]

    def assert_audit_clean(self):
        with open(self.audit_file, "rb") as f:
            data = f.read()
        for form in (self.transport_key, self.transport_key.hex().encode(),
                     self.transport_key.hex().upper().encode(),
                     base64.b64encode(self.transport_key)):
            self.assertNotIn(form, data, "the transport key in the audit file")

    def tls_socket(self, cert_dir=None):
        """A raw TLS connection to the service as a client with @cert_dir's
        client certificate (None: no certificate)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca.cert)
        if cert_dir:
            ctx.load_cert_chain(os.path.join(cert_dir, "clientcert.pem"),
                                os.path.join(cert_dir, "clientkey.pem"))
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        return ctx.wrap_socket(sock, server_hostname="127.0.0.1")

    def read_all(self, tls):
        data = b""
        try:
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ssl.SSLError, OSError):
            pass
        tls.close()
        return data

    # ------------------------------------------------------------------

    def test_1_session_then_attest(self):
        """Through the thin agent and the service: the session unwraps on
        the platform side, the secret decrypts to the transport key; the
        audit records a session and a release, with no key in them."""
        self.start_service()
        res, reply = self.remote(self.request("session", self.plat))
        self.assertEqual(set(reply), {"dh-cert", "session"})
        dh_cert = base64.b64decode(reply["dh-cert"])
        session = base64.b64decode(reply["session"])
        tek, tik = sevspec.unwrap_session(self.pdh_key, dh_cert, session, 1)
        self.assert_no_leak(res, tek, tik, self.transport_key)

        launch = self.launch(dh_cert, session, tik)
        res, reply = self.remote(self.request("attest", self.plat, launch=launch))
        self.assertEqual(set(reply), {"secret-header", "secret", "key-id"}, reply)
        self.assert_no_leak(res, tek, tik, self.transport_key)
        table = sevspec.open_secret(tek, tik, base64.b64decode(launch["measurement"]),
                                    base64.b64decode(reply["secret-header"]),
                                    base64.b64decode(reply["secret"]))
        self.assertEqual(sevspec.project_secret_entries(table),
                         (self.transport_key, "owner:key-1"))

        recs = self.audit()
        self.assertEqual([r["verdict"] for r in recs], ["session", "released"], recs)
        for r in recs:
            self.assertIn("CN=host-a", r["client"])
            self.assertEqual(r["domain"], "guest1")
            self.assertEqual(len(r["chip"]), 64)
            self.assertTrue(r["time"])
        self.assertEqual(recs[0]["chip"], recs[1]["chip"])
        self.assertEqual(recs[1]["operation"], "attest")
        self.assertEqual(recs[1]["key-id"], "owner:key-1")
        self.assertEqual(recs[1]["measurement"], launch["measurement"])
        self.assertNotIn("reason", recs[1])
        self.assert_audit_clean()
        with open(self.path("service.log"), "rb") as f:
            log = f.read()
        self.assertNotIn(self.transport_key.hex().encode(), log)
        self.assertNotIn(base64.b64encode(self.transport_key), log)

    def test_2_refusal_audited_and_conf_reread(self):
        """A measurement of other firmware is refused and audited with the
        reason; a policy changed in owner.conf applies to the next
        request."""
        self.start_service()
        tek, tik = os.urandom(16), os.urandom(16)
        cert, ses = sevspec.make_session(self.pdh_key.public_key(), self.odh, 1,
                                         os.urandom(16), tek, tik, os.urandom(16))
        bad = self.launch(cert, ses, tik, firmware=os.urandom(8192))
        _, reply = self.remote(self.request("attest", self.plat, launch=bad))
        self.assertEqual(list(reply), ["refused"])
        rec = self.audit()[-1]
        self.assertEqual(rec["verdict"], "refused")
        self.assertIn("measurement", rec["reason"])
        self.assertEqual(rec["measurement"], bad["measurement"])
        self.assertEqual(rec["key-id"], "owner:key-1")

        good = self.launch(cert, ses, tik)
        _, reply = self.remote(self.request("attest", self.plat, launch=good))
        self.assertIn("secret", reply)
        # the owner now requires another policy: the next request is refused
        conf = os.path.join(self.owner, "owner.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("policy=0x1", "policy=0x3"))
        _, reply = self.remote(self.request("attest", self.plat, launch=good))
        self.assertEqual(list(reply), ["refused"], reply)
        self.assertIn("policy", reply["refused"])
        # an owner.conf the service cannot use: the agent reports the
        # service's error and fails
        with open(conf, "w") as f:
            f.write(text.replace("policy=0x1", "policy=0x5"))
        res, _ = self.remote(self.request("attest", self.plat, launch=good), check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn(b"the guest owner's service: ", res.stderr)
        self.assertIn(b"SEV-ES", res.stderr)
        self.assertEqual([r["verdict"] for r in self.audit()],
                         ["refused", "released", "refused", "error"])
        self.assert_audit_clean()

    def test_3_client_without_certificate(self):
        """A client that presents no certificate gets no reply; the refusal
        is audited."""
        self.start_service()
        got = b""
        try:
            tls = self.tls_socket(None)
            req = json.dumps(self.request("session", self.plat)).encode()
            tls.sendall(struct.pack(">I", len(req)) + req)
            got = self.read_all(tls)
        except (ssl.SSLError, OSError):
            pass
        self.assertNotIn(b"session", got)
        self.wait_audit(1)
        rec = self.audit()[-1]
        self.assertEqual(rec["verdict"], "refused")
        self.assertNotIn("operation", rec)

    def wait_audit(self, n):
        deadline = time.monotonic() + 30
        while len(self.audit()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(len(self.audit()), n)

    def test_4_client_of_another_ca(self):
        """A client certificate that another CA signed: refused by the
        service, the agent exits non-zero (gnutls does not even offer a
        certificate the service's CA did not sign); a client that sends it
        anyway is refused after verification, audited with its DN."""
        self.start_service()
        stranger = self.other_ca.issue(self.path("stranger-tls"), "client", "intruder",
                                       trust=self.ca)
        res, _ = self.remote(self.request("session", self.plat), tls=stranger,
                             check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertEqual(res.stdout, b"")
        self.wait_audit(1)
        self.assertEqual(self.audit()[-1]["verdict"], "refused")

        got = b""
        try:
            tls = self.tls_socket(stranger)
            req = json.dumps(self.request("session", self.plat)).encode()
            tls.sendall(struct.pack(">I", len(req)) + req)
            got = self.read_all(tls)
        except (ssl.SSLError, OSError):
            pass
        self.assertNotIn(b"session", got)
        self.wait_audit(2)
        rec = self.audit()[-1]
        self.assertEqual(rec["verdict"], "refused")
        self.assertIn("does not verify", rec["reason"])
        self.assertIn("intruder", rec.get("client", ""))
        self.assertNotIn("operation", rec)

    def test_5_service_certificate_wrong(self):
        """The agent refuses a service whose certificate another CA signed,
        or whose certificate names another address."""
        for name, tls in (
                ("other CA", self.other_ca.issue(self.path("s1"), "server", "owner",
                                                 ips=["127.0.0.1"], trust=self.ca)),
                ("other address", self.ca.issue(self.path("s2"), "server", "owner",
                                                ips=["127.0.0.2"]))):
            with self.subTest(name):
                self.start_service(tls=tls)
                res, _ = self.remote(self.request("session", self.plat), check=False)
                self.assertNotEqual(res.returncode, 0)
                self.assertEqual(res.stdout, b"")
                self.assertIn(b"presented a certificate that does not verify",
                              res.stderr)
                self.stop_service()

    def test_6_service_unreachable(self):
        """Nothing listening: a clear error, exit status non-zero."""
        res, _ = self.remote(self.request("session", self.plat),
                             service="127.0.0.1:%d" % free_port(), check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertEqual(res.stdout, b"")
        self.assertIn(b"cannot reach the guest owner's service", res.stderr)

    def test_7_oversized_request(self):
        """A request announced larger than the cap is refused before it is
        read; audited."""
        self.start_service()
        tls = self.tls_socket(self.client_tls)
        tls.sendall(struct.pack(">I", 2 * 1024 * 1024) + b"{" * 4096)
        reply = json.loads(self.read_all(tls))
        self.assertIn("larger than", reply["error"])
        self.wait_audit(1)
        self.assertEqual(self.audit()[-1]["verdict"], "refused")
        self.assertIn("larger than", self.audit()[-1]["reason"])

    def test_8_silent_client(self):
        """A client that connects and says nothing is dropped after the
        service's timeout; the service then serves the next request."""
        self.start_service(timeout=2)
        silent = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        self.addCleanup(silent.close)
        # the agent waits behind it (one connection at a time), then is served
        start = time.monotonic()
        res, reply = self.remote(self.request("session", self.plat))
        self.assertIn("session", reply)
        self.assertGreaterEqual(time.monotonic() - start, 1.5)
        self.assertEqual(silent.recv(1), b"")     # closed by the service
        self.assertIn("timed out", self.audit()[0]["reason"])

    def test_9_agent_dies_with_its_parent(self):
        """An agent whose parent (the daemon) is killed while it waits for
        the service dies too (parent-death signal), long before its own
        timeout."""
        srv = socket.socket()
        self.addCleanup(srv.close)
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)           # connections complete, nothing ever answers
        pidfile = self.path("agent.pid")
        req = json.dumps(self.request("session", self.plat))
        parent = subprocess.Popen([
            sys.executable, "-c",
            "import subprocess, sys, time\n"
            "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE)\n"
            "p.stdin.write(sys.argv[1].encode()); p.stdin.close()\n"
            "open(%r, 'w').write(str(p.pid))\n"
            "time.sleep(600)\n" % pidfile, req,
            base.TOOL, "agent", "--service", "127.0.0.1:%d" % srv.getsockname()[1],
            "--tls-dir", self.client_tls, "--timeout", "600"])
        self.addCleanup(lambda: parent.poll() is None and (parent.kill(), parent.wait()))
        deadline = time.monotonic() + 60
        while not (os.path.exists(pidfile) and open(pidfile).read()):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        pid = int(open(pidfile).read())
        conn, _ = srv.accept()          # the agent connected: it is in the exchange
        self.addCleanup(conn.close)
        self.assertTrue(self.alive(pid))
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 30
        while self.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(self.alive(pid), "the agent outlived its parent")

    @staticmethod
    def alive(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except OSError:
            return False


# only this class's tests, not the inherited ones of the local agent
for _name in dir(base.OwnerToolTest):
    if _name.startswith("test_") and _name not in ServiceTest.__dict__:
        setattr(ServiceTest, _name, None)


def main():
    build = os.path.realpath(sys.argv[1])
    base.TOOL = os.path.join(build, "subprojects", "libvirt", "tools", "virt-qemu-sev-owner")
    if not os.path.exists(base.TOOL):
        print("%s is not built: skipped" % base.TOOL, file=sys.stderr)
        return 77
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2, exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
