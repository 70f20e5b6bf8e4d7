// The dashboard API over real HTTP (Poco server and client) against a real PostgreSQL, with windows
// written by the real storage writer.
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <gtest/gtest.h>

#include <pqxx/transaction>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "alerts/alert_store.h"
#include "dashboard/api.h"
#include "dashboard/server.h"
#include "storage/rollups.h"
#include "tests/storage/support.h"

namespace perfwatch::dashboard {
namespace {

using test::at;

struct Reply {
  int status = 0;
  std::string body;
  Poco::Net::HTTPResponse response;
};

Reply http(std::uint16_t port, const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers = {},
           const std::string& method = "GET") {
  Poco::Net::HTTPClientSession session("127.0.0.1", port);
  session.setTimeout(Poco::Timespan(30, 0));
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  for (const auto& [k, v] : headers) request.set(k, v);
  session.sendRequest(request);
  Reply reply;
  std::istream& in = session.receiveResponse(reply.response);
  reply.body.assign(std::istreambuf_iterator<char>(in), {});
  reply.status = reply.response.getStatus();
  return reply;
}

nlohmann::json json_of(const Reply& r) { return nlohmann::json::parse(r.body); }

const nlohmann::json* child(const nlohmann::json& node, const std::string& name) {
  for (const auto& c : node["children"])
    if (c["name"] == name) return &c;
  return nullptr;
}

// Windows at 1000 s and 1010 s (the support's sample: api has main;parse;vfs_read 3 and main;serve 2),
// and at 2000 s one where api's serve grew: main;parse;vfs_read 2 and main;serve 8.
class ApiTest : public test::PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (HasFatalFailure()) return;
    auto store = storage::PgStore::connect(connect_options());
    ASSERT_TRUE(store) << store.error().message;
    write_windows(**store);
    if (HasFatalFailure()) return;
    start("");
  }
  // The fixture's windows; a suite with data of its own overrides this.
  virtual void write_windows(storage::PgStore& store) {
    for (std::int64_t t : {1000, 1010}) ASSERT_TRUE(store.write_window(test::sample_window("web-01", at(t))));
    profile::WindowProfile grown = test::sample_window("web-01", at(2000));
    grown.profile.stacks = {{0, {0, 1, 2}, 2}, {0, {0, 3}, 8}, {1, {0, 4}, 5}};
    ASSERT_TRUE(store.write_window(grown));
    ASSERT_TRUE(store.write_window(test::sample_window("web-02", at(1000))));
  }
  void TearDown() override {
    server_.reset();
    pool_.reset();
    PgTest::TearDown();
  }

  void start(const std::string& token, int threads = 4, QueryPool::Factory factory = nullptr) {
    server_.reset();
    pool_ = std::make_unique<QueryPool>(factory ? factory : QueryPool::connect_with(connect_options()), threads,
                                        std::chrono::seconds(5));
    ApiOptions options;
    options.host = "web-01";
    options.version = "test";
    options.frequency_hz = 100;
    options.tiers_ns = {100'000'000, 500'000'000, 2'000'000'000, 5'000'000'000, 10'000'000'000};
    options.window = std::chrono::seconds(10);
    options.now = [this] { return now_; };
    api_ = std::make_unique<Api>(*pool_, options, std::vector<const MetricsSource*>{});
    router_ = std::make_unique<Router>(token);
    api_->install(*router_);
    ServerOptions server_options;
    server_options.listen = "127.0.0.1:0";
    server_options.threads = threads;
    auto server = Server::start(server_options, *router_);
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
  }

  Reply get(const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return http(server_->port(), path, headers);
  }

  profile::TimePoint now_ = at(5000);
  std::unique_ptr<QueryPool> pool_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Server> server_;
};

TEST_F(ApiTest, ListsTheTargetsOfTheHostInRange) {
  Reply r = get("/api/v1/targets?from=900&to=1500");
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json doc = json_of(r);
  EXPECT_EQ(doc["host"], "web-01");
  ASSERT_EQ(doc["targets"].size(), 2u);
  EXPECT_EQ(doc["targets"][0]["name"], "api");
  EXPECT_EQ(doc["targets"][0]["samples"], 10);
  EXPECT_EQ(doc["targets"][0]["windows"], 2);
  EXPECT_EQ(doc["targets"][0]["pids"], (nlohmann::json{100, 101}));
  EXPECT_EQ(doc["targets"][1]["name"], "worker");
  // Every host with host=*.
  EXPECT_EQ(json_of(get("/api/v1/targets?from=900&to=1500&host=*"))["targets"].size(), 4u);
  // The default range is the last hour before now (5000 s): the window at 2000 s only.
  EXPECT_EQ(json_of(get("/api/v1/targets"))["targets"][0]["windows"], 1);
}

// Every query of the API has a deadline (PostgreSQL's statement_timeout on the pool's connections): one
// that waits on a lock answers 503 when it passes, instead of holding the request and its thread for as
// long as the lock is held.
TEST_F(ApiTest, AQueryPastTheQueryTimeoutAnswers503) {
  storage::ConnectOptions options = connect_options();
  options.statement_timeout = std::chrono::milliseconds(300);
  start("", 4, QueryPool::connect_with(options));
  pqxx::connection locker = connection();
  pqxx::work lock(locker);
  lock.exec0("LOCK TABLE windows IN ACCESS EXCLUSIVE MODE");
  const auto begin = std::chrono::steady_clock::now();
  Reply r = get("/api/v1/targets?from=900&to=1500");
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("statement timeout"), std::string::npos) << r.body;
  lock.abort();
  EXPECT_EQ(get("/api/v1/targets?from=900&to=1500").status, 200);
}

TEST_F(ApiTest, ProfileIsAFlameTreeOfTheRange) {
  Reply r = get("/api/v1/targets/api/profile?from=1970-01-01T00:15:00Z&to=1970-01-01T00:25:00Z");
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json doc = json_of(r);
  EXPECT_EQ(doc["total"], 10);
  EXPECT_EQ(doc["from"], "1970-01-01T00:15:00Z");
  const nlohmann::json& tree = doc["tree"];
  EXPECT_EQ(tree["name"], "api");
  EXPECT_EQ(tree["value"], 10);
  const nlohmann::json* main = child(tree, "main");
  ASSERT_TRUE(main);
  EXPECT_EQ((*main)["kind"], "native");
  ASSERT_TRUE(child(*main, "parse"));
  EXPECT_EQ((*child(*main, "parse"))["value"], 6);
  const nlohmann::json* read = child(*child(*main, "parse"), "vfs_read");
  ASSERT_TRUE(read);
  EXPECT_EQ((*read)["kind"], "kernel");
  EXPECT_EQ((*child(*main, "serve"))["value"], 4);
  // min_share leaves out frames below that share of the total: vfs_read (6 of 10) stays, serve (4) goes.
  const nlohmann::json pruned = json_of(get("/api/v1/targets/api/profile?from=1000&to=1020&min_share=0.5"))["tree"];
  EXPECT_TRUE(child(*child(*child(pruned, "main"), "parse"), "vfs_read"));
  EXPECT_FALSE(child(*child(pruned, "main"), "serve"));
  EXPECT_EQ((*child(pruned, "main"))["value"], 10) << "pruned frames stay in their parent's value";
  // A target without samples in range is an empty tree, not an error.
  EXPECT_EQ(json_of(get("/api/v1/targets/nobody/profile?since=1h"))["total"], 0);
}

TEST_F(ApiTest, DiffNormalizesEachSideToItsTotal) {
  // Base: 1000-1020 (parse 6 of 10, serve 4 of 10); comparison: 2000 (parse 2 of 10, serve 8 of 10).
  Reply r = get("/api/v1/targets/api/diff?base_from=1000&base_to=1020&from=2000&to=2010");
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json doc = json_of(r);
  EXPECT_EQ(doc["base"]["total"], 10);
  EXPECT_EQ(doc["comparison"]["total"], 10);
  const nlohmann::json& main = *child(doc["tree"], "main");
  EXPECT_DOUBLE_EQ((*child(main, "serve"))["delta"].get<double>(), 8 - 4);
  EXPECT_DOUBLE_EQ((*child(main, "parse"))["delta"].get<double>(), 2 - 6);
  EXPECT_DOUBLE_EQ(main["delta"].get<double>(), 0);
  // A base of half the samples counts double: only shares matter.
  const nlohmann::json one_base = json_of(get("/api/v1/targets/api/diff?base_from=1000&base_to=1005&from=2000&to=2010"));
  EXPECT_EQ(one_base["base"]["total"], 5);
  const nlohmann::json& serve = *child(*child(one_base["tree"], "main"), "serve");
  EXPECT_EQ(serve["base"], 2);
  EXPECT_DOUBLE_EQ(serve["delta"].get<double>(), 8 - 2 * 2.0);
}

TEST_F(ApiTest, RepeatedRequestsReuseTheTreeUntilTheWindowsChange) {
  // The default range, the hour before now (5000 s), holds the window at 2000 s.
  const nlohmann::json first = json_of(get("/api/v1/targets/api/profile"));
  EXPECT_EQ(first["total"], 10);
  EXPECT_EQ(json_of(get("/api/v1/targets/api/profile?from=1500&to=4000")),
            [&] { nlohmann::json d = first; d["from"] = "1970-01-01T00:25:00Z"; d["to"] = "1970-01-01T01:06:40Z"; return d; }())
      << "the same windows under another range: the same tree, the request's own range";
  // A window arrives (late, from a spool) inside the range: the answer changes with it.
  auto store = storage::PgStore::connect(connect_options());
  ASSERT_TRUE(store);
  ASSERT_TRUE((*store)->write_window(test::sample_window("web-01", at(3000))));
  const nlohmann::json second = json_of(get("/api/v1/targets/api/profile"));
  EXPECT_EQ(second["total"], 15);
  EXPECT_EQ((*child(second["tree"], "main"))["value"], 15);
}

TEST_F(ApiTest, BadParametersGet400WithAMessage) {
  const std::pair<std::string, std::string> cases[] = {
      {"/api/v1/targets?since=abc", "since: "},
      {"/api/v1/targets?since=0s", "since 0s: must be longer than 0"},
      // Found by fuzz_router: nanoseconds past 2262 overflowed (signed overflow, then a nonsense range).
      {"/api/v1/targets/demo/deploys?from=9999999999999&to=-1", "from: time '9999999999999' is outside 1970 to 2200"},
      {"/api/v1/targets?from=1000&to=99999999999999999999", "to: time '99999999999999999999' is outside 1970 to 2200"},
      {"/api/v1/targets?since=99999999d", "since 99999999d: reaches back before 1970"},
      {"/api/v1/targets?from=yesterday", "from: cannot read time 'yesterday'"},
      {"/api/v1/targets?from=2000&to=1000", "to must be later than from"},
      {"/api/v1/targets?to=1000", "to needs from"},
      {"/api/v1/targets?since=1h&from=1000", "use either since or from/to, not both"},
      {"/api/v1/targets?sinse=1h", "unknown parameter 'sinse'"},
      {"/api/v1/targets?since=1h&since=2h", "parameter 'since' given more than once"},
      {"/api/v1/targets?host=", "host must not be empty"},
      {"/api/v1/targets?since=%zz", "malformed percent-escape"},
      {"/api/v1/targets/api/diff?since=1h", "missing base_from"},
      {"/api/v1/targets/api/diff?base_from=5&base_to=1", "base_to must be later than base_from"},
      {"/api/v1/targets/api/pprof?format=svg", "unknown parameter 'format'"},
      {"/metrics?x=1", "this endpoint takes none"},
      {"/api/v1/targets/api/profile?min_share=1", "min_share must be a number from 0"},
      {"/api/v1/targets/api/profile?min_share=-0.1", "min_share must be a number from 0"},
      {"/api/v1/targets/api/diff?base_from=1&min_share=x", "min_share must be a number from 0"},
  };
  for (const auto& [path, message] : cases) {
    Reply r = get(path);
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_EQ(r.response.getContentType(), "application/json") << path;
    EXPECT_NE(json_of(r)["error"].get<std::string>().find(message), std::string::npos) << path << ": " << r.body;
  }
}

// Two alerts of web-01 written by the alert store, as the engine writes them: api's latency alert
// went pending at 1500 s, fired at 1530 s and is firing; worker's fired at 1600 s and resolved at
// 1700 s. A deploy of api at 1005 s rides in a window.
class AlertsApiTest : public ApiTest {
 protected:
  void write_windows(storage::PgStore& store) override {
    ApiTest::write_windows(store);
    profile::WindowProfile w = test::sample_window("web-01", at(1005));
    w.deploys = {{0, at(1005), "executable /srv/api build-id 1a2b -> 3c4d",
                  {{"executable", "/srv/api", "build-id:1a2b", "build-id:3c4d"}}}};
    ASSERT_TRUE(store.write_window(w));
  }
  void SetUp() override {
    ApiTest::SetUp();
    if (HasFatalFailure()) return;
    pqxx::connection conn = connection();
    alerts::AlertStore alert_store(conn, "web-01");
    alerts::Batch batch;
    alerts::AlertRecord api{"fp-api", "tier", {{"alertname", "TierViolation"}, {"target", "api"}, {"operation", "parse"}},
                            {{"summary", "api/parse p95 120 ms over T1"}}, 0.12, {}, std::nullopt, {}};
    api.progress.state = alerts::State::firing;
    api.progress.fired_at = at(1530);
    alerts::AlertRecord worker{"fp-worker", "cache_floor", {{"alertname", "CacheHitRateLow"}, {"target", "worker"}},
                               {{"summary", "worker page cache hit rate 40%"}}, 0.4, {}, at(1700), {}};
    batch.alerts = {{"fp-api", api}, {"fp-worker", worker}};
    batch.events = {{"fp-api", at(1500), alerts::EventKind::pending, 0.12, "p95 over T1"},
                    {"fp-api", at(1530), alerts::EventKind::firing, 0.12, "p95 over T1 for 30s"},
                    {"fp-worker", at(1600), alerts::EventKind::firing, 0.4, "below 50%"},
                    {"fp-worker", at(1700), alerts::EventKind::resolved, 0.6, "back above 50%"}};
    ASSERT_TRUE(alert_store.commit(batch));
  }
};

TEST_F(AlertsApiTest, ListsAlertsWithStateLabelsAnnotationsAndHistory) {
  Reply r = get("/api/v1/alerts?from=1000&to=2000");
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json doc = json_of(r);
  EXPECT_EQ(doc["host"], "web-01");
  ASSERT_EQ(doc["alerts"].size(), 2u) << r.body;
  const nlohmann::json& firing = doc["alerts"][0];  // firing first
  EXPECT_EQ(firing["fingerprint"], "fp-api");
  EXPECT_EQ(firing["state"], "firing");
  EXPECT_EQ(firing["labels"]["operation"], "parse");
  EXPECT_EQ(firing["annotations"]["summary"], "api/parse p95 120 ms over T1");
  EXPECT_EQ(firing["starts_at"], "1970-01-01T00:25:30Z");
  EXPECT_TRUE(firing["ends_at"].is_null());
  ASSERT_EQ(firing["history"].size(), 2u);
  EXPECT_EQ(firing["history"][0]["state"], "pending");
  EXPECT_EQ(firing["history"][0]["at"], "1970-01-01T00:25:00Z");
  EXPECT_EQ(firing["history"][1]["state"], "firing");
  const nlohmann::json& resolved = doc["alerts"][1];
  EXPECT_EQ(resolved["state"], "inactive");
  EXPECT_EQ(resolved["ends_at"], "1970-01-01T00:28:20Z");
  EXPECT_EQ(resolved["history"][1]["state"], "resolved");
  EXPECT_EQ(resolved["history"][1]["summary"], "back above 50%");
}

TEST_F(AlertsApiTest, FiltersByTargetStateAndRange) {
  const auto fingerprints = [&](const std::string& query) {
    Reply r = get("/api/v1/alerts?" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    const nlohmann::json doc = json_of(r);
    std::vector<std::string> out;
    for (const auto& a : doc["alerts"]) out.push_back(a["fingerprint"]);
    return out;
  };
  EXPECT_EQ(fingerprints("from=1000&to=2000&target=worker"), std::vector<std::string>{"fp-worker"});
  EXPECT_EQ(fingerprints("from=1000&to=2000&state=firing"), std::vector<std::string>{"fp-api"});
  EXPECT_EQ(fingerprints("from=1000&to=2000&state=inactive"), std::vector<std::string>{"fp-worker"});
  EXPECT_TRUE(fingerprints("from=1000&to=2000&target=nosuch").empty());
  // Outside the range only what is active now is listed, without history.
  const nlohmann::json later = json_of(get("/api/v1/alerts?from=3000&to=4000"));
  ASSERT_EQ(later["alerts"].size(), 1u);
  EXPECT_EQ(later["alerts"][0]["fingerprint"], "fp-api");
  EXPECT_TRUE(later["alerts"][0]["history"].empty());
  // Another host's alerts are not this host's.
  EXPECT_TRUE(json_of(get("/api/v1/alerts?from=1000&to=2000&host=web-02"))["alerts"].empty());
  EXPECT_EQ(fingerprints("from=1000&to=2000&host=*").size(), 2u);
}

TEST_F(AlertsApiTest, DeployMarkersOfATargetInRange) {
  Reply r = get("/api/v1/targets/api/deploys?from=1000&to=2000");
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json doc = json_of(r);
  EXPECT_EQ(doc["target"], "api");
  ASSERT_EQ(doc["deploys"].size(), 1u);
  EXPECT_EQ(doc["deploys"][0]["at"], "1970-01-01T00:16:45Z");
  EXPECT_EQ(doc["deploys"][0]["summary"], "executable /srv/api build-id 1a2b -> 3c4d");
  EXPECT_EQ(doc["deploys"][0]["changes"][0]["kind"], "executable");
  EXPECT_EQ(doc["deploys"][0]["changes"][0]["after"], "build-id:3c4d");
  EXPECT_TRUE(json_of(get("/api/v1/targets/api/deploys?from=1006&to=2000"))["deploys"].empty());
  EXPECT_TRUE(json_of(get("/api/v1/targets/worker/deploys?from=1000&to=2000"))["deploys"].empty());
}

TEST_F(AlertsApiTest, BadAlertAndDeployParametersGet400WithAMessage) {
  const auto error = [&](const std::string& path) {
    Reply r = get(path);
    EXPECT_EQ(r.status, 400) << path << ": " << r.body;
    return json_of(r)["error"].get<std::string>();
  };
  EXPECT_EQ(error("/api/v1/alerts?state=resolved"), "state must be inactive, pending or firing, got 'resolved'");
  EXPECT_EQ(error("/api/v1/alerts?target="), "target must not be empty (leave it out for every target)");
  EXPECT_NE(error("/api/v1/alerts?fingerprint=x").find("unknown parameter 'fingerprint'"), std::string::npos);
  EXPECT_EQ(error("/api/v1/alerts?from=2000&to=1000"), "to must be later than from");
  EXPECT_NE(error("/api/v1/targets/api/deploys?since=often").find("since: "), std::string::npos);
  EXPECT_NE(error("/api/v1/targets/api/deploys?state=firing").find("unknown parameter 'state'"), std::string::npos);
}

TEST_F(ApiTest, UnknownRoutesGet404) {
  for (const char* path : {"/api/v1/nothing", "/api/v2/targets", "/api/v1/targets/api", "/index.php"}) {
    Reply r = get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_NE(json_of(r)["error"].get<std::string>().find("no such endpoint"), std::string::npos);
  }
  EXPECT_EQ(http(server_->port(), "/api/v1/targets", {}, "DELETE").status, 405);
}

TEST_F(ApiTest, BearerTokenGuardsTheApiButNotHealthz) {
  start("0123456789abcdef");
  EXPECT_EQ(get("/api/v1/targets").status, 401);
  EXPECT_EQ(get("/metrics").status, 401);
  EXPECT_EQ(get("/api/v1/targets", {{"Authorization", "Bearer 0123456789abcdeX"}}).status, 401);
  EXPECT_EQ(get("/api/v1/targets", {{"Authorization", "Bearer 0123456789abcdef"}}).status, 200);
  EXPECT_EQ(get("/healthz").status, 200);
}

TEST_F(ApiTest, SendsNoCorsHeaders) {
  Reply r = get("/api/v1/targets", {{"Origin", "http://attacker.example"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.response.has("Access-Control-Allow-Origin"));
  Reply preflight = http(server_->port(), "/api/v1/targets",
                         {{"Origin", "http://attacker.example"}, {"Access-Control-Request-Method", "GET"}}, "OPTIONS");
  EXPECT_EQ(preflight.status, 405);
  EXPECT_FALSE(preflight.response.has("Access-Control-Allow-Origin"));
}

TEST_F(ApiTest, ExportsFoldedSpeedscopeAndPprofThatGoToolPprofReads) {
  Reply folded = get("/api/v1/targets/api/folded?from=1000&to=1020");
  ASSERT_EQ(folded.status, 200);
  EXPECT_EQ(folded.body, "main;parse;vfs_read 6\nmain;serve 4\n");
  EXPECT_EQ(folded.response.get("Content-Disposition"), "attachment; filename=\"api.folded\"");

  Reply speedscope = get("/api/v1/targets/api/speedscope?from=1000&to=1020");
  ASSERT_EQ(speedscope.status, 200);
  EXPECT_EQ(json_of(speedscope)["profiles"][0]["endValue"], 10);

  Reply pprof = get("/api/v1/targets/api/pprof?from=1000&to=1020");
  ASSERT_EQ(pprof.status, 200);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("pw-pprof-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "api.pb.gz").string();
  std::ofstream(file, std::ios::binary) << pprof.body;
  // HOME and GOCACHE in the scratch directory: the tool may write there, and CI's may be unset.
  const std::string command = "HOME=" + dir.string() + " GOCACHE=" + dir.string() + " " + GO_PATH +
                              " tool pprof -top -sample_index=samples " + file + " 2>&1";
  std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(command.c_str(), "r"), pclose);
  ASSERT_TRUE(pipe);
  std::string out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, pipe.get())) out.append(buf, n);
  EXPECT_EQ(pclose(pipe.release()), 0) << out;
  std::filesystem::remove_all(dir);
  // -top: flat and cumulative sample counts per function.
  EXPECT_NE(out.find("Type: samples"), std::string::npos) << out;
  EXPECT_NE(out.find("Showing nodes accounting for 10, 100% of 10 total"), std::string::npos) << out;
  EXPECT_NE(out.find("6 60.00% 60.00%          6 60.00%  vfs_read"), std::string::npos) << out;
  EXPECT_NE(out.find("0     0%   100%         10   100%  main"), std::string::npos) << out;
}

TEST_F(ApiTest, FiftyConcurrentClientsOnFourThreadsAllSucceed) {
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 50; ++c)
    clients.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {
        try {
          (get("/api/v1/targets/api/profile?from=1000&to=1020").status == 200 ? ok : failed)++;
        } catch (const std::exception&) {
          failed++;
        }
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(failed.load(), 0);
}

TEST_F(ApiTest, UnreachableDatabaseIs503WithTheReason) {
  start("", 2, [] { return Result<std::unique_ptr<storage::Query>>(make_error("cannot connect to PostgreSQL: refused")); });
  Reply r = get("/api/v1/targets");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(json_of(r)["error"], "cannot connect to PostgreSQL: refused");
  EXPECT_EQ(get("/healthz").status, 200);
}

// Caches: api's page cache in a cold window (nearly every page a miss) at 1000 s and a warm one (none)
// at 1010 s; worker's application cache "lru".
class ApiCachesTest : public ApiTest {
 protected:
  void write_windows(storage::PgStore& store) override {
    for (auto [t, misses] : {std::pair<std::int64_t, std::uint64_t>{1000, 2000}, {1010, 0}}) {
      profile::WindowProfile w = test::sample_window("web-01", at(t));
      test::add_sample_caches(w, 2048, misses);
      ASSERT_TRUE(store.write_window(w));
    }
  }
};

TEST_F(ApiCachesTest, HitRatesOverTheRangeAndPerWindow) {
  Reply r = get("/api/v1/targets/api/caches?from=1000&to=1020");
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json doc = json_of(r);
  EXPECT_EQ(doc["target"], "api");
  ASSERT_EQ(doc["caches"].size(), 1u) << "the lru cache is worker's";
  const nlohmann::json& page = doc["caches"][0];
  EXPECT_EQ(page["name"], "page_cache");
  EXPECT_EQ(page["kind"], "page");
  EXPECT_EQ(page["lookups"], 4096);
  EXPECT_EQ(page["misses"], 2000);
  EXPECT_EQ(page["hits"], 2096);
  EXPECT_DOUBLE_EQ(page["hit_ratio"].get<double>(), 2096.0 / 4096);
  ASSERT_EQ(page["series"].size(), 2u);
  EXPECT_EQ(page["series"][0]["start"], "1970-01-01T00:16:40Z");
  EXPECT_DOUBLE_EQ(page["series"][0]["hit_ratio"].get<double>(), 48.0 / 2048);
  EXPECT_DOUBLE_EQ(page["series"][1]["hit_ratio"].get<double>(), 1.0);
  EXPECT_TRUE(doc["page_cache"]["measured"]);
  EXPECT_EQ(doc["llc"]["state"], "unsupported: hardware cache events unavailable");

  const nlohmann::json worker = json_of(get("/api/v1/targets/worker/caches?from=1000&to=1020"));
  ASSERT_EQ(worker["caches"].size(), 1u);
  EXPECT_EQ(worker["caches"][0]["name"], "lru");
  EXPECT_DOUBLE_EQ(worker["caches"][0]["hit_ratio"].get<double>(), 0.75);
  // Outside the windows, or an unknown target: no caches, not an error.
  EXPECT_TRUE(json_of(get("/api/v1/targets/api/caches?from=3000&to=4000"))["caches"].empty());
  EXPECT_TRUE(json_of(get("/api/v1/targets/nobody/caches"))["caches"].empty());
}

TEST_F(ApiCachesTest, BadParametersGet400) {
  EXPECT_EQ(get("/api/v1/targets/api/caches?cache=lru").status, 400);
  EXPECT_EQ(get("/api/v1/targets/api/caches?since=yesterday").status, 400);
}

// Latency: the windows (1000, 1010, 2000 s) carry api's "lookup" (T1, 100 ms) and worker's "reads"
// (own 20 ms threshold, 1, 2 and 30 ms); lookup is fast at first and slow at 2000 s.
class ApiLatencyTest : public ApiTest {
 protected:
  void write_windows(storage::PgStore& store) override {
    auto write = [&](std::int64_t t, std::initializer_list<std::uint64_t> lookup_ms) {
      profile::WindowProfile w = test::sample_window("web-01", at(t));
      test::add_sample_operations(w, lookup_ms);
      ASSERT_TRUE(store.write_window(w));
    };
    write(1000, {30, 40});
    write(1010, {50, 60, 70});
    write(2000, {150, 160, 30});
  }

  static const nlohmann::json* op(const nlohmann::json& doc, const std::string& name) {
    for (const auto& o : doc["operations"])
      if (o["name"] == name) return &o;
    return nullptr;
  }
};

TEST_F(ApiLatencyTest, MergesPercentilesOverTheRangeWithSeriesPerWindow) {
  Reply r = get("/api/v1/targets/api/latency?from=1000&to=1020");
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json doc = json_of(r);
  EXPECT_EQ(doc["target"], "api");
  EXPECT_EQ(doc["step"], "window");
  ASSERT_EQ(doc["operations"].size(), 1u) << "worker's reads are another target's";
  const nlohmann::json& lookup = doc["operations"][0];
  EXPECT_EQ(lookup["name"], "lookup");
  EXPECT_EQ(lookup["source"], "uprobe");
  EXPECT_EQ(lookup["tier"], "T1");
  EXPECT_EQ(lookup["threshold_ns"], 100'000'000);
  EXPECT_EQ(lookup["calls"], 5);
  EXPECT_EQ(lookup["windows"], 2);
  const profile::LatencyHistogram merged = test::histogram_of({30, 40, 50, 60, 70}, 100);
  EXPECT_EQ(lookup["p50_ns"], profile::percentile(merged, 0.5)) << "merged from the buckets of both windows";
  EXPECT_EQ(lookup["p99_ns"], 70'000'000) << "the slowest call, known exactly";
  EXPECT_EQ(lookup["verdict"], "ok");
  EXPECT_EQ(lookup["grade"], "T1");
  const nlohmann::json& series = lookup["series"];
  EXPECT_EQ(series["start"], (nlohmann::json{1000.0, 1010.0}));
  EXPECT_EQ(series["calls"], (nlohmann::json{2, 3}));
  EXPECT_EQ(series["p99_ns"][0], 40'000'000);
  EXPECT_EQ(series["threshold_ns"], (nlohmann::json{100'000'000, 100'000'000}));
  EXPECT_EQ(doc["health"]["probe_calls"], 14) << "two windows' collection stats";

  // The slow window: 2 of 3 calls over the threshold, p99 in T2.
  const nlohmann::json late = json_of(get("/api/v1/targets/api/latency?from=1500&to=2500&op=lookup"));
  ASSERT_EQ(late["operations"].size(), 1u);
  EXPECT_EQ(late["operations"][0]["verdict"], "slow");
  EXPECT_EQ(late["operations"][0]["grade"], "T2");
  EXPECT_EQ(late["operations"][0]["slow"], 2);
  EXPECT_NEAR(late["operations"][0]["slow_fraction"].get<double>(), 2.0 / 3, 1e-9);
  // An operation's own threshold.
  const nlohmann::json reads = json_of(get("/api/v1/targets/worker/latency?from=1000&to=1020"));
  EXPECT_EQ(reads["operations"][0]["tier"], nullptr);
  EXPECT_EQ(reads["operations"][0]["threshold_ns"], 20'000'000);
  EXPECT_EQ(reads["operations"][0]["verdict"], "slow") << "p99 30 ms over its own 20 ms";
}

TEST_F(ApiLatencyTest, OperationsWithoutCallsInRangeHaveNoData) {
  const nlohmann::json doc = json_of(get("/api/v1/targets/api/latency?from=3000&to=4000"));
  ASSERT_EQ(doc["operations"].size(), 1u);
  const nlohmann::json& lookup = doc["operations"][0];
  EXPECT_EQ(lookup["verdict"], "no_data");
  EXPECT_EQ(lookup["grade"], nullptr);
  EXPECT_EQ(lookup["calls"], 0);
  EXPECT_EQ(lookup["tier"], "T1");
  EXPECT_EQ(lookup["last_window_end"], "1970-01-01T00:33:30Z") << "the end of the window at 2000 s";
  EXPECT_TRUE(lookup["series"]["start"].empty());
  // A target without operations, or unknown: no operations, not an error.
  EXPECT_TRUE(json_of(get("/api/v1/targets/nobody/latency"))["operations"].empty());
}

// The host's probe families as of its newest window: on /api/v1/targets, and as the reason an
// operation whose family does not measure has no calls.
TEST_F(ApiLatencyTest, ProbeStatesSayWhatIsNotMeasured) {
  auto store = storage::PgStore::connect(connect_options());
  ASSERT_TRUE(store);
  profile::WindowProfile w = test::sample_window("web-01", at(3000));
  profile::ProbeStates states;
  states.set(profile::ProbeFamily::latency_uprobe, profile::ProbeStatus::failed, "the kernel rejected uprobe_entry: x");
  states.set(profile::ProbeFamily::latency_syscall, profile::ProbeStatus::running, "tracepoints");
  w.probes = states.list();
  ASSERT_TRUE((*store)->write_window(w));

  const nlohmann::json targets = json_of(get("/api/v1/targets?from=2500&to=3500"));
  ASSERT_EQ(targets["hosts"].size(), 1u) << targets.dump();
  EXPECT_EQ(targets["hosts"][0]["host"], "web-01");
  EXPECT_EQ(targets["hosts"][0]["window_end"], "1970-01-01T00:50:10Z");
  const nlohmann::json& uprobe = targets["hosts"][0]["probes"][3];
  EXPECT_EQ(uprobe, (nlohmann::json{{"family", "latency_uprobe"}, {"state", "failed"},
                                    {"detail", "the kernel rejected uprobe_entry: x"}}));
  EXPECT_TRUE(json_of(get("/api/v1/targets?from=900&to=1500"))["hosts"].empty()) << "older windows stored no states";

  const nlohmann::json api = json_of(get("/api/v1/targets/api/latency?from=2500&to=3500"));
  ASSERT_TRUE(op(api, "lookup")) << api.dump();
  EXPECT_EQ((*op(api, "lookup"))["not_measured"],
            "not measured: latency_uprobe failed: the kernel rejected uprobe_entry: x");
  const nlohmann::json worker = json_of(get("/api/v1/targets/worker/latency?from=2500&to=3500"));
  ASSERT_TRUE(op(worker, "reads"));
  EXPECT_EQ((*op(worker, "reads"))["not_measured"], nullptr) << "its syscall probes run";
}

TEST_F(ApiLatencyTest, TargetsCarryTheStateOfEachTier) {
  auto tiers_of = [&](const std::string& query, const std::string& target) {
    const nlohmann::json doc = json_of(get("/api/v1/targets?" + query));
    for (const auto& t : doc["targets"])
      if (t["name"] == target) return t["tiers"];
    return nlohmann::json();
  };
  auto state = [](const nlohmann::json& tiers, const std::string& name) {
    for (const auto& t : tiers)
      if (t["name"] == name) return t["state"].get<std::string>();
    return std::string("absent");
  };
  const nlohmann::json fast = tiers_of("from=1000&to=1020", "api");
  ASSERT_EQ(fast.size(), 5u) << "T1..T5; no operation of api has its own threshold" << fast.dump();
  EXPECT_EQ(state(fast, "T1"), "ok");
  EXPECT_EQ(fast[0]["operations"][0]["name"], "lookup");
  EXPECT_EQ(fast[0]["operations"][0]["verdict"], "ok");
  for (const char* t : {"T2", "T3", "T4", "T5"}) EXPECT_EQ(state(fast, t), "none") << t;
  EXPECT_EQ(state(tiers_of("from=1000&to=2010", "api"), "T1"), "slow") << "the window at 2000 s is slow";
  EXPECT_EQ(state(tiers_of("from=1000&to=2010", "worker"), "own"), "slow");
  // The target has windows in range, its operation no calls.
  auto store = storage::PgStore::connect(connect_options());
  ASSERT_TRUE(store);
  ASSERT_TRUE((*store)->write_window(test::sample_window("web-01", at(3000))));
  const nlohmann::json quiet = tiers_of("from=2500&to=5000", "api");
  ASSERT_FALSE(quiet.is_null());
  EXPECT_EQ(state(quiet, "T1"), "no_data");
}

TEST_F(ApiLatencyTest, LongRangesStepByRollupBucketsWithTheSameAnswers) {
  // Two hours of windows every 10 s from 7200 s, lookup's calls varying with time.
  auto store = storage::PgStore::connect(connect_options());
  ASSERT_TRUE(store);
  for (std::int64_t t = 7200; t < 14400; t += 10) {
    profile::WindowProfile w = test::sample_window("web-01", at(t));
    test::add_sample_operations(w, {static_cast<std::uint64_t>(10 + t % 70), 90});
    ASSERT_TRUE((*store)->write_window(w));
  }
  now_ = at(14400);
  const std::string two_hours = "/api/v1/targets/api/latency?from=7200&to=14400";
  const nlohmann::json windows = json_of(get(two_hours));
  EXPECT_EQ(windows["step"], "window") << "720 windows fit in 1500 points";
  EXPECT_EQ(windows["operations"][0]["series"]["start"].size(), 720u);
  const nlohmann::json raw = json_of(get(two_hours + "&step=5m"));
  EXPECT_EQ(raw["step"], "5m");
  ASSERT_EQ(raw["operations"][0]["series"]["start"].size(), 24u);
  EXPECT_EQ(raw["operations"][0]["series"]["calls"][0], 30 * 2);
  EXPECT_EQ(json_of(get(two_hours + "&step=1h"))["operations"][0]["series"]["start"].size(), 2u);
  now_ = at(31 * 86400);  // a `since` reaching back before 1970 is refused (400)
  EXPECT_EQ(json_of(get("/api/v1/targets/api/latency?since=24h"))["step"], "5m") << "8640 windows would be too many";
  EXPECT_EQ(json_of(get("/api/v1/targets/api/latency?since=30d"))["step"], "1h");
  now_ = at(14400);

  // The same answers from rollups.
  pqxx::connection conn = connection();
  ASSERT_TRUE(storage::refresh_rollups(conn, at(20000)));
  ASSERT_EQ(count("SELECT count(*) FROM latency_rollups l JOIN operations o ON o.id = l.operation_id"
                  " WHERE o.name = 'lookup' AND l.bucket_start >= to_timestamp(7200)"),
            2 + 24);
  EXPECT_EQ(json_of(get(two_hours + "&step=5m")), raw);
  EXPECT_EQ(json_of(get(two_hours)), windows);
}

TEST_F(ApiLatencyTest, BadParametersGet400) {
  const std::pair<std::string, std::string> cases[] = {
      {"/api/v1/targets/api/latency?step=2m", "step must be auto, window, 5m or 1h, got '2m'"},
      {"/api/v1/targets/api/latency?op=", "op must not be empty"},
      {"/api/v1/targets/api/latency?operation=lookup", "unknown parameter 'operation'"},
      {"/api/v1/targets/api/latency?since=soon", "since: "},
      {"/api/v1/targets/api/latency?from=2000&to=1000", "to must be later than from"},
      {"/api/v1/targets/api/latency?host=", "host must not be empty"},
  };
  for (const auto& [path, message] : cases) {
    Reply r = get(path);
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_NE(json_of(r)["error"].get<std::string>().find(message), std::string::npos) << path << ": " << r.body;
  }
}

}  // namespace
}  // namespace perfwatch::dashboard
