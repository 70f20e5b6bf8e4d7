#include "process_registry.h"

#include <algorithm>

#include "common/log.h"

namespace perfwatch::daemon {

ProcessRegistry::ProcessRegistry(ProcSource& proc, ProcessSink& sink, std::int32_t self_pid)
    : proc_(proc), sink_(sink), self_pid_(self_pid) {}

void ProcessRegistry::set_targets(TargetMatcher matcher, std::vector<bool> profiled) {
  matcher_ = std::move(matcher);
  profiled_ = std::move(profiled);
  unmatched_.clear();
  // Every live process is judged again: one may now belong to another target, or to none.
  std::vector<std::int32_t> pids;
  for (const auto& [pid, w] : live_) pids.push_back(pid);
  for (std::int32_t pid : pids) stop_watching(pid, /*exited=*/false);
  rescan();
}

bool ProcessRegistry::profiled(std::size_t target) const { return target < profiled_.size() && profiled_[target]; }

void ProcessRegistry::start_watching(const ProcessInfo& info, std::size_t target) {
  Watched w{next_generation_++, target, info.start_time};
  if (next_generation_ == 0) next_generation_ = 1;  // generation 0 is "never watched"
  const ProcessKey key{info.pid, w.generation};
  unmatched_.erase(info.pid);
  sink_.watch(key, target, profiled(target));
  // Gone since it was read (or a zombie), its exit went unseen: BPF reports the exits of watched
  // processes only. Its PID may already be another process's, which must not be sampled as this
  // target: the key is dropped, so whatever it counted is attributed to no target. Checked once
  // the watch is in place, so that from here on BPF sees the exit.
  if (proc_.start_time(info.pid) != info.start_time) {
    ++stats_.races;
    sink_.unwatch(key);
    sink_.retire(key);
    return;
  }
  live_[info.pid] = w;
  ++stats_.matched;
  log::debug("watching process", {{"pid", info.pid}, {"target", target}, {"generation", w.generation}});
}

void ProcessRegistry::stop_watching(std::int32_t pid, bool exited) {
  auto it = live_.find(pid);
  if (it == live_.end()) return;
  ProcessKey key{pid, it->second.generation};
  retired_.push_back({key, it->second.target});
  live_.erase(it);
  if (exited) {
    ++stats_.exited;
  } else {
    sink_.unwatch(key);
  }
  sink_.retire(key);
}

void ProcessRegistry::consider(std::int32_t pid) {
  if (pid == self_pid_) return;
  auto info = proc_.read(pid);
  if (!info) {
    ++stats_.races;
    unmatched_[pid] = 0;  // gone, or a zombie: not read again until its PID has a new process
    return;
  }
  if (auto target = matcher_.match(*info)) {
    start_watching(*info, *target);
  } else {
    unmatched_[pid] = info->start_time;
  }
}

void ProcessRegistry::rescan() {
  std::vector<std::int32_t> pids = proc_.list_pids();
  std::sort(pids.begin(), pids.end());
  // Watched processes that vanished without an exit event (or whose PID was reused).
  for (auto it = live_.begin(); it != live_.end();) {
    const std::int32_t pid = it->first;
    const std::uint64_t started = it->second.start_time;
    ++it;  // stop_watching erases the current element
    if (!std::binary_search(pids.begin(), pids.end(), pid)) {
      stop_watching(pid, /*exited=*/true);
    } else if (auto now = proc_.start_time(pid); now && *now != started) {
      ++stats_.reused_pids;
      stop_watching(pid, /*exited=*/false);
    }
  }
  for (auto it = unmatched_.begin(); it != unmatched_.end();) {
    it = std::binary_search(pids.begin(), pids.end(), it->first) ? std::next(it) : unmatched_.erase(it);
  }
  for (std::int32_t pid : pids) {
    if (live_.contains(pid)) continue;
    if (auto it = unmatched_.find(pid); it != unmatched_.end()) {
      const auto started = proc_.start_time(pid);
      if (!started || *started == it->second) continue;  // the same process, or one that has exited
    }
    consider(pid);
  }
}

void ProcessRegistry::on_exec(std::int32_t pid) {
  // exec replaces the program (and so its symbols): a watched process starts a new generation.
  stop_watching(pid, /*exited=*/false);
  unmatched_.erase(pid);
  consider(pid);
}

void ProcessRegistry::on_fork(std::int32_t pid, std::int32_t ppid, std::uint32_t generation) {
  auto parent = live_.find(ppid);
  auto start = proc_.start_time(pid);
  if (parent == live_.end() || parent->second.generation != generation || !start) {
    // The parent is no longer ours (or the child already exited): judge the child on its own.
    consider(pid);
    return;
  }
  live_[pid] = Watched{generation, parent->second.target, *start};
  unmatched_.erase(pid);
  ++stats_.matched;
  sink_.watch({pid, generation}, parent->second.target, profiled(parent->second.target));
}

void ProcessRegistry::on_exit(std::int32_t pid, std::uint32_t generation) {
  if (auto it = live_.find(pid); it != live_.end() && it->second.generation == generation)
    stop_watching(pid, /*exited=*/true);
  unmatched_.erase(pid);
}

std::optional<std::size_t> ProcessRegistry::target_of(ProcessKey key) const {
  if (auto it = live_.find(key.pid); it != live_.end() && it->second.generation == key.generation)
    return it->second.target;
  for (const Retired& r : retired_)
    if (r.key == key) return r.target;
  return std::nullopt;
}

std::optional<ProcessKey> ProcessRegistry::key_of(std::int32_t pid) const {
  if (auto it = live_.find(pid); it != live_.end()) return ProcessKey{pid, it->second.generation};
  return std::nullopt;
}

std::vector<std::vector<std::int32_t>> ProcessRegistry::window_pids(std::size_t target_count) const {
  std::vector<std::vector<std::int32_t>> pids(target_count);
  for (const auto& [pid, w] : live_)
    if (w.target < target_count) pids[w.target].push_back(pid);
  for (const Retired& r : retired_)
    if (r.target < target_count) pids[r.target].push_back(r.key.pid);
  for (auto& list : pids) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  return pids;
}

std::vector<std::optional<ProcessKey>> ProcessRegistry::newest_processes(std::size_t target_count) const {
  std::vector<std::optional<ProcessKey>> newest(target_count);
  std::vector<std::uint64_t> started(target_count, 0);
  for (const auto& [pid, w] : live_)
    if (w.target < target_count && (!newest[w.target] || w.start_time >= started[w.target])) {
      newest[w.target] = ProcessKey{pid, w.generation};
      started[w.target] = w.start_time;
    }
  return newest;
}

void ProcessRegistry::end_window() {
  for (const Retired& r : retired_) sink_.release(r.key);
  retired_.clear();
}

}  // namespace perfwatch::daemon
