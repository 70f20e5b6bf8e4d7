#pragma once
// The profile model shared by the collector (which builds one per closed window), storage (which
// writes and reads it) and the CLI/dashboard (which render it).
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace perfwatch::profile {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

enum class FrameKind : std::uint8_t { kernel = 0, native = 1, python = 2 };
std::string_view to_string(FrameKind kind);
bool parse_frame_kind(std::string_view text, FrameKind& out);

struct Frame {
  FrameKind kind = FrameKind::native;
  std::string name;    // symbol, "module+0xOFFSET" when unnamed, or "qualname" for python
  std::string module;  // binary path, "[kernel]" / kernel module name, or python file:line
  bool operator==(const Frame&) const = default;
};

// One distinct call stack and how many samples it got. frame_ids index into Profile::frames,
// root first, leaf last (kernel frames, when present, are the last ones).
struct Stack {
  std::uint32_t target_index = 0;  // into WindowProfile::targets; 0 for merged query results
  std::vector<std::uint32_t> frame_ids;
  std::uint64_t count = 0;
};

struct Profile {
  std::vector<Frame> frames;
  std::vector<Stack> stacks;
  std::uint64_t total() const;
};

// Per-window sampler health, reported with each window and summed by the CLI.
struct SamplerStats {
  std::uint64_t samples = 0;             // samples of watched processes that were counted
  std::uint64_t lost_stack_collision = 0; // stack-map hash collisions (stack id unavailable)
  std::uint64_t lost_stack_error = 0;     // other bpf_get_stackid failures
  std::uint64_t lost_map_full = 0;        // counts map had no room
  std::uint64_t lost_unresolved = 0;      // stack ids no longer in the stack map at drain
};

struct TargetWindow {
  std::string name;
  std::vector<std::int32_t> pids;  // processes matched during the window
  std::uint64_t samples = 0;
};

// One file of a deploy: "before"/"after" identify its content ("build-id:HEX" or
// "file:DEV:INODE:MTIME:SIZE"); "" when it was added or removed.
struct DeployChange {
  std::string kind;  // "executable", "library" or "python"
  std::string path;
  std::string before;
  std::string after;
  bool operator==(const DeployChange&) const = default;
};

// A target's executable, shared libraries or Python files changed: noticed in this window.
struct DeployMarker {
  std::uint32_t target_index = 0;  // into WindowProfile::targets
  TimePoint at;
  std::string summary;  // one line
  std::vector<DeployChange> changes;
  bool operator==(const DeployMarker&) const = default;
};

struct WindowProfile {
  std::string host;
  TimePoint start;
  TimePoint end;
  std::vector<TargetWindow> targets;
  Profile profile;  // stacks' target_index refers to targets
  SamplerStats stats;
  std::vector<DeployMarker> deploys;
};

// Folded stacks as flamegraph.pl reads them: "root;child;leaf COUNT", one stack a line,
// sorted for stable output. Semicolons and newlines inside names are replaced.
std::string to_folded(const Profile& profile);

// Merges stacks that have the same frame sequence (and target), summing counts.
void merge_identical_stacks(Profile& profile);

}  // namespace perfwatch::profile
