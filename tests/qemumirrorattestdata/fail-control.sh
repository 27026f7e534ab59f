#!/bin/sh
# an agent that fails, its last line on standard error with an escape
# sequence and 300 characters more
cat >/dev/null
long=$(printf '%300s' '' | tr ' ' y)
printf 'first line\n\033[2Jcleared the screen %s\n' "$long" >&2
exit 4
