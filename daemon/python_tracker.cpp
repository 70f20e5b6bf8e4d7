#include "daemon/python_tracker.h"

#include <algorithm>

#include "common/log.h"

namespace perfwatch::daemon {
namespace {

collector::ProcessKey to_collector(ProcessKey k) { return {k.pid, k.generation}; }

// An `on` target expects Python: say why a process is not profiled as such, once it has had a
// second to load its interpreter.
constexpr int kAttemptsBeforeWarning = 10;
// The first look again comes this soon; the wait doubles after each.
constexpr std::chrono::milliseconds kFirstRetry{1};

}  // namespace

PythonTracker::PythonTracker(collector::OncpuSampler& sampler, collector::PythonSymbolizer& symbolizer,
                             collector::PythonDetector& detector, Clock::duration max_retry_interval)
    : sampler_(sampler), symbolizer_(symbolizer), detector_(detector), max_retry_interval_(max_retry_interval) {}

void PythonTracker::watch(ProcessKey key, config::PythonMode mode) {
  if (mode == config::PythonMode::off) return;
  Pending pending{mode};
  if (!try_detect(key, pending)) pending_[key] = pending;
}

bool PythonTracker::try_detect(ProcessKey key, Pending& pending) {
  ++pending.attempts;
  Clock::duration wait = kFirstRetry * (1 << std::min(pending.attempts - 1, 20));
  pending.next_try = Clock::now() + std::min(wait, max_retry_interval_);
  auto found = detector_.detect(key.pid);
  if (!found) {
    log::debug("process gone before its interpreter was looked for", {{"pid", key.pid}, {"error", found.error().message}});
    return true;  // the registry retires it
  }
  if (found->interpreter) {
    const collector::PythonInterpreter& interpreter = *found->interpreter;
    if (auto r = sampler_.watch_python(key.pid, key.generation, interpreter.walker_index, interpreter.runtime); !r) {
      log::warn("cannot walk the process's Python frames", {{"pid", key.pid}, {"error", r.error().message}});
      return true;
    }
    python_[key.pid] = key.generation;
    symbolizer_.add_process(to_collector(key), interpreter);
    // Once per interpreter at info: a host may start many short Python processes.
    log::write(reported_binaries_.insert(interpreter.binary).second ? log::Level::info : log::Level::debug,
               "profiling Python frames",
               {{"pid", key.pid}, {"python", interpreter.version()}, {"binary", interpreter.binary}});
    return true;
  }
  if (!found->unsupported.empty()) {
    if (reported_binaries_.insert(found->binary).second)
      log::warn("CPython found but not supported; its processes are profiled natively",
                {{"pid", key.pid}, {"binary", found->binary}, {"reason", found->unsupported}});
    return true;
  }
  if (pending.mode == config::PythonMode::on && pending.attempts == kAttemptsBeforeWarning)
    log::warn("target has python: on but the process runs no CPython (no _PyRuntime in its executable or a "
              "libpython); profiling it natively",
              {{"pid", key.pid}});
  return false;
}

void PythonTracker::retire(ProcessKey key) {
  pending_.erase(key);
  symbolizer_.retire_process(to_collector(key));
  if (auto it = python_.find(key.pid); it != python_.end() && it->second == key.generation) {
    sampler_.unwatch_python(key.pid);
    python_.erase(it);
  }
}

void PythonTracker::retry(Clock::time_point now) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.next_try > now)
      ++it;
    else
      it = try_detect(it->first, it->second) ? pending_.erase(it) : std::next(it);
  }
}

std::optional<PythonTracker::Clock::time_point> PythonTracker::next_retry() const {
  std::optional<Clock::time_point> next;
  for (const auto& [key, pending] : pending_)
    if (!next || pending.next_try < *next) next = pending.next_try;
  return next;
}

void PythonTracker::on_new_stack(const collector::NewPythonStack& stack) {
  symbolizer_.prefetch({stack.tgid, stack.generation}, stack.frames);
}

}  // namespace perfwatch::daemon
