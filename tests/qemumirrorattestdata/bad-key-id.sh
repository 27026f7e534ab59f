#!/bin/sh
# an agent whose key identifier is not one
cat >/dev/null
printf '{"secret-header": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMw==", "secret": "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=", "key-id": "a key with spaces"}\n'
