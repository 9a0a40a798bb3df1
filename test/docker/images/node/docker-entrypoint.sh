#!/bin/sh
# Entrypoint of the test bed's node stand-in, as the official image documents it: if the first
# argument is a flag (`-e ...`), is no command on the PATH, or is a file that is not executable
# (`app.js`), the arguments go to node; otherwise they are executed as given.
set -e

if [ "${1#-}" != "$1" ] || [ -z "$(command -v "$1" || true)" ] || { [ -f "$1" ] && ! [ -x "$1" ]; }; then
  set -- node "$@"
fi

exec "$@"
