#!/bin/sh
# an agent that answers and exits, and leaves a child running that holds
# none of its pipes. Its process IDs go to the directory the request names.
req=$(cat)
dir=$(printf '%s' "$req" | sed -n 's/.*"dir":"\([^"]*\)".*/\1/p')
sh -c 'echo $$ > "$1/child.pid.new" && mv "$1/child.pid.new" "$1/child.pid"; sleep 60; touch "$1/completed"' sh "$dir" </dev/null >/dev/null 2>&1 &
cut -d' ' -f5 /proc/$$/stat > "$dir/pgid"
while [ ! -e "$dir/child.pid" ]; do sleep 0.1; done
printf '{}\n'
