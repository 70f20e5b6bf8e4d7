#pragma once
// Turns rounds of verdicts into alert states, history events and notifications (pure logic; the
// engine stores each batch in one transaction). Notifications are deduplicated by fingerprint: a
// receiver hears of an alert when it fires, when it resolves (send_resolved), and again only after
// its repeat_interval while it keeps firing.
#include <map>
#include <string>
#include <vector>

#include "alerts/model.h"
#include "alerts/rules.h"
#include "config/config.h"

namespace perfwatch::alerts {

// What is known of one alert (pending or firing ones are kept in memory; inactive ones only stored).
struct AlertRecord {
  std::string fingerprint;
  std::string rule;
  Labels labels;
  Annotations annotations;
  double value = 0;
  Progress progress;
  std::optional<TimePoint> resolved_at;         // the end of its last firing
  std::map<std::string, TimePoint> notified;    // receiver -> when it was last given the alert as firing
  bool operator==(const AlertRecord&) const = default;
};

enum class EventKind { pending, firing, resolved, cancelled };
std::string_view to_string(EventKind kind);

struct Event {
  std::string fingerprint;
  TimePoint at;
  EventKind kind = EventKind::pending;
  double value = 0;
  std::string summary;
};

struct Notification {
  std::string receiver;
  Notice notice;
};

// Everything one evaluation changes, stored together.
struct Batch {
  std::map<std::string, AlertRecord> alerts;  // by fingerprint: rows to write, as they are now
  std::vector<Event> events;
  std::vector<Notification> notifications;
  std::map<std::string, TimePoint> cursors;   // rule -> the start of the last window it has judged
  bool empty() const { return alerts.empty() && events.empty() && notifications.empty() && cursors.empty(); }
};

class Evaluator {
 public:
  explicit Evaluator(std::vector<config::Receiver> receivers) : receivers_(std::move(receivers)) {}

  // The pending and firing alerts stored by a previous run.
  void load(std::vector<AlertRecord> active);
  void set_receivers(std::vector<config::Receiver> receivers) { receivers_ = std::move(receivers); }

  // Steps every alert the round observes, and every active alert of its rule it does not (as clear).
  void apply(const Round& round, Batch& out);
  // Firing alerts due again at a receiver (its repeat_interval passed, or it is new).
  void repeat(TimePoint now, Batch& out);

  const std::map<std::string, AlertRecord>& active() const { return active_; }

 private:
  void step_alert(AlertRecord& record, const Round& round, bool condition, Batch& out);
  void notify(AlertRecord& record, const config::Receiver& receiver, TimePoint now, Batch& out);

  std::vector<config::Receiver> receivers_;
  std::map<std::string, AlertRecord> active_;  // pending and firing, by fingerprint
};

}  // namespace perfwatch::alerts
