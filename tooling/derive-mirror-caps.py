#!/usr/bin/python3
#
# Derive tests/qemucapabilitiesdata/caps_10.0.0_x86_64+amdsev-mirror.replies
# from libvirt's caps_10.0.0_x86_64+amdsev.replies (replies captured on a
# real SEV host) by adding exactly the QEMU interface that confidential
# migration needs, as written down in docs/kbase/confidential-migration.rst:
#
# From the RFCs (qemu-devel, August 2021):
#   - "Add support for Mirror VM": -smp mirrorvcpus=N. The option is parsed
#     as part of -smp, whose parameters QEMU reports through
#     query-command-line-options ("smp-opts"): the SMP configuration struct is
#     not reachable from any QMP command, so query-qmp-schema does not show
#     it, in this or any other QEMU.
#   - "Confidential guest-assisted live migration" v2: QMP command
#     start-migrate-incoming {"uri": str}.
# This project's proposal (the RFCs leave these open):
#   - query-mirror-vcpus -> [{"cpu-index": int, "thread-id": int}]
#   - query-migration-helper -> {"status": MigrationHelperStatus,
#                                "*transport-key": bool, "*error": str}
#   - event MIGRATION_HELPER {"status": MigrationHelperStatus, "*error": str}
#   - enum MigrationHelperStatus: inactive, booting, ready, failed
#
# Usage: tooling/derive-mirror-caps.py LIBVIRT_SRC_DIR
# (writes the .replies file in place, in the format of libvirt's
# scripts/qemu-replies-tool.py, so that its check passes)

import json
import os
import re
import sys

# names for the new schema types; QEMU masks type names as numbers and this
# schema's largest is 802
T_URI_ARGS = "9000"
T_MIRROR_VCPU = "9001"
T_HELPER_STATUS = "9002"
T_HELPER_INFO = "9003"


def load(path):
    with open(path) as f:
        text = f.read()
    return [json.loads(chunk) for chunk in re.split(r"\n\n(?=\{)", text.strip())]


def dump(path, objs):
    with open(path, "w") as f:
        f.write("\n\n".join(json.dumps(o, indent=2) for o in objs) + "\n")


def reply_of(objs, command):
    for i in range(0, len(objs), 2):
        if objs[i].get("execute") == command:
            return objs[i + 1]["return"]
    raise SystemExit("no '%s' in the replies" % command)


def main():
    src = sys.argv[1]
    data = os.path.join(src, "tests", "qemucapabilitiesdata")
    objs = load(os.path.join(data, "caps_10.0.0_x86_64+amdsev.replies"))

    # RFC: -smp mirrorvcpus=
    for opt in reply_of(objs, "query-command-line-options"):
        if opt["option"] == "smp-opts":
            names = [p["name"] for p in opt["parameters"]]
            assert "mirrorvcpus" not in names
            opt["parameters"].insert(0, {"name": "mirrorvcpus", "type": "number"})
            break
    else:
        raise SystemExit("no smp-opts")

    schema = reply_of(objs, "query-qmp-schema")
    names = {e["name"] for e in schema}
    assert not names & {T_URI_ARGS, T_MIRROR_VCPU, T_HELPER_STATUS,
                        T_HELPER_INFO, "start-migrate-incoming",
                        "query-mirror-vcpus", "query-migration-helper",
                        "MIGRATION_HELPER"}

    pos = next(i for i, e in enumerate(schema) if e["name"] == "migrate-incoming")
    schema[pos + 1:pos + 1] = [
        # RFC: start-migrate-incoming
        {"name": "start-migrate-incoming", "ret-type": "0",
         "meta-type": "command", "arg-type": T_URI_ARGS},
        # proposal: query-mirror-vcpus, query-migration-helper
        {"name": "query-mirror-vcpus", "ret-type": "[%s]" % T_MIRROR_VCPU,
         "meta-type": "command", "arg-type": "0"},
        {"name": "query-migration-helper", "ret-type": T_HELPER_INFO,
         "meta-type": "command", "arg-type": "0"},
    ]
    pos = next(i for i, e in enumerate(schema) if e["name"] == "MIGRATION")
    schema.insert(pos + 1, {"name": "MIGRATION_HELPER", "meta-type": "event",
                            "arg-type": T_HELPER_INFO})
    schema.extend([
        # migrate-incoming's arguments (the contract: start-migrate-incoming
        # takes them): uri and exit-on-error
        {"name": T_URI_ARGS,
         "members": [{"name": "uri", "type": "str"},
                     {"name": "exit-on-error", "default": None, "type": "bool"}],
         "meta-type": "object"},
        {"name": T_MIRROR_VCPU,
         "members": [{"name": "cpu-index", "type": "int"},
                     {"name": "thread-id", "type": "int"}],
         "meta-type": "object"},
        {"name": "[%s]" % T_MIRROR_VCPU, "element-type": T_MIRROR_VCPU,
         "meta-type": "array"},
        {"name": T_HELPER_STATUS,
         "members": [{"name": v}
                     for v in ("inactive", "booting", "ready", "failed")],
         "meta-type": "enum",
         "values": ["inactive", "booting", "ready", "failed"]},
        {"name": T_HELPER_INFO,
         "members": [{"name": "status", "type": T_HELPER_STATUS},
                     {"name": "transport-key", "default": None,
                      "type": "bool"},
                     {"name": "error", "default": None, "type": "str"}],
         "meta-type": "object"},
    ])

    # proposal (contract version 2): the migration capability guest-assisted
    caps = reply_of(objs, "query-migrate-capabilities")
    assert "guest-assisted" not in [c["capability"] for c in caps]
    caps.append({"state": False, "capability": "guest-assisted"})
    enum = next(e for e in schema if e.get("meta-type") == "enum" and
                "mapped-ram" in e.get("values", []))
    enum["values"].append("guest-assisted")
    enum["members"].append({"name": "guest-assisted"})

    dump(os.path.join(data, "caps_10.0.0_x86_64+amdsev-mirror.replies"), objs)


if __name__ == "__main__":
    main()
