#!/bin/sh
# an agent that dies by a signal (SIGUSR1)
cat >/dev/null
echo "about to die" >&2
kill -USR1 $$
