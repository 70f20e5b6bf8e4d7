#pragma once
// Operation latencies from probes/latency.bpf.c: uprobes on native functions and CPython's USDT
// function probes, attached per watched process of the operation's target (resolved in that
// process: its executable and libraries, PIE or not), and syscall tracepoints for file I/O, attached
// once and filtered in the kernel by target, regular file and path prefix. drain() reads each
// operation's histogram once per window.
#include <bpf/libbpf.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "collector/bpf_skeleton.h"
#include "collector/rcu_sync.h"
#include "common/probe_state.h"
#include "common/profile.h"
#include "common/result.h"
#include "probes/latency.h"

struct latency_bpf;

namespace perfwatch::collector {

// What the probes measure for one operation (its index is its position in the list).
struct LatencyOperation {
  std::string name;
  std::uint32_t target = 0;
  profile::OperationSource source = profile::OperationSource::uprobe;
  std::string spec;  // as in config::Operation
  std::uint32_t syscall = 0;  // enum lat_syscall, for syscall operations (spec is its name)
  std::string path_prefix;
  bool regular_only = true;
  std::uint64_t threshold_ns = 0;
};

struct LatencyDrain {
  std::vector<profile::LatencyHistogram> histograms;  // by operation index
  profile::LatencyStats stats;                        // the probe counters only
};

// Python matching (see latency.bpf.c): the hash of the function name (as the probe reads it, at
// most LAT_PY_NAME_LEN - 1 bytes) and of each module the spec may mean, hashed in reverse.
struct PythonMatch {
  std::uint64_t name_hash = 0;
  std::vector<std::uint64_t> module_hashes;
};
PythonMatch python_match(const std::string& spec);
std::uint64_t python_name_hash(std::string_view name);
std::uint64_t python_module_hash(std::string_view module);

// How syscall operations attach: per-system-call tracepoints (syscalls:sys_enter_NAME) where the
// kernel has them, else raw_syscalls:sys_enter/sys_exit, which run for every system call.
enum class SyscallAttach { automatic, raw_syscalls };

// Between open and load, all the set-up LatencyProbes gives its skeleton: the shared watched map, map
// sizes, read-only data, and which programs load (those of the operations' sources; of the syscall
// programs, the pair this kernel attaches). Also what the verifier test loads with.
Result<SkippedPrograms> configure_latency(latency_bpf& skel, int watched_map_fd,
                                          const std::vector<LatencyOperation>& operations, SyscallAttach syscall_attach);

class LatencyProbes {
 public:
  // watched_map_fd: WatchedMap::fd(). Loads only the programs the operations' sources need; a source
  // whose programs the kernel rejects, or whose syscall tracepoints cannot attach, is reported by
  // state() and the others measure. Fails only when nothing can load (the maps). A function that
  // cannot be found in a process is logged and counted (state(): degraded), not fatal.
  static Result<std::unique_ptr<LatencyProbes>> create(int watched_map_fd, std::vector<LatencyOperation> operations,
                                                       SyscallAttach syscall_attach = SyscallAttach::automatic);
  ~LatencyProbes();
  LatencyProbes(const LatencyProbes&) = delete;
  LatencyProbes& operator=(const LatencyProbes&) = delete;

  // A process of `target` started being watched: attach its target's uprobe and python operations.
  void watch(std::int32_t pid, std::uint32_t target);
  // The process is gone or no longer ours: detach what was attached to it.
  void unwatch(std::int32_t pid);
  // Once per window: attaches operations whose binary a watched process had not mapped yet (shared
  // libraries are mapped after exec, plugins by dlopen) and re-resolves path prefixes.
  void refresh();

  // Closes the current window; histograms of every operation, empty ones included.
  LatencyDrain drain();

  // How operations of this source are measured (running, degraded with what could not attach), or why
  // not (failed with the kernel's reason); off when no operation has this source.
  profile::ProbeState state(profile::OperationSource source) const;

  std::size_t attached_links() const;
  // Program ids, for run-time statistics.
  std::vector<std::uint32_t> prog_ids() const;

 private:
  struct Process {
    std::uint32_t target = 0;
    std::vector<Link> links;
    std::set<std::size_t> pending;  // operations not attached yet (binary not mapped)
    bool python_pending = false;
    int python_attempts = 0;
  };
  using Counters = std::array<std::uint64_t, LAT_COUNTER_MAX>;
  struct SourceState {
    profile::ProbeStatus status = profile::ProbeStatus::off;
    std::string detail;
    std::size_t attach_failures = 0;
    std::string last_failure;
  };

  LatencyProbes() = default;
  Result<void> configure_python();
  // per_syscall: syscalls:sys_enter_NAME tracepoints, else raw_syscalls.
  Result<void> attach_syscalls(bool per_syscall);
  void attach_failed(profile::OperationSource source, const std::string& what);
  void update_syscall_filters();
  // true when done (attached, or failed for good); false to retry later.
  bool attach_uprobe(std::int32_t pid, std::size_t op, Process& process);
  bool attach_python(std::int32_t pid, Process& process);
  void attach_pending(std::int32_t pid, Process& process);
  Counters read_counters(std::uint32_t parity) const;

  SkeletonPtr<latency_bpf> skel_;
  std::vector<LatencyOperation> operations_;
  std::vector<Link> syscall_links_;
  std::array<SourceState, 3> sources_;  // uprobe, python, syscall
  std::optional<RcuSync> rcu_sync_;
  std::map<std::int32_t, Process> processes_;
  std::set<std::string> reported_;  // problems logged once
  std::map<std::size_t, std::pair<std::uint32_t, std::uint64_t>> prefixes_;  // op -> resolved (dev, ino)

  std::mutex drain_mutex_;
  std::array<Counters, 2> drained_counters_{};
};

}  // namespace perfwatch::collector
