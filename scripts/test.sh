#!/usr/bin/env bash
# Builds perfwatch and runs every test (unit, db, bpf, browser labels) on a Debian 12 machine, as root.
# Installs what it needs, starts the system PostgreSQL cluster for the tests that use an external
# database (the others start perfwatch's embedded cluster themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}

bash scripts/setup-deps.sh
source scripts/test-postgres.sh   # exports PERFWATCH_TEST_PG

cmake -G Ninja -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j "$(nproc)"
ctest --test-dir "$build_dir" --output-on-failure --timeout 600 "$@"
