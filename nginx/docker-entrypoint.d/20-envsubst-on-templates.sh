#!/bin/sh
# gpt-proxy: the one render step for the nginx templates, run by the container and the tests.
#
# It carries the name of the official nginx image's stock script on purpose: mounted at
# /docker-entrypoint.d/20-envsubst-on-templates.sh it replaces that script, so the image renders
# the templates exactly once, with the code the tests run. Like the stock script it renders
# NGINX_ENVSUBST_TEMPLATE_DIR/**/NAME.conf.template to NGINX_ENVSUBST_OUTPUT_DIR/**/NAME.conf with
# envsubst. Unlike it, it fills in defaults, checks every value (a stray ";" or "{" would inject
# configuration), derives a few values, substitutes only the variables listed in VARS (nginx's own
# $variables are never touched) and owns the output directory: stale *.conf files there, such as
# the image's default.conf, are removed first.
set -eu

ME=$(basename "$0")
log() { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$ME: $*"; }
die() {
  echo "$ME: error: $*" >&2
  exit 1
}

# --- inputs and their defaults in the container (nginx/README.md lists them)
: "${APP_UPSTREAM:=app:8000}"
: "${CERT_DIR:=/etc/gpt-proxy/certs}"
: "${ACME_WEBROOT:=/var/www/acme}"
: "${MAX_BODY_BYTES:=20971520}"
: "${DOMAIN:=}"
: "${NGINX_LISTEN_ADDRESS:=0.0.0.0}"
: "${NGINX_HTTP_PORT:=80}"
: "${NGINX_HTTPS_PORT:=443}"
: "${NGINX_PUBLIC_HTTPS_PORT:=443}"
: "${NGINX_STATUS_PORT:=8081}"
: "${NGINX_RESOLVER:=}"
: "${NGINX_RESOLVER_VALID:=5s}"
: "${NGINX_ADMIN_ALLOW_CIDRS:=}"
: "${NGINX_WORKER_PROCESSES:=auto}"
: "${NGINX_WORKER_SHUTDOWN_TIMEOUT:=600s}"
: "${NGINX_PID_FILE:=/var/run/nginx.pid}"
: "${NGINX_ACCESS_LOG:=/var/log/nginx/access.log}"
: "${NGINX_TEMP_DIR:=/var/cache/nginx}"

# Docker's embedded DNS (127.0.0.11) is what /etc/resolv.conf names inside a container network.
if [ -z "$NGINX_RESOLVER" ] && [ -r /etc/resolv.conf ]; then
  NGINX_RESOLVER=$(awk '$1 == "nameserver" { printf "%s%s", sep, ($2 ~ /:/ ? "[" $2 "]" : $2); sep = " " }' /etc/resolv.conf)
fi
[ -n "$NGINX_RESOLVER" ] || die "NGINX_RESOLVER is empty and /etc/resolv.conf names no nameserver; set it, e.g. NGINX_RESOLVER=127.0.0.11"

# --- checks: each value must match an extended regular expression, on one line
NL='
'
need() { # need NAME ERE HINT
  eval "value=\${$1}"
  case $value in *"$NL"*) die "$1 must be a single line" ;; esac
  printf '%s\n' "$value" | grep -Eq "^($2)\$" || die "$1='$value' is not valid: $3"
}
port() { # port NAME
  need "$1" '[0-9]{1,5}' 'a TCP port number'
  eval "value=\${$1}"
  [ "$value" -ge 1 ] && [ "$value" -le 65535 ] || die "$1='$value' is not valid: a TCP port number (1-65535)"
}
HOST_ERE='[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?'
PATH_ERE='/[A-Za-z0-9._/-]*'
DURATION_ERE='[0-9]+(ms|s|m|h)?'

need APP_UPSTREAM "$HOST_ERE:[0-9]{1,5}" 'the app replicas as NAME:PORT, e.g. app:8000'
need CERT_DIR "$PATH_ERE" 'an absolute path'
need ACME_WEBROOT "$PATH_ERE" 'an absolute path'
need MAX_BODY_BYTES '[1-9][0-9]*' 'a number of bytes, e.g. 20971520'
need DOMAIN "($HOST_ERE)?" 'a host name'
need NGINX_LISTEN_ADDRESS '[0-9.]+|\[[0-9A-Fa-f:.]+\]' 'an IPv4 address or [IPv6 address], e.g. 0.0.0.0'
port NGINX_HTTP_PORT
port NGINX_HTTPS_PORT
port NGINX_PUBLIC_HTTPS_PORT
port NGINX_STATUS_PORT
need NGINX_RESOLVER "(\[[0-9A-Fa-f:.]+\]|$HOST_ERE)(:[0-9]{1,5})?( +(\[[0-9A-Fa-f:.]+\]|$HOST_ERE)(:[0-9]{1,5})?)*" \
  'DNS servers as ADDRESS[:PORT], separated by spaces, e.g. 127.0.0.11'
need NGINX_RESOLVER_VALID "$DURATION_ERE" 'an nginx time, e.g. 5s'
need NGINX_ADMIN_ALLOW_CIDRS '[0-9A-Fa-f.:/, ]*' 'networks in CIDR notation separated by commas, e.g. 10.0.0.0/8,192.168.1.0/24'
need NGINX_WORKER_PROCESSES 'auto|[1-9][0-9]*' 'auto or a number'
need NGINX_WORKER_SHUTDOWN_TIMEOUT "$DURATION_ERE" 'an nginx time, e.g. 600s'
need NGINX_PID_FILE "$PATH_ERE" 'an absolute path'
need NGINX_ACCESS_LOG "off|$PATH_ERE" 'an absolute path or off'
need NGINX_TEMP_DIR "$PATH_ERE" 'an absolute path'

# --- derived values
# Where the 308 on port 80 points: the configured domain, else the Host the client asked for,
# with the published HTTPS port unless it is 443.
host_variable='$host'
redirect_host=${DOMAIN:-$host_variable}
if [ "$NGINX_PUBLIC_HTTPS_PORT" = 443 ]; then
  NGINX_REDIRECT_AUTHORITY=$redirect_host
else
  NGINX_REDIRECT_AUTHORITY="$redirect_host:$NGINX_PUBLIC_HTTPS_PORT"
fi

NGINX_ADMIN_ACCESS_RULES='# no admin allow-list (NGINX_ADMIN_ALLOW_CIDRS is empty)'
admin_networks=$(printf '%s' "$NGINX_ADMIN_ALLOW_CIDRS" | tr ',' ' ')
if [ -n "$(printf '%s' "$admin_networks" | tr -d ' ')" ]; then
  NGINX_ADMIN_ACCESS_RULES=''
  for network in $admin_networks; do
    NGINX_ADMIN_ACCESS_RULES="${NGINX_ADMIN_ACCESS_RULES}allow $network; "
  done
  NGINX_ADMIN_ACCESS_RULES="${NGINX_ADMIN_ACCESS_RULES}deny all;"
fi

# HTTP/2: nginx >= 1.25.1 has the `http2 on;` directive and warns about `listen ... http2`, which
# is all that older versions (Debian's 1.22 in the tests) understand.
version_at_least() { # version_at_least HAVE WANT, dotted numbers; an empty HAVE is 0
  awk -v have="$1" -v want="$2" 'BEGIN {
    split(have, h, "."); split(want, w, ".")
    for (i = 1; i <= 3; i++) if (h[i] + 0 != w[i] + 0) exit !(h[i] + 0 > w[i] + 0)
    exit 0
  }'
}
nginx_version=$("${NGINX_BIN:-nginx}" -v 2>&1 | sed -n 's|^nginx version: nginx/\([0-9][0-9.]*\).*|\1|p') || true
if version_at_least "$nginx_version" 1.25.1; then
  NGINX_HTTP2_LISTEN_FLAG=''
  NGINX_HTTP2_DIRECTIVE='http2 on;'
else
  NGINX_HTTP2_LISTEN_FLAG=' http2'
  NGINX_HTTP2_DIRECTIVE="# HTTP/2 is switched on in the listen directive (nginx ${nginx_version:-version unknown})"
fi

# --- render
VARS='APP_UPSTREAM CERT_DIR ACME_WEBROOT MAX_BODY_BYTES NGINX_LISTEN_ADDRESS NGINX_HTTP_PORT
  NGINX_HTTPS_PORT NGINX_PUBLIC_HTTPS_PORT NGINX_STATUS_PORT NGINX_RESOLVER NGINX_RESOLVER_VALID
  NGINX_WORKER_PROCESSES NGINX_WORKER_SHUTDOWN_TIMEOUT NGINX_PID_FILE NGINX_ACCESS_LOG NGINX_TEMP_DIR
  NGINX_REDIRECT_AUTHORITY NGINX_ADMIN_ACCESS_RULES NGINX_HTTP2_LISTEN_FLAG NGINX_HTTP2_DIRECTIVE'
# shellcheck disable=SC2086 # one name per word
export $VARS
shell_format=$(for name in $VARS; do printf '${%s} ' "$name"; done)

template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
template_dir=${template_dir%/}
output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
output_dir=${output_dir%/}
[ -d "$template_dir" ] || die "no template directory $template_dir"
command -v envsubst >/dev/null 2>&1 || die "envsubst is missing (Debian/Alpine package: gettext-base / gettext)"
[ ! -e "$output_dir/nginx.conf" ] || die "refusing to clean $output_dir: it holds nginx.conf"
mkdir -p "$output_dir"
find "$output_dir" -type f -name '*.conf' -exec rm -f {} +

find "$template_dir" -follow -type f -name '*.conf.template' | sort | while IFS= read -r template; do
  relative=${template#"$template_dir"/}
  output="$output_dir/${relative%.template}"
  mkdir -p "$(dirname "$output")"
  envsubst "$shell_format" <"$template" >"$output"
  if grep -nE '\$\{[A-Z_][A-Z0-9_]*\}' "$output" >&2; then
    die "$relative uses a variable this script does not set (see VARS)"
  fi
  log "rendered $template to $output"
done

log "app $APP_UPSTREAM via resolver $NGINX_RESOLVER (valid $NGINX_RESOLVER_VALID);" \
  "admin allow-list: ${NGINX_ADMIN_ALLOW_CIDRS:-off}; body limit $MAX_BODY_BYTES bytes"
