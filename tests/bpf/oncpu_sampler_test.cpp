#include "collector/oncpu_sampler.h"

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "tests/bpf/support.h"

namespace perfwatch::collector {
namespace {

using namespace std::chrono_literals;
using test::Child;

constexpr std::uint32_t kHz = 999;

class OncpuSamplerTest : public test::BpfTest {
 protected:
  void SetUp() override {
    test::BpfTest::SetUp();
    if (HasFatalFailure()) return;
    OncpuOptions options;
    options.frequency_hz = kHz;
    watched_ = test::create_watched_map();
    auto created = OncpuSampler::create(watched_->fd(), options);
    ASSERT_TRUE(created.ok()) << created.error().message;
    sampler_ = std::move(*created);
  }

  std::unique_ptr<WatchedMap> watched_;
  std::unique_ptr<OncpuSampler> sampler_;
};

TEST(ParseCpuList, RangesAndSingles) {
  auto cpus = parse_cpu_list("0-2,5,7-8\n");
  ASSERT_TRUE(cpus.ok()) << cpus.error().message;
  EXPECT_EQ(*cpus, (std::vector<int>{0, 1, 2, 5, 7, 8}));
  EXPECT_EQ(*parse_cpu_list("0"), std::vector<int>{0});
  EXPECT_FALSE(parse_cpu_list("").ok());
  EXPECT_FALSE(parse_cpu_list("3-1").ok());
  EXPECT_FALSE(parse_cpu_list("0-x").ok());
  EXPECT_FALSE(parse_cpu_list("1,,2").ok());
}

TEST_F(OncpuSamplerTest, SamplesWatchedBusyChildAtTheRequestedRate) {
  Child child([] { pw_test_spin(); });
  ASSERT_TRUE(watched_->watch(child.pid(), 7, 0, true).ok());
  sampler_->drain();  // start a clean window
  std::uint64_t cpu_before = test::cpu_time_ns(child.pid());
  std::this_thread::sleep_for(2s);
  DrainResult drained = sampler_->drain();
  std::uint64_t cpu_ns = test::cpu_time_ns(child.pid()) - cpu_before;

  // cpu-clock fires every 1/kHz s of CPU time, so the child's share of samples follows its CPU
  // time (other work on this machine may take some of it).
  double expected = static_cast<double>(cpu_ns) * kHz / 1e9;
  std::uint64_t samples = test::total_count(drained, child.pid());
  EXPECT_GT(expected, 0.5 * 2 * kHz) << "the child barely ran";
  EXPECT_NEAR(static_cast<double>(samples), expected, 0.15 * expected + 20);
  EXPECT_EQ(drained.stats.samples, samples);

  test::AddressRange spin = test::function_range(reinterpret_cast<const void*>(&pw_test_spin));
  std::uint64_t in_spin = 0;
  for (const RawStack& s : drained.stacks) {
    ASSERT_EQ(s.tgid, child.pid());
    EXPECT_EQ(s.generation, 7u);
    ASSERT_FALSE(s.user_ips.empty());
    if (spin.contains(s.user_ips.front())) in_spin += s.count;
  }
  EXPECT_GE(in_spin, samples * 9 / 10) << "user stack leaves should be inside pw_test_spin";
}

TEST_F(OncpuSamplerTest, KernelStacksForChildInSyscalls) {
  Child child([] { pw_test_read_zero(1 << 20); });
  ASSERT_TRUE(watched_->watch(child.pid(), 1, 0, true).ok());
  sampler_->drain();
  std::this_thread::sleep_for(1s);
  DrainResult drained = sampler_->drain();

  test::AddressRange reader = test::function_range(reinterpret_cast<const void*>(&pw_test_read_zero));
  std::uint64_t samples = test::total_count(drained, child.pid());
  std::uint64_t with_kernel = 0, user_in_reader = 0;
  for (const RawStack& s : drained.stacks) {
    ASSERT_FALSE(s.user_ips.empty());
    if (s.kernel_ips.empty()) continue;
    with_kernel += s.count;
    EXPECT_GE(s.kernel_ips.front(), 0xffff800000000000ull) << "not a kernel address";
    if (reader.contains(s.user_ips.front())) user_in_reader += s.count;
  }
  ASSERT_GT(samples, kHz / 2);
  EXPECT_GE(with_kernel, samples / 2) << "zeroing 1 MiB buffers should keep the child mostly in the kernel";
  EXPECT_GE(user_in_reader, with_kernel * 9 / 10);
}

TEST_F(OncpuSamplerTest, UnwatchedProcessGetsNoSamples) {
  Child watched([] { pw_test_spin(); });
  Child unwatched([] { pw_test_spin(); });
  ASSERT_TRUE(watched_->watch(watched.pid(), 3, 0, true).ok());
  sampler_->drain();
  std::this_thread::sleep_for(1s);
  DrainResult drained = sampler_->drain();

  EXPECT_GT(test::total_count(drained, watched.pid()), kHz / 4);
  EXPECT_EQ(test::total_count(drained, unwatched.pid()), 0u);
  EXPECT_GT(drained.not_watched, kHz / 4) << "the unwatched child's samples are counted as skipped";

  watched_->unwatch(watched.pid());
  sampler_->drain();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(test::total_count(sampler_->drain(), watched.pid()), 0u) << "unwatch stops sampling";
}

// A target with `profile: false` is watched (its other measurements filter on it) but never sampled.
TEST_F(OncpuSamplerTest, WatchedButUnprofiledProcessIsCountedNotSampled) {
  Child profiled([] { pw_test_spin(); });
  Child unprofiled([] { pw_test_spin(); });
  ASSERT_TRUE(watched_->watch(profiled.pid(), 1, 0, true).ok());
  ASSERT_TRUE(watched_->watch(unprofiled.pid(), 2, 1, false).ok());
  sampler_->drain();
  const std::uint64_t profiled_cpu = test::cpu_time_ns(profiled.pid());
  const std::uint64_t unprofiled_cpu = test::cpu_time_ns(unprofiled.pid());
  std::this_thread::sleep_for(1s);
  DrainResult drained = sampler_->drain();
  const double profiled_s = static_cast<double>(test::cpu_time_ns(profiled.pid()) - profiled_cpu) / 1e9;
  const double unprofiled_s = static_cast<double>(test::cpu_time_ns(unprofiled.pid()) - unprofiled_cpu) / 1e9;
  const auto profiled_samples = static_cast<double>(test::total_count(drained, profiled.pid()));

  EXPECT_EQ(test::total_count(drained, unprofiled.pid()), 0u);
  ASSERT_GT(profiled_samples, 20) << "the profiled child barely ran";
  ASSERT_GT(unprofiled_s, 0.02) << "the unprofiled child barely ran";
  // Both children spin alike: the skipped samples come at about the profiled child's rate per CPU
  // second (a rate, not kHz: a busy machine delivers fewer samples than CPU time x kHz). Within a few
  // percent on real CPUs; the bounds are wide for emulated ones (the kernel matrix's TCG guests), which
  // deliver cpu-clock samples unevenly, and still tell the child's samples from none or from every
  // other process's (those of idle CPUs included, counted as not watched).
  const double profiled_rate = profiled_samples / profiled_s;
  const double skipped_rate = static_cast<double>(drained.not_profiled) / unprofiled_s;
  EXPECT_GT(skipped_rate, 0.25 * profiled_rate) << "the unprofiled child's samples are counted as skipped";
  EXPECT_LT(skipped_rate, 2.5 * profiled_rate) << "only the unprofiled child's samples are counted as skipped";
}

// Epoch flips race real samples on both CPUs: whatever was counted is drained exactly once.
TEST_F(OncpuSamplerTest, WindowBoundariesLoseAndDuplicateNothing) {
  Child spinner([] { pw_test_spin(); });
  Child reader([] { pw_test_read_zero(1 << 20); });
  ASSERT_TRUE(watched_->watch(spinner.pid(), 1, 0, true).ok());
  ASSERT_TRUE(watched_->watch(reader.pid(), 2, 0, true).ok());

  // Stack-map hash collisions are a normal (counted) loss; nothing else may go missing.
  std::uint64_t drained_counts = 0, window_samples = 0, windows = 0, lost = 0;
  auto account = [&](const DrainResult& d) {
    std::uint64_t counts = 0;
    for (const RawStack& s : d.stacks) counts += s.count;
    EXPECT_EQ(counts, d.stats.samples) << "window " << windows;
    drained_counts += counts;
    window_samples += d.stats.samples;
    lost += d.stats.lost_stack_error + d.stats.lost_map_full + d.stats.lost_unresolved;
    ++windows;
  };
  auto end = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + windows % 3 * 25));
    account(sampler_->drain());
  }
  spinner.kill();
  reader.kill();
  watched_->unwatch(spinner.pid());
  watched_->unwatch(reader.pid());
  account(sampler_->drain());

  EXPECT_GT(drained_counts, 3 * kHz / 2);
  EXPECT_EQ(drained_counts, window_samples);
  EXPECT_EQ(drained_counts, sampler_->total_samples()) << "the BPF samples counter, read independently";
  EXPECT_EQ(lost, 0u);
}

struct RunStats {
  std::uint64_t run_time_ns = 0;
  std::uint64_t run_cnt = 0;
};

RunStats run_stats(int prog_fd) {
  bpf_prog_info info{};
  std::uint32_t len = sizeof(info);
  EXPECT_EQ(bpf_obj_get_info_by_fd(prog_fd, &info, &len), 0);
  return {info.run_time_ns, info.run_cnt};
}

// In-kernel cost of a sample that walks both stacks, from the kernel's own run-time stats:
// children in read() (kernel stack) with the deep user stack of the gtest process they were
// forked from. Runs that skip an unwatched process (idle, other load on this machine) cost
// much less and would dilute the average, so their cost is measured first (same children,
// unwatched) and taken out.
double ns_per_watched_sample(WatchedMap& watched_map, OncpuSampler& sampler, std::size_t read_bytes) {
  std::vector<std::unique_ptr<Child>> children;
  for (int i = 0; i < 2; ++i) children.push_back(std::make_unique<Child>([=] { pw_test_read_zero(read_bytes); }));

  auto measure = [&](std::chrono::milliseconds duration, RunStats& runs) {
    sampler.drain();
    RunStats before = run_stats(sampler.prog_fd());
    std::this_thread::sleep_for(duration);
    RunStats after = run_stats(sampler.prog_fd());
    runs = {after.run_time_ns - before.run_time_ns, after.run_cnt - before.run_cnt};
    return sampler.drain();
  };
  RunStats unwatched_runs, runs;
  measure(1s, unwatched_runs);
  for (const auto& child : children) EXPECT_TRUE(watched_map.watch(child->pid(), 1, 0, true).ok());
  DrainResult drained = measure(3s, runs);

  double unwatched_ns = static_cast<double>(unwatched_runs.run_time_ns) / static_cast<double>(unwatched_runs.run_cnt);
  std::uint64_t watched = runs.run_cnt - drained.not_watched;
  std::uint64_t with_kernel = 0, total = 0;
  for (const RawStack& s : drained.stacks) {
    total += s.count;
    if (!s.kernel_ips.empty()) with_kernel += s.count;
  }
  EXPECT_GT(watched, kHz);
  EXPECT_GE(with_kernel, total / 2) << "most samples should be in the kernel";
  double ns = (static_cast<double>(runs.run_time_ns) - unwatched_ns * static_cast<double>(drained.not_watched)) /
              static_cast<double>(watched);
  std::printf("oncpu read(%zu B): %.0f ns per watched sample (%lu watched, %.0f%% with a kernel stack); "
              "%.0f ns per unwatched run; %.0f ns per run overall\n",
              read_bytes, ns, static_cast<unsigned long>(watched), 100.0 * with_kernel / std::max<std::uint64_t>(total, 1),
              unwatched_ns, static_cast<double>(runs.run_time_ns) / static_cast<double>(runs.run_cnt));
  return ns;
}

TEST_F(OncpuSamplerTest, CostPerSampleWithBothStacks) {
  int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  ASSERT_GE(stats_fd, 0) << "BPF_ENABLE_STATS failed";
  double ns = ns_per_watched_sample(*watched_, *sampler_, 64 << 10);
  double cache_thrashing_ns = ns_per_watched_sample(*watched_, *sampler_, 1 << 20);
  close(stats_fd);
  RecordProperty("ns_per_sample", static_cast<int>(ns));
  RecordProperty("ns_per_sample_cache_thrashing", static_cast<int>(cache_thrashing_ns));
  // The target is 3 us. On the CI VM single runs of the same build read 1.7-5.3 us (host noise),
  // so this only guards against gross regressions; bench/ tracks the number itself.
  EXPECT_LE(ns, 10000.0);
  EXPECT_LE(cache_thrashing_ns, 15000.0);
}

}  // namespace
}  // namespace perfwatch::collector
