// Hostile input through the real perfwatchd (embedded PostgreSQL, real BPF): what other users control
// (their command lines, file names, StatsD datagrams, HTTP requests) must neither stop the daemon nor
// stop its windows from being stored, nor get into what it answers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/SocketAddress.h>

#include "support.h"

namespace perfwatch::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Polls `done` every 200 ms until it holds or `limit` passes.
bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit = 40s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return done();
}

// Windows of `target` stored in the last 10 minutes, as `perfwatch targets` counts them.
std::uint64_t stored_windows(const Daemon& daemon, const std::string& target) {
  auto [code, out] = daemon.cli({"targets", "--since", "10m", "--format", "json"});
  if (code != 0) return 0;
  const nlohmann::json doc = nlohmann::json::parse(out, nullptr, false);
  if (!doc.is_object() || !doc.contains("targets") || !doc["targets"].is_array()) return 0;
  for (const nlohmann::json& t : doc["targets"])
    if (t.value("name", "") == target) return t.value("windows", std::uint64_t{0});
  return 0;
}

// Fails the test unless perfwatchd is alive and stores `more` windows of `target` beyond those it had.
void expect_windows_keep_coming(const Daemon& daemon, const std::string& target, std::uint64_t more = 3) {
  const std::uint64_t before = stored_windows(daemon, target);
  const bool stored = wait_until([&] { return !daemon.alive() || stored_windows(daemon, target) >= before + more; });
  ASSERT_TRUE(daemon.alive()) << "perfwatchd died:\n" << daemon.log();
  EXPECT_TRUE(stored) << "no new windows of " << target << " stored (had " << before << "):\n" << daemon.log();
}

// Starts `path` with exactly `argv` (argv[0] need not be the path), output discarded.
pid_t spawn_argv(const std::string& path, const std::vector<std::string>& argv) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(path.c_str(), args.data());
    _exit(127);
  }
  return pid;
}

std::string dashboard_listen(std::uint16_t port) {
  return "dashboard: {listen: '127.0.0.1:" + std::to_string(port) + "'}\n";
}

// Defect 1: std::regex recursed per character, so a 64 KiB argument overflowed perfwatchd's stack (SIGSEGV)
// as soon as any user's process was matched against a cmdline target.
TEST(HostileE2E, LongCommandLinesDoNotStopTheDaemon) {
  Daemon daemon("long-cmdline", "sampling: {window: 1s}\n" + dashboard_listen(free_port()) +
                                    "targets:\n  - name: java\n    match: {cmdline: 'java .*-jar x'}\n");
  ASSERT_TRUE(daemon.started());
  ASSERT_TRUE(wait_until([&] { return stored_windows(daemon, "java") > 0; })) << daemon.log();
  const std::string long_argument(64 << 10, 'a');
  // As `(exec -a java /bin/sh -c 'sleep 5' "$long" "$long")`; `; true` keeps sh from exec'ing sleep.
  const pid_t java = spawn_argv("/bin/sh", {"java", "-c", "sleep 5; true", long_argument, long_argument});
  ASSERT_GT(java, 0);
  expect_windows_keep_coming(daemon, "java");
  kill(java, SIGKILL);
  wait_exit(java);
  ASSERT_TRUE(daemon.alive()) << daemon.log();
}


// A GET with its own Host header (Poco's client otherwise sends 127.0.0.1:PORT): {status, body, response}.
struct Reply {
  int status = 0;
  std::string body;
  Poco::Net::HTTPResponse response;
};
Reply http(std::uint16_t port, const std::string& path, const std::string& host = "") {
  Reply reply;
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", port);
    session.setTimeout(Poco::Timespan(10, 0));
    Poco::Net::HTTPRequest request("GET", path, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!host.empty()) request.setHost(host);
    session.sendRequest(request);
    std::istream& in = session.receiveResponse(reply.response);
    reply.body.assign(std::istreambuf_iterator<char>(in), {});
    reply.status = reply.response.getStatus();
  } catch (const std::exception& e) {
    reply.body = e.what();
  }
  return reply;
}

// Defect 2: the executable's path went into the deploy state with nlohmann's strict dump(), which threw on
// the 0xFF byte ("invalid UTF-8 byte at index 9") and took perfwatchd down within one window.
TEST(HostileE2E, OddBytesInFileNamesAreStoredAndShown) {
  const std::string suffix = "pw" + std::to_string(getpid());
  const fs::path dir = "/tmp/\xff" + suffix;
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path oddapp = dir / "oddapp";
  fs::copy_file("/bin/sh", oddapp);
  fs::permissions(oddapp, fs::perms::owner_all);
  const std::uint16_t port = free_port();
  Daemon daemon("odd-path", "sampling: {window: 1s}\n" + dashboard_listen(port) +
                                "targets:\n  - name: odd\n    match: {comm: oddapp}\n");
  ASSERT_TRUE(daemon.started());
  const pid_t busy = spawn_argv(oddapp.string(), {oddapp.string(), "-c", "while :; do :; done"});
  ASSERT_GT(busy, 0);
  expect_windows_keep_coming(daemon, "odd");
  // The path's 0xFF is U+FFFD in what is stored and shown: the CLI's and the API's JSON.
  const std::string shown = "/tmp/\xEF\xBF\xBD" + suffix + "/oddapp";
  bool in_cli = false;
  wait_until([&] {
    auto [code, out] = daemon.cli({"flame", "--target", "odd", "--since", "10m", "--format", "json"});
    in_cli = code == 0 && out.find(shown) != std::string::npos;
    return in_cli;
  });
  kill(busy, SIGKILL);
  wait_exit(busy);
  const Reply api = http(port, "/api/v1/targets/odd/profile?since=10m&min_share=0");
  fs::remove_all(dir);
  EXPECT_TRUE(in_cli) << "the odd module is not in perfwatch flame --format json";
  EXPECT_EQ(api.status, 200) << api.body;
  EXPECT_NE(api.body.find(shown), std::string::npos) << api.body.substr(0, 2000);
  ASSERT_TRUE(daemon.alive()) << daemon.log();
}

// Defect 3: `|@1e-300` made one timer line stand for 1e300 calls, every later line too (the fraction
// carried over), and no window of the operation was stored again; `1e13|ms` overflowed the sum.
TEST(HostileE2E, StatsdValuesPastTheirBoundsAreCountedAsMalformed) {
  const std::uint16_t statsd_port = free_port(SOCK_DGRAM);
  Daemon daemon("statsd-bounds", "sampling: {window: 1s}\n" + dashboard_listen(free_port()) +
                                     "statsd: {listen: '127.0.0.1:" + std::to_string(statsd_port) + "'}\n"
                                     "targets:\n  - name: app\n    match: {comm: pw-no-such-proc}\n"
                                     "    operations:\n      - {name: op, tier: T1, statsd: app.op}\n");
  ASSERT_TRUE(daemon.started());
  const std::string script =
      "import socket, statsd, time\n"
      "to = ('127.0.0.1', " + std::to_string(statsd_port) + ")\n"
      "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
      "s.sendto(b'app.op:1|ms|@1e-300', to)\n"
      "s.sendto(b'app.op:1e13|ms', to)\n"
      "c = statsd.StatsClient(*to)\n"
      "for i in range(20):\n    c.timing('app.op', 5)\n    time.sleep(0.1)\n";
  auto [code, out] = run({"/usr/bin/python3", "-c", script});
  ASSERT_EQ(code, 0) << "python3-statsd missing? (Debian package python3-statsd)";
  nlohmann::json op, health;
  wait_until([&] {
    auto [status, text] = daemon.cli({"latency", "--target", "app", "--since", "10m", "--format", "json"});
    const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    if (status != 0 || !doc.is_object() || !doc.contains("operations") || doc["operations"].empty()) return false;
    op = doc["operations"][0];
    health = doc["health"];
    return op.value("calls", 0) >= 20;
  });
  ASSERT_TRUE(daemon.alive()) << daemon.log();
  ASSERT_TRUE(op.is_object() && health.is_object()) << "no window of the operation was stored:\n" << daemon.log();
  EXPECT_EQ(op.value("calls", -1), 20) << op.dump() << "\n" << daemon.log();
  EXPECT_EQ(op.value("max_ns", -1), 5'000'000) << op.dump();
  EXPECT_EQ(health.value("statsd_malformed", -1), 2) << health.dump();
  expect_windows_keep_coming(daemon, "app");
}

// Defect 4: the target name from the URL went into Content-Disposition as it was, so an encoded CR LF
// in it started a header of the requester's choosing.
TEST(HostileE2E, NoRequestByteReachesAResponseHeader) {
  const std::uint16_t port = free_port();
  Daemon daemon("split", "sampling: {window: 1s}\n" + dashboard_listen(port) +
                             "targets:\n  - name: x\n    match: {comm: pw-no-such-proc}\n");
  ASSERT_TRUE(daemon.started());
  // Before perfwatchd's first window is stored the API answers 503, without the exports' headers.
  ASSERT_TRUE(wait_until([&] { return http(port, "/api/v1/targets").status == 200; })) << daemon.log();
  for (const char* format : {"folded", "pprof", "speedscope"}) {
    const Reply r = http(port, std::string("/api/v1/targets/x%0D%0AX-Injected:%20yes/") + format + "?since=1m");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.response.has("Content-Disposition")) << format << ": the header the name goes into";
    EXPECT_FALSE(r.response.has("X-Injected")) << format << ": the request set a response header";
    for (const auto& [name, value] : r.response)
      EXPECT_EQ(value.find_first_of("\r\n"), std::string::npos) << name;
  }
  ASSERT_TRUE(daemon.alive()) << daemon.log();
}

// Defect 7: without a Host check a page on another site could read the API through DNS rebinding (its
// name resolving to 127.0.0.1): the browser sends that name as Host, and only the Host tells it apart.
TEST(HostileE2E, DashboardAnswersOnlyItsOwnHostNames) {
  const std::uint16_t port = free_port();
  const std::string p = std::to_string(port);
  Daemon daemon("host-check", "sampling: {window: 1s}\n" + dashboard_listen(port) +
                                  "alerts: {external_url: 'https://perf.example.com:8443/perfwatch'}\n"
                                  "targets:\n  - name: x\n    match: {comm: pw-no-such-proc}\n");
  ASSERT_TRUE(daemon.started());
  // The API answers 503 until perfwatchd's first window is in the database.
  ASSERT_TRUE(wait_until([&] { return http(port, "/api/v1/targets", "127.0.0.1:" + p).status == 200; })) << daemon.log();
  for (const std::string& host : {"evil.example:" + p, std::string("evil.example"), "127.0.0.1.evil.example:" + p,
                                 "localhost.evil.example:" + p, "127.0.0.1:" + std::to_string(port + 1)}) {
    const Reply r = http(port, "/api/v1/targets", host);
    EXPECT_EQ(r.status, 421) << host << ": " << r.body;
    EXPECT_NE(r.body.find("Host"), std::string::npos) << r.body;
  }
  for (const std::string& host : {"127.0.0.1:" + p, "localhost:" + p, "LOCALHOST:" + p, "[::1]:" + p,
                                 std::string("perf.example.com:8443")}) {
    const Reply r = http(port, "/api/v1/targets", host);
    EXPECT_EQ(r.status, 200) << host << ": " << r.body;
  }
  // Defect 6's bound on the Python code cache shows beside the other symbol cache figures.
  bool metrics = false;
  wait_until([&] {
    const Reply m = http(port, "/metrics");
    metrics = m.body.find("\nperfwatch_python_code_cache_evictions_total 0\n") != std::string::npos &&
              m.body.find("\nperfwatch_python_code_cache_bytes ") != std::string::npos;
    return metrics;
  });
  EXPECT_TRUE(metrics) << http(port, "/metrics").body;
  ASSERT_TRUE(daemon.alive()) << daemon.log();
}

// Defect 7: every request has a deadline; a client that opens a connection and sends its request a byte
// at a time cannot hold a serving thread past dashboard.request_timeout.
TEST(HostileE2E, SlowRequestsAreCutOffAtTheRequestTimeout) {
  const std::uint16_t port = free_port();
  Daemon daemon("deadline", "sampling: {window: 1s}\n"
                            "dashboard: {listen: '127.0.0.1:" + std::to_string(port) + "', request_timeout: 2s}\n"
                            "targets:\n  - name: x\n    match: {comm: pw-no-such-proc}\n");
  ASSERT_TRUE(daemon.started());
  Poco::Net::StreamSocket slow(Poco::Net::SocketAddress("127.0.0.1", port));
  slow.setReceiveTimeout(Poco::Timespan(20, 0));
  const auto start = std::chrono::steady_clock::now();
  const std::string head = "GET /api/v1/targets HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  bool closed = false;
  for (std::size_t i = 0; i < 200 && !closed; ++i) {
    try {
      slow.sendBytes(i < head.size() ? &head[i] : "a", 1);
    } catch (const std::exception&) {
      closed = true;
    }
    char byte;
    slow.setReceiveTimeout(Poco::Timespan(0, 500'000));
    try {
      closed = closed || slow.receiveBytes(&byte, 1) <= 0;
    } catch (const Poco::TimeoutException&) {
    } catch (const std::exception&) {
      closed = true;
    }
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed) << "a request dribbling a byte every 0.5 s was still open after "
                      << std::chrono::duration_cast<std::chrono::seconds>(took).count() << " s";
  EXPECT_LT(took, 10s);
  const Reply ok = http(port, "/api/v1/targets");
  EXPECT_EQ(ok.status, 200) << ok.body;
}

// Defect 7: a token file others can read is no secret: perfwatchd refuses to start on it, naming it.
TEST(HostileE2E, RefusesATokenFileOthersCanRead) {
  const fs::path dir = fs::temp_directory_path() / ("pw-token-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path token = dir / "token";
  std::ofstream(token) << "s3cret\n";
  fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                             fs::perms::others_read);
  const fs::path config = dir / "perfwatch.yaml";
  std::ofstream(config) << "state_dir: " << (dir / "state").string() << "\n"
                        << "dashboard: {listen: '127.0.0.1:" << free_port() << "', token_file: " << token.string()
                        << "}\ntargets:\n  - name: x\n    match: {comm: pw-no-such-proc}\n";
  const std::string log = (dir / "perfwatchd.log").string();
  const pid_t pid = spawn({PERFWATCHD_PATH, "--config", config.string()}, log).pid;
  bool exited = false;
  int code = -1;
  wait_until([&] {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) != pid) return false;
    exited = true;
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }, 60s);
  if (!exited) {
    kill(pid, SIGTERM);
    wait_exit(pid);
  }
  const std::string text = slurp(log);
  fs::remove_all(dir);
  EXPECT_TRUE(exited) << "perfwatchd started on a token file others can read:\n" << text;
  EXPECT_NE(code, 0);
  EXPECT_NE(text.find(token.string()), std::string::npos) << text;
  EXPECT_NE(text.find("readable"), std::string::npos) << text;
}

}  // namespace
}  // namespace perfwatch::e2e
