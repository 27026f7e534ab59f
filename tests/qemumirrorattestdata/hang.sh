#!/bin/sh
# an agent that never answers
cat >/dev/null
exec sleep 60
