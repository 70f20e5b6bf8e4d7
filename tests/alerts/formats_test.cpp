// Notification payloads: Alertmanager's webhook payload version 4 field for field, Slack, perfwatch's
// JSON, the push to Alertmanager's API, and the outbox's stored form.
#include "alerts/formats.h"

#include <gtest/gtest.h>

namespace perfwatch::alerts {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TimePoint at(int seconds) { return TimePoint(std::chrono::seconds(1'800'000'000 + seconds)); }  // 2027-01-15T08:00:00Z

Notice notice(const std::string& operation, bool firing) {
  Notice n;
  n.labels = {{"alertname", "LatencyTierViolation"}, {"host", "web-01"}, {"target", "api"},
              {"operation", operation}, {"severity", "warning"}};
  n.fingerprint = fingerprint(n.labels);
  n.firing = firing;
  n.annotations = {{"summary", "p95 of api/" + operation + " is slow"}, {"dashboard", "http://h/#/target/api"}};
  n.starts_at = at(30) + 250ms;
  if (!firing) n.ends_at = at(90);
  n.generator_url = "http://h/#/target/api";
  return n;
}

TEST(Formats, AlertmanagerWebhookVersion4FieldForField) {
  const std::vector<Notice> group = {notice("load", true), notice("read", false)};
  const json p = webhook_payload(config::PayloadFormat::alertmanager, group, "ops", "http://h");
  std::vector<std::string> keys;
  for (const auto& [key, value] : p.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"alerts", "commonAnnotations", "commonLabels", "externalURL", "groupKey",
                                            "groupLabels", "receiver", "status", "truncatedAlerts", "version"}));
  EXPECT_EQ(p["version"], "4");
  EXPECT_EQ(p["groupKey"], "{}:{alertname=\"LatencyTierViolation\", host=\"web-01\", target=\"api\"}");
  EXPECT_EQ(p["truncatedAlerts"], 0);
  EXPECT_EQ(p["status"], "firing");
  EXPECT_EQ(p["receiver"], "ops");
  EXPECT_EQ(p["groupLabels"], (json{{"alertname", "LatencyTierViolation"}, {"host", "web-01"}, {"target", "api"}}));
  EXPECT_EQ(p["commonLabels"],
            (json{{"alertname", "LatencyTierViolation"}, {"host", "web-01"}, {"target", "api"}, {"severity", "warning"}}));
  EXPECT_EQ(p["commonAnnotations"], (json{{"dashboard", "http://h/#/target/api"}}));
  EXPECT_EQ(p["externalURL"], "http://h");
  ASSERT_EQ(p["alerts"].size(), 2u);
  const json& a = p["alerts"][0];
  keys.clear();
  for (const auto& [key, value] : a.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"annotations", "endsAt", "fingerprint", "generatorURL", "labels", "startsAt",
                                            "status"}));
  EXPECT_EQ(a["status"], "firing");
  EXPECT_EQ(a["startsAt"], "2027-01-15T08:00:30.250Z");
  EXPECT_EQ(a["endsAt"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(a["fingerprint"], group[0].fingerprint);
  EXPECT_EQ(a["generatorURL"], "http://h/#/target/api");
  EXPECT_EQ(a["labels"]["operation"], "load");
  EXPECT_EQ(p["alerts"][1]["status"], "resolved");
  EXPECT_EQ(p["alerts"][1]["endsAt"], "2027-01-15T08:01:30Z");

  const std::vector<Notice> resolved = {notice("read", false)};
  EXPECT_EQ(webhook_payload(config::PayloadFormat::alertmanager, resolved, "ops", "http://h")["status"], "resolved");
}

TEST(Formats, SlackMessage) {
  const std::vector<Notice> group = {notice("load", true)};
  const json p = webhook_payload(config::PayloadFormat::slack, group, "chat", "http://h");
  EXPECT_EQ(p["text"], "[FIRING:1] LatencyTierViolation api web-01");
  ASSERT_EQ(p["attachments"].size(), 1u);
  EXPECT_EQ(p["attachments"][0]["color"], "danger");
  EXPECT_EQ(p["attachments"][0]["title"], "p95 of api/load is slow");
  EXPECT_EQ(p["attachments"][0]["title_link"], "http://h/#/target/api");
  const std::vector<Notice> resolved = {notice("load", false)};
  EXPECT_EQ(webhook_payload(config::PayloadFormat::slack, resolved, "chat", "http://h")["attachments"][0]["color"],
            "good");
}

TEST(Formats, PerfwatchJson) {
  const std::vector<Notice> group = {notice("load", true)};
  const json p = webhook_payload(config::PayloadFormat::json, group, "audit", "http://h");
  EXPECT_EQ(p["version"], "1");
  EXPECT_EQ(p["receiver"], "audit");
  EXPECT_EQ(p["status"], "firing");
  EXPECT_EQ(p["alerts"][0]["endsAt"], nullptr);
  EXPECT_EQ(p["alerts"][0]["labels"]["operation"], "load");
}

TEST(Formats, AlertmanagerPushExpiresFiringAlertsAfterFourRepeats) {
  const std::vector<Notice> notices = {notice("load", true), notice("read", false)};
  const json p = alertmanager_push(notices, at(100), 1min);
  ASSERT_TRUE(p.is_array());
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0]["startsAt"], "2027-01-15T08:00:30.250Z");
  EXPECT_EQ(p[0]["endsAt"], "2027-01-15T08:05:40Z");
  EXPECT_EQ(p[1]["endsAt"], "2027-01-15T08:01:30Z");
  EXPECT_EQ(p[0]["generatorURL"], "http://h/#/target/api");
  EXPECT_FALSE(p[0].contains("status"));
}

TEST(Formats, StoredNoticesRoundTrip) {
  for (bool firing : {true, false}) {
    const Notice n = notice("load", firing);
    const Result<Notice> back = notice_from_json(json::parse(to_json(n).dump()));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, n);
  }
  EXPECT_FALSE(notice_from_json(json{{"fingerprint", 3}}).ok());
}

}  // namespace
}  // namespace perfwatch::alerts
