#!/bin/sh
# a guest owner who refuses the measurement
cat >/dev/null
printf '{"refused": "the launch measurement does not match the expected firmware"}\n'
