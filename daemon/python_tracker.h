#pragma once
// Which watched processes run CPython, kept in step with the registry: finds the interpreter of
// each process a target with `python: auto|on` watches, registers it with the sampler's frame
// walker and the Python symbolizer, and forgets processes as they go. A process without an
// interpreter yet is looked at again, soon at first (a program linked with libpython maps it
// after exec, while the exec event is already being handled), then less and less often, at
// least once a window (a program may load libpython at any time).
//
// An interpreter that cannot be profiled (unsupported version, debug build) is logged once per
// binary with the reason; the process is then profiled natively.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "collector/oncpu_sampler.h"
#include "collector/python_code.h"
#include "collector/python_interpreter.h"
#include "config/config.h"
#include "daemon/process_registry.h"

namespace perfwatch::daemon {

class PythonTracker {
 public:
  using Clock = std::chrono::steady_clock;

  // max_retry_interval: the longest wait between two looks at a process without an interpreter.
  PythonTracker(collector::OncpuSampler& sampler, collector::PythonSymbolizer& symbolizer,
                collector::PythonDetector& detector, Clock::duration max_retry_interval);

  void watch(ProcessKey key, config::PythonMode mode);
  // The process is no longer watched (exec, reload, PID reuse) or is gone: its walker entry goes;
  // its code objects stay with the symbolizer until release_retired().
  void retire(ProcessKey key);
  // Looks again at the processes whose turn has come; next_retry() says when the next one is due.
  void retry(Clock::time_point now);
  std::optional<Clock::time_point> next_retry() const;
  // A stack the walker just announced: reads its code objects while the process is alive.
  void on_new_stack(const collector::NewPythonStack& stack);

  std::size_t python_processes() const { return python_.size(); }

 private:
  struct Pending {
    config::PythonMode mode;
    int attempts = 0;
    Clock::time_point next_try;
  };
  // true when the process runs a supported CPython (now registered) or never will (unsupported).
  bool try_detect(ProcessKey key, Pending& pending);

  collector::OncpuSampler& sampler_;
  collector::PythonSymbolizer& symbolizer_;
  collector::PythonDetector& detector_;
  Clock::duration max_retry_interval_;
  std::map<ProcessKey, Pending> pending_;    // auto/on processes without an interpreter yet
  std::map<std::int32_t, std::uint32_t> python_;  // pid -> generation registered with the walker
  std::set<std::string> reported_binaries_;  // interpreters already logged at info or warn
};

}  // namespace perfwatch::daemon
