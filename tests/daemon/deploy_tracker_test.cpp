// Deploy markers: what makes a deploy (pure comparisons), the state kept across restarts, and reading
// a real process's binaries and files.
#include "daemon/deploy_tracker.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace perfwatch::daemon {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

profile::TimePoint at(int seconds) { return profile::TimePoint(std::chrono::seconds(1'800'000'000 + seconds)); }

TargetCode code(const std::string& app_build, const std::string& lib_build = "build-id:aa",
                std::map<std::string, std::string> python = {}) {
  return {"/srv/app", {{"/srv/app", app_build}, {"/lib/libc.so.6", "build-id:cc"}, {"/lib/libx.so", lib_build}},
          std::move(python)};
}

TEST(DeployTracker, ANewBuildOfTheExecutableIsADeploy) {
  DeployTracker tracker("");
  EXPECT_FALSE(tracker.observe("api", 0, code("build-id:1a2b3c4d5e6f7a8b"), at(0))) << "a first sighting";
  EXPECT_FALSE(tracker.observe("api", 0, code("build-id:1a2b3c4d5e6f7a8b"), at(10)));
  const auto marker = tracker.observe("api", 2, code("build-id:99887766554433221100"), at(20));
  ASSERT_TRUE(marker);
  EXPECT_EQ(marker->target_index, 2u);
  EXPECT_EQ(marker->at, at(20));
  EXPECT_EQ(marker->summary, "executable /srv/app build-id 1a2b3c4d5e6f -> 998877665544");
  ASSERT_EQ(marker->changes.size(), 1u);
  EXPECT_EQ(marker->changes[0], (profile::DeployChange{"executable", "/srv/app", "build-id:1a2b3c4d5e6f7a8b",
                                                        "build-id:99887766554433221100"}));
  EXPECT_FALSE(tracker.observe("api", 2, code("build-id:99887766554433221100"), at(30))) << "once";
}

TEST(DeployTracker, LibrariesAndPythonFiles) {
  DeployTracker tracker("");
  tracker.observe("api", 0, code("build-id:01", "build-id:aa", {{"/srv/app/main.py", "file:1"}}), at(0));
  // A library mapped late, and a module run for the first time: remembered, not deploys.
  TargetCode more = code("build-id:01", "build-id:aa", {{"/srv/app/main.py", "file:1"}, {"/srv/app/late.py", "file:7"}});
  more.binaries["/lib/plugin.so"] = "build-id:pp";
  EXPECT_FALSE(tracker.observe("api", 0, more, at(10)));
  // A library rebuilt: a deploy, which also says what was added or removed.
  TargetCode upgraded = code("build-id:01", "build-id:bb", {{"/srv/app/main.py", "file:1"}});
  auto marker = tracker.observe("api", 0, upgraded, at(20));
  ASSERT_TRUE(marker);
  EXPECT_EQ(marker->summary, "library /lib/libx.so build-id aa -> bb and 1 more files");
  EXPECT_EQ(marker->changes[1], (profile::DeployChange{"library", "/lib/plugin.so", "build-id:pp", ""}));
  // A Python file it had run changed.
  marker = tracker.observe("api", 0, code("build-id:01", "build-id:bb", {{"/srv/app/late.py", "file:8"}}), at(30));
  ASSERT_TRUE(marker);
  EXPECT_EQ(marker->summary, "python /srv/app/late.py changed");
  // No process read this window (it exited): nothing to compare, nothing forgotten.
  EXPECT_FALSE(tracker.observe("api", 0, TargetCode{}, at(40)));
  EXPECT_TRUE(tracker.observe("api", 0, code("build-id:02", "build-id:bb"), at(50)));
}

TEST(DeployTracker, RemembersWhatTargetsRanAcrossRestarts) {
  const fs::path state = fs::temp_directory_path() / ("pw-deploys-" + std::to_string(getpid()) + ".json");
  {
    DeployTracker tracker(state.string());
    tracker.observe("api", 0, code("build-id:01"), at(0));
    ASSERT_TRUE(tracker.save().ok());
  }
  DeployTracker restarted(state.string());
  EXPECT_TRUE(restarted.observe("api", 0, code("build-id:02"), at(100))) << "deployed while perfwatchd was down";
  std::ofstream(state) << "{not json";
  DeployTracker corrupt(state.string());  // logged, and starts afresh
  EXPECT_FALSE(corrupt.observe("api", 0, code("build-id:03"), at(200)));
  fs::remove(state);
}

// Paths are any bytes but NUL: one that is not UTF-8 is kept (escaped, reversibly) in the JSON state file,
// which nlohmann's strict dump() refused with an exception that stopped perfwatchd.
TEST(DeployTracker, KeepsPathsThatAreNotUtf8AcrossRestarts) {
  const fs::path state = fs::temp_directory_path() / ("pw-deploys-odd-" + std::to_string(getpid()) + ".json");
  const std::string odd = "/tmp/\xff/oddapp", odd_python = "/srv/\xc3(/m%41.py";
  const auto odd_code = [&](const std::string& build, const std::string& python_identity) {
    return TargetCode{odd, {{odd, build}, {"/lib/libc.so.6", "build-id:cc"}}, {{odd_python, python_identity}}};
  };
  {
    DeployTracker tracker(state.string());
    tracker.observe("odd", 0, odd_code("build-id:01", "file:1"), at(0));
    const Result<void> saved = tracker.save();
    ASSERT_TRUE(saved.ok()) << saved.error().message;
  }
  DeployTracker restarted(state.string());
  EXPECT_FALSE(restarted.observe("odd", 0, odd_code("build-id:01", "file:1"), at(10))) << "the paths came back changed";
  const auto marker = restarted.observe("odd", 0, odd_code("build-id:02", "file:2"), at(20));
  ASSERT_TRUE(marker);
  ASSERT_EQ(marker->changes.size(), 2u);
  EXPECT_EQ(marker->changes[0], (profile::DeployChange{"executable", odd, "build-id:01", "build-id:02"}));
  EXPECT_EQ(marker->changes[1], (profile::DeployChange{"python", odd_python, "file:1", "file:2"}));
  fs::remove(state);
}

TEST(PythonFiles, TheFilesOfEachTargetsPythonFrames) {
  profile::WindowProfile w;
  w.targets = {{"api", {}, 0}, {"worker", {}, 0}};
  w.profile.frames = {{profile::FrameKind::python, "handle", "/srv/app/handlers.py:12"},
                      {profile::FrameKind::python, "<module>", "<frozen importlib._bootstrap>:1"},
                      {profile::FrameKind::native, "main", "/srv/app/python3.11"},
                      {profile::FrameKind::python, "run", "worker.py:3"}};
  w.profile.stacks = {{0, {2, 1, 0}, 5}, {1, {3}, 1}};
  EXPECT_EQ(python_files(w), (std::vector<std::vector<std::string>>{{"/srv/app/handlers.py"}, {"worker.py"}}));
}

// A real process: this test's own executable and libraries, and a file it names.
TEST(CodeWatcher, ReadsAProcesssBinariesAndFiles) {
  collector::CodeReader reader;
  CodeWatcher watcher(reader);
  const ProcessKey self{getpid(), 1};
  const fs::path file = fs::temp_directory_path() / ("pw-code-" + std::to_string(getpid()) + ".py");
  std::ofstream(file) << "x = 1\n";
  const TargetCode first = watcher.code_of(0, self, {file.string()});
  EXPECT_EQ(first.executable, fs::canonical("/proc/self/exe").string());
  ASSERT_TRUE(first.binaries.contains(first.executable));
  EXPECT_EQ(first.binaries.at(first.executable).rfind("build-id:", 0), 0u) << "gcc links with a build-id";
  bool libc = false;
  for (const auto& [path, identity] : first.binaries) libc |= path.find("libc.so") != std::string::npos;
  EXPECT_TRUE(libc);
  ASSERT_TRUE(first.python.contains(file.string()));
  // Each file is read once per process: a change on disk is the next process's to show.
  std::this_thread::sleep_for(10ms);
  std::ofstream(file, std::ios::app) << "y = 2\n";
  EXPECT_EQ(watcher.code_of(0, self, {file.string()}).python, first.python);
  EXPECT_NE(watcher.code_of(0, ProcessKey{getpid(), 2}, {file.string()}).python, first.python);
  EXPECT_EQ(watcher.code_of(0, std::nullopt, {}), TargetCode{}) << "no process";
  fs::remove(file);
}

}  // namespace
}  // namespace perfwatch::daemon
