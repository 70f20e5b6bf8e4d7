#pragma once
// perf events opened on every online CPU with a BPF program attached to each: the on-CPU sampler's
// cpu-clock and the cache probes' hardware LLC events.
#include <bpf/libbpf.h>
#include <linux/perf_event.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "collector/bpf_skeleton.h"
#include "common/result.h"

namespace perfwatch::collector {

// "0-3,5,7-8" (as in /sys/devices/system/cpu/online) -> {0,1,2,3,5,7,8}.
Result<std::vector<int>> parse_cpu_list(std::string_view text);

// The CPUs /sys/devices/system/cpu/online lists.
Result<std::vector<int>> online_cpus();

// The software cpu-clock sampled `frequency_hz` times a second: what the on-CPU sampler (and the
// tests' peer count of its samples) open.
perf_event_attr cpu_clock_attr(std::uint32_t frequency_hz);

// Opens `attr` for every process on each online CPU and attaches prog; libbpf closes each event when
// its link is destroyed. Fails at the first CPU that refuses, naming `what`.
Result<std::vector<Link>> attach_perf_event_on_cpus(bpf_program* prog, perf_event_attr attr, std::string_view what);

}  // namespace perfwatch::collector
