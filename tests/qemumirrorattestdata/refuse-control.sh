#!/bin/sh
# a refusal with control characters (an escape sequence, a line break that
# would forge a line, a tab, a backspace), a character that is not ASCII,
# and 300 characters more
cat >/dev/null
long=$(printf '%300s' '' | tr ' ' x)
printf '{"refused": "red \\u001b[31mALERT\\u001b[0m\\r\\nforged line\\tand\\b more \\u00e9 %s"}\n' "$long"
