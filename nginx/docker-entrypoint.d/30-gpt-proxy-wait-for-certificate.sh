#!/bin/sh
# gpt-proxy: waits for certd's first certificate before nginx starts.
#
# nginx refuses to start without the files its ssl_certificate directives name. certd writes a
# self-signed placeholder into CERT_DIR/live/ as its first act, but the two containers start in
# no guaranteed order; waiting here (up to NGINX_CERT_WAIT_SECONDS, default 300) turns a restart
# loop into one clear log line, and a clear error if certd never delivers.
set -eu

ME=$(basename "$0")
log() { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$ME: $*"; }

live="${CERT_DIR:-/etc/gpt-proxy/certs}/live"
limit=${NGINX_CERT_WAIT_SECONDS:-300}
case $limit in
  '' | *[!0-9]*)
    echo "$ME: error: NGINX_CERT_WAIT_SECONDS='$limit' is not valid: a whole number of seconds" >&2
    exit 1
    ;;
esac

waited=0
while [ ! -s "$live/fullchain.pem" ] || [ ! -s "$live/privkey.pem" ]; do
  if [ "$waited" -ge "$limit" ]; then
    echo "$ME: error: no certificate in $live after ${limit}s; certd writes one there first" \
      "(a self-signed placeholder): is it running, with the same CERT_DIR volume?" >&2
    exit 1
  fi
  [ "$waited" -gt 0 ] || log "waiting for $live/fullchain.pem and privkey.pem from certd"
  sleep 1
  waited=$((waited + 1))
done
log "certificate present in $live"
