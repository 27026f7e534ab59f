#!/usr/bin/python3
#
# Benchmark (issue 22): plain against confidential live migration of big
# and busy guests between the two test hosts (e2e/hosts.py), in one run,
# alternating migration by migration. Not a timed test: it writes a JSON
# file of every migration, which bench/report.py turns into
# bench/README.md's table, its plots and bench/summary.json (the cells'
# medians), and bench/projection.py into the projection.
#
# The matrix: guest RAM (--sizes, MiB; the test guest with dirty=... on
# its command line fills all its RAM below 4 GiB with its pattern:
# e2e/guest/guest.s) x dirty rate (0, --moderate MiB/s, and --above MiB/s,
# more than the link: the guest paces it with the PIT) x channels (1: the
# main stream; 2: --parallel --parallel-connections 2, the SEV guest with
# <mirror vcpus='2'/>). Each cell boots a plain guest (the SEV guest's
# definition without <launchSecurity> and <mirror/>, 1 vCPU in 1 +
# channels slots: the stand-in leaves the mirror vCPUs' slots empty in the
# real QEMU, so both QEMUs have the same topology) and an SEV guest, each
# with that RAM and rate, then migrates each --rounds times (--rounds-big
# for sizes of 4096 MiB and more), alternating plain and confidential,
# back and forth, and checks spans of both guests' patterns at the end.
# Every migration: --live --p2p --tls --bandwidth LINK (the link: QEMU's
# max-bandwidth, MiB/s); the above-the-link cells add the convergence tool
# (--tool: auto-converge, QEMU throttling the guest's vCPUs, or pause,
# --timeout N --timeout-suspend), the same for both kinds.
#
# Per migration it records: virsh migrate's wall clock; from the target's
# completed job statistics (virsh domjobinfo --completed) the job's time,
# the downtime, the memory processed and the total data, the iterations
# (the source's completed statistics); with auto-converge, the largest
# throttle of the source's job (polled every 200 ms); for the
# confidential one, the Prepare phases on the target
# (VIR_DOMAIN_JOB_CONFIDENTIAL_PHASE and _PHASE_ELAPSED, polled every 5 ms
# through libvirt-python inside the target's namespaces: POLLER) and
# the attestation and agent times; the target stand-in's peak RSS (VmHWM)
# and RSS after the migration. Once per run: AES-256-GCM on one core
# (openssl speed -evp aes-256-gcm, 64 KiB blocks: the stand-in's record
# size; the stand-in uses gnutls, QEMU's TLS too), the ceiling of one
# mirror vCPU.
#
# What is simulated (README.md, "What is simulated"): the stand-in relays
# QEMU's stream through one AES-256-GCM thread per channel (a mirror vCPU
# thread); a real helper would encrypt each page inside the guest. The
# helper's boot time is the stand-in's helper-boot-ms (200 ms). No figure
# here is a figure for SEV hardware.
#
# Usage: bench_scale.py GUEST_ELF OUT.json [--sizes 256,1024,4096]
#          [--rounds 5] [--rounds-big 3] [--link 100] [--moderate 25]
#          [--above 200] [--channels 1,2] [--tool auto-converge|pause]
#          [--only-rates 0,50]
#          [--cells SIZE:RATE:CHANNELS:ROUNDS[:TOOL[:LINK]],...]
# --cells replaces the matrix by the cells it lists (TOOL: auto-converge,
# pause or none; default: --tool above the link, else none).

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import hosts  # noqa: E402
import sevguest  # noqa: E402

PHASES = ["attestation", "provisioning", "waiting-for-helper", "transport-key",
          "listening"]


# ------------------------------------------------ the Prepare phases
# "phases": the target's confidential_phase samples, every 5 ms until it
# listens; "throttle": the largest auto_converge_throttle of the source's
# job, every 200 ms until the job ends (or the parent closes stdin)
POLLER = r"""
import json, select, sys, time
import libvirt
name, limit, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
conn = libvirt.open("qemu:///system")
print("polling", flush=True)
t0 = time.monotonic()
samples = []
throttle = 0
while time.monotonic() - t0 < limit:
    try:
        stats = conn.lookupByName(name).jobStats()
    except libvirt.libvirtError:
        stats = {}
    now = time.monotonic()
    if mode == "phases" and "confidential_phase" in stats:
        samples.append((now, stats["confidential_phase"],
                        stats.get("confidential_phase_elapsed", 0) / 1000.0))
        if stats["confidential_phase"] == 4:
            break
    if mode == "throttle":
        throttle = max(throttle, stats.get("auto_converge_throttle", 0))
        if select.select([sys.stdin], [], [], 0.2)[0]:
            break
    else:
        time.sleep(0.005)
print(json.dumps(samples if mode == "phases" else throttle), flush=True)
"""


def start_poller(host, name, mode, limit=1800):
    """libvirt-python (Debian's) inside @host's namespaces, polling the
    domain @name's job statistics (POLLER's @mode); returns the Popen once
    it is connected."""
    proc = subprocess.Popen(host.enter() + ["/usr/bin/python3", "-c", POLLER, name,
                                            str(limit), mode],
                            stdin=subprocess.PIPE,
                            env=hosts.libvirt_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "polling":
        raise RuntimeError("phase poller: %s" % proc.stderr.read())
    return proc


def phase_durations(samples):
    """Seconds each Prepare phase lasted, from (time seen, phase, elapsed
    in it) samples: a phase starts at time seen - elapsed, and ends where
    the next one starts (the last one seen, listening, has no end here)."""
    starts = {}
    for seen, phase, elapsed in samples:
        starts.setdefault(phase, seen - elapsed)
    out = {}
    order = sorted(starts)
    for p, q in zip(order, order[1:]):
        out[PHASES[p]] = max(0.0, starts[q] - starts[p])
    if order:
        out["to-listening"] = starts[order[-1]] - starts[order[0]] \
            if order[-1] == 4 else None
    return out


# ------------------------------------------------------- measurements
def cipher_one_core():
    """AES-256-GCM MiB/s on one core, 64 KiB blocks (openssl speed)."""
    out = subprocess.run(["openssl", "speed", "-mr", "-seconds", "3", "-bytes",
                          "65536", "-evp", "aes-256-gcm"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("+F:"):
            return float(line.split(":")[-1]) / 2 ** 20
    raise RuntimeError("openssl speed: no result in %r" % out)


def ms(value):
    if not value:
        return None
    number, unit = value.split()[:2]
    return float(number) * {"ms": 1, "s": 1000}.get(unit, 1)


def size(value):
    return sevguest.size_bytes(value) if value else None


def rss_kib(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def migrate(args, src, dst, name, conf, channels, tool, link):
    flags = ["--live", "--p2p", "--tls", "--bandwidth", str(link)]
    if conf:
        flags.append("--confidential")
    if channels > 1:
        flags += ["--parallel", "--parallel-connections", str(channels)]
    if tool == "auto-converge":
        flags += ["--auto-converge", "--auto-converge-initial", "99"]
    elif tool == "pause":
        flags += ["--timeout", str(args.pause_after), "--timeout-suspend"]
    poller = start_poller(dst, name, "phases", 120) if conf else None
    throttler = start_poller(src, name, "throttle") if tool == "auto-converge" else None
    start = time.monotonic()
    res = src.virsh("migrate", *flags, name, "qemu+tls://%s/system" % dst.addr,
                    check=False, timeout=1800)
    wall = time.monotonic() - start
    samples, throttle = [], 0
    for proc, into in ((poller, "samples"), (throttler, "throttle")):
        if not proc:
            continue
        try:
            out, _ = proc.communicate(input="end\n", timeout=30)
            value = json.loads(out.strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            proc.kill()
            proc.communicate()
            continue
        if into == "samples":
            samples = value
        else:
            throttle = value
    if res.returncode != 0:
        raise RuntimeError("migration of %s failed: %s\n%s%s" % (
            name, res.stderr, src.log_tail(), dst.log_tail()))
    info = sevguest.job_info(dst, name)
    srcinfo = sevguest.job_info(src, name)
    rec = {
        "confidential": conf, "wall_s": wall,
        "job_ms": ms(info.get("Time elapsed")),
        "downtime_ms": ms(info.get("Total downtime")),
        "memory_processed": size(info.get("Memory processed")),
        "data_processed": size(info.get("Data processed")),
        "memory_bandwidth": size((info.get("Memory bandwidth") or "").replace("/s", "")),
        "iterations": int(srcinfo.get("Iteration") or info.get("Iteration") or 0),
        "throttle": throttle,
        "source_job_ms": ms(srcinfo.get("Time elapsed")),
        "target_info": info, "source_info": srcinfo,
    }
    att = info.get("Attestation")
    if att:
        m = re.match(r"(\d+) ms \(attestation agent: (\d+) ms\)", att)
        if m:
            rec["attestation_ms"], rec["agent_ms"] = int(m.group(1)), int(m.group(2))
    if conf:
        rec["phases_s"] = phase_durations(samples)
        rec["rss_kib"], rec["hwm_kib"] = rss_kib(sevguest.emulator_pid(dst, name))
    return rec


def cleanup(lab, names):
    for h in lab.hosts.values():
        for n in names:
            h.virsh("destroy", n, check=False)
            h.virsh("undefine", n, check=False)


def run_cell(args, lab, size_mib, rate, channels, tool, rounds, link):
    a, b = lab.hosts["a"], lab.hosts["b"]
    names = {False: "scale-plain", True: "scale-sev"}
    cleanup(lab, names.values())
    for conf, name in names.items():
        xml = sevguest.domain_xml(lab, name, args.guest, sev=conf,
                                  emulator=hosts.STANDIN, slots=1 + channels,
                                  memory=size_mib, dirty=rate, mirror_vcpus=channels)
        sevguest.define_and_start(a, lab, name, xml, timeout=600)
    sevguest.wait_helper_ready(a, names[True])
    rss_source = rss_kib(sevguest.emulator_pid(a, names[True]))
    where = {False: (a, b), True: (a, b)}
    runs = []
    for i in range(rounds):
        for conf in (False, True):
            src, dst = where[conf]
            rec = migrate(args, src, dst, names[conf], conf, channels, tool, link)
            rec["round"] = i
            runs.append(rec)
            print("  %s round %d: %.1f s wall, job %.0f ms, downtime %.0f ms, "
                  "%.0f MiB, %d iterations, throttle %d" % (
                      "conf " if conf else "plain", i, rec["wall_s"], rec["job_ms"] or -1,
                      rec["downtime_ms"] or -1, (rec["data_processed"] or 0) / 2 ** 20,
                      rec["iterations"], rec["throttle"]), flush=True)
            where[conf] = (dst, src)
            if conf:
                sevguest.wait_helper_ready(dst, names[conf])
    intact = {}
    for conf, name in names.items():
        host = where[conf][0]
        intact["confidential" if conf else "plain"] = \
            sevguest.pattern_sample_errors(host, lab, name, count=16)
    cleanup(lab, names.values())
    return {"size_mib": size_mib, "rate": rate, "channels": channels, "tool": tool,
            "rounds": rounds, "link": link, "runs": runs, "pattern_errors": intact,
            "standin_rss_source_kib": rss_source[0]}


def warm_up(args, lab):
    """One round trip of each kind with a small default guest, not
    recorded: the first migration to a host probes the emulator's
    capabilities and opens the TLS session."""
    a, b = lab.hosts["a"], lab.hosts["b"]
    for conf in (False, True):
        name = "scale-warm"
        sevguest.define_and_start(a, lab, name, sevguest.domain_xml(
            lab, name, args.guest, sev=conf, emulator=hosts.STANDIN, slots=2))
        for src, dst in ((a, b), (b, a)):
            if conf:
                sevguest.wait_helper_ready(src, name)
            migrate(args, src, dst, name, conf, 1, None, args.link)
        cleanup(lab, [name])


def plan(args, rates):
    """(size MiB, rate, channels, rounds, tool, link) of each cell: --cells,
    else the whole matrix."""
    if args.cells:
        out = []
        for spec in args.cells.split(","):
            f = spec.split(":") + [None, None]
            size_mib, rate, channels, rounds = (int(x) for x in f[:4])
            tool = f[4] or (args.tool if rate > args.link else None)
            if tool == "none":
                tool = None
            out.append((size_mib, rate, channels, rounds, tool, int(f[5] or args.link)))
        return out
    return [(size_mib, rate, channels,
             args.rounds_big if size_mib >= 4096 else args.rounds,
             args.tool if rate > args.link else None, args.link)
            for size_mib in [int(x) for x in args.sizes.split(",")]
            for channels in [int(c) for c in args.channels.split(",")]
            for rate in rates]


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("guest")
    p.add_argument("out")
    p.add_argument("--sizes", default="256,1024,4096")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--rounds-big", type=int, default=3)
    p.add_argument("--link", type=int, default=100, help="MiB/s")
    p.add_argument("--moderate", type=int, default=25, help="MiB/s")
    p.add_argument("--above", type=int, default=200, help="MiB/s")
    p.add_argument("--channels", default="1,2")
    p.add_argument("--tool", default="auto-converge", choices=["auto-converge", "pause"])
    p.add_argument("--pause-after", type=int, default=5, help="--timeout (s)")
    p.add_argument("--only-rates", default=None)
    p.add_argument("--cells", default=None,
                   help="instead of the matrix: SIZE:RATE:CHANNELS:ROUNDS[:TOOL[:LINK]],...")
    args = p.parse_args()
    args.guest = os.path.realpath(args.guest)
    ok, why = hosts.can_create_namespaces()
    if not ok:
        print("cannot run the benchmark here: %s" % why)
        return 1
    rates = [0, args.moderate, args.above]
    if args.only_rates:
        rates = [int(r) for r in args.only_rates.split(",")]
    started = time.time()
    result = {"command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": "%s, %d cores, %.0f GiB, %s" % (
                  platform.node(), os.cpu_count(),
                  os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30,
                  cpu_model()),
              "link_mib_s": args.link, "rates": rates, "tool": args.tool,
              "loadavg_start": os.getloadavg(), "cells": []}
    result["cipher_mib_s"] = cipher_one_core()
    print("AES-256-GCM, one core: %.0f MiB/s" % result["cipher_mib_s"], flush=True)

    def save():
        result["loadavg_end"] = os.getloadavg()
        result["duration_s"] = time.time() - started
        with open(args.out + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        os.replace(args.out + ".tmp", args.out)

    with hosts.Lab() as lab:
        for h in lab.hosts.values():
            h.standin_config(boot_ms=200)
        warm_up(args, lab)
        for size_mib, rate, channels, rounds, tool, link in plan(args, rates):
            print("cell: %d MiB, dirty %d MiB/s, %d channel(s), tool %s, link %d MiB/s, "
                  "load %.1f" % (size_mib, rate, channels, tool, link,
                                 os.getloadavg()[0]), flush=True)
            try:
                cell = run_cell(args, lab, size_mib, rate, channels, tool, rounds, link)
            except Exception as e:  # recorded, the run goes on
                print("  FAILED: %s" % e, flush=True)
                cell = {"size_mib": size_mib, "rate": rate, "channels": channels,
                        "tool": tool, "link": link, "error": str(e)[:2000]}
                cleanup(lab, ["scale-plain", "scale-sev"])
            result["cells"].append(cell)
            save()
    save()
    print("done in %.0f s: %s" % (time.time() - started, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
