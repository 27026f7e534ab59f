#!/usr/bin/python3
#
# Wire capture for the tests: what crossed a network interface during a
# migration, and whether a byte pattern (the e2e guest's memory pattern,
# e2e/guestcheck.py) is in it.
#
#   with Capture("lo", "/tmp/x.pcap", "tcp port 4444"):
#       ... migrate ...
#   hits = count_pattern("/tmp/x.pcap", guest_pattern_bytes(100, 8))
#
# Capture runs Debian's tcpdump (-w, pcap format; needs CAP_NET_RAW) and
# waits until it listens. count_pattern() reads the pcap file itself: it
# reassembles each TCP connection's byte stream per direction (by sequence
# number, so that a pattern split across two segments is still found) and
# counts the occurrences in each contiguous run of bytes.
#
# Usage as a program: wirecapture.py FILE.pcap HEXPATTERN   (prints the count)

import os
import signal
import struct
import subprocess
import sys
import time

TCPDUMP = "/usr/bin/tcpdump"


class Capture:
    """tcpdump -i IFACE -w PATH [FILTER] (in network namespace @netns, if
    given), from __enter__/start() until __exit__/stop()."""

    def __init__(self, iface, path, bpf_filter=None, timeout=10, netns=None):
        self.iface = iface
        self.netns = netns
        self.path = path
        self.filter = bpf_filter
        self.timeout = timeout
        self.proc = None
        self.stderr = b""

    def start(self):
        argv = [TCPDUMP, "-i", self.iface, "-w", self.path, "-U", "-n",
                "--immediate-mode",
                "-s", "0", "-B", "16384"]
        if self.filter:
            argv += self.filter.split()
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        # tcpdump says "listening on IFACE" once its socket is bound
        deadline = time.monotonic() + self.timeout
        os.set_blocking(self.proc.stderr.fileno(), False)
        while b"listening on" not in self.stderr:
            if self.proc.poll() is not None:
                self.stderr += self.proc.stderr.read() or b""
                raise RuntimeError("tcpdump failed: %s"
                                   % self.stderr.decode(errors="replace"))
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("tcpdump does not listen after %d s" % self.timeout)
            chunk = self.proc.stderr.read()
            if chunk:
                self.stderr += chunk
            else:
                time.sleep(0.02)
        return self

    def stop(self, settle=0.5):
        """Stop tcpdump, once its file has not grown for @settle seconds
        (SIGINT drops what it has not read from the kernel yet); its
        statistics (stderr)."""
        if self.proc and self.proc.poll() is None:
            deadline = time.monotonic() + self.timeout
            size, since = -1, time.monotonic()
            while time.monotonic() < deadline:
                now = os.path.getsize(self.path) if os.path.exists(self.path) else 0
                if now != size:
                    size, since = now, time.monotonic()
                elif time.monotonic() - since >= settle:
                    break
                time.sleep(0.05)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            os.set_blocking(self.proc.stderr.fileno(), True)
            self.stderr += self.proc.stderr.read() or b""
            self.proc.stderr.close()
        return self.stderr.decode(errors="replace")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# ------------------------------------------------------------ pcap reading

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276


def packets(path):
    """(linktype, frame bytes) of each packet of the pcap file @path."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("%s: not a pcap file" % path)
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        off += 16
        yield linktype, data[off:off + incl]
        off += incl


def _ip_packet(linktype, frame):
    """The IP packet in @frame, or None."""
    if linktype == LINKTYPE_ETHERNET:
        off = 12
        ethertype = struct.unpack(">H", frame[off:off + 2])[0]
        while ethertype in (0x8100, 0x88A8):   # VLAN tags
            off += 4
            ethertype = struct.unpack(">H", frame[off:off + 2])[0]
        return frame[off + 2:] if ethertype in (0x0800, 0x86DD) else None
    if linktype == LINKTYPE_LINUX_SLL:
        proto = struct.unpack(">H", frame[14:16])[0]
        return frame[16:] if proto in (0x0800, 0x86DD) else None
    if linktype == LINKTYPE_LINUX_SLL2:
        proto = struct.unpack(">H", frame[0:2])[0]
        return frame[20:] if proto in (0x0800, 0x86DD) else None
    if linktype == LINKTYPE_NULL:
        return frame[4:]
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return frame
    return None


def _tcp_segment(ip):
    """(flow, seq, payload) of the TCP segment in IP packet @ip, or None."""
    if len(ip) < 20:
        return None
    version = ip[0] >> 4
    if version == 4:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6:
            return None
        src, dst = ip[12:16], ip[16:20]
        tcp = ip[ihl:total] if total else ip[ihl:]
    elif version == 6:
        if len(ip) < 40 or ip[6] != 6:    # no extension headers expected
            return None
        plen = struct.unpack(">H", ip[4:6])[0]
        src, dst = ip[8:24], ip[24:40]
        tcp = ip[40:40 + plen]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack(">HHI", tcp[:8])
    doff = (tcp[12] >> 4) * 4
    return (src, sport, dst, dport), seq, tcp[doff:]


def streams(path):
    """The TCP payload of each connection direction in capture @path, as
    lists of contiguous byte runs (a gap, e.g. a packet the capture
    dropped, starts a new run). {flow: [bytes, ...]}"""
    segs = {}
    for linktype, frame in packets(path):
        ip = _ip_packet(linktype, frame)
        seg = _tcp_segment(ip) if ip else None
        if seg and seg[2]:
            segs.setdefault(seg[0], []).append((seg[1], seg[2]))
    out = {}
    for flow, lst in segs.items():
        base = lst[0][0]
        rel = sorted((((seq - base) & 0xFFFFFFFF), payload) for seq, payload in lst)
        runs = []
        cur = bytearray()
        end = None
        for start, payload in rel:
            if end is None:
                cur += payload
                end = start + len(payload)
            elif start > end:
                runs.append(bytes(cur))
                cur = bytearray(payload)
                end = start + len(payload)
            elif start + len(payload) > end:
                cur += payload[end - start:]
                end = start + len(payload)
        if cur:
            runs.append(bytes(cur))
        out[flow] = runs
    return out


def payload_bytes(path):
    """How many TCP payload bytes capture @path holds (retransmissions
    counted once)."""
    return sum(len(run) for runs in streams(path).values() for run in runs)


def count_pattern(path, pattern):
    """Occurrences of bytes @pattern in the TCP streams of capture @path."""
    if not pattern:
        raise ValueError("empty pattern")
    return sum(run.count(pattern) for runs in streams(path).values() for run in runs)


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


def main(argv):
    if len(argv) != 3:
        print("usage: wirecapture.py FILE.pcap HEXPATTERN", file=sys.stderr)
        return 2
    print(count_pattern(argv[1], bytes.fromhex(argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
