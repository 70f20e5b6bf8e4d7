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

constexpr std::int64_t t0 = 1'800'000'000;  // a whole hour (and 5 minutes)

class RollupsTest : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (HasFatalFailure()) return;
    auto store = storage::PgStore::connect(connect_options());
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    // Two hours of windows, one a minute; stack counts vary with time so buckets differ.
    for (std::int64_t m = 0; m < 120; ++m) {
      profile::WindowProfile w = sample_window("web-01", at(t0 + m * 60));
      w.profile.stacks[0].count = 1 + m % 7;
      ASSERT_TRUE(store_->write_window(w));
    }
    auto query = storage::Query::connect(connect_options());
    ASSERT_TRUE(query) << query.error().message;
    query_ = std::move(*query);
  }

  std::string folded(profile::TimePoint from, profile::TimePoint to) {
    auto p = query_->profile("web-01", "api", {from, to});
    EXPECT_TRUE(p) << p.error().message;
    return p ? profile::to_folded(*p) : "";
  }

  storage::RollupPlan plan(profile::TimePoint from, profile::TimePoint to) {
    pqxx::connection conn = connection();
    pqxx::read_transaction tx(conn);
    const int api = static_cast<int>(count("SELECT id FROM targets WHERE name = 'api'"));
    return storage::plan_rollups(tx, {api}, from, to);
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
  const std::int64_t before = count("SELECT count(*) FROM rollup_samples");
  ASSERT_GT(before, 0);
  // Windows are dropped by whole day; the two hours are all in one.
  ASSERT_TRUE(store_->apply_retention(std::chrono::hours(1), at(t0 + 3 * 86400)));
  EXPECT_EQ(refresh(at(t0 + 3 * 86400)).buckets_dropped, static_cast<std::uint64_t>(before));
  EXPECT_EQ(count("SELECT count(*) FROM rollup_buckets"), 0);
}

}  // namespace
}  // namespace perfwatch::test
