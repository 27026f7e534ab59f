#!/bin/sh
# a wrapper that does not exec: it waits for its child, a shell that
# sleeps and then "completes the exchange" (writes a marker). Its process
# IDs and its process group go to the directory the request names ("dir").
req=$(cat)
dir=$(printf '%s' "$req" | sed -n 's/.*"dir":"\([^"]*\)".*/\1/p')
sh -c 'echo $$ > "$1/child.pid.new" && mv "$1/child.pid.new" "$1/child.pid"; sleep 60; touch "$1/completed"' sh "$dir" &
cut -d' ' -f5 /proc/$$/stat > "$dir/pgid"
echo $$ > "$dir/wrapper.pid.new" && mv "$dir/wrapper.pid.new" "$dir/wrapper.pid"
wait
touch "$dir/wrapper-completed"
printf '{}\n'
