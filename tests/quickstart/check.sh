#!/usr/bin/env bash
# The README's quick-start path, run the way a user does on a machine where nothing of perfwatch runs yet,
# and checked: `bash scripts/quickstart.sh` with the example config and the bundled demo, the first stored
# window, `perfwatch latency --target demo` showing calls graded in T1..T5, the dashboard answering (/,
# /healthz, /api/v1/targets); then a second run (restarts what the first started, no second daemon or
# demo). Before them, a run that cannot work (the dashboard's port is taken, so perfwatchd exits at
# start-up) must exit non-zero and show perfwatchd's last log lines.
#
# It installs into /usr/local, /etc/perfwatch, /var/lib/perfwatch and /var/log and starts daemons:
# run it only where those are disposable: tests/quickstart/in_namespace.sh (a private mount and network
# namespace on this host), or a kernel-matrix guest (scripts/kernel-matrix.sh run --systemd ID -- ...).
#   check.sh REPO BUILD_DIR
set -euo pipefail
repo=$1
export PERFWATCH_BUILD_DIR=$2
cd "$repo"
failures=0
fail() {
  echo "quickstart check FAILED: $*" >&2
  failures=$((failures + 1))
}
log=$(mktemp -d /tmp/pw-quickstart.XXXXXX)

# 1. It says so, and exits non-zero, when perfwatchd cannot run: its dashboard port is taken.
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 7460)); s.listen()
print("bound", flush=True); time.sleep(600)' >"$log/blocker.out" &
blocker=$!
for _ in $(seq 1 50); do grep -q bound "$log/blocker.out" && break; sleep 0.1; done
start=$(date +%s)
if bash scripts/quickstart.sh >"$log/blocked.out" 2>"$log/blocked.err"; then
  fail "quickstart.sh exited 0 although perfwatchd could not start"
fi
echo "quickstart with its port taken: exit non-zero after $(($(date +%s) - start)) s"
grep -q "perfwatch is NOT running" "$log/blocked.err" || fail "no 'perfwatch is NOT running' on stderr"
grep -q "perfwatchd's last log lines" "$log/blocked.err" || fail "no log lines shown"
grep -q "fatal start-up error" "$log/blocked.err" || fail "the log lines do not say why perfwatchd stopped"
grep -q "perfwatch is running" "$log/blocked.out" && fail "it said 'perfwatch is running'"
kill "$blocker"
wait "$blocker" 2>/dev/null || true

# 2. The quick-start as the README gives it.
start=$(date +%s)
if ! bash scripts/quickstart.sh >"$log/first.out" 2>"$log/first.err"; then
  fail "quickstart.sh failed"
  cat "$log/first.err" >&2
fi
echo "quickstart: $(($(date +%s) - start)) s"
cat "$log/first.out"
grep -q "^perfwatch is running" "$log/first.out" || fail "no 'perfwatch is running'"
grep -q "^Dashboard: http://127.0.0.1:7460/" "$log/first.out" || fail "no dashboard URL"

# Every operation of the demo has calls, graded in T1..T5, within a few minutes of demo traffic.
deadline=$(($(date +%s) + ${PERFWATCH_QUICKSTART_CALLS_WAIT:-180}))
while :; do
  /usr/local/bin/perfwatch latency --target demo --since 10m --format json >"$log/latency.json" 2>"$log/latency.err" || true
  if python3 - "$log/latency.json" <<'PY'
import json, re, sys
doc = json.load(open(sys.argv[1]))
ops = doc["operations"]
assert len(ops) == 6, [o["name"] for o in ops]
for o in ops:
    assert o["calls"] > 0, (o["name"], o.get("not_measured"))
    assert re.fullmatch(r"T[1-5]", o["grade"] or ""), (o["name"], o["grade"])
PY
  then
    break
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    fail "not every operation of the demo has graded calls:"
    cat "$log/latency.json" "$log/latency.err" >&2
    break
  fi
  sleep 5
done
/usr/local/bin/perfwatch latency --target demo --since 10m | tee "$log/latency.txt"
grep -Eq 'p99 in T1' "$log/latency.txt" || fail "no operation graded T1 in the table"

# The dashboard answers: the UI, its liveness and the targets with the demo's windows.
curl -fsS http://127.0.0.1:7460/ | grep -q '<title>perfwatch</title>' || fail "the dashboard's page"
curl -fsS http://127.0.0.1:7460/healthz | grep -q '"ok"' || fail "/healthz"
curl -fsS http://127.0.0.1:7460/api/v1/targets >"$log/targets.json" || fail "/api/v1/targets"
python3 - "$log/targets.json" <<'PY' || fail "/api/v1/targets lists no stored window of the demo"
import json, sys
doc = json.load(open(sys.argv[1]))
demo = [t for t in doc["targets"] if t["name"] == "demo"]
assert demo and demo[0]["windows"] > 0, doc
assert doc["hosts"] and doc["hosts"][0]["probes"], doc
PY

# 3. Run again: the demo it started keeps running, perfwatchd is restarted (one, not two), and it says
# so only once that one runs again.
daemon_pid() {
  if [ -d /run/systemd/system ]; then systemctl show -p MainPID --value perfwatchd.service; else cat /var/lib/perfwatch/perfwatchd.pid; fi
}
demo_before=$(cat /var/lib/perfwatch/demo.pid)
daemon_before=$(daemon_pid)
start=$(date +%s)
bash scripts/quickstart.sh >"$log/second.out" 2>"$log/second.err" || fail "the second quickstart.sh failed: $(cat "$log/second.err")"
echo "quickstart, second run: $(($(date +%s) - start)) s"
grep -q "^perfwatch is running" "$log/second.out" || fail "no 'perfwatch is running' the second time"
[ "$(cat /var/lib/perfwatch/demo.pid)" = "$demo_before" ] && [ -d "/proc/$demo_before" ] || fail "the demo was started again"
daemon_after=$(daemon_pid)
[ "$daemon_after" != "$daemon_before" ] && [ -d "/proc/$daemon_after" ] || fail "perfwatchd was not restarted"
[ ! -d "/proc/$daemon_before" ] || fail "the first perfwatchd still runs beside the second"

echo "quickstart check: $failures failure(s); logs in $log"
[ "$failures" -eq 0 ]
