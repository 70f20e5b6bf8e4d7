// The kernel matrix's end-to-end run (scripts/kernel-matrix.sh runs it in each Debian kernel under qemu):
// one perfwatchd on the example configuration, which uses every probe family (CPU and Python stacks,
// process events, a uprobe, Python USDT, a file I/O system call, StatsD, the page cache, the LLC), and
// the bundled demo as its target. It asserts that the windows stored hold each family's measurements and
// prints which attach point each family used on this kernel ("attach: FAMILY: HOW" lines).
#include <gtest/gtest.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "support.h"

namespace perfwatch::e2e {
namespace {

using nlohmann::json;

json cli_json(const Daemon& daemon, const std::vector<std::string>& args) {
  auto [code, out] = daemon.cli(args);
  EXPECT_EQ(code, 0) << slurp((daemon.dir() / "cli.log").string());
  return code == 0 ? json::parse(out) : json::object();
}

const json* find_named(const json& doc, const char* list, const std::string& name) {
  auto items = doc.find(list);
  if (items == doc.end()) return nullptr;
  for (const json& item : *items)
    if (item.at("name") == name) return &item;
  return nullptr;
}

// The value of a sample without labels in Prometheus text, -1 when absent.
double metric(const std::string& text, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\n" + name + " ([0-9.e+]+)\n"))) return -1;
  return std::stod(m[1]);
}

// The first log line holding `what`: the message and its fields, without the quotes.
std::string log_line(const std::string& log, const std::string& what) {
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    if (auto at = line.find(what); at != std::string::npos) {
      std::string found = line.substr(at);
      std::erase(found, '"');
      return found;
    }
  return "none logged";
}

TEST(KernelMatrixE2E, ExampleConfigMeasuresEveryProbeFamily) {
  auto [yaml, statsd] = example_config();
  yaml = std::regex_replace(yaml, std::regex("\nlog_level: info"), "\nlog_level: debug");
  std::smatch port;
  ASSERT_TRUE(std::regex_search(yaml, port, std::regex("dashboard:[^]*?listen: 127\\.0\\.0\\.1:([0-9]+)")));
  const auto dashboard = static_cast<std::uint16_t>(std::stoi(port[1]));

  Daemon daemon("matrix", yaml);
  ASSERT_TRUE(daemon.started());
  // Started after the daemon: found through an exec event (or the next window's rescan).
  auto [code, out] = run({PERFWATCH_SOURCE_DIR "/demo/perfwatch-demo", "--seconds", "20", "--busy", "0.5", "--statsd", statsd});
  ASSERT_EQ(code, 0) << out;
  wait_for_windows();
  ASSERT_TRUE(daemon.alive()) << daemon.log();
  const std::string log = daemon.log();

  // CPU samples with Python frames, in stored windows.
  Folded flame(daemon.folded("demo", "2m"));
  EXPECT_GT(flame.total, 100u) << log;
  EXPECT_GT(flame.share("serve"), 50.0) << "Python frames of the demo";
  EXPECT_GT(flame.share("handle_request"), 30.0);

  // Process events: the demo's exec (and its threads) came from the kernel.
  auto [status, metrics] = http_get(dashboard, "/metrics");
  ASSERT_EQ(status, 200) << metrics;
  EXPECT_GT(metric(metrics, "perfwatch_process_events_total"), 0) << metrics;
  EXPECT_GT(metric(metrics, "perfwatch_processes_matched_total"), 0) << metrics;

  // Latency: every operation of the example has calls, through each kind of source.
  const json latency = cli_json(daemon, {"latency", "--target", "demo", "--since", "2m", "--format", "json"});
  std::set<std::string> sources;
  for (const json& op : latency.value("operations", json::array())) {
    EXPECT_GT(op.at("calls").get<long>(), 0) << op.dump();
    sources.insert(op.at("source").get<std::string>());
  }
  EXPECT_EQ(sources, (std::set<std::string>{"uprobe", "python", "syscall", "statsd"})) << latency.dump(2);

  // Caches: the page cache on whatever path this kernel offers, the demo's LRU through StatsD.
  const json cache = cli_json(daemon, {"cache", "--target", "demo", "--since", "2m", "--format", "json"});
  const json* page = find_named(cache, "caches", "page_cache");
  const json* lru = find_named(cache, "caches", "lru");
  ASSERT_TRUE(page && lru) << cache.dump(2);
  const std::string page_state = cache.at("page_cache").at("state").get<std::string>();
  EXPECT_TRUE(cache.at("page_cache").at("measured").get<bool>()) << page_state;
  EXPECT_GT(page->at("misses").get<long>(), 0) << "the demo drops part of its corpus from the page cache";
  EXPECT_GT(page->at("lookups").get<long>(), 0) << page_state;
  EXPECT_GT(page->at("hits").get<long>(), 0) << page_state;
  EXPECT_GT(lru->at("hits").get<long>(), 0);
  EXPECT_GT(lru->at("misses").get<long>(), 0);
  const json& llc = cache.at("llc");
  if (llc.at("measured").get<bool>())
    EXPECT_GT(cache.at("host").at("llc_references").get<long>(), 0) << cache.dump(2);
  else
    EXPECT_EQ(llc.at("state").get<std::string>().rfind("unsupported: ", 0), 0u) << cache.dump(2);

  const bool raw_syscalls = log.find("syscall operations measured through raw_syscalls") != std::string::npos;
  std::cout << "attach: cpu: " << log_line(log, "oncpu sampler attached") << "\n"
            << "attach: python: " << log_line(log, "profiling Python frames") << "\n"
            << "attach: syscall: " << (raw_syscalls ? "raw_syscalls:sys_enter/sys_exit" : "syscalls:sys_enter_*/sys_exit_*")
            << "\n"
            << "attach: page_cache: " << page_state << "\n"
            << "attach: llc: " << llc.at("state").get<std::string>() << "\n"
            << "attach: process_events: " << metric(metrics, "perfwatch_process_events_total") << " events\n";
}

}  // namespace
}  // namespace perfwatch::e2e
