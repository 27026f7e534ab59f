#!/bin/sh
# an agent that tells, as its refusal, the names of the variables of the
# environment libvirt gave it, and LC_ALL
cat >/dev/null
names=$(tr '\0' '\n' < /proc/$$/environ | sed 's/=.*//' | sort | tr '\n' ' ')
printf '{"refused": "%sLC_ALL=%s"}\n' "$names" "$LC_ALL"
