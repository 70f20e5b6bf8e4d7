// Rollups on a real PostgreSQL: built from what the writer stored, used by Query::profile only while
// they match their windows, rebuilt when a late window arrives, dropped with retention.
#include <gtest/gtest.h>

#include <pqxx/transaction>

#include "storage/query.h"
#include "storage/rollups.h"
#include "tests/storage/support.h"

namespace perfwatch::test {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t t0 = 1'764'000'000;  // 2025-11-24T16:00:00Z: a whole hour (and 5 minutes), in the past

// Two hours of windows, one a minute (window(minute) makes each), written by the real writer.
class RollupsFixture : public PgTest {
 protected:
  virtual profile::WindowProfile window(std::int64_t minute) const = 0;

  void SetUp() override {
    PgTest::SetUp();
    if (HasFatalFailure()) return;
    auto store = storage::PgStore::connect(connect_options());
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    for (std::int64_t m = 0; m < 120; ++m) ASSERT_TRUE(store_->write_window(window(m)));
    auto query = storage::Query::connect(connect_options());
    ASSERT_TRUE(query) << query.error().message;
    query_ = std::move(*query);
  }

  // The plan of the key `id_sql` selects.
  storage::RollupPlan plan(storage::RollupKind kind, const std::string& id_sql, profile::TimePoint from,
                           profile::TimePoint to) {
    pqxx::connection conn = connection();
    pqxx::read_transaction tx(conn);
    return storage::plan_rollups(tx, kind, {static_cast<int>(count(id_sql))}, from, to);
  }

  storage::RollupStats refresh(profile::TimePoint now) {
    pqxx::connection conn = connection();
    auto r = storage::refresh_rollups(conn, now);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : storage::RollupStats{};
  }

  std::unique_ptr<storage::PgStore> store_;
  std::unique_ptr<storage::Query> query_;
};

class RollupsTest : public RollupsFixture {
 protected:
  // Stack counts vary with time so buckets differ.
  profile::WindowProfile window(std::int64_t minute) const override {
    profile::WindowProfile w = sample_window("web-01", at(t0 + minute * 60));
    w.profile.stacks[0].count = 1 + minute % 7;
    return w;
  }

  std::string folded(profile::TimePoint from, profile::TimePoint to) {
    auto p = query_->profile("web-01", "api", {from, to});
    EXPECT_TRUE(p) << p.error().message;
    return p ? profile::to_folded(*p) : "";
  }

  storage::RollupPlan plan(profile::TimePoint from, profile::TimePoint to) {
    return RollupsFixture::plan(storage::RollupKind::samples, "SELECT id FROM targets WHERE name = 'api'", from, to);
  }
};

TEST_F(RollupsTest, ProfilesReadFromRollupsEqualTheRawOnes) {
  const auto from = at(t0 + 7 * 60), to = at(t0 + 7200);
  const auto short_end = at(t0 + 119 * 60 + 30);
  const std::string raw = folded(from, to), raw_short = folded(from, short_end);
  ASSERT_FALSE(raw.empty());
  EXPECT_TRUE(plan(from, to).buckets.empty()) << "nothing is rolled up yet";

  // Two targets x (2 hours + 24 five-minute buckets); none before they have settled.
  EXPECT_EQ(refresh(at(t0 + 2 * 3600 + 30)).buckets_built, 2u * (1 + 23)) << "the last hour and 5 minutes are recent";
  EXPECT_EQ(refresh(at(t0 + 3 * 3600)).buckets_built, 2u * (1 + 1));
  EXPECT_EQ(refresh(at(t0 + 3 * 3600)).buckets_built, 0u) << "fresh buckets are not rebuilt";

  // Minutes 7-120: the second hour whole, 5-minute buckets 10..55 of the first, raw windows 7-10.
  const storage::RollupPlan p = plan(from, to);
  ASSERT_EQ(p.buckets.size(), 1u + 10u);
  EXPECT_EQ(p.buckets[0].resolution, 3600);
  EXPECT_EQ(p.buckets[0].start, at(t0 + 3600));
  EXPECT_EQ(p.buckets[1].resolution, 300);
  EXPECT_EQ(p.buckets[1].start, at(t0 + 10 * 60));
  ASSERT_EQ(p.raw.size(), 1u);
  EXPECT_EQ(p.raw[0].from, from);
  EXPECT_EQ(p.raw[0].to, at(t0 + 10 * 60));
  EXPECT_EQ(folded(from, to), raw);
  // A range ending inside an hour uses its 5-minute buckets instead.
  EXPECT_EQ(plan(from, short_end).buckets.size(), 10u + 11u);
  EXPECT_EQ(folded(from, short_end), raw_short);
}

TEST_F(RollupsTest, ALateWindowMakesItsBucketStaleUntilRebuilt) {
  refresh(at(t0 + 3 * 3600));
  const auto from = at(t0), to = at(t0 + 3600);
  ASSERT_EQ(plan(from, to).buckets.size(), 1u);
  // A window replayed from the spool lands inside the rolled-up hour.
  profile::WindowProfile late = sample_window("web-01", at(t0 + 90));
  late.profile.stacks[0].count = 1000;
  ASSERT_TRUE(store_->write_window(late));
  const storage::RollupPlan stale = plan(from, to);
  EXPECT_EQ(stale.buckets.size(), 11u) << "the hour and its 5-minute bucket are stale, the other 11 are not";
  const std::string with_late = folded(from, to);
  EXPECT_NE(with_late.find("main;parse;vfs_read"), std::string::npos);
  EXPECT_EQ(refresh(at(t0 + 3 * 3600)).buckets_built, 2u * 2u) << "the hour and the 5 minutes, of both targets";
  EXPECT_EQ(plan(from, to).buckets.size(), 1u);
  EXPECT_EQ(folded(from, to), with_late);
}

TEST_F(RollupsTest, RetentionDropsTheBucketsOfDroppedWindows) {
  refresh(at(t0 + 3 * 3600));
  const std::int64_t before = count("SELECT count(*) FROM rollup_buckets");
  ASSERT_GT(before, 0);
  // Windows are dropped by whole day; the two hours are all in one.
  ASSERT_TRUE(store_->apply_retention(std::chrono::hours(1), at(t0 + 3 * 86400)));
  EXPECT_EQ(refresh(at(t0 + 3 * 86400)).buckets_dropped, static_cast<std::uint64_t>(before));
  EXPECT_EQ(count("SELECT count(*) FROM rollup_buckets"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM rollup_samples"), 0);
}

// Latency rollups: two hours of windows, one a minute, with api's "lookup" (T1) taking 10..130 ms and
// worker's "reads" (own 20 ms threshold). Rollups must give exactly the answers of the raw windows.
class LatencyRollupsTest : public RollupsFixture {
 protected:
  static std::initializer_list<std::uint64_t> lookup_ms(std::int64_t minute) {
    static const std::initializer_list<std::uint64_t> shapes[] = {{10, 20}, {30, 40, 50}, {130}, {60, 70, 80, 90}};
    return shapes[minute % 4];
  }

  profile::WindowProfile window(std::int64_t minute) const override {
    profile::WindowProfile w = sample_window("web-01", at(t0 + minute * 60));
    add_sample_operations(w, lookup_ms(minute));
    return w;
  }

  std::vector<storage::OperationLatency> latency(profile::TimePoint from, profile::TimePoint to,
                                                 const std::string& target = "api") {
    auto r = query_->latency("web-01", target, "", {from, to});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : std::vector<storage::OperationLatency>{};
  }
  std::vector<storage::LatencyPoint> series(profile::TimePoint from, profile::TimePoint to, int step) {
    auto r = query_->latency_series("web-01", "api", "lookup", {from, to}, step);
    EXPECT_TRUE(r) << r.error().message;
    return r && r->size() == 1 ? (*r)[0].points : std::vector<storage::LatencyPoint>{};
  }
  storage::RollupPlan plan(profile::TimePoint from, profile::TimePoint to) {
    return RollupsFixture::plan(storage::RollupKind::latency, "SELECT id FROM operations WHERE name = 'lookup'", from, to);
  }
  // Every call of minutes [first, last), as one histogram.
  static profile::LatencyHistogram calls_of(std::int64_t first, std::int64_t last) {
    profile::LatencyHistogram h;
    for (std::int64_t m = first; m < last; ++m) profile::merge(h, histogram_of(lookup_ms(m), 100));
    return h;
  }
};

bool same_points(const std::vector<storage::LatencyPoint>& a, const std::vector<storage::LatencyPoint>& b) {
  auto key = [](const storage::LatencyPoint& p) {
    return std::make_tuple(p.start, p.calls, p.p50_ns, p.p95_ns, p.p99_ns, p.max_ns, p.slow, p.threshold_ns);
  };
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [&](const auto& x, const auto& y) { return key(x) == key(y); });
}

TEST_F(LatencyRollupsTest, MergedLatencyAndSeriesFromRollupsEqualTheRawOnes) {
  const auto from = at(t0 + 7 * 60), to = at(t0 + 7200);
  const std::vector<storage::OperationLatency> raw = latency(from, to);
  const auto raw_windows = series(from, to, 0), raw_5m = series(from, to, 300), raw_1h = series(from, to, 3600);
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(raw[0].histogram, calls_of(7, 120));
  EXPECT_EQ(raw[0].windows, 113u);
  EXPECT_EQ(raw_windows.size(), 113u);
  // 5-minute steps on the epoch: minutes 7-10 (a partial step, starting at its first window), then 22 whole.
  ASSERT_EQ(raw_5m.size(), 23u);
  EXPECT_EQ(raw_5m[0].start, at(t0 + 7 * 60));
  EXPECT_EQ(raw_5m[0].calls, calls_of(7, 10).count);
  EXPECT_EQ(raw_5m[1].start, at(t0 + 10 * 60));
  const profile::LatencyHistogram step = calls_of(10, 15);
  EXPECT_EQ(raw_5m[1].calls, step.count);
  EXPECT_EQ(raw_5m[1].p99_ns, profile::percentile(step, 0.99)) << "percentiles of the merged windows, not of each";
  EXPECT_EQ(raw_5m[1].slow, step.slow);
  EXPECT_EQ(raw_5m[1].threshold_ns, 100'000'000u);
  ASSERT_EQ(raw_1h.size(), 2u);

  // Samples of both targets and latency of both operations, each 2 hours + 24 five-minute buckets.
  EXPECT_EQ(refresh(at(t0 + 3 * 3600)).buckets_built, 2u * 2u * (2 + 24));
  const storage::RollupPlan p = plan(from, to);
  EXPECT_EQ(p.buckets.size(), 1u + 10u) << "the second hour, 5-minute buckets 10..55 of the first";
  ASSERT_EQ(p.raw.size(), 1u);
  EXPECT_EQ(p.raw[0].to, at(t0 + 10 * 60));

  const std::vector<storage::OperationLatency> rolled = latency(from, to);
  ASSERT_EQ(rolled.size(), 1u);
  EXPECT_EQ(rolled[0].histogram, raw[0].histogram);
  EXPECT_EQ(rolled[0].windows, raw[0].windows);
  EXPECT_EQ(rolled[0].tier, profile::Tier::t1);
  EXPECT_EQ(rolled[0].threshold_ns, 100'000'000u);
  EXPECT_TRUE(same_points(series(from, to, 300), raw_5m));
  EXPECT_TRUE(same_points(series(from, to, 3600), raw_1h));
  EXPECT_TRUE(same_points(series(from, to, 0), raw_windows)) << "a point per window always reads the windows";
  EXPECT_EQ(latency(from, to, "worker")[0].histogram.count, 113u * 3);
}

TEST_F(LatencyRollupsTest, ALateWindowMakesItsBucketStaleUntilRebuilt) {
  refresh(at(t0 + 3 * 3600));
  const auto from = at(t0), to = at(t0 + 3600);
  ASSERT_EQ(plan(from, to).buckets.size(), 1u);
  // A window replayed from the spool adds calls inside the rolled-up hour.
  profile::WindowProfile late = sample_window("web-01", at(t0 + 90));
  add_sample_operations(late, {900, 900});
  ASSERT_TRUE(store_->write_window(late));
  EXPECT_EQ(plan(from, to).buckets.size(), 11u) << "the hour and its 5-minute bucket are stale";
  profile::LatencyHistogram expected = calls_of(0, 60);
  profile::merge(expected, histogram_of({900, 900}, 100));
  EXPECT_EQ(latency(from, to)[0].histogram, expected);
  EXPECT_EQ(refresh(at(t0 + 3 * 3600)).buckets_built, 4u * 2u)
      << "the hour and the 5 minutes, of both targets' samples and both operations' latency";
  EXPECT_EQ(plan(from, to).buckets.size(), 1u);
  EXPECT_EQ(latency(from, to)[0].histogram, expected);
}

TEST_F(LatencyRollupsTest, RetentionDropsTheBucketsOfDroppedWindows) {
  refresh(at(t0 + 3 * 3600));
  const std::int64_t samples = count("SELECT count(*) FROM rollup_buckets"), latency = count("SELECT count(*) FROM latency_rollups");
  ASSERT_EQ(latency, 2 * (2 + 24));
  ASSERT_TRUE(store_->apply_retention(std::chrono::hours(1), at(t0 + 3 * 86400)));
  EXPECT_EQ(refresh(at(t0 + 3 * 86400)).buckets_dropped, static_cast<std::uint64_t>(samples + latency));
  EXPECT_EQ(count("SELECT count(*) FROM latency_rollups"), 0);
}

TEST_F(LatencyRollupsTest, IdleOperationsAreListedOnRequestWithTheirLastWindow) {
  const auto after = at(t0 + 3 * 3600), later = at(t0 + 4 * 3600);
  EXPECT_TRUE(latency(after, later).empty()) << "no calls in range";
  auto all = query_->latency("web-01", "", "", {after, later}, /*with_idle=*/true);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 2u) << "every target's operations";
  const storage::OperationLatency& lookup = (*all)[0];
  EXPECT_EQ(lookup.target, "api");
  EXPECT_EQ(lookup.name, "lookup");
  EXPECT_EQ(lookup.windows, 0u);
  EXPECT_EQ(lookup.histogram.count, 0u);
  EXPECT_EQ(lookup.tier, profile::Tier::t1) << "its newest window's";
  EXPECT_EQ(lookup.threshold_ns, 100'000'000u);
  ASSERT_TRUE(lookup.last_window_end);
  EXPECT_EQ(*lookup.last_window_end, at(t0 + 119 * 60 + 10));
  EXPECT_EQ((*all)[1].target, "worker");
  EXPECT_EQ((*all)[1].tier, profile::Tier::none);
  EXPECT_EQ((*all)[1].threshold_ns, 20'000'000u);
  // With calls in range, the same request merges them.
  auto busy = query_->latency("web-01", "", "", {at(t0), later}, true);
  ASSERT_TRUE(busy);
  EXPECT_EQ((*busy)[0].histogram, calls_of(0, 120));
  EXPECT_FALSE((*busy)[0].last_window_end);
}

}  // namespace
}  // namespace perfwatch::test
