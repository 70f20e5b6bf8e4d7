#!/usr/bin/env bash
# Builds perfwatch's tests and daemon with sanitizers and runs them; any report fails the run.
#   address,undefined (gcc's ASan + UBSan): the unit and db tests, and the end-to-end daemon tests
#     (e2e_test: a real perfwatchd, itself instrumented, with BPF on this kernel);
#   thread (gcc's TSan): the multi-threaded parts: the storage writer, the StatsD listener, the HTTP
#     server's pool, the alert engine and dispatcher, and e2e_test again (perfwatchd under TSan).
# As root (BPF, the embedded PostgreSQL); the db tests use the system cluster (scripts/test-postgres.sh).
#   bash scripts/sanitize.sh               # both
#   bash scripts/sanitize.sh asan | tsan   # one
# -O0 -g1 keeps the build short (half of -O1's compile time; the tests wait on PostgreSQL and the
# kernel more than they compute); -g1 still names functions and lines in reports.
# CMAKE_LAUNCHER=ccache uses ccache for the compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
jobs=$(nproc)
suppressions=$PWD/tests/sanitizers
source scripts/test-postgres.sh  # exports PERFWATCH_TEST_PG

configure() {  # build dir, sanitizers
  cmake -G Ninja -S . -B "$1" -DPERFWATCH_SANITIZE="$2" -DCMAKE_BUILD_TYPE=None \
    "-DCMAKE_C_FLAGS=-O0 -g1" "-DCMAKE_CXX_FLAGS=-O0 -g1" \
    -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST ${CMAKE_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_LAUNCHER -DCMAKE_C_COMPILER_LAUNCHER=$CMAKE_LAUNCHER} >/dev/null
}

run() {  # label, binary, gtest filter
  echo "== $1: $(basename "$2") $3"
  "$2" --gtest_filter="$3" --gtest_brief=1
}

if [ "$which" = all ] || [ "$which" = asan ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
  export LSAN_OPTIONS=suppressions=$suppressions/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  b=build-asan
  configure $b address,undefined
  cmake --build $b -j "$jobs" --target common_test config_test collector_test storage_test alerts_test alerts_db_test \
    daemon_test dashboard_test e2e_test
  for t in common/common_test config/config_test collector/collector_test storage/storage_test alerts/alerts_test \
           alerts/alerts_db_test daemon/daemon_test dashboard/dashboard_test; do
    run asan $b/tests/$t '*'
  done
  run asan $b/tests/e2e/e2e_test '*'
fi

if [ "$which" = all ] || [ "$which" = tsan ]; then
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$suppressions/tsan.supp
  b=build-tsan
  configure $b thread
  cmake --build $b -j "$jobs" --target storage_test alerts_db_test dashboard_test collector_test e2e_test
  run tsan $b/tests/storage/storage_test 'WindowWriterLogic*:WriterOutage*:Durability*'
  run tsan $b/tests/collector/collector_test 'Statsd*'
  run tsan $b/tests/dashboard/dashboard_test 'Api*:AlertsApi*'
  run tsan $b/tests/alerts/alerts_db_test '*'
  run tsan $b/tests/e2e/e2e_test '*'
fi
echo "sanitize.sh: clean"
