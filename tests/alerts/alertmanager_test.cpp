// Pushing alerts to Debian's prometheus-alertmanager, started by the test, through the outbox: the
// alert shows in its API with our labels, annotations and the same fingerprint, and disappears from
// the active alerts when perfwatch pushes its resolution.
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "alerts/alert_store.h"
#include "alerts/dispatcher.h"
#include "tests/storage/support.h"

namespace perfwatch::alerts {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* alertmanager_binary = "/usr/bin/prometheus-alertmanager";

class Alertmanager {
 public:
  Alertmanager() {
    dir_ = fs::temp_directory_path() / ("pw-alertmanager-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "alertmanager.yml") << "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n";
    {
      Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
      port_ = probe.address().port();
    }
    const std::vector<std::string> argv = {alertmanager_binary,
                                           "--config.file=" + (dir_ / "alertmanager.yml").string(),
                                           "--storage.path=" + (dir_ / "data").string(),
                                           "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                           "--cluster.listen-address="};
    pid_ = fork();
    if (pid_ == 0) {
      const std::string log = (dir_ / "alertmanager.log").string();
      freopen(log.c_str(), "w", stdout);
      freopen(log.c_str(), "a", stderr);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Alertmanager() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // GET path: {status, body}; status 0 when it cannot connect.
  std::pair<int, std::string> get(const std::string& path) const {
    try {
      Poco::Net::HTTPClientSession session("127.0.0.1", port_);
      session.setTimeout(Poco::Timespan(2, 0));
      Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path);
      session.sendRequest(request);
      Poco::Net::HTTPResponse response;
      std::string body;
      Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
      return {static_cast<int>(response.getStatus()), body};
    } catch (const Poco::Exception&) {
      return {0, ""};
    }
  }
  bool ready() const {
    for (int i = 0; i < 100; ++i) {
      if (get("/-/ready").first == 200) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  // Active alerts, polled until `until` holds for them.
  nlohmann::json alerts_when(const std::function<bool(const nlohmann::json&)>& until) const {
    nlohmann::json alerts;
    for (int i = 0; i < 100; ++i) {
      alerts = nlohmann::json::parse(get("/api/v2/alerts?active=true").second, nullptr, false);
      if (alerts.is_array() && until(alerts)) break;
      std::this_thread::sleep_for(100ms);
    }
    return alerts;
  }
  std::string log() const {
    std::ifstream in(dir_ / "alertmanager.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  fs::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

class AlertmanagerTest : public test::PgTest {};

TEST_F(AlertmanagerTest, ReceivesPushedAlertsAndTheirResolution) {
  ASSERT_TRUE(fs::exists(alertmanager_binary)) << "Debian's prometheus-alertmanager is required (setup-deps.sh)";
  Alertmanager am;
  ASSERT_TRUE(am.ready()) << am.log();

  auto conn = storage::connect_database(connect_options());
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  AlertStore store(**conn, "test-host");
  config::Receiver receiver;
  receiver.name = "am";
  receiver.kind = config::ReceiverKind::alertmanager;
  receiver.url = am.url() + "/";
  receiver.backoff_initial = 100ms;
  DispatcherOptions options;
  options.host = "test-host";
  options.connect = connect_options();
  options.external_url = "http://127.0.0.1:7460";
  options.receivers = {{receiver, {}}};
  options.poll = 50ms;
  Dispatcher dispatcher(options, std::make_shared<PocoHttpClient>());

  Notice n;
  n.labels = {{"alertname", "CpuRegression"}, {"host", "test-host"}, {"target", "api"}, {"severity", "warning"}};
  n.fingerprint = fingerprint(n.labels);
  n.annotations = {{"summary", "CPU regression in api: hot self share 30.0% -> 36.0% (+20%)"},
                   {"function", "hot"}};
  n.starts_at = profile::Clock::now() - 10s;
  n.generator_url = "http://127.0.0.1:7460/#/target/api?host=test-host";
  Batch firing;
  firing.notifications.push_back({"am", n});
  ASSERT_TRUE(store.commit(firing).ok());
  dispatcher.wake();

  const nlohmann::json active = am.alerts_when([](const nlohmann::json& a) { return a.size() == 1; });
  ASSERT_EQ(active.size(), 1u) << active.dump() << am.log();
  const nlohmann::json& alert = active[0];
  EXPECT_EQ(alert["labels"], nlohmann::json(n.labels));
  EXPECT_EQ(alert["annotations"]["function"], "hot");
  EXPECT_EQ(alert["annotations"]["summary"], n.annotations["summary"]);
  EXPECT_EQ(alert["generatorURL"], n.generator_url);
  EXPECT_EQ(alert["fingerprint"], n.fingerprint) << "perfwatch's fingerprint is Alertmanager's";
  EXPECT_EQ(alert["status"]["state"], "active");
  EXPECT_EQ(alert["receivers"][0]["name"], "blackhole");

  n.firing = false;
  n.ends_at = profile::Clock::now();
  Batch resolved;
  resolved.notifications.push_back({"am", n});
  ASSERT_TRUE(store.commit(resolved).ok());
  dispatcher.wake();
  const nlohmann::json after = am.alerts_when([](const nlohmann::json& a) { return a.empty(); });
  EXPECT_TRUE(after.empty()) << "resolved alerts are no longer active: " << after.dump();
  // The dispatcher marks a notification delivered after Alertmanager has answered: polled, not read once.
  auto delivered = [&] { return count("SELECT count(*) FROM alert_outbox WHERE state = 'delivered'"); };
  for (int i = 0; i < 100 && delivered() != 2; ++i) std::this_thread::sleep_for(100ms);
  EXPECT_EQ(delivered(), 2);
}

}  // namespace
}  // namespace perfwatch::alerts
