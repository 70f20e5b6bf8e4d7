#include <gtest/gtest.h>

#include "common/duration.h"
#include "common/flame_tree.h"
#include "common/profile.h"

namespace perfwatch {
namespace {

using profile::Frame;
using profile::FrameKind;

profile::Profile sample_profile() {
  profile::Profile p;
  p.frames = {{FrameKind::native, "main", "/bin/app"},
              {FrameKind::native, "a;b", "/bin/app"},
              {FrameKind::kernel, "do_syscall_64", "[kernel]"},
              {FrameKind::native, "c", "/bin/app"}};
  p.stacks = {{0, {0, 1, 2}, 5}, {0, {0, 3}, 3}, {0, {0, 1, 2}, 2}, {0, {0}, 1}};
  return p;
}

TEST(DurationTest, ParsesEveryUnit) {
  EXPECT_EQ(parse_duration("250ms")->count(), 250000);
  EXPECT_EQ(parse_duration("2s")->count(), 2000000);
  EXPECT_EQ(parse_duration("10m")->count(), 600000000);
  EXPECT_EQ(parse_duration("14d")->count(), 14LL * 86400 * 1000000);
  EXPECT_EQ(parse_duration("7us")->count(), 7);
  EXPECT_EQ(parse_duration("1h")->count(), 3600LL * 1000000);
}

TEST(DurationTest, RejectsMalformed) {
  for (const char* bad : {"", "s", "10", "10x", "-1s", "1.5s", "99999999999999999d"}) {
    auto d = parse_duration(bad);
    EXPECT_FALSE(d.ok()) << bad;
  }
  EXPECT_NE(parse_duration("10x").error().message.find("unit"), std::string::npos);
}

TEST(DurationTest, FormatsInTheLargestExactUnit) {
  EXPECT_EQ(format_duration(std::chrono::seconds(10)), "10s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(std::chrono::hours(48)), "2d");
}

TEST(ProfileTest, FoldedMergesAndEscapes) {
  EXPECT_EQ(profile::to_folded(sample_profile()), "main 1\nmain;a:b;do_syscall_64 7\nmain;c 3\n");
}

TEST(ProfileTest, MergeIdenticalStacks) {
  auto p = sample_profile();
  profile::merge_identical_stacks(p);
  ASSERT_EQ(p.stacks.size(), 3u);
  EXPECT_EQ(p.stacks[0].count, 7u);
  EXPECT_EQ(p.total(), 11u);
}

TEST(ProfileTest, FlameTreeValuesAreInclusive) {
  auto tree = profile::to_flame_tree(sample_profile());
  EXPECT_EQ(tree["name"], "all");
  EXPECT_EQ(tree["value"], 11);
  ASSERT_EQ(tree["children"].size(), 1u);
  const auto& main = tree["children"][0];
  EXPECT_EQ(main["name"], "main");
  EXPECT_EQ(main["value"], 11);
  ASSERT_EQ(main["children"].size(), 2u);
  EXPECT_EQ(main["children"][0]["name"], "a;b");
  EXPECT_EQ(main["children"][0]["value"], 7);
  EXPECT_EQ(main["children"][0]["children"][0]["kind"], "kernel");
  EXPECT_EQ(main["children"][1]["value"], 3);
  EXPECT_FALSE(tree.contains("delta")) << "only diff trees carry deltas";
}

TEST(ProfileTest, DiffTreeMatchesFramesAcrossProfilesAndNormalizesEachSide) {
  // Base: main;a;b;do_syscall_64 7, main;c 3, main 1 (11 samples). The comparison lists its frames in
  // another order, has 22 samples, and drops c: a grows from 7/11 to 20/22, c vanishes.
  const profile::Profile base = sample_profile();
  profile::Profile comparison;
  comparison.frames = {{FrameKind::native, "a;b", "/bin/app"}, {FrameKind::native, "main", "/bin/app"},
                       {FrameKind::native, "d", "/bin/app"}};
  comparison.stacks = {{0, {1, 0}, 20}, {0, {1, 2}, 2}};
  const auto tree = profile::to_diff_tree(base, comparison, "api");
  EXPECT_EQ(tree["name"], "api");
  EXPECT_EQ(tree["value"], 22);
  EXPECT_EQ(tree["base"], 11);
  EXPECT_DOUBLE_EQ(tree["delta"].get<double>(), 0);
  const auto& main = tree["children"][0];
  ASSERT_EQ(main["children"].size(), 3u);
  const auto& a = main["children"][0];
  EXPECT_EQ(a["name"], "a;b");
  EXPECT_EQ(a["value"], 20);
  EXPECT_EQ(a["base"], 7);
  EXPECT_DOUBLE_EQ(a["delta"].get<double>(), 20 - 7 * 2.0);
  const auto& c = main["children"][1];
  EXPECT_EQ(c["name"], "c");
  EXPECT_EQ(c["value"], 0);
  EXPECT_DOUBLE_EQ(c["delta"].get<double>(), -6);
  const auto& d = main["children"][2];
  EXPECT_EQ(d["base"], 0);
  EXPECT_DOUBLE_EQ(d["delta"].get<double>(), 2) << "a new frame's delta is its whole value";
}

}  // namespace
}  // namespace perfwatch
