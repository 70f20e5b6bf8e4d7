#!/usr/bin/env bash
# Runs tests/quickstart/check.sh on this host without touching it: in a private mount and network
# namespace (loopback only, so ports 7460 and 8125 are its own), with tmpfs over /usr/local,
# /var/lib/perfwatch, /var/lib/perfwatch-demo (the demo's documents) and /var/log and a writable overlay
# over /etc (the perfwatch user and /etc/perfwatch go into it), all gone when it ends. The host has no systemd as PID 1 here, so the
# quick-start's container branch runs (the systemd branch runs in a kernel-matrix guest).
#   in_namespace.sh REPO BUILD_DIR
set -euo pipefail
repo=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "in_namespace.sh: run as root" >&2; exit 1; }
scratch=$(mktemp -d /tmp/pw-quickstart-ns.XXXXXX)
made=()
for dir in /var/lib/perfwatch /var/lib/perfwatch-demo; do
  [ -d "$dir" ] || { mkdir -p "$dir"; made+=("$dir"); }
done
cleanup() {
  for dir in "${made[@]}"; do rmdir "$dir" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

unshare --mount --net --propagation private bash -euo pipefail -c '
  scratch=$1 repo=$2 build=$3
  ip link set lo up
  mkdir -p "$scratch/etc-upper" "$scratch/etc-work"
  mount -t overlay overlay -o "lowerdir=/etc,upperdir=$scratch/etc-upper,workdir=$scratch/etc-work" /etc
  for dir in /usr/local /var/lib/perfwatch /var/lib/perfwatch-demo /var/log; do mount -t tmpfs -o mode=0755 tmpfs "$dir"; done
  # Whatever the quick-start started stops with the test, before its mounts go.
  stop_all() {
    for pidfile in /var/lib/perfwatch/perfwatchd.pid /var/lib/perfwatch/demo.pid; do
      pid=$(cat "$pidfile" 2>/dev/null) || continue
      kill -TERM "$pid" 2>/dev/null || continue
      for _ in $(seq 1 150); do [ -d "/proc/$pid" ] || break; sleep 0.2; done
    done
  }
  trap stop_all EXIT
  bash "$repo/tests/quickstart/check.sh" "$repo" "$build"
' in_namespace "$scratch" "$repo" "$build"
