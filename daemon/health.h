#pragma once
// perfwatchd's own health on /metrics: the probe families' states, sampler counts and losses, process
// events, the symbolizer's cache, and the storage writer (database lag, spool). The event loop publishes a snapshot after each
// window; the HTTP threads read it (and the writer's own thread-safe stats) at scrape time.
#include <mutex>
#include <string>
#include <vector>

#include "collector/proc_events.h"
#include "collector/python_code.h"
#include "collector/symbolizer.h"
#include "common/profile.h"
#include "daemon/process_registry.h"
#include "dashboard/metrics.h"
#include "storage/window_writer.h"

namespace perfwatch::daemon {

struct HealthSnapshot {
  std::vector<profile::ProbeState> probes;  // the probe families as they stand
  profile::SamplerStats sampler;  // summed over every closed window
  std::uint64_t windows = 0;
  std::size_t watched_processes = 0;
  RegistryStats registry;
  collector::ProcEventStats events;
  collector::SymbolizerStats symbolizer;
  collector::PythonSymbolizerStats python;
};

class HealthMetrics final : public dashboard::MetricsSource {
 public:
  // `writer` must outlive this object (or be reset with set_writer(nullptr) first).
  HealthMetrics(std::string version, std::string host, const storage::WindowWriter* writer);

  // From the event loop, after each window: adds the window's sampler stats to the totals.
  void window_closed(const profile::SamplerStats& window, std::size_t watched, const RegistryStats& registry,
                     const collector::ProcEventStats& events, const collector::SymbolizerStats& symbolizer,
                     const collector::PythonSymbolizerStats& python);
  void set_writer(const storage::WindowWriter* writer);
  // At start-up, on reload and after each window: the probe families' states.
  void set_probes(std::vector<profile::ProbeState> probes);

  void collect(dashboard::MetricsWriter& out) const override;

 private:
  const std::string version_;
  const std::string host_;
  const profile::TimePoint started_ = profile::Clock::now();
  mutable std::mutex mutex_;
  HealthSnapshot snapshot_;
  const storage::WindowWriter* writer_;
};

}  // namespace perfwatch::daemon
