#pragma once
// What an alert is: a label set (its identity, hashed into a fingerprint as Prometheus and
// Alertmanager hash theirs), annotations, and a state that moves through pending and firing by the
// `for` / clear rules every rule shares (step()).
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/duration.h"
#include "common/profile.h"

namespace perfwatch::alerts {

using TimePoint = profile::TimePoint;
using Labels = std::map<std::string, std::string>;       // sorted by name
using Annotations = std::map<std::string, std::string>;

// Prometheus' LabelSet fingerprint (64-bit FNV-1a over the sorted names and values, each followed by
// a 0xff byte), as 16 lower-case hex digits: the same fingerprint Alertmanager shows for the alert.
std::string fingerprint(const Labels& labels);

enum class State { inactive, pending, firing };
std::string_view to_string(State state);
std::optional<State> parse_state(std::string_view text);

// When a condition turns into an alert and back.
struct Hold {
  Duration for_{0};       // the condition must hold this long before the alert fires
  Duration clear_for{0};  // and stay clear this long before a firing alert resolves
  // A longer silence between two observations restarts the for/clear clocks: nothing is known about
  // the time in between (the daemon was down, the target was not running).
  Duration max_gap = Duration::max();
};

// One alert's progress, kept between evaluations (and in the database across restarts).
struct Progress {
  State state = State::inactive;
  TimePoint active_since{};                 // pending and firing: since when the condition holds
  TimePoint fired_at{};                     // firing: when it fired (Alertmanager's startsAt)
  std::optional<TimePoint> clear_since;     // firing: since when the condition has been clear
  std::optional<TimePoint> last_end;        // end of the last observation
  bool operator==(const Progress&) const = default;
};

enum class Transition { none, pending, firing, resolved, cancelled };

// An alert as a receiver is told about it: a snapshot taken when the notification was queued.
struct Notice {
  std::string fingerprint;
  bool firing = true;  // else resolved
  Labels labels;
  Annotations annotations;
  TimePoint starts_at;                // when it fired
  std::optional<TimePoint> ends_at;   // when it resolved
  std::string generator_url;          // the dashboard page of what it is about
  bool operator==(const Notice&) const = default;
};

// Feeds the condition as observed over [start, end) (a window; start == end for an instant).
Transition step(Progress& progress, TimePoint start, TimePoint end, bool condition, const Hold& hold);

}  // namespace perfwatch::alerts
