#!/usr/bin/python3
#
# Attestation agents that misbehave, for the e2e tests of the target's
# attestation (e2e/test_attestation.py, e2e/test_confidential.py): libvirtd
# runs this as mirror_attestation_agent (through the wrapper that
# write_agent() puts at the host's agent path) with one argument, its
# configuration, a JSON file:
#
#   {"tool": virt-qemu-sev-owner, "owner_dir": the guest owner's directory,
#    "state": a directory of the guest owner's (what a mode keeps between
#             the session and the attest runs, and recordings),
#    "mode": one of
#       "record"      the reference agent (virt-qemu-sev-owner agent) answers;
#                     its requests and replies are kept in state/
#                     (session-reply.json, attest-reply.json, ...)
#       "replay"      the replies kept by an earlier "record" run are given
#                     again, unchanged: the same session, and the launch
#                     secret built for that earlier launch's measurement
#       "owner-table" the session is made here with the tool (TEK and TIK
#                     kept in state/); the launch secret is built here
#                     (sevsecret.py, independently of the tool) with the
#                     table state/table.json describes:
#                     {"transport-key": bool, "key-id": ID,
#                      "foreign-tik": bool (sealed with a TEK/TIK of no
#                      session: the platform must reject it)}}
#
# The guest owner's directories stand for the guest owner's machine (see
# e2e/hosts.py); nothing here writes a secret outside them. The reference
# agent's standard error is passed on.

import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import sevsecret  # noqa: E402


def reference_agent(conf, request):
    res = subprocess.run([conf["tool"], "agent", "--owner-dir", conf["owner_dir"]],
                         input=request, capture_output=True)
    sys.stderr.buffer.write(res.stderr)
    return res.returncode, res.stdout


def keep(conf, name, data):
    with open(os.path.join(conf["state"], name), "wb") as f:
        f.write(data)


def owner_table(conf, req):
    state = conf["state"]
    tek, tik = os.path.join(state, "tek"), os.path.join(state, "tik")
    if req["operation"] == "session":
        pdh = os.path.join(state, "pdh")
        out = {n: os.path.join(state, n) for n in ("dh-cert", "session")}
        for path in (tek, tik, pdh, *out.values()):
            if os.path.exists(path):
                os.unlink(path)
        with open(pdh, "w") as f:
            f.write(req["platform"]["pdh"])
        subprocess.run([conf["tool"], "session", "--pdh", pdh, "--policy", str(req["policy"]),
                        "--odh-key", os.path.join(conf["owner_dir"], "odh-key.pem"),
                        "--dh-cert-out", out["dh-cert"], "--session-out", out["session"],
                        "--tek-out", tek, "--tik-out", tik], check=True)
        reply = {}
        for name, path in out.items():
            with open(path) as f:
                reply[name] = f.read().strip()
        return reply
    with open(os.path.join(state, "table.json")) as f:
        table = json.load(f)
    with open(os.path.join(conf["owner_dir"], "transport-key"), "rb") as f:
        key = f.read()
    with open(tek, "rb") as f1, open(tik, "rb") as f2:
        keys = (f1.read(), f2.read())
    if table.get("foreign-tik"):
        keys = (os.urandom(16), os.urandom(16))
    measurement = base64.b64decode(req["launch"]["measurement"])[:32]
    plain = sevsecret.secret_table(key if table.get("transport-key", True) else None,
                                   table["key-id"])
    header, secret = sevsecret.launch_secret(plain, keys[0], keys[1], measurement)
    return {"secret-header": base64.b64encode(header).decode(),
            "secret": base64.b64encode(secret).decode(), "key-id": table["key-id"]}


def main():
    with open(sys.argv[1]) as f:
        conf = json.load(f)
    request = sys.stdin.buffer.read()
    op = json.loads(request)["operation"]
    mode = conf["mode"]
    if mode == "record":
        keep(conf, "%s-request.json" % op, request)
        rc, reply = reference_agent(conf, request)
        keep(conf, "%s-reply.json" % op, reply)
        sys.stdout.buffer.write(reply)
        return rc
    if mode == "replay":
        with open(os.path.join(conf["state"], "%s-reply.json" % op), "rb") as f:
            sys.stdout.buffer.write(f.read())
        return 0
    if mode == "owner-table":
        print(json.dumps(owner_table(conf, json.loads(request))))
        return 0
    print("testagent: unknown mode %r" % mode, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
