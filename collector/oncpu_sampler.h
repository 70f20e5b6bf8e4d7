#pragma once
// On-CPU stack sampling of watched processes: owns probes/oncpu.bpf.c, one cpu-clock perf event
// per online CPU, and the double-buffered count/stack maps that drain() reads once per window.
// For processes registered with watch_python, samples carry the thread's CPython frames too.
#include <bpf/libbpf.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "collector/bpf_skeleton.h"
#include "collector/python_stack.h"
#include "collector/perf_events.h"
#include "collector/rcu_sync.h"
#include "common/profile.h"
#include "common/result.h"
#include "probes/oncpu.h"

struct oncpu_bpf;
struct ring_buffer;

namespace perfwatch::collector {

struct OncpuOptions {
  std::uint32_t frequency_hz = 99;
  std::uint32_t stack_map_entries = 16384;   // per window parity
  std::uint32_t counts_map_entries = 65536;  // per window parity
  std::uint32_t python_process_entries = 8192;     // processes whose Python frames are walked
  std::uint32_t python_max_depth = 64;            // Python frames recorded per sample, 1 to PY_MAX_DEPTH
  std::uint32_t python_stack_entries = 4096;      // per window parity
  std::uint32_t python_thread_entries = 16384;    // threads whose thread state is cached (LRU)
  std::uint32_t python_events_bytes = 1u << 20;   // ring buffer announcing new Python stacks
};

// A Python stack the walker saw for the first time in this window, announced at once so that its
// code objects can be read while the process is alive.
struct NewPythonStack {
  std::int32_t tgid = 0;
  std::uint32_t generation = 0;
  std::span<const py_frame> frames;  // leaf first
};

struct RawStack {
  std::int32_t tgid = 0;
  std::uint32_t generation = 0;
  std::vector<std::uint64_t> user_ips;    // leaf first; empty for an exiting process
  std::vector<std::uint64_t> kernel_ips;  // leaf first; empty for samples taken in user mode
  RawPythonStack python;
  std::uint64_t count = 0;
};

// The Python walker's health over a window.
struct PythonSamplerStats {
  std::uint64_t samples = 0;          // samples with Python frames
  std::uint64_t truncated = 0;        // of which deeper than the depth limit
  std::uint64_t no_thread_state = 0;  // samples of Python processes in threads without a thread state
  std::uint64_t lost_read_error = 0;  // interpreter memory unreadable mid-walk
  std::uint64_t lost_collision = 0;   // Python stack hash taken by another stack
  std::uint64_t lost_map_full = 0;    // Python stack map full
  std::uint64_t lost_unresolved = 0;  // Python stacks no longer in their map at drain
  std::uint64_t event_drops = 0;      // new stacks not announced (ring buffer full)
};

struct DrainResult {
  std::vector<RawStack> stacks;
  profile::SamplerStats stats;
  PythonSamplerStats python;
  std::uint64_t not_watched = 0;   // samples of processes not watched, idle included
  std::uint64_t not_profiled = 0;  // samples of watched processes without WATCH_PROFILE (`profile: false`)
};

// Between open and load, all the set-up the sampler gives its skeleton: the shared watched map, map
// sizes and read-only data. Also what the verifier test (tests/bpf/verifier_test.cpp) loads with.
Result<void> configure_oncpu(oncpu_bpf& skel, int watched_map_fd, const OncpuOptions& options);

class OncpuSampler {
 public:
  // watched_map_fd: WatchedMap::fd(); only its processes with WATCH_PROFILE are sampled.
  static Result<std::unique_ptr<OncpuSampler>> create(int watched_map_fd, const OncpuOptions& options);
  ~OncpuSampler();
  OncpuSampler(const OncpuSampler&) = delete;
  OncpuSampler& operator=(const OncpuSampler&) = delete;

  // Walk the Python frames of a watched process's samples: layout is its CPython version's index in
  // python_walker_layouts(), runtime the address of _PyRuntime in the process.
  Result<void> watch_python(std::int32_t tgid, std::uint32_t generation, std::uint32_t layout, std::uint64_t runtime);
  void unwatch_python(std::int32_t tgid);
  // Readable when new Python stacks were announced: for the daemon's epoll loop.
  int python_stacks_fd() const;
  // Calls on_stack for each announced stack, without waiting.
  void poll_python_stacks(const std::function<void(const NewPythonStack&)>& on_stack);

  // Closes the current window and returns what it collected. Serialized internally.
  DrainResult drain();

  // Samples counted since load, in either window parity (drained or not).
  std::uint64_t total_samples() const;

  // For reading the program's run-time stats (run_time_ns / run_cnt).
  int prog_fd() const;
  std::uint32_t prog_id() const;

 private:
  using Counters = std::array<std::uint64_t, std::size_t{ONCPU_COUNTER_MAX} + PY_COUNTER_MAX>;

  OncpuSampler() = default;
  Result<void> attach_all_cpus(std::uint32_t frequency_hz);
  Counters read_counters(std::uint32_t parity) const;
  static int on_python_stack(void* ctx, void* data, std::size_t size);

  SkeletonPtr<oncpu_bpf> skel_;
  // Perf-event links; libbpf closes each perf event fd when its link is destroyed.
  std::vector<Link> links_;
  std::optional<RcuSync> rcu_sync_;
  std::uint32_t stack_map_entries_ = 0;
  std::uint32_t counts_map_entries_ = 0;
  ring_buffer* python_ring_ = nullptr;
  const std::function<void(const NewPythonStack&)>* on_python_stack_ = nullptr;  // set during poll

  std::mutex drain_mutex_;
  std::array<Counters, 2> drained_counters_{};  // per parity, as of its last drain
};

}  // namespace perfwatch::collector
