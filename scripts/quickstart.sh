#!/usr/bin/env bash
# Builds, installs and starts perfwatch on this machine (Debian 12, as root) with the example config:
# an embedded PostgreSQL under /var/lib/perfwatch and the bundled demo workload as the watched target.
# Says "perfwatch is running" only once perfwatchd runs, has stored a window and its dashboard answers;
# otherwise exits non-zero with the daemon's last log lines. Run again, it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

config=/etc/perfwatch/perfwatch.yaml
state=/var/lib/perfwatch
build=${PERFWATCH_BUILD_DIR:-build}
wait_s=${PERFWATCH_QUICKSTART_WAIT:-120}

bash scripts/setup-deps.sh
# Configured once; later builds reconfigure by themselves when a CMakeLists.txt changed, and do nothing
# when nothing did.
[ -f "$build/build.ninja" ] || cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j "$(nproc)"
cmake --install "$build" --prefix /usr/local >/dev/null

# The embedded cluster runs as this unprivileged system user.
id perfwatch >/dev/null 2>&1 || useradd --system --home-dir "$state" --shell /usr/sbin/nologin perfwatch
install -d -m 0755 /etc/perfwatch "$state"
[ -f "$config" ] || install -m 0644 config/perfwatch.example.yaml "$config"
/usr/local/bin/perfwatchd --check-config --config "$config"

# A process this script started before, by the pid it wrote down, when it still runs that program.
running_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && grep -qF "$2" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

# What went wrong, with perfwatchd's last log lines (alive, last_logs and logs are set below).
fail() {
  echo >&2
  echo "perfwatch is NOT running: $1" >&2
  echo "perfwatchd's last log lines ($logs):" >&2
  last_logs >&2 || true
  exit 1
}

if ! running_pid "$state/demo.pid" perfwatch-demo >/dev/null; then
  nohup /usr/local/bin/perfwatch-demo >/var/log/perfwatch-demo.log 2>&1 &
  echo $! >"$state/demo.pid"
fi

started=$(date +%s)
if [ -d /run/systemd/system ]; then
  logs="journalctl -u perfwatchd"
  alive() { systemctl is-active --quiet perfwatchd.service; }
  last_logs() { journalctl -u perfwatchd.service -n 40 --no-pager; }
  install -m 0644 systemd/perfwatchd.service /etc/systemd/system/perfwatchd.service
  systemctl daemon-reload
  systemctl enable perfwatchd.service
  # A notify service: restart returns once perfwatchd says it started, or fails when it does not.
  systemctl restart perfwatchd.service || fail "systemd could not start perfwatchd.service"
else
  # No systemd (containers): run it in the background; it still writes its state under $state.
  log=/var/log/perfwatchd.log
  if pid=$(running_pid "$state/perfwatchd.pid" perfwatchd); then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.2; done
  fi
  nohup /usr/local/bin/perfwatchd --config "$config" >>"$log" 2>&1 &
  daemon_pid=$!
  echo "$daemon_pid" >"$state/perfwatchd.pid"
  logs=$log
  alive() { [ -d "/proc/$daemon_pid" ] && ! grep -q '^State:.*zombie' "/proc/$daemon_pid/status" 2>/dev/null; }
  last_logs() { tail -n 40 "$log"; }
fi

# The dashboard listens where the config says (dashboard.listen, 127.0.0.1:7460 by default).
listen=$(sed -n '/^dashboard:/,/^[^ #]/s/^  listen: *//p' "$config" | tr -d '"' | head -n 1)
listen=${listen:-127.0.0.1:7460}

echo "waiting for the first stored window (up to ${wait_s}s)..."
stored=false
for _ in $(seq 1 "$wait_s"); do
  alive || fail "perfwatchd exited"
  # Only windows that started after this perfwatchd did: not those of an earlier run.
  since=$(($(date +%s) - started + 1))s
  targets=$(/usr/local/bin/perfwatch --config "$config" targets --since "$since" --format json 2>/dev/null || true)
  if grep -q '"windows": [1-9]' <<<"$targets"; then
    stored=true
    break
  fi
  sleep 1
done
$stored || fail "no window stored within ${wait_s}s"
answered=false
for _ in $(seq 1 30); do
  if curl -fsS "http://$listen/healthz" >/dev/null 2>&1; then
    answered=true
    break
  fi
  sleep 1
done
$answered || fail "the dashboard does not answer on http://$listen/healthz"
alive || fail "perfwatchd exited"

/usr/local/bin/perfwatch --config "$config" targets
cat <<MSG

perfwatch is running (logs: $logs).
  targets:          perfwatch targets
  flame graph:      perfwatch flame --target demo --since 10m
  latency tiers:    perfwatch latency --target demo --since 10m
  (flamegraph.pl):  perfwatch flame --target demo --since 10m --format folded > demo.folded

Dashboard: http://$listen/
MSG
