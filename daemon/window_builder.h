#pragma once
// Turns one window's drained BPF counts into a WindowProfile: symbolizes each stack once, orders
// frames root first (user frames, then kernel frames on top) and deduplicates frames.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/profile.h"
#include "daemon/process_registry.h"

namespace perfwatch::daemon {

// One distinct (process, user stack, kernel stack) with its sample count; ips leaf first.
struct RawSample {
  ProcessKey process;
  std::vector<std::uint64_t> user_ips;
  std::vector<std::uint64_t> kernel_ips;
  std::uint64_t count = 0;
};

class FrameResolver {
 public:
  virtual ~FrameResolver() = default;
  // Leaf first in, one frame per ip out, same order.
  virtual std::vector<profile::Frame> user(ProcessKey process, std::span<const std::uint64_t> ips) = 0;
  virtual std::vector<profile::Frame> kernel(std::span<const std::uint64_t> ips) = 0;
};

struct WindowInput {
  std::string host;
  profile::TimePoint start;
  profile::TimePoint end;
  std::vector<std::string> target_names;
  std::vector<std::vector<std::int32_t>> target_pids;  // per target
  std::vector<RawSample> samples;
  profile::SamplerStats stats;
};

// target_of maps a sample's process to its target index; samples of unknown processes (a race
// with exit and reload) are counted in stats.lost_unresolved rather than misattributed.
profile::WindowProfile build_window(WindowInput input, FrameResolver& resolver,
                                    const std::function<std::optional<std::size_t>(ProcessKey)>& target_of);

}  // namespace perfwatch::daemon
