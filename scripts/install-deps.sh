#!/usr/bin/env bash
# Installs what replink's demo and tests need on Debian: slapd and ldap-utils
# (the tests start their own slapd; the system service is never started),
# graphviz (diagrams), iproute2 (network namespaces for the half-open test).
# With the argument "test" it adds 389-ds-base, the second provider the
# tests run the scenarios against (they create their own instances with
# dscreate under a private prefix; no system instance is created).
set -euo pipefail
need=()
if [ "${1:-}" = test ]; then
	command -v ns-slapd >/dev/null || [ -x /usr/sbin/ns-slapd ] || need+=(389-ds-base)
fi
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapsearch >/dev/null || need+=(ldap-utils)
command -v dot >/dev/null || need+=(graphviz)
command -v ip >/dev/null || need+=(iproute2)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "missing: ${need[*]}; install them as root with apt-get" >&2
	exit 0 # the demo falls back to the simulated provider; the tests skip
fi
export DEBIAN_FRONTEND=noninteractive
# Keep maintainer scripts from starting slapd's system service.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	own_policy=1
fi
trap '[ $own_policy = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
