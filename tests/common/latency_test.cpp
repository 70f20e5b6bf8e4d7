// The latency bucket scheme (probes/latency_hist.h, shared with BPF) and the histogram helpers.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>

#include "common/latency.h"

namespace perfwatch::profile {
namespace {

TEST(LatencyBuckets, Log2MatchesTheStandardLibrary) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) {
    std::uint64_t v = rng() >> (rng() % 64);
    if (v == 0) continue;
    ASSERT_EQ(lat_log2(v), static_cast<std::uint32_t>(std::bit_width(v) - 1)) << v;
  }
  for (int k = 0; k < 64; ++k) {
    ASSERT_EQ(lat_log2(1ull << k), static_cast<std::uint32_t>(k));
    if (k > 0) {
      ASSERT_EQ(lat_log2((1ull << k) - 1), static_cast<std::uint32_t>(k - 1));
    }
  }
}

TEST(LatencyBuckets, AreContiguousAndOrdered) {
  for (std::uint32_t b = 0; b + 1 < latency_bucket_count; ++b) {
    ASSERT_EQ(latency_bucket(lat_bucket_lower(b)), b);
    ASSERT_EQ(latency_bucket(lat_bucket_lower(b) + lat_bucket_width(b) - 1), b);
    ASSERT_EQ(lat_bucket_lower(b) + lat_bucket_width(b), lat_bucket_lower(b + 1)) << b;
  }
  EXPECT_EQ(latency_bucket(0), 0u);
  EXPECT_EQ(latency_bucket(~0ull), latency_bucket_count - 1) << "huge values clamp into the last bucket";
  EXPECT_EQ(latency_bucket(1ull << LAT_MAX_OCTAVE), latency_bucket_count - 1);
}

TEST(LatencyBuckets, MidpointOfAnyValueIsWithin5Percent) {
  double worst = 0;
  auto check = [&](std::uint64_t v) {
    const double estimate = static_cast<double>(latency_bucket_value(latency_bucket(v)));
    worst = std::max(worst, std::abs(estimate - static_cast<double>(v)) / static_cast<double>(v));
  };
  for (std::uint64_t v = 1; v < 100000; ++v) check(v);
  std::mt19937_64 rng(2);
  for (int i = 0; i < 1000000; ++i) check(1 + rng() % ((1ull << LAT_MAX_OCTAVE) - 1));
  for (int k = 0; k < LAT_MAX_OCTAVE; ++k) {
    check(1ull << k);
    check((2ull << k) - 1);
  }
  EXPECT_LT(worst, 0.05);
  EXPECT_LT(worst, 0.032) << "the scheme promises half a bucket: 1/32";
}

TEST(LatencyBuckets, APlainLog2HistogramWouldNotDo) {
  // The reason for the linear sub-buckets: 1.4 s and 1.9 s must not share a bucket.
  EXPECT_NE(latency_bucket(1'400'000'000), latency_bucket(1'900'000'000));
}

LatencyHistogram histogram_of(const std::vector<std::uint64_t>& values, std::uint64_t threshold) {
  DenseHistogram dense;
  for (std::uint64_t v : values) EXPECT_TRUE(dense.record(v, 1, threshold));
  return dense.take();
}

TEST(LatencyHistogramTest, PercentilesAreWithin5PercentOfTheExactOnes) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> dist(std::log(5e6), 1.5);
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 20000; ++i) values.push_back(1 + static_cast<std::uint64_t>(dist(rng)));
  LatencyHistogram h = histogram_of(values, 100'000'000);
  std::sort(values.begin(), values.end());
  for (double q : {0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
    const double exact = static_cast<double>(values[rank - 1]);
    EXPECT_NEAR(static_cast<double>(percentile(h, q)), exact, exact * 0.05) << "q=" << q;
  }
  EXPECT_EQ(percentile(h, 1.0), values.back()) << "the top percentile is the exact max";
}

TEST(LatencyHistogramTest, CountsSumMaxAndSlowAreExact) {
  LatencyHistogram h = histogram_of({30'000'000, 150'000'000, 700'000'000, 30'000'000}, 100'000'000);
  EXPECT_EQ(h.count, 4u);
  EXPECT_EQ(h.sum_ns, 910'000'000u);
  EXPECT_EQ(h.max_ns, 700'000'000u);
  EXPECT_EQ(h.slow, 2u);
  EXPECT_EQ(h.buckets.size(), 3u);
  EXPECT_EQ(percentile(LatencyHistogram{}, 0.5), 0u);
}

TEST(LatencyHistogramTest, WeightsStandForSampledCalls) {
  DenseHistogram dense;
  dense.record(10'000'000, 10, 5'000'000);  // a timer sent with @0.1
  LatencyHistogram h = dense.take();
  EXPECT_EQ(h.count, 10u);
  EXPECT_EQ(h.slow, 10u);
  EXPECT_EQ(h.sum_ns, 100'000'000u);
  EXPECT_TRUE(dense.empty()) << "take() starts a fresh window";
  EXPECT_EQ(dense.take().count, 0u);
}

TEST(LatencyHistogramTest, MergingEqualsRecordingEverything) {
  std::vector<std::uint64_t> a{1'000, 5'000'000, 5'100'000, 90'000'000}, b{5'000'000, 2'000'000'000, 7};
  LatencyHistogram merged = histogram_of(a, 1'000'000);
  merge(merged, histogram_of(b, 1'000'000));
  std::vector<std::uint64_t> all = a;
  all.insert(all.end(), b.begin(), b.end());
  EXPECT_EQ(merged, histogram_of(all, 1'000'000));
}

TEST(LatencyHistogramTest, FromDenseKeepsOnlyNonEmptyBuckets) {
  std::vector<std::uint64_t> dense(latency_bucket_count);
  dense[3] = 2;
  dense[100] = 5;
  LatencyHistogram h = from_dense(7, 1000, 500, 1, dense);
  ASSERT_EQ(h.buckets.size(), 2u);
  EXPECT_EQ(h.buckets[0], (std::pair<std::uint32_t, std::uint64_t>{3, 2}));
  EXPECT_EQ(h.buckets[1], (std::pair<std::uint32_t, std::uint64_t>{100, 5}));
}

TEST(TierTest, GradesAgainstTheThresholds) {
  const std::array<std::uint64_t, 5> tiers{100'000'000, 500'000'000, 2'000'000'000, 5'000'000'000, 10'000'000'000};
  EXPECT_EQ(grade(30'000'000, tiers), Tier::t1);
  EXPECT_EQ(grade(100'000'000, tiers), Tier::t1) << "a threshold is inclusive";
  EXPECT_EQ(grade(150'000'000, tiers), Tier::t2);
  EXPECT_EQ(grade(700'000'000, tiers), Tier::t3);
  EXPECT_EQ(grade(11'000'000'000, tiers), std::nullopt);
  EXPECT_EQ(parse_tier("T3"), Tier::t3);
  EXPECT_EQ(parse_tier("T6"), std::nullopt);
  EXPECT_EQ(to_string(Tier::t5), "T5");
}

TEST(FormatNs, ThreeSignificantDigits) {
  EXPECT_EQ(format_ns(812'000'000), "812ms");
  EXPECT_EQ(format_ns(1'250'000'000), "1.25s");
  EXPECT_EQ(format_ns(35'000), "35us");
  EXPECT_EQ(format_ns(12'345'678), "12.3ms");
  EXPECT_EQ(format_ns(850), "0.85us");
}

}  // namespace
}  // namespace perfwatch::profile
