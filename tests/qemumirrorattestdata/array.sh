#!/bin/sh
# an agent whose output is a JSON array
cat >/dev/null
echo '[]'
