// End to end: operation latencies through the real perfwatchd (BPF probes, StatsD listener, embedded
// PostgreSQL) and the real perfwatch CLI. Uprobes and USDT fire only on the first hit per thread on
// the CI machines (ENVIRONMENT.md), so each measured call runs on a fresh thread or process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "support.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

const std::string sleeper = SLEEPER_PATH;

class LatencyE2E : public ::testing::Test {
 protected:
  void start(const std::string& config) {
    daemon_ = std::make_unique<Daemon>("latency", "log_level: debug\nsampling:\n  window: 2s\n" + config);
    ASSERT_TRUE(daemon_->started());
  }
  // Waits until the daemon has logged `what` for pid `count` times (its probes are attached).
  void wait_for_log(const std::string& what, pid_t pid, int count) { e2e::wait_for_log(*daemon_, what, pid, count); }
  json latency(const std::string& target, const std::string& op = "") {
    std::vector<std::string> args{"latency", "--target", target, "--since", "5m", "--format", "json"};
    if (!op.empty()) args.insert(args.end(), {"--op", op});
    auto [code, out] = daemon_->cli(args);
    EXPECT_EQ(code, 0) << slurp((daemon_->dir() / "cli.log").string());
    return code == 0 ? json::parse(out) : json::object();
  }
  static const json* find_op(const json& doc, const std::string& name) { return find_named(doc, "operations", name); }
  std::unique_ptr<Daemon> daemon_;
};

double ms(const json& ns) { return ns.get<double>() / 1e6; }

// A timed call of a sleep of `asked` ms: never shorter (within the histogram's 1/32 buckets), and longer
// by at most the time its thread waits for a CPU once the sleep ends, up to 15 ms on a busy 2-core machine.
::testing::AssertionResult slept(const json& ns, double asked) {
  const double got = ms(ns);
  if (got >= asked * (1 - 1.0 / 32) && got <= asked * (1 + 1.0 / 32) + 15) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << got << " ms for a sleep of " << asked << " ms";
}

TEST_F(LatencyE2E, NativeFunctionsGradedAgainstTheirTiers) {
  start("targets:\n"
        "  - name: sleeper\n"
        "    match: {cmdline: \"sleeper calls\"}\n"
        "    operations:\n"
        "      - {name: fast, tier: T1, uprobe: \"" + sleeper + ":op_fast\"}\n"
        "      - {name: medium, tier: T1, uprobe: \"sleeper:op_medium\"}\n"
        "      - {name: slow, tier: T3, uprobe: \"sleeper:op_slow\"}\n"
        "      - {name: mixed, tier: T2, uprobe: \"sleeper:op_mixed\"}\n");
  std::vector<std::string> argv{sleeper, "calls"};
  for (int i = 0; i < 5; ++i) argv.push_back("fast:30");
  for (int i = 0; i < 3; ++i) argv.push_back("medium:150");
  for (int i = 0; i < 2; ++i) argv.push_back("slow:700");
  for (int i = 0; i < 10; ++i) argv.push_back("mixed:30");
  for (int i = 0; i < 6; ++i) argv.push_back("mixed:150");
  for (int i = 0; i < 4; ++i) argv.push_back("mixed:700");
  GatedChild child = spawn_gated(argv);
  wait_for_log("uprobe attached", child.pid, 4);
  child.open();
  ASSERT_EQ(wait_exit(child.pid), 0);
  wait_for_windows();

  json doc = latency("sleeper");
  const json* fast = find_op(doc, "fast");
  const json* medium = find_op(doc, "medium");
  const json* slow = find_op(doc, "slow");
  const json* mixed = find_op(doc, "mixed");
  ASSERT_TRUE(fast && medium && slow && mixed) << doc.dump(2);
  EXPECT_EQ(fast->at("calls"), 5);
  EXPECT_EQ(medium->at("calls"), 3);
  EXPECT_EQ(slow->at("calls"), 2);
  EXPECT_EQ(mixed->at("calls"), 20);
  EXPECT_EQ(fast->at("verdict"), "ok");
  EXPECT_EQ(fast->at("grade"), "T1");
  EXPECT_EQ(medium->at("verdict"), "slow") << "150 ms calls exceed T1 (100 ms)";
  EXPECT_EQ(medium->at("grade"), "T2");
  EXPECT_EQ(medium->at("slow"), 3);
  EXPECT_EQ(slow->at("verdict"), "ok") << "700 ms is within T3 (2 s)";
  EXPECT_EQ(slow->at("grade"), "T3");
  // 10 x 30 ms, 6 x 150 ms, 4 x 700 ms: nearest-rank p50 = 30, p95 = p99 = 700.
  EXPECT_TRUE(slept(mixed->at("p50_ns"), 30));
  EXPECT_TRUE(slept(mixed->at("p95_ns"), 700));
  EXPECT_TRUE(slept(mixed->at("p99_ns"), 700));
  EXPECT_TRUE(slept(mixed->at("max_ns"), 700));
  EXPECT_EQ(mixed->at("slow"), 4) << "calls over T2 (500 ms)";
  EXPECT_NEAR(mixed->at("slow_fraction").get<double>(), 0.2, 1e-9);
  EXPECT_EQ(mixed->at("verdict"), "slow");
  EXPECT_EQ(mixed->at("grade"), "T3");
  EXPECT_EQ(doc.at("health").at("lost_no_entry"), 0);

  auto [code, table] = daemon_->cli({"latency", "--target", "sleeper", "--op", "medium", "--since", "5m"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(table.find("SLOW (p99 in T2)"), std::string::npos) << table;
  EXPECT_EQ(table.find("mixed"), std::string::npos) << "--op shows one operation:\n" << table;
}

// Calls of one thread, which exists before the probes are attached: recursion pairs innermost first,
// and calls left by longjmp are dropped instead of being paired with a later return.
TEST_F(LatencyE2E, RecursionAndLongjmpPairEachReturnWithItsOwnEntry) {
  start("targets:\n"
        "  - name: nested\n"
        "    match: {cmdline: \"sleeper nested\"}\n"
        "    operations:\n"
        "      - {name: recurse, tier: T1, uprobe: \"sleeper:op_recurse\"}\n"
        "      - {name: escape, tier: T1, uprobe: \"sleeper:op_escape\"}\n");
  GatedChild child = spawn_gated({sleeper, "nested", "3", "20"});
  wait_for_log("uprobe attached", child.pid, 2);
  child.open();
  ASSERT_EQ(wait_exit(child.pid), 0);
  wait_for_windows();

  json doc = latency("nested");
  const json* recurse = find_op(doc, "recurse");
  const json* escape = find_op(doc, "escape");
  ASSERT_TRUE(recurse && escape) << doc.dump(2);
  // op_recurse(3, 20) lasts 60 ms around calls of 40 and 20 ms; then op_recurse(1, 20).
  EXPECT_EQ(recurse->at("calls"), 4);
  EXPECT_TRUE(slept(recurse->at("max_ns"), 60));
  EXPECT_TRUE(slept(recurse->at("p50_ns"), 20));
  EXPECT_NEAR(recurse->at("sum_ns").get<double>() / 1e6, 60 + 40 + 20 + 20, 140 * 0.05);
  // op_escape(3) never returns; op_escape(0) lasts 10 ms and must not be paired with an older entry.
  EXPECT_EQ(escape->at("calls"), 1);
  EXPECT_TRUE(slept(escape->at("max_ns"), 10));
  EXPECT_EQ(doc.at("health").at("lost_unwound"), 2) << "op_escape(2) and op_escape(1), dropped when op_escape(0) starts";
  EXPECT_EQ(doc.at("health").at("lost_no_entry"), 0);
}

TEST_F(LatencyE2E, PythonFunctionThroughUsdt) {
  const fs::path dir = fs::temp_directory_path() / ("pw-e2e-py-" + std::to_string(getpid()));
  fs::create_directories(dir / "pwe2e");
  std::ofstream(dir / "pwe2e" / "__init__.py") << "";
  std::ofstream(dir / "pwe2e" / "work.py") << "import time\ndef measured(ms):\n    time.sleep(ms / 1000)\n";
  start("targets:\n"
        "  - name: py\n"
        "    match: {cmdline: \"pw_latency_e2e\"}\n"
        "    operations:\n"
        "      - {name: measured, tier: T1, python: \"pwe2e.work.measured\"}\n");
  // One call per fresh interpreter. CPython 3.11 fires function__entry only while a profile
  // function is set, so each sets a C-level no-op one right before its call.
  std::vector<GatedChild> children;
  for (int ms : {30, 30, 30, 150}) {
    const std::string code = "import sys, pwe2e.work as w  # pw_latency_e2e\nsys.stdin.read()\nsys.setprofile(slice)\n"
                             "w.measured(" + std::to_string(ms) + ")\n";
    children.push_back(spawn_gated({"/usr/bin/python3.11", "-c", code}, {"PYTHONPATH=" + dir.string()}));
  }
  for (const GatedChild& c : children) wait_for_log("python probes attached", c.pid, 1);
  for (GatedChild& c : children) c.open();
  for (const GatedChild& c : children) EXPECT_EQ(wait_exit(c.pid), 0);
  wait_for_windows();
  fs::remove_all(dir);

  json doc = latency("py", "measured");
  const json* op = find_op(doc, "measured");
  ASSERT_TRUE(op) << doc.dump(2);
  EXPECT_EQ(op->at("calls"), 4);
  EXPECT_EQ(op->at("source"), "python");
  EXPECT_TRUE(slept(op->at("p50_ns"), 30));
  EXPECT_TRUE(slept(op->at("max_ns"), 150));
  EXPECT_EQ(op->at("slow"), 1);
  EXPECT_EQ(op->at("verdict"), "slow");
  EXPECT_EQ(op->at("grade"), "T2");
}

TEST_F(LatencyE2E, FileReadsUnderAndOutsideAPathPrefix) {
  const fs::path dir = fs::temp_directory_path() / ("pw-e2e-io-" + std::to_string(getpid()));
  fs::create_directories(dir / "data");
  fs::create_directories(dir / "other");
  for (const char* f : {"data/a", "data/b", "other/c"}) std::ofstream(dir / f) << std::string(8192, 'x');
  start("targets:\n"
        "  - name: reader\n"
        "    match: {cmdline: \"sleeper reads\"}\n"
        "    operations:\n"
        "      - {name: data_reads, tier: T2, syscall: read, path_prefix: " + (dir / "data").string() + "}\n"
        "      - {name: tree_reads, tier: T2, syscall: read, path_prefix: " + dir.string() + "}\n"
        "      - {name: file_reads, tier: T2, syscall: read}\n"
        "      - {name: any_reads, tier: T2, syscall: read, regular_only: false}\n");
  GatedChild under = spawn_gated({sleeper, "reads", (dir / "data").string(), "3"});
  GatedChild outside = spawn_gated({sleeper, "reads", (dir / "other").string(), "5"});
  std::this_thread::sleep_for(1s);  // found by exec events; tracepoints need no attaching per process
  under.open();
  outside.open();
  EXPECT_EQ(wait_exit(under.pid), 0);
  EXPECT_EQ(wait_exit(outside.pid), 0);
  wait_for_windows();
  fs::remove_all(dir);

  json doc = latency("reader");
  const json* data = find_op(doc, "data_reads");
  const json* tree = find_op(doc, "tree_reads");
  const json* files = find_op(doc, "file_reads");
  const json* any = find_op(doc, "any_reads");
  ASSERT_TRUE(data && tree && files && any) << doc.dump(2);
  EXPECT_EQ(data->at("calls"), 2 * 3) << "two files under the prefix, three reads each";
  EXPECT_EQ(tree->at("calls"), 2 * 3 + 5) << "a prefix covers every directory below it";
  // Without a prefix the processes' other regular-file reads count too (the dynamic loader's, when
  // the process was watched by then). Not regular files: each process's pipe read, and its read of
  // stdin when it was watched before it blocked there.
  EXPECT_GE(files->at("calls").get<int>(), 2 * 3 + 5);
  const int not_regular = any->at("calls").get<int>() - files->at("calls").get<int>();
  EXPECT_GE(not_regular, 2) << "regular_only: false adds the pipes";
  EXPECT_LE(not_regular, 4);
  EXPECT_EQ(data->at("verdict"), "ok");
}

TEST_F(LatencyE2E, StatsdTimersFromTheRealClientAndBadPackets) {
  const int port = 20000 + getpid() % 20000;
  start("statsd:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n  max_packet: 1KB\n"
        "targets:\n"
        "  - name: web\n"
        "    match: {comm: pw-no-such-proc}\n"
        "    operations:\n"
        "      - {name: render, tier: T1, statsd: e2e.render}\n"
        "      - {name: export, tier: T4, statsd: e2e.export}\n");
  const std::string script =
      "import socket, statsd\n"
      "c = statsd.StatsClient('127.0.0.1', " + std::to_string(port) + ")\n"
      "for ms in [30] * 10 + [150] * 6 + [700] * 4:\n    c.timing('e2e.render', ms)\n"
      "c.timing('e2e.export', 3000, rate=0.5)\n"  // the client sends it or not at random: counted as 2 when sent
      "c.timing('e2e.unknown', 5)\n"
      "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
      "to = ('127.0.0.1', " + std::to_string(port) + ")\n"
      "s.sendto(b'e2e.render:not-a-number|ms', to)\n"
      "s.sendto(b'e2e.render:1|ms\\ngarbage\\ne2e.render:2|ms|#env:test', to)\n"
      "s.sendto(b'x' * 5000, to)\n";
  auto [code, out] = run({"/usr/bin/python3", "-c", script});
  ASSERT_EQ(code, 0) << "python3-statsd missing? (Debian package python3-statsd)";
  wait_for_windows();
  ASSERT_TRUE(daemon_->alive());

  json doc = latency("web");
  const json* render = find_op(doc, "render");
  ASSERT_TRUE(render) << doc.dump(2);
  EXPECT_EQ(render->at("calls"), 22);
  EXPECT_EQ(render->at("source"), "statsd");
  EXPECT_NEAR(ms(render->at("p50_ns")), 30, 30 * 0.05);
  EXPECT_NEAR(ms(render->at("p95_ns")), 700, 700 * 0.05);
  EXPECT_EQ(render->at("max_ns"), 700'000'000);
  EXPECT_EQ(render->at("slow"), 10);
  EXPECT_EQ(render->at("verdict"), "slow");
  // The client sends a timer sampled at @0.5 only half the time; the CLI lists the operation either way.
  const json* exported = find_op(doc, "export");
  ASSERT_TRUE(exported) << doc.dump(2);
  if (exported->at("windows") != 0) {
    EXPECT_EQ(exported->at("calls"), 2) << "@0.5 stands for 2 calls";
  }
  const json& health = doc.at("health");
  EXPECT_EQ(health.at("statsd_unknown"), 1);
  EXPECT_EQ(health.at("statsd_malformed"), 2);
  EXPECT_EQ(health.at("statsd_oversized"), 1);
}

// A reload replaces the operations: new probes are loaded, the StatsD listener learns the new metrics.
TEST_F(LatencyE2E, ReloadReplacesTheOperations) {
  const int port = 20000 + (getpid() + 7) % 20000;
  const fs::path dir = fs::temp_directory_path() / ("pw-e2e-reload-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "a") << std::string(4096, 'x');
  const std::string head = "statsd:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n" +
                           "targets:\n  - name: app\n    match: {cmdline: \"sleeper reads\"}\n    operations:\n";
  start(head + "      - {name: before, tier: T1, statsd: e2e.before}\n");
  daemon_->write_config("log_level: debug\nsampling:\n  window: 2s\n" + head +
                        "      - {name: timer, tier: T1, statsd: e2e.timer}\n"
                        "      - {name: reads, tier: T2, syscall: read, path_prefix: " + dir.string() + "}\n");
  daemon_->reload();
  for (int i = 0; i < 100 && daemon_->log().find("config reloaded") == std::string::npos; ++i)
    std::this_thread::sleep_for(100ms);
  ASSERT_NE(daemon_->log().find("config reloaded"), std::string::npos) << daemon_->log();
  GatedChild reader = spawn_gated({sleeper, "reads", dir.string(), "4"});
  std::this_thread::sleep_for(1s);
  reader.open();
  EXPECT_EQ(wait_exit(reader.pid), 0);
  auto [code, out] = run({"/usr/bin/python3", "-c",
                          "import statsd\nc = statsd.StatsClient('127.0.0.1', " + std::to_string(port) +
                              ")\nc.timing('e2e.timer', 20)\nc.timing('e2e.before', 20)\n"});
  ASSERT_EQ(code, 0);
  wait_for_windows();
  fs::remove_all(dir);
  ASSERT_TRUE(daemon_->alive()) << daemon_->log();

  json doc = latency("app");
  const json* timer = find_op(doc, "timer");
  const json* reads = find_op(doc, "reads");
  ASSERT_TRUE(timer && reads) << doc.dump(2);
  EXPECT_EQ(timer->at("calls"), 1);
  EXPECT_EQ(reads->at("calls"), 4);
  EXPECT_EQ(find_op(doc, "before"), nullptr) << "a metric no longer configured is unknown";
  EXPECT_EQ(doc.at("health").at("statsd_unknown"), 1);
}

// The example configuration measures the bundled demo in every tier, through every kind of source.
TEST_F(LatencyE2E, ExampleConfigMeasuresTheDemoInEveryTier) {
  const auto [example, statsd] = example_config();
  daemon_ = std::make_unique<Daemon>("demo", example);
  ASSERT_TRUE(daemon_->started());
  auto [code, out] = run({PERFWATCH_SOURCE_DIR "/demo/perfwatch-demo", "--seconds", "15", "--busy", "0.5", "--statsd", statsd});
  ASSERT_EQ(code, 0);
  wait_for_windows();

  json doc = latency("demo");
  std::set<std::string> tiers, sources;
  for (const json& op : doc.at("operations")) {
    EXPECT_GT(op.at("calls").get<int>(), 0) << op.dump();
    if (!op.at("tier").is_null()) tiers.insert(op.at("tier").get<std::string>());
    sources.insert(op.at("source").get<std::string>());
  }
  EXPECT_EQ(tiers, (std::set<std::string>{"T1", "T2", "T3", "T4", "T5"})) << doc.dump(2);
  EXPECT_EQ(sources, (std::set<std::string>{"uprobe", "python", "syscall", "statsd"})) << doc.dump(2);
  EXPECT_EQ(doc.at("operations").size(), 6u) << doc.dump(2);
  // The same daemon profiles the demo with Python frames (the example's `python: auto`) while its
  // USDT probes and no-op profile function time the Python operations.
  Folded flame(daemon_->folded("demo", "1m"));
  EXPECT_GT(flame.total, 100u);
  EXPECT_GT(flame.share("serve"), 80.0);
  EXPECT_GT(flame.share("handle_request"), 50.0);
}

}  // namespace
}  // namespace perfwatch::e2e
