#include <gtest/gtest.h>

#include <pqxx/nontransaction>
#include <pqxx/result>

#include "storage/migrations.h"
#include "storage/pg_codec.h"
#include "storage/query.h"
#include "storage/store.h"
#include "tests/storage/support.h"

namespace perfwatch::storage {
namespace {

using namespace std::chrono_literals;
using test::at;
using test::sample_window;

constexpr std::int64_t day = 86400;
constexpr std::int64_t t0 = 1'763'942'400;  // 2025-11-24T00:00:00Z

class PgStoreTest : public test::PgTest {
 protected:
  std::unique_ptr<PgStore> store() {
    auto s = PgStore::connect(connect_options());
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::unique_ptr<Query> query() {
    auto q = Query::connect(connect_options());
    EXPECT_TRUE(q.ok()) << (q.ok() ? "" : q.error().message);
    return q.ok() ? std::move(*q) : nullptr;
  }
  std::string folded(const std::string& host, const std::string& target, TimeRange range) {
    auto p = query()->profile(host, target, range);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
    return p.ok() ? profile::to_folded(*p) : "";
  }
};

TEST_F(PgStoreTest, MigrationsApplyOnceAndRecordTheirVersion) {
  auto first = connect_database(connect_options());
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(count("SELECT count(*) FROM schema_migrations"), static_cast<std::int64_t>(embedded_migrations().size()));
  auto again = migrate(**first);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0) << "a second start applies nothing";
}

TEST_F(PgStoreTest, QueryRefusesADatabasePerfwatchNeverWrote) {
  auto q = Query::connect(connect_options());
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message.find("perfwatchd has not written"), std::string::npos) << q.error().message;
}

TEST_F(PgStoreTest, WritesAWindowAndReadsItBackPerTarget) {
  auto s = store();
  ASSERT_TRUE(s->write_window(sample_window("host-a", at(t0 + 100))).ok());
  const TimeRange range{at(t0), at(t0 + day)};
  EXPECT_EQ(folded("host-a", "api", range), "main;parse;vfs_read 3\nmain;serve 2\n");
  EXPECT_EQ(folded("host-a", "worker", range), "main;loop 5\n");
  auto p = query()->profile("host-a", "api", range);
  ASSERT_TRUE(p.ok());
  bool kernel_kind = false;
  for (const auto& f : p->frames) kernel_kind |= f.name == "vfs_read" && f.kind == profile::FrameKind::kernel;
  EXPECT_TRUE(kernel_kind) << "frame kinds survive the round trip";
}

TEST_F(PgStoreTest, StoresDeployMarkersOncePerTargetAndTime) {
  auto s = store();
  profile::WindowProfile w = sample_window("host-a", at(t0 + 100));
  w.deploys = {{1, at(t0 + 105), "executable /srv/worker build-id 1a2b -> 3c4d",
                {{"executable", "/srv/worker", "build-id:1a2b", "build-id:3c4d"}}}};
  ASSERT_TRUE(s->write_window(w).ok());
  ASSERT_TRUE(s->write_window(w).ok()) << "a replayed window";
  EXPECT_EQ(count("SELECT count(*) FROM deploy_markers"), 1);
  auto deploys = query()->deploys("host-a", "", {at(t0), at(t0 + day)});
  ASSERT_TRUE(deploys.ok()) << deploys.error().message;
  ASSERT_EQ(deploys->size(), 1u);
  EXPECT_EQ((*deploys)[0].target, "worker");
  EXPECT_EQ((*deploys)[0].at, at(t0 + 105));
  EXPECT_EQ((*deploys)[0].summary, "executable /srv/worker build-id 1a2b -> 3c4d");
  EXPECT_EQ((*deploys)[0].changes, w.deploys[0].changes);
  EXPECT_TRUE(query()->deploys("host-a", "api", {at(t0), at(t0 + day)})->empty());
  EXPECT_TRUE(query()->deploys("host-b", "", {at(t0), at(t0 + day)})->empty());
}

TEST_F(PgStoreTest, DeduplicatesFramesAndStacksAcrossWindows) {
  auto s = store();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(s->write_window(sample_window("host-a", at(t0 + 10 * i))).ok());
  // A second writer (another daemon, or a restart) does not know what the first stored.
  ASSERT_TRUE(store()->write_window(sample_window("host-a", at(t0 + 60))).ok());
  EXPECT_EQ(count("SELECT count(*) FROM frames"), 5);
  EXPECT_EQ(count("SELECT count(*) FROM stacks"), 3);
  EXPECT_EQ(count("SELECT count(*) FROM samples"), 7 * 3);
  EXPECT_EQ(folded("host-a", "api", {at(t0), at(t0 + day)}), "main;parse;vfs_read 21\nmain;serve 14\n");
}

// One Query serves many requests (the dashboard's pool): stacks and frames it read before come from its
// cache, new ones from the database, and both kinds merge into one profile.
TEST_F(PgStoreTest, AQueryReusedAcrossNewStacksReadsEveryProfileWhole) {
  auto s = store();
  auto q = query();
  const TimeRange range{at(t0), at(t0 + day)};
  ASSERT_TRUE(s->write_window(sample_window("host-a", at(t0))).ok());
  auto first = q->profile("host-a", "api", range);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(profile::to_folded(*first), "main;parse;vfs_read 3\nmain;serve 2\n");

  profile::WindowProfile grown = sample_window("host-a", at(t0 + 10));
  const auto kernel = static_cast<std::uint32_t>(grown.profile.frames.size());
  grown.profile.frames.push_back({profile::FrameKind::kernel, "do_sys_openat2", "[kernel]"});
  grown.profile.stacks.push_back({0, {0, 1, kernel}, 4});  // a new stack, under a cached frame
  ASSERT_TRUE(s->write_window(grown).ok());
  auto second = q->profile("host-a", "api", range);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(profile::to_folded(*second), "main;parse;do_sys_openat2 4\nmain;parse;vfs_read 6\nmain;serve 4\n");
  EXPECT_EQ(profile::to_folded(*second), folded("host-a", "api", range)) << "the same as a fresh connection reads";
}

TEST_F(PgStoreTest, RewritingAWindowReplacesIt) {
  auto s = store();
  profile::WindowProfile w = sample_window("host-a", at(t0));
  ASSERT_TRUE(s->write_window(w).ok());
  w.profile.stacks[0].count = 30;
  ASSERT_TRUE(s->write_window(w).ok());  // a window replayed from the spool after a crash
  EXPECT_EQ(folded("host-a", "api", {at(t0), at(t0 + 1)}), "main;parse;vfs_read 30\nmain;serve 2\n");
  EXPECT_EQ(count("SELECT count(*) FROM windows"), 2);
}

TEST_F(PgStoreTest, HostsSharingADatabaseStayApart) {
  auto s = store();
  ASSERT_TRUE(s->write_window(sample_window("host-a", at(t0))).ok());
  profile::WindowProfile other = sample_window("host-b", at(t0));
  other.profile.stacks[0].count = 7;
  ASSERT_TRUE(store()->write_window(other).ok());
  const TimeRange range{at(t0), at(t0 + 60)};
  EXPECT_EQ(folded("host-a", "api", range), "main;parse;vfs_read 3\nmain;serve 2\n");
  EXPECT_EQ(folded("host-b", "api", range), "main;parse;vfs_read 7\nmain;serve 2\n");
  EXPECT_EQ(folded("", "api", range), "main;parse;vfs_read 10\nmain;serve 4\n") << "'' merges every host";
}

TEST_F(PgStoreTest, TimeRangesSelectWindowsByStart) {
  auto s = store();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->write_window(sample_window("h", at(t0 + 10 * i))).ok());
  EXPECT_EQ(folded("h", "worker", {at(t0 + 10), at(t0 + 20)}), "main;loop 5\n");
  EXPECT_EQ(folded("h", "worker", {at(t0 + 10), at(t0 + 21)}), "main;loop 10\n");
  EXPECT_EQ(folded("h", "worker", {at(t0 + 31), at(t0 + 99)}), "");
}

TEST_F(PgStoreTest, TargetSummariesCarryPidsAndSamples) {
  auto s = store();
  ASSERT_TRUE(s->write_window(sample_window("h", at(t0))).ok());
  profile::WindowProfile later = sample_window("h", at(t0 + 10));
  later.targets[0].pids = {102};
  ASSERT_TRUE(s->write_window(later).ok());
  auto targets = query()->targets("h", {at(t0), at(t0 + 60)});
  ASSERT_TRUE(targets.ok()) << targets.error().message;
  ASSERT_EQ(targets->size(), 2u);
  EXPECT_EQ((*targets)[0].name, "api");
  EXPECT_EQ((*targets)[0].pids, std::vector<std::int32_t>{102}) << "pids of the newest window";
  EXPECT_EQ((*targets)[0].samples, 10u);
  EXPECT_EQ((*targets)[0].windows, 2u);
  EXPECT_EQ((*targets)[0].last_window_end, at(t0 + 20));
  auto stats = query()->sampler_stats("h", {at(t0), at(t0 + 60)});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->samples, 20u) << "each window's sampler stats count once, not once per target";
  EXPECT_EQ(stats->lost_stack_collision, 2u);
}

TEST_F(PgStoreTest, PartitionsAreDailyAndRetentionDropsWholeOldDays) {
  auto s = store();
  for (int d = 0; d < 4; ++d) ASSERT_TRUE(s->write_window(sample_window("h", at(t0 + d * day + 3600))).ok());
  EXPECT_EQ(count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'samples'::regclass"), 4);
  // Keep 36 h at noon of day 3: days 0 and 1 ended before the cut-off (day 1 ends at day 2 00:00).
  auto dropped = s->apply_retention(36h, at(t0 + 3 * day + 12 * 3600));
  ASSERT_TRUE(dropped.ok()) << dropped.error().message;
  EXPECT_EQ(*dropped, 2 * 7) << "samples, windows, latency, latency_health, cache_windows, cache_health and "
                               "host_windows partitions of two days";
  EXPECT_EQ(count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'cache_windows'::regclass"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'host_windows'::regclass"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'latency'::regclass"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'samples'::regclass"), 2);
  EXPECT_EQ(folded("h", "worker", {at(t0), at(t0 + 5 * day)}), "main;loop 10\n");
  // Writing into a dropped day recreates its partition.
  ASSERT_TRUE(s->write_window(sample_window("h", at(t0 + 600))).ok());
  EXPECT_EQ(folded("h", "worker", {at(t0), at(t0 + day)}), "main;loop 5\n");
}

TEST_F(PgStoreTest, LatenciesMergeOverAnyRangeBucketByBucket) {
  auto s = store();
  profile::WindowProfile w1 = sample_window("h", at(t0 + 100));
  test::add_sample_operations(w1, {30, 30, 30, 150});
  profile::WindowProfile w2 = sample_window("h", at(t0 + 110));
  test::add_sample_operations(w2, {700, 30});
  ASSERT_TRUE(s->write_window(w1).ok());
  ASSERT_TRUE(s->write_window(w2).ok());
  ASSERT_TRUE(s->write_window(w2).ok()) << "a replayed window replaces itself";

  auto q = query();
  auto ops = q->latency("h", "api", "", {at(t0), at(t0 + day)});
  ASSERT_TRUE(ops.ok()) << ops.error().message;
  ASSERT_EQ(ops->size(), 1u) << "worker's operation is another target's";
  const OperationLatency& op = (*ops)[0];
  EXPECT_EQ(op.name, "lookup");
  EXPECT_EQ(op.source, "uprobe");
  EXPECT_EQ(op.spec, "/bin/app:lookup");
  EXPECT_EQ(op.tier, profile::Tier::t1);
  EXPECT_EQ(op.threshold_ns, 100'000'000u);
  EXPECT_EQ(op.windows, 2u);
  EXPECT_EQ(op.histogram, test::histogram_of({30, 30, 30, 150, 700, 30}, 100))
      << "the merged histogram equals one recorded from every call";

  auto second = q->latency("h", "api", "lookup", {at(t0 + 105), at(t0 + day)});
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].histogram.count, 2u) << "the range selects windows by start";
  EXPECT_TRUE(q->latency("h", "api", "nope", {at(t0), at(t0 + day)})->empty());

  auto series = q->latency_series("h", "worker", "reads", {at(t0), at(t0 + day)});
  ASSERT_TRUE(series.ok()) << series.error().message;
  ASSERT_EQ(series->size(), 1u);
  EXPECT_EQ((*series)[0].name, "reads");
  const std::vector<storage::LatencyPoint>& points = (*series)[0].points;
  ASSERT_EQ(points.size(), 2u) << "a point per window";
  EXPECT_EQ(points[0].start, at(t0 + 100));
  EXPECT_EQ(points[0].calls, 3u);
  EXPECT_EQ(points[0].slow, 1u);
  EXPECT_EQ(points[0].threshold_ns, 20'000'000u);
  EXPECT_NEAR(static_cast<double>(points[0].max_ns), 30e6, 1);
  EXPECT_EQ(count("SELECT count(*) FROM latency WHERE slow_fraction > 0.33 AND slow_fraction < 0.34"), 2)
      << "worker's reads: 1 of 3 calls over 20 ms, per window";

  auto health = q->latency_health("h", {at(t0), at(t0 + day)});
  ASSERT_TRUE(health.ok()) << health.error().message;
  EXPECT_EQ(health->probe_calls, 14u);
  EXPECT_EQ(health->statsd_malformed, 6u);
}

TEST_F(PgStoreTest, CacheHitRatesSumOverRangesWithTheNewestState) {
  auto s = store();
  profile::WindowProfile cold = sample_window("h", at(t0 + 100));
  test::add_sample_caches(cold, 2048, 2050);  // readahead: more pages added than looked up
  profile::WindowProfile warm = sample_window("h", at(t0 + 110));
  test::add_sample_caches(warm, 2048, 0);
  warm.cache.llc = {false, "unsupported: newest"};
  ASSERT_TRUE(s->write_window(cold).ok());
  ASSERT_TRUE(s->write_window(warm).ok());
  ASSERT_TRUE(s->write_window(warm).ok()) << "a replayed window replaces itself";

  auto q = query();
  auto caches = q->caches("h", "api", {at(t0), at(t0 + day)});
  ASSERT_TRUE(caches.ok()) << caches.error().message;
  ASSERT_EQ(caches->size(), 1u) << "the lru cache is worker's";
  const CacheSummary& page = (*caches)[0];
  EXPECT_EQ(page.name, "page_cache");
  EXPECT_EQ(page.kind, "page");
  EXPECT_EQ(page.lookups, 4096u);
  EXPECT_EQ(page.hits, 2048u) << "the cold window's hits are 0, not negative";
  EXPECT_EQ(page.misses, 2050u);
  EXPECT_EQ(page.windows, 2u);
  EXPECT_EQ(count("SELECT count(*) FROM cache_windows WHERE hit_ratio = 1"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM cache_windows WHERE hit_ratio = 0"), 1);

  auto series = q->cache_series("h", "api", "page_cache", {at(t0), at(t0 + day)});
  ASSERT_TRUE(series.ok()) << series.error().message;
  ASSERT_EQ(series->size(), 2u);
  EXPECT_EQ((*series)[0].misses, 2050u);
  EXPECT_EQ((*series)[1].hits, 2048u);

  auto lru = q->caches("h", "worker", {at(t0 + 105), at(t0 + day)});
  ASSERT_TRUE(lru.ok());
  ASSERT_EQ(lru->size(), 1u);
  EXPECT_EQ((*lru)[0].spec, "hits a.hit, misses a.miss");
  EXPECT_EQ((*lru)[0].hits, 30u);
  EXPECT_EQ((*lru)[0].windows, 1u);

  auto health = q->cache_health("h", {at(t0), at(t0 + day)});
  ASSERT_TRUE(health.ok()) << health.error().message;
  EXPECT_EQ(health->windows, 2u);
  EXPECT_TRUE(health->page_cache.measured);
  EXPECT_EQ(health->llc.text, "unsupported: newest");
  EXPECT_EQ(health->host.page_lookups, 2 * (2048u + 100));
  EXPECT_EQ(health->statsd_counts, 100u);
  auto empty = q->cache_health("other-host", {at(t0), at(t0 + day)});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->windows, 0u);
}

// The probe families' states are the host's, one row per window (not one per target), read back as of
// each host's newest window in range.
TEST_F(PgStoreTest, ProbeStatesAreStoredPerHostAndWindow) {
  auto s = store();
  profile::ProbeStates first, newest;
  first.set(profile::ProbeFamily::cpu_sampler, profile::ProbeStatus::running, "99 Hz");
  newest.set(profile::ProbeFamily::cpu_sampler, profile::ProbeStatus::failed, "perf_event_open: Invalid argument");
  newest.set(profile::ProbeFamily::latency_python, profile::ProbeStatus::failed, "the kernel rejected python_entry: \xff");
  profile::WindowProfile w1 = sample_window("h", at(t0 + 100));
  w1.probes = first.list();
  profile::WindowProfile w2 = sample_window("h", at(t0 + 110));
  w2.probes = newest.list();
  profile::WindowProfile other = sample_window("h2", at(t0 + 100));
  other.probes = first.list();
  for (const auto* w : {&w1, &w2, &w2, &other}) ASSERT_TRUE(s->write_window(*w).ok());
  EXPECT_EQ(count("SELECT count(*) FROM host_windows"), 3) << "one row per host and window, a replay replaces";

  auto q = query();
  auto states = q->probe_states("h", {at(t0), at(t0 + day)});
  ASSERT_TRUE(states.ok()) << states.error().message;
  ASSERT_EQ(states->size(), 1u);
  const HostProbes& h = (*states)[0];
  EXPECT_EQ(h.host, "h");
  EXPECT_EQ(h.window_end, w2.end);
  ASSERT_EQ(h.probes.size(), profile::all_probe_families.size());
  EXPECT_EQ(h.probes[0].text(), "failed: perf_event_open: Invalid argument");
  EXPECT_EQ(h.probes[static_cast<std::size_t>(profile::ProbeFamily::latency_python)].detail,
            "the kernel rejected python_entry: \uFFFD") << "stored as valid UTF-8";
  auto earlier = q->probe_states("h", {at(t0), at(t0 + 105)});
  ASSERT_TRUE(earlier.ok());
  ASSERT_EQ(earlier->size(), 1u);
  EXPECT_EQ((*earlier)[0].probes[0].status, profile::ProbeStatus::running);
  auto every = q->probe_states("", {at(t0), at(t0 + day)});
  ASSERT_TRUE(every.ok());
  ASSERT_EQ(every->size(), 2u);
  EXPECT_EQ((*every)[1].host, "h2");
  auto none = q->probe_states("h", {at(t0 + day), at(t0 + 2 * day)});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(PgStoreTest, OperationsKeepTheirIdWhenTheirSourceChanges) {
  auto s = store();
  profile::WindowProfile w1 = sample_window("h", at(t0 + 100));
  test::add_sample_operations(w1, {30});
  ASSERT_TRUE(s->write_window(w1).ok());
  profile::WindowProfile w2 = sample_window("h", at(t0 + 110));
  test::add_sample_operations(w2, {40});
  w2.operations[0].source = profile::OperationSource::python;
  w2.operations[0].spec = "app.lookup";
  ASSERT_TRUE(s->write_window(w2).ok());
  EXPECT_EQ(count("SELECT count(*) FROM operations"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM operations WHERE source = 'python' AND spec = 'app.lookup'"), 1);
  auto ops = query()->latency("h", "api", "lookup", {at(t0), at(t0 + day)});
  ASSERT_TRUE(ops.ok());
  EXPECT_EQ((*ops)[0].histogram.count, 2u);
  EXPECT_EQ((*ops)[0].source, "python") << "the newest window's source";
}

TEST_F(PgStoreTest, NamesThatAreNotUtf8AreStoredReadably) {
  auto s = store();
  profile::WindowProfile w = sample_window("h", at(t0));
  w.profile.frames[1].name = std::string("pa\xffrse\0x", 8);
  ASSERT_TRUE(s->write_window(w).ok());
  EXPECT_EQ(folded("h", "api", {at(t0), at(t0 + 1)}), "main;pa\xEF\xBF\xBDrse\xEF\xBF\xBDx;vfs_read 3\nmain;serve 2\n");
}

TEST_F(PgStoreTest, WritesLargeWindowsWhole) {
  profile::WindowProfile w = sample_window("h", at(t0));
  w.profile.stacks.clear();
  for (std::uint32_t i = 0; i < 5000; ++i) {
    w.profile.frames.push_back({profile::FrameKind::native, "f" + std::to_string(i), "/bin/app"});
    w.profile.stacks.push_back({0, {0, static_cast<std::uint32_t>(w.profile.frames.size() - 1)}, 1});
  }
  ASSERT_TRUE(store()->write_window(w).ok());
  EXPECT_EQ(count("SELECT count(*) FROM samples"), 5000);
  EXPECT_EQ(count("SELECT sum(count) FROM samples"), 5000);
  EXPECT_EQ(count("SELECT count(*) FROM frames"), 5005);
}

}  // namespace
}  // namespace perfwatch::storage
