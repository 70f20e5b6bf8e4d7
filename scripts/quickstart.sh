#!/usr/bin/env bash
# Builds, installs and starts perfwatch on this machine (Debian 12, as root) with the example config:
# an embedded PostgreSQL under /var/lib/perfwatch and the bundled demo workload as the watched target.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc)"
cmake --install build --prefix /usr/local >/dev/null

# The embedded cluster runs as this unprivileged system user.
id perfwatch >/dev/null 2>&1 || useradd --system --home-dir /var/lib/perfwatch --shell /usr/sbin/nologin perfwatch
install -d -m 0755 /etc/perfwatch
[ -f /etc/perfwatch/perfwatch.yaml ] || install -m 0644 config/perfwatch.example.yaml /etc/perfwatch/perfwatch.yaml
/usr/local/bin/perfwatchd --check-config --config /etc/perfwatch/perfwatch.yaml

if ! pgrep -f 'perfwatch-demo' >/dev/null; then
  nohup /usr/local/bin/perfwatch-demo >/var/log/perfwatch-demo.log 2>&1 &
fi

if [ -d /run/systemd/system ]; then
  install -m 0644 systemd/perfwatchd.service /etc/systemd/system/perfwatchd.service
  systemctl daemon-reload
  systemctl enable --now perfwatchd.service
  systemctl restart perfwatchd.service
  logs="journalctl -u perfwatchd"
else
  # No systemd (containers): run it in the background; it still writes its state under /var/lib/perfwatch.
  pkill -TERM -x perfwatchd 2>/dev/null && sleep 2 || true
  nohup /usr/local/bin/perfwatchd --config /etc/perfwatch/perfwatch.yaml >>/var/log/perfwatchd.log 2>&1 &
  logs="/var/log/perfwatchd.log"
fi

echo "waiting for the first profile window..."
for _ in $(seq 1 60); do
  if /usr/local/bin/perfwatch targets --format json 2>/dev/null | grep -q '"samples": [1-9]'; then break; fi
  sleep 2
done
/usr/local/bin/perfwatch targets || true
# The dashboard listens where the config says (dashboard.listen, 127.0.0.1:7460 by default).
listen=$(sed -n 's/^  listen: *//p' /etc/perfwatch/perfwatch.yaml | tr -d '"' | head -n 1)
listen=${listen:-127.0.0.1:7460}
for _ in $(seq 1 30); do
  curl -fsS "http://$listen/healthz" >/dev/null 2>&1 && break
  sleep 1
done
cat <<MSG

perfwatch is running (logs: $logs).
  targets:          perfwatch targets
  flame graph:      perfwatch flame --target demo --since 10m
  latency tiers:    perfwatch latency --target demo --since 10m
  (flamegraph.pl):  perfwatch flame --target demo --since 10m --format folded > demo.folded

Dashboard: http://$listen/
MSG
