#!/usr/bin/env bash
# What make bench needs beyond the tests: python-ldap, to measure its
# SyncreplConsumer beside replink (Debian's python3-ldap, for /usr/bin/python3).
set -euo pipefail
bash "$(dirname "$0")/install-deps.sh"
/usr/bin/python3 -c 'import ldap.syncrepl' 2>/dev/null && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "python3-ldap missing: the benchmark reports python-ldap as not measured" >&2
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends python3-ldap || { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-ldap; }
