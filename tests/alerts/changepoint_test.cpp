// Change-point detection on synthetic series with known change points: the t distribution against
// reference values, single and multiple shifts, and precision and recall over many random series.
#include "alerts/changepoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

namespace perfwatch::alerts {
namespace {

TEST(StudentT, MatchesReferenceValues) {
  // Two-sided p-values from R's 2 * pt(-|t|, df).
  EXPECT_NEAR(student_t_pvalue(2.0, 10), 0.07338803, 1e-7);
  EXPECT_NEAR(student_t_pvalue(-2.0, 10), 0.07338803, 1e-7);
  EXPECT_NEAR(student_t_pvalue(1.0, 1), 0.5, 1e-9);
  EXPECT_NEAR(student_t_pvalue(3.5, 30), 0.001476, 1e-6);
  EXPECT_NEAR(student_t_pvalue(0.0, 5), 1.0, 1e-12);
  EXPECT_NEAR(student_t_pvalue(10, 200), 1.5e-19, 1e-19);
  EXPECT_EQ(student_t_pvalue(INFINITY, 3), 0.0);
}

TEST(WelchTTest, MatchesAHandComputedExample) {
  // n1 = 10, mean 20, var 4; n2 = 12, mean 22, var 9: se^2 = 0.4 + 0.75, t = 2 / sqrt(1.15).
  const TTest t = welch_t_test(10, 20, 4, 12, 22, 9);
  EXPECT_NEAR(t.t, 1.8650, 1e-4);
  EXPECT_NEAR(t.df, 1.15 * 1.15 / (0.16 / 9 + 0.5625 / 11), 1e-9);
  EXPECT_NEAR(t.pvalue, student_t_pvalue(t.t, t.df), 1e-12);
  EXPECT_GT(t.pvalue, 0.07);
  EXPECT_LT(t.pvalue, 0.08);
}

TEST(WelchTTest, ConstantSegments) {
  EXPECT_EQ(welch_t_test(5, 1, 0, 5, 1, 0).pvalue, 1.0);
  EXPECT_EQ(welch_t_test(5, 1, 0, 5, 2, 0).pvalue, 0.0);
}

std::vector<double> noisy(std::mt19937_64& rng, std::size_t n, double mean, double relative_noise) {
  std::normal_distribution<double> noise(0, relative_noise * mean);
  std::vector<double> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(mean + noise(rng));
  return out;
}

TEST(ChangePoints, FindsOneShiftWhereItIs) {
  std::mt19937_64 rng(1);
  std::vector<double> series = noisy(rng, 60, 100, 0.05);
  const std::vector<double> after = noisy(rng, 40, 120, 0.05);
  series.insert(series.end(), after.begin(), after.end());
  const auto points = detect_change_points(series, {0.001, 5, 0.1});
  ASSERT_EQ(points.size(), 1u);
  EXPECT_NEAR(static_cast<double>(points[0].index), 60, 2);
  EXPECT_NEAR(points[0].before, 100, 2);
  EXPECT_NEAR(points[0].after, 120, 2);
  EXPECT_LT(points[0].pvalue, 1e-10);
  EXPECT_NEAR(points[0].relative_change(), 0.2, 0.03);
}

TEST(ChangePoints, FindsSeveralShifts) {
  std::mt19937_64 rng(2);
  std::vector<double> series;
  for (double level : {50.0, 70.0, 40.0}) {
    const std::vector<double> part = noisy(rng, 50, level, 0.04);
    series.insert(series.end(), part.begin(), part.end());
  }
  const auto points = detect_change_points(series, {0.001, 5, 0.1});
  ASSERT_EQ(points.size(), 2u);
  EXPECT_NEAR(static_cast<double>(points[0].index), 50, 2);
  EXPECT_NEAR(static_cast<double>(points[1].index), 100, 2);
  EXPECT_NEAR(points[1].before, 70, 2);  // the segment between the two, not the whole prefix
  EXPECT_NEAR(points[1].after, 40, 2);
}

TEST(ChangePoints, MergesAwayChangesBelowMinChange) {
  std::mt19937_64 rng(3);
  std::vector<double> series = noisy(rng, 100, 100, 0.01);
  const std::vector<double> after = noisy(rng, 100, 105, 0.01);  // significant, but only 5%
  series.insert(series.end(), after.begin(), after.end());
  EXPECT_EQ(detect_change_points(series, {0.001, 5, 0.0}).size(), 1u);
  EXPECT_TRUE(detect_change_points(series, {0.001, 5, 0.1}).empty());
}

TEST(ChangePoints, ShortOrFlatSeriesHaveNone) {
  EXPECT_TRUE(detect_change_points(std::vector<double>{}, {}).empty());
  EXPECT_TRUE(detect_change_points(std::vector<double>{1, 2, 3}, {}).empty());
  EXPECT_TRUE(detect_change_points(std::vector<double>(50, 7.0), {}).empty());
}

TEST(ChangePoints, HugeValuesKeepTheirVariance) {
  // Latencies in nanoseconds: the squares would swamp the variance without centring.
  std::mt19937_64 rng(4);
  std::vector<double> series = noisy(rng, 40, 5e9, 0.02);
  const std::vector<double> after = noisy(rng, 40, 6e9, 0.02);
  series.insert(series.end(), after.begin(), after.end());
  const auto points = detect_change_points(series, {0.001, 5, 0.1});
  ASSERT_EQ(points.size(), 1u);
  EXPECT_NEAR(static_cast<double>(points[0].index), 40, 2);
}

// Precision and recall over random series: stable ones (any change point is a false alarm) and ones
// with one injected +15% shift at a random place in the middle 60% (found when a change point is a rise
// of at least min_change within 10 points of it: where a shift of 1.5 standard deviations lies can only
// be told that well), at the noise levels per-window CPU shares and latencies show (5% and 10% of the
// mean per point).
struct Score {
  int shifted = 0, found = 0, detections = 0, true_detections = 0, stable = 0, false_alarms = 0;
};

Score score(double relative_noise, std::size_t length, int trials, std::uint64_t seed) {
  const ChangePointOptions options{0.001, 6, 0.10};
  std::mt19937_64 rng(seed);
  Score s;
  for (int trial = 0; trial < trials; ++trial) {
    const std::vector<double> stable = noisy(rng, length, 100, relative_noise);
    ++s.stable;
    if (!detect_change_points(stable, options).empty()) ++s.false_alarms;

    std::uniform_int_distribution<std::size_t> where(length / 5, length - length / 5);
    const std::size_t at = where(rng);
    std::vector<double> series = noisy(rng, at, 100, relative_noise);
    const std::vector<double> after = noisy(rng, length - at, 115, relative_noise);
    series.insert(series.end(), after.begin(), after.end());
    ++s.shifted;
    bool found = false;
    for (const ChangePoint& p : detect_change_points(series, options)) {
      ++s.detections;
      const bool right = std::abs(static_cast<double>(p.index) - static_cast<double>(at)) <= 10 &&
                         p.relative_change() >= options.min_change;
      if (right) ++s.true_detections;
      found = found || right;
    }
    if (found) ++s.found;
  }
  return s;
}

TEST(ChangePoints, PrecisionAndRecallOnInjectedShifts) {
  for (double noise : {0.05, 0.10}) {
    for (std::size_t length : {100u, 300u}) {
      const Score s = score(noise, length, 400, 42 + static_cast<std::uint64_t>(length));
      const double recall = static_cast<double>(s.found) / s.shifted;
      const double precision = s.detections ? static_cast<double>(s.true_detections) / s.detections : 1.0;
      const double false_alarm_rate = static_cast<double>(s.false_alarms) / s.stable;
      std::printf("noise %4.0f%%  length %3zu: recall %.3f (%d/%d)  precision %.3f (%d/%d)  false alarms on stable "
                  "series %.3f (%d/%d)\n",
                  noise * 100, length, recall, s.found, s.shifted, precision, s.true_detections, s.detections,
                  false_alarm_rate, s.false_alarms, s.stable);
      EXPECT_GE(recall, 0.95) << "noise " << noise << ", length " << length;
      EXPECT_LT(false_alarm_rate, 0.05) << "noise " << noise << ", length " << length;
      EXPECT_GE(precision, 0.95) << "noise " << noise << ", length " << length;
    }
  }
}

}  // namespace
}  // namespace perfwatch::alerts
