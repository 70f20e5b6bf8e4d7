#!/usr/bin/env bash
# Runs in a kernel-matrix guest booted with the real systemd (scripts/kernel-matrix.sh unit): deploys perfwatch
# as the README's quick-start does (cmake --install, the example config, the demo, the shipped unit) and checks
# that systemd/perfwatchd.service, with its own sandbox and capabilities, runs the default configuration
# (embedded PostgreSQL): active (running) after READY=1, a window stored, /healthz and the dashboard
# answering, and a clean stop that stops the embedded cluster too.
#   unit-test.sh BUILD_DIR
set -euo pipefail
build=$1
config=/etc/perfwatch/perfwatch.yaml
started=$(date +%s)

say() { echo "unit-test: [$(($(date +%s) - started)) s] $*"; }
fail() {
  echo "unit-test: FAILED: $*"
  systemctl status --no-pager perfwatchd || true
  journalctl --no-pager -o cat -u perfwatchd | tail -n 60 || true
  exit 1
}
# poll SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds.
poll() {
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what"
    sleep 1
  done
}

[ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is $(cat /proc/1/comm), not systemd"

# The install, as scripts/quickstart.sh does it (the build is the host's).
cmake --install "$build" --prefix /usr/local >/dev/null
id perfwatch >/dev/null 2>&1 || fail "cmake --install created no 'perfwatch' user (lib/sysusers.d/perfwatch.conf)"
install -d -m 0755 /etc/perfwatch
install -m 0644 /usr/local/share/perfwatch/perfwatch.example.yaml "$config"
install -m 0644 /usr/local/share/perfwatch/perfwatchd.service /etc/systemd/system/perfwatchd.service
systemctl daemon-reload
systemd-run --unit perfwatch-demo --quiet /usr/local/bin/perfwatch-demo --busy 0.3
say "installed; starting perfwatchd.service"

# Type=notify: start returns once perfwatchd sent READY=1 (or fails).
systemctl start perfwatchd.service || fail "systemctl start perfwatchd"
# One property at a time: systemctl show prints several in its own order.
property() { systemctl show -p "$2" --value "$1"; }
state="$(property perfwatchd ActiveState) $(property perfwatchd SubState) $(property perfwatchd StatusText)"
[ "$state" = "active running sampling" ] || fail "after start: '$state', expected 'active running sampling' (READY=1, STATUS=sampling)"
pid=$(property perfwatchd MainPID)
say "active (running), READY=1, pid $pid"

# The sandbox is the unit's: its capability bounding set, no_new_privs, a read-only /usr.
grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$pid/status" || fail "NoNewPrivs is not set"
cap_bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' "/proc/$pid/status")
expected=0
for cap in $(sed -n 's/^CapabilityBoundingSet=//p' /etc/systemd/system/perfwatchd.service); do
  number=$(grep -E "^#define ${cap}[[:space:]]+[0-9]+" /usr/include/linux/capability.h | awk '{print $3}')
  [ -n "$number" ] || fail "unknown capability $cap"
  expected=$((expected | (1 << number)))
done
[ $((16#$cap_bnd)) -eq "$expected" ] || fail "CapBnd $cap_bnd, expected $(printf %016x "$expected")"
if nsenter -t "$pid" -m -- touch /usr/local/perfwatch-sandbox-check 2>/dev/null; then
  fail "/usr is writable in perfwatchd's mount namespace (ProtectSystem=strict)"
fi
say "sandbox: CapBnd $cap_bnd, NoNewPrivs, ProtectSystem=strict"

# A stored window of the demo (10 s windows in the example config).
stored() { perfwatch --config "$config" targets --format json | grep -Eq '"samples": *[1-9]'; }
poll 240 "no window with samples stored within 240 s: $(perfwatch --config "$config" targets 2>&1 | tail -n 5)" stored
say "a window is stored: $(perfwatch --config "$config" targets | tail -n +2 | head -n 3 | tr -s ' ')"

poll 30 "/healthz does not answer" curl -fsS http://127.0.0.1:7460/healthz
curl -fsS http://127.0.0.1:7460/ | grep -qi '<html' || fail "the dashboard's page does not answer"
curl -fsS http://127.0.0.1:7460/api/v1/targets | grep -q '"demo"' || fail "the API does not list the demo target"
say "/healthz, the dashboard and its API answer on 127.0.0.1:7460"

systemctl stop perfwatchd.service || fail "systemctl stop"
result="$(property perfwatchd ActiveState) $(property perfwatchd Result) $(property perfwatchd ExecMainStatus)"
[ "$result" = "inactive success 0" ] || fail "after stop: '$result', expected 'inactive success 0'"
if pgrep -u perfwatch >/dev/null; then
  fail "processes of user perfwatch left after stop: $(pgrep -a -u perfwatch)"
fi
grep -q 'database system is shut down' /var/lib/perfwatch/postgres/server.log ||
  fail "the embedded PostgreSQL did not shut down: $(tail -n 5 /var/lib/perfwatch/postgres/server.log)"
systemctl stop perfwatch-demo.service
say "stopped cleanly; the embedded PostgreSQL stopped with it"
