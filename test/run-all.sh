#!/usr/bin/env bash
# The one command from a fresh Debian/Ubuntu machine (root, or a user with sudo)
# to a full test run: system packages, Node 24, npm ci, build, typecheck, lint, tests.
#
#   bash test/run-all.sh
#
# Environment:
#   GPT_PROXY_CACHE   where a private Node is installed (default ~/.cache/gpt-proxy)
#   SKIP_APT=1        do not check/install Debian packages
set -euo pipefail

# Debian packages the tests need (servers are started by the tests themselves).
APT_PACKAGES="postgresql redis-server nginx pebble openssl ca-certificates git curl jq procps gettext-base chromium prometheus prometheus-nginx-exporter docker.io debootstrap"
# Services that packages above may start on install (package:service,...); we run our own instances.
APT_SERVICES="postgresql:postgresql redis-server:redis-server nginx:nginx prometheus:prometheus
  prometheus-nginx-exporter:prometheus-nginx-exporter docker.io:docker.socket,docker,containerd"

NODE_VERSION="24.21.0"
NODE_DIR="${GPT_PROXY_CACHE:-$HOME/.cache/gpt-proxy}/node-${NODE_VERSION}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

banner() {
  printf '\n==== %s ====\n' "$*"
}

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  SUDO=()
fi

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0

apt_install() {
  if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
    echo "error: need root or sudo to install: $*" >&2
    exit 1
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then
    "${SUDO[@]}" apt-get update -q
    APT_UPDATED=1
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@"
}

pkg_installed() {
  local out
  out="$(dpkg -s "$1" 2>/dev/null)" || return 1
  grep -q '^Status: install ok installed' <<<"$out"
}

stop_services() {
  local svc
  for svc in "$@"; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
      "${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$svc" ]; then
      "${SUDO[@]}" "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
  done
}

# ---------------------------------------------------------------------------
banner "system packages"
if [ "${SKIP_APT:-0}" = "1" ]; then
  echo "SKIP_APT=1: not checking Debian packages"
elif ! command -v dpkg >/dev/null 2>&1; then
  echo "warning: no dpkg (not Debian/Ubuntu); make sure these are installed: $APT_PACKAGES" >&2
else
  missing=()
  for pkg in $APT_PACKAGES; do
    pkg_installed "$pkg" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "all present: $APT_PACKAGES"
  else
    echo "installing: ${missing[*]}"
    apt_install "${missing[@]}"
    # Stop what the new packages started: the tests start their own servers.
    to_stop=()
    for entry in $APT_SERVICES; do
      for pkg in "${missing[@]}"; do
        if [ "$pkg" = "${entry%%:*}" ]; then
          IFS=',' read -r -a svcs <<<"${entry#*:}"
          to_stop+=("${svcs[@]}")
        fi
      done
    done
    if [ "${#to_stop[@]}" -gt 0 ]; then stop_services "${to_stop[@]}"; fi
  fi
fi

# ---------------------------------------------------------------------------
banner "node"
node_usable() {
  # v24.x, or v22.x with x >= 18
  local v major minor
  v="$("$1" --version 2>/dev/null)" || return 1
  v="${v#v}"
  major="${v%%.*}"
  minor="${v#*.}"
  minor="${minor%%.*}"
  case "$major" in
    24) return 0 ;;
    22) [ "$minor" -ge 18 ] ;;
    *) return 1 ;;
  esac
}

if command -v node >/dev/null 2>&1 && node_usable node; then
  echo "using $(command -v node) $(node --version)"
else
  if [ "$("$NODE_DIR/node_modules/.bin/node" --version 2>/dev/null || true)" = "v${NODE_VERSION}" ]; then
    echo "using cached Node in $NODE_DIR"
  else
    if ! command -v npm >/dev/null 2>&1; then
      echo "no npm: bootstrapping with Debian's nodejs and npm"
      apt_install nodejs npm
    fi
    echo "installing node@${NODE_VERSION} into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    # npm 11 runs a dependency's install scripts only when allowed.
    cat >"$NODE_DIR/package.json" <<'EOF'
{
  "private": true,
  "allowScripts": {
    "node": true
  }
}
EOF
    rm -rf "$NODE_DIR/node_modules" "$NODE_DIR/package-lock.json"
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --save-exact "node@${NODE_VERSION}"
  fi
  export PATH="$NODE_DIR/node_modules/.bin:$PATH"
  hash -r
  if [ "$(node --version)" != "v${NODE_VERSION}" ]; then
    echo "error: expected node v${NODE_VERSION} at $NODE_DIR, got $(node --version 2>&1 || true)" >&2
    exit 1
  fi
  echo "using $(command -v node) $(node --version)"
fi
echo "npm $(npm --version)"

# ---------------------------------------------------------------------------
banner "npm ci"
npm ci --no-audit --no-fund

banner "npm run build"
npm run build

banner "npm run typecheck"
npm run typecheck

banner "npm run lint"
npm run lint

banner "npm test"
npm test

# The Docker test bed starts its own dockerd (root only); elsewhere its tests skip and say why.
banner "npm run test:docker"
npm run test:docker

# The Pulumi program applied to that engine, end to end (root only; skipped with the reason elsewhere).
banner "npm run test:deploy"
npm run test:deploy

banner "all passed"
