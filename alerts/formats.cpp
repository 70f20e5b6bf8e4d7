#include "alerts/formats.h"

#include <cstdio>
#include <ctime>

namespace perfwatch::alerts {
namespace {

using nlohmann::json;

std::int64_t to_ms(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
TimePoint from_ms(std::int64_t ms) {
  return TimePoint(std::chrono::duration_cast<profile::Clock::duration>(std::chrono::milliseconds(ms)));
}

// Go's %q for label values: what Alertmanager writes in a groupKey.
std::string quoted(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

// The entries every map of the list has, with the same value.
template <typename Map, typename Get>
Map common_of(std::span<const Notice> group, Get get) {
  if (group.empty()) return {};
  Map common = get(group.front());
  for (const Notice& n : group.subspan(1))
    std::erase_if(common, [&](const auto& entry) {
      const Map& other = get(n);
      auto it = other.find(entry.first);
      return it == other.end() || it->second != entry.second;
    });
  return common;
}

std::string status_of(std::span<const Notice> group) {
  for (const Notice& n : group)
    if (n.firing) return "firing";
  return "resolved";
}

json alert_json(const Notice& n, bool zero_end) {
  json end = n.ends_at ? json(rfc3339(*n.ends_at)) : (zero_end ? json("0001-01-01T00:00:00Z") : json(nullptr));
  return {{"status", n.firing ? "firing" : "resolved"},
          {"labels", n.labels},
          {"annotations", n.annotations},
          {"startsAt", rfc3339(n.starts_at)},
          {"endsAt", std::move(end)},
          {"generatorURL", n.generator_url},
          {"fingerprint", n.fingerprint}};
}

json alertmanager_webhook(std::span<const Notice> group, const std::string& receiver, const std::string& external_url) {
  const Labels labels = group.empty() ? Labels{} : group_labels(group.front());
  json alerts = json::array();
  for (const Notice& n : group) alerts.push_back(alert_json(n, true));
  return {{"version", "4"},
          {"groupKey", group_key(labels)},
          {"truncatedAlerts", 0},
          {"status", status_of(group)},
          {"receiver", receiver},
          {"groupLabels", labels},
          {"commonLabels", common_of<Labels>(group, [](const Notice& n) -> const Labels& { return n.labels; })},
          {"commonAnnotations",
           common_of<Annotations>(group, [](const Notice& n) -> const Annotations& { return n.annotations; })},
          {"externalURL", external_url},
          {"alerts", std::move(alerts)}};
}

std::string annotation(const Notice& n, const char* key) {
  auto it = n.annotations.find(key);
  return it == n.annotations.end() ? std::string() : it->second;
}

json slack_message(std::span<const Notice> group, const std::string& external_url) {
  std::size_t firing = 0;
  for (const Notice& n : group) firing += n.firing ? 1 : 0;
  const Labels labels = group.empty() ? Labels{} : group_labels(group.front());
  std::string text = firing ? "[FIRING:" + std::to_string(firing) + "]" : "[RESOLVED]";
  for (const char* key : {"alertname", "target", "host"})
    if (auto it = labels.find(key); it != labels.end() && !it->second.empty()) text += " " + it->second;
  json attachments = json::array();
  for (const Notice& n : group) {
    attachments.push_back({{"color", n.firing ? "danger" : "good"},
                           {"title", annotation(n, "summary")},
                           {"title_link", n.generator_url},
                           {"text", annotation(n, "description")},
                           {"footer", "perfwatch " + external_url},
                           {"ts", to_ms(n.ends_at.value_or(n.starts_at)) / 1000}});
  }
  return {{"text", text}, {"attachments", std::move(attachments)}};
}

json own_json(std::span<const Notice> group, const std::string& receiver, const std::string& external_url) {
  json alerts = json::array();
  for (const Notice& n : group) alerts.push_back(alert_json(n, false));
  return {{"version", "1"},
          {"receiver", receiver},
          {"status", status_of(group)},
          {"externalURL", external_url},
          {"alerts", std::move(alerts)}};
}

}  // namespace

std::string rfc3339(TimePoint t) {
  const std::int64_t ms = to_ms(t);
  const std::time_t seconds = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  const int millis = static_cast<int>(ms - static_cast<std::int64_t>(seconds) * 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (millis) n += static_cast<std::size_t>(std::snprintf(buf + n, sizeof buf - n, ".%03d", millis));
  std::snprintf(buf + n, sizeof buf - n, "Z");
  return buf;
}

json to_json(const Notice& n) {
  return {{"fingerprint", n.fingerprint},
          {"firing", n.firing},
          {"labels", n.labels},
          {"annotations", n.annotations},
          {"starts_at_ms", to_ms(n.starts_at)},
          {"ends_at_ms", n.ends_at ? json(to_ms(*n.ends_at)) : json(nullptr)},
          {"generator_url", n.generator_url}};
}

Result<Notice> notice_from_json(const json& j) {
  try {
    Notice n;
    n.fingerprint = j.at("fingerprint").get<std::string>();
    n.firing = j.at("firing").get<bool>();
    n.labels = j.at("labels").get<Labels>();
    n.annotations = j.at("annotations").get<Annotations>();
    n.starts_at = from_ms(j.at("starts_at_ms").get<std::int64_t>());
    if (!j.at("ends_at_ms").is_null()) n.ends_at = from_ms(j.at("ends_at_ms").get<std::int64_t>());
    n.generator_url = j.at("generator_url").get<std::string>();
    return n;
  } catch (const json::exception& e) {
    return make_error(std::string("malformed notification: ") + e.what());
  }
}

Labels group_labels(const Notice& notice) {
  Labels out;
  for (const char* key : {"alertname", "host", "target"})
    if (auto it = notice.labels.find(key); it != notice.labels.end()) out.insert(*it);
  return out;
}

std::string group_key(const Labels& group) {
  std::string out = "{}:{";
  for (const auto& [name, value] : group) out += (out.size() > 4 ? ", " : "") + name + "=" + quoted(value);
  return out + "}";
}

json webhook_payload(config::PayloadFormat format, std::span<const Notice> group, const std::string& receiver,
                     const std::string& external_url) {
  switch (format) {
    case config::PayloadFormat::alertmanager: return alertmanager_webhook(group, receiver, external_url);
    case config::PayloadFormat::slack: return slack_message(group, external_url);
    case config::PayloadFormat::json: return own_json(group, receiver, external_url);
  }
  return nullptr;
}

json alertmanager_push(std::span<const Notice> notices, TimePoint now, Duration repeat_interval) {
  json alerts = json::array();
  for (const Notice& n : notices) {
    const TimePoint end = n.ends_at.value_or(now + std::chrono::duration_cast<profile::Clock::duration>(4 * repeat_interval));
    alerts.push_back({{"labels", n.labels},
                      {"annotations", n.annotations},
                      {"startsAt", rfc3339(n.starts_at)},
                      {"endsAt", rfc3339(end)},
                      {"generatorURL", n.generator_url}});
  }
  return alerts;
}

}  // namespace perfwatch::alerts
