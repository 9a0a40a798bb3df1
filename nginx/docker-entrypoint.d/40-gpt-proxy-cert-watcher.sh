#!/bin/sh
# gpt-proxy: reloads nginx gracefully when certd puts a new certificate in CERT_DIR/live/.
#
# Run by the image's entrypoint, it starts its loop in the background and returns, so the
# entrypoint goes on to exec nginx; the loop then lives next to nginx in the same container and
# needs no Docker socket, no shared PID namespace and nothing from certd but the files. (The tests
# run `40-gpt-proxy-cert-watcher.sh run` in the foreground.)
#
# Every NGINX_CERT_WATCH_INTERVAL seconds (default 5) it fingerprints fullchain.pem + privkey.pem.
# A change is acted on once it has held for one more interval, since certd renames the two files
# one after the other. Then `nginx -t` must pass - it loads the new pair, so a broken or
# mismatched file fails it - before `nginx -s reload`. A pair that fails is logged, and the
# running nginx keeps serving the certificate it has. The test is tried again on the same pair
# after NGINX_CERT_RETRY_INTERVAL seconds (default 300), then twice as long each time up to an
# hour: a failure may pass (a full disk, a file-descriptor limit), and certd will not write the
# pair again for weeks while the certificate nginx serves runs out (its expiry alert reads the
# files).
set -u

ME=$(basename "$0")
log() { echo "$ME: $*"; }

live="${CERT_DIR:-/etc/gpt-proxy/certs}/live"
interval=${NGINX_CERT_WATCH_INTERVAL:-5}
retry=${NGINX_CERT_RETRY_INTERVAL:-300}
nginx=${NGINX_BIN:-nginx}
conf=${NGINX_CONF:-/etc/nginx/nginx.conf}
seconds() {
  case $2 in
    '' | 0 | *[!0-9]*)
      echo "$ME: error: $1='$2' is not valid: whole seconds, at least 1" >&2
      exit 1
      ;;
  esac
}
seconds NGINX_CERT_WATCH_INTERVAL "$interval"
seconds NGINX_CERT_RETRY_INTERVAL "$retry"

# cksum is POSIX (coreutils and busybox alike); a content hash also sees a same-size rewrite.
fingerprint() {
  cat "$live/fullchain.pem" "$live/privkey.pem" 2>/dev/null | cksum
}

watch_certificate() {
  log "watching $live/fullchain.pem and privkey.pem every ${interval}s"
  applied=$(fingerprint)
  pending=''
  rejected=''
  backoff=$retry
  waited=0
  while :; do
    sleep "$interval"
    current=$(fingerprint)
    if [ "$current" = "$applied" ]; then
      pending=''
      continue
    fi
    if [ "$current" = "$rejected" ]; then
      pending=''
      waited=$((waited + interval))
      [ "$waited" -lt "$backoff" ] && continue
      log "testing again the certificate rejected ${waited}s ago"
    elif [ "$current" != "$pending" ]; then
      pending=$current # let it settle for one more interval
      continue
    else
      pending=''
      backoff=$retry # a new pair
    fi
    if ! "$nginx" -q -t -c "$conf"; then
      if [ "$current" = "$rejected" ]; then
        backoff=$((backoff * 2))
        [ "$backoff" -gt 3600 ] && backoff=3600
      fi
      rejected=$current
      waited=0
      log "certificate changed, but the configuration test failed (see above): not reloading;" \
        "nginx keeps serving the certificate it has; testing it again in ${backoff}s"
    elif "$nginx" -c "$conf" -s reload; then
      applied=$current
      rejected=''
      log "certificate changed: configuration test passed, nginx reloaded"
    else
      log "certificate changed, but signalling nginx failed; retrying"
    fi
  done
}

if [ "${1:-}" = run ]; then
  watch_certificate
else
  "$0" run &
  log "started in the background (pid $!)"
fi
