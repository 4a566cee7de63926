#!/usr/bin/env bash
# Installs what replink's demo and tests need on Debian: slapd and ldap-utils
# (the tests start their own slapd; the system service is never started),
# graphviz (diagrams), iproute2 (network namespaces for the half-open test).
# With the argument "test" it adds 389-ds-base, the second provider the
# tests run the scenarios against (they create their own instances with
# dscreate under a private prefix; no system instance is created) and a
# Samba AD domain controller, the Active Directory provider (the tests
# provision their own domain in a temp dir; samba's and winbind's system
# services are masked and never started).
set -euo pipefail
need=()
if [ "${1:-}" = test ]; then
	command -v ns-slapd >/dev/null || [ -x /usr/sbin/ns-slapd ] || need+=(389-ds-base)
	samba_pkgs=(samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind)
	for p in "${samba_pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
	done
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
# Samba's and winbind's units must never start, now or at the next boot:
# mask them before the packages arrive (a mask is a link to /dev/null, which
# works whether or not systemd runs here; systemctl unmask undoes it).
samba_units=(samba-ad-dc smbd nmbd winbind samba)
installs_samba=0
case " ${need[*]} " in *" samba"* | *" winbind "*) installs_samba=1 ;; esac
if [ $installs_samba = 1 ]; then
	mkdir -p /etc/systemd/system
	for u in "${samba_units[@]}"; do
		[ -e "/etc/systemd/system/$u.service" ] || ln -s /dev/null "/etc/systemd/system/$u.service"
	done
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
# Nothing of samba may run or listen after the install. (The tests' own
# DCs live in network namespaces of their own: ss here does not see them.)
if [ $installs_samba = 1 ]; then
	if [ -d /run/systemd/system ]; then
		for u in "${samba_units[@]}"; do
			if systemctl is-active --quiet "$u"; then
				echo "install-deps: $u is active after the install; stop it" >&2
				exit 1
			fi
		done
	fi
	if ss -ltnup 2>/dev/null | grep -Eq '\("(samba|smbd|nmbd|winbindd)"'; then
		echo "install-deps: a samba daemon listens after the install; stop it" >&2
		exit 1
	fi
fi
