// Regressions against a baseline on synthetic series: the latest rise of a latency series, and the
// functions whose CPU share grew, with their shares before and after.
#include "alerts/regression.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>

namespace perfwatch::alerts {
namespace {

using namespace std::chrono_literals;

TimePoint at(int seconds) { return TimePoint(std::chrono::seconds(1'800'000'000 + seconds)); }

std::vector<Point> series(std::mt19937_64& rng, std::initializer_list<std::pair<int, double>> segments, double noise) {
  std::vector<Point> out;
  int t = 0;
  for (const auto& [count, mean] : segments) {
    std::normal_distribution<double> n(mean, noise * mean);
    for (int i = 0; i < count; ++i, t += 10) out.push_back({at(t), at(t + 10), n(rng)});
  }
  return out;
}

const ChangePointOptions options{0.001, 6, 0.10};

TEST(LatestRise, ReportsARiseWithItsRanges) {
  std::mt19937_64 rng(1);
  const auto s = series(rng, {{100, 20e6}, {30, 25e6}}, 0.05);
  const std::optional<Shift> shift = latest_rise(s, options);
  ASSERT_TRUE(shift);
  EXPECT_NEAR(static_cast<double>(shift->change), 100, 2);
  EXPECT_EQ(shift->before_begin, 0u);
  EXPECT_EQ(shift->before_from, at(0));
  EXPECT_EQ(shift->after_from, s[shift->change].start);
  EXPECT_EQ(shift->first_after_end, s[shift->change].end);
  EXPECT_EQ(shift->after_to, at(1300));
  EXPECT_NEAR(shift->before, 20e6, 0.5e6);
  EXPECT_NEAR(shift->after, 25e6, 0.5e6);
  EXPECT_NEAR(shift->relative(), 0.25, 0.04);
}

TEST(LatestRise, IgnoresDropsSmallRisesAndOldRisesUndone) {
  std::mt19937_64 rng(2);
  EXPECT_FALSE(latest_rise(series(rng, {{100, 20}, {30, 15}}, 0.03), options)) << "a drop is no regression";
  EXPECT_FALSE(latest_rise(series(rng, {{100, 20}, {30, 21}}, 0.01), options)) << "5% is below min_change";
  EXPECT_FALSE(latest_rise(series(rng, {{60, 20}, {30, 26}, {40, 20}}, 0.03), options)) << "back to normal";
  EXPECT_FALSE(latest_rise(series(rng, {{100, 20}, {4, 30}}, 0.03), options)) << "fewer points than min_points";
}

TEST(LatestRise, TheBeforeSegmentStartsAtThePreviousChange) {
  std::mt19937_64 rng(3);
  const auto s = series(rng, {{50, 10}, {50, 20}, {40, 30}}, 0.03);
  const std::optional<Shift> shift = latest_rise(s, options);
  ASSERT_TRUE(shift);
  EXPECT_NEAR(static_cast<double>(shift->before_begin), 50, 2);
  EXPECT_NEAR(static_cast<double>(shift->change), 100, 2);
  EXPECT_NEAR(shift->before, 20, 0.5);
}

// The rule as it runs: a day of history (one point per 5 minutes) whose last hours may hold a +15% step;
// a regression must be reported when there is one and not otherwise.
TEST(LatestRise, FindsRecentRegressionsInADayOfHistory) {
  std::mt19937_64 rng(4);
  int found = 0, false_alarms = 0;
  const int trials = 300;
  for (int i = 0; i < trials; ++i) {
    std::uniform_int_distribution<int> recent(12, 60);  // the step happened 1 to 5 hours ago
    const int after = recent(rng);
    if (latest_rise(series(rng, {{288 - after, 100}, {after, 115}}, 0.10), options)) ++found;
    if (latest_rise(series(rng, {{288, 100}}, 0.10), options)) ++false_alarms;
  }
  std::printf("day of history, 10%% noise: regressions found %d/%d, false alarms %d/%d\n", found, trials, false_alarms,
              trials);
  EXPECT_GE(found, trials * 95 / 100);
  EXPECT_LT(false_alarms, trials * 5 / 100);
}

// A target's windows: main calls hot (share hot_share) and other; each window has `samples` samples.
std::vector<CpuWindow> cpu_windows(FunctionTable& f, std::mt19937_64& rng, int count, double hot_share, int first,
                                   std::uint64_t samples = 1000) {
  const std::uint32_t main = f.intern({profile::FrameKind::native, "main", "app"});
  const std::uint32_t hot = f.intern({profile::FrameKind::native, "hot", "app"});
  const std::uint32_t other = f.intern({profile::FrameKind::native, "other", "app"});
  std::vector<CpuWindow> out;
  for (int i = 0; i < count; ++i) {
    std::binomial_distribution<std::uint64_t> draw(samples, hot_share);
    const std::uint64_t h = draw(rng);
    CpuWindow w{at(10 * (first + i)), at(10 * (first + i) + 10), samples, {}};
    w.functions = {{main, 0, samples}, {hot, h, h}, {other, samples - h, samples - h}};
    std::sort(w.functions.begin(), w.functions.end(), [](auto& a, auto& b) { return a.function < b.function; });
    out.push_back(w);
  }
  return out;
}

TEST(CpuRegressions, NamesTheFunctionWhoseShareGrew) {
  FunctionTable f;
  std::mt19937_64 rng(5);
  std::vector<CpuWindow> windows = cpu_windows(f, rng, 60, 0.30, 0);
  const std::vector<CpuWindow> after = cpu_windows(f, rng, 30, 0.36, 60);  // hot 20% slower: 30% -> 36%
  windows.insert(windows.end(), after.begin(), after.end());
  const CpuRegressionOptions cpu{options, 200, 0.01, 5};
  const std::vector<FunctionRegression> found = cpu_regressions(windows, cpu);
  ASSERT_EQ(found.size(), 1u) << "main's total share stays 100%, other's shrinks";
  EXPECT_EQ(f[found[0].function].name, "hot");
  EXPECT_EQ(found[0].kind, ShareKind::self);
  EXPECT_NEAR(found[0].self_before, 0.30, 0.01);
  EXPECT_NEAR(found[0].self_after, 0.36, 0.01);
  EXPECT_NEAR(found[0].total_before, 0.30, 0.01);
  EXPECT_NEAR(found[0].total_after, 0.36, 0.01);
  EXPECT_NEAR(static_cast<double>(found[0].shift.change), 60, 2);
  EXPECT_EQ(found[0].shift.before_from, at(0));
  EXPECT_EQ(found[0].shift.after_to, at(900));
}

TEST(CpuRegressions, MergesSparseWindowsIntoPointsOfMinSamples) {
  FunctionTable f;
  std::mt19937_64 rng(6);
  // 50 samples per window: points of 200 samples merge 4 windows.
  std::vector<CpuWindow> windows = cpu_windows(f, rng, 240, 0.30, 0, 50);
  const std::vector<CpuWindow> after = cpu_windows(f, rng, 120, 0.40, 240, 50);
  windows.insert(windows.end(), after.begin(), after.end());
  const std::vector<FunctionRegression> found = cpu_regressions(windows, {options, 200, 0.01, 5});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(f[found[0].function].name, "hot");
  EXPECT_NEAR(static_cast<double>(found[0].shift.change), 60, 2) << "a point is 4 windows";
  EXPECT_EQ(found[0].shift.after_from, at(2400));
}

TEST(CpuRegressions, StableProfilesAndRareFunctionsReportNothing) {
  FunctionTable f;
  std::mt19937_64 rng(7);
  EXPECT_TRUE(cpu_regressions(cpu_windows(f, rng, 120, 0.30, 0), {options, 200, 0.01, 5}).empty());
  // hot grows from 0.4% to 0.8%: significant, but below min_share.
  std::vector<CpuWindow> windows = cpu_windows(f, rng, 60, 0.004, 0);
  const std::vector<CpuWindow> after = cpu_windows(f, rng, 30, 0.008, 60);
  windows.insert(windows.end(), after.begin(), after.end());
  EXPECT_TRUE(cpu_regressions(windows, {options, 200, 0.01, 5}).empty());
}

}  // namespace
}  // namespace perfwatch::alerts
