#!/usr/bin/python3
#
# The benchmark's table and plots from the JSON file of e2e/bench_scale.py:
# the medians of each cell, plain and confidential side by side, written
# into bench/README.md between the markers <!-- table --> and
# <!-- /table -->, and PNG plots (Debian's python3-matplotlib) next to it:
#   time-vs-ram.png        total time (the target's job time) against RAM
#   downtime-vs-ram.png    downtime against RAM
#   throughput-vs-channels.png  QEMU's average transfer rate against the
#                          channel count (1: the main stream; 2: two
#                          parallel channels, each a mirror vCPU's)
# and bench/summary.json, the medians the projection (bench/projection.py)
# starts from.
#
# Usage: bench/report.py RESULTS.json [BENCH_DIR]

import json
import os
import statistics
import sys

MiB = 2 ** 20


def med(runs, key, conf):
    vals = [r[key] for r in runs if r["confidential"] == conf and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def phase_med(runs, name):
    vals = [r["phases_s"].get(name) for r in runs
            if r["confidential"] and r.get("phases_s") and r["phases_s"].get(name) is not None]
    return statistics.median(vals) * 1000 if vals else None


def own_prepare_ms(run):
    """libvirt's own part of the target's Prepare: from the attestation
    phase's start to listening, without the helper's (simulated) boot and
    the attestation agent's run."""
    ph = run.get("phases_s") or {}
    if ph.get("to-listening") is None or "agent_ms" not in run:
        return None
    return (ph["to-listening"] - ph.get("waiting-for-helper", 0)) * 1000 - run["agent_ms"]


def summarize(cell):
    runs = cell["runs"]
    s = {k: cell[k] for k in ("size_mib", "rate", "channels", "tool", "rounds")}
    s["link"] = cell.get("link")
    for conf, kind in ((False, "plain"), (True, "conf")):
        s[kind] = {
            "job_ms": med(runs, "job_ms", conf),
            "wall_s": med(runs, "wall_s", conf),
            "downtime_ms": med(runs, "downtime_ms", conf),
            "data_mib": (med(runs, "data_processed", conf) or 0) / MiB,
            "bw_mib_s": (med(runs, "memory_bandwidth", conf) or 0) / MiB,
            "iterations": med(runs, "iterations", conf),
            "throttle": max([r["throttle"] for r in runs if r["confidential"] == conf] or [0]),
            "n": len([r for r in runs if r["confidential"] == conf]),
        }
    # paired by round: each round's confidential minus its plain
    pairs = {}
    for r in runs:
        pairs.setdefault(r["round"], {})[r["confidential"]] = r
    diffs = sorted(d[True]["downtime_ms"] - d[False]["downtime_ms"] for d in pairs.values()
                   if len(d) == 2 and d[True]["downtime_ms"] is not None
                   and d[False]["downtime_ms"] is not None)
    s["downtime_diff_range"] = (diffs[0], diffs[-1]) if diffs else None
    own = [own_prepare_ms(r) for r in runs if r["confidential"]]
    own = [o for o in own if o is not None]
    s["conf"].update({
        "to_listening_ms": phase_med(runs, "to-listening"),
        "attestation_phase_ms": phase_med(runs, "attestation"),
        "helper_ms": phase_med(runs, "waiting-for-helper"),
        "transport_key_ms": phase_med(runs, "transport-key"),
        "agent_ms": med(runs, "agent_ms", True),
        "own_prepare_ms": statistics.median(own) if own else None,
        "hwm_kib": med(runs, "hwm_kib", True),
        "rss_kib": med(runs, "rss_kib", True),
    })
    s["pattern_errors"] = cell.get("pattern_errors")
    return s


def fmt(v, f="%.0f"):
    return "–" if v is None else f % v


def table(result, cells):
    lines = [
        "| RAM | dirty MiB/s | link MiB/s | ch | tool | n | total s plain / conf (ratio) "
        "| downtime ms plain / conf (Δ; per-round Δ from..to) | sent MiB plain / conf "
        "| MiB/s plain / conf | iter. plain / conf | pattern |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in cells:
        p, c = s["plain"], s["conf"]
        ratio = c["job_ms"] / p["job_ms"] if p["job_ms"] and c["job_ms"] else None
        dd = c["downtime_ms"] - p["downtime_ms"] \
            if c["downtime_ms"] is not None and p["downtime_ms"] is not None else None
        tool = s["tool"] or "none"
        if s["tool"] == "auto-converge":
            tool += " (throttle %d / %d %%)" % (p["throttle"], c["throttle"])
        errs = s["pattern_errors"] or {}
        intact = "intact" if errs and not any(errs.values()) else "WRONG %r" % errs
        lines.append(
            "| %s MiB | %d | %s | %d | %s | %d+%d | %s / %s (%s) | %s / %s (%s; %s) | %s / %s "
            "| %s / %s | %s / %s | %s |" % (
                s["size_mib"], s["rate"], s["link"] or result["link_mib_s"],
                s["channels"], tool, p["n"], c["n"],
                fmt(p["job_ms"] and p["job_ms"] / 1000, "%.1f"),
                fmt(c["job_ms"] and c["job_ms"] / 1000, "%.1f"), fmt(ratio, "%.2f"),
                fmt(p["downtime_ms"]), fmt(c["downtime_ms"]), fmt(dd, "%+.0f"),
                "%+.0f..%+.0f" % s["downtime_diff_range"] if s["downtime_diff_range"] else "–",
                fmt(p["data_mib"]), fmt(c["data_mib"]),
                fmt(p["bw_mib_s"]), fmt(c["bw_mib_s"]),
                fmt(p["iterations"]), fmt(c["iterations"]), intact))
    lines += ["", "The confidential migrations' Prepare on the target (medians, ms; "
              "phases from the job statistics polled every 5 ms) and the target "
              "stand-in's memory:", "",
              "| RAM | dirty | link | ch | tool | to listening | attestation phase | agent run "
              "| helper boot (simulated) | transport key | libvirt's own | "
              "stand-in peak RSS MiB | RSS after MiB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in cells:
        c = s["conf"]
        lines.append("| %s MiB | %d | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            s["size_mib"], s["rate"], s["link"], s["channels"], s["tool"] or "none",
            fmt(c["to_listening_ms"]),
            fmt(c["attestation_phase_ms"]), fmt(c["agent_ms"]), fmt(c["helper_ms"]),
            fmt(c["transport_key_ms"]), fmt(c["own_prepare_ms"]),
            fmt(c["hwm_kib"] and c["hwm_kib"] / 1024, "%.1f"),
            fmt(c["rss_kib"] and c["rss_kib"] / 1024, "%.1f")))
    failed = [c for c in result["cells"] if "error" in c]
    if failed:
        lines += ["", "Cells that failed:", ""]
        for c in failed:
            lines.append("- %s MiB, dirty %s, %s channel(s): %s" % (
                c["size_mib"], c["rate"], c["channels"],
                c["error"].splitlines()[0][:300]))
    return "\n".join(lines)


def plots(cells, outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rates = sorted({s["rate"] for s in cells})
    link = min(s["link"] for s in cells)
    for key, fname, ylabel, scale in (
            ("job_ms", "time-vs-ram.png", "total time (s, target's job)", 1000),
            ("downtime_ms", "downtime-vs-ram.png", "downtime (ms)", 1)):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for n, rate in enumerate(rates):
            for kind, style in (("plain", "--"), ("conf", "-")):
                pts = sorted((s["size_mib"], s[kind][key] / scale) for s in cells
                             if s["rate"] == rate and s["channels"] == 1
                             and s["link"] == link and s["tool"] != "pause"
                             and s[kind][key] is not None)
                if pts:
                    ax.plot(*zip(*pts), style, marker="o", color="C%d" % n,
                            linewidth=1.5, label="%s, dirty %d MiB/s" % (
                                "confidential" if kind == "conf" else "plain", rate))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        sizes = sorted({c["size_mib"] for c in cells})
        ax.set_xticks(sizes)
        ax.set_xticklabels(["%d MiB" % x if x < 1024 else "%d GiB" % (x // 1024)
                            for x in sizes])
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("guest RAM (MiB), 1 channel")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, handlelength=4)
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, fname), dpi=100)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, (size, lk) in enumerate(sorted({(s["size_mib"], s["link"]) for s in cells})):
        for kind, style in (("plain", "--"), ("conf", "-")):
            pts = sorted((s["channels"], s[kind]["bw_mib_s"]) for s in cells
                         if s["size_mib"] == size and s["rate"] == 0 and s["link"] == lk)
            if len(pts) > 1:
                ax.plot(*zip(*pts), style, marker="o", color="C%d" % n,
                        label="%s, %d MiB, idle, --bandwidth %d" % (
                            "confidential" if kind == "conf" else "plain", size, lk))
    ax.set_xticks([1, 2])
    ax.set_xlabel("channels (confidential: one mirror vCPU each)")
    ax.set_ylabel("average transfer rate (MiB/s, QEMU)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, handlelength=4)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "throughput-vs-channels.png"), dpi=100)
    plt.close(fig)


def main():
    with open(sys.argv[1]) as f:
        result = json.load(f)
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.realpath(__file__))
    cells = [summarize(c) for c in result["cells"] if "runs" in c]
    for c in cells:
        c["link"] = c["link"] or result["link_mib_s"]
    text = table(result, cells)
    readme = os.path.join(outdir, "README.md")
    with open(readme) as f:
        doc = f.read()
    head, rest = doc.split("<!-- table -->", 1)
    _, tail = rest.split("<!-- /table -->", 1)
    with open(readme, "w") as f:
        f.write(head + "<!-- table -->\n" + text + "\n<!-- /table -->" + tail)
    summary = {k: result[k] for k in ("command", "date", "machine", "link_mib_s",
                                      "cipher_mib_s", "loadavg_start", "loadavg_end",
                                      "duration_s") if k in result}
    summary["cells"] = cells
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    plots(cells, outdir)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
