// Delivery through the outbox in a real PostgreSQL to real HTTP receivers: formats on the wire,
// deduplication by fingerprint, retries of 5xx with backoff, no retries of 4xx, and a receiver that is
// down while the dispatcher restarts (delivered once it is back, exactly once).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <pqxx/transaction>
#include <thread>

#include "alerts/alert_store.h"
#include "alerts/dispatcher.h"
#include "storage/query.h"
#include "tests/alerts/receiver.h"
#include "tests/storage/support.h"

namespace perfwatch::alerts {
namespace {

using namespace std::chrono_literals;
using test::WebhookReceiver;

constexpr auto wait = 10s;

Notice notice(const std::string& operation, bool firing, const std::string& alertname = "LatencyTierViolation") {
  Notice n;
  n.labels = {{"alertname", alertname}, {"host", "test-host"}, {"target", "api"}, {"operation", operation}};
  n.fingerprint = fingerprint(n.labels);
  n.firing = firing;
  n.annotations = {{"summary", operation + " is slow"}, {"dashboard", "http://127.0.0.1:7460/#/target/api"}};
  n.starts_at = profile::Clock::now() - 1min;
  if (!firing) n.ends_at = profile::Clock::now();
  n.generator_url = n.annotations["dashboard"];
  return n;
}

config::Receiver webhook(const std::string& name, const std::string& url,
                         config::PayloadFormat format = config::PayloadFormat::alertmanager) {
  config::Receiver r;
  r.name = name;
  r.url = url;
  r.format = format;
  r.timeout = 2s;
  r.backoff_initial = 200ms;
  r.backoff_max = 400ms;
  return r;
}

class DeliveryTest : public test::PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (HasFatalFailure()) return;
    auto conn = storage::connect_database(connect_options());
    ASSERT_TRUE(conn.ok()) << conn.error().message;
    conn_ = std::move(*conn);
    store_ = std::make_unique<AlertStore>(*conn_, "test-host");
  }
  void TearDown() override {
    dispatcher_.reset();
    store_.reset();
    conn_.reset();
    PgTest::TearDown();
  }

  void queue(const std::string& receiver, const Notice& n) {
    Batch b;
    b.notifications.push_back({receiver, n});
    ASSERT_TRUE(store_->commit(b).ok());
    if (dispatcher_) dispatcher_->wake();
  }
  void start(std::vector<config::Receiver> receivers) {
    auto resolved = resolve_receivers(receivers);
    ASSERT_TRUE(resolved.ok()) << resolved.error().message;
    DispatcherOptions o;
    o.host = "test-host";
    o.connect = connect_options();
    o.external_url = "http://127.0.0.1:7460";
    o.receivers = std::move(*resolved);
    o.poll = 50ms;
    dispatcher_ = std::make_unique<Dispatcher>(std::move(o), std::make_shared<PocoHttpClient>());
  }
  std::int64_t outbox(const std::string& where) { return count("SELECT count(*) FROM alert_outbox WHERE " + where); }
  // Waits until the condition on the outbox holds.
  bool eventually(const std::string& where, std::int64_t expected = 1) {
    for (auto deadline = std::chrono::steady_clock::now() + wait; std::chrono::steady_clock::now() < deadline;
         std::this_thread::sleep_for(50ms))
      if (outbox(where) == expected) return true;
    return false;
  }

  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<AlertStore> store_;
  std::unique_ptr<Dispatcher> dispatcher_;
  WebhookReceiver receiver_;
};

TEST_F(DeliveryTest, FiringThenResolvedInAlertmanagerFormat) {
  start({webhook("ops", receiver_.url("/alerts"))});
  const Notice firing = notice("load", true);
  queue("ops", firing);
  auto got = receiver_.wait_for(1, wait);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].path, "/alerts");
  EXPECT_EQ(got[0].headers["Content-Type"], "application/json");
  const nlohmann::json body = got[0].json();
  EXPECT_EQ(body["version"], "4");
  EXPECT_EQ(body["status"], "firing");
  EXPECT_EQ(body["receiver"], "ops");
  EXPECT_EQ(body["externalURL"], "http://127.0.0.1:7460");
  ASSERT_EQ(body["alerts"].size(), 1u);
  EXPECT_EQ(body["alerts"][0]["fingerprint"], firing.fingerprint);
  EXPECT_EQ(body["alerts"][0]["labels"]["operation"], "load");
  EXPECT_EQ(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
  ASSERT_TRUE(eventually("state = 'delivered' AND attempts = 1"));

  queue("ops", notice("load", false));
  got = receiver_.wait_for(2, wait);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].json()["status"], "resolved");
  EXPECT_EQ(got[1].json()["alerts"][0]["status"], "resolved");
  EXPECT_NE(got[1].json()["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
  EXPECT_TRUE(eventually("state = 'delivered'", 2));
}

TEST_F(DeliveryTest, AnUndeliveredNotificationIsReplacedByTheAlertsNewerState) {
  receiver_.stop();
  for (bool firing : {true, false, true}) queue("ops", notice("load", firing));
  EXPECT_EQ(outbox("state = 'pending'"), 1) << "one pending notification per receiver and fingerprint";
  EXPECT_EQ(count("SELECT revision FROM alert_outbox"), 3);
  receiver_.start();
  start({webhook("ops", receiver_.url())});
  ASSERT_TRUE(eventually("state = 'delivered'"));
  std::this_thread::sleep_for(500ms);
  const auto got = receiver_.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].json()["status"], "firing") << "the latest state";
}

TEST_F(DeliveryTest, GroupsByAlertnameHostAndTarget) {
  receiver_.stop();
  queue("ops", notice("load", true));
  queue("ops", notice("read", true));
  queue("ops", notice("load", true, "LatencyBurnRate"));
  receiver_.start();
  start({webhook("ops", receiver_.url())});
  const auto got = receiver_.wait_for(2, wait);
  ASSERT_EQ(got.size(), 2u);
  std::map<std::string, std::size_t> alerts_per_group;
  for (const auto& r : got) alerts_per_group[r.json()["groupKey"]] = r.json()["alerts"].size();
  EXPECT_EQ(alerts_per_group["{}:{alertname=\"LatencyTierViolation\", host=\"test-host\", target=\"api\"}"], 2u);
  EXPECT_EQ(alerts_per_group["{}:{alertname=\"LatencyBurnRate\", host=\"test-host\", target=\"api\"}"], 1u);
}

TEST_F(DeliveryTest, RetriesA500WithBackoffThenDeliversOnce) {
  receiver_.respond_with({500, 503});
  start({webhook("ops", receiver_.url())});
  const auto started = std::chrono::steady_clock::now();
  queue("ops", notice("load", true));
  ASSERT_TRUE(eventually("state = 'delivered' AND attempts = 3"));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  // Backoff 200ms then 400ms, each at least half of its step.
  EXPECT_GE(elapsed, 300ms);
  std::this_thread::sleep_for(500ms);
  const auto got = receiver_.requests();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].body, got[2].body) << "the same notification, sent again";
  EXPECT_EQ(dispatcher_->stats().retried, 2u);
  EXPECT_EQ(dispatcher_->stats().delivered, 1u);
}

TEST_F(DeliveryTest, DoesNotRetryA4xxAndKeepsTheReason) {
  receiver_.respond_with({400});
  start({webhook("ops", receiver_.url())});
  queue("ops", notice("load", true));
  ASSERT_TRUE(eventually("state = 'failed' AND last_error = 'HTTP 400: status 400'"));
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(receiver_.requests().size(), 1u);
  EXPECT_EQ(dispatcher_->stats().failed, 1u);
}

// The answer to a send applies to the revision that was sent: a 4xx for an older state of the alert
// does not fail the newer one queued while it was in flight.
TEST_F(DeliveryTest, ARefusalOfAnOlderRevisionLeavesTheNewerOneToBeSent) {
  receiver_.respond_with({400});
  receiver_.hold_next();
  start({webhook("ops", receiver_.url())});
  queue("ops", notice("load", true));
  ASSERT_EQ(receiver_.wait_for(1, wait).size(), 1u);
  queue("ops", notice("load", false));  // revision 2, queued while revision 1 is in flight
  EXPECT_EQ(count("SELECT revision FROM alert_outbox"), 2);
  receiver_.release();  // revision 1 gets a 400
  const auto got = receiver_.wait_for(2, wait);
  ASSERT_EQ(got.size(), 2u) << "the newer revision was marked failed by the older one's answer";
  EXPECT_EQ(got[0].json()["status"], "firing");
  EXPECT_EQ(got[1].json()["status"], "resolved");
  ASSERT_TRUE(eventually("state = 'delivered' AND revision = 2"));
  EXPECT_EQ(dispatcher_->stats().failed, 1u);
  EXPECT_EQ(dispatcher_->stats().delivered, 1u);
}

// A receiver that takes the connection and answers a byte a second holds only its own notifications,
// and only for its timeout: the others go out at once.
TEST_F(DeliveryTest, AReceiverAnsweringAByteASecondDelaysOnlyItself) {
  test::TricklingReceiver slow;
  start({webhook("slow", slow.url()), webhook("ops", receiver_.url())});
  const auto queued_slow = std::chrono::steady_clock::now();
  queue("slow", notice("load", true));
  ASSERT_TRUE(slow.wait_accepted(1, wait));
  const auto queued = std::chrono::steady_clock::now();
  queue("ops", notice("load", true));
  ASSERT_EQ(receiver_.wait_for(1, wait).size(), 1u) << "the other receiver waits behind the slow one";
  EXPECT_LT(std::chrono::steady_clock::now() - queued, 1s);
  ASSERT_TRUE(eventually("receiver = 'slow' AND state = 'pending' AND attempts >= 1"
                         " AND last_error = 'transport: no complete answer within 2s'"));
  EXPECT_LT(std::chrono::steady_clock::now() - queued_slow, 4s) << "its 2 s timeout bounds the whole request";
  EXPECT_TRUE(eventually("receiver = 'ops' AND state = 'delivered'"));
}

TEST_F(DeliveryTest, AReceiverDownAcrossARestartGetsItOnceWhenBack) {
  receiver_.stop();
  start({webhook("ops", receiver_.url())});
  queue("ops", notice("load", true));
  ASSERT_TRUE(eventually("state = 'pending' AND attempts >= 2 AND last_error LIKE 'transport:%'"));
  dispatcher_.reset();  // the daemon stops while the receiver is down
  receiver_.start();
  start({webhook("ops", receiver_.url())});
  ASSERT_TRUE(eventually("state = 'delivered'"));
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(receiver_.requests().size(), 1u) << "exactly once";
}

TEST_F(DeliveryTest, SendsHeaderSecretsFromTheEnvironmentAndFiles) {
  const std::string token_file = std::filesystem::temp_directory_path() / ("pw-token-" + std::to_string(getpid()));
  std::ofstream(token_file) << "file-secret\n";
  ::setenv("PW_TEST_WEBHOOK_AUTH", "Bearer env-secret", 1);
  config::Receiver r = webhook("ops", receiver_.url());
  r.headers = {{"Authorization", "", "PW_TEST_WEBHOOK_AUTH", ""}, {"X-Api-Key", "", "", token_file},
               {"X-Source", "perfwatch", "", ""}};
  start({r});
  queue("ops", notice("load", true));
  const auto got = receiver_.wait_for(1, wait);
  std::filesystem::remove(token_file);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers.at("Authorization"), "Bearer env-secret");
  EXPECT_EQ(got[0].headers.at("X-Api-Key"), "file-secret");
  EXPECT_EQ(got[0].headers.at("X-Source"), "perfwatch");

  r.headers = {{"Authorization", "", "PW_TEST_UNSET_VARIABLE", ""}};
  const auto missing = resolve_receivers({r});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "receiver ops, header Authorization: environment variable PW_TEST_UNSET_VARIABLE is not set");
}

TEST_F(DeliveryTest, SlackAndJsonReceivers) {
  start({webhook("chat", receiver_.url("/slack"), config::PayloadFormat::slack),
         webhook("audit", receiver_.url("/json"), config::PayloadFormat::json)});
  queue("chat", notice("load", true));
  queue("audit", notice("load", true));
  const auto got = receiver_.wait_for(2, wait);
  ASSERT_EQ(got.size(), 2u);
  for (const auto& r : got) {
    if (r.path == "/slack") {
      EXPECT_EQ(r.json()["text"], "[FIRING:1] LatencyTierViolation api test-host");
      EXPECT_EQ(r.json()["attachments"][0]["title"], "load is slow");
    } else {
      EXPECT_EQ(r.path, "/json");
      EXPECT_EQ(r.json()["version"], "1");
      EXPECT_EQ(r.json()["receiver"], "audit");
    }
  }
}

TEST_F(DeliveryTest, AnUnreadableNotificationIsSetAsideAndTheRestDelivered) {
  queue("ops", notice("load", true));
  ASSERT_TRUE(count("SELECT count(*) FROM hosts") == 1);
  {
    auto conn = connection();
    pqxx::work tx(conn);
    tx.exec0("INSERT INTO alert_outbox (host_id, receiver, fingerprint, status, notice)"
             " SELECT id, 'ops', 'deadbeefdeadbeef', 'firing', '{\"firing\": 1}'::jsonb FROM hosts");
    tx.commit();
  }
  start({webhook("ops", receiver_.url())});
  ASSERT_TRUE(eventually("state = 'delivered'"));
  ASSERT_TRUE(eventually("state = 'failed' AND last_error LIKE 'malformed notification:%'"));
  EXPECT_EQ(receiver_.requests().size(), 1u);
}

// HTTPS through Poco NetSSL: a receiver whose certificate the configured CA vouches for gets the
// notification; one the system does not trust is a transport error, retried, never sent in clear.
TEST_F(DeliveryTest, HttpsReceiversAreVerified) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("pw-tls-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string command = std::string(OPENSSL_PATH) +
                              " req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
                              " -addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert +
                              " 2>/dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0);
  WebhookReceiver tls(test::TlsFiles{cert, key});
  config::Receiver trusted = webhook("trusted", tls.url("/trusted"));
  trusted.ca_file = cert;
  config::Receiver untrusted = webhook("untrusted", tls.url("/untrusted"));
  start({trusted, untrusted});
  queue("trusted", notice("load", true));
  queue("untrusted", notice("load", true));
  ASSERT_TRUE(eventually("receiver = 'trusted' AND state = 'delivered'"));
  ASSERT_TRUE(eventually("receiver = 'untrusted' AND state = 'pending' AND attempts >= 1 AND last_error LIKE 'transport:%'"));
  const auto got = tls.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/trusted");
  EXPECT_EQ(got[0].json()["version"], "4");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace perfwatch::alerts
