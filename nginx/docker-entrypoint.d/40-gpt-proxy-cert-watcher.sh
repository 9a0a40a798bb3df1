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
# mismatched file fails it - before `nginx -s reload`. A pair that fails is logged and skipped
# until the files change again; the running nginx keeps serving the certificate it has.
set -u

ME=$(basename "$0")
log() { echo "$ME: $*"; }

live="${CERT_DIR:-/etc/gpt-proxy/certs}/live"
interval=${NGINX_CERT_WATCH_INTERVAL:-5}
nginx=${NGINX_BIN:-nginx}
conf=${NGINX_CONF:-/etc/nginx/nginx.conf}
case $interval in
  '' | 0 | *[!0-9]*)
    echo "$ME: error: NGINX_CERT_WATCH_INTERVAL='$interval' is not valid: whole seconds, at least 1" >&2
    exit 1
    ;;
esac

# cksum is POSIX (coreutils and busybox alike); a content hash also sees a same-size rewrite.
fingerprint() {
  cat "$live/fullchain.pem" "$live/privkey.pem" 2>/dev/null | cksum
}

watch_certificate() {
  log "watching $live/fullchain.pem and privkey.pem every ${interval}s"
  applied=$(fingerprint)
  pending=''
  rejected=''
  while :; do
    sleep "$interval"
    current=$(fingerprint)
    if [ "$current" = "$applied" ] || [ "$current" = "$rejected" ]; then
      pending=''
      continue
    fi
    if [ "$current" != "$pending" ]; then
      pending=$current # let it settle for one more interval
      continue
    fi
    pending=''
    if ! "$nginx" -q -t -c "$conf"; then
      rejected=$current
      log "certificate changed, but the configuration test failed (see above): not reloading;" \
        "nginx keeps serving the certificate it has"
    elif "$nginx" -c "$conf" -s reload; then
      applied=$current
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
