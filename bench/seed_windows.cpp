// Seeds a perfwatch database with synthetic but realistically shaped profile windows, through the
// real storage writer (WindowWriter -> PgStore), then builds their rollups as perfwatchd's rollup
// worker would; for bench/dashboard_api.py.
//   seed_windows URI HOST TARGET END_UNIX_SECONDS HOURS [WINDOW_SECONDS=10] [HZ=99]
// Each window holds HZ * WINDOW_SECONDS samples (one busy CPU) drawn from 3000 call stacks with
// Zipf-distributed popularity (a few hot paths, a long tail), 8 to 40 frames deep, over 1200
// functions of every kind (python, native, kernel); about 300 distinct stacks land in each window.
// The target has three operations timed every window, log-normally around their median: a lookup
// (T1, 200 calls of ~20 ms a window), a file read (T2, 50 of ~120 ms) and a layer load (T3, 10 of
// ~700 ms), so a window stores ~40-60 latency buckets per operation.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "common/latency.h"
#include "storage/rollups.h"
#include "storage/window_writer.h"

using namespace perfwatch;

namespace {

profile::Profile stack_pool(std::mt19937_64& rng) {
  profile::Profile pool;
  for (int i = 0; i < 1200; ++i) {
    const auto kind = i < 400 ? profile::FrameKind::python : i < 1000 ? profile::FrameKind::native : profile::FrameKind::kernel;
    const std::string module = kind == profile::FrameKind::python ? "/srv/app/module" + std::to_string(i % 60) + ".py:" + std::to_string(10 + i)
                               : kind == profile::FrameKind::native ? "/usr/lib/libapp" + std::to_string(i % 12) + ".so"
                                                                    : "[kernel]";
    pool.frames.push_back({kind, "function_" + std::to_string(i), module});
  }
  // Stacks share prefixes as real ones do: each extends a random earlier stack or starts at a root.
  std::uniform_int_distribution<int> depth(8, 40), python(0, 399), native(400, 999), kernel(1000, 1199);
  for (int s = 0; s < 3000; ++s) {
    profile::Stack st;
    if (s > 20 && rng() % 4 != 0) {
      const auto& parent = pool.stacks[rng() % pool.stacks.size()].frame_ids;
      st.frame_ids.assign(parent.begin(), parent.begin() + static_cast<long>(std::min<std::size_t>(parent.size(), 4 + rng() % 12)));
    } else {
      st.frame_ids = {static_cast<std::uint32_t>(native(rng) % 3 + 400)};  // a few process roots
    }
    const int want = depth(rng);
    while (static_cast<int>(st.frame_ids.size()) < want - 3) st.frame_ids.push_back(static_cast<std::uint32_t>(rng() % 2 ? python(rng) : native(rng)));
    if (rng() % 3 == 0)
      for (int k = 0; k < 3; ++k) st.frame_ids.push_back(static_cast<std::uint32_t>(kernel(rng)));
    pool.stacks.push_back(std::move(st));
  }
  return pool;
}

struct Operation {
  std::string name;
  profile::Tier tier;
  std::uint64_t threshold_ns;
  double median_ms;
  int calls;
};
const Operation operations[] = {{"lookup", profile::Tier::t1, 100'000'000, 20, 200},
                                {"read_file", profile::Tier::t2, 500'000'000, 120, 50},
                                {"load_layer", profile::Tier::t3, 2'000'000'000, 700, 10}};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: seed_windows URI HOST TARGET END_UNIX_SECONDS HOURS [WINDOW_SECONDS] [HZ]\n");
    return 2;
  }
  const std::string uri = argv[1], host = argv[2], target = argv[3];
  const long end = std::atol(argv[4]);
  const double hours = std::atof(argv[5]);
  const long window_s = argc > 6 ? std::atol(argv[6]) : 10;
  const long hz = argc > 7 ? std::atol(argv[7]) : 99;

  std::mt19937_64 rng(42);
  const profile::Profile pool = stack_pool(rng);
  std::vector<double> weights;
  for (std::size_t i = 0; i < pool.stacks.size(); ++i) weights.push_back(1.0 / std::pow(static_cast<double>(i + 1), 1.1));
  std::discrete_distribution<std::size_t> pick(weights.begin(), weights.end());

  storage::WriterOptions options;
  options.connect = {uri, ""};
  options.spool_dir = "/tmp/perfwatch-seed-spool-" + std::to_string(getpid());
  storage::WindowWriter writer(options, storage::PgStore::factory(options.connect));
  const long windows = static_cast<long>(hours * 3600 / window_s);
  for (long w = 0; w < windows; ++w) {
    profile::WindowProfile window;
    window.host = host;
    window.start = profile::TimePoint(std::chrono::seconds(end - (windows - w) * window_s));
    window.end = window.start + std::chrono::seconds(window_s);
    window.profile.frames = pool.frames;
    std::vector<std::uint64_t> counts(pool.stacks.size());
    for (long i = 0; i < hz * window_s; ++i) ++counts[pick(rng)];
    for (std::size_t s = 0; s < counts.size(); ++s)
      if (counts[s]) window.profile.stacks.push_back({0, pool.stacks[s].frame_ids, counts[s]});
    window.targets = {{target, {4242}, static_cast<std::uint64_t>(hz * window_s)}};
    for (const Operation& op : operations) {
      profile::DenseHistogram h;
      std::lognormal_distribution<double> ms(std::log(op.median_ms), 0.5);
      // A few thousand calls of milliseconds each stay far below the histogram's bound.
      for (int i = 0; i < op.calls; ++i)
        static_cast<void>(h.record(static_cast<std::uint64_t>(ms(rng) * 1e6), 1, op.threshold_ns));
      window.operations.push_back({0, op.name, profile::OperationSource::uprobe, "/srv/app/bin/app:" + op.name, op.tier,
                                   op.threshold_ns, h.take()});
    }
    window.stats.samples = static_cast<std::uint64_t>(hz * window_s);
    writer.enqueue(std::move(window));
    if (w % 500 == 499) writer.flush(std::chrono::minutes(10));  // bounded memory
  }
  writer.flush(std::chrono::minutes(10));
  const storage::WriterStats stats = writer.stats();
  std::printf("seeded %llu windows (%llu errors)\n", static_cast<unsigned long long>(stats.written),
              static_cast<unsigned long long>(stats.write_errors));
  std::filesystem::remove_all(options.spool_dir);
  if (stats.written != static_cast<std::uint64_t>(windows)) return 1;
  // What perfwatchd's rollup worker does in the background, done here until nothing is left.
  auto conn = storage::connect_database(options.connect, false);
  if (!conn) return 1;
  std::uint64_t built = 0;
  for (;;) {
    auto r = storage::refresh_rollups(**conn, profile::TimePoint(std::chrono::seconds(end + 3600)));
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
    built += r->buckets_built;
    if (r->buckets_built == 0) break;
  }
  std::printf("built %llu rollup buckets\n", static_cast<unsigned long long>(built));
  return 0;
}
