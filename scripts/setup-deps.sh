#!/usr/bin/env bash
# Installs every build, run and test dependency of perfwatch from Debian 12's packages and npm.
# Idempotent: re-running it only installs what is missing.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

build_pkgs=(
  build-essential cmake ninja-build pkg-config git
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  libpoco-dev libpqxx-dev libpq-dev libyaml-cpp-dev libsystemd-dev nlohmann-json3-dev
  libre2-dev  # cmdline patterns: linear-time matching of untrusted command lines
  libgtest-dev libgmock-dev libbenchmark-dev
  libprotobuf-dev protobuf-compiler
  python3.11 python3.11-dev
  systemtap-sdt-dev  # <sys/sdt.h>: the USDT probes of the cache tests' workload
)
run_pkgs=(postgresql-15 postgresql-client-15 util-linux procps)
test_pkgs=(
  python3-statsd bpftrace libbpf-tools linux-perf
  prometheus prometheus-alertmanager golang-go
  chromium wrk hyperfine curl systemd openssl
  # The kernel matrix (scripts/kernel-matrix.sh): Debian's kernels booted under qemu, an initramfs made of
  # busybox and their modules (kmod: depmod, modprobe --show-depends; xz-utils: 6.12's modules are .ko.xz),
  # the guest's writable layer an ext4 image (e2fsprogs).
  qemu-system-x86 busybox-static kmod xz-utils e2fsprogs
  # The fuzzers (scripts/fuzz.sh): clang's libFuzzer and sanitizer runtimes, which clang only recommends.
  libclang-rt-dev
)
# Node.js and npm build the dashboard's UI (npm ci + esbuild, dashboard/CMakeLists.txt) and run its browser
# tests (playwright-core driving Debian's chromium). They may already come from another repository (with
# npm bundled); Debian's nodejs+npm only when absent.
command -v npm >/dev/null 2>&1 || build_pkgs+=(nodejs npm)

missing=()
for p in "${build_pkgs[@]}" "${run_pkgs[@]}" "${test_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-deps.sh: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup-deps.sh: all Debian packages present"
fi
