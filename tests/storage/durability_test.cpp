// Durability of stored windows against a real PostgreSQL: write errors that come from the database's
// state (a revoked privilege) are retried until they stop, never set aside; a window whose times the
// database's clock calls implausible is refused; and retention never trusts one host's clock.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <thread>

#include "storage/conninfo.h"
#include "storage/query.h"
#include "storage/store.h"
#include "storage/window_writer.h"
#include "tests/storage/support.h"

namespace perfwatch::storage {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::at;
using test::sample_window;

constexpr auto day = std::chrono::hours(24);

// A recent window start on a 10-second boundary.
profile::TimePoint recent(std::chrono::seconds ago) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(profile::Clock::now().time_since_epoch()) - ago;
  return profile::TimePoint(now / 10 * 10);
}

bool eventually(const std::function<bool()>& condition, std::chrono::seconds limit = 30s) {
  for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

// The writer connects as a role that owns the test database (not a superuser, so privileges apply).
class DurabilityTest : public test::PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (HasFatalFailure()) return;
    static std::atomic<int> counter{0};
    role_ = "pw_writer_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    exec("CREATE ROLE " + role_ + " NOLOGIN");
    exec("ALTER DATABASE " + count_text("SELECT current_database()") + " OWNER TO " + role_);
    auto uri = conninfo_with(uri_, {{"options", "-c role=" + role_}});
    ASSERT_TRUE(uri.ok()) << uri.error().message;
    writer_uri_ = *uri;
    spool_dir_ = fs::temp_directory_path() / ("pw-durability-" + role_);
    fs::remove_all(spool_dir_);
  }
  void TearDown() override {
    PgTest::TearDown();
    fs::remove_all(spool_dir_);
    if (role_.empty()) return;
    pqxx::connection admin(std::getenv("PERFWATCH_TEST_PG"));
    pqxx::nontransaction tx(admin);
    tx.exec0("DROP ROLE IF EXISTS " + role_);
  }

  void exec(const std::string& sql) const {
    auto conn = connection();
    pqxx::nontransaction tx(conn);
    tx.exec0(sql);
  }
  std::string count_text(const std::string& sql) const {
    auto conn = connection();
    pqxx::nontransaction tx(conn);
    return tx.exec1(sql)[0].as<std::string>();
  }
  std::unique_ptr<WindowWriter> writer() const {
    WriterOptions o;
    o.connect = {writer_uri_, ""};
    o.spool_dir = spool_dir_.string();
    o.min_backoff = 20ms;
    o.max_backoff = 100ms;
    return std::make_unique<WindowWriter>(o, PgStore::factory(o.connect));
  }
  std::unique_ptr<PgStore> store() const {
    auto s = PgStore::connect({writer_uri_, ""});
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::string role_;
  std::string writer_uri_;
  fs::path spool_dir_;
};

TEST_F(DurabilityTest, AWriteRefusedForAWhileIsRetriedUntilItIsStoredOnce) {
  const profile::TimePoint t0 = recent(1h);
  auto w = writer();
  w->enqueue(sample_window("h", t0));
  ASSERT_TRUE(eventually([&] { return w->stats().written == 1; }));

  exec("REVOKE INSERT ON windows FROM " + role_);  // every write fails with insufficient_privilege
  for (int i = 1; i <= 5; ++i) w->enqueue(sample_window("h", t0 + std::chrono::seconds(10 * i)));
  // Many more failures than the few a window once got before it was set aside for good.
  ASSERT_TRUE(eventually([&] { return w->stats().write_errors >= 20; })) << w->stats().write_errors;
  EXPECT_EQ(w->stats().quarantined, 0u) << "a refusal by the database's state is not the window's fault";
  EXPECT_EQ(w->stats().spool_windows, 5u);

  exec("GRANT INSERT ON windows TO " + role_);
  ASSERT_TRUE(eventually([&] { return w->stats().written == 6 && w->stats().spool_windows == 0; }))
      << "written " << w->stats().written << ", spooled " << w->stats().spool_windows << ", quarantined "
      << w->stats().quarantined;
  EXPECT_EQ(count("SELECT count(DISTINCT window_start) FROM windows"), 6);
  EXPECT_EQ(count("SELECT count(*) FROM windows"), 12) << "two targets a window, each once";
  EXPECT_EQ(count("SELECT sum(count) FROM samples"), 60) << "10 samples a window, none twice";
  EXPECT_EQ(w->stats().quarantined, 0u);
}

TEST_F(DurabilityTest, AWindowFarAheadOfTheDatabaseClockIsRefusedAndSetAside) {
  auto s = store();
  const WriteResult refused = s->write_window(sample_window("ahead", recent(-30 * day)));
  ASSERT_FALSE(refused.ok()) << "a window 30 days ahead of the database's clock is stored";
  EXPECT_EQ(refused.error().kind, WriteFailure::implausible_time);
  EXPECT_NE(refused.error().message.find("ahead of the database"), std::string::npos) << refused.error().message;
  EXPECT_EQ(count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'samples'::regclass"), 0)
      << "no partition is made for it";

  // Through the writer: set aside (and counted) at once, and the windows behind it are stored.
  auto w = writer();
  w->enqueue(sample_window("ahead", recent(-30 * day)));
  w->enqueue(sample_window("h", recent(1h)));
  ASSERT_TRUE(eventually([&] { return w->stats().written == 1 && w->stats().quarantined == 1; }))
      << "written " << w->stats().written << ", quarantined " << w->stats().quarantined;
  EXPECT_EQ(w->stats().quarantine_windows, 1u);
}

TEST_F(DurabilityTest, RetentionByAHostWhoseClockRunsAMonthAheadKeepsEveryonesRecentDays) {
  auto s = store();
  ASSERT_TRUE(s->write_window(sample_window("on-time", recent(2h))).ok());
  ASSERT_TRUE(s->write_window(sample_window("on-time", recent(3 * day))).ok());
  // Another host, its clock 30 days ahead, applies 14 days of retention by that clock.
  auto ahead = store();
  auto dropped = ahead->apply_retention(14 * day, profile::Clock::now() + 30 * day);
  ASSERT_TRUE(dropped.ok()) << dropped.error().message;
  EXPECT_EQ(*dropped, 0) << "nothing here is older than 14 days by the database's clock";
  auto q = Query::connect({uri_, ""});
  ASSERT_TRUE(q.ok()) << q.error().message;
  auto targets = (*q)->targets("on-time", {recent(4 * day), recent(-1h)});
  ASSERT_TRUE(targets.ok()) << targets.error().message;
  ASSERT_FALSE(targets->empty());
  EXPECT_EQ((*targets)[0].windows, 2u);
}

}  // namespace
}  // namespace perfwatch::storage
