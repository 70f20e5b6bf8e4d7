#!/usr/bin/env bash
# Runs in a kernel-matrix guest (scripts/kernel-matrix.sh ci): the kernel's BTF, the BPF programs' own tests
# and one end-to-end perfwatchd run. Each step leaves STEP.log and STEP.status ("EXIT_CODE SECONDS") in the
# results share ($KERNEL_MATRIX_OUT), and gtest's XML beside them. Exits 1 when a step failed.
#   guest-ci.sh BUILD_DIR
set -uo pipefail
build=$1
out=${KERNEL_MATRIX_OUT:?run this through scripts/kernel-matrix.sh}
kernel=$(uname -r)
failed=0

step() {
  local name=$1 start rc
  shift
  echo "=== kernel-matrix: $kernel: $name"
  start=$(date +%s)
  "$@" 2>&1 | tee "$out/$name.log"
  rc=${PIPESTATUS[0]}
  echo "$rc $(($(date +%s) - start))" >"$out/$name.status"
  echo "=== kernel-matrix: $kernel: $name: exit $rc after $(($(date +%s) - start)) s"
  [ "$rc" -eq 0 ] || failed=1
}

btf() {
  [ -s /sys/kernel/btf/vmlinux ] || { echo "no kernel BTF (/sys/kernel/btf/vmlinux)"; return 1; }
  echo "BTF: $(stat -c %s /sys/kernel/btf/vmlinux) bytes"
}

# Left out under emulation; it runs on the host, in ctest, and needs a real CPU's speed:
#   OncpuSamplerTest.CostPerSampleWithBothStacks: a budget in ns per sample; under TCG every instruction
#     costs 10-50 times more (32 us per sample measured), so it would measure the emulator, not the program.
# The tests that compare sample counts with CPU time check them against the kernel's own cpu-clock
# samples of the same processes, so they hold under emulation too.
bpf_filter=-OncpuSamplerTest.CostPerSampleWithBothStacks

step btf btf
step bpf_test "$build/tests/bpf/bpf_test" --gtest_filter="$bpf_filter" --gtest_output="xml:$out/bpf_test.xml"
step e2e "$build/tests/e2e/e2e_matrix_test" --gtest_output="xml:$out/e2e.xml"
# The wall clock stepped an hour back and forward under a running perfwatchd (issue 13's fault test). It
# steps the clock of the machine it runs on, so only in a throw-away guest, and in one kernel: it tests
# perfwatchd's window timer, not the kernel.
case $kernel in
  6.12.*) step clock env PW_FAULT_STEP_CLOCK=1 "$build/tests/faults/faults_test" --gtest_filter='*Clock*' \
            --gtest_output="xml:$out/clock.xml" ;;
esac
exit "$failed"
