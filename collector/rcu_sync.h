#pragma once
// Waits until every BPF program that was running when wait() was called has returned. Probes that
// double-buffer their maps by window flip an epoch, wait, then read the old half: no event is
// lost or counted twice at the boundary.
#include <cstdint>

#include "collector/files.h"
#include "common/result.h"

namespace perfwatch::collector {

class RcuSync {
 public:
  static Result<RcuSync> create();
  // Logs (and returns false) when the kernel refuses; the boundary may then be off by in-flight events.
  bool wait() const;
  // Closes a window of a probe that double-buffers by `*epoch & 1` (its mmapped .bss): increments the
  // epoch, waits, and returns the parity whose maps are now quiescent.
  std::uint32_t flip(std::uint32_t* epoch) const;

 private:
  RcuSync() = default;
  UniqueFd inner_;
  UniqueFd outer_;
};

}  // namespace perfwatch::collector
