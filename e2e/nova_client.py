#!/usr/bin/python3
#
# A live migration driven the way OpenStack Nova's libvirt driver drives it
# (python3-nova 26.2.2, Debian 12), through Debian's python3-libvirt 9.0.0,
# plus the changes docs/kbase/confidential-migration-nova.rst asks of Nova.
# e2e/test_nova_migrate.py runs it with /usr/bin/python3 inside test host
# a's namespaces, with the built libvirt library (hosts.libvirt_env()).
#
# What is Nova's, and where it comes from:
#   flags        LibvirtDriver._prepare_migration_flags() (LIVE, PEER2PEER,
#                UNDEFINE_SOURCE, PERSIST_DEST) and _handle_native_tls()
#                ([libvirt] live_migration_with_native_tls = True: TLS); the
#                other handlers add nothing with Nova's defaults
#                (live_migration_tunnelled, _permit_post_copy and
#                _permit_auto_converge are False)
#   dest XML     nova.virt.libvirt.migration.get_updated_guest_xml(): the
#                domain's XML with VIR_DOMAIN_XML_MIGRATABLE, then the
#                host-specific parts rewritten (graphics and serial listen
#                addresses, volumes, VIFs, NUMA pinning, perf events, memory
#                backing). The test guest has none of those, so this client
#                marks the XML with a <description> instead, which the test
#                then finds on the target: proof that libvirt used it.
#   the call     nova.virt.libvirt.guest.Guest.migrate(), copied below
#   the monitor  LibvirtDriver._live_migration(): the call runs in a thread
#                of its own while the monitor polls the job statistics
#                (Guest.get_job_info(), every 0.5 s in Nova; 0.1 s here)
#   force complete  LibvirtDriver.live_migration_force_complete() queues
#                'force-complete' for the monitor, which (without post-copy)
#                calls Guest.pause(): dom.suspend(). --force-complete-after
#                N makes this client's monitor do that once N MiB have been
#                processed; --bandwidth is [libvirt] live_migration_bandwidth
# What Nova does not have yet: VIR_MIGRATE_CONFIDENTIAL, with the fallback
# for bindings that lack the constant (python3-libvirt 9.0.0 has none).
#
# Usage: nova_client.py DOMAIN DEST-URI [--no-confidential] [--description TEXT]
#        [--bandwidth MIB] [--force-complete-after MIB]
# Prints one JSON object: what happened.

import argparse
import json
import threading
import time
import xml.etree.ElementTree as ET

import libvirt

# the fallback the guide asks for: the value of VIR_MIGRATE_CONFIDENTIAL in
# this series' libvirt-domain.h
VIR_MIGRATE_CONFIDENTIAL = getattr(libvirt, "VIR_MIGRATE_CONFIDENTIAL", 0x200000)


def nova_migration_flags(confidential):
    """LibvirtDriver._parse_migration_flags() with Nova's defaults and
    live_migration_with_native_tls = True; then the confidential flag."""
    flags = 0
    flags |= libvirt.VIR_MIGRATE_LIVE
    flags |= libvirt.VIR_MIGRATE_PEER2PEER
    flags |= libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    flags |= libvirt.VIR_MIGRATE_PERSIST_DEST
    flags |= libvirt.VIR_MIGRATE_TLS
    if confidential:
        flags |= VIR_MIGRATE_CONFIDENTIAL
    return flags


def destination_xml(dom, description):
    """get_updated_guest_xml(): the migratable XML with host-specific
    changes (here: a <description>, see the header)."""
    doc = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE))
    desc = doc.find("description")
    if desc is None:
        desc = ET.Element("description")
        doc.insert(2, desc)               # after <name> and <uuid>
    desc.text = description
    return ET.tostring(doc, encoding="unicode")


def guest_migrate(dom, destination, migrate_uri=None, migrate_disks=None,
                  destination_xml=None, flags=0, bandwidth=0):
    """nova.virt.libvirt.guest.Guest.migrate() of Nova 26.2.2."""
    params = {}
    # In migrateToURI3 these parameters are extracted from the
    # `params` dict
    params['bandwidth'] = bandwidth

    if destination_xml:
        params['destination_xml'] = destination_xml
        params['persistent_xml'] = destination_xml
    if migrate_disks:
        params['migrate_disks'] = migrate_disks
    if migrate_uri:
        params['migrate_uri'] = migrate_uri

    if (flags & libvirt.VIR_MIGRATE_NON_SHARED_INC != 0 and
            not params.get('migrate_disks')):
        flags &= ~libvirt.VIR_MIGRATE_NON_SHARED_INC

    dom.migrateToURI3(destination, params=params, flags=flags)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("domain")
    parser.add_argument("dest_uri")
    parser.add_argument("--no-confidential", action="store_true")
    parser.add_argument("--description", default="destination XML of nova_client.py")
    parser.add_argument("--bandwidth", type=int, default=0)
    parser.add_argument("--force-complete-after", type=int, default=None)
    args = parser.parse_args()

    # errors are reported in the JSON result, not on stderr
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    conn = libvirt.open("qemu:///system")
    dom = conn.lookupByName(args.domain)
    xml = destination_xml(dom, args.description)
    flags = nova_migration_flags(not args.no_confidential)
    result = {
        "library_version": conn.getLibVersion(),
        "binding_has_constant": hasattr(libvirt, "VIR_MIGRATE_CONFIDENTIAL"),
        "flags": flags,
        "xml_has_mirror": ET.fromstring(xml).find("mirror") is not None,
        "ok": False,
        "samples": [],
        "force_completed_at": None,
    }

    outcome = {}

    def operation():
        # LibvirtDriver._live_migration_operation(): Nova's defaults give
        # no migrate_uri (no live_migration_inbound_addr), no disks (no
        # block migration) and bandwidth 0 (live_migration_bandwidth)
        try:
            guest_migrate(dom, args.dest_uri, migrate_uri=None, migrate_disks=[],
                          destination_xml=xml, flags=flags, bandwidth=args.bandwidth)
            outcome["ok"] = True
        except libvirt.libvirtError as e:
            outcome["error"] = e.get_error_message()
            outcome["code"] = e.get_error_code()

    start = time.monotonic()
    thread = threading.Thread(target=operation)
    thread.start()
    while thread.is_alive():
        # the monitor's view: Guest.get_job_info() is dom.jobStats()
        sample = {"t": round(time.monotonic() - start, 3)}
        try:
            stats = dom.jobStats()
            for key in ("type", "memory_total", "memory_processed",
                        "memory_remaining", "time_elapsed"):
                if key in stats:
                    sample[key] = stats[key]
        except libvirt.libvirtError as e:
            sample["error"] = e.get_error_message()
        result["samples"].append(sample)
        if (args.force_complete_after is not None and
                result["force_completed_at"] is None and
                sample.get("memory_processed", 0) >= args.force_complete_after << 20):
            # the monitor's force-complete: Guest.pause()
            dom.suspend()
            result["force_completed_at"] = sample
        thread.join(0.1)
    result.update(outcome)
    result["seconds"] = round(time.monotonic() - start, 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
