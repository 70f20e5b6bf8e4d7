// End to end, Python: the real perfwatchd profiles real CPython processes (Debian's python3.11, an
// embedding program, pyenv's interpreters where present), and the real perfwatch CLI reads the
// stored profiles back. Needs root and BTF; fails loudly without them.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "support.h"
#include "tests/python_interpreters.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;
using test::kDebianPython;
using test::kPythonWorkload;

const std::string kWorkloads = PW_WORKLOADS_DIR;

// python_workload.py ignores arguments after the ones it reads: a trailing marker picks the target.
std::vector<std::string> workload(const std::string& interpreter, std::vector<std::string> args) {
  std::vector<std::string> argv{interpreter, kPythonWorkload};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// The targets every test below uses; first match wins.
std::string config() {
  std::string c =
      "log_level: debug\n"
      "sampling:\n  frequency_hz: 999\n  window: 1s\n  python_max_depth: 32\n"
      "targets:\n"
      "  - name: native\n    match: {cmdline: \"python_workload.py split .* as-native\"}\n    python: off\n"
      "  - name: expects_python\n    match: {cmdline: \"cpu_split split\"}\n    python: on\n";
  for (const auto& i : test::test_interpreters())
    c += "  - name: " + i.name + "\n    match: {cmdline: \"python_workload.py split .* " + i.name + "$\"}\n";
  for (const char* mode : {"split", "threads", "generators", "recurse", "extension"})
    c += std::string("  - name: ") + mode + "\n    match: {cmdline: \"python_workload.py " + mode + "\"}\n";
  c += "  - name: fake\n    match: {cmdline: \"pw_fake_python\"}\n"
       "  - name: demo\n    match: {cmdline: \"perfwatch-demo\"}\n";
  return c;
}

// Per folded stack: its frames.
std::vector<std::string> frames_of(const std::string& stack) {
  std::vector<std::string> frames;
  std::istringstream in(stack);
  for (std::string f; std::getline(in, f, ';');) frames.push_back(f);
  return frames;
}

std::uint64_t samples_with(const Folded& f, const std::string& substring) {
  std::uint64_t n = 0;
  for (const auto& [stack, count] : f.lines)
    if (stack.find(substring) != std::string::npos) n += count;
  return n;
}

double percent(std::uint64_t part, std::uint64_t whole) { return whole == 0 ? 0.0 : 100.0 * part / whole; }

class PythonE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { daemon_ = new Daemon("python", config()); }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(daemon_->started()); }
  void TearDown() override { ASSERT_TRUE(daemon_->alive()) << "perfwatchd died:\n" << daemon_->log(); }

  static void run_ok(const std::vector<std::string>& argv) {
    auto [code, out] = run(argv, (daemon_->dir() / "workload.log").string());
    ASSERT_EQ(code, 0) << slurp((daemon_->dir() / "workload.log").string());
  }
  static Folded folded(const std::string& target, const std::string& since = "2m") {
    return Folded(daemon_->folded(target, since));
  }

  static Daemon* daemon_;
};
Daemon* PythonE2E::daemon_ = nullptr;

TEST_F(PythonE2E, AttributesAKnownPythonCpuSplitWithin3Points) {
  // Started after the daemon, by Debian's python3.11: no frame pointers, _PyRuntime in the executable.
  run_ok(workload(kDebianPython, {"split", "8"}));
  wait_for_windows();
  Folded f = folded("split");
  EXPECT_GT(f.total, 1500u) << "too few samples";
  EXPECT_NEAR(f.share("hot_a"), 60.0, 3.0);
  EXPECT_NEAR(f.share("hot_b"), 30.0, 3.0);
  EXPECT_NEAR(f.share("hot_c"), 10.0, 3.0);
  // Each through its own caller.
  EXPECT_EQ(samples_with(f, "via_a;hot_a"), f.inclusive["hot_a"]);
  EXPECT_EQ(samples_with(f, "via_b;hot_b"), f.inclusive["hot_b"]);
  EXPECT_EQ(samples_with(f, "via_c;hot_c"), f.inclusive["hot_c"]);
  // Reads like py-spy: rooted at the module, no eval-loop frames, no junk from the native unwind.
  EXPECT_GT(f.share("<module>"), 97.0);
  // Left only as the leaf of the odd sample taken before the process was found to run Python.
  EXPECT_LT(f.share("_PyEval_EvalFrameDefault"), 0.5);
  // A module's code object runs once and is freed when its import ends, at times before it is read.
  EXPECT_LT(f.share("[unknown python code]"), 0.5);
  for (const auto& [stack, count] : f.lines) {
    if (stack.starts_with("<module>;")) {
      EXPECT_EQ(stack.find("[unknown]"), std::string::npos) << stack;
    }
  }

  // Stored with kind python and file:line, as the JSON flame tree shows.
  auto [code, out] = daemon_->cli({"flame", "--target", "split", "--since", "2m", "--format", "json"});
  ASSERT_EQ(code, 0);
  auto tree = nlohmann::json::parse(out);
  std::function<const nlohmann::json*(const nlohmann::json&)> find_hot_a = [&](const nlohmann::json& n) -> const nlohmann::json* {
    if (n["name"] == "hot_a") return &n;
    for (const auto& c : n["children"])
      if (auto* found = find_hot_a(c)) return found;
    return nullptr;
  };
  const nlohmann::json* hot_a = find_hot_a(tree);
  ASSERT_NE(hot_a, nullptr);
  EXPECT_EQ((*hot_a)["kind"], "python");
  EXPECT_TRUE((*hot_a)["module"].get<std::string>().starts_with(kPythonWorkload + ":")) << (*hot_a)["module"];
}

TEST_F(PythonE2E, ThreadsDoingDifferentWork) {
  run_ok(workload(kDebianPython, {"threads", "5"}));
  wait_for_windows();
  Folded f = folded("threads");
  EXPECT_GT(f.total, 800u);
  // How the two threads share the CPUs is the scheduler's (and the GIL's) business; that each is
  // seen, in its own thread, doing its own work, is the profiler's.
  EXPECT_GT(f.share("sum_squares"), 5.0);
  EXPECT_GT(f.share("digest"), 5.0);
  EXPECT_GT(f.share("sum_squares") + f.share("digest"), 90.0) << "the main thread only waits";
  EXPECT_EQ(samples_with(f, "Thread._bootstrap_inner;Thread.run;sum_squares"), f.inclusive["sum_squares"]);
  EXPECT_EQ(samples_with(f, "Thread._bootstrap_inner;Thread.run;digest"), f.inclusive["digest"]);
  // digest() spends its time in hashlib's C code (with the GIL released): beneath the Python frame.
  EXPECT_GT(samples_with(f, "digest;"), f.inclusive["digest"] * 8 / 10);
}

TEST_F(PythonE2E, AGeneratorAndAnAsyncioCoroutine) {
  run_ok(workload(kDebianPython, {"generators", "6"}));
  wait_for_windows();
  Folded f = folded("generators");
  EXPECT_GT(f.total, 1000u);
  // The generator's frame sits on its consumer's; the coroutine's on the event loop's.
  EXPECT_NEAR(percent(samples_with(f, "generators;consume;produce;burn"), f.total), 50.0, 10.0);
  EXPECT_NEAR(percent(samples_with(f, "BaseEventLoop._run_once;Handle._run;crunch;burn"), f.total), 50.0, 10.0);
}

TEST_F(PythonE2E, DeepRecursionIsTruncatedAtTheDepthLimitMarkedAndNotCorrupted) {
  run_ok(workload(kDebianPython, {"recurse", "3", "100"}));
  wait_for_windows();
  Folded f = folded("recurse");
  auto is_python = [](const std::string& frame) {
    return frame == "<module>" || frame == "main" || frame == "recurse" || frame == "spin";
  };
  std::uint64_t deep = 0;
  for (const auto& [stack, count] : f.lines) {
    auto frames = frames_of(stack);
    if (frames.empty() || frames[0] != "[truncated python stack]") {
      EXPECT_EQ(stack.find("[truncated python stack]"), std::string::npos) << "marked mid-stack: " << stack;
      continue;
    }
    // Exactly the 32 innermost Python frames under the marker (on the way down, main among them),
    // then only native or kernel frames.
    ASSERT_GE(frames.size(), 33u) << stack;
    for (std::size_t i = 1; i <= 32; ++i) EXPECT_TRUE(is_python(frames[i])) << stack;
    if (frames.size() > 33) {
      EXPECT_FALSE(is_python(frames[33])) << "more Python frames than the limit: " << stack;
    }
    if (std::all_of(frames.begin() + 1, frames.begin() + 32, [](const std::string& fr) { return fr == "recurse"; }))
      deep += count;
  }
  // Nearly all the time goes to the deepest frame, 100 calls down.
  EXPECT_GT(percent(deep, f.total), 90.0);
}

TEST_F(PythonE2E, CExtensionFramesStayBeneathThePythonFrameThatCalledThem) {
  run_ok({"/usr/bin/env", "PYTHONPATH=" + kWorkloads, kDebianPython, kPythonWorkload, "extension", "4"});
  wait_for_windows();
  Folded f = folded("extension");
  EXPECT_GT(f.total, 600u);
  // The extension keeps frame pointers: its whole chain, up to the interpreter, is reliable.
  EXPECT_GT(percent(samples_with(f, "main;call_ext;pw_ext_spin;ext_outer;ext_inner"), f.total), 85.0);
}

TEST_F(PythonE2E, AnEmbeddingProgramsInterpreterInLibpython) {
  run_ok({PW_EMBED_PYTHON, kPythonWorkload, "split", "5"});
  wait_for_windows();
  Folded f = folded("split", "30s");
  EXPECT_GT(f.total, 800u);
  EXPECT_GT(f.share("<module>"), 90.0);
  EXPECT_NEAR(f.share("hot_a"), 60.0, 5.0);
}

TEST_F(PythonE2E, ShortLivedProcessesExitingMidWindow) {
  for (int i = 0; i < 6; ++i) run_ok(workload(kDebianPython, {"split", "0.3"}));
  wait_for_windows();
  Folded f = folded("split", "20s");
  EXPECT_GT(f.total, 300u) << "short-lived processes were not profiled";
  // Their code objects were read while they ran: named, although gone by the window's end.
  EXPECT_GT(f.share("<module>"), 85.0);
  EXPECT_LT(f.share("[unknown python code]"), 2.0);
  EXPECT_GT(f.share("hot_a"), 40.0);
}

TEST_F(PythonE2E, EveryInterpreterOfThisMachine) {
  auto interpreters = test::test_interpreters();
  ASSERT_FALSE(interpreters.empty()) << "Debian's " << kDebianPython << " is required";
  for (const auto& i : interpreters) run_ok(workload(i.path, {"split", "4", i.name}));
  wait_for_windows();
  for (const auto& i : interpreters) {
    SCOPED_TRACE(i.name);
    Folded f = folded(i.name);
    EXPECT_GT(f.total, 600u);
    EXPECT_GT(f.share("<module>"), 90.0);
    EXPECT_NEAR(f.share("hot_a"), 60.0, 5.0);
    EXPECT_NEAR(f.share("hot_b"), 30.0, 5.0);
    // pyenv's python maps libpython after exec: it is found a few milliseconds in, and the odd
    // sample before that keeps only its native leaf.
    EXPECT_LT(f.share("_PyEval_EvalFrameDefault"), 2.0);
  }
}

TEST_F(PythonE2E, UnsupportedInterpretersFallBackToNativeFramesWithTheReasonLoggedOnce) {
  run_ok({PW_FAKE_PYTHON39, "2"});
  run_ok({PW_FAKE_PYTHON39, "1"});
  run_ok({PW_FAKE_PYTHON, "1"});
  wait_for_windows();
  Folded f = folded("fake", "30s");
  EXPECT_GT(f.total, 600u);
  EXPECT_GT(f.share("fake_interpreter_loop"), 95.0);
  EXPECT_GT(f.share("main"), 95.0) << "native frames (built with frame pointers) are kept whole";
  std::string log = daemon_->log();
  auto count = [&](const std::string& text) {
    std::size_t n = 0;
    for (std::size_t at = 0; (at = log.find(text, at)) != std::string::npos; at += text.size()) ++n;
    return n;
  };
  EXPECT_EQ(count("reason=\"CPython 3.9.18 is not supported (supported: 3.10, 3.11, 3.12, 3.13)\""), 1u);
  EXPECT_EQ(count("reason=\"cannot tell the CPython version of pw_fake_python"), 1u);
}

TEST_F(PythonE2E, PythonOffProfilesNativelyAndOnSaysWhyAProcessIsNotPython) {
  run_ok(workload(kDebianPython, {"split", "2", "as-native"}));
  run_ok({CPU_SPLIT_PATH, "split", "3"});
  wait_for_windows();
  Folded native = folded("native", "30s");
  EXPECT_GT(native.total, 300u);
  EXPECT_EQ(native.share("hot_a"), 0.0);
  EXPECT_EQ(native.share("<module>"), 0.0);
  EXPECT_NE(daemon_->log().find("target has python: on but the process runs no CPython"), std::string::npos);
  Folded c = folded("expects_python", "30s");
  EXPECT_NEAR(c.share("hot_a"), 60.0, 5.0) << "its native profile is intact";
}

TEST_F(PythonE2E, TheDemoShowsItsPythonFunctionsByName) {
  run_ok({PERFWATCH_DEMO, "--seconds", "6", "--busy", "0.5"});
  wait_for_windows();
  Folded f = folded("demo", "30s");
  EXPECT_GT(f.total, 200u);
  EXPECT_GT(f.share("serve"), 80.0);
  EXPECT_GT(f.share("handle_request"), 50.0);
  EXPECT_GT(f.share("score") + f.share("load_layer") + f.share("cache_lookup"), 20.0);
}

// A process already running when the daemon starts: found by the first scan, its threads' states
// found without any exec or thread event. It runs until the daemon has sampled it for a while.
TEST(PythonE2EStartup, AProcessStartedBeforeTheDaemon) {
  Child early = spawn(workload(kDebianPython, {"split", "600"}), "/dev/null", /*pipe_stdout=*/true);
  std::this_thread::sleep_for(1s);
  Daemon daemon("python-early",
                "sampling:\n  frequency_hz: 999\n  window: 1s\n"
                "targets:\n  - name: early\n    match: {cmdline: \"python_workload.py split\"}\n");
  std::this_thread::sleep_for(6s);
  kill(early.pid, SIGKILL);
  wait_exit(early.pid);
  close(early.stdout_fd);
  ASSERT_TRUE(daemon.started());
  wait_for_windows();
  Folded f(daemon.folded("early"));
  EXPECT_GT(f.total, 1000u);
  EXPECT_GT(f.share("<module>"), 95.0);
  EXPECT_NEAR(f.share("hot_a"), 60.0, 3.0);
}

}  // namespace
}  // namespace perfwatch::e2e
