#!/bin/sh
# an agent that fails
cat >/dev/null
echo "connecting to the key broker" >&2
echo "cannot reach the guest owner's key broker" >&2
exit 3
