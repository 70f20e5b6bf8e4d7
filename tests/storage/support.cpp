#include "tests/storage/support.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <pqxx/nontransaction>
#include <pqxx/result>

#include "storage/conninfo.h"

namespace perfwatch::test {

void PgTest::SetUp() {
  const char* base = std::getenv("PERFWATCH_TEST_PG");
  ASSERT_TRUE(base && *base) << "PERFWATCH_TEST_PG must name a PostgreSQL database the tests may create "
                                "databases on (scripts/test-postgres.sh sets it up)";
  admin_uri_ = base;
  static std::atomic<int> counter{0};
  database_ = "pw_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  pqxx::connection admin(admin_uri_);
  pqxx::nontransaction tx(admin);
  tx.exec0("DROP DATABASE IF EXISTS " + database_);
  tx.exec0("CREATE DATABASE " + database_);
  auto uri = storage::conninfo_with(admin_uri_, {{"dbname", database_}});
  ASSERT_TRUE(uri.ok()) << uri.error().message;
  uri_ = *uri;
}

void PgTest::TearDown() {
  if (database_.empty() || admin_uri_.empty()) return;
  pqxx::connection admin(admin_uri_);
  pqxx::nontransaction tx(admin);
  tx.exec0("DROP DATABASE IF EXISTS " + database_ + " WITH (FORCE)");
}

pqxx::connection PgTest::connection() const { return pqxx::connection(uri_); }

std::int64_t PgTest::count(const std::string& sql) const {
  pqxx::connection conn(uri_);
  pqxx::nontransaction tx(conn);
  return tx.exec1(sql)[0].as<std::int64_t>();
}

profile::TimePoint at(std::int64_t unix_seconds) { return profile::TimePoint(std::chrono::seconds(unix_seconds)); }

profile::WindowProfile sample_window(const std::string& host, profile::TimePoint start) {
  using profile::FrameKind;
  profile::WindowProfile w;
  w.host = host;
  w.start = start;
  w.end = start + std::chrono::seconds(10);
  w.targets = {{"api", {100, 101}, 5}, {"worker", {200}, 5}};
  w.profile.frames = {{FrameKind::native, "main", "/bin/app"},
                      {FrameKind::native, "parse", "/bin/app"},
                      {FrameKind::kernel, "vfs_read", "[kernel]"},
                      {FrameKind::native, "serve", "/bin/app"},
                      {FrameKind::native, "loop", "/bin/worker"}};
  w.profile.stacks = {{0, {0, 1, 2}, 3}, {0, {0, 3}, 2}, {1, {0, 4}, 5}};
  w.stats.samples = 10;
  w.stats.lost_stack_collision = 1;
  return w;
}

profile::LatencyHistogram histogram_of(std::initializer_list<std::uint64_t> ms, std::uint64_t threshold_ms) {
  profile::DenseHistogram dense;
  for (std::uint64_t v : ms) dense.record(v * 1'000'000, 1, threshold_ms * 1'000'000);
  return dense.take();
}

void add_sample_operations(profile::WindowProfile& w, std::initializer_list<std::uint64_t> lookup_ms) {
  using profile::OperationSource;
  w.operations.push_back({0, "lookup", OperationSource::uprobe, "/bin/app:lookup", profile::Tier::t1, 100'000'000,
                          histogram_of(lookup_ms, 100)});
  w.operations.push_back({1, "reads", OperationSource::syscall, "read under /data", profile::Tier::none, 20'000'000,
                          histogram_of({1, 2, 30}, 20)});
  w.latency = {7, 1, 2, 3, 100, 90, 5, 2, 3, 1};
}

void add_sample_caches(profile::WindowProfile& w, std::uint64_t page_lookups, std::uint64_t page_misses) {
  using profile::CacheKind;
  w.caches.push_back({0, "page_cache", CacheKind::page, "", page_lookups, page_misses});
  w.caches.push_back({1, "lru", CacheKind::statsd, "hits a.hit, misses a.miss", 40, 10});
  w.cache = {{true, "lookups: filemap:mm_filemap_get_pages; misses: filemap:mm_filemap_add_to_page_cache"},
             {false, "unsupported: hardware cache events unavailable"},
             {page_lookups + 100, page_misses + 10, 3, 0, 0},
             50};
}

}  // namespace perfwatch::test
