#!/usr/bin/env bash
# The probes on a second machine with another kernel and more CPUs (the workplace's device machine,
# see /work/.library/device): the BPF tests, the full-rate uprobe benchmark and the sampler's
# slowdown of a Python workload, from a build made here, since that machine has none of the build's
# packages. Carry build/tests/bpf/bpf_test, build/bench/uprobe_rate, build/bench/sampler_slowdown,
# .devlibs (the shared libraries `ldd` lists that its image lacks: libbpf, libelf, libz) and
# .devtools (/usr/sbin/funclatency, the peer). Results go to $OUT.
set -uo pipefail
out=${OUT:-/tmp/perfwatch-device}
mkdir -p "$out"
export LD_LIBRARY_PATH=$PWD/.devlibs
{
  uname -a
  nproc
  ls -la /sys/kernel/btf/vmlinux
  grep -E "^(CONFIG_UPROBE_EVENTS|CONFIG_KPROBE_EVENTS|CONFIG_BPF_EVENTS)=" "/boot/config-$(uname -r)" 2>/dev/null
  ldd build/tests/bpf/bpf_test | grep "not found"
  ls -d /sys/kernel/tracing/events/syscalls /sys/kernel/tracing/events/raw_syscalls
} 2>&1 | tee "$out/machine.txt"
install -m 755 .devtools/funclatency /usr/sbin/funclatency
timeout 150 build/bench/uprobe_rate --calls 1000000 2>&1 | tee "$out/uprobe_rate.txt"
# The Python tests need Debian's python3.11, which that image lacks.
timeout 300 build/tests/bpf/bpf_test --gtest_filter='-PythonWalkerTest.*:*.PythonFunctionThroughUsdt' 2>&1 |
  tee "$out/bpf_test.txt"
ls -d /sys/kernel/tracing/events/syscalls/sys_enter_read /sys/kernel/tracing/events/raw_syscalls 2>&1 | tee -a "$out/machine.txt"
# A Python workload's slowdown under the sampler (native stacks, then with Python frames) on quiet cores.
timeout 400 build/bench/sampler_slowdown --python "$(command -v python3)" 2>&1 | grep -v "^level=" |
  tee "$out/sampler_slowdown.txt"
