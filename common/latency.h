#pragma once
// Latency histograms in the bucket scheme of probes/latency_hist.h, shared by every source (BPF
// probes, StatsD) and by storage, which merges them over any time range by adding bucket counts.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "probes/latency_hist.h"

namespace perfwatch::profile {

inline constexpr std::uint32_t latency_bucket_count = LAT_BUCKETS;
inline constexpr int latency_scheme_version = LAT_SCHEME_VERSION;

// Sparse: only non-empty buckets, by ascending index. Counts, sum and max are exact; percentiles
// come from the buckets (within 3.2% of the true value, see latency_hist.h).
struct LatencyHistogram {
  std::uint64_t count = 0;
  std::uint64_t sum_ns = 0;
  std::uint64_t max_ns = 0;
  std::uint64_t slow = 0;  // calls longer than the operation's threshold
  std::vector<std::pair<std::uint32_t, std::uint64_t>> buckets;
  bool operator==(const LatencyHistogram&) const = default;
};

std::uint32_t latency_bucket(std::uint64_t ns);
// The value a bucket stands for: its midpoint.
std::uint64_t latency_bucket_value(std::uint32_t bucket);

// Nearest-rank percentile (q in (0, 1]) estimated from the buckets, never above max; 0 when empty.
std::uint64_t percentile(const LatencyHistogram& h, double q);
// Adds b into a (buckets merged by index).
void merge(LatencyHistogram& a, const LatencyHistogram& b);
// From a dense bucket array (as the probes fill it); false when a bucket index is out of range.
LatencyHistogram from_dense(std::uint64_t count, std::uint64_t sum_ns, std::uint64_t max_ns, std::uint64_t slow,
                            std::span<const std::uint64_t> buckets);

// "850us", "12.3ms", "1.52s": three significant digits are plenty next to 3% bucket precision.
std::string format_ns(double ns);

// Tier grading: T1..T5 thresholds, fast to slow.
enum class Tier : std::uint8_t { none = 0, t1 = 1, t2, t3, t4, t5 };
std::string_view to_string(Tier tier);  // "T1".."T5", "" for none
std::optional<Tier> parse_tier(std::string_view text);
// The fastest tier whose threshold the value stays within; nullopt when slower than T5.
std::optional<Tier> grade(std::uint64_t ns, std::span<const std::uint64_t, 5> tier_thresholds_ns);

// How an operation did over a range: it passes when its p99 stays within its threshold; the grade
// says which tier it actually performs at. The CLI and the dashboard judge alike.
struct Verdict {
  bool ok = true;
  std::optional<Tier> grade;  // the fastest tier p99 stays within; nullopt past T5
};
Verdict judge(const LatencyHistogram& h, std::uint64_t threshold_ns, std::span<const std::uint64_t, 5> tier_thresholds_ns);
std::string grade_text(const Verdict& v);  // "T1".."T5", ">T5"

// An operation's histogram as the StatsD listener fills it: dense, so recording never allocates.
class DenseHistogram {
 public:
  // Storage keeps counts and sums as signed 64-bit integers: no total may pass this.
  static constexpr std::uint64_t max_total = (std::uint64_t{1} << 63) - 1;

  DenseHistogram() : buckets_(latency_bucket_count) {}
  // `weight` calls of `ns` each; false, with nothing recorded, when the count or the sum would pass max_total.
  [[nodiscard]] bool record(std::uint64_t ns, std::uint64_t weight, std::uint64_t threshold_ns);
  // The sparse histogram, and a fresh start.
  LatencyHistogram take();
  bool empty() const { return count_ == 0; }

 private:
  std::uint64_t count_ = 0, sum_ns_ = 0, max_ns_ = 0, slow_ = 0;
  std::vector<std::uint64_t> buckets_;
};

}  // namespace perfwatch::profile
