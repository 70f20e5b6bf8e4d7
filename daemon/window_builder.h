#pragma once
// Turns one window's drained BPF counts into a WindowProfile: symbolizes each stack once, orders
// frames root first (user frames, then kernel frames on top) and deduplicates frames. The user
// frames of a process running Python are its Python frames merged with the native ones
// (python_merge.h).
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "collector/python_stack.h"
#include "common/profile.h"
#include "daemon/process_registry.h"
#include "daemon/python_merge.h"

namespace perfwatch::daemon {

// One distinct (process, user stack, kernel stack, Python stack) with its sample count; ips leaf first.
struct RawSample {
  ProcessKey process;
  std::vector<std::uint64_t> user_ips;
  std::vector<std::uint64_t> kernel_ips;
  collector::RawPythonStack python;
  std::uint64_t count = 0;
};

class FrameResolver {
 public:
  virtual ~FrameResolver() = default;
  // Leaf first in, one frame per ip out, same order. NativeFrame's interpreter and eval_loop only
  // matter for processes that run Python.
  virtual std::vector<NativeFrame> user(ProcessKey process, std::span<const std::uint64_t> ips) = 0;
  virtual std::vector<profile::Frame> kernel(std::span<const std::uint64_t> ips) = 0;
  // Whether the process runs a CPython the walker reads: its samples go through merge_python_stack.
  virtual bool runs_python(ProcessKey process) = 0;
  // One frame per Python frame, same order (leaf first).
  virtual std::vector<profile::Frame> python(ProcessKey process, std::span<const py_frame> frames) = 0;
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
