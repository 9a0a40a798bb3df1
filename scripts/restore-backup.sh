#!/bin/sh
# Restores a database backup into a stack, from the machine that runs `pulumi up` (or on the host):
# stops the proxy replicas, takes a `pre-restore` backup of the database as it is, restores, and
# starts the replicas again - also when the restore fails (the database is then unchanged), and when
# this script is interrupted (a dropped SSH session, Ctrl-C).
# `docker` must reach the stack's host: DOCKER_HOST=ssh://user@host, as `dockerHost` in the stack.
#
#   scripts/restore-backup.sh STACK --list            the backups in the stack's backups volume
#   scripts/restore-backup.sh STACK NAME              restore backup NAME (as --list shows it)
#   scripts/restore-backup.sh STACK --latest          restore the newest scheduled backup
#   scripts/restore-backup.sh STACK --file PATH       restore a dump on this machine (an off-site copy)
#   ... [--no-safety-backup]                          skip the pre-restore backup
#
# The work itself is `gpt-proxy-backup restore` inside the backup container (scripts/backup.sh),
# which already holds the database's address and password: none passes through here.
set -eu

die() {
  echo "restore-backup: $*" >&2
  exit 1
}

[ $# -ge 2 ] || die "usage: restore-backup.sh STACK --list|--latest|NAME|--file PATH [--no-safety-backup]"
stack=$1
what=$2
shift 2
file=
if [ "$what" = --file ]; then
  [ $# -ge 1 ] || die "--file needs a path"
  file=$1
  shift
  [ -f "$file" ] || die "no such file: $file"
fi
safety=yes
for arg in "$@"; do
  case $arg in
    --no-safety-backup) safety=no ;;
    *) die "unknown argument: $arg" ;;
  esac
done

case $stack in '' | *[!a-zA-Z0-9._-]*) die "not a stack name: $stack" ;; esac
prefix="gpt-proxy-$stack"
backup="$prefix-backup"
running=$(docker inspect --format '{{.State.Running}}' "$backup" 2>/dev/null) || running=missing
[ "$running" = true ] || die "container $backup is not running (is DOCKER_HOST set to the stack's host?)"

case $what in
  --list)
    docker exec "$backup" gpt-proxy-backup list
    exit 0
    ;;
  --latest)
    what=$(docker exec "$backup" gpt-proxy-backup list | awk '$1 ~ /^gpt-proxy-[0-9]/ { n = $1 } END { print n }')
    [ -n "$what" ] || die "no scheduled backup in $backup yet"
    ;;
  --file) ;;
  -*) die "unknown option: $what" ;;
esac

apps=$(docker ps --quiet --filter "label=gpt-proxy.stack=$prefix" --filter "label=gpt-proxy.service=app")
restart_apps() {
  if [ -n "$apps" ]; then
    # $apps unquoted: one word per container id.
    docker start $apps >/dev/null && echo "restore-backup: proxy replicas started again"
  fi
}
trap restart_apps EXIT
# dash (Debian's sh) runs no EXIT trap when an untrapped signal ends it: a dropped SSH session
# (HUP), a kill (TERM) or Ctrl-C (INT) would leave every replica stopped. As traps they exit
# with the usual 128+N, once the `docker exec` under way has ended. The signal ends that client,
# not the restore inside the container, which commits or rolls back on its own; the replicas
# started meanwhile wait for its one transaction (it holds the tables' locks).
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -n "$apps" ]; then
  echo "restore-backup: stopping the proxy replicas (they drain open requests first)"
  docker stop $apps >/dev/null
fi

if [ "$safety" = yes ]; then
  docker exec "$backup" gpt-proxy-backup now pre-restore || die "the pre-restore backup failed; nothing restored"
fi
if [ -n "$file" ]; then
  docker exec -i "$backup" gpt-proxy-backup restore - <"$file"
else
  docker exec "$backup" gpt-proxy-backup restore "$what"
fi
