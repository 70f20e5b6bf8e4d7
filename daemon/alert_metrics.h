#pragma once
// The alert engine's and the dispatcher's counts on /metrics: evaluations and their failures, active
// alerts, and notifications queued, delivered, retried and refused.
#include <mutex>

#include "alerts/dispatcher.h"
#include "alerts/engine.h"
#include "dashboard/metrics.h"

namespace perfwatch::daemon {

class AlertMetrics final : public dashboard::MetricsSource {
 public:
  // Both must outlive this object, or be detached first.
  AlertMetrics(const alerts::Engine* engine, const alerts::Dispatcher* dispatcher)
      : engine_(engine), dispatcher_(dispatcher) {}
  // Before the engine and the dispatcher stop: scrapes then show nothing.
  void detach();

  void collect(dashboard::MetricsWriter& out) const override;

 private:
  mutable std::mutex mutex_;
  const alerts::Engine* engine_;
  const alerts::Dispatcher* dispatcher_;
};

}  // namespace perfwatch::daemon
