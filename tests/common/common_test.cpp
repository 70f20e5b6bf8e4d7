#include <gtest/gtest.h>

#include <limits>

#include "common/duration.h"
#include "common/flame_tree.h"
#include "common/profile.h"
#include "common/time_text.h"
#include "common/utf8.h"

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

// Found by fuzz_router: a time past 2262 overflowed the nanoseconds it is kept in.
TEST(TimeTextTest, TimesOutside1970To2200AreErrors) {
  EXPECT_EQ(parse_time("1800000000")->time_since_epoch(), std::chrono::seconds(1'800'000'000));
  EXPECT_EQ(parse_time("2026-11-24T10:00:00Z")->time_since_epoch(), std::chrono::seconds(1'795'514'400));
  for (const char* bad : {"9999999999999", "-1", "99999999999999999999", "2200-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    auto t = parse_time(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_NE(t.error().message.find("outside 1970 to 2200"), std::string::npos) << t.error().message;
  }
  const profile::TimePoint now(std::chrono::seconds(1'800'000'000));
  EXPECT_EQ(*time_before(now, std::chrono::hours(1)), now - std::chrono::hours(1));
  EXPECT_FALSE(time_before(now, std::chrono::hours(24 * 365 * 60)).ok());
  EXPECT_FALSE(time_before(now, Duration(std::numeric_limits<std::int64_t>::max())).ok());
  EXPECT_FALSE(time_before(now, Duration(0)).ok());
}

TEST(Utf8Test, ValidAndSanitized) {
  EXPECT_TRUE(utf8::valid("plain /tmp/caf\xC3\xA9"));
  for (std::string_view bad : {std::string_view("\xff"), std::string_view("a\0b", 3), std::string_view("\xC0\xAF"),
                               std::string_view("\xED\xA0\x80"), std::string_view("\xF4\x90\x80\x80"),
                               std::string_view("\xE2\x82")})
    EXPECT_FALSE(utf8::valid(bad));
  EXPECT_EQ(utf8::sanitize(std::string_view("/tmp/\xff/a\0", 9)), "/tmp/\xEF\xBF\xBD/a\xEF\xBF\xBD");
  EXPECT_EQ(utf8::sequence_length("\xE2\x82\xAC!"), 3u);
  EXPECT_EQ(utf8::sequence_length(""), 0u);
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
