#!/bin/sh
# Entrypoint of the test bed's nginx stand-in, with the official image's documented behaviour:
# when the command is nginx (or nginx-debug), every file in /docker-entrypoint.d/ is taken in
# version order: executable *.sh scripts are run, executable *.envsh files are sourced (so they can
# export variables for the scripts after them), anything else is skipped with a note. A script that
# fails stops the container. Then the command is executed (nginx as PID 1, master as root).
# NGINX_ENTRYPOINT_QUIET_LOGS (any value) silences the entrypoint's own lines.
set -e

entrypoint_log() {
  if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
    echo "$@"
  fi
}

if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
  if find /docker-entrypoint.d/ -mindepth 1 -maxdepth 1 -type f -print -quit 2>/dev/null | read -r _; then
    entrypoint_log "$0: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"
    entrypoint_log "$0: Looking for shell scripts in /docker-entrypoint.d/"
    find /docker-entrypoint.d/ -follow -type f -print | sort -V | while read -r f; do
      case "$f" in
        *.envsh)
          if [ -x "$f" ]; then
            entrypoint_log "$0: Sourcing $f"
            # shellcheck disable=SC1090
            . "$f"
          else
            entrypoint_log "$0: Ignoring $f, not executable"
          fi
          ;;
        *.sh)
          if [ -x "$f" ]; then
            entrypoint_log "$0: Launching $f"
            "$f"
          else
            entrypoint_log "$0: Ignoring $f, not executable"
          fi
          ;;
        *) entrypoint_log "$0: Ignoring $f" ;;
      esac
    done
    entrypoint_log "$0: Configuration complete; ready for start up"
  else
    entrypoint_log "$0: No files found in /docker-entrypoint.d/, skipping configuration"
  fi
fi

exec "$@"
