#include <gtest/gtest.h>

#include "daemon/window_builder.h"

namespace perfwatch::daemon {
namespace {

class NamingResolver : public FrameResolver {
 public:
  int user_calls = 0;
  std::vector<profile::Frame> user(ProcessKey, std::span<const std::uint64_t> ips) override {
    ++user_calls;
    std::vector<profile::Frame> out;
    for (auto ip : ips) out.push_back({profile::FrameKind::native, "fn" + std::to_string(ip), "/bin/app"});
    return out;
  }
  std::vector<profile::Frame> kernel(std::span<const std::uint64_t> ips) override {
    std::vector<profile::Frame> out;
    for (auto ip : ips) out.push_back({profile::FrameKind::kernel, "k" + std::to_string(ip), "[kernel]"});
    return out;
  }
};

TEST(WindowBuilderTest, OrdersRootFirstWithKernelOnTop) {
  WindowInput in;
  in.host = "h";
  in.target_names = {"api"};
  in.target_pids = {{10}};
  in.samples.push_back({{10, 1}, {3, 2, 1}, {9, 8}, 4});
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
  in.samples.push_back({{10, 1}, {2, 1}, {}, 3});
  in.samples.push_back({{11, 1}, {2, 1}, {}, 2});  // same frames, other process of the same target
  in.samples.push_back({{12, 5}, {2, 1}, {}, 7});  // same frames, other target
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
  in.samples.push_back({{10, 1}, {1}, {}, 3});
  in.samples.push_back({{99, 9}, {1}, {}, 6});
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
  in.samples.push_back({{10, 1}, {}, {5}, 2});
  NamingResolver r;
  auto w = build_window(std::move(in), r, [](ProcessKey) { return std::optional<std::size_t>(0); });
  EXPECT_EQ(profile::to_folded(w.profile), "[unknown user stack];k5 2\n");
}

}  // namespace
}  // namespace perfwatch::daemon
