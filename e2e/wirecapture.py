#!/usr/bin/python3
#
# What crossed the wire during a migration, recorded without loss, and
# whether a byte pattern (the e2e guest's memory pattern, e2e/guestcheck.py)
# is in it.
#
#   with Relay(("127.0.0.1", 4444), ("127.0.0.1", 5555), "/tmp/rec") as relay:
#       ... migrate to 127.0.0.1:4444 (the target listens on 5555) ...
#   rec = relay.recording()          # raises Inconclusive if bytes are missing
#   hits = rec.count(guest_pattern_windows())
#
# Why a relay and not a packet capture: tcpdump drops packets when the
# machine is busy (the kernel's ring overflows), and the capture then holds
# a stream with holes. A hole cannot be told from a byte that never crossed,
# so a confidentiality check ("the pattern is not on the wire") could pass
# on what it never saw. The relay is a TCP endpoint: it forwards every byte
# that TCP delivers to it and writes each to the recording *before* it
# forwards it, so nothing the target received can be missing from the
# recording. It counts what it forwarded, separately, and recording()
# compares: a recording that holds fewer bytes than were forwarded is
# Inconclusive, never a finding.
#
# The relay runs as a process of its own (this file run as a program), in a
# network namespace if asked (ip netns exec), so that it can stand between
# two test hosts. It records every connection it accepts, in both
# directions: DIR/conn-N.there (client to server), DIR/conn-N.back, and at
# the end DIR/summary.json (per connection: bytes forwarded each way, how
# each direction ended).
#
# Test fault (to see the checks fail): WIRECAPTURE_FAULT=skip:OFFSET:LENGTH
# in the relay's environment leaves LENGTH bytes at OFFSET out of the
# recording of each connection's "there" direction (they are still
# forwarded and counted).
#
# Usage as a program:
#   wirecapture.py relay LISTEN_HOST LISTEN_PORT TO_HOST TO_PORT DIR
#   wirecapture.py count DIR HEXPATTERN     (prints the count)

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

# the ceiling for the relay's start and stop: it only bounds a hung relay
TIMEOUT = 120


class Inconclusive(AssertionError):
    """The recording is not the whole of what crossed: no finding can be
    made from it."""


class Relay:
    """The recording relay from __enter__/start() to __exit__/stop():
    listens on @listen (host, port) and forwards each connection to @to
    (host, port), in network namespace @netns if given."""

    def __init__(self, listen, to, path, netns=None, env=None, replay=None):
        self.listen = listen
        self.to = to
        self.path = path
        self.netns = netns
        self.env = env
        if replay:
            # each connection's target gets the bytes of the file @replay
            # instead of what the client sends (which is dropped)
            self.env = dict(env or os.environ, WIRECAPTURE_REPLAY=os.path.abspath(replay))
        self.proc = None
        self.output = b""

    def start(self):
        os.makedirs(self.path, exist_ok=True)
        argv = [sys.executable, os.path.abspath(__file__), "relay",
                self.listen[0], str(self.listen[1]), self.to[0], str(self.to[1]),
                self.path]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=self.env)
        # it prints "listening" once its socket is bound; a line is waited
        # for without a fixed time: the relay either says so or exits
        line = self.proc.stdout.readline()
        if not line.startswith(b"listening"):
            self.output = line + self.proc.stdout.read()
            self.proc.wait(TIMEOUT)
            raise RuntimeError("the recording relay did not start: %s"
                               % self.output.decode(errors="replace"))
        return self

    def stop(self):
        """Stop accepting, let the connections end, write the summary."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.output += self.proc.communicate(timeout=TIMEOUT)[0]
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.output += self.proc.communicate()[0]
        return self.output.decode(errors="replace")

    def recording(self):
        return Recording(self.path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class Recording:
    """What a relay recorded in @path. Opening it checks that it is whole:
    Inconclusive if the relay did not finish, or if a direction of a
    connection holds fewer (or more) bytes than the relay forwarded."""

    def __init__(self, path):
        self.path = path
        try:
            with open(os.path.join(path, "summary.json")) as f:
                summary = json.load(f)
        except FileNotFoundError:
            raise Inconclusive("%s: no summary: the relay did not finish" % path) from None
        self.connections = []
        problems = []
        for conn in summary["connections"]:
            dirs = {}
            for d in ("there", "back"):
                with open(os.path.join(path, "conn-%d.%s" % (conn["id"], d)), "rb") as f:
                    data = f.read()
                forwarded = conn[d]["forwarded"]
                if len(data) != forwarded:
                    problems.append("connection %d, %s: %d of the %d bytes forwarded are "
                                    "in the recording" % (conn["id"], d, len(data), forwarded))
                dirs[d] = data
            self.connections.append(
                {"there": dirs["there"], "back": dirs["back"],
                 "ended": (conn["there"]["ended"], conn["back"]["ended"])})
        if problems:
            raise Inconclusive("the recording is not whole: " + "; ".join(problems))

    def total(self):
        """Bytes recorded, both directions of every connection."""
        return sum(len(c["there"]) + len(c["back"]) for c in self.connections)

    def count(self, patterns):
        """Occurrences of each byte string in @patterns (one, or a list),
        summed over every direction of every connection."""
        if isinstance(patterns, bytes):
            patterns = [patterns]
        if not all(patterns):
            raise ValueError("empty pattern")
        return sum(c[d].count(p) for p in patterns for c in self.connections
                   for d in ("there", "back"))

    def only(self):
        """The one connection's two directions: (there, back)."""
        if len(self.connections) != 1:
            raise AssertionError("%d connections recorded, expected one: %s"
                                 % (len(self.connections),
                                    [(len(c["there"]), len(c["back"]), c["ended"])
                                     for c in self.connections]))
        return self.connections[0]["there"], self.connections[0]["back"]


# ------------------------------------------------- the stand-in's stream

STREAM_MAGIC = b"LVMIRROR-STREAM3"


def _prf(key, label, *parts):
    import hashlib
    import hmac
    return hmac.new(key, label + b"\0" + b"".join(parts), hashlib.sha256).digest()


def stream_key(key, source_nonce, target_nonce, channel=0):
    """Contract version 3's stream key (docs/kbase/confidential-migration.rst)."""
    return _prf(key, b"lvmirror v3 stream key", source_nonce, target_nonce,
                channel.to_bytes(4, "big"))


def target_confirmation(key, key_id, target_nonce):
    """The target helper's key confirmation (query-migration-helper's
    "key-confirmation", as bytes)."""
    return _prf(key, b"lvmirror v3 target confirmation", target_nonce,
                key_id.encode("ascii"))


def parse_header(there):
    """The header of a contract version 3 stream: a dict with channel,
    source-nonce, target-nonce, key-id, proof and length (its bytes)."""
    if there[:16] != STREAM_MAGIC:
        raise AssertionError("no handshake: %r" % there[:16])
    fixed = 16 + 4 + 32 + 32 + 1
    if len(there) < fixed:
        raise AssertionError("header cut short")
    id_len = there[fixed - 1]
    if len(there) < fixed + id_len + 32:
        raise AssertionError("header cut short")
    return {"channel": int.from_bytes(there[16:20], "big"),
            "source-nonce": there[20:52], "target-nonce": there[52:84],
            "key-id": there[fixed:fixed + id_len].decode("ascii", "replace"),
            "signed": there[:fixed + id_len],
            "proof": there[fixed + id_len:fixed + id_len + 32],
            "length": fixed + id_len + 32}


def decode_stream(there, back, key):
    """The plaintext of both directions of the stand-in's encrypted stream
    (e2e/standin/stream.c), decrypted with python3-cryptography from its
    documented format (contract version 3), independently of the
    stand-in's C code: (key id, plaintext there, plaintext back). @key is
    the transport key (32 bytes). The source's key confirmation must
    verify, and every record must authenticate, in sequence, up to the end
    record, with nothing after it: a recording with a byte missing or
    changed raises AssertionError."""
    import hmac
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    hdr = parse_header(there)
    skey = stream_key(key, hdr["source-nonce"], hdr["target-nonce"], hdr["channel"])
    if not hmac.compare_digest(_prf(skey, b"lvmirror v3 source confirmation", hdr["signed"]),
                               hdr["proof"]):
        raise AssertionError("the source's key confirmation does not verify")
    key_id = hdr["key-id"]
    aead = AESGCM(skey)

    def records(data, off, direction):
        seq = 0
        out = bytearray()
        while True:
            if off + 4 > len(data):
                raise AssertionError("direction %d: no end record" % direction)
            n = int.from_bytes(data[off:off + 4], "big")
            nonce = direction.to_bytes(4, "big") + seq.to_bytes(8, "big")
            aad = data[off:off + 4] + seq.to_bytes(8, "big")
            try:
                out += aead.decrypt(nonce, data[off + 4:off + 4 + n + 16], aad)
            except Exception:
                raise AssertionError("direction %d: record %d (%d bytes at %d of %d) does "
                                     "not authenticate" % (direction, seq, n, off, len(data))
                                     ) from None
            off += 4 + n + 16
            seq += 1
            if n == 0:
                break
        if off != len(data):
            raise AssertionError("direction %d: %d bytes after the end record"
                                 % (direction, len(data) - off))
        return bytes(out)

    return key_id, records(there, hdr["length"], 0), records(back, 0, 1)


def guest_pattern_windows(count=8, words=8):
    """@count byte strings of @words words each of the e2e guest's memory
    pattern (e2e/guestcheck.py), from pages spread over the pattern region,
    little endian as in the guest's memory (and in a plain migration
    stream)."""
    import guestcheck
    step = guestcheck.PATTERN_WORDS // count
    return [struct.pack("<%dI" % words,
                        *(guestcheck.pattern_word(first + i) for i in range(words)))
            for first in (k * step + 100 for k in range(count))]


# ----------------------------------------------------------- the relay

class _Direction:
    def __init__(self, path, skip):
        self.file = open(path, "wb")
        self.forwarded = 0
        self.ended = "open"
        self.skip = skip          # (offset, length) left out: the test fault

    def record(self, data):
        if self.skip:
            start, length = self.skip
            lo = max(self.forwarded, start) - self.forwarded
            hi = min(self.forwarded + len(data), start + length) - self.forwarded
            if lo < hi:
                data = data[:lo] + data[hi:]
        self.file.write(data)


def _forward(read, dst, direction):
    """Send what read() returns to @dst until it returns nothing, recording
    each chunk before it is sent on; then shut @dst's sending side."""
    try:
        while True:
            data = read()
            if not data:
                direction.ended = "eof"
                break
            direction.record(data)
            dst.sendall(data)
            direction.forwarded += len(data)
    except OSError as e:
        direction.ended = "error: %s" % (e.strerror or e)
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _pump(src, dst, direction):
    """Forward @src to @dst until EOF."""
    _forward(lambda: src.recv(1 << 16), dst, direction)


def _replay(recording, dst, direction):
    """Send the bytes of the file @recording to @dst, as a raw TCP sender,
    instead of what the client sends (WIRECAPTURE_REPLAY)."""
    try:
        f = open(recording, "rb")
    except OSError as e:
        direction.ended = "error: %s" % (e.strerror or e)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        return
    with f:
        _forward(lambda: f.read(1 << 16), dst, direction)


def _drain(src):
    """Read @src until EOF, and forget it."""
    try:
        while src.recv(1 << 16):
            pass
    except OSError:
        pass


def _relay_main(listen_host, listen_port, to_host, to_port, path):
    fault = os.environ.get("WIRECAPTURE_FAULT", "")
    skip = None
    if fault.startswith("skip:"):
        _, offset, length = fault.split(":")
        skip = (int(offset), int(length))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())

    family = socket.AF_INET6 if ":" in listen_host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((listen_host, listen_port))
    lsock.listen(8)
    lsock.settimeout(0.2)
    print("listening on %s:%d" % (listen_host, listen_port), flush=True)

    conns = []
    while not stop.is_set():
        try:
            client, _ = lsock.accept()
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        client.settimeout(None)
        n = len(conns)
        conn = {"id": n, "sockets": [client], "threads": [],
                "there": _Direction(os.path.join(path, "conn-%d.there" % n), skip),
                "back": _Direction(os.path.join(path, "conn-%d.back" % n), None)}
        conns.append(conn)
        try:
            server = socket.create_connection((to_host, to_port), timeout=TIMEOUT)
            server.settimeout(None)
        except OSError as e:
            conn["there"].ended = conn["back"].ended = "connect: %s" % (e.strerror or e)
            client.close()
            continue
        conn["sockets"].append(server)
        replay = os.environ.get("WIRECAPTURE_REPLAY")
        if replay:
            # the replay attack: the target gets the recording, not the
            # client's stream (which is read and dropped)
            jobs = ((_replay, (replay, server, conn["there"])), (_drain, (client,)),
                    (_pump, (server, client, conn["back"])))
        else:
            jobs = ((_pump, (client, server, conn["there"])),
                    (_pump, (server, client, conn["back"])))
        for fn, args in jobs:
            t = threading.Thread(target=fn, args=args, daemon=True)
            t.start()
            conn["threads"].append(t)
    lsock.close()
    # what is still open ends by itself once the peers close; a connection
    # left open (the test stopped mid-migration) is cut after the ceiling
    deadline = time.monotonic() + TIMEOUT
    for conn in conns:
        for t in conn["threads"]:
            t.join(max(0, deadline - time.monotonic()))
        for s in conn["sockets"]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in conn["threads"]:
            t.join()
        for s in conn["sockets"]:
            s.close()
    summary = {"connections": []}
    for conn in conns:
        entry = {"id": conn["id"]}
        for d in ("there", "back"):
            conn[d].file.close()
            entry[d] = {"forwarded": conn[d].forwarded, "ended": conn[d].ended}
        summary["connections"].append(entry)
    tmp = os.path.join(path, "summary.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f)
    os.rename(tmp, os.path.join(path, "summary.json"))
    return 0


def main(argv):
    if len(argv) == 7 and argv[1] == "relay":
        return _relay_main(argv[2], int(argv[3]), argv[4], int(argv[5]), argv[6])
    if len(argv) == 4 and argv[1] == "count":
        print(Recording(argv[2]).count(bytes.fromhex(argv[3])))
        return 0
    print("usage: wirecapture.py relay LISTEN_HOST LISTEN_PORT TO_HOST TO_PORT DIR\n"
          "       wirecapture.py count DIR HEXPATTERN", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
