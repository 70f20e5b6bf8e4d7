#include "storage/query_json.h"

#include "common/time_text.h"

namespace perfwatch::storage {
namespace {

nlohmann::json time_or_null(const std::optional<profile::TimePoint>& t) {
  return t ? nlohmann::json(format_time(*t)) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json to_json(const AlertRecord& a) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& e : a.history)
    history.push_back({{"at", format_time(e.at)}, {"state", e.state}, {"value", e.value}, {"summary", e.summary}});
  nlohmann::json deliveries = nlohmann::json::array();
  for (const auto& d : a.deliveries)
    deliveries.push_back({{"receiver", d.receiver}, {"status", d.status}, {"state", d.state},
                          {"attempts", d.attempts}, {"queued_at", format_time(d.queued_at)},
                          {"done_at", time_or_null(d.done_at)}, {"last_error", d.last_error}});
  return {{"fingerprint", a.fingerprint}, {"host", a.host}, {"rule", a.rule}, {"state", a.state},
          {"labels", a.labels}, {"annotations", a.annotations}, {"value", a.value},
          {"starts_at", time_or_null(a.starts_at)}, {"ends_at", time_or_null(a.ends_at)},
          {"updated_at", format_time(a.updated_at)}, {"history", std::move(history)},
          {"deliveries", std::move(deliveries)}};
}

nlohmann::json to_json(const DeployRecord& d) {
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : d.changes)
    changes.push_back({{"kind", c.kind}, {"path", c.path}, {"before", c.before}, {"after", c.after}});
  return {{"host", d.host}, {"target", d.target}, {"at", format_time(d.at)}, {"summary", d.summary},
          {"changes", std::move(changes)}};
}

}  // namespace perfwatch::storage
