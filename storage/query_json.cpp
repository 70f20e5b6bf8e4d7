#include "storage/query_json.h"

#include "common/time_text.h"

namespace perfwatch::storage {
namespace {

nlohmann::json time_or_null(const std::optional<profile::TimePoint>& t) {
  return t ? nlohmann::json(format_time(*t)) : nlohmann::json(nullptr);
}

nlohmann::json ratio_or_null(std::optional<double> ratio) { return ratio ? nlohmann::json(*ratio) : nlohmann::json(nullptr); }

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

nlohmann::json to_json(const HostProbes& h) {
  nlohmann::json probes = nlohmann::json::array();
  for (const profile::ProbeState& p : h.probes)
    probes.push_back({{"family", profile::to_string(p.family)}, {"state", profile::to_string(p.status)}, {"detail", p.detail}});
  return {{"host", h.host}, {"window_end", format_time(h.window_end)}, {"probes", std::move(probes)}};
}

std::optional<double> hit_ratio(std::uint64_t lookups, std::uint64_t hits) {
  if (lookups == 0) return std::nullopt;
  return static_cast<double>(hits) / static_cast<double>(lookups);
}

std::optional<double> host_page_hit_ratio(const profile::CacheCounts& host) {
  return hit_ratio(host.page_lookups, host.page_lookups > host.page_misses() ? host.page_lookups - host.page_misses() : 0);
}

Result<nlohmann::json> read_cache_report(Query& query, const std::string& host, const std::string& target,
                                         TimeRange range) {
  auto caches = query.caches(host, target, range);
  if (!caches) return caches.error();
  auto health = query.cache_health(host, range);
  if (!health) return health.error();
  const profile::CacheCounts& counts = health->host;
  nlohmann::json doc = {{"target", target},
                        {"from", format_time(range.from)},
                        {"to", format_time(range.to)},
                        {"caches", nlohmann::json::array()},
                        {"page_cache", {{"measured", health->page_cache.measured}, {"state", health->page_cache.text}}},
                        {"llc", {{"measured", health->llc.measured}, {"state", health->llc.text}}},
                        {"host", {{"windows", health->windows},
                                  {"page_lookups", counts.page_lookups},
                                  {"page_misses", counts.page_misses()},
                                  {"page_added", counts.page_added},
                                  {"page_write_adds", counts.page_write_adds},
                                  {"page_hit_ratio", ratio_or_null(host_page_hit_ratio(counts))},
                                  {"llc_references", counts.llc_references},
                                  {"llc_misses", counts.llc_misses},
                                  {"statsd_counts", health->statsd_counts}}}};
  for (const CacheSummary& c : *caches) {
    auto points = query.cache_series(host, target, c.name, range);
    if (!points) return points.error();
    nlohmann::json series = nlohmann::json::array();
    for (const CachePoint& p : *points)
      series.push_back({{"start", format_time(p.start)}, {"end", format_time(p.end)}, {"lookups", p.lookups},
                        {"hits", p.hits}, {"misses", p.misses}, {"hit_ratio", ratio_or_null(hit_ratio(p.lookups, p.hits))}});
    doc["caches"].push_back({{"name", c.name},       {"kind", c.kind},     {"spec", c.spec},
                             {"lookups", c.lookups}, {"hits", c.hits},     {"misses", c.misses},
                             {"windows", c.windows}, {"hit_ratio", ratio_or_null(hit_ratio(c.lookups, c.hits))},
                             {"series", std::move(series)}});
  }
  return doc;
}

}  // namespace perfwatch::storage
