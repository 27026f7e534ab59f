#!/bin/sh
# an agent that closes its output and never exits
cat >/dev/null
exec >&- 2>&-
exec sleep 60
