#pragma once
// Which of perfwatchd's probe families run on this host, and how, or why not: stored per host and
// window (storage's host_windows), shown by /metrics, `perfwatch targets`, `perfwatch latency` and the
// dashboard. A family that cannot load or attach costs only what it measures.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace perfwatch::profile {

enum class OperationSource : std::uint8_t;  // common/profile.h

enum class ProbeFamily : std::uint8_t {
  cpu_sampler,      // on-CPU stacks (perf_event + oncpu.bpf.c)
  python_stacks,    // CPython frames in those stacks (the sampler's walker)
  process_events,   // exec/fork/exit from procevents.bpf.c; without it, a /proc rescan every window
  latency_uprobe,   // uprobe operations
  latency_python,   // python operations (CPython's USDT probes)
  latency_syscall,  // syscall operations (tracepoints)
  page_cache,
  llc,
  usdt_caches,      // application caches counted by USDT probes
  statsd,           // the StatsD listener (statsd operations and caches)
};
inline constexpr std::array all_probe_families{
    ProbeFamily::cpu_sampler,     ProbeFamily::python_stacks,   ProbeFamily::process_events, ProbeFamily::latency_uprobe,
    ProbeFamily::latency_python,  ProbeFamily::latency_syscall, ProbeFamily::page_cache,     ProbeFamily::llc,
    ProbeFamily::usdt_caches,     ProbeFamily::statsd};
std::string_view to_string(ProbeFamily family);
bool parse_probe_family(std::string_view text, ProbeFamily& out);

enum class ProbeStatus : std::uint8_t {
  off,          // not configured, or not needed by the configuration
  running,      // measuring
  degraded,     // measuring part of what was asked, or through a fallback (the detail says which)
  failed,       // cannot load or attach here (the detail has the kernel's reason)
  unsupported,  // the kernel or the hardware lacks what it needs
};
inline constexpr std::array all_probe_statuses{ProbeStatus::off, ProbeStatus::running, ProbeStatus::degraded,
                                               ProbeStatus::failed, ProbeStatus::unsupported};
std::string_view to_string(ProbeStatus status);
bool parse_probe_status(std::string_view text, ProbeStatus& out);
// running and degraded measure something.
inline bool measures(ProbeStatus status) { return status == ProbeStatus::running || status == ProbeStatus::degraded; }

struct ProbeState {
  ProbeFamily family = ProbeFamily::cpu_sampler;
  ProbeStatus status = ProbeStatus::off;
  std::string detail;  // what measures it, or why nothing does
  // "failed: latency: load: ...", as the cache states read ("unsupported: ...").
  std::string text() const;
  bool operator==(const ProbeState&) const = default;
};

// One state per family, in all_probe_families order.
class ProbeStates {
 public:
  ProbeStates();
  ProbeState& operator[](ProbeFamily family) { return states_[static_cast<std::size_t>(family)]; }
  const ProbeState& operator[](ProbeFamily family) const { return states_[static_cast<std::size_t>(family)]; }
  void set(ProbeFamily family, ProbeStatus status, std::string detail);
  const std::vector<ProbeState>& list() const { return states_; }
  bool operator==(const ProbeStates&) const = default;

 private:
  std::vector<ProbeState> states_;
};

// The family that measures operations of this source.
ProbeFamily family_of(OperationSource source);

// Why an operation of this source has no calls when its family does not measure: "not measured:
// latency_python failed: ..."; nullopt when the family measures.
std::optional<std::string> not_measured(OperationSource source, const std::vector<ProbeState>& probes);

}  // namespace perfwatch::profile
