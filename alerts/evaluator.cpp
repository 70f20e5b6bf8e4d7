#include "alerts/evaluator.h"

#include <iterator>
#include <set>

namespace perfwatch::alerts {

std::string_view to_string(EventKind kind) {
  switch (kind) {
    case EventKind::pending: return "pending";
    case EventKind::firing: return "firing";
    case EventKind::resolved: return "resolved";
    case EventKind::cancelled: return "cancelled";
  }
  return "pending";
}

void Evaluator::load(std::vector<AlertRecord> active) {
  active_.clear();
  for (AlertRecord& r : active)
    if (r.progress.state != State::inactive) active_.emplace(r.fingerprint, std::move(r));
}

void Evaluator::apply(const Round& round, Batch& out) {
  std::set<std::string> seen;
  for (const Observation& o : round.observations) {
    std::string fp = fingerprint(o.labels);
    if (!seen.insert(fp).second) continue;
    auto it = active_.find(fp);
    if (it == active_.end()) {
      if (!o.condition) continue;  // clear and not active: nothing changes
      it = active_.emplace(fp, AlertRecord{fp, round.rule, o.labels, {}, 0, {}, {}, {}}).first;
    }
    AlertRecord& r = it->second;
    // A clear verdict of a regression rule says nothing new: keep what the alert said when it fired.
    if (!o.annotations.empty()) r.annotations = o.annotations;
    r.value = o.value;
    step_alert(r, round, o.condition, out);
  }
  for (auto& [fp, r] : active_)
    if (r.rule == round.rule && !seen.count(fp)) step_alert(r, round, false, out);
  std::erase_if(active_, [](const auto& entry) { return entry.second.progress.state == State::inactive; });
}

void Evaluator::step_alert(AlertRecord& r, const Round& round, bool condition, Batch& out) {
  const TimePoint fired_at = r.progress.fired_at;
  const Transition t = step(r.progress, round.start, round.end, condition, round.hold);
  const auto summary = r.annotations.count("summary") ? r.annotations.at("summary") : std::string();
  const auto event = [&](EventKind kind, TimePoint at) { out.events.push_back({r.fingerprint, at, kind, r.value, summary}); };
  switch (t) {
    case Transition::none:
      break;
    case Transition::pending:
      event(EventKind::pending, r.progress.active_since);
      break;
    case Transition::firing:
      event(EventKind::firing, r.progress.fired_at);
      for (const config::Receiver& receiver : receivers_) notify(r, receiver, round.end, out);
      break;
    case Transition::resolved:
      r.resolved_at = round.end;
      event(EventKind::resolved, round.end);
      for (const config::Receiver& receiver : receivers_)
        if (receiver.send_resolved) {
          Notice notice{r.fingerprint, false, r.labels, r.annotations, fired_at, round.end, r.annotations["dashboard"]};
          out.notifications.push_back({receiver.name, std::move(notice)});
        }
      r.notified.clear();
      break;
    case Transition::cancelled:
      event(EventKind::cancelled, round.end);
      break;
  }
  out.alerts[r.fingerprint] = r;
}

void Evaluator::notify(AlertRecord& r, const config::Receiver& receiver, TimePoint now, Batch& out) {
  Notice notice{r.fingerprint, true, r.labels, r.annotations, r.progress.fired_at, std::nullopt, r.annotations["dashboard"]};
  out.notifications.push_back({receiver.name, std::move(notice)});
  r.notified[receiver.name] = now;
}

void Evaluator::repeat(TimePoint now, Batch& out) {
  for (auto& [fp, r] : active_) {
    if (r.progress.state != State::firing) continue;
    bool changed = false;
    for (const config::Receiver& receiver : receivers_) {
      auto last = r.notified.find(receiver.name);
      if (last != r.notified.end() && now - last->second < receiver.repeat()) continue;
      notify(r, receiver, now, out);
      changed = true;
    }
    if (changed) out.alerts[fp] = r;
  }
}

}  // namespace perfwatch::alerts
