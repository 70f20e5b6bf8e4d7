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
}

}  // namespace
}  // namespace perfwatch
