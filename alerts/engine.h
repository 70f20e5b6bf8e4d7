#pragma once
// The alert engine: a background thread that evaluates the rules on what is stored, every
// evaluation_interval or when woken (a window was written), and stores each evaluation's alert
// changes, history and notifications in one transaction (alert_store.h). Window-by-window rules
// (tier, cache floor) read the windows stored since their cursor, in order (a window stored late,
// from the spool after an outage, that starts before the cursor is not judged by them); the burn-rate
// rule looks at totals up to now, once a minute; the regression rules examine their series every
// regression.interval, keeping what they read in memory and reading only newer windows. A database
// outage pauses it; it reloads its state from the database when it reconnects.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "alerts/alert_store.h"
#include "alerts/background.h"
#include "alerts/evaluator.h"
#include "alerts/sources.h"
#include "config/config.h"
#include "storage/store.h"

namespace perfwatch::alerts {

// What the rules read; a null source leaves its rules idle.
struct Sources {
  std::unique_ptr<LatencySource> latency;
  std::unique_ptr<CacheSource> cache;
  std::unique_ptr<ProfileSource> profile;
  std::unique_ptr<DeploySource> deploys;
};
using SourcesFactory = std::function<Sources(pqxx::connection&)>;

// The sources over what perfwatchd stores today: operation latencies, CPU profiles and deploy markers.
// Cache hit rates have no stored source yet: the cache-floor rule stays idle.
Sources stored_sources(pqxx::connection& conn);

struct EngineOptions {
  std::string host;
  storage::ConnectOptions connect;
  config::Alerts alerts;
  std::vector<std::string> profiled_targets;  // targets whose CPU share is watched for regressions
  Duration retention = std::chrono::hours(24 * 14);  // of alert history and finished notifications
  std::function<void()> on_notifications;            // called after notifications were queued
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};
};

struct EngineStats {
  std::uint64_t evaluations = 0;
  std::uint64_t errors = 0;         // evaluations that failed (database or source errors)
  std::uint64_t notifications = 0;  // queued in the outbox
  std::size_t active = 0;           // pending and firing alerts
};

class Engine final : public Background {
 public:
  Engine(EngineOptions options, SourcesFactory sources);
  ~Engine();  // finishes the evaluation in progress, then stops

  void reconfigure(config::Alerts alerts, std::vector<std::string> profiled_targets);
  EngineStats stats() const;

 private:
  // A regression series as read so far: the pinned baseline's windows (read once) first, then the
  // rolling ones, by start; each evaluation drops what left the range and reads only what is new.
  template <typename W>
  struct WindowCache {
    std::vector<W> windows;
    std::size_t pinned = 0;  // how many of windows are the pinned baseline's
    bool pinned_read = false;
    std::optional<TimePoint> last_start;  // of the newest rolling window read
  };
  struct CpuCache {
    FunctionTable functions;
    WindowCache<CpuWindow> windows;
  };
  struct Session;

  void run();
  Result<void> evaluate(Session& session, const EngineOptions& options, TimePoint now);
  Result<void> evaluate_regressions(Session& session, const EngineOptions& options, TimePoint now, Batch& batch);
  template <typename W, typename Fetch>
  static Result<void> refresh(WindowCache<W>& cache, const config::RegressionRule& rule, TimePoint now, Fetch fetch);

  EngineOptions options_;
  SourcesFactory sources_factory_;
  EngineStats stats_;

  // Only the engine's thread touches these.
  bool reset_caches_ = false;  // the regression rule changed
  WindowCache<LatencyWindow> latency_;
  std::map<std::string, CpuCache> cpu_;
  std::optional<TimePoint> next_burn_rate_;
  std::optional<TimePoint> next_regression_;
  std::optional<TimePoint> next_retention_;
};

}  // namespace perfwatch::alerts
