#!/usr/bin/env bash
# Builds perfwatch's libFuzzer targets (clang, AddressSanitizer, UndefinedBehaviorSanitizer; CMake option
# PERFWATCH_FUZZ) in their own build directory and runs each for a bounded time from its committed seed
# corpus (tests/fuzz/corpus/TARGET). Fails on a crash, a leak, a timeout or memory past the limit, printing
# the input that did it and the command that reproduces it.
#
#   bash scripts/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh elf # one target, longer
#
# Environment: FUZZ_SECONDS (per target, default 60), FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS
# (build parallelism, default nproc), FUZZ_PARALLEL (fuzzers run at once, default nproc). New inputs found
# stay in FUZZ_BUILD_DIR/fuzz-corpus/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
all_targets=(statsd router spool elf python config)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

command -v clang >/dev/null && command -v clang++ >/dev/null || {
  echo "fuzz.sh: clang is needed (Debian: clang, libclang-rt-dev)" >&2
  exit 1
}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

CC=clang CXX=clang++ cmake -G Ninja -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPERFWATCH_FUZZ=ON \
  "${launcher[@]}" >/dev/null
# The build runs generators built with the sanitizers too; their leaks at exit are not the product's.
ASAN_OPTIONS=detect_leaks=0 cmake --build "$build_dir" -j "$jobs" --target "${targets[@]/#/fuzz_}"

# Crashes, leaks and undefined behaviour abort; -timeout turns a blocked or slow input into a failure too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One fuzzer per core at a time (FUZZ_PARALLEL, default nproc): each still gets its full time on a core.
parallel=${FUZZ_PARALLEL:-$(nproc)}

fuzz_one() {  # target; its output goes to its log, its verdict to the exit status
  local target=$1
  local found="$build_dir/fuzz-corpus/$target" artifacts="$build_dir/fuzz-artifacts/$target/"
  local dict=()
  [ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")
  rm -rf "$artifacts"
  mkdir -p "$found" "$artifacts"
  # New inputs go to $found (first directory); the committed seeds are read only.
  "$build_dir/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts" "${dict[@]}" "$found" "tests/fuzz/corpus/$target" \
    >"$build_dir/fuzz-$target.log" 2>&1
}

report() {  # target, its exit status
  local target=$1 log="$build_dir/fuzz-$1.log" fuzzer="$build_dir/tests/fuzz/fuzz_$1"
  if [ "$2" = 0 ]; then
    echo "== fuzz_$target: ${seconds}s"
    grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" || true
    return
  fi
  failed+=("$target")
  echo "== fuzz_$target FAILED (exit $2); the end of its log ($log):"
  tail -n 60 "$log"
  for input in "$build_dir/fuzz-artifacts/$target/"*; do
    [ -f "$input" ] || continue
    echo "-- reproducer $input ($(stat -c %s "$input") bytes):"
    head -c 512 "$input" | od -A d -c | head -n 20
    echo "   run it again: $fuzzer $input"
  done
}

for target in "${targets[@]}"; do
  [ -d "tests/fuzz/corpus/$target" ] || { echo "fuzz.sh: no seed corpus tests/fuzz/corpus/$target" >&2; exit 1; }
done
failed=()
declare -A running=()  # pid -> target
wait_one() {
  local pid status=0
  wait -n -p pid "${!running[@]}" || status=$?
  report "${running[$pid]}" "$status"
  unset "running[$pid]"
}
for target in "${targets[@]}"; do
  while [ ${#running[@]} -ge "$parallel" ]; do wait_one; done
  fuzz_one "$target" &
  running[$!]=$target
done
while [ ${#running[@]} -gt 0 ]; do wait_one; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${targets[*]}: no crash, leak or timeout in ${seconds}s each"
