#!/usr/bin/python3
#
# The libvirt-mirror demo: two test hosts on this machine (e2e/hosts.py), a
# guest started on host a, live-migrated to host b over TLS with real
# libvirt daemons, real virsh and real QEMU (TCG), then checked on host b.
#
# Today the guest is a plain (non-SEV) guest: the target side of a
# confidential migration and the QEMU stand-in for the mirror interface are
# not there yet, and the demo says so. Everything it starts is torn down at
# the end, on failure, and on Ctrl-C or SIGTERM.
#
# Usage: demo.py GUEST_ELF

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import guestcheck  # noqa: E402
import hosts  # noqa: E402
from test_migration import (DOMAIN, DOMAIN_XML, domain_state,  # noqa: E402
                            guest_memory, guest_word)


def say(msg):
    print(msg, flush=True)


def on_sigterm(signum, frame):
    raise KeyboardInterrupt()


def job_field(info, name):
    for line in info.splitlines():
        if line.startswith(name + ":"):
            return " ".join(line.split(":", 1)[1].split())
    return "?"


def demo(guest):
    t0 = time.monotonic()
    say("libvirt-mirror demo: live migration between two test hosts")
    say("  NOTE: this run migrates a plain (non-SEV) guest. Confidential")
    say("  migration needs the target side of the flow and a QEMU with the")
    say("  mirror interface, which are not in this build yet; see")
    say("  docs/kbase/confidential-migration.rst.")

    ok, why = hosts.can_create_namespaces()
    if not ok:
        say("cannot run the demo here: %s" % why)
        return 1

    say("[1/5] setting up host a (%s) and host b (%s): network namespaces, "
        "libvirtd from the build, TLS certificates"
        % (hosts.HOSTS["a"], hosts.HOSTS["b"]))
    with hosts.Lab() as lab:
        a, b = lab.hosts["a"], lab.hosts["b"]
        xml = os.path.join(lab.dir, "guest.xml")
        with open(xml, "w") as f:
            f.write(DOMAIN_XML % (DOMAIN, guest))

        say("[2/5] starting guest '%s' on host a; it fills 4 MiB with a known "
            "pattern and keeps rewriting 8 MiB" % DOMAIN)
        a.virsh("define", xml)
        a.virsh("start", DOMAIN)
        deadline = time.monotonic() + 60
        while guest_word(a, lab, guestcheck.READY_ADDR) != guestcheck.READY_MAGIC:
            if time.monotonic() > deadline:
                say("the guest did not get ready on host a")
                return 1
            time.sleep(0.1)
        before = guest_word(a, lab, guestcheck.COUNTER_ADDR)

        say("[3/5] virsh migrate --confidential for this guest: refused, as it "
            "must be (not an SEV guest)")
        res = b.virsh("migrate", "--live", "--confidential", DOMAIN,
                      "qemu+tls://%s/system" % b.addr,
                      uri="qemu+tls://%s/system" % a.addr, check=False)
        say("      " + (res.stderr.strip().splitlines() or ["(no message)"])[-1])
        if res.returncode == 0:
            say("a confidential migration of a non-SEV guest was not refused")
            return 1

        say("[4/5] virsh migrate --live --p2p %s qemu+tls://%s/system"
            % (DOMAIN, b.addr))
        virsh = os.path.join(hosts.LIBVIRT_BUILD, "tools", "virsh")
        start = time.monotonic()
        rc = subprocess.call(a.enter() + [virsh, "-c", "qemu:///system",
                                          "migrate", "--live", "--p2p",
                                          "--verbose", DOMAIN,
                                          "qemu+tls://%s/system" % b.addr],
                             env=hosts.libvirt_env(), timeout=300)
        wall = time.monotonic() - start
        if rc != 0:
            say("migration failed")
            return 1

        say("[5/5] checking the guest on host b")
        errors = guestcheck.pattern_errors(guest_memory(
            b, lab, guestcheck.PATTERN_ADDR, guestcheck.PATTERN_WORDS * 4))
        after = guest_word(b, lab, guestcheck.COUNTER_ADDR)
        time.sleep(0.5)
        later = guest_word(b, lab, guestcheck.COUNTER_ADDR)
        state_a, state_b = domain_state(a), domain_state(b)
        info = b.virsh("domjobinfo", "--completed", DOMAIN).stdout
        good = (not errors and after > before and later > after and
                state_b == "running" and state_a == "shut off")
        say("      host a: %s, host b: %s" % (state_a, state_b))
        say("      pattern: %s" % ("all 1048576 words intact" if not errors
                                   else "WRONG at word(s) %s" % errors))
        say("      guest kept running: pass counter %d on host a before, %d "
            "then %d on host b" % (before, after, later))
        say("")
        say("summary (%s)" % ("OK" if good else "FAILED"))
        say("  migration:  %.1f s wall clock, %s in QEMU" % (
            wall, job_field(info, "Time elapsed")))
        say("  downtime:   %s" % job_field(info, "Total downtime"))
        say("  moved:      %s" % job_field(info, "Data processed"))
        say("  demo total: %.1f s (tearing down now)" % (time.monotonic() - t0))
    return 0 if good else 1


def main():
    # Ctrl-C and SIGTERM both end in the teardown, even when started from a
    # context that ignores SIGINT (a background job of a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return demo(os.path.realpath(sys.argv[1]))
    except KeyboardInterrupt:
        say("interrupted; everything was torn down")
        return 130
    except hosts.SetupError as e:
        say("setup failed: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
