#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "daemon/process_registry.h"
#include "daemon/proc_reader.h"
#include "daemon/target_matcher.h"

namespace perfwatch::daemon {
namespace {

class FakeProc : public ProcSource {
 public:
  std::map<std::int32_t, ProcessInfo> procs;
  int reads = 0;

  void add(std::int32_t pid, std::string comm, std::uint64_t start = 100, std::string cmdline = "") {
    ProcessInfo p;
    p.pid = pid;
    p.comm = comm;
    p.cmdline = cmdline.empty() ? comm : cmdline;
    p.exe = "/usr/bin/" + comm;
    p.start_time = start;
    procs[pid] = p;
  }
  std::vector<std::int32_t> list_pids() override {
    std::vector<std::int32_t> out;
    for (auto& [pid, p] : procs) out.push_back(pid);
    return out;
  }
  Result<ProcessInfo> read(std::int32_t pid) override {
    ++reads;
    auto it = procs.find(pid);
    if (it == procs.end() || zombies.contains(pid)) return make_error("gone");
    return it->second;
  }
  std::optional<std::uint64_t> start_time(std::int32_t pid) override {
    auto it = procs.find(pid);
    if (it == procs.end() || zombies.contains(pid)) return std::nullopt;
    return it->second.start_time;
  }
  std::set<std::int32_t> zombies;  // listed in /proc, but exited
};

class FakeSink : public ProcessSink {
 public:
  std::map<std::int32_t, std::pair<std::uint32_t, std::size_t>> watched;  // the BPF map
  std::map<std::int32_t, bool> profiled;                                   // its WATCH_PROFILE flags
  std::vector<ProcessKey> retired, released;
  std::function<void(ProcessKey)> on_next_watch;  // runs once, as the next watch lands
  void watch(ProcessKey k, std::size_t target, bool profile) override {
    watched[k.pid] = {k.generation, target};
    profiled[k.pid] = profile;
    if (auto hook = std::exchange(on_next_watch, nullptr)) hook(k);
  }
  void unwatch(ProcessKey k) override {
    if (auto it = watched.find(k.pid); it != watched.end() && it->second.first == k.generation) watched.erase(it);
  }
  void retire(ProcessKey k) override { retired.push_back(k); }
  void release(ProcessKey k) override { released.push_back(k); }
};

config::Target target(std::string name, std::string comm) {
  config::Target t;
  t.name = std::move(name);
  t.match.comm = std::move(comm);
  return t;
}

struct RegistryTest : ::testing::Test {
  FakeProc proc;
  FakeSink sink;
  ProcessRegistry registry{proc, sink, /*self_pid=*/1};

  void use_targets(std::vector<config::Target> targets) {
    registry.set_targets(TargetMatcher(targets), std::vector<bool>(targets.size(), true));
  }
};

TEST_F(RegistryTest, InitialScanWatchesMatchingProcessesOnly) {
  proc.add(10, "api");
  proc.add(11, "worker");
  proc.add(12, "bash");
  use_targets({target("api", "api"), target("worker", "worker")});
  ASSERT_EQ(sink.watched.size(), 2u);
  EXPECT_EQ(sink.watched[10].second, 0u);
  EXPECT_EQ(sink.watched[11].second, 1u);
  EXPECT_FALSE(sink.watched.contains(12));
}

TEST_F(RegistryTest, NeverWatchesItself) {
  proc.add(1, "api");
  use_targets({target("api", "api")});
  EXPECT_TRUE(sink.watched.empty());
}

TEST_F(RegistryTest, RescanDoesNotRereadKnownNonMatchingProcesses) {
  for (int pid = 100; pid < 200; ++pid) proc.add(pid, "other");
  use_targets({target("api", "api")});
  int reads = proc.reads;
  registry.rescan();
  EXPECT_EQ(proc.reads, reads);
}

TEST_F(RegistryTest, ExecRematchesWithNewGeneration) {
  proc.add(20, "launcher");
  use_targets({target("api", "api")});
  EXPECT_TRUE(sink.watched.empty());
  proc.add(20, "api");  // the launcher exec'd the service
  registry.on_exec(20);
  ASSERT_TRUE(sink.watched.contains(20));
  std::uint32_t first = sink.watched[20].first;
  registry.on_exec(20);  // exec again: new program, new generation, old one retired
  EXPECT_NE(sink.watched[20].first, first);
  ASSERT_EQ(sink.retired.size(), 1u);
  EXPECT_EQ(sink.retired[0].generation, first);
}

TEST_F(RegistryTest, ExitThenPidReuseKeepsProcessesApart) {
  proc.add(30, "api", /*start=*/100);
  use_targets({target("api", "api")});
  ProcessKey old_key = *registry.key_of(30);

  // The process exits (BPF removed it from the map) and an unrelated process gets the PID.
  sink.watched.erase(30);
  registry.on_exit(30, old_key.generation);
  proc.add(30, "bash", /*start=*/200);
  registry.on_exec(30);
  EXPECT_FALSE(sink.watched.contains(30));
  // The old process's samples are still attributable until the window closes.
  EXPECT_EQ(registry.target_of(old_key), 0u);
  auto pids = registry.window_pids(1);
  EXPECT_EQ(pids[0], std::vector<std::int32_t>{30});
  EXPECT_EQ(registry.target_of(old_key), 0u) << "attributable until the window ends";
  registry.end_window();
  ASSERT_EQ(sink.released.size(), 1u);
  EXPECT_EQ(sink.released[0], old_key);
  EXPECT_FALSE(registry.target_of(old_key).has_value());
}

TEST_F(RegistryTest, LateExitEventDoesNotEndTheReusingProcess) {
  proc.add(40, "api", 100);
  use_targets({target("api", "api")});
  ProcessKey old_key = *registry.key_of(40);
  // The rescan notices the reuse first (new start time), then the old exit event arrives.
  proc.add(40, "api", 300);
  registry.rescan();
  ProcessKey new_key = *registry.key_of(40);
  EXPECT_NE(new_key.generation, old_key.generation);
  registry.on_exit(40, old_key.generation);
  EXPECT_EQ(registry.key_of(40), new_key);
  EXPECT_EQ(registry.stats().reused_pids, 1u);
}

TEST_F(RegistryTest, RescanRetiresProcessesThatVanishedWithoutAnEvent) {
  proc.add(50, "api");
  use_targets({target("api", "api")});
  proc.procs.erase(50);
  registry.rescan();
  EXPECT_FALSE(registry.key_of(50).has_value());
  EXPECT_EQ(registry.stats().exited, 1u);
}

TEST_F(RegistryTest, ForkOfWatchedParentInheritsTarget) {
  proc.add(60, "api");
  use_targets({target("api", "api")});
  ProcessKey parent = *registry.key_of(60);
  proc.add(61, "api");
  registry.on_fork(61, 60, parent.generation);
  EXPECT_EQ(registry.target_of({61, parent.generation}), 0u);
}

// `profile: false` only stops CPU sampling: the target's processes (and the children they fork) are
// watched, so that its latency and cache probes see them, without the profile flag.
TEST_F(RegistryTest, UnprofiledTargetsAreWatchedWithoutProfiling) {
  proc.add(70, "api");
  proc.add(71, "worker");
  std::vector<config::Target> targets{target("api", "api"), target("worker", "worker")};
  registry.set_targets(TargetMatcher(targets), {false, true});
  ASSERT_TRUE(sink.watched.contains(70));
  ASSERT_TRUE(sink.watched.contains(71));
  EXPECT_EQ(sink.watched[70].second, 0u);
  EXPECT_FALSE(sink.profiled[70]);
  EXPECT_TRUE(sink.profiled[71]);

  ProcessKey parent = *registry.key_of(70);
  proc.add(72, "api");
  registry.on_fork(72, 70, parent.generation);
  EXPECT_EQ(registry.target_of({72, parent.generation}), 0u);
  EXPECT_FALSE(sink.profiled[72]) << "a child is profiled as its parent's target is";

  // A reload that turns profiling on watches the live processes again, now profiled.
  registry.set_targets(TargetMatcher(targets), {true, true});
  EXPECT_TRUE(sink.profiled[70]);
  EXPECT_TRUE(sink.profiled[72]);
  EXPECT_NE(sink.watched[70].first, parent.generation) << "a new generation";
}

TEST_F(RegistryTest, ReloadMovesProcessesToNewTargets) {
  proc.add(80, "api");
  use_targets({target("api", "api")});
  use_targets({target("other", "worker"), target("api2", "api")});
  ASSERT_TRUE(sink.watched.contains(80));
  EXPECT_EQ(sink.watched[80].second, 1u);
}

TEST(TargetMatcherTest, AllKeysMustHold) {
  config::Target t;
  t.name = "svc";
  t.match.comm = "python3";
  t.match.cmdline = "kb_api\\.py";
  t.match.cgroup = "/system.slice/kb.service";
  TargetMatcher m({t});
  ProcessInfo p;
  p.comm = "python3";
  p.cmdline = "python3 /srv/kb_api.py --port 80";
  p.cgroup = "/system.slice/kb.service";
  EXPECT_EQ(m.match(p), 0u);
  p.cgroup = "/system.slice/kb.service/child";
  EXPECT_EQ(m.match(p), 0u);
  p.cgroup = "/system.slice/kb.services";
  EXPECT_FALSE(m.match(p));
  p.cgroup = "/system.slice/kb.service";
  p.cmdline = "python3 /srv/other.py";
  EXPECT_FALSE(m.match(p));
}

TEST(TargetMatcherTest, FirstTargetInConfigOrderWins) {
  config::Target a, b;
  a.name = "a";
  a.match.exe = "/usr/bin/python3.11";
  b.name = "b";
  b.match.pid = 42;
  TargetMatcher m({a, b});
  ProcessInfo p;
  p.pid = 42;
  p.exe = "/usr/bin/python3.11";
  EXPECT_EQ(m.match(p), 0u);
  p.exe = "/usr/bin/perl";
  EXPECT_EQ(m.match(p), 1u);
  p.pid = 43;
  EXPECT_FALSE(m.match(p));
}

// Every exec on the host is matched: a command line of any length must neither crash the matcher
// (std::regex recursed once per character: two 64 KiB arguments overflowed the stack) nor take long.
TEST(TargetMatcherTest, LongCommandLinesNeitherCrashNorStall) {
  config::Target t;
  t.name = "java";
  t.match.cmdline = "java .*-jar x";
  TargetMatcher m({t});
  ProcessInfo p;
  const std::string long_argument(64 << 10, 'a');
  p.cmdline = "java -c sleep 5 " + long_argument + " " + long_argument;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(m.match(p));
  p.cmdline = "java " + long_argument + " -jar x";
  EXPECT_EQ(m.match(p), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

// /proc/PID/cmdline is read up to max_cmdline_bytes; what lies past it is not matched.
TEST(ProcFsTest, ReadsAtMostMaxCmdlineBytesOfTheArguments) {
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("pw-procfs-" + std::to_string(getpid()));
  std::filesystem::create_directories(root / "4242");
  std::ofstream(root / "4242/stat") << "4242 (java) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20\n";
  std::ofstream(root / "4242/comm") << "java\n";
  std::ofstream(root / "4242/cgroup") << "0::/user.slice\n";
  {
    std::ofstream cmdline(root / "4242/cmdline", std::ios::binary);
    cmdline << "java" << '\0' << std::string(1 << 20, 'x') << '\0' << "-jar" << '\0' << "x" << '\0';
  }
  ProcFs fs(root.string());
  auto info = fs.read(4242);
  std::filesystem::remove_all(root);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->cmdline.size(), max_cmdline_bytes);
  EXPECT_TRUE(info->cmdline.starts_with("java xxx"));
  EXPECT_EQ(info->comm, "java");
  EXPECT_EQ(info->start_time, 777u);
}

TEST(ProcParseTest, CgroupPathPrefersUnifiedThenSystemd) {
  EXPECT_EQ(parse_cgroup_path("0::/system.slice/kb.service\n"), "/system.slice/kb.service");
  EXPECT_EQ(parse_cgroup_path("12:pids:/a\n1:name=systemd:/system.slice/x.service\n0::/\n"),
            "/system.slice/x.service");
  EXPECT_EQ(parse_cgroup_path("3:cpu:/a\n"), "/a");
}

// A process that exits between being read and being watched: BPF never had it watched, so its exit
// goes unreported, and its PID may already be another process's by the time the watch lands. That
// process must not be sampled as the target of the one that left.
TEST_F(RegistryTest, AProcessGoneBeforeItsWatchLandsLeavesItsPidUnwatched) {
  use_targets({target("a", "storm_a"), target("b", "storm_b")});
  proc.add(30, "storm_a", 100);
  ProcessKey stale;
  sink.on_next_watch = [&](ProcessKey k) {
    stale = k;
    proc.add(30, "storm_b", 101);  // storm_a exited; storm_b took PID 30
  };
  registry.on_exec(30);
  EXPECT_FALSE(sink.watched.contains(30)) << "PID 30 still watched as storm_a's";
  EXPECT_EQ(registry.target_of(stale), std::nullopt) << "samples of PID 30 would count for storm_a";
  EXPECT_EQ(registry.stats().races, 1u);
  registry.on_exec(30);  // storm_b's own exec event
  ASSERT_TRUE(sink.watched.contains(30));
  EXPECT_EQ(sink.watched[30].second, 1u);
}

TEST_F(RegistryTest, AZombieIsReadOnceNotAtEveryRescan) {
  use_targets({target("api", "api")});
  proc.zombies.insert(40);
  proc.add(40, "api");
  registry.rescan();
  registry.rescan();
  EXPECT_TRUE(sink.watched.empty());
  EXPECT_EQ(registry.stats().races, 1u);
  proc.zombies.clear();  // reaped, and the PID reused
  proc.add(40, "api", 200);
  registry.rescan();
  EXPECT_TRUE(sink.watched.contains(40));
}

TEST(ProcParseTest, UnitFromCgroup) {
  EXPECT_EQ(unit_from_cgroup("/system.slice/kb-api.service"), "kb-api.service");
  EXPECT_EQ(unit_from_cgroup("/system.slice/kb-api.service/worker"), "kb-api.service");
  EXPECT_EQ(unit_from_cgroup("/user.slice/user-0.slice/session-3.scope"), "session-3.scope");
  EXPECT_EQ(unit_from_cgroup("/"), "");
  EXPECT_EQ(unit_from_cgroup("/docker/abc"), "");
}

TEST(ProcParseTest, StatStartTimeSurvivesOddComm) {
  std::string stat = "123 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 98765 19 20";
  EXPECT_EQ(parse_stat_start_time(stat), 98765u);
  EXPECT_FALSE(parse_stat_start_time("garbage").has_value());
  // A zombie keeps its PID until reaped and is reused after: for perfwatch it is gone.
  EXPECT_FALSE(parse_stat_start_time("123 (a) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 98765 19 20").has_value());
  EXPECT_FALSE(parse_stat_start_time("123 (a) X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 98765 19 20").has_value());
}

TEST(ProcFsTest, ReadsThisProcess) {
  ProcFs fs;
  auto me = fs.read(getpid());
  ASSERT_TRUE(me.ok()) << me.error().message;
  EXPECT_EQ(me->pid, getpid());
  EXPECT_NE(me->cmdline.find("daemon_test"), std::string::npos);
  EXPECT_FALSE(me->exe.empty());
  EXPECT_GT(me->start_time, 0u);
  EXPECT_FALSE(fs.read(2).ok()) << "kthreadd is a kernel thread, never a target";
}

}  // namespace
}  // namespace perfwatch::daemon
