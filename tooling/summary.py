#!/usr/bin/python3
#
# Read meson's testlog.json and print the closing line of a test run:
#   N passed, N failed[, N skipped]
# A syntax-check failure listed in tooling/syntax-check-baseline.txt (it
# fails on pristine libvirt 11.3.0 too) is reported as such and not counted
# as a failure; any other failure, timeout or error is. Before that line, the
# time of each suite (the sum of its tests' durations, its slowest test) and
# of the slowest tests, so that a run shows where its time goes. Exit status:
# 0 when nothing failed, 1 otherwise.

import json
import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))


def load_baseline(path):
    names = set()
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(line)
    return names


def main():
    log = sys.argv[1]
    baseline = load_baseline(os.environ.get(
        "MIRROR_SYNTAX_CHECK_BASELINE",
        os.path.join(HERE, "syntax-check-baseline.txt")))
    passed = failed = skipped = 0
    known = []
    failures = []
    seen_baseline = set()
    suites = {}
    durations = []
    with open(log) as f:
        for line in f:
            t = json.loads(line)
            name, result = t["name"], t["result"]
            # meson names a test "<project>:<suite> / <test>"
            suite, _, short = name.rpartition(" / ")
            duration = float(t.get("duration") or 0)
            tests, total, slowest = suites.get(suite, (0, 0.0, 0.0))
            suites[suite] = (tests + 1, total + duration, max(slowest, duration))
            durations.append((duration, name))
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            elif suite == "libvirt:syntax-check" and short in baseline:
                known.append(short)
                seen_baseline.add(short)
            else:
                failed += 1
                failures.append("%s (%s)" % (name, result))
    for suite, (tests, total, slowest) in sorted(suites.items(), key=lambda i: -i[1][1]):
        print("time: %-24s %7.1f s in %d test(s), the slowest %.1f s"
              % (suite, total, tests, slowest))
    for duration, name in sorted(durations, reverse=True)[:5]:
        print("time: slowest test %7.1f s  %s" % (duration, name))
    for k in sorted(known):
        print("baseline: %s fails on pristine libvirt 11.3.0 too; not counted" % k)
    for fl in failures:
        print("FAILED: %s" % fl)
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    if passed + failed + skipped + len(known) == 0:
        print("no test ran", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
