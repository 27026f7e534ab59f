#!/bin/sh
# a guest owner who provisions another transport key
cat >/dev/null
printf '{"secret-header": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMw==", "secret": "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=", "key-id": "owner-key-2"}\n'
