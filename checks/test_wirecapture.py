#!/usr/bin/python3
#
# The recording relay of the wire-capture tests (e2e/wirecapture.py): it
# records every byte it forwards, both ways; a recording with bytes missing
# is Inconclusive, never a finding; the stand-in's stream decoder refuses a
# stream with a byte missing or changed. No build needed.

import hashlib
import hmac
import os
import shutil
import socket
import sys
import tempfile
import threading
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, os.path.join(TOP, "e2e"))

import wirecapture  # noqa: E402

# the ceiling of a socket operation: only a hung test waits this long
TIMEOUT = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A TCP server on 127.0.0.1 that reads everything a client sends while
    sending @reply, then closes."""

    def __init__(self, reply):
        self.reply = reply
        self.received = bytearray()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(TIMEOUT)
        conn, _ = self.sock.accept()
        conn.settimeout(TIMEOUT)
        sender = threading.Thread(target=lambda: (conn.sendall(self.reply),
                                                  conn.shutdown(socket.SHUT_WR)))
        sender.start()
        while True:
            data = conn.recv(1 << 16)
            if not data:
                break
            self.received += data
        sender.join(TIMEOUT)
        conn.close()
        self.sock.close()


def exchange(port, payload):
    """Connect to @port, send @payload while reading until EOF: what came back."""
    got = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        sender = threading.Thread(target=lambda: (s.sendall(payload),
                                                  s.shutdown(socket.SHUT_WR)))
        sender.start()
        while True:
            data = s.recv(1 << 16)
            if not data:
                break
            got += data
        sender.join(TIMEOUT)
    return bytes(got)


class RelayTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lvm-wirecapture-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def relay_exchange(self, there, back, env=None):
        server = Server(back)
        port = free_port()
        path = os.path.join(self.dir, "rec")
        with wirecapture.Relay(("127.0.0.1", port), ("127.0.0.1", server.port), path,
                               env=env):
            got = exchange(port, there)
            server.thread.join(TIMEOUT)
        self.assertEqual(bytes(server.received), there, "the relay changed the stream")
        self.assertEqual(got, back, "the relay changed the stream")
        return path

    def test_whole(self):
        """Both directions, 8 MiB each at once, recorded byte for byte."""
        there, back = os.urandom(8 << 20), os.urandom(8 << 20)
        rec = wirecapture.Recording(self.relay_exchange(there, back))
        self.assertEqual(rec.only(), (there, back))
        self.assertEqual(rec.connections[0]["ended"], ("eof", "eof"))
        self.assertEqual(rec.total(), 16 << 20)
        # a pattern that TCP split across segments is one run in the recording
        self.assertEqual(rec.count(there[(4 << 20) - 7:(4 << 20) + 9]), 1)
        self.assertEqual(rec.count([back[100:132], there[5:37]]), 2)
        self.assertRaises(ValueError, rec.count, b"")

    def test_lossy_is_inconclusive(self):
        """A recording that misses bytes (the relay's test fault) is
        Inconclusive, naming the counts, and yields no finding: the
        bytes left out held the one pattern that was sent."""
        there = os.urandom(2 << 20)
        env = dict(os.environ, WIRECAPTURE_FAULT="skip:%d:4096" % (1 << 20))
        path = self.relay_exchange(there, b"", env=env)
        with self.assertRaises(wirecapture.Inconclusive) as cm:
            wirecapture.Recording(path)
        self.assertIn("connection 0, there: %d of the %d bytes forwarded"
                      % ((2 << 20) - 4096, 2 << 20), str(cm.exception))

    def test_replay(self):
        """replay=FILE: the server gets the file's bytes, not what the
        client sends (a raw TCP sender of a recording); the way back is
        relayed."""
        recorded = os.urandom(1 << 20)
        replay = os.path.join(self.dir, "recorded")
        with open(replay, "wb") as f:
            f.write(recorded)
        server = Server(b"back")
        port = free_port()
        with wirecapture.Relay(("127.0.0.1", port), ("127.0.0.1", server.port),
                               os.path.join(self.dir, "rec"), replay=replay):
            got = exchange(port, os.urandom(1 << 20))
            server.thread.join(TIMEOUT)
        self.assertEqual(bytes(server.received), recorded)
        self.assertEqual(got, b"back")

    def test_unfinished_is_inconclusive(self):
        """No summary (the relay was killed, or is still running)."""
        self.assertRaises(wirecapture.Inconclusive, wirecapture.Recording, self.dir)

    def test_relay_fails_to_start(self):
        """A port already taken: an error, not a relay that records nothing."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            taken = s.getsockname()[1]
            with self.assertRaisesRegex(RuntimeError, "did not start"):
                wirecapture.Relay(("127.0.0.1", taken), ("127.0.0.1", 1),
                                  os.path.join(self.dir, "x")).start()


class DecodeStreamTest(unittest.TestCase):
    """wirecapture.decode_stream, on a stream made here from the format
    (e2e/standin/stream.c): it is what proves a confidential recording
    whole, so it must refuse one with a byte missing or changed."""

    KEY = bytes(range(32))

    def stream(self, chunks_there, chunks_back, key_id=b"owner-key-1"):
        """Contract version 3: header (magic, channel, source nonce, target
        nonce, key id, source proof), then the records."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        source_nonce, target_nonce = os.urandom(32), os.urandom(32)
        channel = (0).to_bytes(4, "big")
        skey = hmac.new(self.KEY, b"lvmirror v3 stream key\0" + source_nonce + target_nonce
                        + channel, hashlib.sha256).digest()
        aead = AESGCM(skey)
        header = (b"LVMIRROR-STREAM3" + channel + source_nonce + target_nonce
                  + bytes([len(key_id)]) + key_id)
        header += hmac.new(skey, b"lvmirror v3 source confirmation\0" + header,
                           hashlib.sha256).digest()
        self.header_len = len(header)

        def records(chunks, direction):
            out = bytearray()
            for seq, chunk in enumerate(list(chunks) + [b""]):
                head = len(chunk).to_bytes(4, "big")
                nonce = direction.to_bytes(4, "big") + seq.to_bytes(8, "big")
                out += head + aead.encrypt(nonce, chunk, head + seq.to_bytes(8, "big"))
            return bytes(out)

        there = header + records(chunks_there, 0)
        return there, records(chunks_back, 1)

    def test_decodes(self):
        there, back = self.stream([b"QEVM", b"x" * 1000], [b"ack"])
        self.assertEqual(wirecapture.decode_stream(there, back, self.KEY),
                         ("owner-key-1", b"QEVM" + b"x" * 1000, b"ack"))

    def test_refuses_damage(self):
        there, back = self.stream([b"QEVM", b"y" * 5000, b"z" * 10], [])
        h = self.header_len
        self.assertEqual(h, 16 + 4 + 32 + 32 + 1 + len(b"owner-key-1") + 32)
        for name, t in (("byte missing", there[:100] + there[101:]),
                        ("byte changed", there[:100] + bytes([there[100] ^ 1]) + there[101:]),
                        ("end record missing", there[:-20]),
                        ("bytes after the end", there + b"\0"),
                        # the source's key confirmation (the header's
                        # last 32 bytes)
                        ("proof changed", there[:h - 1] + bytes([there[h - 1] ^ 1]) + there[h:]),
                        ("a nonce changed", there[:30] + bytes([there[30] ^ 1]) + there[31:]),
                        # the first record ("QEVM": 4 + 4 + 16 bytes) after
                        # the header
                        ("a record missing", there[:h] + there[h + 4 + 4 + 16:])):
            with self.subTest(name):
                self.assertRaises(AssertionError, wirecapture.decode_stream, t, back,
                                  self.KEY)
        self.assertRaises(AssertionError, wirecapture.decode_stream, there, back,
                          bytes(32))

    def test_target_confirmation(self):
        """The target's proof, as the contract page defines it."""
        nonce = bytes(range(100, 132))
        self.assertEqual(wirecapture.target_confirmation(self.KEY, "owner-key-1", nonce),
                         hmac.new(self.KEY, b"lvmirror v3 target confirmation\0" + nonce
                                  + b"owner-key-1", hashlib.sha256).digest())


if __name__ == "__main__":
    unittest.main(verbosity=2)
