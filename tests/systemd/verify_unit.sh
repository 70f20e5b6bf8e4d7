#!/usr/bin/env bash
# Checks systemd/perfwatchd.service with systemd's own parser (systemd-analyze verify, which also
# checks that the ExecStart binaries exist) and asserts the properties the daemon relies on.
set -euo pipefail
unit=$1 perfwatchd=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|/usr/local/bin/perfwatchd|$perfwatchd|g" "$unit" > "$work/perfwatchd.service"
systemd-analyze verify "$work/perfwatchd.service"

fail=0
expect() {
  if ! grep -qx -- "$1" "$unit"; then
    echo "perfwatchd.service lacks: $1" >&2
    fail=1
  fi
}
expect 'Type=notify'
expect 'WatchdogSec=60s'
expect 'Restart=on-failure'
expect 'ProtectSystem=strict'
expect 'ReadWritePaths=/var/lib/perfwatch'
expect 'NoNewPrivileges=yes'
expect 'ExecReload=/bin/kill -HUP $MAINPID'
# Exactly the capabilities the daemon needs (see the comments in the unit), nothing more.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr ' ' '\n' | sort | tr '\n' ' ')
want="CAP_BPF CAP_CHOWN CAP_DAC_READ_SEARCH CAP_PERFMON CAP_SETGID CAP_SETUID CAP_SYS_ADMIN CAP_SYS_PTRACE CAP_SYS_RESOURCE "
if [ "$caps" != "$want" ]; then
  echo "CapabilityBoundingSet is '$caps', expected '$want'" >&2
  fail=1
fi
# Each says in a comment why it is there. Not CAP_DAC_OVERRIDE nor CAP_FOWNER: the embedded PostgreSQL's
# files are written as its own user (storage/embedded_postgres.cpp; the unit's run in scripts/vm/unit-test.sh).
for cap in $caps; do
  if ! grep -E '^#' "$unit" | grep -q -- "$cap"; then
    echo "perfwatchd.service does not say why it needs $cap" >&2
    fail=1
  fi
done
exit $fail
