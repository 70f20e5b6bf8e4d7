// The CPython frame walker (probes/pystack.bpf.h) in the real sampler on real interpreters: what it
// records is checked against the code object addresses the workload itself prints.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "collector/oncpu_sampler.h"
#include "collector/python_interpreter.h"
#include "tests/bpf/support.h"
#include "tests/collector/target_process.h"
#include "tests/python_interpreters.h"

namespace perfwatch::collector {
namespace {

using namespace std::chrono_literals;

class PythonWalkerTest : public test::BpfTest {
 protected:
  void start(std::uint32_t max_depth = 64, std::uint32_t stack_entries = 4096) {
    OncpuOptions options;
    options.frequency_hz = 999;
    options.python_max_depth = max_depth;
    options.python_stack_entries = stack_entries;
    watched_ = test::create_watched_map();
    auto created = OncpuSampler::create(watched_->fd(), options);
    ASSERT_TRUE(created.ok()) << created.error().message;
    sampler_ = std::move(*created);
  }

  // Starts the workload under the interpreter and registers it with the walker.
  std::unique_ptr<test::TargetProcess> run(const std::string& interpreter, const std::vector<std::string>& args,
                                           std::uint32_t generation = 3) {
    std::vector<std::string> argv{interpreter, test::kPythonWorkload};
    argv.insert(argv.end(), args.begin(), args.end());
    auto target = std::make_unique<test::TargetProcess>(argv);
    EXPECT_TRUE(target->running());
    if (!target->running()) return target;
    auto detection = detector_.detect(target->pid());
    EXPECT_TRUE(detection && detection->interpreter);
    if (!detection || !detection->interpreter) return target;
    EXPECT_TRUE(watched_->watch(target->pid(), generation, 0, true).ok());
    EXPECT_TRUE(sampler_->watch_python(target->pid(), generation, detection->interpreter->walker_index,
                                       detection->interpreter->runtime)
                    .ok());
    return target;
  }

  // One window of the given length, after a clean start.
  DrainResult window(std::chrono::milliseconds length) {
    sampler_->drain();
    std::this_thread::sleep_for(length);
    return sampler_->drain();
  }

  std::unique_ptr<WatchedMap> watched_;
  std::unique_ptr<OncpuSampler> sampler_;
  PythonDetector detector_;
};

std::uint64_t with_python_frames(const DrainResult& d) {
  std::uint64_t n = 0;
  for (const RawStack& s : d.stacks)
    if (!s.python.frames.empty()) n += s.count;
  return n;
}

TEST_F(PythonWalkerTest, RecordsTheFramesOfEveryInterpreter) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto interpreters = test::test_interpreters();
  ASSERT_FALSE(interpreters.empty()) << "Debian's " << test::kDebianPython << " is required";
  for (const auto& interpreter : interpreters) {
    SCOPED_TRACE(interpreter.name);
    auto target = run(interpreter.path, {"split", "30"});
    ASSERT_FALSE(HasFailure());
    auto code = [&](const char* name) { return target->address(std::string("code.") + name); };
    DrainResult d = window(1500ms);
    std::uint64_t total = test::total_count(d, target->pid());
    target->kill();
    ASSERT_GT(total, 500u);
    EXPECT_GT(with_python_frames(d), total * 95 / 100) << "samples without Python frames";
    EXPECT_EQ(d.python.samples, with_python_frames(d));
    std::uint64_t in_hot_a = 0;
    for (const RawStack& s : d.stacks) {
      const auto& frames = s.python.frames;
      if (frames.empty()) continue;
      ASSERT_EQ(s.python.entry.size(), frames.size());
      EXPECT_FALSE(s.python.truncated);
      // Root first: the module, main, split (the stack is leaf first).
      ASSERT_GE(frames.size(), 3u);
      EXPECT_EQ(frames.back().code, code("<module>"));
      EXPECT_TRUE(s.python.entry.back()) << "the module's frame begins an eval-loop call";
      EXPECT_EQ(frames[frames.size() - 2].code, code("main"));
      EXPECT_EQ(frames[frames.size() - 3].code, code("split"));
      for (std::size_t i = 0; i < frames.size(); ++i) {
        EXPECT_GE(frames[i].lasti, -1);
        if (frames[i].code == code("hot_a")) {
          in_hot_a += s.count;
          ASSERT_LT(i + 1, frames.size());
          EXPECT_EQ(frames[i + 1].code, code("via_a")) << "hot_a is reached through via_a";
        }
      }
      if (interpreter.minor == 10) {
        for (bool entry : s.python.entry) EXPECT_TRUE(entry) << "in 3.10 every frame has its own eval-loop call";
      }
    }
    EXPECT_NEAR(100.0 * in_hot_a / total, 60.0, 8.0);
  }
}

TEST_F(PythonWalkerTest, ThreadsThatComeAndGoKeepTheirFrames) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto target = run(test::kDebianPython, {"thread_churn", "30"});
  ASSERT_FALSE(HasFailure());
  // About ten threads, each new, each found without anyone telling the walker about it.
  DrainResult d = window(2000ms);
  std::uint64_t total = test::total_count(d, target->pid());
  ASSERT_GT(total, 500u);
  std::uint64_t in_worker = 0;
  for (const RawStack& s : d.stacks)
    for (const py_frame& f : s.python.frames)
      if (f.code == target->address("code.churn_worker")) {
        in_worker += s.count;
        break;
      }
  EXPECT_GT(in_worker, total * 85 / 100) << "new threads' samples lack their Python frames";
  EXPECT_LT(d.python.no_thread_state, total / 20);
}

TEST_F(PythonWalkerTest, DeepStacksAreTruncatedAtTheDepthLimitAndMarked) {
  ASSERT_NO_FATAL_FAILURE(start(/*max_depth=*/16));
  auto target = run(test::kDebianPython, {"recurse", "30", "100"});
  ASSERT_FALSE(HasFailure());
  DrainResult d = window(1000ms);
  std::uint64_t recursing = 0;
  for (const RawStack& s : d.stacks) {
    const auto& frames = s.python.frames;
    if (frames.empty()) continue;
    ASSERT_EQ(frames.size(), 16u);
    EXPECT_TRUE(s.python.truncated);
    // The innermost 16: recurse() all the way down to the leaf (spin, or recurse itself).
    for (std::size_t i = 1; i < frames.size(); ++i) EXPECT_EQ(frames[i].code, target->address("code.recurse"));
    recursing += s.count;
  }
  EXPECT_GT(recursing, 300u);
  EXPECT_EQ(d.python.truncated, recursing);
}

TEST_F(PythonWalkerTest, AnnouncesEachNewStackOncePerWindow) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto target = run(test::kDebianPython, {"split", "30"});
  ASSERT_FALSE(HasFailure());
  sampler_->drain();
  std::map<std::vector<std::uint64_t>, int> announced;
  auto poll = [&] {
    sampler_->poll_python_stacks([&](const NewPythonStack& s) {
      EXPECT_EQ(s.tgid, target->pid());
      EXPECT_EQ(s.generation, 3u);
      std::vector<std::uint64_t> codes;
      for (const py_frame& f : s.frames) codes.push_back(f.code);
      ++announced[codes];
    });
  };
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(100ms);
    poll();
  }
  DrainResult d = sampler_->drain();
  poll();
  std::set<std::vector<std::uint64_t>> recorded;
  for (const RawStack& s : d.stacks) {
    std::vector<std::uint64_t> codes;
    for (const py_frame& f : s.python.frames) codes.push_back(f.code);
    if (!codes.empty()) recorded.insert(codes);
  }
  ASSERT_FALSE(recorded.empty());
  for (const auto& codes : recorded) EXPECT_TRUE(announced.contains(codes)) << "a stack was never announced";
  EXPECT_EQ(d.python.event_drops, 0u);
}

TEST_F(PythonWalkerTest, AFullStackMapIsCountedAndItsSamplesMarkedLost) {
  ASSERT_NO_FATAL_FAILURE(start(64, /*stack_entries=*/1));
  auto target = run(test::kDebianPython, {"split", "30"});
  ASSERT_FALSE(HasFailure());
  DrainResult d = window(1000ms);
  std::uint64_t lost = 0;
  for (const RawStack& s : d.stacks)
    if (s.python.lost) lost += s.count;
  EXPECT_GT(d.python.lost_map_full, 0u);
  EXPECT_EQ(lost, d.python.lost_map_full);
}

TEST_F(PythonWalkerTest, WalksOnlyProcessesRegisteredForTheirGeneration) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto target = run(test::kDebianPython, {"split", "30"}, /*generation=*/3);
  ASSERT_FALSE(HasFailure());
  // The PID now belongs to another generation (as after PID reuse): never walked as the old one.
  ASSERT_TRUE(watched_->watch(target->pid(), 4, 0, true).ok());
  DrainResult d = window(500ms);
  EXPECT_GT(test::total_count(d, target->pid()), 100u);
  EXPECT_EQ(with_python_frames(d), 0u);
  sampler_->unwatch_python(target->pid());
  ASSERT_TRUE(watched_->watch(target->pid(), 3, 0, true).ok());
  d = window(500ms);
  EXPECT_EQ(with_python_frames(d), 0u) << "unwatch_python did not stop the walk";
}

}  // namespace
}  // namespace perfwatch::collector
