#!/bin/sh
# Turns a `debootstrap --variant=minbase bookworm` tree ($1) into the test bed's Debian base image,
# close to the official debian:bookworm-slim: no services started by package installs inside a
# build, no docs or man pages, no apt lists or downloaded packages left behind.
set -eu
root=$1

# invoke-rc.d asks policy-rc.d; 101 = "action not allowed": a package's postinst must not start its
# daemon inside `docker build` (there is no init to stop it again).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

cat >"$root/etc/dpkg/dpkg.cfg.d/gpt-proxy-test-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
CFG

cat >"$root/etc/apt/apt.conf.d/90gpt-proxy-test" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
CFG

rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/*/changelog* "$root"/usr/share/man/* "$root"/var/log/*.log \
  "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.bash_history
# The hostname and hosts of the machine that ran debootstrap stay out; Docker provides both.
rm -f "$root/etc/hostname"
: >"$root/etc/hosts"
