#!/usr/bin/python3
#
# The libvirt-mirror demo: two test hosts on this machine (e2e/hosts.py), an
# SEV guest with <mirror vcpus='1'/> started on host a, moved to host b with
# virsh migrate --live --confidential over TLS (real libvirt daemons from the
# build, real virsh, real QEMU under TCG), then checked on host b.
#
# There is no SEV hardware here and QEMU's mirror VM support is an unmerged
# proposal: the guest's QEMU is the stand-in of e2e/standin, which runs
# Debian's QEMU and simulates SEV, the mirror vCPU and the migration helper
# (the pages cross the link in QEMU's ordinary stream, not re-encrypted).
# The demo says so. Everything it starts is torn down at the end, on
# failure, and on Ctrl-C or SIGTERM.
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
import sevguest  # noqa: E402

DOMAIN = "demo-sev"


def say(msg):
    print(msg, flush=True)


def on_sigterm(signum, frame):
    raise KeyboardInterrupt()


def demo(guest):
    t0 = time.monotonic()
    say("libvirt-mirror demo: confidential live migration of an SEV guest")
    say("  NOTE: no SEV hardware here. The guest's QEMU is the stand-in of")
    say("  e2e/standin: real QEMU (TCG) underneath, with SEV, the mirror vCPU,")
    say("  the migration helper and its transport key simulated; the pages")
    say("  travel in QEMU's ordinary stream. libvirt does everything else for real.")

    ok, why = hosts.can_create_namespaces()
    if not ok:
        say("cannot run the demo here: %s" % why)
        return 1

    say("[1/5] setting up host a (%s) and host b (%s): network namespaces, "
        "libvirtd from the build, TLS certificates"
        % (hosts.HOSTS["a"], hosts.HOSTS["b"]))
    with hosts.Lab() as lab:
        a, b = lab.hosts["a"], lab.hosts["b"]
        target = "qemu+tls://%s/system" % b.addr

        say("[2/5] starting SEV guest '%s' with <mirror vcpus='1'/> on host a; "
            "it fills 4 MiB with a known pattern and keeps rewriting 8 MiB" % DOMAIN)
        sevguest.define_and_start(a, lab, DOMAIN,
                                  sevguest.domain_xml(lab, DOMAIN, guest, sev=True))
        sevguest.wait_helper_ready(a, DOMAIN)
        before = sevguest.guest_word(a, lab, DOMAIN, guestcheck.COUNTER_ADDR)

        say("[3/5] virsh migrate --live --p2p %s %s (without --confidential): "
            "refused, as it must be" % (DOMAIN, target))
        res = a.virsh("migrate", "--live", "--p2p", DOMAIN, target, check=False)
        say("      " + (res.stderr.strip().splitlines() or ["(no message)"])[-1])
        if res.returncode == 0:
            say("a plain migration of an SEV guest was not refused")
            return 1

        say("[4/5] virsh migrate --live --p2p --confidential --tls --verbose %s %s"
            % (DOMAIN, target))
        virsh = os.path.join(hosts.LIBVIRT_BUILD, "tools", "virsh")
        start = time.monotonic()
        rc = subprocess.call(a.enter() + [virsh, "-c", "qemu:///system",
                                          "migrate", "--live", "--p2p",
                                          "--confidential", "--tls",
                                          "--verbose", DOMAIN, target],
                             env=hosts.libvirt_env(), timeout=300)
        wall = time.monotonic() - start
        if rc != 0:
            say("migration failed")
            return 1

        say("[5/5] checking the guest on host b")
        errors = sevguest.pattern_errors(b, lab, DOMAIN)
        after = sevguest.guest_word(b, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        time.sleep(0.5)
        later = sevguest.guest_word(b, lab, DOMAIN, guestcheck.COUNTER_ADDR)
        state_a, state_b = sevguest.state(a, DOMAIN), sevguest.state(b, DOMAIN)
        info = sevguest.job_info(b, DOMAIN)
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
            wall, info.get("Time elapsed", "?")))
        say("  downtime:   %s" % info.get("Total downtime", "?"))
        say("  moved:      %s" % info.get("Data processed", "?"))
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
