#include "common/latency.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace perfwatch::profile {

std::uint32_t latency_bucket(std::uint64_t ns) { return lat_bucket(ns); }

std::uint64_t latency_bucket_value(std::uint32_t bucket) {
  return lat_bucket_lower(bucket) + lat_bucket_width(bucket) / 2;
}

std::uint64_t percentile(const LatencyHistogram& h, double q) {
  if (h.count == 0) return 0;
  // Nearest rank: the smallest value with at least q of the calls at or below it.
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(h.count))));
  if (rank >= h.count) return h.max_ns;  // the slowest call is known exactly
  std::uint64_t seen = 0;
  for (const auto& [bucket, count] : h.buckets) {
    seen += count;
    if (seen >= rank) return std::min(latency_bucket_value(bucket), h.max_ns);
  }
  return h.max_ns;
}

void merge(LatencyHistogram& a, const LatencyHistogram& b) {
  a.count += b.count;
  a.sum_ns += b.sum_ns;
  a.max_ns = std::max(a.max_ns, b.max_ns);
  a.slow += b.slow;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
  out.reserve(a.buckets.size() + b.buckets.size());
  auto i = a.buckets.cbegin();
  auto j = b.buckets.cbegin();
  while (i != a.buckets.cend() || j != b.buckets.cend()) {
    if (j == b.buckets.cend() || (i != a.buckets.cend() && i->first < j->first)) {
      out.push_back(*i++);
    } else if (i == a.buckets.cend() || j->first < i->first) {
      out.push_back(*j++);
    } else {
      out.emplace_back(i->first, i->second + j->second);
      ++i;
      ++j;
    }
  }
  a.buckets = std::move(out);
}

LatencyHistogram from_dense(std::uint64_t count, std::uint64_t sum_ns, std::uint64_t max_ns, std::uint64_t slow,
                            std::span<const std::uint64_t> buckets) {
  LatencyHistogram h{count, sum_ns, max_ns, slow, {}};
  for (std::uint32_t i = 0; i < buckets.size() && i < latency_bucket_count; ++i)
    if (buckets[i] != 0) h.buckets.emplace_back(i, buckets[i]);
  return h;
}

std::string format_ns(double ns) {
  char buf[32];
  if (ns < 1e6)
    std::snprintf(buf, sizeof buf, "%.3gus", ns / 1e3);
  else if (ns < 1e9)
    std::snprintf(buf, sizeof buf, "%.3gms", ns / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.3gs", ns / 1e9);
  return buf;
}

std::string_view to_string(Tier tier) {
  static constexpr std::string_view names[] = {"", "T1", "T2", "T3", "T4", "T5"};
  return names[static_cast<std::size_t>(tier)];
}

std::optional<Tier> parse_tier(std::string_view text) {
  for (int i = 1; i <= 5; ++i)
    if (text == to_string(static_cast<Tier>(i))) return static_cast<Tier>(i);
  return std::nullopt;
}

std::optional<Tier> grade(std::uint64_t ns, std::span<const std::uint64_t, 5> tier_thresholds_ns) {
  for (std::size_t i = 0; i < tier_thresholds_ns.size(); ++i)
    if (ns <= tier_thresholds_ns[i]) return static_cast<Tier>(i + 1);
  return std::nullopt;
}

Verdict judge(const LatencyHistogram& h, std::uint64_t threshold_ns, std::span<const std::uint64_t, 5> tier_thresholds_ns) {
  const std::uint64_t p99 = percentile(h, 0.99);
  return {p99 <= threshold_ns, grade(p99, tier_thresholds_ns)};
}

std::string grade_text(const Verdict& v) { return v.grade ? std::string(to_string(*v.grade)) : ">T5"; }

bool DenseHistogram::record(std::uint64_t ns, std::uint64_t weight, std::uint64_t threshold_ns) {
  std::uint64_t count = 0, added = 0, sum = 0;
  if (__builtin_add_overflow(count_, weight, &count) || __builtin_mul_overflow(ns, weight, &added) ||
      __builtin_add_overflow(sum_ns_, added, &sum) || count > max_total || sum > max_total)
    return false;
  count_ = count;
  sum_ns_ = sum;
  max_ns_ = std::max(max_ns_, ns);
  if (ns > threshold_ns) slow_ += weight;
  buckets_[lat_bucket(ns)] += weight;
  return true;
}

LatencyHistogram DenseHistogram::take() {
  LatencyHistogram h = from_dense(count_, sum_ns_, max_ns_, slow_, buckets_);
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = sum_ns_ = max_ns_ = slow_ = 0;
  return h;
}

}  // namespace perfwatch::profile
