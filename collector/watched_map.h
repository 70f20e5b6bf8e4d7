#pragma once
// The `watched` BPF map (probes/watched.h): which processes belong to which target, and which of them
// are profiled. Created on its own, before any skeleton, and shared by fd with every collector
// (OncpuSampler, LatencyProbes, CacheProbes, ProcEvents reuse it before load), so that no collector
// owns it and one that cannot load does not take the others with it.
#include <cstdint>
#include <memory>

#include "collector/files.h"
#include "common/result.h"
#include "probes/watched.h"

namespace perfwatch::collector {

class WatchedMap {
 public:
  static Result<std::unique_ptr<WatchedMap>> create(std::uint32_t max_entries);

  // May run concurrently with the collectors' drains: they only touch the kernel map.
  // profile: sample the process's CPU stacks (WATCH_PROFILE); every watched process is measured otherwise.
  Result<void> watch(std::int32_t tgid, std::uint32_t generation, std::uint32_t target, bool profile);
  void unwatch(std::int32_t tgid);
  int fd() const { return fd_.get(); }

 private:
  explicit WatchedMap(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace perfwatch::collector
