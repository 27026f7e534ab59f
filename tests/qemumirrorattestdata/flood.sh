#!/bin/sh
# an agent that writes more than libvirt reads, and then waits
cat >/dev/null
head -c 2000000 /dev/zero | tr '\0' x
exec sleep 60
