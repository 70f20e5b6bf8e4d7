#pragma once
// The profile model shared by the collector (which builds one per closed window), storage (which
// writes and reads it) and the CLI/dashboard (which render it).
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/latency.h"
#include "common/probe_state.h"

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

enum class OperationSource : std::uint8_t { uprobe = 0, python = 1, syscall = 2, statsd = 3 };
std::string_view to_string(OperationSource source);
bool parse_operation_source(std::string_view text, OperationSource& out);

// One measured operation of a target in one window (operations without calls are left out).
struct OperationWindow {
  std::uint32_t target_index = 0;  // into WindowProfile::targets
  std::string name;
  OperationSource source = OperationSource::uprobe;
  std::string spec;  // what is measured, as configured: "/usr/bin/app:lookup", "read under /data", ...
  Tier tier = Tier::none;  // none: the operation has its own threshold
  std::uint64_t threshold_ns = 0;
  LatencyHistogram histogram;
  bool operator==(const OperationWindow&) const = default;
};

// Per-window health of latency collection (all targets together).
struct LatencyStats {
  std::uint64_t probe_calls = 0;        // calls measured by the BPF probes
  std::uint64_t lost_no_entry = 0;      // returns whose entry was not seen (attached mid-call, nesting too deep)
  std::uint64_t lost_unwound = 0;       // entries left by longjmp/exceptions, or whose return was missed
  std::uint64_t lost_map_full = 0;      // entries not recorded: per-thread maps full
  std::uint64_t statsd_packets = 0;
  std::uint64_t statsd_timings = 0;     // timer values recorded into an operation
  std::uint64_t statsd_unknown = 0;     // well-formed metrics no operation asked for (counted, not stored)
  std::uint64_t statsd_ignored = 0;     // well-formed non-timer metrics of configured names
  std::uint64_t statsd_malformed = 0;   // malformed lines (the rest of their packet is still read)
  std::uint64_t statsd_oversized = 0;   // packets longer than statsd.max_packet, dropped whole
  bool operator==(const LatencyStats&) const = default;
  LatencyStats& operator+=(const LatencyStats& other);
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

// Kernel and hardware cache counts of one target (or of the whole host) in one window.
struct CacheCounts {
  std::uint64_t page_lookups = 0;     // page cache pages looked up (read(), mmap faults, fault-around)
  std::uint64_t page_added = 0;       // pages added to the page cache
  std::uint64_t page_write_adds = 0;  // of those, pages a write created (not lookups that missed)
  std::uint64_t llc_references = 0;
  std::uint64_t llc_misses = 0;
  std::uint64_t page_misses() const { return page_added > page_write_adds ? page_added - page_write_adds : 0; }
  bool operator==(const CacheCounts&) const = default;
};

// Whether a kernel or hardware source is measured, and how ("lookups: ...; misses: ..."), or why not
// ("unsupported: ...", "disabled").
struct CacheSourceState {
  bool measured = false;
  std::string text = "disabled";
  bool operator==(const CacheSourceState&) const = default;
};

enum class CacheKind : std::uint8_t { page = 0, llc = 1, statsd = 2, usdt = 3 };
std::string_view to_string(CacheKind kind);
bool parse_cache_kind(std::string_view text, CacheKind& out);

// One cache of a target in one window (caches without lookups are left out). The page cache's and
// the LLC's are named "page_cache" and "llc"; application caches have their configured name.
struct CacheWindow {
  std::uint32_t target_index = 0;  // into WindowProfile::targets
  std::string name;
  CacheKind kind = CacheKind::page;
  std::string spec;  // what counts it: the StatsD metrics or USDT probes; "" for page_cache and llc
  std::uint64_t lookups = 0;
  std::uint64_t misses = 0;  // may exceed lookups: readahead and prefetch add pages nobody asked for yet
  std::uint64_t hits() const { return lookups > misses ? lookups - misses : 0; }
  bool operator==(const CacheWindow&) const = default;
};

// Per-window state of cache collection (host-wide).
struct CacheStats {
  CacheSourceState page_cache;
  CacheSourceState llc;
  CacheCounts host;                // every process on the host, watched or not
  std::uint64_t statsd_counts = 0;  // StatsD counter lines recorded into application caches
  bool operator==(const CacheStats&) const = default;
};

struct WindowProfile {
  std::string host;
  TimePoint start;
  TimePoint end;
  std::vector<TargetWindow> targets;
  Profile profile;  // stacks' target_index refers to targets
  SamplerStats stats;
  std::vector<OperationWindow> operations;
  LatencyStats latency;
  std::vector<DeployMarker> deploys;
  std::vector<CacheWindow> caches;
  CacheStats cache;
  std::vector<ProbeState> probes;  // the host's probe families during the window (ProbeStates::list())
};

// Folded stacks as flamegraph.pl reads them: "root;child;leaf COUNT", one stack a line,
// sorted for stable output. Semicolons and newlines inside names are replaced.
std::string to_folded(const Profile& profile);

// Merges stacks that have the same frame sequence (and target), summing counts.
void merge_identical_stacks(Profile& profile);

}  // namespace perfwatch::profile
