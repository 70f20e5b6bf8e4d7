#include "window_builder.h"

#include <unordered_map>

namespace perfwatch::daemon {
namespace {

struct FrameHash {
  std::size_t operator()(const profile::Frame& f) const {
    std::size_t h = std::hash<std::string>{}(f.name);
    h ^= std::hash<std::string>{}(f.module) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h ^ static_cast<std::size_t>(f.kind);
  }
};

class FrameTable {
 public:
  explicit FrameTable(std::vector<profile::Frame>& frames) : frames_(frames) {}
  std::uint32_t id(profile::Frame&& frame) {
    auto it = ids_.find(frame);
    if (it != ids_.end()) return it->second;
    auto id = static_cast<std::uint32_t>(frames_.size());
    ids_.emplace(frame, id);
    frames_.push_back(std::move(frame));
    return id;
  }

 private:
  std::vector<profile::Frame>& frames_;
  std::unordered_map<profile::Frame, std::uint32_t, FrameHash> ids_;
};

// The sample's user frames, root first.
std::vector<profile::Frame> user_frames(const RawSample& sample, FrameResolver& resolver) {
  std::vector<NativeFrame> native;
  if (!sample.user_ips.empty()) native = resolver.user(sample.process, sample.user_ips);
  std::vector<profile::Frame> out;
  if (resolver.runs_python(sample.process)) {
    PythonSampleStack stack{std::move(native), {}, sample.python.truncated, sample.python.lost};
    auto python = resolver.python(sample.process, sample.python.frames);
    for (std::size_t i = 0; i < python.size(); ++i)
      stack.python.push_back({std::move(python[i]), i < sample.python.entry.size() && sample.python.entry[i]});
    out = merge_python_stack(stack);
  } else {
    for (auto it = native.rbegin(); it != native.rend(); ++it) out.push_back(std::move(it->frame));
  }
  // A user stack the kernel could not take (collision, fault) still counts, under one marker frame.
  if (out.empty()) out.push_back({profile::FrameKind::native, "[unknown user stack]", ""});
  return out;
}

}  // namespace

profile::WindowProfile build_window(WindowInput input, FrameResolver& resolver,
                                    const std::function<std::optional<std::size_t>(ProcessKey)>& target_of) {
  profile::WindowProfile window;
  window.host = std::move(input.host);
  window.start = input.start;
  window.end = input.end;
  window.stats = input.stats;
  window.targets.resize(input.target_names.size());
  for (std::size_t i = 0; i < window.targets.size(); ++i) {
    window.targets[i].name = std::move(input.target_names[i]);
    if (i < input.target_pids.size()) window.targets[i].pids = std::move(input.target_pids[i]);
  }

  FrameTable table(window.profile.frames);
  for (RawSample& sample : input.samples) {
    auto target = target_of(sample.process);
    if (!target || *target >= window.targets.size()) {
      window.stats.lost_unresolved += sample.count;
      continue;
    }
    profile::Stack stack;
    stack.target_index = static_cast<std::uint32_t>(*target);
    stack.count = sample.count;
    for (profile::Frame& frame : user_frames(sample, resolver)) stack.frame_ids.push_back(table.id(std::move(frame)));
    if (!sample.kernel_ips.empty()) {
      auto frames = resolver.kernel(sample.kernel_ips);
      for (auto it = frames.rbegin(); it != frames.rend(); ++it) stack.frame_ids.push_back(table.id(std::move(*it)));
    }
    window.targets[*target].samples += sample.count;
    window.profile.stacks.push_back(std::move(stack));
  }
  // Different raw stacks can symbolize to the same frames (e.g. two call sites in one function).
  profile::merge_identical_stacks(window.profile);
  return window;
}

}  // namespace perfwatch::daemon
