// End to end: a probe family that cannot load or attach costs only what it measures. The real perfwatchd
// keeps running and storing windows, says which family failed and why (log, /metrics, `perfwatch targets`,
// `perfwatch latency`), and the other families measure. Each family fails for real where the host offers
// a way: the CPU sampler over kernel.perf_event_max_sample_rate, a USDT probe the binary lacks, the StatsD
// port taken, tracefs gone before a reload. Where it offers none (the latency and process-event programs
// load here), the test-only fault point PERFWATCH_TEST_REJECT_PROGRAMS makes the kernel's verifier reject
// them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "support.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

const std::string sleeper = SLEEPER_PATH;
const std::string reader = CACHE_READER_PATH;

// Sets a sysctl for the life of the object (or until restore()), then puts the old value back.
class Sysctl {
 public:
  Sysctl(std::string path, const std::string& value) : path_(std::move(path)), old_(slurp(path_)) {
    std::ofstream(path_) << value;
    EXPECT_EQ(slurp(path_), value + "\n") << "cannot set " << path_;
  }
  ~Sysctl() { restore(); }
  void restore() {
    if (old_.empty()) return;
    std::ofstream(path_) << old_;
    old_.clear();
  }

 private:
  std::string path_, old_;
};

// The fault point's environment variable, set while perfwatchd starts (it reads it once).
class RejectPrograms {
 public:
  explicit RejectPrograms(const char* programs) { setenv("PERFWATCH_TEST_REJECT_PROGRAMS", programs, 1); }
  ~RejectPrograms() { unsetenv("PERFWATCH_TEST_REJECT_PROGRAMS"); }
};

void send_udp(std::uint16_t port, const std::string& datagram) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr),
            static_cast<ssize_t>(datagram.size()));
  close(fd);
}

class DegradeE2E : public ::testing::Test {
 protected:
  // `config` follows the sampling and dashboard sections; `sampling` adds keys to the former.
  void start(const std::string& config, std::vector<std::string> launcher = {}, const std::string& sampling = "") {
    dashboard_ = free_port();
    daemon_ = std::make_unique<Daemon>("degrade", head(sampling) + config, std::move(launcher));
    ASSERT_TRUE(daemon_->started());
  }
  std::string head(const std::string& sampling = "") const {
    return "log_level: debug\nsampling:\n  window: 2s\n" + sampling + "dashboard:\n  listen: 127.0.0.1:" +
           std::to_string(dashboard_) + "\n";
  }

  json cli_json(const std::vector<std::string>& args) {
    auto [code, out] = daemon_->cli(args);
    EXPECT_EQ(code, 0) << slurp((daemon_->dir() / "cli.log").string());
    return code == 0 ? json::parse(out) : json::object();
  }

  // The probe families of the newest stored window, from `perfwatch targets --format json`, by family.
  std::map<std::string, json> probes() {
    std::map<std::string, json> out;
    const json doc = cli_json({"targets", "--since", "5m", "--format", "json"});
    if (!doc.contains("hosts") || doc["hosts"].empty()) return out;
    for (const json& p : doc["hosts"][0]["probes"]) out[p["family"].get<std::string>()] = p;
    return out;
  }

  // Waits (up to 30 s) until a stored window shows `family` in `state`; returns its probes (and prints
  // that family's, whose detail is the kernel's reason).
  std::map<std::string, json> wait_for_state(const std::string& family, const std::string& state) {
    std::map<std::string, json> found;
    for (int i = 0; i < 60; ++i) {
      found = probes();
      if (found.count(family) && found[family]["state"] == state) {
        std::cout << "stored state: " << found[family].dump() << "\n";
        return found;
      }
      std::this_thread::sleep_for(500ms);
    }
    ADD_FAILURE() << "no stored window with " << family << " " << state << "; last seen: "
                  << (found.count(family) ? found[family].dump() : "nothing") << "\n" << daemon_->log();
    return found;
  }

  // The /metrics line of the family's state series.
  std::string metric_line(const std::string& family) {
    auto [status, body] = http_get(dashboard_, "/metrics");
    EXPECT_EQ(status, 200) << body;
    const std::string prefix = "perfwatch_probe_state{family=\"" + family + "\"";
    const auto at = body.find(prefix);
    return at == std::string::npos ? "" : body.substr(at, body.find('\n', at) - at);
  }

  static const json* find_op(const json& doc, const std::string& name) {
    const auto ops = doc.find("operations");
    if (ops == doc.end()) return nullptr;
    for (const json& op : *ops)
      if (op.at("name") == name) return &op;
    return nullptr;
  }

  // Runs sleeper's calls once its uprobes are attached; their windows are stored when this returns.
  void run_sleeper_calls(int calls) {
    std::vector<std::string> argv{sleeper, "calls"};
    for (int i = 0; i < calls; ++i) argv.push_back("fast:20");
    GatedChild child = spawn_gated(argv);
    wait_for_log(*daemon_, "uprobe attached", child.pid, 1);
    child.open();
    ASSERT_EQ(wait_exit(child.pid), 0);
    wait_for_windows();
  }

  std::uint16_t dashboard_ = 0;
  std::unique_ptr<Daemon> daemon_;
};

const std::string sleeper_target = "targets:\n  - name: sleeper\n    match: {cmdline: \"sleeper calls\"}\n    operations:\n"
                                   "      - {name: fast, tier: T1, uprobe: \"sleeper:op_fast\"}\n";

// The kernel refuses perf events above kernel.perf_event_max_sample_rate: the sampler cannot start,
// uprobes and StatsD measure.
TEST_F(DegradeE2E, WithoutTheCpuSamplerLatencyAndStatsdMeasure) {
  const std::uint16_t statsd = free_port(SOCK_DGRAM);
  {
    // Above every other test's frequency (at most 999 Hz), so that perfwatchd instances beside this one
    // are not affected; restored as soon as this one has tried.
    Sysctl limit("/proc/sys/kernel/perf_event_max_sample_rate", "4000");
    start("statsd:\n  listen: 127.0.0.1:" + std::to_string(statsd) + "\n" + sleeper_target +
              "      - {name: timer, tier: T1, statsd: e2e.degrade.timer}\n",
          {}, "  frequency_hz: 5000\n");
  }
  ASSERT_NE(daemon_->log().find("the CPU sampler cannot start"), std::string::npos) << daemon_->log();
  run_sleeper_calls(3);
  send_udp(statsd, "e2e.degrade.timer:20|ms");
  wait_for_windows();
  ASSERT_TRUE(daemon_->alive()) << daemon_->log();

  auto states = wait_for_state("cpu_sampler", "failed");
  EXPECT_NE(states["cpu_sampler"]["detail"].get<std::string>().find("perf_event_max_sample_rate"), std::string::npos)
      << states["cpu_sampler"].dump();
  EXPECT_EQ(states["python_stacks"]["state"], "failed") << "Python frames come from the sampler";
  EXPECT_EQ(states["latency_uprobe"]["state"], "running") << states["latency_uprobe"].dump();
  EXPECT_EQ(states["statsd"]["state"], "running");
  EXPECT_EQ(states["process_events"]["state"], "running");
  EXPECT_EQ(states["page_cache"]["state"], "running");
  EXPECT_NE(metric_line("cpu_sampler").find("state=\"failed\""), std::string::npos) << metric_line("cpu_sampler");

  const json doc = cli_json({"latency", "--target", "sleeper", "--since", "5m", "--format", "json"});
  const json* fast = find_op(doc, "fast");
  const json* timer = find_op(doc, "timer");
  ASSERT_TRUE(fast && timer) << doc.dump(2);
  EXPECT_EQ(fast->at("calls"), 3);
  EXPECT_EQ(timer->at("calls"), 1);
  EXPECT_TRUE(fast->at("not_measured").is_null());
  const json targets = cli_json({"targets", "--since", "5m", "--format", "json"});
  ASSERT_FALSE(targets["targets"].empty()) << targets.dump(2);
  EXPECT_GT(targets["targets"][0]["windows"].get<int>(), 0) << "windows are stored without the sampler";
  EXPECT_EQ(targets["targets"][0]["samples"], 0);
}

// The kernel's verifier rejects the Python latency programs (the fault point): python operations say
// why they have no calls, uprobe and syscall operations and the CPU sampler measure.
TEST_F(DegradeE2E, RejectedLatencyProgramsCostOnlyTheirOperations) {
  const fs::path dir = fs::temp_directory_path() / ("pw-e2e-degrade-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "a") << std::string(4096, 'x');
  {
    RejectPrograms fault("latency/python_entry");
    start("targets:\n  - name: sleeper\n    match: {cmdline: \"sleeper (calls|reads)\"}\n    operations:\n"
          "      - {name: fast, tier: T1, uprobe: \"sleeper:op_fast\"}\n"
          "      - {name: handler, tier: T1, python: \"app.handler\"}\n"
          "      - {name: reads, tier: T2, syscall: read, path_prefix: " + dir.string() + "}\n");
  }
  run_sleeper_calls(2);
  GatedChild reads = spawn_gated({sleeper, "reads", dir.string(), "3"});
  std::this_thread::sleep_for(1s);
  reads.open();
  ASSERT_EQ(wait_exit(reads.pid), 0);
  wait_for_windows();
  fs::remove_all(dir);
  ASSERT_TRUE(daemon_->alive()) << daemon_->log();

  auto states = wait_for_state("latency_python", "failed");
  const std::string detail = states["latency_python"]["detail"];
  EXPECT_NE(detail.find("python_entry: "), std::string::npos) << detail;
  EXPECT_GT(detail.size(), detail.find("python_entry: ") + 20) << "the kernel's reason is missing: " << detail;
  EXPECT_EQ(states["latency_uprobe"]["state"], "running");
  EXPECT_EQ(states["latency_syscall"]["state"], "running");
  EXPECT_EQ(states["cpu_sampler"]["state"], "running");
  EXPECT_NE(metric_line("latency_python").find("state=\"failed\""), std::string::npos);
  EXPECT_NE(daemon_->log().find("the kernel rejected a BPF program; loading the others without it"), std::string::npos);

  const json doc = cli_json({"latency", "--target", "sleeper", "--since", "5m", "--format", "json"});
  const json* fast = find_op(doc, "fast");
  const json* handler = find_op(doc, "handler");
  const json* read_op = find_op(doc, "reads");
  ASSERT_TRUE(fast && handler && read_op) << doc.dump(2);
  EXPECT_EQ(fast->at("calls"), 2);
  EXPECT_EQ(read_op->at("calls"), 3);
  EXPECT_EQ(handler->at("calls"), 0);
  EXPECT_EQ(handler->at("not_measured").get<std::string>().rfind("not measured: latency_python failed: ", 0), 0u)
      << handler->dump();
  auto [code, table] = daemon_->cli({"latency", "--target", "sleeper", "--since", "5m"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(table.find("not measured: latency_python failed"), std::string::npos) << table;
}

// Without process events, processes started later are found by the /proc rescan of every window.
TEST_F(DegradeE2E, WithoutProcessEventsTheRescanFindsProcesses) {
  {
    RejectPrograms fault("procevents");
    start(sleeper_target);
  }
  ASSERT_NE(daemon_->log().find("process events cannot start"), std::string::npos) << daemon_->log();
  run_sleeper_calls(2);  // started after perfwatchd: only a rescan can find it
  ASSERT_TRUE(daemon_->alive()) << daemon_->log();
  auto states = wait_for_state("process_events", "failed");
  EXPECT_NE(states["process_events"]["detail"].get<std::string>().find("rescan"), std::string::npos);
  EXPECT_EQ(states["cpu_sampler"]["state"], "running");
  const json doc = cli_json({"latency", "--target", "sleeper", "--since", "5m", "--format", "json"});
  const json* fast = find_op(doc, "fast");
  ASSERT_TRUE(fast) << doc.dump(2);
  EXPECT_EQ(fast->at("calls"), 2);
}

// A USDT probe the binary lacks: that cache's probe does not attach (degraded, and why), its other probe
// and the page cache measure.
TEST_F(DegradeE2E, AUsdtProbeTheBinaryLacksDegradesOnlyItsCache) {
  start("targets:\n  - name: reader\n    match: {cmdline: \"cache_reader\"}\n    caches:\n"
        "      - name: kv\n        hit_usdt: \"cache_reader:pwcache:hit\"\n        miss_usdt: \"cache_reader:pwcache:no_such_probe\"\n");
  int in[2], out[2];
  ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    execl(reader.c_str(), reader.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  wait_for_log(*daemon_, "cache: usdt attached", pid, 1);
  const std::string command = "usdt 5 2\n";
  ASSERT_EQ(write(in[1], command.data(), command.size()), static_cast<ssize_t>(command.size()));
  char answer[16] = {};
  ASSERT_GT(read(out[0], answer, sizeof answer - 1), 0);
  close(in[1]);
  close(out[0]);
  wait_exit(pid);
  wait_for_windows();
  ASSERT_TRUE(daemon_->alive()) << daemon_->log();

  auto states = wait_for_state("usdt_caches", "degraded");
  const std::string detail = states["usdt_caches"]["detail"];
  EXPECT_NE(detail.find("pwcache:no_such_probe"), std::string::npos) << detail;
  EXPECT_EQ(states["page_cache"]["state"], "running");
  const json doc = cli_json({"cache", "--target", "reader", "--since", "5m", "--format", "json"});
  bool kv = false;
  for (const json& c : doc.value("caches", json::array()))
    if (c["name"] == "kv") {
      kv = true;
      EXPECT_EQ(c["hits"], 5) << c.dump();
    }
  EXPECT_TRUE(kv) << "the probe that attached counts: " << doc.dump(2);
}

// The StatsD port is taken: StatsD operations say why they have no calls, uprobes measure.
TEST_F(DegradeE2E, AStatsdPortInUseCostsOnlyStatsd) {
  const std::uint16_t port = free_port(SOCK_DGRAM);
  const int taken = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  start("statsd:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n" + sleeper_target +
        "      - {name: timer, tier: T1, statsd: e2e.degrade.timer}\n");
  run_sleeper_calls(2);
  ASSERT_TRUE(daemon_->alive()) << daemon_->log();
  auto states = wait_for_state("statsd", "failed");
  EXPECT_NE(states["statsd"]["detail"].get<std::string>().find("in use"), std::string::npos) << states["statsd"].dump();
  const json doc = cli_json({"latency", "--target", "sleeper", "--since", "5m", "--format", "json"});
  const json* fast = find_op(doc, "fast");
  const json* timer = find_op(doc, "timer");
  ASSERT_TRUE(fast && timer) << doc.dump(2);
  EXPECT_EQ(fast->at("calls"), 2);
  EXPECT_EQ(timer->at("not_measured").get<std::string>().rfind("not measured: statsd failed: ", 0), 0u) << timer->dump();
  close(taken);
}

// A reload whose new probes fail (tracefs gone from perfwatchd's mount namespace, so no syscall
// tracepoint can attach) is not applied: the running probes keep measuring and their state says why.
TEST_F(DegradeE2E, AReloadWhoseProbesFailKeepsTheRunningOnes) {
  const fs::path dir = fs::temp_directory_path() / ("pw-e2e-degrade-reload-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "a") << std::string(4096, 'x');
  const std::string targets = "targets:\n  - name: app\n    match: {cmdline: \"sleeper reads\"}\n    operations:\n"
                              "      - {name: reads, tier: T2, syscall: read, path_prefix: " + dir.string() + "}\n";
  start(targets, {"/usr/bin/unshare", "--mount", "--propagation", "private"});
  wait_for_state("latency_syscall", "running");
  auto [umounted, out] = run({"/usr/bin/nsenter", "--target", std::to_string(daemon_->pid()), "--mount", "/bin/sh", "-c",
                              "umount -l /sys/kernel/tracing; umount -l /sys/kernel/debug; "
                              "! test -e /sys/kernel/tracing/events && ! test -e /sys/kernel/debug/tracing/events"});
  ASSERT_EQ(umounted, 0) << "tracefs is still mounted in perfwatchd's namespace";
  daemon_->write_config(this->head() + targets + "      - {name: writes, tier: T2, syscall: write}\n");
  daemon_->reload();
  for (int i = 0; i < 100 && daemon_->log().find("reload failed; keeping the running config and its probes") == std::string::npos; ++i)
    std::this_thread::sleep_for(100ms);
  ASSERT_NE(daemon_->log().find("reload failed; keeping the running config and its probes"), std::string::npos)
      << daemon_->log();

  GatedChild child = spawn_gated({sleeper, "reads", dir.string(), "4"});
  std::this_thread::sleep_for(1s);
  child.open();
  ASSERT_EQ(wait_exit(child.pid), 0);
  wait_for_windows();
  fs::remove_all(dir);
  ASSERT_TRUE(daemon_->alive()) << daemon_->log();
  auto states = wait_for_state("latency_syscall", "running");
  EXPECT_NE(states["latency_syscall"]["detail"].get<std::string>().find("kept by the last reload"), std::string::npos)
      << states["latency_syscall"].dump();
  const json doc = cli_json({"latency", "--target", "app", "--since", "5m", "--format", "json"});
  const json* reads = find_op(doc, "reads");
  ASSERT_TRUE(reads) << doc.dump(2);
  EXPECT_EQ(reads->at("calls"), 4) << "the running syscall probes stopped at the failed reload";
}

}  // namespace
}  // namespace perfwatch::e2e
