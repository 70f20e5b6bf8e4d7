// End to end: `profile: false` turns off a target's CPU samples and nothing else. Its uprobe, syscall
// and Python (USDT) operations, its page cache and its USDT application cache are measured through the
// real perfwatchd as a profiled target's are, while a profiled target in the same config is sampled.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "support.h"

namespace perfwatch::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string sleeper = SLEEPER_PATH;
const std::string reader_path = CACHE_READER_PATH;
const std::string cpu_split = CPU_SPLIT_PATH;

json cli_json(const Daemon& daemon, std::vector<std::string> args) {
  args.insert(args.end(), {"--since", "5m", "--format", "json"});
  auto [code, out] = daemon.cli(args);
  EXPECT_EQ(code, 0) << slurp((daemon.dir() / "cli.log").string());
  return code == 0 ? json::parse(out) : json::object();
}

// Lines of perfwatchd's log that say `what` about pid.
int log_lines(const Daemon& daemon, const std::string& what, pid_t pid) {
  const std::regex pid_field("pid=" + std::to_string(pid) + "( |$)");
  std::istringstream lines(daemon.log());
  int found = 0;
  for (std::string line; std::getline(lines, line);)
    if (line.find(what) != std::string::npos && std::regex_search(line, pid_field)) ++found;
  return found;
}

TEST(ProfileE2E, UnprofiledTargetIsMeasuredButNeverSampled) {
  const fs::path dir = fs::temp_directory_path() / ("pw-e2e-unprofiled-" + std::to_string(getpid()));
  fs::create_directories(dir / "data");
  fs::create_directories(dir / "pwunprof");
  for (const char* f : {"data/a", "data/b"}) std::ofstream(dir / f) << std::string(8192, 'x');
  std::ofstream(dir / "pwunprof" / "__init__.py") << "";
  std::ofstream(dir / "pwunprof" / "work.py") << "import time\n"
                                                 "def burn(seconds):\n"
                                                 "    end = time.process_time() + seconds\n"
                                                 "    while time.process_time() < end:\n        pass\n"
                                                 "def measured(ms):\n    time.sleep(ms / 1000)\n";
  constexpr std::size_t cold_bytes = 8 << 20;
  const double cold_pages = static_cast<double>(cold_bytes / static_cast<std::size_t>(sysconf(_SC_PAGESIZE)));
  const fs::path cold_file = make_cache_file("pw-e2e-unprofiled", cold_bytes);

  Daemon daemon("profile", "log_level: debug\nsampling:\n  frequency_hz: 999\n  window: 2s\n"
                           "dashboard:\n  listen: 127.0.0.1:" + std::to_string(free_port()) + "\n"
                           "targets:\n"
                           "  - name: unprofiled\n"
                           "    profile: false\n"
                           "    match: {cmdline: \"sleeper (calls|reads)|pw_unprofiled|cache_reader\"}\n"
                           "    operations:\n"
                           "      - {name: native, tier: T1, uprobe: \"" + sleeper + ":op_fast\"}\n"
                           "      - {name: reads, tier: T2, syscall: read, path_prefix: " + (dir / "data").string() + "}\n"
                           "      - {name: python, tier: T1, python: \"pwunprof.work.measured\"}\n"
                           "    caches:\n"
                           "      - name: block_cache\n"
                           "        hit_usdt: \"" + reader_path + ":pwcache:hit\"\n"
                           "        miss_usdt: \"" + reader_path + ":pwcache:miss\"\n"
                           "  - name: profiled\n"
                           "    match: {cmdline: \"cpu_split split\"}\n");
  ASSERT_TRUE(daemon.started());

  GatedChild calls = spawn_gated({sleeper, "calls", "fast:20", "fast:20", "fast:20"});
  GatedChild reads = spawn_gated({sleeper, "reads", (dir / "data").string(), "3"});
  // CPU time under the unprofiled target, then one measured call (3.11 fires function__entry only
  // while a profile function is set).
  GatedChild python = spawn_gated({"/usr/bin/python3.11", "-c",
                                   "import sys, pwunprof.work as w  # pw_unprofiled\nsys.stdin.read()\n"
                                   "w.burn(0.5)\nsys.setprofile(slice)\nw.measured(30)\n"},
                                  {"PYTHONPATH=" + dir.string()});
  CacheReader reader(reader_path);
  wait_for_log(daemon, "uprobe attached", calls.pid, 1);
  wait_for_log(daemon, "watching process", reads.pid, 1);
  wait_for_log(daemon, "python probes attached", python.pid, 1);
  wait_for_log(daemon, "cache: usdt attached", reader.pid(), 2);
  calls.open();
  reads.open();
  python.open();
  EXPECT_EQ(wait_exit(calls.pid), 0);
  EXPECT_EQ(wait_exit(reads.pid), 0);
  EXPECT_EQ(wait_exit(python.pid), 0);
  ASSERT_EQ(reader.run("cold " + cold_file.string()), "done");
  ASSERT_EQ(reader.run("usdt 6 2"), "done");
  auto [split_code, split_out] = run({cpu_split, "split", "2"});
  ASSERT_EQ(split_code, 0);
  wait_for_windows();
  fs::remove_all(dir);
  fs::remove(cold_file);
  ASSERT_TRUE(daemon.alive()) << daemon.log();

  const json latency = cli_json(daemon, {"latency", "--target", "unprofiled"});
  const json* native = find_named(latency, "operations", "native");
  const json* file_reads = find_named(latency, "operations", "reads");
  const json* python_op = find_named(latency, "operations", "python");
  ASSERT_TRUE(native && file_reads && python_op) << latency.dump(2);
  EXPECT_EQ(native->at("calls"), 3);
  EXPECT_EQ(file_reads->at("calls"), 2 * 3) << "two files under the prefix, three reads each";
  EXPECT_EQ(python_op->at("calls"), 1);

  const json caches = cli_json(daemon, {"cache", "--target", "unprofiled"});
  const json* page = find_named(caches, "caches", "page_cache");
  const json* block = find_named(caches, "caches", "block_cache");
  ASSERT_TRUE(page && block) << caches.dump(2);
  EXPECT_GE(page->at("lookups").get<double>(), cold_pages * 0.9) << page->dump(2);
  EXPECT_GE(page->at("misses").get<double>(), cold_pages * 0.9) << "the cold read: " << page->dump(2);
  EXPECT_EQ(block->at("hits"), 6);
  EXPECT_EQ(block->at("misses"), 2);

  // No CPU samples, though its processes ran (the Python one burned half a second), and its Python
  // processes are not registered with the frame walker; the profiled target is sampled as ever.
  const json targets = cli_json(daemon, {"targets"});
  const json* unprofiled = nullptr;
  const json* profiled = nullptr;
  for (const json& t : targets.at("targets")) (t.at("name") == "unprofiled" ? unprofiled : profiled) = &t;
  ASSERT_TRUE(unprofiled && profiled) << targets.dump(2);
  EXPECT_EQ(unprofiled->at("samples"), 0) << targets.dump(2);
  EXPECT_FALSE(unprofiled->at("pids").empty()) << "its processes are watched: " << targets.dump(2);
  EXPECT_EQ(Folded(daemon.folded("unprofiled")).total, 0u);
  EXPECT_EQ(log_lines(daemon, "profiling Python frames", python.pid), 0) << daemon.log();
  EXPECT_GT(profiled->at("samples").get<double>(), 0.5 * cpu_seconds(split_out) * 999) << targets.dump(2);
}

}  // namespace
}  // namespace perfwatch::e2e
