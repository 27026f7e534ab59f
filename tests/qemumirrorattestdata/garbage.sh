#!/bin/sh
# an agent whose output is not JSON
cat >/dev/null
echo "OK, here is your secret"
