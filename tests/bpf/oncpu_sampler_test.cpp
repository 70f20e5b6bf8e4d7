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
  test::PeerSamples peer(kHz);
  ASSERT_TRUE(watched_->watch(child.pid(), 7, 0, true).ok());
  sampler_->drain();  // start a clean window
  peer.take();
  std::uint64_t cpu_before = test::cpu_time_ns(child.pid());
  std::this_thread::sleep_for(2s);
  DrainResult drained = sampler_->drain();
  const auto peer_samples = static_cast<double>(peer.take()[child.pid()]);
  std::uint64_t cpu_ns = test::cpu_time_ns(child.pid()) - cpu_before;

  // cpu-clock fires every 1/kHz s of CPU time: the child's samples are those the kernel takes of it at kHz,
  // as peer perf events at kHz count them (on a real CPU about CPU time x kHz; an emulated one whose host
  // is busy delivers fewer, see PeerSamples), and never more than CPU time x kHz.
  const double at_rate = static_cast<double>(cpu_ns) * kHz / 1e9;
  const std::uint64_t samples = test::total_count(drained, child.pid());
  std::printf("child: %lu samples, the peer %.0f, CPU time x kHz %.0f\n", static_cast<unsigned long>(samples),
              peer_samples, at_rate);
  ASSERT_GT(peer_samples, kHz / 5) << "the child barely ran";
  // Within a quarter: on real CPUs the two agree within a few samples, but emulated ones deliver each
  // per-CPU timer's expiries late by a varying amount, and how many of them a timer loses depends on its
  // phase (the sampler's and the peer's differ): 6% apart measured in the kernel matrix's guests. A wrong
  // frequency, samples counted twice or a CPU without the sampler's event are further off.
  EXPECT_NEAR(static_cast<double>(samples), peer_samples, 0.25 * peer_samples + 10);
  EXPECT_LE(static_cast<double>(samples), 1.05 * at_rate + 10);
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
  // Enough samples for the shares below; how many a second of read() yields is the rate test's business
  // (an emulated CPU beside other work takes half or fewer).
  ASSERT_GT(samples, kHz / 5);
  EXPECT_GE(with_kernel, samples / 2) << "zeroing 1 MiB buffers should keep the child mostly in the kernel";
  EXPECT_GE(user_in_reader, with_kernel * 9 / 10);
}

TEST_F(OncpuSamplerTest, UnwatchedProcessGetsNoSamples) {
  Child watched([] { pw_test_spin(); });
  Child unwatched([] { pw_test_spin(); });
  ASSERT_TRUE(watched_->watch(watched.pid(), 3, 0, true).ok());
  test::PeerSamples peer(kHz);
  sampler_->drain();
  peer.take();
  std::this_thread::sleep_for(1s);
  DrainResult drained = sampler_->drain();
  auto taken = peer.take();
  const auto watched_expected = static_cast<double>(taken[watched.pid()]);
  const auto unwatched_expected = static_cast<double>(taken[unwatched.pid()]);

  ASSERT_GT(watched_expected, 50) << "the watched child barely ran";
  ASSERT_GT(unwatched_expected, 50) << "the unwatched child barely ran";
  // Wide bounds for emulated CPUs: see WatchedButUnprofiledProcessIsCountedNotSampled.
  EXPECT_NEAR(static_cast<double>(test::total_count(drained, watched.pid())), watched_expected,
              0.5 * watched_expected + 10);
  EXPECT_EQ(test::total_count(drained, unwatched.pid()), 0u);
  // Those of every other process too, idle CPUs included.
  EXPECT_GT(static_cast<double>(drained.not_watched), 0.5 * unwatched_expected - 10)
      << "the unwatched child's samples are counted as skipped";

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
  test::PeerSamples peer(kHz);
  sampler_->drain();
  peer.take();
  std::this_thread::sleep_for(1s);
  DrainResult drained = sampler_->drain();
  auto taken = peer.take();
  const auto profiled_expected = static_cast<double>(taken[profiled.pid()]);
  const auto unprofiled_expected = static_cast<double>(taken[unprofiled.pid()]);
  const auto profiled_samples = static_cast<double>(test::total_count(drained, profiled.pid()));
  const auto skipped = static_cast<double>(drained.not_profiled);
  std::printf("profiled: %.0f samples, the peer %.0f; unprofiled: %.0f skipped, the peer %.0f\n", profiled_samples,
              profiled_expected, skipped, unprofiled_expected);

  EXPECT_EQ(test::total_count(drained, unprofiled.pid()), 0u);
  // Against what the kernel's cpu-clock took of each child at kHz (peer perf events; see PeerSamples for
  // why not CPU time x kHz). Within a few samples on real CPUs; with two busy children on two emulated
  // CPUs the sampler's and the peer's timers, of different phases, lost different shares of their late
  // expiries: up to 31% apart measured in the kernel matrix's guests. The bounds still tell the child's
  // samples from none, from twice as many, and from every process's.
  ASSERT_GT(profiled_expected, 50) << "the profiled child barely ran";
  ASSERT_GT(unprofiled_expected, 50) << "the unprofiled child barely ran";
  EXPECT_NEAR(profiled_samples, profiled_expected, 0.5 * profiled_expected + 10);
  EXPECT_NEAR(skipped, unprofiled_expected, 0.5 * unprofiled_expected + 10)
      << "the unprofiled child's samples, and only those, are counted as skipped";
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

  EXPECT_GT(drained_counts, kHz / 2) << "too few samples raced the flips";
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
