#include <gtest/gtest.h>

#include "daemon/window_builder.h"

namespace perfwatch::daemon {
namespace {

// Native frames "fnIP" (ips >= 100 are the interpreter's, 100 its eval loop), Python frames
// "pyCODE"; processes with pid 20 and above run Python.
class NamingResolver : public FrameResolver {
 public:
  std::vector<NativeFrame> user(ProcessKey, std::span<const std::uint64_t> ips) override {
    std::vector<NativeFrame> out;
    for (auto ip : ips)
      out.push_back({{profile::FrameKind::native, "fn" + std::to_string(ip), ip >= 100 ? "/usr/bin/python3" : "/bin/app"},
                     false, ip >= 100, ip == 100});
    return out;
  }
  std::vector<profile::Frame> kernel(std::span<const std::uint64_t> ips) override {
    std::vector<profile::Frame> out;
    for (auto ip : ips) out.push_back({profile::FrameKind::kernel, "k" + std::to_string(ip), "[kernel]"});
    return out;
  }
  bool runs_python(ProcessKey p) override { return p.pid >= 20; }
  std::vector<profile::Frame> python(ProcessKey, std::span<const py_frame> frames) override {
    std::vector<profile::Frame> out;
    for (const py_frame& f : frames)
      out.push_back({profile::FrameKind::python, "py" + std::to_string(f.code), "app.py:" + std::to_string(f.lasti)});
    return out;
  }
};

collector::RawPythonStack python_stack(std::vector<std::uint64_t> codes, bool truncated = false) {
  collector::RawPythonStack s;
  s.truncated = truncated;
  for (auto code : codes) {
    s.frames.push_back({code, 7, 0});
    s.entry.push_back(false);
  }
  if (!s.entry.empty()) s.entry.back() = true;
  return s;
}

TEST(WindowBuilderTest, OrdersRootFirstWithKernelOnTop) {
  WindowInput in;
  in.host = "h";
  in.target_names = {"api"};
  in.target_pids = {{10}};
  in.samples.push_back({{10, 1}, {3, 2, 1}, {9, 8}, {}, 4});
  NamingResolver r;
  auto w = build_window(std::move(in), r, [](ProcessKey) { return std::optional<std::size_t>(0); });
  EXPECT_EQ(profile::to_folded(w.profile), "fn1;fn2;fn3;k8;k9 4\n");
  EXPECT_EQ(w.targets[0].samples, 4u);
  EXPECT_EQ(w.targets[0].pids, std::vector<std::int32_t>{10});
  EXPECT_EQ(w.profile.frames[3].kind, profile::FrameKind::kernel);
}

TEST(WindowBuilderTest, DeduplicatesFramesAndMergesStacksThatSymbolizeAlike) {
  WindowInput in;
  in.target_names = {"api", "worker"};
  in.samples.push_back({{10, 1}, {2, 1}, {}, {}, 3});
  in.samples.push_back({{11, 1}, {2, 1}, {}, {}, 2});  // same frames, other process of the same target
  in.samples.push_back({{12, 5}, {2, 1}, {}, {}, 7});  // same frames, other target
  NamingResolver r;
  auto w = build_window(std::move(in), r, [](ProcessKey k) {
    return std::optional<std::size_t>(k.pid == 12 ? 1 : 0);
  });
  EXPECT_EQ(w.profile.frames.size(), 2u);
  ASSERT_EQ(w.profile.stacks.size(), 2u);
  EXPECT_EQ(w.profile.stacks[0].count, 5u);
  EXPECT_EQ(w.targets[0].samples, 5u);
  EXPECT_EQ(w.targets[1].samples, 7u);
}

TEST(WindowBuilderTest, UnknownProcessesAreCountedNotMisattributed) {
  WindowInput in;
  in.target_names = {"api"};
  in.samples.push_back({{10, 1}, {1}, {}, {}, 3});
  in.samples.push_back({{99, 9}, {1}, {}, {}, 6});
  NamingResolver r;
  auto w = build_window(std::move(in), r, [](ProcessKey k) {
    return k.pid == 10 ? std::optional<std::size_t>(0) : std::nullopt;
  });
  EXPECT_EQ(w.targets[0].samples, 3u);
  EXPECT_EQ(w.stats.lost_unresolved, 6u);
}

TEST(WindowBuilderTest, MissingUserStackKeepsTheSample) {
  WindowInput in;
  in.target_names = {"api"};
  in.samples.push_back({{10, 1}, {}, {5}, {}, 2});
  NamingResolver r;
  auto w = build_window(std::move(in), r, [](ProcessKey) { return std::optional<std::size_t>(0); });
  EXPECT_EQ(profile::to_folded(w.profile), "[unknown user stack];k5 2\n");
}

TEST(WindowBuilderTest, PythonFramesReplaceTheUnreliableNativeStackKernelStaysOnTop) {
  WindowInput in;
  in.target_names = {"py"};
  // Leaf in the eval loop, then junk from an unwind without frame pointers.
  in.samples.push_back({{20, 1}, {100, 55, 3}, {9}, python_stack({2, 1}), 5});
  // Leaf in a library called from Python: kept beneath the Python frames.
  in.samples.push_back({{20, 1}, {4, 101}, {}, python_stack({2, 1}), 2});
  NamingResolver r;
  auto w = build_window(std::move(in), r, [](ProcessKey) { return std::optional<std::size_t>(0); });
  EXPECT_EQ(profile::to_folded(w.profile), "py1;py2;fn4 2\npy1;py2;k9 5\n");
  for (const profile::Frame& f : w.profile.frames)
    if (f.name.starts_with("py")) {
      EXPECT_EQ(f.kind, profile::FrameKind::python);
      EXPECT_EQ(f.module, "app.py:7");
    }
}

TEST(WindowBuilderTest, PythonSamplesWithoutPythonFramesKeepOnlyReliableNativeFrames) {
  WindowInput in;
  in.target_names = {"py"};
  in.samples.push_back({{20, 1}, {100, 55, 3}, {}, {}, 1});
  collector::RawPythonStack lost;
  lost.lost = true;
  in.samples.push_back({{20, 1}, {100, 55}, {}, lost, 2});
  in.samples.push_back({{20, 1}, {}, {9}, python_stack({1}, true), 4});
  in.samples.push_back({{21, 1}, {}, {9}, {}, 8});
  NamingResolver r;
  auto w = build_window(std::move(in), r, [](ProcessKey) { return std::optional<std::size_t>(0); });
  EXPECT_EQ(profile::to_folded(w.profile),
            "[python stack lost];fn100 2\n"
            "[truncated python stack];py1;k9 4\n"
            "[unknown user stack];k9 8\n"
            "fn100 1\n");
}

}  // namespace
}  // namespace perfwatch::daemon
