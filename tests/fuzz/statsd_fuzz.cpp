// The StatsD datagram parser and the histogram arithmetic behind it: one datagram through the recorder the
// listener drives, then the window's histograms and counters are checked and merged.
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <string_view>

#include "collector/statsd.h"
#include "common/latency.h"
#include "tests/fuzz/check.h"

namespace {

using perfwatch::collector::StatsdRecorder;
using perfwatch::profile::DenseHistogram;
using perfwatch::profile::LatencyHistogram;


void check_histogram(const LatencyHistogram& h) {
  std::uint64_t in_buckets = 0;
  std::uint32_t previous = 0;
  for (const auto& [bucket, count] : h.buckets) {
    FUZZ_CHECK(bucket < perfwatch::profile::latency_bucket_count && (in_buckets == 0 || bucket > previous) && count > 0);
    previous = bucket;
    in_buckets += count;
  }
  FUZZ_CHECK(in_buckets == h.count && h.slow <= h.count);
  FUZZ_CHECK(h.count <= DenseHistogram::max_total && h.sum_ns <= DenseHistogram::max_total);
  for (const double q : {0.5, 0.95, 0.99, 1.0}) FUZZ_CHECK(perfwatch::profile::percentile(h, q) <= h.max_ns);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  StatsdRecorder recorder;
  // Short names, so that inputs reach the timers and the counters often.
  recorder.set_operations({{0, "a", 1'000'000}, {1, "b.c", 100'000'000}});
  recorder.set_counters({{0, "h"}, {1, "m"}});
  const std::string_view datagram(reinterpret_cast<const char*>(data), size);
  // Twice, so that the sums of one window can run into their bounds.
  recorder.handle(datagram);
  recorder.handle(datagram);
  const perfwatch::collector::StatsdDrain drained = recorder.drain();
  const auto& stats = drained.stats;
  FUZZ_CHECK(stats.statsd_packets == 2);
  LatencyHistogram merged;
  for (const auto& [index, h] : drained.histograms) {
    FUZZ_CHECK(index <= 1);
    check_histogram(h);
    perfwatch::profile::merge(merged, h);
  }
  // Storage merges windows over ranges in unsigned arithmetic; within one range it stays exact.
  std::uint64_t count = 0;
  for (const auto& [index, h] : drained.histograms) count += h.count;
  FUZZ_CHECK(merged.count == count);
  for (const auto& [index, sum] : drained.counters) FUZZ_CHECK(index <= 1 && sum <= (std::uint64_t{1} << 53));
  FUZZ_CHECK(recorder.drain().histograms.empty());
  return 0;
}
