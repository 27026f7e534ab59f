#!/bin/sh
# an agent whose packet header has the wrong size
cat >/dev/null
printf '{"secret-header": "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=", "secret": "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=", "key-id": "owner-key-1"}\n'
