#pragma once
// On-CPU stack sampling of watched processes: owns probes/oncpu.bpf.c, one cpu-clock perf event
// per online CPU, and the double-buffered count/stack maps that drain() reads once per window.
#include <bpf/libbpf.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "collector/bpf_skeleton.h"
#include "collector/perf_events.h"
#include "collector/rcu_sync.h"
#include "common/profile.h"
#include "common/result.h"
#include "probes/oncpu.h"

struct oncpu_bpf;

namespace perfwatch::collector {

struct OncpuOptions {
  std::uint32_t frequency_hz = 99;
  std::uint32_t stack_map_entries = 16384;   // per window parity
  std::uint32_t counts_map_entries = 65536;  // per window parity
  std::uint32_t watched_map_entries = 8192;
};

struct RawStack {
  std::int32_t tgid = 0;
  std::uint32_t generation = 0;
  std::vector<std::uint64_t> user_ips;    // leaf first; empty for an exiting process
  std::vector<std::uint64_t> kernel_ips;  // leaf first; empty for samples taken in user mode
  std::uint64_t count = 0;
};

struct DrainResult {
  std::vector<RawStack> stacks;
  profile::SamplerStats stats;
  std::uint64_t not_watched = 0;  // samples of processes not watched, idle included
};

class OncpuSampler {
 public:
  static Result<std::unique_ptr<OncpuSampler>> create(const OncpuOptions& options);
  ~OncpuSampler();
  OncpuSampler(const OncpuSampler&) = delete;
  OncpuSampler& operator=(const OncpuSampler&) = delete;

  // watch/unwatch only touch the kernel map, so they may run concurrently with drain().
  Result<void> watch(std::int32_t tgid, std::uint32_t generation, std::uint32_t target);
  void unwatch(std::int32_t tgid);
  int watched_map_fd() const;

  // Closes the current window and returns what it collected. Serialized internally.
  DrainResult drain();

  // Samples counted since load, in either window parity (drained or not).
  std::uint64_t total_samples() const;

  // For reading the program's run-time stats (run_time_ns / run_cnt).
  int prog_fd() const;
  std::uint32_t prog_id() const;

 private:
  using Counters = std::array<std::uint64_t, ONCPU_COUNTER_MAX>;

  OncpuSampler() = default;
  Result<void> attach_all_cpus(std::uint32_t frequency_hz);
  Counters read_counters(std::uint32_t parity) const;

  SkeletonPtr<oncpu_bpf> skel_;
  // Perf-event links; libbpf closes each perf event fd when its link is destroyed.
  std::vector<Link> links_;
  std::optional<RcuSync> rcu_sync_;
  std::uint32_t stack_map_entries_ = 0;
  std::uint32_t counts_map_entries_ = 0;

  std::mutex drain_mutex_;
  std::array<Counters, 2> drained_counters_{};  // per parity, as of its last drain
};

}  // namespace perfwatch::collector
