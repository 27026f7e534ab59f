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
#   - start-migrate-incoming takes migrate-incoming's arguments: also
#     "*exit-on-error": bool
#   - query-mirror-vcpus -> [{"cpu-index": int, "thread-id": int}]
#   - query-migration-helper -> {"status": MigrationHelperStatus,
#                                "*transport-key": bool,
#                                "*transport-key-id": str, "*error": str}
#   - event MIGRATION_HELPER, with the same data
#   - enum MigrationHelperStatus: inactive, booting, ready, failed
#   - contract version 2: the migration capability guest-assisted
#     (MigrationCapability, query-migrate-capabilities)
#   - contract version 3: query-migration-helper's "*nonce" and
#     "*key-confirmation"; migrate-set-parameters' "*helper-peer-nonce" and
#     "*helper-peer-confirmation"
#
# What is added is not written here: it is read from
# e2e/standin/qapi-additions.json, the file the QEMU stand-in reads too, so
# that the fixture and the stand-in cannot drift apart (checks/test_standin.py
# compares them).
#
# Usage: tooling/derive-mirror-caps.py LIBVIRT_SRC_DIR
# (writes the .replies file in place, in the format of libvirt's
# scripts/qemu-replies-tool.py, so that its check passes)

import json
import os
import re
import sys

ADDITIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))),
                         "e2e", "standin", "qapi-additions.json")
# numbers for the types of the additions ("$Name"): QEMU masks type names as
# numbers, and this schema's largest is 802
FIRST_TYPE = 9000


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

    with open(ADDITIONS) as f:
        adds = json.load(f)

    for opt in reply_of(objs, "query-command-line-options"):
        if opt["option"] == "smp-opts":
            names = [p["name"] for p in opt["parameters"]]
            for add in reversed(adds["smp-opts"]):
                assert add["parameter"]["name"] not in names
                opt["parameters"].insert(0, add["parameter"])
            break
    else:
        raise SystemExit("no smp-opts")

    schema = reply_of(objs, "query-qmp-schema")
    names = {e["name"] for e in schema}
    types = {}
    for add in adds["schema"]:
        name = add["entry"]["name"]
        if name.startswith("$"):
            types[name] = str(FIRST_TYPE + len(types))

    def number(obj):
        if isinstance(obj, list):
            return [number(o) for o in obj]
        if isinstance(obj, dict):
            return {k: number(v) for k, v in obj.items()}
        if isinstance(obj, str):
            if obj in types:
                return types[obj]
            if obj.startswith("[$") and obj.endswith("]") and obj[1:-1] in types:
                return "[%s]" % types[obj[1:-1]]
        return obj

    tail = []
    for add in adds["schema"]:
        entry = number(add["entry"])
        assert entry["name"] not in names, entry["name"]
        if "after" in add:
            pos = next(i for i, e in enumerate(schema) if e["name"] == add["after"])
            schema.insert(pos + 1, entry)
        else:
            tail.append(entry)
        names.add(entry["name"])
    schema.extend(tail)

    for add in adds["enum-values"]:
        enums = [e for e in schema if e["meta-type"] == "enum"
                 and add["of"] in e["values"]]
        assert len(enums) == 1, add
        for value in add["values"]:
            assert value not in enums[0]["values"]
            enums[0]["values"].append(value)
            if "members" in enums[0]:
                enums[0]["members"].append({"name": value})

    for add in adds["arg-members"]:
        cmd = next(e for e in schema if e["name"] == add["of"])
        args = next(e for e in schema if e["name"] == cmd["arg-type"])
        for member in add["members"]:
            assert member["name"] not in [m["name"] for m in args["members"]]
            args["members"].append(member)

    caps = reply_of(objs, "query-migrate-capabilities")
    for add in adds["migrate-capabilities"]:
        assert add["capability"] not in [c["capability"] for c in caps]
        caps.append({"state": False, "capability": add["capability"]})

    dump(os.path.join(data, "caps_10.0.0_x86_64+amdsev-mirror.replies"), objs)


if __name__ == "__main__":
    main()
