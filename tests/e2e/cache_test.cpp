// End to end: cache hit rates through the real perfwatchd (filemap tracepoints, USDT probes, the
// StatsD listener, hardware perf events where the machine has them, embedded PostgreSQL) and the
// real perfwatch CLI.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

#include "support.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

const std::string reader_path = CACHE_READER_PATH;
constexpr int window_seconds = 2;

// Sleeps until `margin` after the next window boundary (windows end on multiples of their length).
void sleep_into_next_window(std::chrono::milliseconds margin = 300ms) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto window = std::chrono::seconds(window_seconds);
  const auto next = (now / window + 1) * window;
  std::this_thread::sleep_for(next - now + margin);
}

class CacheE2E : public ::testing::Test {
 protected:
  void start(const std::string& config) {
    // A dashboard port of its own, so that it runs beside other perfwatchd instances.
    daemon_ = std::make_unique<Daemon>("cache", "log_level: debug\nsampling:\n  window: " +
                                                    std::to_string(window_seconds) + "s\ndashboard:\n  listen: 127.0.0.1:" +
                                                    std::to_string(20000 + (getpid() + 37) % 20000) + "\n" + config);
    ASSERT_TRUE(daemon_->started());
  }
  json cache(const std::string& target) {
    auto [code, out] = daemon_->cli({"cache", "--target", target, "--since", "5m", "--format", "json"});
    EXPECT_EQ(code, 0) << slurp((daemon_->dir() / "cli.log").string());
    return code == 0 ? json::parse(out) : json::object();
  }
  static const json* find_cache(const json& doc, const std::string& name) { return find_named(doc, "caches", name); }
  void wait_for_log(const std::string& what, pid_t pid, int count) { e2e::wait_for_log(*daemon_, what, pid, count); }
  std::unique_ptr<Daemon> daemon_;
};

// The test: a file read cold (after POSIX_FADV_DONTNEED) in one window and warm in the next.
TEST_F(CacheE2E, PageCacheColdReadMissesAndWarmReadHits) {
  constexpr std::size_t bytes = 8 << 20;
  const double pages = static_cast<double>(bytes / static_cast<std::size_t>(sysconf(_SC_PAGESIZE)));
  const fs::path file = make_cache_file("pw-e2e-cache", bytes);
  start("targets:\n  - name: reader\n    match: {comm: cache_reader}\n");
  CacheReader reader(reader_path);
  std::this_thread::sleep_for(1s);  // watched through its exec event; the tracepoints are global
  sleep_into_next_window();
  ASSERT_EQ(reader.run("cold " + file.string()), "done");
  sleep_into_next_window();
  // Under memory pressure (a memory cgroup full of a build's page cache) the kernel may already have
  // evicted some of the pages just read: those are real misses of the warm read.
  const std::string resident_answer = reader.run("resident " + file.string());
  ASSERT_EQ(resident_answer.rfind("done ", 0), 0u) << resident_answer;
  const double evicted = pages - std::stod(resident_answer.substr(5));
  ASSERT_EQ(reader.run("warm " + file.string()), "done");
  wait_for_windows();
  fs::remove(file);

  const json doc = cache("reader");
  const json* page = find_cache(doc, "page_cache");
  ASSERT_TRUE(page) << doc.dump(2);
  EXPECT_TRUE(doc.at("page_cache").at("measured").get<bool>()) << doc.dump(2);
  const json& series = page->at("series");
  // The cold window added the most pages; the warm one is the window after it.
  std::size_t cold = 0;
  for (std::size_t i = 1; i < series.size(); ++i)
    if (series[i].at("misses").get<double>() > series[cold].at("misses").get<double>()) cold = i;
  ASSERT_LT(cold + 1, series.size()) << "no window after the cold read:\n" << page->dump(2);
  const json& c = series[cold];
  const json& w = series[cold + 1];
  EXPECT_NEAR(c.at("lookups").get<double>(), pages, pages * 0.10) << c.dump();
  EXPECT_NEAR(c.at("misses").get<double>(), pages, pages * 0.10) << c.dump();
  EXPECT_LT(c.at("hit_ratio").get<double>(), 0.10) << c.dump();
  EXPECT_NEAR(w.at("lookups").get<double>(), pages, pages * 0.10) << w.dump();
  EXPECT_LT(w.at("misses").get<double>(), evicted + pages * 0.02) << w.dump() << " evicted: " << evicted;
  EXPECT_GT(w.at("hit_ratio").get<double>(), 1.0 - evicted / pages - 0.05) << w.dump() << " evicted: " << evicted;
  EXPECT_LT(evicted, pages * 0.5) << "the warm read was mostly cold: nothing measured";
  // Every process's figures include the reader's.
  EXPECT_GE(doc.at("host").at("page_lookups").get<double>(), c.at("lookups").get<double>() + w.at("lookups").get<double>());

  auto [code, table] = daemon_->cli({"cache", "--target", "reader", "--since", "5m"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(table.find("page_cache  page"), std::string::npos) << table;
  EXPECT_NE(table.find("page cache: lookups: filemap:mm_filemap_get_pages"), std::string::npos) << table;
}

// Pages of a mapped file are looked up by page faults and fault-around, not read().
TEST_F(CacheE2E, MappedFilePagesAreLookedUpByFaults) {
  constexpr std::size_t bytes = 4 << 20;
  const double pages = static_cast<double>(bytes / static_cast<std::size_t>(sysconf(_SC_PAGESIZE)));
  const fs::path file = make_cache_file("pw-e2e-cache-mmap", bytes);
  // make_cache_file leaves the file in the page cache: the faults hit.
  start("targets:\n  - name: mapper\n    match: {comm: cache_reader}\n");
  CacheReader reader(reader_path);
  std::this_thread::sleep_for(1s);
  sleep_into_next_window();
  ASSERT_EQ(reader.run("mmap " + file.string()), "done");
  wait_for_windows();
  fs::remove(file);

  const json doc = cache("mapper");
  const json* page = find_cache(doc, "page_cache");
  ASSERT_TRUE(page) << doc.dump(2);
  const json* busiest = nullptr;
  for (const json& w : page->at("series"))
    if (!busiest || w.at("lookups").get<double>() > busiest->at("lookups").get<double>()) busiest = &w;
  ASSERT_TRUE(busiest);
  // Fault-around counts its whole window, and the program's own code pages fault in too: at least
  // every page of the file, a few hundred more at most.
  EXPECT_GE(busiest->at("lookups").get<double>(), pages * 0.95) << page->dump(2);
  EXPECT_LE(busiest->at("lookups").get<double>(), pages + 512) << page->dump(2);
  EXPECT_GT(busiest->at("hit_ratio").get<double>(), 0.95) << page->dump(2);
}

// Application caches counted by StatsD counters, sent by the real python3-statsd client.
TEST_F(CacheE2E, ApplicationCacheFromStatsdCounters) {
  const int port = 20000 + (getpid() + 13) % 20000;
  start("statsd:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n"
        "targets:\n"
        "  - name: web\n"
        "    match: {comm: pw-no-such-proc}\n"
        "    caches:\n"
        "      - {name: lru, hits: e2e.lru.hit, misses: e2e.lru.miss}\n"
        "      - {name: idle, hits: e2e.idle.hit, misses: e2e.idle.miss}\n");
  const std::string script =
      "import socket, statsd\n"
      "c = statsd.StatsClient('127.0.0.1', " + std::to_string(port) + ")\n"
      "for _ in range(30):\n    c.incr('e2e.lru.hit')\n"
      "c.incr('e2e.lru.hit', 5)\n"
      "for _ in range(10):\n    c.incr('e2e.lru.miss')\n"
      "c.timing('e2e.lru.miss', 3)\n"  // not a counter: ignored
      "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
      "s.sendto(b'e2e.lru.miss:1|c|@0.25\\ne2e.lru.miss:oops|c', ('127.0.0.1', " + std::to_string(port) + "))\n";
  auto [code, out] = run({"/usr/bin/python3", "-c", script});
  ASSERT_EQ(code, 0) << "python3-statsd missing? (Debian package python3-statsd)";
  wait_for_windows();

  const json doc = cache("web");
  const json* lru = find_cache(doc, "lru");
  ASSERT_TRUE(lru) << doc.dump(2);
  EXPECT_EQ(lru->at("kind"), "statsd");
  EXPECT_EQ(lru->at("hits"), 35);
  EXPECT_EQ(lru->at("misses"), 10 + 4) << "@0.25 stands for 4";
  EXPECT_EQ(lru->at("lookups"), 49);
  EXPECT_NEAR(lru->at("hit_ratio").get<double>(), 35.0 / 49, 1e-9);
  EXPECT_EQ(lru->at("spec"), "hits e2e.lru.hit, misses e2e.lru.miss");
  EXPECT_EQ(find_cache(doc, "idle"), nullptr) << "a cache without lookups has no rows";
  EXPECT_EQ(doc.at("host").at("statsd_counts"), 30 + 1 + 10 + 1);

  auto [table_code, table] = daemon_->cli({"cache", "--target", "web", "--since", "5m"});
  EXPECT_EQ(table_code, 0);
  EXPECT_NE(table.find("71.4%"), std::string::npos) << table;
}

// Application caches counted by a hit and a miss USDT probe, attached in each process of the target.
TEST_F(CacheE2E, ApplicationCacheFromUsdtProbes) {
  start("targets:\n"
        "  - name: blocks\n"
        "    match: {comm: cache_reader}\n"
        "    caches:\n"
        "      - name: block_cache\n"
        "        hit_usdt: \"cache_reader:pwcache:hit\"\n"
        "        miss_usdt: \"" + reader_path + ":pwcache:miss\"\n");
  CacheReader reader(reader_path);
  wait_for_log("cache: usdt attached", reader.pid(), 2);
  ASSERT_EQ(reader.run("usdt 6 2"), "done");
  wait_for_windows();

  const json doc = cache("blocks");
  const json* cache = find_cache(doc, "block_cache");
  ASSERT_TRUE(cache) << doc.dump(2);
  EXPECT_EQ(cache->at("kind"), "usdt");
  EXPECT_EQ(cache->at("hits"), 6);
  EXPECT_EQ(cache->at("misses"), 2);
  EXPECT_NEAR(cache->at("hit_ratio").get<double>(), 0.75, 1e-9);
}

bool hardware_cache_events_available() {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_HARDWARE;
  attr.config = PERF_COUNT_HW_CACHE_REFERENCES;
  attr.sample_period = 100;
  const int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

// Where the CPU has no LLC counters (the CI machines), perfwatchd says so once, stores the state with
// every window, the CLI shows it, and everything else is measured; a reload does not repeat it.
TEST_F(CacheE2E, LlcUnsupportedIsReportedOnceAndTheRestIsMeasured) {
  const bool available = hardware_cache_events_available();
  const fs::path file = make_cache_file("pw-e2e-cache-llc", 1 << 20);
  const std::string config = "targets:\n  - name: reader\n    match: {comm: cache_reader}\n";
  start(config);
  daemon_->write_config(slurp(daemon_->config_path()).substr(slurp(daemon_->config_path()).find('\n') + 1));
  daemon_->reload();
  for (int i = 0; i < 100 && daemon_->log().find("config reloaded") == std::string::npos; ++i)
    std::this_thread::sleep_for(100ms);
  CacheReader reader(reader_path);
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(reader.run("cold " + file.string()), "done");
  wait_for_windows();
  fs::remove(file);
  ASSERT_TRUE(daemon_->alive()) << daemon_->log();

  const json doc = cache("reader");
  const std::string log = daemon_->log();
  const std::regex warning("level=warn[^\n]*CPU cache \\(LLC\\) hit rates unsupported");
  const auto warnings = std::distance(std::sregex_iterator(log.begin(), log.end(), warning), std::sregex_iterator());
  ASSERT_TRUE(find_cache(doc, "page_cache")) << doc.dump(2);
  auto [code, table] = daemon_->cli({"cache", "--target", "reader", "--since", "5m"});
  EXPECT_EQ(code, 0);
  if (available) {
    EXPECT_TRUE(doc.at("llc").at("measured").get<bool>()) << doc.dump(2);
    EXPECT_EQ(warnings, 0) << log;
    EXPECT_NE(table.find("LLC: perf hardware events"), std::string::npos) << table;
    return;
  }
  EXPECT_FALSE(doc.at("llc").at("measured").get<bool>()) << doc.dump(2);
  EXPECT_EQ(doc.at("llc").at("state").get<std::string>().rfind("unsupported: hardware cache events unavailable", 0), 0u)
      << doc.dump(2);
  EXPECT_EQ(find_cache(doc, "llc"), nullptr);
  EXPECT_EQ(warnings, 1) << "reported once, not again on reload:\n" << log;
  EXPECT_NE(table.find("LLC: unsupported: hardware cache events unavailable"), std::string::npos) << table;
}

// The example configuration reports the bundled demo's page cache and LRU cache hit rates.
TEST_F(CacheE2E, ExampleConfigReportsTheDemosCaches) {
  const auto [example, statsd] = example_config();
  daemon_ = std::make_unique<Daemon>("cache-demo", example);
  ASSERT_TRUE(daemon_->started());
  const std::string data_dir = "/var/tmp/perfwatch-demo-e2e-" + std::to_string(getpid());
  auto [code, out] = run({PERFWATCH_SOURCE_DIR "/demo/perfwatch-demo", "--seconds", "12", "--busy", "0.5", "--statsd",
                          statsd, "--data-dir", data_dir});
  fs::remove_all(data_dir);
  ASSERT_EQ(code, 0);
  wait_for_windows();

  const json doc = cache("demo");
  const json* page = find_cache(doc, "page_cache");
  const json* lru = find_cache(doc, "lru");
  ASSERT_TRUE(page && lru) << doc.dump(2);
  EXPECT_GT(page->at("lookups").get<int>(), 0);
  EXPECT_GT(page->at("misses").get<int>(), 0) << "the demo drops part of its corpus from the page cache";
  EXPECT_GT(page->at("hits").get<int>(), 0);
  EXPECT_GT(lru->at("hits").get<int>(), 0);
  EXPECT_GT(lru->at("misses").get<int>(), 0);
  EXPECT_GT(lru->at("hit_ratio").get<double>(), 0.0);
  EXPECT_LT(lru->at("hit_ratio").get<double>(), 1.0);
}

}  // namespace
}  // namespace perfwatch::e2e
