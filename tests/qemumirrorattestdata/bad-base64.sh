#!/bin/sh
# an agent whose secret is not base64
cat >/dev/null
printf '{"secret-header": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMw==", "secret": "not*base64!", "key-id": "owner-key-1"}\n'
