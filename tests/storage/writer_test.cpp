// The window writer against a real outage: perfwatch's embedded PostgreSQL is stopped under it
// and started again. Nothing within the spool's bound is lost; what is dropped past it is counted.
#include "storage/window_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <thread>

#include "storage/embedded_postgres.h"
#include "storage/query.h"
#include "tests/storage/support.h"

namespace perfwatch::storage {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::at;
using test::sample_window;

// Recent windows: older ones would fall to the writer's retention pass.
const std::int64_t t0 = std::chrono::duration_cast<std::chrono::seconds>(profile::Clock::now().time_since_epoch()).count() - 3600;

class WriterOutageTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "runs perfwatch's embedded PostgreSQL, which needs root to switch users";
    dir_ = fs::temp_directory_path() / ("pw-writer-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
    pg_options_.state_dir = dir_.string();
    pg_ = EmbeddedPostgres::start(pg_options_);
  }
  void TearDown() override {
    pg_.reset();
    fs::remove_all(dir_);
  }

  WriterOptions writer_options(std::uint64_t spool_max = 64 << 20) const {
    WriterOptions o;
    o.connect = {pg_->uri(), ""};
    o.spool_dir = (dir_ / "spool").string();
    o.spool_max_bytes = spool_max;
    o.min_backoff = 50ms;
    o.max_backoff = 200ms;
    return o;
  }
  std::unique_ptr<WindowWriter> writer(std::uint64_t spool_max = 64 << 20) const {
    WriterOptions o = writer_options(spool_max);
    return std::make_unique<WindowWriter>(o, PgStore::factory(o.connect));
  }
  // -1 until the writer has created the schema.
  std::int64_t stored_windows() const {
    pqxx::connection conn(pg_->uri());
    pqxx::nontransaction tx(conn);
    if (tx.exec1("SELECT to_regclass('windows') IS NULL")[0].as<bool>()) return -1;
    return tx.exec1("SELECT count(DISTINCT window_start) FROM windows")[0].as<std::int64_t>();
  }
  static bool eventually(const std::function<bool()>& condition, std::chrono::seconds limit = 30s) {
    for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;) {
      if (condition()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return condition();
  }

  fs::path dir_;
  EmbeddedOptions pg_options_;
  std::unique_ptr<EmbeddedPostgres> pg_;
};

TEST_F(WriterOutageTest, HoldsWindowsThroughAnOutageAndWritesThemWhenItEnds) {
  auto w = writer();
  w->enqueue(sample_window("h", at(t0)));
  ASSERT_TRUE(eventually([&] { return w->stats().written == 1; }));

  pg_->stop();
  for (int i = 1; i <= 5; ++i) w->enqueue(sample_window("h", at(t0 + 10 * i)));
  ASSERT_TRUE(eventually([&] { return w->stats().spool_windows == 5; })) << "windows go to the spool during the outage";
  EXPECT_FALSE(w->stats().connected);

  pg_ = EmbeddedPostgres::start(pg_options_);
  ASSERT_TRUE(eventually([&] { return w->stats().spool_windows == 0; })) << "replayed when the database returns";
  EXPECT_EQ(stored_windows(), 6);
  EXPECT_EQ(w->stats().written, 6u);
  EXPECT_EQ(w->stats().dropped, 0u);
}

TEST_F(WriterOutageTest, SpooledWindowsSurviveADaemonRestart) {
  pg_->stop();
  {
    auto w = writer();
    for (int i = 0; i < 3; ++i) w->enqueue(sample_window("h", at(t0 + 10 * i)));
    w->flush(5s);
  }  // the daemon exits while the database is down
  pg_ = EmbeddedPostgres::start(pg_options_);
  auto w = writer();
  ASSERT_TRUE(eventually([&] { return stored_windows() == 3; }));
  EXPECT_TRUE(eventually([&] { return w->stats().spool_windows == 0; }));
}

TEST_F(WriterOutageTest, PastTheSpoolBoundTheOldestAreDroppedAndCounted) {
  const std::uint64_t one = encode_window(sample_window("h", at(t0))).size();
  pg_->stop();
  auto w = writer(4 * one + one / 2);
  for (int i = 0; i < 10; ++i) w->enqueue(sample_window("h", at(t0 + 10 * i)));
  ASSERT_TRUE(eventually([&] { return w->stats().spooled == 10; }));
  EXPECT_EQ(w->stats().dropped, 6u);
  EXPECT_EQ(w->stats().spool_windows, 4u);
  pg_ = EmbeddedPostgres::start(pg_options_);
  ASSERT_TRUE(eventually([&] { return w->stats().spool_windows == 0; }));
  EXPECT_EQ(stored_windows(), 4);
  auto q = Query::connect({pg_->uri(), ""});
  ASSERT_TRUE(q.ok());
  auto kept = (*q)->targets("h", {at(t0), at(t0 + 1000)});
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ((*kept)[0].last_window_end, at(t0 + 100)) << "the newest windows are the ones kept";
}

// Pure logic, with a store that answers as the test says: a window of host "poison" is refused for
// its content; the first `transient` writes fail as a busy database's would.
struct Script {
  std::atomic<int> transient{0};
  std::atomic<int> writes{0};
};

class ScriptedStore final : public Store {
 public:
  explicit ScriptedStore(Script& script) : script_(script) {}
  WriteResult write_window(const profile::WindowProfile& w) override {
    if (w.host == "poison") return WriteError{WriteFailure::unwritable, "value too long"};
    if (script_.transient.fetch_sub(1) > 0) return WriteError{WriteFailure::transient, "could not serialize access"};
    ++script_.writes;
    return {};
  }
  Result<int> apply_retention(Duration, profile::TimePoint) override { return 0; }

 private:
  Script& script_;
};

class WindowWriterLogic : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pw-writer-logic-" + std::to_string(getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<WindowWriter> writer() {
    WriterOptions o;
    o.spool_dir = dir_.string();
    o.min_backoff = 1ms;
    o.max_backoff = 5ms;
    return std::make_unique<WindowWriter>(
        o, [&]() -> Result<std::unique_ptr<Store>> { return std::unique_ptr<Store>(new ScriptedStore(script_)); });
  }
  static bool eventually(const std::function<bool()>& condition) {
    for (int i = 0; i < 1000 && !condition(); ++i) std::this_thread::sleep_for(10ms);
    return condition();
  }

  fs::path dir_;
  Script script_;
};

TEST_F(WindowWriterLogic, SetsAsideAWindowRefusedForItsContentAtOnce) {
  auto w = writer();
  w->enqueue(sample_window("poison", at(t0)));
  w->enqueue(sample_window("good", at(t0 + 10)));
  ASSERT_TRUE(eventually([&] { return w->stats().quarantined == 1 && script_.writes == 1; }));
  EXPECT_EQ(w->stats().write_errors, 1u) << "not tried again";
  EXPECT_EQ(w->stats().quarantine_windows, 1u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "failed"), fs::directory_iterator()), 1);
}

TEST_F(WindowWriterLogic, RetriesTransientFailuresForAsLongAsTheyLast) {
  script_.transient = 200;
  auto w = writer();
  for (int i = 0; i < 3; ++i) w->enqueue(sample_window("h", at(t0 + 10 * i)));
  ASSERT_TRUE(eventually([&] { return script_.writes == 3; })) << w->stats().write_errors;
  EXPECT_EQ(w->stats().write_errors, 200u);
  EXPECT_EQ(w->stats().quarantined, 0u);
  EXPECT_EQ(w->stats().spool_windows, 0u);
}

// A spool on a full file system (a real, tiny tmpfs): windows are lost, counted and logged, and the
// spool works again once there is room.
struct Tmpfs {
  explicit Tmpfs(const fs::path& at) : path(at) {
    fs::create_directories(path);
    mounted = std::system(("mount -t tmpfs -o size=64k pw-spool-test " + path.string()).c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted) std::system(("umount " + path.string()).c_str());
  }
  fs::path path;
  bool mounted = false;
};

TEST_F(WindowWriterLogic, ASpoolOnAFullDiskCountsWhatItDropsAndRecovers) {
  ASSERT_EQ(geteuid(), 0u) << "mounts a tmpfs";
  Tmpfs disk(dir_);
  ASSERT_TRUE(disk.mounted);
  WriterOptions o;
  o.spool_dir = (dir_ / "spool").string();
  o.min_backoff = 1ms;
  o.max_backoff = 5ms;
  fs::create_directories(o.spool_dir);
  const fs::path filler = dir_ / "filler";
  ASSERT_NE(std::system(("dd if=/dev/zero of=" + filler.string() + " bs=4k 2>/dev/null").c_str()), 0) << "fills it";
  // The database is down all along.
  WindowWriter w(o, []() -> Result<std::unique_ptr<Store>> { return make_error("connection refused"); });
  for (int i = 0; i < 3; ++i) w.enqueue(sample_window("h", at(t0 + 10 * i)));
  EXPECT_TRUE(eventually([&] { return w.stats().dropped == 3; })) << "dropped " << w.stats().dropped;
  EXPECT_EQ(w.stats().spooled, 0u);
  fs::remove(filler);  // room again
  for (int i = 3; i < 5; ++i) w.enqueue(sample_window("h", at(t0 + 10 * i)));
  EXPECT_TRUE(eventually([&] { return w.stats().spool_windows == 2; }));
  EXPECT_EQ(w.stats().dropped, 3u);
}

}  // namespace
}  // namespace perfwatch::storage
