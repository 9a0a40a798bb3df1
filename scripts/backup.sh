#!/bin/sh
# gpt-proxy-backup: database backups of the appliance, run inside its backup container (the
# Postgres image, so pg_dump and pg_restore match the server's major version). The Pulumi program
# uploads this file as /usr/local/bin/gpt-proxy-backup; docs/runbook.md has the procedures.
#
#   gpt-proxy-backup loop            the container's command: a backup whenever BACKUP_SCHEDULE fires
#   gpt-proxy-backup now [LABEL]     one backup now; with LABEL (e.g. pre-restore) it is named
#                                    LABEL-TIME.dump and kept out of the retention count
#   gpt-proxy-backup list            the backups, oldest first (name, bytes)
#   gpt-proxy-backup restore NAME|-  replaces the database with backup NAME (or a dump on stdin)
#   gpt-proxy-backup matches 'CRON' MINUTE HOUR DAY MONTH WEEKDAY    exit 0 if CRON fires then
#   gpt-proxy-backup health          the container's health check: fails after a failed backup
#
# Environment: PGHOST PGPORT PGUSER PGDATABASE, PGPASSFILE or PGPASSWORD (libpq's own variables;
# the Pulumi program gives PGPASSFILE, so the password is in no environment),
# BACKUP_DIR (/backups), BACKUP_SCHEDULE (five-field cron in UTC, a @macro, or `off`),
# BACKUP_RETENTION (how many scheduled backups to keep, default 7),
# BACKUP_FAILED_MARK (the failed-backup mark, default BACKUP_DIR/.last-backup-failed).
#
# A backup is `pg_dump -Fc` written to a hidden partial file, read back in full by pg_restore
# (a truncated or corrupt dump is never kept), then renamed to gpt-proxy-YYYYMMDDTHHMMSSZ.dump;
# only then are the oldest beyond BACKUP_RETENTION removed, so a failing backup never costs a good one.
# Scheduled dumps of an earlier database cluster (a stack destroyed and deployed again onto the
# kept volume) are first renamed previous-database-TIME.dump, so retention never removes them.
# A restore runs the whole dump in one transaction after dropping the public schema, so the database
# ends up exactly as backed up, or unchanged if anything fails.
set -u
umask 077
export LC_ALL=C TZ=UTC

BACKUP_DIR=${BACKUP_DIR:-/backups}
BACKUP_RETENTION=${BACKUP_RETENTION:-7}
BACKUP_SCHEDULE=${BACKUP_SCHEDULE:-off}
# In the volume, not the container's /tmp: a `pulumi up` that replaces the container must not make
# it healthy again while the last backup failed.
FAILED_MARK=${BACKUP_FAILED_MARK:-$BACKUP_DIR/.last-backup-failed}
# The Postgres cluster (system identifier) the scheduled dumps here belong to: the volume outlives
# `pulumi destroy`, and a later `pulumi up` adopts it with a new, empty database.
CLUSTER_FILE=$BACKUP_DIR/.scheduled-cluster

log() { printf '%s gpt-proxy-backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() { log "$*" >&2; exit 1; }

# --- schedule ------------------------------------------------------------------------------------

# field_matches SPEC VALUE MIN MAX: VALUE is in the comma list SPEC (checked by cron_valid).
field_matches() {
  _fm_value=$2
  _fm_saved_ifs=$IFS
  IFS=,
  set -f
  for _fm_part in $1; do
    _fm_step=1
    case $_fm_part in */*) _fm_step=${_fm_part#*/} _fm_part=${_fm_part%%/*} ;; esac
    case $_fm_part in
      '*') _fm_lo=$3 _fm_hi=$4 ;;
      *-*) _fm_lo=${_fm_part%-*} _fm_hi=${_fm_part#*-} ;;
      *) _fm_lo=$_fm_part _fm_hi=$_fm_part ;;
    esac
    if [ "$_fm_value" -ge "$_fm_lo" ] && [ "$_fm_value" -le "$_fm_hi" ] &&
      [ $(((_fm_value - _fm_lo) % _fm_step)) -eq 0 ]; then
      IFS=$_fm_saved_ifs
      set +f
      return 0
    fi
  done
  IFS=$_fm_saved_ifs
  set +f
  return 1
}

expand_macro() {
  case $1 in
    @hourly) echo '0 * * * *' ;;
    @daily | @midnight) echo '0 0 * * *' ;;
    @weekly) echo '0 0 * * 0' ;;
    @monthly) echo '0 0 1 * *' ;;
    @yearly | @annually) echo '0 0 1 1 *' ;;
    *) printf '%s\n' "$1" ;;
  esac
}

# cron_valid EXPR: five fields of digits, `*`, `,`, `-` and `/` (the Pulumi program checks ranges).
cron_valid() {
  set -f
  set -- $(expand_macro "$1")
  set +f
  [ $# -eq 5 ] || return 1
  for _cv_field in "$@"; do
    case $_cv_field in '' | *[!0-9*,/-]*) return 1 ;; esac
  done
  return 0
}

# cron_matches EXPR MINUTE HOUR DAY MONTH WEEKDAY (numbers without leading zeros, weekday 0-6).
cron_matches() {
  _cm_minute=$2 _cm_hour=$3 _cm_day=$4 _cm_month=$5 _cm_weekday=$6
  set -f
  set -- $(expand_macro "$1")
  set +f
  field_matches "$1" "$_cm_minute" 0 59 || return 1
  field_matches "$2" "$_cm_hour" 0 23 || return 1
  field_matches "$4" "$_cm_month" 1 12 || return 1
  _cm_dom=0 _cm_dow=0
  field_matches "$3" "$_cm_day" 1 31 && _cm_dom=1
  if field_matches "$5" "$_cm_weekday" 0 7; then
    _cm_dow=1
  elif [ "$_cm_weekday" -eq 0 ] && field_matches "$5" 7 0 7; then
    _cm_dow=1
  fi
  # Vixie cron: when both day fields are restricted (neither starts with *), either may match.
  _cm_either=1
  case $3 in '*'*) _cm_either=0 ;; esac
  case $5 in '*'*) _cm_either=0 ;; esac
  if [ $_cm_either -eq 1 ]; then
    [ $_cm_dom -eq 1 ] || [ $_cm_dow -eq 1 ]
  else
    [ $_cm_dom -eq 1 ] && [ $_cm_dow -eq 1 ]
  fi
}

# The current minute as "MINUTE HOUR DAY MONTH WEEKDAY", without leading zeros.
now_fields() {
  set -- $(date -u '+%M %H %d %m %w')
  printf '%s %s %s %s %s\n' "${1#0}" "${2#0}" "${3#0}" "${4#0}" "$5"
}

# --- backups -------------------------------------------------------------------------------------

# prune: remove the oldest scheduled backups beyond BACKUP_RETENTION (names sort by time).
prune() {
  set -- "$BACKUP_DIR"/gpt-proxy-[0-9]*.dump
  [ -e "$1" ] || return 0
  _pr_excess=$(($# - BACKUP_RETENTION))
  while [ "$_pr_excess" -gt 0 ]; do
    rm -f -- "$1" && log "removed $(basename "$1") (retention $BACKUP_RETENTION)"
    shift
    _pr_excess=$((_pr_excess - 1))
  done
}

# adopt_cluster ID: the scheduled dumps here are of another cluster than ID (the stack was destroyed
# and deployed again): rename them to previous-database-TIME.dump, out of the retention count and
# of --latest, so the new database's dumps neither prune them nor shadow them. Then record ID.
adopt_cluster() {
  _ac_old=$(cat "$CLUSTER_FILE" 2>/dev/null) || _ac_old=
  [ "$_ac_old" = "$1" ] && return 0
  if [ -n "$_ac_old" ]; then
    for _ac_file in "$BACKUP_DIR"/gpt-proxy-[0-9]*.dump; do
      [ -e "$_ac_file" ] || continue
      _ac_base=$(basename "$_ac_file")
      mv -- "$_ac_file" "$BACKUP_DIR/previous-database-${_ac_base#gpt-proxy-}" || return 1
    done
    log "a new database (cluster $1, was $_ac_old): earlier scheduled backups kept as previous-database-*.dump"
  fi
  printf '%s\n' "$1" >"$CLUSTER_FILE"
}

backup_now() {
  _bn_label=${1:-gpt-proxy}
  case $_bn_label in '' | *[!a-z0-9-]*) die "label: use a-z, 0-9 and -" ;; esac
  _bn_name="$_bn_label-$(date -u +%Y%m%dT%H%M%SZ).dump"
  _bn_partial="$BACKUP_DIR/.$_bn_name.$$.partial"
  _bn_cluster=$(psql --no-psqlrc --no-password --tuples-only --no-align \
    --command='SELECT system_identifier FROM pg_control_system()') || _bn_cluster=
  if [ -n "$_bn_cluster" ] &&
    pg_dump --format=custom --no-password --file="$_bn_partial" &&
    pg_restore --file=/dev/null "$_bn_partial" &&
    { [ "$_bn_label" != gpt-proxy ] || adopt_cluster "$_bn_cluster"; }; then
    mv -f -- "$_bn_partial" "$BACKUP_DIR/$_bn_name"
    log "backup written: $_bn_name ($(wc -c <"$BACKUP_DIR/$_bn_name") bytes)"
    [ "$_bn_label" = gpt-proxy ] && prune
    rm -f -- "$FAILED_MARK"
    return 0
  fi
  rm -f -- "$_bn_partial"
  log "backup FAILED: $_bn_name not written" >&2
  date -u +%Y-%m-%dT%H:%M:%SZ >"$FAILED_MARK"
  return 1
}

list_backups() {
  for _lb_file in "$BACKUP_DIR"/*.dump; do
    [ -e "$_lb_file" ] || continue
    printf '%s %s\n' "$(basename "$_lb_file")" "$(wc -c <"$_lb_file")"
  done
}

# restore NAME|-: one transaction that drops the public schema and replays the dump; it commits
# only if pg_restore produced the whole dump and every statement succeeded.
restore() {
  case ${1:-} in
    '') die "restore: name a backup (gpt-proxy-backup list) or - for stdin" ;;
    -) ;;
    */* | .*) die "restore: give a backup's name as 'list' shows it, not a path" ;;
    *) [ -f "$BACKUP_DIR/$1" ] || die "restore: no backup named $1 in $BACKUP_DIR" ;;
  esac
  _rs_status=$(mktemp)
  {
    printf 'BEGIN;\nSET client_min_messages = warning;\nDROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n'
    if [ "$1" = - ]; then
      pg_restore --no-owner --no-privileges --file=-
    else
      pg_restore --no-owner --no-privileges --file=- "$BACKUP_DIR/$1"
    fi
    if [ $? -eq 0 ]; then printf 'COMMIT;\n'; else echo failed >"$_rs_status"; fi
  } | psql --no-psqlrc --quiet --no-password --set=ON_ERROR_STOP=1 --output=/dev/null
  _rs_psql=$?
  _rs_failed=$(cat "$_rs_status")
  rm -f -- "$_rs_status"
  if [ "$_rs_psql" -ne 0 ] || [ -n "$_rs_failed" ]; then
    die "restore FAILED: the database is unchanged"
  fi
  log "restored $1 into database ${PGDATABASE:-}"
}

# loop: sleep to the start of each minute; back up when the schedule fires. `off`: idle, so the
# container stays available for `now` and `restore`.
# On SIGTERM a backup under way is finished (renamed, pruned) before the loop exits.
loop() {
  stopping=0
  trap 'stopping=1' TERM INT
  rm -f -- "$BACKUP_DIR"/.*.partial # left by a container stopped mid-backup
  if [ "$BACKUP_SCHEDULE" = off ]; then
    log "no schedule (backupSchedule off); manual backups only"
  else
    cron_valid "$BACKUP_SCHEDULE" || die "BACKUP_SCHEDULE: not a five-field cron expression"
    log "scheduled: '$BACKUP_SCHEDULE' (UTC), keeping $BACKUP_RETENTION"
    # A container started after a failed backup (replaced by a `pulumi up`, which waits for it to
    # be healthy) tries again at once: the cause may be what that deploy fixed (a password, say).
    if [ -e "$FAILED_MARK" ]; then
      log "the last backup failed at $(cat "$FAILED_MARK"): trying again now"
      backup_now || true
    fi
  fi
  while [ $stopping -eq 0 ]; do
    sleep $((60 - $(date -u +%s) % 60)) &
    sleeper=$!
    wait $sleeper
    [ $stopping -eq 0 ] && [ "$BACKUP_SCHEDULE" != off ] || continue
    if cron_matches "$BACKUP_SCHEDULE" $(now_fields); then backup_now || true; fi
  done
  kill "$sleeper" 2>/dev/null
  log "stopping"
}

case ${1:-} in
  loop) loop ;;
  now) backup_now "${2:-}" ;;
  list) list_backups ;;
  restore) restore "${2:-}" ;;
  matches)
    [ $# -eq 7 ] || die "usage: matches 'CRON' MINUTE HOUR DAY MONTH WEEKDAY"
    cron_valid "$2" || die "not a five-field cron expression: $2"
    cron_matches "$2" "$3" "$4" "$5" "$6" "$7"
    ;;
  health) [ ! -e "$FAILED_MARK" ] || die "last backup failed at $(cat "$FAILED_MARK")" ;;
  *) die "usage: gpt-proxy-backup loop|now [LABEL]|list|restore NAME|-|matches CRON M H D MON WD|health" ;;
esac
