#!/usr/bin/env bash
# Builds perfwatch and runs every test (unit, db, bpf, browser labels) on a Debian 12 machine, as root,
# then the kernel matrix: the BPF tests, an end-to-end run and the shipped systemd unit inside Debian 12's
# own kernels under qemu (scripts/kernel-matrix.sh; PERFWATCH_KERNEL_MATRIX=0 leaves it out), the unit and
# db tests and an end-to-end daemon run built with AddressSanitizer and UndefinedBehaviorSanitizer
# (scripts/sanitize.sh asan; PERFWATCH_SANITIZERS=0 leaves it out), and each libFuzzer target for
# PERFWATCH_FUZZ_SECONDS (default 60; scripts/fuzz.sh; 0 leaves them out). Every part runs even when an
# earlier one failed; the exit status is non-zero when any did.
# Installs what it needs, starts the system PostgreSQL cluster for the tests that use an external
# database (the others start perfwatch's embedded cluster themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}

bash scripts/setup-deps.sh
source scripts/test-postgres.sh   # exports PERFWATCH_TEST_PG

cmake -G Ninja -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j "$(nproc)"
status=0
ctest --test-dir "$build_dir" --output-on-failure --timeout 600 "$@" || status=$?
if [ "${PERFWATCH_KERNEL_MATRIX:-1}" != 0 ]; then
  bash scripts/kernel-matrix.sh ci "$build_dir" || status=1
fi
if [ "${PERFWATCH_SANITIZERS:-1}" != 0 ]; then
  bash scripts/sanitize.sh asan || status=1
fi
if [ "${PERFWATCH_FUZZ_SECONDS:-60}" != 0 ]; then
  FUZZ_SECONDS=${PERFWATCH_FUZZ_SECONDS:-60} bash scripts/fuzz.sh || status=1
fi
exit "$status"
