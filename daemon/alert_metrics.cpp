#include "daemon/alert_metrics.h"

#include <chrono>

namespace perfwatch::daemon {

void AlertMetrics::detach() {
  std::lock_guard lock(mutex_);
  engine_ = nullptr;
  dispatcher_ = nullptr;
}

void AlertMetrics::collect(dashboard::MetricsWriter& out) const {
  using Type = dashboard::MetricsWriter::Type;
  std::lock_guard lock(mutex_);
  if (!engine_ || !dispatcher_) return;
  const alerts::EngineStats e = engine_->stats();
  const alerts::DispatcherStats d = dispatcher_->stats();
  out.counter("perfwatch_alert_evaluations_total", "Alert rule evaluations stored", static_cast<double>(e.evaluations));
  out.counter("perfwatch_alert_evaluation_errors_total", "Alert evaluations that failed (database or source errors)",
              static_cast<double>(e.errors));
  out.gauge("perfwatch_alerts_active", "Pending and firing alerts of this host", static_cast<double>(e.active));
  out.counter("perfwatch_alert_notifications_queued_total", "Notifications written to the outbox",
              static_cast<double>(e.notifications));
  out.family("perfwatch_alert_notifications_total", Type::counter, "Notifications sent, by outcome")
      .sample(static_cast<double>(d.delivered), {{"result", "delivered"}})
      .sample(static_cast<double>(d.retried), {{"result", "retried"}})
      .sample(static_cast<double>(d.failed), {{"result", "failed"}});
  out.counter("perfwatch_alert_requests_total", "HTTP requests sent to receivers", static_cast<double>(d.requests));
  out.gauge("perfwatch_alert_outbox_pending", "Notifications in the outbox not yet delivered",
            static_cast<double>(d.backlog.pending));
  out.gauge("perfwatch_alert_outbox_oldest_age_seconds",
            "Seconds since the oldest undelivered notification was queued; 0 when none is",
            d.backlog.oldest ? std::chrono::duration<double>(profile::Clock::now() - *d.backlog.oldest).count() : 0);
}

}  // namespace perfwatch::daemon
