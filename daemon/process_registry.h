#pragma once
// Which live processes belong to which target. Fed by the initial /proc scan, process
// exec/fork/exit events from BPF, and a rescan every window (which catches anything an event missed).
// A PID that is reused gets a new generation, so samples and symbols of the old and new process
// never mix.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "daemon/proc_reader.h"
#include "daemon/target_matcher.h"

namespace perfwatch::daemon {

struct ProcessKey {
  std::int32_t pid = 0;
  std::uint32_t generation = 0;
  auto operator<=>(const ProcessKey&) const = default;
};

// What the registry drives: the BPF watched map and the symbolizer.
class ProcessSink {
 public:
  virtual ~ProcessSink() = default;
  // profiled: the target's `profile:`; every target's processes are watched, only profiled ones sampled.
  virtual void watch(ProcessKey key, std::size_t target, bool profiled) = 0;
  // The PID no longer belongs to this key (exec into a non-target, reload, exit seen by rescan).
  virtual void unwatch(ProcessKey key) = 0;
  // The process is gone; its symbols are still needed until its last window is closed.
  virtual void retire(ProcessKey key) = 0;
  // The window holding the process's last samples was closed.
  virtual void release(ProcessKey key) = 0;
};

struct RegistryStats {
  std::uint64_t matched = 0;    // processes that started being watched
  std::uint64_t exited = 0;
  std::uint64_t reused_pids = 0;  // a watched PID found belonging to a new process
  std::uint64_t races = 0;      // processes that vanished while being read
};

class ProcessRegistry {
 public:
  ProcessRegistry(ProcSource& proc, ProcessSink& sink, std::int32_t self_pid);

  // Installs new targets (start-up or reload) and re-evaluates every live process against them.
  // Every target's processes are watched; profiled (per target, its `profile:`) only says which
  // of them the sink samples.
  void set_targets(TargetMatcher matcher, std::vector<bool> profiled);

  void rescan();
  void on_exec(std::int32_t pid);
  // BPF already watches a forked child of a watched process under its parent's generation.
  void on_fork(std::int32_t pid, std::int32_t ppid, std::uint32_t generation);
  // generation is the one BPF had for the PID: an exit that arrives after the PID was already
  // re-registered (reused) must not end the new process.
  void on_exit(std::int32_t pid, std::uint32_t generation);

  std::optional<std::size_t> target_of(ProcessKey key) const;
  std::optional<ProcessKey> key_of(std::int32_t pid) const;

  // Per target, the PIDs watched at any time during the current window.
  std::vector<std::vector<std::int32_t>> window_pids(std::size_t target_count) const;
  // Per target, its live process that started last (the one a restart or a deploy brought), if any.
  std::vector<std::optional<ProcessKey>> newest_processes(std::size_t target_count) const;
  // Ends the window: releases the processes that exited during it. Call after its samples have been
  // attributed (target_of still knows them until here).
  void end_window();

  const RegistryStats& stats() const { return stats_; }
  std::size_t live_count() const { return live_.size(); }

 private:
  struct Watched {
    std::uint32_t generation;
    std::size_t target;
    std::uint64_t start_time;
  };
  struct Retired {
    ProcessKey key;
    std::size_t target;
  };

  void consider(std::int32_t pid);
  void start_watching(const ProcessInfo& info, std::size_t target);
  void stop_watching(std::int32_t pid, bool exited);
  bool profiled(std::size_t target) const;

  ProcSource& proc_;
  ProcessSink& sink_;
  std::int32_t self_pid_;
  TargetMatcher matcher_{{}};
  std::vector<bool> profiled_;
  std::uint32_t next_generation_ = 1;
  std::map<std::int32_t, Watched> live_;
  std::vector<Retired> retired_;  // exited or replaced during the current window
  // Processes known not to match, by start time, so a rescan does not re-read them every window.
  std::map<std::int32_t, std::uint64_t> unmatched_;
  RegistryStats stats_;
};

}  // namespace perfwatch::daemon
