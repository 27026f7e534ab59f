#!/bin/sh
# an agent whose reply and standard error carry markers: what of them
# reaches the debug log
cat >/dev/null
printf 'stderr-marker \033[1mbold\n' >&2
printf '{"reply-marker": "not for the log"}\n'
