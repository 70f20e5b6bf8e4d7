#pragma once
// Notification payloads (pure functions of the notices of one group):
//   alertmanager  Alertmanager's webhook payload, version 4, field for field: version, groupKey,
//                 truncatedAlerts, status, receiver, groupLabels, commonLabels, commonAnnotations,
//                 externalURL, alerts[] (status, labels, annotations, startsAt, endsAt, generatorURL,
//                 fingerprint). Firing alerts carry endsAt "0001-01-01T00:00:00Z", as Alertmanager's do.
//   slack         a Slack incoming-webhook message: text, and one attachment per alert.
//   json          perfwatch's own: {version: "1", receiver, status, externalURL, alerts[]} with the
//                 alerts as in the alertmanager format (endsAt null while firing).
// And the body of a push to Alertmanager's API (POST /api/v2/alerts): the alerts, each firing one with
// endsAt = now + 4 x repeat_interval so that Alertmanager resolves it by itself if pushes stop, as
// Prometheus does.
// Notices of one alertname, host and target form a group (one webhook request); groupKey follows
// Alertmanager's format for a route grouping by those labels: {}:{alertname="X", host="h", target="t"}.
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "alerts/model.h"
#include "common/result.h"
#include "config/config.h"

namespace perfwatch::alerts {

// The notice as the outbox stores it, and back.
nlohmann::json to_json(const Notice& notice);
Result<Notice> notice_from_json(const nlohmann::json& json);

// The labels a webhook groups notices by, and the group's key.
Labels group_labels(const Notice& notice);
std::string group_key(const Labels& group);

nlohmann::json webhook_payload(config::PayloadFormat format, std::span<const Notice> group, const std::string& receiver,
                               const std::string& external_url);
nlohmann::json alertmanager_push(std::span<const Notice> notices, TimePoint now, Duration repeat_interval);

// RFC 3339 UTC with milliseconds when there are any, as Alertmanager reads and writes times.
std::string rfc3339(TimePoint t);

}  // namespace perfwatch::alerts
